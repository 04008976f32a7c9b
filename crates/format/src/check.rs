//! Validation: every rule of SPEC.md §7, checked once, with overflow-safe arithmetic.
//!
//! Framing errors (a broken header or `rec_len`) stop validation: nothing after them can be
//! located. Every other rule is reported through [`Checker::report`], which either stops at the
//! first error ([`crate::parse`]) or collects them all ([`crate::lint`]).

use zerocopy::FromBytes;

use crate::error::{Error, ErrorKind};
use crate::record::{RawRecord, RecordIter};
use crate::types::{Bus, Location};
use crate::view::{Description, Interrupt, Region};
use crate::wire::*;

/// Smallest valid description: header, an empty DEVICE record and END.
pub const MIN_DESC_LEN: usize = HEADER_LEN + RECORD_HEADER_LEN + DEVICE_BODY_LEN + END_REC_LEN;
/// `rec_len` of END.
const END_REC_LEN: usize = 16;

pub(crate) struct Checker<'s> {
    sink: Option<&'s mut dyn FnMut(Error)>,
}

impl<'s> Checker<'s> {
    pub(crate) fn strict() -> Self {
        Checker { sink: None }
    }

    pub(crate) fn collecting(sink: &'s mut dyn FnMut(Error)) -> Self {
        Checker { sink: Some(sink) }
    }

    /// Reports a rule violation: an error in strict mode, a collected finding otherwise.
    fn report(&mut self, e: Error) -> Result<(), Error> {
        match &mut self.sink {
            Some(sink) => {
                sink(e);
                Ok(())
            }
            None => Err(e),
        }
    }

    fn check(&mut self, ok: bool, e: impl FnOnce() -> Error) -> Result<(), Error> {
        if ok { Ok(()) } else { self.report(e()) }
    }
}

const fn align8(n: usize) -> usize {
    // Callers pass lengths bounded by MAX_STRING_LEN or small constants: no overflow.
    (n.saturating_add(7)) & !7
}

