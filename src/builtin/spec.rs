//! `builtin write-spec` and `builtin remove-spec`: a service's specification file.
//!
//! Writing never overwrites different content (someone's edits may be there), and removing only
//! removes a file that still holds exactly what was written, so the pair is a safe run/undo.

use std::path::{Path, PathBuf};

use serde::Serialize;

use super::{BuiltinError, check_service_name};
use crate::digest::sha256_hex;

/// The outcome of a write.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Written {
    /// The service the specification describes.
    pub service: String,
    /// The file, relative to the repository root.
    pub path: String,
    /// `false` when the file already held this content.
    pub written: bool,
    /// SHA-256 of the content, in hex.
    pub sha256: String,
}

/// The outcome of a removal.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Removed {
    /// The service the specification described.
    pub service: String,
    /// The file, relative to the repository root.
    pub path: String,
    /// `false` when there was no file to remove.
    pub removed: bool,
}

/// Where a service's specification goes when no path is given.
pub fn default_path(service: &str) -> String {
    format!(".spectra/specs/{service}.md")
}

/// Writes `content` as the specification of `service`.
pub fn write(
    root: &Path,
    service: &str,
    path: Option<&str>,
    content: &str,
) -> Result<Written, BuiltinError> {
    let (relative, full) = target(root, service, path)?;
    let written = match std::fs::read(&full) {
        Ok(existing) if existing == content.as_bytes() => false,
        Ok(_) => return Err(BuiltinError::SpecConflict(PathBuf::from(relative))),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
            if let Some(parent) = full.parent() {
                std::fs::create_dir_all(parent).map_err(BuiltinError::io(parent))?;
            }
            std::fs::write(&full, content).map_err(BuiltinError::io(&full))?;
            true
        }
        Err(error) => {
            return Err(BuiltinError::Io {
                path: full,
                source: error,
            });
        }
    };
    Ok(Written {
        service: service.to_string(),
        path: relative,
        written,
        sha256: sha256_hex(content.as_bytes()),
    })
}

/// Removes the specification of `service` if it still holds `content`.
pub fn remove(
    root: &Path,
    service: &str,
    path: Option<&str>,
    content: &str,
) -> Result<Removed, BuiltinError> {
    let (relative, full) = target(root, service, path)?;
    let removed = match std::fs::read(&full) {
        Ok(existing) if existing == content.as_bytes() => {
            std::fs::remove_file(&full).map_err(BuiltinError::io(&full))?;
            true
        }
        Ok(_) => return Err(BuiltinError::SpecChanged(PathBuf::from(relative))),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => false,
        Err(error) => {
            return Err(BuiltinError::Io {
                path: full,
                source: error,
            });
        }
    };
    Ok(Removed {
        service: service.to_string(),
        path: relative,
        removed,
    })
}

/// The relative and full path of the specification, checked to stay inside the repository
/// (the runner checks too; this keeps the builtin safe when called by hand).
fn target(
    root: &Path,
    service: &str,
    path: Option<&str>,
) -> Result<(String, PathBuf), BuiltinError> {
    check_service_name(service)?;
    let relative = path.map_or_else(|| default_path(service), str::to_string);
    if let Some(reason) = crate::confine::escape_reason(root, &relative) {
        return Err(BuiltinError::PathEscapes {
            path: relative,
            reason,
        });
    }
    let full = root.join(&relative);
    Ok((relative, full))
}
