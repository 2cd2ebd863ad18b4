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
    /// Files looked at.
    pub files: u64,
    /// Languages by number of files, most first.
    pub languages: Vec<Language>,
    pub build_files: Vec<String>,
    pub ci: Vec<String>,
    pub containers: Vec<String>,
}

/// One language and how many files are written in it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Language {
    pub language: String,
    pub files: u64,
}

/// Walks the working tree under `root`.
pub fn inventory(root: &Path) -> Result<Inventory, BuiltinError> {
    let mut inventory = Inventory::default();
    let mut languages: BTreeMap<&'static str, u64> = BTreeMap::new();
    let mut pending = vec![root.to_path_buf()];
    while let Some(dir) = pending.pop() {
        let mut entries = std::fs::read_dir(&dir)
            .map_err(BuiltinError::io(&dir))?
            .collect::<Result<Vec<_>, _>>()
            .map_err(BuiltinError::io(&dir))?;
        entries.sort_by_key(std::fs::DirEntry::file_name);
        for entry in entries {
            // file_type() does not follow symlinks, so a link to elsewhere is never walked.
            let file_type = entry.file_type().map_err(BuiltinError::io(entry.path()))?;
            let name = entry.file_name().to_string_lossy().into_owned();
            if file_type.is_dir() {
                if !SKIPPED_DIRS.contains(&name.as_str()) {
                    pending.push(entry.path());
                }
                continue;
            }
            let relative = relative_path(root, &entry.path());
            inventory.files += 1;
            if let Some(language) = language_of(&name) {
                *languages.entry(language).or_default() += 1;
            }
            if is_build_file(&name) {
                inventory.build_files.push(relative.clone());
            }
            if is_ci(&relative) {
                inventory.ci.push(relative.clone());
            }
            if is_container(&name) {
                inventory.containers.push(relative);
            }
        }
    }
    inventory.languages = sorted_languages(languages);
    for list in [
        &mut inventory.build_files,
        &mut inventory.ci,
        &mut inventory.containers,
    ] {
        list.sort();
    }
    Ok(inventory)
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
