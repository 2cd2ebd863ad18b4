//! Issue 21, lane C: the pager (item 4), a status that tells the truth (item 6) and one set of
//! JSON conventions for every `--format json` (item 7).
//!
//! The pager tests give the binary a pseudo-terminal as standard output (so it sees a terminal,
//! as in a real shell) and a `PAGER` that records what it was given into a file: the file exists
//! exactly when the output was paged.

use std::io::Read;
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};
use std::process::Stdio;

use crate::common::{Run, TestRepo};

/// A pseudo-terminal: the side the binary writes to, and a thread that reads everything the
/// terminal shows until the last writer closes it.
struct Terminal {
    screen: std::thread::JoinHandle<String>,
}

impl Terminal {
    /// Opens a pseudo-terminal; returns it and the file descriptor a child uses as its stdout.
    fn open() -> (Terminal, OwnedFd) {
        use rustix::fs::{Mode, OFlags};
        use rustix::pty::{OpenptFlags, grantpt, openpt, ptsname, unlockpt};
        let master = openpt(OpenptFlags::RDWR | OpenptFlags::NOCTTY | OpenptFlags::CLOEXEC)
            .expect("open a pseudo-terminal");
        grantpt(&master).expect("grantpt");
        unlockpt(&master).expect("unlockpt");
        let name = ptsname(&master, Vec::new()).expect("ptsname");
        let flags = OFlags::RDWR | OFlags::NOCTTY | OFlags::CLOEXEC;
        let slave = rustix::fs::open(name.as_c_str(), flags, Mode::empty()).expect("open slave");
        let screen = std::thread::spawn(move || {
            let mut master = std::fs::File::from(master);
            let mut shown = Vec::new();
            // Reading fails (EIO) once every process holding the terminal has closed it.
            let mut buffer = [0u8; 4096];
            while let Ok(read) = master.read(&mut buffer) {
                if read == 0 {
                    break;
                }
                shown.extend_from_slice(&buffer[..read]);
            }
            String::from_utf8_lossy(&shown).into_owned()
        });
        (Terminal { screen }, slave)
    }
}

/// What a paged (or not) command left: its run, what the terminal showed, and what the
/// recording pager received (`None`: no pager ran).
struct Paged {
    run: Run,
    screen: String,
    pager_got: Option<String>,
}

/// A repository with two events and a recording pager script.
struct PagerRepo {
    repo: TestRepo,
    recorder: PathBuf,
    record: PathBuf,
}

impl PagerRepo {
    fn new() -> PagerRepo {
        let repo = TestRepo::new();
        for n in 1..=2 {
            repo.env
                .append(repo.root(), "note.added", &format!(r#"{{"n":{n}}}"#));
        }
        let record = repo.env.path().join("pager-got");
        let recorder = repo.env.path().join("record-pager");
        std::fs::write(
            &recorder,
            format!(
                "#!/bin/sh\n{{ echo \"LESS=$LESS LV=$LV\"; cat; }} > '{}'\n",
                record.display()
            ),
        )
        .expect("write the recording pager");
        make_executable(&recorder);
        PagerRepo {
            repo,
            recorder,
            record,
        }
    }

    /// Runs `git-spectra args` with a terminal as stdout and `env` on top of the pinned one.
    fn on_terminal(&self, args: &[&str], env: &[(&str, &str)]) -> Paged {
        let (terminal, slave) = Terminal::open();
        let mut command = self
            .repo
            .env
            .command(crate::common::spectra_bin(), self.repo.root());
        command
            .args(args)
            .envs(env.iter().copied())
            .stdout(Stdio::from(slave))
            .stderr(Stdio::piped());
        let child = command.spawn().expect("spawn git-spectra");
        // The command holds our copy of the terminal's child side; close it so the reader
        // sees the end once the binary (and its pager) exit.
        drop(command);
        let output = child.wait_with_output().expect("wait for git-spectra");
        let screen = terminal.screen.join().expect("terminal reader");
        Paged {
            run: Run::from_output(output),
            screen,
            pager_got: self.take_record(),
        }
    }

    fn take_record(&self) -> Option<String> {
        let text = std::fs::read_to_string(&self.record).ok()?;
        std::fs::remove_file(&self.record).expect("remove the record");
        Some(text)
    }

    fn pager(&self) -> &str {
        self.recorder.to_str().expect("utf-8 path")
    }
}

fn make_executable(path: &Path) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).expect("chmod");
}

