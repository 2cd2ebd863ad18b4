//! Geometry of the page's pictures, computed here so the page needs no script to draw them:
//! the timeline's lanes and marks as percentages of the run's span, and the bar charts of the
//! figures across runs as SVG coordinates.

use serde::Serialize;

/// The time axis of one run: where it starts and how long it spans, in milliseconds.
#[derive(Debug, Clone, Copy)]
pub struct Axis {
    start_ms: i64,
    span_ms: i64,
}

impl Axis {
    /// The axis from `start` to `end` (milliseconds since the epoch); never shorter than 1 ms.
    pub fn new(start_ms: i64, end_ms: i64) -> Axis {
        Axis {
            start_ms,
            span_ms: (end_ms - start_ms).max(1),
        }
    }

    /// `(left, width)` in percent of the span, for something from `from` to `to`, clamped
    /// inside the axis.
    pub fn place(&self, from_ms: i64, to_ms: i64) -> (String, String) {
        let percent = |ms: i64| (ms - self.start_ms) as f64 / self.span_ms as f64 * 100.0;
        let left = percent(from_ms).clamp(0.0, 100.0);
        let right = percent(to_ms.max(from_ms)).clamp(left, 100.0);
        (format!("{left:.3}"), format!("{:.3}", right - left))
    }
}

/// One activity's lane: its bar and the marks inside it.
#[derive(Debug, Clone, Serialize)]
pub struct Lane {
    /// The activity's name.
    pub activity: String,
    /// The element its bar links to (the activity's section).
    pub href: String,
    /// How it ended, or `in_progress` (the bar's colour).
    pub outcome: String,
    /// Whether an undo reverted it.
    pub reverted: bool,
    /// The bar's start, percent of the run's span.
    pub left: String,
    /// The bar's length, percent of the run's span.
    pub width: String,
    /// What hovering the bar says.
    pub title: String,
    /// LLM attempts and playbooks, placed on the same axis.
    pub marks: Vec<Mark>,
}

/// An LLM attempt or a playbook inside a lane.
#[derive(Debug, Clone, Serialize)]
pub struct Mark {
    /// `llm` or `playbook`.
    pub kind: &'static str,
    /// The element it links to (the attempt's or the playbook's details).
    pub href: String,
    /// Whether it failed (drawn differently).
    pub failed: bool,
    /// Start, percent of the run's span.
    pub left: String,
    /// Length, percent of the run's span.
    pub width: String,
    /// What hovering it says: duration, HTTP status, tokens, exit code.
    pub title: String,
}

/// A horizontal bar chart drawn as inline SVG.
#[derive(Debug, Clone, Serialize)]
pub struct Chart {
    /// What it shows.
    pub caption: String,
    /// The SVG's height in pixels (its width is fixed by the `viewBox`).
    pub height: u32,
    /// One bar per row.
    pub bars: Vec<ChartBar>,
}

/// One bar of a [`Chart`].
#[derive(Debug, Clone, Serialize)]
pub struct ChartBar {
    /// The row's label.
    pub label: String,
    /// The value as text, printed after the bar.
    pub value: String,
    /// The bar's top, in pixels.
    pub y: u32,
    /// The bar's length, in pixels (of [`BAR_SPACE`]).
    pub width: u32,
    /// Which series it belongs to (its colour): 0, 1, 2.
    pub series: u8,
}

/// Pixels a full-length bar takes in a chart 600 pixels wide (labels left, values right).
pub const BAR_SPACE: f64 = 300.0;
const ROW: u32 = 18;

impl Chart {
    /// A chart of `rows`, each a label and its values (value, text, series), scaled so the
    /// largest value fills the bar space.
    pub fn new(caption: impl Into<String>, rows: Vec<(String, Vec<(f64, String)>)>) -> Chart {
        let max = rows
            .iter()
            .flat_map(|(_, values)| values.iter().map(|(value, _)| *value))
            .fold(0.0_f64, f64::max);
        let mut bars = Vec::new();
        let mut y = 0;
        for (label, values) in rows {
            for (series, (value, text)) in values.into_iter().enumerate() {
                let width = if max > 0.0 {
                    (value / max * BAR_SPACE).round() as u32
                } else {
                    0
                };
                bars.push(ChartBar {
                    label: if series == 0 {
                        label.clone()
                    } else {
                        String::new()
                    },
                    value: text,
                    y,
                    width,
                    series: series.min(2) as u8,
                });
                y += ROW;
            }
            y += ROW / 3;
        }
        Chart {
            caption: caption.into(),
            height: y.max(ROW),
            bars,
        }
    }
}

/// Milliseconds for a person: `840 ms`, `12.3 s`, `4 min 5 s`; `—` when unknown.
pub fn duration(ms: Option<u64>) -> String {
    match ms {
        None => "—".to_string(),
        Some(ms) if ms < 1_000 => format!("{ms} ms"),
        Some(ms) if ms < 60_000 => format!("{:.1} s", ms as f64 / 1000.0),
        Some(ms) => format!("{} min {} s", ms / 60_000, (ms % 60_000) / 1000),
    }
}
