//! The page: one minijinja template (`report.html`, compiled into the binary) rendered with
//! HTML auto-escaping, so every value of the [`Report`] is text in the page.

use minijinja::syntax::SyntaxConfig;
use minijinja::value::Serde;
use minijinja::{AutoEscape, Environment, UndefinedBehavior, context};

use super::ReportError;
use super::model::Report;

/// The page's Content-Security-Policy: nothing may be loaded from anywhere; only the page's own
/// inline style and script run, and images only from `data:` URLs.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'; img-src data:; base-uri 'none'; form-action 'none'";

const TEMPLATE: &str = include_str!("report.html");

/// The report as one self-contained HTML page.
pub fn render(report: &Report) -> Result<String, ReportError> {
    let mut env = Environment::new();
    // Whatever the template's name, everything it prints is escaped for HTML.
    env.set_auto_escape_callback(|_| AutoEscape::Html);
    env.set_undefined_behavior(UndefinedBehavior::Strict);
    let syntax = SyntaxConfig::builder()
        .trim_blocks(true)
        .lstrip_blocks(true)
        .build()
        .map_err(|err| ReportError::Template(err.to_string()))?;
    env.set_syntax(syntax);
    let template = env
        .template_from_named_str("report.html", TEMPLATE)
        .map_err(|err| ReportError::Template(err.to_string()))?;
    template
        .render(context! { report => Serde(report), csp => CONTENT_SECURITY_POLICY })
        .map_err(|err| ReportError::Template(err.to_string()))
}
