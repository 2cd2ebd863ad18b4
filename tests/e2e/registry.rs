//! The registry: the shipped files, their schemas, `git spectra registry ...`, and validation
//! errors that name file, line and column.

use std::collections::BTreeMap;
use std::path::Path;

use serde_json::{Value, json};
use spectra::registry::{
    ACTIVITY_SCHEMA, CANONICAL_ACTIVITIES, EMBEDDED, PLAYBOOK_SCHEMA, RUNBOOK_SCHEMA, Registry,
    split_front_matter,
};

use crate::common::{TestRepo, json_lines, manifest_dir};

fn yaml_files(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "yaml"))
        .collect();
    files.sort();
    files
}

fn validator(schema: &str) -> jsonschema::Validator {
    jsonschema::validator_for(&serde_json::from_str(schema).unwrap()).unwrap()
}

#[test]
fn every_shipped_and_fixture_registry_file_validates_against_its_schema() {
    let activity = validator(ACTIVITY_SCHEMA);
    let playbook = validator(PLAYBOOK_SCHEMA);
    for base in ["registry", "tests/fixtures/registry"] {
        for (kind, schema) in [("activities", &activity), ("playbooks", &playbook)] {
            for file in yaml_files(&manifest_dir().join(base).join(kind)) {
                let document =
                    spectra::yaml::to_json(&std::fs::read_to_string(&file).unwrap()).unwrap();
                let errors: Vec<String> = schema
                    .iter_errors(&document)
                    .map(|e| format!("{}: {e}", e.instance_path()))
                    .collect();
                assert!(errors.is_empty(), "{}: {errors:#?}", file.display());
            }
        }
    }
}

/// The schema's errors for the front matter of the runbook `text`.
fn front_matter_errors(schema: &jsonschema::Validator, text: &str) -> Vec<String> {
    let split = split_front_matter(text).expect("front matter");
    let document = spectra::yaml::to_json(split.front_matter).unwrap();
    schema
        .iter_errors(&document)
        .map(|e| format!("{}: {e}", e.instance_path()))
        .collect()
}

#[test]
fn every_shipped_and_fixture_runbook_front_matter_validates_against_its_schema() {
    let schema = validator(RUNBOOK_SCHEMA);
    let mut runbooks = crate::runbooks::fixture::runbooks(crate::runbooks::fixture::COUNT);
    assert_eq!(runbooks.len(), 300);
    for base in ["registry", "tests/fixtures/registry"] {
        let dir = manifest_dir().join(base).join("playbooks");
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().is_some_and(|ext| ext == "md") {
                let text = std::fs::read_to_string(&path).unwrap();
                runbooks.push((path.display().to_string(), text));
            }
        }
    }
    for (name, text) in &runbooks {
        let errors = front_matter_errors(&schema, text);
        assert!(errors.is_empty(), "{name}: {errors:#?}");
    }
    // Not a schema that accepts anything: an unknown field, or no `name`, is refused.
    let (_, text) = &runbooks[0];
    let unknown = text.replacen("\ndomain:", "\nowner: platform\ndomain:", 1);
    assert!(!front_matter_errors(&schema, &unknown).is_empty());
    let name = text.lines().find(|l| l.starts_with("name: ")).unwrap();
    let nameless = text.replacen(&format!("{name}\n"), "", 1);
    assert!(!front_matter_errors(&schema, &nameless).is_empty());
}

#[test]
fn the_embedded_list_is_exactly_the_files_in_registry() {
    let templates = std::fs::read_dir(manifest_dir().join("registry/activities"))
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.to_string_lossy().ends_with(".md.j2"));
    let mut on_disk: Vec<String> = ["activities", "playbooks"]
        .iter()
        .flat_map(|kind| yaml_files(&manifest_dir().join("registry").join(kind)))
        .chain(templates)
        .map(|path| {
            path.strip_prefix(manifest_dir())
                .unwrap()
                .to_string_lossy()
                .into_owned()
        })
        .collect();
    let mut embedded: Vec<String> = EMBEDDED.iter().map(|(path, _)| path.to_string()).collect();
    on_disk.sort();
    embedded.sort();
    assert_eq!(
        embedded, on_disk,
        "update EMBEDDED in src/registry/source.rs"
    );
}

