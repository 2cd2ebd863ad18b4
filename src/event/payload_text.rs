//! A payload given as JSON text (`git spectra append --payload`), read so that the event records
//! exactly what the text says or nothing at all.
//!
//! A JSON parser quietly keeps the last of two equal keys (`{"a":1,"a":2}` becomes `{"a":2}`)
//! and turns an integer beyond 64 bits into the nearest float (`12345678901234567890123`
//! becomes `1.2345678901234568e22`). An event is a record: it must not differ from what its
//! writer sent. So both are refused, with the JSON path of the offending value. Big numbers are
//! refused rather than kept exactly because canonical JSON needs one spelling per value, and
//! serde_json's `arbitrary_precision` would keep each number as written (`1.50` beside `1.5`),
//! change how every payload number is read, and slow every fold of the log.

use std::collections::HashSet;

use serde_json::Value;

/// Why a payload text was refused. The messages read after "the payload from SOURCE ".
#[derive(Debug, thiserror::Error)]
pub enum PayloadTextError {
    /// It is not JSON; the parser's message.
    #[error("is not valid JSON: {0}")]
    Syntax(String),
    /// It is JSON but not an object; what it is instead.
    #[error("must be a JSON object, not {0}")]
    NotObject(&'static str),
    /// An object has the same key twice.
    #[error(
        "has the key {key:?} twice in the same object (at {path}); it would keep only the last"
    )]
    DuplicateKey {
        /// The key.
        key: String,
        /// The object holding it, as a JSON path.
        path: String,
    },
    /// A number would not be stored as written.
    #[error(
        "has the number {number} at {path}, which would be stored as {stored}: only integers within 64 bits and decimals that read back exactly are kept as they are"
    )]
    InexactNumber {
        /// The number as written.
        number: String,
        /// The number as it would be stored.
        stored: String,
        /// Where it is, as a JSON path.
        path: String,
    },
}

/// The payload `text` holds, if it is a JSON object whose every key is unique in its object
/// and whose every number is stored exactly.
pub fn parse_payload(text: &str) -> Result<Value, PayloadTextError> {
    let value: Value =
        serde_json::from_str(text).map_err(|err| PayloadTextError::Syntax(err.to_string()))?;
    if !value.is_object() {
        return Err(PayloadTextError::NotObject(super::json_type_name(&value)));
    }
    // The text is valid JSON (and no deeper than serde_json allows), so the scan can be simple.
    Scan::new(text).value()?;
    Ok(value)
}

/// One step of a JSON path: an object key or an array index.
enum Step {
    Key(String),
    Index(usize),
}

/// A walk over valid JSON text that checks keys and numbers, tracking where it is.
struct Scan<'a> {
    text: &'a str,
    at: usize,
    path: Vec<Step>,
}

impl<'a> Scan<'a> {
    fn new(text: &'a str) -> Scan<'a> {
        Scan {
            text,
            at: 0,
            path: Vec::new(),
        }
    }

    fn value(&mut self) -> Result<(), PayloadTextError> {
        self.skip_whitespace();
        match self.peek() {
            b'{' => self.object(),
            b'[' => self.array(),
            b'"' => {
                self.string();
                Ok(())
            }
            b'-' | b'0'..=b'9' => self.number(),
            // true, false, null
            _ => {
                self.take_while(|b| b.is_ascii_alphabetic());
                Ok(())
            }
        }
    }

    fn object(&mut self) -> Result<(), PayloadTextError> {
        self.at += 1; // {
        let mut seen = HashSet::new();
        loop {
            self.skip_whitespace();
            if self.peek() == b'}' {
                self.at += 1;
                return Ok(());
            }
            let raw_key = self.string();
            let key: String = serde_json::from_str(raw_key).expect("a key of valid JSON");
            self.path.push(Step::Key(key.clone()));
            if !seen.insert(key.clone()) {
                return Err(PayloadTextError::DuplicateKey {
                    key,
                    path: self.path_text(),
                });
            }
            self.skip_whitespace();
            self.at += 1; // :
            self.value()?;
            self.path.pop();
            self.skip_whitespace();
            if self.peek() == b',' {
                self.at += 1;
            }
        }
    }

    fn array(&mut self) -> Result<(), PayloadTextError> {
        self.at += 1; // [
        let mut index = 0;
        loop {
            self.skip_whitespace();
            if self.peek() == b']' {
                self.at += 1;
                return Ok(());
            }
            self.path.push(Step::Index(index));
            self.value()?;
            self.path.pop();
            index += 1;
            self.skip_whitespace();
            if self.peek() == b',' {
                self.at += 1;
            }
        }
    }

    /// The string starting here, quotes and escapes included.
    fn string(&mut self) -> &'a str {
        let start = self.at;
        self.at += 1; // "
        loop {
            match self.peek() {
                b'\\' => self.at += 2,
                b'"' => {
                    self.at += 1;
                    return &self.text[start..self.at];
                }
                _ => self.at += 1,
            }
        }
    }

    fn number(&mut self) -> Result<(), PayloadTextError> {
        let number =
            self.take_while(|b| matches!(b, b'-' | b'+' | b'.' | b'e' | b'E' | b'0'..=b'9'));
        let stored: Value = serde_json::from_str(number).expect("a number of valid JSON");
        let stored = stored.to_string();
        if same_decimal(number, &stored) {
            Ok(())
        } else {
            Err(PayloadTextError::InexactNumber {
                number: number.to_string(),
                stored,
                path: self.path_text(),
            })
        }
    }

