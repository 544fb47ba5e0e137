//! `crew worker` and `crew cluster status|dlq`: clap wiring over `crew::cluster`.
//!
//! Secrets (token, password, nkey seed) come from a file (`--token-file`...) or an environment
//! variable (`CREW_NATS_TOKEN`, `CREW_NATS_PASSWORD`, `CREW_NATS_NKEY_SEED`) as well as from
//! argv (where `ps` shows them: fine on a laptop, not on a shared machine). They are never
//! printed: the [`Secret`] type's `Debug` hides them and the URL shown drops its user info.

use std::fmt;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, SystemTime};

use anyhow::{bail, Context as _};
use crew::cluster::{
    redact_url, serve_worker, Cluster, ClusterOptions, DeadLetterId, Isolation, WorkerOptions,
};

/// A secret from argv, a file or the environment; `Debug` never shows it.
#[derive(Clone)]
pub(crate) struct Secret(String);

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

impl std::str::FromStr for Secret {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        Ok(Secret(text.to_owned()))
    }
}

/// How to reach and authenticate with a deployment: shared by every cluster command.
#[derive(Debug, clap::Args)]
pub(crate) struct Connection {
    /// The NATS server, e.g. nats://10.0.0.1:4222 or tls://host:4222 [env: CREW_NATS_URL].
    #[arg(global = true, long, value_name = "URL")]
    nats: Option<String>,
    /// The deployment's subject prefix: two deployments with different prefixes share a server.
    #[arg(global = true, long, value_name = "P", default_value = "crew")]
    prefix: String,
    /// Token auth (visible to `ps`: prefer --token-file or CREW_NATS_TOKEN).
    #[arg(
        global = true,
        long,
        value_name = "TOKEN",
        conflicts_with = "token_file"
    )]
    token: Option<Secret>,
    /// Token auth, read from FILE (first line).
    #[arg(global = true, long, value_name = "FILE")]
    token_file: Option<PathBuf>,
    /// User for user/password auth [env: CREW_NATS_USER].
    #[arg(global = true, long, value_name = "USER")]
    user: Option<String>,
    /// Password for --user (visible to `ps`: prefer --password-file or CREW_NATS_PASSWORD).
    #[arg(
        global = true,
        long,
        value_name = "PASSWORD",
        conflicts_with = "password_file"
    )]
    password: Option<Secret>,
    /// Password for --user, read from FILE (first line).
    #[arg(global = true, long, value_name = "FILE")]
    password_file: Option<PathBuf>,
    /// NKey auth: the user seed (SU...), read from FILE [or env: CREW_NATS_NKEY_SEED].
    #[arg(global = true, long, value_name = "FILE")]
    nkey_seed_file: Option<PathBuf>,
    /// A NATS credentials file (JWT and seed), as `nsc` writes them.
    #[arg(global = true, long, value_name = "FILE")]
    creds: Option<PathBuf>,
    /// TLS: trust this CA certificate (PEM); implies TLS is required.
    #[arg(global = true, long, value_name = "FILE")]
    tls_ca: Option<PathBuf>,
    /// TLS client certificate (PEM), with --tls-key.
    #[arg(global = true, long, value_name = "FILE", requires = "tls_key")]
    tls_cert: Option<PathBuf>,
    /// TLS client key (PEM), with --tls-cert.
    #[arg(global = true, long, value_name = "FILE", requires = "tls_cert")]
    tls_key: Option<PathBuf>,
}

/// The first line of a secret file, or a clear error naming the file (never its contents).
fn read_secret(path: &Path, what: &str) -> anyhow::Result<String> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read the {what} file {}", path.display()))?;
    let secret = text.lines().next().unwrap_or("").trim().to_owned();
    if secret.is_empty() {
        bail!("the {what} file {} is empty", path.display());
    }
    Ok(secret)
}

/// A secret from argv (`given`), else the first line of its `file`, else the environment
/// variable `var`; `what` names it in errors.
fn secret(
    given: Option<&Secret>,
    file: Option<&PathBuf>,
    what: &str,
    var: &str,
) -> anyhow::Result<Option<String>> {
    match (given, file) {
        (Some(secret), _) => Ok(Some(secret.0.clone())),
        (None, Some(path)) => read_secret(path, what).map(Some),
        (None, None) => Ok(env(var)),
    }
}

