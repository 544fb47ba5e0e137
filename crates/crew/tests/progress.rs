//! Progress bars on `Map` and `as_completed` over the thread pool and the process pool, and what
//! a bar writes to standard error: nothing when it is not a terminal, the bar when it is. Run
//! with `harness = false`: `main` calls `crew::init()` so that this binary serves as a worker.

mod process_common;
#[path = "support/tasks.rs"]
mod tasks;

use std::io::Read;
use std::os::fd::{FromRawFd, OwnedFd};
use std::process::{Command, Stdio};
use std::time::Duration;

use crew::progress::Progress;
use crew::{as_completed, Executor, MapOptions, ProcessPool, TaskError, ThreadPool};
use tasks::{fails_on_multiples_of_three, square};

/// Every item counted once, in either order, with chunks; the total from the input's size.
fn counts_every_item(pool: &impl Executor) {
    for options in [
        MapOptions::new(),
        MapOptions::new().chunksize(7),
        MapOptions::new().chunksize(3).unordered(),
    ] {
        let progress = Progress::hidden("squares");
        let mut map = pool
            .map_with(square, (0..100).collect::<Vec<u64>>(), options)
            .progress(progress.clone());
        assert_eq!(progress.total(), Some(100));
        assert_eq!(progress.position(), 0);
        let mut taken = 0;
        for result in map.by_ref().take(40) {
            result.unwrap();
            taken += 1;
            // Counted as yielded: the bar is the consumer's count, exactly.
            assert_eq!(progress.position(), taken);
        }
        assert!(!progress.is_finished());
        let rest: Vec<u64> = map.by_ref().map(Result::unwrap).collect();
        assert_eq!(rest.len(), 60);
        assert_eq!((progress.position(), progress.failed()), (100, 0));
        assert!(progress.is_finished(), "finished when the map ends");
        drop(map);
        assert_eq!(progress.position(), 100);
    }
}

/// Failed items move the bar and are counted as failed; the map goes on to the end.
fn counts_failures(pool: &impl Executor) {
    for options in [
        MapOptions::new().window(1),
        MapOptions::new().chunksize(2).unordered(),
    ] {
        let progress = Progress::hidden("checks");
        let results: Vec<Result<u64, TaskError>> = pool
            .map_with(fails_on_multiples_of_three, 1..=9, options)
            .progress(progress.clone())
            .collect();
        let failed = results.iter().filter(|r| r.is_err()).count() as u64;
        assert_eq!(results.len(), 9);
        assert!(failed >= 3, "{results:?}");
        assert_eq!((progress.position(), progress.failed()), (9, failed));
        assert_eq!(progress.message(), format!("{failed} failed"));
        assert!(progress.is_finished());
    }
}

/// Dropping the map early stops the bar where it was.
fn finishes_on_early_drop(pool: &impl Executor) {
    let progress = Progress::hidden("squares");
    let mut map = pool
        .map_with(square, 0..1_000, MapOptions::new().chunksize(10))
        .progress(progress.clone());
    for _ in 0..25 {
        map.next().unwrap().unwrap();
    }
    drop(map);
    assert!(progress.is_finished());
    assert_eq!((progress.position(), progress.total()), (25, Some(1_000)));
}

fn thread_pool_map() {
    let pool = ThreadPool::new(2);
    counts_every_item(&pool);
    counts_failures(&pool);
    finishes_on_early_drop(&pool);
}

fn process_pool_map() {
    let pool = ProcessPool::new(2);
    counts_every_item(&pool);
    counts_failures(&pool);
    finishes_on_early_drop(&pool);
}

fn unknown_total_and_user_total() {
    let pool = ThreadPool::new(2);
    let progress = Progress::hidden("evens");
    let evens = (0..100u64).filter(|n| n % 2 == 0);
    let count = pool.map(square, evens).progress(progress.clone()).count();
    assert_eq!(
        (count, progress.position(), progress.total()),
        (50, 50, None)
    );

    // A total the caller set is kept.
    let progress = Progress::hidden("evens").with_total(50);
    let evens = (0..100u64).filter(|n| n % 2 == 0);
    pool.map(square, evens)
        .progress(progress.clone())
        .for_each(drop);
    assert_eq!((progress.position(), progress.total()), (50, Some(50)));
}

fn refused_submission_is_counted_and_finishes() {
    let pool = ThreadPool::new(1);
    pool.shutdown(true, false);
    let progress = Progress::hidden("squares");
    let results: Vec<_> = pool.map(square, 0..10).progress(progress.clone()).collect();
    assert!(
        matches!(results[..], [Err(TaskError::Rejected(_))]),
        "{results:?}"
    );
    assert_eq!((progress.position(), progress.failed()), (1, 1));
    assert!(progress.is_finished());
}

