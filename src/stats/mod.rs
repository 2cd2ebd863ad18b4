//! Stats: how activities, LLM endpoints and playbooks have behaved, folded from the event log
//! alone.
//!
//! The fold has two stages so that it can be cached and extended. [`Tally::add`] reduces each
//! event to the few facts stats need (a sample, a revert or a restore), in log order, and
//! keeps them by event id: a later `events.reverted` can then take an earlier event back out,
//! and an `events.restored` put it back. [`Tally::stats`] turns the facts into the [`Stats`]
//! view, applying the `--since` / `--activity` [`Scope`] and leaving reverted events out (except
//! from the undo count). Because the tally keeps every sample, percentiles are exact:
//! nearest-rank over all of them, no sampling or sketches.
//!
//! Only the payload fields documented in docs/events.md are read. Kinds stats does not use, and
//! events whose payload lacks what stats needs, are skipped. The JSON shape of [`Stats`] is
//! documented in docs/stats.md and is stable within its `schema`.
//!
//! One job per file: `reduce` decodes an event into the entry stats keeps, `tally` folds the
//! entries (and is the [`crate::fold::Fold`] that [`crate::fold_cache`] caches), `build` groups
//! the in-scope samples into the view, `view` is that JSON shape with its percentiles, and
//! `stored` is the compact form the tally is cached in.

mod build;
mod reduce;
mod stored;
mod tally;
mod view;

pub use tally::{Entry, Tally, fold};
pub use view::{
    ActivityStats, Durations, LlmStats, PlaybookStats, RunStats, Stats, StatusErrors, UndoStats,
    nearest_rank,
};

/// The version of the JSON object [`Stats`] serialises to.
pub const STATS_SCHEMA: u32 = 1;

/// Which events a [`Stats`] view covers. Empty fields cover everything.
#[derive(Debug, Clone, Default)]
pub struct Scope {
    /// Only events at or after this instant.
    pub since: Option<jiff::Timestamp>,
    /// Only events recorded by this activity (the envelope's `activity`).
    pub activity: Option<String>,
}

#[cfg(test)]
mod tests;
