//! Getting the JSON value out of a model's reply text.
//!
//! Models wrap JSON in prose and code fences even when told not to. Three tries, most exact
//! first: the whole reply parsed strictly; then the content of a fenced block (the first one that
//! parses); then a scan for the first balanced `{...}` that parses. The scan tracks strings and
//! escapes, so a `}` inside a string does not end the object early (the bug of the system this
//! replaces). Nothing here checks the schema; that is `client`'s job, which is also where a
//! top-level array where an object is required gets its repair turn.
//!
//! A reply is untrusted input of up to 16 MiB, so the work is bounded: the scan is one pass
//! that collects every balanced object as it closes (plus at most [`MAX_RESCANS`] passes after
//! a stray `{` in prose), nesting deeper than [`MAX_NESTING`] is refused, every candidate handed
//! to the parser is at most [`MAX_NESTING`] deep in another, so no byte is parsed more than that
//! many times, and the deadline is checked as the work goes.

use std::time::Instant;

use serde_json::Value;

/// The deepest nesting of objects and arrays a reply may have. Decisions need a handful of
/// levels; serde_json refuses 128.
pub const MAX_NESTING: usize = 100;

/// How many times the scan starts again after an opening `{` that never closed (a brace in
/// prose before the JSON, whose quotes can throw the string tracking off).
pub const MAX_RESCANS: usize = 3;

/// How many bytes of work between two looks at the clock.
const CLOCK_EVERY: usize = 64 * 1024;

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

/// Why no JSON value could be found, phrased for the repair turn the model will read (except
/// [`NotFound::OutOfTime`], which ends the decision instead).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NotFound {
    /// The reply has no text.
    #[error("the reply is empty")]
    Empty,
    /// No `{` starts an object anywhere in the reply.
    #[error("the reply contains no JSON object")]
    NoObject,
    /// An object opens but never closes.
    #[error("the reply ends inside an unfinished JSON object (it looks cut off)")]
    Unfinished,
    /// The nesting passes the limit.
    #[error("the reply nests JSON deeper than {MAX_NESTING} levels")]
    TooDeep,
    /// The total deadline passed while searching.
    #[error("the total timeout ran out while looking for JSON in the reply")]
    OutOfTime,
}

/// Finds the JSON value in `reply`, with no deadline.
pub fn extract_json(reply: &str) -> Result<(Value, Found), NotFound> {
    extract_json_by(reply, None)
}

/// Finds the JSON value in `reply`, giving up with [`NotFound::OutOfTime`] once `deadline`
/// passes.
pub fn extract_json_by(reply: &str, deadline: Option<Instant>) -> Result<(Value, Found), NotFound> {
    extract(reply, &mut Work::new(deadline))
}

/// The work done so far, in bytes looked at, and the deadline it must finish by.
struct Work {
    deadline: Option<Instant>,
    bytes: usize,
    next_look: usize,
}

impl Work {
    fn new(deadline: Option<Instant>) -> Work {
        Work {
            deadline,
            bytes: 0,
            next_look: 0,
        }
    }

    /// Counts `bytes` more bytes of work; looks at the clock every [`CLOCK_EVERY`] bytes.
    fn add(&mut self, bytes: usize) -> Result<(), NotFound> {
        self.bytes = self.bytes.saturating_add(bytes);
        if self.bytes < self.next_look {
            return Ok(());
        }
        self.next_look = self.bytes.saturating_add(CLOCK_EVERY);
        match self.deadline {
            Some(deadline) if Instant::now() >= deadline => Err(NotFound::OutOfTime),
            _ => Ok(()),
        }
    }

    /// `text` parsed as JSON, counting its length as work.
    fn parse(&mut self, text: &str) -> Result<Option<Value>, NotFound> {
        self.add(text.len())?;
        Ok(serde_json::from_str(text).ok())
    }
}

