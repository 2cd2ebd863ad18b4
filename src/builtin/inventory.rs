//! `builtin inventory`: what the repository is made of, as JSON.

use std::collections::BTreeMap;
use std::path::Path;

use serde::Serialize;

use super::BuiltinError;

/// Directories never walked: version control, dependencies and build output say nothing about
/// what the project itself is written in.
const SKIPPED_DIRS: [&str; 16] = [
    ".git",
    "target",
    "node_modules",
    "vendor",
    ".venv",
    "venv",
    "__pycache__",
    "dist",
    "build",
    ".tox",
    ".mypy_cache",
    ".pytest_cache",
    ".gradle",
    ".idea",
    ".next",
    ".terraform",
];

/// The inventory of a repository.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
pub struct Inventory {
    /// Where the file list came from.
    pub source: Source,
    /// Files looked at.
    pub files: u64,
    /// Languages by number of files, most first.
    pub languages: Vec<Language>,
    /// Build manifests (Cargo.toml, package.json, Makefile...), relative paths.
    pub build_files: Vec<String>,
    /// Continuous-integration configuration files, relative paths.
    pub ci: Vec<String>,
    /// Container files (Dockerfile, compose files...), relative paths.
    pub containers: Vec<String>,
}

/// Where an inventory's file list came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Source {
    /// The files git tracks (the index): what the project is made of, whatever the ignore rules
    /// leave in the working tree; files not added yet are not counted.
    Index,
    /// Every file in the working tree, for a repository that tracks nothing yet.
    #[default]
    Walk,
}

/// One language and how many files are written in it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Language {
    /// The language's name.
    pub language: String,
    /// How many files are written in it.
    pub files: u64,
}

/// The inventory of the repository whose working tree is `root`: of the files git tracks, or,
/// when it tracks none yet (or its index cannot be read), of every file in the working tree.
pub fn inventory(root: &Path) -> Result<Inventory, BuiltinError> {
    match gix::open(root) {
        Ok(repo) => of_repository(&repo, root),
        Err(_) => walk(root),
    }
}

/// [`inventory`] of `repo`, already open, whose working tree is `root`.
pub fn of_repository(repo: &gix::Repository, root: &Path) -> Result<Inventory, BuiltinError> {
    match tracked(repo) {
        Some(inventory) => Ok(inventory),
        None => walk(root),
    }
}

/// Walks the working tree under `root`: every file but those in [`SKIPPED_DIRS`], tracked or
/// not.
fn walk(root: &Path) -> Result<Inventory, BuiltinError> {
    let mut tally = Tally::new(Source::Walk);
    let mut pending = vec![root.to_path_buf()];
    while let Some(dir) = pending.pop() {
        let entries = std::fs::read_dir(&dir)
            .map_err(BuiltinError::io(&dir))?
            .collect::<Result<Vec<_>, _>>()
            .map_err(BuiltinError::io(&dir))?;
        for entry in entries {
            // file_type() does not follow symlinks, so a link to elsewhere is never walked.
            let file_type = entry.file_type().map_err(BuiltinError::io(entry.path()))?;
            if file_type.is_dir() {
                let name = entry.file_name();
                if !SKIPPED_DIRS.contains(&name.to_string_lossy().as_ref()) {
                    pending.push(entry.path());
                }
                continue;
            }
            tally.add(&relative_path(root, &entry.path()));
        }
    }
    Ok(tally.finish())
}

