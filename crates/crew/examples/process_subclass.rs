//! Python's "subclass Process and override run()" style, and seed 004's first example.
//!
//! ```python
//! class Downloader(Process):
//!     def __init__(self, urls): ...
//!     def run(self): ...
//! d = Downloader(urls); d.start(); d.join()
//! ```
//!
//! In Rust the "subclass" is a serializable struct with a `run` method, and a `#[crew::task]`
//! that calls it is its entry point in the child.

use serde::{Deserialize, Serialize};

use crew::process::{spawn, Process};

/// A process "class": its fields travel to the child, `run` executes there.
#[derive(Debug, Serialize, Deserialize)]
struct Downloader {
    name: String,
    urls: Vec<String>,
}

impl Downloader {
    fn run(self) -> usize {
        for url in &self.urls {
            println!("[{} pid {}] fetching {url}", self.name, std::process::id());
        }
        self.urls.len()
    }

    /// `start()`: run in a new child process.
    fn start(self) -> std::io::Result<Process<usize>> {
        spawn(run_downloader, self)
    }
}

#[crew::task]
fn run_downloader(downloader: Downloader) -> usize {
    downloader.run()
}

/// Seed 004: `Process(target=run_proc, args=('test',))`.
#[crew::task]
fn run_proc(name: String) {
    println!("Run child process {name} ({})...", std::process::id());
}

fn main() {
    crew::init();
    println!("Parent process {}.", std::process::id());
    let p = spawn(run_proc, "test".to_owned()).expect("start the child");
    println!("Child process will start.");
    p.join().expect("the child succeeds");
    println!("Child process end.");

    let workers: Vec<_> = (0..2)
        .map(|i| {
            Downloader {
                name: format!("downloader-{i}"),
                urls: (0..3)
                    .map(|j| format!("https://example.invalid/{i}/{j}"))
                    .collect(),
            }
            .start()
            .expect("start a downloader")
        })
        .collect();
    let fetched: usize = workers.into_iter().map(|p| p.join().unwrap()).sum();
    println!("fetched {fetched} urls");
}