#[test]
fn the_twelve_activities_come_in_canonical_order() {
    let registry = Registry::builtin().unwrap();
    let names: Vec<&str> = registry
        .activities()
        .iter()
        .map(|a| a.name.as_str())
        .collect();
    assert_eq!(names, CANONICAL_ACTIVITIES);
    let orders: Vec<u32> = registry.activities().iter().map(|a| a.order).collect();
    assert_eq!(orders, (1..=12).collect::<Vec<_>>());
}

fn keys(schema: &Value, pointer: &str) -> Vec<String> {
    let properties = schema
        .pointer(pointer)
        .unwrap_or_else(|| panic!("{pointer}"))
        .as_object()
        .unwrap();
    let mut keys: Vec<String> = properties.keys().cloned().collect();
    keys.sort();
    keys
}

fn sorted(names: &[&str]) -> Vec<String> {
    let mut names: Vec<String> = names.iter().map(ToString::to_string).collect();
    names.sort();
    names
}

#[test]
fn discover_carries_its_known_keys_and_eleven_quality_gates() {
    let registry = Registry::builtin().unwrap();
    let schema = registry.decision_schema("discover").unwrap();
    assert_eq!(
        keys(&schema, "/properties"),
        sorted(&[
            "service_name",
            "problem",
            "current_state",
            "desired_state",
            "stakeholders",
            "constraints",
            "requirements",
            "risks",
            "alternatives",
            "idea",
            "validation",
            "recommended_tools",
            "next_steps",
            "playbooks",
        ])
    );
    let nested: BTreeMap<&str, &[&str]> = BTreeMap::from([
        (
            "problem",
            &["statement", "impact", "root_cause", "who_has_it"][..],
        ),
        (
            "current_state",
            &["what_exists", "pain_points", "gaps", "blockers"][..],
        ),
        (
            "desired_state",
            &["vision", "success_criteria", "goals"][..],
        ),
        (
            "stakeholders",
            &["users", "decision_makers", "beneficiaries"][..],
        ),
        (
            "constraints",
            &["technical", "business", "time", "budget", "compliance"][..],
        ),
        ("requirements", &["functional", "non_functional"][..]),
        ("risks", &["technical", "business", "implementation"][..]),
        ("alternatives", &["other_options", "why_this_solution"][..]),
        ("idea", &["name", "type", "priority"][..]),
        (
            "validation",
            &["problem_solved", "reasoning", "confidence", "assumptions"][..],
        ),
    ]);
    for (key, expected) in nested {
        assert_eq!(
            keys(&schema, &format!("/properties/{key}/properties")),
            sorted(expected),
            "{key}"
        );
    }
    let gates: Vec<&str> = registry
        .activity("discover")
        .unwrap()
        .quality_gates
        .iter()
        .map(|g| g.name.as_str())
        .collect();
    assert_eq!(
        gates,
        [
            "problem_identified",
            "idea_generated",
            "problem_idea_mapped",
            "service_name_valid",
            "current_state_understood",
            "desired_state_defined",
            "stakeholders_identified",
            "constraints_documented",
            "risks_assessed",
            "validation_complete",
            "no_duplicate_service",
        ]
    );
}

