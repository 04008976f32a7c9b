//! Raw wire structures and constants of the devfd description format (SPEC.md §2–§5).
//!
//! Every structure is `#[repr(C)]`, has alignment 1 (explicit little-endian fields) and no
//! padding, so it can be viewed in place at any offset of an untrusted buffer. Constants sit
//! beside the structure they describe.

use zerocopy::little_endian::{U16, U32, U64};
use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout, Unaligned};

// ---------------------------------------------------------------------------------------------
// File header (SPEC.md §2)
// ---------------------------------------------------------------------------------------------

/// The fixed header at offset 0 of every description: exactly the RFC's three `u32`s.
#[derive(Debug, Clone, Copy, FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned)]
#[repr(C)]
pub struct FileHeader {
    /// `"DFD"` followed by the bus code ([`MAGIC_PREFIX`], [`BUS_PCI`], …).
    pub magic: U32,
    /// `major << 16 | minor`.
    pub version: U32,
    /// Header flags; none are defined in version 1.0.
    pub flags: U32,
}

/// Size of [`FileHeader`] in bytes.
pub const HEADER_LEN: usize = 12;
/// The first three bytes of every magic value.
pub const MAGIC_PREFIX: [u8; 3] = *b"DFD";
/// Bus code of a PCI device (`"DFDP"`).
pub const BUS_PCI: u8 = b'P';
/// Bus code of a device-tree platform device (`"DFDT"`).
pub const BUS_PLATFORM: u8 = b'T';
/// Major version this crate reads and writes.
pub const VERSION_MAJOR: u16 = 1;
/// Newest minor version this crate implements (it reads every minor of [`VERSION_MAJOR`]).
///
/// Writers write the lowest minor version whose features a description uses: 1.1 for an
/// [`REC_ACCESS`] sub-record, 1.2 for [`REC_DT_ADDRESS`], [`REC_DT_INTERRUPT`],
/// [`REC_DMA_WINDOW`] or [`REC_RESET`]; every other
/// description is written as [`VERSION_MINOR_BASELINE`] (SPEC.md §2.2).
pub const VERSION_MINOR: u16 = 2;
/// Minor version of a description that uses no feature added after 1.0.
pub const VERSION_MINOR_BASELINE: u16 = 0;

/// Builds the magic value for a bus code.
pub const fn magic_for_bus(code: u8) -> u32 {
    u32::from_le_bytes([MAGIC_PREFIX[0], MAGIC_PREFIX[1], MAGIC_PREFIX[2], code])
}

/// Builds a version word.
pub const fn version_word(major: u16, minor: u16) -> u32 {
    ((major as u32) << 16) | minor as u32
}

// ---------------------------------------------------------------------------------------------
// Record framing (SPEC.md §3)
// ---------------------------------------------------------------------------------------------

/// The header of every record and sub-record: the RFC's `type`, `rec_len`, `flags`.
#[derive(Debug, Clone, Copy, FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned)]
#[repr(C)]
pub struct RecordHeader {
    /// Record type; bit 31 is [`TYPE_MUST_UNDERSTAND`].
    pub rtype: U32,
    /// Length of the record in bytes, header and sub-records included; a multiple of 8.
    pub rec_len: U32,
    /// Type-specific flags; bits 0–15 must be understood, bits 16–31 are advisory.
    pub flags: U32,
}

/// Size of [`RecordHeader`] in bytes.
pub const RECORD_HEADER_LEN: usize = 12;
/// `rec_len` is a multiple of this, and every record starts at an offset ≡ 4 (mod 8), so every
/// record body starts 8-byte aligned.
pub const RECORD_ALIGN: usize = 8;
/// Set in a record type: a reader that does not know the type must reject the description.
pub const TYPE_MUST_UNDERSTAND: u32 = 1 << 31;
/// Flag bits a reader must understand; an unknown set bit here makes the description invalid.
pub const FLAGS_MUST_UNDERSTAND: u32 = 0x0000_ffff;

