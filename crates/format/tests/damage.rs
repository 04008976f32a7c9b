//! One test per kind of damage: each is rejected with the right error at the right place.
//!
//! Framing damage is made by patching the bytes of a valid description; rule damage by writing
//! records with the low-level [`Writer`], which does not validate.

mod common;

use devfd_format::wire::*;
use devfd_format::write::Writer;
use devfd_format::{Bus, Error, ErrorKind, PciId, RecordRef, lint, parse};

fn edu() -> Vec<u8> {
    common::edu().build().expect("edu builds")
}

/// Offset of top-level record `index` (and of its sub-record `sub`) in a valid description.
fn offset_of(bytes: &[u8], index: usize, sub: Option<usize>) -> usize {
    let d = parse(bytes).expect("valid");
    let r = d.records().nth(index).expect("record");
    match sub {
        None => r.offset,
        Some(s) => {
            let body = match r.type_code() {
                REC_DEVICE => DEVICE_BODY_LEN,
                _ => REGION_BODY_LEN,
            };
            r.sub_records(body).nth(s).expect("sub-record").offset
        }
    }
}

fn put32(bytes: &mut [u8], at: usize, v: u32) {
    bytes[at..at + 4].copy_from_slice(&v.to_le_bytes());
}

/// Parses, expects an error, checks that lint reports the same one, returns it.
fn reject(bytes: &[u8]) -> Error {
    let e = parse(bytes).expect_err("damaged description was accepted");
    let mut all = Vec::new();
    lint(bytes, &mut |e| all.push(e));
    assert!(all.contains(&e), "lint missed {e}: {all:?}");
    // The message names the place.
    let text = e.to_string();
    assert!(text.starts_with(&format!("byte {:#x}", e.offset)), "{text}");
    e
}

fn at(index: u16, sub: Option<u16>, rtype: u32) -> Option<RecordRef> {
    Some(RecordRef { index, sub, rtype })
}

const PCI: PciId = PciId {
    vendor: 0x1234,
    device: 0x5678,
    subsystem_vendor: 0,
    subsystem_device: 0,
    class: 0,
    revision: 0,
};

/// A PCI description whose records after DEVICE are written by `f`.
fn pci_with(f: impl FnOnce(&mut Writer)) -> Vec<u8> {
    let mut w = Writer::new(Bus::Pci, 0).unwrap();
    let dev = w.begin_device().unwrap();
    w.pci_id(&PCI).unwrap();
    w.end(dev).unwrap();
    f(&mut w);
    w.finish().unwrap()
}

/// A platform description whose records after DEVICE are written by `f`.
fn platform_with(f: impl FnOnce(&mut Writer)) -> Vec<u8> {
    let mut w = Writer::new(Bus::Platform, 0).unwrap();
    let dev = w.begin_device().unwrap();
    w.compatible(["vendor,dev"]).unwrap();
    w.end(dev).unwrap();
    f(&mut w);
    w.finish().unwrap()
}

fn region(
    w: &mut Writer,
    index: u32,
    offset: u64,
    size: u64,
    flags: u32,
    subs: impl FnOnce(&mut Writer),
) {
    let t = w.begin_region(index, offset, size, flags).unwrap();
    subs(w);
    w.end(t).unwrap();
}

const RW: u32 = REGION_READ | REGION_WRITE;

// --- header and prologue -----------------------------------------------------------------------

#[test]
fn empty_input() {
    let e = reject(&[]);
    assert_eq!(
        e.kind,
        ErrorKind::TooShort {
            needed: 12,
            available: 0
        }
    );
}

#[test]
fn truncated_everywhere_never_panics_and_always_errors() {
    let bytes = edu();
    for len in 0..bytes.len() {
        let e = reject(&bytes[..len]);
        let expected_kind = match len {
            0..12 => matches!(e.kind, ErrorKind::TooShort { needed: 12, .. }),
            12..36 => matches!(
                e.kind,
                ErrorKind::TooShort {
                    needed: PROLOGUE_LEN,
                    ..
                }
            ),
            _ => matches!(e.kind, ErrorKind::Truncated { .. }),
        };
        assert!(expected_kind, "len {len}: {e}");
    }
}

#[test]
fn bad_magic_prefix() {
    let mut b = edu();
    b[0] = b'X';
    assert!(matches!(reject(&b).kind, ErrorKind::BadMagic { .. }));
}

#[test]
fn bad_bus_code() {
    let mut b = edu();
    b[3] = b'p';
    let e = reject(&b);
    assert_eq!(
        e.kind,
        ErrorKind::BadMagic {
            found: u32::from_le_bytes(*b"DFDp")
        }
    );
    assert_eq!(e.offset, 0);
}

#[test]
fn unknown_bus_letter_is_accepted_as_other() {
    let mut w = Writer::new(Bus::Other(b'V'), 0).unwrap();
    let d = w.begin_device().unwrap();
    w.end(d).unwrap();
    let b = w.finish().unwrap();
    assert_eq!(parse(&b).unwrap().bus(), Bus::Other(b'V'));
}

#[test]
fn unsupported_major_version() {
    let mut b = edu();
    put32(&mut b, 4, version_word(2, 0));
    let e = reject(&b);
    assert_eq!(e.kind, ErrorKind::UnsupportedVersion { major: 2, minor: 0 });
    assert_eq!(e.offset, 4);
}

#[test]
fn newer_minor_version_is_accepted() {
    let mut b = edu();
    put32(&mut b, 4, version_word(1, 7));
    assert_eq!(parse(&b).unwrap().version(), (1, 7));
}

#[test]
fn unknown_must_understand_header_flag() {
    let mut b = edu();
    put32(&mut b, 8, 1 << 3);
    let e = reject(&b);
    assert_eq!(e.kind, ErrorKind::UnknownHeaderFlags { flags: 1 << 3 });
    assert_eq!(e.offset, 8);
}

#[test]
fn unknown_advisory_header_flag_is_ignored() {
    let mut b = edu();
    put32(&mut b, 8, 1 << 20);
    assert_eq!(parse(&b).unwrap().flags(), 1 << 20);
}

#[test]
fn first_record_not_device() {
    let mut b = edu();
    put32(&mut b, 12, REC_REGION);
    let e = reject(&b);
    assert_eq!(
        e.kind,
        ErrorKind::FirstRecordNotDevice { rtype: REC_REGION }
    );
    assert_eq!(e.offset, 12);
}

#[test]
fn desc_len_too_small() {
    let mut b = edu();
    put32(&mut b, 24, 44);
    assert!(matches!(
        reject(&b).kind,
        ErrorKind::DescLenTooSmall { desc_len: 44, .. }
    ));
}

#[test]
fn desc_len_too_large() {
    let mut b = edu();
    put32(&mut b, 24, (MAX_DESC_LEN + 4) as u32);
    let e = reject(&b);
    assert!(matches!(e.kind, ErrorKind::DescLenTooLarge { .. }));
    assert_eq!(e.offset, 24);
}

#[test]
fn desc_len_misaligned() {
    let mut b = edu();
    let len = b.len() as u32;
    put32(&mut b, 24, len - 2);
    assert!(matches!(
        reject(&b).kind,
        ErrorKind::DescLenMisaligned { .. }
    ));
}

#[test]
fn desc_len_past_buffer() {
    let mut b = edu();
    let len = b.len() as u32;
    put32(&mut b, 24, len + 8);
    let e = reject(&b);
    assert_eq!(
        e.kind,
        ErrorKind::Truncated {
            desc_len: len + 8,
            available: b.len()
        }
    );
}

// --- framing -----------------------------------------------------------------------------------

#[test]
fn rec_len_zero() {
    let mut b = edu();
    let r = offset_of(&b, 1, None);
    put32(&mut b, r + 4, 0);
    let e = reject(&b);
    assert_eq!(e.kind, ErrorKind::RecLenZero);
    assert_eq!(e.offset, r + 4);
    assert_eq!(e.record, at(1, None, REC_REGION));
}

#[test]
fn rec_len_odd() {
    let mut b = edu();
    let r = offset_of(&b, 1, None);
    put32(&mut b, r + 4, 47);
    assert_eq!(reject(&b).kind, ErrorKind::RecLenMisaligned { rec_len: 47 });
}

#[test]
fn rec_len_smaller_than_header() {
    let mut b = edu();
    let r = offset_of(&b, 1, None);
    put32(&mut b, r + 4, 8);
    assert_eq!(
        reject(&b).kind,
        ErrorKind::RecLenTooSmall {
            rec_len: 8,
            min: 12
        }
    );
}

#[test]
fn rec_len_smaller_than_body() {
    let mut b = pci_with(|w| w.record(REC_REGION, RW, &[0; 8]).unwrap());
    // Keep the DEVICE count consistent so the body rule is what fails.
    put32(&mut b, 28, 1);
    let e = reject(&b);
    assert_eq!(
        e.kind,
        ErrorKind::RecLenTooSmall {
            rec_len: 24,
            min: 32
        }
    );
    assert_eq!(e.record, at(1, None, REC_REGION));
}

#[test]
fn rec_len_past_description() {
    let mut b = edu();
    let r = offset_of(&b, 4, None);
    put32(&mut b, r + 4, 0x100);
    assert!(matches!(
        reject(&b).kind,
        ErrorKind::RecLenPastParent { rec_len: 0x100, .. }
    ));
}