#[test]
fn assess_plan_and_design_carry_their_known_keys() {
    let registry = Registry::builtin().unwrap();
    let assess = registry.decision_schema("assess").unwrap();
    let levels = json!([
        "L1-MVP",
        "L2-Alpha",
        "L3-Beta",
        "L4-Live",
        "L5-Reactive",
        "L6-Proactive",
        "L7-Autonomous"
    ]);
    assert_eq!(
        assess.pointer("/properties/current_maturity/enum"),
        Some(&levels)
    );
    assert_eq!(
        assess.pointer("/properties/target_maturity/enum"),
        Some(&levels)
    );
    assert_eq!(
        keys(&assess, "/properties/stage_readiness/properties"),
        sorted(&CANONICAL_ACTIVITIES)
    );
    assert_eq!(
        assess.pointer("/properties/stage_readiness/properties/build/maximum"),
        Some(&json!(100))
    );
    for key in ["gap_analysis", "readiness_summary"] {
        assert!(
            assess["properties"].get(key).is_some(),
            "assess lacks {key}"
        );
    }
    let plan = registry.decision_schema("plan").unwrap();
    for key in [
        "moscow_priorities",
        "requirements_breakdown",
        "milestones",
        "backlog",
    ] {
        assert!(plan["properties"].get(key).is_some(), "plan lacks {key}");
    }
    let design = registry.decision_schema("design").unwrap();
    for key in [
        "architecture",
        "specification",
        "service_structure",
        "design_artifacts",
    ] {
        assert!(
            design["properties"].get(key).is_some(),
            "design lacks {key}"
        );
    }
}

/// Every object closed and every property required: what OpenAI's strict structured outputs
/// accept. Walks the whole schema, the `playbooks` choices included.
fn assert_strict(schema: &Value, at: &str) {
    match schema {
        Value::Object(map) => {
            if let Some(Value::Object(properties)) = map.get("properties") {
                assert_eq!(
                    map.get("additionalProperties"),
                    Some(&json!(false)),
                    "{at} is not closed"
                );
                let mut required: Vec<&str> = map["required"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|v| v.as_str().unwrap())
                    .collect();
                let mut declared: Vec<&str> = properties.keys().map(String::as_str).collect();
                required.sort_unstable();
                declared.sort_unstable();
                assert_eq!(required, declared, "{at}: every property must be required");
            }
            for (key, value) in map {
                assert_strict(value, &format!("{at}/{key}"));
            }
        }
        Value::Array(items) => {
            for (index, item) in items.iter().enumerate() {
                assert_strict(item, &format!("{at}/{index}"));
            }
        }
        _ => {}
    }
}

#[test]
fn decision_schemas_are_strict_and_enumerate_only_allowed_playbooks() {
    let registry = Registry::builtin().unwrap();
    for activity in registry.activities() {
        let schema = registry.decision_schema(&activity.name).unwrap();
        spectra::registry::compile_schema(&schema).unwrap();
        assert_strict(&schema, &activity.name);
        let offered: Vec<&str> = schema
            .pointer("/properties/playbooks/items/anyOf")
            .unwrap()
            .as_array()
            .unwrap()
            .iter()
            .map(|choice| {
                choice
                    .pointer("/properties/id/enum/0")
                    .unwrap()
                    .as_str()
                    .unwrap()
            })
            .collect();
        let allowed: Vec<&str> = registry
            .allowed_playbooks(&activity.name)
            .iter()
            .map(|p| p.id.as_str())
            .collect();
        assert_eq!(offered, allowed, "{}", activity.name);
    }
    assert!(registry.is_allowed("discover", "catalog.lookup"));
    assert!(!registry.is_allowed("discover", "branch.create"));
}

