//! A command that hangs is stopped at its timeout, together with the processes it started.
//!
//! Run: `cargo run -p crew --example subprocess_timeout`

use std::time::Duration;

use crew::subprocess::Command;

fn main() {
    // A shell that starts a grandchild and waits forever on it.
    let done = Command::shell("echo started; sleep 1000 & echo grandchild $!; wait")
        .timeout(Duration::from_millis(500))
        .grace(Duration::from_millis(200))
        .output()
        .expect("the shell starts");
    print!("{}", done.stdout_str());
    println!(
        "status: {}, ran {:.2} s, timed out: {:?}",
        done.status,
        done.duration.as_secs_f64(),
        done.timed_out
    );
    match done.check() {
        Ok(_) => println!("unexpectedly finished"),
        Err(error) => println!("error: {error}"),
    }
}