#[test]
fn rec_len_wrapping() {
    let mut b = edu();
    let r = offset_of(&b, 1, None);
    put32(&mut b, r + 4, 0xffff_fff8);
    let e = reject(&b);
    assert!(matches!(
        e.kind,
        ErrorKind::RecLenPastParent {
            rec_len: 0xffff_fff8,
            ..
        }
    ));
    assert_eq!(e.offset, r + 4);
}

#[test]
fn sub_record_runs_past_parent() {
    let mut b = edu();
    let s = offset_of(&b, 1, Some(1));
    put32(&mut b, s + 4, 24);
    let e = reject(&b);
    assert_eq!(
        e.kind,
        ErrorKind::RecLenPastParent {
            rec_len: 24,
            room: 16
        }
    );
    assert_eq!(e.record, at(1, Some(1), REC_PCI_BAR));
}

#[test]
fn sub_record_header_truncated() {
    // A REGION whose rec_len leaves 4 stray bytes after its sub-records... made with a raw
    // unknown child of 16 bytes whose rec_len is cut to leave a partial header.
    let mut b = pci_with(|w| {
        region(w, 0, 0x1000, 0x1000, RW, |w| {
            w.record(0x7000, 0, &[0; 4]).unwrap()
        })
    });
    let d_region = offset_of(&b, 1, None);
    let child = d_region + 32;
    put32(&mut b, child + 4, 8);
    // Make the (now 8-byte) child... rec_len 8 < 12 is a different damage; instead shrink the
    // parent so only 4 bytes of the child header remain.
    put32(&mut b, child + 4, 16);
    let shorter = 32 + 8; // parent keeps 8 bytes of the 16-byte child
    put32(&mut b, d_region + 4, shorter);
    // Move the rest of the file down by 8 bytes so framing after the parent stays intact.
    b.drain(d_region + shorter as usize..d_region + shorter as usize + 8);
    let len = b.len() as u32;
    put32(&mut b, 24, len);
    let e = reject(&b);
    assert_eq!(e.kind, ErrorKind::RecordHeaderTruncated { available: 8 });
    assert_eq!(e.offset, child);
    assert_eq!(e.record, at(1, None, REC_REGION));
}

#[test]
fn too_many_records() {
    let b = pci_with(|w| {
        for _ in 0..MAX_RECORDS {
            w.record(0x7000, 0, &[]).unwrap();
        }
    });
    assert_eq!(
        reject(&b).kind,
        ErrorKind::TooManyRecords { max: MAX_RECORDS }
    );
}

// --- placement ---------------------------------------------------------------------------------

#[test]
fn nesting_too_deep() {
    let b = pci_with(|w| {
        region(w, 0, 0x1000, 0x1000, RW, |w| {
            w.record(REC_REGION, RW, &[0; REGION_BODY_LEN]).unwrap()
        })
    });
    let e = reject(&b);
    assert_eq!(
        e.kind,
        ErrorKind::NestingTooDeep {
            depth: 2,
            max: MAX_DEPTH
        }
    );
    assert_eq!(e.record, at(1, Some(0), REC_REGION));
}

#[test]
fn sub_record_at_top_level() {
    let b = pci_with(|w| w.record(REC_PCI_BAR, 0, &[0; 4]).unwrap());
    let e = reject(&b);
    assert_eq!(
        e.kind,
        ErrorKind::Misplaced {
            rtype: REC_PCI_BAR,
            where_: "at top level"
        }
    );
    assert_eq!(e.record, at(1, None, REC_PCI_BAR));
}

#[test]
fn pci_id_under_region() {
    let b = pci_with(|w| region(w, 0, 0x1000, 0x1000, RW, |w| w.pci_id(&PCI).unwrap()));
    assert_eq!(
        reject(&b).kind,
        ErrorKind::Misplaced {
            rtype: REC_PCI_ID,
            where_: "under REGION"
        }
    );
}

#[test]
fn duplicate_device() {
    let mut b = pci_with(|w| w.record(0x7000, 0, &[0; 12]).unwrap());
    let r = offset_of(&b, 1, None);
    put32(&mut b, r, REC_DEVICE);
    let e = reject(&b);
    assert_eq!(e.kind, ErrorKind::Duplicate { rtype: REC_DEVICE });
    assert_eq!(e.record, at(1, None, REC_DEVICE));
}

#[test]
fn duplicate_dt_path() {
    let b = platform_with(|w| {
        region(w, 0, 0x1000, 0x1000, RW, |w| {
            w.dt("/a", DT_PROP_REG, 0).unwrap();
            w.record(REC_DT_PATH, 0, b"\x03\0\0\0/b\0").unwrap();
        })
    });
    let e = reject(&b);
    assert_eq!(e.kind, ErrorKind::Duplicate { rtype: REC_DT_PATH });
    assert_eq!(e.record, at(1, Some(2), REC_DT_PATH));
}

#[test]
fn two_locations_in_one_region() {
    let b = pci_with(|w| {
        region(w, 0, 0x1000, 0x1000, RW, |w| {
            w.pci_bar(0, 0).unwrap();
            w.pci_rom().unwrap();
        })
    });
    assert_eq!(reject(&b).kind, ErrorKind::ConflictingLocation);
}

#[test]
fn unknown_must_understand_record() {
    let b = pci_with(|w| w.record(0x7000 | TYPE_MUST_UNDERSTAND, 0, &[]).unwrap());
    let e = reject(&b);
    assert_eq!(
        e.kind,
        ErrorKind::UnknownMustUnderstand { rtype: 0x8000_7000 }
    );
    assert_eq!(e.record, at(1, None, 0x8000_7000));
}

#[test]
fn unknown_must_understand_sub_record() {
    let b = pci_with(|w| {
        region(w, 0, 0x1000, 0x1000, RW, |w| {
            w.record(0x7001 | TYPE_MUST_UNDERSTAND, 0, &[1, 2, 3])
                .unwrap()
        })
    });
    assert_eq!(reject(&b).record, at(1, Some(0), 0x8000_7001));
}

#[test]
fn unknown_records_without_the_bit_are_skipped() {
    let b = pci_with(|w| {
        w.record(0x7000, 0, &[9; 20]).unwrap();
        region(w, 0, 0x1000, 0x1000, RW, |w| {
            w.record(0x7001, 0xffff, &[1]).unwrap()
        });
    });
    let d = parse(&b).expect("unknown records are skipped");
    assert_eq!(d.region(0).map(|r| r.size), Some(0x1000));
}

#[test]
fn unknown_must_understand_flag() {
    let b = pci_with(|w| region(w, 0, 0x1000, 0x1000, RW | 1 << 9, |_| {}));
    let e = reject(&b);
    assert_eq!(e.kind, ErrorKind::UnknownFlags { flags: 1 << 9 });
    assert_eq!(e.offset, offset_of_any(&b, 1) + 8);
}

fn offset_of_any(bytes: &[u8], index: usize) -> usize {
    devfd_format::RecordIter::top_level(&bytes[12..], 12)
        .nth(index)
        .unwrap()
        .unwrap()
        .offset
}

#[test]
fn unknown_advisory_flag_is_ignored() {
    let b = pci_with(|w| region(w, 0, 0x1000, 0x1000, RW | 1 << 20, |_| {}));
    assert!(parse(&b).is_ok());
}

#[test]
fn pci_record_on_platform_bus() {
    let b = platform_with(|w| region(w, 0, 0x1000, 0x1000, RW, |w| w.pci_bar(0, 0).unwrap()));
    assert_eq!(reject(&b).kind, ErrorKind::WrongBus { needs: "pci" });
}

#[test]
fn msi_on_platform_bus() {
    let b = platform_with(|w| {
        let t = w.begin_interrupt(0, 1, IRQ_KIND_MSI, 0, 0x1000).unwrap();
        w.end(t).unwrap();
    });
    assert_eq!(reject(&b).kind, ErrorKind::WrongBus { needs: "pci" });
}

#[test]
fn missing_pci_id() {
    let mut w = Writer::new(Bus::Pci, 0).unwrap();
    let d = w.begin_device().unwrap();
    w.end(d).unwrap();
    let b = w.finish().unwrap();
    let e = reject(&b);
    assert!(matches!(e.kind, ErrorKind::Missing { .. }));
    assert_eq!(e.record, at(0, None, REC_DEVICE));
}

#[test]
fn missing_end() {
    let mut b = edu();
    let r = offset_of(&b, 5, None);
    put32(&mut b, r, 0x7000);
    assert!(matches!(reject(&b).kind, ErrorKind::MissingEnd { .. }));
}

#[test]
fn record_after_end() {
    let mut b = edu();
    let end = offset_of(&b, 5, None);
    // Turn INTERRUPT 1 (record 4) into END-then-unknown: write END over its header.
    let r4 = offset_of(&b, 4, None);
    let len4 = u32::from_le_bytes(b[r4 + 4..r4 + 8].try_into().unwrap());
    put32(&mut b, r4, REC_END);
    put32(&mut b, r4 + 4, 16);
    put32(&mut b, r4 + 8, 0);
    b[r4 + 12..r4 + 16].fill(0);
    put32(&mut b, r4 + 16, 0x7000);
    put32(&mut b, r4 + 20, len4 - 16);
    put32(&mut b, 32, 1);
    let e = reject(&b);
    assert!(matches!(e.kind, ErrorKind::MissingEnd { .. }));
    assert_eq!(e.offset, r4 + 16);
    assert!(end > r4);
}