#[test]
fn quality_gates_pass_on_a_complete_discover_decision_with_observed_facts() {
    let registry = Registry::builtin().unwrap();
    let decision = json!({
        "service_name": "log-shipper",
        "problem": {"statement": "Logs are lost", "impact": "Outages go undiagnosed", "root_cause": "No shipping", "who_has_it": ["SRE"]},
        "current_state": {"what_exists": ["local files"], "pain_points": ["rotation deletes logs"], "gaps": [], "blockers": []},
        "desired_state": {"vision": "Central logs", "success_criteria": ["99% shipped"], "goals": []},
        "stakeholders": {"users": ["SRE"], "decision_makers": ["CTO"], "beneficiaries": []},
        "constraints": {"technical": [], "business": [], "time": ["Q3"], "budget": [], "compliance": []},
        "requirements": {"functional": ["ship"], "non_functional": []},
        "risks": {"technical": ["volume"], "business": [], "implementation": []},
        "alternatives": {"other_options": ["vendor"], "why_this_solution": "cheaper"},
        "idea": {"name": "Log shipper", "type": "new_service", "priority": "high"},
        "validation": {"problem_solved": true, "reasoning": "ships logs", "confidence": 80, "assumptions": []},
        "recommended_tools": [], "next_steps": [], "playbooks": []
    });
    let schema = registry.decision_schema("discover").unwrap();
    assert!(jsonschema::is_valid(&schema, &decision));
    let facts = BTreeMap::from([
        ("service_name_valid".to_string(), true),
        ("no_duplicate_service".to_string(), true),
    ]);
    for gate in &registry.activity("discover").unwrap().quality_gates {
        let result = gate.evaluate(&decision, &facts);
        assert!(result.passed, "{}: {:?}", gate.name, result.failures);
    }
    let duplicate = BTreeMap::from([("no_duplicate_service".to_string(), false)]);
    let gate = registry
        .activity("discover")
        .unwrap()
        .quality_gates
        .iter()
        .find(|g| g.name == "no_duplicate_service")
        .unwrap();
    assert_eq!(
        gate.evaluate(&decision, &duplicate).failures,
        ["fact no_duplicate_service is false"]
    );
}

#[test]
fn registry_validate_list_and_show_in_a_clean_repository() {
    let repo = TestRepo::new();
    let run = repo.spectra(&["registry", "validate"]).success();
    assert_eq!(run.stdout, "registry ok: 12 activities, 11 playbooks\n");

    let lines = json_lines(
        &repo
            .spectra(&["registry", "list", "--format", "json"])
            .success()
            .stdout,
    );
    assert_eq!(lines.len(), 23);
    let activities: Vec<&str> = lines
        .iter()
        .filter(|l| l["kind"] == "activity")
        .map(|l| l["name"].as_str().unwrap())
        .collect();
    assert_eq!(activities, CANONICAL_ACTIVITIES);
    let playbooks: Vec<&str> = lines
        .iter()
        .filter(|l| l["kind"] == "playbook")
        .map(|l| l["id"].as_str().unwrap())
        .collect();
    assert_eq!(
        playbooks,
        [
            "branch.create",
            "catalog.lookup",
            "changes.apply",
            "deploy.command",
            "monitor.command",
            "provision.command",
            "release.tag",
            "repo.inventory",
            "service.probe",
            "spec.write",
            "tests.run"
        ]
    );

    let run = repo
        .spectra(&["registry", "show", "discover", "--format", "json"])
        .success();
    let shown: Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(
        shown["allowed_playbooks"],
        json!(["catalog.lookup", "repo.inventory", "spec.write"])
    );
    assert!(
        shown
            .pointer("/decision_schema/properties/playbooks")
            .is_some()
    );

    let run = repo.spectra(&["registry", "show", "tests.run"]).success();
    assert!(
        run.stdout.starts_with("playbook tests.run (domain testing"),
        "{run:#?}"
    );

    let run = repo.spectra(&["registry", "show", "nope"]).code(1);
    assert!(
        run.stderr
            .contains("error: no activity or playbook with id `nope`"),
        "{run:#?}"
    );
    assert!(run.stderr.contains("hint: "), "{run:#?}");
}

#[test]
fn a_repository_entry_overrides_the_builtin_one() {
    let repo = TestRepo::new();
    let original =
        std::fs::read_to_string(manifest_dir().join("registry/playbooks/catalog.lookup.yaml"))
            .unwrap();
    let changed = original.replace("timeout: 30", "timeout: 5");
    repo.write(".spectra/registry/playbooks/catalog.yaml", &changed);
    let registry = Registry::load(repo.root()).unwrap();
    let playbook = registry.playbook("catalog.lookup").unwrap();
    assert_eq!(playbook.timeout, 5.0);
    assert_eq!(
        playbook.origin.file,
        ".spectra/registry/playbooks/catalog.yaml"
    );
    let run = repo.spectra(&["registry", "list"]).success();
    assert!(run.stdout.contains("(from .spectra/registry)"), "{run:#?}");
}

