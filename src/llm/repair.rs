//! Repair turns that ask only for what failed.
//!
//! A small model often writes a decision that is right except for one field (a confidence of
//! `100` where the schema wants 0..1). Asking for the whole decision again costs as much as the
//! first answer and usually repeats the slip. So when a reply is a JSON object and only some
//! paths fail the schema, the repair turn lists those paths alone — each JSON pointer with its
//! sub-schema, the reason and what the model wrote — and asks for an object
//! `{"<pointer>": <new value>, ...}` constrained by a small schema of its own. The answers are
//! merged into the reply at those pointers and the merged decision is validated whole again.
//! The model provides every value: nothing is coerced or invented here.
//!
//! A full re-ask stays the answer when the reply is not an object, when an error is at the top
//! level (a wrong type, an unknown property), when more than half of the top-level properties
//! fail, when there are more than [`MAX_PATHS`] paths, or when a path's sub-schema cannot be
//! found (a `oneOf`, a remote `$ref`).

use serde_json::{Map, Value, json};

/// The most paths one partial repair turn asks for; a reply wrong in more places is asked
/// for whole.
pub const MAX_PATHS: usize = 8;
/// How much of what the model wrote at a path the repair turn quotes back.
const WROTE_CHARS: usize = 200;
/// How much of one validation message the repair turn quotes.
const REASON_CHARS: usize = 300;
/// How many `$ref` hops a sub-schema lookup follows before giving up (a cycle).
const MAX_REF_HOPS: usize = 16;

/// One path of a reply that failed the schema.
#[derive(Debug, Clone, PartialEq)]
struct FailedPath {
    /// The JSON pointer into the decision.
    pointer: String,
    /// The sub-schema the value at `pointer` must match.
    schema: Value,
    /// The validator's messages for this path.
    reasons: Vec<String>,
    /// What the model wrote there; `None` when it left the property out.
    wrote: Option<Value>,
}

/// A repair turn that asks for some paths of a decision alone.
#[derive(Debug, Clone, PartialEq)]
pub struct PartialRepair {
    /// The reply so far, into which the answers are merged.
    decision: Value,
    paths: Vec<FailedPath>,
    /// The root schema's `$defs` and `definitions`, so that a `$ref` inside a sub-schema still
    /// resolves in the reply schema.
    definitions: Map<String, Value>,
    /// What was wrong with the last answer to this same question, when it is asked again.
    last_answer_problem: Option<String>,
}

/// A partial repair for `decision`, which failed `validator` (compiled from `schema`); `None`
/// when a full re-ask is the right turn.
pub fn plan(
    schema: &Value,
    decision: &Value,
    validator: &jsonschema::Validator,
) -> Option<PartialRepair> {
    let fields = decision.as_object()?;
    let mut paths: Vec<FailedPath> = Vec::new();
    for error in validator.iter_errors(decision) {
        let pointer = failed_pointer(&error)?;
        let reason: String = error.to_string().chars().take(REASON_CHARS).collect();
        match paths.iter_mut().find(|path| path.pointer == pointer) {
            Some(path) => path.reasons.push(reason),
            None => paths.push(FailedPath {
                wrote: decision.pointer(&pointer).cloned(),
                schema: Value::Null,
                reasons: vec![reason],
                pointer,
            }),
        }
    }
    let paths = outermost(paths);
    if paths.is_empty() || paths.len() > MAX_PATHS || most_fail(schema, fields, &paths) {
        return None;
    }
    let paths = paths
        .into_iter()
        .map(|mut path| {
            path.schema = sub_schema(schema, &path.pointer)?.clone();
            Some(path)
        })
        .collect::<Option<Vec<_>>>()?;
    Some(PartialRepair {
        decision: decision.clone(),
        paths,
        definitions: definitions(schema),
        last_answer_problem: None,
    })
}

/// The pointer an error asks to change: where it is, or for a missing property, the
/// property's own place (the model is asked for that value, not for its parent again).
/// `None` for an error at the top level, which only a full re-ask can fix.
fn failed_pointer(error: &jsonschema::ValidationError<'_>) -> Option<String> {
    let at = error.instance_path().as_str().to_owned();
    if let jsonschema::error::ValidationErrorKind::Required { property } = error.kind()
        && let Some(property) = property.as_str()
    {
        return Some(format!("{at}/{}", escape(property)));
    }
    (!at.is_empty()).then_some(at)
}

