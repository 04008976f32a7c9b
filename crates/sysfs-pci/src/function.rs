//! A PCI function as devfd sees it: identity, BARs, ROM, config space size, interrupts and
//! capabilities, made from what sysfs holds ([`analyze`], pure, no I/O), and the devfd
//! description of it ([`PciFunction::device_desc`]).

use std::fmt;

use devfd_format::model::{DeviceDesc, InterruptDesc, RegionDesc};
use devfd_format::wire::{
    BAR_IO, BAR_MEM64, BAR_PREFETCH, IRQ_AUTOMASKED, IRQ_CONTROL_STRIDE, IRQ_KIND_INTX,
    IRQ_KIND_MSI, IRQ_KIND_MSIX, IRQ_LEVEL, IRQ_MASKABLE, MAX_FILE_OFFSET, PAGE_SIZE, REGION_READ,
    REGION_WRITE, WIDTH_1, WIDTH_2, WIDTH_4,
};
use devfd_format::{AccessWidths, Bus, Location, PciId};

use crate::config::{self, Capability, ConfigRead, EXTENDED_CONFIG_SPACE_LEN, Header, Msi, MsiX};
use crate::error::{AnalyzeError, ConfigError, ConfigErrorKind, UNPRIVILEGED_CONFIG_LEN};
use crate::resource::{
    IORESOURCE_IO, IORESOURCE_MEM, IORESOURCE_MEM_64, IORESOURCE_PREFETCH, ROM_LINE, parse_resource,
};

/// A PCI address: domain, bus, device, function.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Address {
    /// PCI domain (segment).
    pub domain: u32,
    /// Bus number.
    pub bus: u8,
    /// Device number, 0–31.
    pub device: u8,
    /// Function number, 0–7.
    pub function: u8,
}

impl Address {
    /// Parses `DOMAIN:BUS:DEVICE.FUNCTION` (`0000:00:03.0`, the sysfs name) or
    /// `BUS:DEVICE.FUNCTION` (lspci's short form, domain 0). Hexadecimal, either case.
    pub fn parse(text: &str) -> Option<Address> {
        fn hex(s: &str, max_digits: usize) -> Option<u32> {
            if s.is_empty() || s.len() > max_digits || !s.bytes().all(|b| b.is_ascii_hexdigit()) {
                return None;
            }
            u32::from_str_radix(s, 16).ok()
        }
        let (rest, function) = text.rsplit_once('.')?;
        let mut parts = rest.rsplitn(3, ':');
        let device = parts.next()?;
        let bus = parts.next()?;
        let domain = parts.next().unwrap_or("0");
        if device.len() != 2 || bus.len() != 2 || function.len() != 1 {
            return None;
        }
        let device = u8::try_from(hex(device, 2)?).ok().filter(|d| *d < 32)?;
        let function = u8::try_from(hex(function, 1)?).ok().filter(|f| *f < 8)?;
        Some(Address {
            domain: hex(domain, 8)?,
            bus: u8::try_from(hex(bus, 2)?).ok()?,
            device,
            function,
        })
    }
}

impl fmt::Display for Address {
    /// The sysfs name: `0000:00:03.0`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{:04x}:{:02x}:{:02x}.{:x}",
            self.domain, self.bus, self.device, self.function
        )
    }
}

/// What a BAR decodes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum BarKind {
    /// I/O ports.
    Io,
    /// 32-bit memory.
    Mem32,
    /// 64-bit memory (the BAR also takes the next slot).
    Mem64,
}

impl BarKind {
    /// `io`, `mem32` or `mem64`.
    pub fn name(self) -> &'static str {
        match self {
            BarKind::Io => "io",
            BarKind::Mem32 => "mem32",
            BarKind::Mem64 => "mem64",
        }
    }
}

/// A BAR the kernel assigned a resource to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Bar {
    /// BAR number, 0–5.
    pub index: u8,
    /// I/O, 32-bit or 64-bit memory.
    pub kind: BarKind,
    /// Prefetchable memory.
    pub prefetchable: bool,
    /// Size in bytes.
    pub size: u64,
    /// Bus address (from `resource`).
    pub address: u64,
}

