//! crew::subprocess input and output: large captures, stdin feeding, line streaming, redirects.

use std::io::{BufRead, BufReader};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crew::subprocess::{Command, ExitStatus, Input, Redirect, MAX_LINE};

#[test]
fn captures_100_mb_of_output_without_deadlock() {
    const SIZE: usize = 100_000_000;
    let done = Command::new("head")
        .args(["-c", &SIZE.to_string(), "/dev/zero"])
        .output()
        .unwrap();
    assert_eq!(done.status, ExitStatus::Code(0));
    assert_eq!(done.stdout.len(), SIZE);
    assert!(done.stdout.iter().all(|&b| b == 0));
}

#[test]
fn drains_stdout_and_stderr_together() {
    // 8 MB on each stream, interleaved: a reader that drained one pipe at a time would hang.
    let done = Command::shell(
        "i=0; while [ $i -lt 8 ]; do head -c 1000000 /dev/zero; head -c 1000000 /dev/zero >&2; \
         i=$((i+1)); done",
    )
    .output()
    .unwrap();
    assert!(done.success(), "{done:?}");
    assert_eq!(done.stdout.len(), 8_000_000);
    assert_eq!(done.stderr.len(), 8_000_000);
}

#[test]
fn feeds_large_stdin_while_reading_the_echo() {
    // `cat` writes back as it reads: feeding 20 MB before reading would deadlock.
    let input: Vec<u8> = (0..20_000_000u32).map(|i| (i % 251) as u8).collect();
    let mut child = Command::new("cat").stdin(Input::Piped).spawn().unwrap();
    let done = child.communicate(Some(&input), None).unwrap();
    assert!(done.success());
    assert_eq!(done.stdout.len(), input.len());
    assert!(done.stdout == input);
}

#[test]
fn input_bytes_reach_the_program() {
    let done = Command::new("tr")
        .args(["a-z", "A-Z"])
        .stdin(Input::bytes("set q=mx\npython.org\n"))
        .output()
        .unwrap()
        .check()
        .unwrap();
    assert_eq!(done.stdout_str(), "SET Q=MX\nPYTHON.ORG\n");
}

#[test]
fn md5sum_answers_the_fed_input() {
    let done = Command::new("md5sum")
        .stdin(Input::bytes("hello\n"))
        .checked_output()
        .unwrap();
    assert!(done
        .stdout_str()
        .starts_with("b1946ac92492d2347c6235b4d2611184"));
}

#[test]
fn a_child_that_ignores_its_input_does_not_break_communicate() {
    let input = vec![b'x'; 10_000_000];
    let mut child = Command::new("true").stdin(Input::Piped).spawn().unwrap();
    let done = child.communicate(Some(&input), None).unwrap();
    assert!(done.success());
}

#[test]
fn input_from_a_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("in.txt");
    std::fs::write(&path, "3\n1\n2\n").unwrap();
    let done = Command::new("sort")
        .stdin(Input::File(path))
        .checked_output()
        .unwrap();
    assert_eq!(done.stdout_str(), "1\n2\n3\n");
}

#[test]
fn lines_stream_to_a_callback_in_order() {
    let lines = Arc::new(Mutex::new(Vec::new()));
    let sink = lines.clone();
    let done = Command::new("seq")
        .arg("10000")
        .stdout(Redirect::lines(move |line| {
            sink.lock().unwrap().push(line.parse::<u32>().unwrap())
        }))
        .output()
        .unwrap();
    assert!(done.success());
    assert!(done.stdout.is_empty());
    let lines = lines.lock().unwrap();
    assert_eq!(*lines, (1..=10000).collect::<Vec<_>>());
}

#[test]
fn last_line_without_newline_is_delivered() {
    let lines = Arc::new(Mutex::new(Vec::new()));
    let sink = lines.clone();
    Command::new("printf")
        .arg("one\ntwo")
        .stderr(Redirect::Null)
        .stdout(Redirect::lines(move |l| {
            sink.lock().unwrap().push(l.to_owned())
        }))
        .output()
        .unwrap();
    assert_eq!(*lines.lock().unwrap(), ["one", "two"]);
}

