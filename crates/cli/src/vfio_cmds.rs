//! `--vfio`: PCI functions bound to vfio-pci, through the kernel's VFIO API.

use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{Context, Result};
use devfd_device::Device;
use devfd_tools::inspect;
use devfd_vfio::{Capability, KernelInfo, VfioDevice};
use serde_json::json;

use crate::commands::stdout;

/// `0000:00:03.0` from `00:03.0` or `0000:00:03.0`.
fn full_bdf(bdf: &str) -> String {
    if bdf.matches(':').count() == 1 {
        format!("0000:{bdf}")
    } else {
        bdf.to_owned()
    }
}

/// The devices of `serve --vfio`, each with a DMA window of `dma` bytes if given.
pub fn serve_devices(bdfs: &[String], dma: Option<u64>) -> Result<Vec<Arc<dyn Device>>> {
    if bdfs.is_empty() {
        return Ok(Vec::new());
    }
    let bdfs: Vec<String> = bdfs.iter().map(|b| full_bdf(b)).collect();
    let devices =
        devfd_vfio::open_all(&bdfs, dma).with_context(|| format!("--vfio {}", bdfs.join(",")))?;
    Ok(devices
        .into_iter()
        .map(|d| Arc::new(d) as Arc<dyn Device>)
        .collect())
}

fn flag_names(flags: u32, names: &[(u32, &'static str)]) -> Vec<&'static str> {
    names
        .iter()
        .filter(|(bit, _)| flags & bit != 0)
        .map(|(_, n)| *n)
        .collect()
}

const REGION_FLAGS: &[(u32, &str)] = &[(1, "read"), (2, "write"), (4, "mmap"), (8, "caps")];
const IRQ_FLAGS: &[(u32, &str)] = &[
    (1, "eventfd"),
    (2, "maskable"),
    (4, "automasked"),
    (8, "noresize"),
];
const DEVICE_FLAGS: &[(u32, &str)] = &[(1, "reset"), (2, "pci"), (128, "caps")];

fn cap_json(c: &Capability) -> serde_json::Value {
    match c {
        Capability::SparseMmap(areas) => json!({"sparse_mmap": areas}),
        Capability::Type { kind, subtype } => json!({"type": kind, "subtype": subtype}),
        Capability::MsixMappable => json!("msix_mappable"),
        Capability::Unknown { id, version } => json!({"unknown": id, "version": version}),
    }
}

/// What a VFIO device's provider (the kernel, or a vfio-user server) reported, as JSON.
pub fn kernel_json(k: &KernelInfo) -> serde_json::Value {
    json!({
        "bdf": k.bdf,
        "flags": flag_names(k.flags, DEVICE_FLAGS),
        "num_regions": k.num_regions,
        "num_irqs": k.num_irqs,
        "regions": k.regions.iter().map(|r| json!({
            "index": r.index, "size": r.size, "offset": r.offset,
            "flags": flag_names(r.flags, REGION_FLAGS),
            "caps": r.caps.iter().map(cap_json).collect::<Vec<_>>(),
        })).collect::<Vec<_>>(),
        "absent_regions": k.absent_regions,
        "irqs": k.irqs.iter().map(|i| json!({
            "index": i.index, "count": i.count, "flags": flag_names(i.flags, IRQ_FLAGS),
        })).collect::<Vec<_>>(),
    })
}

/// What a VFIO device's provider (`who`: "the kernel", "the server") reported, as text.
pub fn kernel_text(k: &KernelInfo, who: &str) -> String {
    let mut out = format!(
        "{}: VFIO device [{}], {} regions, {} irqs (as {who} reports them)\n",
        k.bdf,
        flag_names(k.flags, DEVICE_FLAGS).join(" "),
        k.num_regions,
        k.num_irqs
    );
    for r in &k.regions {
        let caps: Vec<String> = r.caps.iter().map(|c| cap_json(c).to_string()).collect();
        out.push_str(&format!(
            "  region {:<2} size {:#12x}  offset {:#14x}  [{}]{}\n",
            r.index,
            r.size,
            r.offset,
            flag_names(r.flags, REGION_FLAGS).join(" "),
            if caps.is_empty() {
                String::new()
            } else {
                format!("  caps {}", caps.join(" "))
            }
        ));
    }
    for i in &k.absent_regions {
        out.push_str(&format!("  region {i:<2} absent (EINVAL)\n"));
    }
    for i in &k.irqs {
        out.push_str(&format!(
            "  irq    {:<2} count {:<4} [{}]\n",
            i.index,
            i.count,
            flag_names(i.flags, IRQ_FLAGS).join(" ")
        ));
    }
    out
}

/// `devfd info --vfio BDF`: what the kernel reports, and the description built from it.
pub fn info(bdf: &str, json_out: bool) -> Result<ExitCode> {
    let bdf = full_bdf(bdf);
    let container = Arc::new(std::sync::Mutex::new(
        devfd_vfio::Container::new().context("opening the VFIO container")?,
    ));
    let device =
        VfioDevice::open(&container, &bdf, None).with_context(|| format!("--vfio {bdf}"))?;
    let parsed = devfd_format::parse(device.description()).context("the built description")?;
    let text = if json_out {
        let v = json!({
            "kernel": kernel_json(device.kernel_info()),
            "description": inspect::render_json(&parsed),
        });
        format!("{}\n", serde_json::to_string_pretty(&v)?)
    } else {
        format!(
            "{}\n{}",
            kernel_text(device.kernel_info(), "the kernel"),
            inspect::render_text(&format!("vfio {bdf}"), &parsed)
        )
    };
    stdout(text.as_bytes())?;
    Ok(ExitCode::SUCCESS)
}
