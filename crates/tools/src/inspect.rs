//! Views of a description for people and scripts: the tree, the address map, an annotated hex
//! dump, JSON, and the flat table.

use std::fmt::Write as _;

use devfd_format::wire::*;
use devfd_format::{
    AccessWidths, Description, Interrupt, Location, RawRecord, Region, dt_property_name,
    irq_kind_name, record_type_name,
};
use serde_json::{Value, json};

use crate::describe::{BAR_FLAG_NAMES, IRQ_FLAG_NAMES, REGION_FLAG_NAMES};

/// Names of the set bits of `flags` per `table`, plus `0x…` for bits the table lacks.
pub fn flag_names(flags: u32, table: &[(&str, u32)]) -> Vec<String> {
    let mut names: Vec<String> = table
        .iter()
        .filter(|(_, bit)| flags & bit != 0)
        .map(|(n, _)| (*n).to_string())
        .collect();
    let known = table.iter().fold(0, |acc, (_, b)| acc | b);
    if flags & !known != 0 {
        names.push(format!("{:#x}", flags & !known));
    }
    names
}

/// `1 region`, `2 regions`.
pub fn plural(n: u32, what: &str) -> String {
    if n == 1 {
        format!("1 {what}")
    } else {
        format!("{n} {what}s")
    }
}

/// A size for people: `256 B`, `4 KiB`, `1 MiB`, or bytes when not a round unit.
pub fn human_size(n: u64) -> String {
    const UNITS: [(&str, u64); 4] = [
        ("TiB", 1 << 40),
        ("GiB", 1 << 30),
        ("MiB", 1 << 20),
        ("KiB", 1 << 10),
    ];
    for (unit, scale) in UNITS {
        if n >= scale && n.is_multiple_of(scale) {
            return format!("{} {unit}", n / scale);
        }
    }
    format!("{n} B")
}

fn access(flags: u32) -> String {
    let bit = |b: u32, c: char| if flags & b != 0 { c } else { '-' };
    [
        bit(REGION_READ, 'r'),
        bit(REGION_WRITE, 'w'),
        bit(REGION_MMAP, 'm'),
    ]
    .iter()
    .collect()
}

/// The short name of what a region is: `bar0`, `config`, `rom`, `dt:reg[0]`, or `-`.
pub fn region_kind(r: &Region<'_>) -> String {
    match r.location() {
        Location::PciBar { bar, flags } => {
            let width = if flags & BAR_IO != 0 {
                " io"
            } else if flags & BAR_MEM64 != 0 {
                " mem64"
            } else {
                " mem32"
            };
            let pf = if flags & BAR_PREFETCH != 0 {
                " pref"
            } else {
                ""
            };
            format!("bar{bar}{width}{pf}")
        }
        Location::PciConfig => "config".into(),
        Location::PciRom => "rom".into(),
        Location::None => match (r.dt(), r.dma_address()) {
            (Some(d), _) => format!("dt {}[{}]", dt_property_name(d.property), d.index),
            (None, Some(_)) => "dma window".into(),
            (None, None) => "-".into(),
        },
    }
}

fn identity_line(d: &Description<'_>) -> String {
    let dev = d.device();
    let mut line = String::from("device");
    if let Some(id) = dev.pci_id() {
        let _ = write!(
            line,
            " {:04x}:{:04x} (subsystem {:04x}:{:04x}) class {:06x} rev {:02x}",
            id.vendor, id.device, id.subsystem_vendor, id.subsystem_device, id.class, id.revision
        );
    }
    let compatible: Vec<_> = dev.compatible().collect();
    if !compatible.is_empty() {
        let _ = write!(line, " compatible {}", compatible.join(", "));
    }
    if let Some(label) = dev.label() {
        let _ = write!(line, "  \"{label}\"");
    }
    if let Some(offset) = dev.reset_offset() {
        let _ = write!(line, "  reset word {offset:#x}");
    }
    line
}

fn region_line(r: &Region<'_>) -> String {
    let mut line = format!(
        "region {:<3} {:<18} {:#012x}-{:#012x}  {:>9}  {}",
        r.index,
        region_kind(r),
        r.offset,
        r.end().saturating_sub(1),
        human_size(r.size),
        access(r.flags)
    );
    if let Some(d) = r.dt() {
        let _ = write!(line, "  {}", d.path);
    }
    if let Some(a) = r.dt_address() {
        let _ = write!(line, "  cpu {a:#x}");
    }
    if let Some(a) = r.dma_address() {
        let _ = write!(line, "  bus {a:#x}");
    }
    if let Some(w) = r.access() {
        let _ = write!(line, "  widths {}", widths_text(w));
    }
    if let Some(areas) = r.sparse_areas() {
        let list: Vec<_> = areas
            .map(|(o, s)| format!("{o:#x}+{}", human_size(s)))
            .collect();
        let _ = write!(line, "  mmap only {}", list.join(" "));
    }
    if let Some(l) = r.label() {
        let _ = write!(line, "  \"{l}\"");
    }
    line
}

