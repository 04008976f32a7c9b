//! The validated, borrowed view of a description, with infallible accessors and lookups.
//!
//! Everything here assumes the bytes passed [`crate::parse`]; on bytes that did not, accessors
//! return `None` or stop early, but never panic.

use zerocopy::FromBytes;

use crate::record::RawRecord;
use crate::types::{AccessWidths, Bus, Location};
use crate::wire::*;

/// A validated description, borrowed from the bytes it was parsed from.
#[derive(Debug, Clone, Copy)]
pub struct Description<'a> {
    pub(crate) bytes: &'a [u8],
    pub(crate) bus: Bus,
    pub(crate) version: u32,
    pub(crate) flags: u32,
    pub(crate) region_count: u32,
    pub(crate) interrupt_count: u32,
    pub(crate) locations: LocationCache,
}

/// Where a top-level record starts (0: nowhere) and its position among top-level records.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct RecordSlot {
    pub offset: u32,
    pub position: u16,
}

/// Offsets of the REGION records that are PCI BARs, config space and ROM (0: none), found
/// during validation so those lookups take constant time.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct LocationCache {
    pub bars: [RecordSlot; PCI_BAR_COUNT as usize],
    pub config: RecordSlot,
    pub rom: RecordSlot,
    /// BAR slots taken, the upper halves of 64-bit BARs included.
    pub bar_slots: u8,
}

impl<'a> Description<'a> {
    /// The description's bytes, exactly `desc_len` of them.
    pub fn as_bytes(&self) -> &'a [u8] {
        self.bytes
    }

    /// `desc_len`: the description's length in bytes.
    pub fn len(&self) -> usize {
        self.bytes.len()
    }

    /// Always false: a valid description is never empty.
    pub fn is_empty(&self) -> bool {
        self.bytes.is_empty()
    }

    /// The bus, from the magic.
    pub fn bus(&self) -> Bus {
        self.bus
    }

    /// `(major, minor)` version.
    pub fn version(&self) -> (u16, u16) {
        ((self.version >> 16) as u16, self.version as u16)
    }

    /// Header flags.
    pub fn flags(&self) -> u32 {
        self.flags
    }

    /// Number of regions.
    pub fn region_count(&self) -> u32 {
        self.region_count
    }

    /// Number of interrupts.
    pub fn interrupt_count(&self) -> u32 {
        self.interrupt_count
    }

    /// The top-level records in file order (DEVICE first, END last, unknown ones included).
    pub fn records(&self) -> Records<'a> {
        Records::new(
            self.bytes.get(HEADER_LEN..).unwrap_or(&[]),
            HEADER_LEN,
            None,
        )
    }

    /// The DEVICE record: identity of the device.
    pub fn device(&self) -> Device<'a> {
        let record = self
            .records()
            .next()
            .filter(|r| r.type_code() == REC_DEVICE);
        Device { record }
    }

    /// PCI identity (PCI bus only).
    pub fn pci_id(&self) -> Option<PciId> {
        self.device().pci_id()
    }

    /// The regions in file order.
    pub fn regions(&self) -> impl Iterator<Item = Region<'a>> + Clone + use<'a> {
        self.records().filter_map(Region::from_record)
    }

    /// The interrupts in file order.
    pub fn interrupts(&self) -> impl Iterator<Item = Interrupt<'a>> + Clone + use<'a> {
        self.records().filter_map(Interrupt::from_record)
    }

    /// The region with this index.
    pub fn region(&self, index: u32) -> Option<Region<'a>> {
        // Compare the index in place and build the view only for the match.
        const INDEX_AT: usize = RECORD_HEADER_LEN + 16;
        self.records()
            .find(|r| r.type_code() == REC_REGION && read_u32(r.bytes, INDEX_AT) == Some(index))
            .and_then(Region::from_record)
    }

    /// The region whose record the validation-time cache points at.
    fn region_at(&self, slot: RecordSlot) -> Option<Region<'a>> {
        if slot.offset == 0 {
            return None;
        }
        let at = slot.offset as usize;
        let rec_len = read_u32(self.bytes, at.checked_add(4)?)? as usize;
        let bytes = self.bytes.get(at..at.checked_add(rec_len)?)?;
        let record = RawRecord {
            offset: at,
            rtype: read_u32(self.bytes, at)?,
            flags: read_u32(self.bytes, at.checked_add(8)?)?,
            bytes,
            at: crate::RecordRef {
                index: slot.position,
                sub: None,
                rtype: REC_REGION,
            },
        };
        Region::from_record(record)
    }

    /// The region that is PCI BAR `bar`.
    pub fn pci_bar(&self, bar: u8) -> Option<Region<'a>> {
        self.region_at(*self.locations.bars.get(usize::from(bar))?)
    }

    /// The region that is PCI configuration space.
    pub fn pci_config(&self) -> Option<Region<'a>> {
        self.region_at(self.locations.config)
    }

    /// The region that is the PCI expansion ROM.
    pub fn pci_rom(&self) -> Option<Region<'a>> {
        self.region_at(self.locations.rom)
    }

    /// The region that is entry `index` of the `reg` (or `ranges`) property of DT node `path`.
    pub fn dt_region(&self, path: &str, index: u32) -> Option<Region<'a>> {
        self.regions()
            .find(|r| r.dt().is_some_and(|d| d.path == path && d.index == index))
    }

    /// The interrupt with this index.
    pub fn interrupt(&self, index: u32) -> Option<Interrupt<'a>> {
        const INDEX_AT: usize = RECORD_HEADER_LEN + 8;
        self.records()
            .find(|r| r.type_code() == REC_INTERRUPT && read_u32(r.bytes, INDEX_AT) == Some(index))
            .and_then(Interrupt::from_record)
    }

    /// The interrupt that is entry `index` of the `interrupts` property of DT node `path`.
    pub fn dt_interrupt(&self, path: &str, index: u32) -> Option<Interrupt<'a>> {
        self.interrupts()
            .find(|i| i.dt().is_some_and(|d| d.path == path && d.index == index))
    }

    /// The flat resource table (SPEC.md appendix A): every region, then every interrupt.
    pub fn flat(&self) -> impl Iterator<Item = FlatEntry> + Clone + use<'a> {
        self.regions()
            .map(|r| r.flat_entry())
            .chain(self.interrupts().map(|i| i.flat_entry()))
    }

    /// Number of entries of the flat resource table.
    pub fn flat_len(&self) -> usize {
        (self.region_count as usize).saturating_add(self.interrupt_count as usize)
    }
}

