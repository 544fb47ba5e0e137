//! [`ProcessPool`]: Python's `ProcessPoolExecutor` / `multiprocessing.Pool`, as an
//! [`Executor`]: the same API as the [`ThreadPool`](crate::ThreadPool).
//!
//! Each worker process has a slot thread in the parent that takes jobs from the shared queue,
//! writes them to its worker and reads the replies (see the
//! [protocol note](crate::task::protocol)).
//! A slot sends one call at a time, and pipelines more (up to a few dozen) only while the queue
//! holds more than every worker's share of them and the calls it would queue behind are of
//! tasks seen to be short (under 250 µs: `Slot::call_lengths`), so short tasks are batched
//! into few system calls and long ones go one at a time to whichever worker is free. A worker that dies fails the one call it was running;
//! the calls pipelined behind it are sent to its replacement.
//!
//! **Idle workers.** A slot with nothing in flight *parks*: it leaves its worker's socket in its
//! [`Link`] and waits in `poll` on that socket and on a doorbell (an `eventfd`), not on the
//! queue. A submitter that finds a parked slot (and an empty queue, so no job is passed over)
//! claims it (`Link::claim`: under the link's lock, `LinkState::open` from `true` to `false`,
//! one claimer per park; `Link::parked` is only its lock-free hint), writes the call to
//! the worker itself and leaves the job in the link; the slot wakes when the reply arrives,
//! takes the job and reads the reply as usual, unless the caller reads it (below). So a task
//! submitted to an idle pool costs two or three handoffs (submitter → worker → (slot →)
//! caller) instead of four, and no spinning on the queue. Everything else goes through the queue and wakes a parked slot by its doorbell: calls
//! with a deadline (the slot must read their reply with it), payloads over 64 KiB, and any
//! call while the queue is not empty. A missed wake cannot happen: a slot counts itself
//! parked, then (after a `SeqCst` fence) looks at the queue; a submitter queues, then (after a
//! fence) looks at the count. A write to a worker that died while idle fails (`EPIPE`): the
//! job is left unsent in the link and goes to the replacement. The slot also wakes when its
//! idle worker hangs up, and replaces it then. Shutdown rings every doorbell.
//!
//! **A waiting caller leads.** A handed call's handle gets a driver (the task layer's
//! `Driver`, as process actors use): a caller that blocks on it
//! reads the reply off the worker's socket itself, so a round trip wakes two threads (the
//! worker, then the caller) and the slot's thread sleeps through it. The slot waits in an
//! `epoll` set (its [`Poller`]); the leader, under the link's lock, marks itself `leading`,
//! borrows the idle worker's frame buffer and changes the socket's watch to hang-up only, which
//! the kernel applies to the sleeping slot without waking it. After the read it restores the
//! watch and the buffer; on its reply it completes the call, counts it (`led`) and parks the
//! slot again (then looks at the queue, as a parking slot does); on a timeout it just leaves;
//! on a failed read it leaves the error (`lead_failed`) and rings, and the slot handles it as
//! its own failed read. A slot that wakes while a caller leads (a reply that came before the
//! watch changed, a hang-up, a doorbell) stops watching the socket, sets `wake_slot` and waits
//! for the doorbell, which the leader rings instead of parking the slot again. A caller that
//! does not block (callbacks, async, no wait at all) leaves the reply to the slot as before.
//!
//! **Staying on that path.** Two things kept callers off it, measured with one task at a time
//! and with the lab's server: a slot that read a reply itself (a call that came through the
//! queue) completed it *before* parking, so the woken caller's next call usually found it
//! still busy, went through the queue again, and so on for good (the slot's thread in every
//! round trip: two more wake-ups); so a slot whose last call is done parks first and then
//! completes it (`Slot::open_park`, `parked_early`). And with more callers than workers, a
//! leader whose call is done and who finds a job in the queue *passes it on*
//! (`Inner::pass_queued`): it writes the call to the worker at once and leaves it handed, so
//! the slot's thread wakes once, for the reply, instead of for the doorbell and then for the
//! reply (a call with a deadline or a big payload is left to the slot to send, as before).
//!
//! *Who owns what, at any moment* (all under the link's lock): the worker's read side belongs
//! to the slot's thread unless `leading` is set, and then to that one caller; the slot leaves
//! its park only when no caller leads, and takes `handed` as it leaves, so a later `lead`
//! finds nothing of its own and returns. `open` means "parked, `handed` empty, one claim
//! allowed": it is set only with `handed` empty (by the parking slot, or by a leader that
//! finished its call) and cleared by the claim itself or by the slot leaving. An earlier
//! version claimed with a lock-free swap and took the lock afterwards: a submitter preempted
//! in between could find the slot parked *again* (it had left and come back meanwhile),
//! already claimed by another submitter, and overwrite that one's handed call, dropping its
//! completer (`Err(Shutdown)`; the test `many_callers_on_idle_workers`).
//!
//! **Spinning instead of sleeping.** Even so a round trip wakes two threads (the worker for
//! the call, the caller for the reply): a blocking ping-pong between two processes costs
//! 15 µs on the 2-core VM crew is measured on (`perf bench sched pipe`), whatever crew does.
//! A leading caller and a worker that just replied both poll their socket with non-blocking
//! reads for a short, bounded while before they block (`sys::spin`: at most 20 µs, 100 µs
//! for a worker waiting for its next call, and only while spinning catches: a spin that runs
//! out turns spinning off for a while, so long tasks, idle workers and a loaded machine cost
//! no CPU): a small task submitted one at a time
//! then makes its round trip without any thread going to sleep. The slot's own thread does not
//! spin (it serves callers that do not block, whose reply latency matters less than the CPU).
//! `CREW_SPIN=0` turns spinning off. A thread that does block waits in `poll`, not in `read`
//! (`FrameReader::read`): a thread blocked in a Unix socket's `read` is woken, for nothing,
//! when the peer reads what this end wrote, which in a round trip is every time (measured: 3
//! context switches per round trip instead of 2).
//!
//! *Measured* (issue 11, one task at a time on two workers, 20,000 round trips, context
//! switches from `/proc/PID/task/TID/status`, spins from `CREW_SPIN_STATS`): only the caller
//! and one worker take part, nearly: the other worker (≤ 0.03 switches per round trip) and
//! its slot (≤ 0.007) sleep through it, and so does the used worker's slot on two free CPUs
//! (≤ 0.001); but with both CPUs busy that slot wakes in 8–13% of round trips: the worker,
//! woken onto the caller's CPU, preempts it and replies before the caller has turned the
//! slot's watch down, and the slot then reads the reply and wakes the caller itself.
//! With two free CPUs (`chrt -f 1`) both sides spin and catch in ~95% of waits and the p50 is
//! 7–7.5 µs (procspawn's 78–84 µs), after `sys::spin` stopped turning spinning off for a
//! caught lost-CPU gap and let workers wait longer for their next call (see its note: it was
//! 18 µs). With both CPUs busy (other builds) the kernel wakes the worker onto
//! the caller's CPU, nothing can catch, and the round trip is a one-CPU hand-off (15–19 µs).
//! What is left is system calls: 10 per round trip when neither side spins (two `sendto`, two
//! `ppoll`, two `recvfrom` that find nothing before blocking, two that read, and the leader's
//! two `epoll_ctl` turning the slot's watch down and up; `strace -c`); when both spin, the
//! `ppoll`s give way to the spins' looks (each a `recvfrom`). Turning the watch down when
//! the call is handed (and leaving it down between round trips) would save the two
//! `epoll_ctl` and the slot's wake-ups above, but needs the slot to learn when a handed call's
//! caller will not lead (a callback, async, a dropped handle): not done.
//!
//! *In the lab's `process-pool` server* (issue 11; a thread per connection, each request a
//! call on this path; numbers in the README's lab section): at 2 and 4 clients on the 2-core VM
//! the run is CPU-bound, and a request costs the server 3.4–4.5 context switches and 59–87 µs
//! of CPU (about 10.6 system calls) against Go's 0.7–1.3 switches and 18–27 µs. crew-bench's
//! example `lab_floor`, the same design with no crew (a blocking call over a Unix socket pair),
//! costs 4.5–5.1 switches and 54–73 µs and reaches only 0.55×, 0.73×, 0.63× of Go at 1, 2, 4
//! clients, so no change to this protocol can bring that server to Go's rate; the pool runs at
//! 0.97×, 1.1×, 0.83× of that floor. The two `epoll_ctl` above are 2 of the ~10.6 system
//! calls; saving them was left undone (a protocol change worth a few per cent, which this
//! shared machine's noise could not have shown).
//!
//! **Starting workers.** A worker killed by a signal before it is ready (before its handshake,
//! or in the initializer) is started again, a few times with a growing pause, and no task is
//! failed for it: a task is only ever failed by the death of the worker it was sent to. A
//! worker that exits on its own before its handshake ran this program's `main()` without
//! serving (`crew::init()` missing): that is not retried, and the error says so.
//!
//! **Deadlines and cancellation.** A call with a deadline is sent alone and the slot reads its
//! reply with that deadline; when it passes, the worker is killed and replaced and the task
//! fails with `DeadlineExceeded` naming the worker. A task is revocable: its completer's cancel
//! hook marks it cancelled and, if its worker is running it (it is the first call in flight),
//! kills that worker; the slot then sees the worker die, finishes nothing (the handle already
//! says `Cancelled`) and sends the calls behind it to the replacement. Because a worker may
//! finish the cancelled call and start the next one just before the signal lands, a death
//! after a cancel-kill fails no call: every call in flight is sent again.

