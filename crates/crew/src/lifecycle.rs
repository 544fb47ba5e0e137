//! The life of a pool, shared by [`ThreadPool`](crate::ThreadPool) and
//! [`ProcessPool`](crate::ProcessPool): a job queue, the threads that serve it, the "broken"
//! mark of a failed initializer, and shutdown.
//!
//! Shutdown drops the only sender: the threads drain what is queued and exit when the channel
//! reports disconnection, so there are no stop tokens to race with late submissions. A pool
//! may be shut down (or dropped) from one of its own threads, typically in a done-callback,
//! which runs in the thread that completed the task: `shutdown(wait = true)` then joins every
//! thread but the calling one (joining oneself would deadlock), and that one exits on its own
//! once the callback returns and the queue is drained.

use std::io;
use std::sync::OnceLock;
use std::thread::JoinHandle;

use crossbeam_channel::{Receiver, Sender, TrySendError};
use crossbeam_utils::CachePadded;
use parking_lot::{Mutex, RwLock};

use crate::error::SubmitError;

pub(crate) struct Lifecycle<J> {
    /// `None` once shut down; dropping it disconnects the threads after they drain the queue.
    /// On a cache line of its own: every submit writes the lock's state, and the pool's threads
    /// read the fields below for every job (false sharing halved the thread pool's
    /// submit+result rate).
    sender: CachePadded<RwLock<Option<Sender<J>>>>,
    /// Taken from by the pool's threads; kept here to discard pending jobs on shutdown.
    receiver: Receiver<J>,
    broken: OnceLock<String>,
    threads: Mutex<Vec<JoinHandle<()>>>,
    workers: usize,
}

impl<J> Lifecycle<J> {
    /// A queue for `workers` threads, bounded when `bound` is given.
    pub(crate) fn new(workers: usize, bound: Option<usize>) -> Self {
        let (sender, receiver) = match bound {
            Some(bound) => crossbeam_channel::bounded(bound),
            None => crossbeam_channel::unbounded(),
        };
        Self {
            sender: CachePadded::new(RwLock::new(Some(sender))),
            receiver,
            broken: OnceLock::new(),
            threads: Mutex::new(Vec::with_capacity(workers)),
            workers,
        }
    }

    pub(crate) fn workers(&self) -> usize {
        self.workers
    }

    pub(crate) fn receiver(&self) -> &Receiver<J> {
        &self.receiver
    }

    /// Starts one of the pool's threads.
    pub(crate) fn spawn(
        &self,
        builder: std::thread::Builder,
        body: impl FnOnce() + Send + 'static,
    ) -> io::Result<()> {
        let thread = builder.spawn(body)?;
        self.threads.lock().push(thread);
        Ok(())
    }

    /// Starts one more of the pool's threads, unless the pool is shut down (`Ok(false)`). The
    /// check and the registration happen under the lock `shutdown` takes after closing, so a
    /// concurrent `shutdown(wait = true)` either joins the new thread or prevents it.
    pub(crate) fn spawn_unless_closed(
        &self,
        builder: std::thread::Builder,
        body: impl FnOnce() + Send + 'static,
    ) -> io::Result<bool> {
        let mut threads = self.threads.lock();
        if self.is_shut_down() {
            return Ok(false);
        }
        threads.push(builder.spawn(body)?);
        Ok(true)
    }

    /// Marks the pool broken (an initializer failed); the first message wins.
    pub(crate) fn set_broken(&self, message: String) {
        let _ = self.broken.set(message);
    }

    pub(crate) fn broken(&self) -> Option<&String> {
        self.broken.get()
    }

    /// Whether new jobs are accepted.
    ///
    /// # Errors
    /// [`SubmitError::Broken`] or [`SubmitError::Shutdown`].
    pub(crate) fn check(&self) -> Result<(), SubmitError> {
        if let Some(message) = self.broken.get() {
            return Err(SubmitError::Broken {
                message: message.clone(),
            });
        }
        if self.sender.read().is_none() {
            return Err(SubmitError::Shutdown);
        }
        Ok(())
    }

    /// Queues `job`, blocking while a bounded queue is full unless `non_blocking`.
    ///
    /// # Errors
    /// [`SubmitError::Broken`], [`SubmitError::Shutdown`], or [`SubmitError::Full`] when
    /// `non_blocking` and full. The job is dropped (which settles its task).
    pub(crate) fn submit(&self, job: J, non_blocking: bool) -> Result<(), SubmitError> {
        if let Some(message) = self.broken.get() {
            return Err(SubmitError::Broken {
                message: message.clone(),
            });
        }
        let sender = self.sender.read();
        let sender = sender.as_ref().ok_or(SubmitError::Shutdown)?;
        if non_blocking {
            sender.try_send(job).map_err(|error| match error {
                TrySendError::Full(_) => SubmitError::Full,
                TrySendError::Disconnected(_) => SubmitError::Shutdown,
            })
        } else {
            sender.send(job).map_err(|_| SubmitError::Shutdown)
        }
    }

    pub(crate) fn queued(&self) -> usize {
        self.receiver.len()
    }

    pub(crate) fn is_shut_down(&self) -> bool {
        self.sender.read().is_none()
    }

    /// Stops accepting jobs (and with `cancel_pending` discards the queued ones), without
    /// waiting: the first half of [`shutdown`](Self::shutdown), for a pool whose threads must
    /// be woken some other way before they are joined.
    pub(crate) fn close(&self, cancel_pending: bool) {
        drop(self.sender.write().take());
        if cancel_pending {
            while let Ok(job) = self.receiver.try_recv() {
                drop(job); // settles its task as cancelled
            }
        }
    }

    /// Stops accepting jobs; see [`Executor::shutdown`](crate::Executor::shutdown). Called from
    /// one of the pool's own threads, `wait` joins every thread but that one.
    pub(crate) fn shutdown(&self, wait: bool, cancel_pending: bool) {
        self.close(cancel_pending);
        if wait {
            let current = std::thread::current().id();
            let threads = std::mem::take(&mut *self.threads.lock());
            for thread in threads {
                if thread.thread().id() != current {
                    let _ = thread.join();
                }
            }
        }
    }
}
