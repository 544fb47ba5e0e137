//! Remote actors on cluster workers, against a real `nats-server` (loopback): create, find by
//! address + uid, typed calls of every form, duplicate uid, not found, stateless pools over a
//! queue group, and a worker killed under a call. `harness = false`: the binary is also the
//! worker program of the killed-worker test (`CREW_ACTOR_TEST_WORKER`).

mod process_common;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crew::actor::{self, ActorError, ActorOptions, Address};
use crew::cluster::{
    serve_worker, Cluster, ClusterOptions, Isolation, ServerConfig, Storage, TestServer,
    WorkerOptions,
};
use crew::TaskError;

#[path = "support/nats_server.rs"]
mod nats_server;
use nats_server::ensure_nats_server;

const WORKER_ENV: &str = "CREW_ACTOR_TEST_WORKER";
/// The worker's name (default `node-k`).
const WORKER_NAME_ENV: &str = "CREW_ACTOR_TEST_WORKER_NAME";
const TOKEN: &str = "actor-remote-test-token";

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

    fn sleep(&self, ms: u64) -> u64 {
        std::thread::sleep(Duration::from_millis(ms));
        ms
    }

    fn boom(&mut self) -> u64 {
        panic!("boom on a cluster worker")
    }

    fn measure(&self, text: String) -> u64 {
        text.len() as u64
    }

    #[stream]
    fn count(&self, n: u64) -> impl Iterator<Item = u64> + Send + 'static {
        0..n
    }
}

/// A stateless actor whose copies tell themselves apart.
struct Member {
    id: u64,
}

#[crew::actor(stateless)]
impl Member {
    fn new(_: ()) -> Self {
        static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
        Member {
            id: NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed),
        }
    }

    fn who(&self, delay_ms: u64) -> u64 {
        std::thread::sleep(Duration::from_millis(delay_ms));
        self.id
    }

    /// The worker process it runs in, after `delay_ms`.
    fn pid_after(&self, delay_ms: u64) -> u32 {
        std::thread::sleep(Duration::from_millis(delay_ms));
        std::process::id()
    }
}

/// Takes bytes, gives bytes.
struct Sink;

#[crew::actor]
impl Sink {
    fn new(_: ()) -> Self {
        Sink
    }

    fn take(&self, text: String) -> usize {
        text.len()
    }

    fn give(&self, bytes: usize) -> String {
        "g".repeat(bytes)
    }

    #[stream]
    fn give_items(&self, bytes: usize) -> impl Iterator<Item = String> + Send + 'static {
        [1, bytes].into_iter().map(|size| "i".repeat(size))
    }
}

/// A call larger than a NATS message may be fails at once with `TooLarge` (it waited forever,
/// and so did every later call of the reference: the publishing task had ended); a result or
/// stream item too large fails its call with a message saying so (the member's reply was
/// refused, and its later replies to that caller were lost); calls and results near the
/// limit, pipelined, all get through.
fn a_call_above_max_payload_fails_at_once() {
    let cluster = local_cluster();
    let sink = ActorOptions::<Sink>::new()
        .on_cluster(&cluster)
        .spawn(())
        .unwrap();
    match sink
        .take("x".repeat(4 << 20))
        .result_timeout(Duration::from_secs(10))
    {
        Err(TaskError::Actor(ActorError::TooLarge { bytes, limit, .. })) => {
            assert!(bytes > limit, "{bytes} {limit}");
        }
        other => panic!("expected TooLarge, got {other:?}"),
    }
    assert!(matches!(
        sink.try_take("x".repeat(4 << 20)),
        Err(ActorError::TooLarge { .. })
    ));
    let calls: Vec<_> = (0..12).map(|_| sink.take("y".repeat(300_000))).collect();
    for call in calls {
        assert_eq!(call.result_timeout(Duration::from_secs(20)), Ok(300_000));
    }
    assert_eq!(
        sink.take("z".to_owned())
            .result_timeout(Duration::from_secs(10)),
        Ok(1)
    );
    match sink.give(4 << 20).result_timeout(Duration::from_secs(10)) {
        Err(TaskError::Transport { message }) => {
            assert!(message.contains("max_payload"), "{message}");
        }
        other => panic!(
            "expected a Transport error, got {:?}",
            other.map(|s| s.len())
        ),
    }
    let items: Vec<_> = sink.give_items(4 << 20).collect();
    assert!(
        matches!(
            items.as_slice(),
            [Ok(first), Err(TaskError::Transport { .. })] if first == "i"
        ),
        "{:?}",
        items
            .iter()
            .map(|item| item.as_ref().map(String::len))
            .collect::<Vec<_>>()
    );
    let results: Vec<_> = (0..12).map(|_| sink.give(300_000)).collect();
    for result in results {
        assert_eq!(
            result
                .result_timeout(Duration::from_secs(20))
                .map(|text| text.len()),
            Ok(300_000)
        );
    }
    assert_eq!(
        sink.give(1)
            .result_timeout(Duration::from_secs(10))
            .as_deref(),
        Ok("g")
    );
    sink.stop().result().unwrap();
}

