//! `builtin tag-release` and `builtin delete-release-tag`: the annotated tag
//! `<service>/v<version>` a successful deploy leaves, so `git tag` and `git log` show every
//! release. The tag's message carries the `Spectra-Run` and `Spectra-Event` trailers of the
//! playbook run that made it (`SPECTRA_RUN`, `SPECTRA_EVENT`). A tag that already exists is a
//! failure: a release is made once.

use std::path::Path;

use serde::Serialize;

use super::{BuiltinError, check_service_name, git};

/// The tag a release of `service` at `version` gets.
pub fn tag_name(service: &str, version: &str) -> String {
    format!("{service}/v{version}")
}

/// What tagging or untagging did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Tagged {
    /// The tag's short name.
    pub tag: String,
    /// The commit it points at (`None` after a delete that found no tag).
    pub commit: Option<String>,
    /// Whether the tag now exists.
    pub exists: bool,
    /// Why a delete left the tag alone (another run made it).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub left_alone: Option<String>,
}

impl Tagged {
    /// What a tag or a delete did, in a line an undo or redo shows.
    pub fn said(&self) -> String {
        let tag = &self.tag;
        match (&self.left_alone, self.exists, self.commit.as_deref()) {
            (Some(reason), _, _) => reason.clone(),
            (None, true, Some(commit)) => {
                format!("tagged {} as `{tag}`", crate::worktree::short(commit))
            }
            (None, false, Some(_)) => format!("deleted tag `{tag}`"),
            _ => format!("tag `{tag}` did not exist"),
        }
    }
}

/// Whether `version` is a semantic version (`MAJOR.MINOR.PATCH`, an optional `-pre.release`
/// and `+build`, no leading zeros), as <https://semver.org> defines it; `Err` says why not.
pub fn check_version(version: &str) -> Result<(), String> {
    let (rest, build) = match version.split_once('+') {
        Some((rest, build)) => (rest, Some(build)),
        None => (version, None),
    };
    let (core, pre) = match rest.split_once('-') {
        Some((core, pre)) => (core, Some(pre)),
        None => (rest, None),
    };
    let numbers: Vec<&str> = core.split('.').collect();
    if numbers.len() != 3 {
        return Err(format!("`{version}` is not MAJOR.MINOR.PATCH"));
    }
    for number in numbers {
        let digits = !number.is_empty() && number.bytes().all(|b| b.is_ascii_digit());
        if !digits || (number.len() > 1 && number.starts_with('0')) {
            return Err(format!(
                "`{version}`: `{number}` is not a number without leading zeros"
            ));
        }
    }
    for (part, identifiers) in [("pre-release", pre), ("build", build)] {
        let Some(identifiers) = identifiers else {
            continue;
        };
        let good = identifiers.split('.').all(|identifier| {
            !identifier.is_empty()
                && identifier
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-')
        });
        if !good {
            return Err(format!(
                "`{version}`: its {part} part `{identifiers}` is not dot-separated [0-9A-Za-z-] identifiers"
            ));
        }
    }
    Ok(())
}

/// Creates the annotated tag `<service>/v<version>` at HEAD, with `run` (the deploy's run,
/// kept by a redo so that a later undo knows the tag) and the playbook's event as trailers.
pub fn tag(root: &Path, service: &str, version: &str, run: &str) -> Result<Tagged, BuiltinError> {
    check_service_name(service)?;
    check_version(version).map_err(|reason| BuiltinError::Version { reason })?;
    let tag = tag_name(service, version);
    if let Some(existing) = existing(root, &tag)? {
        return Err(BuiltinError::TagExists {
            tag,
            commit: existing,
        });
    }
    let commit = git(root, &["rev-parse", "--verify", "HEAD^{commit}"])?;
    let mut trailers = vec![format!("Spectra-Run: {}", one_line(run))];
    // The variable the playbook runner sets (`playbook::ENV_EVENT`); named here as text, since
    // the runner is the layer above this one.
    if let Ok(event) = std::env::var("SPECTRA_EVENT") {
        trailers.push(format!("Spectra-Event: {}", one_line(&event)));
    }
    let subject = format!("release {service} v{version}");
    let mut args = vec!["tag", "-a", tag.as_str(), "-m", subject.as_str()];
    let trailers = trailers.join("\n");
    if !trailers.is_empty() {
        args.extend(["-m", trailers.as_str()]);
    }
    args.extend(["--", commit.as_str()]);
    git(root, &args)?;
    Ok(Tagged {
        tag,
        commit: Some(commit),
        exists: true,
        left_alone: None,
    })
}

