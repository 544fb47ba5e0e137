//! Actors on threads: typed calls, hooks, bounded mailboxes, ordering, concurrency, panics,
//! streams, the deadlock guard, the registry.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Barrier, Mutex};
use std::time::{Duration, Instant};

use crew::actor::{self, ActorError, ActorOptions, Address};
use crew::TaskError;

/// Everything a hooked actor saw, in order, kept outside the actor so a test can read it after
/// the actor ended.
static EVENTS: Mutex<Vec<String>> = Mutex::new(Vec::new());

fn events_of(tag: &str) -> Vec<String> {
    EVENTS
        .lock()
        .unwrap()
        .iter()
        .filter(|event| event.starts_with(tag))
        .cloned()
        .collect()
}

struct Counter {
    tag: String,
    value: u64,
}

#[crew::actor]
impl Counter {
    fn new(tag: String, start: u64) -> Self {
        EVENTS.lock().unwrap().push(format!("{tag}: new"));
        Counter { tag, value: start }
    }

    fn on_start(&mut self) -> Result<(), String> {
        EVENTS.lock().unwrap().push(format!("{}: start", self.tag));
        if self.tag.contains("refuse") {
            return Err("refused to start".to_owned());
        }
        Ok(())
    }

    fn on_stop(&mut self) {
        EVENTS
            .lock()
            .unwrap()
            .push(format!("{}: stop at {}", self.tag, self.value));
    }

    fn incr(&mut self, by: u64) -> u64 {
        self.value += by;
        self.value
    }

    fn get(&self) -> u64 {
        self.value
    }

    fn slow_incr(&mut self, by: u64, ms: u64) -> u64 {
        std::thread::sleep(Duration::from_millis(ms));
        self.value += by;
        self.value
    }

    #[stream]
    fn countdown(&self, from: u64) -> impl Iterator<Item = u64> + Send + 'static {
        (0..=from).rev()
    }

    #[stream]
    fn count_then_panic(&self, n: u64) -> impl Iterator<Item = u64> + Send + 'static {
        (0..).map(move |i| if i < n { i } else { panic!("no more than {n}") })
    }

    fn boom(&mut self, message: String) -> u64 {
        self.value += 1;
        panic!("{message}")
    }
}

fn counter(tag: &str) -> CounterRef {
    actor::spawn::<Counter>((tag.to_owned(), 0)).unwrap()
}

#[test]
fn typed_calls_tell_and_try() {
    let counter = counter("typed");
    assert_eq!(counter.incr(5).result(), Ok(5));
    counter.tell_incr(2).unwrap();
    assert_eq!(counter.try_incr(1).unwrap().result(), Ok(8));
    assert_eq!(counter.get().result(), Ok(8));
    // A handle can be awaited too.
    let value = futures::executor::block_on(counter.incr(1));
    assert_eq!(value, Ok(9));
    counter.stop().result().unwrap();
}

#[test]
fn hooks_run_in_order_and_stop_drains_the_mailbox() {
    let counter = ActorOptions::<Counter>::new()
        .mailbox(100)
        .spawn(("hooks".to_owned(), 0))
        .unwrap();
    let first = counter.slow_incr(1, 50);
    for _ in 0..10 {
        counter.tell_incr(1).unwrap();
    }
    let stopped = counter.stop();
    stopped.result().unwrap();
    assert_eq!(first.result(), Ok(1));
    // The ten tells queued before stop() ran before the stop hook.
    assert_eq!(
        events_of("hooks"),
        ["hooks: new", "hooks: start", "hooks: stop at 11"]
    );
    assert!(matches!(
        counter.incr(1).result(),
        Err(TaskError::Actor(ActorError::Stopped { .. }))
    ));
}

#[test]
fn kill_does_not_drain_and_runs_no_hook() {
    let counter = ActorOptions::<Counter>::new()
        .mailbox(100)
        .spawn(("kill".to_owned(), 0))
        .unwrap();
    let running = counter.slow_incr(1, 100);
    std::thread::sleep(Duration::from_millis(20));
    let queued: Vec<_> = (0..5).map(|_| counter.incr(1)).collect();
    counter.kill().result().unwrap();
    // The running call finished (a thread cannot be interrupted); the queued ones failed.
    assert_eq!(running.result(), Ok(1));
    for handle in queued {
        assert!(matches!(
            handle.result(),
            Err(TaskError::Actor(ActorError::Stopped { .. }))
        ));
    }
    assert_eq!(events_of("kill"), ["kill: new", "kill: start"]);
}

#[test]
fn failing_start_hook_fails_creation() {
    let error = ActorOptions::<Counter>::new()
        .uid("refuser")
        .spawn(("refuse".to_owned(), 0))
        .unwrap_err();
    assert_eq!(
        error,
        ActorError::StartFailed {
            uid: "refuser".to_owned(),
            message: "refused to start".to_owned()
        }
    );
    // The uid is free again.
    assert!(matches!(
        actor::lookup::<Counter>(&Address::local(), "refuser"),
        Err(ActorError::NotFound { .. })
    ));
}

#[test]
fn bounded_mailbox_applies_backpressure() {
    let counter = ActorOptions::<Counter>::new()
        .mailbox(2)
        .spawn(("bound".to_owned(), 0))
        .unwrap();
    let busy = counter.slow_incr(1, 300);
    std::thread::sleep(Duration::from_millis(30)); // the actor took it: the mailbox is empty
    let queued = [counter.incr(1), counter.incr(1)];
    assert!(matches!(counter.try_incr(1), Err(ActorError::Full { .. })));
    // A tell waits for room too: nothing bypasses the bound.
    let started = Instant::now();
    counter.tell_incr(1).unwrap();
    assert!(
        started.elapsed() >= Duration::from_millis(150),
        "tell waited {:?}",
        started.elapsed()
    );
    assert_eq!(busy.result(), Ok(1));
    for handle in queued {
        handle.result().unwrap();
    }
    assert_eq!(counter.get().result(), Ok(4));
    counter.stop().result().unwrap();
}

