//! The command template of `crew run`: GNU parallel's replacement strings.
//!
//! `{}` the argument, `{.}` without its extension, `{/}` its basename, `{//}` its directory,
//! `{/.}` its basename without extension, `{#}` the job number, `{%}` the job slot; with several
//! input sources `{1}` `{2}` ... (and `{1.}` `{1/}` `{1//}` `{1/.}`) take one source's value and
//! `{}` all of them (one word per source where it stands bare). A template without any
//! replacement string gets the arguments appended, as `xargs -n 1` does.
//!
//! # Values never become shell code
//!
//! In a shell script (shell mode, or the script word of `sh -c` in direct mode) a value is never
//! pasted into the script text. The job's environment carries it (`CREW_ARG` for `{}`, see
//! [`Value::var`]) and the replacement string becomes an expansion of that variable, written for
//! the quoting context the template puts it in: `"${CREW_ARG}"` bare, `${CREW_ARG}` inside double
//! quotes, `'"${CREW_ARG}"'` inside single quotes (closing and reopening them). The shell expands
//! a parameter once and never parses the result, so `$(...)`, backticks, `$VAR`, quotes, `;` and
//! newlines in a value stay text. The context comes from a small lexer ([`Lexer`]); should it ever
//! misjudge one, the value still only arrives through an expansion (at worst split into words or
//! wrapped in literal quotes), never as code. The one place a shell evaluates an expanded value
//! is arithmetic: inside `$(( ))` a value must be a whole number or the job is not run
//! ([`with_values`]). Bash's own arithmetic (`(( ))`, `let`, `[[ -eq ]]`) is the user's, as it
//! is for `"$1"`.

use super::raw;
use crew::subprocess::{quote, Command};

/// How the command is run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Mode {
    /// Each word is one argument of the program, values verbatim; no shell of crew's. The script
    /// word of a shell's `-c` option (`sh -c 'echo {}'`) is shell code, and is expanded as in
    /// [`Mode::Shell`].
    Direct,
    /// The words joined by spaces are a `/bin/sh -c` script; values arrive through variables.
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
    /// In direct mode, the index of the word that is a shell's `-c` script.
    script_word: Option<usize>,
    /// The number of input sources.
    sources: usize,
}

/// What a job's replacement strings are filled from: its input values (one per input source),
/// its number and its slot.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Inputs<'a> {
    /// One value per input source, in the order the sources were given.
    pub(crate) values: &'a [String],
    /// The job number, from 1, in input order (`{#}`).
    pub(crate) seq: usize,
    /// The job slot, from 1 to the number of jobs at once (`{%}`).
    pub(crate) slot: usize,
}

/// Which part of a value a replacement string takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Part {
    Whole,
    NoExtension,
    Basename,
    Dirname,
    BasenameNoExtension,
}

impl Part {
    /// The suffix after `{` / `{N` (`.`, `/`, `//`, `/.`) and of the variable name.
    const ALL: [(Part, &'static str, &'static str); 5] = [
        (Part::Dirname, "//", "_DIRNAME"),
        (Part::BasenameNoExtension, "/.", "_BASENAME_NOEXT"),
        (Part::Basename, "/", "_BASENAME"),
        (Part::NoExtension, ".", "_NOEXT"),
        (Part::Whole, "", ""),
    ];

    fn apply(self, value: &str) -> &str {
        match self {
            Part::Whole => value,
            Part::NoExtension => without_extension(value),
            Part::Basename => basename(value),
            Part::Dirname => dirname(value),
            Part::BasenameNoExtension => without_extension(basename(value)),
        }
    }

    fn marker(self) -> &'static str {
        Part::ALL
            .iter()
            .find(|(p, ..)| *p == self)
            .map_or("", |(_, m, _)| m)
    }

    fn var_suffix(self) -> &'static str {
        Part::ALL
            .iter()
            .find(|(p, ..)| *p == self)
            .map_or("", |(.., v)| v)
    }
}

/// One value a replacement string stands for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Value {
    /// `{}` `{.}` `{/}` `{//}` `{/.}`: every input value (joined by spaces when there are
    /// several sources); `{N}` `{N.}` ...: input source N only (from 1).
    Arg(Option<usize>, Part),
    /// `{#}`: the job number.
    Seq,
    /// `{%}`: the job slot.
    Slot,
}