use std::collections::VecDeque;
use std::fmt;
use std::io;
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::sync::atomic::{fence, AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use crossbeam_channel::TryRecvError;
use parking_lot::Mutex;
use rustix::event::PollFlags;

use crate::error::{SubmitError, TaskError, WorkerId};
use crate::executor::{Executor, Message};
use crate::exit::ExitStatus;
use crate::lifecycle::Lifecycle;
use crate::process::child::{Child, ChildOptions, StartError};
use crate::sys::socket::{self, Doorbell, Poller};
use crate::sys::spin::Spin;
use crate::sys::supervise::Supervised;
use crate::task::codec::{self, write_frame, Frame, FrameReader, ReadError};
use crate::task::protocol::{Outcome, ToParent, ToWorker};
use crate::task::{outcome_error, pair_with, Completer, TaskFn, TaskHandle, TaskInfo, TaskOptions};

/// Calls pipelined to one worker at most (only while the queue has a backlog).
const PIPELINE: usize = 32;

/// A slot pipelines behind calls of a task only if its last timed call took less than this
/// (see `Slot::call_lengths`).
const PIPELINE_CALLS_UNDER: Duration = Duration::from_micros(250);

/// Task functions whose last call length a slot remembers.
const CALL_LENGTHS: usize = 16;

/// Long calls in a row after which a task seen to be short counts as long: one slow round
/// trip (the worker or the slot waiting for a CPU on a loaded machine) does not stop a tiny
/// task's pipelining, just when its batching saves the most.
const LONG_IN_A_ROW: u8 = 2;

/// Starts of a worker, in a row, that a signal may cut short before the slot gives up.
const START_ATTEMPTS: u32 = 10;
/// The pause after the first such start; it doubles after each, up to [`MAX_START_BACKOFF`].
const START_BACKOFF: Duration = Duration::from_millis(1);
const MAX_START_BACKOFF: Duration = Duration::from_millis(100);

/// How long the initializer may run in a new worker unless
/// [`ProcessPoolBuilder::initializer_timeout`] says otherwise.
const DEFAULT_INITIALIZER_TIMEOUT: Duration = Duration::from_secs(300);

/// The typed end of a job: decodes the result into the task's handle.
pub(crate) trait Reply: Send {
    fn start(&self) -> bool;
    fn finish(self: Box<Self>, result: Result<Vec<u8>, TaskError>);
}

struct TypedReply<R> {
    completer: Completer<R>,
}

impl<R: Message> Reply for TypedReply<R> {
    fn start(&self) -> bool {
        self.completer.start()
    }

    fn finish(self: Box<Self>, result: Result<Vec<u8>, TaskError>) {
        let result = result.and_then(|bytes| {
            codec::decode::<R>(&bytes).map_err(|message| TaskError::Transport { message })
        });
        self.completer.complete(result);
    }
}

/// How a caller's `cancel()` reaches the worker running the task (see the module note).
#[derive(Debug, Default)]
struct Revoke(Mutex<RevokeState>);

#[derive(Debug, Default)]
struct RevokeState {
    cancelled: bool,
    /// The worker running the call right now, while it is the first in flight. The supervisor,
    /// not a pid: it never signals a process that was already reaped (a recycled pid).
    running_on: Option<Arc<Supervised>>,
    /// Whether the hook killed that worker.
    killed: bool,
}

impl Revoke {
    /// The cancel hook: kill the worker if it is running the call.
    fn cancel(&self) {
        let mut state = self.0.lock();
        state.cancelled = true;
        if let Some(process) = &state.running_on {
            kill(process);
            state.killed = true;
        }
    }

    /// The call became the worker's current one. Kills the worker if the call was cancelled
    /// while it waited in the pipeline.
    fn running_on(&self, process: Arc<Supervised>) {
        let mut state = self.0.lock();
        if state.cancelled {
            state.killed = true;
            kill(&process);
        } else {
            state.running_on = Some(process);
        }
    }

    /// The call is no longer running on its worker (it finished, or the worker is about to be
    /// reaped, after which its pid may be reused). Returns whether a cancel killed the worker.
    fn release(&self) -> bool {
        let mut state = self.0.lock();
        state.running_on = None;
        state.killed
    }

    fn cancelled(&self) -> bool {
        self.0.lock().cancelled
    }
}

fn kill(process: &Supervised) {
    // An error means the worker is already gone, which is what the kill wanted.
    let _ = process.signal(rustix::process::Signal::KILL);
}

/// A queued call.
pub(crate) struct Job {
    task: &'static TaskInfo,
    chunk: bool,
    payload: Vec<u8>,
    deadline: Option<Instant>,
    revoke: Arc<Revoke>,
    reply: Box<dyn Reply>,
}

impl Job {
    fn new<R: Message>(
        task: &'static TaskInfo,
        chunk: bool,
        payload: Vec<u8>,
        options: &TaskOptions,
    ) -> (Job, TaskHandle<R>) {
        let (handle, completer) = pair_with(options);
        let revoke = Arc::new(Revoke::default());
        let hook = revoke.clone();
        completer.on_cancel(move || hook.cancel());
        let job = Job {
            task,
            chunk,
            payload,
            deadline: completer.deadline(),
            revoke,
            reply: Box::new(TypedReply { completer }),
        };
        (job, handle)
    }
}

/// Payloads up to this size may be handed straight to an idle worker (larger ones go through
/// the queue, so that a submitter never holds a slot while writing megabytes).
const HAND_LIMIT: usize = 64 * 1024;

/// A slot as submitters see it: how to hand a call straight to its idle worker, and how to
/// wake its thread (see "Idle workers" in the module note).
#[derive(Debug)]
struct Link {
    /// A hint of `LinkState::open`, read without the lock so that submitters lock only the
    /// links that may be open. Written only under `state`'s lock, with `open`.
    parked: AtomicBool,
    state: Mutex<LinkState>,
    /// Rung to wake the slot's thread while it is parked.
    doorbell: Doorbell,
    /// What the parked slot's thread waits on: the doorbell ([`DOORBELL`]) and, while it is
    /// watched, the idle worker's socket ([`WORKER`]). Changed only under `state`'s lock.
    poller: Poller,
}

impl Link {
    /// Claims the parked slot: closes it (see [`LinkState::open`]) and returns its locked
    /// state, or `None` if it is not open (not parked, or claimed already).
    fn claim(&self) -> Option<parking_lot::MutexGuard<'_, LinkState>> {
        self.claim_if(|_| true)
    }

    /// [`claim`](Self::claim), only if `accept` takes the slot's state.
    fn claim_if(
        &self,
        accept: impl Fn(&LinkState) -> bool,
    ) -> Option<parking_lot::MutexGuard<'_, LinkState>> {
        if !self.parked.load(Ordering::SeqCst) {
            return None;
        }
        let mut state = self.state.lock();
        if !state.open || !accept(&state) {
            return None;
        }
        self.set_open(&mut state, false);
        Some(state)
    }

    /// Opens or closes the slot for claims, with its lock-free hint.
    fn set_open(&self, state: &mut LinkState, open: bool) {
        state.open = open;
        self.parked.store(open, Ordering::SeqCst);
    }
}