#[test]
fn a_streaming_call_waits_for_room_like_any_call() {
    let counter = ActorOptions::<Counter>::new()
        .mailbox(1)
        .spawn(("stream-bound".to_owned(), 0))
        .unwrap();
    let busy = counter.slow_incr(1, 300);
    std::thread::sleep(Duration::from_millis(30)); // the actor took it: the mailbox is empty
    let queued = counter.incr(1);
    let started = Instant::now();
    let items: Vec<u64> = counter.countdown(2).map(Result::unwrap).collect();
    assert!(
        started.elapsed() >= Duration::from_millis(150),
        "the stream call waited {:?} for room",
        started.elapsed()
    );
    assert_eq!(items, [2, 1, 0]);
    assert_eq!(busy.result(), Ok(1));
    assert_eq!(queued.result(), Ok(2));
    counter.stop().result().unwrap();
}

#[test]
fn an_actor_outlives_its_references_until_stopped() {
    let counter = ActorOptions::<Counter>::new()
        .uid("outlives-its-references")
        .spawn(("outlives".to_owned(), 5))
        .unwrap();
    let address = counter.address().clone();
    drop(counter);
    // Dropping every reference does not stop it (as documented): found again by address + uid.
    let again = actor::lookup::<Counter>(&address, "outlives-its-references").unwrap();
    assert_eq!(again.incr(1).result(), Ok(6));
    again.stop().result().unwrap();
    assert!(matches!(
        actor::lookup::<Counter>(&address, "outlives-its-references"),
        Err(ActorError::NotFound { .. })
    ));
}

#[test]
fn calls_from_one_caller_run_in_order() {
    let counter = ActorOptions::<Counter>::new()
        .mailbox(8)
        .spawn(("order".to_owned(), 0))
        .unwrap();
    let mut callers = Vec::new();
    for _ in 0..4 {
        let counter = counter.clone();
        callers.push(std::thread::spawn(move || {
            let handles: Vec<_> = (0..500).map(|_| counter.incr(1)).collect();
            let values: Vec<u64> = handles.into_iter().map(|h| h.result().unwrap()).collect();
            // Each caller's calls ran in the order sent: its results increase.
            assert!(values.windows(2).all(|pair| pair[0] < pair[1]));
        }));
    }
    for caller in callers {
        caller.join().unwrap();
    }
    assert_eq!(counter.get().result(), Ok(2000));
    counter.stop().result().unwrap();
}

struct Meeting {
    barrier: Arc<Barrier>,
    writes: u64,
}

#[crew::actor]
impl Meeting {
    fn new(parties: usize) -> Self {
        Meeting {
            barrier: Arc::new(Barrier::new(parties)),
            writes: 0,
        }
    }

    /// Returns only when `parties` calls are inside at once.
    fn meet(&self) -> bool {
        self.barrier.wait();
        true
    }

    fn write(&mut self) -> u64 {
        self.writes += 1;
        self.writes
    }
}

#[test]
fn shared_calls_run_concurrently() {
    let meeting = ActorOptions::<Meeting>::new()
        .max_concurrency(3)
        .spawn(3)
        .unwrap();
    let handles: Vec<_> = (0..3).map(|_| meeting.meet()).collect();
    for handle in handles {
        assert_eq!(handle.result_timeout(Duration::from_secs(10)), Ok(true));
    }
    assert_eq!(meeting.write().result(), Ok(1));
    meeting.stop().result().unwrap();
}

#[test]
fn panic_fails_the_call_and_the_actor_lives_on() {
    let counter = counter("panic");
    assert_eq!(
        counter.boom("kaboom".into()).result(),
        Err(TaskError::Panicked {
            message: "kaboom".into()
        })
    );
    // The actor lives on with the state the method left (it incremented before panicking).
    assert_eq!(counter.incr(1).result(), Ok(2));
    counter.stop().result().unwrap();
}

struct Numbers {
    produced: Arc<AtomicUsize>,
}

#[crew::actor]
impl Numbers {
    fn new(_: ()) -> Self {
        Numbers {
            produced: PRODUCED.clone(),
        }
    }

    #[stream]
    fn count(&mut self, n: u64) -> impl Iterator<Item = u64> + Send + 'static {
        let produced = self.produced.clone();
        (0..n).inspect(move |_| {
            produced.fetch_add(1, Ordering::SeqCst);
        })
    }
}

static PRODUCED: std::sync::LazyLock<Arc<AtomicUsize>> =
    std::sync::LazyLock::new(|| Arc::new(AtomicUsize::new(0)));

#[test]
fn streaming_with_a_slow_consumer_is_flow_controlled() {
    let numbers = actor::spawn::<Numbers>(()).unwrap();
    let mut stream = numbers.count(1_000);
    assert_eq!(stream.next().unwrap(), Ok(0));
    std::thread::sleep(Duration::from_millis(50));
    // The slow consumer took one item: the actor produced no more than it.
    assert_eq!(PRODUCED.load(Ordering::SeqCst), 1);
    let rest: Vec<u64> = stream.map(Result::unwrap).collect();
    assert_eq!(rest, (1..1_000).collect::<Vec<_>>());
    // And as an async stream.
    let items: Vec<u64> = futures::executor::block_on(async {
        use futures::StreamExt;
        StreamExt::map(numbers.count(5), Result::unwrap)
            .collect()
            .await
    });
    assert_eq!(items, [0, 1, 2, 3, 4]);
    numbers.stop().result().unwrap();
}

struct Narcissus {
    me: Option<NarcissusRef>,
}

#[crew::actor]
impl Narcissus {
    fn new(_: ()) -> Self {
        Narcissus { me: None }
    }

    fn remember(&mut self, me: NarcissusRef) {
        self.me = Some(me);
    }

    fn admire(&mut self) -> Result<u32, String> {
        let me = self.me.as_ref().expect("remembered");
        me.value().result().map_err(|error| error.to_string())
    }

    fn value(&self) -> u32 {
        7
    }

    /// Waits until the test filled the mailbox, stops itself, returns how long `stop` took.
    fn retire_when_full(&mut self) -> u64 {
        RETIRE_STARTED.store(true, Ordering::SeqCst);
        let deadline = Instant::now() + Duration::from_secs(10);
        while !MAILBOX_FILLED.load(Ordering::SeqCst) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(1));
        }
        let started = Instant::now();
        drop(self.me.as_ref().expect("remembered").stop());
        started.elapsed().as_millis() as u64
    }
}

static RETIRE_STARTED: AtomicBool = AtomicBool::new(false);
static MAILBOX_FILLED: AtomicBool = AtomicBool::new(false);

