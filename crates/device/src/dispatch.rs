//! Region dispatch: a device-file access becomes a checked [`Target`] or the errno SPEC.md
//! §6.6 prescribes, in its order of precedence.

use devfd_format::wire::{
    IRQ_CONTROL_STRIDE, IRQ_MASKABLE, REGION_MMAP, REGION_READ, REGION_WRITE, RESET_WORD_LEN,
};
use devfd_format::{AccessWidths, Description};

use crate::error::AccessError;

/// What an access reaches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    /// The description; a read returns `len` bytes from `offset` (already clipped).
    Description {
        /// Offset into the description.
        offset: usize,
        /// Bytes to return.
        len: usize,
    },
    /// A region of the device.
    Region {
        /// Region index.
        index: u32,
        /// Offset within the region.
        offset: u64,
    },
    /// The device's reset word (an 8-byte access at its offset; SPEC.md §4.20).
    Reset,
    /// A field of an interrupt's control window.
    Control {
        /// Interrupt index.
        index: u32,
        /// Vector.
        vector: u32,
        /// Which field.
        field: ControlField,
    },
}

/// The fields of a vector's 16-byte control block (SPEC.md §6.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ControlField {
    /// +0, u64: event counter.
    Counter,
    /// +8, u32: mask word.
    Mask,
    /// +12, u32: reserved.
    Reserved,
}

#[derive(Debug, Clone, Copy)]
enum Kind {
    Region {
        flags: u32,
        /// `None` for a memory-like region (any length).
        widths: Option<AccessWidths>,
    },
    Control {
        maskable: bool,
    },
    Reset,
}

#[derive(Debug, Clone, Copy)]
struct Range {
    start: u64,
    end: u64,
    index: u32,
    kind: Kind,
}

/// The address map of a device file, built once from its description.
#[derive(Debug, Clone)]
pub struct RegionMap {
    desc_len: usize,
    ranges: Vec<Range>,
}

impl RegionMap {
    /// Builds the map of a (validated) description.
    pub fn new(d: &Description<'_>) -> Self {
        let mut ranges: Vec<Range> = d
            .regions()
            .map(|r| Range {
                start: r.offset,
                end: r.end(),
                index: r.index,
                kind: Kind::Region {
                    flags: r.flags,
                    widths: r.access_widths(),
                },
            })
            .chain(d.interrupts().map(|i| Range {
                start: i.control_offset,
                end: i.control_offset.saturating_add(i.control_size()),
                index: i.index,
                kind: Kind::Control {
                    maskable: i.flags & IRQ_MASKABLE != 0,
                },
            }))
            .chain(d.device().reset_offset().map(|offset| Range {
                start: offset,
                end: offset.saturating_add(RESET_WORD_LEN),
                index: 0,
                kind: Kind::Reset,
            }))
            .collect();
        ranges.sort_by_key(|r| r.start);
        RegionMap {
            desc_len: d.len(),
            ranges,
        }
    }

    /// Length of the description.
    pub fn desc_len(&self) -> usize {
        self.desc_len
    }

    /// One past the last byte of the device file's address space.
    pub fn end(&self) -> u64 {
        self.ranges
            .iter()
            .map(|r| r.end)
            .max()
            .unwrap_or(0)
            .max(self.desc_len as u64)
    }

