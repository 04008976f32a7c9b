//! The devfd description language: a TOML file a person writes, laid out automatically into a
//! [`DeviceDesc`]. See `docs/DESCRIBE.md` for the language reference.

use std::collections::BTreeSet;

use devfd_format::model::{
    BuildError, DeviceDesc, DtInterruptDesc, DtLocation, InterruptDesc, RegionDesc,
};
use devfd_format::wire::*;
use devfd_format::{AccessWidths, Bus, Location, PciId, dt_property_from_name, irq_kind_from_name};
use serde::Deserialize;

/// Why a description file could not be turned into a description.
#[derive(Debug, thiserror::Error)]
pub enum DescribeError {
    /// The TOML does not parse or does not match the language.
    #[error(transparent)]
    Toml(#[from] toml::de::Error),
    /// A value the language does not accept.
    #[error("{what}: {why}")]
    Invalid {
        /// Which item, e.g. "region 2".
        what: String,
        /// What is wrong with it.
        why: String,
    },
    /// The laid-out description breaks a format rule.
    #[error("the description is not valid")]
    Build(#[from] BuildError),
}

fn invalid(what: impl Into<String>, why: impl Into<String>) -> DescribeError {
    DescribeError::Invalid {
        what: what.into(),
        why: why.into(),
    }
}

/// A size: an integer, or a string such as `"4 KiB"`, `"1MiB"`, `"0x100"`.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
enum Size {
    Int(u64),
    Text(String),
}

impl Size {
    fn bytes(&self, what: &str) -> Result<u64, DescribeError> {
        match self {
            Size::Int(n) => Ok(*n),
            Size::Text(s) => parse_size(s).ok_or_else(|| invalid(what, format!("bad size {s:?}"))),
        }
    }
}

/// Parses `"123"`, `"0x1000"`, `"4 KiB"`, `"1MiB"`, `"2 GiB"`.
pub fn parse_size(s: &str) -> Option<u64> {
    let s = s.trim();
    let (n, unit) = match s.strip_prefix("0x") {
        Some(hex) => {
            let end = hex
                .find(|c: char| !c.is_ascii_hexdigit())
                .unwrap_or(hex.len());
            let (digits, unit) = hex.split_at(end);
            (u64::from_str_radix(digits, 16).ok()?, unit)
        }
        None => {
            let end = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
            let (digits, unit) = s.split_at(end);
            (digits.parse().ok()?, unit)
        }
    };
    let scale: u64 = match unit.trim() {
        "" | "B" => 1,
        "KiB" | "K" => 1 << 10,
        "MiB" | "M" => 1 << 20,
        "GiB" | "G" => 1 << 30,
        "TiB" | "T" => 1 << 40,
        _ => return None,
    };
    n.checked_mul(scale)
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    bus: String,
    label: Option<String>,
    pci: Option<PciSection>,
    #[serde(default)]
    compatible: Vec<String>,
    #[serde(default, rename = "region")]
    regions: Vec<RegionItem>,
    #[serde(default, rename = "interrupt")]
    interrupts: Vec<InterruptItem>,
    /// File offset of the reset word (RESET, version 1.2).
    reset: Option<Size>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PciSection {
    vendor: u16,
    device: u16,
    #[serde(default)]
    subsystem_vendor: u16,
    #[serde(default)]
    subsystem_device: u16,
    #[serde(default)]
    class: u32,
    #[serde(default)]
    revision: u8,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct DtItem {
    path: String,
    property: Option<String>,
    #[serde(default)]
    index: u32,
    /// A region's CPU physical address (DT_ADDRESS, version 1.2).
    address: Option<Size>,
    /// An interrupt's controller node path (DT_INTERRUPT, version 1.2).
    parent: Option<String>,
    /// An interrupt's specifier cells (DT_INTERRUPT, version 1.2).
    cells: Option<Vec<u32>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RegionItem {
    name: Option<String>,
    index: Option<u32>,
    offset: Option<Size>,
    size: Size,
    #[serde(default = "default_access")]
    access: Vec<String>,
    bar: Option<u8>,
    #[serde(default)]
    bar_flags: Vec<String>,
    #[serde(default)]
    config: bool,
    #[serde(default)]
    rom: bool,
    dt: Option<DtItem>,
    sparse: Option<Vec<[Size; 2]>>,
    widths: Option<Vec<u64>>,
    /// The bus address of a DMA window (DMA_WINDOW, version 1.2).
    dma: Option<Size>,
}

fn default_access() -> Vec<String> {
    vec!["read".into(), "write".into()]
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct InterruptItem {
    name: Option<String>,
    index: Option<u32>,
    kind: String,
    #[serde(default = "one")]
    vectors: u32,
    #[serde(default)]
    flags: Vec<String>,
    control_offset: Option<Size>,
    dt: Option<DtItem>,
}

fn one() -> u32 {
    1
}

fn flag_bits(names: &[String], table: &[(&str, u32)], what: &str) -> Result<u32, DescribeError> {
    names.iter().try_fold(0, |acc, name| {
        let bit = table
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, b)| *b)
            .ok_or_else(|| {
                let known: Vec<_> = table.iter().map(|(n, _)| *n).collect();
                invalid(
                    what,
                    format!("unknown flag {name:?} (known: {})", known.join(", ")),
                )
            })?;
        Ok(acc | bit)
    })
}

/// Names of REGION flags, as the language and the tools spell them.
pub const REGION_FLAG_NAMES: &[(&str, u32)] = &[
    ("read", REGION_READ),
    ("write", REGION_WRITE),
    ("mmap", REGION_MMAP),
];
/// Names of INTERRUPT flags.
pub const IRQ_FLAG_NAMES: &[(&str, u32)] = &[
    ("level", IRQ_LEVEL),
    ("maskable", IRQ_MASKABLE),
    ("automasked", IRQ_AUTOMASKED),
];
/// Names of PCI_BAR flags.
pub const BAR_FLAG_NAMES: &[(&str, u32)] = &[
    ("io", BAR_IO),
    ("mem64", BAR_MEM64),
    ("prefetch", BAR_PREFETCH),
];

fn dt_location(
    item: &Option<DtItem>,
    default_property: &str,
    what: &str,
) -> Result<Option<DtLocation>, DescribeError> {
    let Some(item) = item else { return Ok(None) };
    let name = item.property.as_deref().unwrap_or(default_property);
    let property = dt_property_from_name(name).ok_or_else(|| {
        invalid(
            what,
            format!("unknown DT property {name:?} (reg, ranges, interrupts)"),
        )
    })?;
    let mut dt = DtLocation::new(item.path.clone(), property, item.index);
    let region = default_property == "reg";
    if let Some(address) = &item.address {
        if !region {
            return Err(invalid(what, "dt.address is for regions"));
        }
        dt.address = Some(address.bytes(what)?);
    }
    match (&item.parent, &item.cells) {
        (None, None) => {}
        _ if region => {
            return Err(invalid(what, "dt.parent and dt.cells are for interrupts"));
        }
        (Some(controller), cells) => {
            dt.interrupt = Some(DtInterruptDesc {
                controller: controller.clone(),
                cells: cells.clone().unwrap_or_default(),
            });
        }
        (None, Some(_)) => {
            return Err(invalid(what, "dt.cells needs dt.parent"));
        }
    }
    Ok(Some(dt))
}

const fn align_up(n: u64, to: u64) -> u64 {
    n.div_ceil(to).saturating_mul(to)
}

/// Parses a description file and lays it out into a valid description.
///
/// Omitted region indices follow VFIO's PCI numbering (BAR n → n, ROM → 6, config → 7), else
/// the lowest free index. Omitted offsets place regions on page boundaries after the
/// description, in file order, then interrupt control windows on the next page.
pub fn describe(text: &str) -> Result<DeviceDesc, DescribeError> {
    let file: File = toml::from_str(text)?;
    // Before any per-item work, which is not linear in the count.
    if file.regions.len() > MAX_REGIONS {
        return Err(invalid(
            "region",
            format!(
                "{} regions; a description holds at most {MAX_REGIONS}",
                file.regions.len()
            ),
        ));
    }
    if file.interrupts.len() > MAX_INTERRUPTS {
        return Err(invalid(
            "interrupt",
            format!(
                "{} interrupts; a description holds at most {MAX_INTERRUPTS}",
                file.interrupts.len()
            ),
        ));
    }
    let bus = match file.bus.as_str() {
        "pci" => Bus::Pci,
        "platform" => Bus::Platform,
        other => {
            return Err(invalid(
                "bus",
                format!("unknown bus {other:?} (pci, platform)"),
            ));
        }
    };
    let mut d = DeviceDesc::new(bus);
    d.reset = file.reset.as_ref().map(|o| o.bytes("reset")).transpose()?;
    d.label = file.label;
    d.compatible = file.compatible;
    if let Some(p) = &file.pci {
        if p.class > 0x00ff_ffff {
            return Err(invalid(
                "pci",
                format!(
                    "class {:#x} does not fit in 24 bits (base << 16 | sub << 8 | prog-if)",
                    p.class
                ),
            ));
        }
        d.pci_id = Some(PciId {
            vendor: p.vendor,
            device: p.device,
            subsystem_vendor: p.subsystem_vendor,
            subsystem_device: p.subsystem_device,
            class: p.class,
            revision: p.revision,
        });
    }

    // Indices: explicit ones first, then the PCI convention, then the lowest free.
    let mut used: BTreeSet<u32> = file.regions.iter().filter_map(|r| r.index).collect();
    let mut pending_offsets = Vec::new();
    for (n, item) in file.regions.iter().enumerate() {
        let what = format!("region {n}");
        let location = match (item.bar, item.config, item.rom) {
            (None, false, false) => Location::None,
            (Some(bar), false, false) => Location::PciBar {
                bar,
                flags: flag_bits(&item.bar_flags, BAR_FLAG_NAMES, &what)?,
            },
            (None, true, false) => Location::PciConfig,
            (None, false, true) => Location::PciRom,
            _ => return Err(invalid(what, "only one of bar, config and rom")),
        };
        let conventional = match location {
            Location::PciBar { bar, .. } => Some(u32::from(bar)),
            Location::PciRom => Some(6),
            Location::PciConfig => Some(7),
            Location::None => None,
        };
        let index = match item.index.or(conventional.filter(|i| !used.contains(i))) {
            Some(i) => i,
            None => (0..).find(|i| !used.contains(i)).unwrap_or(0),
        };
        used.insert(index);
        let sparse = match &item.sparse {
            None => None,
            Some(areas) => Some(
                areas
                    .iter()
                    .map(|[o, s]| Ok((o.bytes(&what)?, s.bytes(&what)?)))
                    .collect::<Result<Vec<_>, DescribeError>>()?,
            ),
        };
        let access_widths = match &item.widths {
            None => None,
            Some(list) => {
                let lengths = list.iter().map(|&n| usize::try_from(n).unwrap_or(0));
                let widths = AccessWidths::from_lengths(lengths).ok_or_else(|| {
                    invalid(
                        &what,
                        format!("widths {list:?}: a non-empty list of 1, 2, 4 and 8 (bytes)"),
                    )
                })?;
                Some(widths)
            }
        };
        pending_offsets.push(item.offset.as_ref().map(|o| o.bytes(&what)).transpose()?);
        d.regions.push(RegionDesc {
            index,
            offset: 0,
            size: item.size.bytes(&what)?,
            flags: flag_bits(&item.access, REGION_FLAG_NAMES, &what)?,
            location,
            dt: dt_location(&item.dt, "reg", &what)?,
            label: item.name.clone(),
            sparse,
            access_widths,
            dma_address: item.dma.as_ref().map(|a| a.bytes(&what)).transpose()?,
        });
    }
    let mut used: BTreeSet<u32> = file.interrupts.iter().filter_map(|i| i.index).collect();
    let mut pending_controls = Vec::new();
    for (n, item) in file.interrupts.iter().enumerate() {
        let what = format!("interrupt {n}");
        let kind = irq_kind_from_name(&item.kind).ok_or_else(|| {
            invalid(
                &what,
                format!(
                    "unknown kind {:?} (intx, msi, msix, wired, error, request)",
                    item.kind
                ),
            )
        })?;
        let index = item
            .index
            .unwrap_or_else(|| (0..).find(|i| !used.contains(i)).unwrap_or(0));
        used.insert(index);
        pending_controls.push(
            item.control_offset
                .as_ref()
                .map(|o| o.bytes(&what))
                .transpose()?,
        );
        d.interrupts.push(InterruptDesc {
            index,
            count: item.vectors,
            kind,
            flags: flag_bits(&item.flags, IRQ_FLAG_NAMES, &what)?,
            control_offset: 0,
            dt: dt_location(&item.dt, "interrupts", &what)?,
            label: item.name.clone(),
        });
    }

    // Offsets do not change the description's length, so measure it once with placeholders.
    let desc_len = measure(&d)?;
    let mut next = align_up(desc_len, PAGE_SIZE).max(PAGE_SIZE);
    for (r, explicit) in d.regions.iter_mut().zip(pending_offsets) {
        r.offset = explicit.unwrap_or(next);
        next = next.max(align_up(r.offset.saturating_add(r.size), PAGE_SIZE));
    }
    for (i, explicit) in d.interrupts.iter_mut().zip(pending_controls) {
        i.control_offset = explicit.unwrap_or(next);
        let end = i
            .control_offset
            .saturating_add(u64::from(i.count).saturating_mul(IRQ_CONTROL_STRIDE));
        next = next.max(align_up(end, IRQ_CONTROL_STRIDE));
    }
    d.build()?;
    Ok(d)
}

/// The length of `d` once written (offset values do not affect it).
fn measure(d: &DeviceDesc) -> Result<u64, DescribeError> {
    let mut probe = d.clone();
    // Place everything far apart so the probe is valid whatever the sizes.
    let mut next = 1u64 << 40;
    for r in &mut probe.regions {
        r.offset = next;
        next = next.saturating_add(align_up(r.size.max(1), PAGE_SIZE));
    }
    for i in &mut probe.interrupts {
        i.control_offset = next;
        next = next.saturating_add(align_up(
            u64::from(i.count).saturating_mul(IRQ_CONTROL_STRIDE),
            PAGE_SIZE,
        ));
    }
    match probe.build() {
        Ok(bytes) => Ok(bytes.len() as u64),
        Err(e) => Err(e.into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(parse_size("4096"), Some(4096));
        assert_eq!(parse_size("0x100"), Some(256));
        assert_eq!(parse_size("4 KiB"), Some(4096));
        assert_eq!(parse_size("1MiB"), Some(1 << 20));
        assert_eq!(parse_size("2 GiB"), Some(2 << 30));
        assert_eq!(parse_size("1 parsec"), None);
        assert_eq!(parse_size("99999999999 TiB"), None);
    }

    #[test]
    fn pci_conventions_and_layout() {
        let d = describe(
            r#"
            bus = "pci"
            [pci]
            vendor = 0x1234
            device = 0x11e8
            [[region]]
            bar = 2
            size = "1 MiB"
            [[region]]
            config = true
            size = 256
            [[region]]
            size = 16
            [[interrupt]]
            kind = "msi"
            vectors = 4
            "#,
        )
        .unwrap();
        let idx: Vec<_> = d.regions.iter().map(|r| r.index).collect();
        assert_eq!(idx, [2, 7, 0]);
        assert_eq!(d.regions[0].offset, 0x1000);
        assert_eq!(d.regions[1].offset, 0x10_1000);
        assert_eq!(d.regions[2].offset, 0x10_2000);
        assert_eq!(d.interrupts[0].control_offset, 0x10_3000);
    }

    /// The error and its sources, as the CLI prints them.
    fn chain(e: &DescribeError) -> String {
        let mut text = e.to_string();
        let mut source = std::error::Error::source(e);
        while let Some(s) = source {
            text.push_str(&format!(": {s}"));
            source = s.source();
        }
        text
    }

    const PLATFORM: &str =
        "bus = \"platform\"\ncompatible = [\"a,b\"]\n[[region]]\nsize = \"4 KiB\"\n";

    #[test]
    fn widths_become_an_access_record() {
        let d = describe(&format!("{PLATFORM}widths = [8, 4]\n")).unwrap();
        assert_eq!(
            d.regions[0].access_widths,
            AccessWidths::new(WIDTH_4 | WIDTH_8)
        );
        let bytes = d.build().unwrap();
        let parsed = devfd_format::parse(&bytes).unwrap();
        assert_eq!(parsed.version(), (1, 1));
        let d = describe(PLATFORM).unwrap();
        assert_eq!(d.regions[0].access_widths, None);
        assert_eq!(
            devfd_format::parse(&d.build().unwrap()).unwrap().version(),
            (1, 0)
        );
    }

    #[test]
    fn errors_name_the_item() {
        let e = describe("bus = \"pci\"\n[[region]]\nsize = 1\naccess = [\"rw\"]\n").unwrap_err();
        assert!(
            e.to_string().starts_with("region 0: unknown flag \"rw\""),
            "{e}"
        );
        let e = describe("bus = \"pci\"\n[[region]]\nsize = 16\n").unwrap_err();
        assert!(chain(&e).contains("PCI_ID"), "{}", chain(&e));
        let e = describe("bus = \"pci\"\n[pci]\nvendor = 1\ndevice = 2\nclass = 0x1000000\n")
            .unwrap_err();
        assert!(e.to_string().starts_with("pci: class 0x1000000"), "{e}");
        let e = describe(&format!("{PLATFORM}widths = [3]\n")).unwrap_err();
        assert!(e.to_string().starts_with("region 0: widths [3]"), "{e}");
        let e = describe(&format!("{PLATFORM}widths = []\n")).unwrap_err();
        assert!(e.to_string().starts_with("region 0: widths []"), "{e}");
        let e = describe(&format!("{PLATFORM}widths = [4]\naccess = [\"mmap\"]\n")).unwrap_err();
        assert!(chain(&e).contains("MMAP"), "{}", chain(&e));
        let e = describe("bus = \"isa\"\n").unwrap_err();
        assert!(e.to_string().contains("unknown bus"), "{e}");
        let e = describe("bus = \"pci\"\nsurprise = 1\n").unwrap_err();
        assert!(e.to_string().contains("unknown field"), "{e}");
    }
}
