//! The run report: one self-contained HTML page a reviewer can open from `file://` or a CI
//! artefact, made from the event log alone (`git spectra report`, docs/report.md).
//!
//! [`gather`] reads the log once and builds a [`Report`]: the runs asked for, each with its
//! timeline, activities, LLM attempts (prompt and reply from the attachments), playbooks,
//! commits and the undos that reverted them; the result of `verify` and the tip it covers; and,
//! across runs, the table of runs and the figures `stats` computes. [`render`] turns it into
//! HTML through one minijinja template with HTML auto-escaping, so everything that came from a
//! model, a playbook or a user is text, never markup. The page loads nothing: its CSS and its
//! one small script are inline, and a Content-Security-Policy forbids any other load.

mod across;
mod fields;
mod gather;
mod group;
mod marks;
mod model;
mod render;
mod timeline;

use crate::failure::{Class, Classify};
use crate::store::StoreError;

pub use gather::{Selection, gather};
pub use model::Report;
pub use render::{CONTENT_SECURITY_POLICY, render};

/// Why a report could not be made.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    /// The log could not be read, or a run name did not resolve.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The log holds no run to report on.
    #[error("the event log holds no run{0}")]
    NoRuns(&'static str),
    /// The template did not render (a bug: the template is part of the binary).
    #[error("the report template did not render: {0}")]
    Template(String),
}

impl Classify for ReportError {
    fn class(&self) -> Class {
        match self {
            ReportError::Store(err) => err.class(),
            ReportError::NoRuns(_) => Class::Failed,
            ReportError::Template(_) => Class::Fatal,
        }
    }

    fn hints(&self) -> Vec<String> {
        match self {
            ReportError::Store(err) => err.hints(),
            ReportError::NoRuns(_) => vec![
                "record one with `git spectra discover \"...\"` or `git spectra run ...`, or widen --since"
                    .to_string(),
            ],
            ReportError::Template(_) => Vec::new(),
        }
    }
}

#[cfg(test)]
mod tests;
