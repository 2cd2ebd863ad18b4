//! The reply budget a decision needs, from its schema's bounds.
//!
//! An honest upper estimate of the tokens of the largest reply the schema accepts, so
//! `max_tokens` asks for what a complete decision can take and no more: a small model that
//! runs away then stops at the bound instead of at the configured budget or the timeout. The
//! estimate sums over the schema tree (docs/llm.md states the formula):
//!
//! - an object: its braces, then for every property its key (quoted, with `: `), its value and
//!   a separator, whether or not the property is required;
//! - an array: its brackets, then `maxItems` times an item and a separator;
//! - a string: `maxLength` at [`CHARS_PER_TOKEN`] characters a token, plus its quotes; an
//!   `enum` or `const` its longest value;
//! - a number or an integer [`NUMBER_TOKENS`], a boolean [`BOOLEAN_TOKENS`], `null` one token;
//! - `anyOf`, `oneOf`, `allOf` and a list of types: the largest alternative;
//!
//! then [`REPLY_SLACK`] for what a model writes around the value. Every separator counts
//! [`SEPARATOR_TOKENS`] (the comma and the line break and indentation of a pretty-printed
//! reply). A schema with an array or a string left unbounded, a `$ref` or a value of no stated
//! type has no estimate: the caller falls back to the configured budget.

use serde_json::Value;

/// Characters per token assumed for text: real tokenizers average about 4 on English, so 3
/// over-estimates, the safe direction.
pub const CHARS_PER_TOKEN: u64 = 3;
/// Tokens for one number: digits, sign, fraction and exponent.
pub const NUMBER_TOKENS: u64 = 4;
/// Tokens for `true` or `false`.
pub const BOOLEAN_TOKENS: u64 = 2;
/// Tokens between two members or items: a comma and the whitespace a model puts around it.
pub const SEPARATOR_TOKENS: u64 = 2;
/// Tokens for the brackets or braces around an object or array.
pub const BRACKET_TOKENS: u64 = 2;
/// Tokens a model may write around the JSON value (a line break, a code fence it was told not
/// to write).
pub const REPLY_SLACK: u64 = 16;

/// The estimated largest reply `schema` accepts, in tokens; `None` when the schema leaves it
/// unbounded.
pub fn reply_tokens(schema: &Value) -> Option<u64> {
    value_tokens(schema).map(|tokens| tokens.saturating_add(REPLY_SLACK))
}

/// The `max_tokens` to ask for: the estimate when it is below `budget`, else `budget` (also
/// when there is no estimate). The context window caps it further when the request is built.
pub fn max_tokens(schema: &Value, budget: u32) -> u32 {
    reply_tokens(schema)
        .and_then(|tokens| u32::try_from(tokens).ok())
        .map_or(budget, |tokens| tokens.min(budget))
}

/// Tokens of text of `chars` characters.
fn text_tokens(chars: u64) -> u64 {
    chars.div_ceil(CHARS_PER_TOKEN)
}

fn value_tokens(schema: &Value) -> Option<u64> {
    if let Some(values) = schema.get("enum").and_then(Value::as_array) {
        return values.iter().map(literal_tokens).max();
    }
    if let Some(value) = schema.get("const") {
        return Some(literal_tokens(value));
    }
    if schema.get("$ref").is_some() {
        return None;
    }
    let alternatives: Vec<&Value> = ["anyOf", "oneOf", "allOf"]
        .iter()
        .filter_map(|keyword| schema.get(keyword).and_then(Value::as_array))
        .flatten()
        .collect();
    if !alternatives.is_empty() {
        return largest(alternatives.into_iter().map(value_tokens));
    }
    let kinds: Vec<&str> = match schema.get("type") {
        Some(Value::String(kind)) => vec![kind.as_str()],
        Some(Value::Array(kinds)) => kinds.iter().filter_map(Value::as_str).collect(),
        _ => Vec::new(),
    };
    if kinds.is_empty() {
        return None;
    }
    largest(kinds.into_iter().map(|kind| typed_tokens(schema, kind)))
}

/// The largest of estimates, `None` when any is unbounded.
fn largest(mut estimates: impl Iterator<Item = Option<u64>>) -> Option<u64> {
    estimates.try_fold(0, |most, tokens| tokens.map(|tokens| most.max(tokens)))
}

fn typed_tokens(schema: &Value, kind: &str) -> Option<u64> {
    let bound = |keyword| schema.get(keyword).and_then(Value::as_u64);
    match kind {
        "object" => object_tokens(schema),
        "array" => {
            let item = match schema.get("items") {
                Some(items) => value_tokens(items)?,
                None => return (bound("maxItems") == Some(0)).then_some(BRACKET_TOKENS),
            };
            let per_item = item.saturating_add(SEPARATOR_TOKENS);
            Some(BRACKET_TOKENS.saturating_add(bound("maxItems")?.saturating_mul(per_item)))
        }
        "string" => Some(text_tokens(bound("maxLength")?).saturating_add(2)),
        "number" | "integer" => Some(NUMBER_TOKENS),
        "boolean" => Some(BOOLEAN_TOKENS),
        "null" => Some(1),
        _ => None,
    }
}