/// Bytes a reader fetches first: header, DEVICE record header and DEVICE body (SPEC.md §2.3).
pub const PROLOGUE_LEN: usize = HEADER_LEN + RECORD_HEADER_LEN + DEVICE_BODY_LEN;
/// Largest description this version allows.
pub const MAX_DESC_LEN: usize = 1 << 20;
/// Largest number of records and sub-records in one description.
pub const MAX_RECORDS: usize = 4096;
/// Deepest nesting: top-level records are depth 1, their sub-records depth 2.
pub const MAX_DEPTH: usize = 2;
/// Largest number of REGION records.
pub const MAX_REGIONS: usize = 1024;
/// Largest number of INTERRUPT records.
pub const MAX_INTERRUPTS: usize = 1024;
/// Largest vector count of one INTERRUPT record (the PCI MSI-X maximum).
pub const MAX_VECTORS: u32 = 2048;
/// Largest number of areas in one SPARSE_MMAP sub-record.
pub const MAX_SPARSE_AREAS: u32 = 256;
/// Longest string (terminating NUL included) in a DT_PATH, LABEL or DT_COMPATIBLE sub-record.
pub const MAX_STRING_LEN: u32 = 4096;
/// Largest end of any range of a device file: offsets are signed 64-bit (`off_t`), and the
/// kernel accepts no file size or access end above `i64::MAX`.
pub const MAX_FILE_OFFSET: u64 = i64::MAX as u64;
/// Register-like regions start at a multiple of this, so natural alignment within the region
/// is natural alignment in the file.
pub const REGION_ALIGN: u64 = 8;
/// Page size that mmap-capable regions and sparse areas are aligned to.
pub const PAGE_SIZE: u64 = 4096;

// ---------------------------------------------------------------------------------------------
// Record types (SPEC.md §4)
// ---------------------------------------------------------------------------------------------

/// Top-level: describes the device; must be the first record.
pub const REC_DEVICE: u32 = 0x0001;
/// Top-level: an addressable region of the device file.
pub const REC_REGION: u32 = 0x0002;
/// Top-level: an interrupt (one or more vectors).
pub const REC_INTERRUPT: u32 = 0x0003;
/// Top-level: the last record; ends exactly at `desc_len`.
pub const REC_END: u32 = 0x0004;
/// Under DEVICE (PCI bus only): PCI identity.
pub const REC_PCI_ID: u32 = 0x0101;
/// Under DEVICE: device-tree `compatible` string list.
pub const REC_DT_COMPATIBLE: u32 = 0x0102;
/// Under REGION (PCI bus only): the region is a PCI BAR.
pub const REC_PCI_BAR: u32 = 0x0103;
/// Under REGION (PCI bus only): the region is PCI configuration space.
pub const REC_PCI_CONFIG: u32 = 0x0104;
/// Under REGION (PCI bus only): the region is the PCI expansion ROM.
pub const REC_PCI_ROM: u32 = 0x0105;
/// Under REGION or INTERRUPT: the device-tree node path the resource comes from.
pub const REC_DT_PATH: u32 = 0x0106;
/// Under REGION or INTERRUPT: which property entry of the DT node the resource is.
pub const REC_DT_INDEX: u32 = 0x0107;
/// Under REGION: the only areas of the region that may be mmapped.
pub const REC_SPARSE_MMAP: u32 = 0x0108;
/// Under DEVICE, REGION or INTERRUPT: a human-readable name.
pub const REC_LABEL: u32 = 0x0109;
/// Under a REGION without [`REGION_MMAP`] (version 1.1): the access widths it accepts.
pub const REC_ACCESS: u32 = 0x010a;
/// Under a REGION with DT_PATH + DT_INDEX (version 1.2): the CPU physical address of that
/// device-tree entry, after translation through every parent's `ranges`.
pub const REC_DT_ADDRESS: u32 = 0x010b;
/// Under an INTERRUPT with DT_PATH + DT_INDEX (version 1.2): the interrupt controller's node
/// path and the interrupt specifier cells.
pub const REC_DT_INTERRUPT: u32 = 0x010c;
/// Under a REGION with [`REGION_MMAP`] (version 1.2): the region is DMA memory, which the
/// device reaches at this bus (IO virtual) address.
pub const REC_DMA_WINDOW: u32 = 0x010d;
/// Under DEVICE (version 1.2): the file offset of the device's 8-byte reset word.
pub const REC_RESET: u32 = 0x010e;
/// The last record type this version defines.
pub const REC_LAST_KNOWN: u32 = REC_RESET;

