//! Seed 002, item 39: a download → resize → upload pipeline over 1000 items, twice.
//!
//! 1. The seed's `ClosableQueue` + `StoppableWorker` version, rebuilt on `crew::queue::Queue`:
//!    `close()` replaces the sentinel, `for item in &queue` ends when the queue is closed and
//!    drained, and `join()` waits until every item was processed.
//! 2. The same with `crew::pipeline::Pipeline`: bounded queues between stages (so a slow stage
//!    cannot make memory grow), results in input order, per-stage statistics.
//!
//! Prints:
//! ```text
//! 1000 items finished
//! 1000 items finished
//! download: 1000 items, ...
//! resize: 1000 items, ...
//! upload: 1000 items, ...
//! ```

use std::time::Instant;

use crew::pipeline::Pipeline;
use crew::queue::Queue;
use crew::TaskHandle;

/// The seed's stand-in for `object()`: something to push through the stages.
#[derive(Debug)]
struct Image(u32);

fn download(item: Image) -> Image {
    item
}

fn resize(item: Image) -> Image {
    item
}

fn upload(item: Image) -> Image {
    item
}

/// `class StoppableWorker(Thread)`: moves items from one queue to the next until the input
/// queue is closed and drained.
struct StoppableWorker {
    func: fn(Image) -> Image,
    in_queue: Queue<Image>,
    out_queue: Queue<Image>,
}

impl StoppableWorker {
    fn new(func: fn(Image) -> Image, in_queue: &Queue<Image>, out_queue: &Queue<Image>) -> Self {
        Self {
            func,
            in_queue: in_queue.clone(),
            out_queue: out_queue.clone(),
        }
    }

    fn run(&self) {
        for item in &self.in_queue {
            let result = (self.func)(item);
            self.out_queue
                .put(result)
                .expect("the next queue is closed only after this stage is done");
        }
    }

    fn start(self, name: &str) -> std::io::Result<TaskHandle<()>> {
        crew::thread::spawn(name, move || self.run())
    }
}

fn with_queues() -> Result<usize, Box<dyn std::error::Error>> {
    let download_queue = Queue::new();
    let resize_queue = Queue::new();
    let upload_queue = Queue::new();
    let done_queue = Queue::new();
    let threads = [
        StoppableWorker::new(download, &download_queue, &resize_queue).start("download")?,
        StoppableWorker::new(resize, &resize_queue, &upload_queue).start("resize")?,
        StoppableWorker::new(upload, &upload_queue, &done_queue).start("upload")?,
    ];
    for i in 0..1000 {
        download_queue.put(Image(i))?;
    }
    download_queue.close();
    download_queue.join();
    resize_queue.close();
    resize_queue.join();
    upload_queue.close();
    upload_queue.join();
    for thread in threads {
        thread.result()?;
    }
    Ok(done_queue.len())
}

fn with_pipeline() -> Result<(), Box<dyn std::error::Error>> {
    let started = Instant::now();
    let mut run = Pipeline::from_iter((0..1000).map(Image))
        .map("download", 4, download)
        .map("resize", 2, resize)
        .map("upload", 4, upload)
        .capacity(16)
        .run()?;
    let mut finished = 0;
    for (expected, result) in (0..).zip(run.by_ref()) {
        let image = result?;
        assert_eq!(image.0, expected, "results come in input order");
        finished += 1;
    }
    let elapsed = started.elapsed();
    println!("{finished} items finished");
    for stage in run.stats() {
        println!(
            "{}: {} items, {} workers busy {:.3} ms in total, highest queue depth {}",
            stage.name,
            stage.items,
            stage.workers,
            stage.busy.as_secs_f64() * 1e3,
            stage.max_queue_depth
        );
    }
    println!("pipeline took {:.3} seconds", elapsed.as_secs_f64());
    Ok(())
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let finished = with_queues()?;
    println!("{finished} items finished");
    with_pipeline()
}
