//! The one door YAML comes in through.
//!
//! Registry files, the service catalog and repository overrides are YAML; everything past this
//! module sees typed values or `serde_json::Value`. Keeping the parser behind two functions means
//! it can be swapped without touching callers, and every parse error arrives in the same shape:
//! a line, a column and a plain message, ready to be prefixed with a file name.

use serde::Deserialize;
use serde::de::DeserializeOwned;

/// A value together with where it was written, for errors that point into the file.
pub use serde_saphyr::Spanned;

/// A place in a YAML text, 1-based as editors count.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default, serde::Serialize)]
pub struct Position {
    /// The line, from 1.
    pub line: u64,
    /// The column, from 1.
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
    /// Where the problem is.
    pub position: Position,
    /// What is wrong.
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

/// Where the value at JSON `pointer` (`/decision/properties/a`) is written in the YAML `text`:
/// for a mapping entry the position of its key, for a sequence item the item's. `None` when the
/// text does not parse or holds nothing there. For error messages that point inside a value
/// read without positions (a JSON Schema, say).
pub fn position_at(text: &str, pointer: &str) -> Option<Position> {
    let root: Spanned<Node> = serde_saphyr::from_str(text).ok()?;
    let mut position = Position::of(&root);
    let mut node = &root.value;
    for token in pointer.split('/').skip(1) {
        let token = token.replace("~1", "/").replace("~0", "~");
        let (at, next) = match node {
            Node::Map(entries) => entries
                .iter()
                .find(|(key, _)| key.value == token)
                .map(|(key, value)| (Position::of(key), &value.value))?,
            Node::Seq(items) => {
                let item = items.get(token.parse::<usize>().ok()?)?;
                (Position::of(item), &item.value)
            }
            Node::Scalar => return None,
        };
        position = at;
        node = next;
    }
    Some(position)
}

/// A YAML value whose every key and item knows where it was written.
enum Node {
    Scalar,
    Seq(Vec<Spanned<Node>>),
    Map(Vec<(Spanned<String>, Spanned<Node>)>),
}

impl<'de> Deserialize<'de> for Node {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Node, D::Error> {
        deserializer.deserialize_any(NodeVisitor)
    }
}

struct NodeVisitor;

impl<'de> serde::de::Visitor<'de> for NodeVisitor {
    type Value = Node;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("any YAML value")
    }

    fn visit_bool<E>(self, _: bool) -> Result<Node, E> {
        Ok(Node::Scalar)
    }
    fn visit_i64<E>(self, _: i64) -> Result<Node, E> {
        Ok(Node::Scalar)
    }
    fn visit_i128<E>(self, _: i128) -> Result<Node, E> {
        Ok(Node::Scalar)
    }
    fn visit_u64<E>(self, _: u64) -> Result<Node, E> {
        Ok(Node::Scalar)
    }
    fn visit_u128<E>(self, _: u128) -> Result<Node, E> {
        Ok(Node::Scalar)
    }
    fn visit_f64<E>(self, _: f64) -> Result<Node, E> {
        Ok(Node::Scalar)
    }
    fn visit_str<E>(self, _: &str) -> Result<Node, E> {
        Ok(Node::Scalar)
    }
    fn visit_bytes<E>(self, _: &[u8]) -> Result<Node, E> {
        Ok(Node::Scalar)
    }
    fn visit_unit<E>(self) -> Result<Node, E> {
        Ok(Node::Scalar)
    }
    fn visit_none<E>(self) -> Result<Node, E> {
        Ok(Node::Scalar)
    }
    fn visit_some<D: serde::Deserializer<'de>>(self, deserializer: D) -> Result<Node, D::Error> {
        Node::deserialize(deserializer)
    }

    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Node, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element()? {
            items.push(item);
        }
        Ok(Node::Seq(items))
    }

    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Node, A::Error> {
        let mut entries = Vec::new();
        while let Some(key) = map.next_key::<Spanned<KeyText>>()? {
            let value = map.next_value()?;
            let key = Spanned {
                value: key.value.0,
                referenced: key.referenced,
                defined: key.defined,
            };
            entries.push((key, value));
        }
        Ok(Node::Map(entries))
    }
}

/// A mapping key as text, read as `serde_json::Value` reads its keys (so `y` stays `"y"`).
struct KeyText(String);

impl<'de> Deserialize<'de> for KeyText {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<KeyText, D::Error> {
        String::deserialize(deserializer).map(KeyText)
    }
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
    fn a_pointer_finds_the_key_or_item_it_names() {
        let text = "a:\n  b: {c: 1, d, e}\n  list:\n    - x\n    - {y: 2}\n";
        let at = |pointer| position_at(text, pointer);
        assert_eq!(at("/a/b/c"), Some(Position { line: 2, column: 7 }));
        // A word with no value in a flow mapping is a key whose value is null.
        assert_eq!(
            at("/a/b/d"),
            Some(Position {
                line: 2,
                column: 13
            })
        );
        assert_eq!(at("/a/list/1/y"), Some(Position { line: 5, column: 8 }));
        // Keys are read as JSON reads them: `y` is the text "y", not YAML 1.1's `true`.
        assert_eq!(
            position_at("- {y: 2}\n", "/0/y"),
            Some(Position { line: 1, column: 4 })
        );
        assert_eq!(at("/a/nothing"), None);
        assert_eq!(at("/a/b/c/deeper"), None);
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