fn local_cluster() -> Cluster {
    let cluster = Cluster::local(2).expect("a local cluster");
    assert_eq!(
        cluster.backend(),
        crew::cluster::Backend::Nats,
        "these tests need nats-server (CREW_NATS_SERVER)"
    );
    cluster
}

fn create_find_and_call_every_form() {
    let cluster = local_cluster();
    let counter = ActorOptions::<Counter>::new()
        .uid("counter-1")
        .on_cluster(&cluster)
        .spawn(10)
        .unwrap();
    assert_eq!(counter.address(), &Address::cluster());
    assert_eq!(counter.incr(5).result().unwrap(), 15);
    counter.tell_incr(1).unwrap();
    assert_eq!(counter.get().result().unwrap(), 16);
    assert_eq!(counter.try_incr(4).unwrap().result().unwrap(), 20);
    assert_eq!(
        futures::executor::block_on(counter.incr_async(1)).unwrap(),
        21
    );
    futures::executor::block_on(counter.tell_incr_async(2)).unwrap();
    assert_eq!(
        counter.get().result().unwrap(),
        23,
        "the async tell ran, in order"
    );
    let items: Vec<u64> = counter.count(100).map(Result::unwrap).collect();
    assert_eq!(items, (0..100).collect::<Vec<_>>());
    assert!(matches!(
        counter.boom().result(),
        Err(TaskError::Panicked { .. })
    ));
    assert_eq!(counter.get().result().unwrap(), 23, "the actor lives on");

    // Found again by address + uid: the same actor.
    let again = actor::find::<Counter>(&cluster, &Address::cluster(), "counter-1").unwrap();
    assert_eq!(again.incr(1).result().unwrap(), 24);
    assert_eq!(counter.get().result().unwrap(), 24);

    // Tells sent just before the last clone of a reference goes still reach the actor: fire
    // and forget, then drop, is a common ending (the reference's close sends what it holds).
    // Right after a blocking call, whose caller's grace defers the tells' wake-ups.
    let before = counter.get().result().unwrap();
    let teller = actor::find::<Counter>(&cluster, &Address::cluster(), "counter-1").unwrap();
    assert_eq!(teller.get().result().unwrap(), before);
    for _ in 0..50 {
        teller.tell_incr(1).unwrap();
    }
    drop(teller);
    let deadline = Instant::now() + Duration::from_secs(5);
    while counter.get().result().unwrap() != before + 50 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(
        counter.get().result().unwrap(),
        before + 50,
        "every tell reached the actor"
    );

    // A reference read from bytes cannot reach the cluster by itself: a clear error that
    // says to use `find`, not a plain "not found".
    let bytes = postcard::to_allocvec(&counter).unwrap();
    let read: CounterRef = postcard::from_bytes(&bytes).unwrap();
    let error = read.get().result().unwrap_err();
    assert!(
        matches!(error, TaskError::Actor(ActorError::OnCluster { .. })),
        "{error:?}"
    );
    assert!(error.to_string().contains("find"), "{error}");

    // The last clone of a reference dropped while another thread waits on its call (and
    // drives its connection): the wait ends with an error, it does not sleep on for good.
    let found = actor::find::<Counter>(&cluster, &Address::cluster(), "counter-1").unwrap();
    let call = found.sleep(3_000);
    let (sender, receiver) = std::sync::mpsc::channel();
    let waiter = std::thread::spawn(move || sender.send(call.result()));
    std::thread::sleep(Duration::from_millis(300));
    drop(found);
    let result = receiver
        .recv_timeout(Duration::from_secs(20))
        .expect("the waiting caller returned");
    assert!(result.is_err(), "{result:?}");
    waiter.join().unwrap().unwrap();

    // A caller leads the connection through a call longer than the keeper's grace (the
    // keeper then sleeps until callers stop): when it returns, the keeper is woken and drives
    // again, so a call awaited without a driver (an async waiter) still gets its reply.
    counter.sleep(100).result().unwrap();
    let awaited = counter.incr_async(1);
    let (sender, receiver) = std::sync::mpsc::channel();
    let waiter = std::thread::spawn(move || sender.send(futures::executor::block_on(awaited)));
    let value = receiver
        .recv_timeout(Duration::from_secs(20))
        .expect("the keeper drives the connection again after a caller led it");
    assert_eq!(value.unwrap(), 75);
    waiter.join().unwrap().unwrap();

    // Pipelined calls from one caller run in the order sent.
    let handles: Vec<_> = (0..500).map(|_| counter.incr(1)).collect();
    let values: Vec<u64> = handles.into_iter().map(|h| h.result().unwrap()).collect();
    assert_eq!(values, (76..576).collect::<Vec<_>>());

    counter.stop().result().unwrap();
    assert!(matches!(
        actor::find::<Counter>(&cluster, &Address::cluster(), "counter-1"),
        Err(ActorError::NotFound { .. })
    ));
    // The other reference: the actor is gone, the call fails at once.
    let started = Instant::now();
    let error = again.get().result().unwrap_err();
    assert!(
        matches!(error, TaskError::Actor(ActorError::NotFound { .. })),
        "{error:?}"
    );
    assert!(started.elapsed() < Duration::from_secs(2));
}