#[test]
fn long_human_output_on_a_terminal_goes_through_the_pager_with_git_s_less_settings() {
    let repo = PagerRepo::new();
    for args in [
        &["log"][..],
        &["runs"],
        &["stats"],
        &["manifest"],
        &["history"],
        &["registry", "list"],
    ] {
        let paged = repo.on_terminal(args, &[("PAGER", repo.pager())]);
        paged.run.success();
        let got = paged
            .pager_got
            .unwrap_or_else(|| panic!("{args:?} was not paged"));
        assert!(got.starts_with("LESS=FRX LV=-c\n"), "{args:?}: {got}");
    }
    let paged = repo.on_terminal(&["log"], &[("PAGER", repo.pager())]);
    let got = paged.pager_got.expect("paged");
    assert!(got.contains("note.added"), "the pager got the log: {got}");
    assert!(
        !paged.screen.contains("note.added"),
        "the log went to the pager, not the terminal: {}",
        paged.screen
    );
}

#[test]
fn the_pager_follows_git_s_order_and_the_user_s_less_settings() {
    let repo = PagerRepo::new();
    // GIT_PAGER wins over PAGER; an explicit LESS is left alone.
    let paged = repo.on_terminal(
        &["log"],
        &[
            ("GIT_PAGER", repo.pager()),
            ("PAGER", "false"),
            ("LESS", "S"),
        ],
    );
    paged.run.success();
    assert!(
        paged
            .pager_got
            .expect("paged")
            .starts_with("LESS=S LV=-c\n")
    );
    // pager.spectra names the pager for git spectra, before core.pager and PAGER.
    repo.repo.git(&["config", "core.pager", "false"]);
    repo.repo.git(&["config", "pager.spectra", repo.pager()]);
    let paged = repo.on_terminal(&["log"], &[("PAGER", "false")]);
    assert!(paged.pager_got.is_some(), "pager.spectra was not used");
}

/// Variables set on top of the pinned environment.
type Environment<'a> = Vec<(&'a str, &'a str)>;

#[test]
fn no_pager_json_pipes_and_git_s_own_choices_print_straight_to_the_terminal() {
    let repo = PagerRepo::new();
    let pager = repo.pager();
    let cases: [(&[&str], Environment); 5] = [
        (&["log", "--no-pager"], vec![("PAGER", pager)]),
        (&["--no-pager", "log"], vec![("PAGER", pager)]),
        (&["log", "--format", "json"], vec![("PAGER", pager)]),
        // What `git --no-pager spectra log` and `pager.spectra=false` export to us.
        (&["log"], vec![("PAGER", pager), ("GIT_PAGER", "cat")]),
        // `git -p spectra log`: git's pager already shows our output.
        (
            &["log"],
            vec![("PAGER", pager), ("GIT_PAGER_IN_USE", "true")],
        ),
    ];
    for (args, env) in cases {
        let paged = repo.on_terminal(args, &env);
        paged.run.success();
        assert_eq!(paged.pager_got, None, "{args:?} {env:?} was paged");
        assert!(
            paged.screen.contains("note.added"),
            "{args:?} {env:?}: the terminal showed {:?}",
            paged.screen
        );
    }
    repo.repo.git(&["config", "pager.spectra", "false"]);
    let paged = repo.on_terminal(&["log"], &[("PAGER", pager)]);
    assert_eq!(paged.pager_got, None, "pager.spectra=false was ignored");
}

#[test]
fn output_into_a_pipe_is_never_paged() {
    let repo = PagerRepo::new();
    let output = repo
        .repo
        .env
        .command(crate::common::spectra_bin(), repo.repo.root())
        .args(["log"])
        .env("PAGER", repo.pager())
        .output()
        .expect("run git-spectra");
    let run = Run::from_output(output).success();
    assert!(run.stdout.contains("note.added"), "{run:?}");
    assert_eq!(repo.take_record(), None, "a pipe was paged");
}

