//! The machine's own PCI functions, from sysfs: `devfd ls --pci`, `devfd info --pci BDF`,
//! and the devices `devfd serve --pci BDF,…` adds to what it serves.
//!
//! The sysfs root is `/sys/bus/pci/devices`, or `$DEVFD_SYSFS_PCI` if set (a fake tree, for
//! tests).

use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{Context, Result};
use devfd_device::Device;
use devfd_sysfs_pci::{
    AccessOptions, BarKind, PciFunction, Policy, Sysfs, SysfsPciDevice, capability_text, class_name,
};
use devfd_tools::inspect;
use serde_json::{Value, json};

use crate::args::ServeArgs;
use crate::commands::{chain, stdout};

/// The sysfs tree to read.
fn sysfs() -> Sysfs {
    match std::env::var_os("DEVFD_SYSFS_PCI") {
        Some(root) => Sysfs::new(root),
        None => Sysfs::default(),
    }
}

/// A size without spaces: `512KiB`, `32B`.
fn size(n: u64) -> String {
    inspect::human_size(n).replace(' ', "")
}

/// One line like lspci's: address, class, vendor:device, revision, driver, BARs, interrupts.
fn line(f: &PciFunction) -> String {
    let bars: Vec<String> = f
        .bars
        .iter()
        .map(|b| {
            let pf = if b.prefetchable { ",pref" } else { "" };
            format!("{}:{}{pf}:{}", b.index, b.kind.name(), size(b.size))
        })
        .chain(f.rom.iter().map(|r| format!("rom:{}", size(r.size))))
        .collect();
    let irqs: Vec<String> = f
        .interrupt_counts()
        .iter()
        .map(|(kind, count)| format!("{kind}*{count}"))
        .collect();
    let mut text = format!(
        "{} {} [{:04x}]: {:04x}:{:04x} (rev {:02x})  driver {}  bars [{}]  irqs [{}]",
        f.bdf(),
        class_name(f.id.class),
        f.id.class >> 8,
        f.id.vendor,
        f.id.device,
        f.id.revision,
        f.driver.as_deref().unwrap_or("-"),
        bars.join(" "),
        irqs.join(" ")
    );
    if !f.capabilities_read {
        text.push_str("  (capabilities, MSI, MSI-X: config space past 64 bytes needs root)");
    }
    text
}

/// The JSON object of one function (README, `devfd ls --pci --json`).
fn function_json(f: &PciFunction) -> Value {
    let regions: Vec<Value> = f
        .bars
        .iter()
        .map(|b| {
            json!({
                "bar": b.index, "kind": b.kind.name(), "prefetchable": b.prefetchable,
                "size": b.size, "address": b.address,
            })
        })
        .collect();
    let mut interrupts = Vec::new();
    if let Some(intx) = &f.intx {
        interrupts.push(json!({
            "kind": "intx", "count": 1, "pin": intx.pin_name().to_string(),
            "line": intx.line, "irq": intx.irq,
        }));
    }
    if let Some(msi) = &f.msi {
        interrupts.push(json!({
            "kind": "msi", "count": msi.vectors, "enabled": msi.enabled,
            "is_64bit": msi.is_64bit, "per_vector_mask": msi.per_vector_mask,
            "offset": msi.offset,
        }));
    }
    if let Some(msix) = &f.msix {
        interrupts.push(json!({
            "kind": "msix", "count": msix.table_size, "enabled": msix.enabled,
            "function_masked": msix.function_masked,
            "table_bar": msix.table_bar, "table_offset": msix.table_offset,
            "pba_bar": msix.pba_bar, "pba_offset": msix.pba_offset, "offset": msix.offset,
        }));
    }
    let capabilities: Option<Vec<Value>> = f.capabilities_read.then(|| {
        f.capabilities
            .iter()
            .map(|c| {
                json!({
                    "offset": c.offset, "id": c.id, "extended": c.extended,
                    "version": c.version, "name": c.name(),
                })
            })
            .collect()
    });
    json!({
        "bdf": f.bdf(),
        "vendor": f.id.vendor,
        "device": f.id.device,
        "subsystem_vendor": f.id.subsystem_vendor,
        "subsystem_device": f.id.subsystem_device,
        "class": f.id.class,
        "class_name": class_name(f.id.class),
        "revision": f.id.revision,
        "header_type": f.header.header_type,
        "driver": f.driver,
        "regions": regions,
        "rom_size": f.rom.map(|r| r.size),
        "config_size": f.config_size,
        "interrupts": interrupts,
        "msi_bus": f.msi_bus,
        "msi_irqs": f.msi_irqs,
        "capabilities": capabilities,
    })
}

