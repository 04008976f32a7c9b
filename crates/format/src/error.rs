//! Typed, located errors: every error says what is wrong and where (SPEC.md §7).

use core::fmt;

use crate::types::record_type_name;

/// Which record an error is about: `index` counts top-level records from 0 in file order,
/// `sub` counts the sub-records of that record from 0.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct RecordRef {
    /// Position of the top-level record.
    pub index: u16,
    /// Position of the sub-record within its parent, if the error is about a sub-record.
    pub sub: Option<u16>,
    /// The record's type, as found (must-understand bit included).
    pub rtype: u32,
}

impl fmt::Display for RecordRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.sub {
            Some(sub) => write!(f, "record {}.{}", self.index, sub)?,
            None => write!(f, "record {}", self.index)?,
        }
        write!(f, " ({})", record_type_name(self.rtype))
    }
}

/// An invalid description: what ([`ErrorKind`]) and where (byte offset, record).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Error {
    /// What is wrong.
    pub kind: ErrorKind,
    /// Byte offset, from the start of the description, of the offending field or record.
    pub offset: usize,
    /// The record the offending bytes belong to, if any.
    pub record: Option<RecordRef>,
}

impl Error {
    pub(crate) const fn at(kind: ErrorKind, offset: usize, record: Option<RecordRef>) -> Self {
        Error {
            kind,
            offset,
            record,
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "byte {:#x}", self.offset)?;
        if let Some(r) = &self.record {
            write!(f, ", {r}")?;
        }
        write!(f, ": {}", self.kind)
    }
}

impl core::error::Error for Error {}