/// The replacement string at the start of `text`, and its length.
fn parse_placeholder(text: &str) -> Option<(Value, usize)> {
    let inner = text.strip_prefix('{')?;
    let close = inner.find('}')?;
    let body = &inner[..close];
    let len = close + 2;
    match body {
        "#" => return Some((Value::Seq, len)),
        "%" => return Some((Value::Slot, len)),
        _ => {}
    }
    let digits = body.bytes().take_while(u8::is_ascii_digit).count();
    let position = match digits {
        0 => None,
        _ if body.starts_with('0') => return None,
        _ => Some(body[..digits].parse().ok()?),
    };
    let marker = &body[digits..];
    let (part, ..) = Part::ALL.iter().find(|(_, m, _)| *m == marker)?;
    Some((Value::Arg(position, *part), len))
}

/// Every replacement string in `word`.
fn placeholders_in(word: &str) -> Vec<Value> {
    let mut found = Vec::new();
    let mut rest = word;
    while let Some(open) = rest.find('{') {
        rest = &rest[open..];
        match parse_placeholder(rest) {
            Some((value, len)) => {
                found.push(value);
                rest = &rest[len..];
            }
            None => rest = &rest[1..],
        }
    }
    found
}

impl Value {
    /// The environment variable that carries this value into a shell script.
    fn var(self) -> String {
        match self {
            Value::Arg(None, part) => format!("CREW_ARG{}", part.var_suffix()),
            Value::Arg(Some(n), part) => format!("CREW_ARG_{n}{}", part.var_suffix()),
            Value::Seq => "CREW_SEQ".to_owned(),
            Value::Slot => "CREW_SLOT".to_owned(),
        }
    }

    fn placeholder(self) -> String {
        match self {
            Value::Arg(None, part) => format!("{{{}}}", part.marker()),
            Value::Arg(Some(n), part) => format!("{{{n}{}}}", part.marker()),
            Value::Seq => "{#}".to_owned(),
            Value::Slot => "{%}".to_owned(),
        }
    }

    fn of(self, job: &Inputs<'_>) -> String {
        match self {
            Value::Arg(None, part) => {
                let mut joined = String::new();
                for (index, value) in job.values.iter().enumerate() {
                    if index > 0 {
                        joined.push(' ');
                    }
                    joined.push_str(part.apply(value));
                }
                joined
            }
            Value::Arg(Some(n), part) => job
                .values
                .get(n - 1)
                .map_or_else(String::new, |value| part.apply(value).to_owned()),
            Value::Seq => job.seq.to_string(),
            Value::Slot => job.slot.to_string(),
        }
    }

    /// With several input sources, a bare `{}` stands for one word per source, as in GNU
    /// parallel: the values of each source, one by one.
    fn split(self, sources: usize) -> Option<impl Iterator<Item = Value>> {
        match self {
            Value::Arg(None, part) if sources > 1 => {
                Some((1..=sources).map(move |n| Value::Arg(Some(n), part)))
            }
            _ => None,
        }
    }
}

/// Programs whose `-c` option takes a script.
const SHELLS: [&str; 8] = ["sh", "bash", "dash", "zsh", "ksh", "mksh", "ash", "yash"];

impl Template {
    /// `words` is the command after `--`; `force_shell` is `--shell`; `sources` the number of
    /// input sources (`{1}`, `{2}`, ... go up to it). A single word with spaces or shell
    /// syntax in it (`'echo {} | wc -c'`) is a shell script too. Without words, each argument
    /// is run as a shell command.
    ///
    /// # Errors
    /// A positional replacement string beyond the number of input sources.
    pub(crate) fn new(
        words: Vec<String>,
        force_shell: bool,
        sources: usize,
    ) -> Result<Self, String> {
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
        let mut has_placeholder = false;
        for value in words.iter().flat_map(|word| placeholders_in(word)) {
            has_placeholder = true;
            if let Value::Arg(Some(n), _) = value {
                if n == 0 || n > sources {
                    return Err(format!(
                        "the command uses {} but there {} {sources} input source{}: give one \
                         `:::` group or `::::` file per position",
                        value.placeholder(),
                        if sources == 1 { "is" } else { "are" },
                        if sources == 1 { "" } else { "s" },
                    ));
                }
            }
        }
        let script_word = match mode {
            Mode::Direct => shell_script_word(&words),
            _ => None,
        };
        Ok(Self {
            words,
            mode,
            has_placeholder,
            script_word,
            sources: sources.max(1),
        })
    }

