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

/// The libraries' log records on standard error, `devfd: LEVEL: message`: warnings and errors
/// by default (a vfio-user client dropped, a device call that failed); `DEVFD_LOG=info` or
/// `debug` shows more.
struct StderrLog;

impl log::Log for StderrLog {
    fn enabled(&self, metadata: &log::Metadata<'_>) -> bool {
        metadata.level() <= log::max_level()
    }

    fn log(&self, record: &log::Record<'_>) {
        if self.enabled(record.metadata()) {
            use std::io::Write;
            // A closed stderr must not panic a server thread: write, don't eprintln.
            let _ = writeln!(
                std::io::stderr().lock(),
                "devfd: {}: {}",
                record.level().as_str().to_lowercase(),
                record.args()
            );
        }
    }

    fn flush(&self) {}
}

fn main() -> ExitCode {
    let level = match std::env::var("DEVFD_LOG").as_deref() {
        Ok("debug") => log::LevelFilter::Debug,
        Ok("info") => log::LevelFilter::Info,
        Ok("off") => log::LevelFilter::Off,
        _ => log::LevelFilter::Warn,
    };
    if log::set_logger(&StderrLog).is_ok() {
        log::set_max_level(level);
    }
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
