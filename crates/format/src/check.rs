//! Validation: every rule of SPEC.md §7, checked once, with overflow-safe arithmetic.
//!
//! Framing errors (a broken header or `rec_len`) stop validation: nothing after them can be
//! located. Every other rule is reported through [`Checker::report`], which either stops at the
//! first error ([`crate::parse`]) or collects them all ([`crate::lint`]).
//!
//! One pass over the records checks each record and collects the ranges regions and interrupt
//! windows claim; a sort of those ranges then finds duplicates and overlaps in O(n log n).

use zerocopy::FromBytes;

use crate::error::{Error, ErrorKind, RecordRef};
use crate::record::{RawRecord, RecordIter};
use crate::types::Bus;
use crate::view::{Description, Interrupt, LocationCache, RecordSlot, Region};
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

    #[inline]
    fn check(&mut self, ok: bool, e: impl FnOnce() -> Error) -> Result<(), Error> {
        if ok { Ok(()) } else { self.report(e()) }
    }
}

const fn align8(n: usize) -> usize {
    // Callers pass lengths bounded by MAX_DESC_LEN-sized slices or small constants.
    (n.saturating_add(7)) & !7
}

/// What the fixed prologue (SPEC.md §2.3) says.
pub(crate) struct Prologue {
    pub bus: Bus,
    pub version: u32,
    pub flags: u32,
    pub desc_len: u32,
    pub region_count: u32,
    pub interrupt_count: u32,
}

/// Checks the header and the DEVICE prologue: magic, version, first record, `desc_len` limits.
pub(crate) fn prologue(bytes: &[u8]) -> Result<Prologue, Error> {
    let too_short = |needed| {
        let kind = ErrorKind::TooShort {
            needed,
            available: bytes.len(),
        };
        Error::at(kind, bytes.len(), None)
    };
    let (header, _) = FileHeader::read_from_prefix(bytes).map_err(|_| too_short(HEADER_LEN))?;
    let magic = header.magic.get();
    let [m0, m1, m2, code] = magic.to_le_bytes();
    let bus = match Bus::from_code(code) {
        Some(bus) if [m0, m1, m2] == MAGIC_PREFIX => bus,
        _ => return Err(Error::at(ErrorKind::BadMagic { found: magic }, 0, None)),
    };
    let version = header.version.get();
    let (major, minor) = ((version >> 16) as u16, version as u16);
    if major != VERSION_MAJOR {
        let kind = ErrorKind::UnsupportedVersion { major, minor };
        return Err(Error::at(kind, 4, None));
    }
    let rest = bytes
        .get(HEADER_LEN..PROLOGUE_LEN)
        .ok_or_else(|| too_short(PROLOGUE_LEN))?;
    let (first, body) =
        RecordHeader::read_from_prefix(rest).map_err(|_| too_short(PROLOGUE_LEN))?;
    let first_type = first.rtype.get();
    if first_type & !TYPE_MUST_UNDERSTAND != REC_DEVICE {
        let kind = ErrorKind::FirstRecordNotDevice { rtype: first_type };
        return Err(Error::at(kind, HEADER_LEN, None));
    }
    let (device, _) = DeviceBody::read_from_prefix(body).map_err(|_| too_short(PROLOGUE_LEN))?;
    let desc_len = device.desc_len.get();
    const DESC_LEN_AT: usize = HEADER_LEN + RECORD_HEADER_LEN;
    let fail = |kind| Err(Error::at(kind, DESC_LEN_AT, None));
    if (desc_len as usize) < MIN_DESC_LEN {
        return fail(ErrorKind::DescLenTooSmall {
            desc_len,
            min: MIN_DESC_LEN,
        });
    }
    if desc_len as usize > MAX_DESC_LEN {
        return fail(ErrorKind::DescLenTooLarge {
            desc_len,
            max: MAX_DESC_LEN,
        });
    }
    if desc_len % 8 != 4 {
        return fail(ErrorKind::DescLenMisaligned { desc_len });
    }
    Ok(Prologue {
        bus,
        version,
        flags: header.flags.get(),
        desc_len,
        region_count: device.region_count.get(),
        interrupt_count: device.interrupt_count.get(),
    })
}

