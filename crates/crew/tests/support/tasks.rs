//! `#[crew::task]`s that several process test binaries run (included with `#[path]`): each
//! binary serves as its own worker, so a task is registered in every binary that submits it.

/// `x * x`.
#[crew::task]
pub(crate) fn square(x: u64) -> u64 {
    x * x
}

/// `x`, but panics on a multiple of three: a task that fails for some items of a map.
#[crew::task]
pub(crate) fn fails_on_multiples_of_three(x: u64) -> u64 {
    assert!(x % 3 != 0, "multiple of three");
    x
}
