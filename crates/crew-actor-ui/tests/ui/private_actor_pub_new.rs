// A private actor type whose constructor is `pub`: the reference follows `new` (public), so
// its `Deref` to `ActorRef<Counter>` would leak the private type. The error points at `fn new`;
// the fix is a private `new` or `#[crew::actor(pub(self))]`.
mod counters {
    struct Counter {
        value: u64,
    }

    #[crew::actor]
    impl Counter {
        pub fn new(value: u64) -> Self {
            Counter { value }
        }

        fn incr(&mut self) -> u64 {
            self.value += 1;
            self.value
        }
    }
}

fn main() {}
