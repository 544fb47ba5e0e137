//! crew::cluster against real nats-servers on free loopback ports (`scripts/nats-server`
//! installs one; `CREW_NATS_SERVER` or PATH finds it). `harness = false`: `main` calls
//! `crew::init()` (workers run tasks in worker processes) and doubles as a cluster worker
//! process when `CREW_CLUSTER_TEST_WORKER` is set.

mod process_common;

use std::collections::HashSet;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crew::cluster::{
    attempt, serve_worker, Backend, Cluster, ClusterError, ClusterOptions, DeadLetterId,
    ServerConfig, Storage, TestServer, WorkerOptions,
};
use crew::task::TaskOptions;
use crew::{Executor, MapOptions, TaskError};

#[path = "support/nats_server.rs"]
mod nats_server;
use nats_server::ensure_nats_server;

const WORKER_ENV: &str = "CREW_CLUSTER_TEST_WORKER";
const TOKEN_ENV: &str = "CREW_CLUSTER_TEST_TOKEN";
const ACK_WAIT_ENV: &str = "CREW_CLUSTER_TEST_ACK_WAIT_MS";
const MAX_DELIVER_ENV: &str = "CREW_CLUSTER_TEST_MAX_DELIVER";
const SERVER_PARENT_ENV: &str = "CREW_CLUSTER_TEST_SERVER_PARENT";
const SUBMITTER_ENV: &str = "CREW_CLUSTER_TEST_SUBMITTER";
const HEARTBEAT_ENV: &str = "CREW_CLUSTER_TEST_HEARTBEAT_MS";

#[crew::task]
fn echo_attempt(n: u64) -> (u64, u32) {
    (n, attempt())
}

#[crew::task]
fn square(n: u64) -> u64 {
    n * n
}

#[crew::task]
fn sleepy(ms: u64) -> u64 {
    std::thread::sleep(Duration::from_millis(ms));
    ms
}

#[crew::task]
fn crash(_: u64) -> u64 {
    std::process::abort()
}

#[crew::task]
fn bounce(bytes: crew::process::Bytes) -> crew::process::Bytes {
    crew::process::Bytes(bytes.iter().rev().copied().collect())
}

/// Crashes its process on the first delivery when `n` is 7, on every delivery when `n` is 13.
#[crew::task]
fn flaky(n: u64) -> (u64, u32) {
    if n == 13 || (n == 7 && attempt() == 1) {
        std::process::abort();
    }
    (n, attempt())
}

/// Leaves a file named `n` in `dir`: a trace that the task ran.
#[crew::task]
fn mark((dir, n): (String, u64)) -> u64 {
    std::fs::write(std::path::Path::new(&dir).join(n.to_string()), b"").unwrap();
    n
}

/// The same name as a task of the `cluster_worker` example, with other types.
#[crew::task(name = "demo::changed")]
fn changed(n: u64) -> u64 {
    n + 1
}

fn main() {
    crew::init();
    if let Ok(url) = std::env::var(WORKER_ENV) {
        std::process::exit(run_worker(url));
    }
    if let Ok(url) = std::env::var(SUBMITTER_ENV) {
        submit_and_vanish(url);
    }
    if std::env::var_os(SERVER_PARENT_ENV).is_some() {
        serve_as_server_parent();
    }
    ensure_nats_server();
    process_common::run(&[
        (
            "ten_thousand_tasks_over_two_workers_once_each",
            ten_thousand_tasks_over_two_workers_once_each,
        ),
        ("map_with_chunks", map_with_chunks),
        (
            "wrong_credentials_fail_at_connect",
            wrong_credentials_fail_at_connect,
        ),
        (
            "cancel_before_and_during_a_run",
            cancel_before_and_during_a_run,
        ),
        (
            "deadline_stops_a_running_task",
            deadline_stops_a_running_task,
        ),
        (
            "a_blocked_caller_sees_a_cancel_from_another_thread",
            a_blocked_caller_sees_a_cancel_from_another_thread,
        ),
        ("twenty_megabytes_each_way", twenty_megabytes_each_way),
        (
            "poison_task_ends_in_dead_letters",
            poison_task_ends_in_dead_letters,
        ),
        ("worker_killed_mid_task", worker_killed_mid_task),
        (
            "envelope_members_keep_their_own_fate",
            envelope_members_keep_their_own_fate,
        ),
        (
            "a_task_cancelled_inside_an_envelope_never_runs",
            a_task_cancelled_inside_an_envelope_never_runs,
        ),
        ("server_restarted_mid_run", server_restarted_mid_run),
        (
            "a_gone_submitters_result_is_stored",
            a_gone_submitters_result_is_stored,
        ),
        (
            "a_cluster_dropped_where_it_cannot_block_still_acknowledges",
            a_cluster_dropped_where_it_cannot_block_still_acknowledges,
        ),
        ("worker_drains_on_sigterm", worker_drains_on_sigterm),
        (
            "unknown_and_changed_tasks_are_clear_errors",
            unknown_and_changed_tasks_are_clear_errors,
        ),
        (
            "drop_without_workers_cancels_instead_of_hanging",
            drop_without_workers_cancels_instead_of_hanging,
        ),
        (
            "drop_after_a_killed_worker_waits_a_few_heartbeats",
            drop_after_a_killed_worker_waits_a_few_heartbeats,
        ),
        (
            "status_works_inside_a_done_callback",
            status_works_inside_a_done_callback,
        ),
        (
            "private_server_dies_with_a_killed_parent",
            private_server_dies_with_a_killed_parent,
        ),
        ("server_threads_reach_go", server_threads_reach_go),
    ]);
}

