//! The `git-spectra` binary: parse, run, exit with git's codes.

fn main() -> std::process::ExitCode {
    std::process::ExitCode::from(spectra::cli::run())
}
