//! The live-device subcommands: serve, ls, info, read, write, dump, irq.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use devfd_client::{ClientError, DeviceFile};
use devfd_device::Device;
use devfd_fuse::{ServeOptions, TraceEvent};
use devfd_tools::inspect;
use serde_json::json;

use crate::args::{DumpArgs, InfoArgs, IrqCommand, LsArgs, ReadArgs, ServeArgs, WriteArgs};
use crate::commands::{chain, stdout};

/// Where `devfd serve` mounts by default, and where `devfd ls` looks.
pub fn default_mount() -> PathBuf {
    // SAFETY: geteuid has no preconditions and cannot fail.
    let root = unsafe { libc::geteuid() } == 0;
    if root {
        return PathBuf::from("/run/devfd");
    }
    match std::env::var_os("XDG_RUNTIME_DIR") {
        Some(dir) => PathBuf::from(dir).join("devfd"),
        // SAFETY: getuid has no preconditions and cannot fail.
        None => std::env::temp_dir().join(format!("devfd-{}", unsafe { libc::getuid() })),
    }
}

/// File name for a device: its DEVICE label (or kind) plus a number, `edu0`, `rtc0`, …
/// Linear in the number of devices: each base name keeps its next free number.
pub fn device_names(devices: &[Arc<dyn Device>]) -> Vec<String> {
    let mut taken: std::collections::HashSet<String> = std::collections::HashSet::new();
    let mut next: std::collections::HashMap<String, u64> = std::collections::HashMap::new();
    devices
        .iter()
        .map(|d| {
            let base = devfd_format::parse(d.description())
                .ok()
                .and_then(|p| p.device().label().map(str::to_owned))
                .filter(|l| {
                    !l.is_empty()
                        && l.chars()
                            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
                })
                .unwrap_or_else(|| d.kind().to_owned());
            let n = next.entry(base.clone()).or_insert(0);
            // A base ending in a digit can collide with another base's numbered name.
            let name = loop {
                let candidate = format!("{base}{n}");
                *n += 1;
                if !taken.contains(&candidate) {
                    break candidate;
                }
            };
            taken.insert(name.clone());
            name
        })
        .collect()
}

fn trace_line(e: &TraceEvent<'_>) -> String {
    let what = match e.target {
        Some(devfd_device::Target::Region { index, offset }) => {
            format!("region {index} +{offset:#x}")
        }
        Some(devfd_device::Target::Control {
            index,
            vector,
            field,
        }) => format!("irq {index} vector {vector} {field:?}"),
        Some(devfd_device::Target::Description { offset, .. }) => {
            format!("description +{offset:#x}")
        }
        Some(devfd_device::Target::Reset) => "reset word".into(),
        None => format!("offset {:#x}", e.offset),
    };
    let value = e.value.map(|v| format!(" = {v:#x}")).unwrap_or_default();
    let dir = if e.write { "write" } else { "read " };
    let errno = if e.errno == 0 {
        String::new()
    } else {
        // io::Error's Display appends " (os error N)"; the errno is printed already.
        let message = std::io::Error::from_raw_os_error(e.errno).to_string();
        let message = message
            .strip_suffix(&format!(" (os error {})", e.errno))
            .unwrap_or(&message);
        format!(" -> errno {} ({message})", e.errno)
    };
    format!(
        "devfd: {} {dir} {what} width {}{value}{errno}",
        e.device, e.len
    )
}

