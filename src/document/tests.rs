//! Documents: rendering, reading back, and one snapshot per built-in activity template, rendered
//! from the realistic decision in `tests/fixtures/decisions/<activity>.json`.
//!
//! The templates and schemas are read from `registry/activities/` on disk, the same files the
//! registry embeds (a test of the registry checks that list against the directory).

use std::path::{Path, PathBuf};

use super::*;
use serde_json::json;

fn manifest_dir() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// The activities that ship a document template, by name, sorted.
fn templated_activities() -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(manifest_dir().join("registry/activities"))
        .unwrap()
        .filter_map(|entry| {
            let name = entry.unwrap().file_name().to_string_lossy().into_owned();
            name.strip_suffix(".md.j2").map(str::to_string)
        })
        .collect();
    names.sort();
    names
}

fn read(relative: &str) -> String {
    let path: PathBuf = manifest_dir().join(relative);
    std::fs::read_to_string(&path).unwrap_or_else(|error| panic!("{}: {error}", path.display()))
}

fn template_of(activity: &str) -> Template {
    let file = format!("registry/activities/{activity}.md.j2");
    Template::new(&file, read(&file))
}

fn fixture(activity: &str) -> Value {
    serde_json::from_str(&read(&format!("tests/fixtures/decisions/{activity}.json"))).unwrap()
}

/// The activity's YAML file as JSON.
fn definition(activity: &str) -> Value {
    crate::yaml::to_json(&read(&format!("registry/activities/{activity}.yaml"))).unwrap()
}

/// A fixed front matter for `activity`: every gate of its definition passed and required, but
/// the last, which is advisory and failed, so the table shows both.
fn front_for(activity: &str) -> FrontMatter {
    let names: Vec<String> = definition(activity)["quality_gates"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|gate| gate["name"].as_str().map(str::to_string))
        .collect();
    let last = names.len().saturating_sub(1);
    let gates = names
        .into_iter()
        .enumerate()
        .map(|(index, name)| {
            let (result, level) = if index == last {
                ("failed", "advisory")
            } else {
                ("passed", "required")
            };
            (name, gate(result, level))
        })
        .collect();
    FrontMatter {
        service: "log-search".into(),
        activity: activity.into(),
        run: "0190c0de-0000-7000-8000-000000000001".into(),
        event: "3f1c2a9e8b7d6c5f4e3d2c1b0a9f8e7d6c5b4a39".into(),
        outcome: "succeeded".into(),
        gates,
        decided_by: "llm".into(),
        model: Some("gpt-4o-mini".into()),
    }
}

fn gate(result: &str, level: &str) -> GateEntry {
    GateEntry {
        result: result.into(),
        level: level.into(),
    }
}

#[test]
fn every_activity_has_a_template_and_a_fixture() {
    let activities = templated_activities();
    assert_eq!(activities.len(), 12, "{activities:?}");
    for activity in &activities {
        assert!(
            manifest_dir()
                .join(format!("tests/fixtures/decisions/{activity}.json"))
                .exists(),
            "no fixture for {activity}"
        );
    }
}

#[test]
fn every_fixture_is_a_valid_decision_of_its_activity() {
    for activity in templated_activities() {
        let schema = &definition(&activity)["decision"];
        let validator = jsonschema::validator_for(schema).unwrap();
        let decision = fixture(&activity);
        let errors: Vec<String> = validator
            .iter_errors(&decision)
            .map(|error| format!("{}: {error}", error.instance_path()))
            .collect();
        assert!(errors.is_empty(), "{activity}: {errors:#?}");
    }
}

#[test]
fn every_activity_renders_its_fixture_as_in_its_snapshot() {
    for activity in templated_activities() {
        let text = render(
            &template_of(&activity),
            &front_for(&activity),
            &fixture(&activity),
        )
        .unwrap_or_else(|error| panic!("{activity}: {error}"));
        insta::assert_snapshot!(activity.as_str(), text);
    }
}

#[test]
fn the_generic_template_renders_any_decision_as_in_its_snapshot() {
    let text = render(Template::fallback(), &front_for("plan"), &fixture("plan")).unwrap();
    insta::assert_snapshot!("fallback_plan", text);
}

#[test]
fn table_cells_escape_pipes_and_newlines() {
    let text = render(
        &template_of("design"),
        &front_for("design"),
        &fixture("design"),
    )
    .unwrap();
    assert!(
        text.contains("| Index | Store and index log streams \\| 30 days | Loki"),
        "{text}"
    );
    assert!(
        text.contains("| Query UI | Search, saved queries,<br>shared links | Grafana |"),
        "{text}"
    );
}

#[test]
fn rendering_is_deterministic() {
    for activity in templated_activities() {
        let once = render(
            &template_of(&activity),
            &front_for(&activity),
            &fixture(&activity),
        );
        let again = render(
            &template_of(&activity),
            &front_for(&activity),
            &fixture(&activity),
        );
        assert_eq!(once.unwrap(), again.unwrap(), "{activity}");
    }
}

