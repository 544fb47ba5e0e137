struct Greeter {
    greeted: u64,
}

#[crew::actor(stateless)]
impl Greeter {
    fn new(_: ()) -> Self {
        Greeter { greeted: 0 }
    }

    fn greet(&mut self, name: String) -> String {
        self.greeted += 1;
        format!("hello, {name}")
    }
}

fn main() {}
