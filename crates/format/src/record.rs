//! Record framing: a lazy iterator over sibling records that stops at the first error.

use zerocopy::FromBytes;

use crate::error::{Error, ErrorKind, RecordRef};
use crate::wire::{RECORD_ALIGN, RECORD_HEADER_LEN, RecordHeader, TYPE_MUST_UNDERSTAND};

/// One record (or sub-record) as framed on the wire; its content is not yet interpreted.
#[derive(Debug, Clone, Copy)]
pub struct RawRecord<'a> {
    /// Byte offset of the record from the start of the description.
    pub offset: usize,
    /// Type as found, must-understand bit included.
    pub rtype: u32,
    /// Type-specific flags.
    pub flags: u32,
    /// The whole record: header, body and sub-records (`rec_len` bytes).
    pub bytes: &'a [u8],
    /// Where the record sits (for error messages).
    pub at: RecordRef,
}

impl<'a> RawRecord<'a> {
    /// The type without the must-understand bit.
    pub const fn type_code(&self) -> u32 {
        self.rtype & !TYPE_MUST_UNDERSTAND
    }

    /// Whether a reader that does not know the type must reject the description.
    pub const fn must_understand(&self) -> bool {
        self.rtype & TYPE_MUST_UNDERSTAND != 0
    }

    /// `rec_len`.
    pub const fn rec_len(&self) -> usize {
        self.bytes.len()
    }

    /// Everything after the 12-byte record header.
    pub fn content(&self) -> &'a [u8] {
        self.bytes.get(RECORD_HEADER_LEN..).unwrap_or(&[])
    }

    /// Offset, from the start of the description, of byte `n` of the record.
    pub(crate) fn at_byte(&self, n: usize) -> usize {
        self.offset.saturating_add(n)
    }

    /// The sub-records that follow a fixed body of `body_len` bytes.
    pub fn children(&self, body_len: usize) -> RecordIter<'a> {
        let start = RECORD_HEADER_LEN.saturating_add(body_len);
        RecordIter {
            rest: self.bytes.get(start..).unwrap_or(&[]),
            offset: self.at_byte(start),
            parent: Some((self.at.index, self.rtype)),
            position: 0,
            done: false,
        }
    }

    pub(crate) fn error(&self, kind: ErrorKind, byte: usize) -> Error {
        Error::at(kind, self.at_byte(byte), Some(self.at))
    }
}

/// Iterates over sibling records in a byte range, checking each one's framing (SPEC.md §3.2).
///
/// Yields `Err` once, at the first record whose framing is broken, and then ends.
#[derive(Debug, Clone)]
pub struct RecordIter<'a> {
    rest: &'a [u8],
    offset: usize,
    /// Position and type of the parent record, for sub-records.
    parent: Option<(u16, u32)>,
    position: u16,
    done: bool,
}

impl<'a> RecordIter<'a> {
    /// Iterates over the top-level records in `bytes`, which start at description offset
    /// `offset`.
    pub fn top_level(bytes: &'a [u8], offset: usize) -> Self {
        RecordIter {
            rest: bytes,
            offset,
            parent: None,
            position: 0,
            done: false,
        }
    }

    fn record_ref(&self, rtype: u32) -> RecordRef {
        match self.parent {
            Some((index, _)) => RecordRef {
                index,
                sub: Some(self.position),
                rtype,
            },
            None => RecordRef {
                index: self.position,
                sub: None,
                rtype,
            },
        }
    }

    #[inline(always)]
    fn next_record(&mut self) -> Result<Option<RawRecord<'a>>, Error> {
        if self.rest.is_empty() {
            return Ok(None);
        }
        let Ok((header, _)) = RecordHeader::read_from_prefix(self.rest) else {
            // A truncated header has no type of its own; name the parent if there is one.
            let at = self.parent.map(|(index, rtype)| RecordRef {
                index,
                sub: None,
                rtype,
            });
            let kind = ErrorKind::RecordHeaderTruncated {
                available: self.rest.len(),
            };
            return Err(Error::at(kind, self.offset, at));
        };
        let rtype = header.rtype.get();
        let rec_len_raw = header.rec_len.get();
        let at = self.record_ref(rtype);
        let len_at = self.offset.saturating_add(4);
        #[cold]
        fn framing(kind: ErrorKind, len_at: usize, at: RecordRef) -> Error {
            Error::at(kind, len_at, Some(at))
        }
        let fail = |kind| Err(framing(kind, len_at, at));
        if rec_len_raw == 0 {
            return fail(ErrorKind::RecLenZero);
        }
        let rec_len = rec_len_raw as usize;
        if !rec_len.is_multiple_of(RECORD_ALIGN) {
            return fail(ErrorKind::RecLenMisaligned {
                rec_len: rec_len_raw,
            });
        }
        if rec_len < RECORD_HEADER_LEN {
            return fail(ErrorKind::RecLenTooSmall {
                rec_len: rec_len_raw,
                min: RECORD_HEADER_LEN,
            });
        }
        let (Some(bytes), Some(rest)) = (self.rest.get(..rec_len), self.rest.get(rec_len..)) else {
            return fail(ErrorKind::RecLenPastParent {
                rec_len: rec_len_raw,
                room: self.rest.len(),
            });
        };
        let record = RawRecord {
            offset: self.offset,
            rtype,
            flags: header.flags.get(),
            bytes,
            at,
        };
        self.rest = rest;
        self.offset = self.offset.saturating_add(rec_len);
        self.position = self.position.saturating_add(1);
        Ok(Some(record))
    }
}

impl<'a> Iterator for RecordIter<'a> {
    type Item = Result<RawRecord<'a>, Error>;

    #[inline(always)]
    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        match self.next_record() {
            Ok(Some(r)) => Some(Ok(r)),
            Ok(None) => {
                self.done = true;
                None
            }
            Err(e) => {
                self.done = true;
                Some(Err(e))
            }
        }
    }
}
