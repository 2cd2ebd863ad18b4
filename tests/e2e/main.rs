//! The one integration-test binary of the crate: each module is one area, sharing support code.
//!
//! One binary links once and runs every test in parallel; see `jj`'s `cli/tests/runner.rs` for
//! the idea.

mod llm;
mod llm_server;