// ---------------------------------------------------------------------------------------------
// Record bodies
// ---------------------------------------------------------------------------------------------

/// Body of a DEVICE record. Sub-records follow it.
#[derive(Debug, Clone, Copy, FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned)]
#[repr(C)]
pub struct DeviceBody {
    /// Length in bytes of the whole description, header to END inclusive.
    pub desc_len: U32,
    /// Number of REGION records.
    pub region_count: U32,
    /// Number of INTERRUPT records.
    pub interrupt_count: U32,
}
/// Size of [`DeviceBody`].
pub const DEVICE_BODY_LEN: usize = 12;

/// Body of a REGION record. Sub-records follow it.
#[derive(Debug, Clone, Copy, FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned)]
#[repr(C)]
pub struct RegionBody {
    /// Offset of the region in the device file.
    pub offset: U64,
    /// Size of the region in bytes; never 0.
    pub size: U64,
    /// Region index, unique among regions.
    pub index: U32,
}
/// Size of [`RegionBody`].
pub const REGION_BODY_LEN: usize = 20;
/// REGION flag: reads at the region's offsets reach the device.
pub const REGION_READ: u32 = 1 << 0;
/// REGION flag: writes at the region's offsets reach the device.
pub const REGION_WRITE: u32 = 1 << 1;
/// REGION flag: the region may be mmapped (shared, coherent with the device).
pub const REGION_MMAP: u32 = 1 << 2;
/// Every REGION flag this version defines.
pub const REGION_KNOWN_FLAGS: u32 = REGION_READ | REGION_WRITE | REGION_MMAP;

/// Body of an INTERRUPT record. Sub-records follow it.
#[derive(Debug, Clone, Copy, FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned)]
#[repr(C)]
pub struct InterruptBody {
    /// Offset in the device file of the interrupt's control window (16 bytes per vector).
    pub control_offset: U64,
    /// Interrupt index, unique among interrupts.
    pub index: U32,
    /// Number of vectors: exactly 1 for INTx, 1 to 32 for MSI, else 1 to [`MAX_VECTORS`].
    pub count: U32,
    /// What kind of interrupt it is ([`IRQ_KIND_INTX`], …).
    pub kind: U32,
}
/// Size of [`InterruptBody`].
pub const INTERRUPT_BODY_LEN: usize = 20;
/// INTERRUPT flag: level-triggered (clear: edge-triggered).
pub const IRQ_LEVEL: u32 = 1 << 0;
/// INTERRUPT flag: vectors can be masked through the control window.
pub const IRQ_MASKABLE: u32 = 1 << 1;
/// INTERRUPT flag: a vector masks itself when it fires, until unmasked (acknowledged).
pub const IRQ_AUTOMASKED: u32 = 1 << 2;
/// Every INTERRUPT flag this version defines.
pub const IRQ_KNOWN_FLAGS: u32 = IRQ_LEVEL | IRQ_MASKABLE | IRQ_AUTOMASKED;
/// Interrupt kind: PCI INTx.
pub const IRQ_KIND_INTX: u32 = 1;
/// Interrupt kind: PCI MSI.
pub const IRQ_KIND_MSI: u32 = 2;
/// Interrupt kind: PCI MSI-X.
pub const IRQ_KIND_MSIX: u32 = 3;
/// Interrupt kind: a wired platform interrupt (device tree `interrupts`).
pub const IRQ_KIND_WIRED: u32 = 4;
/// Interrupt kind: error reporting (e.g. PCI AER).
pub const IRQ_KIND_ERROR: u32 = 5;
/// Interrupt kind: a device request (the host asks user space to release the device).
pub const IRQ_KIND_REQUEST: u32 = 6;
/// Bytes of control window per vector (SPEC.md §6).
pub const IRQ_CONTROL_STRIDE: u64 = 16;