/// The token of a link's doorbell in its poller.
const DOORBELL: u64 = 0;
/// The token of the idle worker's socket in its link's poller.
const WORKER: u64 = 1;
/// What a parked slot watches its idle worker's socket for: a reply to a handed call, or the
/// worker hanging up.
const REPLY_OR_HANG_UP: PollFlags = PollFlags::IN.union(PollFlags::RDHUP);
/// While a caller reads the reply itself: the worker hanging up only (the kernel then does
/// not wake the slot's thread for the reply).
const HANG_UP: PollFlags = PollFlags::RDHUP;

#[derive(Debug, Default)]
struct LinkState {
    /// The slot is parked and takes one claim: a handed call, or a wake for a queued job.
    /// Opened by the parking slot or a leader that finished its call (both with `handed`
    /// empty), closed by the one claim ([`Link::claim`]) or by the slot leaving its park.
    /// Because it changes only under the lock, a claim can never land on a later park than the
    /// one it saw (issue 11: a submitter preempted between a lock-free claim and the lock
    /// handed its call over another one's, whose completer was dropped).
    open: bool,
    /// While the slot is parked with a live worker and nothing in flight: the worker.
    idle: Option<IdleWorker>,
    /// A call a submitter handed over (or a leader passed on from the queue, see
    /// [`Inner::pass_queued`]) while the slot was parked, for the slot to take when it wakes
    /// (or for its caller to finish, see [`Inner::lead`]).
    handed: Option<Handed>,
    /// The idle worker's socket is in the link's poller.
    watching: bool,
    /// A caller is reading the handed call's reply (it has the idle worker's frame buffer).
    leading: bool,
    /// The slot's thread woke while a caller was leading and waits for the doorbell: the
    /// leader rings it instead of parking the slot again.
    wake_slot: bool,
    /// The slot opened its park early and is still completing its last call on its own thread
    /// (done-callbacks run there, and may submit and wait): claims go to other open slots
    /// first ([`Inner::claim_open`]). Cleared when the slot's thread reaches `park`.
    completing: bool,
    /// Calls that callers finished on the idle worker while the slot was parked (they count
    /// towards `max_tasks_per_child`).
    led: usize,
    /// How the callers that lead on this slot's worker spin before they block (see
    /// `sys::spin`): lent to each leader, as the frame buffer is.
    spin: Spin,
    /// The leader's read of the handed call's reply failed (the worker died or sent garbage):
    /// the slot handles it as its own failed read when it wakes.
    lead_failed: Option<ReadError>,
}

#[derive(Debug)]
struct IdleWorker {
    stream: Arc<UnixStream>,
    process: Arc<Supervised>,
    /// The worker's frame buffer, lent by the slot while it is parked.
    reader: FrameReader,
}

struct Handed {
    /// The call's id if it was written to the worker; `None` if the worker was found dead
    /// (the write failed), so the call is still to be sent.
    id: Option<u64>,
    job: Job,
}

impl fmt::Debug for Handed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Handed").field("id", &self.id).finish()
    }
}

/// Writes `job` as call `id` straight to an idle worker's socket, in one system call.
fn send_call(stream: &UnixStream, id: u64, job: &Job) -> io::Result<()> {
    let header = ToWorker::Call {
        id,
        name: job.task.name().to_owned(),
        signature: job.task.signature(),
        chunk: job.chunk,
    };
    let mut frame = Vec::with_capacity(64 + job.payload.len());
    write_frame(&mut frame, &header, &job.payload)?;
    socket::send_all(stream, &frame)
}

/// What [`Inner::pass_queued`] did with a queued job.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Passed {
    /// Wrote it to the idle worker: the slot's thread wakes for the reply.
    ToWorker,
    /// Left it for the slot's thread to send: ring it.
    ToSlot,
}

/// Where [`Inner::hand`] wrote a call: the slot's index and the call's id.
struct HandedTo {
    index: usize,
    id: u64,
}

/// Why a parked slot's thread woke (see [`Slot::park`]).
enum Parked {
    /// A job from the queue, not yet started.
    Job(Job),
    /// Something else: look again (a handed call may now be in flight or waiting to be sent).
    Woken,
    /// The pool is shut down and its queue drained.
    ShutDown,
}

/// Configures a [`ProcessPool`].
///
/// ```no_run
/// use std::time::Duration;
///
/// #[crew::task]
/// fn open_connections(_: ()) {
///     // the seed's advice: reopen connections and files in each child
/// }
///
/// # fn main() {
/// crew::init();
/// let pool = crew::ProcessPool::builder()
///     .max_workers(4)
///     .initializer(open_connections, ())
///     .max_tasks_per_child(1000)
///     .task_timeout(Duration::from_secs(30))
///     .memory_limit(512 << 20)
///     .build()
///     .unwrap();
/// # }
/// ```
#[derive(Debug, Clone, Default)]
pub struct ProcessPoolBuilder {
    max_workers: Option<usize>,
    max_tasks_per_child: Option<usize>,
    initializer: Option<(&'static TaskInfo, Vec<u8>)>,
    initializer_error: Option<String>,
    initializer_timeout: Option<Duration>,
    queue_bound: Option<usize>,
    task_options: TaskOptions,
    memory_limit: Option<u64>,
    worker_program: Option<PathBuf>,
}

impl ProcessPoolBuilder {
    /// Defaults: one worker per CPU, workers live forever, no initializer, no task timeout, no
    /// memory limit, an unbounded queue.
    pub fn new() -> Self {
        Self::default()
    }

    /// The number of worker processes (Python's `max_workers` / `processes`).
    ///
    /// # Panics
    /// If `n` is 0.
    #[track_caller]
    pub fn max_workers(mut self, n: usize) -> Self {
        assert!(n > 0, "ProcessPoolBuilder::max_workers must be at least 1");
        self.max_workers = Some(n);
        self
    }

    /// Replace each worker after it has run `n` tasks (a chunk of `map` counts as one), as
    /// Python's `maxtasksperchild`: bounds what a leaky task can accumulate.
    ///
    /// # Panics
    /// If `n` is 0.
    #[track_caller]
    pub fn max_tasks_per_child(mut self, n: usize) -> Self {
        assert!(
            n > 0,
            "ProcessPoolBuilder::max_tasks_per_child must be at least 1"
        );
        self.max_tasks_per_child = Some(n);
        self
    }

    /// Runs `init(arg)` once in every worker before its first task (Python's `initializer` and
    /// `initargs`). `init` must be a `#[crew::task]`. If it panics the pool is broken: tasks fail
    /// with [`TaskError::InitializerFailed`] and `submit` returns [`SubmitError::Broken`]. So
    /// it is if it runs longer than the [`initializer_timeout`](Self::initializer_timeout).
    pub fn initializer<A: Message, F: TaskFn<A, ()>>(mut self, init: F, arg: A) -> Self {
        match TaskInfo::of(&init).and_then(|task| {
            codec::encode(&arg)
                .map(|payload| (task, payload))
                .map_err(|message| SubmitError::Unsupported { message })
        }) {
            Ok(initializer) => self.initializer = Some(initializer),
            Err(error) => self.initializer_error = Some(error.to_string()),
        }
        self
    }