/// An environment variable, if set and not empty.
fn env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|value| !value.is_empty())
}

/// `text` (an error message) with the user info removed from every URL in it
/// ([`redact_url`] on each word holding an `@` before any `/` other than a scheme's `//`):
/// the cluster library names the server by the URL it was given, credentials included, and
/// `crew` prints no secret. A path such as `/home/a@b` stays as it is.
pub(crate) fn redact_urls_in(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while !rest.is_empty() {
        let start = rest
            .find(|c: char| !c.is_whitespace())
            .unwrap_or(rest.len());
        out.push_str(&rest[..start]);
        rest = &rest[start..];
        let end = rest.find(char::is_whitespace).unwrap_or(rest.len());
        let word = &rest[..end];
        let after_scheme = word.find("://").map_or(0, |scheme| scheme + 3);
        let credentials = word[after_scheme..]
            .find(['@', '/'])
            .is_some_and(|at| word[after_scheme + at..].starts_with('@'));
        if credentials {
            out.push_str(&redact_url(word));
        } else {
            out.push_str(word);
        }
        rest = &rest[end..];
    }
    out
}

impl Connection {
    /// Whether `--nats` was given (`crew run` takes its URL as `--cluster` instead).
    pub(crate) fn has_url_flag(&self) -> bool {
        self.nats.is_some()
    }

    /// Uses `url` as the server (`crew run --cluster URL`).
    pub(crate) fn set_url(&mut self, url: String) {
        self.nats = Some(url);
    }

    /// The server URL (flag, then `CREW_NATS_URL`).
    fn url(&self) -> anyhow::Result<String> {
        self.nats.clone().or_else(|| env("CREW_NATS_URL")).context(
            "no server given: pass --nats URL (e.g. nats://127.0.0.1:4222) or set CREW_NATS_URL",
        )
    }

    /// The options these flags (and the environment) describe.
    pub(crate) fn options(&self) -> anyhow::Result<ClusterOptions> {
        let url = self.url()?;
        let mut options = ClusterOptions::new(url.clone()).prefix(self.prefix.clone());
        let (token, token_file) = (self.token.as_ref(), self.token_file.as_ref());
        let token = secret(token, token_file, "token", "CREW_NATS_TOKEN")?;
        if let Some(token) = token {
            options = options.token(token);
        }
        let (password, password_file) = (self.password.as_ref(), self.password_file.as_ref());
        let password = secret(password, password_file, "password", "CREW_NATS_PASSWORD")?;
        match (
            self.user.clone().or_else(|| env("CREW_NATS_USER")),
            password,
        ) {
            (Some(user), Some(password)) => options = options.user_and_password(user, password),
            (Some(_), None) => bail!(
                "--user needs a password: --password-file FILE, CREW_NATS_PASSWORD or --password"
            ),
            (None, Some(_)) if self.password.is_some() || self.password_file.is_some() => {
                bail!("a password needs --user (or CREW_NATS_USER)")
            }
            _ => {}
        }
        let seed_file = self.nkey_seed_file.as_ref();
        let seed = secret(None, seed_file, "nkey seed", "CREW_NATS_NKEY_SEED")?;
        if let Some(seed) = seed {
            if !seed.starts_with("SU") {
                bail!("the nkey seed must be a user seed (it starts with SU); `nsc` or `nk -gen user` makes one");
            }
            options = options.nkey(seed);
        }
        if let Some(path) = &self.creds {
            if !path.is_file() {
                bail!("the credentials file {} does not exist", path.display());
            }
            options = options.credentials_file(path.clone());
        }
        if let Some(ca) = &self.tls_ca {
            options = options.tls_root(ca.clone()).require_tls(true);
        }
        if let (Some(cert), Some(key)) = (&self.tls_cert, &self.tls_key) {
            options = options
                .tls_client_cert(cert.clone(), key.clone())
                .require_tls(true);
        }
        if url.starts_with("tls://") {
            options = options.require_tls(true);
        }
        Ok(options)
    }