pub fn serve(args: &ServeArgs) -> Result<ExitCode> {
    let dma = args
        .dma
        .as_deref()
        .map(|size| devfd_emu::parse_size("--dma", size))
        .transpose()?;
    let demo = args.devices.is_empty()
        && args.pci.is_empty()
        && args.dtb.is_none()
        && args.vfio.is_empty()
        && args.vfio_user_connect.is_empty();
    if let Some(path) = &args.vfio_user {
        return crate::vfio_user_cmds::serve(args, path, demo);
    }
    let mut devices: Vec<Arc<dyn Device>> = if demo && dma.is_none() {
        devfd_emu::demo_devices().context("creating the demo devices")?
    } else {
        let demo_specs = ["edu", "pl031", "memory"].map(String::from);
        let specs = if demo {
            &demo_specs[..]
        } else {
            &args.devices[..]
        };
        specs
            .iter()
            .map(|spec| {
                // --dma gives the devices with a DMA engine (edu) a window, unless the spec
                // sizes one itself.
                let spec = match dma {
                    Some(size)
                        if spec.split(',').next() == Some("edu") && !spec.contains("dma=") =>
                    {
                        format!("{spec},dma={size}")
                    }
                    _ => spec.clone(),
                };
                devfd_emu::from_spec_str(&spec).with_context(|| format!("--device {spec}"))
            })
            .collect::<Result<_>>()?
    };
    devices.extend(crate::vfio_cmds::serve_devices(&args.vfio, dma)?);
    devices.extend(crate::vfio_user_cmds::connect_devices(
        &args.vfio_user_connect,
        dma,
    )?);
    devices.extend(crate::pci_cmds::serve_devices(args)?);
    let dtb = crate::dtb_cmds::serve_devices(args)?;
    devices.extend(dtb.devices());
    let mount = args.mount.clone().unwrap_or_else(default_mount);
    let names = device_names(&devices);
    dtb.named(&devices, &names);
    let mut options = ServeOptions::new(&mount);
    options.allow_other = args.allow_other;
    options.call_bound = Duration::from_millis(args.bound_ms.max(1));
    options.threads = args.threads.max(1);
    if args.trace {
        // Runs on a FUSE thread: a closed stderr must not panic it, so write, don't eprintln.
        options.trace = Some(Box::new(|e| {
            let _ = writeln!(std::io::stderr().lock(), "{}", trace_line(e));
        }));
    }
    // Handle SIGINT/SIGTERM from here on (instead of dying), so the mount is taken down.
    let mut signals = signal_hook::iterator::Signals::new([
        signal_hook::consts::SIGINT,
        signal_hook::consts::SIGTERM,
    ])
    .context("installing signal handlers")?;
    let descriptions: Vec<Vec<u8>> = devices.iter().map(|d| d.description().to_vec()).collect();
    let server = devfd_fuse::serve(names.iter().cloned().zip(devices).collect(), options)?;
    // The mount point as resolved (a symbolic link is followed to its target).
    let mount = server.mountpoint().to_owned();
    let summaries: Vec<String> = descriptions
        .iter()
        .zip(&names)
        .map(|(d, name)| summary_of(&mount.join(name), d))
        .collect();
    // The banner is best effort: a closed stdout must not stop the server.
    let connection = server
        .connection()
        .map(|n| format!(" (FUSE connection {n})"))
        .unwrap_or_default();
    let mut banner = format!(
        "devfd: serving {} device(s) at {}{connection}\n",
        summaries.len(),
        mount.display()
    );
    for line in &summaries {
        banner.push_str(&format!("  {line}\n"));
    }
    banner.push_str("devfd: Ctrl-C (SIGINT) or SIGTERM unmounts and exits\n");
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(banner.as_bytes()).and_then(|()| out.flush());
    drop(out);
    let signal = signals.forever().next();
    server
        .unmount()
        .with_context(|| format!("unmounting {}", mount.display()))?;
    eprintln!(
        "devfd: signal {}, unmounted {}",
        signal.unwrap_or_default(),
        mount.display()
    );
    Ok(ExitCode::SUCCESS)
}

/// One line about a device: path, bus, identity, regions, interrupts.
fn summary_of(path: &Path, desc: &[u8]) -> String {
    let Ok(d) = devfd_format::parse(desc) else {
        return format!("{}  (invalid description)", path.display());
    };
    let dev = d.device();
    let identity = match dev.pci_id() {
        Some(id) => format!("{:04x}:{:04x}", id.vendor, id.device),
        None => dev.compatible().next().unwrap_or("-").to_owned(),
    };
    // `index:what:size`, e.g. `0:bar0:1MiB`, `7:config:256B`, `0:4KiB`.
    let regions: Vec<String> = d
        .regions()
        .map(|r| {
            let kind = inspect::region_kind(&r);
            let what = kind
                .split(' ')
                .next()
                .filter(|k| *k != "-")
                .map(|k| format!("{k}:"))
                .unwrap_or_default();
            format!(
                "{}:{what}{}",
                r.index,
                inspect::human_size(r.size).replace(' ', "")
            )
        })
        .collect();
    // `index:kind*vectors`, e.g. `1:msi*1`.
    let irqs: Vec<String> = d
        .interrupts()
        .map(|i| {
            format!(
                "{}:{}*{}",
                i.index,
                devfd_format::irq_kind_name(i.kind),
                i.count
            )
        })
        .collect();
    format!(
        "{:<24} {:<8} {:<16} regions [{}] irqs [{}]",
        path.display(),
        d.bus().name(),
        identity,
        regions.join(" "),
        irqs.join(" ")
    )
}