const EXTRA_ACTIVITY: &str = "\
name: extra
order: 50
description: Names a playbook that does not exist.
prompts: {system: s, user: u}
decision: {type: object, properties: {}, required: [], additionalProperties: false}
playbooks: [no.such.playbook, domain:dup]
token_budget: 10
";

fn playbook_yaml(id: &str, extra: &str) -> String {
    format!(
        "id: {id}\nactivities: [extra]\ndomain: dup\ndescription: A test playbook.\n{extra}reversible: true\nidempotent: true\ntimeout: 5\n"
    )
}

#[test]
fn every_kind_of_broken_file_is_reported_with_file_line_and_column() {
    let repo = TestRepo::new();
    repo.write(".spectra/registry/activities/extra.yaml", EXTRA_ACTIVITY);
    repo.write(
        ".spectra/registry/playbooks/a.yaml",
        &playbook_yaml("dup.play", ""),
    );
    repo.write(
        ".spectra/registry/playbooks/b.yaml",
        &playbook_yaml("dup.play", ""),
    );
    repo.write(
        ".spectra/registry/playbooks/placeholder.yaml",
        &playbook_yaml("bad.placeholder", "run: [echo, \"{missing}\"]\n"),
    );
    repo.write(
        ".spectra/registry/playbooks/schema.yaml",
        &playbook_yaml(
            "bad.schema",
            "inputs: {type: object, properties: {n: {type: integr}}}\n",
        ),
    );
    repo.write(
        ".spectra/registry/playbooks/field.yaml",
        &playbook_yaml("bad.field", "timeoutt: 5\n"),
    );
    repo.write(".spectra/registry/playbooks/syntax.yaml", "id: [unclosed\n");
    repo.write(".spectra/registry/notes.txt", "stray\n");

    let run = repo.spectra(&["registry", "validate"]).code(1);
    let stdout = &run.stdout;
    let expected = [
        ".spectra/registry/activities/extra.yaml:6:13: unknown playbook `no.such.playbook`",
        ".spectra/registry/playbooks/b.yaml:1:5: duplicate playbook id `dup.play`, already defined in .spectra/registry/playbooks/a.yaml",
        ".spectra/registry/playbooks/placeholder.yaml:5:13: placeholder `{missing}` in `run` names no input",
        ".spectra/registry/playbooks/schema.yaml:5:9: invalid JSON Schema for `inputs`:",
        ".spectra/registry/playbooks/field.yaml:5:1: unknown field `timeoutt`, expected one of",
        ".spectra/registry/playbooks/syntax.yaml:1:",
        ".spectra/registry/notes.txt: unexpected entry",
    ];
    for line in expected {
        assert!(
            stdout.lines().any(|l| l.starts_with(line)),
            "missing `{line}` in\n{stdout}"
        );
    }
    assert!(
        run.stderr.starts_with("error: 7 problems in the registry"),
        "{run:#?}"
    );
    assert!(run.stderr.contains("hint: "), "{run:#?}");

    let run = repo
        .spectra(&["registry", "validate", "--format", "json"])
        .code(1);
    let first = &json_lines(&run.stdout)[0];
    assert_eq!(first["file"], ".spectra/registry/activities/extra.yaml");
    assert_eq!(first["position"], json!({"line": 6, "column": 13}));

    // Any command that needs the registry refuses a broken one, naming the place.
    let run = repo.spectra(&["registry", "list"]).code(1);
    assert!(
        run.stderr
            .contains("error: invalid registry: .spectra/registry/"),
        "{run:#?}"
    );
    assert!(
        run.stderr
            .contains("hint: run `git spectra registry validate`"),
        "{run:#?}"
    );
}

