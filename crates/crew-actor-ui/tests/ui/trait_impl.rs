struct Counter {
    value: u64,
}

trait Incr {
    fn incr(&mut self, by: u64) -> u64;
}

#[crew::actor]
impl Incr for Counter {
    fn incr(&mut self, by: u64) -> u64 {
        self.value += by;
        self.value
    }
}

fn main() {}
