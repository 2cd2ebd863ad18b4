//! The `response_format` ladder and the memory of which rung an endpoint accepts.
//!
//! Servers differ: OpenAI and vLLM take `json_schema` (strict), some take only `json_object`,
//! some reject `response_format` altogether. We start at the top, step down when the endpoint
//! rejects a level (a 400 naming `response_format`), and remember the level that worked per
//! endpoint and model in `<git dir>/spectra/llm-response-format.json`, so later runs do not pay
//! for the rejected requests again. The file is only an optimisation: if it is missing, corrupt
//! or unwritable we start from the top and say so in a log line.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use serde_json::{Value, json};

/// One rung of the ladder, best first.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "snake_case")]
pub enum ResponseFormat {
    /// `{"type": "json_schema", "json_schema": {"name", "schema", "strict": true}}`.
    JsonSchema,
    /// `{"type": "json_object"}`, the schema given in the instructions.
    JsonObject,
    /// No `response_format`; the schema and "reply with JSON only" are in the instructions.
    Instructions,
}

impl ResponseFormat {
    /// Every level, best first.
    pub const LADDER: [ResponseFormat; 3] = [
        ResponseFormat::JsonSchema,
        ResponseFormat::JsonObject,
        ResponseFormat::Instructions,
    ];

    /// The next level down, if any.
    pub fn lower(self) -> Option<ResponseFormat> {
        match self {
            ResponseFormat::JsonSchema => Some(ResponseFormat::JsonObject),
            ResponseFormat::JsonObject => Some(ResponseFormat::Instructions),
            ResponseFormat::Instructions => None,
        }
    }

    /// The level's name in settings and events, e.g. `json_schema`.
    pub fn as_str(self) -> &'static str {
        match self {
            ResponseFormat::JsonSchema => "json_schema",
            ResponseFormat::JsonObject => "json_object",
            ResponseFormat::Instructions => "instructions",
        }
    }

    /// The `response_format` request field for this level, if it sends one.
    pub fn request_field(self, schema_name: &str, schema: &Value) -> Option<Value> {
        match self {
            ResponseFormat::JsonSchema => Some(json!({
                "type": "json_schema",
                "json_schema": {"name": schema_name, "schema": schema, "strict": true},
            })),
            ResponseFormat::JsonObject => Some(json!({"type": "json_object"})),
            ResponseFormat::Instructions => None,
        }
    }

    /// Whether the schema must be spelled out in the prompt because the endpoint does not get it.
    pub fn needs_schema_in_prompt(self) -> bool {
        self != ResponseFormat::JsonSchema
    }
}

impl std::fmt::Display for ResponseFormat {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// File name under `<git dir>/spectra/`.
pub const MEMORY_FILE: &str = "llm-response-format.json";

/// File name under `<git dir>/spectra/` of the endpoints that do not stream.
pub const STREAM_MEMORY_FILE: &str = "llm-stream.json";

/// The remembered level per endpoint and model, kept in memory and, when a state directory is
/// known, in a small JSON file (`{"<url> <model>": "json_object"}`); and, the same way, whether
/// the endpoint streams (`{"<url> <model>": false}` in [`STREAM_MEMORY_FILE`]).
#[derive(Debug)]
pub struct FormatMemory {
    file: Option<PathBuf>,
    levels: Mutex<BTreeMap<String, ResponseFormat>>,
    stream_file: Option<PathBuf>,
    streams: Mutex<BTreeMap<String, bool>>,
}

impl FormatMemory {
    /// Memory backed by `<state_dir>/llm-response-format.json`, or only in memory.
    pub fn open(state_dir: Option<&Path>) -> Self {
        let file = state_dir.map(|dir| dir.join(MEMORY_FILE));
        let levels = file.as_deref().map(read_levels).unwrap_or_default();
        let stream_file = state_dir.map(|dir| dir.join(STREAM_MEMORY_FILE));
        let streams = stream_file.as_deref().map(read_levels).unwrap_or_default();
        FormatMemory {
            file,
            levels: Mutex::new(levels),
            stream_file,
            streams: Mutex::new(streams),
        }
    }

    /// Whether to ask `endpoint` and `model` for a streamed reply: yes unless it was seen not to
    /// stream.
    pub fn streams(&self, endpoint: &str, model: &str) -> bool {
        let streams = self
            .streams
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        streams
            .get(&memory_key(endpoint, model))
            .copied()
            .unwrap_or(true)
    }