#[test]
fn end_with_content() {
    let b = pci_with(|w| w.record(REC_END, 0, &[0; 8]).unwrap());
    assert_eq!(
        reject(&b).kind,
        ErrorKind::RecLenMismatch {
            rec_len: 24,
            expected: 16
        }
    );
}

#[test]
fn region_count_mismatch() {
    let mut b = edu();
    put32(&mut b, 28, 3);
    let e = reject(&b);
    assert_eq!(
        e.kind,
        ErrorKind::CountMismatch {
            what: "regions",
            declared: 3,
            actual: 2
        }
    );
    assert_eq!(e.offset, 28);
}

#[test]
fn interrupt_count_mismatch() {
    let mut b = edu();
    put32(&mut b, 32, 0);
    assert_eq!(
        reject(&b).kind,
        ErrorKind::CountMismatch {
            what: "interrupts",
            declared: 0,
            actual: 2
        }
    );
}

#[test]
fn too_many_regions() {
    let b = pci_with(|w| {
        for i in 0..=MAX_REGIONS as u64 {
            region(w, i as u32, 0x10_0000 + i * 16, 16, RW, |_| {});
        }
    });
    assert_eq!(
        reject(&b).kind,
        ErrorKind::TooMany {
            what: "regions",
            max: MAX_REGIONS as u32
        }
    );
}

// --- regions -----------------------------------------------------------------------------------

#[test]
fn duplicate_region_index() {
    let b = pci_with(|w| {
        region(w, 3, 0x1000, 0x1000, RW, |_| {});
        region(w, 3, 0x2000, 0x1000, RW, |_| {});
    });
    let e = reject(&b);
    assert_eq!(
        e.kind,
        ErrorKind::DuplicateIndex {
            what: "region",
            index: 3
        }
    );
    assert_eq!(e.record, at(2, None, REC_REGION));
    assert_eq!(e.offset, offset_of_any(&b, 2) + 12 + 16);
}

#[test]
fn zero_size_region() {
    let b = pci_with(|w| region(w, 0, 0x1000, 0, RW, |_| {}));
    assert_eq!(reject(&b).kind, ErrorKind::ZeroSize { index: 0 });
}

#[test]
fn region_wraps() {
    let b = pci_with(|w| region(w, 0, u64::MAX - 0xfff, 0x2000, RW, |_| {}));
    assert!(matches!(
        reject(&b).kind,
        ErrorKind::RangeWraps { what: "region", .. }
    ));
}

#[test]
fn region_overlaps_description() {
    let b = pci_with(|w| region(w, 0, 0x10, 0x1000, RW, |_| {}));
    assert!(matches!(
        reject(&b).kind,
        ErrorKind::OverlapsDescription { offset: 0x10, .. }
    ));
}

#[test]
fn overlapping_regions() {
    let b = pci_with(|w| {
        region(w, 0, 0x1000, 0x1000, RW, |_| {});
        region(w, 1, 0x1ff8, 0x10, RW, |_| {});
    });
    let e = reject(&b);
    assert_eq!(
        e.kind,
        ErrorKind::Overlap {
            what: "region",
            index: 1,
            other_what: "region",
            other_index: 0
        }
    );
}

#[test]
fn interrupt_window_overlaps_region() {
    let b = pci_with(|w| {
        region(w, 0, 0x1000, 0x1000, RW, |_| {});
        let t = w.begin_interrupt(0, 4, IRQ_KIND_MSI, 0, 0x1ff0).unwrap();
        w.end(t).unwrap();
    });
    assert!(matches!(
        reject(&b).kind,
        ErrorKind::Overlap {
            what: "interrupt window",
            other_what: "region",
            ..
        }
    ));
}

#[test]
fn mmap_region_not_page_aligned() {
    let b = pci_with(|w| region(w, 0, 0x1800, 0x1000, RW | REGION_MMAP, |_| {}));
    assert!(matches!(
        reject(&b).kind,
        ErrorKind::Misaligned {
            what: "mmap region",
            ..
        }
    ));
}

#[test]
fn bar_number_out_of_range() {
    let b = pci_with(|w| region(w, 0, 0x1000, 0x1000, RW, |w| w.pci_bar(6, 0).unwrap()));
    let e = reject(&b);
    assert_eq!(e.kind, ErrorKind::BarOutOfRange { bar: 6 });
    assert_eq!(e.record, at(1, Some(0), REC_PCI_BAR));
}

#[test]
fn contradictory_bar_flags() {
    let b = pci_with(|w| {
        region(w, 0, 0x1000, 0x100, RW, |w| {
            w.pci_bar(0, BAR_IO | BAR_MEM64).unwrap()
        })
    });
    assert!(matches!(reject(&b).kind, ErrorKind::BadBarFlags { .. }));
}

#[test]
fn same_bar_twice() {
    let b = pci_with(|w| {
        region(w, 0, 0x1000, 0x1000, RW, |w| w.pci_bar(2, 0).unwrap());
        region(w, 1, 0x2000, 0x1000, RW, |w| w.pci_bar(2, 0).unwrap());
    });
    assert_eq!(
        reject(&b).kind,
        ErrorKind::DuplicateLocation { what: "PCI BAR" }
    );
}

#[test]
fn config_space_of_odd_size() {
    let b = pci_with(|w| region(w, 0, 0x1000, 512, RW, |w| w.pci_config().unwrap()));
    assert_eq!(reject(&b).kind, ErrorKind::BadConfigSize { size: 512 });
}

#[test]
fn fixed_leaf_with_wrong_length() {
    let b = pci_with(|w| {
        region(w, 0, 0x1000, 0x1000, RW, |w| {
            w.record(REC_PCI_BAR, 0, &[0; 12]).unwrap()
        })
    });
    assert_eq!(
        reject(&b).kind,
        ErrorKind::RecLenMismatch {
            rec_len: 24,
            expected: 16
        }
    );
}

#[test]
fn non_zero_padding() {
    let mut b = edu();
    // LABEL "bar0": 12-byte header, 4-byte length, 5 bytes of string, 3 bytes of padding.
    let label = offset_of(&b, 1, Some(0));
    b[label + 22] = 0xaa;
    let e = reject(&b);
    assert_eq!(e.kind, ErrorKind::NonZeroPadding);
    assert_eq!(e.offset, label + 22);
}

#[test]
fn non_zero_reserved() {
    let mut b = edu();
    let id = offset_of(&b, 0, Some(0));
    b[id + 12 + 14] = 1;
    let e = reject(&b);
    assert_eq!(e.kind, ErrorKind::NonZeroReserved);
    assert_eq!(e.record, at(0, Some(0), REC_PCI_ID));
}

// --- strings -----------------------------------------------------------------------------------

fn with_label_bytes(len_field: u32, data: &[u8]) -> Vec<u8> {
    let mut body = len_field.to_le_bytes().to_vec();
    body.extend_from_slice(data);
    pci_with(|w| {
        region(w, 0, 0x1000, 0x1000, RW, |w| {
            w.record(REC_LABEL, 0, &body).unwrap()
        })
    })
}

#[test]
fn string_of_length_zero() {
    assert_eq!(
        reject(&with_label_bytes(0, &[])).kind,
        ErrorKind::BadStringLen {
            len: 0,
            max: MAX_STRING_LEN
        }
    );
}

#[test]
fn string_longer_than_its_record() {
    assert!(matches!(
        reject(&with_label_bytes(40, b"abc\0")).kind,
        ErrorKind::BadStringLen { len: 40, .. }
    ));
}

#[test]
fn string_without_nul() {
    let e = reject(&with_label_bytes(4, b"abcd"));
    assert_eq!(e.kind, ErrorKind::StringNotTerminated);
    assert_eq!(e.record, at(1, Some(0), REC_LABEL));
}

#[test]
fn string_with_embedded_nul() {
    assert_eq!(
        reject(&with_label_bytes(4, b"a\0c\0")).kind,
        ErrorKind::StringEmbeddedNul
    );
}

#[test]
fn label_not_utf8() {
    assert_eq!(
        reject(&with_label_bytes(3, b"\xff\xfe\0")).kind,
        ErrorKind::StringEncoding { what: "UTF-8" }
    );
}

#[test]
fn compatible_with_empty_entry() {
    let mut w = Writer::new(Bus::Platform, 0).unwrap();
    let d = w.begin_device().unwrap();
    w.record(REC_DT_COMPATIBLE, 0, b"\x05\0\0\0ab\0\0\0")
        .unwrap();
    w.end(d).unwrap();
    let b = w.finish().unwrap();
    assert_eq!(reject(&b).kind, ErrorKind::StringEmbeddedNul);
}

#[test]
fn dt_path_not_absolute() {
    let b = platform_with(|w| {
        region(w, 0, 0x1000, 0x1000, RW, |w| {
            w.dt("soc/uart", DT_PROP_REG, 0).unwrap()
        })
    });
    assert_eq!(reject(&b).kind, ErrorKind::DtPathNotAbsolute);
}

#[test]
fn dt_path_not_printable() {
    let b = platform_with(|w| {
        region(w, 0, 0x1000, 0x1000, RW, |w| {
            w.dt("/soc/\u{e9}", DT_PROP_REG, 0).unwrap()
        })
    });
    assert_eq!(
        reject(&b).kind,
        ErrorKind::StringEncoding {
            what: "printable ASCII"
        }
    );
}

