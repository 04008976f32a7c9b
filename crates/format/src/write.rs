//! A low-level builder that writes byte-exact descriptions.
//!
//! Records that hold sub-records are opened with a `begin_*` call that returns a
//! [`RecordToken`]; the token must be handed back to [`Writer::end`], innermost first.
//! [`Writer::finish`] appends END and fills in `desc_len` and the DEVICE counts. Misuse of the
//! structure (order, nesting, tokens) is an error and never a panic; every blob it writes is
//! correctly framed. The content rules of SPEC.md §7 (ranges, strings, BARs, …) are left to
//! [`crate::parse`], which [`crate::model::DeviceDesc::build`] runs, so tests can write
//! deliberately invalid content.

use alloc::vec::Vec;

use zerocopy::IntoBytes;

use crate::types::Bus;
use crate::view::PciId;
use crate::wire::*;

/// Misuse of the [`Writer`], or a value the format cannot hold.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WriteError {
    /// DEVICE must be the first record, and there is exactly one.
    #[error("DEVICE must be the first record and appear once")]
    DeviceNotFirst,
    /// A top-level record was begun while another record is open.
    #[error("a top-level record cannot be begun inside another record")]
    NestedTopLevel,
    /// A sub-record was written with no record open.
    #[error("a sub-record needs an open parent record")]
    NoParent,
    /// A sub-record was begun inside a sub-record.
    #[error("records nest at most {MAX_DEPTH} deep")]
    TooDeep,
    /// The token handed to [`Writer::end`] is not the innermost open record's.
    #[error("record tokens must be ended innermost first")]
    WrongToken,
    /// [`Writer::finish`] with records still open, or without DEVICE.
    #[error("cannot finish: a record is still open or DEVICE is missing")]
    Unfinished,
    /// A string is empty, contains NUL, or is too long.
    #[error("string of {len} bytes is empty, contains NUL, or exceeds {MAX_STRING_LEN} bytes")]
    BadString {
        /// Length of the string.
        len: usize,
    },
    /// Too many sparse areas.
    #[error("more than {MAX_SPARSE_AREAS} sparse mmap areas")]
    TooManyAreas,
    /// `Bus::Other` with a code that is not an ASCII capital letter.
    #[error("bus code {code:#x} is not an ASCII capital letter")]
    BadBus {
        /// The code.
        code: u8,
    },
    /// A PCI class code with bits 24–31 set: the class code is 24 bits (SPEC.md §4.7).
    #[error("PCI class code {class:#x} does not fit in 24 bits")]
    BadClass {
        /// The class code.
        class: u32,
    },
    /// The description would exceed [`MAX_DESC_LEN`].
    #[error("the description would exceed {MAX_DESC_LEN} bytes")]
    TooLarge,
}

/// An open record; hand it back to [`Writer::end`].
#[derive(Debug)]
#[must_use = "an open record must be closed with Writer::end"]
pub struct RecordToken {
    start: usize,
}

/// Writes a description record by record.
#[derive(Debug)]
pub struct Writer {
    buf: Vec<u8>,
    open: Vec<usize>,
    device: bool,
    regions: u32,
    interrupts: u32,
    /// A record added in version 1.1 was written, so the header says 1.1.
    minor: u16,
}

fn pad8(buf: &mut Vec<u8>, record_start: usize) {
    while !buf
        .len()
        .wrapping_sub(record_start)
        .is_multiple_of(RECORD_ALIGN)
    {
        buf.push(0);
    }
}

impl Writer {
    /// Starts a description of a device on `bus` with header flags `flags`.
    pub fn new(bus: Bus, flags: u32) -> Result<Self, WriteError> {
        if Bus::from_code(bus.code()) != Some(bus) {
            return Err(WriteError::BadBus { code: bus.code() });
        }
        let header = FileHeader {
            magic: bus.magic().into(),
            version: version_word(VERSION_MAJOR, VERSION_MINOR_BASELINE).into(),
            flags: flags.into(),
        };
        Ok(Writer {
            buf: header.as_bytes().to_vec(),
            open: Vec::new(),
            device: false,
            regions: 0,
            interrupts: 0,
            minor: VERSION_MINOR_BASELINE,
        })
    }

