struct Fetcher;

#[crew::actor]
impl Fetcher {
    fn new(_: ()) -> Self {
        Fetcher
    }

    async fn fetch(&self, url: String) -> String {
        url
    }
}

fn main() {}