    /// Whether the command uses the job slot (`{%}`).
    pub(crate) fn uses_slot(&self) -> bool {
        self.words
            .iter()
            .any(|word| placeholders_in(word).contains(&Value::Slot))
    }

    #[cfg(test)]
    pub(crate) fn mode(&self) -> Mode {
        self.mode
    }

    /// The command for one job, and how to show it to a person (`--dry-run`, the joblog,
    /// messages): the values quoted in place, as a shell would read them.
    pub(crate) fn command(&self, job: &Inputs<'_>) -> (Command, String) {
        match self.mode {
            Mode::Direct => {
                let mut used = Vec::new();
                let mut words = Vec::with_capacity(self.words.len() + self.sources);
                let mut shown = Vec::with_capacity(self.words.len() + self.sources);
                fn push(words: &mut Vec<String>, shown: &mut Vec<String>, word: String) {
                    shown.push(quote(&word));
                    words.push(word);
                }
                for (index, word) in self.words.iter().enumerate() {
                    if Some(index) == self.script_word {
                        words.push(expand_script(word, self.sources, &mut used));
                        shown.push(quote(&show_script(word, self.sources, job)));
                        continue;
                    }
                    // A word that is just `{}` (or `{.}` ...) is one word per input source.
                    let whole = parse_placeholder(word)
                        .filter(|(_, len)| *len == word.len())
                        .and_then(|(value, _)| value.split(self.sources));
                    match whole {
                        Some(values) => {
                            values.for_each(|value| push(&mut words, &mut shown, value.of(job)))
                        }
                        None => push(&mut words, &mut shown, expand(word, job)),
                    }
                }
                if !self.has_placeholder {
                    for value in job.values {
                        push(&mut words, &mut shown, value.clone());
                    }
                }
                // Values that stand for bytes that are not UTF-8 become those bytes here.
                let command = Command::new(raw::decode(&words[0]))
                    .args(words[1..].iter().map(|w| raw::decode(w)));
                (with_values(command, &used, job), shown.join(" "))
            }
            Mode::Shell => {
                let mut script = self.words.join(" ");
                if !self.has_placeholder {
                    script.push_str(" {}");
                }
                let mut used = Vec::new();
                let command = shell(expand_script(&script, self.sources, &mut used));
                (
                    with_values(command, &used, job),
                    show_script(&script, self.sources, job),
                )
            }
            Mode::Argument => {
                let script = job.values.join(" ");
                (shell(script.clone()), script)
            }
        }
    }
}

/// `/bin/sh -c script`, the script's bytes as [`raw`] encodes them; shown (in the command's
/// `Display`, its errors and `Completed::command`) as text, bytes that are not UTF-8 replaced.
fn shell(script: String) -> Command {
    Command::shell_os(raw::decode(&script))
}

/// In `sh -c SCRIPT ...` (options allowed before `-c`), the index of SCRIPT.
fn shell_script_word(words: &[String]) -> Option<usize> {
    let program = words.first()?;
    if !SHELLS.contains(&basename(program)) {
        return None;
    }
    let mut index = 1;
    while let Some(word) = words.get(index) {
        let is_option = (word.starts_with('-') || word.starts_with('+')) && word.len() > 1;
        if !is_option || word == "--" {
            return None;
        }
        if word.starts_with('-') && !word.starts_with("--") && word.contains('c') {
            return (index + 1 < words.len()).then_some(index + 1);
        }
        // `-o NAME` takes the next word.
        index += if word == "-o" || word == "+o" { 2 } else { 1 };
    }
    None
}