#[inline]
fn read_u32(bytes: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_le_bytes(*bytes.get(at..)?.first_chunk::<4>()?))
}

/// Iterator over validated sibling records. It trusts the framing [`crate::parse`] checked
/// (so it is lean enough for lookups) yet stops, never panics, on bytes that were not checked.
#[derive(Debug, Clone)]
pub struct Records<'a> {
    rest: &'a [u8],
    offset: usize,
    parent: Option<(u16, u32)>,
    position: u16,
}

impl<'a> Records<'a> {
    pub(crate) fn new(rest: &'a [u8], offset: usize, parent: Option<(u16, u32)>) -> Self {
        Records {
            rest,
            offset,
            parent,
            position: 0,
        }
    }
}

impl<'a> Iterator for Records<'a> {
    type Item = RawRecord<'a>;

    #[inline]
    fn next(&mut self) -> Option<RawRecord<'a>> {
        let rtype = read_u32(self.rest, 0)?;
        let rec_len = read_u32(self.rest, 4)? as usize;
        if rec_len < RECORD_HEADER_LEN {
            return None;
        }
        let (bytes, rest) = self.rest.split_at_checked(rec_len)?;
        let at = match self.parent {
            Some((index, _)) => crate::RecordRef {
                index,
                sub: Some(self.position),
                rtype,
            },
            None => crate::RecordRef {
                index: self.position,
                sub: None,
                rtype,
            },
        };
        let record = RawRecord {
            offset: self.offset,
            rtype,
            flags: read_u32(bytes, 8)?,
            bytes,
            at,
        };
        self.rest = rest;
        self.offset = self.offset.saturating_add(rec_len);
        self.position = self.position.saturating_add(1);
        Some(record)
    }
}

