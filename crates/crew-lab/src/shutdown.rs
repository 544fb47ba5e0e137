//! Graceful shutdown: a token that every model watches, and the signal handler that pulls it.
//!
//! On SIGINT or SIGTERM a server stops accepting, lets in-flight requests finish and reply,
//! closes idle connections and exits 0. Blocking models are woken by hooks: the listening socket
//! and every open connection are shut down for reading, so `accept` and idle `read`s return at
//! once while replies can still be written. Async models await [`Shutdown::wait`].
//!
//! The wait is bounded: when the grace period passes, or on a second signal, the process exits
//! at once, after the *force* hooks ([`Shutdown::on_force`]) have stopped what must not outlive
//! it (the `process-pool` model's workers, the `reuseport` model's children), killed and reaped.

use std::fmt;
use std::io;
use std::sync::Arc;
use std::time::Duration;

use crew::sync::Event;
use parking_lot::Mutex;

/// Held by the thread that forces the shutdown, from the force hooks to the process's exit:
/// [`Shutdown::finish`] waits on it, so a server that returns because the hooks stopped its
/// work does not exit 0 before them.
static FORCED_EXIT: Mutex<()> = Mutex::new(());

/// A cloneable shutdown token: a shared [`crew::sync::Event`] (which fires once, wakes threads
/// and async waiters and runs hooks), under the names the models use.
///
/// ```
/// let shutdown = crew_lab::Shutdown::new();
/// let seen = shutdown.clone();
/// shutdown.trigger();
/// assert!(seen.is_triggered());
/// ```
#[derive(Clone, Default)]
pub struct Shutdown {
    event: Arc<Event>,
    forced: Arc<Event>,
}

impl fmt::Debug for Shutdown {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Shutdown")
            .field("triggered", &self.is_triggered())
            .finish()
    }
}

impl Shutdown {
    /// A token not yet triggered.
    pub fn new() -> Self {
        Self::default()
    }

    /// Starts the shutdown: runs the hooks once and wakes every waiter. Idempotent.
    pub fn trigger(&self) {
        self.event.set();
    }

    /// True once [`trigger`](Self::trigger) was called.
    pub fn is_triggered(&self) -> bool {
        self.event.is_set()
    }

    /// Runs `hook` on trigger (at once if already triggered).
    pub fn on_trigger(&self, hook: impl FnOnce() + Send + 'static) {
        self.event.on_set(hook);
    }

    /// Runs `hook` when the process is about to exit without waiting for in-flight work (the
    /// grace period is over, or a second signal came): kill and reap child processes there.
    pub fn on_force(&self, hook: impl FnOnce() + Send + 'static) {
        self.forced.on_set(hook);
    }

    /// Runs the [`on_force`](Self::on_force) hooks (once; also triggers the shutdown).
    pub fn force(&self) {
        self.trigger();
        self.forced.set();
    }

    /// Call when the server has returned, before the process exits: if a forced exit is under
    /// way, blocks until it ends the process (with its own status, after its hooks).
    pub fn finish(&self) {
        if self.forced.is_set() {
            let _exiting = FORCED_EXIT.lock();
        }
    }

    /// Blocks until triggered or `timeout` passes; returns whether it was triggered.
    pub fn wait_timeout(&self, timeout: Duration) -> bool {
        self.event.wait_timeout(timeout)
    }

    /// Completes when triggered (async models select on it).
    pub async fn wait(&self) {
        self.event.wait_async().await;
    }

    /// Triggers this token on the first SIGINT or SIGTERM. If the process is still running
    /// `grace` later, it [forces](Self::force) the shutdown and exits with status 1; a second
    /// signal does so at once, with status 130. The handlers are installed before this returns.
    ///
    /// # Errors
    /// If the signal handlers or their thread cannot be set up.
    pub fn trigger_on_signals(&self, grace: Duration) -> io::Result<()> {
        use tokio::signal::unix::{signal, SignalKind};
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        let (mut term, mut int) = {
            let _entered = runtime.enter();
            (
                signal(SignalKind::terminate())?,
                signal(SignalKind::interrupt())?,
            )
        };
        let shutdown = self.clone();
        std::thread::Builder::new()
            .name("crew-lab-signals".to_owned())
            .spawn(move || {
                runtime.block_on(async {
                    tokio::select! {
                        _ = term.recv() => {}
                        _ = int.recv() => {}
                    }
                    shutdown.trigger();
                    let status = tokio::select! {
                        _ = term.recv() => {
                            eprintln!("crew: second signal, exiting without waiting");
                            130
                        }
                        _ = int.recv() => {
                            eprintln!("crew: second signal, exiting without waiting");
                            130
                        }
                        () = tokio::time::sleep(grace) => {
                            eprintln!(
                                "crew: still busy {}s after the signal (the grace period), \
                                 exiting without finishing",
                                grace.as_secs_f64()
                            );
                            1
                        }
                    };
                    let _exiting = FORCED_EXIT.lock();
                    shutdown.force();
                    std::process::exit(status);
                });
            })?;
        Ok(())
    }
}
