//! Shared by the test binaries that run crew's examples as programs (`examples_run`,
//! `examples_cluster`): build them once, then find them.
//!
//! `cargo test --all-targets` compiles examples in test mode only, so the examples are built as
//! programs with `cargo build --examples` into the test's own target directory (cargo holds no
//! lock while tests run; the build is quick when they are fresh).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

/// `target/<profile>`, from the test's path `target/<profile>/deps/<test>-<hash>`.
fn profile_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("test executable path");
    exe.parent()
        .and_then(Path::parent)
        .expect("the test runs from target/<profile>/deps")
        .to_path_buf()
}

/// The path of example `name`, built (with every other example) once per test binary.
///
/// # Panics
/// When the build fails, with cargo's complaint.
pub(crate) fn example(name: &str) -> PathBuf {
    static BUILT: OnceLock<Result<(), String>> = OnceLock::new();
    let built = BUILT.get_or_init(|| {
        let profile_dir = profile_dir();
        let target_dir = profile_dir.parent().expect("target directory");
        let mut cargo = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()));
        cargo
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            // `--workspace --all-features`: the dependency features of scripts/test's
            // `cargo test --workspace --all-features`, which has built these examples already;
            // `-p crew` would resolve other features (libc's, serde's) and build a second tree.
            .args([
                "build",
                "--quiet",
                "--workspace",
                "--all-features",
                "--examples",
                "--target-dir",
            ])
            .arg(target_dir);
        if profile_dir
            .file_name()
            .is_some_and(|name| name == "release")
        {
            cargo.arg("--release");
        }
        let output = cargo
            .output()
            .map_err(|error| format!("cannot run cargo: {error}"))?;
        if output.status.success() {
            Ok(())
        } else {
            Err(String::from_utf8_lossy(&output.stderr).into_owned())
        }
    });
    if let Err(error) = built {
        panic!("building the examples failed:\n{error}");
    }
    profile_dir()
        .join("examples")
        .join(format!("{name}{}", std::env::consts::EXE_SUFFIX))
}
