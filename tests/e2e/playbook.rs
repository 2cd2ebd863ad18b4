//! The playbook runner against fixture playbooks and the built-in ones, in temporary repositories.

use serde_json::{Value, json};
use spectra::playbook::{Action, Outcome, PlaybookError, Report, Request, Runner};
use spectra::registry::Registry;

use crate::common::{TestRepo, pinned_env, spectra_bin};

/// A repository holding the fixture registry and scripts.
fn fixture_repo() -> TestRepo {
    let repo = TestRepo::new();
    repo.copy_fixture("registry", ".spectra/registry");
    repo.copy_fixture("scripts", "scripts");
    repo
}

fn registry(repo: &TestRepo) -> Registry {
    Registry::load(repo.root()).unwrap_or_else(|error| panic!("{error}: {:#?}", error.problems()))
}

fn request<'a>(activity: &'a str, playbook: &'a str, inputs: &'a Value) -> Request<'a> {
    Request {
        activity,
        playbook,
        inputs,
        action: Action::Run,
        run_id: "run-1",
        event_id: "event-1",
        dry_run: false,
    }
}

fn run(
    repo: &TestRepo,
    activity: &str,
    playbook: &str,
    inputs: Value,
) -> Result<Report, PlaybookError> {
    let registry = registry(repo);
    let runner = Runner::new(&registry, repo.root())
        .unwrap()
        .with_env(pinned_env(&repo.env.home()))
        .with_spectra_exe(spectra_bin());
    runner.run(&request(activity, playbook, &inputs))
}

fn stdout_json(report: &Report) -> Value {
    serde_json::from_slice(&report.stdout.bytes).unwrap_or_else(|error| {
        panic!(
            "{error}: {}\nstderr: {}",
            report.stdout.text(),
            report.stderr.text()
        )
    })
}

#[test]
fn a_succeeding_playbook_runs_in_the_repository_root_with_the_spectra_environment() {
    let repo = fixture_repo();
    let registry = registry(&repo);
    // The model's API key is never handed to a playbook, even when the caller passes it on.
    let secret = [("SPECTRA_LLM_API_KEY".to_string(), "sk-secret".to_string())];
    let runner = Runner::new(&registry, repo.root())
        .unwrap()
        .with_env(pinned_env(&repo.env.home()))
        .with_env(secret);
    let inputs = json!({"greeting": "world; rm -rf /"});
    let report = runner
        .run(&request("fixture", "fixture.succeed", &inputs))
        .unwrap();
    assert_eq!(report.outcome, Outcome::Succeeded, "{}", report.message());
    assert_eq!(report.exit_code, Some(0));
    let stdout = report.stdout.text();
    // The input reached the script as one argument, not as shell text.
    assert!(stdout.contains("hello world; rm -rf /\n"), "{stdout}");
    assert!(stdout.contains("run=run-1 event=event-1\n"), "{stdout}");
    assert!(stdout.contains("key=withheld\n"), "{stdout}");
    assert!(
        stdout.contains(&format!("cwd={}\n", repo.root().display())),
        "{stdout}"
    );
    assert_eq!(report.stderr.text(), "a note on stderr\n");
    assert_eq!(
        report.stdout.sha256,
        spectra::digest::sha256_hex(stdout.as_bytes())
    );
    assert!(!report.stdout.truncated);

    let payload = serde_json::to_value(&report).unwrap();
    assert_eq!(payload["outcome"], "succeeded");
    assert_eq!(
        payload["argv"],
        json!(["sh", "scripts/succeed.sh", "world; rm -rf /"])
    );
    assert_eq!(payload["stdout"]["total_bytes"], stdout.len());
    assert!(payload["duration_ms"].is_u64());
}

#[test]
fn a_failing_playbook_reports_its_exit_code_and_stderr() {
    let repo = fixture_repo();
    let report = run(&repo, "fixture", "fixture.fail", json!({})).unwrap();
    assert_eq!(report.outcome, Outcome::Failed);
    assert_eq!(report.exit_code, Some(3));
    assert_eq!(report.stderr.text(), "something went wrong\n");
    assert_eq!(
        report.message(),
        "playbook fixture.fail failed with exit code 3"
    );
}