/// The token and ack wait a test passes to this binary's children through the environment.
fn with_env_settings(mut options: ClusterOptions) -> ClusterOptions {
    if let Ok(token) = std::env::var(TOKEN_ENV) {
        options = options.token(token);
    }
    if let Some(ms) = std::env::var(ACK_WAIT_ENV)
        .ok()
        .and_then(|v| v.parse().ok())
    {
        options = options.ack_wait(Duration::from_millis(ms));
    }
    options
}

/// This binary as a cluster worker: two slots, in processes.
fn run_worker(url: String) -> i32 {
    // A test that fails before it stops its worker must not leave it running (holding the
    // test's output pipe, so `cargo test | head` never ends): it exits once its parent is gone.
    let parent = rustix::process::getppid();
    std::thread::spawn(move || loop {
        std::thread::sleep(Duration::from_millis(200));
        if rustix::process::getppid() != parent {
            std::process::exit(1);
        }
    });
    let mut options = with_env_settings(ClusterOptions::new(url));
    if let Some(n) = std::env::var(MAX_DELIVER_ENV)
        .ok()
        .and_then(|v| v.parse().ok())
    {
        options = options.max_deliver(n);
    }
    let mut worker = WorkerOptions::new(options).concurrency(2).prefetch(0);
    if let Some(ms) = std::env::var(HEARTBEAT_ENV)
        .ok()
        .and_then(|v| v.parse().ok())
    {
        worker = worker.heartbeat(Duration::from_millis(ms));
    }
    match serve_worker(worker) {
        Ok(report) => {
            println!("worker report: {report:?}");
            0
        }
        Err(error) => {
            eprintln!("worker failed: {error}");
            1
        }
    }
}

fn server(config: ServerConfig) -> TestServer {
    TestServer::start(config).expect("nats-server starts (scripts/nats-server installs one)")
}

/// A worker child process serving `server`.
fn spawn_worker(server: &TestServer, ack_wait: Duration) -> Child {
    spawn_worker_with(server, ack_wait, 5)
}

fn spawn_worker_with(server: &TestServer, ack_wait: Duration, max_deliver: u32) -> Child {
    let mut command = Command::new(std::env::current_exe().unwrap());
    command
        .env(MAX_DELIVER_ENV, max_deliver.to_string())
        .env(WORKER_ENV, server.url())
        .env(ACK_WAIT_ENV, ack_wait.as_millis().to_string())
        .stdin(Stdio::null())
        .stdout(Stdio::null());
    if let Some(token) = server.token() {
        command.env(TOKEN_ENV, token);
    }
    command.spawn().expect("the worker process starts")
}

