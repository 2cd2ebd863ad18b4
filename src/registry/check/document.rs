//! An activity's document template, checked by rendering it with sample decisions built from
//! the activity's decision schema.

use serde_json::Value;

use super::Parsed;
use crate::registry::error::Problem;
use crate::registry::format::ActivityFile;
use crate::yaml::Position;

/// Checks an activity's document template: it parses, and it renders two sample decisions (an
/// unknown filter or a failing one shows only when rendering, and only in the branches that
/// run): the smallest valid one, with every list empty and every gate passed, and a fuller one,
/// with one item in every list (so each loop's body renders) and every gate failed.
pub fn document_template(
    template: &crate::document::Template,
    activity: &Parsed<ActivityFile>,
    problems: &mut Vec<Problem>,
) {
    let rendered = template.check().and_then(|()| {
        let schema = &activity.doc.decision.value;
        crate::document::render(
            template,
            &sample_front_matter(activity, Sample::Smallest),
            &minimal_instance(schema),
        )?;
        crate::document::render(
            template,
            &sample_front_matter(activity, Sample::Fuller),
            &sample_instance(schema, Sample::Fuller),
        )
    });
    let Err(error) = rendered else {
        return;
    };
    let (position, message) = match error {
        crate::document::DocumentError::Template {
            line,
            column,
            message,
            ..
        } => (
            Position {
                line: line.unwrap_or(0) as u64,
                column: column.unwrap_or(usize::from(line.is_some())) as u64,
            },
            message,
        ),
        other => (Position::default(), other.to_string()),
    };
    problems.push(Problem::new(
        &template.file,
        position,
        format!("document template: {message}"),
    ));
}

/// Which sample a template is checked with.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Sample {
    /// Lists empty, gates passed, decided offline.
    Smallest,
    /// One item per list, gates failed, decided by a model.
    Fuller,
}

/// The front matter a template is checked with.
fn sample_front_matter(
    activity: &Parsed<ActivityFile>,
    sample: Sample,
) -> crate::document::FrontMatter {
    let (result, level, outcome) = match sample {
        Sample::Smallest => ("passed", "required", "succeeded"),
        Sample::Fuller => ("failed", "advisory", "incomplete"),
    };
    let gates = activity
        .doc
        .quality_gates
        .iter()
        .map(|gate| {
            let entry = crate::document::GateEntry {
                result: result.into(),
                level: level.into(),
            };
            (gate.name.value.clone(), entry)
        })
        .collect();
    let (decided_by, model) = match sample {
        Sample::Smallest => ("offline", None),
        Sample::Fuller => ("llm", Some("model".to_string())),
    };
    crate::document::FrontMatter {
        service: "example".into(),
        activity: activity.doc.name.value.clone(),
        run: "run".into(),
        event: "event".into(),
        outcome: outcome.into(),
        gates,
        decided_by: decided_by.into(),
        model,
    }
}

/// The smallest value `schema` accepts, near enough for rendering a template: every property
/// of an object, the first of an `enum` or `anyOf`, empty lists, `x` for text, the minimum (or
/// 0) for numbers.
pub fn minimal_instance(schema: &Value) -> Value {
    sample_instance(schema, Sample::Smallest)
}

/// A value near enough to what `schema` accepts for rendering a template: [`minimal_instance`],
/// with one item in every list for the fuller sample.
fn sample_instance(schema: &Value, sample: Sample) -> Value {
    if let Some(first) = schema
        .get("enum")
        .and_then(Value::as_array)
        .and_then(|e| e.first())
    {
        return first.clone();
    }
    if let Some(first) = schema
        .get("anyOf")
        .and_then(Value::as_array)
        .and_then(|a| a.first())
    {
        return sample_instance(first, sample);
    }
    let kind = match schema.get("type") {
        Some(Value::Array(types))
            if sample == Sample::Smallest && types.iter().any(|t| t == "null") =>
        {
            return Value::Null;
        }
        // The fuller sample fills a nullable value, so the branch that prints it renders.
        Some(Value::Array(types)) => types
            .iter()
            .filter_map(Value::as_str)
            .find(|kind| *kind != "null")
            .unwrap_or("null"),
        Some(Value::String(kind)) => kind.as_str(),
        _ => "object",
    };
    match kind {
        "object" => Value::Object(
            schema
                .get("properties")
                .and_then(Value::as_object)
                .into_iter()
                .flatten()
                .map(|(name, property)| (name.clone(), sample_instance(property, sample)))
                .collect(),
        ),
        "array"
            if sample == Sample::Fuller
                || schema.get("minItems").and_then(Value::as_u64).unwrap_or(0) > 0 =>
        {
            Value::Array(vec![sample_instance(
                schema.get("items").unwrap_or(&Value::Null),
                sample,
            )])
        }
        "array" => Value::Array(Vec::new()),
        "string" => Value::String("x".into()),
        "integer" | "number" => schema
            .get("minimum")
            .filter(|minimum| minimum.is_number())
            .cloned()
            .unwrap_or(Value::from(0)),
        "boolean" => Value::Bool(sample == Sample::Fuller),
        _ => Value::Null,
    }
}
