//! The checks of a schema's bounds ([`crate::registry::bounds`]) as the registry reports them:
//! an unbounded decision is a problem at its line; constraints a grammar ignores, and a
//! playbook's unbounded inputs, are warnings.

use serde_json::Value;

use super::{Parsed, Report};
use crate::registry::bounds::{self, Finding, FindingKind};
use crate::registry::error::Problem;
use crate::registry::format::{ActivityFile, PlaybookFile};
use crate::yaml::{Position, Spanned};

/// Refuses an array without `maxItems` and a string without `maxLength`: under a grammar a
/// small model keeps appending to them until it runs out of tokens or time, and `max_tokens` is
/// derived from these bounds.
pub(super) fn check_decision_bounds(report: &mut Report, decision: &Spanned<Value>) {
    let findings = bounds::findings(&decision.value);
    for finding in findings.iter().filter(|f| f.kind.is_error()) {
        let position = report.position_at(
            &format!("/decision{}", finding.pointer),
            Position::of(decision),
        );
        report.at(position, bound_message(finding));
    }
}

/// The constraints of an activity's decision schema that a grammar-constrained server will not
/// enforce, as warnings: the reply is still validated, so a model that misses one costs a
/// repair turn.
pub fn activity_warnings(parsed: &Parsed<ActivityFile>, warnings: &mut Vec<Problem>) {
    let decision = &parsed.doc.decision;
    let findings = bounds::findings(&decision.value);
    for finding in findings.iter().filter(|f| !f.kind.is_error()) {
        let position =
            crate::yaml::position_at(&parsed.text, &format!("/decision{}", finding.pointer))
                .unwrap_or_else(|| Position::of(decision));
        warnings.push(Problem::new(&parsed.file, position, bound_message(finding)));
    }
}

/// A playbook's unbounded inputs, as warnings: they are not refused (the inputs are checked
/// again before the playbook runs), but the decision of every activity that may run the
/// playbook then has no size estimate and asks for its whole `token_budget`. Constraints a
/// grammar ignores are not reported here: a `pattern` on an input guards the command it runs.
pub fn playbook_warnings(parsed: &Parsed<PlaybookFile>, warnings: &mut Vec<Problem>) {
    let Some(inputs) = &parsed.doc.inputs else {
        return;
    };
    for finding in bounds::findings(&inputs.value) {
        let what = match finding.kind {
            FindingKind::UnboundedArray => "an array without `maxItems`",
            FindingKind::UnboundedString => "a string without `maxLength`",
            FindingKind::Unenforced(_) => continue,
        };
        let pointer = format!("/inputs{}", finding.pointer);
        let position = crate::yaml::position_at(&parsed.text, &pointer)
            .unwrap_or_else(|| Position::of(inputs));
        warnings.push(Problem::new(
            &parsed.file,
            position,
            format!(
                "`{pointer}` is {what}: a decision that may run this playbook cannot be sized, so it asks for its activity's whole token_budget; bound it"
            ),
        ));
    }
}

fn bound_message(finding: &Finding) -> String {
    let place = if finding.pointer.is_empty() {
        "`decision`".to_string()
    } else {
        format!("`decision` at `{}`", finding.pointer)
    };
    match finding.kind {
        FindingKind::UnboundedArray => format!(
            "{place} is an array without `maxItems`; bound it (3 to 8 items, what a reviewer reads) so a model cannot keep appending items"
        ),
        FindingKind::UnboundedString => format!(
            "{place} is a string without `maxLength`; bound it (100 to 600 characters, 40 to 80 for a name) or list its values in an `enum`"
        ),
        FindingKind::Unenforced(keyword @ ("pattern" | "format")) => format!(
            "{place} uses `{keyword}`, which a grammar-constrained server (llama.cpp) does not enforce; a reply that misses it costs a repair turn"
        ),
        FindingKind::Unenforced(keyword) => format!(
            "{place} puts `{keyword}` on a `number`, which a grammar-constrained server (llama.cpp) does not enforce; prefer an `integer` range (a percentage) or an `enum`"
        ),
    }
}