/// Validates a whole description; see [`crate::parse`].
pub(crate) fn validate<'a>(
    bytes: &'a [u8],
    ck: &mut Checker<'_>,
) -> Result<Description<'a>, Error> {
    let too_short = |needed| {
        Error::at(
            ErrorKind::TooShort {
                needed,
                available: bytes.len(),
            },
            bytes.len(),
            None,
        )
    };
    let (header, _) = FileHeader::read_from_prefix(bytes).map_err(|_| too_short(HEADER_LEN))?;
    let magic = header.magic.get();
    let [m0, m1, m2, code] = magic.to_le_bytes();
    let bus = match Bus::from_code(code) {
        Some(bus) if [m0, m1, m2] == MAGIC_PREFIX => bus,
        _ => {
            return Err(Error::at(ErrorKind::BadMagic { found: magic }, 0, None));
        }
    };
    let version = header.version.get();
    let (major, minor) = ((version >> 16) as u16, version as u16);
    if major != VERSION_MAJOR {
        return Err(Error::at(
            ErrorKind::UnsupportedVersion { major, minor },
            4,
            None,
        ));
    }
    let flags = header.flags.get();
    ck.check(flags & FLAGS_MUST_UNDERSTAND == 0, || {
        Error::at(
            ErrorKind::UnknownHeaderFlags {
                flags: flags & FLAGS_MUST_UNDERSTAND,
            },
            8,
            None,
        )
    })?;

    // The prologue: header, DEVICE record header and body (SPEC.md §2.3).
    let prologue = bytes
        .get(HEADER_LEN..PROLOGUE_LEN)
        .ok_or_else(|| too_short(PROLOGUE_LEN))?;
    let (first, body) =
        RecordHeader::read_from_prefix(prologue).map_err(|_| too_short(PROLOGUE_LEN))?;
    let first_type = first.rtype.get();
    if first_type & !TYPE_MUST_UNDERSTAND != REC_DEVICE {
        return Err(Error::at(
            ErrorKind::FirstRecordNotDevice { rtype: first_type },
            HEADER_LEN,
            None,
        ));
    }
    let (device, _) = DeviceBody::read_from_prefix(body).map_err(|_| too_short(PROLOGUE_LEN))?;
    let desc_len = device.desc_len.get();
    const DESC_LEN_AT: usize = HEADER_LEN + RECORD_HEADER_LEN;
    let len_err = |kind| Err(Error::at(kind, DESC_LEN_AT, None));
    if (desc_len as usize) < MIN_DESC_LEN {
        return len_err(ErrorKind::DescLenTooSmall {
            desc_len,
            min: MIN_DESC_LEN,
        });
    }
    if desc_len as usize > MAX_DESC_LEN {
        return len_err(ErrorKind::DescLenTooLarge {
            desc_len,
            max: MAX_DESC_LEN,
        });
    }
    if desc_len % 8 != 4 {
        return len_err(ErrorKind::DescLenMisaligned { desc_len });
    }
    let Some(bytes) = bytes.get(..desc_len as usize) else {
        return len_err(ErrorKind::Truncated {
            desc_len,
            available: bytes.len(),
        });
    };

    let mut walk = Walk {
        bus,
        desc_len,
        records: 0,
        regions: 0,
        interrupts: 0,
        end_seen: false,
    };
    let records = RecordIter::top_level(bytes.get(HEADER_LEN..).unwrap_or(&[]), HEADER_LEN);
    for (position, record) in records.enumerate() {
        let record = record?;
        walk.count_record(&record)?;
        if walk.end_seen {
            // Something follows END inside desc_len.
            ck.report(record.error(ErrorKind::MissingEnd { desc_len }, 0))?;
            break;
        }
        match record.type_code() {
            REC_DEVICE if position == 0 => walk.device(&record, ck)?,
            REC_DEVICE => ck.report(record.error(ErrorKind::Duplicate { rtype: REC_DEVICE }, 0))?,
            REC_REGION => {
                walk.regions = walk.regions.saturating_add(1);
                walk.region(&record, ck)?;
            }
            REC_INTERRUPT => {
                walk.interrupts = walk.interrupts.saturating_add(1);
                walk.interrupt(&record, ck)?;
            }
            REC_END => {
                walk.end_seen = true;
                ck.check(record.flags & FLAGS_MUST_UNDERSTAND == 0, || {
                    unknown_flags(&record, record.flags)
                })?;
                fixed_leaf(&record, 0, ck)?;
            }
            _ => walk.other(&record, "at top level", 1, ck)?,
        }
    }
    ck.check(walk.end_seen, || {
        Error::at(ErrorKind::MissingEnd { desc_len }, desc_len as usize, None)
    })?;
    for (what, declared, actual, at, max) in [
        (
            "regions",
            device.region_count.get(),
            walk.regions,
            28,
            MAX_REGIONS,
        ),
        (
            "interrupts",
            device.interrupt_count.get(),
            walk.interrupts,
            32,
            MAX_INTERRUPTS,
        ),
    ] {
        ck.check(declared == actual, || {
            Error::at(
                ErrorKind::CountMismatch {
                    what,
                    declared,
                    actual,
                },
                at,
                None,
            )
        })?;
        if actual as usize > max {
            // Reported once; the pairwise checks below are skipped to keep work bounded.
            ck.report(Error::at(
                ErrorKind::TooMany {
                    what,
                    max: max as u32,
                },
                at,
                None,
            ))?;
            return Err(Error::at(
                ErrorKind::TooMany {
                    what,
                    max: max as u32,
                },
                at,
                None,
            ));
        }
    }

    let desc = Description {
        bytes,
        bus,
        version,
        flags,
        region_count: walk.regions,
        interrupt_count: walk.interrupts,
    };
    cross_check(&desc, ck)?;
    Ok(desc)
}