fn duplicate_uid_and_not_found() {
    let cluster = local_cluster();
    let first = ActorOptions::<Counter>::new()
        .uid("twice")
        .on_cluster(&cluster)
        .spawn(1)
        .unwrap();
    let second = ActorOptions::<Counter>::new()
        .uid("twice")
        .on_cluster(&cluster)
        .spawn(2);
    assert!(
        matches!(second, Err(ActorError::DuplicateUid { ref uid, .. }) if uid == "twice"),
        "{second:?}"
    );
    assert_eq!(
        first.get().result().unwrap(),
        1,
        "the first one is untouched"
    );

    let started = Instant::now();
    assert!(matches!(
        actor::find::<Counter>(&cluster, &Address::cluster(), "nobody"),
        Err(ActorError::NotFound { .. })
    ));
    assert!(matches!(
        actor::find::<Member>(&cluster, &Address::cluster(), "twice"),
        Err(ActorError::WrongType { .. })
    ));
    assert!(started.elapsed() < Duration::from_secs(2), "not a timeout");

    // A failing start hook fails the creation and frees the uid.
    let failed = ActorOptions::<Counter>::new()
        .uid("beast")
        .on_cluster(&cluster)
        .spawn(666);
    assert!(
        matches!(failed, Err(ActorError::StartFailed { .. })),
        "{failed:?}"
    );
    let retry = ActorOptions::<Counter>::new()
        .uid("beast")
        .on_cluster(&cluster)
        .spawn(7)
        .unwrap();
    assert_eq!(retry.get().result().unwrap(), 7);

    // An address no worker serves.
    let nowhere = ActorOptions::<Counter>::new()
        .address("no-such-node")
        .on_cluster(&cluster)
        .spawn(0);
    assert!(
        matches!(nowhere, Err(ActorError::StartFailed { .. })),
        "{nowhere:?}"
    );

    // Killed: queued calls fail, the uid is free again.
    retry.kill().result().unwrap();
    assert!(matches!(
        retry.get().result(),
        Err(TaskError::Actor(ActorError::Stopped { .. }))
    ));
    assert!(matches!(
        actor::find::<Counter>(&cluster, &Address::cluster(), "beast"),
        Err(ActorError::NotFound { .. })
    ));
    first.stop().result().unwrap();
}