#[test]
fn a_hanging_playbook_times_out_and_its_whole_process_group_dies() {
    let repo = fixture_repo();
    let report = run(
        &repo,
        "fixture",
        "fixture.hang",
        json!({"pidfile": "hang.pid"}),
    )
    .unwrap();
    assert_eq!(report.outcome, Outcome::TimedOut, "{}", report.message());
    assert!(
        report.message().contains("timed out"),
        "{}",
        report.message()
    );
    assert!(
        report.message().contains("process group was killed"),
        "{}",
        report.message()
    );

    // The sleeping grandchild is in the group, so the kill reached it too: it must be gone (or
    // an unreaped zombie). The runner does not wait for it to close the output pipes (an
    // escaped process would never close them), and a killed process is marked a zombie a
    // moment after the kill; nothing can be waited on for a grandchild, so give the kernel
    // that moment.
    if let Ok(pid) = std::fs::read_to_string(repo.root().join("hang.pid")) {
        assert!(
            eventually(|| !is_alive(pid.trim())),
            "child {} outlived the timeout",
            pid.trim()
        );
    }
    assert!(
        eventually(|| live_processes_in(repo.root()).is_empty()),
        "{:?}",
        live_processes_in(repo.root())
    );
}

/// Whether `condition` holds now or within ten seconds (checked every 10 ms).
fn eventually(condition: impl Fn() -> bool) -> bool {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        if condition() {
            return true;
        }
        if std::time::Instant::now() > deadline {
            return false;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
}

/// Whether the process exists and is not a zombie.
fn is_alive(pid: &str) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => false,
        Ok(stat) => {
            let state = stat
                .rsplit_once(')')
                .map(|(_, rest)| rest.trim_start().chars().next());
            state != Some(Some('Z'))
        }
    }
}

/// Pids of live processes whose working directory is `dir` (zombies have none).
fn live_processes_in(dir: &std::path::Path) -> Vec<String> {
    std::fs::read_dir("/proc")
        .unwrap()
        .filter_map(Result::ok)
        .filter_map(|entry| {
            let pid = entry.file_name().to_string_lossy().into_owned();
            pid.parse::<u32>().ok()?;
            let cwd = std::fs::read_link(entry.path().join("cwd")).ok()?;
            (cwd == dir).then_some(pid)
        })
        .collect()
}

#[test]
fn a_flood_of_output_is_capped_counted_and_never_deadlocks() {
    let repo = fixture_repo();
    let registry = registry(&repo);
    let runner = Runner::new(&registry, repo.root())
        .unwrap()
        .with_env(pinned_env(&repo.env.home()))
        .with_output_cap(4096);
    let report = runner
        .run(&request("fixture", "fixture.flood", &json!({})))
        .unwrap();
    assert_eq!(report.outcome, Outcome::Succeeded, "{}", report.message());
    assert_eq!(report.stdout.total_bytes, 100 * 1024 * 1024);
    assert_eq!(report.stdout.bytes.len(), 4096);
    assert!(report.stdout.truncated);
    assert_eq!(report.stderr.total_bytes, 1024 * 1024);
    assert_eq!(report.stderr.bytes.len(), 4096);
    assert_eq!(
        report.stdout.sha256,
        spectra::digest::sha256_hex(&[0u8; 4096])
    );
}

#[test]
fn path_inputs_cannot_escape_the_repository() {
    let repo = fixture_repo();
    let outside = tempfile::tempdir().unwrap();
    std::os::unix::fs::symlink(outside.path(), repo.root().join("elsewhere")).unwrap();
    let cases = [
        ("../outside.txt", "`..`"),
        ("/tmp/absolute.txt", "absolute"),
        ("elsewhere/file.txt", "outside the repository"),
        (".git/hooks/post-commit", ".git"),
    ];
    for (path, reason) in cases {
        let error = run(&repo, "fixture", "fixture.write", json!({"target": path})).unwrap_err();
        assert!(
            matches!(error, PlaybookError::PathEscapes { .. }),
            "{path}: {error}"
        );
        let message = error.to_string();
        assert!(
            message.contains(path) && message.contains(reason),
            "{message}"
        );
    }
    assert_eq!(
        std::fs::read_dir(outside.path()).unwrap().count(),
        0,
        "something was written outside"
    );

    let report = run(
        &repo,
        "fixture",
        "fixture.write",
        json!({"target": "inside/file.txt"}),
    )
    .unwrap();
    assert_eq!(report.outcome, Outcome::Succeeded, "{}", report.message());
    assert_eq!(
        std::fs::read_to_string(repo.root().join("inside/file.txt")).unwrap(),
        "written\n"
    );
}

