//! Keeping path inputs inside the repository.
//!
//! A playbook input declared with `format: path` is a path relative to the repository root. It
//! may not be absolute, may not climb with `..`, may not reach into `.git` (hooks there would run
//! code), and no symlink along the way may lead outside the repository. Components that do not
//! exist yet are fine: they will be created inside whatever existing directory holds them, which
//! has been checked. (A symlink swapped in between this check and the playbook's use of the path
//! is not caught; playbooks run as the user, so this guards against mistakes and model
//! hallucinations, not against a hostile local user.)

use std::path::{Component, Path, PathBuf};

/// Why a path input was refused.
pub fn escape_reason(root: &Path, input: &str) -> Option<String> {
    if input.is_empty() {
        return Some("is empty".to_string());
    }
    let path = Path::new(input);
    if path.is_absolute() {
        return Some("is absolute; paths are relative to the repository root".to_string());
    }
    let first = path
        .components()
        .find(|component| matches!(component, Component::Normal(_)));
    if first.is_some_and(|first| first.as_os_str() == ".git") {
        return Some("points into .git".to_string());
    }
    if path
        .components()
        .any(|component| matches!(component, Component::ParentDir))
    {
        return Some("climbs out of the repository with `..`".to_string());
    }
    symlink_escape(root, path)
}

/// Follows `path` under `root` one component at a time; any symlink met must resolve inside
/// `root`. Stops at the first component that does not exist.
fn symlink_escape(root: &Path, path: &Path) -> Option<String> {
    let Ok(canonical_root) = root.canonicalize() else {
        return Some(format!(
            "cannot resolve the repository root {}",
            root.display()
        ));
    };
    let mut current = PathBuf::from(root);
    for component in path.components() {
        current.push(component);
        let Ok(metadata) = current.symlink_metadata() else {
            return None;
        };
        if !metadata.file_type().is_symlink() {
            continue;
        }
        match current.canonicalize() {
            Ok(target) if target.starts_with(&canonical_root) => {}
            Ok(target) => {
                return Some(format!(
                    "goes through a symlink to {}, outside the repository",
                    target.display()
                ));
            }
            Err(_) => {
                return Some("goes through a symlink whose target does not exist".to_string());
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relative_paths_inside_pass_and_escapes_are_named() {
        let outside = tempfile::tempdir().unwrap();
        let root = tempfile::tempdir().unwrap();
        std::fs::create_dir(root.path().join("docs")).unwrap();
        std::os::unix::fs::symlink(outside.path(), root.path().join("out")).unwrap();
        std::os::unix::fs::symlink(root.path().join("docs"), root.path().join("in")).unwrap();

        assert_eq!(escape_reason(root.path(), "docs/new/file.md"), None);
        assert_eq!(escape_reason(root.path(), "in/file.md"), None);
        assert_eq!(escape_reason(root.path(), "./docs/./x"), None);
        assert!(escape_reason(root.path(), "").is_some());
        assert!(
            escape_reason(root.path(), "/etc/passwd")
                .unwrap()
                .contains("absolute")
        );
        assert!(
            escape_reason(root.path(), "docs/../../x")
                .unwrap()
                .contains("..")
        );
        assert!(
            escape_reason(root.path(), "./.git/hooks/x")
                .unwrap()
                .contains(".git")
        );
        assert!(
            escape_reason(root.path(), "out/x")
                .unwrap()
                .contains("outside")
        );
    }
}