fn bounded_mailbox_at_the_caller() {
    let cluster = local_cluster();
    let counter = ActorOptions::<Counter>::new()
        .mailbox(2)
        .on_cluster(&cluster)
        .spawn(0)
        .unwrap();
    let slow = [counter.sleep(300), counter.sleep(300)];
    assert!(matches!(counter.try_get(), Err(ActorError::Full { .. })));
    for handle in slow {
        assert_eq!(handle.result().unwrap(), 300);
    }
    assert_eq!(counter.try_get().unwrap().result().unwrap(), 0);
    counter.stop().result().unwrap();
}

/// A burst of pipelined calls larger than the server's largest message (1 MB) leaves in
/// several messages, also right after a blocking call (when the caller's first send leaves the
/// publisher's wake to the next driver, and the burst piles up until then).
fn a_burst_larger_than_one_message() {
    let cluster = local_cluster();
    let counter = ActorOptions::<Counter>::new()
        .on_cluster(&cluster)
        .spawn(0)
        .unwrap();
    let text = "x".repeat(2_000);
    for _ in 0..3 {
        counter.incr(1).result().unwrap();
        let handles: Vec<_> = (0..1_000).map(|_| counter.measure(text.clone())).collect();
        for handle in handles {
            assert_eq!(
                handle.result_timeout(Duration::from_secs(20)).unwrap(),
                2_000
            );
        }
    }
    counter.stop().result().unwrap();
}

fn stateless_pool_over_a_queue_group() {
    let cluster = local_cluster();
    let pool = ActorOptions::<Member>::new()
        .uid("members")
        .instances(4)
        .on_cluster(&cluster)
        .spawn(())
        .unwrap();
    let handles: Vec<_> = (0..64).map(|_| pool.who(5)).collect();
    let mut seen: Vec<u64> = handles.into_iter().map(|h| h.result().unwrap()).collect();
    seen.sort_unstable();
    seen.dedup();
    assert!(seen.len() >= 2, "calls spread over the members: {seen:?}");
    pool.stop().result().unwrap();
    assert!(matches!(
        actor::find::<Member>(&cluster, &Address::cluster(), "members"),
        Err(ActorError::NotFound { .. })
    ));
}

/// A pool's graceful stop runs after the calls sent before it: no member leaves while calls
/// addressed to the pool are still queued for it.
fn pool_stop_runs_after_calls_sent_before() {
    let cluster = local_cluster();
    let pool = ActorOptions::<Member>::new()
        .uid("draining")
        .instances(3)
        .on_cluster(&cluster)
        .spawn(())
        .unwrap();
    // Many short calls (under the mailbox bound): the caller is still publishing them when
    // `stop()` is called, which is when a stop could overtake them.
    let handles: Vec<_> = (0..1000).map(|_| pool.who(0)).collect();
    let stopped = pool.stop();
    for handle in handles {
        let answer = handle.result();
        assert!(answer.is_ok(), "a call sent before stop(): {answer:?}");
    }
    stopped.result().unwrap();
}

