struct Shared;

#[crew::actor(stateless)]
impl Shared {
    fn new(_: ()) -> Self {
        Shared
    }

    /// Makes `tell_shared`, which hides `ActorRef::tell_shared`.
    fn shared(&self) -> u32 {
        1
    }
}

fn main() {}