    /// How long the initializer may run in each new worker (default 5 minutes, generous for
    /// loading large data). One that runs longer (hangs on a lock or a
    /// connection) has its worker killed and breaks the pool: tasks fail with
    /// [`TaskError::InitializerFailed`] and `submit` returns [`SubmitError::Broken`], both
    /// naming the timeout, instead of every task waiting forever.
    ///
    /// # Panics
    /// If `timeout` is zero.
    #[track_caller]
    pub fn initializer_timeout(mut self, timeout: Duration) -> Self {
        assert!(
            !timeout.is_zero(),
            "ProcessPoolBuilder::initializer_timeout must be more than zero"
        );
        self.initializer_timeout = Some(timeout);
        self
    }

    /// Bounds the queue of waiting tasks (those not yet sent to a worker): `submit` then
    /// blocks while it is full and `try_submit` reports [`SubmitError::Full`] (backpressure),
    /// as [`ThreadPoolBuilder::queue_bound`](crate::ThreadPoolBuilder::queue_bound).
    ///
    /// # Panics
    /// If `bound` is 0.
    #[track_caller]
    pub fn queue_bound(mut self, bound: usize) -> Self {
        assert!(
            bound > 0,
            "ProcessPoolBuilder::queue_bound must be at least 1"
        );
        self.queue_bound = Some(bound);
        self
    }

    /// The default deadline of every task: `timeout` after its submission (a task given its
    /// own [`TaskOptions`] with [`Executor::submit_with`] keeps those). A worker still running
    /// the task then is killed and replaced; the task fails with
    /// [`TaskError::DeadlineExceeded`].
    pub fn task_timeout(mut self, timeout: Duration) -> Self {
        self.task_options = TaskOptions::new().timeout(timeout);
        self
    }

    /// Starts workers from `program` instead of this executable (`/proc/self/exe`). It must be
    /// a program that calls [`crew::init()`](crate::init) first in `main` and registers the
    /// tasks the pool runs, with the same names and signatures (checked per call: a task that
    /// differs fails with [`TaskError::Incompatible`], one that is missing with
    /// [`TaskError::UnknownTask`]). Another build of the same code serves.
    pub fn worker_program(mut self, program: impl Into<PathBuf>) -> Self {
        self.worker_program = Some(program.into());
        self
    }

    /// Limits each worker's address space to `bytes` (`RLIMIT_AS`): a task that allocates more
    /// fails to allocate, its worker dies ([`TaskError::WorkerDied`]) and is replaced.
    pub fn memory_limit(mut self, bytes: u64) -> Self {
        self.memory_limit = Some(bytes);
        self
    }

    /// Starts the pool. Workers start in the background; the first task waits for its worker.
    ///
    /// # Errors
    /// An `InvalidInput` error if the initializer is not a `#[crew::task]`; the operating
    /// system's error if a slot thread cannot start.
    pub fn build(self) -> io::Result<ProcessPool> {
        if let Some(message) = self.initializer_error {
            return Err(io::Error::new(io::ErrorKind::InvalidInput, message));
        }
        let workers = self
            .max_workers
            .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
        let links = (0..workers)
            .map(|_| {
                let doorbell = Doorbell::new()?;
                let poller = Poller::new()?;
                poller.add(doorbell.as_fd(), DOORBELL, PollFlags::IN)?;
                Ok(Link {
                    parked: AtomicBool::new(false),
                    state: Mutex::new(LinkState::default()),
                    doorbell,
                    poller,
                })
            })
            .collect::<io::Result<_>>()?;
        let inner = Arc::new(Inner {
            lifecycle: Lifecycle::new(workers, self.queue_bound),
            pids: Mutex::new(vec![None; workers]),
            links,
            parked: AtomicUsize::new(0),
            next_id: AtomicU64::new(0),
            config: Config {
                child: ChildOptions {
                    memory_limit: self.memory_limit,
                    death_signal: true,
                    program: self.worker_program,
                },
                max_tasks_per_child: self.max_tasks_per_child,
                initializer: self.initializer,
                initializer_timeout: self
                    .initializer_timeout
                    .unwrap_or(DEFAULT_INITIALIZER_TIMEOUT),
                task_options: self.task_options,
            },
        });
        let pool = ProcessPool { inner };
        for index in 0..workers {
            let inner = pool.inner.clone();
            let builder = std::thread::Builder::new().name(format!("crew-process-slot-{index}"));
            pool.inner
                .lifecycle
                .spawn(builder, move || Slot::new(inner, index).run())?;
        }
        Ok(pool)
    }
}

#[derive(Debug)]
struct Config {
    child: ChildOptions,
    max_tasks_per_child: Option<usize>,
    initializer: Option<(&'static TaskInfo, Vec<u8>)>,
    initializer_timeout: Duration,
    task_options: TaskOptions,
}

struct Inner {
    lifecycle: Lifecycle<Job>,
    pids: Mutex<Vec<Option<u32>>>,
    /// One per slot, by index.
    links: Vec<Link>,
    /// How many slots are parked: submitters look at the links only when some are.
    parked: AtomicUsize,
    /// Ids of calls, unique in the pool (slots and submitters both send calls).
    next_id: AtomicU64,
    config: Config,
}

impl Inner {
    /// Hands `job` straight to an idle worker: claims a parked slot, writes the call to its
    /// worker and leaves the job for the slot's thread, which wakes when the reply arrives.
    /// Gives the job back when no slot is parked, the queue is not empty (the job must not pass
    /// queued ones) or the call must go through a slot (it has a deadline, or a big payload);
    /// with the index of a slot it claimed but could not hand to (its worker is not running),
    /// to be woken once the job is queued. On success, the slot's index and the call's id if
    /// the call was written (its caller may then read the reply itself, see [`Inner::lead`]).
    fn hand(&self, job: Job) -> Result<Option<HandedTo>, (Job, Option<usize>)> {
        if job.deadline.is_some()
            || job.payload.len() > HAND_LIMIT
            || self.parked.load(Ordering::SeqCst) == 0
            || !self.lifecycle.receiver().is_empty()
        {
            return Err((job, None));
        }
        let Some((index, mut state)) = self.claim_open() else {
            return Err((job, None));
        };
        let link = &self.links[index];
        debug_assert!(state.handed.is_none(), "an open slot holds no handed call");
        let Some(idle) = &state.idle else {
            return Err((job, Some(index)));
        };
        if !job.reply.start() {
            // Cancelled already (nobody has its handle yet, so this does not happen).
            link.set_open(&mut state, true);
            return Ok(None);
        }
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let sent = send_call(&idle.stream, id, &job).is_ok();
        if sent {
            job.revoke.running_on(idle.process.clone());
        }
        // A failed write means the worker died while idle: the slot sees it hang up, replaces
        // it and sends the call to the replacement.
        state.handed = Some(Handed {
            id: sent.then_some(id),
            job,
        });
        Ok(sent.then_some(HandedTo { index, id }))
    }