fn worker_killed_fails_calls_in_flight() {
    let server = TestServer::start(ServerConfig::new().token(TOKEN)).expect("nats-server");
    let options = server.client_options().storage(Storage::Memory);
    let cluster = Cluster::connect(options).unwrap();
    let mut worker = Command::new(std::env::current_exe().unwrap())
        .env(WORKER_ENV, server.url())
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("a worker process");
    // Create on that worker once it serves (its name is the address).
    let deadline = Instant::now() + Duration::from_secs(30);
    let counter = loop {
        match ActorOptions::<Counter>::new()
            .address("node-k")
            .uid("doomed")
            .on_cluster(&cluster)
            .spawn(3)
        {
            Ok(counter) => break counter,
            Err(ActorError::StartFailed { .. }) if Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(100));
            }
            Err(error) => panic!("{error}"),
        }
    };
    assert_eq!(counter.incr(1).result().unwrap(), 4);
    let in_flight = counter.sleep(20_000);
    std::thread::sleep(Duration::from_millis(200));
    worker.kill().unwrap();
    worker.wait().unwrap();
    let started = Instant::now();
    let error = in_flight.result().unwrap_err();
    assert!(matches!(error, TaskError::WorkerDied { .. }), "{error:?}");
    assert!(error.to_string().contains("node-k"), "{error}");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    assert!(matches!(
        counter.get().result(),
        Err(TaskError::Actor(ActorError::Stopped { .. }))
    ));
    // The registry entry is stale: found as NotFound (and cleared), and the uid is free.
    assert!(matches!(
        actor::find::<Counter>(&cluster, &Address::new("node-k"), "doomed"),
        Err(ActorError::NotFound { .. })
    ));
}

/// A worker process, SIGKILLed when dropped (a failing test leaves none behind).
struct Worker(std::process::Child);

impl Worker {
    fn kill(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A worker process named `name` on `server`, once it serves actors.
fn start_worker(server: &TestServer, cluster: &Cluster, name: &str) -> Worker {
    let worker = Command::new(std::env::current_exe().unwrap())
        .env(WORKER_ENV, server.url())
        .env(WORKER_NAME_ENV, name)
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("a worker process");
    let worker = Worker(worker);
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        match ActorOptions::<Counter>::new()
            .address(name)
            .on_cluster(cluster)
            .spawn(0)
        {
            Ok(probe) => {
                probe.kill().result().unwrap();
                return worker;
            }
            Err(ActorError::StartFailed { .. }) if Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(100));
            }
            Err(error) => panic!("worker {name}: {error}"),
        }
    }
}