fn wait_for_workers(cluster: &Cluster, n: usize) {
    let started = Instant::now();
    while cluster.status().unwrap().workers.len() < n {
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "{n} workers did not report"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn ten_thousand_tasks_over_two_workers_once_each() {
    let cluster = Cluster::local(2).unwrap();
    assert_eq!(cluster.backend(), Backend::Nats);
    let handles: Vec<_> = (0..10_000u64)
        .map(|n| cluster.submit(echo_attempt, n).unwrap())
        .collect();
    let mut seen = HashSet::new();
    for (n, handle) in handles.into_iter().enumerate() {
        let (value, attempt) = handle.result().unwrap();
        assert_eq!(value, n as u64);
        assert_eq!(attempt, 1, "task {n} ran more than once");
        assert!(seen.insert(value));
    }
    assert_eq!(seen.len(), 10_000);
    let status = wait_until_acked(&cluster);
    assert_eq!(status.workers.len(), 2, "{status:?}");
}

/// Waits (at most 10 s) until nothing is queued or in flight, and returns that status. A worker
/// acks a task only after the submitter confirmed its result (or it was stored), and acks go
/// out asynchronously: the last few may still be on their way when every result is in.
fn wait_until_acked(cluster: &Cluster) -> crew::cluster::ClusterStatus {
    let started = Instant::now();
    loop {
        let status = cluster.status().unwrap();
        if (status.queue_depth, status.in_flight) == (0, 0) {
            return status;
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "tasks still pending 10 s after every result arrived: {status:?}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn map_with_chunks() {
    let cluster = Cluster::local(2).unwrap();
    let squares: Vec<u64> = cluster
        .map_with(square, 0..50_000u64, MapOptions::new().chunksize(1_000))
        .map(Result::unwrap)
        .collect();
    assert_eq!(squares.len(), 50_000);
    assert!(squares
        .iter()
        .enumerate()
        .all(|(n, &s)| s == (n as u64) * (n as u64)));
    let unordered: u64 = cluster
        .imap_unordered(square, 0..100u64, 7)
        .map(Result::unwrap)
        .sum();
    assert_eq!(unordered, 328_350);
}

fn expect_fast_error(options: ClusterOptions) -> ClusterError {
    let started = Instant::now();
    let error = Cluster::connect(options).expect_err("the connection must be refused");
    assert!(
        started.elapsed() < Duration::from_secs(8),
        "took {:?}",
        started.elapsed()
    );
    error
}

fn wrong_credentials_fail_at_connect() {
    // Token.
    let server = server(ServerConfig::new().token("right-token"));
    let error = expect_fast_error(ClusterOptions::new(server.url()).token("wrong-token"));
    assert!(matches!(error, ClusterError::Auth { .. }), "{error}");
    assert!(
        !error.to_string().contains("wrong-token"),
        "a secret in {error}"
    );
    // A credential written into the URL reaches neither the error nor the options' Debug.
    let in_url = ClusterOptions::new(server.url().replace("://", "://bob:url-secret@"));
    assert!(!format!("{in_url:?}").contains("url-secret"), "{in_url:?}");
    let error = expect_fast_error(in_url);
    assert!(matches!(error, ClusterError::Auth { .. }), "{error}");
    assert!(
        !format!("{error} {error:?}").contains("url-secret"),
        "{error:?}"
    );
    assert!(error.to_string().contains("127.0.0.1"), "{error}");
    let good = Cluster::connect(ClusterOptions::new(server.url()).token("right-token")).unwrap();
    assert_eq!(good.backend(), Backend::Nats);
    drop(good);
    // Nkey: the server knows one user key, the client signs with another.
    let user = nkeys::KeyPair::new_user();
    let other = nkeys::KeyPair::new_user();
    let server = server_with(ServerConfig::new().nkey(user.public_key()));
    let error = expect_fast_error(ClusterOptions::new(server.url()).nkey(other.seed().unwrap()));
    assert!(matches!(error, ClusterError::Auth { .. }), "{error}");
    Cluster::connect(ClusterOptions::new(server.url()).nkey(user.seed().unwrap())).unwrap();
    // A plain client against a TLS-only server.
    let dir = tempfile::tempdir().unwrap();
    let (ca, cert, key) = certificates(dir.path());
    let server = server_with(ServerConfig::new().tls(&cert, &key, None));
    let plain = server.url().replace("tls://", "nats://");
    let error = expect_fast_error(ClusterOptions::new(plain));
    assert!(
        matches!(
            error,
            ClusterError::Tls { .. } | ClusterError::Connect { .. }
        ),
        "{error}"
    );
    assert!(error.to_string().to_lowercase().contains("tls"), "{error}");
    Cluster::connect(ClusterOptions::new(server.url()).tls_root(&ca)).unwrap();
}

fn server_with(config: ServerConfig) -> TestServer {
    server(config)
}

/// A CA and a server certificate for 127.0.0.1 signed by it: (ca.pem, cert.pem, key.pem).
fn certificates(
    dir: &std::path::Path,
) -> (std::path::PathBuf, std::path::PathBuf, std::path::PathBuf) {
    let ca_key = rcgen::KeyPair::generate().unwrap();
    let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    ca_params.key_usages = vec![
        rcgen::KeyUsagePurpose::KeyCertSign,
        rcgen::KeyUsagePurpose::CrlSign,
        rcgen::KeyUsagePurpose::DigitalSignature,
    ];
    ca_params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "crew test CA");
    let ca = ca_params.self_signed(&ca_key).unwrap();
    let key = rcgen::KeyPair::generate().unwrap();
    let mut params =
        rcgen::CertificateParams::new(vec!["127.0.0.1".to_owned(), "localhost".to_owned()])
            .unwrap();
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "crew test server");
    let ca_pem = ca.pem();
    let issuer = rcgen::Issuer::new(ca_params, ca_key);
    let cert = params.signed_by(&key, &issuer).unwrap();
    let paths = (
        dir.join("ca.pem"),
        dir.join("cert.pem"),
        dir.join("key.pem"),
    );
    std::fs::write(&paths.0, ca_pem).unwrap();
    std::fs::write(&paths.1, cert.pem()).unwrap();
    std::fs::write(&paths.2, key.serialize_pem()).unwrap();
    paths
}

fn cancel_before_and_during_a_run() {
    let cluster = Cluster::local(1).unwrap();
    // The one worker is busy with a long task; the next waits in the queue.
    let running = cluster.submit(sleepy, 30_000).unwrap();
    std::thread::sleep(Duration::from_millis(500));
    let queued = cluster.submit(echo_attempt, 7).unwrap();
    std::thread::sleep(Duration::from_millis(100));
    assert!(queued.cancel());
    assert_eq!(queued.result(), Err(TaskError::Cancelled));
    let started = Instant::now();
    assert!(running.cancel());
    assert_eq!(running.result(), Err(TaskError::Cancelled));
    // The worker's process was killed: the slot is free again well before 30 s.
    let next = cluster.submit(square, 12).unwrap();
    assert_eq!(next.result_timeout(Duration::from_secs(10)), Ok(144));
    assert!(started.elapsed() < Duration::from_secs(10));
    let status = cluster.status().unwrap();
    assert_eq!(
        status.queue_depth, 0,
        "the cancelled task is gone from the queue: {status:?}"
    );
}

fn deadline_stops_a_running_task() {
    let cluster = Cluster::local(1).unwrap();
    let started = Instant::now();
    let handle = cluster
        .submit_with(
            sleepy,
            30_000,
            TaskOptions::new().timeout(Duration::from_millis(700)),
        )
        .unwrap();
    assert!(matches!(
        handle.result(),
        Err(TaskError::DeadlineExceeded { .. })
    ));
    assert!(started.elapsed() < Duration::from_secs(5));
    // The worker is free again: its process was stopped.
    assert_eq!(
        cluster
            .submit(square, 3)
            .unwrap()
            .result_timeout(Duration::from_secs(10)),
        Ok(9)
    );
}

/// A caller blocked on a handle drives the cluster's runtime itself; a `cancel()` from another
/// thread settles the handle there, and the blocked caller must see it at once.
fn a_blocked_caller_sees_a_cancel_from_another_thread() {
    let cluster = Cluster::local(1).unwrap();
    let handle = cluster.submit(sleepy, 30_000).unwrap();
    let started = Instant::now();
    std::thread::scope(|scope| {
        scope.spawn(|| {
            std::thread::sleep(Duration::from_millis(300));
            assert!(handle.cancel());
        });
        handle.wait();
    });
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "the waiter stayed blocked {:?} after the cancel",
        started.elapsed()
    );
    assert_eq!(handle.result(), Err(TaskError::Cancelled));
    // The worker is free again: its process was stopped.
    assert_eq!(
        cluster
            .submit(square, 5)
            .unwrap()
            .result_timeout(Duration::from_secs(10)),
        Ok(25)
    );
}

fn twenty_megabytes_each_way() {
    let cluster = Cluster::local(1).unwrap();
    let bytes: Vec<u8> = (0..20u32 << 20).map(|i| (i % 251) as u8).collect();
    let handle = cluster
        .submit(bounce, crew::process::Bytes(bytes.clone()))
        .unwrap();
    let back = handle.result_timeout(Duration::from_secs(60)).unwrap();
    assert_eq!(back.len(), bytes.len());
    assert!(back.iter().rev().eq(bytes.iter()));
}

/// A submitter and one worker (this binary) that deliver a task three times at most, 2 s apart.
fn three_deliveries(server: &TestServer) -> (Cluster, Child) {
    let options = ClusterOptions::new(server.url())
        .storage(Storage::Memory)
        .max_deliver(3)
        .ack_wait(Duration::from_secs(2));
    let cluster = Cluster::connect(options).unwrap();
    (
        cluster,
        spawn_worker_with(server, Duration::from_secs(2), 3),
    )
}

fn poison_task_ends_in_dead_letters() {
    let server = server(ServerConfig::new());
    let (cluster, mut child) = three_deliveries(&server);
    let handle = cluster.submit(crash, 1).unwrap();
    let error = handle.result_timeout(Duration::from_secs(30)).unwrap_err();
    assert!(error.to_string().contains("dead-letter"), "{error}");
    let letters = cluster.dead_letters().unwrap();
    assert_eq!(letters.len(), 1, "{letters:?}");
    assert_eq!(letters[0].deliveries, 3);
    assert!(letters[0].task.ends_with("crash"), "{letters:?}");
    assert_eq!(cluster.status().unwrap().dead_letters, 1);
    // Requeued, it runs again, fails again and comes back as a new dead letter.
    let first = letters[0].id;
    cluster.requeue(&first).unwrap();
    assert!(matches!(
        cluster.requeue(&first),
        Err(ClusterError::NotFound { .. })
    ));
    wait_for_a_new_dead_letter(&cluster, first);
    stop(&mut child);
}

/// Waits (30 s at most) until the one dead letter is a new one, not `requeued`, after its third
/// delivery: a requeued poison task that failed again.
fn wait_for_a_new_dead_letter(cluster: &Cluster, requeued: DeadLetterId) {
    let started = Instant::now();
    loop {
        let letters = cluster.dead_letters().unwrap();
        if letters.len() == 1 && letters[0].id != requeued {
            assert_eq!(letters[0].deliveries, 3);
            return;
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "requeued task not dead again: {letters:?}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn stop(child: &mut Child) {
    let _ = rustix::process::kill_process(
        rustix::process::Pid::from_raw(child.id() as i32).unwrap(),
        rustix::process::Signal::TERM,
    );
    let _ = child.wait();
}

/// A submitter on `server` with an in-memory store and this ack wait (the workers' too).
fn memory_cluster(server: &TestServer, ack_wait: Duration) -> Cluster {
    let options = server
        .client_options()
        .storage(Storage::Memory)
        .ack_wait(ack_wait);
    Cluster::connect(options).unwrap()
}

fn worker_killed_mid_task() {
    let server = server(ServerConfig::new().token("t"));
    let ack_wait = Duration::from_millis(1_000);
    let cluster = memory_cluster(&server, ack_wait);
    let mut first = spawn_worker(&server, ack_wait);
    let mut second = spawn_worker(&server, ack_wait);
    wait_for_workers(&cluster, 2);
    let handles: Vec<_> = (0..20)
        .map(|_| cluster.submit(sleepy, 300).unwrap())
        .collect();
    std::thread::sleep(Duration::from_millis(450));
    first.kill().unwrap();
    first.wait().unwrap();
    for handle in handles {
        assert_eq!(handle.result_timeout(Duration::from_secs(30)), Ok(300));
    }
    wait_until_acked(&cluster);
    stop(&mut second);
}

/// Handles of tasks submitted from a done-callback, on the cluster's I/O thread: the publisher
/// finds them all queued at once and sends them in one envelope.
type Burst<T> = std::sync::mpsc::Receiver<Vec<crew::TaskHandle<T>>>;

fn envelope_members_keep_their_own_fate() {
    let server = server(ServerConfig::new());
    let (cluster, mut child) = three_deliveries(&server);
    let cluster = std::sync::Arc::new(cluster);
    // Its first result tells the submitter that `flaky` runs briefly: envelopes from then on.
    let first = cluster.submit(flaky, 100).unwrap();
    let (sender, burst): (_, Burst<(u64, u32)>) = std::sync::mpsc::channel();
    let inner = cluster.clone();
    first.add_done_callback(move |_| {
        let handles = (0..16u64)
            .map(|n| inner.submit(flaky, n).unwrap())
            .collect();
        let _ = sender.send(handles);
    });
    assert_eq!(first.result_timeout(Duration::from_secs(20)), Ok((100, 1)));
    let handles = burst.recv_timeout(Duration::from_secs(20)).unwrap();
    for (n, handle) in handles.into_iter().enumerate() {
        let result = handle.result_timeout(Duration::from_secs(30));
        match n {
            // Its process died once: the envelope ran again, and so did it.
            7 => assert!(
                matches!(result, Ok((7, attempt)) if attempt >= 2),
                "{result:?}"
            ),
            // Poison: on the last delivery it goes to the dead letters alone.
            13 => {
                let error = result.unwrap_err();
                assert!(error.to_string().contains("dead-letter"), "{error}");
            }
            // The others shared the envelope with task 13: three deliveries, each run seen
            // by the task as its attempt, and one result each.
            _ => assert_eq!(result, Ok((n as u64, 3)), "task {n}"),
        }
    }
    let letters = cluster.dead_letters().unwrap();
    assert_eq!(letters.len(), 1, "{letters:?}");
    assert_eq!(letters[0].deliveries, 3);
    assert!(letters[0].task.ends_with("flaky"), "{letters:?}");
    // The dead letter holds task 13 alone: requeued, it fails on its own and comes back.
    let id = letters[0].id;
    cluster.requeue(&id).unwrap();
    wait_for_a_new_dead_letter(&cluster, id);
    wait_until_acked(&cluster);
    stop(&mut child);
}

fn a_task_cancelled_inside_an_envelope_never_runs() {
    let server = server(ServerConfig::new().token("t"));
    let cluster = std::sync::Arc::new(memory_cluster(&server, Duration::from_secs(10)));
    // Two slots, no prefetch: tasks wait in the queue while both run something.
    let mut child = spawn_worker(&server, Duration::from_secs(10));
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().to_str().unwrap().to_owned();
    assert_eq!(
        cluster
            .submit(mark, (path.clone(), 100))
            .unwrap()
            .result_timeout(Duration::from_secs(20)),
        Ok(100)
    );
    let short = cluster.submit(sleepy, 300).unwrap();
    let long = cluster.submit(sleepy, 2_500).unwrap();
    let queued = cluster.submit(sleepy, 2_500).unwrap(); // takes `short`'s slot
    let (sender, burst): (_, Burst<u64>) = std::sync::mpsc::channel();
    let inner = cluster.clone();
    let tasks_path = path.clone();
    short.add_done_callback(move |_| {
        let handles = (0..8u64)
            .map(|n| inner.submit(mark, (tasks_path.clone(), n)).unwrap())
            .collect();
        let _ = sender.send(handles);
    });
    let handles = burst.recv_timeout(Duration::from_secs(20)).unwrap();
    // Both slots are busy for about two more seconds: the envelope waits in the queue.
    assert!(handles[5].cancel());
    for (n, handle) in handles.into_iter().enumerate() {
        let result = handle.result_timeout(Duration::from_secs(30));
        if n == 5 {
            assert_eq!(result, Err(TaskError::Cancelled));
        } else {
            assert_eq!(result, Ok(n as u64));
        }
    }
    assert_eq!(long.result(), Ok(2_500));
    assert_eq!(queued.result(), Ok(2_500));
    wait_until_acked(&cluster);
    let ran: HashSet<String> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|entry| entry.unwrap().file_name().into_string().unwrap())
        .collect();
    let expected: HashSet<String> = ["0", "1", "2", "3", "4", "6", "7", "100"]
        .map(String::from)
        .into();
    assert_eq!(ran, expected, "task 5 was cancelled before its delivery");
    stop(&mut child);
}

fn server_restarted_mid_run() {
    let mut server = server(ServerConfig::new().token("t"));
    let ack_wait = Duration::from_millis(1_000);
    let options = server
        .client_options()
        .storage(Storage::File)
        .ack_wait(ack_wait);
    let cluster = Cluster::connect(options).unwrap();
    let mut worker = spawn_worker(&server, ack_wait);
    wait_for_workers(&cluster, 1);
    let handles: Vec<_> = (0..300u64)
        .map(|n| {
            cluster
                .submit_with(sleepy, n % 3, TaskOptions::new())
                .unwrap()
        })
        .collect();
    std::thread::sleep(Duration::from_millis(200));
    server.restart().unwrap();
    let more: Vec<_> = (0..100u64)
        .map(|n| cluster.submit(square, n).unwrap())
        .collect();
    for (n, handle) in handles.into_iter().enumerate() {
        assert_eq!(
            handle.result_timeout(Duration::from_secs(60)),
            Ok(n as u64 % 3)
        );
    }
    for (n, handle) in more.into_iter().enumerate() {
        assert_eq!(
            handle.result_timeout(Duration::from_secs(60)),
            Ok((n * n) as u64)
        );
    }
    stop(&mut worker);
}

/// This binary as a submitter that disappears: it submits one `sleepy(300)`, waits until a
/// worker holds it, and exits without a word to the server (no drop, no flush).
fn submit_and_vanish(url: String) -> ! {
    // The deployment's consumer settings (ack wait): whoever connects last sets them.
    let options = with_env_settings(ClusterOptions::new(url).storage(Storage::Memory));
    let cluster = Cluster::connect(options).unwrap();
    let handle = cluster.submit(sleepy, 300).unwrap();
    let started = Instant::now();
    while cluster.status().unwrap().in_flight == 0 && started.elapsed() < Duration::from_secs(10) {
        std::thread::sleep(Duration::from_millis(10));
    }
    std::mem::forget((handle, cluster));
    std::process::exit(0)
}

/// A submitter gone while its task runs: the task is acknowledged only once its result is
/// stored in the results stream (redelivered first if its unconfirmed result found nobody).
fn a_gone_submitters_result_is_stored() {
    let server = server(ServerConfig::new().token("t"));
    let ack_wait = Duration::from_millis(1_000);
    let cluster = memory_cluster(&server, ack_wait);
    let mut worker = spawn_worker(&server, ack_wait);
    wait_for_workers(&cluster, 1);
    let status = Command::new(std::env::current_exe().unwrap())
        .env(SUBMITTER_ENV, server.url())
        .env(TOKEN_ENV, server.token().unwrap())
        .env(ACK_WAIT_ENV, ack_wait.as_millis().to_string())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .status()
        .unwrap();
    assert!(status.success());
    let started = Instant::now();
    let stored = loop {
        let status = cluster.status().unwrap();
        let stored = results_stored(&server);
        if (status.queue_depth, status.in_flight) == (0, 0) && stored > 0 {
            break stored;
        }
        assert!(
            started.elapsed() < Duration::from_secs(15),
            "the gone submitter's task was not stored and acknowledged: {status:?}, {stored} stored"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(stored, 1, "one result per task");
    stop(&mut worker);
}

/// A settled task's acknowledgement is deferred (it rides the next publish); a cluster dropped
/// in async code, or in a done-callback on the thread that drives its runtime, must still send
/// it, or the task runs again after `ack_wait`.
fn a_cluster_dropped_where_it_cannot_block_still_acknowledges() {
    let server = server(ServerConfig::new().token("t"));
    let ack_wait = Duration::from_secs(30);
    let observer = memory_cluster(&server, ack_wait);
    let mut worker = spawn_worker(&server, ack_wait);
    wait_for_workers(&observer, 1);
    let acknowledged = |how: &str| {
        let started = Instant::now();
        loop {
            let status = observer.status().unwrap();
            if (status.queue_depth, status.in_flight) == (0, 0) {
                break;
            }
            assert!(
                started.elapsed() < Duration::from_secs(10),
                "a cluster dropped {how} left its task unacknowledged: {status:?}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    };

    // In async code (`#[tokio::main]`'s end of `main`).
    let cluster = memory_cluster(&server, ack_wait);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async move {
        assert_eq!(cluster.submit(square, 7).unwrap().await.unwrap(), 49);
        drop(cluster);
    });
    acknowledged("in async code");

    // In a done-callback, run by the caller that drives the runtime.
    let cluster = memory_cluster(&server, ack_wait);
    let handle = cluster.submit(square, 8).unwrap();
    let (dropped, was_dropped) = std::sync::mpsc::channel();
    let held = std::sync::Mutex::new(Some(cluster));
    handle.add_done_callback(move |_| {
        drop(held.lock().unwrap().take());
        let _ = dropped.send(());
    });
    assert_eq!(handle.result().unwrap(), 64);
    was_dropped.recv_timeout(Duration::from_secs(10)).unwrap();
    acknowledged("in a done-callback");
    stop(&mut worker);
}

/// Messages in the deployment's results stream (`CREW_RESULTS`).
fn results_stored(server: &TestServer) -> u64 {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let client = async_nats::ConnectOptions::with_token(server.token().unwrap().to_owned())
            .connect(server.url())
            .await
            .unwrap();
        let js = async_nats::jetstream::new(client);
        let mut stream = js.get_stream("CREW_RESULTS").await.unwrap();
        stream.info().await.unwrap().state.messages
    })
}

fn worker_drains_on_sigterm() {
    let server = server(ServerConfig::new().token("t"));
    let cluster = Cluster::connect(server.client_options().storage(Storage::Memory)).unwrap();
    let mut worker = spawn_worker(&server, Duration::from_secs(30));
    wait_for_workers(&cluster, 1);
    let handles: Vec<_> = (0..2)
        .map(|_| cluster.submit(sleepy, 1_000).unwrap())
        .collect();
    std::thread::sleep(Duration::from_millis(300));
    let _ = rustix::process::kill_process(
        rustix::process::Pid::from_raw(worker.id() as i32).unwrap(),
        rustix::process::Signal::TERM,
    );
    let status = worker.wait().unwrap();
    assert!(
        status.success(),
        "the worker exits 0 after draining: {status}"
    );
    for handle in handles {
        assert_eq!(handle.result_timeout(Duration::from_secs(5)), Ok(1_000));
    }
    assert!(cluster.status().unwrap().workers.is_empty());
}

/// The `cluster_worker` example, built next to this test (`cargo test --examples` or
/// `cargo build --example cluster_worker --features cluster`).
fn example_worker() -> std::path::PathBuf {
    let exe = std::env::current_exe().unwrap();
    let path = exe
        .parent()
        .unwrap()
        .parent()
        .unwrap()
        .join("examples/cluster_worker");
    assert!(
        path.exists(),
        "{} is missing: build it with `cargo build -p crew --features cluster --example cluster_worker`",
        path.display()
    );
    path
}

fn unknown_and_changed_tasks_are_clear_errors() {
    let server = server(ServerConfig::new().token("t"));
    let cluster = Cluster::connect(server.client_options().storage(Storage::Memory)).unwrap();
    let mut worker = Command::new(example_worker())
        .args([server.url().as_str(), "t"])
        .stdin(Stdio::null())
        .spawn()
        .unwrap();
    wait_for_workers(&cluster, 1);
    let unknown = cluster
        .submit(square, 3)
        .unwrap()
        .result_timeout(Duration::from_secs(20));
    match unknown {
        Err(TaskError::UnknownTask { task }) => assert!(task.ends_with("square"), "{task}"),
        other => panic!("expected UnknownTask, got {other:?}"),
    }
    let changed = cluster
        .submit(changed, 3)
        .unwrap()
        .result_timeout(Duration::from_secs(20));
    match changed {
        Err(TaskError::Incompatible { task, message }) => {
            assert_eq!(task, "demo::changed");
            assert!(
                message.contains("u32") && message.contains("u64"),
                "{message}"
            );
        }
        other => panic!("expected Incompatible, got {other:?}"),
    }
    stop(&mut worker);
}

fn drop_without_workers_cancels_instead_of_hanging() {
    let server = server(ServerConfig::new());
    let cluster = Cluster::connect(server.client_options()).unwrap();
    let handle = cluster.submit(square, 3).unwrap();
    let (dropped, done) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        drop(cluster);
        let _ = dropped.send(());
    });
    done.recv_timeout(Duration::from_secs(20))
        .expect("dropping a cluster without workers returns");
    assert_eq!(handle.result(), Err(TaskError::Cancelled));
    // The task left the queue: a worker arriving later does not run it for nobody.
    let observer = Cluster::connect(server.client_options()).unwrap();
    assert_eq!(observer.status().unwrap().queue_depth, 0);
}

/// A worker killed (no drain: its last heartbeat stays in the bucket) while it held the only
/// task: dropping the cluster gives up after a few of the worker's heartbeat intervals (100 ms
/// here), not after a fixed 30 s.
fn drop_after_a_killed_worker_waits_a_few_heartbeats() {
    let server = server(ServerConfig::new().token("t"));
    let ack_wait = Duration::from_millis(500);
    let cluster = memory_cluster(&server, ack_wait);
    let mut command = Command::new(std::env::current_exe().unwrap());
    command
        .env(WORKER_ENV, server.url())
        .env(TOKEN_ENV, server.token().unwrap())
        .env(ACK_WAIT_ENV, ack_wait.as_millis().to_string())
        .env(HEARTBEAT_ENV, "100")
        .stdin(Stdio::null())
        .stdout(Stdio::null());
    let mut worker = command.spawn().unwrap();
    wait_for_workers(&cluster, 1);
    let handle = cluster.submit(sleepy, 20_000).unwrap();
    let started = Instant::now();
    while cluster.status().unwrap().in_flight == 0 {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "the worker took no task"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    worker.kill().unwrap();
    worker.wait().unwrap();
    let killed = Instant::now();
    let (dropped, done) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        drop(cluster);
        let _ = dropped.send(());
    });
    done.recv_timeout(Duration::from_secs(40))
        .expect("dropping the cluster returns");
    let waited = killed.elapsed();
    assert!(
        waited < Duration::from_secs(10),
        "the drop waited {waited:?} for a worker killed with a 100 ms heartbeat"
    );
    assert_eq!(handle.result(), Err(TaskError::Cancelled));
}

fn status_works_inside_a_done_callback() {
    let cluster = std::sync::Arc::new(Cluster::local(1).unwrap());
    assert_eq!(cluster.backend(), Backend::Nats);
    let (sender, statuses) = std::sync::mpsc::channel();
    let handle = cluster.submit(square, 4).unwrap();
    let inner = cluster.clone();
    handle.add_done_callback(move |result| {
        let workers = inner.status().map(|status| status.workers.len());
        let _ = sender.send((result.clone(), workers));
    });
    let (result, workers) = statuses
        .recv_timeout(Duration::from_secs(20))
        .expect("the callback ran to its end (status() did not panic)");
    assert_eq!(result, Ok(16));
    assert_eq!(workers, Ok(1));
}

/// The child of `private_server_dies_with_a_killed_parent`: starts a private server from a
/// thread that ends at once, prints the server's pid, and waits to be killed.
fn serve_as_server_parent() -> ! {
    let server = std::thread::spawn(|| server(ServerConfig::new()))
        .join()
        .unwrap();
    println!("{}", server.pid().unwrap());
    loop {
        std::thread::sleep(Duration::from_secs(1));
    }
}

fn alive(pid: u32) -> bool {
    // A zombie (reaped later by whoever inherited it) is dead.
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|stat| {
        !stat
            .rsplit(')')
            .next()
            .unwrap_or("")
            .trim_start()
            .starts_with('Z')
    })
}