fn as_completed_counts_handles() {
    let pool = ProcessPool::new(2);
    let handles: Vec<_> = (1..=9)
        .map(|i| pool.submit(fails_on_multiples_of_three, i).unwrap())
        .collect();
    let progress = Progress::hidden("tasks");
    let mut completed = as_completed(handles, None).progress(progress.clone());
    assert_eq!(progress.total(), Some(9));
    let first = completed.next().unwrap().unwrap();
    assert!(first.done());
    assert_eq!(progress.position(), 1);
    assert_eq!(completed.by_ref().count(), 8);
    assert_eq!((progress.position(), progress.failed()), (9, 3));
    assert!(progress.is_finished());

    // A timeout finishes the bar too.
    let slow = ThreadPool::new(1);
    let handles = vec![slow
        .spawn(|| std::thread::sleep(Duration::from_millis(300)))
        .unwrap()];
    let progress = Progress::hidden("slow");
    let mut completed =
        as_completed(handles, Some(Duration::from_millis(10))).progress(progress.clone());
    assert_eq!(completed.next().unwrap().unwrap_err(), TaskError::TimedOut);
    assert!(progress.is_finished());
    assert_eq!(progress.position(), 0);
}

/// What the child writes: a map with a bar on standard error, its count on standard output.
fn child() -> ! {
    let pool = ThreadPool::new(2);
    let count = pool
        .map_with(
            square,
            (0..200).collect::<Vec<u64>>(),
            MapOptions::new().chunksize(4),
        )
        .progress(Progress::bar("child-squares"))
        .filter(Result::is_ok)
        .count();
    println!("{count} squares");
    std::process::exit(0);
}

fn run_child(stderr: Stdio) -> std::process::Child {
    Command::new(std::env::current_exe().unwrap())
        .env("CREW_PROGRESS_CHILD", "1")
        .stdout(Stdio::piped())
        .stderr(stderr)
        .spawn()
        .unwrap()
}

fn silent_when_stderr_is_not_a_terminal() {
    let output = run_child(Stdio::piped()).wait_with_output().unwrap();
    assert!(output.status.success());
    assert_eq!(String::from_utf8_lossy(&output.stdout), "200 squares\n");
    assert_eq!(
        String::from_utf8_lossy(&output.stderr),
        "",
        "nothing on a pipe"
    );
}

fn drawn_when_stderr_is_a_terminal() {
    let (mut master, mut slave) = (-1, -1);
    let size = libc::winsize {
        ws_row: 40,
        ws_col: 120,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: the two out-pointers are valid for writes; a null name and termios are allowed.
    let opened = unsafe {
        libc::openpty(
            &mut master,
            &mut slave,
            std::ptr::null_mut(),
            std::ptr::null(),
            &size,
        )
    };
    assert_eq!(opened, 0, "openpty: {}", std::io::Error::last_os_error());
    // SAFETY: openpty succeeded, so both are open descriptors that nothing else owns.
    let (master, slave) = unsafe { (OwnedFd::from_raw_fd(master), OwnedFd::from_raw_fd(slave)) };
    let child = run_child(Stdio::from(slave));
    // The child holds the only slave descriptor now: reading the master ends (EIO) when it exits.
    let mut terminal = std::fs::File::from(master);
    let mut drawn = Vec::new();
    let mut buffer = [0u8; 4096];
    while let Ok(read @ 1..) = terminal.read(&mut buffer) {
        drawn.extend_from_slice(&buffer[..read]);
    }
    let output = child.wait_with_output().unwrap();
    assert!(output.status.success());
    assert_eq!(String::from_utf8_lossy(&output.stdout), "200 squares\n");
    let drawn = String::from_utf8_lossy(&drawn);
    assert!(drawn.contains("child-squares"), "{drawn:?}");
    assert!(drawn.contains("200/200"), "the final draw: {drawn:?}");
}

fn main() {
    crew::init();
    if std::env::var_os("CREW_PROGRESS_CHILD").is_some() {
        child();
    }
    process_common::run(&[
        ("thread_pool_map", thread_pool_map),
        ("process_pool_map", process_pool_map),
        ("unknown_total_and_user_total", unknown_total_and_user_total),
        (
            "refused_submission_is_counted_and_finishes",
            refused_submission_is_counted_and_finishes,
        ),
        ("as_completed_counts_handles", as_completed_counts_handles),
        (
            "silent_when_stderr_is_not_a_terminal",
            silent_when_stderr_is_not_a_terminal,
        ),
        (
            "drawn_when_stderr_is_a_terminal",
            drawn_when_stderr_is_a_terminal,
        ),
    ]);
}
