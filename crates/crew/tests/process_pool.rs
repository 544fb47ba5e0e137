//! The process pool: the Executor API across processes, and workers that crash, hang, leak,
//! get killed, or are fed garbage. Run with `harness = false`: `main` calls `crew::init()`.

mod process_common;
#[path = "support/tasks.rs"]
mod tasks;

use std::collections::HashSet;
use std::io::Write;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crew::process::Bytes;
use crew::task::TaskOptions;
use crew::{as_completed, wait, Executor, MapOptions, ProcessPool, ReturnWhen, SubmitError};
use crew::{ExitStatus, TaskError, WorkerId};
use process_common::{assert_no_children, children, eventually, is_dead};
use rustix::process::{kill_process, Pid, Signal};
use tasks::{fails_on_multiples_of_three, square};

fn pid_of(pid: u32) -> Pid {
    Pid::from_raw(pid as i32).expect("a worker pid is positive")
}

#[crew::task]
fn gcd((mut a, mut b): (u64, u64)) -> u64 {
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a
}

#[crew::task]
fn pid(_: ()) -> u32 {
    std::process::id()
}

#[crew::task]
fn sleep_ms(ms: u64) -> u64 {
    std::thread::sleep(Duration::from_millis(ms));
    ms
}

#[crew::task]
fn boom(message: String) -> u32 {
    panic!("{message}")
}

#[crew::task]
fn die(how: String) -> u32 {
    match how.as_str() {
        "abort" => std::process::abort(),
        "exit3" => std::process::exit(3),
        "segv" => {
            // std's SIGSEGV handler (stack-overflow detection) ignores a raised signal, so
            // restore the default action first.
            // SAFETY: setting the default action and raising a signal in our own process have
            // no memory-safety preconditions.
            unsafe {
                libc::signal(libc::SIGSEGV, libc::SIG_DFL);
                libc::raise(libc::SIGSEGV);
            }
            unreachable!("SIGSEGV kills the process")
        }
        "kill" => {
            let _ = kill_process(rustix::process::getpid(), Signal::KILL);
            unreachable!("SIGKILL kills the process")
        }
        _ => 0,
    }
}

#[crew::task]
fn allocate_mb(mb: usize) -> usize {
    let mut v = vec![1u8; mb << 20];
    v[mb] = 2;
    v.iter().map(|&b| b as usize).sum()
}

#[crew::task]
fn echo_bytes(data: Bytes) -> Bytes {
    data
}

#[crew::task]
fn open_fds(_: ()) -> Vec<(i32, String)> {
    let mut fds = Vec::new();
    for entry in std::fs::read_dir("/proc/self/fd").unwrap().flatten() {
        let fd: i32 = entry.file_name().to_str().unwrap().parse().unwrap();
        let target = std::fs::read_link(entry.path())
            .map(|p| p.display().to_string())
            .unwrap_or_default();
        fds.push((fd, target));
    }
    fds
}

#[crew::task]
fn write_garbage(_: ()) -> u32 {
    // The worker's IPC socket is descriptor 3: corrupt the stream the parent reads.
    // SAFETY: fd 3 is open for the worker's whole life; ManuallyDrop keeps us from closing it.
    let mut socket = std::mem::ManuallyDrop::new(unsafe {
        <std::fs::File as std::os::fd::FromRawFd>::from_raw_fd(3)
    });
    socket.write_all(&[0xff; 64]).unwrap();
    socket.flush().unwrap();
    std::thread::sleep(Duration::from_secs(5));
    0
}

static INITIALIZED: AtomicUsize = AtomicUsize::new(0);

#[crew::task]
fn init_worker(value: usize) {
    INITIALIZED.store(value, Ordering::SeqCst);
}

#[crew::task]
fn initialized(_: ()) -> usize {
    INITIALIZED.load(Ordering::SeqCst)
}

#[crew::task]
fn failing_init(_: ()) {
    panic!("cannot connect to the database");
}

fn not_registered(x: u64) -> u64 {
    x
}

const NUMBERS: [(u64, u64); 4] = [
    (1963309, 2265973),
    (2030677, 3814172),
    (1551645, 2229620),
    (2039045, 2020802),
];

fn submit_map_and_friends() {
    let pool = ProcessPool::new(2);
    assert_eq!(pool.submit(square, 7).unwrap().result().unwrap(), 49);
    let serial: Vec<u64> = NUMBERS.iter().copied().map(gcd).collect();
    let parallel: Vec<u64> = pool.map(gcd, NUMBERS).map(Result::unwrap).collect();
    assert_eq!(parallel, serial);
    let chunked: u64 = pool
        .map_with(square, 0..10_000, MapOptions::new().chunksize(500))
        .map(Result::unwrap)
        .sum();
    assert_eq!(chunked, (0..10_000u64).map(|x| x * x).sum::<u64>());
    let mut unordered: Vec<u64> = pool
        .imap_unordered(square, 0..100, 7)
        .map(Result::unwrap)
        .collect();
    unordered.sort_unstable();
    assert_eq!(unordered, (0..100).map(|x| x * x).collect::<Vec<_>>());

    let handles: Vec<_> = (0..20).map(|i| pool.submit(square, i).unwrap()).collect();
    let mut seen: Vec<u64> = as_completed(handles, None)
        .map(|h| h.unwrap().result().unwrap())
        .collect();
    seen.sort_unstable();
    assert_eq!(seen, (0..20).map(|x| x * x).collect::<Vec<_>>());

    let handles: Vec<_> = (0..5).map(|i| pool.submit(square, i).unwrap()).collect();
    let (done, not_done) = wait(handles, ReturnWhen::AllCompleted, None);
    assert_eq!((done.len(), not_done.len()), (5, 0));

    let called = Arc::new(AtomicUsize::new(0));
    let counter = called.clone();
    let handle = pool
        .apply_async(
            square,
            3,
            move |v| {
                counter.fetch_add(*v as usize, Ordering::SeqCst);
            },
            |_| {},
        )
        .unwrap();
    assert_eq!(handle.result().unwrap(), 9);
    assert_eq!(called.load(Ordering::SeqCst), 9);

    let awaited = futures::executor::block_on(pool.submit(square, 12).unwrap()).unwrap();
    assert_eq!(awaited, 144);
    assert!(pool.worker_pids().len() <= 2);
    drop(pool);
    assert_no_children();
}

