//! Actors in worker processes: typed calls, isolation and restarts, stateless pools, streams,
//! the registry. Run with `harness = false`: `main` calls `crew::init()`.

mod process_common;

use std::future::Future;
use std::time::Duration;

use crew::actor::{self, ActorError, ActorOptions, Address};
use crew::TaskError;
use rustix::process::{kill_process, Pid, Signal};

struct Counter {
    value: u64,
}

#[crew::actor]
impl Counter {
    fn new(start: u64) -> Self {
        Counter { value: start }
    }

    fn on_start(&mut self) -> Result<(), String> {
        if self.value == 666 {
            return Err("the number of the beast".to_owned());
        }
        Ok(())
    }

    fn incr(&mut self, by: u64) -> u64 {
        self.value += by;
        self.value
    }

    fn get(&self) -> u64 {
        self.value
    }

    fn pid(&self) -> u32 {
        std::process::id()
    }

    fn sleep(&self, ms: u64) -> u64 {
        std::thread::sleep(Duration::from_millis(ms));
        ms
    }

    fn boom(&mut self) -> u64 {
        panic!("boom in a worker")
    }

    #[stream]
    fn count(&self, n: u64) -> impl Iterator<Item = u64> + Send + 'static {
        0..n
    }
}

fn typed_calls_in_a_process() {
    let counter = ActorOptions::<Counter>::new()
        .in_process()
        .spawn(10)
        .unwrap();
    let pid = counter.pid().result().unwrap();
    assert_ne!(pid, std::process::id());
    assert_eq!(counter.worker_pid(), Some(pid));
    assert_eq!(counter.incr(5).result(), Ok(15));
    counter.tell_incr(1).unwrap();
    assert_eq!(counter.try_incr(1).unwrap().result(), Ok(17));
    assert_eq!(counter.get().result(), Ok(17));
    // A panic fails the call; the actor lives on, state intact.
    assert_eq!(
        counter.boom().result(),
        Err(TaskError::Panicked {
            message: "boom in a worker".into()
        })
    );
    assert_eq!(counter.get().result(), Ok(17));
    counter.stop().result().unwrap();
    assert_eq!(
        counter.get().result(),
        Err(TaskError::Actor(ActorError::Stopped {
            uid: counter.uid().to_owned(),
            reason: "it was stopped".into()
        }))
    );
    let killed = ActorOptions::<Counter>::new()
        .in_process()
        .spawn(0)
        .unwrap();
    killed.kill().result().unwrap();
    assert_eq!(
        killed.get().result(),
        Err(TaskError::Actor(ActorError::Stopped {
            uid: killed.uid().to_owned(),
            reason: "it was killed".into()
        }))
    );
}

/// A value whose `Serialize` fails (its `Deserialize` reads a byte).
#[derive(Debug, Clone)]
struct Unencodable;

impl serde::Serialize for Unencodable {
    fn serialize<S: serde::Serializer>(&self, _: S) -> Result<S::Ok, S::Error> {
        Err(serde::ser::Error::custom("Unencodable refuses"))
    }
}

impl<'de> serde::Deserialize<'de> for Unencodable {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        <u8 as serde::Deserialize>::deserialize(deserializer).map(|_| Unencodable)
    }
}

struct Encoder;

#[crew::actor]
impl Encoder {
    fn new(_: ()) -> Self {
        Encoder
    }

    fn take(&self, _value: Unencodable) -> u64 {
        1
    }

    fn give(&self) -> Unencodable {
        Unencodable
    }

    #[stream]
    fn take_stream(&self, _value: Unencodable) -> impl Iterator<Item = u64> + Send + 'static {
        0..1
    }

    fn alive(&self) -> bool {
        true
    }
}

