//! The retry policy: which failures are worth another attempt, and how long to wait first.
//!
//! Transient failures (connection errors, timeouts, 408, 409, 429, 500, 502, 503, 504) are retried;
//! failures that would fail the same way again (400, 401, 403, 404, 422, a prompt over the context
//! length, an exhausted quota) are not. The wait is what the server asked for in `Retry-After`
//! (seconds or an HTTP-date) or `retry-after-ms`, else full-jitter exponential backoff
//! ([`crate::backoff`]). No header value can panic the client: every conversion is checked, a
//! wait too long to represent saturates (and then exceeds `spectra.llm.maxDelay`, which ends
//! the retries), and anything that is not a wait is ignored.

use std::time::{Duration, SystemTime};

/// What a response status (and its body) means for the retry loop.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// A 2xx: read the completion.
    Success,
    /// Worth another attempt after a wait.
    Retry,
    /// The endpoint rejected the `response_format` we sent; a lower level may work.
    FormatRejected,
    /// The prompt exceeds the model's context length.
    ContextLength,
    /// The account's quota is used up; waiting will not help.
    InsufficientQuota,
    /// Any other refusal; retrying would fail the same way.
    Refused,
}

/// Classifies a response. `sent_format` says whether the request carried a `response_format`,
/// since only then can a 400 about it be a format rejection.
pub fn classify(status: u16, body: &[u8], sent_format: bool) -> Verdict {
    let text = String::from_utf8_lossy(body).to_lowercase();
    match status {
        200..=299 => Verdict::Success,
        429 if text.contains("insufficient_quota") => Verdict::InsufficientQuota,
        408 | 409 | 429 | 500 | 502 | 503 | 504 => Verdict::Retry,
        400 | 413 | 422 if names_context_length(&text) => Verdict::ContextLength,
        400 | 422 if sent_format && names_response_format(&text) => Verdict::FormatRejected,
        _ => Verdict::Refused,
    }
}

/// Whether a response to a streamed request refuses the streaming itself: a 400 or 422 that
/// names `stream` (and not the response format, which the format ladder handles first).
pub fn is_stream_rejection(status: u16, body: &[u8]) -> bool {
    let text = String::from_utf8_lossy(body).to_lowercase();
    matches!(status, 400 | 422) && text.contains("stream") && !names_response_format(&text)
}

/// The phrasings of OpenAI (`context_length_exceeded`), vLLM ("maximum context length") and
/// llama.cpp ("exceeds the available context size").
fn names_context_length(lowercase_body: &str) -> bool {
    [
        "context_length",
        "context length",
        "context size",
        "context window",
        "exceed_context",
    ]
    .iter()
    .any(|phrase| lowercase_body.contains(phrase))
}

fn names_response_format(lowercase_body: &str) -> bool {
    [
        "response_format",
        "json_schema",
        "json_object",
        "guided_json",
    ]
    .iter()
    .any(|phrase| lowercase_body.contains(phrase))
}

/// The wait a server asked for: `retry-after-ms` (OpenAI's precise form) wins over
/// `retry-after`, which may be delta-seconds or an HTTP-date. A date in the past means "now".
/// Unparseable values are ignored, so backoff applies instead.
pub fn requested_delay(
    retry_after: Option<&str>,
    retry_after_ms: Option<&str>,
    now: SystemTime,
) -> Option<Duration> {
    if let Some(wait) = retry_after_ms.and_then(parse_retry_after_ms) {
        return Some(wait);
    }
    parse_retry_after(retry_after?, now)
}

/// Parses a `retry-after-ms` value: milliseconds, possibly with a fraction.
pub fn parse_retry_after_ms(value: &str) -> Option<Duration> {
    let ms = value.trim().parse::<f64>().ok()?;
    seconds(ms / 1000.0)
}

/// Parses a `Retry-After` value: delta-seconds (`120`, also a decimal such as `1.5`, which some
/// servers send) or an HTTP-date (`Wed, 21 Oct 2015 07:28:00 GMT`).
pub fn parse_retry_after(value: &str, now: SystemTime) -> Option<Duration> {
    let value = value.trim();
    if let Ok(number) = value.parse::<f64>() {
        return seconds(number);
    }
    let date = jiff::fmt::rfc2822::DateTimeParser::new()
        .parse_timestamp(value)
        .ok()?;
    let date = SystemTime::try_from(date).ok()?;
    Some(date.duration_since(now).unwrap_or(Duration::ZERO))
}

