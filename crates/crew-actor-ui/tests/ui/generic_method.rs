struct Store;

#[crew::actor]
impl Store {
    fn new(_: ()) -> Self {
        Store
    }

    fn put<T: serde::Serialize>(&mut self, value: T) -> usize {
        let _ = value;
        0
    }
}

fn main() {}