    fn header(&mut self, rtype: u32, flags: u32) -> usize {
        let start = self.buf.len();
        let header = RecordHeader {
            rtype: rtype.into(),
            rec_len: 0.into(),
            flags: flags.into(),
        };
        self.buf.extend_from_slice(header.as_bytes());
        start
    }

    fn check_size(&self) -> Result<(), WriteError> {
        if self.buf.len() > MAX_DESC_LEN {
            return Err(WriteError::TooLarge);
        }
        Ok(())
    }

    fn set_u32(&mut self, at: usize, value: u32) {
        if let Some(slot) = self.buf.get_mut(at..at.saturating_add(4)) {
            slot.copy_from_slice(&value.to_le_bytes());
        }
    }

    /// Begins any record with this type, flags and fixed body; sub-records may follow.
    ///
    /// At top level when no record is open, else as a sub-record of the open record. The body
    /// is zero-padded so that header and body fill a multiple of 8 bytes.
    pub fn begin_record(
        &mut self,
        rtype: u32,
        flags: u32,
        body: &[u8],
    ) -> Result<RecordToken, WriteError> {
        if self.open.len() >= MAX_DEPTH {
            return Err(WriteError::TooDeep);
        }
        let code = rtype & !TYPE_MUST_UNDERSTAND;
        if self.open.is_empty() {
            match code {
                REC_DEVICE if self.device || self.buf.len() != HEADER_LEN => {
                    return Err(WriteError::DeviceNotFirst);
                }
                REC_DEVICE => self.device = true,
                _ if !self.device => return Err(WriteError::DeviceNotFirst),
                REC_REGION => self.regions = self.regions.saturating_add(1),
                REC_INTERRUPT => self.interrupts = self.interrupts.saturating_add(1),
                _ => {}
            }
        }
        // SPEC.md §2.2: the lowest minor version whose features the description uses.
        let minor = match code {
            REC_ACCESS => 1,
            REC_DT_ADDRESS | REC_DT_INTERRUPT | REC_DMA_WINDOW | REC_RESET => 2,
            _ => VERSION_MINOR_BASELINE,
        };
        self.minor = self.minor.max(minor);
        let start = self.header(rtype, flags);
        self.buf.extend_from_slice(body);
        // Pad the body so sub-records (and the next record) start at ≡ 4 (mod 8).
        pad8(&mut self.buf, start);
        self.check_size()?;
        self.open.push(start);
        Ok(RecordToken { start })
    }

    /// Writes a complete record (no sub-records) at the current level, padded to 8 bytes.
    pub fn record(&mut self, rtype: u32, flags: u32, body: &[u8]) -> Result<(), WriteError> {
        let token = self.begin_record(rtype, flags, body)?;
        self.end(token)
    }

    fn top_level(&mut self) -> Result<(), WriteError> {
        if !self.open.is_empty() {
            return Err(WriteError::NestedTopLevel);
        }
        if !self.device {
            return Err(WriteError::DeviceNotFirst);
        }
        Ok(())
    }

    fn sub(&mut self, rtype: u32, flags: u32, body: &[u8]) -> Result<(), WriteError> {
        if self.open.is_empty() {
            return Err(WriteError::NoParent);
        }
        self.record(rtype, flags, body)
    }

    /// Closes the innermost open record.
    pub fn end(&mut self, token: RecordToken) -> Result<(), WriteError> {
        if self.open.last() != Some(&token.start) {
            return Err(WriteError::WrongToken);
        }
        self.open.pop();
        let rec_len = self.buf.len().saturating_sub(token.start);
        self.set_u32(token.start.saturating_add(4), rec_len as u32);
        Ok(())
    }

    /// Begins the DEVICE record; it must come first. Its body is filled in by [`Self::finish`].
    pub fn begin_device(&mut self) -> Result<RecordToken, WriteError> {
        if !self.open.is_empty() {
            return Err(WriteError::DeviceNotFirst);
        }
        self.begin_record(REC_DEVICE, 0, &[0; DEVICE_BODY_LEN])
    }

