//! The command template of `crew run`: GNU parallel's replacement strings.
//!
//! `{}` the argument, `{.}` without its extension, `{/}` its basename, `{//}` its directory,
//! `{/.}` its basename without extension, `{#}` the job number. A template without any
//! replacement string gets the argument appended, as `xargs -n 1` does.

use crew::subprocess::{quote, Command};

/// How the command is run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Mode {
    /// Each word is one argument of the program; no shell, no quoting needed.
    Direct,
    /// The words joined by spaces are a `/bin/sh -c` script; arguments are inserted quoted.
    Shell,
    /// No command was given: each argument is itself a shell command (as in GNU parallel).
    Argument,
}

/// A parsed command template.
#[derive(Debug, Clone)]
pub(crate) struct Template {
    words: Vec<String>,
    mode: Mode,
    has_placeholder: bool,
}

const PLACEHOLDERS: [&str; 6] = ["{//}", "{/.}", "{/}", "{.}", "{#}", "{}"];

impl Template {
    /// `words` is the command after `--`; `force_shell` is `--shell`. A single word with
    /// spaces or shell syntax in it (`'echo {} | wc -c'`) is a shell script too. Without words,
    /// each argument is run as a shell command.
    pub(crate) fn new(words: Vec<String>, force_shell: bool) -> Self {
        let looks_like_script = words.len() == 1
            && words[0]
                .chars()
                .any(|c| c.is_whitespace() || "|&;<>()$`*?[]~\"'".contains(c));
        let mode = if words.is_empty() {
            Mode::Argument
        } else if force_shell || looks_like_script {
            Mode::Shell
        } else {
            Mode::Direct
        };
        let has_placeholder = words
            .iter()
            .any(|w| PLACEHOLDERS.iter().any(|p| w.contains(p)));
        Self {
            words,
            mode,
            has_placeholder,
        }
    }

    #[cfg(test)]
    pub(crate) fn mode(&self) -> Mode {
        self.mode
    }

    /// The command for argument `arg`, job number `seq`.
    pub(crate) fn command(&self, arg: &str, seq: usize) -> Command {
        match self.mode {
            Mode::Direct => {
                let mut words = self.words.iter().map(|w| expand(w, arg, seq, false));
                let program = words.next().unwrap_or_default();
                let mut command = Command::new(program).args(words);
                if !self.has_placeholder {
                    command = command.arg(arg);
                }
                command
            }
            Mode::Shell => {
                let mut script: Vec<String> = self
                    .words
                    .iter()
                    .map(|w| expand(w, arg, seq, true))
                    .collect();
                if !self.has_placeholder {
                    script.push(quote(arg));
                }
                Command::shell(script.join(" "))
            }
            Mode::Argument => Command::shell(arg),
        }
    }
}

/// `word` with every replacement string replaced; values are shell-quoted when `quoted`.
pub(crate) fn expand(word: &str, arg: &str, seq: usize, quoted: bool) -> String {
    let mut out = String::with_capacity(word.len() + arg.len());
    let mut rest = word;
    'scan: while let Some(open) = rest.find('{') {
        out.push_str(&rest[..open]);
        rest = &rest[open..];
        for placeholder in PLACEHOLDERS {
            if let Some(after) = rest.strip_prefix(placeholder) {
                let value = match placeholder {
                    "{}" => arg.to_owned(),
                    "{.}" => without_extension(arg).to_owned(),
                    "{/}" => basename(arg).to_owned(),
                    "{//}" => dirname(arg).to_owned(),
                    "{/.}" => without_extension(basename(arg)).to_owned(),
                    _ => seq.to_string(),
                };
                if quoted {
                    out.push_str(&quote(&value));
                } else {
                    out.push_str(&value);
                }
                rest = after;
                continue 'scan;
            }
        }
        out.push('{');
        rest = &rest[1..];
    }
    out.push_str(rest);
    out
}

fn basename(path: &str) -> &str {
    let trimmed = path.trim_end_matches('/');
    if trimmed.is_empty() {
        return path;
    }
    trimmed.rsplit('/').next().unwrap_or(trimmed)
}

fn dirname(path: &str) -> &str {
    match path.trim_end_matches('/').rfind('/') {
        Some(0) => "/",
        Some(slash) => &path[..slash],
        None => ".",
    }
}

/// `dir/file.tar.gz` → `dir/file.tar`; a leading dot (`.bashrc`) is not an extension.
fn without_extension(path: &str) -> &str {
    let name_start = path.rfind('/').map_or(0, |slash| slash + 1);
    match path[name_start..].rfind('.') {
        Some(0) | None => path,
        Some(dot) => &path[..name_start + dot],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replacement_strings_follow_gnu_parallel() {
        let arg = "dir/sub/file.tar.gz";
        assert_eq!(expand("{}", arg, 7, false), "dir/sub/file.tar.gz");
        assert_eq!(expand("{.}", arg, 7, false), "dir/sub/file.tar");
        assert_eq!(expand("{/}", arg, 7, false), "file.tar.gz");
        assert_eq!(expand("{//}", arg, 7, false), "dir/sub");
        assert_eq!(expand("{/.}", arg, 7, false), "file.tar");
        assert_eq!(expand("{#}", arg, 7, false), "7");
        assert_eq!(
            expand("pre-{/.}-{#}.out", arg, 12, false),
            "pre-file.tar-12.out"
        );
    }

    #[test]
    fn edge_cases_of_paths() {
        assert_eq!(expand("{//}", "file", 1, false), ".");
        assert_eq!(expand("{//}", "/file", 1, false), "/");
        assert_eq!(expand("{.}", ".bashrc", 1, false), ".bashrc");
        assert_eq!(expand("{.}", "a.b/c", 1, false), "a.b/c");
        assert_eq!(expand("{/}", "dir/", 1, false), "dir");
        assert_eq!(expand("{/.}", "x/.hidden", 1, false), ".hidden");
    }

    #[test]
    fn braces_that_are_not_placeholders_stay() {
        assert_eq!(expand("{a}{}{", "x", 1, false), "{a}x{");
        assert_eq!(expand("${HOME}", "x", 1, false), "${HOME}");
    }

    #[test]
    fn shell_mode_quotes_values() {
        assert_eq!(
            expand("echo {}", "it's a b", 1, true),
            r"echo 'it'\''s a b'"
        );
    }

    #[test]
    fn argument_is_appended_without_placeholder() {
        let template = Template::new(vec!["echo".into(), "-n".into()], false);
        assert_eq!(template.mode(), Mode::Direct);
        assert_eq!(template.command("a b", 1).to_string(), "echo -n 'a b'");
        let template = Template::new(vec!["echo {} | wc -c".into()], false);
        assert_eq!(template.mode(), Mode::Shell);
        assert_eq!(template.command("x y", 1).to_string(), "echo 'x y' | wc -c");
    }

    #[test]
    fn direct_mode_passes_values_verbatim() {
        let template = Template::new(vec!["printf".into(), "%s".into(), "<{}>".into()], false);
        let done = template.command("$HOME 'q'", 1).checked_output().unwrap();
        assert_eq!(done.stdout_str(), "<$HOME 'q'>");
    }
}
