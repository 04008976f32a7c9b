//! The device-tree forms of `ls`, `info` and `serve` (`--dtb FILE|DIR`): the device-tree
//! source (crate devfd-dtb) and its emulated models (devfd-emu's registry by `compatible`).

use std::path::Path;
use std::process::ExitCode;
use std::sync::{Arc, OnceLock};

use anyhow::{Context, Result, bail};
use devfd_device::Device;
use devfd_dtb::{DeviceTree, DtNode, Trigger};
use devfd_emu::{DtModelOptions, LineSink, Pl011Options};
use devfd_tools::inspect;
use serde_json::{Value, json};

use crate::args::{InfoArgs, LsArgs, ServeArgs};
use crate::commands::stdout;

/// Reads and checks a device tree from a file or directory.
fn load(path: &Path) -> Result<Vec<u8>> {
    Ok(devfd_dtb::load(path)?)
}

/// Parses bytes [`load`] checked.
fn parse<'a>(path: &Path, bytes: &'a [u8]) -> Result<DeviceTree<'a>> {
    DeviceTree::parse(bytes).with_context(|| format!("{}: invalid device tree", path.display()))
}

/// A number that may not fit JSON's integers (a 3-cell PCI address): a number when it fits in
/// 64 bits, else a hex string.
fn wide(n: u128) -> Value {
    match u64::try_from(n) {
        Ok(n) => json!(n),
        Err(_) => json!(format!("{n:#x}")),
    }
}

fn node_json(n: &DtNode<'_>) -> Value {
    let regs: Vec<Value> = n
        .regs
        .iter()
        .map(|r| {
            json!({
                "index": r.index, "address": r.address, "size": r.size.map(wide),
                "bus_address": wide(r.bus_address), "label": r.label,
            })
        })
        .collect();
    let interrupts: Vec<Value> = n
        .interrupts
        .iter()
        .map(|i| {
            let trigger = match i.trigger {
                Trigger::Level => "level",
                Trigger::Edge => "edge",
            };
            json!({
                "index": i.index, "parent": i.parent, "cells": i.cells,
                "trigger": trigger, "label": i.label,
            })
        })
        .collect();
    let names = |list: Vec<Option<&str>>| -> Value {
        if list.iter().all(Option::is_none) {
            Value::Null
        } else {
            json!(list)
        }
    };
    json!({
        "path": n.path,
        "compatible": n.compatible,
        "status": n.status,
        "enabled": n.enabled,
        "device": n.is_device(),
        "model": devfd_emu::dt_model(n.compatible.iter().copied()).map(|m| m.kind),
        "regs": regs,
        "interrupts": interrupts,
        "labels": {
            "reg-names": names(n.regs.iter().map(|r| r.label).collect()),
            "interrupt-names": names(n.interrupts.iter().map(|i| i.label).collect()),
        },
    })
}

/// One line about a node: path, compatible, status, regs, interrupts.
fn node_line(n: &DtNode<'_>) -> String {
    let compatible = if n.compatible.is_empty() {
        "-".to_owned()
    } else {
        n.compatible.join(",")
    };
    let regs: Vec<String> = n
        .regs
        .iter()
        .map(|r| match (r.address, r.size) {
            (Some(a), Some(s)) => format!("{a:#x}+{}", size_text(s)),
            // Not memory-mapped: the address on the parent's bus.
            (_, Some(s)) => format!("bus:{:#x}+{}", r.bus_address, size_text(s)),
            (_, None) => format!("bus:{:#x}", r.bus_address),
        })
        .collect();
    let irqs: Vec<String> = n
        .interrupts
        .iter()
        .map(|i| {
            let cells: Vec<String> = i.cells.iter().map(|c| format!("{c:#x}")).collect();
            format!("{}<{}>", i.parent, cells.join(" "))
        })
        .collect();
    format!(
        "{:<40} {:<32} {:<8} regs [{}] irqs [{}]",
        n.path,
        compatible,
        n.status,
        regs.join(" "),
        irqs.join(" ")
    )
}

fn size_text(s: u128) -> String {
    match u64::try_from(s) {
        Ok(s) => inspect::human_size(s).replace(' ', ""),
        Err(_) => format!("{s:#x}"),
    }
}

/// `devfd ls --dtb FILE|DIR [--json]`.
pub fn ls(args: &LsArgs) -> Result<ExitCode> {
    let Some(path) = &args.dtb else {
        bail!("devfd ls --dtb needs a device tree");
    };
    let bytes = load(path)?;
    let dt = parse(path, &bytes)?;
    let out = if args.json {
        let list: Vec<Value> = dt.nodes().iter().map(node_json).collect();
        format!("{}\n", serde_json::to_string_pretty(&list)?)
    } else {
        let mut out = String::new();
        for n in dt.nodes() {
            out.push_str(&node_line(n));
            out.push('\n');
        }
        out
    };
    stdout(out.as_bytes())?;
    Ok(ExitCode::SUCCESS)
}