/// `devfd ls --pci [--json]`.
pub fn ls(json: bool) -> Result<ExitCode> {
    let sysfs = sysfs();
    let list = sysfs
        .list()
        .with_context(|| format!("listing PCI functions in {}", sysfs.root().display()))?;
    let text = if json {
        let values: Vec<Value> = list
            .iter()
            .map(|(address, f)| match f {
                Ok(f) => function_json(f),
                Err(e) => json!({"bdf": address.to_string(), "error": chain(e)}),
            })
            .collect();
        format!("{}\n", serde_json::to_string_pretty(&values)?)
    } else {
        let mut out = String::new();
        for (address, f) in &list {
            match f {
                Ok(f) => out.push_str(&line(f)),
                Err(e) => out.push_str(&format!("{address}  error: {}", chain(e))),
            }
            out.push('\n');
        }
        out
    };
    stdout(text.as_bytes())?;
    Ok(ExitCode::SUCCESS)
}

/// `devfd info --pci BDF [--json]`: the description devfd builds for the function (as
/// `devfd serve --pci` serves it without `--allow-write`/`--allow-bar-access`), then what
/// sysfs says beyond it.
pub fn info(bdf: &str, json: bool) -> Result<ExitCode> {
    let sysfs = sysfs();
    let address = sysfs.find(bdf)?;
    let f = sysfs.read(address)?;
    if !f.capabilities_read {
        return Err(devfd_sysfs_pci::SysfsError::NeedsRoot { bdf: f.bdf() }.into());
    }
    let bytes = f
        .device_desc(Policy::default())
        .with_context(|| format!("describing {}", f.bdf()))?
        .build()
        .with_context(|| format!("building the description of {}", f.bdf()))?;
    let d = devfd_format::parse(&bytes).context("the description built does not parse")?;
    let text = if json {
        let mut v = inspect::render_json(&d);
        v["pci"] = function_json(&f);
        format!("{}\n", serde_json::to_string_pretty(&v)?)
    } else {
        let mut out = inspect::render_text(&format!("{} (sysfs)", f.bdf()), &d);
        out.push_str("\nsysfs\n");
        out.push_str(&format!("  {}\n", line(&f)));
        out.push_str(&format!(
            "  config space {} bytes, header type {}, driver {}, msi_bus {}\n",
            f.config_size,
            f.header.header_type,
            f.driver.as_deref().unwrap_or("none"),
            f.msi_bus.map_or("-", |b| if b { "1" } else { "0" }),
        ));
        if let Some(intx) = &f.intx {
            let irq = intx.irq.map_or("-".to_owned(), |i| i.to_string());
            out.push_str(&format!(
                "  INTx: pin {}, line {}, irq {irq}\n",
                intx.pin_name(),
                intx.line
            ));
        }
        if let Some(msi) = &f.msi {
            out.push_str(&format!(
                "  MSI: {} vector(s), 64-bit {}, per-vector mask {}, enabled {}\n",
                msi.vectors, msi.is_64bit, msi.per_vector_mask, msi.enabled
            ));
        }
        if let Some(m) = &f.msix {
            out.push_str(&format!(
                "  MSI-X: {} entries, table BAR {} +{:#x}, PBA BAR {} +{:#x}, enabled {}\n",
                m.table_size, m.table_bar, m.table_offset, m.pba_bar, m.pba_offset, m.enabled
            ));
        }
        for c in &f.capabilities {
            out.push_str(&format!("  capability {}\n", capability_text(c)));
        }
        if !f.interrupt_counts().is_empty() {
            out.push_str("  interrupts are described but never delivered: that needs VFIO\n");
        }
        let io = f.bars.iter().any(|b| b.kind == BarKind::Io);
        out.push_str(&format!(
            "  served without --allow-bar-access the BARs refuse access (EPERM); without \
             --allow-write config space is read-only{}\n",
            if io {
                "; I/O BARs take 1, 2 or 4 bytes"
            } else {
                ""
            }
        ));
        out
    };
    stdout(text.as_bytes())?;
    Ok(ExitCode::SUCCESS)
}

/// The functions `devfd serve --pci BDF,…` serves, opened with the access the flags allow.
/// Prints, on standard error, what each refuses and why.
pub fn serve_devices(args: &ServeArgs) -> Result<Vec<Arc<dyn Device>>> {
    let sysfs = sysfs();
    let options = AccessOptions {
        allow_write: args.allow_write,
        allow_bar_access: args.allow_bar_access,
    };
    let mut devices: Vec<Arc<dyn Device>> = Vec::new();
    for bdf in &args.pci {
        let address = sysfs.find(bdf).with_context(|| format!("--pci {bdf}"))?;
        let dev = SysfsPciDevice::open(&sysfs, address, options)
            .with_context(|| format!("--pci {bdf}"))?;
        for note in dev.notes() {
            eprintln!("devfd: {note}");
        }
        devices.push(Arc::new(dev));
    }
    Ok(devices)
}
