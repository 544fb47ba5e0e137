//! The registry of tasks: `#[crew::task]` functions, found by the type of the function (in the
//! caller) or by name (in a worker), each with its signature hash.

use std::any::TypeId;
use std::collections::HashMap;
use std::sync::OnceLock;

use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::error::{SubmitError, TaskError};
use crate::task::codec;
use crate::task::protocol::Outcome;

/// The version of crew, part of every task's signature.
pub(crate) const CREW_VERSION: &str = env!("CARGO_PKG_VERSION");

/// A function an executor can run: any `Fn(A) -> R` that is `Copy`, `Send`, `Sync` and
/// `'static` (a plain `fn` item, a non-capturing closure, a `fn` pointer).
///
/// Thread pools run any of them. Executors that send work to other processes or machines
/// identify the function by its type, looked up with [`TaskInfo::of`]: every `fn` item has a
/// type of its own, which `#[crew::task]` registers with the function's name, so identity
/// never depends on an address. A closure or a `fn` pointer is simply not registered there.
pub trait TaskFn<A, R>: Fn(A) -> R + Copy + Send + Sync + 'static {}

impl<F, A, R> TaskFn<A, R> for F where F: Fn(A) -> R + Copy + Send + Sync + 'static {}

/// One `#[crew::task]` registration. Built by the macro; not meant to be written by hand.
#[derive(Debug)]
pub struct TaskEntry {
    /// The stable name: `module_path!()::function`, or the macro's `name = "..."`.
    pub name: &'static str,
    /// The `TypeId` of the function item's own type, to find the entry from the function.
    pub type_id: fn() -> TypeId,
    /// `std::any::type_name` of the argument type.
    pub argument: fn() -> &'static str,
    /// `std::any::type_name` of the result type.
    pub result: fn() -> &'static str,
    /// Calls the function on one encoded argument.
    pub call: fn(&[u8]) -> Result<Vec<u8>, String>,
    /// Calls the function on an encoded `Vec` of arguments, returning an encoded `Vec` of results.
    pub call_chunk: fn(&[u8]) -> Result<Vec<u8>, String>,
}

inventory::collect!(TaskEntry);

/// A registered task as every backend sees it: its name, its types and its signature hash.
///
/// ```
/// #[crew::task(name = "docs::double")]
/// fn double(x: u64) -> u64 {
///     2 * x
/// }
///
/// fn main() {
///     let info = crew::task::TaskInfo::of(&double).unwrap();
///     assert_eq!(info.name(), "docs::double");
///     assert_eq!(info.to_string(), "docs::double: fn(u64) -> u64 (crew 0.1.0)");
///     // A closure is not a registered task.
///     assert!(crew::task::TaskInfo::of(&|x: u64| x).is_err());
/// }
/// ```
#[derive(Debug)]
pub struct TaskInfo {
    name: &'static str,
    argument: &'static str,
    result: &'static str,
    signature: u64,
    duplicate: bool,
    entry: &'static TaskEntry,
}

struct Registry {
    tasks: Vec<TaskInfo>,
    by_name: HashMap<&'static str, usize>,
    by_type: HashMap<TypeId, usize>,
}

fn registry() -> &'static Registry {
    static REGISTRY: OnceLock<Registry> = OnceLock::new();
    REGISTRY.get_or_init(|| {
        let mut registry = Registry {
            tasks: Vec::new(),
            by_name: HashMap::new(),
            by_type: HashMap::new(),
        };
        for entry in inventory::iter::<TaskEntry> {
            let (argument, result) = ((entry.argument)(), (entry.result)());
            let index = registry.tasks.len();
            registry.tasks.push(TaskInfo {
                name: entry.name,
                argument,
                result,
                signature: signature(entry.name, argument, result, CREW_VERSION),
                duplicate: false,
                entry,
            });
            registry.by_type.insert((entry.type_id)(), index);
            if let Some(&first) = registry.by_name.get(entry.name) {
                registry.tasks[first].duplicate = true;
                registry.tasks[index].duplicate = true;
            } else {
                registry.by_name.insert(entry.name, index);
            }
        }
        registry
    })
}

/// The signature hash of a task: FNV-1a (64 bits) of its name, argument and result type names
/// and crew's version, each followed by a 0xff byte (which no UTF-8 string contains). Stable
/// across Rust versions and machines, unlike `std`'s `DefaultHasher`.
pub(crate) fn signature(name: &str, argument: &str, result: &str, version: &str) -> u64 {
    const OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
    const PRIME: u64 = 0x0000_0100_0000_01b3;
    let mut hash = OFFSET;
    for part in [name, argument, result, version] {
        for &byte in part.as_bytes().iter().chain(&[0xff]) {
            hash ^= u64::from(byte);
            hash = hash.wrapping_mul(PRIME);
        }
    }
    hash
}

impl TaskInfo {
    /// The registered task `f`: the lookup every executor that sends work elsewhere makes.
    ///
    /// # Errors
    /// [`SubmitError::Unsupported`] when `f` is not a `#[crew::task]` function (a closure, a
    /// `fn` pointer, a function without the attribute) or when two tasks share its name.
    pub fn of<F: 'static>(f: &F) -> Result<&'static TaskInfo, SubmitError> {
        let _ = f;
        let registry = registry();
        let info = registry
            .by_type
            .get(&TypeId::of::<F>())
            .map(|&index| &registry.tasks[index])
            .ok_or_else(|| SubmitError::Unsupported {
                message: format!(
                    "`{}` is not registered for other processes; add #[crew::task] to the \
                     function's definition (a free, non-generic fn of one argument; closures \
                     and fn pointers run on thread pools only)",
                    std::any::type_name::<F>()
                ),
            })?;
        if info.duplicate {
            return Err(SubmitError::Unsupported {
                message: format!(
                    "two functions are registered as task `{}`; give one another \
                     #[crew::task(name = \"...\")]",
                    info.name
                ),
            });
        }
        Ok(info)
    }

