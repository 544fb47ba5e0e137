//! [`TaskOptions`]: per-task settings every executor honours.

use std::time::{Duration, Instant};

/// Per-task settings for [`Executor::submit_with`](crate::Executor::submit_with) (and
/// [`MapOptions::task_options`](crate::MapOptions::task_options)): today a deadline.
///
/// A deadline is fixed when the task is submitted. A task that has not started by then never
/// runs; one that is running is stopped where the executor can (a process pool kills its
/// worker) and its handle settles with [`TaskError::DeadlineExceeded`](crate::TaskError::DeadlineExceeded)
/// at the deadline either way (a thread cannot be killed: a thread-pool task runs on and its
/// late result is dropped).
///
/// ```
/// use std::time::Duration;
/// use crew::task::TaskOptions;
/// use crew::{Executor, TaskError, ThreadPool};
///
/// fn slow(ms: u64) -> u64 {
///     std::thread::sleep(Duration::from_millis(ms));
///     ms
/// }
///
/// let pool = ThreadPool::new(1);
/// let options = TaskOptions::new().timeout(Duration::from_millis(50));
/// let handle = pool.submit_with(slow, 2_000, options).unwrap();
/// assert_eq!(handle.result(), Err(TaskError::DeadlineExceeded { worker: None }));
/// # pool.shutdown(false, true);
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TaskOptions {
    timeout: Option<Duration>,
    deadline: Option<Instant>,
}

impl TaskOptions {
    /// No deadline.
    pub fn new() -> Self {
        Self::default()
    }

    /// The task must finish within `timeout` of its submission.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self.deadline = None;
        self
    }

    /// The task must finish by `deadline`.
    pub fn deadline(mut self, deadline: Instant) -> Self {
        self.deadline = Some(deadline);
        self.timeout = None;
        self
    }

    /// Whether a timeout or deadline was set.
    pub fn has_deadline(&self) -> bool {
        self.timeout.is_some() || self.deadline.is_some()
    }

    /// The absolute deadline of a task submitted now.
    pub fn deadline_from_now(&self) -> Option<Instant> {
        match (self.deadline, self.timeout) {
            (Some(deadline), _) => Some(deadline),
            // A timeout too far to represent is no deadline.
            (None, Some(timeout)) => Instant::now().checked_add(timeout),
            (None, None) => None,
        }
    }

    /// `self`, or `default` where `self` sets nothing (a pool's default timeout).
    pub(crate) fn or(self, default: TaskOptions) -> TaskOptions {
        if self.has_deadline() {
            self
        } else {
            default
        }
    }
}