/// A worker killed while idle (its slot parked on its socket, where a submitter may hand it the
/// next call directly) is replaced at once, without any task, and the next tasks succeed;
/// submitters racing each other for idle workers lose nothing.
fn idle_workers_are_replaced_and_handed_calls() {
    let pool = Arc::new(ProcessPool::new(2));
    assert_eq!(pool.submit(square, 3).unwrap().result().unwrap(), 9);
    let wait_for_pids = |count: usize| {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let pids = pool.worker_pids();
            if pids.len() == count || Instant::now() > deadline {
                return pids;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    };
    let before = wait_for_pids(2);
    assert_eq!(before.len(), 2, "{before:?}");
    kill_process(pid_of(before[0]), Signal::KILL).unwrap();
    // Replaced without a task being submitted.
    let deadline = Instant::now() + Duration::from_secs(10);
    let after = loop {
        let pids = pool.worker_pids();
        if pids.len() == 2 && !pids.contains(&before[0]) {
            break pids;
        }
        assert!(Instant::now() < deadline, "not replaced: {pids:?}");
        std::thread::sleep(Duration::from_millis(5));
    };
    assert!(after.contains(&before[1]), "{before:?} -> {after:?}");
    let submitters: Vec<_> = (0..4u64)
        .map(|t| {
            let pool = pool.clone();
            std::thread::spawn(move || {
                for i in 0..200 {
                    let x = t * 1000 + i;
                    assert_eq!(pool.submit(square, x).unwrap().result().unwrap(), x * x);
                }
            })
        })
        .collect();
    for submitter in submitters {
        submitter.join().unwrap();
    }
    drop(pool);
    assert_no_children();
}

/// A caller blocked on a call handed to an idle worker reads the reply itself (see "A waiting
/// caller leads" in the pool's note): one task at a time keeps the same worker (regression: the
/// slot, woken by a reply its caller had read since, took the worker for dead and killed it);
/// a caller that stops waiting leaves the reply to the slot; a cancel from another thread
/// reaches a caller that is reading; callbacks alone still get their results.
fn a_waiting_caller_reads_its_own_reply() {
    let pool = ProcessPool::new(1);
    let first = pool.submit(pid, ()).unwrap().result().unwrap();
    for i in 0..300 {
        // Varying pauses let the reply arrive before the caller starts reading, after, and
        // while the slot's thread wakes for it.
        let handle = pool.submit(pid, ()).unwrap();
        std::thread::sleep(Duration::from_micros(i % 40));
        assert_eq!(handle.result().unwrap(), first, "round trip {i}");
    }
    // Stops waiting before the reply: the slot reads it; the next wait gets it.
    let slow = pool.submit(sleep_ms, 300).unwrap();
    assert!(!slow.wait_timeout(Duration::from_millis(30)));
    assert_eq!(slow.result(), Ok(300));
    assert_eq!(pool.submit(pid, ()).unwrap().result().unwrap(), first);
    // Cancelled by another thread while this one reads.
    let hung = pool.submit(sleep_ms, 60_000).unwrap();
    std::thread::scope(|scope| {
        scope.spawn(|| {
            eventually("the task is running", || hung.running());
            std::thread::sleep(Duration::from_millis(50));
            assert!(hung.cancel());
        });
        hung.wait();
    });
    assert_eq!(hung.result(), Err(TaskError::Cancelled));
    eventually("the worker running it was killed", || is_dead(first));
    let second = pool.submit(pid, ()).unwrap().result().unwrap();
    assert_ne!(first, second, "a replacement serves the next task");
    // Nobody waits: the done-callback gets the result from the slot.
    let (sender, receiver) = std::sync::mpsc::channel();
    let handle = pool.submit(square, 12).unwrap();
    handle.add_done_callback(move |result| sender.send(result.clone()).unwrap());
    assert_eq!(
        receiver.recv_timeout(Duration::from_secs(10)).unwrap(),
        Ok(144)
    );
    drop(handle);
    assert_eq!(pool.submit(pid, ()).unwrap().result().unwrap(), second);
    drop(pool);
    assert_no_children();
}

/// Regression (issue 11): many callers at once on few idle workers, each blocking on its
/// result (so each reads its own reply, see "A waiting caller leads" in the pool's note), some
/// leaving theirs to the slot. A submitter that claimed a parked slot but was preempted before
/// it took the slot's lock handed its call to a later park of that slot, over another
/// caller's handed call: that call's completer was dropped (`Err(Shutdown)`) and the worker's
/// next reply did not match. Every result must come back right, from the same workers.
fn many_callers_on_idle_workers() {
    callers_on_workers(2, 3, 1500, |pool, caller, i, x| {
        let handle = pool.submit(square, x).unwrap();
        if i % 5 == caller % 5 {
            // Nobody blocks on this one until the slot has read its reply.
            let (sender, receiver) = std::sync::mpsc::channel();
            handle.add_done_callback(move |result| {
                let _ = sender.send(result.clone());
            });
            receiver
                .recv_timeout(Duration::from_secs(30))
                .expect("the callback ran")
        } else {
            handle.result()
        }
    });
}

/// More callers than workers, each blocking on every result: a caller that finished its call
/// on a claimed slot's worker passes the next queued call on (writes it to the worker, or
/// leaves it to the slot when it has a deadline), see `Inner::pass_queued`. Every result must
/// come back right, whichever thread read it, and no worker be taken for dead.
fn leaders_pass_queued_calls_on() {
    callers_on_workers(1, 4, 600, |pool, caller, i, x| {
        let handle = if i % 4 == caller % 4 {
            // A deadline: the slot must send it and read its reply.
            let options = TaskOptions::new().timeout(Duration::from_secs(30));
            pool.submit_with(square, x, options).unwrap()
        } else {
            pool.submit(square, x).unwrap()
        };
        handle.result()
    });
}

/// `callers` threads each make `round_trips` calls of `square` through `call(pool, caller, i,
/// x)` on a pool of `workers`: every result must be `x * x`, no worker be taken for dead, and
/// no child be left after the pool.
fn callers_on_workers(
    workers: usize,
    callers: u64,
    round_trips: u64,
    call: impl Fn(&ProcessPool, u64, u64, u64) -> Result<u64, TaskError> + Sync,
) {
    let pool = ProcessPool::new(workers);
    eventually("the workers started", || {
        pool.worker_pids().len() == workers
    });
    let sorted_pids = |pool: &ProcessPool| {
        let mut pids = pool.worker_pids();
        pids.sort_unstable();
        pids
    };
    let before = sorted_pids(&pool);
    std::thread::scope(|scope| {
        for caller in 0..callers {
            let (pool, call) = (&pool, &call);
            scope.spawn(move || {
                for i in 0..round_trips {
                    let x = caller * round_trips + i;
                    assert_eq!(
                        call(pool, caller, i, x),
                        Ok(x * x),
                        "caller {caller}, call {i}"
                    );
                }
            });
        }
    });
    assert_eq!(sorted_pids(&pool), before, "no worker was taken for dead");
    drop(pool);
    assert_no_children();
}

/// Regression: a slot that reads a reply opens its park before it completes the call, and the
/// call's done-callbacks run on its thread. A callback that submitted a queued job (a deadline)
/// and waited for it had the job rung to its own busy slot while the other worker slept: it
/// waited for good.
fn a_done_callback_can_wait_for_a_queued_job() {
    let pool = std::sync::Arc::new(ProcessPool::new(2));
    eventually("both workers started", || pool.worker_pids().len() == 2);
    for round in 0..20u64 {
        let (sender, receiver) = std::sync::mpsc::channel();
        let inner = pool.clone();
        let handle = pool.submit(sleep_ms, 20).unwrap();
        handle.add_done_callback(move |_| {
            let options = TaskOptions::new().timeout(Duration::from_secs(30));
            let queued = inner.submit_with(square, round, options).unwrap();
            let _ = sender.send(queued.result());
        });
        let result = receiver
            .recv_timeout(Duration::from_secs(20))
            .unwrap_or_else(|_| panic!("round {round}: the callback's job never ran"));
        assert_eq!(result, Ok(round * round));
        assert_eq!(handle.result(), Ok(20));
    }
}

/// Regression: after a failed chunk, an empty window ended the iterator although input
/// remained (3 results of 9 here), in input and in completion order.
fn map_goes_on_after_a_failed_chunk() {
    let pool = ProcessPool::new(2);
    let options = MapOptions::new().window(1);
    let ordered: Vec<_> = pool
        .map_with(fails_on_multiples_of_three, 1..=9, options)
        .collect();
    assert_eq!(ordered.len(), 9);
    for (item, result) in (1..=9).zip(&ordered) {
        if item % 3 == 0 {
            assert!(
                matches!(result, Err(TaskError::Panicked { message }) if message.contains("multiple of three")),
                "item {item}: {result:?}"
            );
        } else {
            assert_eq!(result, &Ok(item));
        }
    }
    let unordered: Vec<_> = pool
        .map_with(fails_on_multiples_of_three, 1..=9, options.unordered())
        .collect();
    assert_eq!(unordered.len(), 9);
    let mut values: Vec<u64> = unordered.iter().filter_map(|r| r.clone().ok()).collect();
    values.sort_unstable();
    assert_eq!(values, [1, 2, 4, 5, 7, 8]);
}

fn thread_pool_accepts_tasks_too() {
    let pool = crew::ThreadPool::new(2);
    let results: Vec<u64> = pool.map(gcd, NUMBERS).map(Result::unwrap).collect();
    assert_eq!(results, NUMBERS.map(gcd));
}

fn unregistered_function_is_unsupported() {
    let pool = ProcessPool::new(1);
    let error = pool.submit(not_registered, 1).unwrap_err();
    assert!(
        matches!(&error, SubmitError::Unsupported { message } if message.contains("#[crew::task]"))
    );
    assert!(crew::process::spawn(not_registered, 1).is_err());
}

fn panic_keeps_the_worker() {
    let pool = ProcessPool::new(1);
    let before = pool.submit(pid, ()).unwrap().result().unwrap();
    let error = pool
        .submit(boom, "bad input".to_owned())
        .unwrap()
        .result()
        .unwrap_err();
    assert_eq!(
        error,
        TaskError::Panicked {
            message: "bad input".to_owned()
        }
    );
    assert_eq!(pool.submit(pid, ()).unwrap().result().unwrap(), before);
}

fn dying_workers_fail_only_their_task() {
    let pool = ProcessPool::new(2);
    for (how, expected) in [
        ("abort", ExitStatus::Signal(libc::SIGABRT)),
        ("exit3", ExitStatus::Code(3)),
        ("segv", ExitStatus::Signal(libc::SIGSEGV)),
        ("kill", ExitStatus::Signal(libc::SIGKILL)),
    ] {
        let others: Vec<_> = (0..20).map(|i| pool.submit(square, i).unwrap()).collect();
        let dying = pool.submit(die, how.to_owned()).unwrap();
        let more: Vec<_> = (20..40).map(|i| pool.submit(square, i).unwrap()).collect();
        match dying.result() {
            Err(TaskError::WorkerDied { exit, worker }) => {
                assert_eq!(exit, Some(expected), "{how}");
                assert!(worker.pid() > 0);
                assert_eq!(worker.node(), None);
            }
            other => panic!("{how}: expected WorkerDied, got {other:?}"),
        }
        for (i, handle) in others.into_iter().chain(more).enumerate() {
            assert_eq!(handle.result(), Ok((i * i) as u64), "{how} task {i}");
        }
    }
    assert_eq!(pool.submit(square, 5).unwrap().result().unwrap(), 25);
    drop(pool);
    assert_no_children();
}

fn timeout_kills_and_replaces() {
    let pool = ProcessPool::new(1);
    let first = pool.submit(pid, ()).unwrap().result().unwrap();
    let hung = pool
        .submit_with(
            sleep_ms,
            60_000,
            TaskOptions::new().timeout(Duration::from_millis(200)),
        )
        .unwrap();
    let after = pool.submit(square, 9).unwrap();
    assert_eq!(
        hung.result(),
        Err(TaskError::DeadlineExceeded {
            worker: Some(WorkerId::local(first))
        })
    );
    assert_eq!(after.result().unwrap(), 81);
    let second = pool.submit(pid, ()).unwrap().result().unwrap();
    assert_ne!(first, second, "the hung worker was replaced");
    assert!(is_dead(first));
    drop(pool);

    let pool = ProcessPool::builder()
        .max_workers(2)
        .task_timeout(Duration::from_millis(300))
        .build()
        .unwrap();
    let fast = pool.submit(sleep_ms, 1).unwrap();
    let slow = pool.submit(sleep_ms, 60_000).unwrap();
    assert_eq!(fast.result().unwrap(), 1);
    assert!(
        matches!(
            slow.result(),
            Err(TaskError::DeadlineExceeded { worker: Some(_) })
        ),
        "the pool's task_timeout is every task's default deadline"
    );
    drop(pool);
    assert_no_children();
}

fn memory_limit_kills_the_hog() {
    let pool = ProcessPool::builder()
        .max_workers(1)
        .memory_limit(256 << 20)
        .build()
        .unwrap();
    assert_eq!(
        pool.submit(allocate_mb, 8).unwrap().result().unwrap(),
        (8 << 20) + 1
    );
    match pool.submit(allocate_mb, 1024).unwrap().result() {
        Err(TaskError::WorkerDied { exit, .. }) => {
            assert_eq!(
                exit,
                Some(ExitStatus::Signal(libc::SIGABRT)),
                "allocation failure aborts"
            )
        }
        other => panic!("expected WorkerDied, got {other:?}"),
    }
    assert_eq!(pool.submit(square, 4).unwrap().result().unwrap(), 16);
}

fn random_kills_lose_nothing_else() {
    let pool = Arc::new(ProcessPool::new(2));
    let stop = Arc::new(AtomicBool::new(false));
    let kills = Arc::new(AtomicUsize::new(0));
    let killer = {
        let (pool, stop, kills) = (pool.clone(), stop.clone(), kills.clone());
        std::thread::spawn(move || {
            let mut seed = 0x9e37_79b9_u32;
            while !stop.load(Ordering::SeqCst) {
                seed ^= seed << 13;
                seed ^= seed >> 17;
                seed ^= seed << 5;
                std::thread::sleep(Duration::from_millis(2 + u64::from(seed % 8)));
                let pids = pool.worker_pids();
                if let Some(&victim) = pids.get(seed as usize % pids.len().max(1)) {
                    if kill_process(pid_of(victim), Signal::KILL).is_ok() {
                        kills.fetch_add(1, Ordering::SeqCst);
                        // SIGKILL is asynchronous: let it land before the next round (and
                        // before the final check below).
                        eventually("victim dead", || is_dead(victim));
                    }
                }
            }
        })
    };
    let handles: Vec<_> = (0..1000u64)
        .map(|i| pool.submit(sleep_square, i).unwrap())
        .collect();
    let mut died = 0;
    for (i, handle) in handles.into_iter().enumerate() {
        match handle.result() {
            Ok(value) => assert_eq!(value, (i * i) as u64),
            Err(TaskError::WorkerDied { exit, .. }) => {
                assert_eq!(exit, Some(ExitStatus::Signal(libc::SIGKILL)));
                died += 1;
            }
            Err(other) => panic!("task {i}: unexpected {other}"),
        }
    }
    stop.store(true, Ordering::SeqCst);
    killer.join().unwrap();
    // A killed process shows as a zombie a moment before its last thread has closed its
    // descriptors; give the last victim that moment, so that its slot sees the hang-up before
    // the next dispatch (a kill racing a dispatch fails that task, as it should).
    std::thread::sleep(Duration::from_millis(100));
    let kills = kills.load(Ordering::SeqCst);
    assert!(died <= kills, "{died} tasks failed but only {kills} kills");
    println!(
        "    {kills} kills, {died} tasks lost, {} completed",
        1000 - died
    );
    let results: Vec<u64> = pool.map(square, 0..50).map(Result::unwrap).collect();
    assert_eq!(results, (0..50).map(|x| x * x).collect::<Vec<_>>());
    drop(pool);
    assert_no_children();
}

#[crew::task]
fn sleep_square(x: u64) -> u64 {
    std::thread::sleep(Duration::from_micros(300));
    x * x
}

#[crew::task]
fn short(x: u64) -> u64 {
    std::thread::sleep(Duration::from_micros(100));
    x + 1
}

/// Kills the pool's live workers every ~5 ms, and every other worker that is starting (a child
/// of this process, which only this pool has, that is not yet among `worker_pids`): a worker
/// killed before its handshake is just replaced, and a task that never reached a worker goes
/// to the next one.
fn workers_killed_while_starting_fail_no_unsent_task() {
    let pool = Arc::new(ProcessPool::new(2));
    let stop = Arc::new(AtomicBool::new(false));
    let kills = Arc::new(AtomicUsize::new(0));
    let killer = {
        let (pool, stop, kills) = (pool.clone(), stop.clone(), kills.clone());
        std::thread::spawn(move || {
            let mut seen = HashSet::new();
            let mut round = 0u32;
            while !stop.load(Ordering::SeqCst) {
                std::thread::sleep(Duration::from_millis(1));
                round += 1;
                let live = pool.worker_pids();
                let mut victims = if round % 5 == 0 {
                    live.clone()
                } else {
                    Vec::new()
                };
                for (pid, zombie) in children() {
                    if !zombie && !live.contains(&pid) && seen.insert(pid) && seen.len() % 2 == 0 {
                        victims.push(pid);
                    }
                }
                for victim in victims {
                    if kill_process(pid_of(victim), Signal::KILL).is_ok() {
                        kills.fetch_add(1, Ordering::SeqCst);
                    }
                }
            }
        })
    };
    let handles: Vec<_> = (0..2000u64)
        .map(|i| pool.submit(short, i).unwrap())
        .collect();
    let mut died = 0;
    for (i, handle) in handles.into_iter().enumerate() {
        match handle.result() {
            Ok(value) => assert_eq!(value, i as u64 + 1),
            Err(TaskError::WorkerDied { .. }) => died += 1,
            Err(other) => panic!("task {i}: unexpected {other}"),
        }
    }
    stop.store(true, Ordering::SeqCst);
    killer.join().unwrap();
    let kills = kills.load(Ordering::SeqCst);
    assert!(kills > 0, "the killer never killed");
    assert!(died <= kills, "{died} tasks failed but only {kills} kills");
    println!(
        "    {kills} kills, {died} tasks lost, {} completed",
        2000 - died
    );
    std::thread::sleep(Duration::from_millis(100));
    let results: Vec<u64> = pool.map(square, 0..50).map(Result::unwrap).collect();
    assert_eq!(results, (0..50).map(|x| x * x).collect::<Vec<_>>());
    drop(pool);
    assert_no_children();
}

/// A worker program that exits without a handshake (it never calls `crew::init()`) gets the
/// hint at once; one that a signal kills at every start is tried a bounded number of times and
/// named for what it is, without the hint.
fn start_failures_are_told_apart() {
    let never_serves = ProcessPool::builder()
        .max_workers(1)
        .worker_program("/bin/true")
        .build()
        .unwrap();
    match never_serves.submit(square, 2).unwrap().result() {
        Err(TaskError::Transport { message }) => {
            assert!(message.contains("crew::init()"), "{message}");
            assert!(message.contains("exit code 0"), "{message}");
        }
        other => panic!("expected Transport, got {other:?}"),
    }
    drop(never_serves);
    let script = std::env::temp_dir().join(format!("crew-killed-at-start-{}", std::process::id()));
    std::fs::write(&script, "#!/bin/sh\nkill -KILL $$\n").unwrap();
    std::fs::set_permissions(&script, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let always_killed = ProcessPool::builder()
        .max_workers(1)
        .worker_program(&script)
        .build()
        .unwrap();
    match always_killed.submit(square, 2).unwrap().result() {
        Err(TaskError::Transport { message }) => {
            assert!(message.contains("in a row were killed"), "{message}");
            assert!(message.contains("SIGKILL"), "{message}");
            assert!(!message.contains("crew::init()"), "{message}");
        }
        other => panic!("expected Transport, got {other:?}"),
    }
    drop(always_killed);
    std::fs::remove_file(&script).unwrap();
    assert_no_children();
}

/// The queue bound of the process pool: `try_submit` reports `Full`, `submit` waits.
fn queue_bound_reports_full() {
    let pool = Arc::new(
        ProcessPool::builder()
            .max_workers(1)
            .queue_bound(1)
            .build()
            .unwrap(),
    );
    // Warm the worker, then occupy it and fill the one queue place.
    assert_eq!(pool.submit(square, 3).unwrap().result().unwrap(), 9);
    let running = pool.submit(sleep_ms, 400).unwrap();
    eventually("the first task left the queue", || pool.queued() == 0);
    let queued = pool.submit(sleep_ms, 1).unwrap();
    assert_eq!(pool.queued(), 1);
    assert_eq!(pool.try_submit(square, 2).unwrap_err(), SubmitError::Full);
    // A blocking submit waits for the place, then runs.
    let submitted = Arc::new(AtomicBool::new(false));
    let blocked = {
        let (pool, submitted) = (pool.clone(), submitted.clone());
        std::thread::spawn(move || {
            let handle = pool.submit(square, 5).unwrap();
            submitted.store(true, Ordering::SeqCst);
            handle.result().unwrap()
        })
    };
    std::thread::sleep(Duration::from_millis(100));
    assert!(
        !submitted.load(Ordering::SeqCst),
        "submit returned while the queue was full"
    );
    assert_eq!(running.result().unwrap(), 400);
    assert_eq!(queued.result().unwrap(), 1);
    assert_eq!(blocked.join().unwrap(), 25);
    assert_eq!(pool.try_submit(square, 2).unwrap().result().unwrap(), 4);
}

#[crew::task]
fn hanging_init(_: ()) {
    loop {
        std::thread::sleep(Duration::from_secs(3600));
    }
}

/// An initializer that never returns breaks the pool once its timeout passes.
fn initializer_timeout_breaks_the_pool() {
    let pool = ProcessPool::builder()
        .max_workers(1)
        .initializer(hanging_init, ())
        .initializer_timeout(Duration::from_millis(300))
        .build()
        .unwrap();
    let error = pool.submit(square, 2).unwrap().result().unwrap_err();
    assert!(
        matches!(&error, TaskError::InitializerFailed { message } if message.contains("300ms") && message.contains("initializer_timeout")),
        "{error:?}"
    );
    match pool.submit(square, 2) {
        Err(SubmitError::Broken { message }) => assert!(message.contains("300ms"), "{message}"),
        other => panic!("expected Broken, got {other:?}"),
    }
    drop(pool);
    assert_no_children();
}

fn idle_worker_killed_is_replaced_quietly() {
    let pool = ProcessPool::new(1);
    for _ in 0..3 {
        let victim = pool.submit(pid, ()).unwrap().result().unwrap();
        kill_process(pid_of(victim), Signal::KILL).unwrap();
        eventually("victim dead", || is_dead(victim));
        let next = pool.submit(pid, ()).unwrap().result().unwrap();
        assert_ne!(next, victim);
    }
}

#[crew::task]
fn nap_pid(ms: u64) -> u32 {
    std::thread::sleep(Duration::from_millis(ms));
    std::process::id()
}

fn long_tasks_spread_over_workers() {
    // Pipelining must not let one worker hoard long tasks while another idles.
    let pool = ProcessPool::new(2);
    let handles: Vec<_> = (0..6).map(|_| pool.submit(nap_pid, 150).unwrap()).collect();
    let pids: Vec<u32> = handles.into_iter().map(|h| h.result().unwrap()).collect();
    let distinct: HashSet<u32> = pids.iter().copied().collect();
    assert_eq!(distinct.len(), 2, "{pids:?}");
    for pid in distinct {
        let ran = pids.iter().filter(|&&p| p == pid).count();
        assert!(ran >= 2, "worker {pid} ran {ran} of 6: {pids:?}");
    }
}

/// Calls queued behind a long one: none waits for it while the other worker is free, even on
/// a pool warmed up on tiny tasks (a slot pipelined calls behind a long one whenever the queue
/// was long, and those waited the long call out).
fn no_call_waits_behind_a_long_one() {
    let pool = ProcessPool::new(2);
    assert_eq!(pool.map(short, 0..100).count(), 100);
    // Both workers busy, so that what follows is queued, long call first.
    let gates: Vec<_> = (0..2)
        .map(|_| pool.submit(sleep_ms, 100).unwrap())
        .collect();
    let long = pool.submit(sleep_ms, 1500).unwrap();
    let started = Instant::now();
    let shorts: Vec<_> = (0..9).map(|_| pool.submit(sleep_ms, 20).unwrap()).collect();
    for handle in shorts {
        handle.result().unwrap();
    }
    let shorts_done = started.elapsed();
    assert!(
        !long.done(),
        "a short call waited for the long one ({shorts_done:?})"
    );
    assert_eq!(long.result().unwrap(), 1500);
    for gate in gates {
        gate.result().unwrap();
    }
}

fn max_tasks_per_child_recycles() {
    let pool = ProcessPool::builder()
        .max_workers(1)
        .max_tasks_per_child(3)
        .build()
        .unwrap();
    let pids: Vec<u32> = (0..9)
        .map(|_| pool.submit(pid, ()).unwrap().result().unwrap())
        .collect();
    let distinct: HashSet<u32> = pids.iter().copied().collect();
    assert_eq!(distinct.len(), 3, "{pids:?}");
    assert_eq!(pids[0], pids[2]);
    assert_ne!(pids[2], pids[3]);
    drop(pool);
    assert_no_children();
}

fn initializer_runs_in_each_worker() {
    let pool = ProcessPool::builder()
        .max_workers(2)
        .initializer(init_worker, 42)
        .max_tasks_per_child(2)
        .build()
        .unwrap();
    for _ in 0..6 {
        assert_eq!(pool.submit(initialized, ()).unwrap().result().unwrap(), 42);
    }
    let broken = ProcessPool::builder()
        .max_workers(1)
        .initializer(failing_init, ())
        .build()
        .unwrap();
    let error = broken.submit(square, 2).unwrap().result().unwrap_err();
    assert!(
        matches!(&error, TaskError::InitializerFailed { message } if message.contains("database")),
        "{error:?}"
    );
    eventually("submit reports Broken", || {
        matches!(broken.submit(square, 2), Err(SubmitError::Broken { .. }))
    });
    assert!(ProcessPool::builder()
        .initializer(|_: ()| {}, ())
        .build()
        .is_err());
}

fn shutdown_drains_or_cancels() {
    let pool = ProcessPool::new(1);
    let handles: Vec<_> = (0..5).map(|_| pool.submit(sleep_ms, 50).unwrap()).collect();
    pool.shutdown(true, false);
    for handle in handles {
        assert_eq!(handle.result().unwrap(), 50);
    }
    assert_eq!(pool.submit(square, 1).unwrap_err(), SubmitError::Shutdown);
    assert_no_children();

    let pool = ProcessPool::new(1);
    let first = pool.submit(sleep_ms, 300).unwrap();
    eventually("first task running", || first.running());
    let queued: Vec<_> = (0..5)
        .map(|_| pool.submit(sleep_ms, 300).unwrap())
        .collect();
    pool.shutdown(true, true);
    assert_eq!(first.result().unwrap(), 300);
    for handle in queued {
        assert_eq!(handle.result(), Err(TaskError::Cancelled));
    }
    assert_no_children();

    let pool = ProcessPool::new(1);
    let first = pool.submit(sleep_ms, 200).unwrap();
    let second = pool.submit(sleep_ms, 200).unwrap();
    assert!(second.cancel());
    assert_eq!(first.result().unwrap(), 200);
    assert_eq!(second.result(), Err(TaskError::Cancelled));
}

fn cancel_reaches_a_running_task() {
    let pool = ProcessPool::new(1);
    let first = pool.submit(pid, ()).unwrap().result().unwrap();
    let hung = pool.submit(sleep_ms, 60_000).unwrap();
    eventually("the task is running", || hung.running());
    assert!(hung.cancel(), "a process pool can stop a running task");
    assert!(hung.cancelled());
    assert_eq!(hung.result(), Err(TaskError::Cancelled));
    eventually("the worker running it was killed", || is_dead(first));
    let second = pool.submit(pid, ()).unwrap().result().unwrap();
    assert_ne!(first, second, "a replacement serves the next task");
    // Pipelined calls: cancel one queued behind others; the others are unharmed.
    let handles: Vec<_> = (0..200).map(|i| pool.submit(square, i).unwrap()).collect();
    assert!(handles[150].cancel() || handles[150].done());
    for (i, handle) in handles.into_iter().enumerate() {
        match handle.result() {
            Ok(value) => assert_eq!(value, (i * i) as u64),
            Err(TaskError::Cancelled) => assert_eq!(i, 150),
            other => panic!("task {i}: {other:?}"),
        }
    }
    drop(pool);
    assert_no_children();
}

/// Cancels racing the slot: calls cancelled while queued, pipelined or running, on two workers.
/// Every call not cancelled still returns its own result (a worker killed for a cancel never
/// fails an innocent call), and nothing leaks.
fn cancel_storm_loses_nothing_else() {
    let pool = Arc::new(ProcessPool::new(2));
    for round in 0..5u64 {
        let handles: Vec<_> = (0..200u64)
            .map(|i| pool.submit(sleep_square, i + round).unwrap())
            .collect();
        let handles = Arc::new(handles);
        let canceller = {
            let handles = handles.clone();
            std::thread::spawn(move || {
                let mut cancelled = HashSet::new();
                for i in (0..200).step_by(7) {
                    std::thread::sleep(Duration::from_micros(300));
                    if handles[i].cancel() {
                        cancelled.insert(i);
                    }
                }
                cancelled
            })
        };
        let cancelled = canceller.join().unwrap();
        let handles = Arc::try_unwrap(handles).unwrap();
        for (i, handle) in handles.into_iter().enumerate() {
            let x = i as u64 + round;
            match handle.result() {
                Ok(value) => {
                    assert!(!cancelled.contains(&i), "round {round}: {i} was cancelled");
                    assert_eq!(value, x * x, "round {round} task {i}");
                }
                Err(TaskError::Cancelled) => {
                    assert!(cancelled.contains(&i), "round {round}: {i} not cancelled")
                }
                other => panic!("round {round} task {i}: {other:?}"),
            }
        }
    }
    drop(Arc::try_unwrap(pool).unwrap());
    assert_no_children();
}

fn deadline_before_start_never_runs() {
    let pool = ProcessPool::new(1);
    let busy = pool.submit(sleep_ms, 400).unwrap();
    let late = pool
        .submit_with(
            pid,
            (),
            TaskOptions::new().timeout(Duration::from_millis(50)),
        )
        .unwrap();
    assert_eq!(
        late.result(),
        Err(TaskError::DeadlineExceeded { worker: None })
    );
    assert_eq!(busy.result().unwrap(), 400);
    // map with a per-task timeout: every item of an expired chunk says so.
    let results: Vec<_> = pool
        .map_with(
            sleep_ms,
            [1, 60_000],
            MapOptions::new().task_options(TaskOptions::new().timeout(Duration::from_millis(300))),
        )
        .collect();
    assert_eq!(results[0], Ok(1));
    assert!(
        matches!(results[1], Err(TaskError::DeadlineExceeded { .. })),
        "{:?}",
        results[1]
    );
    drop(pool);
    assert_no_children();
}

/// Regression: `shutdown(true, _)` or dropping the pool from a done-callback (which runs on a
/// slot thread) joined that very thread: std panicked ("Resource deadlock avoided") and the
/// other slots were never joined.
fn shutdown_or_drop_inside_a_callback() {
    for drop_it in [false, true] {
        let pool = Arc::new(parking_lot::Mutex::new(Some(ProcessPool::new(2))));
        let finished = Arc::new(AtomicBool::new(false));
        let handle = {
            let guard = pool.lock();
            let pool_ref = guard.as_ref().unwrap();
            // Keep the other slot busy so there is another thread to join.
            let _other = pool_ref.submit(sleep_ms, 100).unwrap();
            pool_ref.submit(square, 3).unwrap()
        };
        let (in_callback, done) = (pool.clone(), finished.clone());
        handle.add_done_callback(move |_| {
            if drop_it {
                let taken = in_callback.lock().take();
                drop(taken);
            } else {
                in_callback.lock().as_ref().unwrap().shutdown(true, false);
            }
            done.store(true, Ordering::SeqCst);
        });
        eventually("the callback returned", || finished.load(Ordering::SeqCst));
        assert_eq!(handle.result().unwrap(), 9);
        drop(pool.lock().take());
        eventually("every worker exited", || children().is_empty());
    }
}

fn large_payloads() {
    let pool = ProcessPool::new(1);
    let mut data = vec![7u8; 100 << 20];
    for i in (0..data.len()).step_by(4093) {
        data[i] = (i % 251) as u8;
    }
    let back = pool
        .submit(echo_bytes, Bytes(data.clone()))
        .unwrap()
        .result()
        .unwrap();
    assert!(back.0 == data, "100 MB came back intact");
}

fn malformed_frame_fails_that_task_only() {
    let pool = ProcessPool::new(1);
    let error = pool
        .submit(write_garbage, ())
        .unwrap()
        .result()
        .unwrap_err();
    assert!(
        matches!(&error, TaskError::Transport { message } if message.contains("malformed")),
        "{error:?}"
    );
    assert_eq!(pool.submit(square, 3).unwrap().result().unwrap(), 9);
    drop(pool);
    assert_no_children();
}

fn no_inherited_descriptors() {
    // A descriptor without CLOEXEC in the parent: fork+exec would leak it without crew's care.
    let file = tempfile::tempfile().unwrap();
    let leaky = rustix::io::dup(&file).unwrap();
    let pool = ProcessPool::new(1);
    let fds = pool.submit(open_fds, ()).unwrap().result().unwrap();
    drop(leaky);
    for (fd, target) in &fds {
        if *fd > 2 {
            assert!(
                target.starts_with("socket:") || target.contains("/fd"),
                "worker inherited fd {fd} -> {target}: {fds:?}"
            );
        }
    }
    assert!(fds.iter().any(|(fd, _)| *fd == 3), "IPC socket is fd 3");
}

fn workers_die_with_their_parent() {
    // A helper copy of this test binary plays the parent: it starts a pool, prints its worker
    // pids, and waits forever with tasks running; we SIGKILL it.
    let mut helper = std::process::Command::new(std::env::current_exe().unwrap())
        .env("CREW_TEST_ROLE", "parent")
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(helper.stdout.take().unwrap()),
        &mut line,
    )
    .unwrap();
    let pids: Vec<u32> = line
        .split_whitespace()
        .map(|p| p.parse().unwrap())
        .collect();
    assert_eq!(pids.len(), 2, "helper said {line:?}");
    helper.kill().unwrap();
    helper.wait().unwrap();
    eventually("orphaned workers exit", || {
        pids.iter().all(|&pid| is_dead(pid))
    });
    assert!(children().is_empty());
}

fn helper_parent() -> ! {
    let pool = ProcessPool::new(2);
    let busy: Vec<_> = (0..2)
        .map(|_| pool.submit(sleep_ms, 600_000).unwrap())
        .collect();
    eventually("helper workers started", || pool.worker_pids().len() == 2);
    let pids = pool.worker_pids();
    println!("{} {}", pids[0], pids[1]);
    std::io::stdout().flush().unwrap();
    drop(busy);
    loop {
        std::thread::sleep(Duration::from_secs(60));
    }
}

/// A process's user and system CPU time, in clock ticks (`/proc/PID/stat`).
fn cpu_ticks(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).expect("the worker is alive");
    // After the command's closing parenthesis: state is field 3, utime 14 and stime 15.
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .expect("a stat line")
        .1
        .split_whitespace()
        .collect();
    fields[11].parse::<u64>().expect("utime") + fields[12].parse::<u64>().expect("stime")
}