/// `git spectra status --offline --format json`, parsed.
fn status_json(repo: &TestRepo) -> serde_json::Value {
    let run = repo
        .spectra(&["status", "--offline", "--format", "json"])
        .success();
    serde_json::from_str(run.stdout.trim()).unwrap_or_else(|err| panic!("{err}: {run:#?}"))
}

/// An offline discover; returns its run id.
fn discover(repo: &TestRepo) -> String {
    let run = repo
        .spectra(&[
            "discover",
            "--offline",
            "--service",
            "logging",
            "--format",
            "json",
            "an idea",
        ])
        .success();
    let report: serde_json::Value = serde_json::from_str(run.stdout.trim()).expect("a report");
    report["run"].as_str().expect("a run id").to_owned()
}

#[test]
fn status_says_the_last_run_was_undone_and_by_which_undo() {
    let repo = TestRepo::new();
    let run = discover(&repo);
    let standing = status_json(&repo);
    assert_eq!(standing["events"]["last_run"]["run"], run.as_str());
    assert_eq!(
        standing["events"]["last_run"]["undone_by"],
        serde_json::Value::Null
    );

    repo.spectra(&["undo", &run]).success();
    let undo = repo
        .spectra(&["log", "--kind", "events.reverted", "--format", "json"])
        .success();
    let undo: serde_json::Value = serde_json::from_str(undo.stdout.trim()).expect("one undo");
    let undo_id = undo["event"]["id"].as_str().expect("an id");
    let standing = status_json(&repo);
    assert_eq!(standing["events"]["last_run"]["run"], run.as_str());
    assert_eq!(standing["events"]["last_run"]["undone_by"], undo_id);
    // People read the undo's short form: its commit's hash, abbreviated as git does.
    let undo_commit = undo["commit"].as_str().expect("a commit");
    let human = repo.spectra(&["status", "--offline"]).success().stdout;
    assert!(
        human.contains(&format!("(undone by {}", &undo_commit[..7])),
        "the human status hides the undo:\n{human}"
    );
    assert!(!human.contains(undo_id), "{human}");
    assert!(!human.contains(&run), "{human}");
}