    /// The task registered as `name` in this program, if any (a name two tasks share counts
    /// as none).
    pub fn by_name(name: &str) -> Option<&'static TaskInfo> {
        let registry = registry();
        registry
            .by_name
            .get(name)
            .map(|&index| &registry.tasks[index])
            .filter(|info| !info.duplicate)
    }

    /// The registered name.
    pub fn name(&self) -> &'static str {
        self.name
    }

    /// `std::any::type_name` of the argument type.
    pub fn argument_type(&self) -> &'static str {
        self.argument
    }

    /// `std::any::type_name` of the result type.
    pub fn result_type(&self) -> &'static str {
        self.result
    }

    /// The signature hash: name, argument and result types, crew's version. Two programs run
    /// the same task exactly when name and signature agree.
    pub fn signature(&self) -> u64 {
        self.signature
    }

    /// Calls the task on an encoded argument (an encoded `Vec` of them when `chunk`) and
    /// returns the encoded result. A panic of the task propagates.
    ///
    /// # Errors
    /// A message when the argument cannot be decoded or the result cannot be encoded.
    pub fn call(&self, chunk: bool, payload: &[u8]) -> Result<Vec<u8>, String> {
        if chunk {
            (self.entry.call_chunk)(payload)
        } else {
            (self.entry.call)(payload)
        }
    }
}

impl std::fmt::Display for TaskInfo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}: fn({}) -> {} (crew {CREW_VERSION})",
            self.name, self.argument, self.result
        )
    }
}

/// Runs a call as a worker must: checks that the task `name` exists here with the caller's
/// `signature`, then calls it, catching a panic. The outcome and payload are what the worker
/// sends back ([`Outcome`]).
pub fn run_call(name: &str, signature: u64, chunk: bool, payload: &[u8]) -> (Outcome, Vec<u8>) {
    let Some(info) = TaskInfo::by_name(name) else {
        return (Outcome::UnknownTask, Vec::new());
    };
    if info.signature != signature {
        return (
            Outcome::Mismatch {
                argument: info.argument.to_owned(),
                result: info.result.to_owned(),
                version: CREW_VERSION.to_owned(),
            },
            Vec::new(),
        );
    }
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| info.call(chunk, payload))) {
        Ok(Ok(result)) => (Outcome::Ok, result),
        Ok(Err(message)) => (Outcome::Failed(message), Vec::new()),
        Err(panic) => (
            Outcome::Panicked(crate::error::panic_message(&*panic)),
            Vec::new(),
        ),
    }
}

/// The caller's error for a worker's outcome that is not `Ok`.
pub(crate) fn outcome_error(info: &TaskInfo, outcome: Outcome) -> TaskError {
    match outcome {
        Outcome::Ok => TaskError::Transport {
            message: "an Ok outcome is not an error".to_owned(),
        },
        Outcome::Panicked(message) => TaskError::Panicked { message },
        Outcome::Failed(message) => TaskError::Transport { message },
        Outcome::UnknownTask => TaskError::UnknownTask {
            task: info.name.to_owned(),
        },
        Outcome::Mismatch {
            argument,
            result,
            version,
        } => TaskError::Incompatible {
            task: info.name.to_owned(),
            message: describe_mismatch(info, &argument, &result, &version),
        },
    }
}

fn describe_mismatch(info: &TaskInfo, argument: &str, result: &str, version: &str) -> String {
    let mut differences = Vec::new();
    if argument != info.argument {
        differences.push(format!(
            "argument `{}` here, `{argument}` in the worker",
            info.argument
        ));
    }
    if result != info.result {
        differences.push(format!(
            "result `{}` here, `{result}` in the worker",
            info.result
        ));
    }
    if version != CREW_VERSION {
        differences.push(format!(
            "crew {CREW_VERSION} here, crew {version} in the worker"
        ));
    }
    if differences.is_empty() {
        differences.push("the signature hashes differ".to_owned());
    }
    differences.join("; ")
}

/// The trampoline behind `TaskEntry::call`: decode, call, encode.
///
/// # Errors
/// A message when the argument cannot be decoded or the result cannot be encoded.
pub fn call_one<A: DeserializeOwned, R: Serialize>(
    f: impl Fn(A) -> R,
    input: &[u8],
) -> Result<Vec<u8>, String> {
    let argument: A = codec::decode(input)?;
    codec::encode(&f(argument))
}

/// The trampoline behind `TaskEntry::call_chunk`: `f` over a `Vec` of arguments.
///
/// # Errors
/// As [`call_one`].
pub fn call_chunk<A: DeserializeOwned, R: Serialize>(
    f: impl Fn(A) -> R,
    input: &[u8],
) -> Result<Vec<u8>, String> {
    let arguments: Vec<A> = codec::decode(input)?;
    let results: Vec<R> = arguments.into_iter().map(f).collect();
    codec::encode(&results)
}

/// The `TypeId` of the type of `f` (the macro registers a function item's with it).
pub fn type_id_of<F: 'static>(_: &F) -> TypeId {
    TypeId::of::<F>()
}