#[test]
fn an_actor_stopping_itself_with_a_full_mailbox_does_not_block() {
    let narcissus = ActorOptions::<Narcissus>::new()
        .mailbox(2)
        .spawn(())
        .unwrap();
    narcissus.remember(narcissus.clone()).result().unwrap();
    let retiring = narcissus.retire_when_full();
    while !RETIRE_STARTED.load(Ordering::SeqCst) {
        std::thread::sleep(Duration::from_millis(1));
    }
    let queued = [narcissus.value(), narcissus.value()];
    assert!(matches!(
        narcissus.try_value(),
        Err(ActorError::Full { .. })
    ));
    MAILBOX_FILLED.store(true, Ordering::SeqCst);
    let took = retiring
        .result_timeout(Duration::from_secs(5))
        .expect("stop() from the actor itself returned");
    assert!(took < 1_000, "stop() took {took} ms");
    // The stop is graceful: the calls queued before it still run, then the actor ends.
    for call in queued {
        assert_eq!(call.result_timeout(Duration::from_secs(5)), Ok(7));
    }
    narcissus
        .stop()
        .result_timeout(Duration::from_secs(5))
        .unwrap();
    assert!(matches!(
        narcissus.value().result(),
        Err(TaskError::Actor(ActorError::Stopped { .. }))
    ));
}

#[test]
fn calling_oneself_fails_at_once() {
    let narcissus = actor::spawn::<Narcissus>(()).unwrap();
    narcissus.remember(narcissus.clone()).result().unwrap();
    let answer = narcissus
        .admire()
        .result_timeout(Duration::from_secs(5))
        .unwrap();
    let message = answer.unwrap_err();
    assert!(
        message.contains("called its own method `value`"),
        "{message}"
    );
    narcissus.stop().result().unwrap();
}

#[test]
fn registry_finds_refuses_duplicates_and_reports_missing() {
    let address = Address::new("registry-test");
    let counter = ActorOptions::<Counter>::new()
        .address(address.clone())
        .uid("c1")
        .spawn(("registry".to_owned(), 1))
        .unwrap();
    let again = ActorOptions::<Counter>::new()
        .address(address.clone())
        .uid("c1")
        .spawn(("registry".to_owned(), 1));
    assert_eq!(
        again.unwrap_err(),
        ActorError::DuplicateUid {
            address: address.clone(),
            uid: "c1".into()
        }
    );
    let found = actor::lookup::<Counter>(&address, "c1").unwrap();
    assert_eq!(found.incr(1).result(), Ok(2));
    assert!(matches!(
        actor::lookup::<Meeting>(&address, "c1"),
        Err(ActorError::WrongType { .. })
    ));
    // A reference crosses serde as address + uid and is found again.
    let bytes = crew::task::codec::encode(&counter).unwrap();
    let decoded: CounterRef = crew::task::codec::decode(&bytes).unwrap();
    assert_eq!(decoded.get().result(), Ok(2));
    counter.stop().result().unwrap();
    // Gone: lookups and calls through a stale decoded reference fail at once.
    assert_eq!(
        actor::lookup::<Counter>(&address, "c1").unwrap_err(),
        ActorError::NotFound {
            address: address.clone(),
            uid: "c1".into()
        }
    );
    let stale: CounterRef = crew::task::codec::decode(&bytes).unwrap();
    assert!(matches!(
        stale.get().result_timeout(Duration::from_secs(1)),
        Err(TaskError::Actor(ActorError::NotFound { .. }))
    ));
}

struct Teller;

#[crew::actor(stateless)]
impl Teller {
    fn new(_: ()) -> Self {
        Teller
    }

    fn whoami(&self, ms: u64) -> String {
        std::thread::sleep(Duration::from_millis(ms));
        std::thread::current().name().unwrap_or_default().to_owned()
    }
}

#[test]
fn stateless_instances_share_one_mailbox() {
    let tellers = ActorOptions::<Teller>::new()
        .instances(3)
        .spawn(())
        .unwrap();
    let handles: Vec<_> = (0..12).map(|_| tellers.whoami(20)).collect();
    let threads: std::collections::HashSet<String> =
        handles.into_iter().map(|h| h.result().unwrap()).collect();
    // The load spread over the instances.
    assert!(threads.len() >= 2, "{threads:?}");
    tellers.stop().result().unwrap();
}

/// A stateless pool whose instances call the pool itself (a fan-out from inside a method).
struct Fanner;

/// Holds the callers of `fan_at_once` until all are inside the method.
static FAN_BARRIER: Mutex<Option<Arc<Barrier>>> = Mutex::new(None);
/// `hold_until_opened` waits for this; `FAN_HOLDING` counts the calls holding.
static FAN_GATE: AtomicBool = AtomicBool::new(false);
static FAN_HOLDING: AtomicUsize = AtomicUsize::new(0);
/// For `killing_a_pool_refuses_a_self_call_waiting_for_room`: the busy instance's gate, and
/// the steps of the instance that awaits room.
static KILL_GATE: AtomicBool = AtomicBool::new(false);
static KILL_HOLDING: AtomicBool = AtomicBool::new(false);
static KILL_AWAITING: AtomicBool = AtomicBool::new(false);
static KILL_FULL: AtomicBool = AtomicBool::new(false);
/// Set by `fan_flagged` once its self-call is queued.
static FAN_SENT: AtomicBool = AtomicBool::new(false);

#[crew::actor(stateless)]
impl Fanner {
    fn new(_: ()) -> Self {
        Fanner
    }

    fn echo(&self, value: u64) -> u64 {
        value
    }

    /// Calls its own pool `depth` levels deep and waits for the answers.
    fn fan(&self, uid: String, depth: u32) -> Result<u64, String> {
        let pool = actor::lookup::<Fanner>(&Address::local(), &uid).map_err(|e| e.to_string())?;
        if depth == 0 {
            return pool.echo(1).result().map_err(|e| e.to_string());
        }
        let inner = pool.fan(uid.clone(), depth - 1);
        inner
            .result()
            .map_err(|e| e.to_string())?
            .map(|value| value + 1)
    }

