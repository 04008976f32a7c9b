//! Small typed values decoded from the wire: bus, location of a region, names of constants.

use crate::wire::*;

/// The bus a device is on, from the fourth byte of the magic.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(rename_all = "lowercase"))]
pub enum Bus {
    /// A PCI function (`"DFDP"`).
    Pci,
    /// A device-tree platform device (`"DFDT"`).
    Platform,
    /// A bus code this version does not define (an ASCII capital letter).
    Other(u8),
}

impl Bus {
    /// Decodes a bus code; `None` if it is not an ASCII capital letter.
    pub const fn from_code(code: u8) -> Option<Bus> {
        match code {
            BUS_PCI => Some(Bus::Pci),
            BUS_PLATFORM => Some(Bus::Platform),
            b'A'..=b'Z' => Some(Bus::Other(code)),
            _ => None,
        }
    }

    /// The bus code (fourth byte of the magic).
    pub const fn code(self) -> u8 {
        match self {
            Bus::Pci => BUS_PCI,
            Bus::Platform => BUS_PLATFORM,
            Bus::Other(c) => c,
        }
    }

    /// The magic value of a description of this bus.
    pub const fn magic(self) -> u32 {
        magic_for_bus(self.code())
    }

    /// Lower-case name: `pci`, `platform`, or `other`.
    pub const fn name(self) -> &'static str {
        match self {
            Bus::Pci => "pci",
            Bus::Platform => "platform",
            Bus::Other(_) => "other",
        }
    }
}

/// What a region is on its bus.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(rename_all = "snake_case"))]
pub enum Location {
    /// Nothing bus-specific (or only a device-tree reference).
    #[default]
    None,
    /// A PCI BAR.
    PciBar {
        /// BAR number 0–5.
        bar: u8,
        /// `BAR_*` flags.
        flags: u32,
    },
    /// PCI configuration space.
    PciConfig,
    /// PCI expansion ROM.
    PciRom,
}

/// The name of a record type (must-understand bit ignored), or `"UNKNOWN"`.
pub const fn record_type_name(rtype: u32) -> &'static str {
    match rtype & !TYPE_MUST_UNDERSTAND {
        REC_DEVICE => "DEVICE",
        REC_REGION => "REGION",
        REC_INTERRUPT => "INTERRUPT",
        REC_END => "END",
        REC_PCI_ID => "PCI_ID",
        REC_DT_COMPATIBLE => "DT_COMPATIBLE",
        REC_PCI_BAR => "PCI_BAR",
        REC_PCI_CONFIG => "PCI_CONFIG",
        REC_PCI_ROM => "PCI_ROM",
        REC_DT_PATH => "DT_PATH",
        REC_DT_INDEX => "DT_INDEX",
        REC_SPARSE_MMAP => "SPARSE_MMAP",
        REC_LABEL => "LABEL",
        _ => "UNKNOWN",
    }
}

/// The name of an interrupt kind, or `"unknown"`.
pub const fn irq_kind_name(kind: u32) -> &'static str {
    match kind {
        IRQ_KIND_INTX => "intx",
        IRQ_KIND_MSI => "msi",
        IRQ_KIND_MSIX => "msix",
        IRQ_KIND_WIRED => "wired",
        IRQ_KIND_ERROR => "error",
        IRQ_KIND_REQUEST => "request",
        _ => "unknown",
    }
}

/// Decodes an interrupt kind name as written by [`irq_kind_name`].
pub fn irq_kind_from_name(name: &str) -> Option<u32> {
    [
        IRQ_KIND_INTX,
        IRQ_KIND_MSI,
        IRQ_KIND_MSIX,
        IRQ_KIND_WIRED,
        IRQ_KIND_ERROR,
        IRQ_KIND_REQUEST,
    ]
    .into_iter()
    .find(|&k| irq_kind_name(k) == name)
}

/// The name of a DT property code, or `"unknown"`.
pub const fn dt_property_name(property: u32) -> &'static str {
    match property {
        DT_PROP_REG => "reg",
        DT_PROP_RANGES => "ranges",
        DT_PROP_INTERRUPTS => "interrupts",
        _ => "unknown",
    }
}

/// Decodes a DT property name as written by [`dt_property_name`].
pub fn dt_property_from_name(name: &str) -> Option<u32> {
    [DT_PROP_REG, DT_PROP_RANGES, DT_PROP_INTERRUPTS]
        .into_iter()
        .find(|&p| dt_property_name(p) == name)
}
