//! Tests of settings resolution: priorities, aliases, parsing, the docs and the masked key.

use super::*;
use std::collections::HashMap;
use std::time::Duration;

fn layers(env: &[(&str, &str)], config: &[(&str, &str)]) -> Layers<'static> {
    let env: HashMap<String, String> = env
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let config: HashMap<String, String> = config
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    Layers::new(
        move |k| env.get(k).cloned(),
        move |k| config.get(k).cloned(),
    )
}

#[test]
fn defaults_apply_when_nothing_is_set() {
    let s = LlmSettings::resolve(&layers(&[], &[])).unwrap();
    assert_eq!(
        s.url.value.as_str(),
        "http://localhost:8001/v1/chat/completions"
    );
    assert_eq!(s.model.value, "mistralai/Mistral-7B-Instruct-v0.3");
    assert_eq!(s.api_key.value.expose(), "token-irrelevant");
    assert_eq!(s.temperature.value, 0.3);
    assert_eq!(s.url.source, Source::Default);
}

#[test]
fn flag_beats_env_beats_config() {
    let all = layers(
        &[("SPECTRA_LLM_MODEL", "env-model")],
        &[("spectra.llm.model", "cfg-model")],
    );
    let s = LlmSettings::resolve(&all.with_flag(&keys::LLM_MODEL, Some("flag-model"))).unwrap();
    assert_eq!(
        (s.model.value.as_str(), s.model.source),
        ("flag-model", Source::Flag)
    );

    let env_and_config = layers(
        &[("SPECTRA_LLM_MODEL", "env-model")],
        &[("spectra.llm.model", "cfg-model")],
    );
    let s = LlmSettings::resolve(&env_and_config).unwrap();
    assert_eq!(s.model.source, Source::Env("SPECTRA_LLM_MODEL"));

    let s = LlmSettings::resolve(&layers(&[], &[("spectra.llm.model", "cfg-model")])).unwrap();
    assert_eq!(s.model.source, Source::GitConfig("spectra.llm.model"));
}

#[test]
fn orchestrator_names_are_aliases_below_spectra_names() {
    let s =
        LlmSettings::resolve(&layers(&[("ORCHESTRATOR_LLM_URL", "http://h:1/v1")], &[])).unwrap();
    assert_eq!(s.url.value.as_str(), "http://h:1/v1/chat/completions");
    assert_eq!(s.url.source, Source::Env("ORCHESTRATOR_LLM_URL"));

    let both = layers(
        &[
            ("ORCHESTRATOR_LLM_URL", "http://old/v1"),
            ("SPECTRA_LLM_URL", "http://new/v1"),
        ],
        &[],
    );
    assert_eq!(
        LlmSettings::resolve(&both).unwrap().url.value.host_str(),
        Some("new")
    );
}

#[test]
fn empty_environment_values_count_as_unset() {
    let s = LlmSettings::resolve(&layers(
        &[("SPECTRA_LLM_MODEL", "")],
        &[("spectra.llm.model", "m")],
    ))
    .unwrap();
    assert_eq!(s.model.value, "m");
}

#[test]
fn base_urls_are_completed_to_the_chat_completions_path() {
    for raw in [
        "http://h:8/v1",
        "http://h:8/v1/",
        "http://h:8",
        "http://h:8/v1/chat/completions",
    ] {
        let url = chat_completions_url(raw, Source::Default).unwrap();
        assert_eq!(url.as_str(), "http://h:8/v1/chat/completions", "{raw}");
    }
    assert!(chat_completions_url("http://h:8/api", Source::Default).is_err());
    assert!(chat_completions_url("ftp://h/v1", Source::Default).is_err());
    assert!(chat_completions_url("localhost:8001", Source::Default).is_err());
}

#[test]
fn bad_values_name_key_source_and_reason() {
    let err = LlmSettings::resolve(&layers(&[("SPECTRA_LLM_TIMEOUT", "soon")], &[])).unwrap_err();
    let text = err.to_string();
    assert!(text.contains("spectra.llm.timeout"), "{text}");
    assert!(text.contains("env SPECTRA_LLM_TIMEOUT"), "{text}");
    assert!(text.contains("\"soon\""), "{text}");
}

#[test]
fn docs_config_lists_every_key_and_variable() {
    let docs = include_str!("../../docs/config.md");
    for key in keys::all() {
        assert!(
            docs.contains(&format!("`{}`", key.git)),
            "{} undocumented",
            key.git
        );
        for var in key.env {
            assert!(docs.contains(&format!("`{var}`")), "{var} undocumented");
        }
    }
}

#[test]
fn booleans_read_as_git_reads_them() {
    let s: Setting<bool> = layers(&[("SPECTRA_STORE_AUTO_GC", "off")], &[])
        .get(&keys::STORE_AUTO_GC)
        .unwrap();
    assert!(!s.value);
    let s: Setting<bool> = layers(&[], &[]).get(&keys::STORE_AUTO_GC).unwrap();
    assert!(s.value);
    assert!(
        layers(&[], &[("spectra.store.autoGc", "maybe")])
            .get::<bool>(&keys::STORE_AUTO_GC)
            .is_err()
    );
}

#[test]
fn durations_accept_seconds_and_units() {
    assert_eq!(parse_duration("30").unwrap(), Duration::from_secs(30));
    assert_eq!(parse_duration("1.5s").unwrap(), Duration::from_millis(1500));
    assert_eq!(parse_duration("250ms").unwrap(), Duration::from_millis(250));
    assert_eq!(parse_duration("2m").unwrap(), Duration::from_secs(120));
    assert!(parse_duration("-1").is_err());
    assert!(parse_duration("fast").is_err());
}

#[test]
fn the_api_key_is_masked_everywhere_it_could_be_shown() {
    let s =
        LlmSettings::resolve(&layers(&[("SPECTRA_LLM_API_KEY", "sk-very-secret")], &[])).unwrap();
    assert!(!format!("{s:?}").contains("sk-very-secret"));
    assert!(
        !serde_json::to_string(&s.api_key.value)
            .unwrap()
            .contains("sk-very-secret")
    );
    assert!(!format!("{:?}", s.describe()).contains("sk-very-secret"));
    assert_eq!(s.api_key.value.expose(), "sk-very-secret");
}

#[test]
fn a_password_in_the_endpoint_url_is_never_shown() {
    let s = LlmSettings::resolve(&layers(
        &[(
            "SPECTRA_LLM_URL",
            "http://me:pa55word@127.0.0.1:8001/v1/chat/completions",
        )],
        &[],
    ))
    .unwrap();
    let shown = format!("{:?} {}", s.describe(), s.shown_url());
    assert!(
        !shown.contains("pa55word") && !shown.contains("me:"),
        "{shown}"
    );
    assert!(s.shown_url().starts_with("http://127.0.0.1:8001/"));
}