    /// Keeps an instance busy until the test opens the gate (10 s at most).
    fn hold_until_opened(&self) {
        FAN_HOLDING.fetch_add(1, Ordering::SeqCst);
        let deadline = Instant::now() + Duration::from_secs(10);
        while !FAN_GATE.load(Ordering::SeqCst) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(1));
        }
    }

    /// Calls its own pool, says the call is queued, waits for the answer.
    fn fan_flagged(&self, uid: String) -> Result<u64, String> {
        let pool = actor::lookup::<Fanner>(&Address::local(), &uid).map_err(|e| e.to_string())?;
        let answer = pool.echo(5);
        FAN_SENT.store(true, Ordering::SeqCst);
        answer.result().map_err(|e| e.to_string())
    }

    /// Keeps an instance busy until `KILL_GATE` opens (10 s at most).
    fn hold_for_kill(&self) {
        KILL_HOLDING.store(true, Ordering::SeqCst);
        let deadline = Instant::now() + Duration::from_secs(10);
        while !KILL_GATE.load(Ordering::SeqCst) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(1));
        }
    }

    /// Once the test filled the mailbox, calls its own pool the async way: the call waits
    /// for room.
    fn fan_awaited_when_full(&self, uid: String) -> Result<u64, String> {
        let pool = actor::lookup::<Fanner>(&Address::local(), &uid).map_err(|e| e.to_string())?;
        KILL_AWAITING.store(true, Ordering::SeqCst);
        let deadline = Instant::now() + Duration::from_secs(10);
        while !KILL_FULL.load(Ordering::SeqCst) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(1));
        }
        futures::executor::block_on(pool.echo_async(4)).map_err(|e| e.to_string())
    }

    /// Calls its own pool the async way, awaiting the answer.
    fn fan_awaited(&self, uid: String) -> Result<u64, String> {
        let pool = actor::lookup::<Fanner>(&Address::local(), &uid).map_err(|e| e.to_string())?;
        futures::executor::block_on(pool.echo_async(3)).map_err(|e| e.to_string())
    }

    /// Waits until every caller is inside, then calls its own pool.
    fn fan_at_once(&self, uid: String) -> Result<u64, String> {
        let barrier = FAN_BARRIER.lock().unwrap().clone().unwrap();
        barrier.wait();
        let pool = actor::lookup::<Fanner>(&Address::local(), &uid).map_err(|e| e.to_string())?;
        pool.echo(7).result().map_err(|e| e.to_string())
    }
}

#[test]
fn a_pool_instance_calling_its_own_pool_is_served_by_another() {
    let pool = ActorOptions::<Fanner>::new()
        .uid("fanner-3")
        .instances(3)
        .spawn(())
        .unwrap();
    // One level: another instance answers. Two levels: three instances, two waiting, one free.
    assert_eq!(
        pool.fan("fanner-3".into(), 0)
            .result_timeout(Duration::from_secs(10)),
        Ok(Ok(1))
    );
    assert_eq!(
        pool.fan("fanner-3".into(), 1)
            .result_timeout(Duration::from_secs(10)),
        Ok(Ok(2))
    );
    // Three levels would leave no instance free: the deepest self-call fails at once.
    let too_deep = pool
        .fan("fanner-3".into(), 2)
        .result_timeout(Duration::from_secs(10))
        .unwrap()
        .unwrap_err();
    assert!(
        too_deep.contains("would wait for itself forever"),
        "{too_deep}"
    );
    // An awaited self-call is guarded the same way.
    assert_eq!(
        pool.fan_awaited("fanner-3".into())
            .result_timeout(Duration::from_secs(10)),
        Ok(Ok(3))
    );
    // The slots were given back: a self-call works again.
    assert_eq!(
        pool.fan("fanner-3".into(), 1)
            .result_timeout(Duration::from_secs(10)),
        Ok(Ok(2))
    );
    pool.stop().result().unwrap();
}

#[test]
fn every_pool_instance_calling_its_pool_at_once_errs_rather_than_hangs() {
    // Two instances, both inside a method that calls the pool: one may wait (the other, once
    // refused, frees its thread to serve it); both waiting would hang.
    *FAN_BARRIER.lock().unwrap() = Some(Arc::new(Barrier::new(2)));
    let pool = ActorOptions::<Fanner>::new()
        .uid("fanner-2")
        .instances(2)
        .spawn(())
        .unwrap();
    let both = [
        pool.fan_at_once("fanner-2".into()),
        pool.fan_at_once("fanner-2".into()),
    ];
    let mut answers: Vec<Result<u64, String>> = both
        .into_iter()
        .map(|call| call.result_timeout(Duration::from_secs(10)).unwrap())
        .collect();
    answers.sort();
    assert_eq!(answers[0], Ok(7));
    let refused = answers[1].as_ref().unwrap_err();
    assert!(refused.contains("none of its threads is free"), "{refused}");
    pool.stop().result().unwrap();
}

#[test]
fn killing_a_pool_answers_a_self_call_waiting_in_its_mailbox() {
    let pool = ActorOptions::<Fanner>::new()
        .uid("fanner-killed")
        .instances(2)
        .spawn(())
        .unwrap();
    // One instance busy; the other calls the pool and waits, its call queued.
    let busy = pool.hold_until_opened();
    while FAN_HOLDING.load(Ordering::SeqCst) == 0 {
        std::thread::sleep(Duration::from_millis(1));
    }
    let waiting = pool.fan_flagged("fanner-killed".into());
    while !FAN_SENT.load(Ordering::SeqCst) {
        std::thread::sleep(Duration::from_millis(1));
    }
    let killed = pool.kill();
    // The queued self-call fails at the kill, so its caller returns (it waited forever: the
    // threads left the mailbox, and only the last one out failed what was in it).
    let answer = waiting.result_timeout(Duration::from_secs(5));
    FAN_GATE.store(true, Ordering::SeqCst);
    let refused = answer
        .expect("the waiting instance got no answer")
        .unwrap_err();
    assert!(refused.contains("it was killed"), "{refused}");
    assert_eq!(killed.result_timeout(Duration::from_secs(10)), Ok(()));
    assert_eq!(busy.result(), Ok(()));
}

