//! The registry cache: the loaded, validated registry saved as JSON under the git dir
//! (`<git common dir>/spectra/cache/registry.json`), so that commands do not parse and check
//! every YAML file each time.
//!
//! The cache is keyed by a SHA-256 over the crate version, [`FORMAT_VERSION`] and every source
//! file (path, kind, layer and text, built-in and repository files in order). A file that is
//! missing, unreadable, undecodable or has another key reads as no cache, and the registry is
//! loaded (parsed and validated) again. Only a registry without problems is ever written, so
//! problems are always found by a real load. The cache is never the truth: deleting it changes
//! no output, only speed; writes go through a temporary file and a rename, and a write that
//! fails (a read-only git dir) is ignored.

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use sha2::{Digest, Sha256};

use super::{Activity, Kind, Layer, Playbook, Registry, SourceFile};

/// The name of the cache file inside the cache directory.
pub const FILE_NAME: &str = "registry.json";

/// Bumped whenever the cached form of [`Registry`] (or of anything inside it) changes, or what
/// loading makes of the same files does, so older caches are ignored.
const FORMAT_VERSION: u32 = 5;

/// The registry as the cache stores it: the private mirror of [`Registry`]'s fields.
#[derive(Serialize)]
struct Form<'a> {
    activities: &'a [Activity],
    playbooks: &'a BTreeMap<String, Playbook>,
}

#[derive(Deserialize)]
struct OwnedForm {
    activities: Vec<Activity>,
    playbooks: BTreeMap<String, Playbook>,
}

#[derive(Serialize)]
struct FileRef<'a> {
    key: &'a str,
    registry: Form<'a>,
}

/// The file with the registry left undecoded, so a stale cache costs only a scan.
#[derive(Deserialize)]
struct File<'a> {
    key: String,
    #[serde(borrow)]
    registry: &'a RawValue,
}

/// The cache key of a registry loaded from `files`: lowercase hex SHA-256.
pub fn key(files: &[SourceFile]) -> String {
    let mut hasher = Sha256::new();
    field(&mut hasher, env!("CARGO_PKG_VERSION").as_bytes());
    field(&mut hasher, &FORMAT_VERSION.to_le_bytes());
    for file in files {
        field(&mut hasher, file.path.as_bytes());
        field(
            &mut hasher,
            match file.kind {
                Kind::Activity => b"activity",
                Kind::Playbook => b"playbook",
                Kind::Template => b"template",
                Kind::Runbook => b"runbook",
            },
        );
        field(
            &mut hasher,
            match file.layer {
                Layer::Builtin => b"builtin",
                Layer::Repository => b"repository",
            },
        );
        field(&mut hasher, file.text.as_bytes());
    }
    crate::digest::hex(&hasher.finalize())
}

/// Each field with its length first, so no two different lists of fields hash the same bytes.
fn field(hasher: &mut Sha256, bytes: &[u8]) {
    hasher.update((bytes.len() as u64).to_le_bytes());
    hasher.update(bytes);
}

/// The registry cached at `path` under `key`, if there is one.
pub fn read(path: &Path, key: &str) -> Option<Registry> {
    let bytes = std::fs::read(path).ok()?;
    let decoded = serde_json::from_slice::<File<'_>>(&bytes).and_then(|file| {
        if file.key != key {
            return Ok(None);
        }
        serde_json::from_str::<OwnedForm>(file.registry.get()).map(Some)
    });
    match decoded {
        Ok(form) => form.map(|form| Registry {
            activities: form.activities,
            playbooks: form.playbooks,
            // Only a registry without problems is cached, and warnings are for `registry
            // validate`, which never reads the cache.
            warnings: Vec::new(),
            key: key.to_string(),
        }),
        Err(error) => {
            tracing::debug!(path = %path.display(), %error, "ignoring an unreadable registry cache");
            None
        }
    }
}

/// Saves `registry` under `key`; a failure only costs speed next time.
pub fn write(path: &Path, key: &str, registry: &Registry) {
    let file = FileRef {
        key,
        registry: to_form(registry),
    };
    crate::tip_cache::write_json(path, &file);
}

