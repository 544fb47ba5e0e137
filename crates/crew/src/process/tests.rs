//! Unit tests of the process machinery that need no worker process: the codec and framing,
//! the handshake check and the worker's dispatch. (Tests with real workers are in
//! `tests/process_*.rs`, whose `main` calls `crew::init()`.)

use std::io::Cursor;
use std::os::fd::{AsFd, BorrowedFd};

use super::child::verify_hello;
use super::codec::{self, write_frame, FrameReader, ReadError};
use super::protocol::{Outcome, ToWorker, PROTOCOL};
use super::{registry, worker};

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
                chunk: false,
            },
            vec![1, 2, 3],
        ),
        (
            ToWorker::Init {
                name: "init".to_owned(),
            },
            vec![9; 200_000],
        ),
    ]);
    let mut stream = stream(bytes);
    let mut reader = FrameReader::new();
    let first = reader.read::<_, ToWorker>(&mut stream, None).unwrap();
    assert!(
        matches!(first.header, ToWorker::Call { id: 7, ref name, chunk: false } if name == "a::b")
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
fn a_worker_from_another_build_is_refused() {
    let error = verify_hello(PROTOCOL, registry::build_id() ^ 1).unwrap_err();
    assert!(error.contains("different build"), "{error}");
    let error = verify_hello(PROTOCOL + 1, registry::build_id()).unwrap_err();
    assert!(error.contains("protocol"), "{error}");
    verify_hello(PROTOCOL, registry::build_id()).unwrap();
}

#[test]
fn a_worker_without_the_task_says_so() {
    let (outcome, payload) = worker::run("no::such::task", false, &[]);
    assert!(payload.is_empty());
    match outcome {
        Outcome::Failed(message) => {
            assert!(
                message.contains("no task named `no::such::task`"),
                "{message}"
            )
        }
        other => panic!("expected Failed, got {other:?}"),
    }
}

#[test]
fn unregistered_functions_are_unsupported() {
    fn plain(x: u8) -> u8 {
        x
    }
    let error = registry::name_of(plain).unwrap_err();
    assert!(error.to_string().contains("#[crew::task]"), "{error}");
}