#[test]
fn killing_a_pool_refuses_a_self_call_waiting_for_room() {
    let pool = ActorOptions::<Fanner>::new()
        .uid("fanner-room")
        .instances(2)
        .mailbox(1)
        .spawn(())
        .unwrap();
    // One instance busy, the other about to call the pool the async way...
    let busy = pool.hold_for_kill();
    while !KILL_HOLDING.load(Ordering::SeqCst) {
        std::thread::sleep(Duration::from_millis(1));
    }
    let waiting = pool.fan_awaited_when_full("fanner-room".into());
    while !KILL_AWAITING.load(Ordering::SeqCst) {
        std::thread::sleep(Duration::from_millis(1));
    }
    // ...once the mailbox is full: its call waits for room no thread will make.
    let queued = pool.echo(9);
    KILL_FULL.store(true, Ordering::SeqCst);
    std::thread::sleep(Duration::from_millis(50));
    let killed = pool.kill();
    // The kill refuses the waiting call (it was never woken: the instance waited forever,
    // and so did the kill, which waits for every thread to leave).
    let answer = waiting.result_timeout(Duration::from_secs(5));
    KILL_GATE.store(true, Ordering::SeqCst);
    let refused = answer
        .expect("the instance awaiting room got no answer")
        .unwrap_err();
    assert!(refused.contains("killed"), "{refused}");
    assert!(
        queued.result().is_err(),
        "the queued call failed at the kill"
    );
    assert_eq!(killed.result_timeout(Duration::from_secs(10)), Ok(()));
    assert_eq!(busy.result(), Ok(()));
}

#[test]
fn a_stateful_actor_with_free_threads_still_refuses_self_calls() {
    // `&mut self` methods: a self-call could wait for the caller's own state lock.
    let narcissus = ActorOptions::<Narcissus>::new()
        .max_concurrency(4)
        .spawn(())
        .unwrap();
    narcissus.remember(narcissus.clone()).result().unwrap();
    let message = narcissus
        .admire()
        .result_timeout(Duration::from_secs(5))
        .unwrap()
        .unwrap_err();
    assert!(message.contains("called its own method"), "{message}");
    narcissus.stop().result().unwrap();
}

/// Polls `future` once without blocking; `true` when it is still pending.
fn pending_after_one_poll<F: std::future::Future + Unpin>(future: &mut F) -> bool {
    let mut context = std::task::Context::from_waker(futures::task::noop_waker_ref());
    std::pin::Pin::new(future).poll(&mut context).is_pending()
}

#[test]
fn async_calls_await_room_in_a_full_mailbox() {
    let counter = ActorOptions::<Counter>::new()
        .mailbox(1)
        .spawn(("async-room".to_owned(), 0))
        .unwrap();
    let busy = counter.slow_incr(1, 200);
    std::thread::sleep(Duration::from_millis(50)); // running: the mailbox is empty again
    let queued = counter.incr(10); // fills the mailbox
    assert!(matches!(counter.try_incr(1), Err(ActorError::Full { .. })));
    // The async call does not block its thread while the mailbox is full: it is pending...
    let started = Instant::now();
    let mut waiting = Box::pin(counter.incr_async(100));
    assert!(pending_after_one_poll(&mut waiting));
    assert!(started.elapsed() < Duration::from_millis(100));
    // ...and is queued, in order, once the actor makes room.
    assert_eq!(futures::executor::block_on(waiting), Ok(111));
    assert_eq!(busy.result(), Ok(1));
    assert_eq!(queued.result(), Ok(11));
    // Many async callers on one thread, all waiting for room in turn.
    let values = futures::executor::block_on(futures::future::join_all(
        (0..20).map(|_| counter.incr_async(1)),
    ));
    let mut values: Vec<u64> = values.into_iter().map(Result::unwrap).collect();
    values.sort_unstable();
    assert_eq!(values, (112..132).collect::<Vec<_>>());
    assert_eq!(futures::executor::block_on(counter.get_async()), Ok(131));
    // A call waiting for room when the actor is killed fails with `Stopped`.
    let busy = counter.slow_incr(1, 200);
    std::thread::sleep(Duration::from_millis(50));
    let _queued = counter.incr(1);
    let mut waiting = Box::pin(counter.incr_async(1));
    assert!(pending_after_one_poll(&mut waiting));
    counter.kill().result().unwrap();
    assert!(matches!(
        futures::executor::block_on(waiting),
        Err(TaskError::Actor(ActorError::Stopped { .. }))
    ));
    drop(busy);
}

#[test]
fn async_callers_racing_for_a_one_place_mailbox_all_get_through() {
    // Lost wake-ups would leave a caller waiting for room forever: bounded by a timeout.
    let counter = ActorOptions::<Counter>::new()
        .mailbox(1)
        .spawn(("async-race".to_owned(), 0))
        .unwrap();
    let (done, finished) = std::sync::mpsc::channel();
    for _ in 0..4 {
        let counter = counter.clone();
        let done = done.clone();
        std::thread::spawn(move || {
            futures::executor::block_on(async {
                for _ in 0..500 {
                    counter.incr_async(1).await.unwrap();
                }
            });
            done.send(()).unwrap();
        });
    }
    for _ in 0..4 {
        finished
            .recv_timeout(Duration::from_secs(30))
            .expect("every async caller got through");
    }
    assert_eq!(counter.get().result(), Ok(2_000));
    counter.stop().result().unwrap();
}

#[test]
fn async_tells_await_room_in_a_full_mailbox() {
    let counter = ActorOptions::<Counter>::new()
        .mailbox(1)
        .spawn(("async-tell".to_owned(), 0))
        .unwrap();
    let busy = counter.slow_incr(1, 200);
    std::thread::sleep(Duration::from_millis(50)); // running: the mailbox is empty again
    let queued = counter.incr(10); // fills the mailbox
                                   // The async tell does not block its thread while the mailbox is full: it is pending...
    let mut waiting = Box::pin(counter.tell_incr_async(100));
    assert!(pending_after_one_poll(&mut waiting));
    // ...and is queued, behind the earlier calls, once the actor makes room.
    assert_eq!(futures::executor::block_on(waiting), Ok(()));
    assert_eq!(busy.result(), Ok(1));
    assert_eq!(queued.result(), Ok(11));
    assert_eq!(counter.get().result(), Ok(111));
    // `&self` methods have the async tell too; a stopped actor refuses it.
    futures::executor::block_on(counter.tell_get_async()).unwrap();
    counter.stop().result().unwrap();
    assert!(matches!(
        futures::executor::block_on(counter.tell_incr_async(1)),
        Err(ActorError::Stopped { .. })
    ));
}