fn object_tokens(schema: &Value) -> Option<u64> {
    let properties = schema.get("properties").and_then(Value::as_object);
    properties
        .into_iter()
        .flatten()
        .try_fold(BRACKET_TOKENS, |total, (name, property)| {
            // `"name": ` is the name, two quotes, a colon and a space.
            let key = text_tokens(name.chars().count() as u64 + 4);
            let member = key
                .saturating_add(value_tokens(property)?)
                .saturating_add(SEPARATOR_TOKENS);
            Some(total.saturating_add(member))
        })
}

/// Tokens of one literal value, as JSON text.
fn literal_tokens(value: &Value) -> u64 {
    text_tokens(value.to_string().chars().count() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_small_schema_gives_the_hand_computed_estimate() {
        let schema = json!({"type": "object", "properties": {
            "name": {"type": "string", "maxLength": 30},
            "tags": {"type": "array", "maxItems": 3, "items": {"type": "string", "maxLength": 9}},
            "level": {"type": "string", "enum": ["low", "medium", "high"]},
            "sure": {"type": "integer", "minimum": 0, "maximum": 100},
            "done": {"type": "boolean"}
        }});
        // Braces 2.
        // done: key "done": (4+4=8 chars) 3, boolean 2, separator 2 = 7.
        // level: key 9 chars 3, `"medium"` 8 chars 3, separator 2 = 8.
        // name: key 8 chars 3, 30 chars 10 + quotes 2, separator 2 = 17.
        // sure: key 8 chars 3, number 4, separator 2 = 9.
        // tags: key 8 chars 3, brackets 2 + 3 × (9 chars 3 + quotes 2 + separator 2), separator 2 = 28.
        // Slack 16.
        assert_eq!(reply_tokens(&schema), Some(2 + 7 + 8 + 17 + 9 + 28 + 16));
    }

    #[test]
    fn the_estimate_grows_with_every_bound() {
        let schema = |items: u64, chars: u64| {
            json!({"type": "object", "properties": {"list": {"type": "array",
                "maxItems": items, "items": {"type": "string", "maxLength": chars}}}})
        };
        let mut last = 0;
        for items in 0..10 {
            let tokens = reply_tokens(&schema(items, 100)).unwrap();
            assert!(
                tokens > last || (items == 0 && tokens > 0),
                "{items}: {tokens}"
            );
            last = tokens;
        }
        let mut last = 0;
        for chars in (0..1000).step_by(50) {
            let tokens = reply_tokens(&schema(4, chars)).unwrap();
            assert!(tokens >= last, "{chars}: {tokens}");
            last = tokens;
        }
        assert!(reply_tokens(&schema(4, 1000)).unwrap() > reply_tokens(&schema(4, 10)).unwrap());
    }

    #[test]
    fn alternatives_and_type_lists_count_the_largest() {
        let short = json!({"type": "string", "maxLength": 3});
        let long = json!({"type": "string", "maxLength": 300});
        let either = json!({"anyOf": [short, long]});
        assert_eq!(reply_tokens(&either), reply_tokens(&long));
        let nullable = json!({"type": ["string", "null"], "maxLength": 300});
        assert_eq!(reply_tokens(&nullable), reply_tokens(&long));
    }

    #[test]
    fn an_unbounded_schema_has_no_estimate_and_falls_back_to_the_budget() {
        for schema in [
            json!({"type": "array", "items": {"type": "string", "maxLength": 5}}),
            json!({"type": "object", "properties": {"text": {"type": "string"}}}),
            json!({"$ref": "#/$defs/x"}),
            json!({"description": "anything"}),
        ] {
            assert_eq!(reply_tokens(&schema), None, "{schema}");
            assert_eq!(max_tokens(&schema, 4096), 4096);
        }
    }

    #[test]
    fn the_budget_caps_the_estimate() {
        let schema = json!({"type": "array", "maxItems": 8,
            "items": {"type": "string", "maxLength": 600}});
        let estimate = u32::try_from(reply_tokens(&schema).unwrap()).unwrap();
        assert_eq!(max_tokens(&schema, 4096), estimate);
        assert_eq!(max_tokens(&schema, 100), 100);
    }

    #[test]
    fn every_built_in_decision_has_an_estimate() {
        let registry = crate::registry::Registry::builtin().unwrap();
        for activity in registry.activities() {
            let schema = registry.decision_schema(&activity.name).unwrap();
            let tokens =
                reply_tokens(&schema).unwrap_or_else(|| panic!("{}: no estimate", activity.name));
            assert!(tokens > 0, "{}", activity.name);
            eprintln!("{}: {tokens} of {}", activity.name, activity.token_budget);
        }
    }
}