/// Deletes the tag `<service>/v<version>` that run `run` made. A tag that does not exist (the
/// run was stopped before it tagged) is nothing to do; one whose `Spectra-Run` trailer names
/// another run (a later deploy made it, or a person re-made it) is left alone, with the reason.
pub fn delete(
    root: &Path,
    service: &str,
    version: &str,
    run: &str,
) -> Result<Tagged, BuiltinError> {
    check_service_name(service)?;
    let tag = tag_name(service, version);
    let Some(commit) = existing(root, &tag)? else {
        return Ok(Tagged {
            tag,
            commit: None,
            exists: false,
            left_alone: None,
        });
    };
    let made_by = made_by_run(root, &tag)?;
    if made_by != run {
        let maker = if made_by.is_empty() {
            "no run (its message has no Spectra-Run trailer)".to_string()
        } else {
            format!("run {made_by}")
        };
        return Ok(Tagged {
            left_alone: Some(format!(
                "tag `{tag}` was made by {maker}, not by run {run}; it is left as it is"
            )),
            tag,
            commit: Some(commit),
            exists: true,
        });
    }
    git(root, &["tag", "-d", &tag])?;
    Ok(Tagged {
        tag,
        commit: Some(commit),
        exists: false,
        left_alone: None,
    })
}

/// The `Spectra-Run` trailer of the annotated tag `tag`'s message (empty when it has none, or
/// when `tag` is a lightweight tag: its commit's trailers are not the tag's).
fn made_by_run(root: &Path, tag: &str) -> Result<String, BuiltinError> {
    trailer(root, tag, "Spectra-Run")
}

/// The value of trailer `key` in the annotated tag `tag`'s message (empty for none, or for a
/// lightweight tag).
fn trailer(root: &Path, tag: &str, key: &str) -> Result<String, BuiltinError> {
    let printed = git(
        root,
        &[
            "for-each-ref",
            &format!("--format=%(objecttype) %(contents:trailers:key={key},valueonly)"),
            &format!("refs/tags/{tag}"),
        ],
    )?;
    Ok(printed
        .strip_prefix("tag ")
        .map(|value| value.trim().to_string())
        .unwrap_or_default())
}

/// The commit the release tag `tag` points at, when it is an annotated tag whose own trailers
/// say run `run` made it as the playbook run `event`: how a run closed after a crash finds the
/// tag it made but never recorded.
pub fn made_by(root: &Path, tag: &str, run: &str, event: &str) -> Option<String> {
    let commit = existing(root, tag).ok().flatten()?;
    let ours = trailer(root, tag, "Spectra-Run").ok()? == run
        && trailer(root, tag, "Spectra-Event").ok()? == event;
    ours.then_some(commit)
}

/// `text` up to its first line break: a trailer value never starts another trailer.
fn one_line(text: &str) -> &str {
    text.lines().next().unwrap_or_default()
}

/// Why `tag` cannot be made at HEAD in the repository at `root`, if it cannot: git refuses the
/// name (a semantic version may end in `.lock`), there is no commit to tag, or it exists.
pub fn check_taggable(root: &Path, tag: &str) -> Result<(), String> {
    let reference = format!("refs/tags/{tag}");
    if git(root, &["check-ref-format", &reference]).is_err() {
        return Err(format!("`{tag}` is not a name git accepts for a tag"));
    }
    if let Some(commit) = existing(root, tag).map_err(|error| error.to_string())? {
        return Err(format!(
            "tag `{tag}` already exists (at {commit}); a release is tagged once"
        ));
    }
    if git(root, &["rev-parse", "--verify", "--quiet", "HEAD^{commit}"]).is_err() {
        return Err("the repository has no commit to tag the release at".into());
    }
    Ok(())
}

/// The commit the tag points at, if it exists.
fn existing(root: &Path, tag: &str) -> Result<Option<String>, BuiltinError> {
    match git(
        root,
        &[
            "rev-parse",
            "--verify",
            "--quiet",
            &format!("refs/tags/{tag}^{{commit}}"),
        ],
    ) {
        Ok(commit) => Ok(Some(commit)),
        Err(BuiltinError::Git { .. }) => Ok(None),
        Err(error) => Err(error),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_follow_semver() {
        for good in [
            "0.1.0",
            "1.2.3",
            "10.20.30",
            "1.0.0-rc.1",
            "1.0.0+build.5",
            "1.0.0-alpha-2+x",
        ] {
            assert!(check_version(good).is_ok(), "{good}");
        }
        for bad in [
            "",
            "1",
            "1.2",
            "1.2.3.4",
            "01.2.3",
            "1.2.x",
            "v1.2.3",
            "1.2.3-",
            "1.2.3-a..b",
            "1.2.3+",
            "1.2.3 ",
        ] {
            assert!(check_version(bad).is_err(), "{bad}");
        }
    }
}
