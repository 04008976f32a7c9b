//! `devfd`: parses the command line and dispatches; the work lives in the library crates.

mod args;
mod commands;

use std::process::ExitCode;

use clap::Parser;

use args::{Cli, Command};

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match &cli.command {
        Command::Inspect(a) => commands::inspect(a),
        Command::Lint(a) => commands::lint(a),
        Command::Build(a) => commands::build(a),
        Command::Flat(a) => commands::flat(a),
        Command::Man => commands::man(),
        Command::Completions { shell } => commands::completions(*shell),
    };
    result.unwrap_or_else(|e| {
        eprintln!("devfd: error: {e:#}");
        ExitCode::from(2)
    })
}
