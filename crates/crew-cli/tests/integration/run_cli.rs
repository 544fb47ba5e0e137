//! `crew run` end to end: the real binary, real child processes, real signals.

use std::io::Write;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::support::{
    crew_run, crew_run_stdin, line_count, stderr, stdout, succeeded, wait_bounded, wait_until, CREW,
};

fn sorted_lines(text: &str) -> Vec<String> {
    let mut lines: Vec<String> = text.lines().map(str::to_owned).collect();
    lines.sort();
    lines
}

#[test]
fn arguments_after_triple_colon_with_placeholders() {
    let out = crew_run(&[
        "-j",
        "2",
        "-k",
        "--",
        "echo",
        "{}",
        "{.}",
        "{/}",
        "{//}",
        "{/.}",
        "{#}",
        ":::",
        "dir/a.txt",
        "b.tar.gz",
    ]);
    assert!(out.status.success(), "{out:?}");
    assert_eq!(
        stdout(&out),
        "dir/a.txt dir/a a.txt dir a 1\nb.tar.gz b.tar b.tar.gz . b.tar 2\n"
    );
}

#[test]
fn arguments_from_stdin_are_appended_without_placeholder() {
    let out = crew_run_stdin(&["-j", "4", "--", "echo", "arg:"], "one\ntwo\nthree\n");
    assert!(out.status.success());
    assert_eq!(
        sorted_lines(&stdout(&out)),
        ["arg: one", "arg: three", "arg: two"]
    );
}

/// A job that sleeps for its argument (seconds), then prints it.
const SLEEP_THEN_ECHO: [&str; 4] = ["sh", "-c", "sleep $1; echo $1", "sh"];

#[test]
fn keep_order_prints_in_input_order() {
    let out = crew_run(
        &[
            &["-j", "4", "--keep-order", "--"][..],
            &SLEEP_THEN_ECHO,
            &[":::", "0.5", "0", "0.2", "0.1"],
        ]
        .concat(),
    );
    assert_eq!(stdout(&out), "0.5\n0\n0.2\n0.1\n");
}

#[test]
fn completion_order_by_default() {
    let out = crew_run(&["-j", "2", "--", "sleep", ":::", "1.5", "0"]);
    assert!(out.status.success());
    let out = crew_run(
        &[
            &["-j", "2", "--"][..],
            &SLEEP_THEN_ECHO,
            &[":::", "1.5", "0"],
        ]
        .concat(),
    );
    assert_eq!(stdout(&out), "0\n1.5\n");
}

#[test]
fn output_of_each_job_is_never_interleaved() {
    // Each job prints 2,000 lines slowly enough to overlap with the others.
    let script = "i=0; while [ $i -lt 2000 ]; do echo \"$1 $i\"; i=$((i+1)); done";
    let out = crew_run(&[
        "-j", "4", "--", "sh", "-c", script, "sh", ":::", "a", "b", "c", "d",
    ]);
    let text = stdout(&out);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 8000);
    for block in lines.chunks(2000) {
        let tag = block[0].split(' ').next().unwrap();
        for (i, line) in block.iter().enumerate() {
            assert_eq!(*line, format!("{tag} {i}"));
        }
    }
}

#[test]
fn tag_prefixes_every_line_with_the_argument() {
    let out = crew_run(&["--tag", "-k", "--", "printf", "x\\ny\\n", ":::", "p", "q"]);
    // printf gets the argument appended as an unused extra word.
    assert_eq!(stdout(&out), "p\tx\np\ty\nq\tx\nq\ty\n");
}

#[test]
fn shell_scripts_quote_arguments() {
    let out = crew_run(&["-k", "--", "echo {} | tr a-z A-Z", ":::", "it's", "a b"]);
    assert_eq!(stdout(&out), "IT'S\nA B\n");
}

#[test]
fn exit_status_is_the_number_of_failed_jobs() {
    let out = crew_run(&[
        "--", "sh", "-c", "exit $1", "sh", ":::", "0", "1", "2", "0", "3",
    ]);
    assert_eq!(out.status.code(), Some(3));
    let out = crew_run(&["--", "true", ":::", "a", "b"]);
    assert_eq!(out.status.code(), Some(0));
}

#[test]
fn exit_status_is_capped_at_101() {
    let args: Vec<String> = (0..120).map(|i| i.to_string()).collect();
    let mut cmd = vec!["-j", "8", "--", "false", ":::"];
    cmd.extend(args.iter().map(String::as_str));
    let out = crew_run(&cmd);
    assert_eq!(out.status.code(), Some(101));
}

