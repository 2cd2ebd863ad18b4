//! Getting the JSON value out of a model's reply text.
//!
//! Models wrap JSON in prose and code fences even when told not to. Three tries, most exact
//! first: the whole reply parsed strictly; then the content of a fenced block (the first one that
//! parses); then a scan for the first balanced top-level `{...}` that parses. The scan tracks
//! strings and escapes, so a `}` inside a string does not end the object early (the bug of the
//! system this replaces). Nothing here checks the schema; that is `client`'s job, which is also
//! where a top-level array where an object is required gets its repair turn.

use serde_json::Value;

/// How the value was found, recorded so a reader can see how much the reply had to be trimmed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Found {
    /// The whole reply was JSON.
    Strict,
    /// The content of a fenced code block.
    Fenced,
    /// A balanced object found inside other text.
    Scanned,
}

/// Why no JSON value could be found, phrased for the repair turn the model will read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NotFound {
    #[error("the reply is empty")]
    Empty,
    #[error("the reply contains no JSON object")]
    NoObject,
    #[error("the reply ends inside an unfinished JSON object (it looks cut off)")]
    Unfinished,
}

/// Finds the JSON value in `reply`.
pub fn extract_json(reply: &str) -> Result<(Value, Found), NotFound> {
    let trimmed = reply.trim();
    if trimmed.is_empty() {
        return Err(NotFound::Empty);
    }
    if let Ok(value) = serde_json::from_str(trimmed) {
        return Ok((value, Found::Strict));
    }
    if let Some(value) =
        fenced_blocks(reply).find_map(|block| serde_json::from_str(block.trim()).ok())
    {
        return Ok((value, Found::Fenced));
    }
    first_balanced_object(reply).map(|value| (value, Found::Scanned))
}

/// The contents of the ```` ``` ```` fenced blocks in `text`, in order. The info string after the
/// opening fence (`json`, `JSON`, nothing) is skipped; an unclosed fence runs to the end.
fn fenced_blocks(text: &str) -> impl Iterator<Item = &str> {
    let mut rest = text;
    std::iter::from_fn(move || {
        let open = rest.find("```")?;
        let after_fence = &rest[open + 3..];
        let body_start = after_fence.find('\n').map_or(after_fence.len(), |i| i + 1);
        let body = &after_fence[body_start..];
        let (block, next) = match body.find("```") {
            Some(close) => (&body[..close], &body[close + 3..]),
            None => (body, ""),
        };
        rest = next;
        Some(block)
    })
}

/// The first `{...}` in `text` that is balanced (ignoring braces inside strings) and parses.
fn first_balanced_object(text: &str) -> Result<Value, NotFound> {
    let mut saw_unfinished = false;
    for (start, _) in text.match_indices('{') {
        match balanced_end(&text[start..]) {
            Some(len) => {
                if let Ok(value) = serde_json::from_str(&text[start..start + len]) {
                    return Ok(value);
                }
            }
            None => saw_unfinished = true,
        }
    }
    Err(if saw_unfinished {
        NotFound::Unfinished
    } else {
        NotFound::NoObject
    })
}

/// The length of the balanced object that `text` starts with, or `None` if it never closes.
fn balanced_end(text: &str) -> Option<usize> {
    let mut depth = 0usize;
    let mut in_string = false;
    let mut escaped = false;
    for (i, byte) in text.bytes().enumerate() {
        if in_string {
            match byte {
                _ if escaped => escaped = false,
                b'\\' => escaped = true,
                b'"' => in_string = false,
                _ => {}
            }
            continue;
        }
        match byte {
            b'"' => in_string = true,
            b'{' | b'[' => depth += 1,
            b'}' | b']' => {
                depth = depth.checked_sub(1)?;
                if depth == 0 {
                    return Some(i + 1);
                }
            }
            _ => {}
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn found(reply: &str) -> (Value, Found) {
        extract_json(reply).unwrap_or_else(|e| panic!("{e}: {reply}"))
    }

    #[test]
    fn a_pure_json_reply_parses_strictly() {
        assert_eq!(found(" {\"a\": 1}\n"), (json!({"a": 1}), Found::Strict));
    }

    #[test]
    fn a_fenced_block_is_used_with_or_without_a_language_tag() {
        let reply = "Sure! Here it is:\n```json\n{\"a\": 1}\n```\nHope that helps.";
        assert_eq!(found(reply), (json!({"a": 1}), Found::Fenced));
        assert_eq!(
            found("```\n{\"b\": [1, 2]}\n```"),
            (json!({"b": [1, 2]}), Found::Fenced)
        );
    }

    #[test]
    fn the_first_fenced_block_that_parses_wins() {
        let reply = "```bash\nls {a,b}\n```\nthen\n```json\n{\"c\": true}\n```";
        assert_eq!(found(reply), (json!({"c": true}), Found::Fenced));
    }

    #[test]
    fn prose_around_the_object_is_skipped() {
        let reply =
            "I chose the following {carefully}: {\"playbook\": \"x\", \"n\": 2}. Let me know!";
        assert_eq!(
            found(reply),
            (json!({"playbook": "x", "n": 2}), Found::Scanned)
        );
    }

    #[test]
    fn a_closing_brace_inside_a_string_does_not_end_the_object() {
        let reply =
            "Answer: {\"why\": \"because } and { are fine\", \"esc\": \"a \\\" }\"} trailing }";
        assert_eq!(
            found(reply).0,
            json!({"why": "because } and { are fine", "esc": "a \" }"})
        );
    }

    #[test]
    fn nested_objects_and_arrays_are_kept_whole() {
        let reply = "x {\"a\": {\"b\": [1, {\"c\": \"]\"}]}} y";
        assert_eq!(found(reply).0, json!({"a": {"b": [1, {"c": "]"}]}}));
    }

    #[test]
    fn a_top_level_array_is_returned_as_is_for_the_schema_to_judge() {
        // Silently unwrapping `[{...}]` would accept a reply the model did not mean; the schema
        // check reports it and the repair turn asks for an object.
        assert_eq!(found("[{\"a\": 1}]"), (json!([{"a": 1}]), Found::Strict));
    }

    #[test]
    fn a_cut_off_reply_is_reported_as_unfinished() {
        assert_eq!(
            extract_json("{\"a\": \"long text that never en"),
            Err(NotFound::Unfinished)
        );
        assert_eq!(
            extract_json("```json\n{\"a\": [1, 2"),
            Err(NotFound::Unfinished)
        );
    }

    #[test]
    fn replies_without_json_say_so() {
        assert_eq!(extract_json("   "), Err(NotFound::Empty));
        assert_eq!(
            extract_json("I cannot help with that."),
            Err(NotFound::NoObject)
        );
        assert_eq!(extract_json("a {broken} thing"), Err(NotFound::NoObject));
    }
}