/// A child printing without newlines: the sink gets pieces of at most `MAX_LINE` bytes as the
/// output arrives, not one line of everything at the end (the parent's buffer stays bounded).
#[test]
fn a_line_without_end_reaches_the_sink_in_bounded_pieces() {
    const BYTES: usize = 16 * MAX_LINE;
    // (length of each piece, whether the child was still printing when it arrived)
    let pieces = Arc::new(Mutex::new(Vec::new()));
    let sink = pieces.clone();
    let done = Command::shell(format!(
        "head -c {BYTES} /dev/zero | tr '\\0' x; echo; echo end"
    ))
    .stdout(Redirect::lines(move |piece| {
        assert!(
            piece.bytes().all(|b| b == b'x') || piece == "end",
            "{piece:.20}"
        );
        sink.lock().unwrap().push(piece.len());
    }))
    .timeout(Duration::from_secs(60))
    .output()
    .unwrap();
    assert!(done.success(), "{done:?}");
    let pieces = pieces.lock().unwrap();
    let longest = pieces.iter().max().copied().unwrap_or(0);
    assert!(longest <= MAX_LINE, "a piece of {longest} bytes");
    assert_eq!(pieces.iter().sum::<usize>(), BYTES + "end".len());
    assert_eq!(pieces.len(), 16 + 1, "{pieces:?}");
}

/// A long line of two-byte characters, one byte off: every cut falls between characters.
#[test]
fn long_line_pieces_are_cut_between_characters() {
    let text = format!("a{}", "é".repeat(MAX_LINE));
    let pieces = Arc::new(Mutex::new(Vec::new()));
    let sink = pieces.clone();
    Command::new("cat")
        .stdin(Input::bytes(text.clone()))
        .stdout(Redirect::lines(move |piece| {
            sink.lock().unwrap().push(piece.to_owned())
        }))
        .output()
        .unwrap();
    let pieces = pieces.lock().unwrap();
    assert!(pieces.len() >= 2 && pieces.iter().all(|p| p.len() <= MAX_LINE));
    assert_eq!(pieces.concat(), text, "no character replaced or lost");
}

#[test]
fn stdout_can_be_read_as_an_iterator_of_lines() {
    let mut child = Command::new("seq").arg("5").spawn().unwrap();
    let out = child.stdout().unwrap();
    let lines: Vec<String> = BufReader::new(out).lines().map(Result::unwrap).collect();
    assert_eq!(lines, ["1", "2", "3", "4", "5"]);
    assert!(child.wait().unwrap().success());
}

#[test]
fn null_and_file_redirects() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("out.txt");
    let done = Command::shell("echo to-file; echo dropped >&2")
        .stdout(Redirect::File(path.clone()))
        .stderr(Redirect::Null)
        .output()
        .unwrap();
    assert!(done.stdout.is_empty() && done.stderr.is_empty());
    assert_eq!(std::fs::read_to_string(path).unwrap(), "to-file\n");
}

#[test]
fn cwd_and_environment() {
    let dir = tempfile::tempdir().unwrap();
    let done = Command::shell("pwd; echo \"$CREW_TEST_VAR\"; echo \"${HOME:-unset}\"")
        .current_dir(dir.path())
        .env("CREW_TEST_VAR", "value 1")
        .env_remove("HOME")
        .checked_output()
        .unwrap();
    let expected = format!(
        "{}\nvalue 1\nunset\n",
        dir.path().canonicalize().unwrap().display()
    );
    assert_eq!(done.stdout_str(), expected);

    let done = Command::new("/usr/bin/env")
        .env_clear()
        .env("ONLY", "1")
        .checked_output()
        .unwrap();
    assert_eq!(done.stdout_str(), "ONLY=1\n");
}

#[test]
fn shell_arguments_are_positional_parameters() {
    let done = Command::shell("printf '%s|' \"$@\"")
        .args(["a b", "$HOME", "'q'"])
        .checked_output()
        .unwrap();
    assert_eq!(done.stdout_str(), "a b|$HOME|'q'|");
}

#[test]
fn no_shell_means_no_expansion() {
    let done = Command::new("echo")
        .arg("$HOME; rm -rf /")
        .checked_output()
        .unwrap();
    assert_eq!(done.stdout_str(), "$HOME; rm -rf /\n");
}

#[test]
fn many_small_runs_stay_correct() {
    for i in 0..300 {
        let done = Command::new("echo").arg(i.to_string()).output().unwrap();
        assert_eq!(done.stdout_str(), format!("{i}\n"));
        assert!(done.stderr.is_empty());
    }
}

