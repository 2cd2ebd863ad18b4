//! `git spectra man`: the manual pages, generated from the clap definitions with clap_mangen.
//!
//! `git spectra --help` and `git help spectra` run `man git-spectra`, so `git-spectra.1` has to
//! be installed where `man` looks: `share/man/man1` beside the directory holding the binary is
//! on man's search path for every directory on PATH. The README's install step writes it there.

use std::path::{Path, PathBuf};

use clap::Args;

use super::error::{Error, Result};
use super::ui::Output;

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

/// `git-spectra.1`: the top-level page, naming every visible subcommand, plus the sections a
/// git man page has that clap knows nothing of (exit status, environment, see also).
pub fn main_page() -> std::io::Result<Vec<u8>> {
    let man = clap_mangen::Man::new(super::command());
    let mut page = Vec::new();
    man.render_title(&mut page)?;
    man.render_name_section(&mut page)?;
    man.render_synopsis_section(&mut page)?;
    man.render_description_section(&mut page)?;
    man.render_options_section(&mut page)?;
    man.render_subcommands_section(&mut page)?;
    page.extend_from_slice(GIT_SECTIONS.as_bytes());
    man.render_version_section(&mut page)?;
    Ok(page)
}

/// Hand-written roff: what stays true whatever subcommands exist.
const GIT_SECTIONS: &str = r#".SH "EXIT STATUS"
.TP
0
success (also when the reader of a pipe goes away, as in \fBgit spectra log | head \-1\fR)
.TP
1
a run, check or verification failed
.TP
2
usage: bad flags or arguments
.TP
128
fatal: not a git repository, an unreadable store, a setting that cannot be read
.PP
Messages on standard error start with \fBerror:\fR, \fBfatal:\fR, \fBwarning:\fR or \fBhint:\fR, as git's do.
.SH CONFIGURATION
Every setting comes from a flag, then a \fBSPECTRA_*\fR environment variable, then \fBgit config spectra.*\fR (including \fBgit \-c\fR), then its default. \fBgit spectra status\fR shows what is in effect; docs/config.md lists every key.
.SH ENVIRONMENT
.TP
\fBSPECTRA_LLM_URL\fR, \fBSPECTRA_LLM_MODEL\fR, \fBSPECTRA_LLM_API_KEY\fR
the chat\-completions endpoint, model and key (git config \fBspectra.llm.url\fR, \fBmodel\fR, \fBapiKey\fR)
.TP
\fBSPECTRA_LOG\fR
a log filter for diagnostics on standard error
.TP
\fBSPECTRA_HOOKS\fR
\fB0\fR turns the post\-commit hook off
.TP
\fBSPECTRA_COLOR\fR
\fBauto\fR, \fBalways\fR or \fBnever\fR, as \fB\-\-color\fR (git config \fBspectra.color\fR)
.TP
\fBNO_COLOR\fR
any non\-empty value turns colour off, unless \fB\-\-color\fR, \fBSPECTRA_COLOR\fR or \fBspectra.color\fR says \fBalways\fR
.TP
\fBGIT_PAGER_IN_USE\fR
set by git when \fBgit \-p\fR or \fBpager.spectra\fR made it start its pager; colour stays on
.SH "SEE ALSO"
\fBgit\-spectra\-<command>\fR(1) for each subcommand, \fBgit\fR(1), \fBgit\-log\fR(1)
"#;

/// Writes `git-spectra.1` and a page per visible subcommand (recursively) into `dir`.
fn write_pages(dir: &Path) -> Result<Vec<PathBuf>> {
    let cannot_write = |err: std::io::Error| {
        Error::failed(format!(
            "cannot write man pages to {}: {err}",
            dir.display()
        ))
    };
    std::fs::create_dir_all(dir).map_err(cannot_write)?;
    clap_mangen::generate_to(super::command(), dir).map_err(cannot_write)?;
    // The generated top-level page lacks the hand-written sections; replace it.
    std::fs::write(
        dir.join("git-spectra.1"),
        main_page().map_err(cannot_write)?,
    )
    .map_err(cannot_write)?;
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