#[test]
fn dt_property_wrong_for_region() {
    let b = platform_with(|w| {
        region(w, 0, 0x1000, 0x1000, RW, |w| {
            w.dt("/uart", DT_PROP_INTERRUPTS, 0).unwrap()
        })
    });
    assert_eq!(
        reject(&b).kind,
        ErrorKind::BadDtProperty {
            property: DT_PROP_INTERRUPTS
        }
    );
}

#[test]
fn dt_index_without_path() {
    let body = [DT_PROP_REG.to_le_bytes(), 0u32.to_le_bytes()].concat();
    let b = platform_with(|w| {
        region(w, 0, 0x1000, 0x1000, RW, |w| {
            w.record(REC_DT_INDEX, 0, &body).unwrap()
        })
    });
    assert_eq!(
        reject(&b).kind,
        ErrorKind::Missing {
            what: "DT_PATH beside DT_INDEX"
        }
    );
}

// --- interrupts --------------------------------------------------------------------------------

fn with_irq(count: u32, kind: u32, offset: u64) -> Vec<u8> {
    pci_with(|w| {
        let t = w.begin_interrupt(0, count, kind, 0, offset).unwrap();
        w.end(t).unwrap();
    })
}

#[test]
fn zero_vectors() {
    assert!(matches!(
        reject(&with_irq(0, IRQ_KIND_MSI, 0x1000)).kind,
        ErrorKind::BadVectorCount { count: 0, .. }
    ));
}

#[test]
fn too_many_vectors() {
    assert!(matches!(
        reject(&with_irq(MAX_VECTORS + 1, IRQ_KIND_MSIX, 0x1000)).kind,
        ErrorKind::BadVectorCount { .. }
    ));
}

#[test]
fn unknown_interrupt_kind() {
    assert_eq!(
        reject(&with_irq(1, 99, 0x1000)).kind,
        ErrorKind::UnknownInterruptKind { kind: 99 }
    );
}

#[test]
fn control_window_misaligned() {
    assert!(matches!(
        reject(&with_irq(1, IRQ_KIND_MSI, 0x1008)).kind,
        ErrorKind::Misaligned {
            what: "interrupt control window",
            ..
        }
    ));
}

#[test]
fn control_window_wraps() {
    assert!(matches!(
        reject(&with_irq(2, IRQ_KIND_MSI, u64::MAX - 15)).kind,
        ErrorKind::RangeWraps { .. } | ErrorKind::Misaligned { .. }
    ));
    assert!(matches!(
        reject(&with_irq(2, IRQ_KIND_MSI, !15u64)).kind,
        ErrorKind::RangeWraps {
            what: "interrupt window",
            ..
        }
    ));
}

#[test]
fn duplicate_interrupt_index() {
    let b = pci_with(|w| {
        for off in [0x1000, 0x2000] {
            let t = w.begin_interrupt(5, 1, IRQ_KIND_MSI, 0, off).unwrap();
            w.end(t).unwrap();
        }
    });
    assert_eq!(
        reject(&b).kind,
        ErrorKind::DuplicateIndex {
            what: "interrupt",
            index: 5
        }
    );
}

// --- sparse mmap -------------------------------------------------------------------------------

fn with_sparse(flags: u32, areas: &[(u64, u64)]) -> Vec<u8> {
    pci_with(|w| {
        region(w, 0, 0x10000, 0x10000, flags, |w| {
            w.sparse_mmap(areas).unwrap()
        })
    })
}

const MMAP: u32 = RW | REGION_MMAP;

#[test]
fn sparse_areas_valid() {
    let b = with_sparse(MMAP, &[(0, 0x1000), (0x4000, 0x2000)]);
    let d = parse(&b).unwrap();
    let areas: Vec<_> = d.region(0).unwrap().sparse_areas().unwrap().collect();
    assert_eq!(areas, [(0, 0x1000), (0x4000, 0x2000)]);
}

#[test]
fn sparse_area_outside_region() {
    assert_eq!(
        reject(&with_sparse(MMAP, &[(0xf000, 0x2000)])).kind,
        ErrorKind::SparseOutside { area: 0 }
    );
}

#[test]
fn sparse_area_empty() {
    assert_eq!(
        reject(&with_sparse(MMAP, &[(0, 0x1000), (0x2000, 0)])).kind,
        ErrorKind::SparseOutside { area: 1 }
    );
}

#[test]
fn sparse_areas_overlap() {
    assert_eq!(
        reject(&with_sparse(MMAP, &[(0, 0x2000), (0x1000, 0x1000)])).kind,
        ErrorKind::SparseOrder { area: 1 }
    );
}

#[test]
fn sparse_area_misaligned() {
    assert!(matches!(
        reject(&with_sparse(MMAP, &[(0x800, 0x1000)])).kind,
        ErrorKind::Misaligned {
            what: "sparse mmap area",
            ..
        }
    ));
}

#[test]
fn sparse_without_mmap_flag() {
    assert!(matches!(
        reject(&with_sparse(RW, &[(0, 0x1000)])).kind,
        ErrorKind::Misplaced { .. }
    ));
}

#[test]
fn too_many_sparse_areas() {
    let mut body = (MAX_SPARSE_AREAS + 1).to_le_bytes().to_vec();
    body.extend_from_slice(&[0; 4]);
    let b = pci_with(|w| {
        region(w, 0, 0x10000, 0x10000, MMAP, |w| {
            w.record(REC_SPARSE_MMAP, 0, &body).unwrap()
        })
    });
    assert!(matches!(
        reject(&b).kind,
        ErrorKind::TooMany {
            what: "sparse areas",
            ..
        }
    ));
}

// --- lint --------------------------------------------------------------------------------------

#[test]
fn lint_reports_every_rule_violation() {
    let b = pci_with(|w| {
        region(w, 0, 0x1000, 0, RW, |w| w.pci_bar(9, 0).unwrap());
        region(w, 0, 0x10, 0x1000, RW | 1 << 10, |_| {});
    });
    let mut all = Vec::new();
    let n = lint(&b, &mut |e| all.push(e.kind));
    assert_eq!(n, all.len());
    for kind in [
        ErrorKind::ZeroSize { index: 0 },
        ErrorKind::BarOutOfRange { bar: 9 },
        ErrorKind::UnknownFlags { flags: 1 << 10 },
        ErrorKind::DuplicateIndex {
            what: "region",
            index: 0,
        },
    ] {
        assert!(all.contains(&kind), "{kind:?} not in {all:?}");
    }
    assert!(
        all.iter()
            .any(|k| matches!(k, ErrorKind::OverlapsDescription { .. }))
    );
}

#[test]
fn valid_description_lints_clean() {
    assert_eq!(lint(&edu(), &mut |e| panic!("{e}")), 0);
}

#[test]
fn patched_offsets_still_never_panic() {
    // Every single-byte corruption of a valid description is either accepted or rejected,
    // never a panic.
    let good = edu();
    for at in 0..good.len() {
        for v in [0x00, 0x01, 0x7f, 0x80, 0xff] {
            let mut b = good.clone();
            b[at] = v;
            let _ = parse(&b);
            lint(&b, &mut |_| {});
        }
    }
}

// --- rules added after review ------------------------------------------------------------------

#[test]
fn device_record_shorter_than_its_body() {
    let mut w = Writer::new(Bus::Other(b'V'), 0).unwrap();
    let d = w.begin_device().unwrap();
    w.end(d).unwrap();
    w.record(0x7000, 0, &[0; 4]).unwrap();
    let mut b = w.finish().unwrap();
    // Shrink DEVICE to 16 bytes: its counts now overlap END's header.
    put32(&mut b, 16, 16);
    b.drain(28..36);
    let len = b.len() as u32;
    put32(&mut b, 24, len);
    let e = reject(&b);
    assert!(
        matches!(
            e.kind,
            ErrorKind::RecLenTooSmall {
                rec_len: 16,
                min: 24
            }
        ),
        "{e}"
    );
}

#[test]
fn compatible_with_trailing_empty_entry() {
    let mut w = Writer::new(Bus::Platform, 0).unwrap();
    let d = w.begin_device().unwrap();
    w.record(REC_DT_COMPATIBLE, 0, b"\x03\0\0\0a\0\0").unwrap();
    w.end(d).unwrap();
    assert_eq!(
        reject(&w.finish().unwrap()).kind,
        ErrorKind::StringEmbeddedNul
    );
}

#[test]
fn empty_string() {
    assert_eq!(
        reject(&with_label_bytes(1, b"\0")).kind,
        ErrorKind::BadStringLen {
            len: 1,
            max: MAX_STRING_LEN
        }
    );
}

#[test]
fn sparse_with_no_areas() {
    let b = pci_with(|w| {
        region(w, 0, 0x10000, 0x10000, MMAP, |w| {
            w.record(REC_SPARSE_MMAP, 0, &[0; 8]).unwrap()
        })
    });
    assert_eq!(reject(&b).kind, ErrorKind::NoSparseAreas);
}

#[test]
fn automasked_without_maskable() {
    let b = pci_with(|w| {
        let t = w
            .begin_interrupt(0, 1, IRQ_KIND_INTX, IRQ_LEVEL | IRQ_AUTOMASKED, 0x1000)
            .unwrap();
        w.end(t).unwrap();
    });
    assert!(matches!(reject(&b).kind, ErrorKind::BadIrqFlags { .. }));
}

