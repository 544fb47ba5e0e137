//! [`ClusterOptions`]: where the cluster is, how to authenticate, and the settings crew gives the
//! JetStream stream and consumer (never the server's defaults).

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use super::ClusterError;

/// How a client proves who it is to the NATS server.
#[derive(Clone, Default)]
pub(crate) enum Auth {
    #[default]
    None,
    Token(String),
    UserPassword(String, String),
    Nkey(String),
    CredentialsFile(PathBuf),
}

/// Where the tasks and results are stored on the server.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Storage {
    /// On disk: tasks and results survive a restart of the server (the default).
    #[default]
    File,
    /// In memory: faster, lost when the server stops. [`Cluster::local`](super::Cluster::local)
    /// uses it, since its private server lives only as long as the cluster.
    Memory,
}

/// How a result travels back to its submitter (see the design note of [`crate::cluster`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ResultPath {
    /// Straight to the submitter's inbox, which confirms it holds the result before the
    /// worker acknowledges the task; a submitter that does not confirm in time (disconnected)
    /// gets it through the results stream instead (the default: one stored message less per
    /// task, and one hop less for the result).
    #[default]
    Inbox,
    /// Always stored in the results stream first, read from there by the submitter.
    Stream,
}

/// How to reach a NATS server with JetStream and how crew sets up its streams there.
///
/// ```
/// use std::time::Duration;
/// use crew::cluster::ClusterOptions;
///
/// let options = ClusterOptions::new("nats://127.0.0.1:4222")
///     .token("s3cret")
///     .prefix("billing")
///     .connect_timeout(Duration::from_secs(2));
/// // Secrets never show in Debug output.
/// assert!(!format!("{options:?}").contains("s3cret"));
/// ```
///
/// Submitters and workers of one deployment must use the same [`prefix`](Self::prefix); two
/// deployments with different prefixes share a server without seeing each other's tasks. The
/// consumer settings ([`ack_wait`](Self::ack_wait), [`max_deliver`](Self::max_deliver),
/// [`max_ack_pending`](Self::max_ack_pending)) are applied by whoever connects last, so give
/// every process of a deployment the same ones.
#[derive(Clone)]
pub struct ClusterOptions {
    pub(crate) url: String,
    pub(crate) auth: Auth,
    pub(crate) tls_root: Option<PathBuf>,
    pub(crate) tls_client: Option<(PathBuf, PathBuf)>,
    pub(crate) require_tls: bool,
    pub(crate) prefix: String,
    pub(crate) name: Option<String>,
    pub(crate) connect_timeout: Duration,
    pub(crate) request_timeout: Duration,
    pub(crate) ack_wait: Duration,
    pub(crate) max_deliver: u32,
    pub(crate) max_ack_pending: u32,
    pub(crate) duplicate_window: Duration,
    pub(crate) result_ttl: Duration,
    pub(crate) storage: Storage,
    pub(crate) retries: u32,
    pub(crate) retry_backoff: Duration,
    pub(crate) slots: usize,
    pub(crate) results: ResultPath,
}