#[test]
fn a_playbook_not_allowed_for_the_activity_is_refused_and_never_runs() {
    let repo = fixture_repo();
    let error = run(&repo, "fixture", "fixture.forbidden", json!({})).unwrap_err();
    assert!(matches!(error, PlaybookError::NotAllowed { .. }), "{error}");
    let message = error.to_string();
    assert!(
        message.contains("`fixture.forbidden` is not allowed for activity `fixture`"),
        "{message}"
    );
    assert!(
        message.contains("fixture.succeed"),
        "the message lists what is allowed: {message}"
    );
    assert!(!repo.root().join("forbidden-ran").exists());

    // Default playbooks are held to the same rule, and so is an activity that does not exist.
    let error = run(
        &repo,
        "discover",
        "branch.create",
        json!({"service": "x", "base": null}),
    )
    .unwrap_err();
    assert!(matches!(error, PlaybookError::NotAllowed { .. }), "{error}");
    let error = run(
        &repo,
        "nonsense",
        "fixture.succeed",
        json!({"greeting": "x"}),
    )
    .unwrap_err();
    assert!(matches!(error, PlaybookError::NotAllowed { .. }), "{error}");
    let error = run(&repo, "fixture", "no.such", json!({})).unwrap_err();
    assert!(matches!(error, PlaybookError::Unknown(_)), "{error}");
}

#[test]
fn inputs_are_validated_against_the_playbook_schema() {
    let repo = fixture_repo();
    for inputs in [
        json!({}),
        json!({"greeting": 5}),
        json!({"greeting": "x", "extra": 1}),
        json!([1]),
    ] {
        let error = run(&repo, "fixture", "fixture.succeed", inputs.clone()).unwrap_err();
        assert!(
            matches!(error, PlaybookError::InvalidInputs { .. }),
            "{inputs}: {error}"
        );
        assert!(
            error
                .to_string()
                .starts_with("invalid inputs for playbook `fixture.succeed`"),
            "{error}"
        );
    }
}

#[test]
fn a_dry_run_returns_the_exact_argv_and_runs_nothing() {
    let repo = fixture_repo();
    let registry = registry(&repo);
    let runner = Runner::new(&registry, repo.root())
        .unwrap()
        .with_env(pinned_env(&repo.env.home()))
        .with_spectra_exe("/opt/git-spectra");
    let inputs = json!({"target": "dry/file.txt"});
    let report = runner
        .run(&Request {
            dry_run: true,
            ..request("fixture", "fixture.write", &inputs)
        })
        .unwrap();
    assert_eq!(report.outcome, Outcome::DryRun);
    assert_eq!(
        report.invocation.argv,
        ["sh", "scripts/write.sh", "dry/file.txt"]
    );
    assert_eq!(
        report.message(),
        "dry run: playbook fixture.write would run sh scripts/write.sh dry/file.txt"
    );
    assert!(!repo.root().join("dry").exists());

    // `{spectra}` resolves to the binary and optional groups drop out when their input is null.
    let inputs = json!({"service": "billing", "base": null});
    let report = runner
        .run(&Request {
            dry_run: true,
            ..request("build", "branch.create", &inputs)
        })
        .unwrap();
    assert_eq!(
        report.invocation.argv,
        [
            "/opt/git-spectra",
            "builtin",
            "create-branch",
            "--service=billing"
        ]
    );
    let refused = runner.run(&Request {
        dry_run: true,
        ..request("fixture", "fixture.forbidden", &inputs)
    });
    assert!(refused.is_err(), "a dry run checks permissions too");
}

#[test]
fn builtin_inventory_describes_the_repository() {
    let repo = TestRepo::new();
    repo.write("Cargo.toml", "[package]\n");
    repo.write("src/main.rs", "fn main() {}\n");
    repo.write("src/lib.rs", "\n");
    repo.write("tools/gen.py", "\n");
    repo.write(".github/workflows/ci.yml", "on: push\n");
    repo.write("Dockerfile", "FROM scratch\n");
    repo.write("deploy/docker-compose.yml", "services: {}\n");
    repo.write("node_modules/dep/index.js", "\n");
    repo.write("target/debug/build.rs", "\n");
    repo.git(&["add", "-A"]);
    // Written but never added: not part of what the repository is made of yet.
    repo.write("scratch/notes.rb", "\n");
    let report = run(&repo, "discover", "repo.inventory", json!({})).unwrap();
    assert_eq!(
        report.outcome,
        Outcome::Succeeded,
        "{}",
        report.stderr.text()
    );
    let inventory = stdout_json(&report);
    assert_eq!(inventory["source"], "index");
    assert_eq!(
        inventory["languages"],
        json!([{"language": "Rust", "files": 2}, {"language": "Python", "files": 1}])
    );
    assert_eq!(inventory["build_files"], json!(["Cargo.toml"]));
    assert_eq!(inventory["ci"], json!([".github/workflows/ci.yml"]));
    assert_eq!(
        inventory["containers"],
        json!(["Dockerfile", "deploy/docker-compose.yml"])
    );
}

