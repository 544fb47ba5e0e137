struct Store<T> {
    items: Vec<T>,
}

#[crew::actor]
impl<T: Send + Sync + 'static> Store<T> {
    fn new(_: ()) -> Self {
        Store { items: Vec::new() }
    }

    fn len(&self) -> usize {
        self.items.len()
    }
}

fn main() {}