#[test]
fn documents_end_with_exactly_one_newline() {
    for template in [
        template_of("build"),
        Template::new("t.md.j2", "body\n\n\n\n"),
    ] {
        let text = render(&template, &front_for("build"), &fixture("build")).unwrap();
        assert!(text.ends_with('\n') && !text.ends_with("\n\n"), "{text:?}");
    }
}

#[test]
fn parse_reads_back_the_front_matter_render_wrote() {
    for activity in templated_activities() {
        let mut front = front_for(&activity);
        let text = render(&template_of(&activity), &front, &fixture(&activity)).unwrap();
        let (read, body) = parse(&text).unwrap();
        assert_eq!(read, front);
        assert!(body.starts_with("# "), "{activity}: {body}");

        front.model = None;
        front.decided_by = "offline".into();
        let text = render(&template_of(&activity), &front, &fixture(&activity)).unwrap();
        assert!(!text.contains("model:"), "{text}");
        assert_eq!(parse(&text).unwrap().0, front);
    }
}

#[test]
fn template_syntax_in_values_is_printed_not_evaluated() {
    let mut front = front_for("build");
    front.model = Some("evil {{ service }} {% if true %}yes{% endif %}".into());
    let mut decision = fixture("build");
    decision["branch"] = json!("{{ activity }}{% for x in [1] %}loop{% endfor %}");
    let text = render(&template_of("build"), &front, &decision).unwrap();
    assert!(
        text.contains("(evil {{ service }} {% if true %}yes{% endif %})"),
        "{text}"
    );
    assert!(
        text.contains("Branch: {{ activity }}{% for x in [1] %}loop{% endfor %}"),
        "{text}"
    );
    assert_eq!(parse(&text).unwrap().0, front);
}

#[test]
fn a_line_of_dashes_in_a_value_does_not_end_the_front_matter() {
    let mut front = front_for("deploy");
    front.model = Some("a\n---\nb".into());
    let mut decision = fixture("deploy");
    decision["release"]["notes"] = json!("before\n---\nafter");
    let text = render(&template_of("deploy"), &front, &decision).unwrap();
    let (read, body) = parse(&text).unwrap();
    assert_eq!(read, front);
    assert!(body.starts_with("# Deploy — log-search\n"), "{body}");
    assert!(body.contains("before\n---\nafter"), "{body}");
}

#[test]
fn the_playbooks_chosen_are_not_part_of_the_document() {
    let template = Template::new(
        "t.md.j2",
        "{{ decision.playbooks | length }}|{{ decision.x }}",
    );
    let decision = json!({"x": "kept", "playbooks": [{"id": "repo.inventory"}]});
    let text = render(&template, &front_for("plan"), &decision).unwrap();
    assert!(text.ends_with("---\n\n0|kept\n"), "{text}");
}

#[test]
fn a_decision_missing_fields_still_renders() {
    for activity in templated_activities() {
        let text = render(&template_of(&activity), &front_for(&activity), &json!({}))
            .unwrap_or_else(|error| panic!("{activity}: {error}"));
        assert!(text.contains("_none_"), "{activity}: {text}");
    }
    let text = render(Template::fallback(), &front_for("plan"), &json!({})).unwrap();
    assert!(text.contains("## Gates"), "{text}");
}

#[test]
fn template_errors_name_the_file_and_line() {
    let broken = Template::new(
        ".spectra/registry/activities/plan.md.j2",
        "# x\n\n{% if %}\n",
    );
    let error = broken.check().unwrap_err();
    assert!(
        error
            .to_string()
            .starts_with(".spectra/registry/activities/plan.md.j2:3: syntax error"),
        "{error}"
    );
    let error = render(&broken, &front_for("plan"), &json!({})).unwrap_err();
    assert!(error.to_string().contains("plan.md.j2:3:"), "{error}");

    // An unknown filter parses, and fails only when rendered: why `registry validate` renders
    // every template as well as parsing it.
    let failing = Template::new("f.md.j2", "ok\n{{ decision.items | no_such_filter }}\n");
    assert!(failing.check().is_ok());
    let error = render(&failing, &front_for("plan"), &json!({})).unwrap_err();
    assert!(
        error.to_string().starts_with("f.md.j2:2: unknown filter"),
        "{error}"
    );
}

#[test]
fn every_built_in_template_parses() {
    Template::fallback().check().unwrap();
    for activity in templated_activities() {
        template_of(&activity).check().unwrap();
    }
}

#[test]
fn text_that_is_not_a_document_is_refused() {
    assert!(parse("# no front matter\n").is_err());
    assert!(parse("---\nservice: x\n").is_err());
    assert!(parse("---\nservice: [\n---\n").is_err());
}

#[test]
fn the_path_is_per_service_and_activity() {
    assert_eq!(
        path("log-search", "design"),
        ".spectra/log-search/design.md"
    );
}
