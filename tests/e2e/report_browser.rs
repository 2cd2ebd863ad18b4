//! `git spectra report` in a real browser: headless Chromium loads the page from `file://`,
//! takes a screenshot, and its DOM after the scripts ran says that the timeline has one bar per
//! activity, that a hostile reply injected nothing and ran nothing, and that the page tried to
//! load nothing.
//!
//! Chromium is Debian's `chromium` package (`.ci/run` installs it on CI). Without it the test
//! fails when `CI` is set and otherwise says how to install it and passes. `CHROMIUM` names
//! another binary. With `SPECTRA_KEEP_REPORT=DIR` the page and its screenshot are copied to
//! `DIR/report.html` and `DIR/report.png` (how docs/report.png is made).
//!
//! The page is watched by a script the test adds right after the page's Content-Security-Policy
//! (so the policy covers everything after it): it replaces `alert`, counts CSP violations (a
//! load the policy blocked) and, once the page has loaded, counts the resources it fetched (a
//! load the policy let through) and writes all three into attributes of `<html>`. A control
//! page, the same report with the hostile text pasted in unescaped and an `<img>` from an
//! https URL, must trip every one of them, so a clean result means something.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::common::TestEnv;
use crate::report::{HOSTILE, repo_with_two_discovers};

const INSTALL: &str = "install Chromium to run it: `sudo apt-get install -y chromium` (Debian, Ubuntu), or set CHROMIUM to a Chrome or Chromium binary";

/// The watcher the test adds to the page (see the module documentation).
const WATCHER: &str = r#"<script>
(function(){var root=document.documentElement,violations=0;
root.setAttribute("data-alerted","no");root.setAttribute("data-csp-violations","0");
window.alert=function(){root.setAttribute("data-alerted","yes")};
document.addEventListener("securitypolicyviolation",function(){violations+=1;root.setAttribute("data-csp-violations",String(violations))});
window.addEventListener("load",function(){root.setAttribute("data-resources",String(performance.getEntriesByType("resource").length));root.setAttribute("data-watched","yes")});})();
</script>"#;

/// The Chromium binary, if one runs.
fn chromium() -> Option<PathBuf> {
    let candidates: Vec<PathBuf> = std::env::var_os("CHROMIUM")
        .map(PathBuf::from)
        .into_iter()
        .chain(["chromium", "chromium-browser", "google-chrome"].map(PathBuf::from))
        .collect();
    candidates.into_iter().find(|candidate| {
        Command::new(candidate)
            .arg("--version")
            .output()
            .is_ok_and(|output| output.status.success())
    })
}

/// Runs headless Chromium on `page` with `args`, no network reachable by name, a profile of its
/// own; returns stdout.
fn headless(chromium: &Path, profile: &Path, page: &Path, args: &[&str]) -> String {
    let output = Command::new(chromium)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--host-resolver-rules=MAP * ~NOTFOUND",
            // Virtual time: the page's tasks (the CSP reports among them) run before the DOM is
            // taken, without waiting on the clock.
            "--virtual-time-budget=2000",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .args(args)
        .arg(format!("file://{}", page.display()))
        .output()
        .expect("run chromium");
    assert!(
        output.status.success(),
        "chromium failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// The page with the watcher added right after its CSP.
fn watched(html: &str) -> String {
    let csp_end = html
        .find("<meta http-equiv=\"Content-Security-Policy\"")
        .and_then(|start| html[start..].find('>').map(|end| start + end + 1))
        .expect("the page has a CSP");
    format!("{}\n{WATCHER}{}", &html[..csp_end], &html[csp_end..])
}

/// What the watcher wrote on `<html>`: `name="value"`.
fn attribute<'a>(dom: &'a str, name: &str) -> Option<&'a str> {
    let root = &dom[dom.find("<html")?..];
    let root = &root[..root.find('>')?];
    let start = root.find(&format!("{name}=\""))? + name.len() + 2;
    Some(&root[start..start + root[start..].find('"')?])
}