    /// Remembers whether `endpoint` and `model` stream; writes the file only on change.
    pub fn remember_stream(&self, endpoint: &str, model: &str, streams: bool) {
        let mut map = self
            .streams
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if map.insert(memory_key(endpoint, model), streams) == Some(streams) {
            return;
        }
        if let Some(file) = &self.stream_file {
            if let Err(error) = write_levels(file, &map) {
                tracing::warn!(file = %file.display(), %error, "cannot save whether the endpoint streams");
            }
        }
    }

    /// The level to start with for `endpoint` and `model`.
    pub fn level(&self, endpoint: &str, model: &str) -> ResponseFormat {
        let levels = self
            .levels
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        levels
            .get(&memory_key(endpoint, model))
            .copied()
            .unwrap_or(ResponseFormat::JsonSchema)
    }

    /// Remembers that `level` worked for `endpoint` and `model`; writes the file only on change.
    pub fn remember(&self, endpoint: &str, model: &str, level: ResponseFormat) {
        let mut levels = self
            .levels
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if levels.insert(memory_key(endpoint, model), level) == Some(level) {
            return;
        }
        if let Some(file) = &self.file {
            if let Err(error) = write_levels(file, &levels) {
                tracing::warn!(file = %file.display(), %error, "cannot save the response_format level");
            }
        }
    }
}

fn memory_key(endpoint: &str, model: &str) -> String {
    format!("{endpoint} {model}")
}

fn read_levels<T: serde::de::DeserializeOwned>(file: &Path) -> BTreeMap<String, T> {
    let text = match std::fs::read(file) {
        Ok(text) => text,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return BTreeMap::new(),
        Err(error) => {
            tracing::warn!(file = %file.display(), %error, "cannot read the response_format levels");
            return BTreeMap::new();
        }
    };
    serde_json::from_slice(&text).unwrap_or_else(|error| {
        tracing::warn!(file = %file.display(), %error, "ignoring a corrupt response_format level file");
        BTreeMap::new()
    })
}

/// Writes through a temporary file and a rename, so a concurrent reader never sees half a file.
fn write_levels<T: serde::Serialize>(
    file: &Path,
    levels: &BTreeMap<String, T>,
) -> std::io::Result<()> {
    let dir = file.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir)?;
    let mut temp = tempfile::NamedTempFile::new_in(dir)?;
    serde_json::to_writer_pretty(&mut temp, levels)?;
    temp.persist(file).map_err(|e| e.error)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_ladder_steps_down_to_instructions_and_stops() {
        assert_eq!(
            ResponseFormat::JsonSchema.lower(),
            Some(ResponseFormat::JsonObject)
        );
        assert_eq!(
            ResponseFormat::JsonObject.lower(),
            Some(ResponseFormat::Instructions)
        );
        assert_eq!(ResponseFormat::Instructions.lower(), None);
    }

    #[test]
    fn only_json_schema_sends_the_schema_to_the_endpoint() {
        let schema = json!({"type": "object"});
        let field = ResponseFormat::JsonSchema
            .request_field("decision", &schema)
            .unwrap();
        assert_eq!(field["json_schema"]["schema"], schema);
        assert_eq!(field["json_schema"]["strict"], true);
        assert_eq!(
            ResponseFormat::JsonObject
                .request_field("d", &schema)
                .unwrap(),
            json!({"type": "json_object"})
        );
        assert_eq!(
            ResponseFormat::Instructions.request_field("d", &schema),
            None
        );
    }

    #[test]
    fn a_remembered_level_survives_reopening_and_is_keyed_by_endpoint_and_model() {
        let dir = tempfile::tempdir().unwrap();
        let memory = FormatMemory::open(Some(dir.path()));
        assert_eq!(
            memory.level("http://a/v1/chat/completions", "m"),
            ResponseFormat::JsonSchema
        );
        memory.remember(
            "http://a/v1/chat/completions",
            "m",
            ResponseFormat::JsonObject,
        );

        let reopened = FormatMemory::open(Some(dir.path()));
        assert_eq!(
            reopened.level("http://a/v1/chat/completions", "m"),
            ResponseFormat::JsonObject
        );
        assert_eq!(
            reopened.level("http://a/v1/chat/completions", "other"),
            ResponseFormat::JsonSchema
        );
        assert_eq!(
            reopened.level("http://b/v1/chat/completions", "m"),
            ResponseFormat::JsonSchema
        );
    }

    #[test]
    fn a_corrupt_memory_file_means_starting_from_the_top() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(MEMORY_FILE), "not json").unwrap();
        let memory = FormatMemory::open(Some(dir.path()));
        assert_eq!(memory.level("u", "m"), ResponseFormat::JsonSchema);
    }
}
