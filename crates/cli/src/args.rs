//! The one clap definition: help text, the man page and shell completions all come from it.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

/// devfd: device files that describe themselves.
///
/// A devfd description is the fixed header and typed records at offset 0 of a device file
/// (SPEC.md). These commands show, check, build and flatten descriptions, whether they sit in a
/// file on disk or at offset 0 of a live device file.
///
/// Exit status: 0 success; 1 `lint` found problems; 2 bad input or usage. Anything else
/// (101: a panic) is a bug worth reporting.
#[derive(Debug, Parser)]
#[command(name = "devfd", version, max_term_width = 100)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Show a description as a tree plus an address map of the file.
    Inspect(InspectArgs),
    /// Check a description against every rule of SPEC.md; list every problem with its byte offset.
    Lint(LintArgs),
    /// Build a description from a TOML description file (see examples/ and docs/DESCRIBE.md).
    Build(BuildArgs),
    /// Print the flat resource table: every region and interrupt as one fixed-size entry.
    Flat(FlatArgs),
    /// Print the man page (roff) to standard output.
    Man,
    /// Print a shell completion script to standard output.
    Completions {
        /// The shell.
        shell: clap_complete::Shell,
    },
}

/// A description to read: a file, a device file, or `-` for standard input.
#[derive(Debug, Args)]
pub struct Input {
    /// Description blob or device file (`-`: standard input). Without it, the built-in demo
    /// device (QEMU's edu, from examples/edu.toml).
    pub file: Option<PathBuf>,
}

/// Arguments of `devfd inspect`.
#[derive(Debug, Args)]
pub struct InspectArgs {
    #[command(flatten)]
    pub input: Input,
    /// Print JSON (bus, version, device, regions, interrupts, records) instead of the tree.
    #[arg(long, conflicts_with = "hex")]
    pub json: bool,
    /// Print an annotated hex dump of every record instead of the tree.
    #[arg(long)]
    pub hex: bool,
}

/// Arguments of `devfd lint`.
#[derive(Debug, Args)]
pub struct LintArgs {
    /// Description blobs or device files.
    #[arg(required = true)]
    pub files: Vec<PathBuf>,
}

/// Arguments of `devfd build`.
#[derive(Debug, Args)]
pub struct BuildArgs {
    /// The TOML description file.
    pub desc: PathBuf,
    /// Where to write the description (`-`: standard output).
    #[arg(short, long)]
    pub output: PathBuf,
}

/// Arguments of `devfd flat`.
#[derive(Debug, Args)]
pub struct FlatArgs {
    #[command(flatten)]
    pub input: Input,
    /// Print the entries as JSON.
    #[arg(long, conflicts_with = "raw")]
    pub json: bool,
    /// Write the 64-byte little-endian entries of SPEC.md appendix A to standard output.
    #[arg(long)]
    pub raw: bool,
}