/// `paths` without those inside another failed path: that one is asked for whole.
fn outermost(paths: Vec<FailedPath>) -> Vec<FailedPath> {
    let inside_another = |path: &FailedPath| {
        paths.iter().any(|other| {
            path.pointer.len() > other.pointer.len()
                && path.pointer.starts_with(&other.pointer)
                && path.pointer[other.pointer.len()..].starts_with('/')
        })
    };
    let keep: Vec<bool> = paths.iter().map(|path| !inside_another(path)).collect();
    paths
        .into_iter()
        .zip(keep)
        .filter_map(|(path, keep)| keep.then_some(path))
        .collect()
}

/// Whether more than half of the top-level properties (the schema's, else the reply's) fail.
fn most_fail(schema: &Value, fields: &Map<String, Value>, paths: &[FailedPath]) -> bool {
    let mut failing: Vec<&str> = paths
        .iter()
        .filter_map(|path| path.pointer.split('/').nth(1))
        .collect();
    failing.sort_unstable();
    failing.dedup();
    let total = resolve(schema, schema)
        .and_then(|root| root.get("properties"))
        .and_then(Value::as_object)
        .map_or(fields.len(), Map::len)
        .max(1);
    failing.len() * 2 > total
}

/// The sub-schema of `root` that the value at the JSON `pointer` must match, following local
/// `$ref`s, `properties`, `additionalProperties`, `prefixItems` and `items`. `None` when the
/// schema reaches the path some other way (`oneOf`, `patternProperties`, a remote `$ref`).
pub fn sub_schema<'a>(root: &'a Value, pointer: &str) -> Option<&'a Value> {
    let mut at = resolve(root, root)?;
    if pointer.is_empty() {
        return Some(at);
    }
    for token in pointer.strip_prefix('/')?.split('/') {
        at = resolve(root, step(at, &unescape(token))?)?;
    }
    Some(at)
}

/// The schema one step below `schema` for the property or index `token`.
fn step<'a>(schema: &'a Value, token: &str) -> Option<&'a Value> {
    if let Some(property) = schema.get("properties").and_then(|p| p.get(token)) {
        return Some(property);
    }
    if let Ok(index) = token.parse::<usize>() {
        if let Some(item) = schema.get("prefixItems").and_then(|p| p.get(index)) {
            return Some(item);
        }
        if let Some(items) = schema.get("items").filter(|items| items.is_object()) {
            return Some(items);
        }
    }
    schema
        .get("additionalProperties")
        .filter(|additional| additional.is_object())
}

/// `schema` with its local `$ref` followed (a schema without one is itself).
fn resolve<'a>(root: &'a Value, mut schema: &'a Value) -> Option<&'a Value> {
    for _ in 0..MAX_REF_HOPS {
        let Some(reference) = schema.get("$ref").and_then(Value::as_str) else {
            return Some(schema);
        };
        schema = root.pointer(reference.strip_prefix('#')?)?;
    }
    None
}

fn definitions(schema: &Value) -> Map<String, Value> {
    ["$defs", "definitions"]
        .into_iter()
        .filter_map(|key| Some((key.to_owned(), schema.get(key)?.clone())))
        .collect()
}

/// A JSON pointer token for `key` (RFC 6901).
fn escape(key: &str) -> String {
    key.replace('~', "~0").replace('/', "~1")
}

fn unescape(token: &str) -> String {
    token.replace("~1", "/").replace("~0", "~")
}

impl PartialRepair {
    /// The pointers asked for, in order.
    pub fn pointers(&self) -> Vec<&str> {
        self.paths
            .iter()
            .map(|path| path.pointer.as_str())
            .collect()
    }

    /// The schema of the answer: an object whose properties are the pointers with their
    /// sub-schemas, all required, nothing else, so a `json_schema` server constrains it.
    pub fn reply_schema(&self) -> Value {
        let properties: Map<String, Value> = self
            .paths
            .iter()
            .map(|path| (path.pointer.clone(), path.schema.clone()))
            .collect();
        let mut schema = json!({
            "type": "object",
            "properties": properties,
            "required": self.pointers(),
            "additionalProperties": false,
        });
        if let Some(object) = schema.as_object_mut() {
            object.extend(self.definitions.clone());
        }
        schema
    }

    /// The name the reply schema is sent under, from the decision schema's name.
    pub fn schema_name(&self, decision_schema_name: &str) -> String {
        format!("{decision_schema_name}_repair")
    }