#[test]
fn stop_from_another_thread_does_not_block_on_a_full_mailbox() {
    let counter = ActorOptions::<Counter>::new()
        .mailbox(1)
        .spawn(("stop-full".to_owned(), 0))
        .unwrap();
    let busy = counter.slow_incr(1, 2_000);
    std::thread::sleep(Duration::from_millis(50)); // running: the mailbox is empty again
    let queued = counter.incr(10); // fills the mailbox
    assert!(matches!(counter.try_incr(1), Err(ActorError::Full { .. })));
    let (returned, stop_returned) = std::sync::mpsc::channel();
    let stopper = counter.clone();
    std::thread::spawn(move || {
        let stopped = stopper.stop();
        let _ = returned.send(stopped);
    });
    // The stop returns its handle while the actor is still busy with its first call...
    let stopped = stop_returned
        .recv_timeout(Duration::from_millis(1_000))
        .expect("stop() returned at once on a full mailbox");
    // ...and is graceful: the queued call still runs, then the stop hook, then the end.
    stopped.result().unwrap();
    assert_eq!(busy.result(), Ok(1));
    assert_eq!(queued.result(), Ok(11));
    assert_eq!(
        events_of("stop-full"),
        [
            "stop-full: new",
            "stop-full: start",
            "stop-full: stop at 11"
        ]
    );
    assert!(matches!(
        counter.incr(1).result(),
        Err(TaskError::Actor(ActorError::Stopped { .. }))
    ));
}

/// Actors whose types are public in their module, used from outside it. `#[crew::actor]` makes
/// the reference as visible as the constructor `new` (or as told: `#[crew::actor(pub(crate))]`);
/// it was always private to the module, so a `pub` actor type failed to compile (E0446: private
/// type `LedgerRef` in public interface).
#[allow(unreachable_pub)] // `pub` as in a library's public module: what the test is about
mod ledgers {
    pub struct Ledger {
        total: i64,
    }

    #[crew::actor]
    impl Ledger {
        pub fn new(total: i64) -> Self {
            Ledger { total }
        }

        pub fn add(&mut self, amount: i64) -> i64 {
            self.total += amount;
            self.total
        }
    }

    pub(crate) struct Tally {
        count: u64,
    }

    #[crew::actor(pub(crate))]
    impl Tally {
        fn new(count: u64) -> Self {
            Tally { count }
        }

        fn bump(&mut self) -> u64 {
            self.count += 1;
            self.count
        }
    }

    /// A private type with a `pub fn new`: the reference is told to stay private like the
    /// type (following `new` it would be `pub` and leak `Secret`, E0446).
    struct Secret {
        value: u64,
    }

    #[crew::actor(pub(self))]
    impl Secret {
        pub fn new(value: u64) -> Self {
            Secret { value }
        }

        pub fn reveal(&self) -> u64 {
            self.value
        }
    }

    /// Used inside the module, where `SecretRef` is visible.
    pub(crate) fn reveal_secret(value: u64) -> u64 {
        let secret: SecretRef = crew::actor::spawn::<Secret>(value).unwrap();
        let revealed = secret.reveal().result().unwrap();
        secret.stop().result().unwrap();
        revealed
    }
}

#[test]
fn actors_defined_in_another_module_are_usable_here() {
    let ledger: ledgers::LedgerRef = actor::spawn::<ledgers::Ledger>(100).unwrap();
    assert_eq!(ledger.add(-30).result().unwrap(), 70);
    ledger.stop().result().unwrap();
    let tally: ledgers::TallyRef = actor::spawn::<ledgers::Tally>(7).unwrap();
    assert_eq!(tally.bump().result().unwrap(), 8);
    tally.stop().result().unwrap();
    assert_eq!(ledgers::reveal_secret(42), 42);
}

/// Calls B and waits for its answer, which B gets by calling back into this actor.
struct Caller {
    callee: Option<CalleeRef>,
}

#[crew::actor]
impl Caller {
    fn new(_: ()) -> Self {
        Caller { callee: None }
    }

    fn set_callee(&mut self, callee: CalleeRef) {
        self.callee = Some(callee);
    }

    fn ping(&self) -> Result<String, String> {
        let callee = self.callee.clone().expect("set_callee first");
        callee
            .call_back()
            .result_timeout(Duration::from_secs(5))
            .map_err(|error| error.to_string())?
    }

    fn pong(&self) -> String {
        "pong".to_owned()
    }
}

struct Callee {
    caller: Option<CallerRef>,
}

#[crew::actor]
impl Callee {
    fn new(_: ()) -> Self {
        Callee { caller: None }
    }

    fn set_caller(&mut self, caller: CallerRef) {
        self.caller = Some(caller);
    }

    fn call_back(&self) -> Result<String, String> {
        let caller = self.caller.clone().expect("set_caller first");
        caller
            .pong()
            .result_timeout(Duration::from_millis(200))
            .map_err(|error| error.to_string())
    }
}

/// A calls B calls A (the documented cycle): with one thread A cannot serve B's call while it
/// waits on B, so B's wait times out; with `max_concurrency(2)` A's second thread serves it.
#[test]
fn a_cycle_through_another_actor_blocks_unless_a_second_thread_serves_it() {
    for (threads, expected) in [(1, Err(TaskError::TimedOut.to_string())), (2, Ok("pong"))] {
        let caller = ActorOptions::<Caller>::new()
            .max_concurrency(threads)
            .spawn(())
            .unwrap();
        let callee = actor::spawn::<Callee>(()).unwrap();
        caller.set_callee(callee.clone()).result().unwrap();
        callee.set_caller(caller.clone()).result().unwrap();
        assert_eq!(
            caller.ping().result(),
            Ok(expected.map(str::to_owned)),
            "max_concurrency({threads})"
        );
        caller.stop().result().unwrap();
        callee.stop().result().unwrap();
    }
}

#[test]
fn empty_or_nul_names_are_refused_not_panicked_on() {
    // An empty uid was accepted; a NUL byte in it panicked in the caller (a thread name cannot
    // hold one).
    for uid in ["", "a\0b"] {
        match ActorOptions::<Counter>::new()
            .uid(uid)
            .spawn(("names".to_owned(), 0))
        {
            Err(ActorError::Invalid(message)) => {
                assert!(message.contains("uid must be non-empty"), "{message}")
            }
            other => panic!("uid {uid:?}: expected Invalid, got {other:?}"),
        }
    }
    assert!(matches!(
        ActorOptions::<Counter>::new()
            .address(Address::new(""))
            .spawn(("names".to_owned(), 0)),
        Err(ActorError::Invalid(_))
    ));
}

