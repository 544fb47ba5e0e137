//! Seed 000, "线程": start a thread two ways, with a target function and its arguments, and
//! as a "subclass" of Thread (here: a struct with a `run` method and a `start` that spawns it).
//!
//! Prints, like the Python version:
//! ```text
//! 主线程
//! egon say hello
//! 主线程
//! egon say hello
//! ```

use std::io;
use std::thread::sleep;
use std::time::Duration;

use crew::TaskHandle;

/// The seed sleeps 2 s so that the main thread prints first; a fifth of that shows the same.
const NAP: Duration = Duration::from_millis(400);

// 方式一: Thread(target=sayhi, args=('egon',))
fn sayhi(name: &str) {
    sleep(NAP);
    println!("{name} say hello");
}

// 方式二: class Sayhi(Thread) with run(); the thread is named after `name`, as
// `self.name = name` names a Python thread.
struct Sayhi {
    name: String,
}

impl Sayhi {
    fn new(name: &str) -> Self {
        Self {
            name: name.to_owned(),
        }
    }

    fn run(&self) {
        sleep(NAP);
        let name = std::thread::current().name().unwrap_or("?").to_owned();
        println!("{name} say hello");
    }

    fn start(self) -> io::Result<TaskHandle<()>> {
        crew::thread::spawn(self.name.clone(), move || self.run())
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let name = "egon".to_owned();
    let t = crew::thread::spawn("Thread-1", move || sayhi(&name))?;
    println!("主线程");
    t.result()?; // Python's interpreter waits for non-daemon threads at exit; Rust must join

    let t = Sayhi::new("egon").start()?;
    println!("主线程");
    t.result()?;
    Ok(())
}
