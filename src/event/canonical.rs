//! Canonical JSON: the one form in which an envelope is written as `event.json`, and the check
//! `verify` makes that stored bytes are in that form.
//!
//! Object keys are sorted at every level, there is no insignificant whitespace, strings are
//! written as serde_json writes them, integers exactly. A non-integer number is written in its
//! shortest round-trip form, and that is what the check asks of one, not one notation: serde_json
//! spells such a number as its float formatter does (`100.0`, `1e22`), and a future formatter
//! may spell it otherwise (`100`, `1e+22`). Comparing a float's spelling with what this build
//! would write would then make old events fail verification though their bytes never changed;
//! so the check reads each stored non-integer back and accepts it when it denotes the same
//! 64-bit float with no more significant digits than needed. RFC 8785 (JCS) was not adopted: it
//! writes every number as a double, so an integer beyond 2^53 (which payloads keep exactly) would
//! be rounded, and its spelling of floats differs from the one the existing log already holds.

use serde_json::Value;

/// Serialises JSON with object keys sorted and no whitespace, whatever serde_json's features.
pub fn canonical_json(value: &Value) -> Vec<u8> {
    let mut out = Vec::with_capacity(256);
    write_canonical(value, &mut out, &mut write_float);
    out
}

/// Whether `bytes` are the canonical form of `value` (their decoding), reading each stored
/// non-integer number back rather than comparing its notation (see the module's notes).
pub fn is_canonical(value: &Value, bytes: &[u8]) -> bool {
    // Most events hold no float: the stored bytes are scanned only once one turns up.
    let mut stored: Option<std::vec::IntoIter<&str>> = None;
    let mut out = Vec::with_capacity(bytes.len());
    write_canonical(value, &mut out, &mut |number, out| {
        let next = stored
            .get_or_insert_with(|| non_integer_numbers(bytes).into_iter())
            .next();
        match next {
            Some(spelling) if is_shortest_spelling_of(spelling, number) => {
                out.extend_from_slice(spelling.as_bytes());
            }
            _ => write_float(number, out),
        }
    });
    out == bytes
}

fn write_float(number: f64, out: &mut Vec<u8>) {
    serde_json::to_writer(&mut *out, &number).expect("writing to a Vec cannot fail");
}

fn write_canonical(value: &Value, out: &mut Vec<u8>, float: &mut dyn FnMut(f64, &mut Vec<u8>)) {
    match value {
        Value::Object(map) => {
            let mut entries: Vec<(&String, &Value)> = map.iter().collect();
            entries.sort_by(|a, b| a.0.cmp(b.0));
            out.push(b'{');
            for (i, (key, item)) in entries.into_iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                serde_json::to_writer(&mut *out, key).expect("writing to a Vec cannot fail");
                out.push(b':');
                write_canonical(item, out, float);
            }
            out.push(b'}');
        }
        Value::Array(items) => {
            out.push(b'[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_canonical(item, out, float);
            }
            out.push(b']');
        }
        Value::Number(number) if number.is_f64() => {
            float(number.as_f64().expect("an f64 number has an f64"), out);
        }
        scalar => serde_json::to_writer(&mut *out, scalar).expect("writing to a Vec cannot fail"),
    }
}

/// The number tokens of JSON text `bytes` that are not plain integers (they have a fraction or
/// an exponent), in order. Strings are skipped, escapes and all.
fn non_integer_numbers(bytes: &[u8]) -> Vec<&str> {
    let mut numbers = Vec::new();
    let mut at = 0;
    while at < bytes.len() {
        match bytes[at] {
            b'"' => at = after_string(bytes, at),
            b'-' | b'0'..=b'9' => {
                let start = at;
                while at < bytes.len()
                    && matches!(bytes[at], b'0'..=b'9' | b'-' | b'+' | b'.' | b'e' | b'E')
                {
                    at += 1;
                }
                let token = &bytes[start..at];
                if token.iter().any(|b| matches!(b, b'.' | b'e' | b'E')) {
                    numbers.push(std::str::from_utf8(token).expect("number tokens are ASCII"));
                }
            }
            _ => at += 1,
        }
    }
    numbers
}

/// The index just past the string that starts at `start` (an opening quote).
fn after_string(bytes: &[u8], start: usize) -> usize {
    let mut at = start + 1;
    while at < bytes.len() {
        match bytes[at] {
            b'\\' => at += 2,
            b'"' => return at + 1,
            _ => at += 1,
        }
    }
    at
}

/// Whether `spelling` reads back as exactly `number`, has no more significant digits than the
/// shortest spelling that does, and no trailing zero in its fraction but a lone `.0` (so
/// `1.50` is not a spelling of 1.5, whatever the notation, and `100.0` is one of 100).
fn is_shortest_spelling_of(spelling: &str, number: f64) -> bool {
    let reads_back = spelling
        .parse::<f64>()
        .is_ok_and(|read| read.to_bits() == number.to_bits());
    let mantissa = spelling.split(['e', 'E']).next().unwrap_or_default();
    let padded = mantissa
        .split_once('.')
        .is_some_and(|(_, fraction)| fraction != "0" && fraction.ends_with('0'));
    // Rust's `{:e}` without a precision is the shortest spelling that reads back.
    reads_back
        && !padded
        && significant_digits(spelling) == significant_digits(&format!("{number:e}"))
}

/// The mantissa's digits without leading or trailing zeros: `0.0150e3` -> `15`.
fn significant_digits(spelling: &str) -> String {
    let mantissa = spelling.split(['e', 'E']).next().unwrap_or_default();
    let digits: String = mantissa.chars().filter(char::is_ascii_digit).collect();
    digits.trim_matches('0').to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn canonical_json_sorts_keys_and_writes_no_whitespace() {
        let value = json!({"b": {"z": 1, "a": [2.5, "x"]}, "a": 0.1});
        assert_eq!(
            String::from_utf8(canonical_json(&value)).unwrap(),
            r#"{"a":0.1,"b":{"a":[2.5,"x"],"z":1}}"#
        );
    }

    #[test]
    fn a_float_in_any_notation_of_its_shortest_form_is_canonical() {
        // What this build writes, and what another float formatter might write instead.
        for text in [
            r#"{"a":100.0,"b":1e22,"c":0.1,"d":"1.50 e9","n":18446744073709551615}"#,
            r#"{"a":100.0,"b":1e+22,"c":0.1,"d":"1.50 e9","n":18446744073709551615}"#,
            r#"{"a":1e2,"b":10000000000000000000000.0,"c":1E-1,"d":"1.50 e9","n":18446744073709551615}"#,
        ] {
            let value: Value = serde_json::from_str(text).unwrap();
            assert!(is_canonical(&value, text.as_bytes()), "{text}");
        }
    }

    #[test]
    fn extra_digits_whitespace_and_unsorted_keys_are_not_canonical() {
        for text in [
            r#"{"a":1.50}"#,
            r#"{"a":0.10000000000000001}"#,
            r#"{"a": 1.5}"#,
            r#"{"b":1.5,"a":2}"#,
        ] {
            let value: Value = serde_json::from_str(text).unwrap();
            assert!(!is_canonical(&value, text.as_bytes()), "{text}");
        }
    }
}
