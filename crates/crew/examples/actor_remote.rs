//! Seed 000's xoscar remote actor, ported: an actor created on a cluster node at an address
//! with a uid (`xo.create_actor(MyActor, 1, 2, address="node-a", uid="UniqueActorName")`),
//! then found and called from a *second process* by that address + uid
//! (`ref = await xo.actor_ref("node-a", "UniqueActorName")`; `await ref.method_a(1, 2)`).
//!
//! On one machine, with `nats-server` installed (`scripts/nats-server` installs one):
//! ```text
//! cargo run -p crew --features cluster --example actor_remote
//! ```
//! starts a private `nats-server`, a worker process named `node-a` (this program again, as
//! `actor_remote worker URL`), creates the actor there, runs a second process
//! (`actor_remote client URL`) that finds it and calls it, then stops it. Across machines, run
//! `nats-server -js --auth TOKEN`, then `CREW_NATS_TOKEN=TOKEN actor_remote worker URL` on the
//! node and `CREW_NATS_TOKEN=TOKEN actor_remote client URL` anywhere (after a creation).
//!
//! Prints:
//! ```text
//! created UniqueActorName at node-a
//! [client] method_a(1, 2) = 3
//! [client] method_b(1, 2) = 4 (calls so far: 2)
//! [client] the actor ran in another process: true
//! calls seen by the creator: 3
//! stopped
//! ```

use std::process::{Command, Stdio};

use crew::actor::{self, ActorOptions, Address};
use crew::cluster::{
    serve_worker, Cluster, ClusterOptions, ServerConfig, TestServer, WorkerOptions,
};

const UID: &str = "UniqueActorName";

struct MyActor {
    a: i64,
    b: i64,
    calls: u32,
}

#[crew::actor]
impl MyActor {
    fn new(a: i64, b: i64) -> Self {
        MyActor { a, b, calls: 0 }
    }

    /// `__post_create__`.
    fn on_start(&mut self) -> Result<(), String> {
        eprintln!(
            "[node {}] created with a={}, b={}",
            std::process::id(),
            self.a,
            self.b
        );
        Ok(())
    }

    /// `__pre_destroy__`.
    fn on_stop(&mut self) {
        eprintln!(
            "[node {}] destroyed after {} calls",
            std::process::id(),
            self.calls
        );
    }

    fn method_a(&mut self, arg_1: i64, arg_2: i64) -> i64 {
        self.calls += 1;
        arg_1 + arg_2 * self.a
    }

    fn method_b(&mut self, arg_1: i64, arg_2: i64) -> (i64, u32) {
        self.calls += 1;
        (arg_1 * self.b + arg_2, self.calls)
    }

    fn calls(&mut self) -> u32 {
        self.calls += 1;
        self.calls
    }

    fn pid(&self) -> u32 {
        std::process::id()
    }
}

fn options(url: &str) -> Result<ClusterOptions, String> {
    let token = std::env::var("CREW_NATS_TOKEN")
        .map_err(|_| "set CREW_NATS_TOKEN to the server's token".to_owned())?;
    Ok(ClusterOptions::new(url).token(token))
}

/// The second process: find the actor by address + uid and call it.
fn client(url: &str) -> Result<(), Box<dyn std::error::Error>> {
    let cluster = Cluster::connect(options(url)?)?;
    let actor_ref = actor::find::<MyActor>(&cluster, &Address::new("node-a"), UID)?;
    println!(
        "[client] method_a(1, 2) = {}",
        actor_ref.method_a(1, 2).result()?
    );
    let (b, calls) = actor_ref.method_b(1, 2).result()?;
    println!("[client] method_b(1, 2) = {b} (calls so far: {calls})");
    let pid = actor_ref.pid().result()?;
    println!(
        "[client] the actor ran in another process: {}",
        pid != std::process::id()
    );
    Ok(())
}

/// Everything on this machine: a server, a worker process, the creator, a client process.
fn demo() -> Result<(), Box<dyn std::error::Error>> {
    let token = format!("example-{}", std::process::id());
    let server = TestServer::start(ServerConfig::new().token(token.as_str()))?;
    let url = server.url();
    let me = std::env::current_exe()?;
    let mut worker = Command::new(&me)
        .args(["worker", &url])
        .env("CREW_NATS_TOKEN", &token)
        .stdout(Stdio::null())
        .spawn()?;
    let cluster = Cluster::connect(options_with(&url, &token))?;
    // Create on node-a once its worker serves.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    let created = loop {
        match ActorOptions::<MyActor>::new()
            .address("node-a")
            .uid(UID)
            .on_cluster(&cluster)
            .spawn((1, 2))
        {
            Ok(created) => break created,
            Err(actor::ActorError::StartFailed { .. }) if std::time::Instant::now() < deadline => {
                std::thread::sleep(std::time::Duration::from_millis(100));
            }
            Err(error) => return Err(error.into()),
        }
    };
    println!("created {UID} at node-a");
    let status = Command::new(&me)
        .args(["client", &url])
        .env("CREW_NATS_TOKEN", &token)
        .status()?;
    if !status.success() {
        return Err(format!("the client process failed: {status}").into());
    }
    println!("calls seen by the creator: {}", created.calls().result()?);
    created.stop().result()?;
    println!("stopped");
    worker.kill()?;
    worker.wait()?;
    Ok(())
}

fn options_with(url: &str, token: &str) -> ClusterOptions {
    ClusterOptions::new(url).token(token)
}

fn main() {
    crew::init();
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args
        .iter()
        .map(String::as_str)
        .collect::<Vec<_>>()
        .as_slice()
    {
        [] => demo(),
        ["worker", url] => options(url).map_err(Into::into).and_then(|options| {
            serve_worker(WorkerOptions::new(options).name("node-a").concurrency(1))
                .map(drop)
                .map_err(Into::into)
        }),
        ["client", url] => client(url),
        _ => Err("usage: actor_remote [worker URL | client URL]".into()),
    };
    if let Err(error) = result {
        eprintln!("actor_remote: {error}");
        std::process::exit(1);
    }
}