#[test]
fn joblog_has_gnu_parallel_format() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("joblog");
    let out = crew_run(&[
        "--joblog",
        log.to_str().unwrap(),
        "--timeout",
        "2s",
        "--grace",
        "100ms",
        ":::",
        "echo hi",
        "exit 3",
        "kill -9 $$",
        "sleep 30",
    ]);
    assert_eq!(out.status.code(), Some(3));
    let text = std::fs::read_to_string(&log).unwrap();
    let mut lines = text.lines();
    assert_eq!(
        lines.next().unwrap(),
        "Seq\tHost\tStarttime\tJobRuntime\tSend\tReceive\tExitval\tSignal\tCommand"
    );
    let mut rows: Vec<Vec<&str>> = lines.map(|l| l.split('\t').collect()).collect();
    rows.sort_by_key(|row| row[0].parse::<u32>().unwrap());
    assert_eq!(rows.len(), 4);
    for row in &rows {
        assert_eq!(row.len(), 9, "{row:?}");
        assert_eq!(row[1], ":");
        let (secs, millis) = row[2].split_once('.').unwrap();
        assert!(secs.parse::<u64>().unwrap() > 1_600_000_000);
        assert_eq!(millis.len(), 3);
        assert!(row[3].trim().parse::<f64>().unwrap() >= 0.0);
        assert_eq!(row[4], "0");
    }
    // Receive, Exitval, Signal.
    assert_eq!(&rows[0][5..8], ["3", "0", "0"]);
    assert_eq!(&rows[1][5..8], ["0", "3", "0"]);
    assert_eq!(&rows[2][5..8], ["0", "0", "9"]);
    assert_eq!(&rows[3][5..8], ["0", "-1", "15"]);
    assert_eq!(rows[0][8], "echo hi");
    assert_eq!(rows[2][8], "kill -9 $$");
}

#[test]
fn without_a_command_each_argument_is_a_shell_command() {
    let out = crew_run(&["-k", ":::", "echo one", "echo two | tr a-z A-Z"]);
    assert_eq!(stdout(&out), "one\nTWO\n");
    let out = crew_run_stdin(&["-k"], "echo a; echo b\nexit 2\n");
    assert_eq!(stdout(&out), "a\nb\n");
    assert_eq!(out.status.code(), Some(1));
}

#[test]
fn bench_run_measures_every_implementation() {
    // GNU parallel must be installed (scripts/test installs it): a peer that cannot run fails
    // this test rather than passing unseen.
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("rows.json");
    let out = Command::new(CREW)
        .args(["bench", "run", "--count", "20", "--reps", "1", "--json"])
        .arg(&json)
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let rows: Vec<serde_json::Value> =
        serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    assert_eq!(rows.len(), 12);
    for case in ["true-2000", "sleep-10", "product", "argfile"] {
        for name in ["crew-run", "xargs", "gnu-parallel"] {
            let row = rows
                .iter()
                .find(|r| r["case"] == case && r["impl"] == name)
                .unwrap_or_else(|| panic!("no row for {case} {name}"));
            if case == "product" && name == "xargs" {
                assert_eq!(
                    row["note"],
                    "not available (xargs has no input sources to combine)"
                );
                continue;
            }
            assert!(row["seconds"].as_f64().is_some_and(|s| s > 0.0), "{row}");
            assert_eq!(row["note"], serde_json::Value::Null, "{row}");
            assert_eq!(row["rounds"], 1, "{row}");
        }
    }
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("crew-run"));
}

#[test]
fn bench_run_shows_a_missing_peer_as_not_available() {
    // A PATH with what the jobs and xargs need, but no GNU parallel.
    let dir = tempfile::tempdir().unwrap();
    let bin = dir.path().join("bin");
    std::fs::create_dir(&bin).unwrap();
    for tool in ["true", "sleep", "xargs"] {
        let found = Command::new("sh")
            .args(["-c", &format!("command -v {tool}")])
            .output()
            .unwrap();
        let path = String::from_utf8_lossy(&found.stdout).trim().to_owned();
        std::os::unix::fs::symlink(&path, bin.join(tool)).unwrap();
    }
    let json = dir.path().join("rows.json");
    let out = Command::new(CREW)
        .args(["bench", "run", "--count", "10", "--reps", "1", "--json"])
        .arg(&json)
        .env("PATH", &bin)
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let rows: Vec<serde_json::Value> =
        serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    for row in rows.iter().filter(|r| r["impl"] == "gnu-parallel") {
        assert_eq!(
            row["note"],
            "not available (not installed: apt-get install parallel)"
        );
        assert_eq!(row["seconds"], serde_json::Value::Null);
    }
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.lines().any(|line| line.starts_with("true-2000")
            && line.contains("gnu-parallel")
            && line.contains("not available (not installed: apt-get install parallel)")),
        "{text}"
    );
}

#[test]
fn retries_rerun_failing_jobs() {
    let dir = tempfile::tempdir().unwrap();
    let counter = dir.path().join("n");
    let script = format!(
        "n=$(cat {0} 2>/dev/null || echo 0); n=$((n+1)); echo $n > {0}; echo attempt $n; [ $n -ge 3 ]",
        counter.display()
    );
    let out = crew_run(&["--retries", "2", "--", "sh", "-c", &script, ":::", "x"]);
    assert!(out.status.success(), "{out:?}");
    assert_eq!(stdout(&out), "attempt 3\n");
}