#[test]
fn one_sided_references_and_bad_templates_are_problems() {
    let repo = TestRepo::new();
    // Lists an activity that does not name it, and uses an unclosed brace.
    repo.write(
        ".spectra/registry/playbooks/stray.yaml",
        "id: stray\nactivities: [deploy, nowhere]\ndomain: misc\ndescription: x\nrun: [echo, \"{oops\"]\nreversible: false\nundo: [echo]\nidempotent: true\ntimeout: 0\n",
    );
    let error = Registry::load(repo.root()).unwrap_err();
    let messages: Vec<String> = error.problems().iter().map(ToString::to_string).collect();
    let file = ".spectra/registry/playbooks/stray.yaml";
    for expected in [
        format!(
            "{file}:2:14: activity `deploy` does not name playbook `stray` or domain `misc` in its playbooks"
        ),
        format!("{file}:2:22: unknown activity `nowhere`"),
        format!("{file}:5:13: unclosed `{{` in `{{oops`"),
        format!("{file}:1:5: `undo` is given but `reversible` is false"),
        format!("{file}:9:10: timeout must be above 0"),
    ] {
        assert!(
            messages.iter().any(|m| m.starts_with(&expected)),
            "missing `{expected}` in {messages:#?}"
        );
    }
}

#[test]
fn the_registry_cache_changes_no_output_and_hides_no_override() {
    let repo = TestRepo::new();
    let cache = repo.root().join(".git/spectra/cache/registry.json");
    let commands: [&[&str]; 5] = [
        &["registry", "list"],
        &["registry", "list", "--format", "json"],
        &["registry", "show", "discover", "--format", "json"],
        &["registry", "show", "catalog.lookup"],
        &["registry", "validate"],
    ];
    let outputs = || commands.map(|args| repo.spectra(args).success().stdout);
    let without_cache = || {
        let _ = std::fs::remove_file(&cache);
        commands.map(|args| repo.spectra(args).success().stdout)
    };

    assert!(!cache.exists());
    let cold = outputs();
    assert!(cache.exists(), "the first load writes the cache");
    assert_eq!(outputs(), cold, "from the cache");
    assert_eq!(without_cache(), cold, "after deleting the cache");

    // An override added after the cache was written is seen, and the cache is rewritten.
    outputs();
    let old_cache = std::fs::read(&cache).unwrap();
    let original =
        std::fs::read_to_string(manifest_dir().join("registry/playbooks/catalog.lookup.yaml"))
            .unwrap();
    repo.write(
        ".spectra/registry/playbooks/catalog.yaml",
        &original.replace("timeout: 30", "timeout: 5"),
    );
    let overridden = outputs();
    assert!(
        overridden[0].contains("(from .spectra/registry)"),
        "{}",
        overridden[0]
    );
    assert!(overridden[3].contains("timeout: 5s\n"), "{}", overridden[3]);
    assert_ne!(overridden, cold);
    assert_ne!(std::fs::read(&cache).unwrap(), old_cache);
    assert_eq!(outputs(), overridden, "from the new cache");
    assert_eq!(without_cache(), overridden, "after deleting the new cache");

    // A broken override is reported with its place although a cache from before exists, and
    // the cache is left as it was.
    outputs();
    let good_cache = std::fs::read(&cache).unwrap();
    repo.write(
        ".spectra/registry/playbooks/broken.yaml",
        "id: bad.field\nactivities: [plan]\ndomain: x\ndescription: d\ntimeoutt: 5\nreversible: false\nidempotent: true\ntimeout: 5\n",
    );
    let place = ".spectra/registry/playbooks/broken.yaml:5:1: unknown field `timeoutt`";
    let run = repo.spectra(&["registry", "list"]).code(1);
    assert!(run.stderr.contains(place), "{run:#?}");
    let run = repo.spectra(&["registry", "validate"]).code(1);
    assert!(run.stdout.starts_with(place), "{run:#?}");
    assert_eq!(std::fs::read(&cache).unwrap(), good_cache);

    // So is a stray file, which no registry file's text can show.
    std::fs::remove_file(repo.root().join(".spectra/registry/playbooks/broken.yaml")).unwrap();
    assert_eq!(outputs(), overridden);
    repo.write(".spectra/registry/notes.txt", "stray\n");
    let run = repo.spectra(&["registry", "list"]).code(1);
    assert!(
        run.stderr
            .contains(".spectra/registry/notes.txt: unexpected entry"),
        "{run:#?}"
    );
}

