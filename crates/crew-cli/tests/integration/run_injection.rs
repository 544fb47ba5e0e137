//! `crew run` never lets an argument become shell code: hostile arguments in every quoting
//! context a template can put them in (bare, inside double quotes, inside single quotes), in shell
//! mode and in a shell's `-c` script in direct mode. Each job must receive its argument byte for
//! byte and no file may appear.

use std::path::Path;
use std::process::{Command, Stdio};

use crate::support::CREW;

/// Arguments that would create a file in `dir` if a shell ever parsed them as code.
fn hostile(dir: &Path) -> Vec<String> {
    let f = dir.join("pwned").display().to_string();
    vec![
        format!("$(touch {f}1)"),
        format!("`touch {f}2`"),
        "$HOME".into(),
        "${HOME}x".into(),
        "\"".into(),
        "'".into(),
        "\\".into(),
        "a\\".into(),
        format!("a\ntouch {f}3\n"),
        format!("a; touch {f}4"),
        format!("a && touch {f}5"),
        format!("a | touch {f}6"),
        format!("\"; touch {f}7; \""),
        format!("'; touch {f}8; '"),
        format!("\"$(touch {f}9)\""),
        format!("'$(touch {f}10)'"),
        format!("\\\"$(touch {f}11)\\\""),
        format!("# comment\ntouch {f}12"),
        "*".into(),
        "[a-z]*?".into(),
        "~".into(),
        "my file.txt".into(),
        "  two  spaces  ".into(),
        "".into(),
        "tab\there".into(),
        "{}".into(),
    ]
}

/// Runs `crew run -k TEMPLATE... ::: ARGS` in `dir` and returns each job's output (the
/// templates print their value followed by a NUL byte).
fn run_in(dir: &Path, template: &[&str], args: &[String]) -> Vec<Vec<u8>> {
    let out = Command::new(CREW)
        .current_dir(dir)
        .args(["run", "-k", "-j", "4", "--"])
        .args(template)
        .arg(":::")
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{template:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut values: Vec<Vec<u8>> = out.stdout.split(|&b| b == 0).map(<[u8]>::to_vec).collect();
    assert_eq!(
        values.pop(),
        Some(Vec::new()),
        "{template:?}: output ends with NUL"
    );
    values
}

fn assert_inert(template: &[&str], wrap: impl Fn(&str) -> String) {
    let dir = tempfile::tempdir().unwrap();
    assert_inert_in(dir.path(), template, wrap);
}

/// Runs every hostile argument through `template` in `dir`; each job must print `wrap(arg)`,
/// and `dir` must hold nothing new afterwards.
fn assert_inert_in(dir: &Path, template: &[&str], wrap: impl Fn(&str) -> String) {
    // Something for an unquoted glob to match, so globbing would show in the output.
    std::fs::write(dir.join("bait"), "").unwrap();
    let args = hostile(dir);
    let values = run_in(dir, template, &args);
    let expected: Vec<Vec<u8>> = args.iter().map(|a| wrap(a).into_bytes()).collect();
    for (got, want) in values.iter().zip(&expected) {
        assert_eq!(
            String::from_utf8_lossy(got),
            String::from_utf8_lossy(want),
            "{template:?}"
        );
    }
    assert_eq!(values.len(), expected.len(), "{template:?}");
    let mut created: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    created.sort();
    assert_eq!(created, ["bait"], "{template:?} let an argument run code");
}

#[test]
fn inside_double_quotes() {
    assert_inert(&[r#"printf '%s\0' "{}""#], str::to_owned);
    assert_inert(&[r#"printf '%s\0' "<{}>""#], |a| format!("<{a}>"));
    assert_inert(&[r#"printf '%s\0' "$(printf '%s' "{}")""#], |a| {
        // Command substitution drops trailing newlines.
        a.trim_end_matches('\n').to_owned()
    });
}

#[test]
fn inside_single_quotes() {
    assert_inert(&[r"printf '%s\0' '{}'"], str::to_owned);
    assert_inert(&[r"printf '%s\0' '<{}>'"], |a| format!("<{a}>"));
}

#[test]
fn bare() {
    assert_inert(&[r"printf '%s\0' {}"], str::to_owned);
    assert_inert(&[r"printf '%s\0' ={}="], |a| format!("={a}="));
    // Without a replacement string the argument is appended, bare.
    assert_inert(&[r"printf '%s\0'"], str::to_owned);
}

#[test]
fn every_replacement_string_is_inert() {
    // Direct mode (no shell) gives the reference values.
    let dir = tempfile::tempdir().unwrap();
    let args = hostile(dir.path());
    let direct = run_in(
        dir.path(),
        &["printf", r"%s\0", "{.}|{/}|{//}|{/.}|{#}"],
        &args,
    );
    assert_inert_in(
        dir.path(),
        &[r#"printf '%s\0' "{.}|"'{/}|'{//}"|{/.}"'|{#}'"#],
        |a| {
            let at = args.iter().position(|x| x == a).unwrap();
            String::from_utf8(direct[at].clone()).unwrap()
        },
    );
}

/// Direct mode starts no shell of crew's: words are argv, values verbatim.
#[test]
fn direct_mode_passes_arguments_untouched() {
    assert_inert(&["printf", r"%s\0", "{}"], str::to_owned);
    assert_inert(
        &["sh", "-c", r#"printf '%s\0' "$1""#, "sh", "{}"],
        str::to_owned,
    );
}

/// The script of a shell's `-c` option is shell code the user wrote around `{}`: it gets the
/// same treatment as shell mode.
#[test]
fn direct_mode_shell_scripts_are_inert() {
    assert_inert(&["sh", "-c", r"printf '%s\0' {}"], str::to_owned);
    assert_inert(&["sh", "-c", r#"printf '%s\0' "{}""#], str::to_owned);
    assert_inert(&["/bin/sh", "-ec", r"printf '%s\0' '{}'"], str::to_owned);
    assert_inert(&["sh", "-c", r"printf '%s\0' {}", "zero"], str::to_owned);
    // bash reads the same forms the same way.
    assert_inert(&["bash", "-c", r"printf '%s\0' {}"], str::to_owned);
    assert_inert(&["bash", "-c", r#"printf '%s\0' "{}""#], str::to_owned);
    assert_inert(&["bash", "-c", r"printf '%s\0' '{}'"], str::to_owned);
}

/// Inside `$(( ))` the shell evaluates the value as an expression (bash even runs `$(...)` in
/// `a[$(...)]` there, whatever the quoting): whole numbers work, anything else fails the job
/// with a message and runs nothing.
#[test]
fn arithmetic_takes_whole_numbers_only() {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("pwned").display().to_string();
    let out = Command::new(CREW)
        .current_dir(dir.path())
        .args(["run", "-k", "--", "echo $(( {} + 1 )) \"$(({#}))\""])
        .args([":::", "41", "-3"])
        .arg(format!("a[$(touch {f})]"))
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert_eq!(String::from_utf8_lossy(&out.stdout), "42 1\n-2 2\n");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("is not a whole number"), "{stderr}");
    assert!(!dir.path().join("pwned").exists());
}