#[test]
fn level_triggered_msi() {
    let b = pci_with(|w| {
        let t = w
            .begin_interrupt(0, 1, IRQ_KIND_MSI, IRQ_LEVEL, 0x1000)
            .unwrap();
        w.end(t).unwrap();
    });
    assert_eq!(
        reject(&b).kind,
        ErrorKind::BadIrqFlags {
            flags: IRQ_LEVEL,
            kind: IRQ_KIND_MSI
        }
    );
}

#[test]
fn intx_with_two_vectors_and_msi_with_33() {
    assert_eq!(
        reject(&with_irq(2, IRQ_KIND_INTX, 0x1000)).kind,
        ErrorKind::BadVectorCount { count: 2, max: 1 }
    );
    assert_eq!(
        reject(&with_irq(33, IRQ_KIND_MSI, 0x1000)).kind,
        ErrorKind::BadVectorCount { count: 33, max: 32 }
    );
}

#[test]
fn sixty_four_bit_bar_5() {
    let b = pci_with(|w| {
        region(w, 0, 0x1000, 0x1000, RW, |w| {
            w.pci_bar(5, BAR_MEM64).unwrap()
        })
    });
    assert!(matches!(reject(&b).kind, ErrorKind::BadBarFlags { .. }));
}

#[test]
fn bar_inside_the_upper_half_of_a_64_bit_bar() {
    let b = pci_with(|w| {
        region(w, 0, 0x1000, 0x1000, RW, |w| {
            w.pci_bar(2, BAR_MEM64).unwrap()
        });
        region(w, 1, 0x2000, 0x1000, RW, |w| w.pci_bar(3, 0).unwrap());
    });
    let e = reject(&b);
    assert_eq!(e.kind, ErrorKind::DuplicateLocation { what: "PCI BAR" });
    assert_eq!(e.record, at(2, None, REC_REGION));
}

#[test]
fn region_ends_above_2_pow_63() {
    let b = pci_with(|w| region(w, 0, (1 << 63) - 8, 16, RW, |_| {}));
    assert!(matches!(
        reject(&b).kind,
        ErrorKind::RangeWraps { what: "region", .. }
    ));
}

#[test]
fn register_region_not_8_aligned() {
    let b = pci_with(|w| region(w, 0, 0x1004, 0x10, RW, |_| {}));
    assert!(matches!(
        reject(&b).kind,
        ErrorKind::Misaligned {
            what: "region",
            align: 8,
            ..
        }
    ));
}

#[test]
fn writer_refuses_misuse() {
    use devfd_format::write::WriteError;
    assert_eq!(
        Writer::new(Bus::Other(b'x'), 0).unwrap_err(),
        WriteError::BadBus { code: b'x' }
    );
    let mut w = Writer::new(Bus::Pci, 0).unwrap();
    assert_eq!(
        w.begin_region(0, 0, 1, 0).unwrap_err(),
        WriteError::DeviceNotFirst
    );
    assert_eq!(w.pci_bar(0, 0).unwrap_err(), WriteError::NoParent);
    let d = w.begin_device().unwrap();
    assert_eq!(
        w.begin_region(0, 0, 1, 0).unwrap_err(),
        WriteError::NestedTopLevel
    );
    let inner = w.begin_record(0x7000, 0, &[1]).unwrap();
    assert_eq!(
        w.begin_record(0x7001, 0, &[]).unwrap_err(),
        WriteError::TooDeep
    );
    assert_eq!(w.end(d).unwrap_err(), WriteError::WrongToken);
    // The rejected token was consumed; the writer now cannot finish cleanly.
    w.end(inner).unwrap();
    assert_eq!(w.finish().unwrap_err(), WriteError::Unfinished);
    let mut w = Writer::new(Bus::Pci, 0).unwrap();
    let d = w.begin_device().unwrap();
    assert!(matches!(
        w.label("").unwrap_err(),
        WriteError::BadString { len: 0 }
    ));
    assert!(matches!(
        w.label("a\0b").unwrap_err(),
        WriteError::BadString { .. }
    ));
    w.end(d).unwrap();
    assert_eq!(w.begin_device().unwrap_err(), WriteError::DeviceNotFirst);
}

#[test]
fn odd_bodies_keep_sub_records_aligned() {
    // A raw parent with a 3-byte body: the writer pads it so the child stays aligned.
    let b = pci_with(|w| {
        let t = w.begin_record(0x7000, 0, &[1, 2, 3]).unwrap();
        w.end(t).unwrap();
    });
    assert!(parse(&b).is_ok());
}

// --- ACCESS (version 1.1) ----------------------------------------------------------------------

/// A PCI description with one register-like (or, with `flags`, mmap) region holding `subs`.
fn with_access(flags: u32, subs: impl FnOnce(&mut Writer)) -> Vec<u8> {
    pci_with(|w| region(w, 0, 0x10000, 0x1000, flags, subs))
}

#[test]
fn access_valid_and_version_1_1() {
    let b = with_access(RW, |w| w.access(WIDTH_4).unwrap());
    let d = parse(&b).unwrap();
    assert_eq!(d.version(), (1, 1));
    let r = d.region(0).unwrap();
    assert_eq!(r.access(), devfd_format::AccessWidths::new(WIDTH_4));
    assert_eq!(r.access_widths().map(|w| w.bits()), Some(WIDTH_4 as u8));
    assert_eq!(d.flat().next().unwrap().access_widths, WIDTH_4);
    // Without ACCESS: version 1.0 and every width.
    let d2 = with_access(RW, |_| {});
    let d2 = parse(&d2).unwrap();
    assert_eq!(d2.version(), (1, 0));
    assert_eq!(d2.flat().next().unwrap().access_widths, WIDTHS_ALL);
}

#[test]
fn access_zero_mask() {
    let b = with_access(RW, |w| w.access(0).unwrap());
    let e = reject(&b);
    assert_eq!(e.kind, ErrorKind::NoAccessWidths);
    assert_eq!(e.offset, offset_of_any(&b, 1) + 32 + 12);
    assert_eq!(e.record, at(1, Some(0), REC_ACCESS));
}

#[test]
fn access_unknown_width_bits() {
    let b = with_access(RW, |w| w.access(WIDTH_4 | 0x30).unwrap());
    let e = reject(&b);
    assert_eq!(e.kind, ErrorKind::UnknownAccessWidths { widths: 0x30 });
    assert_eq!(e.offset, offset_of_any(&b, 1) + 32 + 12);
}

#[test]
fn access_under_mmap_region() {
    let b = with_access(MMAP, |w| w.access(WIDTH_4).unwrap());
    let e = reject(&b);
    assert_eq!(
        e.kind,
        ErrorKind::Misplaced {
            rtype: REC_ACCESS,
            where_: "under a region with the MMAP flag"
        }
    );
    assert_eq!(e.record, at(1, Some(0), REC_ACCESS));
}

#[test]
fn access_twice_in_one_region() {
    let b = with_access(RW, |w| {
        w.access(WIDTH_4).unwrap();
        w.access(WIDTH_8).unwrap();
    });
    let e = reject(&b);
    assert_eq!(e.kind, ErrorKind::Duplicate { rtype: REC_ACCESS });
    assert_eq!(e.record, at(1, Some(1), REC_ACCESS));
}

#[test]
fn access_with_wrong_rec_len() {
    let b = with_access(RW, |w| {
        w.record(REC_ACCESS, 0, &[4, 0, 0, 0, 0, 0, 0, 0]).unwrap()
    });
    let e = reject(&b);
    assert_eq!(
        e.kind,
        ErrorKind::RecLenMismatch {
            rec_len: 24,
            expected: 16
        }
    );
    assert_eq!(e.offset, offset_of_any(&b, 1) + 32 + 4);
}

#[test]
fn access_with_must_understand_flag() {
    let b = with_access(RW, |w| {
        w.record(REC_ACCESS, 1, &WIDTH_4.to_le_bytes()).unwrap()
    });
    assert_eq!(reject(&b).kind, ErrorKind::UnknownFlags { flags: 1 });
}

#[test]
fn access_outside_a_region() {
    // 1.0 skipped type 0x10a as unknown everywhere; 1.1 knows it belongs under REGION.
    let top = pci_with(|w| w.record(REC_ACCESS, 0, &WIDTH_4.to_le_bytes()).unwrap());
    assert_eq!(
        reject(&top).kind,
        ErrorKind::Misplaced {
            rtype: REC_ACCESS,
            where_: "at top level"
        }
    );
    let irq = pci_with(|w| {
        let t = w.begin_interrupt(0, 1, IRQ_KIND_MSI, 0, 0x1000).unwrap();
        w.access(WIDTH_4).unwrap();
        w.end(t).unwrap();
    });
    assert_eq!(
        reject(&irq).kind,
        ErrorKind::Misplaced {
            rtype: REC_ACCESS,
            where_: "under INTERRUPT"
        }
    );
}

// --- PCI class (rule 59) -----------------------------------------------------------------------

fn pci_id_bytes(class: u32) -> Vec<u8> {
    let mut body = Vec::new();
    for v in [0x1234u16, 0x5678, 0, 0] {
        body.extend_from_slice(&v.to_le_bytes());
    }
    body.extend_from_slice(&class.to_le_bytes());
    body.extend_from_slice(&[0; 4]);
    body
}

