//! The LLM client against a real HTTP server: the fault matrix of issue 3.
//!
//! Each test scripts [`LlmServer`], asks the blocking [`Client`] for a decision and asserts the
//! outcome, the number of HTTP attempts, what was sent, and the attempt records. Timeouts and
//! backoff are set small through the settings so the whole matrix runs in a few seconds; the only
//! timing assertions are lower bounds ("no retry before Retry-After").

use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{Value, json};
use spectra::llm::extract::Found;
use spectra::llm::{Client, Decision, DecisionRequest, LlmError, LlmFailure, ResponseFormat};
use spectra::settings::{LlmSettings, Secret, Setting};

use crate::llm_server::{LlmServer, Reply, http_date_in, refused_url};

const KEY: &str = "sk-test-secret-0123456789";

/// Settings for tests: fast backoff, short timeouts, a recognisable API key.
fn settings(url: &str) -> LlmSettings {
    let mut s = LlmSettings::for_url(url).expect("valid test URL");
    s.api_key = Setting::flag(Secret::new(KEY));
    s.model = Setting::flag("test-model".to_owned());
    s.attempt_timeout = Setting::flag(Duration::from_secs(5));
    s.connect_timeout = Setting::flag(Duration::from_secs(1));
    s.total_timeout = Setting::flag(Duration::from_secs(20));
    s.max_attempts = Setting::flag(4);
    s.backoff_base = Setting::flag(Duration::from_millis(10));
    s.max_delay = Setting::flag(Duration::from_secs(5));
    s
}

fn client(settings: LlmSettings) -> Client {
    Client::new(settings, None).expect("client")
}

fn schema() -> Value {
    json!({
        "type": "object",
        "properties": {
            "playbook": {"type": "string", "enum": ["catalog.check", "catalog.add"]},
            "reason": {"type": "string"}
        },
        "required": ["playbook", "reason"],
        "additionalProperties": false
    })
}

fn request() -> DecisionRequest {
    DecisionRequest {
        system: "You choose playbooks.".to_owned(),
        user: "Choose one for the logging service.".to_owned(),
        schema: schema(),
        schema_name: "discover_decision".to_owned(),
        max_tokens: None,
    }
}

fn good() -> Value {
    json!({"playbook": "catalog.check", "reason": "it is cheap"})
}

fn decide(server: &LlmServer) -> Result<Decision, LlmFailure> {
    client(settings(&server.url())).decide(&request())
}

fn ok(result: Result<Decision, LlmFailure>) -> Decision {
    result.unwrap_or_else(|f| {
        panic!(
            "expected a decision, got: {} ({} records)",
            f.error,
            f.records.len()
        )
    })
}

fn failed(result: Result<Decision, LlmFailure>) -> LlmFailure {
    match result {
        Ok(d) => panic!("expected a failure, got {}", d.value),
        Err(failure) => failure,
    }
}

#[test]
fn a_good_reply_is_one_attempt_and_a_complete_record() {
    let server = LlmServer::start();
    server.push(
        Reply::chat_json(&good())
            .header("x-request-id", "req-1")
            .header("x-ratelimit-remaining-requests", "9"),
    );

    let decision = ok(decide(&server));

    assert_eq!(decision.value, good());
    assert_eq!(
        (decision.format, decision.found, decision.repairs),
        (ResponseFormat::JsonSchema, Found::Strict, 0)
    );
    let sent = server.chat_requests();
    assert_eq!(sent.len(), 1);
    let body = sent[0].json();
    assert_eq!(body["model"], "test-model");
    assert_eq!(body["temperature"], 0.3);
    assert!(body["max_tokens"].as_u64().unwrap() > 0);
    assert_eq!(body["response_format"]["type"], "json_schema");
    assert_eq!(body["response_format"]["json_schema"]["schema"], schema());
    assert_eq!(body["messages"][0]["role"], "system");
    assert_eq!(
        body["messages"][1]["content"],
        "Choose one for the logging service."
    );
    assert_eq!(
        sent[0].header("authorization"),
        Some(format!("Bearer {KEY}").as_str())
    );

    let [record] = decision.records.as_slice() else {
        panic!("one record")
    };
    assert_eq!(
        (record.attempt, record.turn, record.status),
        (1, 0, Some(200))
    );
    assert_eq!(record.request_body.as_bytes(), sent[0].body.as_slice());
    assert_eq!(
        record.request_sha256,
        spectra::digest::sha256_hex(&sent[0].body)
    );
    assert!(record.response_body.is_some() && record.response_sha256.is_some());
    assert_eq!(record.usage.unwrap().total_tokens, 15);
    assert_eq!(
        record.headers.get("x-request-id").map(String::as_str),
        Some("req-1")
    );
    assert_eq!(
        record
            .headers
            .get("x-ratelimit-remaining-requests")
            .map(String::as_str),
        Some("9")
    );
    assert_eq!(record.error, None);
}