#[test]
fn halt_now_fail_stops_at_once_with_the_failing_exit_code() {
    let start = Instant::now();
    let out = crew_run(&[
        "-j",
        "3",
        "--halt",
        "now,fail=1",
        "--grace",
        "1s",
        "--",
        "sh",
        "-c",
        "if [ $1 = fail ]; then sleep 0.2; exit 4; fi; sleep 60",
        "sh",
        ":::",
        "fail",
        "a",
        "b",
        "c",
        "d",
    ]);
    assert!(start.elapsed() < Duration::from_secs(30));
    assert_eq!(out.status.code(), Some(4));
}

#[test]
fn halt_soon_lets_running_jobs_finish() {
    let out = crew_run(&[
        "-j",
        "2",
        "-k",
        "--halt",
        "soon,fail=1",
        "--",
        "sh",
        "-c",
        "if [ $1 = fail ]; then exit 5; fi; sleep 0.3; echo done $1",
        "sh",
        ":::",
        "fail",
        "slow",
        "never1",
        "never2",
    ]);
    assert_eq!(out.status.code(), Some(5));
    assert_eq!(stdout(&out), "done slow\n");
}

#[test]
fn missing_command_is_reported_and_counted() {
    let out = crew_run(&["--", "crew-no-such-program-xyz", ":::", "1", "2"]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("command not found: `crew-no-such-program-xyz`"),
        "{err}"
    );
}

#[test]
fn bad_options_are_explained() {
    let out = crew_run(&["--halt", "whenever", "--", "true", ":::", "1"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("invalid halt"));
    let out = crew_run(&["--timeout", "soon", "--", "true", ":::", "1"]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("invalid duration"));
}

fn alive(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => false,
        Ok(stat) => {
            let state = stat.rsplit(')').next().unwrap_or("").trim_start();
            !(state.starts_with('Z') || state.starts_with('X'))
        }
    }
}