#[test]
fn chromium_shows_one_bar_per_activity_runs_nothing_injected_and_loads_nothing() {
    let Some(chromium) = chromium() else {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI is set and no Chromium was found: {INSTALL}"
        );
        eprintln!("skipped: the report's browser test needs Chromium; {INSTALL}");
        return;
    };
    let env = TestEnv::new();
    let repo = repo_with_two_discovers(&env);
    env.spectra(&repo, &["undo"]).success();
    env.spectra(&repo, &["report", "--all", "-o", "report.html"])
        .success();
    let html = std::fs::read_to_string(repo.join("report.html")).unwrap();
    let activities = env.events(&repo, "activity.started").len();
    assert_eq!(activities, 2);

    let page = env.path().join("watched.html");
    std::fs::write(&page, watched(&html)).unwrap();
    let profile = env.path().join("chromium-profile");
    let dom = headless(&chromium, &profile, &page, &["--dump-dom"]);

    assert_eq!(
        attribute(&dom, "data-watched"),
        Some("yes"),
        "the watcher did not run"
    );
    assert_eq!(
        dom.matches("class=\"bar ").count(),
        activities,
        "one bar per activity"
    );
    assert!(
        dom.contains("Expand all"),
        "the page's own script did not run"
    );
    assert_eq!(
        attribute(&dom, "data-alerted"),
        Some("no"),
        "alert was called"
    );
    assert!(
        !dom.contains("<img"),
        "the hostile reply injected an element"
    );
    assert!(
        !dom.contains("<title>pwned</title>"),
        "the hostile handler ran"
    );
    assert_eq!(
        dom.matches("<script").count(),
        2,
        "the watcher and the page's script only"
    );
    assert!(
        dom.contains("alert(1)&lt;/script&gt;&lt;img src=x"),
        "the reply is shown as text"
    );
    assert_eq!(
        attribute(&dom, "data-csp-violations"),
        Some("0"),
        "a load was attempted"
    );
    assert_eq!(
        attribute(&dom, "data-resources"),
        Some("0"),
        "a resource was fetched"
    );

    let screenshot = env.path().join("report.png");
    headless(
        &chromium,
        &profile,
        &page,
        &[
            &format!("--screenshot={}", screenshot.display()),
            "--window-size=1100,1400",
            "--hide-scrollbars",
        ],
    );
    let png = std::fs::read(&screenshot).expect("chromium wrote the screenshot");
    assert!(png.starts_with(b"\x89PNG"), "not a PNG");
    if let Some(dir) = std::env::var_os("SPECTRA_KEEP_REPORT") {
        let dir = PathBuf::from(dir);
        std::fs::copy(repo.join("report.html"), dir.join("report.html")).unwrap();
        std::fs::copy(&screenshot, dir.join("report.png")).unwrap();
    }
}

#[test]
fn the_watcher_sees_an_alert_an_injected_element_and_a_blocked_load_on_a_control_page() {
    let Some(chromium) = chromium() else {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI is set and no Chromium was found: {INSTALL}"
        );
        eprintln!("skipped: the report's browser test needs Chromium; {INSTALL}");
        return;
    };
    let env = TestEnv::new();
    let repo = repo_with_two_discovers(&env);
    env.spectra(&repo, &["report", "-o", "report.html"])
        .success();
    let html = std::fs::read_to_string(repo.join("report.html")).unwrap();
    let unsafe_body = format!("<main>{HOSTILE}<img src=\"https://example.com/x.png\">");
    let control = watched(&html).replacen("<main>", &unsafe_body, 1);
    let page = env.path().join("control.html");
    std::fs::write(&page, control).unwrap();

    let dom = headless(
        &chromium,
        &env.path().join("profile"),
        &page,
        &["--dump-dom"],
    );
    assert_eq!(attribute(&dom, "data-alerted"), Some("yes"), "{dom}");
    assert!(dom.contains("<img"));
    assert!(
        dom.contains("<title>pwned</title>"),
        "the injected handler did not run"
    );
    let violations: u32 = attribute(&dom, "data-csp-violations")
        .unwrap()
        .parse()
        .unwrap();
    assert!(
        violations >= 1,
        "the https image was not reported as blocked"
    );
}
