//! crew::subprocess::Runner: many commands with a concurrency limit, order, retries and halt.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use crew::subprocess::{Command, ExitStatus, Halt, HaltWhen, Runner};

#[test]
fn ten_sleeps_all_succeed() {
    let runner = Runner::new(10);
    let results: Vec<_> = runner
        .run((0..10).map(|_| Command::new("sleep").arg("0.1")))
        .collect();
    assert_eq!(results.len(), 10);
    assert!(results.iter().all(|r| r.success()));
    let mut seqs: Vec<_> = results.iter().map(|r| r.seq).collect();
    seqs.sort_unstable();
    assert_eq!(seqs, (1..=10).collect::<Vec<_>>());
}

#[test]
fn keep_order_yields_input_order() {
    // The first job is the slowest by far: completion order would put it last.
    let delays = ["0.6", "0", "0.2", "0", "0.1"];
    let runner = Runner::new(5).keep_order(true);
    let commands = delays
        .iter()
        .enumerate()
        .map(|(i, d)| Command::shell(format!("sleep {d}; echo {i}")));
    let out: Vec<String> = runner
        .run(commands)
        .map(|r| r.outcome.unwrap().stdout_str().trim().to_owned())
        .collect();
    assert_eq!(out, ["0", "1", "2", "3", "4"]);
}

#[test]
fn completion_order_puts_a_slow_first_job_last() {
    let runner = Runner::new(3);
    let commands = ["2", "0", "0"].iter().map(|d| Command::new("sleep").arg(d));
    let seqs: Vec<usize> = runner.run(commands).map(|r| r.seq).collect();
    assert_eq!(seqs.len(), 3);
    assert_eq!(seqs[2], 1);
}

#[test]
fn concurrency_limit_is_respected() {
    // Each job appends "+" when it starts and "-" when it ends; with a limit of 3 the running
    // count read from the log never exceeds 3.
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("log");
    let runner = Runner::new(3);
    let commands =
        (0..12).map(|_| Command::shell("echo + >> \"$1\"; sleep 0.05; echo - >> \"$1\"").arg(&log));
    assert!(runner.run(commands).all(|r| r.success()));
    let text = std::fs::read_to_string(&log).unwrap();
    let (mut running, mut max) = (0i32, 0i32);
    for line in text.lines() {
        running += if line == "+" { 1 } else { -1 };
        max = max.max(running);
    }
    assert_eq!(running, 0);
    assert!(max <= 3, "{max} jobs ran at once");
}

#[test]
fn retries_rerun_a_failing_job() {
    let dir = tempfile::tempdir().unwrap();
    let counter = dir.path().join("n");
    // Fails on attempts 1 and 2, succeeds on attempt 3.
    let flaky = || {
        Command::shell(
            "n=$(cat \"$1\" 2>/dev/null || echo 0); n=$((n+1)); echo $n > \"$1\"; [ $n -ge 3 ]",
        )
        .arg(&counter)
    };
    let result = Runner::new(1).retries(2).run([flaky()]).next().unwrap();
    assert!(result.success());
    assert_eq!(result.attempts, 3);

    std::fs::remove_file(&counter).unwrap();
    let result = Runner::new(1).retries(1).run([flaky()]).next().unwrap();
    assert!(!result.success());
    assert_eq!(result.attempts, 2);
}

#[test]
fn missing_programs_are_not_retried() {
    let result = Runner::new(1)
        .retries(5)
        .run([Command::new("crew-no-such-program-xyz")])
        .next()
        .unwrap();
    assert_eq!(result.attempts, 1);
    assert!(matches!(
        result.outcome,
        Err(crew::subprocess::Error::NotFound { .. })
    ));
}