#[test]
fn pci_class_above_24_bits() {
    let mut w = Writer::new(Bus::Pci, 0).unwrap();
    let dev = w.begin_device().unwrap();
    w.record(REC_PCI_ID, 0, &pci_id_bytes(0x0100_0000)).unwrap();
    w.end(dev).unwrap();
    let b = w.finish().unwrap();
    let e = reject(&b);
    assert_eq!(e.kind, ErrorKind::BadPciClass { class: 0x0100_0000 });
    assert_eq!(e.offset, 0x24 + 20);
    assert_eq!(e.record, at(0, Some(0), REC_PCI_ID));
    // 24 bits are fine.
    let mut w = Writer::new(Bus::Pci, 0).unwrap();
    let dev = w.begin_device().unwrap();
    w.record(REC_PCI_ID, 0, &pci_id_bytes(0x00ff_ffff)).unwrap();
    w.end(dev).unwrap();
    assert!(parse(&w.finish().unwrap()).is_ok());
}

#[test]
fn writer_and_model_refuse_a_class_above_24_bits() {
    let mut w = Writer::new(Bus::Pci, 0).unwrap();
    let _dev = w.begin_device().unwrap();
    let id = PciId {
        class: 0x0100_0000,
        ..PCI
    };
    assert_eq!(
        w.pci_id(&id),
        Err(devfd_format::write::WriteError::BadClass { class: 0x0100_0000 })
    );
    let mut model = common::edu();
    model.pci_id = Some(id);
    assert!(matches!(
        model.build(),
        Err(devfd_format::model::BuildError::Write(
            devfd_format::write::WriteError::BadClass { .. }
        ))
    ));
}

// --- whole-description errors, lint follow-ons ---------------------------------------------------

#[test]
fn whole_description_errors_name_no_record() {
    let mut b = edu();
    put32(&mut b, 28, 5);
    let e = reject(&b);
    assert!(matches!(e.kind, ErrorKind::CountMismatch { .. }));
    assert_eq!((e.offset, e.record), (28, None));
    // A top-level record header cut short by desc_len: 8 bytes left after END.
    let mut b = edu();
    let len = b.len();
    b.extend_from_slice(&[0; 8]);
    put32(&mut b, 24, len as u32 + 8);
    let e = reject(&b);
    assert_eq!(e.kind, ErrorKind::RecordHeaderTruncated { available: 8 });
    assert_eq!((e.offset, e.record), (len, None));
}

#[test]
fn records_after_end_are_one_error_not_a_count_mismatch_too() {
    // END written early, then an INTERRUPT the DEVICE counts: only MissingEnd is wrong.
    let b = pci_with(|w| {
        region(w, 0, 0x1000, 0x1000, RW, |_| {});
        w.record(REC_END, 0, &[]).unwrap();
        let t = w.begin_interrupt(0, 1, IRQ_KIND_MSI, 0, 0x2000).unwrap();
        w.end(t).unwrap();
        region(w, 1, 0x3000, 0x1000, RW, |_| {});
    });
    let mut all = Vec::new();
    lint(&b, &mut |e| all.push(e));
    assert_eq!(all.len(), 1, "{all:?}");
    assert!(matches!(all[0].kind, ErrorKind::MissingEnd { .. }));
    assert_eq!(all[0].record, at(3, None, REC_INTERRUPT));
    // A count that is wrong even with the records after END is still reported.
    let mut b = b;
    put32(&mut b, 28, 3);
    let mut all = Vec::new();
    lint(&b, &mut |e| all.push(e.kind));
    assert_eq!(
        all[1..],
        [ErrorKind::CountMismatch {
            what: "regions",
            declared: 3,
            actual: 2
        }]
    );
}

#[test]
fn lint_skips_the_content_of_duplicate_and_misplaced_records() {
    // The second LABEL is a duplicate and not UTF-8; the misplaced PCI_BAR has BAR 9.
    let b = pci_with(|w| {
        region(w, 0, 0x1000, 0x1000, RW, |w| {
            w.label("ok").unwrap();
            w.record(REC_LABEL, 0, b"\x02\0\0\0\xff\0").unwrap();
        });
        w.record(REC_PCI_BAR, 0, &9u32.to_le_bytes()).unwrap();
    });
    let mut all = Vec::new();
    lint(&b, &mut |e| all.push(e.kind));
    assert_eq!(
        all,
        [
            ErrorKind::Duplicate { rtype: REC_LABEL },
            ErrorKind::Misplaced {
                rtype: REC_PCI_BAR,
                where_: "at top level"
            }
        ]
    );
}

#[test]
fn lint_overlap_check_uses_wrapping_ranges_saturated() {
    // Region 0 wraps past 2^64 (reported); its range still takes part in the overlap check
    // as [offset, 2^64 - 1), so region 1 above it overlaps it.
    let b = pci_with(|w| {
        region(w, 0, 0x9000_0000_0000_0000, u64::MAX, RW, |_| {});
        region(w, 1, 0xa000_0000_0000_0000, 0x1000, RW, |_| {});
    });
    let mut all = Vec::new();
    lint(&b, &mut |e| all.push(e.kind));
    assert!(
        matches!(all[0], ErrorKind::RangeWraps { index: 0, .. }),
        "{all:?}"
    );
    assert!(
        matches!(all[1], ErrorKind::RangeWraps { index: 1, .. }),
        "{all:?}"
    );
    assert_eq!(
        all[2],
        ErrorKind::Overlap {
            what: "region",
            index: 1,
            other_what: "region",
            other_index: 0
        }
    );
    assert_eq!(all.len(), 3);
}

// --- flat table: location_flags as found ---------------------------------------------------------

#[test]
fn flat_flags_and_location_flags_are_as_found() {
    let flags = BAR_MEM64 | BAR_PREFETCH | 1 << 20;
    let b = pci_with(|w| {
        region(w, 0, 0x1000, 0x1000, RW | 1 << 17, |w| {
            w.pci_bar(0, flags).unwrap()
        })
    });
    let e = parse(&b).unwrap().flat().next().unwrap();
    assert_eq!(e.flags, RW | 1 << 17);
    assert_eq!(e.location_flags, flags, "advisory bit 20 kept");
    assert_eq!(e.to_raw().location_flags.get(), flags);
}

// --- which error a strict parser reports first (SPEC.md §7 order) ------------------------------

#[test]
fn order_padding_before_string_content() {
    // LABEL "a\xff": not UTF-8, and a non-zero padding byte.
    let b = with_label_bytes(3, b"a\xff\0\0\0\0\0\x01");
    let e = reject(&b);
    assert_eq!(e.kind, ErrorKind::NonZeroPadding);
    let mut all = Vec::new();
    lint(&b, &mut |e| all.push(e.kind));
    assert_eq!(
        all,
        [
            ErrorKind::NonZeroPadding,
            ErrorKind::StringEncoding { what: "UTF-8" }
        ]
    );
}

#[test]
fn order_pci_location_claims_before_later_sub_records() {
    // Region 1 claims BAR 0 again (rule 57), then has a LABEL of length 0.
    let b = pci_with(|w| {
        region(w, 0, 0x1000, 0x1000, RW, |w| w.pci_bar(0, 0).unwrap());
        region(w, 1, 0x2000, 0x1000, RW, |w| {
            w.pci_bar(0, 0).unwrap();
            w.record(REC_LABEL, 0, &[0; 4]).unwrap();
        });
    });
    assert_eq!(
        reject(&b).kind,
        ErrorKind::DuplicateLocation { what: "PCI BAR" }
    );
}

#[test]
fn order_unknown_flags_before_misplaced() {
    // A SPARSE_MMAP under a register-like region, with an undefined must-understand flag.
    let b = pci_with(|w| {
        region(w, 0, 0x10000, 0x10000, RW, |w| {
            w.record(
                REC_SPARSE_MMAP,
                1 << 3,
                &[
                    1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x10, 0, 0, 0, 0, 0, 0, 0,
                    0, 0, 0,
                ],
            )
            .unwrap()
        })
    });
    assert_eq!(reject(&b).kind, ErrorKind::UnknownFlags { flags: 1 << 3 });
}

#[test]
fn order_vector_count_before_wrong_bus() {
    let b = platform_with(|w| {
        let t = w.begin_interrupt(0, 0, IRQ_KIND_MSI, 0, 0x1000).unwrap();
        w.end(t).unwrap();
    });
    let e = reject(&b);
    assert_eq!(e.kind, ErrorKind::BadVectorCount { count: 0, max: 32 });
    let mut all = Vec::new();
    lint(&b, &mut |e| all.push(e.kind));
    assert_eq!(
        all,
        [
            ErrorKind::BadVectorCount { count: 0, max: 32 },
            ErrorKind::WrongBus { needs: "pci" }
        ]
    );
}

#[test]
fn lint_skips_the_content_of_a_misplaced_sparse_mmap() {
    // Under a register-like region, with no areas: only Misplaced is reported.
    let b = pci_with(|w| {
        region(w, 0, 0x10000, 0x10000, RW, |w| {
            w.record(REC_SPARSE_MMAP, 0, &[0; 8]).unwrap()
        })
    });
    let mut all = Vec::new();
    lint(&b, &mut |e| all.push(e.kind));
    assert_eq!(
        all,
        [ErrorKind::Misplaced {
            rtype: REC_SPARSE_MMAP,
            where_: "under a region without the MMAP flag"
        }]
    );
}

