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

/// The access widths a register-like region accepts (SPEC.md §4.16): a non-empty subset of
/// 1, 2, 4 and 8 bytes, as the `WIDTH_*` bits of an ACCESS sub-record.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(try_from = "u8", into = "u8"))]
pub struct AccessWidths(u8);

impl AccessWidths {
    /// All four widths: what a register-like region without ACCESS accepts.
    pub const ALL: AccessWidths = AccessWidths(WIDTHS_ALL as u8);

    /// The widths of a `WIDTH_*` mask; `None` if it is 0 or has a bit above [`WIDTH_8`].
    pub const fn new(mask: u32) -> Option<AccessWidths> {
        if mask == 0 || mask & !WIDTHS_ALL != 0 {
            None
        } else {
            Some(AccessWidths(mask as u8))
        }
    }

    /// The widths of a list of access lengths in bytes; `None` if the list is empty or has a
    /// length other than 1, 2, 4 or 8.
    pub fn from_lengths(lengths: impl IntoIterator<Item = usize>) -> Option<AccessWidths> {
        let mut mask = 0u32;
        for len in lengths {
            mask |= Self::bit(len)?;
        }
        Self::new(mask)
    }

    const fn bit(len: usize) -> Option<u32> {
        match len {
            1 => Some(WIDTH_1),
            2 => Some(WIDTH_2),
            4 => Some(WIDTH_4),
            8 => Some(WIDTH_8),
            _ => None,
        }
    }

    /// The `WIDTH_*` mask.
    pub const fn bits(self) -> u8 {
        self.0
    }

    /// Whether an access of `len` bytes is one of these widths.
    pub const fn allows(self, len: usize) -> bool {
        match Self::bit(len) {
            Some(bit) => self.0 as u32 & bit != 0,
            None => false,
        }
    }

    /// The accepted lengths in bytes, smallest first.
    pub fn lengths(self) -> impl Iterator<Item = usize> + Clone {
        [1usize, 2, 4, 8]
            .into_iter()
            .filter(move |&n| self.allows(n))
    }
}

impl Default for AccessWidths {
    fn default() -> Self {
        Self::ALL
    }
}

impl From<AccessWidths> for u8 {
    fn from(w: AccessWidths) -> u8 {
        w.0
    }
}

impl TryFrom<u8> for AccessWidths {
    type Error = &'static str;

    fn try_from(mask: u8) -> Result<Self, Self::Error> {
        AccessWidths::new(u32::from(mask)).ok_or("access widths: a non-zero mask of bits 0-3")
    }
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
        REC_ACCESS => "ACCESS",
        REC_DT_ADDRESS => "DT_ADDRESS",
        REC_DMA_WINDOW => "DMA_WINDOW",
        REC_RESET => "RESET",
        REC_DT_INTERRUPT => "DT_INTERRUPT",
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
