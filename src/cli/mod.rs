//! Argument parsing and rendering. One file per subcommand; no git or HTTP here.

use clap::{Parser, Subcommand};

/// An AI-agent orchestrator that lives inside Git.
#[derive(Debug, Parser)]
#[command(name = "git-spectra", bin_name = "git spectra", version, about)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

/// Every subcommand.
#[derive(Debug, Subcommand)]
pub enum Command {}

/// Parses the process arguments, runs the command and returns the exit code.
pub fn run() -> u8 {
    let _cli = Cli::parse();
    0
}