#[test]
fn status_tells_when_the_log_was_last_verified_without_verifying_it() {
    let repo = TestRepo::new();
    repo.env.append(repo.root(), "note.added", r#"{"n":1}"#);
    let human = repo.spectra(&["status", "--offline"]).success().stdout;
    assert!(human.contains("integrity   never verified"), "{human}");
    let standing = status_json(&repo);
    assert_eq!(
        standing["integrity"]["last_verify"],
        serde_json::Value::Null
    );
    assert_eq!(standing["integrity"]["events_since"], 1);

    repo.spectra(&["verify"]).success();
    repo.env.append(repo.root(), "note.added", r#"{"n":2}"#);
    let standing = status_json(&repo);
    let last = &standing["integrity"]["last_verify"];
    assert_eq!(last["ok"], true, "{standing}");
    assert_eq!(last["verified"], 1);
    let at = last["at"].as_str().expect("a time");
    at.parse::<jiff::Timestamp>()
        .unwrap_or_else(|err| panic!("{at} is not RFC 3339: {err}"));
    assert_eq!(standing["integrity"]["events_since"], 1);
    let human = repo.spectra(&["status", "--offline"]).success().stdout;
    assert!(
        human.contains(&format!("verified 1 event at {at}; 1 event appended since")),
        "{human}"
    );
}

#[test]
fn status_counts_the_commits_the_hook_noted_and_the_log_does_not_hold_yet() {
    use crate::hooks::{commit_with_path, notes, path_without_background_recording};
    let repo = TestRepo::new();
    repo.spectra(&["hooks", "install"]).success();
    let path = path_without_background_recording(&repo.env);
    commit_with_path(&repo.env, repo.root(), &path, "a.txt", "noted").success();
    assert_eq!(notes(repo.root()).len(), 1);
    let standing = status_json(&repo);
    assert_eq!(standing["hooks"]["noted_commits"], 1, "{standing}");
    let human = repo.spectra(&["status", "--offline"]).success().stdout;
    assert!(human.contains("1 noted commit not recorded yet"), "{human}");
}

/// Every subcommand (by its path, `registry list`...) that takes `--format json`, from the
/// command line's own definition, so a new command cannot escape the conventions test.
fn commands_with_json_output() -> Vec<Vec<String>> {
    fn walk(command: &clap::Command, path: &[String], found: &mut Vec<Vec<String>>) {
        let takes_json = command.get_arguments().any(|arg| {
            arg.get_id() == "format"
                && arg
                    .get_possible_values()
                    .iter()
                    .any(|value| value.get_name() == "json")
        });
        if takes_json {
            found.push(path.to_vec());
        }
        for sub in command.get_subcommands() {
            let mut deeper = path.to_vec();
            deeper.push(sub.get_name().to_owned());
            walk(sub, &deeper, found);
        }
    }
    let registry = spectra::registry::Registry::builtin().expect("the built-in registry");
    let mut found = Vec::new();
    walk(&spectra::cli::command_for(&registry), &[], &mut found);
    found
}

/// Checks one JSON value against the conventions of docs/commands.md ("JSON output"); returns
/// what is wrong, each with where.
fn convention_breaches(value: &serde_json::Value, at: &str, problems: &mut Vec<String>) {
    match value {
        serde_json::Value::Object(object) => {
            let keys: Vec<&String> = object.keys().collect();
            let mut sorted = keys.clone();
            sorted.sort();
            if keys != sorted {
                problems.push(format!("{at}: keys not sorted: {keys:?}"));
            }
            for (key, inner) in object {
                let here = format!("{at}.{key}");
                let looks_like_a_time = key == "at" || key.ends_with("_at") || key == "since";
                if let (true, Some(text)) = (looks_like_a_time, inner.as_str())
                    && text.parse::<jiff::Timestamp>().is_err()
                {
                    problems.push(format!("{here}: `{text}` is not an RFC 3339 time"));
                }
                convention_breaches(inner, &here, problems);
            }
        }
        serde_json::Value::Array(items) => {
            for (index, inner) in items.iter().enumerate() {
                convention_breaches(inner, &format!("{at}[{index}]"), problems);
            }
        }
        _ => {}
    }
}

/// Every command's `--format json` output, in a repository with two runs (one undone), an
/// event, a noted remote and a registry: keys sorted at every level, a `schema` on every
/// top-level object or JSON-Lines record, every time-looking field an RFC 3339 time.
#[test]
fn every_json_output_follows_the_same_conventions() {
    let repo = TestRepo::new();
    let undone = discover(&repo);
    repo.spectra(&["undo", &undone]).success();
    let kept = discover(&repo);
    let event = repo
        .env
        .append(repo.root(), "note.added", r#"{"text":"an event"}"#);
    repo.spectra(&["verify"]).success();
    let remote = repo.env.path().join("remote.git");
    repo.env
        .git(repo.env.path(), &["init", "-q", "--bare", "remote.git"])
        .success();
    repo.git(&["remote", "add", "origin", remote.to_str().expect("utf-8")]);
    repo.spectra(&["push", "origin"]).success();
    repo.spectra(&["fetch", "origin"]).success();
    // Provision, deploy and monitor refuse to run without a command of the repository's own.
    for key in [
        "spectra.provision.command",
        "spectra.deploy.command",
        "spectra.monitor.command",
    ] {
        repo.git(&["config", key, "true"]);
    }

    let activities: Vec<String> = spectra::registry::Registry::builtin()
        .expect("the built-in registry")
        .activities()
        .iter()
        .map(|activity| activity.name.clone())
        .collect();
    // `registry import` writes entries that no built-in activity names: it runs in a
    // repository of its own so the registry of this one stays sound.
    let importing = TestRepo::new();
    importing.write("runbooks/a.md", "# A runbook\n\nWhat it does.\n");
    // An activity must name a runbook's domain before the runbook can be imported.
    let deploy = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("registry/activities/deploy.yaml"),
    )
    .expect("the built-in deploy activity");
    importing.write(
        ".spectra/registry/activities/deploy.yaml",
        &deploy.replacen("playbooks: [", "playbooks: [domain:runbooks, ", 1),
    );
    let runbooks = importing.root().join("runbooks");
    let runbooks = runbooks.to_str().expect("utf-8");
    let json = ["--format", "json"];
    let mut checked = 0;
    for path in commands_with_json_output() {
        let path: Vec<&str> = path.iter().map(String::as_str).collect();
        let extra: Vec<&str> = match path.as_slice() {
            ["show"] => vec![event.as_str()],
            ["status"] => vec!["--offline"],
            ["registry", "show"] => vec!["discover"],
            ["registry", "import"] => vec![runbooks, "--activity", "deploy"],
            ["fetch"] | ["merge"] | ["push"] | ["sync"] => vec!["origin"],
            ["undo"] | ["redo"] => vec!["--dry-run"],
            ["replay"] => vec![kept.as_str()],
            ["rerun"] => vec![kept.as_str(), "--offline"],
            ["run"] => vec!["--offline", "-a", "discover", "--service", "other", "idea"],
            ["discover"] => vec!["--offline", "--service", "third", "idea"],
            [activity] if activities.iter().any(|name| name == activity) => {
                vec!["--service", "logging", "an idea"]
            }
            ["log"]
            | ["stats"]
            | ["verify"]
            | ["manifest"]
            | ["history"]
            | ["runs"]
            | ["doctor"]
            | ["registry", "list"]
            | ["registry", "validate"]
            | ["hooks", "status"] => vec![],
            other => panic!(
                "{other:?} takes --format json: add it to this test with the arguments it needs"
            ),
        };
        let args: Vec<&str> = path.iter().chain(&extra).chain(&json).copied().collect();
        let root = match path.as_slice() {
            ["registry", "import"] => importing.root(),
            _ => repo.root(),
        };
        let output = repo
            .env
            .command(crate::common::spectra_bin(), root)
            .args(&args)
            .env("SPECTRA_LLM_MAX_ATTEMPTS", "1")
            .output()
            .expect("run git-spectra");
        let run = Run::from_output(output);
        assert!(
            !run.stdout.trim().is_empty(),
            "{args:?} printed no JSON: {run:#?}"
        );
        let mut problems = Vec::new();
        for line in run.stdout.lines() {
            let record: serde_json::Value = serde_json::from_str(line)
                .unwrap_or_else(|err| panic!("{args:?}: not JSON ({err}): {line}"));
            if record.get("schema").is_none() {
                problems.push("the record has no `schema`".to_owned());
            }
            convention_breaches(&record, "", &mut problems);
        }
        assert!(problems.is_empty(), "{args:?}:\n{}", problems.join("\n"));
        checked += 1;
    }
    assert!(checked >= 20, "only {checked} commands were checked");
}

#[test]
fn ctrl_c_at_the_pager_leaves_the_command_running_until_the_pager_ends() {
    use std::os::unix::process::CommandExt;
    let repo = PagerRepo::new();
    // Ctrl-C reaches the terminal's whole foreground process group: this pager sends SIGINT
    // to its own group (the binary's, apart from the test's), survives it, then reads on.
    let pager = repo.repo.env.path().join("interrupted-pager");
    std::fs::write(
        &pager,
        format!(
            "#!/bin/sh\ntrap '' INT\nkill -INT 0\ncat > '{}'\n",
            repo.record.display()
        ),
    )
    .expect("write the pager");
    make_executable(&pager);
    let (terminal, slave) = Terminal::open();
    let mut command = repo
        .repo
        .env
        .command(crate::common::spectra_bin(), repo.repo.root());
    command
        .args(["log"])
        .env("PAGER", &pager)
        .stdout(Stdio::from(slave))
        .stderr(Stdio::piped())
        .process_group(0);
    let child = command.spawn().expect("spawn git-spectra");
    drop(command);
    let output = child.wait_with_output().expect("wait for git-spectra");
    drop(terminal.screen.join());

    assert!(
        output.status.success(),
        "the command died with the pager still up: {output:?}"
    );
    let got = repo.take_record().expect("the pager ran");
    assert_eq!(got.lines().count(), 2, "{got}");
}