pub fn ls(args: &LsArgs) -> Result<ExitCode> {
    if args.pci {
        return crate::pci_cmds::ls(args.json);
    }
    let dir = args.dir.clone().unwrap_or_else(default_mount);
    let entries = devfd_client::list(&dir).with_context(|| format!("listing {}", dir.display()))?;
    if args.json {
        let list: Vec<_> = entries
            .iter()
            .map(|(path, dev)| match dev {
                Ok(dev) => {
                    let d = dev.description();
                    let mut v = json!({
                        "path": path, "bus": d.bus().name(),
                        "regions": d.region_count(), "interrupts": d.interrupt_count(),
                        "label": d.device().label(),
                    });
                    if let Some(id) = d.pci_id() {
                        v["vendor"] = json!(id.vendor);
                        v["device"] = json!(id.device);
                        v["class"] = json!(id.class);
                    }
                    let compatible: Vec<&str> = d.device().compatible().collect();
                    if !compatible.is_empty() {
                        v["compatible"] = json!(compatible);
                    }
                    v
                }
                Err(e) => json!({"path": path, "error": chain(e)}),
            })
            .collect();
        stdout(format!("{}\n", serde_json::to_string_pretty(&list)?).as_bytes())?;
    } else {
        let mut out = String::new();
        for (path, dev) in &entries {
            match dev {
                Ok(dev) => out.push_str(&summary_of(path, dev.description_bytes())),
                Err(e) => out.push_str(&format!("{}  error: {}", path.display(), chain(e))),
            }
            out.push('\n');
        }
        stdout(out.as_bytes())?;
    }
    Ok(ExitCode::SUCCESS)
}

fn open(path: &Path) -> Result<DeviceFile> {
    DeviceFile::open(path).with_context(|| format!("opening {}", path.display()))
}

pub fn info(args: &InfoArgs) -> Result<ExitCode> {
    if let Some(bdf) = &args.vfio {
        return crate::vfio_cmds::info(bdf, args.json);
    }
    if let Some(socket) = &args.vfio_user {
        return crate::vfio_user_cmds::info(socket, args.json);
    }
    if let Some(bdf) = &args.pci {
        return crate::pci_cmds::info(bdf, args.json);
    }
    let Some(path) = &args.path else {
        bail!("devfd info needs a device file (or --pci BDF)");
    };
    let dev = open(path)?;
    let d = dev.description();
    let text = if args.json {
        format!(
            "{}\n",
            serde_json::to_string_pretty(&inspect::render_json(&d))?
        )
    } else {
        inspect::render_text(&path.display().to_string(), &d)
    };
    stdout(text.as_bytes())?;
    Ok(ExitCode::SUCCESS)
}

fn read_one(
    dev: &DeviceFile,
    region: devfd_client::RegionInfo,
    offset: u64,
    width: u8,
) -> Result<u64, ClientError> {
    Ok(match width {
        1 => u64::from(dev.read_u8(region, offset)?),
        2 => u64::from(dev.read_u16(region, offset)?),
        8 => dev.read_u64(region, offset)?,
        _ => u64::from(dev.read_u32(region, offset)?),
    })
}

pub fn read(args: &ReadArgs) -> Result<ExitCode> {
    let dev = open(&args.path)?;
    let region = dev.resolve_region(&args.region)?;
    // Streamed: each value is out before the next access, so a failure part-way still shows
    // what was read, and any count runs in constant memory.
    let mut out = Stream::new();
    for i in 0..args.count {
        let offset = i
            .checked_mul(u64::from(args.width))
            .and_then(|d| args.offset.checked_add(d))
            .context("offset overflows")?;
        let v = read_one(&dev, region, offset, args.width);
        let v = match v {
            Ok(v) => v,
            Err(e) => {
                out.finish()?;
                return Err(e).with_context(|| {
                    format!(
                        "reading {} bytes at {} +{offset:#x}",
                        args.width, args.region
                    )
                });
            }
        };
        let line = format!("{v:#0w$x}\n", w = 2 + 2 * usize::from(args.width));
        if !out.write(line.as_bytes())? {
            break;
        }
    }
    out.finish()?;
    Ok(ExitCode::SUCCESS)
}