/// `command` with the environment variables the script's expansions read.
///
/// Inside `$(( ))` a shell evaluates the value as an expression, and bash runs `$(...)` in
/// `a[$(...)]` there whatever the quoting, so a value used there must be a whole number; any
/// other value makes the job fail with a message instead of running.
fn with_values(mut command: Command, used: &[(Value, Quoting)], job: &Inputs<'_>) -> Command {
    for &(value, quoting) in used {
        let text = value.of(job);
        if quoting == Quoting::Arithmetic && !is_integer(&text) {
            let message = format!(
                "{} stands inside $(( )), where the shell evaluates it as code, and {text:?} \
                 is not a whole number; the job was not run",
                value.placeholder()
            );
            return Command::shell(r#"printf 'crew run: %s\n' "$CREW_ERROR" >&2; exit 2"#)
                .env("CREW_ERROR", message);
        }
        command = command.env(value.var(), raw::decode(&text));
    }
    command
}

fn is_integer(text: &str) -> bool {
    let digits = text.strip_prefix(['-', '+']).unwrap_or(text);
    !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit())
}

/// A word of direct mode: every replacement string replaced by its value, verbatim.
pub(crate) fn expand(word: &str, job: &Inputs<'_>) -> String {
    let mut out = String::with_capacity(word.len() + 16);
    let mut rest = word;
    while let Some(open) = rest.find('{') {
        out.push_str(&rest[..open]);
        rest = &rest[open..];
        match parse_placeholder(rest) {
            Some((value, len)) => {
                out.push_str(&value.of(job));
                rest = &rest[len..];
            }
            None => {
                out.push('{');
                rest = &rest[1..];
            }
        }
    }
    out.push_str(rest);
    out
}

/// The quoting context at a point of a shell script.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Quoting {
    Bare,
    Single,
    Double,
    /// Inside `$(( ))`, where the shell evaluates the expanded text as an expression.
    Arithmetic,
}

/// What ends a nested command: the script's end, `)` of `$(`, `))` of `$((`, or a backtick.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Closer {
    End,
    Paren,
    Arithmetic,
    Backtick,
}

#[derive(Debug)]
struct Frame {
    quoting: Quoting,
    closer: Closer,
    /// Open `(` of subshells and arithmetic inside this frame.
    parens: usize,
}

/// The POSIX shell's quoting rules, enough to know the context of every replacement string:
/// single and double quotes, backslashes, comments, and `$(...)` and backticks, which start a
/// fresh context even inside double quotes.
#[derive(Debug)]
struct Lexer {
    stack: Vec<Frame>,
}

impl Lexer {
    fn new() -> Self {
        Self {
            stack: vec![Frame {
                quoting: Quoting::Bare,
                closer: Closer::End,
                parens: 0,
            }],
        }
    }

    fn top(&mut self) -> &mut Frame {
        self.stack
            .last_mut()
            .expect("the outermost frame is never popped")
    }

    fn push(&mut self, closer: Closer) {
        self.stack.push(Frame {
            quoting: Quoting::Bare,
            closer,
            parens: 0,
        });
    }

    fn pop(&mut self) {
        if self.stack.len() > 1 {
            self.stack.pop();
        }
    }