    fn take_while(&mut self, wanted: impl Fn(u8) -> bool) -> &'a str {
        let start = self.at;
        while self.at < self.text.len() && wanted(self.text.as_bytes()[self.at]) {
            self.at += 1;
        }
        &self.text[start..self.at]
    }

    fn skip_whitespace(&mut self) {
        self.take_while(|b| matches!(b, b' ' | b'\t' | b'\n' | b'\r'));
    }

    fn peek(&self) -> u8 {
        self.text.as_bytes().get(self.at).copied().unwrap_or(0)
    }

    /// `$`, `$.key`, `$["odd key"]`, `$.list[2]`.
    fn path_text(&self) -> String {
        let mut out = String::from("$");
        for step in &self.path {
            match step {
                Step::Key(key) if is_plain_name(key) => {
                    out.push('.');
                    out.push_str(key);
                }
                Step::Key(key) => {
                    out.push('[');
                    out.push_str(&Value::from(key.as_str()).to_string());
                    out.push(']');
                }
                Step::Index(index) => out.push_str(&format!("[{index}]")),
            }
        }
        out
    }
}

fn is_plain_name(key: &str) -> bool {
    let mut chars = key.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// Whether two JSON numbers have the same decimal value (`1.50` and `1.5`, `1e2` and `100.0`).
fn same_decimal(a: &str, b: &str) -> bool {
    Decimal::of(a) == Decimal::of(b)
}

/// A number as sign, significant digits and a power of ten; zero has no sign and no digits.
#[derive(PartialEq, Eq)]
struct Decimal {
    negative: bool,
    digits: String,
    exponent: Option<i64>,
}

impl Decimal {
    fn of(text: &str) -> Decimal {
        let (negative, unsigned) = match text.strip_prefix('-') {
            Some(rest) => (true, rest),
            None => (false, text),
        };
        let (mantissa, exponent) = match unsigned.split_once(['e', 'E']) {
            // An exponent too large for i64 compares unequal to anything stored.
            Some((mantissa, exponent)) => (mantissa, exponent.parse::<i64>().ok()),
            None => (unsigned, Some(0)),
        };
        let (whole, fraction) = mantissa.split_once('.').unwrap_or((mantissa, ""));
        let all_digits = format!("{whole}{fraction}");
        let without_leading = all_digits.trim_start_matches('0');
        let digits = without_leading.trim_end_matches('0');
        if digits.is_empty() {
            return Decimal {
                negative: false,
                digits: String::new(),
                exponent: Some(0),
            };
        }
        let shift = (without_leading.len() - digits.len()) as i64 - fraction.len() as i64;
        Decimal {
            negative,
            digits: digits.to_string(),
            exponent: exponent.and_then(|e| e.checked_add(shift)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_plain_payload_is_read_as_it_is() {
        let value = parse_payload(
            r#"{"a": [1, -2, 1.5, 1.50, 1e2, 0.1, -0, 18446744073709551615, -9223372036854775808], "b": {"c": "x\"}"}}"#,
        )
        .unwrap();
        assert_eq!(value["b"]["c"], "x\"}");
        assert_eq!(value["a"][7], json!(u64::MAX));
    }

    #[test]
    fn a_duplicate_key_is_refused_with_its_path() {
        let err = parse_payload(r#"{"a":1,"a":2}"#).unwrap_err();
        assert_eq!(
            err.to_string(),
            r#"has the key "a" twice in the same object (at $.a); it would keep only the last"#
        );
        let err = parse_payload(r#"{"x": [0, {"odd key": 1, "odd\u0020key": 2}]}"#).unwrap_err();
        assert!(
            matches!(&err, PayloadTextError::DuplicateKey { key, path } if key == "odd key" && path == r#"$.x[1]["odd key"]"#),
            "{err:?}"
        );
        // The same key in two different objects is fine.
        parse_payload(r#"{"a": {"k": 1}, "b": {"k": 1}}"#).unwrap();
    }

    #[test]
    fn a_number_that_would_change_is_refused_with_its_path() {
        let err = parse_payload(r#"{"n": {"big": 12345678901234567890123}}"#).unwrap_err();
        assert!(
            matches!(&err, PayloadTextError::InexactNumber { number, stored, path }
                if number == "12345678901234567890123" && stored == "1.2345678901234568e+22" && path == "$.n.big"),
            "{err:?}"
        );
        for inexact in [
            "18446744073709551616",
            "-9223372036854775809",
            "1.0000000000000001",
            "0.30000000000000000001",
        ] {
            let text = format!(r#"{{"v": [{inexact}]}}"#);
            assert!(
                matches!(
                    parse_payload(&text),
                    Err(PayloadTextError::InexactNumber { .. })
                ),
                "{inexact} must be refused"
            );
        }
    }

    #[test]
    fn syntax_and_shape_errors_come_first() {
        assert!(matches!(
            parse_payload("{"),
            Err(PayloadTextError::Syntax(_))
        ));
        assert!(matches!(
            parse_payload("[1, 1]"),
            Err(PayloadTextError::NotObject("an array"))
        ));
    }

    #[test]
    fn decimals_compare_by_value() {
        assert!(same_decimal("1e2", "100.0"));
        assert!(same_decimal("0.000", "0"));
        assert!(same_decimal("-0.0", "0"));
        assert!(same_decimal(
            "1.2345678901234568e22",
            "12345678901234568000000"
        ));
        assert!(!same_decimal(
            "12345678901234567890123",
            "1.2345678901234568e22"
        ));
        assert!(!same_decimal("-1", "1"));
        assert!(!same_decimal("1e99999999999999999999", "1"));
    }
}