/// Standard output for streamed results: buffered, with a closed pipe (`| head`) ending the
/// stream quietly rather than failing it.
struct Stream {
    out: std::io::BufWriter<std::io::StdoutLock<'static>>,
    closed: bool,
}

impl Stream {
    fn new() -> Self {
        Stream {
            out: std::io::BufWriter::with_capacity(64 * 1024, std::io::stdout().lock()),
            closed: false,
        }
    }

    /// Writes `bytes`; false once the reader has gone.
    fn write(&mut self, bytes: &[u8]) -> Result<bool> {
        if self.closed {
            return Ok(false);
        }
        match self.out.write_all(bytes) {
            Ok(()) => Ok(true),
            Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => {
                self.closed = true;
                Ok(false)
            }
            Err(e) => Err(e).context("writing standard output"),
        }
    }

    fn finish(&mut self) -> Result<()> {
        if self.closed {
            return Ok(());
        }
        match self.out.flush() {
            Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
            other => other.context("writing standard output"),
        }
    }
}

pub fn write(args: &WriteArgs) -> Result<ExitCode> {
    let dev = open(&args.path)?;
    let region = dev.resolve_region(&args.region)?;
    let v = args.value;
    let fits = args.width == 8 || v >> (8 * u32::from(args.width)) == 0;
    if !fits {
        bail!("value {v:#x} does not fit in {} byte(s)", args.width);
    }
    let at = args.offset;
    match args.width {
        1 => dev.write_u8(region, at, v as u8),
        2 => dev.write_u16(region, at, v as u16),
        8 => dev.write_u64(region, at, v),
        _ => dev.write_u32(region, at, v as u32),
    }
    .with_context(|| format!("writing {v:#x} at {} +{at:#x}", args.region))?;
    Ok(ExitCode::SUCCESS)
}

pub fn dump(args: &DumpArgs) -> Result<ExitCode> {
    let dev = open(&args.path)?;
    let region = dev.resolve_region(&args.region)?;
    if args.offset >= region.size {
        bail!(
            "offset {:#x} is outside {} ({} bytes)",
            args.offset,
            args.region,
            region.size
        );
    }
    let available = region.size - args.offset;
    let len = args
        .length
        .unwrap_or(available.min(64 * 1024))
        .min(available);
    // Streamed in chunks of whole dump lines: constant memory for any length.
    const CHUNK: u64 = 64 * 1024;
    let mut buf = vec![0u8; len.min(CHUNK) as usize];
    let mut out = Stream::new();
    let mut done = 0;
    while done < len {
        let n = (len - done).min(CHUNK);
        let chunk = &mut buf[..n as usize];
        let at = args.offset + done;
        if let Err(e) = dev.read_bulk(region, at, chunk) {
            out.finish()?;
            return Err(e)
                .with_context(|| format!("reading {n} bytes at {} +{at:#x}", args.region));
        }
        if !out.write(inspect::hexdump(chunk, at, "", 8).as_bytes())? {
            break;
        }
        done += n;
    }
    out.finish()?;
    Ok(ExitCode::SUCCESS)
}

pub fn irq(cmd: &IrqCommand) -> Result<ExitCode> {
    match cmd {
        IrqCommand::Wait {
            path,
            index,
            timeout,
        } => {
            let dev = open(path)?;
            let irq = dev.resolve_interrupt(index)?;
            match dev.wait_interrupt(irq, timeout.map(Duration::from_millis)) {
                Ok(n) => {
                    stdout(format!("irq {}: {n} event(s)\n", irq.index).as_bytes())?;
                    Ok(ExitCode::SUCCESS)
                }
                Err(ClientError::TimedOut) => {
                    eprintln!(
                        "devfd: irq {}: no event within {} ms",
                        irq.index,
                        timeout.unwrap_or(0)
                    );
                    Ok(ExitCode::from(1))
                }
                Err(e) => Err(e.into()),
            }
        }
        IrqCommand::Mask {
            path,
            index,
            vector,
        }
        | IrqCommand::Unmask {
            path,
            index,
            vector,
        } => {
            let dev = open(path)?;
            let irq = dev.resolve_interrupt(index)?;
            if matches!(cmd, IrqCommand::Mask { .. }) {
                dev.mask(irq, *vector)?;
            } else {
                dev.unmask(irq, *vector)?;
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}