impl Bar {
    /// The PCI_BAR record's `BAR_*` flags.
    pub fn bar_flags(&self) -> u32 {
        let mut flags = match self.kind {
            BarKind::Io => BAR_IO,
            BarKind::Mem32 => 0,
            BarKind::Mem64 => BAR_MEM64,
        };
        if self.prefetchable {
            flags |= BAR_PREFETCH;
        }
        flags
    }
}

/// The expansion ROM.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rom {
    /// Size in bytes.
    pub size: u64,
    /// Bus address.
    pub address: u64,
    /// Its decoder is enabled (bit 0 of the ROM register).
    pub enabled: bool,
}

/// Legacy INTx.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Intx {
    /// 1–4: INTA#–INTD#.
    pub pin: u8,
    /// The interrupt line register.
    pub line: u8,
    /// The Linux IRQ the kernel assigned (sysfs `irq`).
    pub irq: Option<u32>,
}

impl Intx {
    /// `A`–`D`.
    pub fn pin_name(&self) -> char {
        match self.pin {
            1 => 'A',
            2 => 'B',
            3 => 'C',
            _ => 'D',
        }
    }
}

/// What sysfs holds about a function besides configuration space, as read
/// ([`crate::Sysfs`] reads it; tests and the fuzzer make it up).
#[derive(Debug, Clone, Copy, Default)]
pub struct Inputs<'a> {
    /// The `config` file's size: 256 or 4096.
    pub config_size: u64,
    /// The `resource` file.
    pub resource: &'a [u8],
    /// The bound driver (`driver` link's name).
    pub driver: Option<&'a str>,
    /// sysfs `irq`.
    pub irq: Option<u32>,
    /// sysfs `msi_bus`: whether MSI is allowed on the function's bus.
    pub msi_bus: Option<bool>,
    /// Entries of sysfs `msi_irqs/`: MSI or MSI-X vectors the driver allocated.
    pub msi_irqs: Option<usize>,
}

/// A PCI function.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PciFunction {
    /// Its address.
    pub address: Address,
    /// Vendor, device, subsystem, class, revision.
    pub id: PciId,
    /// The configuration header.
    pub header: Header,
    /// Present BARs, by number.
    pub bars: Vec<Bar>,
    /// The expansion ROM, if the function has one.
    pub rom: Option<Rom>,
    /// 256 or 4096.
    pub config_size: u16,
    /// INTx, if the function has an interrupt pin.
    pub intx: Option<Intx>,
    /// The MSI capability.
    pub msi: Option<Msi>,
    /// The MSI-X capability.
    pub msix: Option<MsiX>,
    /// Standard, then extended capabilities, in list order.
    pub capabilities: Vec<Capability>,
    /// Whether the capabilities could be read (not with 64 bytes of config space).
    pub capabilities_read: bool,
    /// The bound kernel driver.
    pub driver: Option<String>,
    /// sysfs `msi_bus`.
    pub msi_bus: Option<bool>,
    /// MSI/MSI-X vectors allocated by the driver (`msi_irqs/`).
    pub msi_irqs: Option<usize>,
}