#[test]
fn halt_now_kills_running_jobs_and_starts_no_more() {
    let runner = Runner::new(3)
        .halt(Halt::Now(HaltWhen::Fail(1)))
        .grace(Duration::from_secs(1));
    let commands = std::iter::once(Command::shell("sleep 0.2; exit 4"))
        .chain((0..20).map(|_| Command::new("sleep").arg("60")));
    let mut results = runner.run(commands);
    let all: Vec<_> = results.by_ref().collect();
    assert_eq!(results.halted_by(), Some(1));
    // The failing job and the two sleeps that ran beside it; the other 18 never started.
    assert_eq!(all.len(), 3);
    let failing = all.iter().find(|r| r.seq == 1).unwrap();
    assert_eq!(
        failing.outcome.as_ref().unwrap().status,
        ExitStatus::Code(4)
    );
    for result in all.iter().filter(|r| r.seq != 1) {
        assert_eq!(
            result.outcome.as_ref().unwrap().status,
            ExitStatus::Signal(libc::SIGTERM)
        );
    }
    assert!(runner.kill_switch().is_fired());
}

#[test]
fn halt_soon_lets_running_jobs_finish() {
    let runner = Runner::new(2).halt(Halt::Soon(HaltWhen::Fail(1)));
    let commands = vec![
        Command::new("false"),
        Command::shell("sleep 0.3; echo finished"),
        Command::new("true"),
        Command::new("true"),
    ];
    let all: Vec<_> = runner.run(commands).collect();
    assert_eq!(all.len(), 2);
    let sleeper = all.iter().find(|r| r.seq == 2).unwrap();
    assert_eq!(sleeper.outcome.as_ref().unwrap().stdout_str(), "finished\n");
}

#[test]
fn halt_on_success() {
    let runner = Runner::new(1).halt(Halt::Now(HaltWhen::Success(2)));
    let all: Vec<_> = runner.run((0..10).map(|_| Command::new("true"))).collect();
    assert_eq!(all.len(), 2);
}

#[test]
fn timeouts_apply_per_job() {
    let runner = Runner::new(4);
    let commands = (0..4).map(|i| {
        Command::new("sleep")
            .arg(if i % 2 == 0 { "60" } else { "0" })
            .timeout(Duration::from_secs(1))
            .grace(Duration::from_millis(100))
    });
    let mut timed_out: Vec<usize> = runner
        .run(commands)
        .filter(|r| r.outcome.as_ref().unwrap().timed_out.is_some())
        .map(|r| r.seq)
        .collect();
    timed_out.sort_unstable();
    assert_eq!(timed_out, [1, 3]);
}

#[test]
fn many_trivial_jobs() {
    let runner = Runner::new(8).keep_order(true);
    let results: Vec<_> = runner
        .run((0..500).map(|i| Command::new("echo").arg(i.to_string())))
        .collect();
    assert_eq!(results.len(), 500);
    for (i, result) in results.iter().enumerate() {
        assert_eq!(result.seq, i + 1);
        assert_eq!(
            result.outcome.as_ref().unwrap().stdout_str(),
            format!("{i}\n")
        );
    }
}

/// A slow first job while a thousand fast ones could finish: in input order the runner starts
/// no more than `limit` jobs ahead of its oldest unyielded one, so the results it holds back
/// stay bounded however long the input (it used to run on and buffer every finished job).
#[test]
fn keep_order_holds_back_at_most_the_limit() {
    let limit = 4;
    let runner = Runner::new(limit).keep_order(true);
    let pulled = Arc::new(AtomicUsize::new(0));
    let counter = pulled.clone();
    let commands = std::iter::once(Command::new("sleep").arg("0.5"))
        .chain((0..1_000).map(|_| Command::new("true")))
        .inspect(move |_| {
            counter.fetch_add(1, Ordering::SeqCst);
        });
    let mut results = runner.run(commands);
    let first = results.next().unwrap();
    assert_eq!(first.seq, 1);
    assert!(first.success());
    // Jobs 2..=4 finished long before the sleep; none beyond them was started.
    assert_eq!(pulled.load(Ordering::SeqCst), limit);
    assert_eq!(results.succeeded(), limit);
    let rest: Vec<_> = results.collect();
    assert_eq!(rest.len(), 1_000);
    for (result, seq) in rest.iter().zip(2..) {
        assert_eq!(result.seq, seq);
        assert!(result.success(), "job {seq}: {:?}", result.outcome);
    }
}