/// The inventory of the files git tracks, read from `repo`'s index: on a large tree a fraction
/// of what a walk costs (one file read instead of a directory listing per directory; figures in
/// docs/performance.md), and blind to files nobody has added yet. `None` when there is no index, a sparse one, or nothing
/// tracked outside [`SKIPPED_DIRS`]: the caller then walks.
fn tracked(repo: &gix::Repository) -> Option<Inventory> {
    let index = repo.try_index().ok()??;
    if index.is_sparse() {
        return None;
    }
    let mut tally = Tally::new(Source::Index);
    let mut previous: Option<&[u8]> = None;
    for entry in index.entries() {
        // A submodule is a commit, not a file of this repository.
        if entry.mode == gix::index::entry::Mode::COMMIT {
            continue;
        }
        let path: &[u8] = entry.path(&index);
        // The stages of a conflicted file are consecutive entries of one path.
        if previous == Some(path) {
            continue;
        }
        previous = Some(path);
        tally.add(&String::from_utf8_lossy(path));
    }
    (tally.inventory.files > 0).then(|| tally.finish())
}

/// Files counted into an inventory, one relative `/`-separated path at a time.
struct Tally {
    inventory: Inventory,
    languages: BTreeMap<&'static str, u64>,
}

impl Tally {
    fn new(source: Source) -> Tally {
        Tally {
            inventory: Inventory {
                source,
                ..Inventory::default()
            },
            languages: BTreeMap::new(),
        }
    }

    fn add(&mut self, relative: &str) {
        let (dirs, name) = relative.rsplit_once('/').unwrap_or(("", relative));
        if dirs.split('/').any(|dir| SKIPPED_DIRS.contains(&dir)) {
            return;
        }
        self.inventory.files += 1;
        if let Some(language) = language_of(name) {
            *self.languages.entry(language).or_default() += 1;
        }
        if is_build_file(name) {
            self.inventory.build_files.push(relative.to_string());
        }
        if is_ci(relative) {
            self.inventory.ci.push(relative.to_string());
        }
        if is_container(name) {
            self.inventory.containers.push(relative.to_string());
        }
    }

    fn finish(mut self) -> Inventory {
        self.inventory.languages = sorted_languages(self.languages);
        let inventory = &mut self.inventory;
        for list in [
            &mut inventory.build_files,
            &mut inventory.ci,
            &mut inventory.containers,
        ] {
            list.sort();
        }
        self.inventory
    }
}

fn sorted_languages(counts: BTreeMap<&'static str, u64>) -> Vec<Language> {
    let mut languages: Vec<Language> = counts
        .into_iter()
        .map(|(language, files)| Language {
            language: language.to_string(),
            files,
        })
        .collect();
    languages.sort_by(|a, b| {
        b.files
            .cmp(&a.files)
            .then_with(|| a.language.cmp(&b.language))
    });
    languages
}

fn relative_path(root: &Path, path: &Path) -> String {
    let relative = path.strip_prefix(root).unwrap_or(path);
    relative
        .components()
        .map(|component| component.as_os_str().to_string_lossy())
        .collect::<Vec<_>>()
        .join("/")
}

fn language_of(file_name: &str) -> Option<&'static str> {
    let extension = file_name.rsplit_once('.')?.1;
    Some(match extension {
        "rs" => "Rust",
        "py" => "Python",
        "js" | "mjs" | "cjs" | "jsx" => "JavaScript",
        "ts" | "tsx" | "mts" | "cts" => "TypeScript",
        "go" => "Go",
        "java" => "Java",
        "kt" | "kts" => "Kotlin",
        "rb" => "Ruby",
        "php" => "PHP",
        "cs" => "C#",
        "c" | "h" => "C",
        "cpp" | "cc" | "cxx" | "hpp" | "hh" => "C++",
        "swift" => "Swift",
        "scala" => "Scala",
        "sh" | "bash" | "zsh" => "Shell",
        "ex" | "exs" => "Elixir",
        "erl" => "Erlang",
        "hs" => "Haskell",
        "ml" | "mli" => "OCaml",
        "lua" => "Lua",
        "dart" => "Dart",
        "tf" => "Terraform",
        "sql" => "SQL",
        "html" | "htm" => "HTML",
        "css" | "scss" | "sass" => "CSS",
        "vue" => "Vue",
        "zig" => "Zig",
        "nix" => "Nix",
        _ => return None,
    })
}

