//! The CLI's reference from its one source, the clap definitions: `rotbench
//! completions SHELL` (clap_complete) and the hidden `rotbench reference
//! markdown|man` that `make docs-cli` writes into docs/cli.md and docs/rotbench.1
//! (clap-markdown, clap_mangen). `--help` is the same definitions, so the three
//! cannot drift apart; tests/cli_reference.rs fails when the committed page does.

use crate::cli::{Cli, CompletionsArgs, ReferenceArgs, ReferenceFormat};
use anyhow::{anyhow, Result};
use clap::CommandFactory;
use std::io::Write;
use std::process::ExitCode;

/// A shell's completion script on stdout.
pub fn completions(args: CompletionsArgs) -> Result<ExitCode> {
    let mut out = Vec::new();
    clap_complete::generate(args.shell, &mut Cli::command(), "rotbench", &mut out);
    write_stdout(&out)
}

/// The reference page (Markdown) or the man page (roff) on stdout.
pub fn reference(args: ReferenceArgs) -> Result<ExitCode> {
    let bytes = match args.format {
        ReferenceFormat::Markdown => {
            let options = clap_markdown::MarkdownOptions::new()
                .title("CLI reference".to_string())
                .show_footer(false)
                .show_table_of_contents(true);
            clap_markdown::help_markdown_custom::<Cli>(&options).into_bytes()
        }
        ReferenceFormat::Man => {
            let mut out = Vec::new();
            clap_mangen::Man::new(Cli::command()).render(&mut out)?;
            out
        }
    };
    write_stdout(&bytes)
}

fn write_stdout(bytes: &[u8]) -> Result<ExitCode> {
    let mut stdout = std::io::stdout().lock();
    stdout
        .write_all(bytes)
        .and_then(|_| stdout.flush())
        .map_err(|e| anyhow!("cannot write to stdout: {e}"))?;
    Ok(ExitCode::SUCCESS)
}
