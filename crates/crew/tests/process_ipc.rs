//! Child processes (`crew::process::spawn`), inter-process queues and pipes.
//! Run with `harness = false`: `main` calls `crew::init()`.

mod process_common;

use std::time::Duration;

use crew::process::{pipe, spawn, Connection, GetError, GetTimeoutError, PutTimeoutError, Queue};
use crew::{ExitStatus, TaskError};
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
            Err(GetError::Closed) => return seen,
            Err(other) => panic!("{other}"),
        }
    }
}

#[crew::task]
fn produce_forever(q: Queue<u64>) {
    for i in 0.. {
        q.put(i).unwrap();
    }
}

/// Waits for one item (blocking, no timeout) and returns it.
#[crew::task]
fn get_one(q: Queue<u64>) -> u64 {
    q.get().unwrap()
}

/// The remote side's timeouts: an empty queue times out a get, a full one a put (item back).
#[crew::task]
fn remote_timeouts(q: Queue<u64>) -> (bool, bool, u64) {
    let get = q.get_timeout(Duration::from_millis(50)) == Err(GetTimeoutError::Timeout);
    q.put(1).unwrap();
    let refused = q.put_timeout(2, Duration::from_millis(50)).unwrap_err();
    (get, refused.is_timeout(), refused.into_inner())
}

