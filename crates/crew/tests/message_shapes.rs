//! serde shapes that crew's codec (postcard) cannot carry, in every placement that encodes a
//! value: a process-pool task, a spawned process, a process actor (constructor, call, result,
//! stream item) and an inter-process queue. Each is refused with an error that names the type,
//! the cause and the fix, at the caller; no wrong data, no hang, and the worker or actor lives
//! on. With the `cluster` feature, the same on a cluster (a task, a remote actor) over a local
//! `nats-server`. Run with `harness = false`: `main` calls `crew::init()`.

mod process_common;

#[cfg(feature = "cluster")]
#[path = "support/nats_server.rs"]
mod nats_server;

use std::fmt::Debug;
use std::time::Duration;

use crew::actor::{ActorError, ActorOptions};
use crew::process::{spawn, GetTimeoutError, PutError, Queue};
use crew::{Executor, MapOptions, ProcessPool, SubmitError, TaskError};
use serde::{Deserialize, Serialize};

/// `skip_serializing_if`: written without the field when `None`, which postcard would misread.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Sparse {
    #[serde(skip_serializing_if = "Option::is_none")]
    note: Option<String>,
    n: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Extra {
    colour: String,
}

/// `flatten`: written as a map of unknown length, read with `deserialize_any`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Flat {
    id: u64,
    #[serde(flatten)]
    extra: Extra,
}

/// `untagged`: written fine, read with `deserialize_any`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
enum Loose {
    Number(u64),
    Text(String),
}

#[crew::task]
fn echo_sparse(value: Sparse) -> Sparse {
    value
}

#[crew::task]
fn flat_id(value: Flat) -> u64 {
    value.id
}

#[crew::task]
fn loose_number(value: Loose) -> u64 {
    match value {
        Loose::Number(n) => n,
        Loose::Text(text) => text.len() as u64,
    }
}

#[crew::task]
fn make_loose(n: u64) -> Loose {
    Loose::Number(n)
}

#[crew::task]
fn make_sparse(n: u64) -> Sparse {
    Sparse { note: None, n }
}

#[crew::task]
fn json_keys(value: serde_json::Value) -> usize {
    value.as_object().map_or(0, |object| object.len())
}

#[crew::task]
fn pid(_: ()) -> u32 {
    std::process::id()
}

#[crew::task]
fn put_loose(queue: Queue<Loose>) -> bool {
    queue.put(Loose::Text("from a child".into())).is_ok()
}

/// Asserts that `message` names `type_name` and contains each of `says`.
#[track_caller]
fn assert_explains(message: &str, type_name: &str, says: &[&str]) {
    assert!(
        message.contains(&format!("message_shapes::{type_name}")),
        "the type is not named: {message}"
    );
    for part in says {
        assert!(message.contains(part), "`{part}` is missing: {message}");
    }
}

#[track_caller]
fn transport_message<T: Debug>(result: Result<T, TaskError>) -> String {
    match result {
        Err(TaskError::Transport { message }) => message,
        other => panic!("expected a transport error, got {other:?}"),
    }
}

#[track_caller]
fn unsupported_message<T: Debug>(result: Result<T, SubmitError>) -> String {
    match result {
        Err(SubmitError::Unsupported { message }) => message,
        other => panic!("expected an Unsupported submit error, got {other:?}"),
    }
}

const SKIPPED: [&str; 2] = ["field `note` of `Sparse`", "Remove `skip_serializing_if`"];
const FLATTEN: [&str; 2] = ["map of unknown length", "nest the flattened struct"];
const ANY: [&str; 2] = ["self-describing", "externally tagged enum"];

fn process_pool_tasks() {
    let pool = ProcessPool::new(1);
    let worker = pool.submit(pid, ()).unwrap().result().unwrap();
    check_executor(&pool);
    // None of it killed or replaced the worker.
    assert_eq!(pool.submit(pid, ()).unwrap().result(), Ok(worker));
}

