//! The few filters document templates use beyond Jinja's own: lists as bullets, lists of objects
//! as tables, and table cells that stay on one line whatever the decision holds.
//!
//! Every filter takes any value (a decision from an older schema may lack the field, or hold
//! another type) and prints something sensible rather than failing.

use minijinja::value::{Rest, Value, ValueKind};
use minijinja::{Environment, Error};

/// What a filter prints for an empty or missing value, so a reader sees that it is empty.
const NONE: &str = "_none_";

/// Adds the document filters to `environment`.
pub fn add(environment: &mut Environment<'_>) {
    environment.add_filter("bullets", bullets);
    environment.add_filter("numbered", numbered);
    environment.add_filter("table", table);
    environment.add_filter("cell", cell);
    environment.add_filter("label", label);
    environment.add_filter("or_none", or_none);
}

/// A list as Markdown bullets, one `- item` line each (an item's further lines indented under
/// it), or `_none_` when it is empty or missing.
fn bullets(value: &Value) -> String {
    list(value, |_| "- ".to_string())
}

/// A list as a numbered Markdown list (`1. item`), for steps whose order matters; `_none_`
/// when it is empty or missing.
fn numbered(value: &Value) -> String {
    list(value, |index| format!("{}. ", index + 1))
}

fn list(value: &Value, marker: impl Fn(usize) -> String) -> String {
    let items = items_of(value);
    if items.is_empty() {
        return NONE.to_string();
    }
    items
        .iter()
        .enumerate()
        .map(|(index, item)| {
            let marker = marker(index);
            let indent = format!("\n{}", " ".repeat(marker.len()));
            format!("{marker}{}", inline(item).replace('\n', &indent))
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// A list of objects as a Markdown table with one column per name in `columns` (headed by the
/// name as words), or `_none_` when it is empty or missing. With no columns named, the keys of
/// the first object, in order.
fn table(value: &Value, columns: Rest<String>) -> Result<String, Error> {
    let rows = items_of(value);
    if rows.is_empty() {
        return Ok(NONE.to_string());
    }
    let columns: Vec<String> = if columns.is_empty() {
        match rows[0].try_iter() {
            Ok(keys) if rows[0].kind() == ValueKind::Map => {
                keys.map(|key| key.to_string()).collect()
            }
            _ => vec![String::new()],
        }
    } else {
        columns.0
    };
    let mut lines = vec![
        row(columns.iter().map(|column| label(column))),
        row(columns.iter().map(|_| "---".to_string())),
    ];
    for item in &rows {
        lines.push(row(columns.iter().map(|column| {
            if column.is_empty() {
                cell(item)
            } else {
                cell(&item.get_attr(column).unwrap_or_default())
            }
        })));
    }
    Ok(lines.join("\n"))
}

fn row(cells: impl Iterator<Item = String>) -> String {
    format!("| {} |", cells.collect::<Vec<_>>().join(" | "))
}

/// A value as the text of one table cell: `|` escaped, line breaks as `<br>`, a list's items
/// one per `<br>`-separated line.
fn cell(value: &Value) -> String {
    if value.kind() == ValueKind::Seq {
        return items_of(value)
            .iter()
            .map(cell)
            .collect::<Vec<_>>()
            .join("<br>");
    }
    inline(value)
        .replace('|', "\\|")
        .replace("\r\n", "<br>")
        .replace('\n', "<br>")
}

/// A field name as words for a heading: `non_functional` reads `Non functional`.
fn label(name: &str) -> String {
    let words = name.replace('_', " ");
    let mut chars = words.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}

/// A text, or `_none_` when it is empty or missing.
fn or_none(value: &Value) -> String {
    let text = inline(value);
    if text.trim().is_empty() {
        NONE.to_string()
    } else {
        text
    }
}

/// The items of a list; a lone value is a list of one, nothing is an empty list.
fn items_of(value: &Value) -> Vec<Value> {
    match value.kind() {
        ValueKind::Undefined | ValueKind::None => Vec::new(),
        ValueKind::Seq | ValueKind::Iterable => {
            value.try_iter().map(Iterator::collect).unwrap_or_default()
        }
        _ => vec![value.clone()],
    }
}

/// A value as plain text: scalars as written, lists joined by `; `, objects as `key: value`.
fn inline(value: &Value) -> String {
    match value.kind() {
        ValueKind::Undefined | ValueKind::None => String::new(),
        ValueKind::Seq | ValueKind::Iterable => items_of(value)
            .iter()
            .map(inline)
            .collect::<Vec<_>>()
            .join("; "),
        ValueKind::Map => value
            .try_iter()
            .map(|keys| {
                keys.map(|key| {
                    let field = value.get_item(&key).unwrap_or_default();
                    format!("{key}: {}", inline(&field))
                })
                .collect::<Vec<_>>()
                .join("; ")
            })
            .unwrap_or_default(),
        // As JSON writes them, not Python's `True`.
        ValueKind::Bool => value.is_true().to_string(),
        _ => value.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn value(json: serde_json::Value) -> Value {
        Value::from(minijinja::value::Serde(json))
    }

    #[test]
    fn bullets_print_none_for_nothing_and_indent_further_lines() {
        assert_eq!(bullets(&Value::UNDEFINED), "_none_");
        assert_eq!(bullets(&value(json!([]))), "_none_");
        assert_eq!(bullets(&value(json!(["a", "b\nc"]))), "- a\n- b\n  c");
        assert_eq!(numbered(&value(json!(["a", "b\nc"]))), "1. a\n2. b\n   c");
    }

    #[test]
    fn cells_stay_on_one_line_and_escape_pipes() {
        assert_eq!(cell(&value(json!("a | b\nc"))), "a \\| b<br>c");
        assert_eq!(cell(&value(json!(["x|y", "z"]))), "x\\|y<br>z");
        assert_eq!(cell(&value(json!(true))), "true");
        assert_eq!(cell(&Value::UNDEFINED), "");
    }

    #[test]
    fn tables_have_a_header_and_one_row_per_item() {
        let rows = value(json!([{"name": "a", "kind": "http"}, {"name": "b|c"}]));
        let columns = Rest(vec!["name".to_string(), "kind".to_string()]);
        assert_eq!(
            table(&rows, columns).unwrap(),
            "| Name | Kind |\n| --- | --- |\n| a | http |\n| b\\|c |  |"
        );
        assert_eq!(
            table(&value(json!([])), Rest(Vec::new())).unwrap(),
            "_none_"
        );
    }

    #[test]
    fn labels_and_or_none() {
        assert_eq!(label("non_functional"), "Non functional");
        assert_eq!(or_none(&value(json!(""))), "_none_");
        assert_eq!(or_none(&value(json!("text"))), "text");
    }
}
