//! What a decision schema leaves unbounded, and what in it a grammar cannot enforce.
//!
//! A model served with grammar-constrained decoding (llama.cpp turns `json_schema` into a
//! grammar) writes whatever the grammar allows: an array without `maxItems` or a string without
//! `maxLength` lets a small model append items and text until it hits `max_tokens` or the
//! timeout. Such grammars also ignore some constraints (numeric bounds on fractional numbers,
//! `pattern`, `format`); the reply is still validated, so a model that misses one of them costs
//! a repair turn. `registry validate` refuses the first kind and warns about the second.

use serde_json::Value;

/// One thing found in a schema, at a JSON pointer inside it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    /// Where, as a JSON pointer from the top of the schema (`/properties/risks/items`).
    pub pointer: String,
    /// What.
    pub kind: FindingKind,
}

/// What a [`Finding`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FindingKind {
    /// An array without `maxItems`.
    UnboundedArray,
    /// A string without `maxLength`, `enum` or `const`.
    UnboundedString,
    /// A keyword a grammar-constrained server does not enforce.
    Unenforced(&'static str),
}

impl FindingKind {
    /// Whether the finding makes the schema invalid (not only worth a warning).
    pub fn is_error(self) -> bool {
        !matches!(self, FindingKind::Unenforced(_))
    }
}

/// Numeric keywords a grammar does not enforce on a `number` (it does on an `integer`).
const NUMBER_BOUNDS: [&str; 5] = [
    "minimum",
    "maximum",
    "exclusiveMinimum",
    "exclusiveMaximum",
    "multipleOf",
];
/// Keywords whose value maps names to schemas.
const SCHEMA_MAPS: [&str; 4] = ["properties", "patternProperties", "$defs", "definitions"];
/// Keywords whose value is a list of schemas.
const SCHEMA_LISTS: [&str; 4] = ["anyOf", "oneOf", "allOf", "prefixItems"];
/// Keywords whose value is one schema.
const SCHEMA_VALUES: [&str; 3] = ["items", "additionalProperties", "not"];

/// Every finding in `schema`, in schema order (depth first).
pub fn findings(schema: &Value) -> Vec<Finding> {
    let mut found = Vec::new();
    walk(schema, "", &mut found);
    found
}

/// The types a schema allows (`type: x` or `type: [x, y]`).
pub fn types(schema: &Value) -> Vec<&str> {
    match schema.get("type") {
        Some(Value::String(kind)) => vec![kind.as_str()],
        Some(Value::Array(kinds)) => kinds.iter().filter_map(Value::as_str).collect(),
        _ => Vec::new(),
    }
}

/// Whether the schema fixes its values by listing them.
pub fn is_enumerated(schema: &Value) -> bool {
    schema.get("enum").is_some() || schema.get("const").is_some()
}

fn walk(schema: &Value, pointer: &str, found: &mut Vec<Finding>) {
    let Value::Object(keywords) = schema else {
        return;
    };
    let mut add = |kind| {
        found.push(Finding {
            pointer: pointer.to_string(),
            kind,
        })
    };
    let kinds = types(schema);
    if !is_enumerated(schema) {
        if kinds.contains(&"array") && !keywords.contains_key("maxItems") {
            add(FindingKind::UnboundedArray);
        }
        if kinds.contains(&"string") && !keywords.contains_key("maxLength") {
            add(FindingKind::UnboundedString);
        }
    }
    if kinds.contains(&"number") {
        for keyword in NUMBER_BOUNDS {
            if keywords.contains_key(keyword) {
                add(FindingKind::Unenforced(keyword));
            }
        }
    }
    for keyword in ["pattern", "format"] {
        if keywords.get(keyword).is_some_and(Value::is_string) {
            add(FindingKind::Unenforced(keyword));
        }
    }
    for (keyword, value) in keywords {
        let here = format!("{pointer}/{}", escape(keyword));
        if SCHEMA_MAPS.contains(&keyword.as_str()) {
            for (name, sub) in value.as_object().into_iter().flatten() {
                walk(sub, &format!("{here}/{}", escape(name)), found);
            }
        } else if SCHEMA_LISTS.contains(&keyword.as_str()) {
            for (index, sub) in value.as_array().into_iter().flatten().enumerate() {
                walk(sub, &format!("{here}/{index}"), found);
            }
        } else if SCHEMA_VALUES.contains(&keyword.as_str()) {
            walk(value, &here, found);
        }
    }
}

/// A key as one JSON pointer token.
fn escape(key: &str) -> String {
    key.replace('~', "~0").replace('/', "~1")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn kinds(schema: Value) -> Vec<(String, FindingKind)> {
        findings(&schema)
            .into_iter()
            .map(|f| (f.pointer, f.kind))
            .collect()
    }

    #[test]
    fn unbounded_arrays_and_strings_are_found_where_they_are() {
        let schema = json!({"type": "object", "properties": {
            "list": {"type": "array", "items": {"type": "string"}},
            "name": {"type": ["string", "null"]},
            "kind": {"type": "string", "enum": ["a", "b"]},
            "fixed": {"type": "string", "const": "x"},
            "ok": {"type": "array", "maxItems": 3, "items": {"type": "string", "maxLength": 9}},
            "any": {"anyOf": [{"type": "string"}, {"type": "integer"}]}
        }});
        assert_eq!(
            kinds(schema),
            [
                (
                    "/properties/any/anyOf/0".into(),
                    FindingKind::UnboundedString
                ),
                ("/properties/list".into(), FindingKind::UnboundedArray),
                (
                    "/properties/list/items".into(),
                    FindingKind::UnboundedString
                ),
                ("/properties/name".into(), FindingKind::UnboundedString),
            ]
        );
    }

    #[test]
    fn constraints_a_grammar_ignores_are_warnings() {
        let schema = json!({"type": "object", "properties": {
            "confidence": {"type": "number", "minimum": 0, "maximum": 1},
            "percent": {"type": "integer", "minimum": 0, "maximum": 100},
            "name": {"type": "string", "maxLength": 9, "pattern": "^[a-z]+$"},
            "when": {"type": "string", "maxLength": 30, "format": "date-time"}
        }});
        let found = kinds(schema);
        assert_eq!(
            found,
            [
                (
                    "/properties/confidence".into(),
                    FindingKind::Unenforced("minimum")
                ),
                (
                    "/properties/confidence".into(),
                    FindingKind::Unenforced("maximum")
                ),
                (
                    "/properties/name".into(),
                    FindingKind::Unenforced("pattern")
                ),
                ("/properties/when".into(), FindingKind::Unenforced("format")),
            ]
        );
        assert!(found.iter().all(|(_, kind)| !kind.is_error()));
    }

    #[test]
    fn property_names_that_look_like_keywords_are_names() {
        let schema = json!({"type": "object", "properties": {
            "pattern": {"type": "string", "maxLength": 5},
            "a/b": {"type": "string"}
        }});
        assert_eq!(
            kinds(schema),
            [("/properties/a~1b".into(), FindingKind::UnboundedString)]
        );
    }
}
