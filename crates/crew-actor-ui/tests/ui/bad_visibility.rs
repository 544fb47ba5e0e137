// `vis` takes a Rust visibility; anything else is refused with what to write instead.
struct Counter;

#[crew::actor(vis = "public")]
impl Counter {
    fn new(_: ()) -> Self {
        Counter
    }
}

fn main() {}