fn private_server_dies_with_a_killed_parent() {
    use std::io::BufRead;
    let mut parent = Command::new(std::env::current_exe().unwrap())
        .env(SERVER_PARENT_ENV, "1")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    std::io::BufReader::new(parent.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let pid: u32 = line
        .trim()
        .parse()
        .expect("the child prints the server's pid");
    // The thread that started it has ended: the server still runs.
    std::thread::sleep(Duration::from_millis(200));
    assert!(alive(pid), "the server died with its starting thread");
    parent.kill().unwrap(); // SIGKILL: no destructor runs
    parent.wait().unwrap();
    let started = Instant::now();
    while alive(pid) {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "nats-server {pid} outlived its SIGKILLed parent"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// `ServerConfig::threads` is the server's `GOMAXPROCS`.
fn server_threads_reach_go() {
    let environment = |server: &TestServer| {
        let pid = server.pid().expect("the server runs");
        let bytes = std::fs::read(format!("/proc/{pid}/environ")).unwrap();
        bytes
            .split(|&b| b == 0)
            .filter_map(|entry| std::str::from_utf8(entry).ok())
            .find_map(|entry| entry.strip_prefix("GOMAXPROCS=").map(str::to_owned))
    };
    let one = server(ServerConfig::new().threads(1));
    assert_eq!(environment(&one).as_deref(), Some("1"));
    let cluster = Cluster::connect(one.client_options().storage(Storage::Memory)).unwrap();
    assert_eq!(cluster.backend(), Backend::Nats);
    if std::env::var_os("GOMAXPROCS").is_none() {
        let default = server(ServerConfig::new());
        assert_eq!(environment(&default), None);
    }
}