// --- DT_ADDRESS and DT_INTERRUPT (1.2, rules 60-62) ---------------------------------------------

/// A platform region at 0x10000 of 0x1000 bytes whose sub-records `subs` writes.
fn dt_region(subs: impl FnOnce(&mut Writer)) -> Vec<u8> {
    platform_with(|w| region(w, 0, 0x10000, 0x1000, RW, subs))
}

/// A wired platform interrupt whose sub-records `subs` writes.
fn dt_irq(subs: impl FnOnce(&mut Writer)) -> Vec<u8> {
    platform_with(|w| {
        let t = w
            .begin_interrupt(0, 1, IRQ_KIND_WIRED, IRQ_MASKABLE, 0x10000)
            .unwrap();
        subs(w);
        w.end(t).unwrap();
    })
}

/// Offset of sub-record `sub` of top-level REGION or INTERRUPT record `index`.
fn sub_offset(bytes: &[u8], index: usize, sub: usize) -> usize {
    devfd_format::RecordIter::top_level(&bytes[12..], 12)
        .nth(index)
        .unwrap()
        .unwrap()
        .children(REGION_BODY_LEN)
        .nth(sub)
        .unwrap()
        .unwrap()
        .offset
}

/// The raw body of a DT_INTERRUPT: count, path_len, cells, path + NUL.
fn dt_interrupt_body(count: u32, path_len: u32, cells: &[u32], path: &[u8]) -> Vec<u8> {
    let mut b = Vec::new();
    b.extend_from_slice(&count.to_le_bytes());
    b.extend_from_slice(&path_len.to_le_bytes());
    for c in cells {
        b.extend_from_slice(&c.to_le_bytes());
    }
    b.extend_from_slice(path);
    b
}

#[test]
fn dt_address_and_dt_interrupt_valid_and_version_1_2() {
    let b = dt_region(|w| {
        w.dt("/soc/uart@1000", DT_PROP_REG, 0).unwrap();
        w.dt_address(0x1000_1000).unwrap();
    });
    let d = parse(&b).unwrap();
    assert_eq!(d.version(), (1, 2));
    assert_eq!(d.region(0).unwrap().dt_address(), Some(0x1000_1000));
    // The flat table is unchanged by 1.2.
    assert_eq!(d.flat().next().unwrap().location, FLAT_LOC_DT);

    let b = dt_irq(|w| {
        w.dt("/soc/uart@1000", DT_PROP_INTERRUPTS, 0).unwrap();
        w.dt_interrupt("/soc/intc@0", &[0, 33, 4]).unwrap();
    });
    let d = parse(&b).unwrap();
    assert_eq!(d.version(), (1, 2));
    let x = d.interrupt(0).unwrap().dt_interrupt().unwrap();
    assert_eq!(x.controller, "/soc/intc@0");
    assert_eq!(x.cells.len(), 3);
    assert_eq!(x.cells.collect::<Vec<_>>(), [0, 33, 4]);
    // No cells at all (a controller with #interrupt-cells = <0>) is fine too.
    let b = dt_irq(|w| {
        w.dt("/a", DT_PROP_INTERRUPTS, 0).unwrap();
        w.dt_interrupt("/intc", &[]).unwrap();
    });
    assert_eq!(
        parse(&b)
            .unwrap()
            .interrupt(0)
            .unwrap()
            .dt_interrupt()
            .unwrap()
            .cells
            .len(),
        0
    );
}

#[test]
fn dt_address_without_dt_path() {
    let b = dt_region(|w| w.dt_address(0x1000).unwrap());
    let e = reject(&b);
    assert_eq!(
        e.kind,
        ErrorKind::Missing {
            what: "DT_PATH and DT_INDEX beside DT_ADDRESS"
        }
    );
    assert_eq!(e.offset, offset_of_any(&b, 1));
    assert_eq!(e.record, at(1, None, REC_REGION));
}

#[test]
fn dt_address_past_2_64() {
    let b = dt_region(|w| {
        w.dt("/a", DT_PROP_REG, 0).unwrap();
        w.dt_address(u64::MAX - 0xfff).unwrap(); // + 0x1000 = 2^64 exactly: fits
    });
    assert!(parse(&b).is_ok());
    let b = dt_region(|w| {
        w.dt("/a", DT_PROP_REG, 0).unwrap();
        w.dt_address(u64::MAX - 0xffe).unwrap();
    });
    let e = reject(&b);
    assert_eq!(
        e.kind,
        ErrorKind::DtAddressWraps {
            address: u64::MAX - 0xffe,
            size: 0x1000
        }
    );
    // At the address field of the DT_ADDRESS sub-record (record 1.2).
    assert_eq!(e.record, at(1, Some(2), REC_DT_ADDRESS));
    assert_eq!(e.offset, sub_offset(&b, 1, 2) + 12);
}

#[test]
fn dt_address_wrong_length_and_duplicate() {
    let b = dt_region(|w| {
        w.dt("/a", DT_PROP_REG, 0).unwrap();
        w.record(REC_DT_ADDRESS, 0, &[0; 16]).unwrap();
    });
    assert_eq!(
        reject(&b).kind,
        ErrorKind::RecLenMismatch {
            rec_len: 32,
            expected: 24
        }
    );
    let b = dt_region(|w| {
        w.dt("/a", DT_PROP_REG, 0).unwrap();
        w.dt_address(1).unwrap();
        w.dt_address(2).unwrap();
    });
    assert_eq!(
        reject(&b).kind,
        ErrorKind::Duplicate {
            rtype: REC_DT_ADDRESS
        }
    );
    let b = dt_region(|w| {
        w.dt("/a", DT_PROP_REG, 0).unwrap();
        w.record(REC_DT_ADDRESS, 0, &[1, 0, 0, 0, 0, 0, 0, 0, 9, 0, 0, 0])
            .unwrap();
    });
    let e = reject(&b);
    assert_eq!(e.kind, ErrorKind::NonZeroPadding);
    assert_eq!(e.offset, sub_offset(&b, 1, 2) + 20);
}

#[test]
fn dt_address_and_dt_interrupt_misplaced() {
    let under_irq = dt_irq(|w| {
        w.dt("/a", DT_PROP_INTERRUPTS, 0).unwrap();
        w.dt_address(1).unwrap();
    });
    assert_eq!(
        reject(&under_irq).kind,
        ErrorKind::Misplaced {
            rtype: REC_DT_ADDRESS,
            where_: "under INTERRUPT"
        }
    );
    let under_region = dt_region(|w| {
        w.dt("/a", DT_PROP_REG, 0).unwrap();
        w.dt_interrupt("/intc", &[1]).unwrap();
    });
    assert_eq!(
        reject(&under_region).kind,
        ErrorKind::Misplaced {
            rtype: REC_DT_INTERRUPT,
            where_: "under REGION"
        }
    );
    // The writer's own dt_address refuses to write without a parent record.
    let mut w = Writer::new(Bus::Platform, 0).unwrap();
    let dev = w.begin_device().unwrap();
    w.compatible(["a"]).unwrap();
    w.end(dev).unwrap();
    assert!(w.dt_address(1).is_err());
}

#[test]
fn dt_address_at_top_level() {
    let b = platform_with(|w| w.record(REC_DT_ADDRESS, 0, &[0; 8]).unwrap());
    assert_eq!(
        reject(&b).kind,
        ErrorKind::Misplaced {
            rtype: REC_DT_ADDRESS,
            where_: "at top level"
        }
    );
}

#[test]
fn dt_interrupt_without_dt_path() {
    let b = dt_irq(|w| w.dt_interrupt("/intc", &[1]).unwrap());
    let e = reject(&b);
    assert_eq!(
        e.kind,
        ErrorKind::Missing {
            what: "DT_PATH and DT_INDEX beside DT_INTERRUPT"
        }
    );
    assert_eq!(e.record, at(1, None, REC_INTERRUPT));
}

#[test]
fn dt_interrupt_too_many_cells() {
    let cells = [7u32; 17];
    let b = dt_irq(|w| {
        w.dt("/a", DT_PROP_INTERRUPTS, 0).unwrap();
        w.dt_interrupt("/intc", &cells).unwrap();
    });
    let e = reject(&b);
    assert_eq!(
        e.kind,
        ErrorKind::TooMany {
            what: "interrupt specifier cells",
            max: MAX_DT_INTERRUPT_CELLS
        }
    );
    assert_eq!(e.offset, sub_offset(&b, 1, 2) + 12);
    assert_eq!(e.record, at(1, Some(2), REC_DT_INTERRUPT));
    // 16 is the most that is accepted.
    let b = dt_irq(|w| {
        w.dt("/a", DT_PROP_INTERRUPTS, 0).unwrap();
        w.dt_interrupt("/intc", &cells[..16]).unwrap();
    });
    assert!(parse(&b).is_ok());
}