/// Body of a PCI_ID sub-record.
#[derive(Debug, Clone, Copy, FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned)]
#[repr(C)]
pub struct PciIdBody {
    /// PCI vendor ID.
    pub vendor: U16,
    /// PCI device ID.
    pub device: U16,
    /// PCI subsystem vendor ID.
    pub subsystem_vendor: U16,
    /// PCI subsystem ID.
    pub subsystem_device: U16,
    /// 24-bit class code: base class << 16 | subclass << 8 | programming interface.
    pub class: U32,
    /// Revision ID.
    pub revision: u8,
    /// Zero.
    pub reserved: [u8; 3],
}
/// Size of [`PciIdBody`].
pub const PCI_ID_BODY_LEN: usize = 16;

/// Body of a PCI_BAR sub-record.
#[derive(Debug, Clone, Copy, FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned)]
#[repr(C)]
pub struct PciBarBody {
    /// BAR number, 0 to 5.
    pub bar: U32,
}
/// Size of [`PciBarBody`].
pub const PCI_BAR_BODY_LEN: usize = 4;
/// Number of BARs of a type-0 PCI function.
pub const PCI_BAR_COUNT: u32 = 6;
/// PCI_BAR flag: an I/O-port BAR (clear: memory BAR).
pub const BAR_IO: u32 = 1 << 0;
/// PCI_BAR flag: a 64-bit memory BAR.
pub const BAR_MEM64: u32 = 1 << 1;
/// PCI_BAR flag: a prefetchable memory BAR.
pub const BAR_PREFETCH: u32 = 1 << 2;
/// Every PCI_BAR flag this version defines.
pub const BAR_KNOWN_FLAGS: u32 = BAR_IO | BAR_MEM64 | BAR_PREFETCH;

/// Leading field of the string-carrying sub-records (DT_PATH, DT_COMPATIBLE, LABEL).
#[derive(Debug, Clone, Copy, FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned)]
#[repr(C)]
pub struct StringBody {
    /// Bytes of string data that follow, terminating NUL included.
    pub len: U32,
}
/// Size of [`StringBody`].
pub const STRING_BODY_LEN: usize = 4;

/// Body of a DT_INDEX sub-record.
#[derive(Debug, Clone, Copy, FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned)]
#[repr(C)]
pub struct DtIndexBody {
    /// Which property ([`DT_PROP_REG`], …).
    pub property: U32,
    /// Which entry of that property, counting from 0.
    pub index: U32,
}
/// Size of [`DtIndexBody`].
pub const DT_INDEX_BODY_LEN: usize = 8;
/// DT property `reg`.
pub const DT_PROP_REG: u32 = 1;
/// DT property `ranges`.
pub const DT_PROP_RANGES: u32 = 2;
/// DT property `interrupts`.
pub const DT_PROP_INTERRUPTS: u32 = 3;

/// Leading fields of a SPARSE_MMAP sub-record; `count` [`SparseArea`]s follow.
#[derive(Debug, Clone, Copy, FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned)]
#[repr(C)]
pub struct SparseMmapBody {
    /// Number of areas.
    pub count: U32,
    /// Zero.
    pub reserved: U32,
}
/// Size of [`SparseMmapBody`].
pub const SPARSE_MMAP_BODY_LEN: usize = 8;

/// One mmap-capable area of a region, relative to the region's start.
#[derive(Debug, Clone, Copy, FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned)]
#[repr(C)]
pub struct SparseArea {
    /// Offset from the start of the region.
    pub offset: U64,
    /// Size of the area.
    pub size: U64,
}
/// Size of [`SparseArea`].
pub const SPARSE_AREA_LEN: usize = 16;