impl ClusterOptions {
    /// The server at `url` (`nats://host:4222`, `tls://host:4222`, or a comma-separated list),
    /// no authentication, prefix `crew`, file storage, `ack_wait` 30 s, `max_deliver` 5,
    /// `max_ack_pending` 20,000, a duplicate window of 2 minutes, no retries.
    pub fn new(url: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            auth: Auth::None,
            tls_root: None,
            tls_client: None,
            require_tls: false,
            prefix: "crew".to_owned(),
            name: None,
            connect_timeout: Duration::from_secs(5),
            request_timeout: Duration::from_secs(10),
            ack_wait: Duration::from_secs(30),
            max_deliver: 5,
            max_ack_pending: 20_000,
            duplicate_window: Duration::from_secs(120),
            result_ttl: Duration::from_secs(3600),
            storage: Storage::File,
            retries: 0,
            retry_backoff: Duration::from_secs(1),
            slots: 64,
            results: ResultPath::Inbox,
        }
    }

    /// The server URL given to [`new`](Self::new).
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The server URL without its user info, as crew names the server in errors and
    /// messages (see [`redact_url`]).
    pub fn url_for_display(&self) -> String {
        redact_url(&self.url)
    }

    /// The deployment's subject prefix.
    pub fn prefix_name(&self) -> &str {
        &self.prefix
    }

    /// Authenticate with a token (`nats-server --auth TOKEN`, `authorization { token }`).
    pub fn token(mut self, token: impl Into<String>) -> Self {
        self.auth = Auth::Token(token.into());
        self
    }

    /// Authenticate as `user` with `password`.
    pub fn user_and_password(
        mut self,
        user: impl Into<String>,
        password: impl Into<String>,
    ) -> Self {
        self.auth = Auth::UserPassword(user.into(), password.into());
        self
    }

    /// Authenticate with an nkey: `seed` is the user's seed (`SU...`), whose public key the
    /// server lists in `authorization { users: [{ nkey: U... }] }`.
    pub fn nkey(mut self, seed: impl Into<String>) -> Self {
        self.auth = Auth::Nkey(seed.into());
        self
    }

    /// Authenticate with a `.creds` file (a user JWT and its nkey seed, as `nsc` writes them).
    pub fn credentials_file(mut self, path: impl Into<PathBuf>) -> Self {
        self.auth = Auth::CredentialsFile(path.into());
        self
    }

    /// Trust the certificate authority in the PEM file `ca` for the server's certificate (and
    /// use TLS).
    pub fn tls_root(mut self, ca: impl Into<PathBuf>) -> Self {
        self.tls_root = Some(ca.into());
        self
    }

    /// Present the client certificate `cert` with its private key `key` (PEM files), for a
    /// server that verifies clients (`tls { verify: true }`).
    pub fn tls_client_cert(mut self, cert: impl Into<PathBuf>, key: impl Into<PathBuf>) -> Self {
        self.tls_client = Some((cert.into(), key.into()));
        self
    }

    /// Refuse to talk to the server without TLS.
    pub fn require_tls(mut self, require: bool) -> Self {
        self.require_tls = require;
        self
    }

    /// The deployment's subject prefix (default `crew`): its streams are `<PREFIX>_TASKS`,
    /// `<PREFIX>_RESULTS` and so on, its subjects `<prefix>.task.<name>`. Letters, digits, `-`
    /// and `_` only.
    pub fn prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = prefix.into();
        self
    }

    /// The client name the server shows for this connection (`nats server report connections`).
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.name = Some(name.into());
        self
    }

    /// How long connecting may take before it fails with a clear error (default 5 s).
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// How long one JetStream API request (and a publish acknowledgement) may take (default 10 s).
    pub fn request_timeout(mut self, timeout: Duration) -> Self {
        self.request_timeout = timeout;
        self
    }

    /// How long a worker may hold a task without a sign of life before the server delivers it
    /// to another worker (default 30 s). Workers send progress acknowledgements during long
    /// tasks, so this bounds how long a crashed worker's tasks wait, not how long tasks run.
    pub fn ack_wait(mut self, ack_wait: Duration) -> Self {
        self.ack_wait = ack_wait;
        self
    }

    /// How many times a task is delivered at most (default 5): after that it fails for the
    /// submitter and lands in the dead-letter stream ([`Cluster::dead_letters`](super::Cluster::dead_letters)).
    pub fn max_deliver(mut self, max_deliver: u32) -> Self {
        self.max_deliver = max_deliver.max(1);
        self
    }

    /// How many tasks may be delivered and not yet acknowledged across all workers (default
    /// 20,000); keep it above the sum of the workers' slots.
    pub fn max_ack_pending(mut self, max_ack_pending: u32) -> Self {
        self.max_ack_pending = max_ack_pending.max(1);
        self
    }

    /// How long the server remembers a task id to store a re-sent task once (default 2 min).
    pub fn duplicate_window(mut self, window: Duration) -> Self {
        self.duplicate_window = window;
        self
    }

    /// How this submitter's results come back (default [`ResultPath::Inbox`]). Workers follow
    /// what each task asks for.
    pub fn results(mut self, path: ResultPath) -> Self {
        self.results = path;
        self
    }

    /// How long an unread result stays on the server (default 1 h).
    pub fn result_ttl(mut self, ttl: Duration) -> Self {
        self.result_ttl = ttl;
        self
    }

    /// Where tasks and results are stored (default [`Storage::File`]).
    pub fn storage(mut self, storage: Storage) -> Self {
        self.storage = storage;
        self
    }

    /// Run a task that fails (returns an error or panics) up to `retries` more times, pausing
    /// [`retry_backoff`](Self::retry_backoff) times the attempt number between attempts
    /// (default 0: a failure is reported at once). A retry is a delayed negative
    /// acknowledgement, so it counts toward [`max_deliver`](Self::max_deliver).
    pub fn retries(mut self, retries: u32) -> Self {
        self.retries = retries;
        self
    }

    /// The pause before the first retry (default 1 s); the n-th retry waits n times as long.
    pub fn retry_backoff(mut self, backoff: Duration) -> Self {
        self.retry_backoff = backoff;
        self
    }

    /// How many tasks the cluster's workers run at once, as far as this submitter knows
    /// (default 64): `map` keeps twice as many tasks in flight by default
    /// ([`Executor::max_workers`](crate::Executor::max_workers) returns it). A submitter does
    /// not count the workers; set it to their total slots when `map`'s window matters.
    ///
    /// # Panics
    /// If `slots` is 0.
    #[track_caller]
    pub fn slots(mut self, slots: usize) -> Self {
        assert!(slots > 0, "ClusterOptions::slots must be at least 1");
        self.slots = slots;
        self
    }

    /// Checks the options that can be checked without a server.
    pub(crate) fn validate(&self) -> Result<(), ClusterError> {
        if self.prefix.is_empty()
            || !self
                .prefix
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        {
            return Err(ClusterError::Options {
                message: format!(
                    "prefix {:?} must be non-empty and use only letters, digits, '-' and '_'",
                    self.prefix
                ),
            });
        }
        if self.ack_wait < Duration::from_millis(100) {
            return Err(ClusterError::Options {
                message: format!(
                    "ack_wait {:?} is too short; use at least 100 ms",
                    self.ack_wait
                ),
            });
        }
        Ok(())
    }

    /// The stream of tasks.
    pub(crate) fn tasks_stream(&self) -> String {
        format!("{}_TASKS", self.prefix.to_ascii_uppercase())
    }

    /// The stream of results.
    pub(crate) fn results_stream(&self) -> String {
        format!("{}_RESULTS", self.prefix.to_ascii_uppercase())
    }

    /// The stream of dead letters.
    pub(crate) fn dead_stream(&self) -> String {
        format!("{}_DEAD", self.prefix.to_ascii_uppercase())
    }

    /// The object store bucket for large payloads.
    pub(crate) fn bucket(&self) -> String {
        format!("{}_PAYLOADS", self.prefix.to_ascii_uppercase())
    }

    /// The durable consumer every worker shares.
    pub(crate) fn consumer(&self) -> String {
        "workers".to_owned()
    }
}

