//! The Python peers of `crew bench cluster`: a virtualenv the benchmark installs them into, and
//! a peer process kept up for the whole run that answers one request per measurement.
//!
//! The protocol is in `peers/cluster/_cluster_proto.py`: the peer prints `ready` once its
//! cluster is up and warm, then answers each `CASE N CHUNKSIZE` line with one JSON line of
//! [`Figures`]. End of input stops it (and its cluster), so a benchmark that dies takes its
//! peers along.

use std::io::{BufRead as _, BufReader, Write as _};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use anyhow::{bail, Context as _};
use nix::sys::signal::{killpg, Signal};
use nix::unistd::Pid;

use super::Figures;

/// The peer scripts, written next to each other into a temporary directory at run time (so an
/// installed `crew` binary runs them too).
const SCRIPTS: [(&str, &str); 4] = [
    (
        "_cluster_proto.py",
        include_str!("../../peers/cluster/_cluster_proto.py"),
    ),
    (
        "managers_peer.py",
        include_str!("../../peers/cluster/managers_peer.py"),
    ),
    (
        "ray_peer.py",
        include_str!("../../peers/cluster/ray_peer.py"),
    ),
    (
        "dask_peer.py",
        include_str!("../../peers/cluster/dask_peer.py"),
    ),
];

/// How long a peer may take to start its cluster (Ray takes seconds on a loaded machine).
const START_TIMEOUT: Duration = Duration::from_secs(180);
/// How long one request may take.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(600);
/// How long a peer may take to stop its cluster at the end of its input.
const STOP_TIMEOUT: Duration = Duration::from_secs(30);

/// The default virtualenv: `$CREW_BENCH_VENV`, else `~/.cache/crew/venv-cluster`.
pub fn default_venv() -> PathBuf {
    if let Some(dir) = std::env::var_os("CREW_BENCH_VENV") {
        return PathBuf::from(dir);
    }
    let cache = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".cache")))
        .unwrap_or_else(std::env::temp_dir);
    cache.join("crew").join("venv-cluster")
}

/// The Python of the virtualenv `dir` with `module` importable: creates the virtualenv and
/// installs `package` from PyPI (with pip) when missing.
///
/// # Errors
/// Why it cannot be had: no `python3`, no `venv` module, or pip's complaint.
pub fn ensure_package(dir: &Path, module: &str, package: &str) -> anyhow::Result<PathBuf> {
    let python = dir.join("bin").join("python");
    if !python.exists() {
        eprintln!(
            "crew bench cluster: creating a virtualenv in {}",
            dir.display()
        );
        let output = Command::new("python3")
            .args(["-m", "venv"])
            .arg(dir)
            .stdin(Stdio::null())
            .output()
            .context("python3 is not installed (apt-get install python3 python3-venv)")?;
        if !output.status.success() {
            bail!(
                "python3 -m venv {} failed: {}",
                dir.display(),
                tail(&output.stderr)
            );
        }
    }
    let imports = |python: &Path| {
        Command::new(python)
            .args(["-c", &format!("import {module}")])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|status| status.success())
    };
    if !imports(&python) {
        eprintln!(
            "crew bench cluster: installing {package} into {} (pip)",
            dir.display()
        );
        let output = Command::new(&python)
            .args([
                "-m",
                "pip",
                "install",
                "--quiet",
                "--disable-pip-version-check",
                package,
            ])
            .stdin(Stdio::null())
            .output()
            .with_context(|| format!("running {}", python.display()))?;
        if !output.status.success() {
            bail!("pip install {package} failed: {}", tail(&output.stderr));
        }
        if !imports(&python) {
            bail!("pip installed {package}, but `import {module}` still fails");
        }
    }
    Ok(python)
}

/// The last lines of a tool's error output, on one line.
fn tail(stderr: &[u8]) -> String {
    let text = String::from_utf8_lossy(stderr);
    let lines: Vec<&str> = text.trim().lines().rev().take(3).collect();
    lines.into_iter().rev().collect::<Vec<_>>().join(" / ")
}

/// The directory the peer scripts are written to (removed when dropped).
#[derive(Debug)]
pub struct ScriptDir {
    dir: PathBuf,
}

