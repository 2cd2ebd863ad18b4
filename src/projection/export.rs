//! `git spectra export`: the classic on-disk layout, written from the projections.
//!
//! `.spectra/manifests/{activity}-manifest.yaml` holds the latest manifest of each activity
//! (one document per service when there are several), and
//! `.spectra/history/{activity}-history.yaml` its history, oldest first. Each service also gets
//! its own, beside its documents: `.spectra/<service>/manifests/{activity}-manifest.yaml` and
//! `.spectra/<service>/history/{activity}-history.yaml`. The files are a view: writing them
//! again from the same log gives the same bytes.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde_json::json;

use super::Projection;

/// Why export failed.
#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    /// A file could not be written.
    #[error("cannot write {path}: {source}")]
    Write {
        /// The file.
        path: PathBuf,
        /// What the system said.
        source: std::io::Error,
    },
    /// A view could not be rendered as YAML.
    #[error("cannot render {what} as YAML: {message}")]
    Yaml {
        /// The view.
        what: String,
        /// The serializer's message.
        message: String,
    },
}

impl crate::failure::Classify for ExportError {
    fn class(&self) -> crate::failure::Class {
        crate::failure::Class::Failed
    }
}

/// Writes every manifest and history file under `dir` and returns the paths written.
pub fn export(projection: &Projection, dir: &Path) -> Result<Vec<PathBuf>, ExportError> {
    let mut written = Vec::new();
    let mut manifests: BTreeMap<String, Vec<serde_json::Value>> = BTreeMap::new();
    for manifest in projection.manifests(None, None) {
        manifests
            .entry(manifest.activity.clone())
            .or_default()
            .push(serde_json::to_value(&manifest).expect("manifests serialise"));
    }
    for (activity, mut list) in manifests {
        let document = if list.len() == 1 {
            list.remove(0)
        } else {
            json!({ "activity": activity, "services": list })
        };
        let path = dir
            .join("manifests")
            .join(format!("{activity}-manifest.yaml"));
        write_yaml(&path, &document, &activity)?;
        written.push(path);
    }
    written.extend(export_history(projection, dir, None)?);
    for service in services(projection) {
        written.extend(export_service(projection, &dir.join(&service), &service)?);
    }
    Ok(written)
}

/// The services some manifest names, in name order.
fn services(projection: &Projection) -> Vec<String> {
    let names: std::collections::BTreeSet<String> = projection
        .manifests(None, None)
        .into_iter()
        .filter_map(|manifest| manifest.service)
        .collect();
    names.into_iter().collect()
}

/// One service's manifests and history under `dir` (`.spectra/<service>`).
fn export_service(
    projection: &Projection,
    dir: &Path,
    service: &str,
) -> Result<Vec<PathBuf>, ExportError> {
    let mut written = Vec::new();
    for manifest in projection.manifests(None, Some(service)) {
        let activity = manifest.activity.clone();
        let path = dir
            .join("manifests")
            .join(format!("{activity}-manifest.yaml"));
        let value = serde_json::to_value(&manifest).expect("manifests serialise");
        write_yaml(&path, &value, &activity)?;
        written.push(path);
    }
    written.extend(export_history(projection, dir, Some(service))?);
    Ok(written)
}

/// The history files of every activity (of `service`, when given) under `dir/history`.
fn export_history(
    projection: &Projection,
    dir: &Path,
    service: Option<&str>,
) -> Result<Vec<PathBuf>, ExportError> {
    let mut histories: BTreeMap<String, Vec<serde_json::Value>> = BTreeMap::new();
    for (activity, entry) in projection.history(None, service) {
        histories
            .entry(activity)
            .or_default()
            .push(serde_json::to_value(&entry).expect("history serialises"));
    }
    let mut written = Vec::new();
    for (activity, entries) in histories {
        let path = dir.join("history").join(format!("{activity}-history.yaml"));
        write_yaml(
            &path,
            &json!({ "activity": activity, "entries": entries }),
            &activity,
        )?;
        written.push(path);
    }
    Ok(written)
}

fn write_yaml(path: &Path, value: &serde_json::Value, what: &str) -> Result<(), ExportError> {
    let text = crate::yaml::to_string(value).map_err(|message| ExportError::Yaml {
        what: what.to_string(),
        message,
    })?;
    let io = |source| ExportError::Write {
        path: path.to_path_buf(),
        source,
    };
    std::fs::create_dir_all(path.parent().expect("export paths have a directory")).map_err(io)?;
    std::fs::write(path, text).map_err(io)
}
