//! The `#[crew::task]`s built into the `crew` binary, served by `crew worker`.
//!
//! [`run_command`] runs one command on a worker: argv, standard input and a timeout in; exit
//! status, standard output and standard error out. It is the building block of
//! `crew run --cluster URL` (GNU parallel's `--sshlogin`, without ssh). The command never goes
//! through a shell: `argv[0]` is executed with `argv[1..]` as its arguments. A job that wants a
//! shell says so itself, with `argv = ["sh", "-c", script]`, its user values quoted by the
//! submitter exactly as `crew run` quotes them for a local run (`crew::subprocess::quote`).
//!
//! ```no_run
//! use crew::cluster::{Cluster, ClusterOptions};
//! use crew::Executor;
//! use crew_cli::tasks::{run_command, CommandJob};
//!
//! let cluster = Cluster::connect(ClusterOptions::new("nats://10.0.0.1:4222")).unwrap();
//! let job = CommandJob::new(["wc", "-c"]).stdin(b"hello".to_vec());
//! let outcome = cluster.submit(run_command, job).unwrap().result().unwrap();
//! assert_eq!(outcome.stdout, b"5\n");
//! ```

use std::time::Duration;

use serde::{Deserialize, Serialize};

/// How long a command's output is still read once the command itself has exited
/// ([`crew::subprocess::Command::read_after_exit`]), here and in a local `crew run`: a
/// background process it started (`sleep 60 & echo started`) holds the output pipes open,
/// and GNU parallel does not wait for it either (it reads a job's output from a file once the
/// job exits).
pub const READ_AFTER_EXIT: Duration = Duration::from_millis(100);

/// A command for a worker to run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct CommandJob {
    /// The program and its arguments, executed directly (no shell).
    pub argv: Vec<String>,
    /// Bytes for its standard input (`None`: `/dev/null`).
    pub stdin: Option<Vec<u8>>,
    /// Kill it (and its process group) after this many milliseconds.
    pub timeout_ms: Option<u64>,
    /// At its timeout, `SIGTERM` first and `SIGKILL` this many milliseconds later (`None`:
    /// the subprocess default).
    pub grace_ms: Option<u64>,
    /// Its working directory on the worker (`None`: the worker's).
    pub cwd: Option<String>,
    /// Environment variables to set for it (`crew run` passes its values this way to a shell
    /// script, so they are never spliced into the script's text).
    #[serde(default)]
    pub env: Vec<(String, String)>,
}

impl CommandJob {
    /// `argv[0]` with `argv[1..]`, no input, no timeout.
    pub fn new<I, S>(argv: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        Self {
            argv: argv.into_iter().map(Into::into).collect(),
            stdin: None,
            timeout_ms: None,
            grace_ms: None,
            cwd: None,
            env: Vec::new(),
        }
    }

    /// Feeds `bytes` to its standard input.
    pub fn stdin(mut self, bytes: Vec<u8>) -> Self {
        self.stdin = Some(bytes);
        self
    }

    /// Kills it after `timeout`.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout_ms = Some(u64::try_from(timeout.as_millis()).unwrap_or(u64::MAX));
        self
    }

    /// At its timeout, sends `SIGTERM` and waits `grace` before `SIGKILL` (`crew run --grace`).
    pub fn grace(mut self, grace: Duration) -> Self {
        self.grace_ms = Some(u64::try_from(grace.as_millis()).unwrap_or(u64::MAX));
        self
    }

    /// Sets the environment variable `key` to `value` for it.
    pub fn env(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.env.push((key.into(), value.into()));
        self
    }

    /// Runs it in `dir` on the worker.
    pub fn cwd(mut self, dir: impl Into<String>) -> Self {
        self.cwd = Some(dir.into());
        self
    }
}

/// How a command ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum CommandStatus {
    /// It exited with this code.
    Exited(i32),
    /// A signal (not crew's timeout) killed it.
    Signaled(i32),
    /// It ran past its timeout and was killed with its process group.
    TimedOut {
        /// The limit, in milliseconds.
        after_ms: u64,
    },
    /// It could not be started (not found, not executable, an empty argv...): why.
    NotStarted(String),
}

/// What a command did, as the worker saw it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct CommandOutcome {
    /// How it ended.
    pub status: CommandStatus,
    /// Its standard output.
    pub stdout: Vec<u8>,
    /// Its standard error.
    pub stderr: Vec<u8>,
    /// How long it ran, in milliseconds.
    pub duration_ms: u64,
    /// The worker host that ran it (for a joblog).
    pub host: String,
}

impl CommandOutcome {
    /// Exit code 0.
    pub fn success(&self) -> bool {
        self.status == CommandStatus::Exited(0)
    }
}

