//! `devfd`: parses the command line and dispatches; the work lives in the library crates.

mod args;
mod commands;
mod device_cmds;
mod dtb_cmds;
mod pci_cmds;
mod vfio_cmds;
mod vfio_user_cmds;

use std::process::ExitCode;

use clap::Parser;

use args::{Cli, Command};

fn main() -> ExitCode {
    // A file-size limit (ulimit -f) below a memory device's size then fails that device's
    // ftruncate with EFBIG, reported as an error, instead of killing devfd with SIGXFSZ.
    // SAFETY: setting a signal's disposition to SIG_IGN has no preconditions.
    unsafe { libc::signal(libc::SIGXFSZ, libc::SIG_IGN) };
    let cli = Cli::parse();
    let result = match &cli.command {
        Command::Inspect(a) => commands::inspect(a),
        Command::Lint(a) => commands::lint(a),
        Command::Build(a) => commands::build(a),
        Command::Flat(a) => commands::flat(a),
        Command::Serve(a) => device_cmds::serve(a),
        Command::Ls(a) if a.dtb.is_some() => dtb_cmds::ls(a),
        Command::Ls(a) => device_cmds::ls(a),
        Command::Info(a) if a.dtb.is_some() => dtb_cmds::info(a),
        Command::Info(a) => device_cmds::info(a),
        Command::Read(a) => device_cmds::read(a),
        Command::Write(a) => device_cmds::write(a),
        Command::Dump(a) => device_cmds::dump(a),
        Command::Irq(c) => device_cmds::irq(c),
        Command::Man => commands::man(),
        Command::Completions { shell } => commands::completions(*shell),
    };
    result.unwrap_or_else(|e| {
        eprintln!("devfd: error: {e:#}");
        ExitCode::from(2)
    })
}
