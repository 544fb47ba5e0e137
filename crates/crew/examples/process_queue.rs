//! Seed 004's inter-process communication: one child writes to a Queue, another reads from
//! it; the parent waits for the writer and terminates the reader, whose loop never ends.

use std::time::Duration;

use crew::process::{spawn, Queue};

#[crew::task]
fn write(q: Queue<String>) {
    println!("Process to write: {}", std::process::id());
    for value in ["A", "B", "C"] {
        println!("Put {value} to queue...");
        q.put(value.to_owned()).expect("the queue is open");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[crew::task]
fn read(q: Queue<String>) {
    println!("Process to read: {}", std::process::id());
    loop {
        let value = q.get().expect("the queue is open");
        println!("Get {value} from queue.");
    }
}

fn main() {
    crew::init();
    // The parent creates the Queue and hands it to each child:
    let q = Queue::new().expect("create the queue");
    let pw = spawn(write, q.clone()).expect("start the writer");
    let pr = spawn(read, q.clone()).expect("start the reader");
    // Wait for the writer to finish:
    pw.join().expect("the writer succeeds");
    // Let the reader take the last item and print it, then stop its endless loop by force:
    while !q.is_empty().unwrap_or(true) {
        std::thread::sleep(Duration::from_millis(10));
    }
    std::thread::sleep(Duration::from_millis(100));
    pr.terminate();
    println!("reader ended: {:?}", pr.join().unwrap_err());
}