#[test]
fn dt_interrupt_bad_path_len() {
    for (path_len, body_path) in [
        (0u32, &b"/i\0"[..]),
        (1, b"/i\0"),
        (4097, b"/i\0"),
        (9, b"/i\0"),
    ] {
        let body = dt_interrupt_body(1, path_len, &[5], body_path);
        let b = dt_irq(|w| {
            w.dt("/a", DT_PROP_INTERRUPTS, 0).unwrap();
            w.record(REC_DT_INTERRUPT, 0, &body).unwrap();
        });
        let e = reject(&b);
        assert_eq!(
            e.kind,
            ErrorKind::BadStringLen {
                len: path_len,
                max: MAX_STRING_LEN
            },
            "path_len {path_len}"
        );
        assert_eq!(e.offset, sub_offset(&b, 1, 2) + 16);
    }
}

#[test]
fn dt_interrupt_path_rules() {
    let cases: [(&[u8], ErrorKind, usize); 4] = [
        (b"/ab", ErrorKind::StringNotTerminated, 2),
        (b"/a\0b\0", ErrorKind::StringEmbeddedNul, 0),
        (b"intc\0", ErrorKind::DtPathNotAbsolute, 0),
        (
            b"/\xc3\xa9\0",
            ErrorKind::StringEncoding {
                what: "printable ASCII",
            },
            0,
        ),
    ];
    for (path, kind, byte) in cases {
        let body = dt_interrupt_body(2, path.len() as u32, &[1, 2], path);
        let b = dt_irq(|w| {
            w.dt("/a", DT_PROP_INTERRUPTS, 0).unwrap();
            w.record(REC_DT_INTERRUPT, 0, &body).unwrap();
        });
        let e = reject(&b);
        assert_eq!(e.kind, kind, "{path:?}");
        // The path starts after the header (12), count and path_len (8) and two cells (8).
        assert_eq!(e.offset, sub_offset(&b, 1, 2) + 28 + byte, "{path:?}");
    }
}

#[test]
fn dt_interrupt_padding_and_rec_len() {
    // A record longer than its content is RecLenMismatch; non-zero padding is NonZeroPadding.
    let mut body = dt_interrupt_body(1, 3, &[5], b"/i\0");
    body.extend_from_slice(&[0; 8]);
    let b = dt_irq(|w| {
        w.dt("/a", DT_PROP_INTERRUPTS, 0).unwrap();
        w.record(REC_DT_INTERRUPT, 0, &body).unwrap();
    });
    assert!(matches!(reject(&b).kind, ErrorKind::RecLenMismatch { .. }));
    let mut body = dt_interrupt_body(1, 3, &[5], b"/i\0");
    body.push(0x55);
    let b = dt_irq(|w| {
        w.dt("/a", DT_PROP_INTERRUPTS, 0).unwrap();
        w.record(REC_DT_INTERRUPT, 0, &body).unwrap();
    });
    assert_eq!(reject(&b).kind, ErrorKind::NonZeroPadding);
    let b = dt_irq(|w| {
        w.dt("/a", DT_PROP_INTERRUPTS, 0).unwrap();
        w.record(REC_DT_INTERRUPT, 0, &[1, 0, 0, 0]).unwrap();
    });
    assert!(matches!(reject(&b).kind, ErrorKind::RecLenTooSmall { .. }));
}

#[test]
fn a_1_0_or_1_1_reader_skips_the_1_2_records() {
    // Readers of earlier minors treat 0x10b and 0x10c as unknown, skippable types (bit 31
    // clear); emulate one by renaming the types to an unknown number: the rest still parses.
    let mut b = dt_irq(|w| {
        w.dt("/a", DT_PROP_INTERRUPTS, 0).unwrap();
        w.dt_interrupt("/intc", &[1, 2]).unwrap();
    });
    let sub = sub_offset(&b, 1, 2);
    put32(&mut b, sub, 0x0777);
    let d = parse(&b).unwrap();
    assert!(d.interrupt(0).unwrap().dt_interrupt().is_none());
    assert_eq!(d.interrupt(0).unwrap().dt().unwrap().path, "/a");
}

/// A platform mmap region (read/write/mmap, 4 KiB) whose sub-records `subs` writes.
fn dma_region(subs: impl FnOnce(&mut Writer)) -> Vec<u8> {
    platform_with(|w| region(w, 0, 0x10000, 0x1000, RW | REGION_MMAP, subs))
}

#[test]
fn dma_window_valid_version_1_2_and_flat_location() {
    let b = dma_region(|w| w.dma_window(0x10_0000).unwrap());
    let d = parse(&b).unwrap();
    assert_eq!(d.version(), (1, 2));
    assert_eq!(d.region(0).unwrap().dma_address(), Some(0x10_0000));
    let e = d.flat().next().unwrap();
    assert_eq!(e.location, FLAT_LOC_DMA);
    assert_eq!((e.location_index, e.location_flags), (0x10_0000, 0));
    let high = dma_region(|w| w.dma_window(0x1234_5678_9abc_d000).unwrap());
    let e = parse(&high).unwrap().flat().next().unwrap();
    assert_eq!(
        (e.location_index, e.location_flags),
        (0x9abc_d000, 0x1234_5678)
    );
}

#[test]
fn dma_window_under_a_register_region() {
    let b = platform_with(|w| region(w, 0, 0x10000, 0x1000, RW, |w| w.dma_window(0).unwrap()));
    let e = reject(&b);
    assert_eq!(
        e.kind,
        ErrorKind::Misplaced {
            rtype: REC_DMA_WINDOW,
            where_: "under a region without the MMAP flag"
        }
    );
    assert_eq!(e.record, at(1, Some(0), REC_DMA_WINDOW));
    assert_eq!(e.offset, sub_offset(&b, 1, 0));
}

#[test]
fn dma_window_past_2_64() {
    assert!(parse(&dma_region(|w| w.dma_window(u64::MAX - 0xfff).unwrap())).is_ok());
    let b = dma_region(|w| w.dma_window(u64::MAX - 0xffe).unwrap());
    let e = reject(&b);
    assert_eq!(
        e.kind,
        ErrorKind::DmaWindowWraps {
            address: u64::MAX - 0xffe,
            size: 0x1000
        }
    );
    assert_eq!(e.record, at(1, Some(0), REC_DMA_WINDOW));
    assert_eq!(e.offset, sub_offset(&b, 1, 0) + 12);
}

#[test]
fn dma_window_wrong_length_and_duplicate() {
    let b = dma_region(|w| w.record(REC_DMA_WINDOW, 0, &[0; 16]).unwrap());
    assert_eq!(
        reject(&b).kind,
        ErrorKind::RecLenMismatch {
            rec_len: 32,
            expected: 24
        }
    );
    let b = dma_region(|w| {
        w.dma_window(1 << 20).unwrap();
        w.dma_window(2 << 20).unwrap();
    });
    assert_eq!(
        reject(&b).kind,
        ErrorKind::Duplicate {
            rtype: REC_DMA_WINDOW
        }
    );
}

/// A platform description whose DEVICE carries a reset word at `offset`, plus one region.
fn with_reset(offset: u64) -> Vec<u8> {
    let mut w = Writer::new(Bus::Platform, 0).unwrap();
    let dev = w.begin_device().unwrap();
    w.compatible(["x,y"]).unwrap();
    w.reset_word(offset).unwrap();
    w.end(dev).unwrap();
    region(&mut w, 0, 0x10000, 0x1000, RW, |_| {});
    w.finish().unwrap()
}

#[test]
fn reset_word_valid_version_1_2() {
    let b = with_reset(0x20000);
    let d = parse(&b).unwrap();
    assert_eq!(d.version(), (1, 2));
    assert_eq!(d.device().reset_offset(), Some(0x20000));
}

#[test]
fn reset_word_misaligned_overlapping_or_out_of_range() {
    let e = reject(&with_reset(0x20004));
    assert!(
        matches!(
            e.kind,
            ErrorKind::Misaligned {
                what: "reset word",
                ..
            }
        ),
        "{e:?}"
    );
    let e = reject(&with_reset(0x10ff8));
    assert!(
        matches!(
            e.kind,
            ErrorKind::Overlap {
                what: "reset word",
                ..
            } | ErrorKind::Overlap {
                other_what: "reset word",
                ..
            }
        ),
        "{e:?}"
    );
    let e = reject(&with_reset(8));
    assert!(
        matches!(e.kind, ErrorKind::OverlapsDescription { .. }),
        "{e:?}"
    );
    let e = reject(&with_reset(u64::MAX - 7));
    assert!(
        matches!(
            e.kind,
            ErrorKind::RangeWraps {
                what: "reset word",
                ..
            }
        ),
        "{e:?}"
    );
}

#[test]
fn reset_word_duplicate_and_wrong_length() {
    let mut w = Writer::new(Bus::Platform, 0).unwrap();
    let dev = w.begin_device().unwrap();
    w.compatible(["x,y"]).unwrap();
    w.reset_word(0x20000).unwrap();
    w.reset_word(0x30000).unwrap();
    w.end(dev).unwrap();
    let b = w.finish().unwrap();
    assert_eq!(reject(&b).kind, ErrorKind::Duplicate { rtype: REC_RESET });
    let mut w = Writer::new(Bus::Platform, 0).unwrap();
    let dev = w.begin_device().unwrap();
    w.compatible(["x,y"]).unwrap();
    w.record(REC_RESET, 0, &[0; 16]).unwrap();
    w.end(dev).unwrap();
    let b = w.finish().unwrap();
    assert_eq!(
        reject(&b).kind,
        ErrorKind::RecLenMismatch {
            rec_len: 32,
            expected: 24
        }
    );
}