#[test]
fn a_base_url_ending_in_v1_reaches_chat_completions() {
    let server = LlmServer::start();
    server.push(Reply::chat_json(&good()));
    let decision = ok(client(settings(&server.base_url())).decide(&request()));
    assert_eq!(decision.value, good());
    assert_eq!(server.chat_requests()[0].path, "/v1/chat/completions");
}

#[test]
fn fenced_json_is_extracted() {
    let server = LlmServer::start();
    server.push(Reply::chat(&format!(
        "Here you go:\n```json\n{}\n```\n",
        good()
    )));
    let decision = ok(decide(&server));
    assert_eq!((decision.value, decision.found), (good(), Found::Fenced));
    assert_eq!(server.chat_requests().len(), 1);
}

#[test]
fn prose_around_json_is_skipped() {
    let server = LlmServer::start();
    server.push(Reply::chat(&format!(
        "I thought about it {{a lot}}. {} Hope this helps!",
        good()
    )));
    let decision = ok(decide(&server));
    assert_eq!((decision.value, decision.found), (good(), Found::Scanned));
}

#[test]
fn a_closing_brace_inside_a_string_is_part_of_the_string() {
    let server = LlmServer::start();
    let tricky =
        json!({"playbook": "catalog.add", "reason": "the template ends with } and has { too"});
    server.push(Reply::chat(&format!("Decision: {tricky} -- done }}")));
    assert_eq!(ok(decide(&server)).value, tricky);
}

#[test]
fn an_invalid_reply_is_repaired_with_the_validation_errors() {
    let server = LlmServer::start();
    server.push_all([
        Reply::chat_json(&json!({"playbook": "rm -rf"})),
        Reply::chat_json(&good()),
    ]);

    let decision = ok(decide(&server));

    assert_eq!((decision.value, decision.repairs), (good(), 1));
    let sent = server.chat_requests();
    assert_eq!(sent.len(), 2);
    let repair = sent[1].message_texts();
    assert_eq!(
        repair.len(),
        4,
        "system, user, the invalid reply, the repair request"
    );
    assert_eq!(repair[2], json!({"playbook": "rm -rf"}).to_string());
    assert!(
        repair[3].contains("\"reason\" is a required property"),
        "{}",
        repair[3]
    );
    assert!(repair[3].contains("/playbook"), "{}", repair[3]);
    // The invalid reply is recorded as what it was, not as a success.
    assert!(
        decision.records[0]
            .error
            .as_deref()
            .unwrap()
            .starts_with("invalid reply")
    );
    assert_eq!(
        (
            decision.records[1].turn,
            decision.records[1].error.as_deref()
        ),
        (1, None)
    );
}

#[test]
fn a_reply_schema_invalid_three_times_is_an_honest_failure() {
    let server = LlmServer::start();
    let wrong = json!({"playbook": "deploy.everything", "reason": "yolo"});
    // The model keeps its wrong choice, whole or when asked for that path alone.
    server.respond_with(move |request| match is_partial(request) {
        true => Reply::chat_json(&json!({"/playbook": "deploy.everything"})),
        false => Reply::chat_json(&wrong),
    });

    let failure = failed(decide(&server));

    let sent = server.chat_requests();
    assert_eq!(sent.len(), 3, "one question and two repair turns");
    assert!(
        sent[1..].iter().all(is_partial),
        "only /playbook failed, so only /playbook is asked for"
    );
    assert_eq!(
        sent[2].message_texts().len(),
        6,
        "both repair turns are in the last request"
    );
    assert_eq!(failure.records.len(), 3);
    assert!(
        failure
            .records
            .iter()
            .all(|r| r.error.as_deref().unwrap().starts_with("invalid reply"))
    );
    let LlmError::InvalidOutput {
        repairs,
        problems,
        reply,
        ..
    } = &failure.error
    else {
        panic!("{}", failure.error)
    };
    assert_eq!(*repairs, 2);
    assert!(
        problems.contains("at /playbook") && problems.contains("is not one of"),
        "{problems}"
    );
    assert!(reply.contains("deploy.everything"), "{reply}");
    let message = failure.to_string();
    assert!(
        message.contains("is not one of") && message.contains("deploy.everything"),
        "{message}"
    );
}

