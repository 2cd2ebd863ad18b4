//! Schemas holding `null` where a schema or a keyword's value belongs, which JSON Schema's
//! meta-schema lets through.

use serde_json::Value;

use super::Report;
use crate::yaml::{Position, Spanned};

/// Refuses a schema holding `null` where a schema or a keyword's value belongs. JSON Schema
/// ignores keywords it does not know, so the meta-schema lets `{type: boolean, built: null}`
/// through; such keys come from YAML, where text with `, ` in a flow mapping splits into keys
/// with no value, and the model would be sent them.
pub(super) fn check_no_nulls(report: &mut Report, field: &str, schema: &Spanned<Value>) {
    for pointer in null_values(&schema.value) {
        let position = report.position_at(&format!("/{field}{pointer}"), Position::of(schema));
        let place = if pointer.is_empty() {
            "is null".to_string()
        } else {
            format!("holds null at `{pointer}`")
        };
        report.at(
            position,
            format!(
                "`{field}` {place}; a schema or a value belongs there (in a `{{...}}` mapping, quote text that contains `, ` or `: `)"
            ),
        );
    }
}

/// Keywords whose value is data, not schema: `null` is a meaningful value there.
const DATA_KEYWORDS: [&str; 4] = ["const", "default", "enum", "examples"];
/// Keywords whose value maps names to schemas (the names are not keywords).
const SCHEMA_MAPS: [&str; 5] = [
    "properties",
    "patternProperties",
    "$defs",
    "definitions",
    "dependentSchemas",
];

/// The JSON pointers of every `null` in `schema` outside data keywords.
pub(super) fn null_values(schema: &Value) -> Vec<String> {
    let mut found = Vec::new();
    nulls_in_schema(schema, "", &mut found);
    found
}

fn nulls_in_schema(value: &Value, pointer: &str, found: &mut Vec<String>) {
    match value {
        Value::Object(keywords) => {
            for (keyword, value) in keywords {
                let here = format!("{pointer}/{}", escape_pointer(keyword));
                if DATA_KEYWORDS.contains(&keyword.as_str()) {
                    continue;
                }
                if SCHEMA_MAPS.contains(&keyword.as_str()) {
                    nulls_in_schema_map(value, &here, found);
                } else {
                    nulls_in_schema(value, &here, found);
                }
            }
        }
        Value::Array(items) => {
            for (index, item) in items.iter().enumerate() {
                nulls_in_schema(item, &format!("{pointer}/{index}"), found);
            }
        }
        Value::Null => found.push(pointer.to_string()),
        _ => {}
    }
}

fn nulls_in_schema_map(value: &Value, pointer: &str, found: &mut Vec<String>) {
    match value {
        Value::Object(schemas) => {
            for (name, schema) in schemas {
                nulls_in_schema(
                    schema,
                    &format!("{pointer}/{}", escape_pointer(name)),
                    found,
                );
            }
        }
        other => nulls_in_schema(other, pointer, found),
    }
}

/// A key as one JSON pointer token.
fn escape_pointer(key: &str) -> String {
    key.replace('~', "~0").replace('/', "~1")
}
