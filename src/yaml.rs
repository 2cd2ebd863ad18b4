//! The one door YAML comes in through.
//!
//! Registry files, the service catalog and repository overrides are YAML; everything past this
//! module sees typed values or `serde_json::Value`. Keeping the parser behind two functions means
//! it can be swapped without touching callers, and every parse error arrives in the same shape:
//! a line, a column and a plain message, ready to be prefixed with a file name.

use serde::de::DeserializeOwned;

/// A value together with where it was written, for errors that point into the file.
pub use serde_saphyr::Spanned;

/// A place in a YAML text, 1-based as editors count.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default, serde::Serialize)]
pub struct Position {
    pub line: u64,
    pub column: u64,
}

impl Position {
    /// The position a [`Spanned`] value was written at (where it is used, for aliases).
    pub fn of<T>(spanned: &Spanned<T>) -> Position {
        Position {
            line: spanned.referenced.line(),
            column: spanned.referenced.column(),
        }
    }
}

impl std::fmt::Display for Position {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.line, self.column)
    }
}

/// A YAML text that could not be read as the type asked for.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{position}: {message}")]
pub struct YamlError {
    pub position: Position,
    pub message: String,
}

/// Parses `text` as a `T`, refusing duplicate keys (serde-saphyr's default) so that a repeated
/// key is an error rather than a silent last-one-wins.
pub fn from_str<T: DeserializeOwned>(text: &str) -> Result<T, YamlError> {
    serde_saphyr::from_str(text).map_err(|error| {
        let position = error
            .location()
            .map(|location| Position {
                line: location.line(),
                column: location.column(),
            })
            .unwrap_or_default();
        YamlError {
            message: plain_message(&error.without_snippet().to_string(), position),
            position,
        }
    })
}

/// Parses `text` into JSON values, for documents with no fixed shape (schemas, catalogs).
pub fn to_json(text: &str) -> Result<serde_json::Value, YamlError> {
    from_str(text)
}

/// The parser appends " at line L, column C" to its messages; we print the position ourselves,
/// in `file:line:column` form, so the suffix would only repeat it.
fn plain_message(message: &str, position: Position) -> String {
    let suffix = format!(" at line {}, column {}", position.line, position.column);
    message.strip_suffix(&suffix).unwrap_or(message).to_string()
}

/// Serialises `value` as a YAML document (manifests, history, specifications).
pub fn to_string<T: serde::Serialize>(value: &T) -> Result<String, String> {
    serde_saphyr::to_string(value).map_err(|error| error.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_carry_line_column_and_a_plain_message() {
        let error = from_str::<serde_json::Value>("a: 1\na: 2\n").unwrap_err();
        assert_eq!(error.position, Position { line: 2, column: 1 });
        assert!(
            error.message.starts_with("duplicate mapping key: a"),
            "{error}"
        );
        assert!(!error.message.contains("at line"), "{error}");
    }

    #[test]
    fn spanned_values_know_their_position() {
        #[derive(serde::Deserialize)]
        struct Doc {
            name: Spanned<String>,
        }
        let doc: Doc = from_str("\nname: x\n").unwrap();
        assert_eq!(Position::of(&doc.name), Position { line: 2, column: 7 });
    }
}