/// The checks every executor that encodes (a process pool, a cluster) passes.
fn check_executor(pool: &impl Executor) {
    // Arguments the codec refuses fail at `submit`, before anything is sent.
    let skipped = Sparse { note: None, n: 1 };
    let message = unsupported_message(pool.submit(echo_sparse, skipped));
    assert_explains(&message, "Sparse", &SKIPPED);
    let flat = Flat {
        id: 1,
        extra: Extra {
            colour: "red".into(),
        },
    };
    let message = unsupported_message(pool.submit(flat_id, flat));
    assert_explains(&message, "Flat", &FLATTEN);
    // The same type goes through when nothing is skipped.
    let full = Sparse {
        note: Some("kept".into()),
        n: 2,
    };
    assert_eq!(
        pool.submit(echo_sparse, full.clone()).unwrap().result(),
        Ok(full)
    );
    // An argument the worker cannot decode fails the call, with the fix.
    let message = transport_message(
        pool.submit(loose_number, Loose::Number(3))
            .unwrap()
            .result(),
    );
    assert_explains(&message, "Loose", &ANY);
    let json = serde_json::json!({"a": 1});
    let message = transport_message(pool.submit(json_keys, json).unwrap().result());
    assert!(message.contains("`serde_json::value::Value`"), "{message}");
    assert!(message.contains("serde_json::to_string"), "{message}");
    // A result the worker cannot encode, or the caller cannot decode, fails the call.
    let message = transport_message(pool.submit(make_sparse, 4).unwrap().result());
    assert_explains(&message, "Sparse", &SKIPPED);
    let message = transport_message(pool.submit(make_loose, 5).unwrap().result());
    assert_explains(&message, "Loose", &ANY);
    // In a chunked map, every item of a chunk the worker cannot decode fails with the reason;
    // a chunk the codec refuses fails its items at the caller.
    let loose = [Loose::Number(1), Loose::Number(2), Loose::Number(3)];
    let mapped: Vec<_> = pool
        .map_with(loose_number, loose, MapOptions::new().chunksize(2))
        .collect();
    assert_eq!(mapped.len(), 3);
    for result in mapped {
        assert_explains(&transport_message(result), "Loose", &ANY);
    }
    let sparse = [Sparse { note: None, n: 1 }];
    let mapped: Vec<_> = pool
        .map_with(echo_sparse, sparse, MapOptions::new().chunksize(2))
        .collect();
    match &mapped[..] {
        [Err(TaskError::Rejected(SubmitError::Unsupported { message }))] => {
            assert_explains(message, "Sparse", &SKIPPED)
        }
        other => panic!("expected the chunk to be refused, got {other:?}"),
    }
    // The pool still runs tasks.
    let full = Sparse {
        note: Some("again".into()),
        n: 7,
    };
    assert_eq!(
        pool.submit(echo_sparse, full.clone()).unwrap().result(),
        Ok(full)
    );
}

fn spawned_processes() {
    let error = spawn(echo_sparse, Sparse { note: None, n: 1 }).unwrap_err();
    assert_eq!(error.kind(), std::io::ErrorKind::InvalidInput);
    assert_explains(&error.to_string(), "Sparse", &SKIPPED);
    let message = transport_message(spawn(make_loose, 1).unwrap().join());
    assert_explains(&message, "Loose", &ANY);
    let message = transport_message(spawn(loose_number, Loose::Number(2)).unwrap().join());
    assert_explains(&message, "Loose", &ANY);
}

struct Shapes {
    calls: u64,
}

#[crew::actor]
impl Shapes {
    fn new(start: Sparse) -> Self {
        Shapes { calls: start.n }
    }

    fn take_loose(&mut self, value: Loose) -> u64 {
        self.calls += 1;
        match value {
            Loose::Number(n) => n,
            Loose::Text(text) => text.len() as u64,
        }
    }

    fn take_flat(&mut self, value: Flat) -> u64 {
        self.calls += 1;
        value.id
    }

    fn give_sparse(&mut self, n: u64) -> Sparse {
        self.calls += 1;
        Sparse { note: None, n }
    }

    fn give_loose(&mut self, n: u64) -> Loose {
        self.calls += 1;
        Loose::Number(n)
    }

    fn calls(&self) -> u64 {
        self.calls
    }

    fn pid(&self) -> u32 {
        std::process::id()
    }

    #[stream]
    fn sparse_items(&self, n: u64) -> impl Iterator<Item = Sparse> + Send + 'static {
        (0..n).map(|n| Sparse {
            note: (n == 0).then(|| "first".to_owned()),
            n,
        })
    }
}

fn process_actors() {
    check_actor(|| ActorOptions::<Shapes>::new().in_process());
}

