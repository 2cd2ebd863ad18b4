//! `builtin catalog-lookup`: is a service name already in the service catalog?
//!
//! The catalog is `.spectra/service-catalog.yaml`, in either of the two shapes found in the
//! wild: services per environment under `cosmos` (`cosmos.staging.services[]`,
//! `cosmos.production.services[]`, any environment name), or one plain `services:` list.

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{BuiltinError, check_service_name};

/// Where the catalog lives, relative to the repository root.
pub const CATALOG_PATH: &str = ".spectra/service-catalog.yaml";

/// The answer to a lookup.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Lookup {
    /// The service name looked up.
    pub name: String,
    /// The catalog file, or `None` when the repository has none.
    pub catalog: Option<String>,
    /// Whether any entry matched.
    pub found: bool,
    /// The matching entries, in catalog order.
    pub matches: Vec<Entry>,
}

/// One catalog entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Entry {
    /// The environment under `cosmos`, or `None` for the plain list.
    pub environment: Option<String>,
    /// The service's name as the catalog spells it.
    pub name: String,
    /// Where the service is reached, if the catalog says.
    pub url: Option<String>,
    /// The catalog's status word for the service, if any.
    pub status: Option<String>,
    /// The deployed version, if the catalog says.
    pub version: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
struct CatalogFile {
    #[serde(default)]
    cosmos: BTreeMap<String, Environment>,
    #[serde(default)]
    services: Vec<RawEntry>,
}

#[derive(Debug, Default, Deserialize)]
struct Environment {
    #[serde(default)]
    services: Vec<RawEntry>,
}

/// Fields are loose: catalogs write versions as `1.2` as often as `"1.2"`.
#[derive(Debug, Deserialize)]
struct RawEntry {
    name: String,
    #[serde(default)]
    url: Value,
    #[serde(default)]
    status: Value,
    #[serde(default)]
    version: Value,
}

/// Looks `name` up in the catalog of the repository at `root`.
pub fn lookup(root: &Path, name: &str) -> Result<Lookup, BuiltinError> {
    check_service_name(name)?;
    let path = root.join(CATALOG_PATH);
    let text = match std::fs::read_to_string(&path) {
        Ok(text) => text,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
            return Ok(Lookup {
                name: name.to_string(),
                catalog: None,
                found: false,
                matches: Vec::new(),
            });
        }
        Err(error) => {
            return Err(BuiltinError::Io {
                path,
                source: error,
            });
        }
    };
    let catalog = parse(&text)?;
    let matches: Vec<Entry> = entries(catalog)
        .into_iter()
        .filter(|entry| entry.name == name)
        .collect();
    Ok(Lookup {
        name: name.to_string(),
        catalog: Some(CATALOG_PATH.to_string()),
        found: !matches.is_empty(),
        matches,
    })
}

fn parse(text: &str) -> Result<CatalogFile, BuiltinError> {
    if text.trim().is_empty() {
        return Ok(CatalogFile::default());
    }
    crate::yaml::from_str(text).map_err(|error| BuiltinError::Catalog {
        file: CATALOG_PATH.to_string(),
        position: error.position,
        message: error.message,
    })
}

fn entries(catalog: CatalogFile) -> Vec<Entry> {
    let plain = catalog.services.into_iter().map(|raw| entry(None, raw));
    let per_environment = catalog.cosmos.into_iter().flat_map(|(environment, env)| {
        env.services
            .into_iter()
            .map(move |raw| entry(Some(environment.clone()), raw))
    });
    per_environment.chain(plain).collect()
}

fn entry(environment: Option<String>, raw: RawEntry) -> Entry {
    Entry {
        environment,
        name: raw.name,
        url: text(raw.url),
        status: text(raw.status),
        version: text(raw.version),
    }
}

fn text(value: Value) -> Option<String> {
    match value {
        Value::Null => None,
        Value::String(text) => Some(text),
        other => Some(other.to_string()),
    }
}
