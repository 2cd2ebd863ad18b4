//! Opens the repository exactly as git would for an external command.
//!
//! `git spectra` runs as a git subcommand, so git has already applied `-C`, `--git-dir` and
//! `--work-tree` (as `GIT_DIR` / `GIT_WORK_TREE`) and `-c key=value` (as
//! `GIT_CONFIG_PARAMETERS`). We honour all of them, plus linked worktrees and bare
//! repositories, so the tool sees the same repository and configuration git itself would.

use std::path::{Path, PathBuf};

/// Why the repository could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum RepoError {
    /// No repository here or in any parent directory (git's own wording).
    #[error("not a git repository (or any of the parent directories): .git")]
    NotARepository,
    /// A repository was found but could not be opened.
    #[error("cannot open the repository at {path}: {message}")]
    Open {
        /// Where the repository was found.
        path: PathBuf,
        /// What gix said.
        message: String,
    },
}

impl crate::failure::Classify for RepoError {
    fn class(&self) -> crate::failure::Class {
        crate::failure::Class::Fatal
    }
}

/// Who writes: the name and email events and commits are recorded under.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    /// `user.name` or what overrides it.
    pub name: String,
    /// `user.email` or what overrides it.
    pub email: String,
}

/// The two roles git resolves an identity for; a commit needs both.
#[derive(Debug, Clone, Copy)]
enum Role {
    Author,
    Committer,
}

/// Where an identity may come from.
#[derive(Debug, Clone, Copy)]
enum Source {
    /// The environment, the config files and `git -c`.
    Everything,
    /// The environment and the config files only.
    WithoutCommandLine,
}

/// A part of the identity that nothing configures.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IdentityField {
    /// `user.name` (or `GIT_AUTHOR_NAME` / `GIT_COMMITTER_NAME`).
    Name,
    /// `user.email` (or `GIT_AUTHOR_EMAIL` / `GIT_COMMITTER_EMAIL`, `EMAIL`).
    Email,
}

impl IdentityField {
    /// The setting that gives it.
    pub fn key(self) -> &'static str {
        match self {
            IdentityField::Name => "user.name",
            IdentityField::Email => "user.email",
        }
    }

    /// The `git config` line that sets it for every repository.
    pub fn global_command(self) -> &'static str {
        match self {
            IdentityField::Name => "git config --global user.name \"Your Name\"",
            IdentityField::Email => "git config --global user.email \"you@example.com\"",
        }
    }
}

/// No git identity is configured: a command that writes refuses before writing anything
/// (git's "Author identity unknown").
#[derive(Debug, thiserror::Error)]
#[error(
    "author identity unknown: {} not set; git spectra records every event and commit under your git identity, and guesses none",
    missing_keys(.missing)
)]
pub struct IdentityError {
    /// What is missing, name first.
    pub missing: Vec<IdentityField>,
}

/// `user.name is` / `user.name and user.email are`.
fn missing_keys(missing: &[IdentityField]) -> String {
    let keys: Vec<&str> = missing.iter().map(|field| field.key()).collect();
    match keys.as_slice() {
        [one] => format!("{one} is"),
        keys => format!("{} are", keys.join(" and ")),
    }
}

impl crate::failure::Classify for IdentityError {
    fn class(&self) -> crate::failure::Class {
        crate::failure::Class::Fatal
    }

    fn hints(&self) -> Vec<String> {
        let mut hints: Vec<String> = self
            .missing
            .iter()
            .map(|field| format!("run `{}`", field.global_command()))
            .collect();
        hints.push(
            "or use --local instead of --global to set it for this repository only".to_string(),
        );
        hints
    }
}

/// An open repository and the `git -c` overrides that apply to it.
pub struct Repo {
    inner: gix::Repository,
    command_line_config: Vec<(String, String)>,
}

impl Repo {
    /// Opens the repository the current directory belongs to, honouring `GIT_DIR`,
    /// `GIT_WORK_TREE`, `GIT_CEILING_DIRECTORIES` and `GIT_CONFIG_PARAMETERS`.
    ///
    /// A thread opens it once: deciding colour, loading settings and the command itself all
    /// ask, and each search and open costs about a millisecond. Later calls share the first
    /// handle's configuration snapshot; refs and objects are always read from disk.
    pub fn discover() -> Result<Repo, RepoError> {
        thread_local! {
            static FROM_CURRENT_DIR: std::cell::OnceCell<gix::ThreadSafeRepository> =
                const { std::cell::OnceCell::new() };
        }
        if let Some(repo) = FROM_CURRENT_DIR.with(|cell| cell.get().map(Repo::from_shared)) {
            return Ok(repo);
        }
        let repo = Repo::discover_shared(Path::new("."))?;
        Ok(FROM_CURRENT_DIR.with(|cell| Repo::from_shared(cell.get_or_init(|| repo))))
    }

    /// Like [`Repo::discover`], starting the upward search at `dir`.
    pub fn discover_from(dir: &Path) -> Result<Repo, RepoError> {
        Ok(Repo::from_shared(&Repo::discover_shared(dir)?))
    }