/// Validates a whole description; see [`crate::parse`].
pub(crate) fn validate<'a>(
    bytes: &'a [u8],
    ck: &mut Checker<'_>,
) -> Result<Description<'a>, Error> {
    let p = prologue(bytes)?;
    let flags = p.flags;
    ck.check(flags & FLAGS_MUST_UNDERSTAND == 0, || {
        let kind = ErrorKind::UnknownHeaderFlags {
            flags: flags & FLAGS_MUST_UNDERSTAND,
        };
        Error::at(kind, 8, None)
    })?;
    let desc_len = p.desc_len;
    let Some(bytes) = bytes.get(..desc_len as usize) else {
        let kind = ErrorKind::Truncated {
            desc_len,
            available: bytes.len(),
        };
        return Err(Error::at(kind, HEADER_LEN + RECORD_HEADER_LEN, None));
    };

    let mut walk = Walk {
        bus: p.bus,
        desc_len,
        records: 0,
        regions: 0,
        interrupts: 0,
        end_seen: false,
        locations: LocationCache::default(),
        spans: Spans::new(),
    };
    let records = RecordIter::top_level(bytes.get(HEADER_LEN..).unwrap_or(&[]), HEADER_LEN);
    let mut after_end = false;
    for (position, record) in records.enumerate() {
        let record = record?;
        walk.count_record(&record)?;
        if walk.end_seen {
            // Something follows END inside desc_len: reported once, at the first such record.
            // A linter still frames the rest and counts its REGION and INTERRUPT records, so
            // that the count rules are not broken by the misplaced END alone, but checks
            // nothing else of them.
            if !after_end {
                ck.report(record.error(ErrorKind::MissingEnd { desc_len }, 0))?;
                after_end = true;
            }
            match record.type_code() {
                REC_REGION => walk.regions = walk.regions.saturating_add(1),
                REC_INTERRUPT => walk.interrupts = walk.interrupts.saturating_add(1),
                _ => {}
            }
            continue;
        }
        match record.type_code() {
            REC_DEVICE if position == 0 => walk.device(&record, ck)?,
            REC_DEVICE => ck.report(record.error(ErrorKind::Duplicate { rtype: REC_DEVICE }, 0))?,
            REC_REGION => walk.region(&record, ck)?,
            REC_INTERRUPT => walk.interrupt(&record, ck)?,
            REC_END => {
                walk.end_seen = true;
                walk.no_flags(&record, 0, ck)?;
                fixed_leaf(&record, 0, ck)?;
            }
            _ => walk.other(&record, "at top level", 1, ck)?,
        }
    }
    ck.check(walk.end_seen, || {
        Error::at(ErrorKind::MissingEnd { desc_len }, desc_len as usize, None)
    })?;
    let counts = [
        ("regions", p.region_count, walk.regions, 28),
        ("interrupts", p.interrupt_count, walk.interrupts, 32),
    ];
    for (what, declared, actual, at) in counts {
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
    }

    let desc = Description {
        bytes,
        bus: p.bus,
        version: p.version,
        flags,
        region_count: walk.regions,
        interrupt_count: walk.interrupts,
        locations: walk.locations,
    };
    walk.spans.cross_check(&desc, ck)?;
    Ok(desc)
}

fn unknown_flags(record: &RawRecord<'_>, flags: u32) -> Error {
    record.error(ErrorKind::UnknownFlags { flags }, 8)
}

