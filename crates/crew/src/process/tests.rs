//! Unit tests of the process machinery that need no worker process: the codec and framing,
//! the handshake check and the worker's dispatch. (Tests with real workers are in
//! `tests/process_*.rs`, whose `main` calls `crew::init()`.)

use std::io::Cursor;
use std::os::fd::{AsFd, BorrowedFd};

use super::child::verify_hello;
use crate::task::codec::{self, write_frame, FrameReader, ReadError};
use crate::task::protocol::{Outcome, ToWorker, PROTOCOL};
use crate::task::{run_call, TaskInfo};
use crate::TaskError;

/// An in-memory stream for the frame reader (it polls its descriptor only with a deadline,
/// never here; /dev/null stands in).
struct Bytes(Cursor<Vec<u8>>, std::fs::File);

fn stream(bytes: Vec<u8>) -> Bytes {
    Bytes(
        Cursor::new(bytes),
        std::fs::File::open("/dev/null").unwrap(),
    )
}

impl std::io::Read for Bytes {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        // Dribble a few bytes at a time to exercise partial frames.
        let n = buf.len().min(7);
        self.0.read(&mut buf[..n])
    }
}

impl AsFd for Bytes {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.1.as_fd()
    }
}

fn frames(parts: &[(ToWorker, Vec<u8>)]) -> Vec<u8> {
    let mut out = Vec::new();
    for (header, payload) in parts {
        write_frame(&mut out, header, payload).unwrap();
    }
    out
}

#[test]
fn frames_round_trip_through_partial_reads() {
    let bytes = frames(&[
        (
            ToWorker::Call {
                id: 7,
                name: "a::b".to_owned(),
                signature: 11,
                chunk: false,
            },
            vec![1, 2, 3],
        ),
        (
            ToWorker::Init {
                name: "init".to_owned(),
                signature: 0,
            },
            vec![9; 200_000],
        ),
    ]);
    let mut stream = stream(bytes);
    let mut reader = FrameReader::new();
    let first = reader.read::<_, ToWorker>(&mut stream, None).unwrap();
    assert!(
        matches!(first.header, ToWorker::Call { id: 7, ref name, signature: 11, chunk: false } if name == "a::b")
    );
    assert_eq!(first.payload, [1, 2, 3]);
    let second = reader.read::<_, ToWorker>(&mut stream, None).unwrap();
    assert_eq!(second.payload.len(), 200_000);
    assert!(matches!(
        reader.read::<_, ToWorker>(&mut stream, None),
        Err(ReadError::Eof)
    ));
}

#[test]
fn garbage_is_malformed_not_a_panic() {
    for garbage in [vec![0xff; 64], vec![0; 64], {
        let mut v = 5u32.to_le_bytes().to_vec();
        v.extend(3u64.to_le_bytes());
        v.extend([0xff; 8]);
        v
    }] {
        let mut stream = stream(garbage);
        let result = FrameReader::new().read::<_, ToWorker>(&mut stream, None);
        assert!(matches!(result, Err(ReadError::Malformed(_))), "{result:?}");
    }
}

#[test]
fn a_truncated_frame_is_broken() {
    let mut bytes = frames(&[(
        ToWorker::Init {
            name: "x".to_owned(),
            signature: 0,
        },
        vec![1; 100],
    )]);
    bytes.truncate(bytes.len() - 10);
    let mut stream = stream(bytes);
    let result = FrameReader::new().read::<_, ToWorker>(&mut stream, None);
    assert!(matches!(result, Err(ReadError::Broken(_))), "{result:?}");
}

#[test]
fn decoding_the_wrong_type_is_an_error() {
    let bytes = codec::encode(&(1u64, 2u64)).unwrap();
    assert!(codec::decode::<u8>(&bytes).is_err());
    assert_eq!(codec::decode::<(u64, u64)>(&bytes).unwrap(), (1, 2));
}