/// A stateless pool with members on two workers, one of them SIGKILLed mid-burst: the calls
/// its member held (running or queued) fail with `WorkerDied`, the others are answered, later
/// calls go to the live members, and the pool still stops; nothing hangs.
fn pool_member_killed_calls_settle() {
    let server = TestServer::start(ServerConfig::new().token(TOKEN)).expect("nats-server");
    let cluster = Cluster::connect(server.client_options().storage(Storage::Memory)).unwrap();
    let mut doomed = start_worker(&server, &cluster, "node-doomed");
    let mut survivor = start_worker(&server, &cluster, "node-survivor");
    let (doomed_pid, survivor_pid) = (doomed.0.id(), survivor.0.id());
    // The queue group places the members: retry until both workers hold one (a pool of four
    // on one worker: 1 in 8).
    let pool = (0..10)
        .find_map(|attempt| {
            let pool = ActorOptions::<Member>::new()
                .uid(format!("split-{attempt}"))
                .instances(4)
                .on_cluster(&cluster)
                .spawn(())
                .unwrap();
            let handles: Vec<_> = (0..48).map(|_| pool.pid_after(0)).collect();
            let pids: Vec<u32> = handles.into_iter().map(|h| h.result().unwrap()).collect();
            if pids.contains(&doomed_pid) && pids.contains(&survivor_pid) {
                return Some(pool);
            }
            pool.stop().result().unwrap();
            None
        })
        .expect("a pool with members on both workers");

    // Mid-burst: long calls running on every member, a burst of short ones queued behind
    // them (pipelined, spread by the queue group) when one worker is SIGKILLed.
    let calls: Vec<_> = (0..16)
        .map(|_| pool.pid_after(800))
        .chain((0..300).map(|_| pool.pid_after(2)))
        .collect();
    std::thread::sleep(Duration::from_millis(200));
    doomed.kill(); // SIGKILL
    let started = Instant::now();
    let (mut died, mut answered) = (0, 0);
    for call in calls {
        match call.result_timeout(Duration::from_secs(20)) {
            Ok(pid) => {
                assert_eq!(pid, survivor_pid, "an answer from the live worker");
                answered += 1;
            }
            Err(TaskError::WorkerDied { worker, .. }) => {
                assert_eq!(worker.node(), Some("node-doomed"), "{worker}");
                died += 1;
            }
            Err(error) => panic!("every call settles, answered or WorkerDied: {error:?}"),
        }
    }
    assert!(died > 0, "some calls were on the killed member");
    assert!(answered > 0, "the live members answered theirs");
    assert!(
        started.elapsed() < Duration::from_secs(15),
        "{:?}",
        started.elapsed()
    );
    for _ in 0..20 {
        let pid = pool.pid_after(0).result_timeout(Duration::from_secs(10));
        assert_eq!(
            pid.unwrap(),
            survivor_pid,
            "later calls go to the live members"
        );
    }
    pool.stop()
        .result_timeout(Duration::from_secs(10))
        .expect("the pool stops without its dead member");
    survivor.kill();
}

/// The CPU time (user + system) a process of this machine has used so far.
fn cpu_time(pid: u32) -> Duration {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    // After the command's `(name)`: state is field 3, utime and stime fields 14 and 15.
    let fields: Vec<&str> = stat[stat.rfind(')').unwrap() + 2..].split(' ').collect();
    let ticks: u64 = fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap();
    Duration::from_millis(ticks * 10)
}

