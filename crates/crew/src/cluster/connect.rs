//! Connecting to the server with [`ClusterOptions`] and setting up the deployment's streams,
//! consumer and buckets, with errors that say what is wrong.

use std::time::Duration;

use async_nats::jetstream::{self, consumer, stream};

use super::options::{Auth, ClusterOptions, Storage};
use super::ClusterError;

/// The runtime every cluster object runs its I/O on: one small multi-thread runtime per
/// `Cluster` (or worker), driven by its own threads behind the blocking API.
pub(crate) fn runtime(name: &str) -> Result<tokio::runtime::Runtime, ClusterError> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .max_blocking_threads(16)
        .thread_name(name)
        .enable_all()
        .build()
        .map_err(|error| ClusterError::Io {
            message: format!("cannot start the cluster's I/O runtime: {error}"),
        })
}

/// The longest wait between two attempts to reconnect (the waits double from 2 ms up to it):
/// crew's own rather than the client's default (4 s), because remote actor callers take "no
/// responders" for "not back yet" for a while after their own reconnect
/// (`actor::remote::RECONNECT_GRACE`, derived from this), and that must cover a worker's.
pub(crate) const RECONNECT_BACKOFF_MAX: Duration = Duration::from_secs(2);

/// How often an idle connection pings the server: a connection whose server vanished without
/// closing it (a host gone, a partition) is found dead after two unanswered pings, about half a
/// minute, instead of the client's default of two to three minutes (calls meanwhile are
/// accepted and lost).
const PING_INTERVAL: Duration = Duration::from_secs(10);

/// Connects, with every failure mapped to a clear [`ClusterError`] within `connect_timeout`.
pub(crate) async fn connect(options: &ClusterOptions) -> Result<async_nats::Client, ClusterError> {
    options.validate()?;
    let mut connect = async_nats::ConnectOptions::new()
        .connection_timeout(options.connect_timeout)
        .request_timeout(Some(options.request_timeout))
        .client_capacity(65_536)
        .subscription_capacity(1 << 20)
        .ping_interval(PING_INTERVAL)
        .reconnect_delay_callback(|attempts| {
            let doublings = u32::try_from(attempts.saturating_sub(1)).unwrap_or(u32::MAX);
            match attempts {
                0 | 1 => Duration::ZERO,
                _ => Duration::from_millis(2_u64.saturating_pow(doublings))
                    .min(RECONNECT_BACKOFF_MAX),
            }
        })
        .name(options.name.clone().unwrap_or_else(|| "crew".to_owned()));
    connect = match &options.auth {
        Auth::None => connect,
        Auth::Token(token) => connect.token(token.clone()),
        Auth::UserPassword(user, password) => {
            connect.user_and_password(user.clone(), password.clone())
        }
        Auth::Nkey(seed) => {
            if !seed.starts_with("SU") {
                return Err(ClusterError::Auth {
                    url: options.url_for_display(),
                    message: "the nkey seed must be a user seed starting with `SU` (not the public key `U...`)".to_owned(),
                });
            }
            connect.nkey(seed.clone())
        }
        Auth::CredentialsFile(path) => {
            connect
                .credentials_file(path)
                .await
                .map_err(|error| ClusterError::Auth {
                    url: options.url_for_display(),
                    message: format!(
                        "cannot read the credentials file {}: {error}",
                        path.display()
                    ),
                })?
        }
    };
    if let Some(ca) = &options.tls_root {
        connect = connect.add_root_certificates(ca.clone()).require_tls(true);
    }
    if let Some((cert, key)) = &options.tls_client {
        connect = connect.add_client_certificate(cert.clone(), key.clone());
    }
    if options.require_tls {
        connect = connect.require_tls(true);
    }
    let url = options.url_for_display();
    let attempt = connect.connect(options.url.as_str());
    // The client's own timeout covers one TCP connect; this bounds the whole handshake too.
    match tokio::time::timeout(
        options.connect_timeout + Duration::from_millis(500),
        attempt,
    )
    .await
    {
        Ok(Ok(client)) => Ok(client),
        Ok(Err(error)) => Err(connect_error(options, &error)),
        Err(_) => Err(ClusterError::Connect {
            url,
            message: format!(
                "no answer within {:?}; is nats-server running there (and does it speak TLS when \
                 the other side expects it)?",
                options.connect_timeout
            ),
        }),
    }
}

fn connect_error(options: &ClusterOptions, error: &async_nats::ConnectError) -> ClusterError {
    use async_nats::ConnectErrorKind as Kind;
    let url = options.url_for_display();
    let text = error.to_string();
    match error.kind() {
        Kind::AuthorizationViolation | Kind::Authentication => ClusterError::Auth {
            url,
            message: format!(
                "the server refused our credentials ({text}); check the token, user and \
                 password, nkey seed or credentials file"
            ),
        },
        Kind::Tls => ClusterError::Tls {
            url,
            message: format!(
                "{text}; check the CA file (tls_root), the client certificate and key, and that \
                 client and server agree on TLS"
            ),
        },
        Kind::TimedOut => ClusterError::Connect {
            url,
            message: format!("{text} (after {:?})", options.connect_timeout),
        },
        _ if text.to_ascii_lowercase().contains("tls") || text.contains("certificate") => {
            ClusterError::Tls {
                url,
                message: format!(
                    "{text}; the server requires TLS: trust its certificate authority with \
                     tls_root(CA file) (and a client certificate if it verifies clients)"
                ),
            }
        }
        _ => ClusterError::Connect {
            url,
            message: format!(
                "{text}; is nats-server running with JetStream (-js) at that address?"
            ),
        },
    }
}