    /// Resolves an access of `len` (> 0) bytes at file offset `offset`.
    pub fn resolve(&self, offset: u64, len: usize, write: bool) -> Result<Target, AccessError> {
        let no_range = AccessError::NoSuchRange { offset, len };
        if offset < self.desc_len as u64 {
            if write {
                return Err(AccessError::NotPermitted("the description is read-only"));
            }
            let offset = offset as usize;
            return Ok(Target::Description {
                offset,
                len: len.min(self.desc_len - offset),
            });
        }
        let i = self.ranges.partition_point(|r| r.start <= offset);
        let range = i.checked_sub(1).map(|i| self.ranges[i]).ok_or(no_range)?;
        let end = offset.checked_add(len as u64).ok_or(no_range)?;
        if offset >= range.end || end > range.end {
            return Err(no_range);
        }
        let rel = offset - range.start;
        let shape = AccessError::BadShape { offset, len };
        match range.kind {
            Kind::Region { flags, widths } => {
                // Register-like: 1, 2, 4 or 8 bytes, naturally aligned, and one of the widths
                // its ACCESS sub-record lists (all four without one), SPEC.md §6.2.
                let register_like = flags & REGION_MMAP == 0;
                if register_like
                    && (!matches!(len, 1 | 2 | 4 | 8) || !rel.is_multiple_of(len as u64))
                {
                    return Err(shape);
                }
                if register_like && !widths.unwrap_or(AccessWidths::ALL).allows(len) {
                    return Err(shape);
                }
                let (need, what) = if write {
                    (REGION_WRITE, "the region is not writable")
                } else {
                    (REGION_READ, "the region is not readable")
                };
                if flags & need == 0 {
                    return Err(AccessError::NotPermitted(what));
                }
                Ok(Target::Region {
                    index: range.index,
                    offset: rel,
                })
            }
            // One 8-byte access at the word: reads return 0, a write of 1 resets.
            Kind::Reset if len == 8 => Ok(Target::Reset),
            Kind::Reset => Err(shape),
            Kind::Control { maskable } => {
                let vector = (rel / IRQ_CONTROL_STRIDE) as u32;
                let field = match (rel % IRQ_CONTROL_STRIDE, len) {
                    (0, 8) => ControlField::Counter,
                    (8, 4) => ControlField::Mask,
                    (12, 4) => ControlField::Reserved,
                    _ => return Err(shape),
                };
                if write && field == ControlField::Counter {
                    return Err(AccessError::NotPermitted("event counters are read-only"));
                }
                if write && field == ControlField::Mask && !maskable {
                    return Err(AccessError::NotPermitted("the interrupt is not maskable"));
                }
                Ok(Target::Control {
                    index: range.index,
                    vector,
                    field,
                })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use devfd_format::Bus;
    use devfd_format::model::{DeviceDesc, InterruptDesc, RegionDesc};
    use devfd_format::wire::*;

    fn map() -> RegionMap {
        let mut d = DeviceDesc::new(Bus::Other(b'X'));
        let region = |index, offset, size, flags| RegionDesc {
            index,
            offset,
            size,
            flags,
            location: Default::default(),
            dt: None,
            label: None,
            sparse: None,
            dma_address: None,
            access_widths: None,
        };
        d.regions
            .push(region(0, 0x1000, 0x100, REGION_READ | REGION_WRITE));
        d.regions
            .push(region(1, 0x2000, 0x2000, REGION_READ | REGION_MMAP));
        d.regions.push(region(2, 0x4000, 0x10, REGION_WRITE));
        // A 32-bit-only register block (a PL031, say), and one that takes 4 and 8 bytes.
        let mut only4 = region(3, 0x6000, 0x10, REGION_READ | REGION_WRITE);
        only4.access_widths = AccessWidths::new(WIDTH_4);
        d.regions.push(only4);
        let mut four_eight = region(4, 0x7000, 0x100, REGION_READ);
        four_eight.access_widths = AccessWidths::new(WIDTH_4 | WIDTH_8);
        d.regions.push(four_eight);
        d.interrupts.push(InterruptDesc {
            index: 0,
            count: 2,
            kind: IRQ_KIND_WIRED,
            flags: IRQ_MASKABLE,
            control_offset: 0x5000,
            dt: None,
            label: None,
        });
        d.interrupts.push(InterruptDesc {
            index: 1,
            count: 1,
            kind: IRQ_KIND_WIRED,
            flags: 0,
            control_offset: 0x5020,
            dt: None,
            label: None,
        });
        let bytes = d.build().unwrap();
        RegionMap::new(&devfd_format::parse(&bytes).unwrap())
    }

    #[test]
    fn errnos_follow_the_spec() {
        let m = map();
        let errno = |off, len, w| m.resolve(off, len, w).unwrap_err().errno();
        assert!(matches!(
            m.resolve(4, 4096, false),
            Ok(Target::Description { offset: 4, .. })
        ));
        assert_eq!(errno(0, 4, true), 1);
        assert_eq!(errno(0x800, 4, false), 6);
        assert_eq!(errno(0x10fc, 8, false), 6);
        assert_eq!(errno(u64::MAX - 2, 4, false), 6);
        assert_eq!(errno(0x1001, 4, false), 22);
        assert_eq!(errno(0x1000, 3, false), 22);
        assert_eq!(errno(0x1000, 16, false), 22);
        assert_eq!(errno(0x4000, 4, false), 1);
        assert_eq!(errno(0x2000, 4, true), 1);
        assert!(matches!(
            m.resolve(0x2001, 4093, false),
            Ok(Target::Region {
                index: 1,
                offset: 1
            })
        ));
        assert_eq!(errno(0x5000, 8, true), 1);
        assert_eq!(errno(0x5000, 4, false), 22);
        assert_eq!(errno(0x5020 + 8, 4, true), 1);
        assert!(matches!(
            m.resolve(0x5018, 4, true),
            Ok(Target::Control {
                index: 0,
                vector: 1,
                field: ControlField::Mask
            })
        ));
        assert_eq!(errno(0x5030, 8, false), 6);
    }

    #[test]
    fn widths_a_region_does_not_accept_are_einval() {
        let m = map();
        let errno = |off, len, w| m.resolve(off, len, w).unwrap_err().errno();
        // Region 3 accepts 4-byte accesses only.
        for len in [1, 2, 8] {
            assert_eq!(errno(0x6000, len, false), 22, "{len}-byte read");
            assert_eq!(errno(0x6000, len, true), 22, "{len}-byte write");
        }
        assert!(matches!(
            m.resolve(0x6004, 4, true),
            Ok(Target::Region {
                index: 3,
                offset: 4
            })
        ));
        // The width is checked before the flags (EINVAL before EPERM, SPEC.md §6.6) and after
        // the range (ENXIO first).
        assert_eq!(errno(0x7000, 2, true), 22);
        assert_eq!(errno(0x7000, 4, true), 1);
        assert_eq!(errno(0x70fc, 8, false), 6);
        assert!(m.resolve(0x7008, 8, false).is_ok());
        // Without ACCESS every width is accepted, and mmap regions take any length.
        for len in [1, 2, 4, 8] {
            assert!(m.resolve(0x1000, len, false).is_ok(), "{len}");
        }
        assert!(m.resolve(0x2000, 3, false).is_ok());
    }
}