/// Runs `job` on the worker that receives it (see the [module docs](self)).
#[crew::task]
pub fn run_command(job: CommandJob) -> CommandOutcome {
    let host = hostname();
    let not_started = |why: String| CommandOutcome {
        status: CommandStatus::NotStarted(why),
        stdout: Vec::new(),
        stderr: Vec::new(),
        duration_ms: 0,
        host: host.clone(),
    };
    let Some((program, args)) = job.argv.split_first() else {
        return not_started("the job's argv is empty: give at least the program".to_owned());
    };
    // The worker process may be killed mid-command (the task was cancelled, or ran past its
    // deadline): the command's process group must not outlive it. A worker running tasks on
    // threads (`crew worker --threads`) kills nothing; it runs this hook instead, which kills
    // the group as the process worker's end would (SIGKILL), so the thread is free again.
    let switch = crew::subprocess::KillSwitch::new();
    crew::cluster::on_cancel({
        let switch = switch.clone();
        move || switch.fire(Duration::ZERO)
    });
    let mut command = crew::subprocess::Command::new(program)
        .args(args)
        .kill_switch(&switch)
        .kill_on_parent_death(true)
        .read_after_exit(READ_AFTER_EXIT);
    if let Some(bytes) = job.stdin {
        command = command.stdin(crew::subprocess::Input::bytes(bytes));
    }
    if let Some(ms) = job.timeout_ms {
        command = command.timeout(Duration::from_millis(ms));
    }
    if let Some(ms) = job.grace_ms {
        command = command.grace(Duration::from_millis(ms));
    }
    if let Some(dir) = job.cwd {
        command = command.current_dir(dir);
    }
    command = command.envs(job.env);
    let done = match command.output() {
        Ok(done) => done,
        Err(error) => return not_started(error.to_string()),
    };
    let status = match (done.timed_out, done.status) {
        (Some(after), _) => CommandStatus::TimedOut {
            after_ms: u64::try_from(after.as_millis()).unwrap_or(u64::MAX),
        },
        (None, crew::ExitStatus::Code(code)) => CommandStatus::Exited(code),
        (None, crew::ExitStatus::Signal(signal)) => CommandStatus::Signaled(signal),
    };
    CommandOutcome {
        status,
        stdout: done.stdout,
        stderr: done.stderr,
        duration_ms: u64::try_from(done.duration.as_millis()).unwrap_or(u64::MAX),
        host,
    }
}

/// The names of the built-in tasks (what `crew worker` says it serves).
pub const BUILT_IN: [&str; 1] = ["run_command"];

fn hostname() -> String {
    let mut buffer = [0u8; 256];
    // SAFETY: the pointer and length describe `buffer`, which gethostname writes at most
    // `len` bytes into.
    let result = unsafe { libc::gethostname(buffer.as_mut_ptr().cast(), buffer.len()) };
    if result != 0 {
        return "unknown".to_owned();
    }
    let end = buffer.iter().position(|&b| b == 0).unwrap_or(buffer.len());
    String::from_utf8_lossy(&buffer[..end]).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runs_argv_without_a_shell_with_stdin_and_reports_the_exit() {
        let outcome = run_command(
            CommandJob::new(["sh", "-c", "cat; echo \"$1\" >&2; exit 3", "sh", "$HOME;x"])
                .stdin(b"in".to_vec()),
        );
        assert_eq!(outcome.status, CommandStatus::Exited(3));
        assert_eq!(outcome.stdout, b"in");
        // The argument reached the script as one word, never expanded.
        assert_eq!(outcome.stderr, b"$HOME;x\n");
        let from_env = run_command(
            CommandJob::new(["sh", "-c", "printf '%s' \"$CREW_ARG\""]).env("CREW_ARG", "$(id) ;"),
        );
        assert_eq!(from_env.stdout, b"$(id) ;");
        let echoed = run_command(CommandJob::new(["echo", "a b", "$(id)"]));
        assert!(echoed.success());
        assert_eq!(echoed.stdout, b"a b $(id)\n");
    }

    #[test]
    fn timeouts_and_missing_programs_are_reported() {
        let slow = run_command(CommandJob::new(["sleep", "5"]).timeout(Duration::from_millis(100)));
        assert_eq!(slow.status, CommandStatus::TimedOut { after_ms: 100 });
        assert!(slow.duration_ms < 4_000, "{slow:?}");
        let missing = run_command(CommandJob::new(["no-such-program-crew"]));
        assert!(
            matches!(&missing.status, CommandStatus::NotStarted(why) if why.contains("not found")),
            "{missing:?}"
        );
        let empty = run_command(CommandJob::new(Vec::<String>::new()));
        assert!(matches!(empty.status, CommandStatus::NotStarted(_)));
    }

    #[test]
    fn a_command_that_leaves_a_background_process_ends_when_it_exits() {
        // The background sleep holds the output pipes for 20 s; the command's own output comes
        // as soon as it exits, as in a local `crew run`. The sleep is killed after.
        let started = std::time::Instant::now();
        let outcome = run_command(
            CommandJob::new(["sh", "-c", "sleep 20 & echo $! >&2; echo hi"])
                .timeout(Duration::from_secs(30)),
        );
        let elapsed = started.elapsed();
        let pid: i32 = String::from_utf8_lossy(&outcome.stderr)
            .trim()
            .parse()
            .unwrap();
        // SAFETY: kill(2) of the background sleep this test started; no memory is involved.
        unsafe {
            libc::kill(pid, libc::SIGKILL);
        }
        assert_eq!(outcome.status, CommandStatus::Exited(0));
        assert_eq!(outcome.stdout, b"hi\n");
        assert!(elapsed < Duration::from_secs(10), "waited {elapsed:?}");
    }
}
