//! Numbers in `event.json`: a payload with non-integer numbers is kept as written and verifies,
//! and an event whose float is spelt another way than this build spells it (as a future float
//! formatter might, or as an older serde_json did) still verifies, so old logs do not depend on
//! serde_json's formatting.

use std::path::Path;

use crate::common::TestEnv;
use crate::tamper::{read_chain, replace_in_tree, write_chain};

const PAYLOAD: &str =
    r#"{"score": 0.8, "ratio": 100.0, "big": 1e22, "small": 1e-7, "count": 18446744073709551615}"#;

/// The stored `event.json` of the newest event, as text.
fn newest_event_json(env: &TestEnv, repo: &Path) -> String {
    env.git(repo, &["cat-file", "-p", "refs/spectra/events:event.json"])
        .success()
        .stdout
}

#[test]
fn a_payload_with_floats_is_stored_in_its_shortest_form_and_verifies() {
    let env = TestEnv::new();
    let repo = env.init_repo("r");
    env.append(&repo, "note.added", PAYLOAD);
    let stored = newest_event_json(&env, &repo);
    assert!(
        stored.contains(r#""count":18446744073709551615,"ratio":100.0,"score":0.8,"small":1e-7}"#),
        "{stored}"
    );
    env.spectra(&repo, &["verify"]).success();
}

#[test]
fn a_float_spelt_by_another_formatter_still_verifies() {
    let env = TestEnv::new();
    let repo = env.init_repo("r");
    env.append(&repo, "note.added", PAYLOAD);
    let stored = newest_event_json(&env, &repo);
    // The same numbers as other float formatters spell them: `1e22` is what serde_json wrote
    // before it changed formatters (this build writes `1e+22`), `100` what RFC 8785 writes.
    let respelt = stored
        .replace(r#""big":1e+22"#, r#""big":1e22"#)
        .replace(r#""ratio":100.0"#, r#""ratio":100"#);
    assert_ne!(respelt, stored);
    let mut chain = read_chain(&env, &repo);
    let old_digest =
        spectra::event::chain_digest(spectra::event::GENESIS_DIGEST, stored.as_bytes());
    let new_digest =
        spectra::event::chain_digest(spectra::event::GENESIS_DIGEST, respelt.as_bytes());
    chain[0].tree = replace_in_tree(
        &env,
        &repo,
        &chain[0].tree,
        "event.json",
        respelt.as_bytes(),
    );
    chain[0].message = chain[0].message.replace(&old_digest, &new_digest);
    write_chain(&env, &repo, &chain);

    let verified = env.spectra(&repo, &["verify"]).success();
    assert!(verified.stdout.contains("verified 1"), "{verified:?}");
}

#[test]
fn a_float_with_padding_digits_is_not_canonical() {
    let env = TestEnv::new();
    let repo = env.init_repo("r");
    env.append(&repo, "note.added", r#"{"score": 0.8}"#);
    let stored = newest_event_json(&env, &repo);
    let padded = stored.replace(r#""score":0.8"#, r#""score":0.80"#);
    let mut chain = read_chain(&env, &repo);
    let old_digest =
        spectra::event::chain_digest(spectra::event::GENESIS_DIGEST, stored.as_bytes());
    let new_digest =
        spectra::event::chain_digest(spectra::event::GENESIS_DIGEST, padded.as_bytes());
    chain[0].tree = replace_in_tree(&env, &repo, &chain[0].tree, "event.json", padded.as_bytes());
    chain[0].message = chain[0].message.replace(&old_digest, &new_digest);
    write_chain(&env, &repo, &chain);

    let refused = env.spectra(&repo, &["verify"]).code(1);
    assert!(refused.stderr.contains("canonical form"), "{refused:?}");
}