impl<'a> RawRecord<'a> {
    /// Validated sub-records following a fixed body of `body_len` bytes.
    pub fn sub_records(&self, body_len: usize) -> Records<'a> {
        let start = RECORD_HEADER_LEN.saturating_add(body_len);
        Records::new(
            self.bytes.get(start..).unwrap_or(&[]),
            self.offset.saturating_add(start),
            Some((self.at.index, self.rtype)),
        )
    }

    fn body<T: FromBytes>(&self) -> Option<T> {
        T::read_from_prefix(self.content()).ok().map(|(t, _)| t)
    }

    /// The string of a DT_PATH or LABEL sub-record, and its byte offset in the description.
    fn string(&self) -> Option<(&'a str, usize)> {
        let (s, at) = self.string_bytes()?;
        let s = s.strip_suffix(&[0])?;
        Some((core::str::from_utf8(s).ok()?, at))
    }

    /// The raw bytes (NUL included) of a string-carrying sub-record.
    pub(crate) fn string_bytes(&self) -> Option<(&'a [u8], usize)> {
        let len = self.body::<StringBody>()?.len.get() as usize;
        let start = RECORD_HEADER_LEN.checked_add(STRING_BODY_LEN)?;
        let bytes = self.bytes.get(start..start.checked_add(len)?)?;
        Some((bytes, self.at_byte(start)))
    }
}

/// PCI identity of a device.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct PciId {
    /// Vendor ID.
    pub vendor: u16,
    /// Device ID.
    pub device: u16,
    /// Subsystem vendor ID.
    pub subsystem_vendor: u16,
    /// Subsystem ID.
    pub subsystem_device: u16,
    /// 24-bit class code.
    pub class: u32,
    /// Revision ID.
    pub revision: u8,
}

impl PciId {
    pub(crate) fn from_body(b: &PciIdBody) -> PciId {
        PciId {
            vendor: b.vendor.get(),
            device: b.device.get(),
            subsystem_vendor: b.subsystem_vendor.get(),
            subsystem_device: b.subsystem_device.get(),
            class: b.class.get(),
            revision: b.revision,
        }
    }
}

/// The DEVICE record.
#[derive(Debug, Clone, Copy)]
pub struct Device<'a> {
    record: Option<RawRecord<'a>>,
}

impl<'a> Device<'a> {
    fn subs(&self) -> impl Iterator<Item = RawRecord<'a>> + use<'a> {
        self.record
            .into_iter()
            .flat_map(|r| r.sub_records(DEVICE_BODY_LEN))
    }

    /// PCI identity, from the PCI_ID sub-record.
    pub fn pci_id(&self) -> Option<PciId> {
        let r = self.subs().find(|r| r.type_code() == REC_PCI_ID)?;
        Some(PciId::from_body(&r.body::<PciIdBody>()?))
    }

    /// The device-tree `compatible` strings, most specific first.
    pub fn compatible(&self) -> impl Iterator<Item = &'a str> + Clone + use<'a> {
        let list = self
            .subs()
            .find(|r| r.type_code() == REC_DT_COMPATIBLE)
            .and_then(|r| r.string_bytes())
            .map_or(&[][..], |(b, _)| b);
        list.split(|&b| b == 0)
            .filter(|s| !s.is_empty())
            .filter_map(|s| core::str::from_utf8(s).ok())
    }

    /// The device's label.
    pub fn label(&self) -> Option<&'a str> {
        let r = self.subs().find(|r| r.type_code() == REC_LABEL)?;
        r.string().map(|(s, _)| s)
    }

    /// The file offset of the device's reset word, from its RESET sub-record (SPEC.md §4.20,
    /// version 1.2): writing the 8-byte value 1 there resets the device.
    pub fn reset_offset(&self) -> Option<u64> {
        let r = self.subs().find(|r| r.type_code() == REC_RESET)?;
        Some(r.body::<ResetBody>()?.offset.get())
    }

    /// The DEVICE record itself.
    pub fn record(&self) -> Option<RawRecord<'a>> {
        self.record
    }
}

/// A reference to a device-tree node property entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DtRef<'a> {
    /// Absolute node path.
    pub path: &'a str,
    /// Property code ([`DT_PROP_REG`], …).
    pub property: u32,
    /// Entry of that property.
    pub index: u32,
    /// Byte offset of the NUL-terminated path in the description.
    pub path_offset: usize,
}

fn dt_of<'a>(subs: Records<'a>) -> Option<DtRef<'a>> {
    let mut path = None;
    let mut index = None;
    for r in subs {
        match r.type_code() {
            REC_DT_PATH => path = r.string(),
            REC_DT_INDEX => index = r.body::<DtIndexBody>(),
            _ => {}
        }
    }
    let ((path, path_offset), index) = (path?, index?);
    Some(DtRef {
        path,
        property: index.property.get(),
        index: index.index.get(),
        path_offset,
    })
}

fn label_of<'a>(mut subs: Records<'a>) -> Option<(&'a str, usize)> {
    subs.find(|r| r.type_code() == REC_LABEL)?.string()
}

