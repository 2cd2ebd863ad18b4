//! The one integration-test binary: end-to-end tests that drive the real `git-spectra` binary
//! (and, where a test needs many processes, this binary re-run as a writer) in temporary git
//! repositories with a pinned environment.

mod common;
mod events_cli;
mod places;
mod playbook;
mod registry;
mod store_concurrency;
mod tamper;
