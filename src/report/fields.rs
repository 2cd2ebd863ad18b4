//! A JSON decision as readable fields: one row per leaf, named by its path
//! (`problem.statement`), lists of plain values one item per line.

use serde::Serialize;
use serde_json::Value;

/// One field of a decision.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Field {
    /// Where it is in the decision, `problem.statement` or `playbooks[0].id`.
    pub path: String,
    /// Its value as text; a list of plain values one per line.
    pub value: String,
}

/// The fields of `value`, in the decision's own order.
pub fn flatten(value: &Value) -> Vec<Field> {
    let mut fields = Vec::new();
    walk(value, String::new(), &mut fields);
    fields
}

fn walk(value: &Value, path: String, fields: &mut Vec<Field>) {
    match value {
        Value::Object(map) if !map.is_empty() => {
            for (key, child) in map {
                let child_path = if path.is_empty() {
                    key.clone()
                } else {
                    format!("{path}.{key}")
                };
                walk(child, child_path, fields);
            }
        }
        Value::Array(items) if !items.is_empty() && !items.iter().all(is_plain) => {
            for (index, item) in items.iter().enumerate() {
                walk(item, format!("{path}[{index}]"), fields);
            }
        }
        leaf => fields.push(Field {
            path: if path.is_empty() {
                "(value)".to_string()
            } else {
                path
            },
            value: text(leaf),
        }),
    }
}

fn is_plain(value: &Value) -> bool {
    !matches!(value, Value::Object(_) | Value::Array(_))
}

/// A plain value, or a list of them one per line, as a person reads it.
pub fn text(value: &Value) -> String {
    match value {
        Value::Null => "—".to_string(),
        Value::String(text) => text.clone(),
        Value::Array(items) if items.is_empty() => "(none)".to_string(),
        Value::Object(map) if map.is_empty() => "(none)".to_string(),
        Value::Array(items) => items.iter().map(text).collect::<Vec<_>>().join("\n"),
        other => other.to_string(),
    }
}