fn serde_failures_name_what_failed() {
    let encoder = ActorOptions::<Encoder>::new()
        .in_process()
        .spawn(())
        .unwrap();
    // Arguments that cannot be encoded: said so (it was "invalid actor options: ..."), for calls
    // and streams alike (a stream said "task transport failed"); nothing was sent.
    match encoder.take(Unencodable).result() {
        Err(TaskError::Actor(ActorError::Encode { uid, message })) => {
            assert_eq!(uid, encoder.uid());
            assert!(message.contains("cannot encode"), "{message}");
        }
        other => panic!("expected Encode, got {other:?}"),
    }
    assert!(matches!(
        encoder.try_take(Unencodable),
        Err(ActorError::Encode { .. })
    ));
    let items: Vec<_> = encoder.take_stream(Unencodable).collect();
    assert!(
        matches!(
            items.as_slice(),
            [Err(TaskError::Actor(ActorError::Encode { .. }))]
        ),
        "{items:?}"
    );
    // A result that cannot be encoded in the worker: the method is named.
    match encoder.give().result() {
        Err(TaskError::Transport { message }) => {
            assert!(
                message.starts_with("the result of method `give`"),
                "{message}"
            );
        }
        other => panic!("expected Transport, got {other:?}"),
    }
    assert_eq!(encoder.alive().result(), Ok(true));
    encoder.stop().result().unwrap();
}

fn start_hook_failure_fails_creation() {
    let error = ActorOptions::<Counter>::new()
        .in_process()
        .uid("beast")
        .spawn(666)
        .unwrap_err();
    assert_eq!(
        error,
        ActorError::StartFailed {
            uid: "beast".into(),
            message: "the number of the beast".into()
        }
    );
}

