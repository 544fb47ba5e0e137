//! The registry of tasks: `#[crew::task]` functions, found by name (in a worker) or by address
//! (in the parent, from the `fn` pointer given to `submit`).

use std::collections::HashMap;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::sync::OnceLock;

use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::error::SubmitError;
use crate::process::codec;

/// One `#[crew::task]` registration. Built by the macro; not meant to be written by hand.
#[derive(Debug)]
pub struct TaskEntry {
    /// The stable name: `module_path!()::function`.
    pub name: &'static str,
    /// The address of the function in this process, to find the entry from a `fn` pointer.
    pub address: fn() -> usize,
    /// Calls the function on one encoded argument.
    pub call: fn(&[u8]) -> Result<Vec<u8>, String>,
    /// Calls the function on an encoded `Vec` of arguments, returning an encoded `Vec` of results.
    pub call_chunk: fn(&[u8]) -> Result<Vec<u8>, String>,
}

inventory::collect!(TaskEntry);

struct Registry {
    by_name: HashMap<&'static str, &'static TaskEntry>,
    by_address: HashMap<usize, &'static TaskEntry>,
    build_id: u64,
}

fn registry() -> &'static Registry {
    static REGISTRY: OnceLock<Registry> = OnceLock::new();
    REGISTRY.get_or_init(|| {
        let mut by_name = HashMap::new();
        let mut by_address = HashMap::new();
        for entry in inventory::iter::<TaskEntry> {
            by_name.insert(entry.name, entry);
            by_address.insert((entry.address)(), entry);
        }
        let build_id = compute_build_id(&by_name);
        Registry {
            by_name,
            by_address,
            build_id,
        }
    })
}

/// Identifies this build of the executable: its size, modification time and inode, and the names
/// of its tasks. A parent and a worker with different ids refuse to talk (see the protocol note).
fn compute_build_id(by_name: &HashMap<&'static str, &'static TaskEntry>) -> u64 {
    let mut hasher = DefaultHasher::new();
    if let Ok(metadata) = std::fs::metadata("/proc/self/exe") {
        use std::os::unix::fs::MetadataExt;
        (metadata.len(), metadata.mtime(), metadata.mtime_nsec()).hash(&mut hasher);
        (metadata.dev(), metadata.ino()).hash(&mut hasher);
    }
    let mut names: Vec<&str> = by_name.keys().copied().collect();
    names.sort_unstable();
    names.hash(&mut hasher);
    hasher.finish()
}

/// This build's id.
pub(crate) fn build_id() -> u64 {
    registry().build_id
}

/// The entry of the task `name`, in a worker.
pub(crate) fn by_name(name: &str) -> Option<&'static TaskEntry> {
    registry().by_name.get(name).copied()
}

/// The registered name of `f`, in the parent.
///
/// # Errors
/// [`SubmitError::Unsupported`] when `f` has no `#[crew::task]` attribute.
pub(crate) fn name_of<A, R>(f: fn(A) -> R) -> Result<&'static str, SubmitError> {
    registry()
        .by_address
        .get(&(f as usize))
        .map(|entry| entry.name)
        .ok_or_else(|| SubmitError::Unsupported {
            message: format!(
                "the function `{}` is not registered for other processes; add #[crew::task] \
                 to its definition (it must be a free, non-generic fn of one argument)",
                std::any::type_name::<fn(A) -> R>()
            ),
        })
}

/// The trampoline behind `TaskEntry::call`: decode, call, encode.
///
/// # Errors
/// A message when the argument cannot be decoded or the result cannot be encoded.
pub fn call_one<A: DeserializeOwned, R: Serialize>(
    f: fn(A) -> R,
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
    f: fn(A) -> R,
    input: &[u8],
) -> Result<Vec<u8>, String> {
    let arguments: Vec<A> = codec::decode(input)?;
    let results: Vec<R> = arguments.into_iter().map(f).collect();
    codec::encode(&results)
}