/// `4`, `4,8`, `1,2,4,8`: the access widths in bytes.
fn widths_text(w: AccessWidths) -> String {
    let list: Vec<String> = w.lengths().map(|n| n.to_string()).collect();
    list.join(",")
}

fn irq_line(i: &Interrupt<'_>) -> String {
    let trigger = if i.level() { "level" } else { "edge" };
    let mut extra = Vec::new();
    if i.maskable() {
        extra.push("maskable");
    }
    if i.automasked() {
        extra.push("automasked");
    }
    let mut line = format!(
        "irq    {:<3} {:<7} x{:<4} {:<5} {:<20} control {:#x}",
        i.index,
        irq_kind_name(i.kind),
        i.count,
        trigger,
        extra.join(" "),
        i.control_offset
    );
    if let Some(d) = i.dt() {
        let _ = write!(line, "  {} interrupts[{}]", d.path, d.index);
    }
    if let Some(x) = i.dt_interrupt() {
        let cells: Vec<String> = x.cells.map(|c| format!("{c:#x}")).collect();
        let _ = write!(line, "  parent {} <{}>", x.controller, cells.join(" "));
    }
    if let Some(l) = i.label() {
        let _ = write!(line, "  \"{l}\"");
    }
    line
}

fn sub_body_len(parent: &RawRecord<'_>) -> Option<usize> {
    match parent.type_code() {
        REC_DEVICE => Some(DEVICE_BODY_LEN),
        REC_REGION => Some(REGION_BODY_LEN),
        REC_INTERRUPT => Some(INTERRUPT_BODY_LEN),
        _ => None,
    }
}

/// The tree and the address map of a description, for people.
pub fn render_text(name: &str, d: &Description<'_>) -> String {
    let (major, minor) = d.version();
    let mut out = format!(
        "{name}: devfd {major}.{minor} {} device, {} bytes of description, {}, {}\n",
        d.bus().name(),
        d.len(),
        plural(d.region_count(), "region"),
        plural(d.interrupt_count(), "interrupt"),
    );
    out.push_str(&identity_line(d));
    out.push('\n');
    let lines: Vec<String> = d
        .regions()
        .map(|r| region_line(&r))
        .chain(d.interrupts().map(|i| irq_line(&i)))
        .collect();
    for (n, line) in lines.iter().enumerate() {
        let branch = if n + 1 == lines.len() {
            "└─"
        } else {
            "├─"
        };
        let _ = writeln!(out, "{branch} {line}");
    }
    out.push_str("\naddress map\n");
    let _ = writeln!(
        out,
        "  {:#010x}  {:>9}  header: magic {:#010x} ({}), version {major}.{minor}, flags {:#x}",
        0,
        "12 B",
        d.bus().magic(),
        String::from_utf8_lossy(&d.bus().magic().to_le_bytes()),
        d.flags()
    );
    for (n, r) in d.records().enumerate() {
        let _ = writeln!(
            out,
            "  {:#010x}  {:>9}  record {n} {}",
            r.offset,
            human_size(r.rec_len() as u64),
            record_type_name(r.rtype)
        );
        if let Some(body) = sub_body_len(&r) {
            for (s, sub) in r.sub_records(body).enumerate() {
                let _ = writeln!(
                    out,
                    "  {:#010x}  {:>9}    {n}.{s} {}",
                    sub.offset,
                    human_size(sub.rec_len() as u64),
                    record_type_name(sub.rtype)
                );
            }
        }
    }
    let mut spans: Vec<(u64, u64, String)> = d
        .regions()
        .map(|r| {
            (
                r.offset,
                r.size,
                format!("region {} {}", r.index, region_kind(&r)),
            )
        })
        .chain(d.interrupts().map(|i| {
            (
                i.control_offset,
                i.control_size(),
                format!("irq {} control ({} x 16 B)", i.index, i.count),
            )
        }))
        .chain(
            d.device()
                .reset_offset()
                .map(|o| (o, RESET_WORD_LEN, "reset word".to_string())),
        )
        .collect();
    spans.sort();
    let mut cursor = d.len() as u64;
    for (offset, size, what) in spans {
        if offset > cursor {
            let _ = writeln!(
                out,
                "  {cursor:#010x}  {:>9}  (hole)",
                human_size(offset - cursor)
            );
        }
        let _ = writeln!(out, "  {offset:#010x}  {:>9}  {what}", human_size(size));
        cursor = offset.saturating_add(size);
    }
    out
}