/// Body of an ACCESS sub-record (version 1.1): the widths a register-like region accepts.
#[derive(Debug, Clone, Copy, FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned)]
#[repr(C)]
pub struct AccessBody {
    /// Bit n set: accesses of 2^n bytes are accepted ([`WIDTH_1`] … [`WIDTH_8`]).
    pub widths: U32,
}
/// Size of [`AccessBody`].
pub const ACCESS_BODY_LEN: usize = 4;
/// ACCESS width bit: 1-byte accesses.
pub const WIDTH_1: u32 = 1 << 0;
/// ACCESS width bit: 2-byte accesses.
pub const WIDTH_2: u32 = 1 << 1;
/// ACCESS width bit: 4-byte accesses.
pub const WIDTH_4: u32 = 1 << 2;
/// ACCESS width bit: 8-byte accesses.
pub const WIDTH_8: u32 = 1 << 3;
/// Every ACCESS width bit: what a register-like region without ACCESS accepts.
pub const WIDTHS_ALL: u32 = WIDTH_1 | WIDTH_2 | WIDTH_4 | WIDTH_8;

/// Body of a DT_ADDRESS sub-record (version 1.2).
#[derive(Debug, Clone, Copy, FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned)]
#[repr(C)]
pub struct DtAddressBody {
    /// CPU physical address of the region's first byte.
    pub address: U64,
}
/// Size of [`DtAddressBody`].
pub const DT_ADDRESS_BODY_LEN: usize = 8;

/// Body of a DMA_WINDOW sub-record (version 1.2).
#[derive(Debug, Clone, Copy, FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned)]
#[repr(C)]
pub struct DmaWindowBody {
    /// Bus (IO virtual) address at which the device sees the region's first byte.
    pub bus_address: U64,
}
/// Size of [`DmaWindowBody`].
pub const DMA_WINDOW_BODY_LEN: usize = 8;

/// Body of a RESET sub-record (version 1.2).
#[derive(Debug, Clone, Copy, FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned)]
#[repr(C)]
pub struct ResetBody {
    /// File offset of the 8-byte reset word: writing 1 there resets the device.
    pub offset: U64,
}
/// Size of [`ResetBody`].
pub const RESET_BODY_LEN: usize = 8;
/// Size of the reset word.
pub const RESET_WORD_LEN: u64 = 8;

/// Fixed leading fields of a DT_INTERRUPT sub-record (version 1.2); `count` little-endian
/// `u32` specifier cells follow, then the controller's path (`path_len` bytes, NUL included).
#[derive(Debug, Clone, Copy, FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned)]
#[repr(C)]
pub struct DtInterruptBody {
    /// Number of interrupt specifier cells, 0 to [`MAX_DT_INTERRUPT_CELLS`].
    pub count: U32,
    /// Bytes of the controller's node path, terminating NUL included.
    pub path_len: U32,
}
/// Size of [`DtInterruptBody`].
pub const DT_INTERRUPT_BODY_LEN: usize = 8;
/// Most interrupt specifier cells one DT_INTERRUPT holds.
pub const MAX_DT_INTERRUPT_CELLS: u32 = 16;

// ---------------------------------------------------------------------------------------------
// Flat resource table (SPEC.md appendix A)
// ---------------------------------------------------------------------------------------------