/// The NATS server killed (SIGKILL) under calls of every form, then restarted on the same
/// port: what was in flight fails with `ConnectionLost` within about PROBE_AFTER (never a
/// hang), what is asked while it is down is refused at once and not run, the same reference
/// works again once the server is back (the actor kept its state), the worker neither spins
/// nor stops serving (new creations work), and a `find` says the registry (in memory) was
/// lost while the actor lives.
fn nats_server_killed_and_restarted() {
    let mut server = TestServer::start(ServerConfig::new().token(TOKEN)).expect("nats-server");
    let cluster = Cluster::connect(server.client_options().storage(Storage::Memory)).unwrap();
    let worker = start_worker(&server, &cluster, "node-r");
    let worker_pid = worker.0.id();
    let counter = ActorOptions::<Counter>::new()
        .address("node-r")
        .uid("survivor")
        .on_cluster(&cluster)
        .spawn(1)
        .unwrap();
    assert_eq!(counter.incr(1).result().unwrap(), 2);
    let stopping = ActorOptions::<Counter>::new()
        .address("node-r")
        .uid("stopping")
        .on_cluster(&cluster)
        .spawn(0)
        .unwrap();

    // In flight as the server dies: a stream read slowly, a blocking call, an awaited one, a
    // stop (behind a long call).
    let mut stream = counter.count(10_000_000);
    assert_eq!(stream.next().unwrap().unwrap(), 0);
    let blocking = counter.sleep(3_000);
    let awaited = counter.sleep_async(3_000);
    let (sender, receiver) = std::sync::mpsc::channel();
    let awaiting = std::thread::spawn(move || sender.send(futures::executor::block_on(awaited)));
    let _long = stopping.sleep(3_000);
    let stop = stopping.stop();
    std::thread::sleep(Duration::from_millis(200));
    let cpu_before = cpu_time(worker_pid);
    let killed = Instant::now();
    server.kill();

    let lost = |result: Result<u64, TaskError>, what: &str| match result {
        Err(TaskError::Actor(ActorError::ConnectionLost { message, .. })) => message,
        other => panic!("{what}: expected ConnectionLost, got {other:?}"),
    };
    let message = lost(blocking.result_timeout(Duration::from_secs(10)), "blocking");
    assert!(message.contains("may or may not have run"), "{message}");
    assert!(
        killed.elapsed() < Duration::from_secs(3),
        "failed in bounded time: {:?}",
        killed.elapsed()
    );
    let awaited = receiver
        .recv_timeout(Duration::from_secs(10))
        .expect("the awaited call settled");
    lost(awaited, "awaited");
    awaiting.join().unwrap().unwrap();
    let items = stream.by_ref().take_while(Result::is_ok).count();
    assert!(items < 10_000_000, "the stream ended with an error");
    match stop.result_timeout(Duration::from_secs(10)) {
        Err(TaskError::Actor(ActorError::ConnectionLost { message, .. })) => {
            assert!(message.contains("stop may not have reached"), "{message}");
        }
        other => panic!("a stop in flight: expected ConnectionLost, got {other:?}"),
    }
    assert!(
        killed.elapsed() < Duration::from_secs(5),
        "{:?}",
        killed.elapsed()
    );

    // While it is down: refused at once, not sent (so not run later either).
    let asked = Instant::now();
    let message = lost(counter.get().result(), "a call while down");
    assert!(message.contains("not sent"), "{message}");
    assert!(matches!(
        counter.tell_incr(100),
        Err(ActorError::ConnectionLost { .. })
    ));
    assert!(matches!(
        futures::executor::block_on(counter.incr_async(100)),
        Err(TaskError::Actor(ActorError::ConnectionLost { .. }))
    ));
    assert!(matches!(
        counter.stop().result(),
        Err(TaskError::Actor(ActorError::ConnectionLost { .. }))
    ));
    assert!(
        asked.elapsed() < Duration::from_secs(1),
        "{:?}",
        asked.elapsed()
    );
    std::thread::sleep(Duration::from_secs(1));
    let cpu_down = cpu_time(worker_pid) - cpu_before;
    assert!(
        cpu_down < killed.elapsed() / 2,
        "the worker does not spin while the server is down: {cpu_down:?} of CPU in {:?}",
        killed.elapsed()
    );

    server.restart().expect("the server starts again");
    // The same reference works again once both sides have reconnected; meanwhile calls fail
    // with ConnectionLost, never hang, never `Stopped`.
    let deadline = Instant::now() + Duration::from_secs(20);
    let value = loop {
        match counter.get().result_timeout(Duration::from_secs(5)) {
            Ok(value) => break value,
            Err(TaskError::Actor(ActorError::ConnectionLost { .. }))
                if Instant::now() < deadline =>
            {
                std::thread::sleep(Duration::from_millis(100));
            }
            Err(error) => panic!("after the restart: {error:?}"),
        }
    };
    assert_eq!(value, 2, "the actor kept its state; nothing refused ran");
    assert_eq!(counter.incr(3).result().unwrap(), 5);
    let cpu_idle = cpu_time(worker_pid);
    std::thread::sleep(Duration::from_millis(500));
    assert!(
        cpu_time(worker_pid) - cpu_idle < Duration::from_millis(250),
        "the worker is idle again"
    );

    // The worker serves new creations (the registry bucket, in memory, was made again).
    let deadline = Instant::now() + Duration::from_secs(20);
    let fresh = loop {
        match ActorOptions::<Counter>::new()
            .address("node-r")
            .uid("after-restart")
            .on_cluster(&cluster)
            .spawn(40)
        {
            Ok(fresh) => break fresh,
            Err(error) if Instant::now() < deadline => {
                eprintln!("creation after the restart: {error}");
                std::thread::sleep(Duration::from_millis(200));
            }
            Err(error) => panic!("creation after the restart: {error}"),
        }
    };
    assert_eq!(fresh.incr(2).result().unwrap(), 42);
    let found = actor::find::<Counter>(&cluster, &Address::new("node-r"), "after-restart").unwrap();
    assert_eq!(found.get().result().unwrap(), 42);
    // The registry lost the older actor's entry: `find` says so (it still runs), and its uid
    // is not given to a second actor.
    match actor::find::<Counter>(&cluster, &Address::new("node-r"), "survivor") {
        Err(ActorError::Invalid(message)) => {
            assert!(message.contains("registry"), "{message}");
        }
        other => panic!("expected the lost-entry error, got {:?}", other.map(|_| ())),
    }
    assert!(matches!(
        ActorOptions::<Counter>::new()
            .address("node-r")
            .uid("survivor")
            .on_cluster(&cluster)
            .spawn(0),
        Err(ActorError::DuplicateUid { .. })
    ));
    counter
        .stop()
        .result_timeout(Duration::from_secs(10))
        .unwrap();
    fresh
        .stop()
        .result_timeout(Duration::from_secs(10))
        .unwrap();
    drop(worker);
}

