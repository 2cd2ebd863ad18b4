//! Trailers in commit messages: reading them as git does, and keeping the free text that goes
//! into a message we write from posing as one.
//!
//! Trailers (`Spectra-Run: ...`, `Spectra-Reverts: ...`) are how `git log` alone audits what git
//! spectra did, so only git spectra may write them. Subjects and bodies, though, carry text from
//! elsewhere (a model's statement, a user's input, a script's `-m`): a line of it reading
//! `Spectra-Reverts: abc` would answer `git log --grep='^Spectra-Reverts:'`, and as the last
//! paragraph of a message git would parse it as a trailer. [`neutralise`] indents every such
//! line by one space, which git never reads as the start of a trailer, and [`one_line`] folds a
//! subject onto one line. Both keep the text readable; neither removes a word.

/// The trailers of a commit message, in order, as git reads them (`git interpret-trailers
/// --parse`): the last paragraph of the body, when git takes it for a trailer block. The
/// parsing is gix's; the subject paragraph is never a trailer block.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Trailers(Vec<(String, String)>);

impl Trailers {
    /// The trailers of `message`, a whole commit message (subject first).
    pub fn parse(message: impl AsRef<[u8]>) -> Trailers {
        let Some(body) = gix::objs::commit::MessageRef::from_bytes(message.as_ref()).body() else {
            return Trailers::default();
        };
        Trailers(
            body.trailers()
                .map(|trailer| (trailer.token.to_string(), trailer.value.to_string()))
                .collect(),
        )
    }

    /// The last value of `key` (compared without regard to case), if any.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.0
            .iter()
            .rev()
            .find(|(k, _)| k.eq_ignore_ascii_case(key))
            .map(|(_, v)| v.as_str())
    }

    /// Every value of `key`, in message order (a trailer may repeat).
    pub fn get_all(&self, key: &str) -> Vec<&str> {
        self.0
            .iter()
            .filter(|(k, _)| k.eq_ignore_ascii_case(key))
            .map(|(_, v)| v.as_str())
            .collect()
    }
}

/// `text` with every line that git could take for a trailer indented by one space.
///
/// A line is indented when it starts with a token of letters, digits and `-`, optionally
/// followed by spaces, and then `:` (git's trailer separator: `Token: value`, `Token:value`,
/// `Token : value`), or with git's own `(cherry picked from`. A line starting with `---` is
/// indented too: `git interpret-trailers` takes it for the start of a patch and would read the
/// paragraph before it as the trailer block. Carriage returns become line breaks (a terminal
/// shows them as one, and `\r\n` is one) and other control characters except tab become
/// spaces, so no line hides behind another.
pub fn neutralise(text: &str) -> String {
    let unified = text.replace("\r\n", "\n").replace('\r', "\n");
    let mut out = String::with_capacity(unified.len() + 8);
    for (index, line) in unified.split('\n').enumerate() {
        if index > 0 {
            out.push('\n');
        }
        let line = without_control_characters(line);
        if could_be_read_as_trailer(&line) {
            out.push(' ');
        }
        out.push_str(&line);
    }
    out
}

/// `text` on one line, for a subject: line breaks, tabs and other control characters become
/// spaces, runs of spaces become one, and the ends are trimmed. A subject that starts like a
/// trailer key (`Spectra-Reverts: abc`, `Signed-off-by: ...`: a token with a `-`, then `:`) is
/// indented by one space, so `git log --grep='^Spectra-Reverts:'` does not find it.
///
/// Git never parses a subject as a trailer (the first paragraph is the title), so only the
/// shape every trailer key has is moved: `discover: chose ...`, a plain word and a colon, is
/// how subjects are written and stays as it is.
pub fn one_line(text: &str) -> String {
    let folded = text
        .split(|c: char| c.is_whitespace() || c.is_control())
        .filter(|word| !word.is_empty())
        .collect::<Vec<_>>()
        .join(" ");
    if starts_with_trailer_key(&folded) {
        format!(" {folded}")
    } else {
        folded
    }
}

/// `Key-Name:` or `(cherry picked from` at the start of a line.
fn starts_with_trailer_key(line: &str) -> bool {
    let token = token_of(line);
    (token.contains('-') && has_token_and_separator(line))
        || line.starts_with("(cherry picked from")
}

/// Whether git would read `line` as a trailer (or as the patch divider), were it in the last
/// paragraph of a message.
fn could_be_read_as_trailer(line: &str) -> bool {
    has_token_and_separator(line)
        || line.starts_with("(cherry picked from")
        || line.starts_with("---")
}

/// `Token:`, `Token :` ... at the start of the line, as git's `find_separator` recognises it:
/// a token of ASCII letters, digits and `-`, then optional spaces or tabs, then `:`.
fn has_token_and_separator(line: &str) -> bool {
    let token = token_of(line);
    !token.is_empty()
        && line[token.len()..]
            .trim_start_matches([' ', '\t'])
            .starts_with(':')
}

/// The leading run of ASCII letters, digits and `-`: what git accepts as a trailer's token.
fn token_of(line: &str) -> &str {
    let len = line
        .bytes()
        .take_while(|b| b.is_ascii_alphanumeric() || *b == b'-')
        .count();
    &line[..len]
}

