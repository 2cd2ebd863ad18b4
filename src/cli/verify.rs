//! `git spectra verify`: check the digest chain and lamport order of the whole log.

use clap::Args;
use serde_json::json;

use super::error::{EXIT_FAILED, Result};
use super::helper::{Access, CommandHelper};
use super::ui::{Format, Output};

/// Check that no event was edited, reordered, removed or injected.
///
/// Recomputes the SHA-256 digest chain and the lamport order from the first event to the last
/// and checks every commit's trailers and attachments against its event.json. Exits 1 naming
/// the first bad event.
///
/// Examples:
///   git spectra verify
///   git spectra verify --format json
#[derive(Debug, Args)]
#[command(verbatim_doc_comment)]
pub struct VerifyArgs {
    /// Output format.
    #[arg(long, value_enum, default_value_t)]
    format: Format,
}

pub fn run(args: VerifyArgs) -> Result<u8> {
    let helper = CommandHelper::open(Access::Reads)?;
    let verification = helper.store().verify_and_record()?;
    let mut out = Output::new();
    if args.format == Format::Json {
        out.json_line(&json!({
            "ok": verification.failure.is_none(),
            "verified": verification.verified,
            "failure": verification.failure.as_ref().map(|failure| json!({
                "position": failure.position,
                "commit": failure.commit.to_string(),
                "id": failure.id,
                "reason": failure.reason,
            })),
        }))?;
    }
    match &verification.failure {
        None => {
            if args.format == Format::Human {
                out.line(format_args!(
                    "verified {} event{}: digest chain and lamport order intact",
                    verification.verified,
                    if verification.verified == 1 { "" } else { "s" }
                ))?;
            }
            out.flush()?;
            Ok(0)
        }
        Some(failure) => {
            out.flush()?;
            crate::cli::ui::error(failure);
            crate::cli::ui::hint(format_args!(
                "the {} event(s) before it verified; inspect it with `git log -p {}`",
                verification.verified, failure.commit
            ));
            Ok(EXIT_FAILED)
        }
    }
}