    /// The repair turn's question: each path with its rule, its sub-schema, the reason and what
    /// the model wrote, and the shape of the answer.
    pub fn prompt(&self) -> String {
        let mut text = String::new();
        if let Some(problem) = &self.last_answer_problem {
            text.push_str(&format!("Your last answer cannot be used: {problem}\n"));
        }
        text.push_str(
            "Your decision is valid except at the paths below; everything else in it is kept. \
             Give a new value for each of these paths, and nothing else:\n",
        );
        for path in &self.paths {
            text.push_str(&format!("- {}\n", path.line()));
            text.push_str(&format!("  its schema: {}\n", path.schema));
        }
        let shape: Vec<String> = self
            .paths
            .iter()
            .map(|path| format!("{}: <new value>", Value::from(path.pointer.as_str())))
            .collect();
        text.push_str(&format!(
            "Reply with only this JSON object, keyed by those JSON pointers: {{{}}}. \
             No prose, no code fences.",
            shape.join(", ")
        ));
        text
    }

    /// The same question again, saying what was wrong with the last answer to it.
    pub fn again(&self, problem: &str) -> PartialRepair {
        PartialRepair {
            last_answer_problem: Some(problem.to_owned()),
            ..self.clone()
        }
    }

    /// The decision with `answer` merged in at the pointers, or what is wrong with the answer
    /// (checked against [`Self::reply_schema`], so that every pointer has a value of its own
    /// sub-schema and nothing else is touched).
    pub fn merged(&self, answer: &Value) -> Result<Value, String> {
        let schema = self.reply_schema();
        let validator = jsonschema::validator_for(&schema)
            .map_err(|error| format!("the repair schema does not compile: {error}"))?;
        let problems: Vec<String> = validator
            .iter_errors(answer)
            .take(MAX_PATHS)
            .map(|error| {
                let at = answer_place(error.instance_path().as_str());
                let text: String = error.to_string().chars().take(REASON_CHARS).collect();
                format!("at {at}: {text}")
            })
            .collect();
        if !problems.is_empty() {
            return Err(format!(
                "the answer for {} does not match its schema: {}",
                self.pointers().join(", "),
                problems.join("; ")
            ));
        }
        let mut merged = self.decision.clone();
        for path in &self.paths {
            if let Some(value) = answer.get(&path.pointer) {
                set(&mut merged, &path.pointer, value.clone())?;
            }
        }
        Ok(merged)
    }
}

impl FailedPath {
    /// `/validation/confidence: a number from 0 to 1; you wrote 100 (100 is greater than ...)`
    fn line(&self) -> String {
        let wrote = match &self.wrote {
            Some(value) => {
                let text = value.to_string();
                let cut: String = text.chars().take(WROTE_CHARS).collect();
                let more = if cut.len() < text.len() { " ..." } else { "" };
                format!("you wrote {cut}{more}")
            }
            None => "you left it out".to_owned(),
        };
        let rule = describe(&self.schema)
            .map(|rule| format!("{rule}; "))
            .unwrap_or_default();
        format!(
            "{}: {rule}{wrote} ({})",
            self.pointer,
            self.reasons.join("; ")
        )
    }
}

/// Where in the decision a place in the answer is: the answer's keys are decision pointers, so
/// `/~1a~1b/0` (in the answer) is `/a/b/0` (in the decision).
fn answer_place(at: &str) -> String {
    let Some(inside) = at.strip_prefix('/') else {
        return "the top level".to_owned();
    };
    let (key, rest) = inside.split_once('/').unwrap_or((inside, ""));
    let rest = if rest.is_empty() {
        String::new()
    } else {
        format!("/{rest}")
    };
    format!("{}{rest}", unescape(key))
}

/// Sets the value at `pointer`, adding the last property when only its parent exists.
fn set(target: &mut Value, pointer: &str, value: Value) -> Result<(), String> {
    if let Some(slot) = target.pointer_mut(pointer) {
        *slot = value;
        return Ok(());
    }
    let missing = || format!("{pointer} is not in the decision");
    let (parent, last) = pointer.rsplit_once('/').ok_or_else(missing)?;
    match target.pointer_mut(parent) {
        Some(Value::Object(fields)) => {
            fields.insert(unescape(last), value);
            Ok(())
        }
        _ => Err(missing()),
    }
}