/// Whether a request is a partial repair turn: its `response_format` schema is keyed by JSON
/// pointers.
fn is_partial(request: &crate::llm_server::Request) -> bool {
    reply_schema_keys(request)
        .first()
        .is_some_and(|key| key.starts_with('/'))
}

/// The property names of the request's `response_format` schema.
fn reply_schema_keys(request: &crate::llm_server::Request) -> Vec<String> {
    request.json()["response_format"]["json_schema"]["schema"]["properties"]
        .as_object()
        .map(|properties| properties.keys().cloned().collect())
        .unwrap_or_default()
}

/// A decision schema with a nested, bounded number: the field small models get wrong.
fn assessed_schema() -> Value {
    json!({
        "type": "object",
        "additionalProperties": false,
        "required": ["playbook", "reason", "validation"],
        "properties": {
            "playbook": {"type": "string", "enum": ["catalog.check", "catalog.add"]},
            "reason": {"type": "string"},
            "validation": {
                "type": "object",
                "additionalProperties": false,
                "required": ["confidence", "assumptions"],
                "properties": {
                    "confidence": {"type": "number", "minimum": 0, "maximum": 1},
                    "assumptions": {"type": "array", "items": {"type": "string"}}
                }
            }
        }
    })
}

fn assessed(confidence: Value) -> Value {
    json!({
        "playbook": "catalog.check",
        "reason": "it is cheap",
        "validation": {"confidence": confidence, "assumptions": ["the catalog is current"]}
    })
}

#[test]
fn a_reply_valid_but_for_one_field_is_repaired_by_asking_for_that_field_alone() {
    let server = LlmServer::start();
    // The scripted model answers the corrected value only to a turn that asks for
    // /validation/confidence and nothing else; any other request gets its first answer again.
    server.respond_with(|request| {
        if reply_schema_keys(request) == ["/validation/confidence"] {
            Reply::chat_json(&json!({"/validation/confidence": 0.9}))
        } else {
            Reply::chat_json(&assessed(json!(100)))
        }
    });
    let request = DecisionRequest {
        schema: assessed_schema(),
        ..request()
    };

    let decision = ok(client(settings(&server.url())).decide(&request));

    assert_eq!(decision.value, assessed(json!(0.9)), "merged and valid");
    assert_eq!(decision.repairs, 1);
    let sent = server.chat_requests();
    assert_eq!(sent.len(), 2);
    let repair = sent[1].json();
    assert_eq!(
        repair["response_format"]["json_schema"]["schema"],
        json!({
            "type": "object",
            "properties": {"/validation/confidence": {"type": "number", "minimum": 0, "maximum": 1}},
            "required": ["/validation/confidence"],
            "additionalProperties": false
        })
    );
    assert_eq!(
        repair["response_format"]["json_schema"]["name"],
        "discover_decision_repair"
    );
    let texts = sent[1].message_texts();
    assert_eq!(
        texts.len(),
        4,
        "system, user, the invalid reply, the repair request"
    );
    assert_eq!(texts[2], assessed(json!(100)).to_string());
    let question = &texts[3];
    assert!(
        question.contains("- /validation/confidence: a number from 0 to 1; you wrote 100 ("),
        "{question}"
    );
    assert!(
        !question.contains("/reason") && !question.contains("/playbook"),
        "only the failing path is named: {question}"
    );
    // Both turns are recorded: the first as the invalid reply it was.
    assert_eq!(decision.records.len(), 2);
    let first = decision.records[0].error.as_deref().unwrap();
    assert!(
        first.starts_with("invalid reply") && first.contains("/validation/confidence"),
        "{first}"
    );
    assert_eq!(
        (
            decision.records[1].turn,
            decision.records[1].error.as_deref()
        ),
        (1, None)
    );
}