    /// Begins a REGION record.
    pub fn begin_region(
        &mut self,
        index: u32,
        offset: u64,
        size: u64,
        flags: u32,
    ) -> Result<RecordToken, WriteError> {
        self.top_level()?;
        let body = RegionBody {
            offset: offset.into(),
            size: size.into(),
            index: index.into(),
        };
        self.begin_record(REC_REGION, flags, body.as_bytes())
    }

    /// Begins an INTERRUPT record.
    pub fn begin_interrupt(
        &mut self,
        index: u32,
        count: u32,
        kind: u32,
        flags: u32,
        control_offset: u64,
    ) -> Result<RecordToken, WriteError> {
        self.top_level()?;
        let body = InterruptBody {
            control_offset: control_offset.into(),
            index: index.into(),
            count: count.into(),
            kind: kind.into(),
        };
        self.begin_record(REC_INTERRUPT, flags, body.as_bytes())
    }

    /// Writes a PCI_ID sub-record; the class code must fit in 24 bits.
    pub fn pci_id(&mut self, id: &PciId) -> Result<(), WriteError> {
        if id.class > 0x00ff_ffff {
            return Err(WriteError::BadClass { class: id.class });
        }
        let body = PciIdBody {
            vendor: id.vendor.into(),
            device: id.device.into(),
            subsystem_vendor: id.subsystem_vendor.into(),
            subsystem_device: id.subsystem_device.into(),
            class: id.class.into(),
            revision: id.revision,
            reserved: [0; 3],
        };
        self.sub(REC_PCI_ID, 0, body.as_bytes())
    }

    fn string_record(&mut self, rtype: u32, data: &[&str]) -> Result<(), WriteError> {
        let mut bytes = Vec::new();
        for s in data {
            if s.is_empty() || s.as_bytes().contains(&0) {
                return Err(WriteError::BadString { len: s.len() });
            }
            bytes.extend_from_slice(s.as_bytes());
            bytes.push(0);
        }
        if bytes.is_empty() || bytes.len() > MAX_STRING_LEN as usize {
            return Err(WriteError::BadString { len: bytes.len() });
        }
        let mut body = (bytes.len() as u32).to_le_bytes().to_vec();
        body.extend_from_slice(&bytes);
        self.sub(rtype, 0, &body)
    }

