//! Argument parsing and rendering. One file per subcommand; no git or HTTP here.

pub mod builtin;
pub mod registry;

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
pub enum Command {
    /// Inspect and check the activities and playbooks.
    Registry(registry::RegistryArgs),
    /// Run a built-in playbook (used by the default playbooks' argv).
    #[command(hide = true)]
    Builtin(builtin::BuiltinArgs),
}

/// Parses the process arguments, runs the command and returns the exit code.
pub fn run() -> u8 {
    let cli = Cli::parse();
    let result = match &cli.command {
        Command::Registry(args) => registry::run(args),
        Command::Builtin(args) => builtin::run(args),
    };
    match result {
        Ok(()) => 0,
        Err(error) => {
            eprintln!("error: {error}");
            if let Some(hint) = error.hint() {
                eprintln!("hint: {hint}");
            }
            error.exit_code()
        }
    }
}