#[test]
fn a_wrong_answer_to_a_partial_repair_is_asked_again_and_never_coerced() {
    let server = LlmServer::start();
    server.push_all([
        Reply::chat_json(&assessed(json!(100))),
        // Still out of range: refused, and the same path is asked for again.
        Reply::chat_json(&json!({"/validation/confidence": 90})),
        Reply::chat_json(&json!({"/validation/confidence": 0.9})),
    ]);
    let request = DecisionRequest {
        schema: assessed_schema(),
        ..request()
    };

    let decision = ok(client(settings(&server.url())).decide(&request));

    assert_eq!(
        (decision.value, decision.repairs),
        (assessed(json!(0.9)), 2)
    );
    let sent = server.chat_requests();
    assert!(sent[1..].iter().all(is_partial));
    let again = &sent[2].message_texts()[5];
    assert!(
        again.contains("you wrote 90") || again.contains("90 is greater than the maximum"),
        "{again}"
    );
    assert!(
        decision.records[1]
            .error
            .as_deref()
            .unwrap()
            .contains("greater than the maximum")
    );
}

#[test]
fn broken_json_still_gets_a_full_re_ask() {
    let server = LlmServer::start();
    server.push_all([
        Reply::chat("{\"playbook\": \"catalog.check\", \"reason\": "),
        Reply::chat_json(&good()),
    ]);

    let decision = ok(decide(&server));

    assert_eq!((decision.value, decision.repairs), (good(), 1));
    let sent = server.chat_requests();
    assert_eq!(
        sent[1].json()["response_format"]["json_schema"]["schema"],
        schema(),
        "the whole decision is asked for again"
    );
    let question = &sent[1].message_texts()[3];
    assert!(
        question.contains("Reply again with only the corrected JSON object"),
        "{question}"
    );
}

#[test]
fn a_reply_without_json_three_times_is_an_honest_failure() {
    let server = LlmServer::start();
    server.respond_with(|_| Reply::chat("I think catalog.check is best."));

    let failure = failed(decide(&server));

    assert_eq!(server.chat_requests().len(), 3);
    let LlmError::InvalidOutput {
        problems, reply, ..
    } = &failure.error
    else {
        panic!("{}", failure.error)
    };
    assert!(problems.contains("no JSON object"), "{problems}");
    assert_eq!(reply, "I think catalog.check is best.");
}

#[test]
fn a_top_level_array_is_not_accepted_where_an_object_is_required() {
    let server = LlmServer::start();
    server.push_all([
        Reply::chat(&json!([good()]).to_string()),
        Reply::chat_json(&good()),
    ]);

    let decision = ok(decide(&server));

    assert_eq!((decision.value, decision.repairs), (good(), 1));
    let repair = &server.chat_requests()[1].message_texts()[3];
    assert!(repair.contains("not an array"), "{repair}");
}

#[test]
fn a_reply_cut_off_at_the_token_limit_gets_a_repair_turn_that_says_so() {
    let server = LlmServer::start();
    server.push_all([
        Reply::chat_cut_off(
            "{\"playbook\": \"catalog.check\", \"reason\": \"because the service needs a very long",
        ),
        Reply::chat_json(&good()),
    ]);

    let decision = ok(decide(&server));

    assert_eq!(decision.repairs, 1);
    assert_eq!(decision.records[0].finish_reason.as_deref(), Some("length"));
    let repair = &server.chat_requests()[1].message_texts()[3];
    assert!(repair.contains("cut off"), "{repair}");
}

#[test]
fn a_429_with_retry_after_seconds_is_retried_no_sooner() {
    let server = LlmServer::start();
    server.push_all([
        Reply::error(429, "slow down", None).header("Retry-After", "1"),
        Reply::chat_json(&good()),
    ]);

    let decision = ok(decide(&server));

    let sent = server.chat_requests();
    assert_eq!(sent.len(), 2);
    let waited = sent[1].arrived.duration_since(sent[0].arrived);
    assert!(waited >= Duration::from_secs(1), "retried after {waited:?}");
    assert_eq!(decision.records[0].status, Some(429));
    assert_eq!(
        decision.records[0]
            .headers
            .get("retry-after")
            .map(String::as_str),
        Some("1")
    );
}

