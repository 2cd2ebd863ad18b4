//! Service names: how a name is normalised and the one rule it must then satisfy, wherever it
//! comes from (discover's decision, `--service`, a built-in playbook's argument).
//!
//! A name is a few lowercase words joined by `-` that say what the service *is*
//! (`log-shipper`, `billing`), never what to do with it (`deploy-portal`) or a filler word
//! (`my-app`). An invalid name is reported with the rule; it is never silently replaced by an
//! invented one.

/// Words that describe an action, not a service.
const ACTION_VERBS: [&str; 13] = [
    "deploy",
    "build",
    "create",
    "make",
    "add",
    "setup",
    "configure",
    "install",
    "run",
    "execute",
    "start",
    "stop",
    "launch",
];

/// Words that join other words rather than name anything.
const PREPOSITIONS: [&str; 8] = ["to", "from", "in", "on", "at", "for", "with", "by"];

/// Words that every service could carry and that therefore say nothing.
const RESERVED: [&str; 4] = ["service", "app", "application", "system"];

/// The longest service name accepted: a DNS label, so a name can become a host or a branch part.
pub const MAX_LEN: usize = 63;

/// The rule, quoted to the model and to the user when a name breaks it.
pub const RULE: &str = "a service name is lowercase letters and digits in words joined by single hyphens \
(^[a-z][a-z0-9]*(-[a-z0-9]+)*$), at most 63 characters, and no word may be an action verb (deploy build create make add setup \
configure install run execute start stop launch), a preposition (to from in on at for with by) or a \
reserved word (service app application system)";

/// Lowercases, turns spaces and underscores into `-`, strips a `spectra-` prefix and a `-service`
/// suffix, and collapses repeated `-`.
pub fn normalise(raw: &str) -> String {
    let lowered: String = raw
        .trim()
        .to_lowercase()
        .chars()
        .map(|c| if c == ' ' || c == '_' { '-' } else { c })
        .collect();
    let collapsed = collapse_hyphens(&lowered);
    let without_prefix = collapsed.strip_prefix("spectra-").unwrap_or(&collapsed);
    let without_suffix = without_prefix
        .strip_suffix("-service")
        .unwrap_or(without_prefix);
    without_suffix.trim_matches('-').to_string()
}

fn collapse_hyphens(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if c == '-' && out.ends_with('-') {
            continue;
        }
        out.push(c);
    }
    out
}

/// Checks the rule; the error says exactly which part is wrong.
pub fn validate(name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err("the name is empty".into());
    }
    if name.len() > MAX_LEN {
        return Err(format!(
            "`{name}` is {} characters long, more than {MAX_LEN}",
            name.len()
        ));
    }
    if !matches_pattern(name) {
        return Err(format!(
            "`{name}` must be lowercase words of letters and digits joined by single hyphens, starting with a letter"
        ));
    }
    for word in name.split('-') {
        if ACTION_VERBS.contains(&word) {
            return Err(format!("`{name}` contains the action verb `{word}`"));
        }
        if PREPOSITIONS.contains(&word) {
            return Err(format!("`{name}` contains the preposition `{word}`"));
        }
        if RESERVED.contains(&word) {
            return Err(format!("`{name}` contains the reserved word `{word}`"));
        }
    }
    Ok(())
}

/// `^[a-z][a-z0-9]*(-[a-z0-9]+)*$`
fn matches_pattern(name: &str) -> bool {
    name.starts_with(|c: char| c.is_ascii_lowercase())
        && name.split('-').all(|word| {
            !word.is_empty()
                && word
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
        })
}

/// Normalises then validates: the name to use, or why there is none.
pub fn accept(raw: &str) -> Result<String, String> {
    let name = normalise(raw);
    validate(&name).map(|()| name)
}

/// A name derived from the idea text, without a model: the words before "service", else the
/// last two meaningful words. It is validated like any other name by the caller.
pub fn derive_from_idea(idea: &str) -> Option<String> {
    let words: Vec<String> = idea
        .split(|c: char| !c.is_ascii_alphanumeric())
        .filter(|word| !word.is_empty())
        .map(str::to_lowercase)
        .collect();
    let meaningful = |word: &&String| {
        !STOP_WORDS.contains(&word.as_str())
            && !ACTION_VERBS.contains(&word.as_str())
            && !PREPOSITIONS.contains(&word.as_str())
            && !RESERVED.contains(&word.as_str())
    };
    let before_service = words
        .iter()
        .position(|word| word == "service")
        .map(|at| &words[..at]);
    let source: &[String] = match before_service {
        Some(before) if before.iter().any(|w| meaningful(&w)) => before,
        _ => &words,
    };
    let picked: Vec<&String> = source.iter().filter(meaningful).collect();
    let tail = &picked[picked.len().saturating_sub(2)..];
    (!tail.is_empty()).then(|| {
        tail.iter()
            .map(|word| word.as_str())
            .collect::<Vec<_>>()
            .join("-")
    })
}

const STOP_WORDS: [&str; 24] = [
    "a", "an", "the", "and", "or", "of", "that", "this", "our", "my", "we", "i", "need", "needs",
    "want", "new", "which", "so", "it", "is", "be", "can", "should", "would",
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalises_as_documented() {
        assert_eq!(normalise("Logging Service"), "logging");
        assert_eq!(normalise("spectra-log_shipper"), "log-shipper");
        assert_eq!(normalise("  Billing--API  "), "billing-api");
        assert_eq!(normalise("payments-service"), "payments");
    }

    #[test]
    fn rejects_verbs_prepositions_and_reserved_words() {
        assert!(validate("logging").is_ok());
        assert!(validate("log-shipper2").is_ok());
        assert!(
            validate("deploy-portal")
                .unwrap_err()
                .contains("action verb `deploy`")
        );
        assert!(
            validate("my-app")
                .unwrap_err()
                .contains("reserved word `app`")
        );
        assert!(
            validate("logs-to-s3")
                .unwrap_err()
                .contains("preposition `to`")
        );
        assert!(validate("2fast").is_err());
        assert!(validate("Bad").is_err());
        assert!(validate("a--b").is_err());
        assert!(validate(&"a".repeat(63)).is_ok());
        assert!(
            validate(&"a".repeat(64))
                .unwrap_err()
                .contains("more than 63")
        );
        assert!(accept("Logging Service").is_ok());
        assert!(accept("service").is_err());
    }

    #[test]
    fn derives_a_name_from_the_idea() {
        assert_eq!(
            derive_from_idea("A logging service for payments").as_deref(),
            Some("logging")
        );
        assert_eq!(
            derive_from_idea("We need to track error budgets").as_deref(),
            Some("error-budgets")
        );
        assert_eq!(derive_from_idea("the a an"), None);
    }
}