/// A wait of `value` seconds: `None` for a negative, NaN or infinite value (not a wait), and
/// [`Duration::MAX`] for one too long to represent, which is longer than any `maxDelay`.
fn seconds(value: f64) -> Option<Duration> {
    if !value.is_finite() || value < 0.0 {
        return None;
    }
    Some(Duration::try_from_secs_f64(value).unwrap_or(Duration::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transient_statuses_are_retried_and_permanent_ones_are_not() {
        for status in [408, 409, 429, 500, 502, 503, 504] {
            assert_eq!(classify(status, b"{}", true), Verdict::Retry, "{status}");
        }
        for status in [400, 401, 403, 404, 422, 501] {
            assert_eq!(classify(status, b"{}", true), Verdict::Refused, "{status}");
        }
        assert_eq!(classify(200, b"", true), Verdict::Success);
    }

    #[test]
    fn quota_and_context_length_are_not_retried() {
        let quota = br#"{"error":{"code":"insufficient_quota","message":"You exceeded your current quota"}}"#;
        assert_eq!(classify(429, quota, true), Verdict::InsufficientQuota);
        let vllm = br#"{"message":"This model's maximum context length is 8192 tokens. However, you requested 9000 tokens"}"#;
        assert_eq!(classify(400, vllm, true), Verdict::ContextLength);
        let llama = br#"{"error":{"type":"exceed_context_size_error","message":"the request exceeds the available context size"}}"#;
        assert_eq!(classify(400, llama, false), Verdict::ContextLength);
    }

    #[test]
    fn a_400_naming_response_format_is_a_format_rejection_only_if_one_was_sent() {
        let body = br#"{"error":{"message":"Invalid parameter: 'response_format' of type 'json_schema' is not supported"}}"#;
        assert_eq!(classify(400, body, true), Verdict::FormatRejected);
        assert_eq!(classify(422, body, true), Verdict::FormatRejected);
        assert_eq!(classify(400, body, false), Verdict::Refused);
        assert_eq!(classify(401, body, true), Verdict::Refused);
    }

    #[test]
    fn retry_after_reads_seconds_decimals_and_http_dates() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000_000);
        assert_eq!(parse_retry_after("1", now), Some(Duration::from_secs(1)));
        assert_eq!(
            parse_retry_after(" 120 ", now),
            Some(Duration::from_secs(120))
        );
        assert_eq!(
            parse_retry_after("0.5", now),
            Some(Duration::from_millis(500))
        );
        // 1_000_000_000 is Sun, 09 Sep 2001 01:46:40 GMT.
        assert_eq!(
            parse_retry_after("Sun, 09 Sep 2001 01:46:43 GMT", now),
            Some(Duration::from_secs(3))
        );
        assert_eq!(
            parse_retry_after("Sun, 09 Sep 2001 01:46:00 GMT", now),
            Some(Duration::ZERO)
        );
        assert_eq!(parse_retry_after("-1", now), None);
        assert_eq!(parse_retry_after("soon", now), None);
    }

    /// What a hostile or broken server may put in a header that holds a number.
    const HOSTILE: &[&str] = &[
        "1e20",
        "1e308",
        "1.8e19",
        "18446744073709551616",
        "99999999999999999999999",
        "-1",
        "-0.5",
        "-1e20",
        "-inf",
        "inf",
        "+inf",
        "infinity",
        "NaN",
        "nan",
        "",
        " ",
        "abc",
        "1s",
        "0x10",
        "1,5",
        "1e",
        "--1",
        "\\u0031",
        "Wed, 99 Foo 2015 07:28:00 GMT",
        "Fri, 31 Dec 9999 23:59:59 GMT",
        "Mon, 01 Jan 0001 00:00:00 GMT",
    ];

    #[test]
    fn no_header_value_panics_and_every_wait_is_a_duration_or_nothing() {
        let now = SystemTime::now();
        // Each of these panicked or could have: the calls themselves are the test.
        for value in HOSTILE {
            let _ = parse_retry_after(value, now);
            let _ = parse_retry_after_ms(value);
            let _ = requested_delay(Some(value), Some(value), now);
        }
        assert_eq!(parse_retry_after("1e20", now), Some(Duration::MAX));
        assert_eq!(parse_retry_after_ms("1e308"), Some(Duration::MAX));
        assert_eq!(
            parse_retry_after("18446744073709551616", now),
            Some(Duration::MAX)
        );
        for not_a_wait in [
            "-1", "-1e20", "inf", "-inf", "infinity", "NaN", "", "abc", "1s",
        ] {
            assert_eq!(parse_retry_after(not_a_wait, now), None, "{not_a_wait}");
            assert_eq!(parse_retry_after_ms(not_a_wait), None, "{not_a_wait}");
        }
        assert!(
            parse_retry_after("Sat, 01 Jan 2400 00:00:00 GMT", now).unwrap()
                > Duration::from_secs(200 * 365 * 86_400)
        );
    }

    #[test]
    fn a_huge_retry_after_ms_is_not_overridden_by_retry_after() {
        let now = SystemTime::now();
        assert_eq!(
            requested_delay(Some("1"), Some("1e30"), now),
            Some(Duration::MAX)
        );
        assert_eq!(
            requested_delay(Some("1"), Some("NaN"), now),
            Some(Duration::from_secs(1))
        );
    }

    #[test]
    fn retry_after_ms_wins_over_retry_after() {
        let now = SystemTime::now();
        assert_eq!(
            requested_delay(Some("2"), Some("250"), now),
            Some(Duration::from_millis(250))
        );
        assert_eq!(
            requested_delay(Some("2"), Some("bad"), now),
            Some(Duration::from_secs(2))
        );
        assert_eq!(requested_delay(None, None, now), None);
    }
}
