//! Nothing here: the crate holds the compile-fail tests of `#[crew::actor]` (`tests/ui`), apart
//! from crew's own tests so that trybuild builds crew with the fewest dependencies.