struct Walk {
    bus: Bus,
    desc_len: u32,
    records: usize,
    regions: u32,
    interrupts: u32,
    end_seen: bool,
}

fn unknown_flags(record: &RawRecord<'_>, flags: u32) -> Error {
    record.error(ErrorKind::UnknownFlags { flags }, 8)
}

/// Checks that a leaf record has exactly its fixed body plus zero padding; returns the body.
fn fixed_leaf<'a>(
    record: &RawRecord<'a>,
    body_len: usize,
    ck: &mut Checker<'_>,
) -> Result<Option<&'a [u8]>, Error> {
    let expected = align8(RECORD_HEADER_LEN.saturating_add(body_len));
    if record.rec_len() != expected {
        let kind = ErrorKind::RecLenMismatch {
            rec_len: record.rec_len() as u32,
            expected,
        };
        ck.report(record.error(kind, 4))?;
        return Ok(None);
    }
    let content = record.content();
    let (body, padding) = content.split_at_checked(body_len).unwrap_or((content, &[]));
    zero_padding(
        record,
        padding,
        RECORD_HEADER_LEN.saturating_add(body_len),
        ck,
    )?;
    Ok(Some(body))
}

fn zero_padding(
    record: &RawRecord<'_>,
    padding: &[u8],
    at: usize,
    ck: &mut Checker<'_>,
) -> Result<(), Error> {
    if let Some(pos) = padding.iter().position(|&b| b != 0) {
        ck.report(record.error(ErrorKind::NonZeroPadding, at.saturating_add(pos)))?;
    }
    Ok(())
}

#[derive(Clone, Copy, PartialEq)]
enum StringRule {
    /// A UTF-8 label.
    Label,
    /// An absolute device-tree path (printable ASCII starting with '/').
    DtPath,
    /// A device-tree string list: non-empty printable-ASCII entries, each NUL-terminated.
    DtList,
}

/// Checks a string-carrying sub-record (SPEC.md §5.3).
fn string_leaf(
    record: &RawRecord<'_>,
    rule: StringRule,
    ck: &mut Checker<'_>,
) -> Result<(), Error> {
    let content = record.content();
    let Ok((head, _)) = StringBody::read_from_prefix(content) else {
        let kind = ErrorKind::RecLenTooSmall {
            rec_len: record.rec_len() as u32,
            min: RECORD_HEADER_LEN + STRING_BODY_LEN,
        };
        return ck.report(record.error(kind, 4));
    };
    let len = head.len.get();
    const DATA_AT: usize = RECORD_HEADER_LEN + STRING_BODY_LEN;
    let room = record.rec_len().saturating_sub(DATA_AT);
    if len == 0 || len > MAX_STRING_LEN || len as usize > room {
        let kind = ErrorKind::BadStringLen {
            len,
            max: MAX_STRING_LEN,
        };
        return ck.report(record.error(kind, RECORD_HEADER_LEN));
    }
    let Some(body) = fixed_leaf(record, STRING_BODY_LEN.saturating_add(len as usize), ck)? else {
        return Ok(());
    };
    let data = body.get(STRING_BODY_LEN..).unwrap_or(&[]);
    let Some((&last, text)) = data.split_last() else {
        return Ok(());
    };
    if last != 0 {
        let at = DATA_AT.saturating_add(text.len());
        return ck.report(record.error(ErrorKind::StringNotTerminated, at));
    }
    let nul_ok = match rule {
        // A list's entries are separated by NULs, but none may be empty.
        StringRule::DtList => text.first() != Some(&0) && !text.windows(2).any(|w| w == [0, 0]),
        _ => !text.contains(&0),
    };
    if !nul_ok {
        return ck.report(record.error(ErrorKind::StringEmbeddedNul, DATA_AT));
    }
    match rule {
        StringRule::Label => ck.check(core::str::from_utf8(text).is_ok(), || {
            record.error(ErrorKind::StringEncoding { what: "UTF-8" }, DATA_AT)
        }),
        StringRule::DtPath | StringRule::DtList => {
            let printable = text.iter().all(|&b| b == 0 || (0x20..0x7f).contains(&b));
            ck.check(printable, || {
                let kind = ErrorKind::StringEncoding {
                    what: "printable ASCII",
                };
                record.error(kind, DATA_AT)
            })?;
            ck.check(
                rule != StringRule::DtPath || text.first() == Some(&b'/'),
                || record.error(ErrorKind::DtPathNotAbsolute, DATA_AT),
            )
        }
    }
}

