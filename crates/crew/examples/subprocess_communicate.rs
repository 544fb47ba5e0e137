//! Seeds 002 and 004: start a program, feed it input, read its answer (`Popen.communicate`).
//!
//! Run: `cargo run -p crew --example subprocess_communicate`

use std::time::Duration;

use crew::subprocess::{Command, Input};

fn main() -> Result<(), crew::subprocess::Error> {
    // Python: proc = Popen(['echo', 'Hello from the child!'], stdout=PIPE); out, err = proc.communicate()
    let mut child = Command::new("echo").arg("Hello from the child!").spawn()?;
    let done = child.communicate(None, None)?;
    print!("{}", done.stdout_str());

    // Seed 004: p = Popen(['nslookup'], stdin=PIPE, stdout=PIPE); p.communicate(b'...'),
    // here with `bc`, which needs no network.
    let mut child = Command::new("bc").stdin(Input::Piped).spawn()?;
    let done = child.communicate(
        Some(b"scale=3\n22/7\n2^64\n"),
        Some(Duration::from_secs(10)),
    )?;
    print!("bc answered:\n{}", done.stdout_str());
    println!("Exit code: {}", done.status);

    // A checksum of data fed through a pipe, checked for success in one call.
    let done = Command::new("md5sum")
        .stdin(Input::bytes(vec![b'x'; 1_000_000]))
        .checked_output()?;
    print!("md5 of a million x: {}", done.stdout_str());
    Ok(())
}