/// The kinds of damage a description can have. Each is a separate, testable rule of SPEC.md.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, thiserror::Error)]
#[non_exhaustive]
pub enum ErrorKind {
    /// Fewer bytes than the fixed part being read.
    #[error("truncated: {needed} bytes needed, {available} available")]
    TooShort {
        /// Bytes the reader needed.
        needed: usize,
        /// Bytes there were.
        available: usize,
    },
    /// The magic does not start with "DFD" or the bus code is not an ASCII capital letter.
    #[error("bad magic {found:#010x}: not a devfd description")]
    BadMagic {
        /// The magic as read.
        found: u32,
    },
    /// The major version is not one this reader implements.
    #[error("unsupported version {major}.{minor} (this reader implements major 1)")]
    UnsupportedVersion {
        /// Major version read.
        major: u16,
        /// Minor version read.
        minor: u16,
    },
    /// A must-understand header flag this reader does not know is set.
    #[error("unknown must-understand header flags {flags:#x}")]
    UnknownHeaderFlags {
        /// The unknown bits.
        flags: u32,
    },
    /// The first record is not DEVICE.
    #[error("first record has type {rtype:#x}, DEVICE (0x1) required")]
    FirstRecordNotDevice {
        /// Type found.
        rtype: u32,
    },
    /// `desc_len` is smaller than the smallest valid description.
    #[error("desc_len {desc_len} is smaller than the minimum {min}")]
    DescLenTooSmall {
        /// Value read.
        desc_len: u32,
        /// Smallest valid value.
        min: usize,
    },
    /// `desc_len` exceeds the format's limit.
    #[error("desc_len {desc_len} exceeds the maximum {max}")]
    DescLenTooLarge {
        /// Value read.
        desc_len: u32,
        /// Largest valid value.
        max: usize,
    },
    /// `desc_len` is not ≡ 4 (mod 8).
    #[error("desc_len {desc_len} is not 4 modulo 8")]
    DescLenMisaligned {
        /// Value read.
        desc_len: u32,
    },
    /// The buffer ends before `desc_len`.
    #[error("description truncated: desc_len {desc_len}, only {available} bytes present")]
    Truncated {
        /// Declared length.
        desc_len: u32,
        /// Bytes present.
        available: usize,
    },
    /// Fewer bytes remain in the parent than a record header needs.
    #[error("record header truncated: 12 bytes needed, {available} left in the parent")]
    RecordHeaderTruncated {
        /// Bytes left.
        available: usize,
    },
    /// `rec_len` is zero.
    #[error("rec_len is 0")]
    RecLenZero,
    /// `rec_len` is not a multiple of 8.
    #[error("rec_len {rec_len} is not a multiple of 8")]
    RecLenMisaligned {
        /// Value read.
        rec_len: u32,
    },
    /// `rec_len` is smaller than the record's header and fixed body.
    #[error("rec_len {rec_len} is smaller than the {min} bytes this record type needs")]
    RecLenTooSmall {
        /// Value read.
        rec_len: u32,
        /// Required minimum.
        min: usize,
    },
    /// `rec_len` is not the exact length a fixed-size record type has.
    #[error("rec_len {rec_len} is not the {expected} bytes this record type has")]
    RecLenMismatch {
        /// Value read.
        rec_len: u32,
        /// Required length.
        expected: usize,
    },
    /// The record runs past the end of its parent (or of the description).
    #[error("rec_len {rec_len} runs past the parent: only {room} bytes left")]
    RecLenPastParent {
        /// Value read.
        rec_len: u32,
        /// Bytes left in the parent.
        room: usize,
    },
    /// More records than [`crate::wire::MAX_RECORDS`].
    #[error("more than {max} records")]
    TooManyRecords {
        /// The limit.
        max: usize,
    },
    /// A record that may only appear at top level (and holds sub-records) was found as a
    /// sub-record, which would nest records deeper than the format allows.
    #[error(
        "nesting too deep: a top-level record type at depth {depth}, where only leaves may be (max depth {max})"
    )]
    NestingTooDeep {
        /// Depth found.
        depth: usize,
        /// The limit.
        max: usize,
    },
    /// A known record type under a parent that does not allow it (or at top level).
    #[error("record type {rtype:#x} is not allowed {where_}")]
    Misplaced {
        /// Type found.
        rtype: u32,
        /// Where it was found, e.g. "at top level" or "under REGION".
        where_: &'static str,
    },
    /// A record that may appear once appears again.
    #[error("duplicate record of type {rtype:#x}")]
    Duplicate {
        /// Its type.
        rtype: u32,
    },
    /// An unknown record type carries the must-understand bit.
    #[error("unknown must-understand record type {rtype:#x}")]
    UnknownMustUnderstand {
        /// Type found.
        rtype: u32,
    },
    /// A record sets must-understand flag bits its type does not define.
    #[error("unknown must-understand flags {flags:#x}")]
    UnknownFlags {
        /// The unknown bits.
        flags: u32,
    },
    /// A bus-specific record in a description of another bus.
    #[error("record is only valid for the {needs} bus")]
    WrongBus {
        /// The bus the record needs.
        needs: &'static str,
    },
    /// A required record is missing.
    #[error("missing {what}")]
    Missing {
        /// What is missing.
        what: &'static str,
    },
    /// END does not end exactly at `desc_len`, or no END at all.
    #[error("END record missing or not last (description ends at {desc_len})")]
    MissingEnd {
        /// Declared length.
        desc_len: u32,
    },
    /// The DEVICE record's count does not match the records present.
    #[error("DEVICE declares {declared} {what}, {actual} present")]
    CountMismatch {
        /// "regions" or "interrupts".
        what: &'static str,
        /// Count in DEVICE.
        declared: u32,
        /// Count found.
        actual: u32,
    },
    /// More REGION or INTERRUPT records, or sparse areas, than allowed.
    #[error("more than {max} {what}")]
    TooMany {
        /// "regions", "interrupts", "sparse areas".
        what: &'static str,
        /// The limit.
        max: u32,
    },
    /// Two regions (or two interrupts) share an index.
    #[error("{what} index {index} is used twice")]
    DuplicateIndex {
        /// "region" or "interrupt".
        what: &'static str,
        /// The index.
        index: u32,
    },
    /// A region of size 0.
    #[error("region {index} has size 0")]
    ZeroSize {
        /// Region index.
        index: u32,
    },
    /// offset + size overflows, or does not end below 2^63 (file offsets are signed).
    #[error(
        "{what} {index}: offset {offset:#x} + size {size:#x} overflows or does not end below 2^63"
    )]
    RangeWraps {
        /// "region" or "interrupt window".
        what: &'static str,
        /// Its index.
        index: u32,
        /// Offset.
        offset: u64,
        /// Size.
        size: u64,
    },
    /// A region or interrupt window starts inside the description.
    #[error("{what} {index} at {offset:#x} overlaps the description (desc_len {desc_len})")]
    OverlapsDescription {
        /// "region" or "interrupt window".
        what: &'static str,
        /// Its index.
        index: u32,
        /// Its offset.
        offset: u64,
        /// Declared description length.
        desc_len: u32,
    },
    /// Two ranges of the device file overlap.
    #[error("{what} {index} overlaps {other_what} {other_index}")]
    Overlap {
        /// "region" or "interrupt window".
        what: &'static str,
        /// Its index.
        index: u32,
        /// The other range's kind.
        other_what: &'static str,
        /// The other range's index.
        other_index: u32,
    },
    /// An mmap region or sparse area not page aligned, a register-like region not 8-aligned, or
    /// a control window not 16-aligned.
    #[error("{what} is not {align}-byte aligned (offset {offset:#x}, size {size:#x})")]
    Misaligned {
        /// What is misaligned.
        what: &'static str,
        /// Offset.
        offset: u64,
        /// Size.
        size: u64,
        /// Required alignment.
        align: u64,
    },
    /// Interrupt vector count is 0 or above the maximum.
    #[error("interrupt vector count {count} is outside 1..={max}")]
    BadVectorCount {
        /// Count read.
        count: u32,
        /// The limit.
        max: u32,
    },
    /// An interrupt kind this version does not define.
    #[error("unknown interrupt kind {kind}")]
    UnknownInterruptKind {
        /// Kind read.
        kind: u32,
    },
    /// PCI BAR number above 5.
    #[error("PCI BAR number {bar} is above 5")]
    BarOutOfRange {
        /// BAR number read.
        bar: u32,
    },
    /// Two regions describe the same PCI BAR, or two are config space or ROM.
    #[error("two regions claim the same {what}")]
    DuplicateLocation {
        /// "PCI BAR", "PCI config space", "PCI ROM".
        what: &'static str,
    },
    /// A region has more than one of PCI_BAR, PCI_CONFIG, PCI_ROM.
    #[error("a region may be only one of PCI BAR, config space and ROM")]
    ConflictingLocation,
    /// BAR flags that contradict each other or the BAR number.
    #[error(
        "PCI BAR flags {flags:#x} are invalid (I/O BAR with memory attributes, or a 64-bit BAR 5)"
    )]
    BadBarFlags {
        /// Flags read.
        flags: u32,
    },
    /// PCI config space region of a size other than 256 or 4096.
    #[error("PCI config space region has size {size}, 256 or 4096 required")]
    BadConfigSize {
        /// Size found.
        size: u64,
    },
    /// A string length below 2 (the string would be empty), above the maximum, or past the
    /// record.
    #[error("string length {len} is invalid (2..={max} including the NUL, within the record)")]
    BadStringLen {
        /// Length read.
        len: u32,
        /// The limit.
        max: u32,
    },
    /// The string's last byte is not NUL.
    #[error("string is not NUL-terminated inside its record")]
    StringNotTerminated,
    /// A NUL inside a string (or an empty entry of a string list).
    #[error("string has an embedded NUL or an empty entry")]
    StringEmbeddedNul,
    /// The string is not UTF-8 (printable ASCII for DT strings).
    #[error("string is not valid {what}")]
    StringEncoding {
        /// "UTF-8" or "printable ASCII".
        what: &'static str,
    },
    /// A DT path not starting with '/'.
    #[error("device-tree path does not start with '/'")]
    DtPathNotAbsolute,
    /// A DT property code this version does not define, or one wrong for the parent.
    #[error("device-tree property {property} is not valid here")]
    BadDtProperty {
        /// Property read.
        property: u32,
    },
    /// A sparse area that is empty or lies outside its region.
    #[error("sparse area {area} is empty or lies outside its region")]
    SparseOutside {
        /// Area number.
        area: u32,
    },
    /// Sparse areas out of order or overlapping.
    #[error("sparse area {area} overlaps or precedes the one before it")]
    SparseOrder {
        /// Area number.
        area: u32,
    },
    /// A SPARSE_MMAP sub-record with no areas.
    #[error("SPARSE_MMAP has no areas")]
    NoSparseAreas,
    /// Interrupt flags that contradict each other or the kind.
    #[error(
        "interrupt flags {flags:#x} are invalid for kind {kind} (automasked needs maskable; MSI and MSI-X are edge-triggered)"
    )]
    BadIrqFlags {
        /// Flags read.
        flags: u32,
        /// Kind read.
        kind: u32,
    },
    /// A reserved field is not zero.
    #[error("reserved field is not zero")]
    NonZeroReserved,
    /// An ACCESS sub-record whose width mask is 0: the region would accept no access.
    #[error("ACCESS accepts no width (mask 0)")]
    NoAccessWidths,
    /// An ACCESS sub-record with width bits other than 1, 2, 4 and 8 bytes (bits 0–3).
    #[error("ACCESS width bits {widths:#x} are not defined (bits 0-3: 1, 2, 4, 8 bytes)")]
    UnknownAccessWidths {
        /// The undefined bits.
        widths: u32,
    },
    /// A PCI class code with bits 24–31 set.
    #[error("PCI class code {class:#x} does not fit in 24 bits")]
    BadPciClass {
        /// The class field as read.
        class: u32,
    },
    /// Padding after a record's content is not zero.
    #[error("padding is not zero")]
    NonZeroPadding,
    /// A DT_ADDRESS whose address plus the region's size runs past 2^64: the region would not
    /// fit in the CPU's physical address space.
    #[error("DT_ADDRESS {address:#x} + region size {size:#x} runs past 2^64")]
    DtAddressWraps {
        /// The address read.
        address: u64,
        /// The parent region's size.
        size: u64,
    },
    /// A DMA_WINDOW whose bus address plus the region's size runs past 2^64: the device could
    /// not reach the whole window.
    #[error("DMA_WINDOW bus address {address:#x} + region size {size:#x} runs past 2^64")]
    DmaWindowWraps {
        /// The bus address read.
        address: u64,
        /// The parent region's size.
        size: u64,
    },
}