    fn from_shared(repo: &gix::ThreadSafeRepository) -> Repo {
        let command_line_config = std::env::var("GIT_CONFIG_PARAMETERS")
            .map(|raw| parse_config_parameters(&raw))
            .unwrap_or_default();
        Repo {
            inner: repo.to_thread_local(),
            command_line_config,
        }
    }

    fn discover_shared(dir: &Path) -> Result<gix::ThreadSafeRepository, RepoError> {
        let mut trust_map = gix::sec::trust::Mapping::<gix::open::Options>::default();
        trust_map.full.modify(with_room_for_packs);
        trust_map.reduced.modify(with_room_for_packs);
        gix::ThreadSafeRepository::discover_with_environment_overrides_opts(
            dir,
            Default::default(),
            trust_map,
        )
        .map_err(|err| classify_open_error(dir, err))
    }

    /// Opens the repository at exactly `path` (a `.git` dir, a bare repository or a work tree).
    pub fn open(path: &Path) -> Result<Repo, RepoError> {
        let options = with_room_for_packs(gix::open::Options::default());
        let repo = gix::open_opts(path, options).map_err(|err| classify_open_error(path, err))?;
        Ok(Repo {
            inner: repo,
            command_line_config: Vec::new(),
        })
    }

    /// The underlying gix repository.
    pub fn gix(&self) -> &gix::Repository {
        &self.inner
    }

    /// The git dir of this checkout (a linked worktree has its own).
    pub fn git_dir(&self) -> &Path {
        self.inner.git_dir()
    }

    /// The git dir shared by all worktrees: where refs, objects and our own state live.
    pub fn common_dir(&self) -> &Path {
        self.inner.common_dir()
    }

    /// Where git spectra keeps its own files (caches, remembered endpoint facts).
    pub fn state_dir(&self) -> PathBuf {
        self.common_dir().join("spectra")
    }

    /// The work tree, or `None` in a bare repository.
    pub fn work_tree(&self) -> Option<&Path> {
        self.inner.workdir()
    }

    /// The value of a config key such as `spectra.llm.url`, with `git -c` overrides taking
    /// precedence over the repository, global and system files, as in git.
    pub fn config_string(&self, key: &str) -> Option<String> {
        let wanted = normalise_key(key);
        if let Some((_, value)) = self
            .command_line_config
            .iter()
            .rev()
            .find(|(name, _)| normalise_key(name) == wanted)
        {
            return Some(value.clone());
        }
        self.inner
            .config_snapshot()
            .string(key)
            .map(|value| value.to_string())
    }

    /// The committer identity as git resolves it: `GIT_COMMITTER_*`, then `committer.*`, then
    /// `user.*` (including `git -c` overrides, which gix alone would miss), then `EMAIL`.
    pub fn committer_identity(&self) -> (Option<String>, Option<String>) {
        self.identity_of(Role::Committer, Source::Everything)
    }

    /// The identity events and commits are recorded under, checked as `git commit` checks it
    /// with `user.useConfigOnly` set: both the author and the committer need a name and an
    /// email from the environment or the configuration. Git's last resort, a name and an
    /// email guessed from the system (`root@host.(none)`), is not an identity we record.
    ///
    /// Commands that write call it before writing anything, so a missing identity stops them
    /// with what to run, not half-way through with git's refusal of the commit.
    pub fn identity(&self) -> Result<Identity, IdentityError> {
        self.resolve_identity(Source::Everything)
    }

    /// [`Repo::identity`] as the next command will see it when not given this one's `git -c`
    /// options: after `git -c user.name=... spectra discover`, whether the user still has to set
    /// an identity.
    pub fn identity_without_command_line(&self) -> Result<Identity, IdentityError> {
        self.resolve_identity(Source::WithoutCommandLine)
    }

    fn resolve_identity(&self, source: Source) -> Result<Identity, IdentityError> {
        let (author_name, author_email) = self.identity_of(Role::Author, source);
        let (committer_name, committer_email) = self.identity_of(Role::Committer, source);
        let mut missing = Vec::new();
        if author_name.is_none() || committer_name.is_none() {
            missing.push(IdentityField::Name);
        }
        if author_email.is_none() || committer_email.is_none() {
            missing.push(IdentityField::Email);
        }
        match (committer_name, committer_email) {
            (Some(name), Some(email)) if missing.is_empty() => Ok(Identity { name, email }),
            _ => Err(IdentityError { missing }),
        }
    }