/// Makes a [`PciFunction`] of what sysfs holds: `config` is its configuration space, read
/// on demand (the header, then each capability; the extended list only for PCI Express
/// functions with a 4096-byte space).
///
/// A `config` that ends at byte 64 although the header has a capability list is what
/// sysfs gives a process without `CAP_SYS_ADMIN`: the function is then made without
/// capabilities, and [`PciFunction::capabilities_read`] is `false`.
pub fn analyze(
    address: Address,
    config: &mut dyn ConfigRead,
    inputs: &Inputs<'_>,
) -> Result<PciFunction, AnalyzeError> {
    let config_size = match inputs.config_size {
        256 => 256u16,
        4096 => 4096,
        other => return Err(AnalyzeError::ConfigSize(other)),
    };
    let header = config::parse_header(config)?;
    let limited = header.cap_pointer.is_some()
        && config.read_at(config::HEADER_LEN, &mut [0u8; 1]) == Err(UNPRIVILEGED_CONFIG_LEN);
    let caps = if limited {
        config::Capabilities::default()
    } else {
        config::walk_capabilities(config, &header)?
    };
    let mut capabilities = caps.list.clone();
    if caps.express && usize::from(config_size) == EXTENDED_CONFIG_SPACE_LEN {
        capabilities.extend(config::walk_extended(config, EXTENDED_CONFIG_SPACE_LEN)?);
    }
    let (subsystem_vendor, subsystem_device) = caps
        .ssvid
        .unwrap_or((header.subsystem_vendor, header.subsystem_device));
    let resources = parse_resource(inputs.resource)?;
    let mut bars = Vec::new();
    let mut upper_half_of: Option<u8> = None;
    for (n, r) in resources.iter().enumerate().take(6) {
        let index = u8::try_from(n).unwrap_or(u8::MAX);
        let size = r.size();
        if upper_half_of.take().is_some() {
            if size != 0 {
                return Err(AnalyzeError::Bar {
                    bar: index,
                    reason: "holds the upper half of the 64-bit BAR before it, yet has a \
                             resource of its own",
                });
            }
            continue;
        }
        if size == 0 {
            continue;
        }
        let register = header.bar_registers.get(n).copied().unwrap_or(0);
        let kind = if r.flags & IORESOURCE_IO != 0 {
            BarKind::Io
        } else if r.flags & IORESOURCE_MEM != 0 {
            if r.flags & IORESOURCE_MEM_64 != 0 {
                BarKind::Mem64
            } else {
                BarKind::Mem32
            }
        } else if register & 1 != 0 {
            BarKind::Io
        } else if (register >> 1) & 3 == 2 {
            BarKind::Mem64
        } else {
            BarKind::Mem32
        };
        let prefetchable = kind != BarKind::Io
            && (r.flags & IORESOURCE_PREFETCH != 0
                || (r.flags & IORESOURCE_MEM == 0 && register & 8 != 0));
        if kind == BarKind::Mem64 {
            if index == 5 {
                return Err(AnalyzeError::Bar {
                    bar: 5,
                    reason: "is 64-bit, but BAR 5 has no slot after it for the upper half",
                });
            }
            upper_half_of = Some(index);
        }
        bars.push(Bar {
            index,
            kind,
            prefetchable,
            size,
            address: r.start,
        });
    }
    let rom = resources
        .get(ROM_LINE)
        .filter(|r| r.size() != 0)
        .map(|r| Rom {
            size: r.size(),
            address: r.start,
            enabled: header.rom_register & 1 != 0,
        });
    let intx = match header.interrupt_pin {
        0 => None,
        pin @ 1..=4 => Some(Intx {
            pin,
            line: header.interrupt_line,
            irq: inputs.irq,
        }),
        pin => {
            return Err(ConfigError {
                offset: 0x3d,
                cap: None,
                kind: ConfigErrorKind::Reserved {
                    field: "Interrupt Pin",
                    value: u32::from(pin),
                },
            }
            .into());
        }
    };
    Ok(PciFunction {
        address,
        id: PciId {
            vendor: header.vendor,
            device: header.device,
            subsystem_vendor,
            subsystem_device,
            class: header.class,
            revision: header.revision,
        },
        header,
        bars,
        rom,
        config_size,
        intx,
        msi: caps.msi,
        msix: caps.msix,
        capabilities,
        capabilities_read: !limited,
        driver: inputs.driver.map(str::to_owned),
        msi_bus: inputs.msi_bus,
        msi_irqs: inputs.msi_irqs,
    })
}

/// What a served function allows: it decides the region flags of the description.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Policy {
    /// Configuration space takes writes.
    pub config_write: bool,
    /// BARs take reads and writes.
    pub bar_access: bool,
}