fn extract(reply: &str, work: &mut Work) -> Result<(Value, Found), NotFound> {
    let trimmed = reply.trim();
    if trimmed.is_empty() {
        return Err(NotFound::Empty);
    }
    if let Some(value) = work.parse(trimmed)? {
        return Ok((value, Found::Strict));
    }
    for block in fenced_blocks(reply) {
        if let Some(value) = work.parse(block.trim())? {
            return Ok((value, Found::Fenced));
        }
    }
    first_balanced_object(reply, work).map(|value| (value, Found::Scanned))
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

/// The first `{...}` in `text` (by where it starts) that is balanced, ignoring brackets inside
/// strings, and parses.
fn first_balanced_object(text: &str, work: &mut Work) -> Result<Value, NotFound> {
    let mut from = 0;
    let mut saw_unfinished = false;
    for _ in 0..=MAX_RESCANS {
        let scan = scan(text, from, work)?;
        let mut candidates = scan.objects;
        candidates.sort_unstable();
        for (start, end) in candidates {
            if let Some(value) = work.parse(&text[start..end])? {
                return Ok(value);
            }
        }
        if scan.too_deep {
            return Err(NotFound::TooDeep);
        }
        match scan.first_unclosed {
            Some(start) => {
                saw_unfinished = true;
                from = start + 1;
            }
            None => break,
        }
    }
    Err(if saw_unfinished {
        NotFound::Unfinished
    } else {
        NotFound::NoObject
    })
}

/// What one pass over the text found.
struct Scan {
    /// Every balanced `{...}`, as byte ranges, in the order they closed.
    objects: Vec<(usize, usize)>,
    /// Where the outermost `{` that never closed opened, if one did not.
    first_unclosed: Option<usize>,
    /// The pass stopped at nesting deeper than [`MAX_NESTING`].
    too_deep: bool,
}

/// One pass over `text` from `from`. Outside any object only `{` matters (prose quotes are not
/// strings); inside, strings, escapes and both kinds of brackets are tracked.
fn scan(text: &str, from: usize, work: &mut Work) -> Result<Scan, NotFound> {
    let bytes = text.as_bytes();
    let mut open: Vec<(u8, usize)> = Vec::new();
    let mut objects = Vec::new();
    let mut in_string = false;
    let mut escaped = false;
    for (offset, chunk) in bytes[from..].chunks(CLOCK_EVERY).enumerate() {
        work.add(chunk.len())?;
        for (i, &byte) in chunk.iter().enumerate() {
            let at = from + offset * CLOCK_EVERY + i;
            if open.is_empty() {
                if byte == b'{' {
                    open.push((byte, at));
                }
                continue;
            }
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
                b'{' | b'[' if open.len() == MAX_NESTING => {
                    return Ok(Scan {
                        objects,
                        first_unclosed: open.first().map(|&(_, start)| start),
                        too_deep: true,
                    });
                }
                b'{' | b'[' => open.push((byte, at)),
                b'}' | b']' => {
                    if let Some((opener, start)) = open.pop() {
                        if opener == b'{' && byte == b'}' {
                            objects.push((start, at + 1));
                        }
                    }
                }
                _ => {}
            }
        }
    }
    Ok(Scan {
        objects,
        first_unclosed: open.first().map(|&(_, start)| start),
        too_deep: false,
    })
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

    /// The result of extracting from `reply` and the bytes of work it took.
    fn measured(reply: &str) -> (Result<(Value, Found), NotFound>, usize) {
        let mut work = Work::new(None);
        let result = extract(reply, &mut work);
        (result, work.bytes)
    }

    #[test]
    fn two_hundred_thousand_open_braces_are_refused_in_linear_work() {
        let reply = "{".repeat(200_000);
        let (result, work) = measured(&reply);
        assert_eq!(result, Err(NotFound::TooDeep));
        assert!(work <= 3 * reply.len(), "{work} bytes of work");
    }

    #[test]
    fn nesting_a_hundred_thousand_deep_is_refused_in_linear_work() {
        for reply in [
            format!("{}1{}", "{\"a\":".repeat(100_000), "}".repeat(100_000)),
            "{\"a\":".repeat(100_000),
            format!(
                "text {}1{}",
                "{\"a\": [".repeat(50_000),
                "]}".repeat(50_000)
            ),
        ] {
            let (result, work) = measured(&reply);
            assert_eq!(result, Err(NotFound::TooDeep), "{}", &reply[..20]);
            assert!(work <= 3 * reply.len(), "{work} bytes of work");
        }
        // Arrays alone hold no object; the strict parse refuses the depth.
        let arrays = format!("{}1{}", "[".repeat(100_000), "]".repeat(100_000));
        let (result, work) = measured(&arrays);
        assert_eq!(result, Err(NotFound::NoObject));
        assert!(work <= 3 * arrays.len(), "{work} bytes of work");
    }

    #[test]
    fn nesting_up_to_the_limit_is_accepted() {
        let depth = MAX_NESTING;
        let reply = format!("x {}1{}", "{\"a\":".repeat(depth), "}".repeat(depth));
        let (value, found) = found(&reply);
        assert_eq!(found, Found::Scanned);
        let mut inner = &value;
        for _ in 0..depth {
            inner = &inner["a"];
        }
        assert_eq!(inner, &json!(1));
    }

    #[test]
    fn many_broken_objects_cost_linear_work() {
        let reply = "{x} {\"a\" 1} ".repeat(50_000);
        let (result, work) = measured(&reply);
        assert_eq!(result, Err(NotFound::NoObject));
        assert!(work <= 3 * reply.len(), "{work} bytes of work");
        let unclosed = format!("{{\"a\": \"{}", "x".repeat(200_000));
        let (result, work) = measured(&unclosed);
        assert_eq!(result, Err(NotFound::Unfinished));
        assert!(
            work <= (3 + MAX_RESCANS) * unclosed.len(),
            "{work} bytes of work"
        );
    }

    #[test]
    fn a_stray_brace_and_quote_in_prose_do_not_hide_the_object() {
        let reply = "It's {odd \"quote then {\"a\": 1}";
        assert_eq!(found(reply), (json!({"a": 1}), Found::Scanned));
        let reply = "use {x, then {\"a\": {\"b\": 2}} ok";
        assert_eq!(found(reply).0, json!({"a": {"b": 2}}));
    }

    #[test]
    fn a_passed_deadline_stops_the_work_with_its_own_error() {
        let past = Some(Instant::now());
        assert_eq!(
            extract_json_by("{\"a\": 1}", past),
            Err(NotFound::OutOfTime)
        );
        let hostile = "{x} ".repeat(100_000);
        assert_eq!(extract_json_by(&hostile, past), Err(NotFound::OutOfTime));
        let later = Some(Instant::now() + std::time::Duration::from_secs(3600));
        assert_eq!(
            extract_json_by("{\"a\": 1}", later),
            Ok((json!({"a": 1}), Found::Strict))
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