fn dt_json(d: Option<devfd_format::DtRef<'_>>) -> Value {
    d.map_or(
        Value::Null,
        |d| json!({"path": d.path, "property": dt_property_name(d.property), "index": d.index}),
    )
}

/// A region's `dt`, with the CPU address of DT_ADDRESS (1.2) or null.
fn region_dt_json(r: &Region<'_>) -> Value {
    let mut v = dt_json(r.dt());
    if let Some(o) = v.as_object_mut() {
        o.insert("address".into(), json!(r.dt_address()));
    }
    v
}

/// An interrupt's `dt`, with the controller and cells of DT_INTERRUPT (1.2) or nulls.
fn interrupt_dt_json(i: &Interrupt<'_>) -> Value {
    let mut v = dt_json(i.dt());
    if let Some(o) = v.as_object_mut() {
        let x = i.dt_interrupt();
        o.insert("controller".into(), json!(x.map(|x| x.controller)));
        o.insert(
            "cells".into(),
            json!(x.map(|x| x.cells.collect::<Vec<_>>())),
        );
    }
    v
}

fn location_json(r: &Region<'_>) -> Value {
    match r.location() {
        Location::None => Value::Null,
        Location::PciBar { bar, flags } => {
            json!({"type": "pci_bar", "bar": bar, "flags": flag_names(flags, BAR_FLAG_NAMES)})
        }
        Location::PciConfig => json!({"type": "pci_config"}),
        Location::PciRom => json!({"type": "pci_rom"}),
    }
}

fn record_json(r: &RawRecord<'_>) -> Value {
    let subs: Vec<Value> = sub_body_len(r)
        .map(|b| r.sub_records(b).map(|s| record_json(&s)).collect())
        .unwrap_or_default();
    json!({"offset": r.offset, "type": r.rtype, "name": record_type_name(r.rtype), "rec_len": r.rec_len(), "flags": r.flags, "sub_records": subs})
}

/// The description as JSON, for scripts (schema in README).
pub fn render_json(d: &Description<'_>) -> Value {
    let (major, minor) = d.version();
    let dev = d.device();
    let regions: Vec<Value> = d
        .regions()
        .map(|r| {
            json!({
                "index": r.index, "offset": r.offset, "size": r.size,
                "flags": flag_names(r.flags, REGION_FLAG_NAMES),
                "location": location_json(&r), "dt": region_dt_json(&r), "label": r.label(),
                "sparse_mmap": r.sparse_areas().map(|a| a.map(|(o, s)| json!({"offset": o, "size": s})).collect::<Vec<_>>()),
                "access_widths": r.access_widths().map(|w| w.lengths().collect::<Vec<_>>()),
                "dma_address": r.dma_address(),
            })
        })
        .collect();
    let interrupts: Vec<Value> = d
        .interrupts()
        .map(|i| {
            json!({
                "index": i.index, "count": i.count, "kind": irq_kind_name(i.kind),
                "flags": flag_names(i.flags, IRQ_FLAG_NAMES),
                "control_offset": i.control_offset, "dt": interrupt_dt_json(&i), "label": i.label(),
            })
        })
        .collect();
    json!({
        "bus": d.bus().name(),
        "magic": d.bus().magic(),
        "version": format!("{major}.{minor}"),
        "flags": d.flags(),
        "desc_len": d.len(),
        "device": {
            "pci": dev.pci_id().map(|p| json!({
                "vendor": p.vendor, "device": p.device,
                "subsystem_vendor": p.subsystem_vendor, "subsystem_device": p.subsystem_device,
                "class": p.class, "revision": p.revision,
            })),
            "compatible": dev.compatible().collect::<Vec<_>>(),
            "label": dev.label(),
            "reset": dev.reset_offset(),
        },
        "regions": regions,
        "interrupts": interrupts,
        "records": d.records().map(|r| record_json(&r)).collect::<Vec<_>>(),
    })
}

/// Classic hex dump lines: `{indent}{address}  {16 hex bytes}  |{ascii}|`, addresses from
/// `base`, `digits` hex digits wide.
pub fn hexdump(bytes: &[u8], base: u64, indent: &str, digits: usize) -> String {
    let mut out = String::new();
    for (i, chunk) in bytes.chunks(16).enumerate() {
        let at = base.saturating_add(16 * i as u64);
        let hex: Vec<String> = chunk.iter().map(|b| format!("{b:02x}")).collect();
        let ascii: String = chunk
            .iter()
            .map(|&b| {
                if (0x20..0x7f).contains(&b) {
                    b as char
                } else {
                    '.'
                }
            })
            .collect();
        let _ = writeln!(
            out,
            "{indent}{at:0digits$x}  {:<47}  |{ascii}|",
            hex.join(" ")
        );
    }
    out
}

