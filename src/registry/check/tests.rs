//! Unit tests of the registry's checks.

use super::*;
use serde_json::json;

#[test]
fn the_minimal_instance_of_every_built_in_decision_schema_is_valid() {
    for file in crate::registry::source::builtin()
        .into_iter()
        .filter(|file| file.kind == crate::registry::Kind::Activity)
    {
        let definition = crate::yaml::to_json(&file.text).unwrap();
        let schema = &definition["decision"];
        let instance = minimal_instance(schema);
        let validator = jsonschema::validator_for(schema).unwrap();
        let errors: Vec<String> = validator
            .iter_errors(&instance)
            .map(|e| e.to_string())
            .collect();
        assert!(errors.is_empty(), "{}: {errors:#?}", file.path);
    }
}

#[test]
fn keywords_are_lowercase_words_or_stems() {
    assert!(is_keyword("observab") && is_keyword("roll-out") && is_keyword("qa2"));
    assert!(!is_keyword("") && !is_keyword("Deploy") && !is_keyword("two words"));
}

#[test]
fn ids_are_lowercase_words() {
    assert!(is_id("repo.inventory"));
    assert!(is_id("tests-run_2"));
    assert!(!is_id("Repo"));
    assert!(!is_id("a..b"));
    assert!(!is_id("1a"));
    assert!(!is_id(""));
}

#[test]
fn schema_at_follows_properties_and_items() {
    let schema = json!({"type": "object", "properties": {"a": {"type": "array", "items": {
            "type": "object", "properties": {"b": {"type": "string"}}}}}});
    assert!(schema_at(&schema, "/a/0/b").is_some());
    assert!(schema_at(&schema, "/a/b").is_none());
    assert!(schema_at(&schema, "a").is_none());
}

#[test]
fn invalid_schemas_are_reported() {
    assert!(compile_schema(&json!({"type": "object"})).is_ok());
    assert!(compile_schema(&json!({"type": "nonsense"})).is_err());
    assert!(compile_schema(&json!({"$schema": "x:y", "type": "object"})).is_err());
}

#[test]
fn nulls_where_schemas_or_keyword_values_belong_are_found() {
    let schema = json!({"type": "object", "properties": {
        "done": {"type": "boolean", "description": "Whether it is", "built": null},
        "missing": null,
        "a/b": {"type": "string", "description": null},
        "list": {"type": "array", "items": [null]},
        "const": {"type": ["string", "null"]}
    }});
    assert_eq!(
        null_values(&schema),
        [
            "/properties/a~1b/description",
            "/properties/done/built",
            "/properties/list/items/0",
            "/properties/missing",
        ]
    );
}

#[test]
fn null_as_data_is_not_a_problem() {
    let schema = json!({"type": ["string", "null"], "default": null, "const": null,
            "enum": ["a", null], "examples": [null], "properties": {"default": {"type": "null"}}});
    assert!(
        null_values(&schema).is_empty(),
        "{:?}",
        null_values(&schema)
    );
}

#[test]
fn a_null_key_in_a_decision_schema_is_reported_at_its_line() {
    let text = "\
name: extra
order: 50
description: x
prompts: {system: s, user: u}
decision:
  type: object
  properties:
    ok: {type: boolean, description: Whether it is, built, done.}
token_budget: 10
";
    let parsed = Parsed {
        file: "a.yaml".to_string(),
        layer: Layer::Repository,
        doc: crate::yaml::from_str::<ActivityFile>(text).unwrap(),
        text: text.to_string(),
    };
    let mut problems = Vec::new();
    activity_file(&parsed, &mut problems);
    let messages: Vec<String> = problems.iter().map(ToString::to_string).collect();
    assert_eq!(
        messages,
        [
            "a.yaml:8:53: `decision` holds null at `/properties/ok/built`; a schema or a value belongs there (in a `{...}` mapping, quote text that contains `, ` or `: `)",
            "a.yaml:8:60: `decision` holds null at `/properties/ok/done.`; a schema or a value belongs there (in a `{...}` mapping, quote text that contains `, ` or `: `)",
        ]
    );
}
