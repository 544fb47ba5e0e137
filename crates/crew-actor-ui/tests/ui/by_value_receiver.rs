struct Counter {
    value: u64,
}

#[crew::actor]
impl Counter {
    fn new(start: u64) -> Self {
        Counter { value: start }
    }

    fn into_value(self) -> u64 {
        self.value
    }
}

fn main() {}