fn too_small(record: &RawRecord<'_>, body_len: usize) -> Error {
    let kind = ErrorKind::RecLenTooSmall {
        rec_len: record.rec_len() as u32,
        min: RECORD_HEADER_LEN.saturating_add(body_len),
    };
    record.error(kind, 4)
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
    if padding.iter().fold(0u8, |acc, &b| acc | b) != 0
        && let Some(pos) = padding.iter().position(|&b| b != 0)
    {
        let at = RECORD_HEADER_LEN
            .saturating_add(body_len)
            .saturating_add(pos);
        ck.report(record.error(ErrorKind::NonZeroPadding, at))?;
    }
    Ok(Some(body))
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

/// Checks a string-carrying sub-record (SPEC.md §4.2).
fn string_leaf(
    record: &RawRecord<'_>,
    rule: StringRule,
    ck: &mut Checker<'_>,
) -> Result<(), Error> {
    let Ok((head, _)) = StringBody::read_from_prefix(record.content()) else {
        return ck.report(too_small(record, STRING_BODY_LEN));
    };
    let len = head.len.get();
    const DATA_AT: usize = RECORD_HEADER_LEN + STRING_BODY_LEN;
    let room = record.rec_len().saturating_sub(DATA_AT);
    if !(2..=MAX_STRING_LEN).contains(&len) || len as usize > room {
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
    string_content(record, data, DATA_AT, rule, ck)
}

/// Checks the bytes of a string (NUL included) that start at byte `data_at` of `record`:
/// rules 44–47.
fn string_content(
    record: &RawRecord<'_>,
    data: &[u8],
    data_at: usize,
    rule: StringRule,
    ck: &mut Checker<'_>,
) -> Result<(), Error> {
    let Some((&last, text)) = data.split_last() else {
        return Ok(());
    };
    if last != 0 {
        let at = data_at.saturating_add(text.len());
        return ck.report(record.error(ErrorKind::StringNotTerminated, at));
    }
    // Fast path: printable ASCII (what nearly every label and path is) satisfies every
    // rule below except a DT path's leading '/'; the slow path finds the first failing rule.
    if text
        .iter()
        .fold(true, |ok, &b| ok & (b.wrapping_sub(0x20) < 0x5f))
        && (rule != StringRule::DtPath || text.first() == Some(&b'/'))
        && (rule != StringRule::DtList || !text.is_empty())
    {
        return Ok(());
    }
    let nul_ok = match rule {
        // A list's entries are separated by NULs, but none may be empty.
        StringRule::DtList => {
            text.first() != Some(&0)
                && text.last() != Some(&0)
                && !text.windows(2).any(|w| w == [0, 0])
        }
        _ => !text.contains(&0),
    };
    if !nul_ok {
        return ck.report(record.error(ErrorKind::StringEmbeddedNul, data_at));
    }
    match rule {
        StringRule::Label => ck.check(core::str::from_utf8(text).is_ok(), || {
            record.error(ErrorKind::StringEncoding { what: "UTF-8" }, data_at)
        }),
        StringRule::DtPath | StringRule::DtList => {
            let printable = text.iter().all(|&b| b == 0 || (0x20..0x7f).contains(&b));
            ck.check(printable, || {
                let kind = ErrorKind::StringEncoding {
                    what: "printable ASCII",
                };
                record.error(kind, data_at)
            })?;
            ck.check(
                rule != StringRule::DtPath || text.first() == Some(&b'/'),
                || record.error(ErrorKind::DtPathNotAbsolute, data_at),
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
    access: bool,
    dt_address: bool,
    dt_interrupt: bool,
    dma_window: bool,
    reset: bool,
}

/// DT_ADDRESS and DT_INTERRUPT qualify a DT reference, so they need DT_PATH and DT_INDEX.
fn dt_detail_needs_ref(
    record: &RawRecord<'_>,
    seen: &Seen,
    detail: bool,
    what: &'static str,
    ck: &mut Checker<'_>,
) -> Result<(), Error> {
    ck.check(!detail || (seen.dt_path && seen.dt_index), || {
        record.error(ErrorKind::Missing { what }, 0)
    })
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

struct Walk {
    bus: Bus,
    desc_len: u32,
    records: usize,
    regions: u32,
    interrupts: u32,
    end_seen: bool,
    locations: LocationCache,
    spans: Spans,
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

    fn no_flags(
        &self,
        record: &RawRecord<'_>,
        known: u32,
        ck: &mut Checker<'_>,
    ) -> Result<(), Error> {
        let unknown = record.flags & FLAGS_MUST_UNDERSTAND & !known;
        ck.check(unknown == 0, || unknown_flags(record, unknown))
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
        let known = top_level || (REC_PCI_ID..=REC_LAST_KNOWN).contains(&code);
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
        if record.rec_len() < RECORD_HEADER_LEN + DEVICE_BODY_LEN {
            return ck.report(too_small(record, DEVICE_BODY_LEN));
        }
        self.no_flags(record, 0, ck)?;
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
                            let class =
                                PciIdBody::read_from_prefix(body).map_or(0, |(b, _)| b.class.get());
                            ck.check(class <= 0x00ff_ffff, || {
                                let kind = ErrorKind::BadPciClass { class };
                                sub.error(kind, RECORD_HEADER_LEN + 8)
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
                REC_RESET => {
                    if once(&mut seen.reset, &sub, ck)? {
                        self.reset_word(&sub, ck)?;
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
        self.regions = self.regions.saturating_add(1);
        if self.regions as usize > MAX_REGIONS {
            let kind = ErrorKind::TooMany {
                what: "regions",
                max: MAX_REGIONS as u32,
            };
            return Err(record.error(kind, 0));
        }
        self.no_flags(record, REGION_KNOWN_FLAGS, ck)?;
        let Some(region) = Region::from_record(*record) else {
            return ck.report(too_small(record, REGION_BODY_LEN));
        };
        let (index, offset, size) = (region.index, region.offset, region.size);
        const BODY: usize = RECORD_HEADER_LEN;
        ck.check(size != 0, || {
            record.error(ErrorKind::ZeroSize { index }, BODY + 8)
        })?;
        self.range_rules("region", index, offset, size, record, ck)?;
        let align = if region.mmappable() {
            PAGE_SIZE
        } else {
            REGION_ALIGN
        };
        let aligned =
            offset.is_multiple_of(align) && (!region.mmappable() || size % PAGE_SIZE == 0);
        ck.check(aligned, || {
            let what = if region.mmappable() {
                "mmap region"
            } else {
                "region"
            };
            let kind = ErrorKind::Misaligned {
                what,
                offset,
                size,
                align,
            };
            record.error(kind, BODY)
        })?;
        self.spans
            .push(Span::new(SpanKind::Region, index, offset, size, record));
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
                REC_ACCESS => {
                    if once(&mut seen.access, &sub, ck)? {
                        self.access(&sub, &region, ck)?;
                    }
                }
                REC_DT_ADDRESS => {
                    if once(&mut seen.dt_address, &sub, ck)? {
                        self.dt_address(&sub, &region, ck)?;
                    }
                }
                REC_DMA_WINDOW => {
                    if once(&mut seen.dma_window, &sub, ck)? {
                        self.dma_window(&sub, &region, ck)?;
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
        self.dt_pairing(record, &seen, ck)?;
        dt_detail_needs_ref(
            record,
            &seen,
            seen.dt_address,
            "DT_PATH and DT_INDEX beside DT_ADDRESS",
            ck,
        )
    }

    fn location_sub(
        &mut self,
        code: u32,
        sub: &RawRecord<'_>,
        region: &Region<'_>,
        ck: &mut Checker<'_>,
    ) -> Result<(), Error> {
        let at = RecordSlot {
            offset: region.record().offset as u32,
            position: region.record().at.index,
        };
        let duplicate = |ck: &mut Checker<'_>, what| {
            ck.report(
                region
                    .record()
                    .error(ErrorKind::DuplicateLocation { what }, 0),
            )
        };
        match code {
            REC_PCI_BAR => {
                self.no_flags(sub, BAR_KNOWN_FLAGS, ck)?;
                let Some(body) = fixed_leaf(sub, PCI_BAR_BODY_LEN, ck)? else {
                    return Ok(());
                };
                let bar = PciBarBody::read_from_prefix(body).map_or(0, |(b, _)| b.bar.get());
                if bar >= PCI_BAR_COUNT {
                    let kind = ErrorKind::BarOutOfRange { bar };
                    return ck.report(sub.error(kind, RECORD_HEADER_LEN));
                }
                let flags = sub.flags;
                let io_conflict = flags & BAR_IO != 0 && flags & (BAR_MEM64 | BAR_PREFETCH) != 0;
                let mem64 = flags & BAR_MEM64 != 0;
                if io_conflict || (mem64 && bar == PCI_BAR_COUNT - 1) {
                    return ck.report(sub.error(ErrorKind::BadBarFlags { flags }, 8));
                }
                // A 64-bit BAR also occupies the next BAR slot.
                let slots = if mem64 { 0b11u8 << bar } else { 1u8 << bar };
                if self.locations.bar_slots & slots != 0 {
                    return duplicate(ck, "PCI BAR");
                }
                self.locations.bar_slots |= slots;
                if let Some(slot) = self.locations.bars.get_mut(bar as usize) {
                    *slot = at;
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
                if self.locations.config.offset != 0 {
                    return duplicate(ck, "PCI config space");
                }
                self.locations.config = at;
            }
            _ => {
                self.no_flags(sub, 0, ck)?;
                fixed_leaf(sub, 0, ck)?;
                if self.locations.rom.offset != 0 {
                    return duplicate(ck, "PCI ROM");
                }
                self.locations.rom = at;
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
        if !region.mmappable() {
            // Misplaced: its content is not checked (SPEC.md §7, after a rule error).
            let kind = ErrorKind::Misplaced {
                rtype: REC_SPARSE_MMAP,
                where_: "under a region without the MMAP flag",
            };
            return ck.report(sub.error(kind, 0));
        }
        let Ok((head, _)) = SparseMmapBody::read_from_prefix(sub.content()) else {
            return ck.report(too_small(sub, SPARSE_MMAP_BODY_LEN));
        };
        let count = head.count.get();
        if count == 0 {
            return ck.report(sub.error(ErrorKind::NoSparseAreas, RECORD_HEADER_LEN));
        }
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
        let areas_len = (count as usize).saturating_mul(SPARSE_AREA_LEN);
        let Some(body) = fixed_leaf(sub, SPARSE_MMAP_BODY_LEN.saturating_add(areas_len), ck)?
        else {
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
            previous_end = previous_end.max(end.unwrap_or(u64::MAX));
        }
        Ok(())
    }

    /// An ACCESS sub-record (version 1.1): only under a register-like region, a non-empty
    /// mask of the four widths.
    fn access(
        &mut self,
        sub: &RawRecord<'_>,
        region: &Region<'_>,
        ck: &mut Checker<'_>,
    ) -> Result<(), Error> {
        self.no_flags(sub, 0, ck)?;
        if region.mmappable() {
            let kind = ErrorKind::Misplaced {
                rtype: REC_ACCESS,
                where_: "under a region with the MMAP flag",
            };
            return ck.report(sub.error(kind, 0));
        }
        let Some(body) = fixed_leaf(sub, ACCESS_BODY_LEN, ck)? else {
            return Ok(());
        };
        let widths = AccessBody::read_from_prefix(body).map_or(0, |(b, _)| b.widths.get());
        if widths == 0 {
            return ck.report(sub.error(ErrorKind::NoAccessWidths, RECORD_HEADER_LEN));
        }
        ck.check(widths & !WIDTHS_ALL == 0, || {
            let kind = ErrorKind::UnknownAccessWidths {
                widths: widths & !WIDTHS_ALL,
            };
            sub.error(kind, RECORD_HEADER_LEN)
        })
    }

    /// Rules every range of the device file obeys: no wrap, below 2^63, after the description.
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
        let fits = offset
            .checked_add(size)
            .is_some_and(|end| end <= MAX_FILE_OFFSET);
        ck.check(fits, || {
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
        self.interrupts = self.interrupts.saturating_add(1);
        if self.interrupts as usize > MAX_INTERRUPTS {
            let kind = ErrorKind::TooMany {
                what: "interrupts",
                max: MAX_INTERRUPTS as u32,
            };
            return Err(record.error(kind, 0));
        }
        self.no_flags(record, IRQ_KNOWN_FLAGS, ck)?;
        let Some(irq) = Interrupt::from_record(*record) else {
            return ck.report(too_small(record, INTERRUPT_BODY_LEN));
        };
        const BODY: usize = RECORD_HEADER_LEN;
        let (index, count, kind, flags) = (irq.index, irq.count, irq.kind, irq.flags);
        let max = match kind {
            IRQ_KIND_INTX => 1,
            IRQ_KIND_MSI => 32,
            _ => MAX_VECTORS,
        };
        ck.check((1..=max).contains(&count), || {
            record.error(ErrorKind::BadVectorCount { count, max }, BODY + 12)
        })?;
        match kind {
            IRQ_KIND_INTX | IRQ_KIND_MSI | IRQ_KIND_MSIX => {
                self.need_pci(record, ck)?;
            }
            IRQ_KIND_WIRED | IRQ_KIND_ERROR | IRQ_KIND_REQUEST => {}
            _ => ck.report(record.error(ErrorKind::UnknownInterruptKind { kind }, BODY + 16))?,
        }
        let message_signalled = matches!(kind, IRQ_KIND_MSI | IRQ_KIND_MSIX);
        let automask_ok = flags & IRQ_AUTOMASKED == 0 || flags & IRQ_MASKABLE != 0;
        ck.check(
            automask_ok && !(message_signalled && flags & IRQ_LEVEL != 0),
            || record.error(ErrorKind::BadIrqFlags { flags, kind }, 8),
        )?;
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
        self.spans
            .push(Span::new(SpanKind::Interrupt, index, offset, size, record));
        let mut seen = Seen::default();
        for sub in record.children(INTERRUPT_BODY_LEN) {
            let sub = sub?;
            self.count_record(&sub)?;
            if sub.type_code() == REC_DT_INTERRUPT {
                if once(&mut seen.dt_interrupt, &sub, ck)? {
                    self.dt_interrupt(&sub, ck)?;
                }
                continue;
            }
            self.common_sub(
                &sub,
                &mut seen,
                &[DT_PROP_INTERRUPTS],
                "under INTERRUPT",
                ck,
            )?;
        }
        self.dt_pairing(record, &seen, ck)?;
        dt_detail_needs_ref(
            record,
            &seen,
            seen.dt_interrupt,
            "DT_PATH and DT_INDEX beside DT_INTERRUPT",
            ck,
        )
    }

    /// A DT_ADDRESS sub-record (version 1.2): the region fits in the 64-bit physical space.
    fn dt_address(
        &mut self,
        sub: &RawRecord<'_>,
        region: &Region<'_>,
        ck: &mut Checker<'_>,
    ) -> Result<(), Error> {
        self.no_flags(sub, 0, ck)?;
        let Some(body) = fixed_leaf(sub, DT_ADDRESS_BODY_LEN, ck)? else {
            return Ok(());
        };
        let address = DtAddressBody::read_from_prefix(body).map_or(0, |(b, _)| b.address.get());
        let size = region.size;
        let end = u128::from(address).saturating_add(u128::from(size));
        ck.check(end <= 1u128 << 64, || {
            sub.error(
                ErrorKind::DtAddressWraps { address, size },
                RECORD_HEADER_LEN,
            )
        })
    }

    /// A RESET sub-record (version 1.2): an 8-byte word at a multiple of 8, a range of the
    /// device file like any other (after the description, below 2^63, overlapping nothing).
    fn reset_word(&mut self, sub: &RawRecord<'_>, ck: &mut Checker<'_>) -> Result<(), Error> {
        self.no_flags(sub, 0, ck)?;
        let Some(body) = fixed_leaf(sub, RESET_BODY_LEN, ck)? else {
            return Ok(());
        };
        let offset = ResetBody::read_from_prefix(body).map_or(0, |(b, _)| b.offset.get());
        self.range_rules("reset word", 0, offset, RESET_WORD_LEN, sub, ck)?;
        ck.check(offset.is_multiple_of(RESET_WORD_LEN), || {
            let kind = ErrorKind::Misaligned {
                what: "reset word",
                offset,
                size: RESET_WORD_LEN,
                align: RESET_WORD_LEN,
            };
            sub.error(kind, RECORD_HEADER_LEN)
        })?;
        self.spans
            .push(Span::new(SpanKind::Reset, 0, offset, RESET_WORD_LEN, sub));
        Ok(())
    }

    /// A DMA_WINDOW sub-record (version 1.2): only under an mmap region (DMA memory is shared
    /// memory a client maps), and the window fits in the 64-bit bus address space.
    fn dma_window(
        &mut self,
        sub: &RawRecord<'_>,
        region: &Region<'_>,
        ck: &mut Checker<'_>,
    ) -> Result<(), Error> {
        self.no_flags(sub, 0, ck)?;
        if !region.mmappable() {
            let kind = ErrorKind::Misplaced {
                rtype: REC_DMA_WINDOW,
                where_: "under a region without the MMAP flag",
            };
            return ck.report(sub.error(kind, 0));
        }
        let Some(body) = fixed_leaf(sub, DMA_WINDOW_BODY_LEN, ck)? else {
            return Ok(());
        };
        let address = DmaWindowBody::read_from_prefix(body).map_or(0, |(b, _)| b.bus_address.get());
        let size = region.size;
        let end = u128::from(address).saturating_add(u128::from(size));
        ck.check(end <= 1u128 << 64, || {
            sub.error(
                ErrorKind::DmaWindowWraps { address, size },
                RECORD_HEADER_LEN,
            )
        })
    }

    /// A DT_INTERRUPT sub-record (version 1.2): at most 16 cells, then the controller's path.
    fn dt_interrupt(&mut self, sub: &RawRecord<'_>, ck: &mut Checker<'_>) -> Result<(), Error> {
        self.no_flags(sub, 0, ck)?;
        let Ok((head, _)) = DtInterruptBody::read_from_prefix(sub.content()) else {
            return ck.report(too_small(sub, DT_INTERRUPT_BODY_LEN));
        };
        let (count, path_len) = (head.count.get(), head.path_len.get());
        if count > MAX_DT_INTERRUPT_CELLS {
            let kind = ErrorKind::TooMany {
                what: "interrupt specifier cells",
                max: MAX_DT_INTERRUPT_CELLS,
            };
            return ck.report(sub.error(kind, RECORD_HEADER_LEN));
        }
        let cells_len = (count as usize).saturating_mul(4);
        let path_at = RECORD_HEADER_LEN
            .saturating_add(DT_INTERRUPT_BODY_LEN)
            .saturating_add(cells_len);
        let room = sub.rec_len().saturating_sub(path_at);
        if !(2..=MAX_STRING_LEN).contains(&path_len) || path_len as usize > room {
            let kind = ErrorKind::BadStringLen {
                len: path_len,
                max: MAX_STRING_LEN,
            };
            return ck.report(sub.error(kind, RECORD_HEADER_LEN + 4));
        }
        let body_len = DT_INTERRUPT_BODY_LEN
            .saturating_add(cells_len)
            .saturating_add(path_len as usize);
        let Some(body) = fixed_leaf(sub, body_len, ck)? else {
            return Ok(());
        };
        let start = DT_INTERRUPT_BODY_LEN.saturating_add(cells_len);
        let path = body.get(start..).unwrap_or(&[]);
        string_content(sub, path, path_at, StringRule::DtPath, ck)
    }
}

// ---------------------------------------------------------------------------------------------
// Cross-record rules: unique indices, no overlapping ranges
// ---------------------------------------------------------------------------------------------

#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum SpanKind {
    Region,
    Interrupt,
    Reset,
}

/// A range of the device file claimed by a region or an interrupt control window.
#[derive(Clone, Copy)]
struct Span {
    kind: SpanKind,
    index: u32,
    start: u64,
    end: u64,
    offset: usize,
    at: RecordRef,
}

const EMPTY_SPAN: Span = Span {
    kind: SpanKind::Region,
    index: 0,
    start: 0,
    end: 0,
    offset: 0,
    at: RecordRef {
        index: 0,
        sub: None,
        rtype: 0,
    },
};

impl Span {
    #[inline(always)]
    fn new(kind: SpanKind, index: u32, start: u64, size: u64, record: &RawRecord<'_>) -> Self {
        Span {
            kind,
            index,
            start,
            end: start.saturating_add(size),
            offset: record.offset,
            at: record.at,
        }
    }

    fn what(&self) -> &'static str {
        match self.kind {
            SpanKind::Region => "region",
            SpanKind::Interrupt => "interrupt window",
            SpanKind::Reset => "reset word",
        }
    }

    fn error(&self, kind: ErrorKind, byte: usize) -> Error {
        Error::at(kind, self.offset.saturating_add(byte), Some(self.at))
    }

    fn index_error(&self) -> Error {
        let (what, at) = match self.kind {
            SpanKind::Region => ("region", 16),
            SpanKind::Interrupt => ("interrupt", 8),
            // At most one per description (rule 22): never a duplicate index.
            SpanKind::Reset => ("reset word", 0),
        };
        let kind = ErrorKind::DuplicateIndex {
            what,
            index: self.index,
        };
        self.error(kind, RECORD_HEADER_LEN.saturating_add(at))
    }

    fn overlap_error(&self, earlier: &Span) -> Error {
        let kind = ErrorKind::Overlap {
            what: self.what(),
            index: self.index,
            other_what: earlier.what(),
            other_index: earlier.index,
        };
        self.error(kind, RECORD_HEADER_LEN)
    }
}

const INLINE_SPANS: usize = 16;

/// The spans of one description: inline for typical devices, on the heap (with `alloc`) or
/// re-derived pairwise from the records (without) for large ones.
struct Spans {
    inline: [Span; INLINE_SPANS],
    len: usize,
    #[cfg(feature = "alloc")]
    heap: alloc::vec::Vec<Span>,
    overflow: bool,
}

impl Spans {
    fn new() -> Self {
        Spans {
            inline: [EMPTY_SPAN; INLINE_SPANS],
            len: 0,
            #[cfg(feature = "alloc")]
            heap: alloc::vec::Vec::new(),
            overflow: false,
        }
    }

    #[inline(always)]
    fn push(&mut self, span: Span) {
        if let Some(slot) = self.inline.get_mut(self.len) {
            *slot = span;
            self.len = self.len.saturating_add(1);
            return;
        }
        #[cfg(feature = "alloc")]
        {
            if self.heap.is_empty() {
                self.heap.extend_from_slice(&self.inline);
            }
            self.heap.push(span);
        }
        #[cfg(not(feature = "alloc"))]
        {
            self.overflow = true;
        }
    }

    fn cross_check(&mut self, desc: &Description<'_>, ck: &mut Checker<'_>) -> Result<(), Error> {
        if self.overflow {
            return pairwise(desc, ck);
        }
        #[cfg(feature = "alloc")]
        if !self.heap.is_empty() {
            return sorted(&mut self.heap, ck);
        }
        sorted(self.inline.get_mut(..self.len).unwrap_or(&mut []), ck)
    }
}

/// Finds duplicate indices and overlapping ranges by sorting; errors name the later record.
fn sorted(spans: &mut [Span], ck: &mut Checker<'_>) -> Result<(), Error> {
    let mut found: [Option<Error>; 2] = [None, None];
    // Duplicate indices: sort by (kind, index, file position).
    spans.sort_unstable_by_key(|s| (s.kind, s.index, s.offset));
    for pair in spans.windows(2) {
        if let [a, b] = pair
            && a.kind == b.kind
            && a.index == b.index
        {
            report_in_order(&mut found, b.index_error(), ck)?;
        }
    }
    // Overlaps: sort by start; each span is checked against the furthest-reaching earlier one.
    spans.sort_unstable_by_key(|s| (s.start, s.offset));
    let mut reach: Option<Span> = None;
    for s in spans.iter() {
        if let Some(r) = reach
            && s.start < r.end
            && s.start < s.end
        {
            let (later, earlier) = if s.offset > r.offset {
                (s, &r)
            } else {
                (&r, s)
            };
            report_in_order(&mut found, later.overlap_error(earlier), ck)?;
        }
        if reach.is_none_or(|r| s.end > r.end) {
            reach = Some(*s);
        }
    }
    // In strict mode report the error that comes first in the file, whatever the sort found.
    match found.iter().flatten().min_by_key(|e| e.offset) {
        Some(e) => Err(*e),
        None => Ok(()),
    }
}

/// Collects (strict mode: keeps the earliest two kinds) or reports (lint mode) an error.
fn report_in_order(
    found: &mut [Option<Error>; 2],
    e: Error,
    ck: &mut Checker<'_>,
) -> Result<(), Error> {
    if ck.sink.is_some() {
        return ck.report(e);
    }
    let slot = if matches!(e.kind, ErrorKind::DuplicateIndex { .. }) {
        0
    } else {
        1
    };
    if let Some(s) = found.get_mut(slot)
        && s.is_none_or(|old| e.offset < old.offset)
    {
        *s = Some(e);
    }
    Ok(())
}

/// Without an allocator and with more spans than fit inline: compare every pair.
fn pairwise(desc: &Description<'_>, ck: &mut Checker<'_>) -> Result<(), Error> {
    fn span_of(r: RawRecord<'_>) -> Option<Span> {
        if let Some(g) = Region::from_record(r) {
            return Some(Span::new(SpanKind::Region, g.index, g.offset, g.size, &r));
        }
        if r.type_code() == REC_DEVICE {
            let reset = r
                .sub_records(DEVICE_BODY_LEN)
                .find(|s| s.type_code() == REC_RESET)?;
            let offset = ResetBody::read_from_prefix(reset.content())
                .ok()?
                .0
                .offset
                .get();
            return Some(Span::new(
                SpanKind::Reset,
                0,
                offset,
                RESET_WORD_LEN,
                &reset,
            ));
        }
        let i = Interrupt::from_record(r)?;
        Some(Span::new(
            SpanKind::Interrupt,
            i.index,
            i.control_offset,
            i.control_size(),
            &r,
        ))
    }
    for (i, span) in desc.records().filter_map(span_of).enumerate() {
        for other in desc.records().filter_map(span_of).take(i) {
            if span.kind == other.kind && span.index == other.index {
                ck.report(span.index_error())?;
            }
            if span.start < other.end && other.start < span.end {
                ck.report(span.overlap_error(&other))?;
            }
        }
    }
    Ok(())
}