    /// Writes a DT_COMPATIBLE sub-record.
    pub fn compatible<'s>(
        &mut self,
        strings: impl IntoIterator<Item = &'s str>,
    ) -> Result<(), WriteError> {
        let list: Vec<&str> = strings.into_iter().collect();
        self.string_record(REC_DT_COMPATIBLE, &list)
    }

    /// Writes a LABEL sub-record.
    pub fn label(&mut self, label: &str) -> Result<(), WriteError> {
        self.string_record(REC_LABEL, &[label])
    }

    /// Writes a PCI_BAR sub-record.
    pub fn pci_bar(&mut self, bar: u8, flags: u32) -> Result<(), WriteError> {
        let body = PciBarBody {
            bar: u32::from(bar).into(),
        };
        self.sub(REC_PCI_BAR, flags, body.as_bytes())
    }

    /// Writes a PCI_CONFIG sub-record.
    pub fn pci_config(&mut self) -> Result<(), WriteError> {
        self.sub(REC_PCI_CONFIG, 0, &[])
    }

    /// Writes a PCI_ROM sub-record.
    pub fn pci_rom(&mut self) -> Result<(), WriteError> {
        self.sub(REC_PCI_ROM, 0, &[])
    }

    /// Writes DT_PATH and DT_INDEX sub-records.
    pub fn dt(&mut self, path: &str, property: u32, index: u32) -> Result<(), WriteError> {
        self.string_record(REC_DT_PATH, &[path])?;
        let body = DtIndexBody {
            property: property.into(),
            index: index.into(),
        };
        self.sub(REC_DT_INDEX, 0, body.as_bytes())
    }

    /// Writes a SPARSE_MMAP sub-record of `(offset, size)` areas.
    pub fn sparse_mmap(&mut self, areas: &[(u64, u64)]) -> Result<(), WriteError> {
        if areas.len() > MAX_SPARSE_AREAS as usize {
            return Err(WriteError::TooManyAreas);
        }
        let head = SparseMmapBody {
            count: (areas.len() as u32).into(),
            reserved: 0.into(),
        };
        let mut body = head.as_bytes().to_vec();
        for &(offset, size) in areas {
            let area = SparseArea {
                offset: offset.into(),
                size: size.into(),
            };
            body.extend_from_slice(area.as_bytes());
        }
        self.sub(REC_SPARSE_MMAP, 0, &body)
    }

    /// Writes an ACCESS sub-record (version 1.1) with this `WIDTH_*` mask, unchecked; the
    /// description is then written as version 1.1.
    pub fn access(&mut self, widths: u32) -> Result<(), WriteError> {
        let body = AccessBody {
            widths: widths.into(),
        };
        self.sub(REC_ACCESS, 0, body.as_bytes())
    }

    /// Writes a RESET sub-record (version 1.2) under DEVICE: the device's reset word is at file
    /// offset `offset`. The description is then version 1.2.
    pub fn reset_word(&mut self, offset: u64) -> Result<(), WriteError> {
        let body = ResetBody {
            offset: offset.into(),
        };
        self.sub(REC_RESET, 0, body.as_bytes())
    }

    /// Writes a DMA_WINDOW sub-record (version 1.2) under an mmap region: the region is DMA
    /// memory the device reaches at `bus_address`. The description is then version 1.2.
    pub fn dma_window(&mut self, bus_address: u64) -> Result<(), WriteError> {
        let body = DmaWindowBody {
            bus_address: bus_address.into(),
        };
        self.sub(REC_DMA_WINDOW, 0, body.as_bytes())
    }

    /// Writes a DT_ADDRESS sub-record (version 1.2): the CPU physical address of the region's
    /// device-tree entry. The description is then written as version 1.2.
    pub fn dt_address(&mut self, address: u64) -> Result<(), WriteError> {
        let body = DtAddressBody {
            address: address.into(),
        };
        self.sub(REC_DT_ADDRESS, 0, body.as_bytes())
    }

    /// Writes a DT_INTERRUPT sub-record (version 1.2): the interrupt controller's node path and
    /// the specifier cells (their number is left to [`crate::parse`] to check). The description
    /// is then written as version 1.2.
    pub fn dt_interrupt(&mut self, controller: &str, cells: &[u32]) -> Result<(), WriteError> {
        let path_len = controller.len().saturating_add(1);
        if controller.is_empty()
            || controller.as_bytes().contains(&0)
            || path_len > MAX_STRING_LEN as usize
        {
            return Err(WriteError::BadString {
                len: controller.len(),
            });
        }
        if cells.len() > MAX_DESC_LEN / 4 {
            return Err(WriteError::TooLarge);
        }
        let head = DtInterruptBody {
            count: (cells.len() as u32).into(),
            path_len: (path_len as u32).into(),
        };
        let mut body = head.as_bytes().to_vec();
        for cell in cells {
            body.extend_from_slice(&cell.to_le_bytes());
        }
        body.extend_from_slice(controller.as_bytes());
        body.push(0);
        self.sub(REC_DT_INTERRUPT, 0, &body)
    }

    /// Appends END, fills in `desc_len` and the DEVICE counts, and returns the bytes.
    pub fn finish(mut self) -> Result<Vec<u8>, WriteError> {
        if !self.open.is_empty() || !self.device {
            return Err(WriteError::Unfinished);
        }
        self.record(REC_END, 0, &[])?;
        self.check_size()?;
        const BODY: usize = HEADER_LEN + RECORD_HEADER_LEN;
        let desc_len = self.buf.len() as u32;
        self.set_u32(BODY, desc_len);
        self.set_u32(BODY + 4, self.regions);
        self.set_u32(BODY + 8, self.interrupts);
        self.set_u32(4, version_word(VERSION_MAJOR, self.minor));
        Ok(self.buf)
    }
}