fn storage(storage: Storage) -> stream::StorageType {
    match storage {
        Storage::File => stream::StorageType::File,
        Storage::Memory => stream::StorageType::Memory,
    }
}

/// The JetStream context: requests bounded by the request timeout, publish acknowledgements
/// pipelined with backpressure.
pub(crate) fn context(client: async_nats::Client, options: &ClusterOptions) -> jetstream::Context {
    jetstream::ContextBuilder::new()
        .timeout(options.request_timeout)
        .max_ack_inflight(20_000)
        .backpressure_on_inflight(true)
        .build(client)
}

fn js_error(what: &str, error: impl std::fmt::Display) -> ClusterError {
    let text = error.to_string();
    let hint =
        if text.contains("no responders") || text.contains("not enabled") || text.contains("503") {
            "; is JetStream enabled on the server (nats-server -js)?"
        } else {
            ""
        };
    ClusterError::JetStream {
        message: format!("{what}: {text}{hint}"),
    }
}

/// Creates (or finds) the tasks, results and dead-letter streams and the workers' consumer.
pub(crate) async fn setup(
    js: &jetstream::Context,
    options: &ClusterOptions,
) -> Result<(stream::Stream, consumer::PullConsumer), ClusterError> {
    let prefix = &options.prefix;
    let tasks = js
        .get_or_create_stream(stream::Config {
            name: options.tasks_stream(),
            subjects: vec![format!("{prefix}.task.>")],
            retention: stream::RetentionPolicy::WorkQueue,
            discard: stream::DiscardPolicy::New,
            duplicate_window: options.duplicate_window,
            storage: storage(options.storage),
            ..Default::default()
        })
        .await
        .map_err(|e| {
            js_error(
                &format!("cannot create the stream {}", options.tasks_stream()),
                e,
            )
        })?;
    js.get_or_create_stream(stream::Config {
        name: options.results_stream(),
        subjects: vec![format!("{prefix}.result.>")],
        retention: stream::RetentionPolicy::Limits,
        max_age: options.result_ttl,
        storage: storage(options.storage),
        ..Default::default()
    })
    .await
    .map_err(|e| {
        js_error(
            &format!("cannot create the stream {}", options.results_stream()),
            e,
        )
    })?;
    js.get_or_create_stream(stream::Config {
        name: options.dead_stream(),
        subjects: vec![format!("{prefix}.dead.>")],
        retention: stream::RetentionPolicy::Limits,
        storage: storage(options.storage),
        ..Default::default()
    })
    .await
    .map_err(|e| {
        js_error(
            &format!("cannot create the stream {}", options.dead_stream()),
            e,
        )
    })?;
    let consumer = tasks
        .create_consumer(consumer::pull::Config {
            durable_name: Some(options.consumer()),
            ack_policy: consumer::AckPolicy::Explicit,
            ack_wait: options.ack_wait,
            max_deliver: i64::from(options.max_deliver),
            max_ack_pending: i64::from(options.max_ack_pending),
            max_waiting: 1024,
            deliver_policy: consumer::DeliverPolicy::All,
            ..Default::default()
        })
        .await
        .map_err(|e| js_error("cannot create the workers' consumer", e))?;
    Ok((tasks, consumer))
}

/// The object store bucket for payloads beyond the server's message limit.
pub(crate) async fn bucket(
    js: &jetstream::Context,
    options: &ClusterOptions,
) -> Result<jetstream::object_store::ObjectStore, ClusterError> {
    if let Ok(store) = js.get_object_store(options.bucket()).await {
        return Ok(store);
    }
    js.create_object_store(jetstream::object_store::Config {
        bucket: options.bucket(),
        storage: storage(options.storage),
        max_age: options.result_ttl,
        ..Default::default()
    })
    .await
    .map_err(|e| {
        js_error(
            &format!("cannot create the object store {}", options.bucket()),
            e,
        )
    })
}

/// The key-value bucket where workers leave their heartbeats.
pub(crate) async fn workers_bucket(
    js: &jetstream::Context,
    options: &ClusterOptions,
) -> Result<jetstream::kv::Store, ClusterError> {
    let name = format!("{}_WORKERS", options.prefix.to_ascii_uppercase());
    if let Ok(store) = js.get_key_value(&name).await {
        return Ok(store);
    }
    js.create_key_value(jetstream::kv::Config {
        bucket: name.clone(),
        history: 1,
        max_age: Duration::from_secs(120),
        storage: stream::StorageType::Memory,
        ..Default::default()
    })
    .await
    .map_err(|e| js_error(&format!("cannot create the key-value bucket {name}"), e))
}