    /// A caller blocked on the handle of call `id`, handed to slot `index`'s idle worker,
    /// reads the reply itself (until `deadline`) instead of sleeping until the slot's thread
    /// reads it and wakes it: one thread wake-up fewer per round trip. See "A waiting caller
    /// leads" in the module note. Returns at once if the slot's thread took the call already.
    fn lead(&self, index: usize, id: u64, deadline: Option<Instant>) {
        let link = &self.links[index];
        let (stream, mut reader, mut spin) = {
            let mut state = link.state.lock();
            let ours =
                matches!(&state.handed, Some(Handed { id: Some(handed), .. }) if *handed == id);
            if !ours || state.leading {
                return;
            }
            let Some(idle) = state.idle.as_mut() else {
                return;
            };
            let stream = idle.stream.clone();
            let reader = std::mem::take(&mut idle.reader);
            if state.watching {
                let _ = link.poller.modify(&*stream, WORKER, HANG_UP);
            }
            state.leading = true;
            (stream, reader, state.spin)
        };
        let read = reader.read_spinning::<_, ToParent>(&mut &*stream, deadline, &mut spin);
        let mut state = link.state.lock();
        state.leading = false;
        state.spin = spin;
        if state.watching {
            let _ = link.poller.modify(&*stream, WORKER, REPLY_OR_HANG_UP);
        }
        state
            .idle
            .as_mut()
            .expect("the slot keeps its idle worker while a caller leads")
            .reader = reader;
        let (outcome, payload) = match read {
            Ok(Frame {
                header: ToParent::Done { id: done, outcome },
                payload,
            }) if done == id => (outcome, payload),
            Err(ReadError::Timeout) => {
                // The caller stops waiting; the slot reads the reply when it comes.
                let wake = std::mem::take(&mut state.wake_slot);
                drop(state);
                if wake {
                    link.doorbell.ring();
                }
                return;
            }
            Ok(other) => {
                state.lead_failed = Some(ReadError::Malformed(format!(
                    "malformed frame: unexpected {:?} while waiting for a reply",
                    other.header
                )));
                drop(state);
                link.doorbell.ring();
                return;
            }
            Err(error) => {
                state.lead_failed = Some(error);
                drop(state);
                link.doorbell.ring();
                return;
            }
        };
        let Handed { job, .. } = state.handed.take().expect("checked before the read");
        state.led += 1;
        // A cancel that killed the worker after it answered: the slot replaces it. A pool that
        // counts tasks per worker lets the slot count (and retire the worker).
        let park_again =
            !job.revoke.release() && !state.wake_slot && self.config.max_tasks_per_child.is_none();
        let passed = park_again.then(|| self.pass_queued(&mut state)).flatten();
        if park_again && passed.is_none() {
            link.set_open(&mut state, true);
        }
        drop(state);
        if !park_again || passed == Some(Passed::ToSlot) {
            link.doorbell.ring();
        } else if passed.is_none() {
            // A job queued while the slot was claimed found no parked slot to wake: as a
            // parking slot does (`Slot::park`), look at the queue after parking again.
            fence(Ordering::SeqCst);
            if !self.lifecycle.receiver().is_empty() && link.claim().is_some() {
                link.doorbell.ring();
            }
        }
        let result = match outcome {
            Outcome::Ok => Ok(payload),
            other => Err(outcome_error(job.task, other)),
        };
        job.reply.finish(result);
    }

    /// A leader that finished its call on a claimed slot's idle worker, with a job in the
    /// queue: passes the job on (under the link's lock) instead of parking the slot again and
    /// ringing it to take the job. A plain call is written to the worker at once, as
    /// [`hand`](Self::hand) does, and left handed with its id: the slot's thread wakes when
    /// the reply arrives (the leader restored the watch) and reads it, so the queued call costs
    /// the slot's thread one wake-up instead of two (the doorbell, then its reply). Anything
    /// else (a deadline, a big payload, a dead worker) is left handed unsent, for the slot to
    /// send (`Passed::ToSlot`: ring it). `None` when the queue was empty.
    fn pass_queued(&self, state: &mut LinkState) -> Option<Passed> {
        let job = loop {
            let job = self.lifecycle.receiver().try_recv().ok()?;
            if job.reply.start() {
                break job;
            } // else cancelled while queued
        };
        let idle = state
            .idle
            .as_ref()
            .expect("a leader's slot keeps its idle worker");
        // (The slot's thread must be watching the worker to wake for the reply.)
        let plain = state.watching
            && job.deadline.is_none()
            && job.payload.len() <= HAND_LIMIT
            && !job.revoke.cancelled()
            && self.lifecycle.broken().is_none();
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let sent = plain && send_call(&idle.stream, id, &job).is_ok();
        if sent {
            job.revoke.running_on(idle.process.clone());
        }
        state.handed = Some(Handed {
            id: sent.then_some(id),
            job,
        });
        Some(if sent {
            Passed::ToWorker
        } else {
            Passed::ToSlot
        })
    }

    /// Wakes one parked slot after a job was queued (when one is parked).
    fn wake_parked(&self, claimed: Option<usize>) {
        if let Some(index) = claimed {
            self.links[index].doorbell.ring();
            return;
        }
        // Pairs with the fence in `Slot::park`: either that slot's look at the queue finds the
        // job, or this load sees it parked.
        fence(Ordering::SeqCst);
        if self.parked.load(Ordering::SeqCst) == 0 {
            return;
        }
        if let Some((index, _claimed)) = self.claim_open() {
            self.links[index].doorbell.ring();
        }
    }