/// Which sub-records a parent has seen, for duplicate and pairing rules.
#[derive(Default)]
struct Seen {
    pci_id: bool,
    compatible: bool,
    label: bool,
    location: bool,
    dt_path: bool,
    dt_index: bool,
    sparse: bool,
}

fn once(seen: &mut bool, record: &RawRecord<'_>, ck: &mut Checker<'_>) -> Result<bool, Error> {
    if *seen {
        ck.report(record.error(
            ErrorKind::Duplicate {
                rtype: record.rtype,
            },
            0,
        ))?;
        return Ok(false);
    }
    *seen = true;
    Ok(true)
}

impl Walk {
    fn count_record(&mut self, record: &RawRecord<'_>) -> Result<(), Error> {
        self.records = self.records.saturating_add(1);
        if self.records > MAX_RECORDS {
            return Err(record.error(ErrorKind::TooManyRecords { max: MAX_RECORDS }, 0));
        }
        Ok(())
    }

    fn need_pci(&self, record: &RawRecord<'_>, ck: &mut Checker<'_>) -> Result<bool, Error> {
        if self.bus != Bus::Pci {
            ck.report(record.error(ErrorKind::WrongBus { needs: "pci" }, 0))?;
            return Ok(false);
        }
        Ok(true)
    }

    /// A record this parent does not define: misplaced, too deep, skipped or rejected.
    fn other(
        &mut self,
        record: &RawRecord<'_>,
        where_: &'static str,
        depth: usize,
        ck: &mut Checker<'_>,
    ) -> Result<(), Error> {
        let code = record.type_code();
        let top_level = matches!(code, REC_DEVICE | REC_REGION | REC_INTERRUPT | REC_END);
        let known = top_level || (REC_PCI_ID..=REC_LABEL).contains(&code);
        if top_level && depth > 1 {
            let kind = ErrorKind::NestingTooDeep {
                depth,
                max: MAX_DEPTH,
            };
            return ck.report(record.error(kind, 0));
        }
        if known {
            return ck.report(record.error(
                ErrorKind::Misplaced {
                    rtype: code,
                    where_,
                },
                0,
            ));
        }
        ck.check(!record.must_understand(), || {
            record.error(
                ErrorKind::UnknownMustUnderstand {
                    rtype: record.rtype,
                },
                0,
            )
        })
    }

    fn device(&mut self, record: &RawRecord<'_>, ck: &mut Checker<'_>) -> Result<(), Error> {
        ck.check(record.flags & FLAGS_MUST_UNDERSTAND == 0, || {
            unknown_flags(record, record.flags & FLAGS_MUST_UNDERSTAND)
        })?;
        let mut seen = Seen::default();
        for sub in record.children(DEVICE_BODY_LEN) {
            let sub = sub?;
            self.count_record(&sub)?;
            match sub.type_code() {
                REC_PCI_ID => {
                    if self.need_pci(&sub, ck)? && once(&mut seen.pci_id, &sub, ck)? {
                        self.no_flags(&sub, 0, ck)?;
                        if let Some(body) = fixed_leaf(&sub, PCI_ID_BODY_LEN, ck)? {
                            let reserved = body.get(13..).unwrap_or(&[]);
                            ck.check(reserved.iter().all(|&b| b == 0), || {
                                sub.error(ErrorKind::NonZeroReserved, RECORD_HEADER_LEN + 13)
                            })?;
                        }
                    }
                }
                REC_DT_COMPATIBLE => {
                    if once(&mut seen.compatible, &sub, ck)? {
                        self.no_flags(&sub, 0, ck)?;
                        string_leaf(&sub, StringRule::DtList, ck)?;
                    }
                }
                REC_LABEL => {
                    if once(&mut seen.label, &sub, ck)? {
                        self.no_flags(&sub, 0, ck)?;
                        string_leaf(&sub, StringRule::Label, ck)?;
                    }
                }
                _ => self.other(&sub, "under DEVICE", 2, ck)?,
            }
        }
        let (missing, what) = match self.bus {
            Bus::Pci => (!seen.pci_id, "PCI_ID sub-record of a PCI device"),
            Bus::Platform => (
                !seen.compatible,
                "DT_COMPATIBLE sub-record of a platform device",
            ),
            Bus::Other(_) => (false, ""),
        };
        ck.check(!missing, || record.error(ErrorKind::Missing { what }, 0))
    }