#[test]
fn builtin_catalog_lookup_reads_both_catalog_shapes() {
    let repo = TestRepo::new();
    let missing = stdout_json(
        &run(
            &repo,
            "discover",
            "catalog.lookup",
            json!({"name": "billing"}),
        )
        .unwrap(),
    );
    assert_eq!(
        missing,
        json!({"name": "billing", "catalog": null, "found": false, "matches": []})
    );

    repo.write(
        ".spectra/service-catalog.yaml",
        "cosmos:\n  staging:\n    services:\n      - {name: billing, url: 'https://s.example', status: active, version: 1.2}\n  \
         production:\n    services:\n      - {name: billing, url: 'https://p.example', status: active, version: '1.1'}\n      \
         - {name: search, status: retired}\n",
    );
    let found = stdout_json(
        &run(
            &repo,
            "discover",
            "catalog.lookup",
            json!({"name": "billing"}),
        )
        .unwrap(),
    );
    assert_eq!(found["found"], true);
    assert_eq!(
        found["matches"],
        json!([
            {"environment": "production", "name": "billing", "url": "https://p.example", "status": "active", "version": "1.1"},
            {"environment": "staging", "name": "billing", "url": "https://s.example", "status": "active", "version": "1.2"}
        ])
    );

    repo.write(
        ".spectra/service-catalog.yaml",
        "services:\n  - name: search\n    url: https://x.example\n",
    );
    let plain = stdout_json(
        &run(
            &repo,
            "discover",
            "catalog.lookup",
            json!({"name": "search"}),
        )
        .unwrap(),
    );
    assert_eq!(plain["matches"][0]["environment"], Value::Null);
    assert_eq!(plain["matches"][0]["url"], "https://x.example");
    let absent = stdout_json(
        &run(
            &repo,
            "discover",
            "catalog.lookup",
            json!({"name": "billing"}),
        )
        .unwrap(),
    );
    assert_eq!(absent["found"], false);

    repo.write(".spectra/service-catalog.yaml", "services: [\n");
    let broken = run(
        &repo,
        "discover",
        "catalog.lookup",
        json!({"name": "billing"}),
    )
    .unwrap();
    assert_eq!(broken.outcome, Outcome::Failed);
    assert!(
        broken
            .stderr
            .text()
            .contains(".spectra/service-catalog.yaml:1:"),
        "{}",
        broken.stderr.text()
    );
}

/// The read-only built-ins run inside the runner's process: what it reports must be, byte for
/// byte, what `git spectra builtin ...` prints and exits with.
#[test]
fn read_only_builtins_in_process_report_what_the_command_prints() {
    let repo = TestRepo::new();
    repo.write("Cargo.toml", "[package]\n");
    repo.write("src/main.rs", "fn main() {}\n");
    repo.write(".github/workflows/ci.yml", "on: push\n");
    let cases = [
        ("repo.inventory", json!({}), vec!["builtin", "inventory"]),
        (
            "catalog.lookup",
            json!({"name": "billing"}),
            vec!["builtin", "catalog-lookup", "--name=billing"],
        ),
    ];
    for catalog in [
        None,
        Some("services:\n  - {name: billing, status: healthy}\n"),
        Some("services: [\n"),
    ] {
        if let Some(text) = catalog {
            repo.write(".spectra/service-catalog.yaml", text);
        }
        for (playbook, inputs, argv) in &cases {
            let registry = registry(&repo);
            let runner = Runner::new(&registry, repo.root())
                .unwrap()
                .with_spectra_exe(spectra_bin());
            let invocation = runner
                .prepare(&request("discover", playbook, inputs))
                .unwrap();
            assert!(runner.reads_only(&invocation), "{playbook} runs in-process");
            let report = run(&repo, "discover", playbook, inputs.clone()).unwrap();
            let command = repo.spectra(argv);
            assert_eq!(
                report.stdout.text(),
                command.stdout,
                "{playbook} {catalog:?}"
            );
            assert_eq!(
                report.stderr.text(),
                command.stderr,
                "{playbook} {catalog:?}"
            );
            assert_eq!(
                report.exit_code,
                Some(command.code),
                "{playbook} {catalog:?}"
            );
        }
    }
}

