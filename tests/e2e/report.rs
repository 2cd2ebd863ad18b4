//! `git spectra report`: the HTML page holds every event of the runs it shows, shows what a
//! model answered as text (a hostile reply included), forbids every load with its CSP, marks an
//! undone run with a link to its undo, and is written without touching the log. The real
//! browser's view of the same page is in `report_browser`.

use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::common::{TestEnv, json_lines};
use crate::discover::decision;
use crate::llm_server::{LlmServer, Reply};

/// What a hostile model might answer: markup that would run a script if printed as HTML.
pub(crate) const HOSTILE: &str =
    "</script><script>alert(1)</script><img src=x onerror=\"document.title='pwned'\">";

/// A repository with one discover whose decision (and so the model's reply) carries
/// [`HOSTILE`], and a second, ordinary one; returns the repository.
pub(crate) fn repo_with_two_discovers(env: &TestEnv) -> PathBuf {
    let repo = env.repo_with_commit("r");
    let server = LlmServer::start();
    let mut hostile = decision("logging");
    hostile["problem"]["statement"] = Value::String(HOSTILE.to_string());
    server.push(Reply::chat_json(&hostile));
    server.push(Reply::chat_json(&decision("billing")));
    env.spectra_with_llm(
        &repo,
        &server.base_url(),
        &["discover", "Our logs are everywhere"],
    )
    .success();
    env.spectra_with_llm(&repo, &server.base_url(), &["discover", "Invoices by hand"])
        .success();
    repo
}

/// Every event of the log as `(id, run)`, oldest first.
fn events(env: &TestEnv, repo: &Path) -> Vec<(String, Option<String>)> {
    let records = json_lines(
        &env.spectra(repo, &["log", "--format", "json"])
            .success()
            .stdout,
    );
    records
        .iter()
        .rev()
        .map(|record| {
            let event = &record["event"];
            (
                event["id"].as_str().unwrap().to_string(),
                event["run"].as_str().map(str::to_string),
            )
        })
        .collect()
}

fn tip(env: &TestEnv, repo: &Path) -> String {
    env.git(repo, &["rev-parse", "refs/spectra/events"])
        .success()
        .stdout
        .trim()
        .to_string()
}

/// Panics if the page could load anything from a network: an attribute or a CSS `url()`
/// naming http(s), or an `@import`.
pub(crate) fn assert_loads_nothing(html: &str) {
    let lower = html.to_lowercase();
    for pattern in [
        "=\"http:",
        "=\"https:",
        "='http",
        "=http",
        "url(",
        "@import",
        "//cdn",
    ] {
        assert!(!lower.contains(pattern), "the page may load `{pattern}`");
    }
    assert!(
        html.contains(
            "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src &#x27;none&#x27;;"
        ),
        "no CSP forbidding loads"
    );
}

/// Panics unless `hostile` appears nowhere as markup: no injected element, one script only.
pub(crate) fn assert_hostile_is_text(html: &str) {
    assert!(!html.contains(HOSTILE));
    assert!(!html.contains("<img"), "an injected element survived");
    assert!(!html.contains("onerror=\""), "an injected handler survived");
    assert_eq!(
        html.matches("<script").count(),
        1,
        "only the page's own script"
    );
    assert!(
        html.contains(
            "&lt;&#x2f;script&gt;&lt;script&gt;alert(1)&lt;&#x2f;script&gt;&lt;img src=x onerror="
        ),
        "the hostile reply is not shown as text"
    );
}

#[test]
fn a_report_of_the_newest_run_holds_its_events_and_shows_a_hostile_reply_as_text() {
    let env = TestEnv::new();
    let repo = repo_with_two_discovers(&env);
    let all = events(&env, &repo);
    let first_run = all[0].1.clone().unwrap();
    let before = tip(&env, &repo);

    let out = env
        .spectra(&repo, &["report", &first_run, "-o", "first.html"])
        .success();
    assert_eq!(out.stdout.trim(), "first.html");
    let html = std::fs::read_to_string(repo.join("first.html")).unwrap();
    for (id, run) in &all {
        let shown = html.contains(&format!("data-event=\"{id}\""));
        assert_eq!(
            shown,
            run.as_deref() == Some(&first_run),
            "event {id} of run {run:?}"
        );
    }
    assert_hostile_is_text(&html);
    assert_loads_nothing(&html);
    assert!(
        html.contains(&format!("id=\"tip\">{before}<")),
        "the tip the report covers"
    );
    assert!(html.contains("digest chain and lamport order intact"));
    assert_eq!(
        html.matches("class=\"bar ").count(),
        1,
        "one lane for discover"
    );
    assert!(
        html.contains("<dt>problem.statement</dt>"),
        "the decision as fields"
    );
    assert!(html.contains("<td>has_problem_statement</td>") || html.contains("<h4>Gates</h4>"));
    assert!(
        html.contains("repo.inventory"),
        "the playbook the decision chose"
    );
    assert!(html.contains("2 files changed, "), "the commit's diff stat");
    assert!(
        html.contains(".spectra&#x2f;logging.specification.yaml"),
        "the commit's paths"
    );

    // Without -o: the newest run, under the git dir; the log is only read.
    let out = env.spectra(&repo, &["report"]).success();
    let path = PathBuf::from(out.stdout.trim());
    assert!(path.ends_with(".git/spectra/report.html"), "{out:?}");
    let html = std::fs::read_to_string(repo.join(&path)).unwrap();
    let newest_run = all.last().unwrap().1.clone().unwrap();
    assert!(html.contains(&format!("data-run=\"{newest_run}\"")));
    assert!(!html.contains(&format!("data-run=\"{first_run}\"")));
    assert_eq!(tip(&env, &repo), before, "report wrote the log");

    // --since: every run that started since then.
    env.spectra(
        &repo,
        &["report", "--since", "2000-01-01", "-o", "since.html"],
    )
    .success();
    let html = std::fs::read_to_string(repo.join("since.html")).unwrap();
    assert_eq!(html.matches("<section class=\"run\"").count(), 2);
}