#[test]
fn sigint_and_sigterm_stop_all_jobs_and_their_children() {
    for signal in [libc::SIGINT, libc::SIGTERM] {
        let dir = tempfile::tempdir().unwrap();
        let pids = dir.path().join("pids");
        let script = format!(
            "echo $$ >> {0}; sleep 60 & echo $! >> {0}; wait",
            pids.display()
        );
        let mut child = Command::new(CREW)
            .args([
                "run", "-j", "3", "--grace", "1s", "--", "sh", "-c", &script, ":::",
            ])
            .args(["1", "2", "3", "4", "5"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        // Wait for the three running jobs to have written their pids (shell and sleep).
        let deadline = Instant::now() + Duration::from_secs(20);
        let started = loop {
            let text = std::fs::read_to_string(&pids).unwrap_or_default();
            let list: Vec<u32> = text.lines().filter_map(|l| l.parse().ok()).collect();
            if list.len() >= 6 || Instant::now() > deadline {
                break list;
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        assert_eq!(started.len(), 6, "jobs did not start");
        // SAFETY: kill(2) on our own child's pid, with a valid signal number.
        unsafe { libc::kill(child.id() as i32, signal) };
        let status = child.wait().unwrap();
        assert_eq!(status.code(), Some(130));
        let deadline = Instant::now() + Duration::from_secs(10);
        while started.iter().any(|&pid| alive(pid)) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        for pid in &started {
            assert!(!alive(*pid), "process {pid} survived signal {signal}");
        }
        // Jobs 4 and 5 never started.
        let text = std::fs::read_to_string(&pids).unwrap();
        assert_eq!(text.lines().count(), 6);
    }
}

#[test]
fn sigint_ends_a_run_whose_stdin_never_closes() {
    let dir = tempfile::tempdir().unwrap();
    let pids = dir.path().join("pids");
    let script = format!("echo $$ >> {}; exec sleep 60", pids.display());
    let mut child = Command::new(CREW)
        .args(["run", "-j", "2", "--grace", "1s", "--", "sh", "-c", &script])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    // One line for two slots: crew is left blocked reading the next argument.
    stdin.write_all(b"a\n").unwrap();
    stdin.flush().unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    let started = loop {
        let text = std::fs::read_to_string(&pids).unwrap_or_default();
        let list: Vec<u32> = text.lines().filter_map(|l| l.parse().ok()).collect();
        if !list.is_empty() || Instant::now() > deadline {
            break list;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    assert_eq!(started.len(), 1);
    // SAFETY: kill(2) on our own child's pid, with a valid signal number.
    unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
    let status = child.wait().unwrap();
    drop(stdin);
    assert_eq!(status.code(), Some(130));
    for pid in started {
        let deadline = Instant::now() + Duration::from_secs(10);
        while alive(pid) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        assert!(!alive(pid), "job {pid} survived");
    }
}

#[test]
fn short_options_with_attached_values_are_options_not_the_command() {
    // GNU parallel's and xargs' habit: -j4, -P4. Before the fix, `-j2` became the command.
    let out = crew_run(&["-j2", "-k", "echo", "{}", ":::", "a", "b"]);
    assert!(out.status.success(), "{out:?}");
    assert_eq!(stdout(&out), "a\nb\n");
    let out = crew_run(&["-kj2", "echo", ":::", "c", "d"]);
    assert!(out.status.success(), "{out:?}");
    assert_eq!(stdout(&out), "c\nd\n");
    // Once the command has started, a word that looks like an option is the command's.
    let out = crew_run(&["-k", "echo", "-n", "{}", "-j1", ":::", "e"]);
    assert!(out.status.success(), "{out:?}");
    assert_eq!(stdout(&out), "e -j1");
    // `-j0` (as many at once as fit, as in GNU parallel) is an option too.
    let out = crew_run(&["-j0", "echo", ":::", "a"]);
    assert!(out.status.success(), "{out:?}");
    assert_eq!(stdout(&out), "a\n");
}

#[test]
fn credentials_in_a_cluster_url_never_reach_an_error_message() {
    // Port 1 on loopback refuses at once: every command fails to connect and says where.
    let cases: [&[&str]; 4] = [
        &[
            "run",
            "--cluster",
            "nats://bob:s3cretpw@127.0.0.1:1",
            "echo",
            ":::",
            "a",
        ],
        &[
            "cluster",
            "status",
            "--nats",
            "nats://tok3nvalue@127.0.0.1:1",
        ],
        &["worker", "--nats", "nats://bob:s3cretpw@127.0.0.1:1"],
        &["cluster", "dlq", "--nats", "tok3nvalue@127.0.0.1:1"],
    ];
    for args in cases {
        let out = Command::new(CREW)
            .args(args)
            .env_remove("CREW_NATS_TOKEN")
            .stdin(Stdio::null())
            .output()
            .unwrap();
        assert!(!out.status.success(), "{args:?}: {out:?}");
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(text.contains("127.0.0.1:1"), "{args:?}: {text}");
        for secret in ["s3cretpw", "tok3nvalue", "bob"] {
            assert!(!text.contains(secret), "{args:?} printed {secret}: {text}");
        }
    }
}

#[test]
fn file_names_that_are_not_utf8_reach_the_job_byte_for_byte() {
    use std::ffi::OsStr;
    use std::os::unix::ffi::OsStrExt;
    // A Latin-1 file name, as `find` prints it on an old file system.
    let name = OsStr::from_bytes(b"caf\xe9 \xff.txt");
    let run = |args: &[&OsStr], input: &[u8]| crew_run_stdin(args, input);
    fn os<'a>(words: &[&'a str]) -> Vec<&'a OsStr> {
        words.iter().map(|word| OsStr::new(*word)).collect()
    }
    // Direct mode, from `:::`.
    let out = run(
        &[
            &os(&["-k", "printf", "[%s]\\n", "{}", "{.}", ":::"])[..],
            &[name],
        ]
        .concat(),
        b"",
    );
    assert!(out.status.success(), "{out:?}");
    assert_eq!(out.stdout, b"[caf\xe9 \xff.txt]\n[caf\xe9 \xff]\n");
    // A shell script, from standard input, NUL-separated, with --tag.
    let out = run(
        &os(&["-0", "-k", "--tag", "printf '%s|' \"{}\" {/}"]),
        b"d/caf\xe9\0plain\0",
    );
    assert!(out.status.success(), "{out:?}");
    assert_eq!(
        out.stdout,
        b"d/caf\xe9\td/caf\xe9|caf\xe9|plain\tplain|plain|"
    );
    // --results names the job's directory with the same bytes; --dry-run prints them quoted.
    let dir = tempfile::tempdir().unwrap();
    let out = run(
        &[
            &os(&["--results", dir.path().to_str().unwrap(), "true", ":::"])[..],
            &[name],
        ]
        .concat(),
        b"",
    );
    assert!(out.status.success(), "{out:?}");
    assert!(dir.path().join("1").join(name).join("exit").exists());
    let out = run(
        &[&os(&["--dry-run", "cat", ":::"])[..], &[name]].concat(),
        b"",
    );
    assert_eq!(out.stdout, b"cat 'caf\xe9 \xff.txt'\n", "{out:?}");
}

#[test]
fn a_joblog_with_a_non_utf8_command_is_written_as_bytes_and_resumed() {
    use std::ffi::OsStr;
    use std::os::unix::ffi::OsStrExt;
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("log");
    let run = |extra: &[&str]| {
        Command::new(CREW)
            .arg("run")
            .args(["--joblog", log.to_str().unwrap()])
            .args(extra)
            .args(["-k", "echo", ":::"])
            .arg(OsStr::from_bytes(b"caf\xe9"))
            .arg("b")
            .output()
            .unwrap()
    };
    let first = run(&[]);
    assert!(first.status.success(), "{first:?}");
    assert_eq!(first.stdout, b"caf\xe9\nb\n");
    let logged = std::fs::read(&log).unwrap();
    assert!(logged.ends_with(b"\techo b\n"), "{logged:?}");
    assert!(
        logged.windows(12).any(|w| w == b"echo 'caf\xe9'\n"),
        "{logged:?}"
    );
    let resumed = run(&["--resume"]);
    assert!(resumed.status.success(), "{resumed:?}");
    assert_eq!(resumed.stdout, b"");
}

#[test]
fn a_huge_job_limit_starts_threads_only_for_the_jobs_there_are() {
    // Before the fix, -j 65535 started 65,535 threads up front (gigabytes, then an abort).
    let start = Instant::now();
    let out = crew_run(&["-j", "65535", "-k", "echo", ":::", "1", "2", "3"]);
    assert!(out.status.success(), "{out:?}");
    assert_eq!(stdout(&out), "1\n2\n3\n");
    assert!(
        start.elapsed() < Duration::from_secs(20),
        "{:?}",
        start.elapsed()
    );
}

#[test]
fn timeout_zero_means_no_time_limit() {
    // GNU parallel and timeout(1) read 0 as "no limit"; before the fix the job was killed at once.
    let out = crew_run(&["--timeout", "0", "-k", ":::", "sleep 0.2; echo slept"]);
    assert_eq!(crate::support::succeeded(&out), "slept\n");
    let help = Command::new(CREW).args(["run", "--help"]).output().unwrap();
    assert!(
        stdout(&help).contains("0 means no time limit"),
        "{}",
        stdout(&help)
    );
}

#[test]
fn joblog_keeps_tabs_and_writes_newlines_as_nul_like_gnu_parallel() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("log");
    let script = "printf 'a\\tb'\t>/dev/null\necho {}";
    let run = |extra: &[&str]| {
        let mut args = vec!["--joblog", log.to_str().unwrap()];
        args.extend_from_slice(extra);
        args.extend_from_slice(&["-k", script, ":::", "x", "y"]);
        crew_run(&args)
    };
    let first = run(&[]);
    assert_eq!(crate::support::succeeded(&first), "x\ny\n");
    let logged = std::fs::read(&log).unwrap();
    // GNU parallel 20221122 writes `printf 'a\tb'<TAB>>/dev/null<NUL>echo x` for this job: the
    // command is the last column, tabs kept, each newline a NUL so the row stays one line.
    assert!(
        logged.ends_with(b"\tprintf 'a\\tb'\t>/dev/null\0echo y\n"),
        "{:?}",
        String::from_utf8_lossy(&logged)
    );
    assert_eq!(logged.iter().filter(|&&b| b == b'\n').count(), 3);
    // --resume still finds both jobs, --resume-failed finds them succeeded.
    for resume in ["--resume", "--resume-failed"] {
        let again = run(&[resume]);
        assert_eq!(crate::support::succeeded(&again), "", "{resume}");
    }
}

/// crew's own peak memory (VmHWM) in KiB, printed by the job that runs after a huge one.
fn peak_kib(line: &str) -> u64 {
    let digits: String = line.chars().filter(char::is_ascii_digit).collect();
    digits
        .parse()
        .unwrap_or_else(|_| panic!("no VmHWM in {line:?}"))
}

#[test]
fn the_open_file_limit_is_raised_only_as_far_as_the_jobs_need() {
    // Every job inherits crew's soft limit: raised to the hard one (20,000 here, a million in
    // many containers) it slows programs that close every descriptor up to it.
    let soft_limit_of_a_job = |soft: u32| {
        let output = Command::new("sh")
            .arg("-c")
            .arg(format!(
                "ulimit -Sn {soft} && exec \"$0\" run -j 2 'ulimit -Sn; : {{}}' ::: 1"
            ))
            .arg(CREW)
            .stdin(Stdio::null())
            .output()
            .unwrap();
        assert!(output.status.success(), "{output:?}");
        stdout(&output).trim().parse::<u64>().unwrap()
    };
    // Two jobs need 2 x 6 + 32 = 44 files.
    assert_eq!(soft_limit_of_a_job(100), 100, "raised though enough");
    assert_eq!(
        soft_limit_of_a_job(40),
        44,
        "not raised to what two jobs need"
    );
}

#[test]
fn a_job_whose_output_cannot_be_spooled_is_stopped_not_left_running() {
    // With `$TMPDIR` unusable, the job's output beyond 1 MiB has nowhere to go: the job fails
    // with the reason, and its process group is ended and reaped (before the fix it ran on
    // outside every timeout and kill switch: here `sleep 30`, past crew's own exit).
    let dir = tempfile::tempdir().unwrap();
    let pid_file = dir.path().join("pid");
    let script = format!(
        "echo $$ > {}; head -c 3000000 /dev/zero; exec sleep 30",
        pid_file.display()
    );
    let started = Instant::now();
    let child = Command::new(CREW)
        .args(["run", "-j", "1", ":::", &script])
        .env("TMPDIR", dir.path().join("missing"))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let output = wait_bounded(child, "crew run with an unusable TMPDIR");
    assert!(!output.status.success(), "{output:?}");
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "crew waited for the job it could not spool"
    );
    let pid: i32 = std::fs::read_to_string(&pid_file)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    let alive = rustix::process::test_kill_process(rustix::process::Pid::from_raw(pid).unwrap());
    assert!(alive.is_err(), "the job (pid {pid}) is still running");
}

#[test]
fn a_job_printing_far_more_than_memory_is_spooled_and_streamed_in_order() {
    use std::io::BufRead;
    // 50 MiB from the first job, 99 x's a line; the second (run after the first was printed:
    // -j 1 -k) reports crew's peak resident memory from /proc. Before the fix crew held all of
    // it (about 150 MiB at its peak); now about 40 MiB (the debug binary's base is ~25 MiB).
    const LINES: u64 = 1 << 19;
    let mut child = Command::new(CREW)
        .args(["run", "-j", "1", "-k", "--tag", ":::"])
        .arg(format!("yes {} | head -n {LINES}", "x".repeat(99)))
        .arg("grep VmHWM /proc/$PPID/status")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut out = std::io::BufReader::new(child.stdout.take().unwrap());
    let (mut lines, mut line, mut last) = (0u64, Vec::new(), String::new());
    while out.read_until(b'\n', &mut line).unwrap() > 0 {
        let text = String::from_utf8(std::mem::take(&mut line)).unwrap();
        if text.starts_with("grep VmHWM") {
            last = text;
            continue;
        }
        // Every line of the spooled output arrives whole, tagged once, in order.
        assert!(last.is_empty(), "output after the second job: {text:?}");
        let (tag, body) = text.split_once('\t').unwrap();
        assert!(tag.starts_with("yes xxx"), "{text:?}");
        assert!(
            body.len() == 100 && body.bytes().take(99).all(|b| b == b'x'),
            "{text:?}"
        );
        lines += 1;
    }
    assert!(child.wait().unwrap().success());
    assert_eq!(lines, LINES);
    let peak = peak_kib(&last);
    assert!(
        peak < 64 * 1024,
        "crew's peak resident memory was {peak} KiB for a job that printed 50 MiB"
    );
}

#[test]
fn spooled_output_reaches_results_and_the_joblog_whole() {
    let dir = tempfile::tempdir().unwrap();
    let results = dir.path().join("results");
    let log = dir.path().join("log");
    let out = crew_run(&[
        "--results",
        results.to_str().unwrap(),
        "--joblog",
        log.to_str().unwrap(),
        "sh",
        "-c",
        "seq {} | tee /dev/stderr",
        ":::",
        "400000",
    ]);
    let expected: String = (1..=400_000).map(|n| format!("{n}\n")).collect();
    assert!(
        expected.len() > 2 << 20,
        "more than the 1 MiB held in memory"
    );
    assert_eq!(crate::support::succeeded(&out), expected);
    assert_eq!(crate::support::stderr(&out), expected);
    let job = results.join("1").join("400000");
    assert_eq!(
        std::fs::read_to_string(job.join("stdout")).unwrap(),
        expected
    );
    assert_eq!(
        std::fs::read_to_string(job.join("stderr")).unwrap(),
        expected
    );
    let logged = std::fs::read_to_string(&log).unwrap();
    let row: Vec<&str> = logged.lines().nth(1).unwrap().split('\t').collect();
    assert_eq!(row[5], expected.len().to_string(), "Receive: {row:?}");
}

#[test]
fn a_closed_stdout_stops_the_run_like_sigpipe_stops_gnu_parallel() {
    use std::io::BufRead;
    // `crew run ... | head -1`: once head has gone, the other jobs would run for nobody.
    // Before the fix all 200 jobs ran (about 10 s at -j 2) and crew exited 0.
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("log");
    let mut child = Command::new(CREW)
        .args(["run", "-j", "2", "--joblog", log.to_str().unwrap()])
        .args(["echo {}; sleep 0.1", ":::"])
        .args((1..=200).map(|n| n.to_string()))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut first = String::new();
    std::io::BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut first)
        .unwrap();
    // The reader is dropped here: the pipe is closed, as when `head -1` exits.
    let output = crate::support::wait_bounded(child, "crew run with a closed stdout");
    assert_eq!(output.status.code(), Some(141), "{output:?}");
    assert!(output.stderr.is_empty(), "{output:?}");
    let logged = std::fs::read_to_string(&log).unwrap().lines().count() - 1;
    assert!(
        (2..=10).contains(&logged),
        "{logged} jobs ran after the reader left"
    );
}

