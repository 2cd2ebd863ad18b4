//! `git spectra man`: the manual pages, generated from the clap definitions with clap_mangen.
//!
//! `git spectra --help` and `git help spectra` run `man git-spectra`, so `git-spectra.1` has to
//! be installed where `man` looks: `share/man/man1` beside the directory holding the binary is
//! on man's search path for every directory on PATH. The README's install step writes it there.

use std::path::{Path, PathBuf};

use clap::{Args, CommandFactory};

use crate::error::{Error, Result};
use crate::ui::Output;

/// Print the manual page, or write one page per command into a directory.
///
/// Without --dir, prints git-spectra.1 (every subcommand listed, with its summary) on standard
/// output. With --dir, writes git-spectra.1 and one git-spectra-<command>.1 per subcommand
/// there, creating the directory, and prints the paths written.
///
/// Examples:
///   git spectra man | man -l -
///   git spectra man --dir ~/.cargo/share/man/man1
#[derive(Debug, Args)]
#[command(verbatim_doc_comment)]
pub struct ManArgs {
    /// Write every page into this directory (e.g. PREFIX/share/man/man1).
    #[arg(long, value_name = "DIR")]
    dir: Option<PathBuf>,
}

pub fn run(args: ManArgs) -> Result<u8> {
    let mut out = Output::new();
    match args.dir {
        None => out.bytes(&main_page()?)?,
        Some(dir) => {
            for path in write_pages(&dir)? {
                out.line(path.display())?;
            }
        }
    }
    out.flush()?;
    Ok(0)
}

/// `git-spectra.1`: the top-level page, naming every visible subcommand.
pub fn main_page() -> std::io::Result<Vec<u8>> {
    let mut page = Vec::new();
    clap_mangen::Man::new(super::Cli::command()).render(&mut page)?;
    Ok(page)
}

/// Writes `git-spectra.1` and a page per visible subcommand (recursively) into `dir`.
fn write_pages(dir: &Path) -> Result<Vec<PathBuf>> {
    let cannot_write = |err: std::io::Error| {
        Error::failed(format!(
            "cannot write man pages to {}: {err}",
            dir.display()
        ))
    };
    std::fs::create_dir_all(dir).map_err(cannot_write)?;
    clap_mangen::generate_to(super::Cli::command(), dir).map_err(cannot_write)?;
    let mut written: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(cannot_write)?
        .filter_map(|entry| entry.ok().map(|entry| entry.path()))
        .filter(|path| is_our_page(path))
        .collect();
    written.sort();
    Ok(written)
}

fn is_our_page(path: &Path) -> bool {
    path.file_name()
        .and_then(|name| name.to_str())
        .is_some_and(|name| name.starts_with("git-spectra") && name.ends_with(".1"))
}