/// One fixed-size entry of the flat resource table, derived from the records.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned,
)]
#[repr(C)]
pub struct FlatEntryRaw {
    /// [`FLAT_REGION`] or [`FLAT_INTERRUPT`].
    pub kind: U32,
    /// Region or interrupt index.
    pub index: U32,
    /// The record's flags.
    pub flags: U32,
    /// What the resource is on its bus ([`FLAT_LOC_NONE`], …).
    pub location: U32,
    /// Region: its offset. Interrupt: its control window's offset.
    pub offset: U64,
    /// Region: its size. Interrupt: its control window's size.
    pub size: U64,
    /// Interrupt: vector count. Region: number of sparse mmap areas.
    pub count: U32,
    /// PCI BAR number, or DT property entry index.
    pub location_index: U32,
    /// Interrupt kind; 0 for a region.
    pub irq_kind: U32,
    /// PCI_BAR flags, or the DT property for a DT location.
    pub location_flags: U32,
    /// Byte offset in the description of the NUL-terminated DT path, or 0.
    pub dt_path_offset: U32,
    /// Byte offset in the description of the NUL-terminated label, or 0.
    pub label_offset: U32,
    /// Register-like region: the widths it accepts (`WIDTH_*` bits; [`WIDTHS_ALL`] without an
    /// ACCESS sub-record). Memory-like region and interrupt: 0.
    pub access_widths: U32,
    /// Zero.
    pub reserved: U32,
}
/// Size of [`FlatEntryRaw`].
pub const FLAT_ENTRY_LEN: usize = 64;
/// Flat entry kind: a region.
pub const FLAT_REGION: u32 = 1;
/// Flat entry kind: an interrupt.
pub const FLAT_INTERRUPT: u32 = 2;
/// Flat location: nothing bus-specific.
pub const FLAT_LOC_NONE: u32 = 0;
/// Flat location: a PCI BAR (`location_index` is the BAR).
pub const FLAT_LOC_PCI_BAR: u32 = 1;
/// Flat location: PCI configuration space.
pub const FLAT_LOC_PCI_CONFIG: u32 = 2;
/// Flat location: PCI expansion ROM.
pub const FLAT_LOC_PCI_ROM: u32 = 3;
/// Flat location: a device-tree node property entry.
pub const FLAT_LOC_DT: u32 = 4;
/// Flat location (1.2): a DMA window; `location_index` and `location_flags` hold the low and
/// high 32 bits of its bus address.
pub const FLAT_LOC_DMA: u32 = 5;

const _: () = {
    assert!(core::mem::size_of::<FileHeader>() == HEADER_LEN);
    assert!(core::mem::size_of::<RecordHeader>() == RECORD_HEADER_LEN);
    assert!(core::mem::size_of::<DeviceBody>() == DEVICE_BODY_LEN);
    assert!(core::mem::size_of::<RegionBody>() == REGION_BODY_LEN);
    assert!(core::mem::size_of::<InterruptBody>() == INTERRUPT_BODY_LEN);
    assert!(core::mem::size_of::<PciIdBody>() == PCI_ID_BODY_LEN);
    assert!(core::mem::size_of::<PciBarBody>() == PCI_BAR_BODY_LEN);
    assert!(core::mem::size_of::<StringBody>() == STRING_BODY_LEN);
    assert!(core::mem::size_of::<DtIndexBody>() == DT_INDEX_BODY_LEN);
    assert!(core::mem::size_of::<SparseMmapBody>() == SPARSE_MMAP_BODY_LEN);
    assert!(core::mem::size_of::<SparseArea>() == SPARSE_AREA_LEN);
    assert!(core::mem::size_of::<AccessBody>() == ACCESS_BODY_LEN);
    assert!(core::mem::size_of::<DtAddressBody>() == DT_ADDRESS_BODY_LEN);
    assert!(core::mem::size_of::<DmaWindowBody>() == DMA_WINDOW_BODY_LEN);
    assert!(core::mem::size_of::<ResetBody>() == RESET_BODY_LEN);
    assert!(core::mem::size_of::<DtInterruptBody>() == DT_INTERRUPT_BODY_LEN);
    assert!(core::mem::size_of::<FlatEntryRaw>() == FLAT_ENTRY_LEN);
    // Bodies of records that carry sub-records end at ≡ 4 (mod 8) so children start there too.
    assert!((RECORD_HEADER_LEN + DEVICE_BODY_LEN).is_multiple_of(RECORD_ALIGN));
    assert!((RECORD_HEADER_LEN + REGION_BODY_LEN).is_multiple_of(RECORD_ALIGN));
    assert!((RECORD_HEADER_LEN + INTERRUPT_BODY_LEN).is_multiple_of(RECORD_ALIGN));
    assert!(HEADER_LEN % RECORD_ALIGN == 4);
};