#[test]
fn output_beyond_spool_after_goes_to_a_file_whole_and_in_order() {
    use std::io::Read;
    // 3 MB on each stream, interleaved in 100 kB pieces, with a 256 KiB bound.
    let done = Command::shell(
        "i=0; while [ $i -lt 30 ]; do seq 100000 | head -c 100000; \
         seq 100000 | head -c 100000 | tr 0-9 a-j >&2; i=$((i+1)); done; echo oops >&2; exit 3",
    )
    .spool_after(256 * 1024)
    .output()
    .unwrap();
    assert!(done.stdout.is_empty() && done.stderr.is_empty(), "{done:?}");
    let piece: Vec<u8> = (1..=100_000)
        .flat_map(|n: u32| format!("{n}\n").into_bytes())
        .take(100_000)
        .collect();
    let out = done.stdout_spool.as_ref().unwrap();
    assert_eq!(out.len(), 3_000_000);
    let mut bytes = Vec::new();
    out.reader().read_to_end(&mut bytes).unwrap();
    assert_eq!(bytes, piece.repeat(30));
    assert_eq!(done.stdout_len(), 3_000_000);
    assert_eq!(done.stderr_len(), 3_000_005);
    let mut copied = Vec::new();
    assert_eq!(done.copy_stderr_to(&mut copied).unwrap(), 3_000_005);
    assert!(copied.ends_with(b"oops\n") && copied.starts_with(b"b\nc\n"));
    assert_eq!(done.stdout_str().len(), 3_000_000);
    // The error quotes the end of the spooled standard error.
    let error = done.clone().check().unwrap_err().to_string();
    assert!(error.ends_with("oops"), "{error}");
    // Under the bound, everything stays in memory.
    let small = Command::new("echo")
        .arg("hi")
        .spool_after(256 * 1024)
        .output()
        .unwrap();
    assert_eq!(
        (small.stdout.as_slice(), &small.stdout_spool),
        (&b"hi\n"[..], &None)
    );
    assert_eq!(small.stdout_len(), 3);
}

/// Kills the background process whose pid a test's command printed (it outlives the command).
fn kill_background(pid: &str) {
    let pid: i32 = pid
        .trim()
        .parse()
        .expect("the command prints its background pid");
    // SAFETY: plain kill(2) of a process this test started; no memory is involved.
    unsafe {
        libc::kill(pid, libc::SIGKILL);
    }
}

#[test]
fn read_after_exit_returns_without_waiting_for_a_background_process_holding_the_pipes() {
    // The background `sleep` inherits stdout and stderr and holds them for 20 s. Without
    // `read_after_exit` the result waits for their end-of-file (Python's behaviour); with it,
    // the result comes once the shell has exited, with everything the shell printed: 300 KB
    // (more than a pipe holds, so it was still being read when the shell exited) and its pid.
    let start = std::time::Instant::now();
    let done = Command::shell(
        "sleep 20 & echo $! >&2; head -c 300000 /dev/zero | tr '\\0' a; echo; echo end",
    )
    .read_after_exit(Duration::from_millis(100))
    .timeout(Duration::from_secs(30))
    .output()
    .unwrap();
    let elapsed = start.elapsed();
    kill_background(&done.stderr_str());
    assert!(done.success(), "{done:?}");
    assert!(done.timed_out.is_none());
    assert!(
        elapsed < Duration::from_secs(10),
        "waited {elapsed:?} for the background sleep"
    );
    let out = done.stdout_str();
    assert_eq!(out.len(), 300_000 + "\nend\n".len());
    assert!(out.ends_with("aaa\nend\n"));
}

#[test]
fn a_deadline_passing_while_reading_after_the_exit_is_no_timeout() {
    // The shell exits (status 3) at once, long before its 1 s timeout; its background `sleep`
    // holds the pipes, so the output is read for the 2 s linger, and the deadline passes
    // meanwhile. The shell exited in time: its own status comes back, not a timeout (which
    // also killed its group).
    let done = Command::shell("sleep 5 & echo $! >&2; echo done; exit 3")
        .read_after_exit(Duration::from_secs(2))
        .timeout(Duration::from_secs(1))
        .output()
        .unwrap();
    kill_background(&done.stderr_str());
    assert!(done.timed_out.is_none(), "{done:?}");
    assert_eq!(done.status.code(), Some(3), "{done:?}");
    assert_eq!(done.stdout_str(), "done\n");
}

#[test]
fn read_after_exit_keeps_output_of_the_grace_period_only() {
    // A background writer printing 1 s after the shell's exit is not waited for; one printing
    // at once, within the 400 ms that output is read after the exit, is kept.
    let done = Command::shell("(sleep 1; echo late) & (echo soon) & echo first")
        .read_after_exit(Duration::from_millis(400))
        .output()
        .unwrap();
    let out = done.stdout_str();
    let lines: Vec<&str> = out.lines().collect();
    assert!(lines.contains(&"first") && lines.contains(&"soon"), "{out}");
    assert!(!lines.contains(&"late"), "{out}");
    // Without the bound, the late line is waited for and captured.
    let done = Command::shell("(sleep 0.2; echo late) & echo first")
        .output()
        .unwrap();
    assert_eq!(done.stdout_str(), "first\nlate\n");
}