/// A reference dropped once its cluster (and the server) is gone returns at once: its close
/// waited out CLOSE_FLUSH (2 s) for a reconnect that could not come.
fn a_reference_dropped_after_its_server_returns_at_once() {
    let cluster = local_cluster();
    let counter = ActorOptions::<Counter>::new()
        .on_cluster(&cluster)
        .spawn(0)
        .unwrap();
    assert_eq!(counter.incr(1).result().unwrap(), 1);
    counter.stop().result().unwrap();
    drop(cluster);
    std::thread::sleep(Duration::from_millis(100));
    let started = Instant::now();
    drop(counter);
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "{:?}",
        started.elapsed()
    );
}

fn main() {
    crew::init();
    if let Ok(url) = std::env::var(WORKER_ENV) {
        let options = ClusterOptions::new(url)
            .token(TOKEN)
            .storage(Storage::Memory);
        serve_worker(
            WorkerOptions::new(options)
                .name(std::env::var(WORKER_NAME_ENV).unwrap_or_else(|_| "node-k".to_owned()))
                .concurrency(1)
                .isolation(Isolation::Threads),
        )
        .expect("the worker serves");
        return;
    }
    ensure_nats_server();
    process_common::run(&[
        (
            "create_find_and_call_every_form",
            create_find_and_call_every_form,
        ),
        ("duplicate_uid_and_not_found", duplicate_uid_and_not_found),
        (
            "bounded_mailbox_at_the_caller",
            bounded_mailbox_at_the_caller,
        ),
        (
            "a_burst_larger_than_one_message",
            a_burst_larger_than_one_message,
        ),
        (
            "stateless_pool_over_a_queue_group",
            stateless_pool_over_a_queue_group,
        ),
        (
            "pool_stop_runs_after_calls_sent_before",
            pool_stop_runs_after_calls_sent_before,
        ),
        (
            "worker_killed_fails_calls_in_flight",
            worker_killed_fails_calls_in_flight,
        ),
        (
            "pool_member_killed_calls_settle",
            pool_member_killed_calls_settle,
        ),
        (
            "a_call_above_max_payload_fails_at_once",
            a_call_above_max_payload_fails_at_once,
        ),
        (
            "nats_server_killed_and_restarted",
            nats_server_killed_and_restarted,
        ),
        (
            "a_reference_dropped_after_its_server_returns_at_once",
            a_reference_dropped_after_its_server_returns_at_once,
        ),
    ]);
}