/// Workers spin for their next call only while that catches (`sys::spin`): after a burst of
/// one-at-a-time calls, an idle pool's workers sleep and use no CPU.
fn idle_workers_use_no_cpu() {
    let pool = ProcessPool::new(2);
    for i in 0..2000 {
        assert_eq!(pool.submit(square, i).unwrap().result().unwrap(), i * i);
    }
    let pids = pool.worker_pids();
    assert_eq!(pids.len(), 2);
    let before: Vec<u64> = pids.iter().map(|&pid| cpu_ticks(pid)).collect();
    std::thread::sleep(Duration::from_millis(500));
    for (pid, before) in pids.iter().zip(before) {
        // A spinning worker would use the whole 50 ticks; allow a few for the scheduler's
        // rounding and the last spin.
        let used = cpu_ticks(*pid) - before;
        assert!(
            used <= 3,
            "worker {pid} used {used} ticks of CPU while idle"
        );
    }
}

fn main() {
    crew::init();
    if std::env::var_os("CREW_TEST_ROLE").is_some() {
        helper_parent();
    }
    // Rust programs ignore SIGPIPE, but not every program does: run with the default action,
    // so that any write to a dead worker that raised SIGPIPE would kill this test binary.
    // SAFETY: setting a signal's disposition to its default has no memory-safety preconditions.
    unsafe { libc::signal(libc::SIGPIPE, libc::SIG_DFL) };
    process_common::run(&[
        ("submit_map_and_friends", submit_map_and_friends),
        ("idle_workers_use_no_cpu", idle_workers_use_no_cpu),
        (
            "a_done_callback_can_wait_for_a_queued_job",
            a_done_callback_can_wait_for_a_queued_job,
        ),
        (
            "map_goes_on_after_a_failed_chunk",
            map_goes_on_after_a_failed_chunk,
        ),
        (
            "thread_pool_accepts_tasks_too",
            thread_pool_accepts_tasks_too,
        ),
        (
            "unregistered_function_is_unsupported",
            unregistered_function_is_unsupported,
        ),
        ("panic_keeps_the_worker", panic_keeps_the_worker),
        (
            "a_waiting_caller_reads_its_own_reply",
            a_waiting_caller_reads_its_own_reply,
        ),
        ("many_callers_on_idle_workers", many_callers_on_idle_workers),
        ("leaders_pass_queued_calls_on", leaders_pass_queued_calls_on),
        (
            "idle_workers_are_replaced_and_handed_calls",
            idle_workers_are_replaced_and_handed_calls,
        ),
        (
            "dying_workers_fail_only_their_task",
            dying_workers_fail_only_their_task,
        ),
        ("timeout_kills_and_replaces", timeout_kills_and_replaces),
        ("memory_limit_kills_the_hog", memory_limit_kills_the_hog),
        (
            "random_kills_lose_nothing_else",
            random_kills_lose_nothing_else,
        ),
        (
            "workers_killed_while_starting_fail_no_unsent_task",
            workers_killed_while_starting_fail_no_unsent_task,
        ),
        (
            "start_failures_are_told_apart",
            start_failures_are_told_apart,
        ),
        ("queue_bound_reports_full", queue_bound_reports_full),
        (
            "initializer_timeout_breaks_the_pool",
            initializer_timeout_breaks_the_pool,
        ),
        (
            "idle_worker_killed_is_replaced_quietly",
            idle_worker_killed_is_replaced_quietly,
        ),
        (
            "long_tasks_spread_over_workers",
            long_tasks_spread_over_workers,
        ),
        (
            "no_call_waits_behind_a_long_one",
            no_call_waits_behind_a_long_one,
        ),
        ("max_tasks_per_child_recycles", max_tasks_per_child_recycles),
        (
            "initializer_runs_in_each_worker",
            initializer_runs_in_each_worker,
        ),
        ("shutdown_drains_or_cancels", shutdown_drains_or_cancels),
        (
            "cancel_reaches_a_running_task",
            cancel_reaches_a_running_task,
        ),
        (
            "cancel_storm_loses_nothing_else",
            cancel_storm_loses_nothing_else,
        ),
        (
            "deadline_before_start_never_runs",
            deadline_before_start_never_runs,
        ),
        (
            "shutdown_or_drop_inside_a_callback",
            shutdown_or_drop_inside_a_callback,
        ),
        ("large_payloads", large_payloads),
        (
            "malformed_frame_fails_that_task_only",
            malformed_frame_fails_that_task_only,
        ),
        ("no_inherited_descriptors", no_inherited_descriptors),
        (
            "workers_die_with_their_parent",
            workers_die_with_their_parent,
        ),
    ]);
}