#[test]
fn a_read_only_git_dir_only_costs_the_cache() {
    let repo = TestRepo::new();
    let listed = repo.spectra(&["registry", "list"]).success().stdout;
    let cache_dir = repo.root().join(".git/spectra/cache");
    std::fs::remove_dir_all(&cache_dir).unwrap();
    // A file where the cache directory would be: the cache cannot be written.
    std::fs::write(&cache_dir, "").unwrap();
    let run = repo.spectra(&["registry", "list"]).success();
    assert_eq!(run.stdout, listed);
    assert_eq!(run.stderr, "", "{run:#?}");
}

#[test]
fn registry_validate_names_the_place_of_a_broken_document_template() {
    let repo = TestRepo::new();
    repo.write(
        ".spectra/registry/activities/plan.md.j2",
        "# Plan for {{ service }}\n\n{% for item in decision.backlog %}\n- {{ item.title }}\n",
    );
    repo.write(
        ".spectra/registry/activities/design.md.j2",
        "# Design\n\n{{ decision.architecture | no_such_filter }}\n",
    );
    repo.write(".spectra/registry/activities/nowhere.md.j2", "# x\n");
    let run = repo.spectra(&["registry", "validate"]).code(1);
    let expected = [
        ".spectra/registry/activities/design.md.j2:3:28: document template: unknown filter: filter no_such_filter is unknown",
        ".spectra/registry/activities/nowhere.md.j2: document template for `nowhere`, which is not an activity",
        ".spectra/registry/activities/plan.md.j2:4:17: document template: syntax error: unexpected end of input",
    ];
    for line in expected {
        assert!(
            run.stdout.lines().any(|l| l.starts_with(line)),
            "missing `{line}` in\n{}",
            run.stdout
        );
    }
    assert!(
        run.stderr.starts_with("error: 3 problems in the registry"),
        "{run:#?}"
    );

    // A sound override is used: `registry show` names its file.
    std::fs::remove_file(
        repo.root()
            .join(".spectra/registry/activities/design.md.j2"),
    )
    .unwrap();
    std::fs::remove_file(
        repo.root()
            .join(".spectra/registry/activities/nowhere.md.j2"),
    )
    .unwrap();
    repo.write(
        ".spectra/registry/activities/plan.md.j2",
        "# Plan for {{ service }}\n\n{{ decision.backlog | table(\"title\") }}\n",
    );
    repo.spectra(&["registry", "validate"]).success();
    let run = repo
        .spectra(&["registry", "show", "plan", "--format", "json"])
        .success();
    let shown = &json_lines(&run.stdout)[0];
    assert_eq!(
        shown["document"]["file"],
        ".spectra/registry/activities/plan.md.j2"
    );
}

/// An activity whose decision leaves a list or a text unbounded, and one with constraints a
/// grammar-constrained server does not enforce.
const UNBOUNDED_ACTIVITY: &str = "\
name: triage
order: 40
description: Sort an incident.
prompts: {system: s, user: u}
decision:
  type: object
  additionalProperties: false
  required: [summary, steps]
  properties:
    summary: {type: string}
    steps:
      type: array
      items: {type: string, maxLength: 100}
token_budget: 512
";

