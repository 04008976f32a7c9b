//! The subcommands, each a thin layer over `devfd-format` and `devfd-tools`.

use std::io::Write;
use std::path::Path;
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use clap::CommandFactory;
use devfd_format::{Description, parse};
use devfd_tools::{describe, inspect};

use crate::args::{BuildArgs, Cli, FlatArgs, Input, InspectArgs, LintArgs};

fn read(path: &Path) -> Result<Vec<u8>> {
    if path.as_os_str() == "-" {
        return devfd_tools::read_stdin().context("reading standard input");
    }
    devfd_tools::read_description(path).with_context(|| format!("reading {}", path.display()))
}

/// The built-in demo description: QEMU's edu device, as examples/edu.toml describes it.
const DEMO: &str = include_str!("../../../examples/edu.toml");

fn with_description<T>(
    input: &Input,
    f: impl FnOnce(&str, &Description<'_>) -> Result<T>,
) -> Result<T> {
    let (name, bytes) = match &input.file {
        Some(path) => (path.display().to_string(), read(path)?),
        None => {
            let demo = describe::describe(DEMO).context("the built-in demo")?;
            (
                "built-in demo (examples/edu.toml)".to_string(),
                demo.build()?,
            )
        }
    };
    let d = parse(&bytes).with_context(|| format!("{name} is not a valid devfd description"))?;
    f(&name, &d)
}

/// An error and its causes, each once: `cannot open x: No such file or directory (os error 2)`.
pub fn chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut text = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        text.push_str(": ");
        text.push_str(&c.to_string());
        cause = c.source();
    }
    text
}

pub fn stdout(text: &[u8]) -> Result<()> {
    let mut out = std::io::stdout().lock();
    match out.write_all(text).and_then(|()| out.flush()) {
        // A closed pipe (`devfd inspect x | head`) is not an error worth a message.
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        other => other.context("writing standard output"),
    }
}

pub fn inspect(args: &InspectArgs) -> Result<ExitCode> {
    with_description(&args.input, |name, d| {
        let text = if args.json {
            let mut s = serde_json::to_string_pretty(&inspect::render_json(d))?;
            s.push('\n');
            s
        } else if args.hex {
            inspect::render_hex(d)
        } else {
            inspect::render_text(name, d)
        };
        stdout(text.as_bytes())?;
        Ok(ExitCode::SUCCESS)
    })
}

pub fn lint(args: &LintArgs) -> Result<ExitCode> {
    let mut problems = 0usize;
    let mut report = String::new();
    for file in &args.files {
        let bytes = read(file)?;
        let name = file.display();
        let n = devfd_format::lint(&bytes, &mut |e| report.push_str(&format!("{name}: {e}\n")));
        if n == 0 {
            let d = parse(&bytes).context("lint and parse disagree")?;
            report.push_str(&format!(
                "{name}: ok ({} bytes, {}, {})\n",
                d.len(),
                inspect::plural(d.region_count(), "region"),
                inspect::plural(d.interrupt_count(), "interrupt")
            ));
        }
        problems += n;
    }
    stdout(report.as_bytes())?;
    Ok(if problems == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

/// Largest description file `devfd build` reads: far more than 1,024 regions take, and a
/// bound for inputs such as `/dev/zero`.
const MAX_DESCRIBE_LEN: u64 = 4 << 20;

/// Reads a UTF-8 file of at most `limit` bytes, refusing a longer one without reading it all.
fn read_text(path: &Path, limit: u64) -> Result<String> {
    use std::io::Read;
    let file = std::fs::File::open(path)?;
    let mut text = String::new();
    file.take(limit + 1).read_to_string(&mut text)?;
    if text.len() as u64 > limit {
        bail!("larger than {} MiB: not a description file", limit >> 20);
    }
    Ok(text)
}

pub fn build(args: &BuildArgs) -> Result<ExitCode> {
    let text = read_text(&args.desc, MAX_DESCRIBE_LEN)
        .with_context(|| format!("reading {}", args.desc.display()))?;
    let desc = describe::describe(&text).with_context(|| format!("in {}", args.desc.display()))?;
    let bytes = desc.build().context("building the description")?;
    if args.output.as_os_str() == "-" {
        stdout(&bytes)?;
    } else {
        std::fs::write(&args.output, &bytes)
            .with_context(|| format!("writing {}", args.output.display()))?;
        eprintln!(
            "devfd: wrote {} ({} bytes, {}, {})",
            args.output.display(),
            bytes.len(),
            inspect::plural(desc.regions.len() as u32, "region"),
            inspect::plural(desc.interrupts.len() as u32, "interrupt")
        );
    }
    Ok(ExitCode::SUCCESS)
}

pub fn flat(args: &FlatArgs) -> Result<ExitCode> {
    with_description(&args.input, |_, d| {
        if args.raw {
            stdout(&inspect::flat_bytes(d))?;
        } else if args.json {
            stdout(
                format!(
                    "{}\n",
                    serde_json::to_string_pretty(&inspect::render_flat_json(d))?
                )
                .as_bytes(),
            )?;
        } else {
            stdout(inspect::render_flat(d).as_bytes())?;
        }
        Ok(ExitCode::SUCCESS)
    })
}

pub fn man() -> Result<ExitCode> {
    let mut page = Vec::new();
    clap_mangen::Man::new(Cli::command()).render(&mut page)?;
    stdout(&page)?;
    Ok(ExitCode::SUCCESS)
}

pub fn completions(shell: clap_complete::Shell) -> Result<ExitCode> {
    let mut out = Vec::new();
    clap_complete::generate(shell, &mut Cli::command(), "devfd", &mut out);
    stdout(&out)?;
    Ok(ExitCode::SUCCESS)
}