    /// Claims an open slot, one whose thread waits first: a slot still completing its last
    /// call runs that call's done-callbacks, and a callback that submits and waits must not
    /// have its job rung to its own busy thread while another slot sleeps.
    fn claim_open(&self) -> Option<(usize, parking_lot::MutexGuard<'_, LinkState>)> {
        let claim = |accept: fn(&LinkState) -> bool| {
            self.links
                .iter()
                .enumerate()
                .find_map(|(index, link)| Some((index, link.claim_if(accept)?)))
        };
        claim(|state| !state.completing).or_else(|| claim(|_| true))
    }
}

/// Why one start of a worker failed.
enum Start {
    /// A signal killed it before it was ready: try again.
    Killed(TaskError),
    /// Trying again would fail the same way.
    Failed(TaskError),
}

struct InFlight {
    id: u64,
    job: Job,
    /// When the slot wrote it (`None`: a submitter handed it, at a time the slot does not know).
    sent: Option<Instant>,
}

/// Whether `job` is a call of `task` (a map's chunk or not, as `chunk` says): one entry of a
/// slot's `call_lengths`.
fn calls_of(task: &'static TaskInfo, chunk: bool, job: &Job) -> bool {
    std::ptr::eq(task, job.task) && chunk == job.chunk
}

/// Notes whether `job`'s call was short, in a slot's `call_lengths`: the count of long calls
/// in a row, from [`LONG_IN_A_ROW`] for a task whose first call was long.
fn note_call_length(lengths: &mut Vec<(&'static TaskInfo, bool, u8)>, job: &Job, short: bool) {
    let known = lengths
        .iter_mut()
        .find(|(task, chunk, _)| calls_of(task, *chunk, job));
    match known {
        Some(entry) => entry.2 = if short { 0 } else { entry.2.saturating_add(1) },
        None => {
            if lengths.len() == CALL_LENGTHS {
                lengths.remove(0);
            }
            lengths.push((job.task, job.chunk, if short { 0 } else { LONG_IN_A_ROW }));
        }
    }
}

/// One worker slot: its thread owns the worker process.
struct Slot {
    inner: Arc<Inner>,
    index: usize,
    worker: Option<Child>,
    /// Calls sent to the current worker.
    sent: usize,
    in_flight: VecDeque<InFlight>,
    /// Started jobs waiting to be (re)sent: pipelined behind a call whose worker died, or held
    /// back because they need the worker alone (a timeout).
    retry: VecDeque<Job>,
    /// A cancel hook killed the current worker (see [`Slot::lose_worker`]).
    cancel_killed: bool,
    /// The slot parked (opened its link) before completing its last call, so that the
    /// call's caller, woken by the completion, finds it parked when it submits its next one
    /// (see [`Slot::open_park`]); [`Slot::park`] then only waits.
    parked_early: bool,
    /// Per task function (and whether the call was a chunk of a map): how many of its last
    /// timed calls in a row took [`PIPELINE_CALLS_UNDER`] or more (from the later of its send
    /// and the reply before it, to its reply); short below [`LONG_IN_A_ROW`], and a task whose
    /// first call was long starts there. A slot pipelines only behind calls known to be short.
    /// Pipelining saves a round trip's hand-offs per call, which only short calls notice,
    /// and costs balance: calls pipelined to one worker cannot go to another that runs dry,
    /// so long calls pipelined over two workers left one idle at the end while the calls
    /// behind a long one waited for it. So a task not yet seen, or seen to be long, goes one
    /// call at a time to whichever worker is free (as `Pool.map(chunksize=1)` does); by
    /// task, not by the last call, so that a pool warmed up on tiny tasks does not pipeline
    /// the first calls of a long one.
    call_lengths: Vec<(&'static TaskInfo, bool, u8)>,
    /// When the last reply arrived (the start of the call behind it).
    last_reply: Option<Instant>,
}

impl Slot {
    fn new(inner: Arc<Inner>, index: usize) -> Self {
        Self {
            inner,
            index,
            worker: None,
            sent: 0,
            in_flight: VecDeque::new(),
            retry: VecDeque::new(),
            cancel_killed: false,
            parked_early: false,
            call_lengths: Vec::new(),
            last_reply: None,
        }
    }

    fn run(mut self) {
        if self.inner.lifecycle.broken().is_none() {
            let _ = self.start_worker();
        }
        loop {
            if self.in_flight.is_empty() && self.exhausted() {
                self.retire();
            }
            if !self.fill() {
                break;
            }
            if !self.in_flight.is_empty() {
                self.receive();
            }
        }
        self.retire();
    }

    /// Whether `job`'s task is known to make short calls (see `call_lengths`).
    fn short_call(&self, job: &Job) -> bool {
        self.call_lengths
            .iter()
            .find(|(task, chunk, _)| calls_of(task, *chunk, job))
            .is_some_and(|&(_, _, long)| long < LONG_IN_A_ROW)
    }

    /// Whether the current worker has run its `max_tasks_per_child`.
    fn exhausted(&self) -> bool {
        self.worker.is_some()
            && self
                .inner
                .config
                .max_tasks_per_child
                .is_some_and(|max| self.sent >= max)
    }

    /// Sends jobs to the worker. Returns `false` when the pool is shut down and drained.
    fn fill(&mut self) -> bool {
        loop {
            if self.exhausted()
                || self.in_flight.len() >= PIPELINE
                || self
                    .in_flight
                    .front()
                    .is_some_and(|f| f.job.deadline.is_some())
            {
                break;
            }
            let job = if let Some(job) = self.retry.pop_front() {
                job
            } else {
                let receiver = self.inner.lifecycle.receiver();
                let job = if self.in_flight.is_empty() {
                    match self.park() {
                        Parked::Job(job) => job,
                        Parked::Woken => continue,
                        Parked::ShutDown => return false,
                    }
                } else if self.in_flight.iter().all(|f| self.short_call(&f.job))
                    && receiver.len() > self.inner.lifecycle.workers() * (self.in_flight.len() + 1)
                {
                    // A backlog big enough that every other worker still finds as much waiting
                    // as this one holds: pipeline (short tasks batch into few system calls).
                    match receiver.try_recv() {
                        Ok(job) => job,
                        Err(TryRecvError::Empty | TryRecvError::Disconnected) => break,
                    }
                } else {
                    break;
                };
                if !job.reply.start() {
                    continue; // cancelled while queued
                }
                job
            };
            if job.deadline.is_some() && !self.in_flight.is_empty() {
                self.retry.push_front(job);
                break;
            }
            if job
                .deadline
                .is_some_and(|deadline| Instant::now() >= deadline)
            {
                job.reply
                    .finish(Err(TaskError::DeadlineExceeded { worker: None }));
                continue;
            }
            if job.revoke.cancelled() {
                continue; // cancelled after it started, e.g. while waiting to be sent again
            }
            if let Some(message) = self.inner.lifecycle.broken() {
                job.reply.finish(Err(TaskError::InitializerFailed {
                    message: message.clone(),
                }));
                continue;
            }
            if self.in_flight.is_empty() && self.worker.as_ref().is_some_and(Child::hung_up) {
                // It died while idle (killed from outside): no task of ours was with it.
                if let Some(mut dead) = self.worker.take() {
                    dead.kill_and_reap();
                }
            }
            if self.worker.is_none() {
                if let Err(error) = self.start_worker() {
                    job.reply.finish(Err(error));
                    continue;
                }
            }
            let worker = self.worker.as_mut().expect("started above");
            let id = self.inner.next_id.fetch_add(1, Ordering::Relaxed);
            let header = ToWorker::Call {
                id,
                name: job.task.name().to_owned(),
                signature: job.task.signature(),
                chunk: job.chunk,
            };
            // A failed write means the worker is gone: the read below reports how it ended.
            let _ = worker.send(&header, &job.payload);
            self.sent += 1;
            if self.in_flight.is_empty() {
                job.revoke.running_on(worker.process());
            }
            let alone = job.deadline.is_some();
            let sent = Some(Instant::now());
            self.in_flight.push_back(InFlight { id, job, sent });
            if alone {
                break;
            }
        }
        if let Some(worker) = self.worker.as_mut() {
            let _ = worker.flush();
        }
        true
    }

    /// Waits, with nothing in flight, for a job: one queued (rung by its submitter), one handed
    /// straight to the idle worker (the worker's reply wakes this thread), the worker's death,
    /// or shutdown. See "Idle workers" in the module note.
    fn park(&mut self) -> Parked {
        let inner = self.inner.clone();
        let link = &inner.links[self.index];
        let receiver = inner.lifecycle.receiver();
        let stream = self.worker.as_ref().map(Child::stream);
        if std::mem::take(&mut self.parked_early) {
            link.state.lock().completing = false;
        } else {
            self.open_park(false);
        }
        // Pairs with the fence in `Inner::wake_parked`.
        fence(Ordering::SeqCst);
        // Looked at under the link's lock: a job taken from the queue closes the park before
        // any claim can land on it. (Taken without the lock, a call handed meanwhile was then
        // sent too: two calls on this worker, the queued one behind the handed one, with the
        // queue's place already given to the next submitter and the other workers idle.) A
        // park claimed already leaves the queue for later: the slot serves the handed call
        // and looks at the queue when it parks again.
        let queued = {
            let mut state = link.state.lock();
            if state.handed.is_some() {
                Err(TryRecvError::Empty)
            } else {
                let queued = receiver.try_recv();
                if queued.is_ok() {
                    link.set_open(&mut state, false);
                }
                queued
            }
        };
        let mut worker_stirred = false;
        let mut wait = matches!(queued, Err(TryRecvError::Empty));
        let (handed, lead_failed) = loop {
            if wait {
                let (mut doorbell, mut worker) = (false, false);
                let waited = link.poller.wait(|token| match token {
                    DOORBELL => doorbell = true,
                    _ => worker = true,
                });
                if waited.is_err() {
                    // Cannot wait (out of resources?): look again rather than spin on an error.
                    std::thread::sleep(Duration::from_millis(1));
                }
                if doorbell {
                    // (A ring that comes later only makes the next park return at once.)
                    link.doorbell.reset();
                }
                worker_stirred = worker;
            }
            let mut state = link.state.lock();
            if state.leading {
                // A caller is reading its reply from the idle worker (`Inner::lead`): leave the
                // worker to it and wait for the doorbell, which it rings when done.
                state.wake_slot = true;
                if let (true, Some(stream)) = (state.watching, &stream) {
                    let _ = link.poller.delete(&**stream);
                    state.watching = false;
                }
                wait = true;
                continue;
            }
            inner.parked.fetch_sub(1, Ordering::SeqCst);
            link.set_open(&mut state, false);
            if let (true, Some(stream)) = (state.watching, &stream) {
                let _ = link.poller.delete(&**stream);
            }
            state.watching = false;
            state.wake_slot = false;
            self.sent += std::mem::take(&mut state.led);
            if let Some(idle) = state.idle.take() {
                if let Some(worker) = &mut self.worker {
                    worker.put_reader(idle.reader);
                }
            }
            break (state.handed.take(), state.lead_failed.take());
        };
        if let Some(error) = lead_failed {
            // The call's caller read the worker's end (or garbage) for the slot.
            if let Some(Handed { id: Some(id), job }) = handed {
                self.sent += 1;
                self.in_flight.push_back(InFlight {
                    id,
                    job,
                    sent: None,
                });
                self.lose_worker_after(&error);
            }
            return match queued {
                Ok(job) => Parked::Job(job),
                Err(_) => Parked::Woken,
            };
        }
        match handed {
            Some(Handed { id: Some(id), job }) => {
                self.sent += 1;
                self.in_flight.push_back(InFlight {
                    id,
                    job,
                    sent: None,
                });
            }
            Some(Handed { id: None, job }) => self.retry.push_back(job),
            // Looked at again now: the readiness may be stale, from a reply that a leading
            // caller has read since (see `Inner::lead`).
            None if worker_stirred && self.worker.as_ref().is_some_and(Child::stirred) => {
                // Nothing was sent to it, yet it spoke or hung up: it died while idle (killed
                // from outside). Replace it; no task of ours was with it.
                if let Some(mut dead) = self.worker.take() {
                    dead.kill_and_reap();
                    inner.pids.lock()[self.index] = None;
                }
                if !inner.lifecycle.is_shut_down() {
                    let _ = self.start_worker();
                }
            }
            None => {}
        }
        match queued {
            Ok(job) => Parked::Job(job),
            Err(TryRecvError::Disconnected)
                if self.in_flight.is_empty() && self.retry.is_empty() =>
            {
                Parked::ShutDown
            }
            Err(_) => Parked::Woken,
        }
    }

    /// Opens the link for claims: lends the idle worker (its socket, its frame buffer) to the
    /// link and counts the slot parked. [`park`](Self::park) does this first, unless the slot
    /// did it already in [`receive`](Self::receive), before completing its last call: the
    /// completion wakes a caller that submits its next call at once (one task at a time, a
    /// server's request after request), and a slot still busy completing when that call comes
    /// makes it go through the queue and this thread, two more wake-ups, every time after.
    fn open_park(&mut self, completing: bool) {
        let inner = &self.inner;
        let link = &inner.links[self.index];
        {
            let mut state = link.state.lock();
            debug_assert!(state.handed.is_none() && !state.leading);
            state.completing = completing;
            if let Some(worker) = &mut self.worker {
                let stream = worker.stream();
                state.watching = link.poller.add(&*stream, WORKER, REPLY_OR_HANG_UP).is_ok();
                state.idle = Some(IdleWorker {
                    stream,
                    process: worker.process(),
                    reader: worker.take_reader(),
                });
            }
            link.set_open(&mut state, true);
        }
        inner.parked.fetch_add(1, Ordering::SeqCst);
    }

    /// Reads replies: at least one (waiting for it), then every one already buffered.
    fn receive(&mut self) {
        let Some(worker) = self.worker.as_mut() else {
            return;
        };
        let deadline = self.in_flight.front().and_then(|f| f.job.deadline);
        let mut first = true;
        while first || (worker.has_frame() && !self.in_flight.is_empty()) {
            first = false;
            match worker.read(deadline) {
                Ok(frame) => match frame.header {
                    ToParent::Done { id, outcome }
                        if Some(id) == self.in_flight.front().map(|f| f.id) =>
                    {
                        let done = self.in_flight.pop_front().expect("checked above");
                        let now = Instant::now();
                        if let Some(sent) = done.sent {
                            let started = self.last_reply.map_or(sent, |last| last.max(sent));
                            let short = now - started < PIPELINE_CALLS_UNDER;
                            note_call_length(&mut self.call_lengths, &done.job, short);
                        }
                        self.last_reply = Some(now);
                        self.cancel_killed |= done.job.revoke.release();
                        if let Some(next) = self.in_flight.front() {
                            next.job.revoke.running_on(worker.process());
                        }
                        let result = match outcome {
                            Outcome::Ok => Ok(frame.payload),
                            other => Err(outcome_error(done.job.task, other)),
                        };
                        if self.in_flight.is_empty()
                            && !worker.has_frame()
                            && self.retry.is_empty()
                            && !self.cancel_killed
                            && !self
                                .inner
                                .config
                                .max_tasks_per_child
                                .is_some_and(|max| self.sent >= max)
                        {
                            // Its worker idle and fit: park first, then complete (see
                            // `open_park`).
                            self.open_park(true);
                            self.parked_early = true;
                            done.job.reply.finish(result);
                            return;
                        }
                        done.job.reply.finish(result);
                    }
                    other => {
                        let error = ReadError::Malformed(format!(
                            "malformed frame: unexpected {other:?} while waiting for a reply"
                        ));
                        self.lose_worker_after(&error);
                        return;
                    }
                },
                Err(ReadError::Timeout) => {
                    self.release_front();
                    let worker = self.worker.as_mut().expect("read from it above");
                    let pid = worker.pid();
                    worker.kill_and_reap();
                    self.lose_worker(TaskError::DeadlineExceeded {
                        worker: Some(WorkerId::local(pid)),
                    });
                    return;
                }
                Err(error) => {
                    self.lose_worker_after(&error);
                    return;
                }
            }
        }
    }

    /// The first call in flight stops running on the worker, which is about to be reaped.
    fn release_front(&mut self) {
        if let Some(front) = self.in_flight.front() {
            self.cancel_killed |= front.job.revoke.release();
        }
    }

    /// The worker broke with `error`: kill and reap it, then [`lose_worker`](Self::lose_worker).
    fn lose_worker_after(&mut self, error: &ReadError) {
        self.release_front();
        let failure = self
            .worker
            .as_mut()
            .expect("called while a worker is in use")
            .failure(error);
        self.lose_worker(failure);
    }

    /// The worker is dead (and reaped): its running call fails with `error`, the calls behind
    /// it go to the replacement, which starts now. If a cancel killed the worker, the running
    /// call may be an innocent one started just before the signal: it is sent again too (the
    /// cancelled call is skipped when its turn comes).
    fn lose_worker(&mut self, error: TaskError) {
        self.worker = None;
        self.inner.pids.lock()[self.index] = None;
        let mut in_flight = std::mem::take(&mut self.in_flight).into_iter();
        let cancel_killed = std::mem::take(&mut self.cancel_killed);
        let mut offset = 0;
        if let Some(running) = in_flight.next() {
            if cancel_killed && !running.job.revoke.cancelled() {
                self.retry.insert(0, running.job);
                offset = 1;
            } else {
                running.job.reply.finish(Err(error));
            }
        }
        for waiting in in_flight {
            self.retry.insert(offset, waiting.job);
            offset += 1;
        }
        if !self.inner.lifecycle.is_shut_down() || !self.retry.is_empty() {
            let _ = self.start_worker();
        }
    }

    /// Starts a worker and runs the initializer in it, again while a signal kills it before
    /// it is ready (up to [`START_ATTEMPTS`] in a row, pausing longer each time).
    fn start_worker(&mut self) -> Result<(), TaskError> {
        let mut backoff = START_BACKOFF;
        let mut attempt = 1;
        let worker = loop {
            match self.start_once() {
                Ok(worker) => break worker,
                Err(Start::Killed(_)) if attempt < START_ATTEMPTS => {
                    std::thread::sleep(backoff);
                    backoff = (backoff * 2).min(MAX_START_BACKOFF);
                    attempt += 1;
                }
                Err(Start::Killed(error)) => {
                    let what = format!(
                        "{START_ATTEMPTS} workers in a row were killed by a signal before they \
                         were ready (is something, such as the OOM killer or a memory_limit too \
                         small to start, killing them?); the last: {error}"
                    );
                    return Err(match error {
                        TaskError::InitializerFailed { .. } => {
                            self.inner.lifecycle.set_broken(what.clone());
                            TaskError::InitializerFailed { message: what }
                        }
                        _ => TaskError::Transport { message: what },
                    });
                }
                Err(Start::Failed(error)) => return Err(error),
            }
        };
        self.inner.pids.lock()[self.index] = Some(worker.pid());
        self.worker = Some(worker);
        self.sent = 0;
        Ok(())
    }

    /// One start of a worker, with its initializer.
    fn start_once(&mut self) -> Result<Child, Start> {
        let mut worker =
            Child::start(&self.inner.config.child).map_err(|StartError { message, killed }| {
                let error = TaskError::Transport { message };
                if killed {
                    Start::Killed(error)
                } else {
                    Start::Failed(error)
                }
            })?;
        let Some((task, payload)) = &self.inner.config.initializer else {
            return Ok(worker);
        };
        let timeout = self.inner.config.initializer_timeout;
        let header = ToWorker::Init {
            name: task.name().to_owned(),
            signature: task.signature(),
        };
        let result = worker
            .send(&header, payload)
            .and_then(|()| worker.flush())
            .map_err(|error| ReadError::Broken(error.to_string()))
            .and_then(|()| worker.read(Some(Instant::now() + timeout)));
        let message = match result {
            Ok(frame) => match frame.header {
                ToParent::InitDone {
                    outcome: Outcome::Ok,
                } => return Ok(worker),
                ToParent::InitDone { outcome } => {
                    worker.retire();
                    outcome_error(task, outcome).to_string()
                }
                other => {
                    worker.kill_and_reap();
                    return Err(Start::Failed(TaskError::Transport {
                        message: format!("worker answered the initializer with {other:?}"),
                    }));
                }
            },
            Err(ReadError::Timeout) => {
                worker.kill_and_reap();
                format!(
                    "the initializer {} did not finish within {timeout:?} \
                     (ProcessPoolBuilder::initializer_timeout); its worker was killed",
                    task.name()
                )
            }
            Err(error) => {
                let failure = worker.failure(&error);
                let message = format!("the worker died in the initializer: {failure}");
                if let TaskError::WorkerDied {
                    exit: Some(ExitStatus::Signal(_)),
                    ..
                } = failure
                {
                    return Err(Start::Killed(TaskError::InitializerFailed { message }));
                }
                message
            }
        };
        self.inner.lifecycle.set_broken(message.clone());
        Err(Start::Failed(TaskError::InitializerFailed { message }))
    }

    fn retire(&mut self) {
        if let Some(worker) = self.worker.take() {
            self.inner.pids.lock()[self.index] = None;
            worker.retire();
        }
    }
}

/// A pool of worker processes: the [`ThreadPool`](crate::ThreadPool)'s API for work that needs
/// isolation (crashes, hangs, leaks, non-thread-safe native code) or more than one core's worth
/// of a single-threaded runtime.
///
/// Tasks are `#[crew::task]` functions; switching from threads is a one-line change:
///
/// ```no_run
/// use crew::{Executor, ProcessPool};
///
/// #[crew::task]
/// fn gcd((mut a, mut b): (u64, u64)) -> u64 {
///     while b != 0 {
///         (a, b) = (b, a % b);
///     }
///     a
/// }
///
/// fn main() {
///     crew::init(); // workers enter here
///     let numbers = vec![(1963309, 2265973), (2030677, 3814172)];
///     let pool = ProcessPool::new(2); // was: ThreadPool::new(2)
///     let results: Vec<u64> = pool.map(gcd, numbers).map(Result::unwrap).collect();
///     assert_eq!(results, [1, 1]);
/// }
/// ```
///
/// A task that panics fails with [`TaskError::Panicked`]; a worker that dies (abort, segfault,
/// `SIGKILL`, out of memory, `exit`) fails only the task it was running with
/// [`TaskError::WorkerDied`] and is replaced. Dropping the pool is
/// `shutdown(wait = true, cancel_pending = false)`; every worker is reaped.
pub struct ProcessPool {
    inner: Arc<Inner>,
}

impl ProcessPool {
    /// A pool of `max_workers` processes with default settings.
    ///
    /// # Panics
    /// If `max_workers` is 0 or the slot threads cannot start; use [`ProcessPoolBuilder`] to
    /// handle that error.
    #[track_caller]
    pub fn new(max_workers: usize) -> Self {
        ProcessPoolBuilder::new()
            .max_workers(max_workers)
            .build()
            .expect("crew: cannot start the process pool")
    }

    /// A builder for the other settings.
    pub fn builder() -> ProcessPoolBuilder {
        ProcessPoolBuilder::new()
    }

    /// Queues a call of `f` on the encoded `arg` (a `Vec` of arguments when `chunk`); the
    /// handle's type `T` is `f`'s result, or a `Vec` of them.
    fn enqueue<F: 'static, T: Message>(
        &self,
        f: &F,
        arg: &(impl serde::Serialize + ?Sized),
        chunk: bool,
        options: TaskOptions,
        non_blocking: bool,
    ) -> Result<TaskHandle<T>, SubmitError> {
        self.inner.lifecycle.check()?;
        let task = TaskInfo::of(f)?;
        let payload = codec::encode(arg).map_err(|message| SubmitError::Unsupported { message })?;
        let options = options.or(self.inner.config.task_options);
        let (job, handle) = Job::new::<T>(task, chunk, payload, &options);
        let (job, claimed) = match self.inner.hand(job) {
            Ok(Some(HandedTo { index, id })) => {
                let inner = Arc::downgrade(&self.inner);
                handle.set_driver(Arc::new(move |_done, deadline| {
                    if let Some(inner) = Weak::upgrade(&inner) {
                        inner.lead(index, id, deadline);
                    }
                }));
                return Ok(handle);
            }
            Ok(None) => return Ok(handle),
            Err(not_handed) => not_handed,
        };
        let queued = self.inner.lifecycle.submit(job, non_blocking);
        // Even when the job was refused: a slot claimed above must not stay asleep unclaimable.
        self.inner.wake_parked(claimed);
        queued.map(|()| handle)
    }

    /// The number of tasks queued and not yet sent to a worker.
    pub fn queued(&self) -> usize {
        self.inner.lifecycle.queued()
    }

    /// The process ids of the live workers (a worker being replaced is missing).
    pub fn worker_pids(&self) -> Vec<u32> {
        self.inner.pids.lock().iter().flatten().copied().collect()
    }

    /// Stops accepting tasks; see [`Executor::shutdown`]. With `wait`, every worker has exited
    /// and been reaped when it returns, except when called from one of the pool's own slot
    /// threads (a done-callback runs there): that slot retires its worker once the callback
    /// returns and the queue is drained.
    pub fn shutdown(&self, wait: bool, cancel_pending: bool) {
        self.inner.lifecycle.close(cancel_pending);
        // Parked slots wait on their doorbells, not on the queue: wake every one to see that
        // the queue is closed.
        for link in &self.inner.links {
            link.doorbell.ring();
        }
        self.inner.lifecycle.shutdown(wait, cancel_pending);
    }
}

impl Executor for ProcessPool {
    fn submit_with<A: Message, R: Message, F: TaskFn<A, R>>(
        &self,
        f: F,
        arg: A,
        options: TaskOptions,
    ) -> Result<TaskHandle<R>, SubmitError> {
        self.enqueue(&f, &arg, false, options, false)
    }

    fn try_submit<A: Message, R: Message, F: TaskFn<A, R>>(
        &self,
        f: F,
        arg: A,
    ) -> Result<TaskHandle<R>, SubmitError> {
        self.enqueue(&f, &arg, false, TaskOptions::new(), true)
    }

    fn submit_chunk<A: Message, R: Message, F: TaskFn<A, R>>(
        &self,
        f: F,
        args: Vec<A>,
        options: TaskOptions,
    ) -> Result<TaskHandle<Vec<R>>, SubmitError> {
        self.enqueue(&f, &args, true, options, false)
    }

    fn shutdown(&self, wait: bool, cancel_pending: bool) {
        ProcessPool::shutdown(self, wait, cancel_pending);
    }

    fn max_workers(&self) -> usize {
        self.inner.lifecycle.workers()
    }
}

impl Drop for ProcessPool {
    fn drop(&mut self) {
        crate::sys::spin::stats::report("parent");
        self.shutdown(true, false);
    }
}

impl fmt::Debug for ProcessPool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ProcessPool")
            .field("max_workers", &self.inner.lifecycle.workers())
            .field("queued", &self.queued())
            .field("worker_pids", &self.worker_pids())
            .field("shut_down", &self.inner.lifecycle.is_shut_down())
            .finish()
    }
}