    fn no_flags(
        &self,
        record: &RawRecord<'_>,
        known: u32,
        ck: &mut Checker<'_>,
    ) -> Result<(), Error> {
        let unknown = record.flags & FLAGS_MUST_UNDERSTAND & !known;
        ck.check(unknown == 0, || unknown_flags(record, unknown))
    }

    /// Sub-records shared by REGION and INTERRUPT: DT_PATH, DT_INDEX, LABEL.
    fn common_sub(
        &mut self,
        sub: &RawRecord<'_>,
        seen: &mut Seen,
        properties: &[u32],
        where_: &'static str,
        ck: &mut Checker<'_>,
    ) -> Result<(), Error> {
        match sub.type_code() {
            REC_DT_PATH => {
                if once(&mut seen.dt_path, sub, ck)? {
                    self.no_flags(sub, 0, ck)?;
                    string_leaf(sub, StringRule::DtPath, ck)?;
                }
            }
            REC_DT_INDEX => {
                if once(&mut seen.dt_index, sub, ck)? {
                    self.no_flags(sub, 0, ck)?;
                    if let Some(body) = fixed_leaf(sub, DT_INDEX_BODY_LEN, ck)? {
                        let property = DtIndexBody::read_from_prefix(body)
                            .map_or(0, |(b, _)| b.property.get());
                        ck.check(properties.contains(&property), || {
                            sub.error(ErrorKind::BadDtProperty { property }, RECORD_HEADER_LEN)
                        })?;
                    }
                }
            }
            REC_LABEL => {
                if once(&mut seen.label, sub, ck)? {
                    self.no_flags(sub, 0, ck)?;
                    string_leaf(sub, StringRule::Label, ck)?;
                }
            }
            _ => self.other(sub, where_, 2, ck)?,
        }
        Ok(())
    }

    fn dt_pairing(
        &self,
        record: &RawRecord<'_>,
        seen: &Seen,
        ck: &mut Checker<'_>,
    ) -> Result<(), Error> {
        ck.check(seen.dt_path || !seen.dt_index, || {
            record.error(
                ErrorKind::Missing {
                    what: "DT_PATH beside DT_INDEX",
                },
                0,
            )
        })?;
        ck.check(seen.dt_index || !seen.dt_path, || {
            record.error(
                ErrorKind::Missing {
                    what: "DT_INDEX beside DT_PATH",
                },
                0,
            )
        })
    }

