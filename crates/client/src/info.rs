//! Small owned handles for the regions and interrupts of a description.

use devfd_format::wire::{
    IRQ_AUTOMASKED, IRQ_CONTROL_STRIDE, IRQ_LEVEL, IRQ_MASKABLE, REGION_MMAP, REGION_READ,
    REGION_WRITE,
};
use devfd_format::{Interrupt, Location, Region};

/// A device-tree property entry a resource comes from (DT_INDEX), without the node path
/// (see [`crate::DeviceFile::region_dt_path`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct DtIndex {
    /// Property code (`DT_PROP_REG`, `DT_PROP_RANGES`, `DT_PROP_INTERRUPTS`).
    pub property: u32,
    /// Entry of that property.
    pub index: u32,
}

/// A region of a device file (a REGION record), as an owned `Copy` value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct RegionInfo {
    /// Region index.
    pub index: u32,
    /// Offset of the region in the device file.
    pub offset: u64,
    /// Size in bytes (never 0).
    pub size: u64,
    /// `REGION_*` flags, as found (unknown advisory bits included).
    pub flags: u32,
    /// What the region is on its bus (PCI BAR, config space, ROM).
    pub location: Location,
    /// The device-tree entry it comes from, if any.
    pub dt: Option<DtIndex>,
    /// Number of SPARSE_MMAP areas; 0 if the region has none (then all of it may be mapped,
    /// given `REGION_MMAP`).
    pub sparse_areas: u32,
    /// Register-like region: the access widths it accepts, as `WIDTH_*` bits (bit n: 2^n
    /// bytes; all four unless its description restricts them, SPEC.md §6.2). Memory-like
    /// region: 0 (any length).
    pub access_widths: u8,
    /// A DMA window's bus (IO virtual) address: the device reaches the region's first byte
    /// there (DMA_WINDOW, SPEC.md §4.19). `None` for other regions.
    pub dma_address: Option<u64>,
}

impl RegionInfo {
    pub(crate) fn from_region(r: &Region<'_>) -> Self {
        RegionInfo {
            index: r.index,
            offset: r.offset,
            size: r.size,
            flags: r.flags,
            location: r.location(),
            dt: r.dt().map(|d| DtIndex {
                property: d.property,
                index: d.index,
            }),
            sparse_areas: r
                .sparse_areas()
                .map_or(0, |a| u32::try_from(a.len()).unwrap_or(u32::MAX)),
            access_widths: r.access_widths().map_or(0, |w| w.bits()),
            dma_address: r.dma_address(),
        }
    }

    /// Whether the region is a DMA window.
    pub fn is_dma_window(&self) -> bool {
        self.dma_address.is_some()
    }

    /// Whether a register access of `width` bytes is accepted (always false for widths other
    /// than 1, 2, 4, 8; always true on a memory-like region).
    pub fn accepts_width(&self, width: usize) -> bool {
        if self.mmappable() {
            return true;
        }
        matches!(width, 1 | 2 | 4 | 8) && self.access_widths & (1u8 << width.trailing_zeros()) != 0
    }

    /// Reads reach the device (`REGION_READ`).
    pub fn readable(&self) -> bool {
        self.flags & REGION_READ != 0
    }

    /// Writes reach the device (`REGION_WRITE`).
    pub fn writable(&self) -> bool {
        self.flags & REGION_WRITE != 0
    }

    /// Memory-like: may be mapped and accessed in bulk (`REGION_MMAP`). Otherwise the region
    /// is register-like: accesses of 1, 2, 4 or 8 naturally aligned bytes.
    pub fn mmappable(&self) -> bool {
        self.flags & REGION_MMAP != 0
    }

    /// One past the region's last file offset.
    pub fn end(&self) -> u64 {
        self.offset.saturating_add(self.size)
    }
}

/// An interrupt of a device file (an INTERRUPT record), as an owned `Copy` value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct IrqInfo {
    /// Interrupt index.
    pub index: u32,
    /// Number of vectors (at least 1).
    pub count: u32,
    /// `IRQ_KIND_*`.
    pub kind: u32,
    /// `IRQ_*` flags, as found.
    pub flags: u32,
    /// Offset of the control window (16 bytes per vector) in the device file.
    pub control_offset: u64,
    /// The device-tree entry it comes from, if any.
    pub dt: Option<DtIndex>,
}

impl IrqInfo {
    pub(crate) fn from_interrupt(i: &Interrupt<'_>) -> Self {
        IrqInfo {
            index: i.index,
            count: i.count,
            kind: i.kind,
            flags: i.flags,
            control_offset: i.control_offset,
            dt: i.dt().map(|d| DtIndex {
                property: d.property,
                index: d.index,
            }),
        }
    }

    /// Level-triggered (`IRQ_LEVEL`).
    pub fn level(&self) -> bool {
        self.flags & IRQ_LEVEL != 0
    }

    /// Vectors can be masked (`IRQ_MASKABLE`).
    pub fn maskable(&self) -> bool {
        self.flags & IRQ_MASKABLE != 0
    }

    /// A vector masks itself when it fires (`IRQ_AUTOMASKED`).
    pub fn automasked(&self) -> bool {
        self.flags & IRQ_AUTOMASKED != 0
    }

    /// The kind's name (`intx`, `msi`, …).
    pub fn kind_name(&self) -> &'static str {
        devfd_format::irq_kind_name(self.kind)
    }

    /// File offset of vector `vector`'s 16-byte control block; `None` past the count.
    pub fn vector_offset(&self, vector: u32) -> Option<u64> {
        if vector >= self.count {
            return None;
        }
        self.control_offset
            .checked_add(u64::from(vector).checked_mul(IRQ_CONTROL_STRIDE)?)
    }
}

/// Names a region of a device file: its index (`u32`) or a [`RegionInfo`] from a lookup,
/// which stands for its index.
pub trait AsRegion {
    /// The region index.
    fn region_index(&self) -> u32;
}

impl AsRegion for u32 {
    fn region_index(&self) -> u32 {
        *self
    }
}

impl AsRegion for RegionInfo {
    fn region_index(&self) -> u32 {
        self.index
    }
}

impl<T: AsRegion + ?Sized> AsRegion for &T {
    fn region_index(&self) -> u32 {
        (**self).region_index()
    }
}

/// Names an interrupt of a device file: its index (`u32`) or an [`IrqInfo`].
pub trait AsInterrupt {
    /// The interrupt index.
    fn interrupt_index(&self) -> u32;
}

impl AsInterrupt for u32 {
    fn interrupt_index(&self) -> u32 {
        *self
    }
}

impl AsInterrupt for IrqInfo {
    fn interrupt_index(&self) -> u32 {
        self.index
    }
}

impl<T: AsInterrupt + ?Sized> AsInterrupt for &T {
    fn interrupt_index(&self) -> u32 {
        (**self).interrupt_index()
    }
}
