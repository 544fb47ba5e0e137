//! `crew run` against GNU parallel's input sources and options, end to end with the real binary.
//! Where GNU parallel defines the answer (order of a product, linking, positional strings), the
//! expected output is GNU parallel's own, checked here when it is installed (scripts/test
//! installs it) and written out besides, so the test also holds without it.

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};

use crate::support::{crew_run, crew_run_stdin, stderr, stdout, CREW};

/// GNU parallel's output for the same arguments, `-k` added; `None` when it is not installed.
fn gnu_parallel(args: &[&str], input: &[u8]) -> Option<String> {
    let mut child = Command::new("parallel")
        .args(["--will-cite", "-k"])
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .ok()?;
    child.stdin.take().unwrap().write_all(input).unwrap();
    let out = child.wait_with_output().ok()?;
    Some(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Runs `args` with `-k` through crew, checks the output against `expected` and, when GNU
/// parallel is installed, against GNU parallel's.
fn same_as_gnu_parallel(args: &[&str], input: &[u8], expected: &str) {
    let mut with_k = vec!["-k"];
    with_k.extend_from_slice(args);
    let out = crew_run_stdin(&with_k, input);
    assert!(out.status.success(), "{args:?}: {}", stderr(&out));
    assert_eq!(stdout(&out), expected, "{args:?}");
    if let Some(gnu) = gnu_parallel(args, input) {
        assert_eq!(gnu, expected, "GNU parallel disagrees on {args:?}");
    }
}

#[test]
fn several_groups_make_the_cartesian_product_last_fastest() {
    same_as_gnu_parallel(
        &["echo", ":::", "a", "b", ":::", "1", "2", "3"],
        b"",
        "a 1\na 2\na 3\nb 1\nb 2\nb 3\n",
    );
    same_as_gnu_parallel(
        &["echo", "{2}-{1}", ":::", "a", "b", ":::", "1", "2"],
        b"",
        "1-a\n2-a\n1-b\n2-b\n",
    );
}

#[test]
fn linked_groups_advance_together_as_long_as_the_shortest() {
    same_as_gnu_parallel(
        &[
            "echo", ":::", "a", "b", "c", ":::+", "1", "2", ":::", "x", "y",
        ],
        b"",
        "a 1 x\na 1 y\nb 2 x\nb 2 y\n",
    );
}

#[test]
fn positional_strings_take_their_parts() {
    same_as_gnu_parallel(
        &[
            "echo",
            "{1/.}",
            "{2//}",
            "{1.}",
            "{2/}",
            ":::",
            "d/x.tar.gz",
            ":::",
            "p/q/r.txt",
        ],
        b"",
        "x.tar p/q d/x.tar r.txt\n",
    );
}

#[test]
fn argument_files_are_input_sources() {
    let dir = tempfile::tempdir().unwrap();
    let hosts = dir.path().join("hosts");
    let ports = dir.path().join("ports");
    std::fs::write(&hosts, "h1\nh2\n").unwrap();
    std::fs::write(&ports, "80\n443\n").unwrap();
    let (hosts, ports) = (hosts.to_str().unwrap(), ports.to_str().unwrap());
    same_as_gnu_parallel(
        &["echo", "{1}:{2}", "::::", hosts, ":::", "a", "b"],
        b"",
        "h1:a\nh1:b\nh2:a\nh2:b\n",
    );
    same_as_gnu_parallel(
        &["echo", "{1}:{2}", "::::", hosts, "::::+", ports],
        b"",
        "h1:80\nh2:443\n",
    );
    // `-` is standard input.
    same_as_gnu_parallel(
        &["echo", "::::", "-", ":::", "x"],
        b"in1\nin2\n",
        "in1 x\nin2 x\n",
    );
    let out = crew_run(&["echo", "::::", "/nonexistent/crew-args"]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("cannot read the argument file /nonexistent/crew-args"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn null_separated_input() {
    same_as_gnu_parallel(
        &["-0", "echo", "x{}"],
        b"a b\0line\nbreak\0",
        "xa b\nxline\nbreak\n",
    );
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("list");
    std::fs::write(&file, b"x\0y z\0").unwrap();
    let out = crew_run(&["-k", "-0", "echo", "::::", file.to_str().unwrap()]);
    assert_eq!(stdout(&out), "x\ny z\n");
}

#[test]
fn dry_run_prints_what_would_run_and_runs_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let marker = dir.path().join("ran");
    let script = format!("touch {}; echo {{}} \"{{2}}\" {{#}}", marker.display());
    let out = crew_run(&["--dry-run", &script, ":::", "it's", "b", ":::", "$(x)"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(!marker.exists(), "--dry-run ran a job");
    let shown = stdout(&out);
    let lines: Vec<&str> = shown.lines().collect();
    assert_eq!(lines.len(), 2, "{shown}");
    // Each line, pasted into a shell, does what the job would do (here without the touch).
    for (line, expected) in lines.iter().zip(["it's $(x) $(x) 1", "b $(x) $(x) 2"]) {
        let line = line.replace(&format!("touch {}; ", marker.display()), "");
        let done = Command::new("sh").args(["-c", &line]).output().unwrap();
        assert_eq!(
            String::from_utf8_lossy(&done.stdout),
            format!("{expected}\n")
        );
    }
    // Direct mode: the words quoted.
    let out = crew_run(&["--dry-run", "-k", "cp", "{}", "{.}.bak", ":::", "a b.txt"]);
    assert_eq!(stdout(&out), "cp 'a b.txt' 'a b.bak'\n");
}

#[test]
fn halt_with_a_percentage_of_all_jobs() {
    // 10 jobs, 30% = 3 failures: the 3rd failure (job 5) stops the run; -j 1 in order.
    let out = crew_run(&[
        "-j",
        "1",
        "--halt",
        "soon,fail=30%",
        "--",
        "sh",
        "-c",
        "echo $1; exit $1",
        "sh",
        ":::",
        "1",
        "0",
        "2",
        "0",
        "3",
        "0",
        "0",
        "4",
        "0",
        "0",
    ]);
    assert_eq!(stdout(&out), "1\n0\n2\n0\n3\n");
    assert_eq!(out.status.code(), Some(3));
    let out = crew_run(&["--halt", "now,fail=120%", "true", ":::", "a"]);
    assert!(stderr(&out).contains("at most 100"), "{}", stderr(&out));
}

fn joblog_seqs(path: &Path) -> Vec<(usize, String)> {
    let text = std::fs::read_to_string(path).unwrap();
    let mut rows: Vec<(usize, String)> = text
        .lines()
        .skip(1)
        .map(|line| {
            let fields: Vec<&str> = line.split('\t').collect();
            (fields[0].parse().unwrap(), fields[6].to_owned())
        })
        .collect();
    rows.sort();
    rows
}

#[test]
fn resume_skips_logged_jobs_by_number() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("log");
    let log = log.to_str().unwrap();
    let script = "echo $1; [ $1 != b ]";
    let run = |extra: &[&str]| {
        let mut args = vec!["-k", "--joblog", log];
        args.extend_from_slice(extra);
        args.extend(["--", "sh", "-c", script, "sh", ":::", "a", "b", "c"]);
        let out = Command::new(CREW)
            .arg("run")
            .args(&args)
            .current_dir(dir.path())
            .output()
            .unwrap();
        stdout(&out)
    };
    // First run: job 2 fails and halts the run, so job 3 never starts.
    assert_eq!(run(&["--halt", "soon,fail=1", "-j", "1"]), "a\nb\n");
    assert_eq!(
        joblog_seqs(Path::new(log)),
        [(1, "0".to_owned()), (2, "1".to_owned())]
    );
    // --resume: only job 3 is new.
    assert_eq!(run(&["--resume"]), "c\n");
    // --resume-failed: job 2 (failed) runs again; 1 and 3 succeeded.
    assert_eq!(run(&["--resume-failed"]), "b\n");
    let seqs: Vec<usize> = joblog_seqs(Path::new(log)).iter().map(|r| r.0).collect();
    assert_eq!(seqs, [1, 2, 2, 3], "the log is added to");
    // Bad combinations are explained.
    let out = crew_run(&["--resume", "true", ":::", "a"]);
    assert!(
        stderr(&out).contains("give --joblog FILE"),
        "{}",
        stderr(&out)
    );
    let out = crew_run(&[
        "--resume",
        "--resume-failed",
        "--joblog",
        log,
        "true",
        ":::",
        "a",
    ]);
    assert!(stderr(&out).contains("choose one"), "{}", stderr(&out));
}

#[test]
fn results_directory_holds_every_jobs_output() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("out");
    let out = crew_run(&[
        "--results",
        root.to_str().unwrap(),
        "echo {1}{2}; echo err >&2; exit 3",
        ":::",
        "a",
        ":::",
        "x y",
        "p/q",
    ]);
    assert_eq!(out.status.code(), Some(2));
    let job = root.join("1/a/2/x y");
    assert_eq!(
        std::fs::read_to_string(job.join("stdout")).unwrap(),
        "ax y\n"
    );
    assert_eq!(
        std::fs::read_to_string(job.join("stderr")).unwrap(),
        "err\n"
    );
    assert_eq!(std::fs::read_to_string(job.join("seq")).unwrap(), "1");
    assert_eq!(std::fs::read_to_string(job.join("exit")).unwrap(), "3");
    let job = root.join("1/a/2/p\\_q");
    assert_eq!(
        std::fs::read_to_string(job.join("stdout")).unwrap(),
        "ap/q\n"
    );
    assert_eq!(std::fs::read_to_string(job.join("seq")).unwrap(), "2");
    // The output is still printed.
    let mut printed: Vec<String> = stdout(&out).lines().map(str::to_owned).collect();
    printed.sort();
    assert_eq!(printed, ["ap/q", "ax y"]);
    // GNU parallel puts its files in the same places.
    let gnu_root = dir.path().join("gnu");
    let gnu = Command::new("parallel")
        .args(["--will-cite", "--results", gnu_root.to_str().unwrap()])
        .args(["echo {1}{2}", ":::", "a", ":::", "x y", "p/q"])
        .output();
    if gnu.is_ok_and(|out| out.status.success()) {
        for job in ["1/a/2/x y", "1/a/2/p\\_q"] {
            for file in ["stdout", "seq"] {
                assert_eq!(
                    std::fs::read(gnu_root.join(job).join(file)).unwrap(),
                    std::fs::read(root.join(job).join(file)).unwrap(),
                    "{job}/{file}"
                );
            }
        }
    }
    let out = crew_run(&["--dry-run", "--results", "x", "true", ":::", "a"]);
    assert!(
        stderr(&out).contains("--dry-run runs nothing"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn slots_are_never_shared_by_jobs_running_at_once() {
    // Each job holds its slot's lock file while it runs; a second holder would find it.
    let dir = tempfile::tempdir().unwrap();
    let script =
        "if ! mkdir lock-{%}; then echo clash {%}; fi; sleep 0.05; rmdir lock-{%}; echo {%}";
    let args: Vec<String> = (0..12).map(|i| i.to_string()).collect();
    let out = Command::new(CREW)
        .args(["run", "-j", "3", script, ":::"])
        .args(&args)
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(!text.contains("clash"), "{text}");
    let mut slots: Vec<&str> = text.lines().collect();
    slots.sort();
    slots.dedup();
    assert_eq!(slots, ["1", "2", "3"]);
}

#[test]
fn eta_is_silent_off_a_terminal_and_conflicts_are_explained() {
    let out = crew_run(&["--eta", "-k", "echo", ":::", "a", "b"]);
    assert!(out.status.success());
    assert_eq!(stdout(&out), "a\nb\n");
    assert_eq!(stderr(&out), "");
    let out = crew_run(&["--eta", "--no-progress", "echo", ":::", "a"]);
    assert!(stderr(&out).contains("drop one"), "{}", stderr(&out));
}

#[test]
fn eta_is_shown_on_a_terminal() {
    // `script` (util-linux, part of the base system) gives crew a pseudo-terminal.
    let out = Command::new("script")
        .args([
            "-qec",
            &format!("{CREW} run --eta -j 1 sleep ::: 0.3 0.3 0.3"),
            "/dev/null",
        ])
        .stdin(Stdio::null())
        .output()
        .expect("`script` (util-linux) is needed for this test");
    let text = stdout(&out);
    assert!(out.status.success(), "{text}");
    assert!(text.contains("ETA"), "{text:?}");
}