#[test]
fn a_429_with_retry_after_as_an_http_date_is_retried_no_sooner() {
    let server = LlmServer::start();
    let (date, at) = http_date_in(2);
    server.push_all([
        Reply::error(429, "slow down", None).header("Retry-After", &date),
        Reply::chat_json(&good()),
    ]);

    ok(decide(&server));

    let sent = server.chat_requests();
    assert_eq!(sent.len(), 2);
    assert!(sent[1].arrived_wall >= at, "retried before {date}");
}

#[test]
fn a_500_then_a_200_succeeds_on_the_second_attempt() {
    let server = LlmServer::start();
    server.push_all([Reply::error(500, "boom", None), Reply::chat_json(&good())]);

    let decision = ok(decide(&server));

    assert_eq!(server.chat_requests().len(), 2);
    let statuses: Vec<_> = decision.records.iter().map(|r| r.status).collect();
    assert_eq!(statuses, [Some(500), Some(200)]);
    assert_eq!(decision.records[0].error.as_deref(), Some("HTTP 500: boom"));
    assert_eq!(
        decision
            .records
            .iter()
            .map(|r| r.attempt)
            .collect::<Vec<_>>(),
        [1, 2]
    );
}

#[test]
fn every_retryable_status_is_retried() {
    for status in [408, 409, 429, 500, 502, 503, 504] {
        let server = LlmServer::start();
        server.push_all([
            Reply::error(status, "transient", None),
            Reply::chat_json(&good()),
        ]);
        ok(decide(&server));
        assert_eq!(server.chat_requests().len(), 2, "HTTP {status}");
    }
}

#[test]
fn a_401_is_one_attempt_and_a_hint_about_the_key() {
    let server = LlmServer::start();
    server
        .respond_with(|_| Reply::error(401, "Incorrect API key provided", Some("invalid_api_key")));

    let failure = failed(decide(&server));

    assert_eq!(server.chat_requests().len(), 1);
    assert!(
        matches!(failure.error, LlmError::Refused { status: 401, .. }),
        "{}",
        failure.error
    );
    assert!(
        failure
            .error
            .hint()
            .unwrap()
            .contains("SPECTRA_LLM_API_KEY")
    );
}

#[test]
fn permanent_refusals_are_not_retried() {
    for status in [400, 403, 404, 422] {
        let server = LlmServer::start();
        server.respond_with(move |_| Reply::error(status, "no", None));
        let failure = failed(decide(&server));
        assert_eq!(server.chat_requests().len(), 1, "HTTP {status}");
        assert!(matches!(failure.error, LlmError::Refused { status: s, .. } if s == status));
    }
}

#[test]
fn context_length_and_quota_errors_are_not_retried() {
    let server = LlmServer::start();
    server.respond_with(|_| {
        Reply::error(
            400,
            "This model's maximum context length is 8192 tokens",
            Some("context_length_exceeded"),
        )
    });
    let failure = failed(decide(&server));
    assert_eq!(server.chat_requests().len(), 1);
    assert!(
        matches!(failure.error, LlmError::ContextLength { .. }),
        "{}",
        failure.error
    );

    let server = LlmServer::start();
    server.respond_with(|_| {
        Reply::error(
            429,
            "You exceeded your current quota",
            Some("insufficient_quota"),
        )
    });
    let failure = failed(decide(&server));
    assert_eq!(server.chat_requests().len(), 1);
    assert!(
        matches!(failure.error, LlmError::InsufficientQuota { .. }),
        "{}",
        failure.error
    );
}

#[test]
fn a_stall_longer_than_the_attempt_timeout_is_cut_off_and_retried() {
    let server = LlmServer::start();
    server.push_all([
        Reply::stall(Duration::from_secs(30)),
        Reply::chat_json(&good()),
    ]);
    let mut s = settings(&server.url());
    // The retry's immediate answer must also arrive within it: 2 s leaves a loaded machine
    // room for that round trip.
    s.attempt_timeout = Setting::flag(Duration::from_secs(2));

    let decision = ok(client(s).decide(&request()));

    assert_eq!(server.chat_requests().len(), 2);
    let first = &decision.records[0];
    assert_eq!((first.status, first.response_body.is_none()), (None, true));
    assert!(
        first.error.as_deref().unwrap().contains("within 2s"),
        "{:?}",
        first.error
    );
    assert!(first.latency_ms >= 2000);
}