/// A hex dump of the description with each record's header and body marked.
pub fn render_hex(d: &Description<'_>) -> String {
    let bytes = d.as_bytes();
    let mut out = String::new();
    let mut dump = |from: usize, to: usize, what: &str| {
        let _ = writeln!(out, "{what}");
        out.push_str(&hexdump(&bytes[from..to], from as u64, "  ", 6));
    };
    dump(0, HEADER_LEN, "header");
    for (n, r) in d.records().enumerate() {
        let end = r.offset + r.rec_len();
        match sub_body_len(&r) {
            Some(body) => {
                let body_end = r.offset + RECORD_HEADER_LEN + body;
                dump(
                    r.offset,
                    body_end,
                    &format!(
                        "record {n} {} (rec_len {}, flags {:#x})",
                        record_type_name(r.rtype),
                        r.rec_len(),
                        r.flags
                    ),
                );
                for (s, sub) in r.sub_records(body).enumerate() {
                    dump(
                        sub.offset,
                        sub.offset + sub.rec_len(),
                        &format!(
                            "  record {n}.{s} {} (rec_len {}, flags {:#x})",
                            record_type_name(sub.rtype),
                            sub.rec_len(),
                            sub.flags
                        ),
                    );
                }
            }
            None => dump(
                r.offset,
                end,
                &format!(
                    "record {n} {} (rec_len {}, flags {:#x})",
                    record_type_name(r.rtype),
                    r.rec_len(),
                    r.flags
                ),
            ),
        }
    }
    out
}

/// The flat resource table as aligned text columns.
pub fn render_flat(d: &Description<'_>) -> String {
    let mut out = format!(
        "{:<10} {:<6} {:<14}  {:<10}  {:<26}  {:<16}  {:<5}  {:<7}  PATH/LABEL\n",
        "KIND", "INDEX", "OFFSET", "SIZE", "FLAGS", "LOCATION", "COUNT", "WIDTHS"
    );
    let text_at = |off: u32| -> String {
        if off == 0 {
            return String::new();
        }
        let tail = &d.as_bytes()[off as usize..];
        let end = tail.iter().position(|&b| b == 0).unwrap_or(0);
        String::from_utf8_lossy(&tail[..end]).into_owned()
    };
    for e in d.flat() {
        let (kind, flags) = if e.kind == FLAT_REGION {
            ("region".to_string(), flag_names(e.flags, REGION_FLAG_NAMES))
        } else {
            (
                format!("irq/{}", irq_kind_name(e.irq_kind)),
                flag_names(e.flags, IRQ_FLAG_NAMES),
            )
        };
        let location = match e.location {
            FLAT_LOC_PCI_BAR => format!("bar{}", e.location_index),
            FLAT_LOC_PCI_CONFIG => "config".into(),
            FLAT_LOC_PCI_ROM => "rom".into(),
            FLAT_LOC_DT => format!(
                "dt {}[{}]",
                dt_property_name(e.location_flags),
                e.location_index
            ),
            FLAT_LOC_DMA => format!(
                "dma bus {:#x}",
                u64::from(e.location_flags) << 32 | u64::from(e.location_index)
            ),
            _ => "-".into(),
        };
        let names = [text_at(e.dt_path_offset), text_at(e.label_offset)]
            .into_iter()
            .filter(|s| !s.is_empty())
            .collect::<Vec<_>>()
            .join(" ");
        let widths = match AccessWidths::new(e.access_widths) {
            Some(w) => widths_text(w),
            None => "-".into(),
        };
        let _ = writeln!(
            out,
            "{kind:<10} {:<6} {:#014x}  {:<10}  {:<26}  {location:<16}  {:<5}  {widths:<7}  {names}",
            e.index,
            e.offset,
            human_size(e.size),
            flags.join(","),
            e.count
        );
    }
    out
}

/// The flat table as JSON entries with every field of SPEC.md appendix A.
pub fn render_flat_json(d: &Description<'_>) -> Value {
    Value::Array(
        d.flat()
            .map(|e| {
                json!({
                    "kind": e.kind, "index": e.index, "flags": e.flags, "location": e.location,
                    "offset": e.offset, "size": e.size, "count": e.count,
                    "location_index": e.location_index, "irq_kind": e.irq_kind,
                    "location_flags": e.location_flags, "dt_path_offset": e.dt_path_offset,
                    "label_offset": e.label_offset, "access_widths": e.access_widths,
                })
            })
            .collect(),
    )
}

/// The flat table in its 64-byte little-endian wire layout, entry after entry.
pub fn flat_bytes(d: &Description<'_>) -> Vec<u8> {
    use zerocopy::IntoBytes;
    d.flat()
        .flat_map(|e| e.to_raw().as_bytes().to_vec())
        .collect()
}
