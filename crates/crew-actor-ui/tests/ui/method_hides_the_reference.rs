struct Timer {
    running: bool,
}

#[crew::actor]
impl Timer {
    fn new(_: ()) -> Self {
        Timer { running: false }
    }

    /// `timer.stop()` would call this, not stop the actor.
    fn stop(&mut self) {
        self.running = false;
    }
}

fn main() {}