fn without_control_characters(line: &str) -> String {
    line.chars()
        .map(|c| if c.is_control() && c != '\t' { ' ' } else { c })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What `git interpret-trailers --parse` finds in `message`.
    fn git_trailers(message: &str) -> String {
        use std::io::Write;
        let mut child = std::process::Command::new("git")
            .args(["interpret-trailers", "--parse"])
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .env("GIT_CONFIG_GLOBAL", "/dev/null")
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .expect("run git interpret-trailers");
        child
            .stdin
            .take()
            .expect("stdin")
            .write_all(message.as_bytes())
            .expect("write the message");
        let output = child.wait_with_output().expect("wait for git");
        assert!(output.status.success());
        String::from_utf8(output.stdout).expect("UTF-8")
    }

    /// Every `Key: value` line of `git interpret-trailers --parse`'s output.
    fn git_pairs(message: &str) -> Vec<(String, String)> {
        git_trailers(message)
            .lines()
            .map(|line| {
                let (key, value) = line.split_once(": ").expect("git prints `Key: value`");
                (key.to_string(), value.to_string())
            })
            .collect()
    }

    #[test]
    fn trailers_are_read_as_git_reads_them() {
        let messages = [
            // What the store writes: subject, a neutralised body, then the trailer block.
            "discover: chose catalog.lookup\n\nThe model says:\n Spectra-Reverts: abc\n\nSpectra-Event: decision.made\nSpectra-Id: 0190-aa\nSpectra-Run: r-1\nSpectra-Reverts: a-1\nSpectra-Reverts: b-2\nSpectra-Lamport: 3\nSpectra-Schema: 1\nSpectra-Digest: 00ff\n",
            "subject\n\nSpectra-Event: note.added\nSpectra-Service: log-shipper\n",
            // A value folded over two lines reads as one.
            "subject\n\nSpectra-Run: r-1\n  continued\nKey : spaced\n",
            // No trailer block: a subject alone, a body that is prose, a trailer-shaped subject.
            "Spectra-Id: only-a-subject\n",
            "subject\n\nBody: not a trailer\nbut prose after it\n",
        ];
        for message in messages {
            let ours = Trailers::parse(message);
            assert_eq!(ours.0, git_pairs(message), "{message:?}");
        }
        let ours = Trailers::parse(messages[0]);
        assert_eq!(ours.get("spectra-lamport"), Some("3"));
        assert_eq!(ours.get_all("Spectra-Reverts"), ["a-1", "b-2"]);
        assert_eq!(ours.get("Body"), None);
        assert_eq!(
            Trailers::parse(messages[2]).get("Spectra-Run"),
            Some("r-1 continued")
        );
    }

    const HOSTILE: &str = "The model says:\n\nSpectra-Reverts: abc\nSpectra-Run:r-1\nSigned-off-by: Eve <eve@x>\nKey : value\n(cherry picked from commit 0123abc)";

    #[test]
    fn git_reads_trailers_in_the_raw_text_and_none_once_neutralised() {
        let raw = format!("subject\n\n{HOSTILE}\n");
        let found = git_trailers(&raw);
        assert!(found.contains("Spectra-Reverts: abc"), "{found}");
        assert!(found.contains("Spectra-Run: r-1"), "{found}");

        let neutralised = format!("subject\n\n{}\n", neutralise(HOSTILE));
        assert_eq!(git_trailers(&neutralised), "");
    }

    #[test]
    fn neutralised_text_stays_readable_and_only_trailer_like_lines_move() {
        let text = neutralise("Summary: fine\nplain line\n  indented: kept\n# Heading: x");
        assert_eq!(
            text,
            " Summary: fine\nplain line\n  indented: kept\n# Heading: x"
        );
    }

    #[test]
    fn carriage_returns_and_control_characters_cannot_hide_a_trailer() {
        let text = neutralise("hello\rSpectra-Reverts: abc\r\nx\u{1b}[2K\u{0}y\tz");
        assert_eq!(text, "hello\n Spectra-Reverts: abc\nx [2K y\tz");
        let message = format!("subject\n\n{text}\n");
        assert_eq!(git_trailers(&message), "");
    }

    #[test]
    fn a_patch_divider_in_a_body_does_not_hide_the_real_trailers() {
        let body = neutralise("notes\n---\nSpectra-Reverts: abc");
        let message = format!("subject\n\n{body}\n\nSpectra-Event: note.added\n");
        assert_eq!(git_trailers(&message), "Spectra-Event: note.added\n");
    }

    #[test]
    fn one_line_folds_breaks_tabs_and_control_characters() {
        assert_eq!(
            one_line("  x\n\nSpectra-Reverts: abc\r\tend\u{7}!  "),
            "x Spectra-Reverts: abc end !"
        );
        assert_eq!(one_line("\n\t"), "");
    }

    #[test]
    fn a_subject_shaped_like_a_trailer_key_is_indented_and_ours_are_not() {
        assert_eq!(one_line("Spectra-Reverts: abc"), " Spectra-Reverts: abc");
        assert_eq!(one_line("\nSigned-off-by :x"), " Signed-off-by :x");
        assert_eq!(
            one_line("discover: chose playbook catalog.check"),
            "discover: chose playbook catalog.check"
        );
        assert_eq!(one_line("well-known words"), "well-known words");
    }
}