fn to_form(registry: &Registry) -> Form<'_> {
    Form {
        activities: &registry.activities,
        playbooks: &registry.playbooks,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::source;

    fn round_trip(registry: &Registry) -> Registry {
        let text = serde_json::to_string(&to_form(registry)).unwrap();
        let form: OwnedForm = serde_json::from_str(&text).unwrap();
        Registry {
            activities: form.activities,
            playbooks: form.playbooks,
            // Warnings are not cached (only `registry validate` shows them, and it never
            // reads the cache): carried over so the rest compares whole.
            warnings: registry.warnings.clone(),
            key: registry.key.clone(),
        }
    }

    fn override_file(text: &str) -> SourceFile {
        SourceFile {
            path: ".spectra/registry/activities/plan.yaml".into(),
            kind: Kind::Activity,
            layer: Layer::Repository,
            text: text.into(),
        }
    }

    const PLAN: &str = include_str!("../../registry/activities/plan.yaml");

    #[test]
    fn the_builtin_registry_round_trips_through_the_cache_form_unchanged() {
        let registry = Registry::builtin().unwrap_or_else(|error| panic!("{error:#?}"));
        assert_eq!(
            format!("{:?}", round_trip(&registry)),
            format!("{registry:?}")
        );
    }

    #[test]
    fn a_registry_with_overrides_and_every_kind_of_field_round_trips_unchanged() {
        let mut files = source::builtin();
        // Both kinds of playbook reference: an id and a domain.
        let plan = PLAN.replace(
            "playbooks: [repo.inventory]",
            "playbooks: [repo.inventory, domain:repo]",
        );
        files.push(override_file(&format!("{plan}blocking: true\n")));
        files.push(SourceFile {
            path: ".spectra/registry/playbooks/extra.yaml".into(),
            kind: Kind::Playbook,
            layer: Layer::Repository,
            text: "id: extra.run\nactivities: [plan]\ndomain: repo\ndescription: x\n\
                   runbook: \"# Steps\\n\"\nrun: [echo, \"{name}\", [--base, \"{base}\"]]\n\
                   inputs:\n  type: object\n  properties:\n    name: {type: string}\n    \
                   base: {type: string}\n    n: {type: number, minimum: 1.5}\n  \
                   required: [name]\n  additionalProperties: false\n\
                   reversible: true\nundo: [echo, undo]\nidempotent: false\ntimeout: 2.5\n"
                .into(),
        });
        let registry = Registry::from_sources(files).unwrap_or_else(|error| panic!("{error:#?}"));
        assert!(registry.playbook("extra.run").is_some());
        assert_eq!(
            format!("{:?}", round_trip(&registry)),
            format!("{registry:?}")
        );
    }

    #[test]
    fn the_cache_file_is_read_back_only_under_its_own_key() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("cache").join(FILE_NAME);
        let registry = Registry::builtin().unwrap();
        let k = registry.content_key().to_string();
        assert!(read(&path, &k).is_none());
        write(&path, &k, &registry);
        let cached = read(&path, &k).expect("a cache under the same key");
        assert_eq!(format!("{cached:?}"), format!("{registry:?}"));
        assert!(read(&path, "other").is_none());
        std::fs::write(
            &path,
            format!("{{\"key\": \"{k}\", \"registry\": {{\"activities\": 1}}}}"),
        )
        .unwrap();
        assert!(read(&path, &k).is_none());
        std::fs::write(&path, "not json").unwrap();
        assert!(read(&path, &k).is_none());
    }

    #[test]
    fn the_key_changes_with_any_file_text_path_kind_or_layer() {
        let base = || {
            let mut files = source::builtin();
            files.push(override_file(PLAN));
            files
        };
        let original = key(&base());
        assert_eq!(key(&base()), original, "the key is stable");
        assert_eq!(original.len(), 64);

        let mut edited = base();
        edited.last_mut().unwrap().text.push_str("blocking: true\n");
        let mut renamed = base();
        renamed.last_mut().unwrap().path = ".spectra/registry/activities/plan2.yaml".into();
        let mut kind = base();
        kind.last_mut().unwrap().kind = Kind::Playbook;
        let mut layer = base();
        layer.last_mut().unwrap().layer = Layer::Builtin;
        let mut reordered = base();
        reordered.swap(0, 1);
        let mut fewer = base();
        fewer.pop();
        // Moving bytes between a path and its text must not give the same key.
        let mut shifted = base();
        let last = shifted.last_mut().unwrap();
        let first = last.text.remove(0);
        last.path.push(first);
        for (what, files) in [
            ("edited text", edited),
            ("renamed", renamed),
            ("kind", kind),
            ("layer", layer),
            ("reordered", reordered),
            ("fewer files", fewer),
            ("shifted", shifted),
        ] {
            assert_ne!(key(&files), original, "{what}");
        }
    }

    #[test]
    fn editing_a_repository_file_reloads_instead_of_using_the_cache() {
        let root = tempfile::tempdir().unwrap();
        let cache = tempfile::tempdir().unwrap();
        let plan = root.path().join(".spectra/registry/activities/plan.yaml");
        std::fs::create_dir_all(plan.parent().unwrap()).unwrap();
        std::fs::write(&plan, PLAN).unwrap();
        let load = || Registry::load_cached(root.path(), Some(cache.path()));

        let first = load().unwrap_or_else(|error| panic!("{error:#?}"));
        assert!(!first.activity("plan").unwrap().blocking);
        assert!(cache.path().join(FILE_NAME).exists());

        std::fs::write(&plan, format!("{PLAN}blocking: true\n")).unwrap();
        let second = load().unwrap_or_else(|error| panic!("{error:#?}"));
        assert!(second.activity("plan").unwrap().blocking);

        // A broken edit is reported as a fresh load reports it, and leaves the cache alone.
        let before = std::fs::read(cache.path().join(FILE_NAME)).unwrap();
        std::fs::write(&plan, format!("{PLAN}blocking: sometimes\n")).unwrap();
        let cached = load().unwrap_err();
        let fresh = Registry::load(root.path()).unwrap_err();
        assert_eq!(format!("{cached:?}"), format!("{fresh:?}"));
        assert_eq!(std::fs::read(cache.path().join(FILE_NAME)).unwrap(), before);
    }

    #[test]
    fn a_cache_that_cannot_be_written_changes_nothing() {
        let root = tempfile::tempdir().unwrap();
        let blocker = tempfile::NamedTempFile::new().unwrap();
        // The cache "directory" is a file, so creating it fails.
        let cache = blocker.path().join("cache");
        let registry = Registry::load_cached(root.path(), Some(&cache))
            .unwrap_or_else(|error| panic!("{error:#?}"));
        assert_eq!(
            format!("{registry:?}"),
            format!("{:?}", Registry::load(root.path()).unwrap())
        );
    }
}
