//! A crew worker program registering `conformance::scale` as `fn(u64) -> u64`: the same code
//! as the tests' parent, in another executable.

#[crew::task(name = "conformance::scale")]
fn scale(x: u64) -> u64 {
    3 * x
}

#[crew::task(name = "conformance::pid")]
fn pid(_: ()) -> u32 {
    std::process::id()
}

fn main() {
    crew::init(); // as a worker, serves and exits here
    eprintln!("sig_a is a crew worker program: start it with ProcessPoolBuilder::worker_program");
    let _ = (scale(1), pid(()));
}
