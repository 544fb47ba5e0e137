struct Counter {
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

fn main() {
    // Copies of a stateful actor would each have their own count: refused.
    let _ = crew::actor::ActorOptions::<Counter>::new().instances(4);
}