#[test]
fn connection_refused_is_retried_then_reported_unreachable() {
    let refused = refused_url();

    let failure = failed(client(settings(refused.url())).decide(&request()));

    assert!(
        matches!(failure.error, LlmError::Unreachable { attempts: 4, .. }),
        "{}",
        failure.error
    );
    assert_eq!(failure.records.len(), 4);
    assert!(
        failure
            .records
            .iter()
            .all(|r| r.status.is_none() && r.error.is_some())
    );
    assert!(failure.error.hint().unwrap().contains("SPECTRA_LLM_URL"));
    assert!(
        failure
            .error
            .hint()
            .unwrap()
            .contains("git config spectra.llm.url")
    );
}

#[test]
fn the_total_deadline_stops_retries_that_would_outlast_it() {
    let server = LlmServer::start();
    server.respond_with(|_| Reply::error(503, "busy", None).header("Retry-After", "2"));
    let mut s = settings(&server.url());
    s.total_timeout = Setting::flag(Duration::from_secs(4));
    s.max_attempts = Setting::flag(10);

    let failure = failed(client(s).decide(&request()));

    // Attempts at about 0 s and 2 s; a third would start at 4 s at the soonest, past the
    // deadline however fast the server is. The second is due 2 s before the deadline, so even
    // a slow first round trip leaves it in time.
    assert!(
        matches!(
            failure.error,
            LlmError::DeadlineExceeded { attempts: 2, .. }
        ),
        "{}",
        failure.error
    );
    assert_eq!(server.chat_requests().len(), 2);
}

#[test]
fn the_total_deadline_cuts_a_stalled_attempt_short() {
    let server = LlmServer::start();
    let arrived = server.hold_and_signal();
    let mut s = settings(&server.url());
    // Shorter than the attempt timeout (5 s), so the deadline is what cuts the attempt; long
    // enough that the request reaches the server before it, even on a loaded machine.
    s.total_timeout = Setting::flag(Duration::from_secs(2));

    let failure = failed(client(s).decide(&request()));

    assert!(
        matches!(
            failure.error,
            LlmError::DeadlineExceeded { attempts: 1, .. }
        ),
        "{}",
        failure.error
    );
    // The server may log the request after the client has given up; its signal says it has.
    arrived
        .recv_timeout(Duration::from_secs(60))
        .expect("the stalled request reached the server");
    assert_eq!(server.chat_requests().len(), 1);
}

#[test]
fn retries_stop_at_the_maximum_attempt_count() {
    let server = LlmServer::start();
    server.respond_with(|_| Reply::error(502, "bad gateway", None));

    let failure = failed(decide(&server));

    assert!(
        matches!(
            failure.error,
            LlmError::RetriesExhausted { attempts: 4, .. }
        ),
        "{}",
        failure.error
    );
    assert_eq!(server.chat_requests().len(), 4);
}

#[test]
fn a_retry_after_longer_than_the_maximum_delay_ends_the_retries() {
    let server = LlmServer::start();
    server.respond_with(|_| {
        Reply::error(429, "come back tomorrow", None).header("Retry-After", "86400")
    });

    let failure = failed(decide(&server));

    assert!(
        matches!(failure.error, LlmError::RetryAfterTooLong { .. }),
        "{}",
        failure.error
    );
    assert_eq!(server.chat_requests().len(), 1);
}

#[test]
fn a_rejected_response_format_steps_down_and_is_remembered() {
    let server = LlmServer::start();
    server.push(Reply::error(
        400,
        "response_format json_schema is not supported",
        None,
    ));
    server.respond_with(|_| Reply::chat_json(&good()));
    let state = tempfile::tempdir().unwrap();

    let first = Client::new(settings(&server.url()), Some(state.path())).unwrap();
    let decision = ok(first.decide(&request()));

    assert_eq!(decision.format, ResponseFormat::JsonObject);
    let formats: Vec<_> = decision.records.iter().map(|r| r.format).collect();
    assert_eq!(
        formats,
        [ResponseFormat::JsonSchema, ResponseFormat::JsonObject]
    );
    let sent = server.chat_requests();
    assert_eq!(
        sent[1].json()["response_format"],
        json!({"type": "json_object"})
    );
    assert!(
        sent[1].message_texts()[0].contains("\"additionalProperties\""),
        "schema spelled out in the prompt"
    );

    // A new client (a later run) starts at the remembered level: no rejected request first.
    let later = Client::new(settings(&server.url()), Some(state.path())).unwrap();
    assert_eq!(ok(later.decide(&request())).records.len(), 1);
    assert_eq!(
        server.chat_requests()[2].json()["response_format"]["type"],
        "json_object"
    );
}

