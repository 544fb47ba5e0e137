//! Shared by the test binaries that start a real `nats-server` (crew's and crew-cli's, the
//! latter through `#[path]`): find one, or install one with `scripts/nats-server`, once.

use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Once;

/// Points `CREW_NATS_SERVER` at a usable server when none is found (`$CREW_NATS_SERVER`, then
/// PATH), installing one with `scripts/nats-server`; at most once per test binary.
///
/// # Panics
/// When the script fails: the tests cannot run without a server.
pub(crate) fn ensure_nats_server() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        if crew::cluster::find_nats_server().is_ok() {
            return;
        }
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts/nats-server");
        let output = Command::new(&script)
            .stderr(Stdio::inherit())
            .output()
            .expect("running scripts/nats-server");
        assert!(output.status.success(), "scripts/nats-server failed");
        let path = String::from_utf8(output.stdout).expect("a UTF-8 path");
        std::env::set_var(crew::cluster::NATS_SERVER_ENV, path.trim());
    });
}