#[test]
fn a_streaming_method_whose_iterator_panics_ends_its_stream_with_panicked() {
    let counter = counter("stream-panic");
    // The iterator runs in the caller's thread: its panic unwound into the caller (a worker
    // process's ends the stream with `Panicked`, as documented for every placement).
    let items: Vec<_> = counter.count_then_panic(2).collect();
    assert_eq!(
        items,
        [
            Ok(0),
            Ok(1),
            Err(TaskError::Panicked {
                message: "no more than 2".into()
            })
        ]
    );
    assert_eq!(counter.incr(1).result(), Ok(1), "the actor lives on");
    counter.stop().result().unwrap();
}

/// Set in the child of the next test, which runs with a capped address space.
const THREAD_LIMIT_CHILD: &str = "CREW_ACTOR_TEST_THREAD_LIMIT";

/// An actor whose thread cannot start (the process is at its thread or memory limit) fails its
/// creation with `StartFailed` and frees its uid; the caller panicked ("cannot start an actor
/// thread"). Run in a child process of this test binary whose address space is capped just
/// above what it has mapped, so that no thread stack fits.
#[test]
fn an_actor_whose_thread_cannot_start_fails_creation() {
    const NAME: &str = "an_actor_whose_thread_cannot_start_fails_creation";
    if std::env::var_os(THREAD_LIMIT_CHILD).is_some() {
        let mapped_kib: u64 = std::fs::read_to_string("/proc/self/status")
            .unwrap()
            .lines()
            .find_map(|line| line.strip_prefix("VmSize:"))
            .and_then(|value| value.trim().trim_end_matches("kB").trim().parse().ok())
            .expect("VmSize in /proc/self/status");
        let cap = (mapped_kib + 512) * 1024;
        rustix::process::setrlimit(
            rustix::process::Resource::As,
            rustix::process::Rlimit {
                current: Some(cap),
                maximum: None,
            },
        )
        .unwrap();
        let outcome = ActorOptions::<Counter>::new()
            .uid("no-room-for-a-thread")
            .max_concurrency(2)
            .spawn(("thread-limit".to_owned(), 0));
        match outcome {
            Err(ActorError::StartFailed { message, .. }) => {
                assert!(message.contains("cannot start its thread"), "{message}")
            }
            other => panic!("expected StartFailed, got {:?}", other.map(|_| ())),
        }
        assert!(matches!(
            actor::lookup::<Counter>(&Address::local(), "no-room-for-a-thread"),
            Err(ActorError::NotFound { .. })
        ));
        println!("the creation failed cleanly");
        return;
    }
    let output = std::process::Command::new(std::env::current_exe().unwrap())
        .args(["--exact", NAME, "--nocapture", "--test-threads=1"])
        .env(THREAD_LIMIT_CHILD, "1")
        .env_remove("RUST_MIN_STACK") // a small stack could fit under the cap
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success() && stdout.contains("the creation failed cleanly"),
        "{}\n{stdout}\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
}

/// An actor whose constructor, start hook or stop hook panics, by its argument.
struct Fragile {
    part: String,
}

#[crew::actor]
impl Fragile {
    fn new(part: String) -> Self {
        if part == "new" {
            panic!("the constructor broke");
        }
        Fragile { part }
    }

