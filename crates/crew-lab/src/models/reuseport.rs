//! `reuseport`: N processes each accepting on the same port with `SO_REUSEPORT` (seed 003's
//! many_server, without one port per process). The parent holds the port (bound, not
//! listening) so port 0 works, starts the children with the configured command (the `crew`
//! binary re-executing itself as a `threads` server with `--reuse-port`), waits until each says
//! `listening on ...`, and on shutdown forwards SIGTERM and waits for them. The children share
//! one connection limit ([`SharedLimit`]), so together they admit `--max-connections` clients.
//! The children keep their own grace period; when the parent exits without waiting for them,
//! the parent-death signal is their second SIGTERM, on which they exit at once.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Child, Stdio};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context};
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use parking_lot::Mutex;

use super::spec::{Bound, Design, ModelInfo, Spec};
use crate::config::ServeConfig;
use crate::limit::SharedLimit;
use crate::listen::reserve_port;
use crate::shutdown::Shutdown;

pub(super) const MODEL: Spec = Spec {
    info: ModelInfo {
        name: "reuseport",
        seed: Some("many_server"),
        python_peer: "multiprocess_server",
        design: Design::PARALLEL,
        children: Some("threads"),
    },
    bind,
};

/// Holds the port and starts the children: once this returns, they are all listening.
fn bind(addr: SocketAddr, config: Arc<ServeConfig>) -> anyhow::Result<Bound> {
    if config.child_command.is_none() {
        bail!("the reuseport model needs a command to start its child processes");
    }
    let (reserved, addr) = reserve_port(addr)?;
    let limit = SharedLimit::new(config.max_connections)?;
    let children = start_children(addr, &config, &limit)?;
    Ok(Bound::new(addr, move |shutdown| {
        // A forced shutdown (grace over, second signal) kills and reaps the children at once.
        let forced = children.0.clone();
        shutdown.on_force(move || {
            let mut children = forced.lock();
            for child in children.iter_mut() {
                let _ = child.kill();
            }
            for mut child in children.drain(..) {
                let _ = child.wait();
            }
        });
        run(children, Some(reserved), shutdown)
    }))
}

/// Starts the children; returns once every one of them is listening.
fn start_children(
    addr: SocketAddr,
    config: &ServeConfig,
    limit: &SharedLimit,
) -> anyhow::Result<Children> {
    let command = config
        .child_command
        .as_ref()
        .context("the reuseport model needs a command to start its children")?;
    let children = Children(Arc::default());
    for _ in 0..config.workers_or_cpus() {
        let mut cmd = command(addr);
        cmd.stdin(Stdio::null()).stdout(Stdio::piped());
        limit.pass_to(&mut cmd);
        let mut child = cmd
            .spawn()
            .with_context(|| format!("cannot start a reuseport child: {cmd:?}"))?;
        let stdout = child.stdout.take().context("child stdout")?;
        children.0.lock().push(child);
        let mut line = String::new();
        BufReader::new(stdout)
            .read_line(&mut line)
            .context("reading a child's first line")?;
        if !line.starts_with("listening on") {
            bail!("a reuseport child failed to start (its first line: {line:?})");
        }
    }
    Ok(children)
}

/// Watches the children until shutdown, then stops them.
fn run(
    mut children: Children,
    reserved: Option<socket2::Socket>,
    shutdown: &Shutdown,
) -> anyhow::Result<()> {
    loop {
        if shutdown.wait_timeout(Duration::from_millis(200)) {
            break;
        }
        let died = children
            .0
            .lock()
            .iter_mut()
            .find_map(|child| Some((child.id(), child.try_wait().ok()??)));
        if let Some((pid, status)) = died {
            shutdown.trigger();
            children.stop();
            bail!("reuseport child {pid} exited unexpectedly: {status}");
        }
    }
    let clean = children.stop();
    drop(reserved);
    if !clean {
        bail!("a reuseport child did not exit cleanly");
    }
    Ok(())
}

/// The child processes of a `reuseport` server; dropping stops them. Shared with the force
/// hook, which kills and reaps whatever [`stop`](Self::stop) has not reaped yet.
#[derive(Debug)]
struct Children(Arc<Mutex<Vec<Child>>>);

impl Children {
    /// SIGTERM to every child still running, then waits (not holding the lock, so a forced
    /// shutdown can kill them meanwhile); true if all exited with status 0.
    fn stop(&mut self) -> bool {
        for child in self.0.lock().iter() {
            if let Ok(pid) = i32::try_from(child.id()) {
                let _ = kill(Pid::from_raw(pid), Signal::SIGTERM);
            }
        }
        let mut clean = true;
        loop {
            let mut children = self.0.lock();
            children.retain_mut(|child| match child.try_wait() {
                Ok(Some(status)) => {
                    clean &= status.success();
                    false
                }
                Ok(None) => true,
                Err(_) => {
                    clean = false;
                    false
                }
            });
            if children.is_empty() {
                return clean;
            }
            drop(children);
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

impl Drop for Children {
    fn drop(&mut self) {
        self.stop();
    }
}
