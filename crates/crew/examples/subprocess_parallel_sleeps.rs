//! Seed 002: ten `sleep 0.1` children run in parallel finish in about 0.1 s, not 1 s.
//!
//! Run: `cargo run --release -p crew --example subprocess_parallel_sleeps`

use std::time::Instant;

use crew::subprocess::{Command, Runner};

fn main() {
    // Python: procs = [Popen(['sleep', '0.1']) for _ in range(10)]; for p in procs: p.communicate()
    let start = Instant::now();
    let mut children: Vec<_> = (0..10)
        .map(|_| {
            Command::new("sleep")
                .arg("0.1")
                .spawn()
                .expect("start sleep")
        })
        .collect();
    for child in &mut children {
        child.communicate(None, None).expect("sleep ran");
    }
    println!(
        "Popen-style: finished in {:.3} seconds",
        start.elapsed().as_secs_f64()
    );

    // The same with the runner: at most 10 at a time, results as they complete.
    let start = Instant::now();
    let runner = Runner::new(10);
    let ok = runner
        .run((0..10).map(|_| Command::new("sleep").arg("0.1")))
        .filter(|result| result.success())
        .count();
    println!(
        "Runner: {ok}/10 succeeded, finished in {:.3} seconds",
        start.elapsed().as_secs_f64()
    );
}