#[test]
fn an_endpoint_that_rejects_every_response_format_gets_instructions_only() {
    let server = LlmServer::start();
    server.respond_with(|request| {
        if request.json().get("response_format").is_some() {
            Reply::error(
                400,
                "Unrecognized request argument supplied: response_format",
                None,
            )
        } else {
            Reply::chat_json(&good())
        }
    });

    let decision = ok(decide(&server));

    assert_eq!(decision.format, ResponseFormat::Instructions);
    assert_eq!(server.chat_requests().len(), 3);
}

#[test]
fn a_prompt_that_cannot_fit_fails_before_any_request() {
    let server = LlmServer::start();
    let mut s = settings(&server.url());
    s.context_window = Setting::flag(512);
    let mut big = request();
    big.user = "word ".repeat(2000);

    let failure = failed(client(s).decide(&big));

    assert!(
        matches!(failure.error, LlmError::PromptTooLarge { .. }),
        "{}",
        failure.error
    );
    assert!(failure.records.is_empty());
    assert!(server.requests().is_empty());
}

#[test]
fn max_tokens_shrinks_to_what_the_context_window_leaves() {
    let server = LlmServer::start();
    server.push(Reply::chat_json(&good()));
    let mut s = settings(&server.url());
    s.context_window = Setting::flag(2048);
    s.max_tokens = Setting::flag(4096);

    ok(client(s).decide(&request()));

    let max_tokens = server.chat_requests()[0].json()["max_tokens"]
        .as_u64()
        .unwrap();
    assert!(max_tokens > 0 && max_tokens < 2048, "{max_tokens}");
}

#[test]
fn a_2xx_that_is_not_a_chat_completion_is_an_error_not_a_decision() {
    let server = LlmServer::start();
    server.push(Reply::raw(200, "<html>proxy login</html>"));
    let failure = failed(decide(&server));
    assert!(
        matches!(failure.error, LlmError::MalformedResponse { .. }),
        "{}",
        failure.error
    );
    assert!(failure.records[0].error.is_some());
}