    fn on_start(&mut self) -> Result<(), String> {
        if self.part == "on_start" {
            panic!("the start hook broke");
        }
        Ok(())
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

#[test]
fn a_panicking_constructor_or_start_hook_fails_creation_saying_which() {
    for (part, says) in [
        (
            "new",
            "its constructor (`new`) panicked: the constructor broke",
        ),
        (
            "on_start",
            "its start hook (`on_start`) panicked: the start hook broke",
        ),
    ] {
        let error = ActorOptions::<Fragile>::new()
            .uid(format!("fragile-{part}"))
            .spawn(part.to_owned())
            .unwrap_err();
        assert_eq!(
            error,
            ActorError::StartFailed {
                uid: format!("fragile-{part}"),
                message: says.to_owned()
            }
        );
        assert!(error.to_string().contains("spawn it again"), "{error}");
        // Nothing was registered: the uid is free.
        assert!(matches!(
            actor::lookup::<Fragile>(&Address::local(), &format!("fragile-{part}")),
            Err(ActorError::NotFound { .. })
        ));
        let fixed = ActorOptions::<Fragile>::new()
            .uid(format!("fragile-{part}"))
            .spawn("fine".to_owned())
            .unwrap();
        fixed.stop().result().unwrap();
    }
}

#[test]
fn a_panicking_stop_hook_still_ends_the_actor() {
    // Decided: the stop hook cannot fail, so its panic is reported on stderr and the stop
    // completes (the actor ended, its uid is free); the same in a worker process.
    let fragile = ActorOptions::<Fragile>::new()
        .uid("fragile-stop")
        .spawn("on_stop".to_owned())
        .unwrap();
    assert_eq!(fragile.part().result(), Ok("on_stop".to_owned()));
    assert_eq!(
        fragile.stop().result_timeout(Duration::from_secs(5)),
        Ok(())
    );
    assert!(matches!(
        fragile.part().result(),
        Err(TaskError::Actor(ActorError::Stopped { .. }))
    ));
    assert!(matches!(
        actor::lookup::<Fragile>(&Address::local(), "fragile-stop"),
        Err(ActorError::NotFound { .. })
    ));
}

#[test]
fn zero_counts_are_refused_naming_the_option() {
    for (options, named) in [
        (ActorOptions::<Teller>::new().mailbox(0), ".mailbox(0)"),
        (ActorOptions::<Teller>::new().instances(0), ".instances(0)"),
        (
            ActorOptions::<Teller>::new().max_concurrency(0),
            ".max_concurrency(0)",
        ),
    ] {
        match options.spawn(()) {
            Err(ActorError::Invalid(message)) => {
                assert!(message.starts_with(named), "{message}");
                assert!(message.contains("at least 1"), "{message}");
            }
            other => panic!("{named}: expected Invalid, got {other:?}"),
        }
    }
}

#[test]
fn a_lookup_as_the_wrong_type_says_what_to_do() {
    let teller = ActorOptions::<Teller>::new()
        .uid("typed-teller")
        .spawn(())
        .unwrap();
    let error = actor::lookup::<Fragile>(&Address::local(), "typed-teller").unwrap_err();
    assert!(matches!(error, ActorError::WrongType { .. }), "{error:?}");
    assert!(error.to_string().contains("look it up as a"), "{error}");
    teller.stop().result().unwrap();
}

#[test]
fn stop_or_kill_racing_with_callers_on_several_threads() {
    // Every call either runs or fails with Stopped; the end settles; nothing hangs.
    for round in 0..20 {
        let tellers = ActorOptions::<Teller>::new()
            .instances(2)
            .mailbox(4)
            .spawn(())
            .unwrap();
        let answered = Arc::new(AtomicUsize::new(0));
        let callers: Vec<_> = (0..4)
            .map(|_| {
                let tellers = tellers.clone();
                let answered = answered.clone();
                std::thread::spawn(move || loop {
                    match tellers.whoami(0).result_timeout(Duration::from_secs(10)) {
                        Ok(_) => {
                            answered.fetch_add(1, Ordering::Relaxed);
                        }
                        Err(TaskError::Actor(ActorError::Stopped { .. })) => break,
                        Err(other) => panic!("round {round}: {other:?}"),
                    }
                })
            })
            .collect();
        while answered.load(Ordering::Relaxed) < 10 {
            std::thread::yield_now();
        }
        let end = if round % 2 == 0 {
            tellers.stop()
        } else {
            tellers.kill()
        };
        assert_eq!(
            end.result_timeout(Duration::from_secs(10)),
            Ok(()),
            "round {round}"
        );
        for caller in callers {
            caller.join().unwrap();
        }
        assert!(matches!(
            tellers.try_whoami(0),
            Err(ActorError::Stopped { .. })
        ));
    }
}

#[test]
fn calls_in_flight_complete_after_every_reference_is_dropped() {
    let tellers = ActorOptions::<Teller>::new()
        .uid("orphaned-tellers")
        .instances(2)
        .spawn(())
        .unwrap();
    let in_flight: Vec<_> = (0..6).map(|_| tellers.whoami(20)).collect();
    drop(tellers);
    for call in in_flight {
        assert!(call
            .result_timeout(Duration::from_secs(10))
            .unwrap()
            .starts_with("crew-actor-orphaned-tellers-"));
    }
    // Still alive and findable: stop what you spawn.
    let found = actor::lookup::<Teller>(&Address::local(), "orphaned-tellers").unwrap();
    found.stop().result().unwrap();
}

/// A stateless actor whose `hold` calls wait until the test opens the gate.
struct Gate;

static GATE_HELD: AtomicUsize = AtomicUsize::new(0);
static GATE_OPEN: AtomicBool = AtomicBool::new(false);

#[crew::actor(stateless)]
impl Gate {
    fn new(_: ()) -> Self {
        Gate
    }

    fn hold(&self) -> usize {
        GATE_HELD.fetch_add(1, Ordering::SeqCst);
        let deadline = Instant::now() + Duration::from_secs(10);
        while !GATE_OPEN.load(Ordering::SeqCst) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(1));
        }
        1
    }
}

#[test]
fn try_calls_on_a_full_pool_report_full_without_blocking() {
    let gates = ActorOptions::<Gate>::new()
        .instances(2)
        .mailbox(2)
        .spawn(())
        .unwrap();
    // Both instances busy, then two more calls fill the mailbox.
    let mut calls: Vec<_> = (0..2).map(|_| gates.try_hold().unwrap()).collect();
    while GATE_HELD.load(Ordering::SeqCst) < 2 {
        std::thread::sleep(Duration::from_millis(1));
    }
    calls.extend((0..2).map(|_| gates.try_hold().unwrap()));
    let started = Instant::now();
    for _ in 0..3 {
        assert!(matches!(gates.try_hold(), Err(ActorError::Full { .. })));
    }
    assert!(started.elapsed() < Duration::from_secs(1));
    GATE_OPEN.store(true, Ordering::SeqCst);
    let answered: usize = calls.into_iter().map(|call| call.result().unwrap()).sum();
    assert_eq!(answered, 4);
    // Room again.
    assert_eq!(gates.try_hold().unwrap().result(), Ok(1));
    gates.stop().result().unwrap();
}

#[test]
fn handles_are_awaited_inside_a_tokio_runtime_without_blocking_it() {
    let tellers = ActorOptions::<Teller>::new()
        .instances(2)
        .mailbox(1)
        .spawn(())
        .unwrap();
    // One runtime thread: while calls wait for the actor (and for room in its one-place
    // mailbox), the runtime's other task still runs.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .unwrap();
    let ticks = Arc::new(AtomicUsize::new(0));
    let ticked_while_waiting = runtime.block_on(async {
        let counting = ticks.clone();
        let ticker = tokio::spawn(async move {
            loop {
                tokio::time::sleep(Duration::from_millis(5)).await;
                counting.fetch_add(1, Ordering::SeqCst);
            }
        });
        // Three 100 ms calls on two instances: about 200 ms of waiting.
        let (first, second, third) = tokio::join!(
            tellers.whoami(100),
            tellers.whoami_async(100),
            tellers.whoami_async(100)
        );
        assert!(first.unwrap().starts_with("crew-actor-"));
        assert!(second.unwrap().starts_with("crew-actor-"));
        assert!(third.unwrap().starts_with("crew-actor-"));
        ticker.abort();
        ticks.load(Ordering::SeqCst)
    });
    assert!(ticked_while_waiting >= 10, "{ticked_while_waiting}");
    // Handles awaited from a multi-threaded runtime's tasks.
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .build()
        .unwrap();
    let answers = runtime.block_on(async {
        let tasks: Vec<_> = (0..8)
            .map(|_| {
                let tellers = tellers.clone();
                tokio::spawn(async move { tellers.whoami_async(1).await })
            })
            .collect();
        let mut answers = 0;
        for task in tasks {
            assert!(task.await.unwrap().is_ok());
            answers += 1;
        }
        answers
    });
    assert_eq!(answers, 8);
    tellers.stop().result().unwrap();
}