/// Region index of BAR `n` is `n`; these are the other fixed indices (VFIO's numbering).
pub const ROM_REGION: u32 = 6;
/// Region index of configuration space.
pub const CONFIG_REGION: u32 = 7;
/// Interrupt index of INTx.
pub const INTX_INTERRUPT: u32 = 0;
/// Interrupt index of MSI.
pub const MSI_INTERRUPT: u32 = 1;
/// Interrupt index of MSI-X.
pub const MSIX_INTERRUPT: u32 = 2;
/// File offset of the first region (the description comes before it).
const FIRST_REGION_OFFSET: u64 = 0x1000;

/// The widths an I/O BAR takes through sysfs `resourceN` (1, 2 or 4 bytes).
pub fn io_widths() -> Option<AccessWidths> {
    AccessWidths::new(WIDTH_1 | WIDTH_2 | WIDTH_4)
}

impl PciFunction {
    /// The sysfs name of the function, `0000:00:03.0`.
    pub fn bdf(&self) -> String {
        self.address.to_string()
    }

    /// The function's interrupts as `(kind name, vector count)`: `intx`, `msi`, `msix`.
    pub fn interrupt_counts(&self) -> Vec<(&'static str, u32)> {
        let mut out = Vec::new();
        if self.intx.is_some() {
            out.push(("intx", 1));
        }
        if let Some(msi) = &self.msi {
            out.push(("msi", u32::from(msi.vectors)));
        }
        if let Some(msix) = &self.msix {
            out.push(("msix", u32::from(msix.table_size)));
        }
        out
    }

