// An argument the attribute does not know is refused with the list of those it takes.
struct Counter;

#[crew::actor(stateles)]
impl Counter {
    fn new(_: ()) -> Self {
        Counter
    }
}

fn main() {}