    fn region(&mut self, record: &RawRecord<'_>, ck: &mut Checker<'_>) -> Result<(), Error> {
        self.no_flags(record, REGION_KNOWN_FLAGS, ck)?;
        let Some(region) = Region::from_record(*record) else {
            let kind = ErrorKind::RecLenTooSmall {
                rec_len: record.rec_len() as u32,
                min: RECORD_HEADER_LEN + REGION_BODY_LEN,
            };
            return ck.report(record.error(kind, 4));
        };
        let (index, offset, size) = (region.index, region.offset, region.size);
        const BODY: usize = RECORD_HEADER_LEN;
        ck.check(size != 0, || {
            record.error(ErrorKind::ZeroSize { index }, BODY + 8)
        })?;
        self.range_rules("region", index, offset, size, record, ck)?;
        if region.mmappable() {
            let aligned = offset % PAGE_SIZE == 0 && size % PAGE_SIZE == 0;
            ck.check(aligned, || {
                let kind = ErrorKind::Misaligned {
                    what: "mmap region",
                    offset,
                    size,
                    align: PAGE_SIZE,
                };
                record.error(kind, BODY)
            })?;
        }
        let mut seen = Seen::default();
        for sub in record.children(REGION_BODY_LEN) {
            let sub = sub?;
            self.count_record(&sub)?;
            match sub.type_code() {
                code @ (REC_PCI_BAR | REC_PCI_CONFIG | REC_PCI_ROM) => {
                    if !self.need_pci(&sub, ck)? {
                        continue;
                    }
                    if seen.location {
                        ck.report(sub.error(ErrorKind::ConflictingLocation, 0))?;
                        continue;
                    }
                    seen.location = true;
                    self.location_sub(code, &sub, &region, ck)?;
                }
                REC_SPARSE_MMAP => {
                    if once(&mut seen.sparse, &sub, ck)? {
                        self.sparse(&sub, &region, ck)?;
                    }
                }
                _ => self.common_sub(
                    &sub,
                    &mut seen,
                    &[DT_PROP_REG, DT_PROP_RANGES],
                    "under REGION",
                    ck,
                )?,
            }
        }
        self.dt_pairing(record, &seen, ck)
    }

    fn location_sub(
        &mut self,
        code: u32,
        sub: &RawRecord<'_>,
        region: &Region<'_>,
        ck: &mut Checker<'_>,
    ) -> Result<(), Error> {
        match code {
            REC_PCI_BAR => {
                self.no_flags(sub, BAR_KNOWN_FLAGS, ck)?;
                let flags = sub.flags;
                ck.check(
                    flags & BAR_IO == 0 || flags & (BAR_MEM64 | BAR_PREFETCH) == 0,
                    || sub.error(ErrorKind::BadBarFlags { flags }, 8),
                )?;
                if let Some(body) = fixed_leaf(sub, PCI_BAR_BODY_LEN, ck)? {
                    let bar = PciBarBody::read_from_prefix(body).map_or(0, |(b, _)| b.bar.get());
                    ck.check(bar < PCI_BAR_COUNT, || {
                        sub.error(ErrorKind::BarOutOfRange { bar }, RECORD_HEADER_LEN)
                    })?;
                }
            }
            REC_PCI_CONFIG => {
                self.no_flags(sub, 0, ck)?;
                fixed_leaf(sub, 0, ck)?;
                let size = region.size;
                ck.check(size == 256 || size == 4096, || {
                    region
                        .record()
                        .error(ErrorKind::BadConfigSize { size }, RECORD_HEADER_LEN + 8)
                })?;
            }
            _ => {
                self.no_flags(sub, 0, ck)?;
                fixed_leaf(sub, 0, ck)?;
            }
        }
        Ok(())
    }