    /// The devfd description of the function, with region flags following `policy`.
    ///
    /// Regions (VFIO's numbering): BAR `n` is region `n` (register-like: reads and writes of
    /// 1, 2, 4 or 8 bytes; an I/O BAR 1, 2 or 4), the ROM region 6, configuration space
    /// region 7. Without `policy.bar_access` the BARs and the ROM are described with neither
    /// REGION_READ nor REGION_WRITE, so every access to them fails with `EPERM` before it
    /// reaches the device; configuration space always has REGION_READ and has REGION_WRITE
    /// only with `policy.config_write`. Each region's label says what it allows and why.
    /// Interrupts: INTx 0 (level, maskable, automasked), MSI 1 (maskable if the function
    /// has per-vector masking), MSI-X 2 (maskable); they are described but never fire, since
    /// sysfs cannot deliver them (that needs VFIO).
    pub fn device_desc(&self, policy: Policy) -> Result<DeviceDesc, AnalyzeError> {
        let mut d = DeviceDesc::new(Bus::Pci);
        d.pci_id = Some(self.id);
        d.label = Some(self.bdf());
        let why_not = |flag: &str| match &self.driver {
            Some(driver) => format!("bound to {driver}"),
            None => format!("needs {flag}"),
        };
        let mut cursor = FIRST_REGION_OFFSET;
        let mut place = |size: u64, bar: u8| -> Result<u64, AnalyzeError> {
            let at = cursor;
            cursor = at
                .checked_add(size)
                .and_then(|end| end.checked_next_multiple_of(PAGE_SIZE))
                .filter(|end| *end <= MAX_FILE_OFFSET)
                .ok_or(AnalyzeError::Bar {
                    bar,
                    reason: "makes the device file larger than 2^63 bytes",
                })?;
            Ok(at)
        };
        for bar in &self.bars {
            let (flags, label) = if policy.bar_access {
                (REGION_READ | REGION_WRITE, format!("bar{}", bar.index))
            } else {
                (
                    0,
                    format!(
                        "bar{}: no access ({})",
                        bar.index,
                        why_not("--allow-bar-access")
                    ),
                )
            };
            d.regions.push(RegionDesc {
                index: u32::from(bar.index),
                offset: place(bar.size, bar.index)?,
                size: bar.size,
                flags,
                location: Location::PciBar {
                    bar: bar.index,
                    flags: bar.bar_flags(),
                },
                dt: None,
                label: Some(label),
                sparse: None,
                dma_address: None,
                access_widths: if bar.kind == BarKind::Io {
                    io_widths()
                } else {
                    None
                },
            });
        }
        if let Some(rom) = &self.rom {
            d.regions.push(RegionDesc {
                index: ROM_REGION,
                offset: place(rom.size, 6)?,
                size: rom.size,
                flags: 0,
                location: Location::PciRom,
                dt: None,
                label: Some("rom: not served (reading it means enabling its decoder)".into()),
                sparse: None,
                dma_address: None,
                access_widths: None,
            });
        }
        let (config_flags, config_label) = if policy.config_write {
            (REGION_READ | REGION_WRITE, "config".to_owned())
        } else {
            (
                REGION_READ,
                format!("config: read-only ({})", why_not("--allow-write")),
            )
        };
        d.regions.push(RegionDesc {
            index: CONFIG_REGION,
            offset: place(u64::from(self.config_size), 7)?,
            size: u64::from(self.config_size),
            flags: config_flags,
            location: Location::PciConfig,
            dt: None,
            label: Some(config_label),
            sparse: None,
            dma_address: None,
            access_widths: None,
        });
        let mut control = cursor;
        let mut interrupt = |index: u32, count: u32, kind: u32, flags: u32, label: &str| {
            d.interrupts.push(InterruptDesc {
                index,
                count,
                kind,
                flags,
                control_offset: control,
                dt: None,
                label: Some(label.to_owned()),
            });
            // At most 2048 + 32 + 1 vectors of 16 bytes after a page-aligned offset that is at
            // most 2^63: cannot overflow u64.
            control = control.saturating_add(u64::from(count).saturating_mul(IRQ_CONTROL_STRIDE));
        };
        if let Some(intx) = &self.intx {
            interrupt(
                INTX_INTERRUPT,
                1,
                IRQ_KIND_INTX,
                IRQ_LEVEL | IRQ_MASKABLE | IRQ_AUTOMASKED,
                &format!("INT{}", intx.pin_name()),
            );
        }
        if let Some(msi) = &self.msi {
            let flags = if msi.per_vector_mask { IRQ_MASKABLE } else { 0 };
            interrupt(
                MSI_INTERRUPT,
                u32::from(msi.vectors),
                IRQ_KIND_MSI,
                flags,
                "msi",
            );
        }
        if let Some(msix) = &self.msix {
            interrupt(
                MSIX_INTERRUPT,
                u32::from(msix.table_size),
                IRQ_KIND_MSIX,
                IRQ_MASKABLE,
                "msix",
            );
        }
        if control > MAX_FILE_OFFSET {
            return Err(AnalyzeError::Bar {
                bar: 5,
                reason: "leaves no room for the interrupt control windows below 2^63",
            });
        }
        Ok(d)
    }
}

/// Capabilities in lspci's notation: `[40] Vendor Specific`, `[100 v1] Advanced Error
/// Reporting`.
pub fn capability_text(c: &Capability) -> String {
    let name = c.name().unwrap_or("unknown");
    if c.extended {
        format!("[{:03x} v{}] {name}", c.offset, c.version)
    } else {
        format!("[{:02x}] {name}", c.offset)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses() {
        let a = Address::parse("0000:00:03.0").unwrap();
        assert_eq!((a.domain, a.bus, a.device, a.function), (0, 0, 3, 0));
        assert_eq!(a.to_string(), "0000:00:03.0");
        assert_eq!(
            Address::parse("00:1f.7").unwrap().to_string(),
            "0000:00:1f.7"
        );
        assert_eq!(
            Address::parse("10000:E1:00.1").unwrap().to_string(),
            "10000:e1:00.1"
        );
        for bad in [
            "",
            "0000:00:03",
            "0000:00:20.0",
            "0000:00:03.8",
            "0:0:3.0",
            "../00:03.0",
            "0000:00:03.0/",
            "0000:000:03.0",
            "00:03.00",
            "+0:00:03.0",
            "123456789:00:00.0",
        ] {
            assert_eq!(Address::parse(bad), None, "{bad}");
        }
    }
}
