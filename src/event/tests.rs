//! Tests of the envelope: canonical bytes, digests, validation, subjects.

use super::*;
use serde_json::json;

#[test]
fn canonical_json_sorts_keys_at_every_level() {
    let value = json!({"b": 1, "a": {"z": [ {"y": 1, "x": 2} ], "c": "}"}});
    assert_eq!(
        String::from_utf8(canonical_json(&value)).unwrap(),
        r#"{"a":{"c":"}","z":[{"x":2,"y":1}]},"b":1}"#
    );
}

#[test]
fn sealed_event_round_trips_through_its_canonical_bytes() {
    let new = NewEvent::new("note.added")
        .run("r1")
        .payload(json!({"text": "hello", "n": 3}))
        .attach("stdout", b"out".to_vec());
    let event = new.seal("A <a@example.com>", 1, GENESIS_DIGEST);
    let decoded = decode(&event.canonical_json()).unwrap();
    assert_eq!(decoded, event);
    assert_eq!(decoded.canonical_json(), event.canonical_json());
    assert_eq!(event.attachments["stdout"], sha256_hex(b"out"));
}

#[test]
fn digest_depends_on_previous_digest_and_payload() {
    let new = NewEvent::new("note.added");
    let a = new.seal("A <a@x>", 1, GENESIS_DIGEST);
    let b = new.seal("A <a@x>", 1, &"1".repeat(64));
    assert_ne!(a.digest(), b.digest());
    let mut c = a.clone();
    c.payload = json!({"edited": true});
    assert_ne!(a.digest(), c.digest());
}

#[test]
fn kinds_must_be_dotted_lowercase_words() {
    assert!(is_valid_kind("run.started"));
    assert!(is_valid_kind("note.added_2"));
    assert!(!is_valid_kind("run"));
    assert!(!is_valid_kind("Run.Started"));
    assert!(!is_valid_kind("run..started"));
    assert!(!is_valid_kind("run.started\n"));
}

#[test]
fn payload_must_be_an_object() {
    let err = NewEvent::new("note.added")
        .payload(json!([1, 2]))
        .validate()
        .unwrap_err();
    assert!(err.to_string().contains("not an array"), "{err}");
}

#[test]
fn future_schema_is_refused_with_a_hint() {
    let err = decode(br#"{"schema": 9}"#).unwrap_err();
    assert!(err.to_string().contains("upgrade"), "{err}");
}

#[test]
fn trailer_bound_fields_a_trailer_cannot_carry_are_refused() {
    for (event, field) in [
        (NewEvent::new("note.added").run("r1 "), TrailerField::Run),
        (NewEvent::new("note.added").run("r\n1"), TrailerField::Run),
        (
            NewEvent::new("note.added").activity(""),
            TrailerField::Activity,
        ),
        (
            NewEvent::new("note.added").service("a\u{a0}b"),
            TrailerField::Service,
        ),
        (
            NewEvent::new("note.added").service("a\u{1b}b"),
            TrailerField::Service,
        ),
    ] {
        let err = event.validate().unwrap_err();
        assert!(
            matches!(&err, EventError::InvalidTrailerValue { field: f, .. } if *f == field),
            "{err:?}"
        );
        assert!(err.to_string().contains(field.trailer()), "{err}");
    }
    NewEvent::new("note.added")
        .run("run one")
        .activity("discover")
        .service("payments-api")
        .validate()
        .unwrap();
}

#[test]
fn bodies_lose_nothing_but_the_power_to_pose_as_trailers() {
    let mut event = NewEvent::new("note.added");
    event.body = Some("\n  Spectra-Reverts: abc\nplain\n".into());
    assert_eq!(
        event.body_text().as_deref(),
        Some(" Spectra-Reverts: abc\nplain")
    );
    event.body = Some(" \n ".into());
    assert_eq!(event.body_text(), None);
}

#[test]
fn subjects_are_one_line() {
    let new = NewEvent::new("note.added").subject("two\nlines");
    assert_eq!(new.subject_line(), "two lines");
    let blank = NewEvent::new("note.added").subject(" \n\t");
    assert_eq!(blank.subject_line(), "spectra: note added");
    let new = NewEvent::new("decision.made")
        .activity("discover")
        .service("logging");
    assert_eq!(new.subject_line(), "discover: decision made for logging");
}