/// A REGION record.
#[derive(Debug, Clone, Copy)]
pub struct Region<'a> {
    record: RawRecord<'a>,
    /// Region index.
    pub index: u32,
    /// Offset in the device file.
    pub offset: u64,
    /// Size in bytes.
    pub size: u64,
    /// `REGION_*` flags.
    pub flags: u32,
}

impl<'a> Region<'a> {
    /// Views a record as a region, if it is one.
    pub fn from_record(record: RawRecord<'a>) -> Option<Self> {
        if record.type_code() != REC_REGION {
            return None;
        }
        let body = record.body::<RegionBody>()?;
        Some(Region {
            record,
            index: body.index.get(),
            offset: body.offset.get(),
            size: body.size.get(),
            flags: record.flags,
        })
    }

    /// The REGION record.
    pub fn record(&self) -> RawRecord<'a> {
        self.record
    }

    /// Reads reach the device.
    pub fn readable(&self) -> bool {
        self.flags & REGION_READ != 0
    }

    /// Writes reach the device.
    pub fn writable(&self) -> bool {
        self.flags & REGION_WRITE != 0
    }

    /// The region may be mmapped.
    pub fn mmappable(&self) -> bool {
        self.flags & REGION_MMAP != 0
    }

    /// One past the region's last offset.
    pub fn end(&self) -> u64 {
        self.offset.saturating_add(self.size)
    }

    /// The region's sub-records.
    pub fn sub_records(&self) -> Records<'a> {
        self.record.sub_records(REGION_BODY_LEN)
    }

    /// What the region is on its bus.
    pub fn location(&self) -> Location {
        for r in self.sub_records() {
            match r.type_code() {
                REC_PCI_BAR => {
                    let bar = r.body::<PciBarBody>().map_or(0, |b| b.bar.get());
                    return Location::PciBar {
                        bar: bar as u8,
                        flags: r.flags,
                    };
                }
                REC_PCI_CONFIG => return Location::PciConfig,
                REC_PCI_ROM => return Location::PciRom,
                _ => {}
            }
        }
        Location::None
    }

    /// The device-tree node property entry the region comes from.
    pub fn dt(&self) -> Option<DtRef<'a>> {
        dt_of(self.sub_records())
    }

    /// The region's label.
    pub fn label(&self) -> Option<&'a str> {
        label_of(self.sub_records()).map(|(s, _)| s)
    }

    /// The areas that may be mmapped, if the region restricts them (SPARSE_MMAP).
    pub fn sparse_areas(&self) -> Option<SparseAreas<'a>> {
        let r = self
            .sub_records()
            .find(|r| r.type_code() == REC_SPARSE_MMAP)?;
        let start = SPARSE_MMAP_BODY_LEN;
        Some(SparseAreas(r.content().get(start..).unwrap_or(&[])))
    }

    /// The CPU physical address of the region's device-tree entry, from its DT_ADDRESS
    /// sub-record (SPEC.md §4.17, version 1.2).
    pub fn dt_address(&self) -> Option<u64> {
        let r = self
            .sub_records()
            .find(|r| r.type_code() == REC_DT_ADDRESS)?;
        Some(r.body::<DtAddressBody>()?.address.get())
    }

    /// The bus (IO virtual) address of a DMA window region, from its DMA_WINDOW sub-record
    /// (SPEC.md §4.19, version 1.2): the device reaches the region's first byte there.
    pub fn dma_address(&self) -> Option<u64> {
        let r = self
            .sub_records()
            .find(|r| r.type_code() == REC_DMA_WINDOW)?;
        Some(r.body::<DmaWindowBody>()?.bus_address.get())
    }

    /// The widths of the region's ACCESS sub-record, if it has one (SPEC.md §4.16).
    pub fn access(&self) -> Option<AccessWidths> {
        let r = self.sub_records().find(|r| r.type_code() == REC_ACCESS)?;
        AccessWidths::new(r.body::<AccessBody>()?.widths.get())
    }

    /// The access widths the region accepts: `None` for a memory-like region (`REGION_MMAP`:
    /// any length), else its ACCESS widths, or all four widths without ACCESS (SPEC.md §6.2).
    pub fn access_widths(&self) -> Option<AccessWidths> {
        if self.mmappable() {
            return None;
        }
        Some(self.access().unwrap_or(AccessWidths::ALL))
    }

    /// The region's entry of the flat resource table.
    pub fn flat_entry(&self) -> FlatEntry {
        let (location, location_index, location_flags) = match self.location() {
            Location::None => (FLAT_LOC_NONE, 0, 0),
            Location::PciBar { bar, flags } => (FLAT_LOC_PCI_BAR, u32::from(bar), flags),
            Location::PciConfig => (FLAT_LOC_PCI_CONFIG, 0, 0),
            Location::PciRom => (FLAT_LOC_PCI_ROM, 0, 0),
        };
        let dt = self.dt();
        let (location, location_index, location_flags) = match (location, dt, self.dma_address()) {
            (FLAT_LOC_NONE, Some(d), _) => (FLAT_LOC_DT, d.index, d.property),
            (FLAT_LOC_NONE, None, Some(a)) => (FLAT_LOC_DMA, a as u32, (a >> 32) as u32),
            other => (other.0, location_index, location_flags),
        };
        FlatEntry {
            kind: FLAT_REGION,
            index: self.index,
            flags: self.flags,
            location,
            offset: self.offset,
            size: self.size,
            count: self.sparse_areas().map_or(0, |a| a.len() as u32),
            location_index,
            irq_kind: 0,
            location_flags,
            dt_path_offset: dt.map_or(0, |d| d.path_offset as u32),
            label_offset: label_of(self.sub_records()).map_or(0, |(_, at)| at as u32),
            access_widths: self.access_widths().map_or(0, |w| u32::from(w.bits())),
        }
    }
}

