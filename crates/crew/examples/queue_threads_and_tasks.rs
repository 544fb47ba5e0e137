//! Seed 000, "异步任务之间的数据交互": `asyncio.Queue` passes messages between producers and
//! consumers. A `crew::queue::Queue` does that between async tasks *and* threads at once:
//! here two blocking threads and two tokio tasks produce into one bounded queue, and a tokio
//! task and a thread consume from it.
//!
//! Prints:
//! ```text
//! consumed 400 messages, sum 79800
//! highest queue depth 4 (capacity 4)
//! ```

use crew::queue::Queue;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let queue = Queue::bounded(4);

    // Producers: two threads (put blocks while the queue is full) and two tasks (send waits
    // without blocking the runtime).
    let threads: Vec<_> = (0..2u64)
        .map(|p| {
            let queue = queue.clone();
            std::thread::spawn(move || {
                for i in 0..100 {
                    queue.put(p * 100 + i).expect("queue open");
                }
            })
        })
        .collect();
    let tasks: Vec<_> = (2..4u64)
        .map(|p| {
            let queue = queue.clone();
            runtime.spawn(async move {
                for i in 0..100 {
                    queue.send(p * 100 + i).await.expect("queue open");
                }
            })
        })
        .collect();

    // Consumers: a task (`await queue.get()`) and a thread (`for item in &queue`).
    let async_consumer = {
        let queue = queue.clone();
        runtime.spawn(async move {
            let (mut count, mut sum) = (0u64, 0u64);
            while let Ok(item) = queue.recv().await {
                count += 1;
                sum += item;
            }
            (count, sum)
        })
    };
    let thread_consumer = {
        let queue = queue.clone();
        std::thread::spawn(move || {
            queue
                .iter()
                .fold((0u64, 0u64), |(count, sum), item| (count + 1, sum + item))
        })
    };

    for thread in threads {
        thread.join().expect("producer thread");
    }
    runtime.block_on(async {
        for task in tasks {
            task.await.expect("producer task");
        }
    });
    queue.close(); // the consumers drain what is left, then stop

    let (count_a, sum_a) = runtime.block_on(async_consumer)?;
    let (count_b, sum_b) = thread_consumer.join().expect("consumer thread");
    println!(
        "consumed {} messages, sum {}",
        count_a + count_b,
        sum_a + sum_b
    );
    println!(
        "highest queue depth {} (capacity {})",
        queue.peak_len(),
        queue.capacity().unwrap_or(0)
    );
    Ok(())
}