#[test]
fn a_nul_byte_in_line_input_is_explained_and_only_its_job_fails() {
    // As xargs and GNU parallel do, crew warns and suggests -0; the job that cannot start says
    // why in words (before: "nul byte found in provided data", no hint).
    let out = crew_run_stdin(&["-k", "echo"], b"a\0b\nc\n");
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert_eq!(stdout(&out), "c\n");
    let err = crate::support::stderr(&out);
    assert!(err.contains("did you mean -0"), "{err}");
    assert!(
        err.contains("holds a NUL byte, which no program can receive") && err.contains("a\\0b"),
        "{err}"
    );
}

#[test]
fn more_jobs_than_open_files_allow_run_fewer_at_a_time_instead_of_failing() {
    use std::os::unix::process::CommandExt;
    // With `ulimit -n 160` (soft and hard), -j 100 needs ~300 descriptors: before the fix most
    // jobs failed with "Too many open files" (exit 101).
    let mut command = Command::new(CREW);
    command
        .args([
            "run",
            "-j",
            "100",
            "--",
            "sh",
            "-c",
            "sleep 0.3; echo {}",
            ":::",
        ])
        .args((1..=100).map(|n| n.to_string()))
        .stdin(Stdio::null());
    // SAFETY: runs in the forked child before exec; setrlimit is async-signal-safe and touches
    // only the child's own limits.
    unsafe {
        command.pre_exec(|| {
            let limit = libc::rlimit {
                rlim_cur: 160,
                rlim_max: 160,
            };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &limit) == 0 {
                Ok(())
            } else {
                Err(std::io::Error::last_os_error())
            }
        });
    }
    let out = command.output().unwrap();
    let mut printed: Vec<u32> = stdout(&out).lines().map(|l| l.parse().unwrap()).collect();
    printed.sort_unstable();
    assert_eq!(printed, (1..=100).collect::<Vec<_>>(), "{out:?}");
    assert!(out.status.success(), "{out:?}");
    let err = crate::support::stderr(&out);
    assert!(
        err.contains("open-file limit (160") && err.contains("running 21 at a time"),
        "{err}"
    );
}