#[test]
fn a_worker_speaking_another_protocol_is_refused() {
    let error = verify_hello(PROTOCOL + 1).unwrap_err();
    assert!(error.contains("protocol"), "{error}");
    verify_hello(PROTOCOL).unwrap();
}

#[crate::task(name = "crew::tests::triple")]
fn triple(x: u64) -> u64 {
    3 * x
}

#[test]
fn a_worker_without_the_task_says_so() {
    let (outcome, payload) = run_call("no::such::task", 0, false, &[]);
    assert!(payload.is_empty());
    assert!(matches!(outcome, Outcome::UnknownTask), "{outcome:?}");
    let info = TaskInfo::of(&triple).unwrap();
    let error = crate::task::outcome_error(info, outcome);
    assert_eq!(
        error,
        TaskError::UnknownTask {
            task: "crew::tests::triple".to_owned()
        }
    );
    assert!(
        error
            .to_string()
            .contains("no task named `crew::tests::triple`"),
        "{error}"
    );
}

#[test]
fn a_registered_task_runs_with_its_signature_and_refuses_another() {
    let info = TaskInfo::of(&triple).unwrap();
    assert_eq!(info.name(), "crew::tests::triple");
    assert_eq!(
        TaskInfo::by_name("crew::tests::triple")
            .unwrap()
            .signature(),
        info.signature()
    );
    let input = codec::encode(&5u64).unwrap();
    let (outcome, payload) = run_call(info.name(), info.signature(), false, &input);
    assert!(matches!(outcome, Outcome::Ok), "{outcome:?}");
    assert_eq!(codec::decode::<u64>(&payload).unwrap(), 15);

    let (outcome, _) = run_call(info.name(), info.signature() ^ 1, false, &input);
    let Outcome::Mismatch {
        argument,
        result,
        version,
    } = outcome
    else {
        panic!("expected a mismatch, got {outcome:?}");
    };
    assert_eq!((argument.as_str(), result.as_str()), ("u64", "u64"));
    assert_eq!(version, env!("CARGO_PKG_VERSION"));
    // The parent describes the difference with its own view of the task.
    let error = crate::task::outcome_error(
        info,
        Outcome::Mismatch {
            argument: "u32".to_owned(),
            result: "u64".to_owned(),
            version: env!("CARGO_PKG_VERSION").to_owned(),
        },
    );
    let message = error.to_string();
    assert!(message.contains("task `crew::tests::triple`"), "{message}");
    assert!(
        message.contains("argument `u64` here, `u32` in the worker"),
        "{message}"
    );
    assert!(!message.contains("result `"), "{message}");
}

#[test]
fn signatures_are_stable_and_distinguish_every_part() {
    let base = crate::task::signature_of("a::f", "u64", "u64", "0.1.0");
    // FNV-1a is fixed: this value must never change, or old and new workers disagree.
    assert_eq!(
        base,
        crate::task::signature_of("a::f", "u64", "u64", "0.1.0")
    );
    for other in [
        crate::task::signature_of("a::g", "u64", "u64", "0.1.0"),
        crate::task::signature_of("a::f", "u32", "u64", "0.1.0"),
        crate::task::signature_of("a::f", "u64", "u32", "0.1.0"),
        crate::task::signature_of("a::f", "u64", "u64", "0.2.0"),
        crate::task::signature_of("a::fu", "64", "u64", "0.1.0"),
    ] {
        assert_ne!(base, other);
    }
}

#[test]
fn unregistered_functions_are_unsupported() {
    fn plain(x: u8) -> u8 {
        x
    }
    let error = TaskInfo::of(&plain).unwrap_err();
    assert!(error.to_string().contains("#[crew::task]"), "{error}");
    let pointer: fn(u64) -> u64 = triple;
    assert!(
        TaskInfo::of(&pointer).is_err(),
        "a fn pointer is not a registered task"
    );
    assert!(
        TaskInfo::of(&|x: u64| x).is_err(),
        "a closure is not a registered task"
    );
}
