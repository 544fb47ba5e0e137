//! The floors under `crew-cluster`'s latency row: what NATS alone costs for one message there
//! and back, on a private server configured as [`Cluster::local`] configures its own (half
//! the CPUs for its goroutines, JetStream in memory), with `async-nats` and nothing of crew's.
//!
//! * `nats-request`: a core request/reply round trip. A responder on a connection and runtime
//!   thread of its own (as a local worker has) answers at once; the requester drives its own
//!   connection (its thread sleeps in the runtime's poll, as a blocked `Cluster` caller does).
//! * `nats-jetstream` (or `nats-jetstream-file`, the stream on disk): a task's path through
//!   the server without crew's work: published to a work-queue stream (its publish
//!   acknowledgement not awaited before the answer, as crew's submitter does), delivered to a
//!   pull consumer that keeps a request outstanding, answered by a plain publish to the
//!   requester's inbox, acknowledged.
//!
//! Latency rows only: they say how much of crew's round trip is the server's.
//!
//! [`Cluster::local`]: crew::cluster::Cluster::local

use std::cell::RefCell;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use async_nats::jetstream::{self, consumer, stream};
use bytes::Bytes;
use crew::cluster::{ServerConfig, TestServer};
use futures::StreamExt;

use super::{ClusterConfig, ClusterMeasurement, Figures, Key};
use crate::harness::Measurement;

/// The floors' implementation names, as in the table.
pub(crate) const FLOORS: [&str; 3] = ["nats-request", "nats-jetstream", "nats-jetstream-file"];

const TOKEN: &str = "crew-bench-floor";

/// One floor: its server, the responder's runtime (on a thread of its own) and the requester's.
struct Floor {
    requester: tokio::runtime::Runtime,
    client: async_nats::Client,
    js: jetstream::Context,
    inbox: async_nats::Subscriber,
    /// Runs the responder until the floor is dropped.
    _responder: tokio::runtime::Runtime,
    /// Dropped last: the server outlives its clients.
    _server: TestServer,
}

/// The latency row of one floor, started at its first measurement and kept for the run.
pub(crate) fn measurements(config: &ClusterConfig) -> Vec<ClusterMeasurement<'_>> {
    FLOORS
        .iter()
        .map(|&implementation| {
            let floor: RefCell<Option<Result<Floor, String>>> = RefCell::new(None);
            let n = config.latency_tasks;
            let key = Key {
                case: "latency",
                implementation,
                n,
            };
            Measurement::new(key, move || {
                let mut slot = floor.borrow_mut();
                let floor = slot
                    .get_or_insert_with(|| start(implementation).map_err(|e| format!("{e:#}")))
                    .as_mut()
                    .map_err(|reason| anyhow::anyhow!("{reason}"))?;
                floor.measure(implementation, n)
            })
        })
        .collect()
}

fn start(implementation: &str) -> anyhow::Result<Floor> {
    crate::nats_server::find_or_install_nats_server().map_err(anyhow::Error::msg)?;
    // As `Cluster::local`: half the CPUs for the server's goroutines unless GOMAXPROCS says.
    let mut config = ServerConfig::new().token(TOKEN);
    if std::env::var_os("GOMAXPROCS").is_none() {
        let threads = std::thread::available_parallelism().map_or(1, |n| (n.get() / 2).max(1));
        config = config.threads(threads);
    }
    let server = TestServer::start(config).context("starting nats-server")?;
    let url = server.url();
    let requester = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let responder = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()?;
    let connect = |url: String| async move {
        async_nats::ConnectOptions::with_token(TOKEN.to_owned())
            .connect(url)
            .await
    };
    let serving = connect(url.clone());
    let own = responder.block_on(serving)?;
    let (client, inbox) = requester.block_on(async {
        let client = connect(url).await?;
        let inbox = client.subscribe("floor.inbox").await?;
        anyhow::Ok((client, inbox))
    })?;
    let js = {
        let _inside = requester.enter(); // a JetStream context starts a task
        jetstream::new(client.clone())
    };
    match implementation {
        "nats-request" => {
            let mut echo = responder.block_on(async {
                let echo = own.subscribe("floor.echo").await?;
                own.flush().await?; // subscribed at the server before the first request
                anyhow::Ok(echo)
            })?;
            responder.spawn(async move {
                while let Some(message) = echo.next().await {
                    if let Some(reply) = message.reply {
                        let _ = own.publish(reply, message.payload).await;
                    }
                }
            });
        }
        _ => {
            let storage = if implementation.ends_with("-file") {
                stream::StorageType::File
            } else {
                stream::StorageType::Memory
            };
            let worker_js = {
                let _inside = responder.enter();
                jetstream::new(own.clone())
            };
            let mut messages = responder.block_on(async move {
                let tasks = worker_js
                    .get_or_create_stream(stream::Config {
                        name: "FLOOR".to_owned(),
                        subjects: vec!["floor.task".to_owned()],
                        retention: stream::RetentionPolicy::WorkQueue,
                        storage,
                        duplicate_window: Duration::from_secs(120),
                        ..Default::default()
                    })
                    .await?;
                let consumer = tasks
                    .get_or_create_consumer(
                        "w",
                        consumer::pull::Config {
                            durable_name: Some("w".to_owned()),
                            ack_policy: consumer::AckPolicy::Explicit,
                            ack_wait: Duration::from_secs(30),
                            max_ack_pending: 1_000,
                            ..Default::default()
                        },
                    )
                    .await?;
                let messages = consumer
                    .stream()
                    .max_messages_per_batch(17)
                    .expires(Duration::from_secs(10))
                    .messages()
                    .await?;
                anyhow::Ok(messages)
            })?;
            responder.spawn(async move {
                while let Some(Ok(message)) = messages.next().await {
                    let _ = own.publish("floor.inbox", message.payload.clone()).await;
                    let _ = message.ack().await;
                }
            });
        }
    }
    Ok(Floor {
        requester,
        client,
        js,
        inbox,
        _responder: responder,
        _server: server,
    })
}

impl Floor {
    fn measure(&mut self, implementation: &str, n: u64) -> anyhow::Result<Figures> {
        let Floor {
            requester,
            client,
            js,
            inbox,
            ..
        } = self;
        let mut latencies = Vec::with_capacity(n as usize);
        let start = Instant::now();
        for i in 0..n {
            let payload = Bytes::from(i.to_le_bytes().to_vec());
            let sent = Instant::now();
            let answer = requester.block_on(async {
                if implementation == "nats-request" {
                    return anyhow::Ok(
                        client.request("floor.echo", payload.clone()).await?.payload,
                    );
                }
                let message = jetstream::message::PublishMessage::build()
                    .payload(payload.clone())
                    .message_id(format!("floor.{}", start.elapsed().as_nanos()));
                let ack = js.send_publish("floor.task", message).await?;
                let answer = inbox.next().await.context("the inbox closed")?.payload;
                ack.await?;
                anyhow::Ok(answer)
            })?;
            latencies.push(sent.elapsed().as_secs_f64() * 1e6);
            anyhow::ensure!(answer == payload, "{implementation}: a wrong answer");
        }
        Ok(Figures::of_latencies(
            latencies,
            start.elapsed().as_secs_f64(),
        ))
    }
}