/// The checks every placement of an actor that encodes (a process, a cluster worker) passes.
fn check_actor(options: impl Fn() -> ActorOptions<Shapes>) {
    // Constructor arguments the codec refuses: the creation fails with the reason.
    match options().spawn(Sparse { note: None, n: 0 }) {
        Err(error) => assert_explains(&error.to_string(), "Sparse", &SKIPPED),
        Ok(_) => panic!("an actor was created from arguments that cannot be sent"),
    }
    let actor = options()
        .spawn(Sparse {
            note: Some("start".into()),
            n: 0,
        })
        .unwrap();
    let pid = actor.pid().result().unwrap();
    // Each refused call fails alone, at the caller; the actor ran none of them.
    let flat = Flat {
        id: 1,
        extra: Extra {
            colour: "red".into(),
        },
    };
    match actor.take_flat(flat).result() {
        Err(TaskError::Actor(ActorError::Encode { uid, message })) => {
            assert_eq!(uid, actor.uid());
            assert_explains(&message, "Flat", &FLATTEN);
        }
        other => panic!("expected an Encode error, got {other:?}"),
    }
    let message = transport_message(actor.take_loose(Loose::Number(1)).result());
    assert_explains(&message, "Loose", &ANY);
    assert_eq!(actor.calls().result(), Ok(0));
    // Results it cannot send or the caller cannot read: the method ran, the call fails.
    let message = transport_message(actor.give_sparse(2).result());
    assert_explains(&message, "Sparse", &SKIPPED);
    let message = transport_message(actor.give_loose(3).result());
    assert_explains(&message, "Loose", &ANY);
    assert_eq!(actor.calls().result(), Ok(2));
    // A stream delivers the items it can send, then fails at the first it cannot.
    let mut items = actor.sparse_items(3);
    assert_eq!(
        items.next(),
        Some(Ok(Sparse {
            note: Some("first".into()),
            n: 0
        }))
    );
    match items.next() {
        Some(Err(TaskError::Transport { message })) => {
            assert_explains(&message, "Sparse", &SKIPPED)
        }
        other => panic!("expected the stream to fail, got {other:?}"),
    }
    assert_eq!(items.next(), None);
    // The actor and its process live on.
    assert_eq!(actor.pid().result(), Ok(pid));
    assert_eq!(actor.calls().result(), Ok(2));
    actor.stop().result().unwrap();
}

/// A task on a cluster worker and an actor on one, over a real `nats-server` on loopback.
#[cfg(feature = "cluster")]
fn on_a_cluster() {
    let cluster = crew::cluster::Cluster::local(1).expect("a local cluster");
    assert_eq!(
        cluster.backend(),
        crew::cluster::Backend::Nats,
        "this test needs nats-server (CREW_NATS_SERVER)"
    );
    check_executor(&cluster);
    check_actor(|| ActorOptions::<Shapes>::new().on_cluster(&cluster));
}

fn inter_process_queues() {
    let queue: Queue<Sparse> = Queue::bounded(4).unwrap();
    // An item the codec refuses is handed back at `put`, with the reason.
    match queue.put(Sparse { note: None, n: 1 }) {
        Err(PutError::Encode(item, message)) => {
            assert_eq!(item, Sparse { note: None, n: 1 });
            assert_explains(&message, "Sparse", &SKIPPED);
        }
        other => panic!("expected an Encode error, got {other:?}"),
    }
    assert_eq!(queue.len().unwrap(), 0);
    // An item put by another process that cannot be decoded fails `get` with the fix, and
    // the queue goes on.
    let loose: Queue<Loose> = Queue::bounded(4).unwrap();
    assert_eq!(spawn(put_loose, loose.clone()).unwrap().join(), Ok(true));
    match loose.get_timeout(Duration::from_secs(30)) {
        Err(GetTimeoutError::Decode(message)) => assert_explains(&message, "Loose", &ANY),
        other => panic!("expected a Decode error, got {other:?}"),
    }
    assert_eq!(spawn(put_loose, loose.clone()).unwrap().join(), Ok(true));
    assert_eq!(loose.len().unwrap(), 1);
}

fn main() {
    crew::init();
    #[cfg(feature = "cluster")]
    nats_server::ensure_nats_server();
    process_common::run(&[
        ("process_pool_tasks", process_pool_tasks),
        ("spawned_processes", spawned_processes),
        ("process_actors", process_actors),
        ("inter_process_queues", inter_process_queues),
        #[cfg(feature = "cluster")]
        ("on_a_cluster", on_a_cluster),
    ]);
}
