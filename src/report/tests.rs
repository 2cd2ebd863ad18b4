use serde_json::json;

use super::fields::{Field, flatten};
use super::model::{ActivityView, AttemptView, IntegrityView, Message, Report, RunView};
use super::timeline::{Axis, Chart, duration};
use super::{CONTENT_SECURITY_POLICY, render};

const HOSTILE: &str = "</script><script>alert(1)</script><img src=x onerror=alert(2)>";

fn report_with(text: &str) -> Report {
    let activity = ActivityView {
        anchor: "a-1".into(),
        activity: "discover".into(),
        service: Some(text.into()),
        outcome: "succeeded".into(),
        duration: "1 ms".into(),
        reverted: false,
        decision: vec![Field {
            path: "problem.statement".into(),
            value: text.into(),
        }],
        decided_by: Some("llm".into()),
        gates: Vec::new(),
        errors: vec![text.into()],
        attempts: vec![AttemptView {
            anchor: "e-1".into(),
            event: "1".into(),
            attempt: 1,
            turn: 0,
            model: text.into(),
            status: "HTTP 200".into(),
            latency: "1 ms".into(),
            tokens: None,
            error: None,
            prompt: vec![Message {
                anchor: "m-1-0".into(),
                same_as: None,
                role: "user".into(),
                content: text.into(),
            }],
            reply: Some(text.into()),
            reverted: false,
        }],
        playbooks: Vec::new(),
        commits: Vec::new(),
    };
    Report {
        title: "t".into(),
        generated_at: "now".into(),
        integrity: IntegrityView {
            ok: true,
            verified: 1,
            tip: None,
            failure: None,
        },
        runs: vec![RunView {
            id: "run-1".into(),
            short: "r1".into(),
            command: "discover".into(),
            input: text.into(),
            outcome: "succeeded".into(),
            started_at: "now".into(),
            duration: "1 ms".into(),
            dry_run: false,
            undone_by: None,
            lanes: Vec::new(),
            activities: vec![activity],
            events: Vec::new(),
        }],
        table: None,
        stats: None,
        undos: Vec::new(),
        collapse_runs: false,
    }
}

#[test]
fn everything_from_the_log_is_escaped_and_the_page_loads_nothing() {
    let html = render(&report_with(HOSTILE)).unwrap();
    assert!(!html.contains(HOSTILE));
    assert!(!html.contains("<img"), "an injected element survived");
    assert!(!html.contains("<script>alert"));
    assert_eq!(
        html.matches("<script>").count(),
        1,
        "only the page's own script"
    );
    assert!(html.contains("&lt;&#x2f;script&gt;&lt;script&gt;alert(1)"));
    assert!(html.contains(&format!(
        r#"<meta http-equiv="Content-Security-Policy" content="{}">"#,
        CONTENT_SECURITY_POLICY.replace('\'', "&#x27;")
    )));
    for scheme in ["http://", "https://"] {
        assert!(
            !html.contains(scheme),
            "{scheme} in a page that should load nothing"
        );
    }
}

#[test]
fn a_decision_reads_as_fields_named_by_their_path() {
    let decision = json!({"problem": {"statement": "s", "who": ["a", "b"]},
                          "playbooks": [{"id": "p"}], "empty": []});
    let fields: Vec<(String, String)> = flatten(&decision)
        .into_iter()
        .map(|field| (field.path, field.value))
        .collect();
    assert_eq!(
        fields,
        vec![
            ("empty".to_string(), "(none)".to_string()),
            ("playbooks[0].id".to_string(), "p".to_string()),
            ("problem.statement".to_string(), "s".to_string()),
            ("problem.who".to_string(), "a\nb".to_string()),
        ]
    );
}

#[test]
fn the_axis_places_spans_in_percent_and_clamps_them() {
    let axis = Axis::new(1_000, 2_000);
    assert_eq!(axis.place(1_250, 1_500), ("25.000".into(), "25.000".into()));
    assert_eq!(axis.place(500, 3_000), ("0.000".into(), "100.000".into()));
    assert_eq!(axis.place(1_900, 1_800), ("90.000".into(), "0.000".into()));
    assert_eq!(duration(Some(840)), "840 ms");
    assert_eq!(duration(Some(12_340)), "12.3 s");
    assert_eq!(duration(Some(245_000)), "4 min 5 s");
    assert_eq!(duration(None), "—");
}

#[test]
fn a_chart_scales_its_longest_bar_to_the_full_width() {
    let chart = Chart::new(
        "c",
        vec![
            ("a".into(), vec![(50.0, "50".into())]),
            ("b".into(), vec![(100.0, "100".into()), (25.0, "25".into())]),
        ],
    );
    let widths: Vec<u32> = chart.bars.iter().map(|bar| bar.width).collect();
    assert_eq!(widths, vec![150, 300, 75]);
    assert_eq!(chart.bars[2].label, "");
}