#[test]
fn builtin_spec_write_is_idempotent_refuses_to_overwrite_and_undoes() {
    let repo = TestRepo::new();
    let inputs =
        json!({"service": "billing", "path": null, "content": "# Billing\n\n--flag-like text\n"});
    let first = run(&repo, "design", "spec.write", inputs.clone()).unwrap();
    assert_eq!(first.outcome, Outcome::Succeeded, "{}", first.stderr.text());
    assert_eq!(stdout_json(&first)["written"], true);
    let spec = repo.root().join(".spectra/specs/billing.md");
    assert_eq!(
        std::fs::read_to_string(&spec).unwrap(),
        "# Billing\n\n--flag-like text\n"
    );
    assert_eq!(
        stdout_json(&run(&repo, "design", "spec.write", inputs.clone()).unwrap())["written"],
        false
    );

    let other = json!({"service": "billing", "path": null, "content": "different"});
    let conflict = run(&repo, "design", "spec.write", other).unwrap();
    assert_eq!(conflict.outcome, Outcome::Failed);
    assert!(
        conflict
            .stderr
            .text()
            .contains("already exists with different content"),
        "{}",
        conflict.stderr.text()
    );

    let registry = registry(&repo);
    let runner = Runner::new(&registry, repo.root())
        .unwrap()
        .with_env(pinned_env(&repo.env.home()))
        .with_spectra_exe(spectra_bin());
    let undo = runner
        .run(&Request {
            action: Action::Undo,
            ..request("design", "spec.write", &inputs)
        })
        .unwrap();
    assert_eq!(undo.outcome, Outcome::Succeeded, "{}", undo.stderr.text());
    assert!(!spec.exists());

    let escaping = json!({"service": "billing", "path": "../spec.md", "content": "x"});
    assert!(matches!(
        run(&repo, "design", "spec.write", escaping),
        Err(PlaybookError::PathEscapes { .. })
    ));
}

#[test]
fn builtin_test_run_reports_counts_and_fails_with_the_tests() {
    let repo = TestRepo::new();
    repo.write(
        "tests.sh",
        "echo 'test result: FAILED. 3 passed; 1 failed; 2 ignored; 0 measured'\nexit 101\n",
    );
    repo.git(&["config", "spectra.test.command", "sh tests.sh"]);
    let failing = run(&repo, "test", "tests.run", json!({"at": null})).unwrap();
    assert_eq!(failing.outcome, Outcome::Failed);
    let result = stdout_json(&failing);
    assert_eq!(
        result,
        json!({"command": ["sh", "tests.sh"], "exit_code": 101, "passed": 3, "failed": 1,
               "skipped": 2, "format": "cargo", "success": false})
    );

    repo.write(
        "tests.sh",
        "echo '===== 5 passed, 1 skipped in 0.10s ====='\n",
    );
    let passing = run(&repo, "test", "tests.run", json!({"at": null})).unwrap();
    assert_eq!(
        passing.outcome,
        Outcome::Succeeded,
        "{}",
        passing.stderr.text()
    );
    let result = stdout_json(&passing);
    assert_eq!(
        (result["passed"].as_u64(), result["skipped"].as_u64()),
        (Some(5), Some(1))
    );
    assert_eq!(result["format"], "pytest");
}

#[test]
fn builtin_branch_create_makes_the_branch_without_switching_and_undoes() {
    let repo = TestRepo::new();
    let head = repo.git(&["rev-parse", "HEAD"]);
    let inputs = json!({"service": "billing", "base": null});
    let created = run(&repo, "build", "branch.create", inputs.clone()).unwrap();
    assert_eq!(
        created.outcome,
        Outcome::Succeeded,
        "{}",
        created.stderr.text()
    );
    assert_eq!(
        stdout_json(&created),
        json!({"branch": "service/billing", "commit": head, "created": true})
    );
    assert_eq!(repo.git(&["rev-parse", "refs/heads/service/billing"]), head);
    assert_eq!(repo.git(&["symbolic-ref", "--short", "HEAD"]), "main");
    assert_eq!(
        stdout_json(&run(&repo, "build", "branch.create", inputs.clone()).unwrap())["created"],
        false
    );

    let registry = registry(&repo);
    let runner = Runner::new(&registry, repo.root())
        .unwrap()
        .with_env(pinned_env(&repo.env.home()))
        .with_spectra_exe(spectra_bin());
    let undo = runner
        .run(&Request {
            action: Action::Undo,
            ..request("build", "branch.create", &inputs)
        })
        .unwrap();
    assert_eq!(undo.outcome, Outcome::Succeeded, "{}", undo.stderr.text());
    assert_eq!(
        stdout_json(&undo),
        json!({"branch": "service/billing", "deleted": true})
    );
    assert_eq!(repo.git(&["branch", "--list", "service/*"]), "");
}
