//! The end-to-end tests: one binary for the whole crate, one module per area.

mod common;
mod playbook;
mod registry;