impl ScriptDir {
    /// Writes every peer script into a new temporary directory.
    ///
    /// # Errors
    /// If the directory or a file cannot be written.
    pub fn create() -> anyhow::Result<Self> {
        let dir = std::env::temp_dir().join(format!("crew-bench-cluster-{}", std::process::id()));
        std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        for (name, text) in SCRIPTS {
            let path = dir.join(name);
            std::fs::write(&path, text).with_context(|| format!("writing {}", path.display()))?;
        }
        Ok(Self { dir })
    }

    /// Where the scripts are.
    pub fn path(&self) -> &Path {
        &self.dir
    }
}

impl Drop for ScriptDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A running peer: its cluster is up; each [`request`](Self::request) is one measurement.
#[derive(Debug)]
pub struct PythonPeer {
    name: String,
    child: Child,
    stdin: Option<ChildStdin>,
    lines: mpsc::Receiver<std::io::Result<String>>,
    stderr_path: PathBuf,
}

impl PythonPeer {
    /// Starts `python script` in `scripts` (in a process group of its own, so that stopping it
    /// stops its cluster's processes too) and waits for its `ready`.
    ///
    /// # Errors
    /// If it cannot start, or says something other than `ready` (its error output's last lines
    /// say why).
    pub fn start(python: &Path, scripts: &ScriptDir, script: &str) -> anyhow::Result<Self> {
        use std::os::unix::process::CommandExt as _;
        let name = script.trim_end_matches(".py").to_owned();
        let stderr_path = scripts.path().join(format!("{name}.stderr"));
        let stderr = std::fs::File::create(&stderr_path)
            .with_context(|| format!("creating {}", stderr_path.display()))?;
        let mut child = Command::new(python)
            .arg(script)
            .current_dir(scripts.path())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(stderr)
            .process_group(0)
            .spawn()
            .with_context(|| format!("cannot start {} {script}", python.display()))?;
        let stdout = child.stdout.take().context("no stdout")?;
        let (sender, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                if sender.send(line).is_err() {
                    return;
                }
            }
        });
        let mut peer = Self {
            name,
            stdin: child.stdin.take(),
            child,
            lines,
            stderr_path,
        };
        let first = peer.line(START_TIMEOUT)?;
        if first.trim() != "ready" {
            bail!("{} said {:?} instead of `ready`", peer.name, first.trim());
        }
        Ok(peer)
    }

    /// One measurement: `case` over `n` tasks or items, `chunksize` items per task (`map`).
    ///
    /// # Errors
    /// If the peer fails (its error output's last lines say why) or answers nonsense.
    pub fn request(&mut self, case: &str, n: u64, chunksize: usize) -> anyhow::Result<Figures> {
        let stdin = self.stdin.as_mut().context("the peer's input is closed")?;
        writeln!(stdin, "{case} {n} {chunksize}")
            .and_then(|()| stdin.flush())
            .with_context(|| format!("{} stopped: {}", self.name, self.stderr_tail()))?;
        let line = self.line(REQUEST_TIMEOUT)?;
        serde_json::from_str(&line)
            .with_context(|| format!("{} answered {:?}, not figures", self.name, line.trim()))
    }

    /// The next line of output, or why there is none.
    fn line(&mut self, timeout: Duration) -> anyhow::Result<String> {
        match self.lines.recv_timeout(timeout) {
            Ok(Ok(line)) => Ok(line),
            Ok(Err(error)) => bail!("reading from {}: {error}", self.name),
            Err(mpsc::RecvTimeoutError::Timeout) => {
                bail!("{} did not answer within {timeout:?}", self.name)
            }
            Err(mpsc::RecvTimeoutError::Disconnected) => {
                let status = self.child.wait().map_or("?".to_owned(), |s| s.to_string());
                bail!("{} exited ({status}): {}", self.name, self.stderr_tail())
            }
        }
    }

    fn stderr_tail(&self) -> String {
        tail(&std::fs::read(&self.stderr_path).unwrap_or_default())
    }
}

impl Drop for PythonPeer {
    /// Ends its input (the peer stops its cluster and exits), then kills what is left of its
    /// process group.
    fn drop(&mut self) {
        drop(self.stdin.take());
        let deadline = std::time::Instant::now() + STOP_TIMEOUT;
        while std::time::Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        if let Ok(pid) = i32::try_from(self.child.id()) {
            let _ = killpg(Pid::from_raw(pid), Signal::SIGKILL);
        }
        let _ = self.child.wait();
    }
}