/// Iterator over the areas of a SPARSE_MMAP sub-record: `(offset within region, size)`.
#[derive(Debug, Clone)]
pub struct SparseAreas<'a>(&'a [u8]);

impl Iterator for SparseAreas<'_> {
    type Item = (u64, u64);

    fn next(&mut self) -> Option<(u64, u64)> {
        let (area, rest) = SparseArea::read_from_prefix(self.0).ok()?;
        self.0 = rest;
        Some((area.offset.get(), area.size.get()))
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let n = self.0.len() / SPARSE_AREA_LEN;
        (n, Some(n))
    }
}

impl ExactSizeIterator for SparseAreas<'_> {}

/// An INTERRUPT record.
#[derive(Debug, Clone, Copy)]
pub struct Interrupt<'a> {
    record: RawRecord<'a>,
    /// Interrupt index.
    pub index: u32,
    /// Number of vectors.
    pub count: u32,
    /// `IRQ_KIND_*`.
    pub kind: u32,
    /// `IRQ_*` flags.
    pub flags: u32,
    /// Offset of the control window in the device file.
    pub control_offset: u64,
}

impl<'a> Interrupt<'a> {
    /// Views a record as an interrupt, if it is one.
    pub fn from_record(record: RawRecord<'a>) -> Option<Self> {
        if record.type_code() != REC_INTERRUPT {
            return None;
        }
        let body = record.body::<InterruptBody>()?;
        Some(Interrupt {
            record,
            index: body.index.get(),
            count: body.count.get(),
            kind: body.kind.get(),
            flags: record.flags,
            control_offset: body.control_offset.get(),
        })
    }