/// `devfd info --dtb FILE|DIR NODE [--json]`: the description devfd builds for the node.
pub fn info(args: &InfoArgs) -> Result<ExitCode> {
    let (Some(file), Some(node)) = (&args.dtb, &args.path) else {
        bail!("devfd info --dtb FILE needs the node's path (e.g. /pl031@9010000)");
    };
    let bytes = load(file)?;
    let dt = parse(file, &bytes)?;
    let path = node.to_string_lossy();
    let n = find(&dt, file, &path)?;
    if n.compatible.is_empty() {
        bail!(
            "{path} has no `compatible`: a platform device description needs one (SPEC.md rule 51)"
        );
    }
    if !n.enabled {
        eprintln!(
            "devfd: note: {path} has status \"{}\": devfd serve --dtb skips it",
            n.status
        );
    }
    let desc = n.build()?;
    let d = devfd_format::parse(&desc).context("the built description does not parse (a bug)")?;
    let text = if args.json {
        format!(
            "{}\n",
            serde_json::to_string_pretty(&inspect::render_json(&d))?
        )
    } else {
        inspect::render_text(&format!("{}:{path}", file.display()), &d)
    };
    stdout(text.as_bytes())?;
    Ok(ExitCode::SUCCESS)
}

/// The node at `path`, which must have `reg` or interrupts.
fn find<'t, 'a>(dt: &'t DeviceTree<'a>, file: &Path, path: &str) -> Result<&'t DtNode<'a>> {
    if let Some(n) = dt.node(path) {
        return Ok(n);
    }
    if dt.tree().find(path).is_some() {
        bail!(
            "{path} in {} has neither reg nor interrupts: it is no device",
            file.display()
        );
    }
    bail!("{}: no node {path}", file.display())
}

/// The file name a device's log lines wait for (set once the server has named it).
type Name = Arc<OnceLock<String>>;

/// The devices `devfd serve --dtb` made, and the names their UART logs wait for.
#[derive(Default)]
pub struct DtbDevices {
    devices: Vec<(Arc<dyn Device>, Name)>,
}

impl DtbDevices {
    /// The devices, in document order of their nodes.
    pub fn devices(&self) -> Vec<Arc<dyn Device>> {
        self.devices.iter().map(|(d, _)| d.clone()).collect()
    }

    /// Tells each device the file name the server gave it (`uart0`), for its log lines.
    pub fn named(&self, all: &[Arc<dyn Device>], names: &[String]) {
        for (device, name) in &self.devices {
            if let Some(n) = all
                .iter()
                .zip(names)
                .find_map(|(d, n)| Arc::ptr_eq(d, device).then_some(n))
            {
                let _ = name.set(n.clone());
            }
        }
    }
}

/// The devices of `devfd serve --dtb FILE [--node PATH…]`: every chosen node whose
/// `compatible` has an emulated model, made from the node's description. Without `--node`
/// every device node is chosen and those without a model are skipped with a note; a node
/// named by `--node` must have one.
pub fn serve_devices(args: &ServeArgs) -> Result<DtbDevices> {
    let Some(file) = &args.dtb else {
        return Ok(DtbDevices::default());
    };
    let bytes = load(file)?;
    let dt = parse(file, &bytes)?;
    let named = !args.nodes.is_empty();
    let chosen: Vec<&DtNode<'_>> = if named {
        args.nodes
            .iter()
            .map(|p| {
                let n = find(&dt, file, p).with_context(|| format!("--node {p}"))?;
                if !n.is_device() {
                    let why = if n.compatible.is_empty() {
                        "it has no `compatible`".to_owned()
                    } else if !n.enabled {
                        format!("its status is \"{}\"", n.status)
                    } else {
                        "it has no memory-mapped reg and no interrupt".to_owned()
                    };
                    bail!("--node {p}: not a device: {why}");
                }
                Ok(n)
            })
            .collect::<Result<_>>()?
    } else {
        dt.devices().collect()
    };
    let mut out = DtbDevices::default();
    let mut skipped = 0usize;
    for n in chosen {
        let Some(model) = devfd_emu::dt_model(n.compatible.iter().copied()) else {
            let models: Vec<&str> = devfd_emu::DT_MODELS.iter().map(|m| m.compatible).collect();
            if named {
                bail!(
                    "--node {}: no emulated model for {} (models: {})",
                    n.path,
                    n.compatible.join(", "),
                    models.join(", ")
                );
            }
            eprintln!(
                "devfd: note: skipping {} ({}): no emulated model",
                n.path,
                n.compatible.join(", ")
            );
            skipped += 1;
            continue;
        };
        let name = Arc::new(OnceLock::new());
        let log_name = name.clone();
        let fallback = model.label;
        let output: LineSink = Arc::new(move |line: &[u8]| {
            let n = log_name.get().map_or(fallback, String::as_str);
            devfd_emu::log_line(n, line);
        });
        let options = DtModelOptions {
            uart: Some(Pl011Options { output }),
            rtc: None,
        };
        let desc = n.description()?;
        let device = model
            .make(desc, &options)
            .with_context(|| format!("{}: {} ({})", file.display(), n.path, model.compatible))?;
        out.devices.push((device, name));
    }
    if out.devices.is_empty() && args.devices.is_empty() && args.pci.is_empty() {
        bail!(
            "{}: none of its {skipped} device node(s) has an emulated model (models: {})",
            file.display(),
            devfd_emu::DT_MODELS
                .iter()
                .map(|m| m.compatible)
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    Ok(out)
}