/// A `tracing` writer that keeps everything written to it.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(bytes);
        Ok(bytes.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[test]
fn the_api_key_never_reaches_a_record_a_log_line_or_an_error() {
    let server = LlmServer::start();
    // A hostile or careless server that echoes the key back: in a retryable error's body and
    // headers, in the model's reply (which the repair turn would send back), and in a refusal.
    server.push_all([
        Reply::error(503, &format!("busy, key {KEY}"), None).header("x-request-id", KEY),
        Reply::chat(&format!("not json, but here is your key: {KEY}")),
    ]);
    server.respond_with(|request| {
        let echoed = request
            .header("authorization")
            .unwrap_or_default()
            .to_owned();
        Reply::error(401, &format!("bad key {echoed}"), None)
    });
    let logs = Captured::default();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_writer({
            let logs = logs.clone();
            move || logs.clone()
        })
        .finish();

    let (failure, debug_client) = tracing::subscriber::with_default(subscriber, || {
        let client = client(settings(&server.url()));
        (failed(client.decide(&request())), format!("{client:?}"))
    });

    assert!(
        server.chat_requests().len() >= 3,
        "the server did see the key, so the test means something"
    );
    let records = serde_json::to_string(&failure.records).unwrap();
    let logs = String::from_utf8(logs.0.lock().unwrap().clone()).unwrap();
    assert!(!logs.is_empty(), "logging was captured");
    for (what, text) in [
        ("records", records),
        ("records (Debug)", format!("{:?}", failure.records)),
        ("logs", logs),
        ("error", failure.to_string()),
        ("error (Debug)", format!("{:?}", failure.error)),
        ("hint", failure.error.hint().unwrap_or_default().to_owned()),
        ("client (Debug)", debug_client),
    ] {
        assert!(
            !text.contains(KEY),
            "the API key leaked into the {what}: {text}"
        );
    }
}

/// Runs `git spectra doctor` in a fresh repository with a pinned environment: no user or system
/// git config, and only the given variables.
fn doctor(
    env: &[(&str, &str)],
    git_config: &[(&str, &str)],
) -> (std::process::Output, tempfile::TempDir) {
    let repo = tempfile::tempdir().unwrap();
    let git = |args: &[&str]| {
        let status = std::process::Command::new("git")
            .args(args)
            .current_dir(repo.path())
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .env("GIT_CONFIG_GLOBAL", "/dev/null")
            .status()
            .unwrap();
        assert!(status.success(), "git {args:?}");
    };
    git(&["init", "-q"]);
    for (key, value) in git_config {
        git(&["config", key, value]);
    }
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_git-spectra"))
        .arg("doctor")
        .current_dir(repo.path())
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HOME", repo.path())
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .envs(env.iter().copied())
        .output()
        .unwrap();
    (output, repo)
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn doctor_shows_settings_with_their_sources_and_which_formats_work() {
    let server = LlmServer::start();
    server.set_models(&["test-model", "other"]);
    server.respond_with(|request| {
        if request.json()["response_format"]["type"] == "json_schema" {
            Reply::error(400, "response_format json_schema is not supported", None)
        } else {
            Reply::chat("{\"ok\": true}")
        }
    });

    let (output, repo) = doctor(
        &[
            ("SPECTRA_LLM_URL", &server.base_url()),
            ("SPECTRA_LLM_API_KEY", KEY),
        ],
        &[("spectra.llm.model", "test-model")],
    );

    let stdout = text(&output.stdout);
    assert_eq!(
        output.status.code(),
        Some(0),
        "{stdout}\n{}",
        text(&output.stderr)
    );
    assert!(
        stdout.contains(&format!("{}  (env SPECTRA_LLM_URL)", server.url())),
        "{stdout}"
    );
    assert!(
        stdout.contains("test-model  (git config spectra.llm.model)"),
        "{stdout}"
    );
    assert!(
        stdout.contains("***  (env SPECTRA_LLM_API_KEY)"),
        "{stdout}"
    );
    assert!(stdout.contains("0.3  (default)"), "{stdout}");
    assert!(
        stdout.contains("2 models, the configured model is listed"),
        "{stdout}"
    );
    assert!(
        stdout.contains("json_schema   rejected (HTTP 400"),
        "{stdout}"
    );
    assert!(stdout.contains("json_object   works (HTTP 200"), "{stdout}");
    assert!(stdout.contains("instructions  works"), "{stdout}");
    assert!(
        stdout.contains("decisions will use json_object"),
        "{stdout}"
    );
    assert!(!stdout.contains(KEY) && !text(&output.stderr).contains(KEY));
    let remembered =
        std::fs::read_to_string(repo.path().join(".git/spectra/llm-response-format.json")).unwrap();
    assert!(remembered.contains("json_object"), "{remembered}");
}

#[test]
fn doctor_against_nothing_exits_1_with_a_hint_how_to_configure() {
    let refused = refused_url();

    let (output, _repo) = doctor(&[("SPECTRA_LLM_URL", refused.url())], &[]);

    let (stdout, stderr) = (text(&output.stdout), text(&output.stderr));
    assert_eq!(output.status.code(), Some(1), "{stdout}\n{stderr}");
    assert!(stdout.contains("unreachable"), "{stdout}");
    assert!(
        stderr.contains("error: cannot reach the LLM endpoint"),
        "{stderr}"
    );
    assert!(
        stderr.contains("hint:") && stderr.contains("SPECTRA_LLM_URL"),
        "{stderr}"
    );
    assert!(stderr.contains("git config spectra.llm.url"), "{stderr}");
}

#[test]
fn doctor_rejects_a_bad_setting_naming_where_it_came_from() {
    let (output, _repo) = doctor(&[], &[("spectra.llm.timeout", "soon")]);
    let stderr = text(&output.stderr);
    assert_eq!(output.status.code(), Some(128), "{stderr}");
    assert!(
        stderr.contains("spectra.llm.timeout") && stderr.contains("git config"),
        "{stderr}"
    );
}