/// A halt takes effect when the failing job ends, not when its result's turn comes.
#[test]
fn keep_order_halts_as_soon_as_a_later_job_fails() {
    let runner = Runner::new(3)
        .keep_order(true)
        .halt(Halt::Now(HaltWhen::Fail(1)))
        .grace(Duration::from_secs(1));
    let commands = vec![
        Command::new("sleep").arg("60"),
        Command::shell("sleep 0.2; exit 4"),
        Command::new("sleep").arg("60"),
        Command::new("true"),
    ];
    let start = std::time::Instant::now();
    let mut results = runner.run(commands);
    let all: Vec<_> = results.by_ref().collect();
    assert!(
        start.elapsed() < Duration::from_secs(30),
        "the sleeps were not killed"
    );
    assert_eq!(results.halted_by(), Some(2));
    assert_eq!(all.iter().map(|r| r.seq).collect::<Vec<_>>(), [1, 2, 3]);
    let statuses: Vec<_> = all
        .iter()
        .map(|r| r.outcome.as_ref().unwrap().status)
        .collect();
    assert_eq!(
        statuses,
        [
            ExitStatus::Signal(libc::SIGTERM),
            ExitStatus::Code(4),
            ExitStatus::Signal(libc::SIGTERM)
        ]
    );
}

#[test]
fn halt_parses_gnu_parallel_syntax() {
    assert_eq!("never".parse::<Halt>(), Ok(Halt::Never));
    assert_eq!(
        "soon,fail=3".parse::<Halt>(),
        Ok(Halt::Soon(HaltWhen::Fail(3)))
    );
    assert_eq!(
        "now,done=2".parse::<Halt>(),
        Ok(Halt::Now(HaltWhen::Done(2)))
    );
    for bad in ["now", "now,fail", "now,fail=x", "now,fail=0", "now,oops=1"] {
        assert!(bad.parse::<Halt>().is_err(), "{bad}");
    }
}

#[test]
fn firing_the_kill_switch_while_jobs_start_leaves_nothing_running() {
    for round in 0..5 {
        let runner = Runner::new(8).grace(Duration::from_millis(200));
        let switch = runner.kill_switch().clone();
        let firer = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(20 * round));
            switch.fire(Duration::from_millis(200));
        });
        let results: Vec<_> = runner
            .run((0..200).map(|_| Command::new("sleep").arg("60")))
            .collect();
        firer.join().unwrap();
        assert!(results.len() <= 200);
        for result in &results {
            let status = result.outcome.as_ref().unwrap().status;
            assert!(status.signal().is_some(), "{status:?}");
        }
        assert_eq!(runner.kill_switch().running(), 0);
    }
}

#[test]
fn public_types_are_send_and_sync() {
    fn send_sync<T: Send + Sync>() {}
    fn send<T: Send>() {}
    send_sync::<Command>();
    send_sync::<crew::subprocess::Completed>();
    send_sync::<crew::subprocess::Error>();
    send_sync::<crew::subprocess::KillSwitch>();
    send_sync::<Runner>();
    send::<crew::subprocess::Child>();
    send::<crew::subprocess::JobResult>();
}

#[test]
fn jobs_read_ahead_start_nothing_after_a_halt() {
    // With one slot, jobs 2.. wait in the pool's queue (read ahead) while job 1 runs; the halt
    // it triggers must keep every one of them from starting.
    let dir = tempfile::tempdir().unwrap();
    let runner = Runner::new(1).halt(Halt::Soon(HaltWhen::Fail(1)));
    let mut commands = vec![Command::shell("sleep 0.2; exit 1")];
    for i in 0..4 {
        commands.push(Command::new("touch").arg(dir.path().join(format!("ran-{i}"))));
    }
    let all: Vec<_> = runner.run(commands).collect();
    assert_eq!(all.len(), 1);
    assert_eq!(all[0].seq, 1);
    let ran: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
    assert!(
        ran.is_empty(),
        "queued jobs started after the halt: {ran:?}"
    );
    // Without a halt, read-ahead changes nothing: every job runs once, each seq once.
    let runner = Runner::new(2);
    let mut seqs: Vec<usize> = runner
        .run((0..20).map(|_| Command::new("true")))
        .map(|r| {
            assert!(r.success());
            r.seq
        })
        .collect();
    seqs.sort_unstable();
    assert_eq!(seqs, (1..=20).collect::<Vec<_>>());
}
