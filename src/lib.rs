//! git spectra: an AI-agent orchestrator that lives inside Git.
//!
//! Every decision and outcome is an immutable [`event::Event`], one commit on
//! `refs/spectra/events` written by [`store`]. Everything else (manifests, history, stats) is a
//! projection folded from that log. The `cli` module parses and renders; the library does the
//! work.

#![warn(missing_docs)]

pub mod activity;
pub mod backoff;
pub mod builtin;
pub mod cli;
pub mod confine;
pub mod digest;
pub mod document;
pub mod event;
pub mod failure;
pub mod fold;
pub mod fold_cache;
pub mod hook;
pub mod interrupt;
pub mod llm;
pub mod logging;
pub mod output;
pub mod playbook;
pub mod process_groups;
pub mod projection;
pub mod reconcile;
pub mod registry;
pub mod replay;
pub mod repo;
pub mod report;
pub mod run_lock;
pub mod service_name;
pub mod settings;
pub mod stats;
pub mod store;
pub mod sync;
pub mod test_hook;
pub mod tip_cache;
pub mod trailer_text;
pub mod undo;
pub mod worktree;
pub mod yaml;
