//! Seed 000: `threading.Event` coordinates threads with a flag: `wait()` blocks until another
//! thread calls `set()`; `asyncio.Event` does the same for tasks. One `crew::sync::Event`
//! serves both.
//!
//! Prints (the worker lines in any order):
//! ```text
//! wait(timeout=0.1) returned False
//! worker 0 waiting for the event
//! ...
//! main thread: event.set()
//! worker 0 woke up: wait() returned True
//! ...
//! async task woke up: is_set() returned True
//! ```

use std::sync::Arc;
use std::time::Duration;

use crew::sync::Event;

fn py(value: bool) -> &'static str {
    if value {
        "True"
    } else {
        "False"
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let event = Arc::new(Event::new());
    println!(
        "wait(timeout=0.1) returned {}",
        py(event.wait_timeout(Duration::from_millis(100)))
    );

    let ready = Arc::new(std::sync::Barrier::new(4));
    let workers = (0..3)
        .map(|i| {
            let (event, ready) = (event.clone(), ready.clone());
            crew::thread::spawn(format!("worker-{i}"), move || {
                println!("worker {i} waiting for the event");
                ready.wait();
                event.wait();
                println!("worker {i} woke up: wait() returned True");
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    ready.wait();
    println!("main thread: event.set()");
    event.set();
    for worker in workers {
        worker.result()?;
    }

    // asyncio.Event: the same type, awaited by a task and set by a plain thread.
    let runtime = tokio::runtime::Runtime::new()?;
    let event = Arc::new(Event::new());
    let setter = {
        let event = event.clone();
        std::thread::spawn(move || event.set())
    };
    runtime.block_on(async {
        event.wait_async().await;
        println!(
            "async task woke up: is_set() returned {}",
            py(event.is_set())
        );
    });
    setter.join().expect("setter thread");
    Ok(())
}
