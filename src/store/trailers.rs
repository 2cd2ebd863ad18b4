//! The commit message of an event: subject, body, and the `Spectra-*` trailers that mirror
//! its envelope, so that `git log refs/spectra/events` is an audit trail without this tool.

use crate::event::{self, Event};

/// The trailer naming each target of an undo (`events.reverted`) or redo (`events.restored`).
pub const REVERTS_TRAILER: &str = "Spectra-Reverts";

/// The `Spectra-Reverts` values an event's commit carries: its targets when it is an undo or a
/// redo, nothing otherwise. Derived from the envelope, so `verify` can check them.
pub(super) fn reverts_trailers(event: &Event) -> Vec<String> {
    if event.kind != event::kind::EVENTS_REVERTED && event.kind != event::kind::EVENTS_RESTORED {
        return Vec::new();
    }
    event.payload["targets"]
        .as_array()
        .map(|targets| {
            targets
                .iter()
                .filter_map(serde_json::Value::as_str)
                .map(one_line_value)
                .collect()
        })
        .unwrap_or_default()
}

/// The trailers that must mirror the envelope (the digest is checked separately).
pub(super) const TRAILER_KEYS: [&str; 7] = [
    "Spectra-Event",
    "Spectra-Id",
    "Spectra-Run",
    "Spectra-Activity",
    "Spectra-Service",
    "Spectra-Lamport",
    "Spectra-Schema",
];

pub(super) fn expected_trailers(event: &Event) -> Vec<(&'static str, String)> {
    let mut trailers = vec![
        ("Spectra-Event", event.kind.clone()),
        ("Spectra-Id", event.id.clone()),
    ];
    if let Some(run) = &event.run {
        trailers.push(("Spectra-Run", run.clone()));
    }
    if let Some(activity) = &event.activity {
        trailers.push(("Spectra-Activity", activity.clone()));
    }
    if let Some(service) = &event.service {
        trailers.push(("Spectra-Service", service.clone()));
    }
    trailers.push(("Spectra-Lamport", event.lamport.to_string()));
    trailers.push(("Spectra-Schema", event.schema.to_string()));
    trailers
}

/// The trailers of a commit message: the mirrored envelope, then any `Spectra-Reverts`.
pub(super) fn message_trailers(event: &Event) -> Vec<(&'static str, String)> {
    let mut trailers = expected_trailers(event);
    trailers.extend(
        reverts_trailers(event)
            .into_iter()
            .map(|target| (REVERTS_TRAILER, target)),
    );
    trailers
}

/// Subject, optional body, then the trailers that make `git log` a complete audit.
///
/// `subject` and `body` come from [`NewEvent::subject_line`] and [`NewEvent::body_text`], which
/// keep them from holding anything git reads as a trailer: the last paragraph is ours alone.
pub(super) fn commit_message(
    subject: &str,
    body: Option<&str>,
    event: &Event,
    digest: &str,
) -> String {
    let mut message = format!("{subject}\n\n");
    if let Some(body) = body.filter(|body| !body.is_empty()) {
        message.push_str(body);
        message.push_str("\n\n");
    }
    for (key, value) in message_trailers(event) {
        message.push_str(&format!("{key}: {}\n", one_line_value(&value)));
    }
    message.push_str(&format!("Spectra-Digest: {digest}\n"));
    message
}

/// Trailer values must stay on one line; anything else would break `git interpret-trailers`.
pub(super) fn one_line_value(value: &str) -> String {
    value.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::{GENESIS_DIGEST, NewEvent};
    use crate::store::verify::check_reverts_trailers;
    use crate::trailer_text::Trailers;

    #[test]
    fn trailers_come_from_the_last_paragraph() {
        let trailers = Trailers::parse(
            b"subject\n\nBody: not a trailer\n\nSpectra-Id: abc\nSpectra-Lamport: 3\n",
        );
        assert_eq!(trailers.get("Spectra-Id"), Some("abc"));
        assert_eq!(trailers.get("spectra-lamport"), Some("3"));
        assert_eq!(trailers.get("Body"), None);
    }

    #[test]
    fn undo_events_carry_one_reverts_trailer_per_target_and_verify_checks_them() {
        use serde_json::json;
        let undo = NewEvent::new(event::kind::EVENTS_REVERTED)
            .payload(json!({"targets": ["a-1", "b-2"]}))
            .seal("T <t@x>", 1, GENESIS_DIGEST);
        let message = commit_message("undo", None, &undo, &undo.digest());
        let trailers = Trailers::parse(&message);
        assert_eq!(trailers.get_all(REVERTS_TRAILER), vec!["a-1", "b-2"]);
        assert!(check_reverts_trailers(&undo, &trailers).is_ok());

        let dropped = Trailers::parse(message.replace("Spectra-Reverts: b-2\n", ""));
        let error = check_reverts_trailers(&undo, &dropped).unwrap_err();
        assert!(error.contains("disagree"), "{error}");

        let note = NewEvent::new("note.added")
            .payload(json!({"targets": ["a-1"]}))
            .seal("T <t@x>", 1, GENESIS_DIGEST);
        let message = commit_message("note", None, &note, &note.digest());
        assert!(!message.contains(REVERTS_TRAILER));
    }
}