    /// Walks `script`, calling `on_value` at every replacement string with its context and
    /// copying everything else; returns the result.
    fn rewrite(
        mut self,
        script: &str,
        mut on_value: impl FnMut(Quoting, Value) -> String,
    ) -> String {
        let mut out = String::with_capacity(script.len() + 32);
        let mut rest = script;
        let mut word_start = true;
        let mut comment = false;
        'scan: while let Some(c) = rest.chars().next() {
            if c == '{' {
                if let Some((value, len)) = parse_placeholder(rest) {
                    let frame = self.top();
                    let quoting = match (frame.closer, frame.quoting) {
                        (Closer::Arithmetic, Quoting::Bare | Quoting::Double) => {
                            Quoting::Arithmetic
                        }
                        (_, quoting) => quoting,
                    };
                    out.push_str(&on_value(quoting, value));
                    rest = &rest[len..];
                    word_start = false;
                    continue 'scan;
                }
            }
            let mut taken = c.len_utf8();
            if comment {
                comment = c != '\n';
                word_start = !comment;
                out.push(c);
                rest = &rest[taken..];
                continue;
            }
            let frame = self.top();
            match (frame.quoting, c) {
                (Quoting::Single, '\'') => frame.quoting = Quoting::Bare,
                (Quoting::Single, _) => {}
                (_, '\\') => taken += rest[1..].chars().next().map_or(0, char::len_utf8),
                (Quoting::Bare, '\'') => frame.quoting = Quoting::Single,
                (Quoting::Bare, '"') => frame.quoting = Quoting::Double,
                (Quoting::Double, '"') => frame.quoting = Quoting::Bare,
                (_, '$') if rest[1..].starts_with("((") => {
                    taken += 2;
                    self.push(Closer::Arithmetic);
                }
                (_, '$') if rest[1..].starts_with('(') => {
                    taken += 1;
                    self.push(Closer::Paren);
                }
                (_, '`') if frame.closer == Closer::Backtick => self.pop(),
                (_, '`') => self.push(Closer::Backtick),
                (Quoting::Bare, '(') => frame.parens += 1,
                (Quoting::Bare, ')') if frame.parens > 0 => frame.parens -= 1,
                (Quoting::Bare, ')') if frame.closer == Closer::Paren => self.pop(),
                (Quoting::Bare, ')') if frame.closer == Closer::Arithmetic => {
                    taken += usize::from(rest[1..].starts_with(')'));
                    self.pop();
                }
                // A comment runs to the end of the line and changes no context.
                (Quoting::Bare, '#') if word_start => comment = true,
                _ => {}
            }
            word_start = c.is_whitespace() || ";&|(".contains(c);
            out.push_str(&rest[..taken]);
            rest = &rest[taken..];
        }
        out
    }
}
/// `script` with every replacement string an expansion of its variable, written for its
/// quoting context; the values used are added to `used`. With several input `sources`, a bare
/// `{}` becomes one word per source.
fn expand_script(script: &str, sources: usize, used: &mut Vec<(Value, Quoting)>) -> String {
    Lexer::new().rewrite(script, |quoting, value| {
        let mut expand_one = |value: Value| {
            if !used.contains(&(value, quoting)) {
                used.push((value, quoting));
            }
            let var = value.var();
            match quoting {
                Quoting::Bare => format!("\"${{{var}}}\""),
                Quoting::Double => format!("${{{var}}}"),
                Quoting::Single => format!("'\"${{{var}}}\"'"),
                Quoting::Arithmetic => format!("${{{var}}}"),
            }
        };
        match value.split(sources) {
            Some(values) if quoting == Quoting::Bare => {
                values.map(expand_one).collect::<Vec<_>>().join(" ")
            }
            _ => expand_one(value),
        }
    })
}