    fn connect(&self) -> anyhow::Result<Cluster> {
        let options = self.options()?;
        Cluster::connect(options).map_err(anyhow::Error::from)
    }
}

/// Arguments of `crew worker`.
#[derive(Debug, clap::Args)]
pub(crate) struct WorkerArgs {
    #[command(flatten)]
    connection: Connection,
    /// Tasks run at once [default: the number of CPUs].
    #[arg(long, value_name = "N")]
    concurrency: Option<usize>,
    /// Run tasks in threads instead of worker processes (cheaper; a crashing task takes the
    /// worker down). A cancelled or late `crew run --cluster` job is still killed with its
    /// process group; a task of your own that cannot stop runs on (its result is dropped).
    #[arg(long)]
    threads: bool,
    /// The worker's name in `crew cluster status` [default: host-pid].
    #[arg(long)]
    name: Option<String>,
    /// Tasks pulled ahead per slot, waiting in the worker (saves a round trip per task); 0 for
    /// long tasks, so a waiting task stays in the queue for any idle worker.
    #[arg(long, value_name = "N", default_value_t = 16)]
    prefetch: usize,
    /// On SIGTERM, how long to wait for the tasks held before handing them back, e.g. 30s.
    #[arg(long, value_parser = crate::duration::parse_duration, default_value = "60s")]
    drain_timeout: Duration,
}

/// `crew worker`: serves the built-in tasks until SIGTERM/SIGINT, then drains and exits 0.
pub(crate) fn worker(args: WorkerArgs) -> anyhow::Result<ExitCode> {
    let options = args.connection.options()?;
    let url = options.url_for_display();
    let concurrency = match args.concurrency {
        Some(0) => bail!("--concurrency must be at least 1"),
        Some(n) => n,
        None => crew_lab::cpus(),
    };
    let isolation = if args.threads {
        Isolation::Threads
    } else {
        Isolation::Processes
    };
    let mut worker = WorkerOptions::new(options)
        .concurrency(concurrency)
        .isolation(isolation)
        .prefetch(args.prefetch)
        .drain_timeout(args.drain_timeout);
    if let Some(name) = args.name {
        worker = worker.name(name);
    }
    eprintln!(
        "crew worker: serving {url} (prefix {}) with {concurrency} {}; built-in tasks: {}",
        args.connection.prefix,
        if args.threads { "threads" } else { "processes" },
        crew_cli::tasks::BUILT_IN.join(", ")
    );
    let report = serve_worker(worker)?;
    eprintln!(
        "crew worker: stopped: {} tasks done, {} handed back{}",
        report.tasks_done,
        report.handed_back,
        if report.drained {
            ""
        } else {
            " (drain timed out)"
        }
    );
    Ok(ExitCode::SUCCESS)
}

/// Arguments of `crew cluster`.
#[derive(Debug, clap::Args)]
pub(crate) struct ClusterArgs {
    #[command(subcommand)]
    command: ClusterCommand,
}

