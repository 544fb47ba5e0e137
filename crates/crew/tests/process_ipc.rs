//! Child processes (`crew::process::spawn`), inter-process queues and pipes.
//! Run with `harness = false`: `main` calls `crew::init()`.

mod process_common;

use std::time::Duration;

use crew::process::{pipe, spawn, Connection, Queue, QueueError};
use crew::{TaskError, WorkerExit};
use process_common::{assert_no_children, eventually};

#[crew::task]
fn add((a, b): (i64, i64)) -> i64 {
    a + b
}

#[crew::task]
fn nap(ms: u64) -> u64 {
    std::thread::sleep(Duration::from_millis(ms));
    ms
}

#[crew::task]
fn fail(message: String) {
    panic!("{message}");
}

#[crew::task]
fn exit_with(code: i32) {
    std::process::exit(code);
}

#[crew::task]
fn write(q: Queue<String>) -> u32 {
    for value in ["A", "B", "C"] {
        q.put(value.to_owned()).unwrap();
    }
    std::process::id()
}

#[crew::task]
fn read_forever((q, out): (Queue<String>, Queue<String>)) {
    loop {
        let value = q.get().unwrap();
        out.put(value).unwrap();
    }
}

#[crew::task]
fn produce((q, n): (Queue<u64>, u64)) {
    for i in 0..n {
        q.put(i).unwrap();
    }
}

#[crew::task]
fn drain(q: Queue<u64>) -> Vec<u64> {
    let mut seen = Vec::new();
    loop {
        match q.get() {
            Ok(value) => seen.push(value),
            Err(QueueError::Closed) => return seen,
            Err(other) => panic!("{other}"),
        }
    }
}

#[crew::task]
fn ping_pong(conn: Connection<String>) -> usize {
    let mut count = 0;
    while let Ok(message) = conn.recv() {
        conn.send(format!("{message}!")).unwrap();
        count += 1;
    }
    count
}

fn spawn_join_and_status() {
    let p = spawn(add, (40, 2)).unwrap();
    assert!(p.pid() > 0);
    assert_eq!(p.join().unwrap(), 42);

    let p = spawn(fail, "child failed".to_owned()).unwrap();
    assert_eq!(
        p.join(),
        Err(TaskError::Panicked {
            message: "child failed".to_owned()
        })
    );

    let p = spawn(exit_with, 3).unwrap();
    match p.join() {
        Err(TaskError::WorkerDied { exit, .. }) => assert_eq!(exit, WorkerExit::Code(3)),
        other => panic!("expected WorkerDied, got {other:?}"),
    }
    assert_no_children();
}

fn join_timeout_terminate_kill() {
    let p = spawn(nap, 60_000).unwrap();
    assert!(p.is_alive());
    assert_eq!(p.exit_status(), None);
    let p = p.join_timeout(Duration::from_millis(50)).unwrap_err();
    p.terminate();
    eventually("terminated", || !p.is_alive());
    assert_eq!(p.exit_status(), Some(WorkerExit::Signal(libc::SIGTERM)));
    assert!(matches!(
        p.join(),
        Err(TaskError::WorkerDied {
            exit: WorkerExit::Signal(15),
            ..
        })
    ));

    let p = spawn(nap, 60_000).unwrap();
    p.kill();
    p.kill(); // idempotent
    let joined = p.join();
    assert!(
        matches!(
            joined,
            Err(TaskError::WorkerDied {
                exit: WorkerExit::Signal(9),
                ..
            })
        ),
        "{joined:?}"
    );

    let p = spawn(nap, 10).unwrap();
    let result = p.join_timeout(Duration::from_secs(30)).unwrap();
    assert_eq!(result.unwrap(), 10);
    assert_no_children();
}

fn seed_004_writer_and_reader() {
    let q = Queue::new().unwrap();
    let out = Queue::new().unwrap();
    let pw = spawn(write, q.clone()).unwrap();
    let pr = spawn(read_forever, (q.clone(), out.clone())).unwrap();
    let writer_pid = pw.join().unwrap();
    assert!(writer_pid > 0);
    let got: Vec<String> = (0..3)
        .map(|_| out.get_timeout(Duration::from_secs(30)).unwrap())
        .collect();
    assert_eq!(got, ["A", "B", "C"]);
    pr.terminate();
    assert!(matches!(
        pr.join(),
        Err(TaskError::WorkerDied {
            exit: WorkerExit::Signal(15),
            ..
        })
    ));
    assert_no_children();
}

fn queue_many_producers_close_and_drain() {
    let q: Queue<u64> = Queue::bounded(16).unwrap();
    let producers: Vec<_> = (0..3)
        .map(|_| spawn(produce, (q.clone(), 500)).unwrap())
        .collect();
    let consumer = spawn(drain, q.clone()).unwrap();
    for p in producers {
        p.join().unwrap();
    }
    q.close().unwrap();
    let mut seen = consumer.join().unwrap();
    seen.sort_unstable();
    let mut expected: Vec<u64> = (0..3).flat_map(|_| 0..500).collect();
    expected.sort_unstable();
    assert_eq!(seen, expected);
    assert_eq!(q.get(), Err(QueueError::Closed));
    assert!(q.put(1).is_err());
    assert_no_children();
}

fn queue_timeouts_locally() {
    let q: Queue<u64> = Queue::bounded(1).unwrap();
    assert_eq!(
        q.get_timeout(Duration::from_millis(20)),
        Err(QueueError::Timeout)
    );
    q.put(1).unwrap();
    let refused = q.put_timeout(2, Duration::from_millis(20)).unwrap_err();
    assert_eq!((refused.error, refused.item), (QueueError::Timeout, 2));
    assert_eq!(q.len().unwrap(), 1);
    assert_eq!(q.get().unwrap(), 1);
    assert!(q.is_empty().unwrap());
}

fn pipe_round_trips() {
    let (parent, child) = pipe::<String>().unwrap();
    let p = spawn(ping_pong, child).unwrap();
    for i in 0..100 {
        parent.send(format!("ping {i}")).unwrap();
        assert_eq!(parent.recv().unwrap(), format!("ping {i}!"));
    }
    parent.close().unwrap();
    assert_eq!(p.join().unwrap(), 100);
    assert_eq!(
        parent.recv_timeout(Duration::from_millis(10)),
        Err(QueueError::Timeout)
    );
    assert_no_children();
}

fn main() {
    crew::init();
    process_common::run(&[
        ("spawn_join_and_status", spawn_join_and_status),
        ("join_timeout_terminate_kill", join_timeout_terminate_kill),
        ("seed_004_writer_and_reader", seed_004_writer_and_reader),
        (
            "queue_many_producers_close_and_drain",
            queue_many_producers_close_and_drain,
        ),
        ("queue_timeouts_locally", queue_timeouts_locally),
        ("pipe_round_trips", pipe_round_trips),
    ]);
}
