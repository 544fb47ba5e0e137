//! Compatibility is decided by what processes run, task by task: a worker started from a second
//! build of the same code (another path, another mtime) serves the pool; a worker whose task of
//! the same name has another signature is refused with an error naming the task.
//!
//! The worker programs are this crate's `sig_a` (the same tasks as here) and `sig_b`
//! (`conformance::scale` takes a `u32` there).

use std::time::{Duration, SystemTime};

use crew::{Executor, ProcessPool, TaskError};

#[crew::task(name = "conformance::scale")]
fn scale(x: u64) -> u64 {
    3 * x
}

#[crew::task(name = "conformance::pid")]
fn pid(_: ()) -> u32 {
    std::process::id()
}

#[crew::task(name = "conformance::only_here")]
fn only_here(x: u64) -> u64 {
    x
}

fn pool_of(program: &std::path::Path) -> ProcessPool {
    ProcessPool::builder()
        .max_workers(1)
        .worker_program(program)
        .build()
        .unwrap()
}

#[test]
fn a_second_build_of_the_same_code_serves() {
    let dir = tempfile::tempdir().unwrap();
    let copy = dir.path().join("sig_a_second_build");
    std::fs::copy(env!("CARGO_BIN_EXE_sig_a"), &copy).unwrap();
    let file = std::fs::File::options().write(true).open(&copy).unwrap();
    let old = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000_000);
    file.set_modified(old).unwrap();
    drop(file);
    assert_eq!(std::fs::metadata(&copy).unwrap().modified().unwrap(), old);

    let pool = pool_of(&copy);
    assert_eq!(pool.submit(scale, 14).unwrap().result(), Ok(42));
    let worker = pool.submit(pid, ()).unwrap().result().unwrap();
    assert_ne!(worker, std::process::id());
    assert_eq!(
        std::fs::read_link(format!("/proc/{worker}/exe")).unwrap(),
        copy,
        "the worker runs the copy"
    );
    let squares: Vec<u64> = pool.map(scale, 0..5).map(Result::unwrap).collect();
    assert_eq!(squares, [0, 3, 6, 9, 12]);
    // A task the worker program does not have is its own clear error.
    let error = pool.submit(only_here, 1).unwrap().result().unwrap_err();
    assert_eq!(
        error,
        TaskError::UnknownTask {
            task: "conformance::only_here".to_owned()
        }
    );
    assert!(
        error
            .to_string()
            .contains("no task named `conformance::only_here`"),
        "{error}"
    );
}

#[test]
fn a_changed_signature_is_refused_by_name() {
    let pool = pool_of(std::path::Path::new(env!("CARGO_BIN_EXE_sig_b")));
    let error = pool.submit(scale, 14).unwrap().result().unwrap_err();
    let TaskError::Incompatible { task, message } = &error else {
        panic!("expected Incompatible, got {error:?}");
    };
    assert_eq!(task, "conformance::scale");
    assert_eq!(message, "argument `u64` here, `u32` in the worker");
    assert_eq!(
        error.to_string(),
        "task `conformance::scale` differs between this process and the worker: argument \
         `u64` here, `u32` in the worker; run the same code on both sides"
    );
    // The check is per task: the worker still serves the tasks that agree.
    let worker = pool.submit(pid, ()).unwrap().result().unwrap();
    assert_ne!(worker, std::process::id());
    assert_eq!(
        pool.submit(scale, 1).unwrap().result(),
        Err(error),
        "refused every time, and the worker is not harmed"
    );
}
