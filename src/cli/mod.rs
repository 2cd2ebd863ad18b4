//! Argument parsing and rendering. One file per subcommand; no git or HTTP here.

mod doctor;

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
    Doctor(doctor::DoctorArgs),
}

/// Parses the process arguments, runs the command and returns the exit code.
pub fn run() -> u8 {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Doctor(args) => doctor::run(args),
    };
    match result {
        Ok(code) => code,
        Err(err) => {
            eprintln!("error: {err}");
            if let Some(hint) = err.hint() {
                eprintln!("hint: {hint}");
            }
            err.exit_code()
        }
    }
}