/// Creates a queue in this process with `n` items, hands it to the parent, and stays alive
/// (as the queue's owner) until it is killed.
#[crew::task]
fn own_queue((out, n): (Queue<Queue<u64>>, u64)) {
    let q = Queue::new().unwrap();
    for i in 0..n {
        q.put(i).unwrap();
    }
    out.put(q.clone()).unwrap();
    std::thread::sleep(Duration::from_secs(60));
    drop(q);
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
        Err(TaskError::WorkerDied { exit, .. }) => assert_eq!(exit, Some(ExitStatus::Code(3))),
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
    assert_eq!(p.exit_status(), Some(ExitStatus::Signal(libc::SIGTERM)));
    assert!(matches!(
        p.join(),
        Err(TaskError::WorkerDied {
            exit: Some(ExitStatus::Signal(15)),
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
                exit: Some(ExitStatus::Signal(9)),
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
            exit: Some(ExitStatus::Signal(15)),
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
    assert_eq!(q.get(), Err(GetError::Closed));
    assert!(q.put(1).is_err());
    assert_no_children();
}

fn queue_timeouts_locally() {
    let q: Queue<u64> = Queue::bounded(1).unwrap();
    assert_eq!(
        q.get_timeout(Duration::from_millis(20)),
        Err(GetTimeoutError::Timeout)
    );
    q.put(1).unwrap();
    let refused = q.put_timeout(2, Duration::from_millis(20)).unwrap_err();
    assert!(refused.is_timeout(), "{refused}");
    assert_eq!(refused.into_inner(), 2);
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
        Err(GetTimeoutError::Timeout)
    );
    assert_no_children();
}

fn queue_many_items_across_processes() {
    const PER_PRODUCER: u64 = 5_000;
    let q: Queue<u64> = Queue::bounded(4).unwrap();
    let producers: Vec<_> = (0..2)
        .map(|_| spawn(produce, (q.clone(), PER_PRODUCER)).unwrap())
        .collect();
    let consumers: Vec<_> = (0..2).map(|_| spawn(drain, q.clone()).unwrap()).collect();
    for p in producers {
        p.join().unwrap();
    }
    q.close().unwrap();
    let mut seen: Vec<u64> = consumers
        .into_iter()
        .flat_map(|c| c.join().unwrap())
        .collect();
    seen.sort_unstable();
    let mut expected: Vec<u64> = (0..2).flat_map(|_| 0..PER_PRODUCER).collect();
    expected.sort_unstable();
    assert_eq!(seen, expected, "every item arrives exactly once");
    assert_no_children();
}

fn queue_blocked_get_wakes_on_put_and_remote_timeouts() {
    let q: Queue<u64> = Queue::bounded(1).unwrap();
    let waiter = spawn(get_one, q.clone()).unwrap();
    // The child is blocked in get() (no timeout) until the item arrives.
    let waiter = waiter.join_timeout(Duration::from_millis(100)).unwrap_err();
    q.put(42).unwrap();
    assert_eq!(
        waiter
            .join_timeout(Duration::from_secs(30))
            .unwrap()
            .unwrap(),
        42
    );
    assert_eq!(
        spawn(remote_timeouts, q.clone()).unwrap().join().unwrap(),
        (true, true, 2)
    );
    assert_eq!(q.get().unwrap(), 1);
    assert_no_children();
}

fn queue_owner_killed_gives_disconnected() {
    let out: Queue<Queue<u64>> = Queue::new().unwrap();
    let owner = spawn(own_queue, (out.clone(), 1_000)).unwrap();
    let q = out.get_timeout(Duration::from_secs(30)).unwrap();
    for i in 0..10 {
        assert_eq!(q.get().unwrap(), i);
    }
    owner.kill();
    assert!(matches!(
        owner.join(),
        Err(TaskError::WorkerDied {
            exit: Some(ExitStatus::Signal(9)),
            ..
        })
    ));
    match q.get() {
        Err(error @ GetError::Disconnected(_)) => {
            assert!(
                error.to_string().contains("the queue is unreachable"),
                "{error}"
            );
        }
        other => panic!("expected Disconnected, got {other:?}"),
    }
    assert!(q.len().is_err());

    // A get blocked on an empty queue when its owner dies returns at once, not never.
    let owner = spawn(own_queue, (out.clone(), 0)).unwrap();
    let q = out.get_timeout(Duration::from_secs(30)).unwrap();
    let (sender, receiver) = std::sync::mpsc::channel();
    let blocked = std::thread::spawn(move || sender.send(q.get()).unwrap());
    std::thread::sleep(Duration::from_millis(100));
    owner.kill();
    let got = receiver
        .recv_timeout(Duration::from_secs(30))
        .expect("a get on a dead owner's queue returns");
    assert!(matches!(got, Err(GetError::Disconnected(_))), "{got:?}");
    blocked.join().unwrap();
    let _ = owner.join();
    assert_no_children();
}

fn queue_writer_killed_while_blocked_in_put() {
    let q: Queue<u64> = Queue::bounded(1).unwrap();
    let writer = spawn(produce_forever, q.clone()).unwrap();
    eventually("the queue fills", || q.len().unwrap() == 1);
    // Let the writer block in put(1) on the full queue, then kill it there.
    std::thread::sleep(Duration::from_millis(100));
    writer.kill();
    assert!(matches!(
        writer.join(),
        Err(TaskError::WorkerDied {
            exit: Some(ExitStatus::Signal(9)),
            ..
        })
    ));
    assert_eq!(q.get().unwrap(), 0);
    // The dead writer's pending put was dropped with it, not slipped in later.
    assert_eq!(
        q.get_timeout(Duration::from_millis(300)),
        Err(GetTimeoutError::Timeout)
    );
    // The queue still works.
    q.put(7).unwrap();
    assert_eq!(q.get().unwrap(), 7);
    let full = q.put_timeout(8, Duration::from_millis(1));
    assert!(full.is_ok());
    assert!(matches!(
        q.put_timeout(9, Duration::from_millis(10)),
        Err(PutTimeoutError::Timeout(9))
    ));
    assert_no_children();
}

/// Runs a shell that starts a child and waits, both for 30 s, writing both pids to `file`;
/// with `tied`, the group is tied to this process (`kill_on_parent_death`).
#[crew::task]
fn run_group((file, tied): (String, bool)) {
    let _ = crew::subprocess::Command::shell(
        "sleep 30 & echo $$ $! > \"$1.tmp\" && mv \"$1.tmp\" \"$1\"; wait",
    )
    .arg(file)
    .kill_on_parent_death(tied)
    .output();
}

/// A subprocess's group dies with a SIGKILLed parent when tied to it, and runs on otherwise.
fn subprocess_group_tied_to_a_killed_parent_dies_with_it() {
    let dir = tempfile::tempdir().unwrap();
    for tied in [true, false] {
        let file = dir.path().join(format!("pids-{tied}"));
        let p = spawn(run_group, (file.to_str().unwrap().to_owned(), tied)).unwrap();
        eventually("the group's pids", || file.exists());
        let pids: Vec<u32> = std::fs::read_to_string(&file)
            .unwrap()
            .split_whitespace()
            .map(|pid| pid.parse().unwrap())
            .collect();
        assert_eq!(pids.len(), 2);
        p.kill();
        assert!(p.join().is_err());
        if tied {
            eventually("the tied group gone with its parent", || {
                pids.iter().all(|&pid| process_common::is_dead(pid))
            });
        } else {
            std::thread::sleep(Duration::from_millis(300));
            assert!(
                pids.iter().all(|&pid| !process_common::is_dead(pid)),
                "an untied group runs on after its parent's death"
            );
            for pid in pids {
                let _ = rustix::process::kill_process(
                    rustix::process::Pid::from_raw(pid as i32).unwrap(),
                    rustix::process::Signal::KILL,
                );
            }
        }
    }
    // A tied child that ends normally (or is waited for) leaves neither its guard nor a zombie.
    for _ in 0..10 {
        let done = crew::subprocess::Command::shell("echo tied")
            .kill_on_parent_death(true)
            .output()
            .unwrap();
        assert_eq!(done.stdout_str(), "tied\n");
    }
    let mut child = crew::subprocess::Command::new("sleep")
        .arg("30")
        .kill_on_parent_death(true)
        .spawn()
        .unwrap();
    child.kill().unwrap();
    assert_eq!(child.wait().unwrap().signal(), Some(libc::SIGKILL));
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
        (
            "queue_many_items_across_processes",
            queue_many_items_across_processes,
        ),
        (
            "queue_blocked_get_wakes_on_put_and_remote_timeouts",
            queue_blocked_get_wakes_on_put_and_remote_timeouts,
        ),
        (
            "queue_owner_killed_gives_disconnected",
            queue_owner_killed_gives_disconnected,
        ),
        (
            "queue_writer_killed_while_blocked_in_put",
            queue_writer_killed_while_blocked_in_put,
        ),
        (
            "subprocess_group_tied_to_a_killed_parent_dies_with_it",
            subprocess_group_tied_to_a_killed_parent_dies_with_it,
        ),
    ]);
}