#[test]
fn a_closed_stderr_never_turns_the_exit_status_into_a_panic() {
    use std::io::BufRead;
    // `crew run ... 2>&1 | head -1`: crew's own messages (here "timed out") then go to a closed
    // pipe. Before the fix `eprintln!` panicked there and crew exited 101.
    // Close-on-exec: a child another test starts meanwhile must not keep the read end open.
    let (read, write) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).unwrap();
    let child = Command::new(CREW)
        .args(["run", "-j", "1", "--timeout", "0.2", "--grace", "0"])
        .args(["echo hi; sleep 5", ":::", "1", "2", "3"])
        .stdin(Stdio::null())
        .stdout(Stdio::from(write.try_clone().unwrap()))
        .stderr(Stdio::from(write))
        .spawn()
        .unwrap();
    let mut first = String::new();
    std::io::BufReader::new(std::fs::File::from(read))
        .read_line(&mut first)
        .unwrap();
    assert_eq!(first, "hi\n");
    let output = crate::support::wait_bounded(child, "crew run with closed stdout and stderr");
    assert_eq!(output.status.code(), Some(141), "{output:?}");
}

#[test]
fn a_job_that_leaves_a_background_process_ends_when_it_exits_like_in_gnu_parallel() {
    // The background sleep holds the job's output pipes for 20 s; the job itself ends at once.
    // GNU parallel returns at once too, leaving the sleep running; so does crew, and the job's
    // own output is kept. Before, crew waited for the pipes' end-of-file, 20 s.
    let start = Instant::now();
    let output = crew_run(&[
        "--tag",
        "sleep 20 & echo $! >&2; echo hi {}",
        ":::",
        "a",
        "b",
    ]);
    let elapsed = start.elapsed();
    for line in stderr(&output).lines() {
        let pid: i32 = line.rsplit('\t').next().unwrap().parse().unwrap();
        // SAFETY: kill(2) of the background sleep this test started; no memory is involved.
        unsafe {
            libc::kill(pid, libc::SIGKILL);
        }
    }
    assert_eq!(sorted_lines(&succeeded(&output)), ["a\thi a", "b\thi b"]);
    assert!(
        elapsed < Duration::from_secs(10),
        "waited {elapsed:?} for the background processes"
    );
}