/// `script` as a person reads it: every value quoted in place for its context.
fn show_script(script: &str, sources: usize, job: &Inputs<'_>) -> String {
    Lexer::new().rewrite(script, |quoting, value| {
        let show_one = |value: Value| {
            let value = value.of(job);
            let quoted = quote(&value);
            match quoting {
                _ if quoted == value => value,
                Quoting::Arithmetic => quoted,
                Quoting::Bare => quoted,
                Quoting::Double => format!("\"{quoted}\""),
                Quoting::Single => format!("'{quoted}'"),
            }
        };
        match value.split(sources) {
            Some(values) if quoting == Quoting::Bare => {
                values.map(show_one).collect::<Vec<_>>().join(" ")
            }
            _ => show_one(value),
        }
    })
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

    fn ex(word: &str, arg: &str, seq: usize) -> String {
        let values = [arg.to_owned()];
        expand(
            word,
            &Inputs {
                values: &values,
                seq,
                slot: 1,
            },
        )
    }

    fn shown(script: &str, arg: &str, seq: usize) -> String {
        let values = [arg.to_owned()];
        show_script(
            script,
            1,
            &Inputs {
                values: &values,
                seq,
                slot: 1,
            },
        )
    }

    fn cmd(template: &Template, arg: &str, seq: usize) -> (Command, String) {
        let values = [arg.to_owned()];
        template.command(&Inputs {
            values: &values,
            seq,
            slot: 1,
        })
    }

    const ARG: Value = Value::Arg(None, Part::Whole);

    #[test]
    fn replacement_strings_follow_gnu_parallel() {
        let arg = "dir/sub/file.tar.gz";
        assert_eq!(ex("{}", arg, 7), "dir/sub/file.tar.gz");
        assert_eq!(ex("{.}", arg, 7), "dir/sub/file.tar");
        assert_eq!(ex("{/}", arg, 7), "file.tar.gz");
        assert_eq!(ex("{//}", arg, 7), "dir/sub");
        assert_eq!(ex("{/.}", arg, 7), "file.tar");
        assert_eq!(ex("{#}", arg, 7), "7");
        assert_eq!(ex("pre-{/.}-{#}.out", arg, 12), "pre-file.tar-12.out");
    }

    #[test]
    fn edge_cases_of_paths() {
        assert_eq!(ex("{//}", "file", 1), ".");
        assert_eq!(ex("{//}", "/file", 1), "/");
        assert_eq!(ex("{.}", ".bashrc", 1), ".bashrc");
        assert_eq!(ex("{.}", "a.b/c", 1), "a.b/c");
        assert_eq!(ex("{/}", "dir/", 1), "dir");
        assert_eq!(ex("{/.}", "x/.hidden", 1), ".hidden");
    }

    #[test]
    fn braces_that_are_not_placeholders_stay() {
        assert_eq!(ex("{a}{}{", "x", 1), "{a}x{");
        assert_eq!(ex("${HOME}", "x", 1), "${HOME}");
        let mut used = Vec::new();
        assert_eq!(expand_script("${HOME}{a}", 1, &mut used), "${HOME}{a}");
        assert!(used.is_empty());
    }

    #[test]
    fn scripts_read_values_from_variables_written_for_their_context() {
        let mut used = Vec::new();
        assert_eq!(
            expand_script(r#"echo {} "{/}" '{.}' {#}"#, 1, &mut used),
            r#"echo "${CREW_ARG}" "${CREW_ARG_BASENAME}" ''"${CREW_ARG_NOEXT}"'' "${CREW_SEQ}""#
        );
        assert_eq!(
            used,
            [
                (ARG, Quoting::Bare),
                (Value::Arg(None, Part::Basename), Quoting::Double),
                (Value::Arg(None, Part::NoExtension), Quoting::Single),
                (Value::Seq, Quoting::Bare)
            ]
        );
    }

    #[test]
    fn command_substitution_and_backticks_start_a_fresh_context() {
        let mut used = Vec::new();
        assert_eq!(
            expand_script(
                r#"echo "$(basename "{}")" "`echo {}`" $((1)) {}"#,
                1,
                &mut used
            ),
            r#"echo "$(basename "${CREW_ARG}")" "`echo "${CREW_ARG}"`" $((1)) "${CREW_ARG}""#
        );
        // Escaped quotes open nothing; a comment's quote changes no context.
        assert_eq!(
            expand_script("echo \\\" {} # it's\necho '{}'", 1, &mut used),
            "echo \\\" \"${CREW_ARG}\" # it's\necho ''\"${CREW_ARG}\"''"
        );
        assert_eq!(
            expand_script("# it's\n# one's\necho '{}'", 1, &mut used),
            "# it's\n# one's\necho ''\"${CREW_ARG}\"''"
        );
        assert_eq!(
            expand_script(r#"echo "a\"{}" 'x\'{}"#, 1, &mut used),
            r#"echo "a\"${CREW_ARG}" 'x\'"${CREW_ARG}""#
        );
    }

    #[test]
    fn arithmetic_is_a_context_of_its_own() {
        let mut used = Vec::new();
        assert_eq!(
            expand_script(r#"echo $(( {} * (2 + 1) )) "$(({}))" {}"#, 1, &mut used),
            r#"echo $(( ${CREW_ARG} * (2 + 1) )) "$((${CREW_ARG}))" "${CREW_ARG}""#
        );
        assert_eq!(used, [(ARG, Quoting::Arithmetic), (ARG, Quoting::Bare)]);
        assert!(is_integer("-12") && is_integer("7") && !is_integer("") && !is_integer("1e3"));
    }

    #[test]
    fn shown_commands_quote_values_in_place() {
        let arg = "it's \"$x\" `y`";
        let shown_text = shown(r#"printf '%s|' {} "{}" '{}' {#}"#, arg, 3);
        assert_eq!(
            shown_text,
            r#"printf '%s|' 'it'\''s "$x" `y`' ""'it'\''s "$x" `y`'"" '''it'\''s "$x" `y`''' 3"#
        );
        // A person pasting it into a shell gets what the job got.
        let done = Command::shell(shown_text).checked_output().unwrap();
        assert_eq!(done.stdout_str(), format!("{arg}|{arg}|{arg}|3|"));
        assert_eq!(shown(r#"echo "{}""#, "plain", 1), r#"echo "plain""#);
    }

    #[test]
    fn argument_is_appended_without_placeholder() {
        let template = Template::new(vec!["echo".into(), "-n".into()], false, 1).unwrap();
        assert_eq!(template.mode(), Mode::Direct);
        assert_eq!(cmd(&template, "a b", 1).1, "echo -n 'a b'");
        let template = Template::new(vec!["echo {} | wc -c".into()], false, 1).unwrap();
        assert_eq!(template.mode(), Mode::Shell);
        assert_eq!(cmd(&template, "x y", 1).1, "echo 'x y' | wc -c");
        let template = Template::new(vec!["echo".into()], true, 1).unwrap();
        let done = cmd(&template, "$(echo no)", 1).0.output().unwrap();
        assert_eq!(done.stdout_str(), "$(echo no)\n");
    }

    #[test]
    fn a_script_that_is_not_utf8_runs_its_bytes_and_shows_as_text() {
        let value = raw::encode(b"printf '%s' caf\xe9");
        let template = Template::new(Vec::new(), false, 1).unwrap();
        let (command, shown) = cmd(&template, &value, 1);
        // Shown as the script, like any other shell command (not as `/bin/sh -c '...' sh`).
        assert_eq!(command.to_string(), "printf '%s' caf\u{FFFD}");
        assert_eq!(raw::decode_bytes(&shown), b"printf '%s' caf\xe9");
        let done = command.output().unwrap();
        assert_eq!(done.stdout, b"caf\xe9");
        assert_eq!(done.command, "printf '%s' caf\u{FFFD}");
        let template = Template::new(vec!["echo {} >/dev/null".into()], false, 1).unwrap();
        let (command, _) = cmd(&template, &raw::encode(b"\xff"), 1);
        assert_eq!(command.to_string(), r#"echo "${CREW_ARG}" >/dev/null"#);
    }

    #[test]
    fn direct_mode_passes_values_verbatim() {
        let template =
            Template::new(vec!["printf".into(), "%s".into(), "<{}>".into()], false, 1).unwrap();
        let done = cmd(&template, "$HOME 'q'", 1).0.checked_output().unwrap();
        assert_eq!(done.stdout_str(), "<$HOME 'q'>");
    }

    #[test]
    fn a_shells_dash_c_script_is_found() {
        let words = |list: &[&str]| list.iter().map(|w| w.to_string()).collect::<Vec<_>>();
        assert_eq!(shell_script_word(&words(&["sh", "-c", "x"])), Some(2));
        assert_eq!(
            shell_script_word(&words(&["/bin/bash", "-ec", "x"])),
            Some(2)
        );
        assert_eq!(
            shell_script_word(&words(&["bash", "-o", "pipefail", "-c", "x"])),
            Some(4)
        );
        assert_eq!(shell_script_word(&words(&["sh", "script.sh", "-c"])), None);
        assert_eq!(shell_script_word(&words(&["sh", "-c"])), None);
        assert_eq!(shell_script_word(&words(&["python3", "-c", "x"])), None);
    }

    #[test]
    fn positional_strings_slots_and_several_sources() {
        let values = ["dir/a.txt".to_owned(), "x y".to_owned()];
        let job = Inputs {
            values: &values,
            seq: 4,
            slot: 2,
        };
        assert_eq!(
            expand("{2}|{1.}|{1/}|{1//}|{1/.}|{%}|{#}|{}", &job),
            "x y|dir/a|a.txt|dir|a|2|4|dir/a.txt x y"
        );
        assert_eq!(expand("{0}{01}{3x}", &job), "{0}{01}{3x}");
        let mut used = Vec::new();
        assert_eq!(
            expand_script(r#"echo {} "{}" {2}"#, 2, &mut used),
            r#"echo "${CREW_ARG_1}" "${CREW_ARG_2}" "${CREW_ARG}" "${CREW_ARG_2}""#
        );
        let template =
            Template::new(vec!["printf".into(), "<%s>".into(), "{}".into()], false, 2).unwrap();
        let (command, shown) = template.command(&job);
        assert_eq!(shown, "printf '<%s>' dir/a.txt 'x y'");
        assert_eq!(command.output().unwrap().stdout_str(), "<dir/a.txt><x y>");
        let error = Template::new(vec!["echo".into(), "{3}".into()], false, 2).unwrap_err();
        assert!(
            error.contains("{3}") && error.contains("2 input sources"),
            "{error}"
        );
    }
}