#[derive(Debug, clap::Subcommand)]
enum ClusterCommand {
    /// Workers (heartbeats), queue depth, tasks in flight, redeliveries and dead letters.
    Status {
        #[command(flatten)]
        connection: Connection,
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// The dead-letter queue: tasks delivered max_deliver times without finishing.
    Dlq {
        #[command(subcommand)]
        action: Option<DlqAction>,
        #[command(flatten)]
        connection: Connection,
        /// Print JSON instead of a table.
        #[arg(global = true, long)]
        json: bool,
    },
}

#[derive(Debug, clap::Subcommand)]
enum DlqAction {
    /// List the dead letters (the default).
    List,
    /// Send a dead letter back to the task queue, with a fresh delivery count.
    Requeue {
        /// The dead letter's id (from `crew cluster dlq`).
        id: DeadLetterId,
    },
}

/// `crew cluster ...`.
pub(crate) fn main(args: ClusterArgs) -> anyhow::Result<ExitCode> {
    match args.command {
        ClusterCommand::Status { connection, json } => {
            let status = connection.connect()?.status()?;
            if json {
                println!("{}", serde_json::to_string_pretty(&status)?);
                return Ok(ExitCode::SUCCESS);
            }
            println!("workers: {}", status.workers.len());
            if !status.workers.is_empty() {
                println!(
                    "  {:<24} {:<20} {:>8} {:>6} {:>11} {:>10}",
                    "name", "host", "pid", "slots", "tasks done", "last seen"
                );
            }
            for worker in &status.workers {
                println!(
                    "  {:<24} {:<20} {:>8} {:>6} {:>11} {:>10}",
                    worker.name,
                    worker.host,
                    worker.pid,
                    worker.slots,
                    worker.tasks_done,
                    ago(worker.last_seen)
                );
            }
            println!("queue depth: {}", status.queue_depth);
            println!("in flight: {}", status.in_flight);
            println!("redeliveries: {}", status.redeliveries);
            println!("dead letters: {}", status.dead_letters);
            Ok(ExitCode::SUCCESS)
        }
        ClusterCommand::Dlq {
            action,
            connection,
            json,
        } => {
            let cluster = connection.connect()?;
            match action.unwrap_or(DlqAction::List) {
                DlqAction::List => {
                    let letters = cluster.dead_letters()?;
                    if json {
                        println!("{}", serde_json::to_string_pretty(&letters)?);
                        return Ok(ExitCode::SUCCESS);
                    }
                    if letters.is_empty() {
                        println!("no dead letters");
                    }
                    for letter in &letters {
                        println!(
                            "{}  {}  task {}  {} deliveries, {}: {}",
                            letter.id,
                            letter.task,
                            letter.task_id,
                            letter.deliveries,
                            ago(letter.at),
                            letter.error
                        );
                    }
                }
                DlqAction::Requeue { id } => {
                    cluster.requeue(&id)?;
                    if json {
                        println!("{}", serde_json::json!({ "requeued": id.0 }));
                    } else {
                        println!("requeued dead letter {id}");
                    }
                }
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// `3s ago`, for a time in the past.
fn ago(time: SystemTime) -> String {
    let seconds = SystemTime::now()
        .duration_since(time)
        .map_or(0, |d| d.as_secs());
    format!("{seconds}s ago")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_lose_their_user_info_and_secrets_their_text() {
        assert_eq!(redact_url("nats://u:p@host:4222"), "nats://host:4222");
        assert_eq!(redact_url("tls://host:4222"), "tls://host:4222");
        assert_eq!(redact_url("tok@host"), "host");
        assert_eq!(
            redact_urls_in("cannot connect to nats://u:p@h:1: refused; also t@h:2\nand /a@b/c"),
            "cannot connect to nats://h:1: refused; also h:2\nand /a@b/c"
        );
        assert_eq!(format!("{:?}", Secret("s3cret".into())), "Secret(***)");
    }

    #[test]
    fn secret_files_give_their_first_line_and_empty_ones_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("token");
        std::fs::write(&path, "s3cret\n").unwrap();
        assert_eq!(read_secret(&path, "token").unwrap(), "s3cret");
        std::fs::write(&path, "\n").unwrap();
        let error = read_secret(&path, "token").unwrap_err().to_string();
        assert!(
            error.contains("is empty") && !error.contains("s3cret"),
            "{error}"
        );
        let missing = read_secret(&dir.path().join("nope"), "token").unwrap_err();
        assert!(missing.to_string().contains("cannot read the token file"));
    }

    #[test]
    fn secrets_come_from_argv_then_their_file_then_the_environment() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("password");
        std::fs::write(&file, "from-file\n").unwrap();
        // A variable no other test reads, so setting it races with nothing.
        let var = "CREW_TEST_SECRET_FROM_ENV";
        std::env::set_var(var, "from-env");
        let argv = Secret("from-argv".into());
        let found = |given, file| secret(given, file, "password", var).unwrap();
        assert_eq!(
            found(Some(&argv), Some(&file)).as_deref(),
            Some("from-argv")
        );
        assert_eq!(found(None, Some(&file)).as_deref(), Some("from-file"));
        assert_eq!(found(None, None).as_deref(), Some("from-env"));
        std::env::remove_var(var);
        assert_eq!(found(None, None), None);
        let missing = dir.path().join("nope");
        let error = secret(None, Some(&missing), "password", var).unwrap_err();
        assert!(error.to_string().contains("cannot read the password file"));
    }
}
