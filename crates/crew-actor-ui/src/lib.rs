//! The crate holds the compile-fail tests of `#[crew::actor]` (`tests/ui`), apart from crew's
//! own tests so that trybuild builds crew with the fewest dependencies; and one public actor,
//! [`counters::Counter`], that `tests/across_crates.rs` uses from another crate: the
//! reference `#[crew::actor]` generates must be as public as the actor it calls.

/// A public actor in a public module: its reference, [`counters::CounterRef`], is public too
/// because its constructor is (`pub fn new`).
pub mod counters {
    /// Counts, one call at a time.
    #[derive(Debug)]
    pub struct Counter {
        value: u64,
    }

    #[crew::actor]
    impl Counter {
        /// Starts counting at `start`.
        pub fn new(start: u64) -> Self {
            Counter { value: start }
        }

        /// Adds `by`; the new value.
        pub fn incr(&mut self, by: u64) -> u64 {
            self.value += by;
            self.value
        }

        /// The current value.
        pub fn value(&self) -> u64 {
            self.value
        }
    }

    /// Spawns a counter on its own thread: a public function returning the public reference.
    ///
    /// # Errors
    /// Why the actor could not start.
    pub fn spawn_counter(start: u64) -> Result<CounterRef, crew::actor::ActorError> {
        crew::actor::spawn::<Counter>(start)
    }
}