#[test]
fn a_report_of_all_runs_has_the_table_the_figures_and_the_undo_that_undid_a_run() {
    let env = TestEnv::new();
    let repo = repo_with_two_discovers(&env);
    let undo = env.spectra(&repo, &["undo"]).success();
    assert!(undo.stdout.contains("undid run"), "{undo:?}");
    let undo_event = env.events(&repo, "events.reverted")[0]["id"]
        .as_str()
        .unwrap()
        .to_string();

    env.spectra(&repo, &["report", "--all", "-o", "all.html"])
        .success();
    let html = std::fs::read_to_string(repo.join("all.html")).unwrap();
    assert!(html.contains("<h2>Across runs</h2>"));
    assert!(html.contains("<table id=\"runs\">"));
    assert!(html.contains("Success rate per activity"));
    assert!(html.contains("LLM latency: p50, p95 and p99"));
    assert!(html.contains(&format!("Undone by <a href=\"#u-{undo_event}\">")));
    assert!(html.contains(&format!("<li id=\"u-{undo_event}\">")));
    assert_eq!(html.matches("(undone)").count(), 1);
    assert_hostile_is_text(&html);
    assert_loads_nothing(&html);
    // Every event of a run, the undo's own included.
    for (id, run) in events(&env, &repo) {
        let shown = html.contains(&format!("data-event=\"{id}\""));
        assert_eq!(shown, run.is_some(), "event {id} of run {run:?}");
    }
}

#[test]
fn bad_requests_are_refused_with_a_reason() {
    let env = TestEnv::new();
    let repo = env.repo_with_commit("r");
    let empty = env.spectra(&repo, &["report"]).code(1);
    assert!(
        empty.stderr.contains("error: the event log holds no run"),
        "{empty:?}"
    );
    let both = env.spectra(&repo, &["report", "--all", "abcd1234"]).code(2);
    assert!(
        both.stderr.contains("give either RUN... or --all"),
        "{both:?}"
    );
    let since = env
        .spectra(&repo, &["report", "--since", "yesterday-ish"])
        .code(2);
    assert!(since.stderr.contains("is not a date"), "{since:?}");
    env.append(&repo, "note.added", "{}");
    let late = env
        .spectra(&repo, &["report", "--since", "2999-01-01"])
        .code(1);
    assert!(
        late.stderr.contains("holds no run since that time"),
        "{late:?}"
    );
    let unknown = env.spectra(&repo, &["report", "zzzzzzzz"]).code(1);
    assert!(unknown.stderr.contains("zzzzzzzz"), "{unknown:?}");
}

#[test]
fn a_report_made_after_the_log_was_edited_says_which_event_fails_verification() {
    use crate::tamper::{event_json, read_chain, replace_in_tree, write_chain};
    let env = TestEnv::new();
    let repo = repo_with_two_discovers(&env);
    // A first report checks the whole log and remembers that it verified up to its tip.
    env.spectra(&repo, &["report", "-o", "before.html"])
        .success();
    let html = std::fs::read_to_string(repo.join("before.html")).unwrap();
    assert!(html.contains("digest chain and lamport order intact"));

    // Someone edits the second event's payload and rewrites the chain after it.
    let mut chain = read_chain(&env, &repo);
    let mut event = event_json(&env, &repo, &chain[1].tree);
    event["payload"]["edited"] = Value::Bool(true);
    let bytes = serde_json::to_vec(&event).unwrap();
    chain[1].tree = replace_in_tree(&env, &repo, &chain[1].tree, "event.json", &bytes);
    write_chain(&env, &repo, &chain);
    let id = event["id"].as_str().unwrap();

    let after = env
        .spectra(&repo, &["report", "-o", "after.html"])
        .success();
    assert!(
        after
            .stderr
            .contains("warning: the event log fails verification at event #2 "),
        "{after:?}"
    );
    let html = std::fs::read_to_string(repo.join("after.html")).unwrap();
    assert!(
        html.contains("Verification failed:</strong> event #2 "),
        "the page must name the first bad event"
    );
    assert!(html.contains(id), "the page must name the event's id");
    assert!(html.contains("(1 events before it verified)"));
    assert!(!html.contains("digest chain and lamport order intact"));
    assert!(
        html.contains(&format!("id=\"tip\">{}<", tip(&env, &repo))),
        "the page names the edited log's tip"
    );
}