impl fmt::Debug for ClusterOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let auth = match &self.auth {
            Auth::None => "none".to_owned(),
            Auth::Token(_) => "token (hidden)".to_owned(),
            Auth::UserPassword(user, _) => format!("user {user:?}, password (hidden)"),
            Auth::Nkey(_) => "nkey (seed hidden)".to_owned(),
            Auth::CredentialsFile(path) => format!("credentials file {}", path.display()),
        };
        f.debug_struct("ClusterOptions")
            .field("url", &self.url_for_display())
            .field("auth", &auth)
            .field("tls_root", &self.tls_root)
            .field(
                "tls_client_cert",
                &self.tls_client.as_ref().map(|(cert, _)| cert),
            )
            .field("require_tls", &self.require_tls)
            .field("prefix", &self.prefix)
            .field("storage", &self.storage)
            .field("ack_wait", &self.ack_wait)
            .field("max_deliver", &self.max_deliver)
            .field("max_ack_pending", &self.max_ack_pending)
            .field("retries", &self.retries)
            .field("results", &self.results)
            .finish_non_exhaustive()
    }
}

/// `url` without user info (`nats://user:pass@host` → `nats://host`, `token@host` → `host`),
/// each of several comma-separated URLs alike: a credential written into a URL must never reach
/// a message or a log. crew's own errors name servers this way.
///
/// ```
/// use crew::cluster::redact_url;
///
/// assert_eq!(redact_url("nats://bob:secret@127.0.0.1:4222"), "nats://127.0.0.1:4222");
/// assert_eq!(redact_url("s3cret@127.0.0.1:4222"), "127.0.0.1:4222");
/// assert_eq!(redact_url("nats://a:p,w@h1,nats://h2"), "nats://h1,nats://h2");
/// assert_eq!(redact_url("tls://127.0.0.1:4222"), "tls://127.0.0.1:4222");
/// ```
pub fn redact_url(url: &str) -> String {
    // Each `@` ends a user info, which starts after its URL's scheme (or at the start): a
    // password may hold a comma, so the list is not split first. A host holds neither `@`
    // nor `,`, so the host after an `@` runs to the next comma.
    let mut out = String::with_capacity(url.len());
    let mut rest = url;
    while let Some(at) = rest.find('@') {
        let start = rest[..at].rfind("://").map_or(0, |scheme| scheme + 3);
        out.push_str(&rest[..start]);
        rest = &rest[at + 1..];
        let host_end = rest.find(',').map_or(rest.len(), |comma| comma + 1);
        out.push_str(&rest[..host_end]);
        rest = &rest[host_end..];
    }
    out.push_str(rest);
    out
}
