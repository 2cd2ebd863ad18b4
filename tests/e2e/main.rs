//! The one integration-test binary: end-to-end tests that drive the real `git-spectra` binary
//! (and, where a test needs many processes, this binary re-run as a writer) in temporary git
//! repositories with a pinned environment. One binary links once and runs every test in
//! parallel.

mod activity_registry;
mod canonical;
mod common;
mod defend_documents;
mod defend_effects;
mod defend_llm;
mod defend_misc;
mod defend_store;
mod defend_verify;
mod discover;
mod documents;
mod effects_d;
mod effects_e;
mod events_cli;
mod existing_services;
mod first_hour_a;
mod first_hour_b;
mod first_hour_c;
mod hooks;
mod lifecycle;
mod llm;
mod llm_server;
mod llm_stream;
mod logging;
mod merge_log;
mod native;
mod offline;
mod places;
mod playbook;
mod reads_do_not_write;
mod registry;
mod replay;
mod report;
mod report_browser;
mod runbooks;
mod stats;
mod store_batch;
mod store_concurrency;
mod sync;
mod tamper;
mod undo;