    fn sparse(
        &mut self,
        sub: &RawRecord<'_>,
        region: &Region<'_>,
        ck: &mut Checker<'_>,
    ) -> Result<(), Error> {
        self.no_flags(sub, 0, ck)?;
        ck.check(region.mmappable(), || {
            let kind = ErrorKind::Misplaced {
                rtype: REC_SPARSE_MMAP,
                where_: "under a region without the MMAP flag",
            };
            sub.error(kind, 0)
        })?;
        let Ok((head, _)) = SparseMmapBody::read_from_prefix(sub.content()) else {
            let kind = ErrorKind::RecLenTooSmall {
                rec_len: sub.rec_len() as u32,
                min: RECORD_HEADER_LEN + SPARSE_MMAP_BODY_LEN,
            };
            return ck.report(sub.error(kind, 4));
        };
        let count = head.count.get();
        if count > MAX_SPARSE_AREAS {
            let kind = ErrorKind::TooMany {
                what: "sparse areas",
                max: MAX_SPARSE_AREAS,
            };
            return ck.report(sub.error(kind, RECORD_HEADER_LEN));
        }
        ck.check(head.reserved.get() == 0, || {
            sub.error(ErrorKind::NonZeroReserved, RECORD_HEADER_LEN + 4)
        })?;
        let body_len =
            SPARSE_MMAP_BODY_LEN.saturating_add((count as usize).saturating_mul(SPARSE_AREA_LEN));
        let Some(body) = fixed_leaf(sub, body_len, ck)? else {
            return Ok(());
        };
        let areas = body.get(SPARSE_MMAP_BODY_LEN..).unwrap_or(&[]);
        let mut previous_end = 0u64;
        for (area, chunk) in (0u32..).zip(areas.chunks_exact(SPARSE_AREA_LEN)) {
            let Ok((a, _)) = SparseArea::read_from_prefix(chunk) else {
                break;
            };
            let (offset, size) = (a.offset.get(), a.size.get());
            let at = RECORD_HEADER_LEN
                .saturating_add(SPARSE_MMAP_BODY_LEN)
                .saturating_add((area as usize).saturating_mul(SPARSE_AREA_LEN));
            let end = offset.checked_add(size);
            let inside = size != 0 && end.is_some_and(|e| e <= region.size);
            if !inside {
                ck.report(sub.error(ErrorKind::SparseOutside { area }, at))?;
                continue;
            }
            ck.check(offset % PAGE_SIZE == 0 && size % PAGE_SIZE == 0, || {
                let kind = ErrorKind::Misaligned {
                    what: "sparse mmap area",
                    offset,
                    size,
                    align: PAGE_SIZE,
                };
                sub.error(kind, at)
            })?;
            ck.check(area == 0 || offset >= previous_end, || {
                sub.error(ErrorKind::SparseOrder { area }, at)
            })?;
            previous_end = end.unwrap_or(u64::MAX);
        }
        Ok(())
    }

    /// Rules every range of the device file obeys: no wrap, no overlap with the description.
    fn range_rules(
        &self,
        what: &'static str,
        index: u32,
        offset: u64,
        size: u64,
        record: &RawRecord<'_>,
        ck: &mut Checker<'_>,
    ) -> Result<(), Error> {
        let at = RECORD_HEADER_LEN;
        ck.check(offset.checked_add(size).is_some(), || {
            let kind = ErrorKind::RangeWraps {
                what,
                index,
                offset,
                size,
            };
            record.error(kind, at)
        })?;
        let desc_len = self.desc_len;
        ck.check(offset >= u64::from(desc_len), || {
            let kind = ErrorKind::OverlapsDescription {
                what,
                index,
                offset,
                desc_len,
            };
            record.error(kind, at)
        })
    }

