struct Mailer;

#[crew::actor(stateless)]
impl Mailer {
    fn new(_: ()) -> Self {
        Mailer
    }

    fn send(&self, to: String) -> String {
        to
    }

    /// Collides with the `tell_send` that `send` makes.
    fn tell_send(&self, to: String) -> String {
        to
    }
}

fn main() {}