const UNENFORCED_ACTIVITY: &str = "\
name: triage
order: 40
description: Sort an incident.
prompts: {system: s, user: u}
decision:
  type: object
  additionalProperties: false
  required: [ticket, certainty]
  properties:
    ticket: {type: string, maxLength: 12, pattern: \"^[A-Z]+-[0-9]+$\"}
    certainty: {type: number, minimum: 0, maximum: 1}
token_budget: 512
";

/// Issue 20: a repository activity must bound every array and string of its decision, and is
/// refused with the place of each unbounded one.
#[test]
fn registry_validate_refuses_an_unbounded_decision_schema_with_its_place() {
    let repo = TestRepo::new();
    repo.write(
        ".spectra/registry/activities/triage.yaml",
        UNBOUNDED_ACTIVITY,
    );
    let run = repo.spectra(&["registry", "validate"]).code(1);
    let file = ".spectra/registry/activities/triage.yaml";
    let expected = [
        format!("{file}:10:5: `decision` at `/properties/summary` is a string without `maxLength`"),
        format!("{file}:11:5: `decision` at `/properties/steps` is an array without `maxItems`"),
    ];
    for line in &expected {
        assert!(
            run.stdout.lines().any(|l| l.starts_with(line.as_str())),
            "missing `{line}` in\n{}",
            run.stdout
        );
    }
    assert!(
        run.stderr.starts_with("error: 2 problems in the registry"),
        "{run:#?}"
    );
}

/// Issue 20: constraints a grammar-constrained server does not enforce are warnings, printed
/// with their place; validation still passes.
#[test]
fn registry_validate_warns_about_constraints_a_grammar_does_not_enforce() {
    let repo = TestRepo::new();
    repo.write(
        ".spectra/registry/activities/triage.yaml",
        UNENFORCED_ACTIVITY,
    );
    let run = repo.spectra(&["registry", "validate"]).success();
    let file = ".spectra/registry/activities/triage.yaml";
    let warnings: Vec<&str> = run
        .stdout
        .lines()
        .filter(|l| l.starts_with("warning: "))
        .collect();
    let expected = [
        format!("warning: {file}:10:5: `decision` at `/properties/ticket` uses `pattern`"),
        format!(
            "warning: {file}:11:5: `decision` at `/properties/certainty` puts `maximum` on a `number`"
        ),
        format!(
            "warning: {file}:11:5: `decision` at `/properties/certainty` puts `minimum` on a `number`"
        ),
    ];
    assert_eq!(warnings.len(), expected.len(), "{run:#?}");
    for (warning, expected) in warnings.iter().zip(&expected) {
        assert!(warning.starts_with(expected.as_str()), "{warning}");
    }
    assert!(
        run.stdout
            .lines()
            .last()
            .unwrap()
            .starts_with("registry ok:"),
        "{run:#?}"
    );

    let run = repo
        .spectra(&["registry", "validate", "--format", "json"])
        .success();
    let lines = json_lines(&run.stdout);
    let levels: Vec<&Value> = lines.iter().map(|line| &line["level"]).collect();
    assert_eq!(levels[..3], [&json!("warning"); 3], "{run:#?}");
    assert_eq!(lines[0]["file"], file);
    assert_eq!(lines[3]["ok"], true);
}

#[test]
fn an_effect_tag_or_probe_without_its_playbook_or_a_string_version_is_a_problem() {
    let builtin = |activity: &str| {
        std::fs::read_to_string(manifest_dir().join(format!("registry/activities/{activity}.yaml")))
            .unwrap()
    };
    let problems = |repo: &TestRepo| -> Vec<String> {
        Registry::load(repo.root())
            .unwrap_err()
            .problems()
            .iter()
            .map(ToString::to_string)
            .collect()
    };
    let deploy = ".spectra/registry/activities/deploy.yaml";
    let repo = TestRepo::new();
    repo.write(
        deploy,
        &builtin("deploy").replace("deploy.command, release.tag]", "deploy.command]"),
    );
    let found = problems(&repo);
    assert!(
        found.iter().any(|m| m.starts_with(&format!(
            "{deploy}:81:8: effect: `tag` needs playbook `release.tag` in the playbooks of `deploy`"
        ))),
        "{found:#?}"
    );

    let repo = TestRepo::new();
    repo.write(
        deploy,
        &builtin("deploy").replace("tag: /release/version", "tag: /release/notes/0"),
    );
    let found = problems(&repo);
    assert!(
        found.iter().any(|m| m.contains(
            "effect: `tag` points at `/release/notes/0`, which is not a string property of the decision schema"
        )),
        "{found:#?}"
    );

    let repo = TestRepo::new();
    let monitor = ".spectra/registry/activities/monitor.yaml";
    repo.write(
        monitor,
        &builtin("monitor").replace("monitor.command, service.probe]", "monitor.command]"),
    );
    let found = problems(&repo);
    assert!(
        found.iter().any(|m| m.contains(
            "effect: `probe` needs playbook `service.probe` in the playbooks of `monitor`"
        )),
        "{found:#?}"
    );
}