#[test]
fn a_line_longer_than_any_argument_stops_the_input_with_what_to_do() {
    // 4 MiB without a newline after two good lines: the jobs before it run, then crew stops
    // reading (it held the whole "line" in memory before) and says which record, the limit and
    // what to do.
    let mut input = b"one\ntwo\n".to_vec();
    input.extend(vec![b'x'; 4 << 20]);
    let mut child = Command::new(CREW)
        .args(["run", "-k", "echo"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    // crew stops reading early, so the end of the write fails (EPIPE): that is expected.
    let writer = std::thread::spawn(move || stdin.write_all(&input).is_ok());
    let output = wait_bounded(child, "crew run with an endless line");
    assert!(!writer.join().unwrap(), "crew read the whole line");
    assert_eq!(stdout(&output), "one\ntwo\n");
    // crew's own failure, not a count of failed jobs: GNU parallel's 255.
    assert_eq!(output.status.code(), Some(255), "{output:?}");
    let message = stderr(&output);
    assert!(
        message.contains("record 3 of standard input is longer than 131071 bytes")
            && message.contains("split at newlines"),
        "{message}"
    );
}

#[test]
fn jobs_zero_runs_them_all_at_once_like_gnu_parallel_and_xargs() {
    // Each of 6 jobs leaves a file and waits (up to 10 s) until all 6 are there: only jobs
    // that run at the same time can all succeed. `-j 0` was refused before.
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(CREW)
        .current_dir(dir.path())
        .args([
            "run",
            "-j",
            "0",
            "-k",
            "touch {}; i=0; while [ $(ls | wc -l) -lt 6 ] && [ $i -lt 100 ]; do sleep 0.1; \
             i=$((i+1)); done; [ $(ls | wc -l) -eq 6 ] && echo {}",
            ":::",
        ])
        .args(["1", "2", "3", "4", "5", "6"])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "1\n2\n3\n4\n5\n6\n",
        "{out:?}"
    );
    assert!(out.status.success(), "{out:?}");
}

#[test]
fn arguments_read_from_a_terminal_get_a_hint_like_gnu_parallel_gives() {
    use std::os::fd::{FromRawFd, OwnedFd};
    let (mut master, mut slave) = (-1, -1);
    // SAFETY: the two out-pointers are valid for writes; null name, termios and size are
    // allowed.
    let opened = unsafe {
        libc::openpty(
            &mut master,
            &mut slave,
            std::ptr::null_mut(),
            std::ptr::null(),
            std::ptr::null(),
        )
    };
    assert_eq!(opened, 0, "openpty: {}", std::io::Error::last_os_error());
    // SAFETY: openpty succeeded, so both are open descriptors that nothing else owns.
    let (master, slave) = unsafe { (OwnedFd::from_raw_fd(master), OwnedFd::from_raw_fd(slave)) };
    let child = Command::new(CREW)
        .args(["run", "-k", "echo"])
        .stdin(Stdio::from(slave))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // One line, then Ctrl-D (end of input at the start of a line).
    let mut terminal = std::fs::File::from(master);
    terminal.write_all(b"typed\n\x04").unwrap();
    let output = wait_bounded(child, "crew run reading a terminal");
    drop(terminal);
    assert_eq!(stdout(&output), "typed\n");
    let message = stderr(&output);
    assert!(
        message.contains("reading the arguments from the terminal") && message.contains("Ctrl-D"),
        "{message}"
    );
}

/// The state letter of process `pid` (`R`, `S`, `T` for stopped...), `None` once it is gone.
fn process_state(pid: u32) -> Option<char> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    stat.rsplit(')').next()?.trim_start().chars().next()
}