    fn interrupt(&mut self, record: &RawRecord<'_>, ck: &mut Checker<'_>) -> Result<(), Error> {
        self.no_flags(record, IRQ_KNOWN_FLAGS, ck)?;
        let Some(irq) = Interrupt::from_record(*record) else {
            let kind = ErrorKind::RecLenTooSmall {
                rec_len: record.rec_len() as u32,
                min: RECORD_HEADER_LEN + INTERRUPT_BODY_LEN,
            };
            return ck.report(record.error(kind, 4));
        };
        const BODY: usize = RECORD_HEADER_LEN;
        let (index, count, kind) = (irq.index, irq.count, irq.kind);
        ck.check((1..=MAX_VECTORS).contains(&count), || {
            let e = ErrorKind::BadVectorCount {
                count,
                max: MAX_VECTORS,
            };
            record.error(e, BODY + 12)
        })?;
        match kind {
            IRQ_KIND_INTX | IRQ_KIND_MSI | IRQ_KIND_MSIX => {
                self.need_pci(record, ck)?;
            }
            IRQ_KIND_WIRED | IRQ_KIND_ERROR | IRQ_KIND_REQUEST => {}
            _ => ck.report(record.error(ErrorKind::UnknownInterruptKind { kind }, BODY + 16))?,
        }
        let offset = irq.control_offset;
        let size = irq.control_size();
        self.range_rules("interrupt window", index, offset, size, record, ck)?;
        ck.check(offset % IRQ_CONTROL_STRIDE == 0, || {
            let e = ErrorKind::Misaligned {
                what: "interrupt control window",
                offset,
                size,
                align: IRQ_CONTROL_STRIDE,
            };
            record.error(e, BODY)
        })?;
        let mut seen = Seen::default();
        for sub in record.children(INTERRUPT_BODY_LEN) {
            let sub = sub?;
            self.count_record(&sub)?;
            self.common_sub(
                &sub,
                &mut seen,
                &[DT_PROP_INTERRUPTS],
                "under INTERRUPT",
                ck,
            )?;
        }
        self.dt_pairing(record, &seen, ck)
    }
}

/// A range of the device file claimed by a region or an interrupt control window.
#[derive(Clone, Copy)]
struct Span {
    what: &'static str,
    index: u32,
    start: u64,
    end: u64,
}

fn spans<'a>(
    desc: &Description<'a>,
) -> impl Iterator<Item = (Span, RawRecord<'a>)> + Clone + use<'a> {
    desc.records().filter_map(|r| {
        if let Some(region) = Region::from_record(r) {
            let span = Span {
                what: "region",
                index: region.index,
                start: region.offset,
                end: region.offset.saturating_add(region.size),
            };
            return Some((span, r));
        }
        let irq = Interrupt::from_record(r)?;
        let span = Span {
            what: "interrupt window",
            index: irq.index,
            start: irq.control_offset,
            end: irq.control_offset.saturating_add(irq.control_size()),
        };
        Some((span, r))
    })
}

/// Rules between records: unique indices, unique bus locations, no overlapping ranges.
fn cross_check(desc: &Description<'_>, ck: &mut Checker<'_>) -> Result<(), Error> {
    for (i, (span, record)) in spans(desc).enumerate() {
        for (other, other_record) in spans(desc).take(i) {
            if span.what == other.what && span.index == other.index {
                let (what, at) = if span.what == "region" {
                    ("region", 16)
                } else {
                    ("interrupt", 8)
                };
                let kind = ErrorKind::DuplicateIndex {
                    what,
                    index: span.index,
                };
                ck.report(record.error(kind, RECORD_HEADER_LEN.saturating_add(at)))?;
            }
            if span.start < other.end && other.start < span.end {
                let kind = ErrorKind::Overlap {
                    what: span.what,
                    index: span.index,
                    other_what: other.what,
                    other_index: other.index,
                };
                ck.report(record.error(kind, RECORD_HEADER_LEN))?;
            }
            if span.what == "region" && other.what == "region" {
                location_clash(record, other_record, ck)?;
            }
        }
    }
    Ok(())
}

fn location_clash(
    record: RawRecord<'_>,
    other: RawRecord<'_>,
    ck: &mut Checker<'_>,
) -> Result<(), Error> {
    let (Some(a), Some(b)) = (Region::from_record(record), Region::from_record(other)) else {
        return Ok(());
    };
    let what = match (a.location(), b.location()) {
        (Location::PciBar { bar: x, .. }, Location::PciBar { bar: y, .. }) if x == y => "PCI BAR",
        (Location::PciConfig, Location::PciConfig) => "PCI config space",
        (Location::PciRom, Location::PciRom) => "PCI ROM",
        _ => return Ok(()),
    };
    ck.report(record.error(ErrorKind::DuplicateLocation { what }, 0))
}
