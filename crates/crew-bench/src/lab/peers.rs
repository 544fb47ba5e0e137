//! The servers `crew bench` measures: crew's models (child `crew serve` processes), the Python
//! peers, the Go peer and the loopback limit, each started on an ephemeral loopback port.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use anyhow::{bail, Context};
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

use crew_lab::Model;

/// Builds a `crew serve` command for a model (`crew serve --model M --addr 127.0.0.1:0 ...`).
pub type CrewCommand = std::sync::Arc<dyn Fn(Model) -> Command + Send + Sync>;

/// One server in the benchmark.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Peer {
    /// A crew model.
    Crew(Model),
    /// A Python peer script in `peers/` (without `.py`).
    Python(&'static str),
    /// The Go peer.
    Go,
    /// The loopback limit: the std-only server of [`super::loopback`], replies precomputed.
    LoopbackLimit,
}

impl Peer {
    /// Every server, in table order.
    pub fn all() -> Vec<Peer> {
        let mut all: Vec<Peer> = Model::ALL.into_iter().map(Peer::Crew).collect();
        all.extend(PYTHON.iter().map(|name| Peer::Python(name)));
        all.push(Peer::Go);
        all.push(Peer::LoopbackLimit);
        all
    }

    /// The name in tables and JSON: `crew-threads`, `python-thread_server`, `go`,
    /// `loopback-limit`.
    pub fn name(&self) -> String {
        match self {
            Peer::Crew(model) => format!("crew-{model}"),
            Peer::Python(script) => format!("python-{script}"),
            Peer::Go => "go".to_owned(),
            Peer::LoopbackLimit => "loopback-limit".to_owned(),
        }
    }

    /// The Python peer a crew model is compared with.
    pub fn python_match(model: Model) -> &'static str {
        model.info().python_peer
    }
}

/// The Python peers, written from seed 003's description.
pub const PYTHON: [&str; 4] = [
    "one_server",
    "thread_server",
    "multiprocess_server",
    "async_server",
];

/// Where the peer sources live: `$CREW_LAB_PEERS`, or `crates/crew-bench/peers/lab` of this checkout.
pub fn peers_dir() -> PathBuf {
    std::env::var_os("CREW_LAB_PEERS")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("peers/lab"))
}

/// A running server process; dropping it stops it (SIGTERM, then SIGKILL).
#[derive(Debug)]
pub struct Running {
    child: Child,
    /// Where it listens.
    pub addr: SocketAddr,
}

impl Running {
    /// Stops the server: SIGTERM, up to 3 s to exit, then SIGKILL.
    pub fn stop(mut self) {
        self.stop_inner();
    }

    fn stop_inner(&mut self) {
        if let Ok(pid) = i32::try_from(self.child.id()) {
            let _ = kill(Pid::from_raw(pid), Signal::SIGTERM);
        }
        for _ in 0..60 {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            self.stop_inner();
        }
    }
}

/// Starts `command` and waits (up to `timeout`) for its `listening on ADDR` line.
///
/// # Errors
/// If it cannot start, exits or says something else first, or is not ready in time.
pub fn start(mut command: Command, timeout: Duration) -> anyhow::Result<Running> {
    command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = command
        .spawn()
        .with_context(|| format!("cannot start {command:?}"))?;
    let stdout = child.stdout.take().context("no stdout")?;
    let stderr = child.stderr.take().context("no stderr")?;
    let (sender, receiver) = mpsc::channel();
    std::thread::spawn(move || {
        let mut reader = BufReader::new(stdout);
        let mut line = String::new();
        let _ = sender.send(reader.read_line(&mut line).map(|_| line));
        // Keep draining so the server never blocks on a full pipe.
        let _ = std::io::copy(&mut reader, &mut std::io::sink());
    });
    let (err_sender, err_receiver) = mpsc::channel();
    std::thread::spawn(move || {
        let mut text = String::new();
        let mut reader = BufReader::new(stderr);
        let mut line = String::new();
        while reader.read_line(&mut line).is_ok_and(|read| read > 0) {
            if text.len() < 2000 {
                text.push_str(&line);
            }
            line.clear();
        }
        let _ = err_sender.send(text);
    });
    let line = match receiver.recv_timeout(timeout) {
        Ok(Ok(line)) => line,
        Ok(Err(error)) => bail!("reading its output: {error}"),
        Err(_) => {
            let _ = child.kill();
            let _ = child.wait();
            bail!("not listening after {timeout:?}");
        }
    };
    let addr = line
        .trim()
        .strip_prefix("listening on ")
        .and_then(|addr| addr.parse().ok());
    match addr {
        Some(addr) => Ok(Running { child, addr }),
        None => {
            let _ = child.kill();
            let _ = child.wait();
            let stderr = err_receiver
                .recv_timeout(Duration::from_secs(2))
                .unwrap_or_default();
            let said = stderr.lines().last().unwrap_or("").trim().to_owned();
            bail!(
                "did not start{}",
                if said.is_empty() {
                    format!(" (first line {:?})", line.trim())
                } else {
                    format!(": {said}")
                }
            );
        }
    }
}

/// Checks that `python3` runs, returning its version line.
///
/// # Errors
/// Why it cannot be used.
pub fn python_version() -> anyhow::Result<String> {
    let output = Command::new("python3")
        .arg("--version")
        .output()
        .context("python3 is not installed (apt-get install python3)")?;
    if !output.status.success() {
        bail!("python3 --version failed");
    }
    Ok(String::from_utf8_lossy(&output.stdout).trim().to_owned())
}

/// Builds the Go peer into `out_dir` (unless already built from the same source).
///
/// # Errors
/// Why Go is not available, or the compiler's complaint.
pub fn build_go(out_dir: &Path) -> anyhow::Result<PathBuf> {
    let source = peers_dir().join("fib_server.go");
    let binary = out_dir.join("fib_server_go");
    let fresh = |source: &Path, binary: &Path| -> Option<bool> {
        Some(binary.metadata().ok()?.modified().ok()? >= source.metadata().ok()?.modified().ok()?)
    };
    if fresh(&source, &binary) == Some(true) {
        return Ok(binary);
    }
    let version = Command::new("go").arg("version").output();
    if !version.is_ok_and(|output| output.status.success()) {
        bail!("go is not installed (apt-get install golang-go)");
    }
    std::fs::create_dir_all(out_dir)?;
    let mut command = Command::new("go");
    command
        .arg("build")
        .arg("-o")
        .arg(&binary)
        .arg(&source)
        .env("GO111MODULE", "off")
        .stdin(Stdio::null());
    if std::env::var_os("GOCACHE").is_none() && std::env::var_os("HOME").is_none() {
        command.env("GOCACHE", out_dir.join("go-cache"));
    }
    let output = command.output().context("running go build")?;
    if !output.status.success() {
        bail!(
            "go build failed: {}",
            String::from_utf8_lossy(&output.stderr).trim()
        );
    }
    Ok(binary)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_models_python_peer_exists() {
        for model in Model::ALL {
            let script = peers_dir().join(format!("{}.py", model.info().python_peer));
            assert!(script.exists(), "{model}: {} is missing", script.display());
        }
    }
}