#[test]
fn ctrl_z_pauses_the_jobs_with_crew_and_continuing_crew_continues_them() {
    use std::os::unix::process::CommandExt;

    // The job appends a line every 20 ms. After SIGTSTP (the terminal's Ctrl-Z) crew is
    // stopped and the file stops growing; after SIGCONT (`fg`) it grows again. Before, only
    // crew stopped: the job, in its own process group, ran on.
    let dir = tempfile::tempdir().unwrap();
    let ticks = dir.path().join("ticks");
    let lines = || line_count(&ticks);
    let child = Command::new(CREW)
        .args([
            "run",
            "--grace",
            "1s",
            "while :; do echo x >> {}; sleep 0.02; done",
            ":::",
        ])
        .arg(&ticks)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        // A process group of its own whose parent (this test) is in another group of the same
        // session: not orphaned, as under a shell, whatever group the test runs in.
        .process_group(0)
        .spawn()
        .unwrap();
    let pid = child.id();
    wait_until("the job runs", || lines() >= 3);
    // SAFETY: kill(2) of our own child with a valid signal number.
    unsafe { libc::kill(pid as i32, libc::SIGTSTP) };
    wait_until("crew is stopped", || process_state(pid) == Some('T'));
    std::thread::sleep(Duration::from_millis(100));
    let paused = lines();
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(lines(), paused, "the job ran on while crew was stopped");
    // SAFETY: as above.
    unsafe { libc::kill(pid as i32, libc::SIGCONT) };
    wait_until("the job runs again", || lines() >= paused + 3);
    // SAFETY: as above.
    unsafe { libc::kill(pid as i32, libc::SIGTERM) };
    let status = wait_bounded(child, "crew run after SIGTERM").status;
    assert_eq!(status.code(), Some(130));
}

#[test]
fn ctrl_z_in_an_orphaned_process_group_does_not_stop_crew_for_good() {
    use std::os::unix::process::CommandExt;

    // In a new session crew's process group is orphaned: no shell could ever continue it, so
    // the kernel discards a terminal stop there. crew must not stop itself anyway (it used
    // SIGSTOP, which cannot be discarded, and stayed stopped with its jobs paused forever):
    // after the SIGTSTP the job runs on and crew still answers SIGTERM.
    // Not fully deterministic in one direction: were crew's Ctrl-Z thread delayed past the
    // 200 ms below, a regression could go unnoticed in that run; it can never fail wrongly.
    let dir = tempfile::tempdir().unwrap();
    let ticks = dir.path().join("ticks");
    let lines = || line_count(&ticks);
    let mut command = Command::new(CREW);
    command
        .args([
            "run",
            "--grace",
            "1s",
            "while :; do echo x >> {}; sleep 0.02; done",
            ":::",
        ])
        .arg(&ticks)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    // SAFETY: setsid(2) is async-signal-safe and touches no memory of the parent.
    unsafe {
        command.pre_exec(|| {
            if libc::setsid() < 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let child = command.spawn().unwrap();
    let pid = child.id();
    wait_until("the job runs", || lines() >= 3);
    // SAFETY: kill(2) of our own child with a valid signal number.
    unsafe { libc::kill(pid as i32, libc::SIGTSTP) };
    std::thread::sleep(Duration::from_millis(200));
    let after_stop = lines();
    wait_until("the job runs on after Ctrl-Z", || lines() >= after_stop + 3);
    assert_ne!(process_state(pid), Some('T'), "crew stopped itself");
    // SAFETY: as above.
    unsafe { libc::kill(pid as i32, libc::SIGTERM) };
    let status = wait_bounded(child, "crew run after SIGTERM").status;
    assert_eq!(status.code(), Some(130));
}
