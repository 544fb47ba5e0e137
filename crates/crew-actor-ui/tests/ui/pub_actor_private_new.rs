// A public actor type whose constructor is private: the reference follows `new` (private), so
// the public type's `Actor` impl would leak a private reference. The error points at `fn new`.
pub struct Counter {
    value: u64,
}

#[crew::actor]
impl Counter {
    fn new(value: u64) -> Self {
        Counter { value }
    }

    fn incr(&mut self) -> u64 {
        self.value += 1;
        self.value
    }
}

fn main() {}