fn is_build_file(name: &str) -> bool {
    const NAMES: [&str; 27] = [
        "Cargo.toml",
        "package.json",
        "pyproject.toml",
        "setup.py",
        "setup.cfg",
        "requirements.txt",
        "Pipfile",
        "go.mod",
        "pom.xml",
        "build.gradle",
        "build.gradle.kts",
        "settings.gradle",
        "settings.gradle.kts",
        "Makefile",
        "GNUmakefile",
        "CMakeLists.txt",
        "meson.build",
        "Gemfile",
        "composer.json",
        "mix.exs",
        "rebar.config",
        "stack.yaml",
        "dune-project",
        "build.zig",
        "Package.swift",
        "flake.nix",
        "deno.json",
    ];
    NAMES.contains(&name)
        || name.ends_with(".cabal")
        || name.ends_with(".csproj")
        || name.ends_with(".sln")
}

fn is_ci(relative: &str) -> bool {
    const FILES: [&str; 8] = [
        ".gitlab-ci.yml",
        ".circleci/config.yml",
        "Jenkinsfile",
        "azure-pipelines.yml",
        ".travis.yml",
        "bitbucket-pipelines.yml",
        ".drone.yml",
        "appveyor.yml",
    ];
    FILES.contains(&relative)
        || (relative.starts_with(".github/workflows/")
            && (relative.ends_with(".yml") || relative.ends_with(".yaml")))
        || relative.starts_with(".ci/")
        || relative.starts_with(".buildkite/")
}

fn is_container(name: &str) -> bool {
    name == "Dockerfile"
        || name.starts_with("Dockerfile.")
        || name.ends_with(".Dockerfile")
        || name == "Containerfile"
        || ((name.starts_with("docker-compose") || name.starts_with("compose."))
            && (name.ends_with(".yml") || name.ends_with(".yaml")))
        || name == "Chart.yaml"
        || name == "skaffold.yaml"
        || name == "kustomization.yaml"
}

#[cfg(test)]
mod tests {
    use super::*;

    fn git(dir: &Path, args: &[&str]) {
        let status = std::process::Command::new("git")
            .current_dir(dir)
            .args(["-c", "user.name=T", "-c", "user.email=t@example.com"])
            .args(args)
            .status()
            .unwrap();
        assert!(status.success(), "git {args:?}");
    }

    fn write(root: &Path, path: &str) {
        let path = root.join(path);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, "x\n").unwrap();
    }

    #[test]
    fn the_index_gives_what_a_walk_gives_for_tracked_files() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        git(root, &["init", "-q"]);
        let repo = gix::open(root).unwrap();
        assert_eq!(
            tracked(&repo),
            None,
            "nothing tracked yet: the caller walks"
        );
        write(root, "README.md");
        assert_eq!(inventory(root).unwrap().source, Source::Walk);

        for path in [
            "Cargo.toml",
            "src/main.rs",
            "src/lib.rs",
            "tools/gen.py",
            ".github/workflows/ci.yml",
            "deploy/Dockerfile",
            "node_modules/dep/index.js",
            "web/app.ts",
        ] {
            write(root, path);
        }
        git(root, &["add", "-A"]);
        git(root, &["commit", "-q", "-m", "files"]);
        let repo = gix::open(root).unwrap();
        let from_index = tracked(&repo).expect("files are tracked");
        assert_eq!(from_index.source, Source::Index);
        let walked = walk(root).unwrap();
        assert_eq!(walked.source, Source::Walk);
        assert_eq!(
            Inventory {
                source: Source::Walk,
                ..from_index.clone()
            },
            walked
        );
        assert_eq!(from_index.files, 8, "node_modules is skipped either way");
        assert_eq!(inventory(root).unwrap(), from_index);

        // A file nobody added: the walk sees it, the index does not.
        write(root, "src/new.rs");
        assert_eq!(tracked(&repo), Some(from_index.clone()));
        assert_eq!(walk(root).unwrap().files, 9);
    }
}