fn sigkill_restarts_from_the_constructor() {
    let counter = ActorOptions::<Counter>::new()
        .in_process()
        .max_restarts(1)
        .spawn(100)
        .unwrap();
    assert_eq!(counter.incr(1).result(), Ok(101));
    let first_pid = counter.worker_pid().unwrap();
    let in_flight = counter.sleep(5_000);
    std::thread::sleep(Duration::from_millis(100));
    kill_process(Pid::from_raw(first_pid as i32).unwrap(), Signal::KILL).unwrap();
    match in_flight.result_timeout(Duration::from_secs(10)) {
        Err(TaskError::WorkerDied { worker, exit }) => {
            assert_eq!(worker.pid(), first_pid);
            assert_eq!(exit.and_then(|exit| exit.signal()), Some(9));
        }
        other => panic!("expected WorkerDied, got {other:?}"),
    }
    // Built again from its constructor: the state is the constructor's.
    assert_eq!(counter.incr(1).result(), Ok(101));
    assert_eq!(counter.restarts(), 1);
    assert_ne!(counter.worker_pid(), Some(first_pid));
    // Past max_restarts the actor ends.
    kill_process(
        Pid::from_raw(counter.worker_pid().unwrap() as i32).unwrap(),
        Signal::KILL,
    )
    .unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        match counter.get().result() {
            // The reason says what happened (it said "stopped, killed, or its worker died past
            // max_restarts" whatever happened) and what to do.
            Err(TaskError::Actor(ActorError::Stopped { reason, .. })) => {
                assert!(
                    reason.contains("killed by SIGKILL")
                        && reason.contains("after 1 restart")
                        && reason.contains("a higher max_restarts"),
                    "{reason}"
                );
                break;
            }
            Err(TaskError::WorkerDied { .. }) | Ok(_) => {}
            other => panic!("unexpected {other:?}"),
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the actor did not end"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn calls_queued_during_a_restart_go_to_the_new_instance() {
    let counter = ActorOptions::<Counter>::new()
        .in_process()
        .spawn(0)
        .unwrap();
    let pid = counter.worker_pid().unwrap();
    let in_flight = counter.sleep(5_000);
    std::thread::sleep(Duration::from_millis(100));
    kill_process(Pid::from_raw(pid as i32).unwrap(), Signal::KILL).unwrap();
    // The death is seen (the call in flight fails), the replacement is starting: calls sent
    // now wait for it and succeed.
    assert!(matches!(
        in_flight.result(),
        Err(TaskError::WorkerDied { .. })
    ));
    let later: Vec<_> = (0..20).map(|_| counter.incr(1)).collect();
    let values: Vec<u64> = later.into_iter().map(|h| h.result().unwrap()).collect();
    assert_eq!(values, (1..=20).collect::<Vec<_>>());
    counter.kill().result().unwrap();
}

fn bounded_mailbox_in_a_process() {
    let counter = ActorOptions::<Counter>::new()
        .in_process()
        .mailbox(2)
        .spawn(0)
        .unwrap();
    let busy = [counter.sleep(300), counter.sleep(1)];
    assert!(matches!(counter.try_incr(1), Err(ActorError::Full { .. })));
    let started = std::time::Instant::now();
    counter.tell_incr(1).unwrap();
    assert!(started.elapsed() >= Duration::from_millis(150));
    for handle in busy {
        handle.result().unwrap();
    }
    assert_eq!(counter.get().result(), Ok(1));
    counter.stop().result().unwrap();
}

fn streams_from_a_process() {
    let counter = ActorOptions::<Counter>::new()
        .in_process()
        .spawn(0)
        .unwrap();
    let items: Vec<u64> = counter.count(1_000).map(Result::unwrap).collect();
    assert_eq!(items, (0..1_000).collect::<Vec<_>>());
    // A dropped stream is cancelled; the actor goes on.
    let mut stream = counter.count(1_000_000);
    assert_eq!(stream.next(), Some(Ok(0)));
    drop(stream);
    assert_eq!(counter.incr(1).result(), Ok(1));
    // Streams dropped while their items arrive, many times: the reader thread may hold the last
    // reference when the consumer lets go, and its drop (a cancel) must not deadlock it.
    for round in 0..300u64 {
        let mut stream = counter.count(1_000_000);
        assert_eq!(stream.next(), Some(Ok(0)));
        if round % 2 == 0 {
            std::thread::yield_now();
        }
        drop(stream);
        assert_eq!(
            counter.incr(1).result_timeout(Duration::from_secs(10)),
            Ok(round + 2),
            "round {round}: the actor answers after a dropped stream"
        );
    }
    counter.stop().result().unwrap();
}

struct Worker;

#[crew::actor(stateless)]
impl Worker {
    fn new(_: ()) -> Self {
        Worker
    }

    fn slow_pid(&self, ms: u64) -> (u32, String) {
        std::thread::sleep(Duration::from_millis(ms));
        (
            std::process::id(),
            std::thread::current().name().unwrap_or_default().to_owned(),
        )
    }
}

fn stateless_pool_in_a_process() {
    let workers = ActorOptions::<Worker>::new()
        .in_process()
        .instances(3)
        .spawn(())
        .unwrap();
    let handles: Vec<_> = (0..9).map(|_| workers.slow_pid(30)).collect();
    let results: Vec<(u32, String)> = handles.into_iter().map(|h| h.result().unwrap()).collect();
    let pids: std::collections::HashSet<u32> = results.iter().map(|r| r.0).collect();
    let threads: std::collections::HashSet<&String> = results.iter().map(|r| &r.1).collect();
    assert_eq!(pids.len(), 1);
    assert!(threads.len() >= 2, "{threads:?}");
    workers.stop().result().unwrap();
}

fn registry_for_process_actors() {
    let counter = ActorOptions::<Counter>::new()
        .in_process()
        .uid("shared-counter")
        .spawn(1)
        .unwrap();
    assert_eq!(counter.address(), &Address::processes());
    assert_eq!(
        ActorOptions::<Counter>::new()
            .in_process()
            .uid("shared-counter")
            .spawn(1)
            .unwrap_err(),
        ActorError::DuplicateUid {
            address: Address::processes(),
            uid: "shared-counter".into()
        }
    );
    let found = actor::lookup::<Counter>(&Address::processes(), "shared-counter").unwrap();
    assert_eq!(found.incr(1).result(), Ok(2));
    assert!(matches!(
        actor::lookup::<Counter>(&Address::processes(), "nobody"),
        Err(ActorError::NotFound { .. })
    ));
    counter.stop().result().unwrap();
    assert!(matches!(
        actor::lookup::<Counter>(&Address::processes(), "shared-counter"),
        Err(ActorError::NotFound { .. })
    ));
}

fn a_waiting_caller_reads_its_own_reply() {
    let counter = ActorOptions::<Counter>::new()
        .in_process()
        .spawn(0)
        .unwrap();
    // A blocked caller leads: the reply is read, and the handle completed, on its own thread
    // (a done-callback runs on the completing thread).
    let slow = counter.sleep(50);
    let completed_on = std::sync::Arc::new(std::sync::Mutex::new(None));
    let record = completed_on.clone();
    slow.add_done_callback(move |_| {
        *record.lock().unwrap() = Some(std::thread::current().id());
    });
    assert_eq!(slow.result(), Ok(50));
    assert_eq!(
        *completed_on.lock().unwrap(),
        Some(std::thread::current().id())
    );
    // A wait whose deadline passes while leading gives up in time; the reply still arrives.
    let slower = counter.sleep(300);
    let started = std::time::Instant::now();
    assert!(!slower.wait_timeout(Duration::from_millis(30)));
    assert!(started.elapsed() < Duration::from_millis(250));
    assert_eq!(slower.result(), Ok(300));
    // Several blocked callers at once: one leads, the others are answered by it or by the
    // reader thread; an awaited call (nobody leads) is answered by the reader thread.
    let callers: Vec<_> = (0..4)
        .map(|_| {
            let counter = counter.clone();
            std::thread::spawn(move || {
                for _ in 0..200 {
                    counter.incr(1).result().unwrap();
                }
            })
        })
        .collect();
    let awaited = futures::executor::block_on(async {
        let mut last = 0;
        for _ in 0..50 {
            last = counter.get().await.unwrap();
        }
        last
    });
    for caller in callers {
        caller.join().unwrap();
    }
    assert!(awaited <= 800);
    assert_eq!(counter.get().result(), Ok(800));
    counter.stop().result().unwrap();
}

fn async_calls_await_a_permit() {
    let counter = ActorOptions::<Counter>::new()
        .in_process()
        .mailbox(1)
        .spawn(0)
        .unwrap();
    let busy = counter.sleep(300); // holds the one permit until its reply
    let started = std::time::Instant::now();
    let mut waiting = Box::pin(counter.incr_async(5));
    let mut context = std::task::Context::from_waker(futures::task::noop_waker_ref());
    assert!(waiting.as_mut().poll(&mut context).is_pending());
    assert!(started.elapsed() < Duration::from_millis(200));
    assert_eq!(futures::executor::block_on(waiting), Ok(5));
    assert_eq!(busy.result(), Ok(300));
    let values = futures::executor::block_on(futures::future::join_all(
        (0..10).map(|_| counter.incr_async(1)),
    ));
    assert_eq!(values.into_iter().map(Result::unwrap).max(), Some(15));
    // An async tell waits for the permit the same way, without blocking its thread.
    let busy = counter.sleep(300);
    let mut waiting = Box::pin(counter.tell_incr_async(100));
    assert!(waiting.as_mut().poll(&mut context).is_pending());
    assert_eq!(futures::executor::block_on(waiting), Ok(()));
    assert_eq!(busy.result(), Ok(300));
    assert_eq!(counter.get().result(), Ok(115));
    // A stop with the mailbox full returns at once and still lets the queued call finish.
    let busy = counter.sleep(300);
    let started = std::time::Instant::now();
    let stopped = counter.stop();
    assert!(started.elapsed() < Duration::from_millis(200));
    stopped.result().unwrap();
    assert_eq!(busy.result(), Ok(300));
    assert!(matches!(
        futures::executor::block_on(counter.get_async()),
        Err(TaskError::Actor(ActorError::Stopped { .. }))
    ));
    assert!(matches!(
        futures::executor::block_on(counter.tell_incr_async(1)),
        Err(ActorError::Stopped { .. })
    ));
}

/// Waits (bounded) until a call on `counter` says the actor has stopped, and returns the reason.
fn stopped_reason(counter: &CounterRef) -> String {
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        match counter.get().result_timeout(Duration::from_secs(10)) {
            Err(TaskError::Actor(ActorError::Stopped { reason, .. })) => return reason,
            Err(TaskError::WorkerDied { .. }) | Ok(_) => {}
            other => panic!("unexpected {other:?}"),
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the actor did not end"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn max_restarts_zero_ends_the_actor_at_its_first_death() {
    let counter = ActorOptions::<Counter>::new()
        .in_process()
        .uid("never-restarted")
        .max_restarts(0)
        .spawn(0)
        .unwrap();
    assert_eq!(counter.incr(1).result(), Ok(1));
    let pid = counter.worker_pid().unwrap();
    kill_process(Pid::from_raw(pid as i32).unwrap(), Signal::KILL).unwrap();
    let reason = stopped_reason(&counter);
    assert!(reason.contains("killed by SIGKILL"), "{reason}");
    assert_eq!(counter.restarts(), 0);
    assert!(matches!(
        actor::lookup::<Counter>(&Address::processes(), "never-restarted"),
        Err(ActorError::NotFound { .. })
    ));
    // Stopping an actor that ended by itself settles at once.
    counter
        .stop()
        .result_timeout(Duration::from_secs(5))
        .unwrap();
}

fn a_worker_killed_during_a_stream_fails_the_stream_and_restarts() {
    const ROUNDS: u32 = 12;
    let counter = ActorOptions::<Counter>::new()
        .in_process()
        .max_restarts(ROUNDS)
        .spawn(7)
        .unwrap();
    for round in 0..ROUNDS {
        let pid = counter.worker_pid().unwrap();
        let mut stream = counter.count(u64::MAX);
        assert_eq!(stream.next(), Some(Ok(0)));
        // The worker dies while the stream's window of items waits at the caller; the items
        // are consumed (granting credit) as the reader handles the death. Consumed on another
        // thread so that a hang fails the test instead of stalling it: the reader failing the
        // stream and the consumer granting credit deadlocked (each held what the other wanted).
        kill_process(Pid::from_raw(pid as i32).unwrap(), Signal::KILL).unwrap();
        std::thread::sleep(Duration::from_micros(u64::from(round % 4) * 300));
        let (ended, ended_rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let failure = stream.find(Result::is_err);
            let _ = ended.send((failure, stream.next()));
        });
        // The stream ends with the death (items already in flight come first).
        let (failure, after) = ended_rx
            .recv_timeout(Duration::from_secs(20))
            .unwrap_or_else(|_| panic!("round {round}: the stream of a killed worker hung"));
        assert!(
            matches!(failure, Some(Err(TaskError::WorkerDied { .. }))),
            "round {round}: {failure:?}"
        );
        assert!(after.is_none(), "round {round}: {after:?}");
        // Built again from its constructor.
        assert_eq!(counter.incr(0).result(), Ok(7), "round {round}");
        assert_eq!(counter.restarts(), round + 1);
    }
    counter.stop().result().unwrap();
}

/// A stream that fails before its first reply (its worker killed while it waited behind a
/// call) gives its mailbox permit back: the mailbox holds as many calls after the restart as
/// before (a permit was lost per such stream, until every call waited forever).
fn a_stream_failed_before_it_started_gives_its_permit_back() {
    let counter = ActorOptions::<Counter>::new()
        .in_process()
        .mailbox(2)
        .max_restarts(1)
        .spawn(3)
        .unwrap();
    let pid = counter.worker_pid().unwrap();
    let slow = counter.sleep(5_000);
    let mut stream = counter.count(5);
    std::thread::sleep(Duration::from_millis(100)); // both sent; the stream waits behind
    kill_process(Pid::from_raw(pid as i32).unwrap(), Signal::KILL).unwrap();
    assert!(matches!(slow.result(), Err(TaskError::WorkerDied { .. })));
    assert!(matches!(
        stream.next(),
        Some(Err(TaskError::WorkerDied { .. }))
    ));
    drop(stream);
    assert_eq!(counter.incr(0).result(), Ok(3), "built again");
    // Both permits are free again: two calls fit at once.
    let first = counter.try_sleep(200).expect("the first permit");
    let second = counter.try_sleep(200).expect("the second permit was lost");
    assert_eq!((first.result(), second.result()), (Ok(200), Ok(200)));
    counter.stop().result().unwrap();
}

/// An actor whose constructor or stop hook panics, by its argument.
struct Brittle {
    part: String,
}

#[crew::actor]
impl Brittle {
    fn new(part: String) -> Self {
        if part == "new" {
            panic!("the constructor broke");
        }
        Brittle { part }
    }

    fn on_stop(&mut self) {
        if self.part == "on_stop" {
            panic!("the stop hook broke");
        }
    }

    fn part(&self) -> String {
        self.part.clone()
    }
}

fn hooks_that_panic_in_a_process() {
    let error = ActorOptions::<Brittle>::new()
        .in_process()
        .uid("brittle-new")
        .spawn("new".to_owned())
        .unwrap_err();
    assert_eq!(
        error,
        ActorError::StartFailed {
            uid: "brittle-new".into(),
            message: "its constructor (`new`) panicked: the constructor broke".into()
        }
    );
    assert!(matches!(
        actor::lookup::<Brittle>(&Address::processes(), "brittle-new"),
        Err(ActorError::NotFound { .. })
    ));
    // A stop hook's panic is reported on the worker's stderr; the stop completes.
    let brittle = ActorOptions::<Brittle>::new()
        .in_process()
        .uid("brittle-stop")
        .spawn("on_stop".to_owned())
        .unwrap();
    assert_eq!(brittle.part().result(), Ok("on_stop".to_owned()));
    assert_eq!(
        brittle.stop().result_timeout(Duration::from_secs(10)),
        Ok(())
    );
    assert!(matches!(
        brittle.part().result(),
        Err(TaskError::Actor(ActorError::Stopped { .. }))
    ));
    assert!(matches!(
        actor::lookup::<Brittle>(&Address::processes(), "brittle-stop"),
        Err(ActorError::NotFound { .. })
    ));
}

fn try_calls_on_a_full_pool_in_a_process() {
    let workers = ActorOptions::<Worker>::new()
        .in_process()
        .instances(2)
        .mailbox(2)
        .spawn(())
        .unwrap();
    let held: Vec<_> = (0..2).map(|_| workers.try_slow_pid(300).unwrap()).collect();
    let started = std::time::Instant::now();
    assert!(matches!(
        workers.try_slow_pid(0),
        Err(ActorError::Full { .. })
    ));
    assert!(started.elapsed() < Duration::from_millis(200));
    for call in held {
        call.result().unwrap();
    }
    assert!(workers.try_slow_pid(0).unwrap().result().is_ok());
    workers.stop().result().unwrap();
}

fn kill_racing_with_callers_on_several_threads_in_a_process() {
    let counter = ActorOptions::<Counter>::new()
        .in_process()
        .mailbox(8)
        .spawn(0)
        .unwrap();
    let answered = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let callers: Vec<_> = (0..4)
        .map(|_| {
            let counter = counter.clone();
            let answered = answered.clone();
            std::thread::spawn(move || loop {
                match counter.incr(1).result_timeout(Duration::from_secs(10)) {
                    Ok(_) => {
                        answered.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    }
                    // Killed: the calls in flight die with the worker, later ones are refused.
                    Err(TaskError::WorkerDied { .. }) => {}
                    Err(TaskError::Actor(ActorError::Stopped { .. })) => break,
                    Err(other) => panic!("{other:?}"),
                }
            })
        })
        .collect();
    while answered.load(std::sync::atomic::Ordering::Relaxed) < 100 {
        std::thread::yield_now();
    }
    assert_eq!(
        counter.kill().result_timeout(Duration::from_secs(10)),
        Ok(())
    );
    for caller in callers {
        caller.join().unwrap();
    }
    assert_eq!(counter.restarts(), 0, "a kill is not restarted");
}

fn handles_are_awaited_inside_a_tokio_runtime() {
    let workers = ActorOptions::<Worker>::new()
        .in_process()
        .instances(2)
        .mailbox(2)
        .spawn(())
        .unwrap();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .unwrap();
    let ticks = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let ticked_while_waiting = runtime.block_on(async {
        let counting = ticks.clone();
        let ticker = tokio::spawn(async move {
            loop {
                tokio::time::sleep(Duration::from_millis(5)).await;
                counting.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            }
        });
        // Three 100 ms calls, two permits: the third awaits a permit without blocking the
        // runtime's one thread, and every reply arrives through the reader thread.
        let (first, second, third) = tokio::join!(
            workers.slow_pid(100),
            workers.slow_pid_async(100),
            workers.slow_pid_async(100)
        );
        for answer in [first, second, third] {
            assert_ne!(answer.unwrap().0, std::process::id());
        }
        ticker.abort();
        ticks.load(std::sync::atomic::Ordering::SeqCst)
    });
    assert!(ticked_while_waiting >= 10, "{ticked_while_waiting}");
    workers.stop().result().unwrap();
}

fn calls_in_flight_complete_after_every_reference_is_dropped_in_a_process() {
    let counter = ActorOptions::<Counter>::new()
        .in_process()
        .uid("orphaned-counter")
        .spawn(0)
        .unwrap();
    let in_flight: Vec<_> = (0..20).map(|_| counter.incr(1)).collect();
    let streaming = counter.count(50);
    drop(counter);
    let mut values: Vec<u64> = in_flight
        .into_iter()
        .map(|call| call.result_timeout(Duration::from_secs(10)).unwrap())
        .collect();
    values.sort_unstable();
    assert_eq!(values, (1..=20).collect::<Vec<_>>());
    assert_eq!(streaming.map(Result::unwrap).count(), 50);
    // The actor lives on, findable; stop what you spawn.
    let found = actor::lookup::<Counter>(&Address::processes(), "orphaned-counter").unwrap();
    assert_eq!(found.get().result(), Ok(20));
    found.stop().result().unwrap();
}

fn main() {
    crew::init();
    process_common::run(&[
        ("typed_calls_in_a_process", typed_calls_in_a_process),
        (
            "start_hook_failure_fails_creation",
            start_hook_failure_fails_creation,
        ),
        (
            "sigkill_restarts_from_the_constructor",
            sigkill_restarts_from_the_constructor,
        ),
        (
            "calls_queued_during_a_restart_go_to_the_new_instance",
            calls_queued_during_a_restart_go_to_the_new_instance,
        ),
        ("bounded_mailbox_in_a_process", bounded_mailbox_in_a_process),
        (
            "a_stream_failed_before_it_started_gives_its_permit_back",
            a_stream_failed_before_it_started_gives_its_permit_back,
        ),
        ("streams_from_a_process", streams_from_a_process),
        ("stateless_pool_in_a_process", stateless_pool_in_a_process),
        ("registry_for_process_actors", registry_for_process_actors),
        (
            "a_waiting_caller_reads_its_own_reply",
            a_waiting_caller_reads_its_own_reply,
        ),
        ("async_calls_await_a_permit", async_calls_await_a_permit),
        (
            "hooks_that_panic_in_a_process",
            hooks_that_panic_in_a_process,
        ),
        (
            "handles_are_awaited_inside_a_tokio_runtime",
            handles_are_awaited_inside_a_tokio_runtime,
        ),
        (
            "calls_in_flight_complete_after_every_reference_is_dropped_in_a_process",
            calls_in_flight_complete_after_every_reference_is_dropped_in_a_process,
        ),
        (
            "try_calls_on_a_full_pool_in_a_process",
            try_calls_on_a_full_pool_in_a_process,
        ),
        (
            "kill_racing_with_callers_on_several_threads_in_a_process",
            kill_racing_with_callers_on_several_threads_in_a_process,
        ),
        (
            "max_restarts_zero_ends_the_actor_at_its_first_death",
            max_restarts_zero_ends_the_actor_at_its_first_death,
        ),
        (
            "a_worker_killed_during_a_stream_fails_the_stream_and_restarts",
            a_worker_killed_during_a_stream_fails_the_stream_and_restarts,
        ),
        (
            "serde_failures_name_what_failed",
            serde_failures_name_what_failed,
        ),
    ]);
}