    /// One role's name and email, in git's order: `GIT_<ROLE>_*`, `<role>.*`, `user.*`, then
    /// `EMAIL` for the email. A value that is empty or only spaces counts as unset, as git
    /// refuses an empty name.
    fn identity_of(&self, role: Role, source: Source) -> (Option<String>, Option<String>) {
        let set = |value: Option<String>| value.filter(|v| !v.trim().is_empty());
        let from_env = |var: &str| set(std::env::var(var).ok());
        let config = |key: &str| match source {
            Source::Everything => self.config_string(key),
            Source::WithoutCommandLine => self
                .inner
                .config_snapshot()
                .string(key)
                .map(|value| value.to_string()),
        };
        let (env, section) = match role {
            Role::Author => ("GIT_AUTHOR", "author"),
            Role::Committer => ("GIT_COMMITTER", "committer"),
        };
        let name = from_env(&format!("{env}_NAME"))
            .or_else(|| set(config(&format!("{section}.name"))))
            .or_else(|| set(config("user.name")));
        let email = from_env(&format!("{env}_EMAIL"))
            .or_else(|| set(config(&format!("{section}.email"))))
            .or_else(|| set(config("user.email")))
            .or_else(|| from_env("EMAIL"));
        (name, email)
    }

    /// A boolean config value read the way git reads booleans.
    pub fn config_bool(&self, key: &str) -> Option<bool> {
        self.config_string(key)
            .and_then(|value| parse_git_bool(&value))
    }
}

/// The store writes a run's events as one pack, so a long-lived process sees packs appear
/// after it opened the repository; gix holds a fixed number of index slots, sized at open time.
fn with_room_for_packs(options: gix::open::Options) -> gix::open::Options {
    options.object_store_slots(gix::odb::store::init::Slots::AsNeededByDiskState {
        multiplier: 2.0,
        minimum: 1024,
    })
}

fn classify_open_error(path: &Path, err: gix::Error) -> RepoError {
    let message = err.to_string();
    let lower = message.to_lowercase();
    if lower.contains("not a git repository")
        || lower.contains("could not find")
        || lower.contains("no git repository")
        || lower.contains("did not find")
    {
        RepoError::NotARepository
    } else {
        RepoError::Open {
            path: path.to_path_buf(),
            message,
        }
    }
}

/// Git compares section and variable names case-insensitively, subsections exactly.
fn normalise_key(key: &str) -> String {
    let parts: Vec<&str> = key.split('.').collect();
    match parts.as_slice() {
        [section, rest @ .., name] if !rest.is_empty() => format!(
            "{}.{}.{}",
            section.to_lowercase(),
            rest.join("."),
            name.to_lowercase()
        ),
        _ => key.to_lowercase(),
    }
}

/// Reads git's boolean spellings (`true/yes/on/1`, `false/no/off/0`, empty = false).
pub fn parse_git_bool(value: &str) -> Option<bool> {
    match value.trim().to_lowercase().as_str() {
        "true" | "yes" | "on" | "1" => Some(true),
        "false" | "no" | "off" | "0" | "" => Some(false),
        _ => None,
    }
}

/// Parses `GIT_CONFIG_PARAMETERS`, which git fills from `git -c`: shell-quoted words that are
/// either `'key=value'` (older git) or `'key'='value'` (git 2.31 and later).
fn parse_config_parameters(raw: &str) -> Vec<(String, String)> {
    let mut pairs = Vec::new();
    let mut chars = raw.chars().peekable();
    loop {
        while chars.peek().is_some_and(|c| c.is_whitespace()) {
            chars.next();
        }
        let Some(first) = read_quoted(&mut chars) else {
            break;
        };
        if chars.peek() == Some(&'=') {
            chars.next();
            let value = read_quoted(&mut chars).unwrap_or_default();
            pairs.push((first, value));
        } else if let Some((key, value)) = first.split_once('=') {
            pairs.push((key.to_string(), value.to_string()));
        } else {
            // `git -c key` with no value means true.
            pairs.push((first, "true".to_string()));
        }
    }
    pairs
}

/// Reads one single-quoted word, undoing git's `'\''` escaping of quotes.
fn read_quoted(chars: &mut std::iter::Peekable<std::str::Chars<'_>>) -> Option<String> {
    if chars.peek() != Some(&'\'') {
        return None;
    }
    let mut word = String::new();
    while chars.peek() == Some(&'\'') {
        chars.next();
        for c in chars.by_ref() {
            if c == '\'' {
                break;
            }
            word.push(c);
        }
        // `'\''` continues the same word with a literal quote.
        if chars.peek() == Some(&'\\') {
            chars.next();
            if let Some(escaped) = chars.next() {
                word.push(escaped);
            }
        }
    }
    Some(word)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_both_config_parameter_forms() {
        let pairs = parse_config_parameters("'spectra.llm.model'='x y' 'core.bare=false'");
        assert_eq!(
            pairs,
            vec![
                ("spectra.llm.model".to_string(), "x y".to_string()),
                ("core.bare".to_string(), "false".to_string()),
            ]
        );
    }

    #[test]
    fn parses_escaped_quotes() {
        let pairs = parse_config_parameters(r"'a.b'='it'\''s'");
        assert_eq!(pairs, vec![("a.b".to_string(), "it's".to_string())]);
    }

    #[test]
    fn keys_compare_like_git() {
        assert_eq!(normalise_key("Spectra.LLM.Model"), "spectra.LLM.model");
        assert_eq!(normalise_key("Core.Bare"), "core.bare");
    }
}
