//! A crew worker program registering `conformance::scale` with a changed signature,
//! `fn(u32) -> u64`: the parent must refuse to run its `fn(u64) -> u64` here.

#[crew::task(name = "conformance::scale")]
fn scale(x: u32) -> u64 {
    3 * u64::from(x)
}

#[crew::task(name = "conformance::pid")]
fn pid(_: ()) -> u32 {
    std::process::id()
}

fn main() {
    crew::init(); // as a worker, serves and exits here
    eprintln!("sig_b is a crew worker program: start it with ProcessPoolBuilder::worker_program");
    let _ = (scale(1), pid(()));
}