/// A short phrase for what `schema` wants (`a number from 0 to 1`), for the common cases.
fn describe(schema: &Value) -> Option<String> {
    if let Some(choices) = schema.get("enum").and_then(Value::as_array) {
        let choices: Vec<String> = choices.iter().map(Value::to_string).collect();
        return Some(format!("one of {}", choices.join(", ")));
    }
    let kind = schema.get("type").and_then(Value::as_str)?;
    let bound = |key: &str| schema.get(key).filter(|v| v.is_number());
    let range = match (bound("minimum"), bound("maximum")) {
        (Some(low), Some(high)) => format!(" from {low} to {high}"),
        (Some(low), None) => format!(" of at least {low}"),
        (None, Some(high)) => format!(" of at most {high}"),
        (None, None) => String::new(),
    };
    let limit = |key: &str, what: &str| {
        schema
            .get(key)
            .and_then(Value::as_u64)
            .map(|n| format!(" of at most {n} {what}"))
            .unwrap_or_default()
    };
    Some(match kind {
        "number" => format!("a number{range}"),
        "integer" => format!("an integer{range}"),
        "boolean" => "true or false".to_owned(),
        "string" => format!("a string{}", limit("maxLength", "characters")),
        "array" => format!("a list{}", limit("maxItems", "items")),
        "object" => {
            let required: Vec<&str> = schema
                .get("required")
                .and_then(Value::as_array)
                .map(|keys| keys.iter().filter_map(Value::as_str).collect())
                .unwrap_or_default();
            if required.is_empty() {
                "an object".to_owned()
            } else {
                format!("an object with {}", required.join(", "))
            }
        }
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn schema() -> Value {
        json!({
            "type": "object",
            "additionalProperties": false,
            "required": ["name", "validation", "tags", "owner"],
            "properties": {
                "name": {"type": "string"},
                "validation": {
                    "type": "object",
                    "additionalProperties": false,
                    "required": ["confidence", "reasoning"],
                    "properties": {
                        "confidence": {"type": "number", "minimum": 0, "maximum": 1},
                        "reasoning": {"type": "string"}
                    }
                },
                "tags": {"type": "array", "items": {"$ref": "#/$defs/tag"}},
                "owner": {"$ref": "#/$defs/person"}
            },
            "$defs": {
                "tag": {"type": "string", "enum": ["a", "b"]},
                "person": {"type": "object", "properties": {"name": {"type": "string"}}}
            }
        })
    }

    fn good() -> Value {
        json!({
            "name": "logging",
            "validation": {"confidence": 0.8, "reasoning": "fine"},
            "tags": ["a", "b"],
            "owner": {"name": "ops"}
        })
    }

    fn plan_for(decision: &Value) -> Option<PartialRepair> {
        let schema = schema();
        let validator = jsonschema::validator_for(&schema).unwrap();
        plan(&schema, decision, &validator)
    }

    #[test]
    fn sub_schemas_are_found_through_properties_items_and_refs() {
        let schema = schema();
        assert_eq!(
            sub_schema(&schema, "/validation/confidence"),
            Some(&json!({"type": "number", "minimum": 0, "maximum": 1}))
        );
        assert_eq!(
            sub_schema(&schema, "/tags/1"),
            Some(&json!({"type": "string", "enum": ["a", "b"]}))
        );
        assert_eq!(
            sub_schema(&schema, "/owner/name"),
            Some(&json!({"type": "string"}))
        );
        assert_eq!(sub_schema(&schema, ""), Some(&schema));
        assert_eq!(sub_schema(&schema, "/nowhere"), None);
        let remote = json!({"properties": {"a": {"$ref": "https://example.com/s.json"}}});
        assert_eq!(sub_schema(&remote, "/a"), None);
        let cycle = json!({"$defs": {"a": {"$ref": "#/$defs/a"}}, "properties": {"x": {"$ref": "#/$defs/a"}}});
        assert_eq!(sub_schema(&cycle, "/x"), None);
    }

    #[test]
    fn one_failing_field_is_asked_for_alone_with_its_rule_and_what_was_written() {
        let mut decision = good();
        decision["validation"]["confidence"] = json!(100);
        let partial = plan_for(&decision).expect("a partial repair");

        assert_eq!(partial.pointers(), ["/validation/confidence"]);
        let prompt = partial.prompt();
        assert!(
            prompt.contains("- /validation/confidence: a number from 0 to 1; you wrote 100 ("),
            "{prompt}"
        );
        assert!(prompt.contains("greater than the maximum of 1"), "{prompt}");
        assert!(
            prompt.contains("{\"/validation/confidence\": <new value>}"),
            "{prompt}"
        );
        let reply_schema = partial.reply_schema();
        assert_eq!(
            reply_schema["properties"],
            json!({"/validation/confidence": {"type": "number", "minimum": 0, "maximum": 1}})
        );
        assert_eq!(reply_schema["required"], json!(["/validation/confidence"]));
        assert_eq!(reply_schema["additionalProperties"], false);
    }

    #[test]
    fn an_answer_is_merged_at_its_pointer_and_nothing_else_changes() {
        let mut decision = good();
        decision["validation"]["confidence"] = json!(100);
        let partial = plan_for(&decision).unwrap();
        let merged = partial
            .merged(&json!({"/validation/confidence": 0.8}))
            .unwrap();
        assert_eq!(merged, good());
    }

    #[test]
    fn an_answer_that_misses_its_schema_is_refused_not_coerced() {
        let mut decision = good();
        decision["validation"]["confidence"] = json!(100);
        let partial = plan_for(&decision).unwrap();
        for answer in [
            json!({"/validation/confidence": 80}),
            json!({"/validation/confidence": "0.8"}),
            json!({}),
            good(),
        ] {
            let problem = partial.merged(&answer).unwrap_err();
            assert!(
                problem.starts_with("the answer for /validation/confidence does not match"),
                "{problem}"
            );
        }
        let problem = partial
            .merged(&json!({"/validation/confidence": 80}))
            .unwrap_err();
        assert!(
            problem.contains("at /validation/confidence: 80 is greater than the maximum of 1"),
            "{problem}"
        );
        let again = partial.again("it was wrong");
        assert!(
            again
                .prompt()
                .starts_with("Your last answer cannot be used: it was wrong\n")
        );
        assert_eq!(again.pointers(), partial.pointers());
    }

    #[test]
    fn a_missing_property_is_asked_for_at_its_own_place_and_added() {
        let mut decision = good();
        decision["validation"]
            .as_object_mut()
            .unwrap()
            .remove("reasoning");
        let partial = plan_for(&decision).unwrap();
        assert_eq!(partial.pointers(), ["/validation/reasoning"]);
        assert!(partial.prompt().contains("a string; you left it out"));
        let merged = partial
            .merged(&json!({"/validation/reasoning": "fine"}))
            .unwrap();
        assert_eq!(merged, good());
    }

    #[test]
    fn refs_inside_a_sub_schema_still_resolve_in_the_reply_schema() {
        let mut decision = good();
        decision["tags"] = json!("a");
        let partial = plan_for(&decision).unwrap();
        assert_eq!(partial.pointers(), ["/tags"]);
        assert!(partial.reply_schema()["$defs"]["tag"].is_object());
        assert_eq!(
            partial.merged(&json!({"/tags": ["b"]})).unwrap()["tags"],
            json!(["b"])
        );
        assert!(partial.merged(&json!({"/tags": ["c"]})).is_err());
    }

    #[test]
    fn a_nested_error_inside_another_failing_path_is_asked_for_with_its_parent() {
        let mut decision = good();
        decision["validation"] = json!({"confidence": 7, "reasoning": "x", "extra": 1});
        let partial = plan_for(&decision).unwrap();
        assert_eq!(partial.pointers(), ["/validation"]);
    }

    #[test]
    fn a_broken_shape_or_mostly_wrong_reply_is_asked_for_whole() {
        // An unknown top-level property is an error at the root.
        let mut extra = good();
        extra["surprise"] = json!(1);
        assert_eq!(plan_for(&extra), None);
        // Not an object.
        assert_eq!(plan_for(&json!([good()])), None);
        // Three of four top-level properties fail.
        let mut wrong = good();
        wrong["name"] = json!(1);
        wrong["tags"] = json!(2);
        wrong["owner"] = json!(3);
        assert_eq!(plan_for(&wrong), None);
        // Two of four is not more than half.
        let mut half = good();
        half["name"] = json!(1);
        half["tags"] = json!(2);
        assert_eq!(plan_for(&half).unwrap().pointers().len(), 2);
    }

    #[test]
    fn pointers_escape_slashes_and_tildes_in_keys() {
        let schema = json!({
            "type": "object",
            "properties": {"a/b": {"type": "integer"}, "c~d": {"type": "integer"}, "e": {"type": "integer"}},
            "required": ["a/b", "c~d", "e"]
        });
        let validator = jsonschema::validator_for(&schema).unwrap();
        let decision = json!({"c~d": 1, "e": 2});
        let partial = plan(&schema, &decision, &validator).unwrap();
        assert_eq!(partial.pointers(), ["/a~1b"]);
        let merged = partial.merged(&json!({"/a~1b": 3})).unwrap();
        assert_eq!(merged, json!({"a/b": 3, "c~d": 1, "e": 2}));
    }

    #[test]
    fn rules_are_described_in_words() {
        assert_eq!(
            describe(&json!({"type": "integer", "minimum": 0, "maximum": 100})).unwrap(),
            "an integer from 0 to 100"
        );
        assert_eq!(
            describe(&json!({"enum": ["low", "high"]})).unwrap(),
            "one of \"low\", \"high\""
        );
        assert_eq!(
            describe(&json!({"type": "array", "maxItems": 5})).unwrap(),
            "a list of at most 5 items"
        );
        assert_eq!(describe(&json!({"oneOf": []})), None);
    }
}