    /// The INTERRUPT record.
    pub fn record(&self) -> RawRecord<'a> {
        self.record
    }

    /// Size of the control window: 16 bytes per vector.
    pub fn control_size(&self) -> u64 {
        u64::from(self.count).saturating_mul(IRQ_CONTROL_STRIDE)
    }

    /// Offset in the device file of vector `vector`'s control block.
    pub fn vector_control_offset(&self, vector: u32) -> Option<u64> {
        if vector >= self.count {
            return None;
        }
        let rel = u64::from(vector).checked_mul(IRQ_CONTROL_STRIDE)?;
        self.control_offset.checked_add(rel)
    }

    /// Level-triggered.
    pub fn level(&self) -> bool {
        self.flags & IRQ_LEVEL != 0
    }

    /// Maskable through the control window.
    pub fn maskable(&self) -> bool {
        self.flags & IRQ_MASKABLE != 0
    }

    /// Masks itself when it fires.
    pub fn automasked(&self) -> bool {
        self.flags & IRQ_AUTOMASKED != 0
    }

    /// The interrupt's sub-records.
    pub fn sub_records(&self) -> Records<'a> {
        self.record.sub_records(INTERRUPT_BODY_LEN)
    }

    /// The device-tree node property entry the interrupt comes from.
    pub fn dt(&self) -> Option<DtRef<'a>> {
        dt_of(self.sub_records())
    }

    /// The interrupt's label.
    pub fn label(&self) -> Option<&'a str> {
        label_of(self.sub_records()).map(|(s, _)| s)
    }

    /// The interrupt's controller and specifier, from its DT_INTERRUPT sub-record (SPEC.md
    /// §4.18, version 1.2).
    pub fn dt_interrupt(&self) -> Option<DtInterrupt<'a>> {
        let r = self
            .sub_records()
            .find(|r| r.type_code() == REC_DT_INTERRUPT)?;
        let head = r.body::<DtInterruptBody>()?;
        let cells_len = (head.count.get() as usize).checked_mul(4)?;
        let rest = r.content().get(DT_INTERRUPT_BODY_LEN..)?;
        let (cells, path) = rest.split_at_checked(cells_len)?;
        let path = path
            .get(..head.path_len.get() as usize)?
            .strip_suffix(&[0])?;
        Some(DtInterrupt {
            controller: core::str::from_utf8(path).ok()?,
            cells: DtCells(cells),
        })
    }

    /// The interrupt's entry of the flat resource table.
    pub fn flat_entry(&self) -> FlatEntry {
        let dt = self.dt();
        let (location, location_index, location_flags) = dt.map_or((FLAT_LOC_NONE, 0, 0), |d| {
            (FLAT_LOC_DT, d.index, d.property)
        });
        FlatEntry {
            kind: FLAT_INTERRUPT,
            index: self.index,
            flags: self.flags,
            location,
            offset: self.control_offset,
            size: self.control_size(),
            count: self.count,
            location_index,
            irq_kind: self.kind,
            location_flags,
            dt_path_offset: dt.map_or(0, |d| d.path_offset as u32),
            label_offset: label_of(self.sub_records()).map_or(0, |(_, at)| at as u32),
            access_widths: 0,
        }
    }
}

/// An interrupt's controller and specifier (a DT_INTERRUPT sub-record, version 1.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DtInterrupt<'a> {
    /// Absolute path of the interrupt controller's node.
    pub controller: &'a str,
    /// The interrupt specifier cells, as the controller's binding defines them.
    pub cells: DtCells<'a>,
}

/// Iterator over the specifier cells of a DT_INTERRUPT sub-record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DtCells<'a>(&'a [u8]);

impl Iterator for DtCells<'_> {
    type Item = u32;

    fn next(&mut self) -> Option<u32> {
        let (cell, rest) = self.0.split_first_chunk::<4>()?;
        self.0 = rest;
        Some(u32::from_le_bytes(*cell))
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let n = self.0.len() / 4;
        (n, Some(n))
    }
}

impl ExactSizeIterator for DtCells<'_> {}

/// One entry of the flat resource table, in native integers (SPEC.md appendix A).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct FlatEntry {
    /// [`FLAT_REGION`] or [`FLAT_INTERRUPT`].
    pub kind: u32,
    /// Region or interrupt index.
    pub index: u32,
    /// The record's flags.
    pub flags: u32,
    /// `FLAT_LOC_*`.
    pub location: u32,
    /// Region offset, or control window offset.
    pub offset: u64,
    /// Region size, or control window size.
    pub size: u64,
    /// Interrupt vectors, or sparse mmap areas of a region.
    pub count: u32,
    /// PCI BAR number, or DT property entry.
    pub location_index: u32,
    /// `IRQ_KIND_*`, 0 for regions.
    pub irq_kind: u32,
    /// PCI BAR flags, or DT property code.
    pub location_flags: u32,
    /// Offset of the NUL-terminated DT path in the description, or 0.
    pub dt_path_offset: u32,
    /// Offset of the NUL-terminated label in the description, or 0.
    pub label_offset: u32,
    /// Register-like region: the `WIDTH_*` bits it accepts ([`WIDTHS_ALL`] without ACCESS).
    /// Memory-like region and interrupt: 0.
    pub access_widths: u32,
}

impl FlatEntry {
    /// The entry in its 64-byte little-endian wire layout.
    pub fn to_raw(&self) -> FlatEntryRaw {
        FlatEntryRaw {
            kind: self.kind.into(),
            index: self.index.into(),
            flags: self.flags.into(),
            location: self.location.into(),
            offset: self.offset.into(),
            size: self.size.into(),
            count: self.count.into(),
            location_index: self.location_index.into(),
            irq_kind: self.irq_kind.into(),
            location_flags: self.location_flags.into(),
            dt_path_offset: self.dt_path_offset.into(),
            label_offset: self.label_offset.into(),
            access_widths: self.access_widths.into(),
            reserved: 0.into(),
        }
    }
}
