//! Hostile device trees, one test per kind of damage (like libfdt's tests/truncated_*.c and
//! friends): each is rejected with the right error, at the right byte, naming the node.

use devfd_dtb::write::FdtWriter;
use devfd_dtb::{DeviceTree, Error, ErrorKind, MAX_DEPTH, Tree};

fn put(bytes: &mut [u8], at: usize, v: u32) {
    bytes[at..at + 4].copy_from_slice(&v.to_be_bytes());
}

fn get(bytes: &[u8], at: usize) -> u32 {
    u32::from_be_bytes(bytes[at..at + 4].try_into().unwrap())
}

/// A small valid tree: a root with cells and a compatible, one device with reg and interrupts,
/// and an interrupt controller.
fn valid() -> FdtWriter {
    let mut w = valid_open();
    w.end_node();
    w
}

/// [`valid`] with the root still open, for tests that add nodes.
fn valid_open() -> FdtWriter {
    let mut w = FdtWriter::new();
    w.reserve(0x8000_0000, 0x1000);
    w.begin_node("")
        .cells("#address-cells", &[1])
        .cells("#size-cells", &[1])
        .strings("compatible", &["test,board"])
        .cells("interrupt-parent", &[1]);
    w.begin_node("intc@1000")
        .cells("phandle", &[1])
        .property("interrupt-controller", &[])
        .cells("#interrupt-cells", &[1])
        .cells("reg", &[0x1000, 0x100])
        .strings("compatible", &["test,intc"])
        .end_node();
    w.begin_node("uart@2000")
        .cells("reg", &[0x2000, 0x100])
        .cells("interrupts", &[5])
        .strings("compatible", &["test,uart"])
        .end_node();
    w
}

/// Rejects `bytes` (as a tree, else as a device tree) and checks the message names the place.
fn reject(bytes: &[u8]) -> Error {
    let e = match Tree::parse(bytes) {
        Err(e) => e,
        Ok(_) => DeviceTree::parse(bytes).expect_err("hostile tree accepted"),
    };
    let text = e.to_string();
    if let Some(offset) = e.offset {
        assert!(text.starts_with(&format!("byte {offset:#x}")), "{text}");
    }
    if let Some(node) = &e.node {
        assert!(text.contains(&format!("node {node}")), "{text}");
    }
    e
}

fn off_struct(b: &[u8]) -> usize {
    get(b, 8) as usize
}

fn off_strings(b: &[u8]) -> usize {
    get(b, 12) as usize
}

#[test]
fn the_valid_tree_is_valid() {
    let b = valid().finish();
    let dt = DeviceTree::parse(&b).unwrap();
    assert_eq!(dt.tree().reserved(), &[(0x8000_0000, 0x1000)]);
    let uart = dt.node("/uart@2000").unwrap();
    assert_eq!(uart.regs[0].mapped(), Some((0x2000, 0x100)));
    assert_eq!(uart.interrupts[0].parent, "/intc@1000");
}

// --- the header and the blocks -----------------------------------------------------------------

#[test]
fn truncated_anywhere() {
    // Like libfdt's truncated_property/truncated_string: every prefix is rejected, none panics.
    let b = valid().finish();
    for len in 0..b.len() {
        let e = reject(&b[..len]);
        let expected = match len {
            0..4 => ErrorKind::TooShort {
                needed: 4,
                available: len,
            },
            4..40 => ErrorKind::TooShort {
                needed: 40,
                available: len,
            },
            _ => ErrorKind::Truncated {
                totalsize: b.len() as u32,
                available: len,
            },
        };
        assert_eq!(e.kind, expected, "prefix of {len} bytes");
        let at = if len >= 40 { 4 } else { len };
        assert_eq!(e.offset, Some(at));
    }
}

#[test]
fn bad_magic() {
    let mut b = valid().finish();
    put(&mut b, 0, 0xd00d_feee);
    let e = reject(&b);
    assert_eq!(e.kind, ErrorKind::BadMagic { found: 0xd00d_feee });
    assert_eq!(e.offset, Some(0));
    // A devfd description is not a device tree either.
    let e = reject(b"DFDT\0\0\x01\0\0\0\0\0");
    assert!(matches!(e.kind, ErrorKind::BadMagic { .. }));
}

#[test]
fn bad_version() {
    let mut b = valid().finish();
    put(&mut b, 20, 16);
    let e = reject(&b);
    assert_eq!(
        e.kind,
        ErrorKind::BadVersion {
            version: 16,
            last_comp_version: 16
        }
    );
    assert_eq!(e.offset, Some(20));
    let mut b = valid().finish();
    put(&mut b, 24, 18);
    put(&mut b, 20, 18);
    let e = reject(&b);
    assert_eq!(e.offset, Some(24), "last_comp_version above 17");
    // A newer version that stays compatible with 17 is read.
    let mut b = valid().finish();
    put(&mut b, 20, 18);
    assert!(Tree::parse(&b).is_ok());
}

#[test]
fn totalsize_smaller_than_the_header() {
    let mut b = valid().finish();
    put(&mut b, 4, 39);
    let e = reject(&b);
    assert_eq!(
        e.kind,
        ErrorKind::TotalSizeTooSmall {
            totalsize: 39,
            header: 40
        }
    );
    assert_eq!(e.offset, Some(4));
}

#[test]
fn structure_block_outside_the_blob() {
    let mut b = valid().finish();
    let total = b.len() as u32;
    put(&mut b, 36, total); // size_dt_struct runs past totalsize
    let e = reject(&b);
    assert!(
        matches!(
            e.kind,
            ErrorKind::BlockOutside {
                block: "structure",
                ..
            }
        ),
        "{e}"
    );
    assert_eq!(e.offset, Some(8));
    // An offset near 2^32 whose end would wrap a 32-bit sum.
    let mut b = valid().finish();
    put(&mut b, 8, 0xffff_fff0);
    put(&mut b, 36, 0x20);
    assert!(matches!(reject(&b).kind, ErrorKind::BlockOutside { .. }));
    // Inside the header.
    let mut b = valid().finish();
    put(&mut b, 8, 36);
    assert!(matches!(reject(&b).kind, ErrorKind::BlockOutside { .. }));
}

#[test]
fn strings_block_outside_the_blob() {
    let mut b = valid().finish();
    put(&mut b, 32, 0x1_0000);
    let e = reject(&b);
    assert!(matches!(
        e.kind,
        ErrorKind::BlockOutside {
            block: "strings",
            ..
        }
    ));
    assert_eq!(e.offset, Some(12));
}

#[test]
fn misaligned_blocks() {
    // libfdt issue #178: an unaligned structure block.
    let mut b = valid().finish();
    let s = get(&b, 8);
    put(&mut b, 8, s + 2);
    let size = get(&b, 36);
    put(&mut b, 36, size - 4);
    let e = reject(&b);
    assert_eq!(
        e.kind,
        ErrorKind::BlockMisaligned {
            block: "structure",
            value: s + 2,
            align: 4
        }
    );
    assert_eq!(e.offset, Some(8));
    let mut b = valid().finish();
    put(&mut b, 16, 44);
    let e = reject(&b);
    assert!(matches!(
        e.kind,
        ErrorKind::BlockMisaligned {
            block: "memory reservation",
            ..
        }
    ));
    assert_eq!(e.offset, Some(16));
}

#[test]
fn overlapping_blocks() {
    // The strings block moved into the structure block.
    let mut b = valid().finish();
    let s = get(&b, 8);
    put(&mut b, 12, s + 8);
    let e = reject(&b);
    assert_eq!(
        e.kind,
        ErrorKind::BlocksOverlap {
            first: "structure",
            second: "strings"
        }
    );
    assert_eq!(e.offset, Some(12));
    // The reservation map overlapping the structure block.
    let mut b = valid().finish();
    put(&mut b, 16, s - 8);
    let e = reject(&b);
    assert!(
        matches!(
            e.kind,
            ErrorKind::BlocksOverlap { .. } | ErrorKind::ReserveMapUnterminated
        ),
        "{e}"
    );
}

#[test]
fn reservation_map_unterminated() {
    // A blob that is only header and reservation entries, none of them (0, 0).
    let mut b = valid().finish();
    let rsv = get(&b, 16) as usize;
    let total = b.len();
    for at in (rsv..total).step_by(4) {
        b[at] = 0xff;
    }
    // Keep the struct and strings blocks where they are but empty, behind the map.
    put(&mut b, 36, 0);
    put(&mut b, 32, 0);
    put(&mut b, 8, total as u32);
    put(&mut b, 12, total as u32);
    let e = reject(&b);
    assert_eq!(e.kind, ErrorKind::ReserveMapUnterminated);
}

// --- the structure block -----------------------------------------------------------------------

#[test]
fn unterminated_property_name_in_the_strings_block() {
    let mut b = valid().finish();
    // Overwrite the last NUL of the strings block: the last name runs off the block.
    let end = off_strings(&b) + get(&b, 32) as usize;
    b[end - 1] = b'x';
    let e = reject(&b);
    assert!(
        matches!(e.kind, ErrorKind::UnterminatedString { .. }),
        "{e}"
    );
}

#[test]
fn name_offset_outside_the_strings_block() {
    let mut w = valid_open();
    w.begin_node("x").raw_property(0x7fff, b"").end_node();
    let b = {
        w.end_node();
        w.finish()
    };
    let e = reject(&b);
    assert_eq!(
        e.kind,
        ErrorKind::NameOffsetOutside {
            nameoff: 0x7fff,
            size: get(&b, 32)
        }
    );
}

#[test]
fn unterminated_node_name() {
    // The structure block ends inside a node name: BEGIN_NODE then name bytes to the end.
    let mut w = FdtWriter::new();
    w.begin_node("");
    let mut b = w.finish();
    // Replace END with a BEGIN_NODE whose name has no NUL: "abcd" as the last 4 bytes.
    let s = off_struct(&b);
    let size = get(&b, 36) as usize;
    let strings = off_strings(&b);
    let mut tail = b[strings..].to_vec();
    b.truncate(s + size - 4);
    b.extend_from_slice(&1u32.to_be_bytes());
    b.extend_from_slice(b"abcd");
    let new_strings = b.len();
    b.append(&mut tail);
    put(&mut b, 36, (size + 4) as u32);
    put(&mut b, 12, new_strings as u32);
    let total = b.len() as u32;
    put(&mut b, 4, total);
    let e = reject(&b);
    assert_eq!(e.kind, ErrorKind::UnterminatedName);
    assert_eq!(e.offset, Some(s + size));
}

#[test]
fn nesting_deeper_than_any_real_tree() {
    let build = |depth: usize| {
        let mut w = FdtWriter::new();
        w.begin_node("");
        for i in 1..depth {
            w.begin_node(&format!("n{i}"));
        }
        for _ in 0..depth {
            w.end_node();
        }
        w.finish()
    };
    assert!(
        Tree::parse(&build(MAX_DEPTH)).is_ok(),
        "{MAX_DEPTH} levels are fine"
    );
    let b = build(MAX_DEPTH + 1);
    let e = reject(&b);
    assert_eq!(e.kind, ErrorKind::TooDeep { max: MAX_DEPTH });
    // At the BEGIN_NODE that goes one level too deep.
    let at = e.offset.unwrap();
    assert_eq!(get(&b, at), 1);
    // Far deeper is rejected just as fast (no recursion).
    assert!(matches!(
        reject(&build(100_000)).kind,
        ErrorKind::TooDeep { .. }
    ));
}

#[test]
fn unknown_token() {
    let mut w = valid();
    w.token(0x7);
    let b = w.finish();
    let e = reject(&b);
    assert_eq!(e.kind, ErrorKind::UnknownToken { token: 7 });
    assert_eq!(get(&b, e.offset.unwrap()), 7);
}

#[test]
fn property_value_past_the_structure_block() {
    let mut w = FdtWriter::new();
    w.begin_node("").property("big", &[1, 2, 3, 4]);
    let mut b = w.finish();
    // The property's len field: after BEGIN_NODE + "\0" padded (8 bytes), PROP token.
    let prop = off_struct(&b) + 8;
    assert_eq!(get(&b, prop), 3);
    put(&mut b, prop + 4, 0x1000);
    let e = reject(&b);
    assert_eq!(
        e.kind,
        ErrorKind::StructTruncated {
            what: "a property value"
        }
    );
    assert_eq!(e.offset, Some(prop + 12));
    // A length near 2^32 cannot wrap the position.
    put(&mut b, prop + 4, u32::MAX);
    assert!(matches!(reject(&b).kind, ErrorKind::StructTruncated { .. }));
}

#[test]
fn missing_end_and_trailing_data() {
    let mut b = valid().finish();
    // Shrink the structure block by the END token.
    let size = get(&b, 36);
    put(&mut b, 36, size - 4);
    let e = reject(&b);
    assert_eq!(e.kind, ErrorKind::MissingEnd);
    assert_eq!(e.offset, Some(off_struct(&b) + size as usize - 4));

    // NOPs after END (but inside size_dt_struct) are trailing data.
    let mut w = valid();
    w.token(9).nop();
    let b = w.finish();
    assert_eq!(reject(&b).kind, ErrorKind::TrailingData { bytes: 8 });
}

#[test]
fn unbalanced_nodes() {
    let mut w = valid();
    w.end_node();
    assert_eq!(reject(&w.finish()).kind, ErrorKind::UnexpectedEndNode);
    let mut w = FdtWriter::new();
    w.begin_node("").begin_node("a");
    assert_eq!(
        reject(&w.finish()).kind,
        ErrorKind::UnclosedNode { open: 2 }
    );
    let mut w = valid();
    w.begin_node("").end_node();
    assert_eq!(reject(&w.finish()).kind, ErrorKind::ExtraRoot);
    let w = FdtWriter::new();
    assert_eq!(reject(&w.finish()).kind, ErrorKind::NoRoot);
    let mut w = FdtWriter::new();
    w.begin_node("root").end_node();
    assert_eq!(reject(&w.finish()).kind, ErrorKind::NoRoot);
    // NOPs are fine anywhere.
    let mut w = FdtWriter::new();
    w.nop()
        .begin_node("")
        .nop()
        .cells("a", &[1])
        .nop()
        .end_node()
        .nop();
    assert!(Tree::parse(&w.finish()).is_ok());
}

#[test]
fn properties_outside_or_after_subnodes() {
    let mut w = FdtWriter::new();
    w.cells("early", &[1]).begin_node("").end_node();
    assert_eq!(reject(&w.finish()).kind, ErrorKind::PropertyOutsideNode);
    let mut w = FdtWriter::new();
    w.begin_node("")
        .begin_node("a")
        .end_node()
        .cells("late", &[1])
        .end_node();
    let e = reject(&w.finish());
    assert_eq!(
        e.kind,
        ErrorKind::PropertyAfterSubnode {
            name: "late".into()
        }
    );
}

#[test]
fn duplicate_names() {
    let mut w = FdtWriter::new();
    w.begin_node("")
        .begin_node("a@1")
        .end_node()
        .begin_node("b")
        .end_node()
        .begin_node("a@1")
        .end_node()
        .end_node();
    let b = w.finish();
    let e = reject(&b);
    assert_eq!(e.kind, ErrorKind::DuplicateNode { name: "a@1".into() });
    // At the second one.
    assert_eq!(&b[e.offset.unwrap() + 4..e.offset.unwrap() + 7], b"a@1");
    let mut w = FdtWriter::new();
    w.begin_node("")
        .cells("x", &[1])
        .cells("y", &[1])
        .cells("x", &[2])
        .end_node();
    let e = reject(&w.finish());
    assert_eq!(e.kind, ErrorKind::DuplicateProperty { name: "x".into() });
}

#[test]
fn bad_names() {
    for name in ["a/b", "tab\there", "\u{e9}"] {
        let mut w = FdtWriter::new();
        w.begin_node("").begin_node(name).end_node().end_node();
        let e = reject(&w.finish());
        assert!(
            matches!(e.kind, ErrorKind::BadName { what: "node", .. }),
            "{name:?}: {e}"
        );
    }
    let mut w = FdtWriter::new();
    w.begin_node("").cells("", &[1]).end_node();
    assert!(matches!(
        reject(&w.finish()).kind,
        ErrorKind::BadName {
            what: "property",
            ..
        }
    ));
}

// --- semantics ---------------------------------------------------------------------------------

/// A tree with a bus node `/bus` holding `props`, and a child `/bus/dev` holding `child`.
fn bus(props: impl FnOnce(&mut FdtWriter), child: impl FnOnce(&mut FdtWriter)) -> Vec<u8> {
    let mut w = FdtWriter::new();
    w.begin_node("")
        .cells("#address-cells", &[2])
        .cells("#size-cells", &[2]);
    w.begin_node("bus");
    props(&mut w);
    w.begin_node("dev");
    child(&mut w);
    w.end_node().end_node().end_node();
    w.finish()
}

fn prop_offset(b: &[u8], node: &str, name: &str) -> usize {
    let t = Tree::parse(b).unwrap();
    t.property(t.find(node).unwrap(), name).unwrap().offset
}

#[test]
fn address_cells_of_five_are_rejected() {
    let b = bus(
        |w| {
            w.cells("#address-cells", &[5]).cells("#size-cells", &[1]);
        },
        |_| {},
    );
    let e = reject(&b);
    assert_eq!(
        e.kind,
        ErrorKind::CellsOutOfRange {
            property: "#address-cells",
            value: 5,
            max: 4
        }
    );
    assert_eq!(e.node.as_deref(), Some("/bus"));
    assert_eq!(e.offset, Some(prop_offset(&b, "/bus", "#address-cells")));
    // 4 is the most.
    let b = bus(
        |w| {
            w.cells("#address-cells", &[4]).cells("#size-cells", &[4]);
        },
        |w| {
            w.cells("reg", &[0, 0, 0, 1, 0, 0, 0, 2]);
        },
    );
    assert!(DeviceTree::parse(&b).is_ok());
    let b = bus(
        |w| {
            w.cells("#size-cells", &[9]);
        },
        |_| {},
    );
    assert!(matches!(
        reject(&b).kind,
        ErrorKind::CellsOutOfRange {
            property: "#size-cells",
            ..
        }
    ));
}

#[test]
fn address_cells_of_zero_under_a_reg_bearing_child() {
    let b = bus(
        |w| {
            w.cells("#address-cells", &[0]).cells("#size-cells", &[0]);
        },
        |w| {
            w.cells("reg", &[]);
        },
    );
    let e = reject(&b);
    assert_eq!(e.kind, ErrorKind::ZeroAddressCells { property: "reg" });
    assert_eq!(e.node.as_deref(), Some("/bus/dev"));
    assert_eq!(e.offset, Some(prop_offset(&b, "/bus/dev", "reg")));
    // #address-cells = <0> without children that have reg is fine (the RISC-V PLIC).
    let b = bus(
        |w| {
            w.cells("#address-cells", &[0]);
        },
        |_| {},
    );
    assert!(DeviceTree::parse(&b).is_ok());
}

#[test]
fn cells_properties_that_are_not_one_cell() {
    let b = bus(
        |w| {
            w.property("#address-cells", &[0, 0, 1]);
        },
        |_| {},
    );
    let e = reject(&b);
    assert_eq!(
        e.kind,
        ErrorKind::BadCellsProperty {
            property: "#address-cells",
            len: 3
        }
    );
    let b = bus(
        |_| {},
        |w| {
            w.cells("interrupt-parent", &[1, 2]);
        },
    );
    assert!(matches!(
        reject(&b).kind,
        ErrorKind::BadCellsProperty {
            property: "interrupt-parent",
            ..
        }
    ));
}

#[test]
fn reg_not_a_whole_number_of_entries() {
    let b = bus(
        |w| {
            w.cells("#address-cells", &[1])
                .cells("#size-cells", &[1])
                .property("ranges", &[]);
        },
        |w| {
            w.cells("reg", &[0x1000, 0x100, 0x2000]);
        },
    );
    let e = reject(&b);
    assert!(
        matches!(
            e.kind,
            ErrorKind::BadLength {
                property: "reg",
                len: 12,
                unit: 8,
                ..
            }
        ),
        "{e}"
    );
    assert_eq!(e.node.as_deref(), Some("/bus/dev"));
}

#[test]
fn reg_past_the_end_of_its_address_space() {
    let b = bus(
        |w| {
            w.cells("#address-cells", &[1]).cells("#size-cells", &[1]);
        },
        |w| {
            w.cells("reg", &[0x1000, 0x100, 0xffff_f000, 0x2000]);
        },
    );
    let e = reject(&b);
    assert_eq!(
        e.kind,
        ErrorKind::Overflow {
            property: "reg",
            entry: 1,
            bits: 32
        }
    );
}

#[test]
fn ranges_that_overflow_64_bits() {
    // Child 0 maps to 0xffff_ffff_ffff_f000 with 0x2000 bytes: past 2^64 on the parent side.
    let b = bus(
        |w| {
            w.cells("#address-cells", &[1])
                .cells("#size-cells", &[1])
                .cells("ranges", &[0, 0xffff_ffff, 0xffff_f000, 0x2000]);
        },
        |_| {},
    );
    let e = reject(&b);
    assert_eq!(
        e.kind,
        ErrorKind::Overflow {
            property: "ranges",
            entry: 0,
            bits: 64
        }
    );
    assert_eq!(e.node.as_deref(), Some("/bus"));
    assert_eq!(e.offset, Some(prop_offset(&b, "/bus", "ranges")));
    // The child side overflowing its 32-bit space.
    let b = bus(
        |w| {
            w.cells("#address-cells", &[1])
                .cells("#size-cells", &[1])
                .cells(
                    "ranges",
                    &[0x1000, 0, 0, 0x1000, 0xffff_f000, 0, 0x10_0000, 0x2000],
                );
        },
        |_| {},
    );
    assert_eq!(
        reject(&b).kind,
        ErrorKind::Overflow {
            property: "ranges",
            entry: 1,
            bits: 32
        }
    );
    // A window that fits, and a reg entry that translates across 2^64.
    let b = bus(
        |w| {
            w.cells("#address-cells", &[1])
                .cells("#size-cells", &[1])
                .cells("ranges", &[0, 0xffff_ffff, 0xffff_f000, 0x1000]);
        },
        |w| {
            w.cells("reg", &[0x0, 0x2000]);
        },
    );
    let e = reject(&b);
    assert_eq!(
        e.kind,
        ErrorKind::Overflow {
            property: "reg",
            entry: 0,
            bits: 64
        }
    );
    assert_eq!(e.node.as_deref(), Some("/bus/dev"));
}

#[test]
fn ranges_not_a_whole_number_of_entries() {
    let b = bus(
        |w| {
            w.cells("#address-cells", &[1])
                .cells("#size-cells", &[1])
                .cells("ranges", &[0, 0, 0x1000]);
        },
        |_| {},
    );
    assert!(matches!(
        reject(&b).kind,
        ErrorKind::BadLength {
            property: "ranges",
            unit: 16,
            ..
        }
    ));
}

/// Two nodes whose interrupt-parent names each other, neither a controller.
#[test]
fn phandle_loop_in_interrupt_parent() {
    let mut w = FdtWriter::new();
    w.begin_node("");
    w.begin_node("a")
        .cells("phandle", &[1])
        .cells("interrupt-parent", &[2])
        .end_node();
    w.begin_node("b")
        .cells("phandle", &[2])
        .cells("interrupt-parent", &[1])
        .end_node();
    w.begin_node("dev")
        .cells("interrupt-parent", &[1])
        .cells("interrupts", &[3])
        .end_node();
    w.end_node();
    let b = w.finish();
    let e = reject(&b);
    assert_eq!(e.kind, ErrorKind::InterruptParentLoop { via: "/a".into() });
    assert_eq!(e.node.as_deref(), Some("/dev"));
    // A node that is its own interrupt parent.
    let mut w = FdtWriter::new();
    w.begin_node("")
        .begin_node("dev")
        .cells("phandle", &[7])
        .cells("interrupt-parent", &[7])
        .cells("interrupts", &[3])
        .end_node()
        .end_node();
    let e = reject(&w.finish());
    assert_eq!(
        e.kind,
        ErrorKind::InterruptParentLoop { via: "/dev".into() }
    );
}

#[test]
fn unknown_and_bad_phandles() {
    let mut w = valid_open();
    w.begin_node("x")
        .cells("interrupt-parent", &[9])
        .cells("interrupts", &[1])
        .end_node();
    let e = reject(&{
        w.end_node();
        w.finish()
    });
    assert_eq!(
        e.kind,
        ErrorKind::UnknownPhandle {
            property: "interrupt-parent",
            phandle: 9
        }
    );
    assert_eq!(e.node.as_deref(), Some("/x"));
    let mut w = valid_open();
    w.begin_node("x").cells("phandle", &[1]).end_node();
    let e = reject(&{
        w.end_node();
        w.finish()
    });
    assert_eq!(
        e.kind,
        ErrorKind::DuplicatePhandle {
            phandle: 1,
            other: "/intc@1000".into()
        }
    );
    let mut w = valid_open();
    w.begin_node("x").cells("phandle", &[0]).end_node();
    assert_eq!(
        reject(&{
            w.end_node();
            w.finish()
        })
        .kind,
        ErrorKind::BadPhandle { value: 0 }
    );
    let mut w = valid_open();
    w.begin_node("x").cells("phandle", &[u32::MAX]).end_node();
    assert_eq!(
        reject(&{
            w.end_node();
            w.finish()
        })
        .kind,
        ErrorKind::BadPhandle { value: u32::MAX }
    );
}

#[test]
fn interrupts_extended_damage() {
    let mut w = valid_open();
    w.begin_node("x")
        .cells("phandle", &[3])
        .end_node()
        .begin_node("y")
        .cells("interrupts-extended", &[3, 1])
        .end_node();
    let e = reject(&{
        w.end_node();
        w.finish()
    });
    assert_eq!(
        e.kind,
        ErrorKind::NotInterruptController {
            property: "interrupts-extended",
            target: "/x".into()
        }
    );
    // A specifier cut short: the controller takes 1 cell, none follows the phandle.
    let mut w = valid_open();
    w.begin_node("y")
        .cells("interrupts-extended", &[1, 4, 1])
        .end_node();
    let e = reject(&{
        w.end_node();
        w.finish()
    });
    assert!(
        matches!(
            e.kind,
            ErrorKind::BadLength {
                property: "interrupts-extended",
                ..
            }
        ),
        "{e}"
    );
    let mut w = valid_open();
    w.begin_node("y")
        .cells("interrupts-extended", &[5, 1])
        .end_node();
    assert!(matches!(
        reject(&{
            w.end_node();
            w.finish()
        })
        .kind,
        ErrorKind::UnknownPhandle { phandle: 5, .. }
    ));
    let mut w = valid_open();
    w.begin_node("y")
        .property("interrupts-extended", &[0, 0, 1])
        .end_node();
    assert!(matches!(
        reject(&{
            w.end_node();
            w.finish()
        })
        .kind,
        ErrorKind::BadLength { .. }
    ));
}

#[test]
fn interrupts_without_a_usable_controller() {
    let mut w = FdtWriter::new();
    w.begin_node("")
        .begin_node("dev")
        .cells("interrupts", &[1])
        .end_node()
        .end_node();
    let e = reject(&w.finish());
    assert_eq!(e.kind, ErrorKind::NoInterruptParent);
    assert_eq!(e.node.as_deref(), Some("/dev"));

    let mut w = FdtWriter::new();
    w.begin_node("")
        .cells("#interrupt-cells", &[0])
        .begin_node("dev")
        .cells("interrupts", &[1])
        .end_node()
        .end_node();
    assert_eq!(
        reject(&w.finish()).kind,
        ErrorKind::ZeroInterruptCells {
            controller: "/".into()
        }
    );

    let mut w = FdtWriter::new();
    w.begin_node("")
        .cells("#interrupt-cells", &[2])
        .begin_node("dev")
        .cells("interrupts", &[1, 2, 3])
        .end_node()
        .end_node();
    assert!(matches!(
        reject(&w.finish()).kind,
        ErrorKind::BadLength {
            property: "interrupts",
            unit: 8,
            ..
        }
    ));

    let mut w = FdtWriter::new();
    w.begin_node("").cells("#interrupt-cells", &[17]).end_node();
    assert!(matches!(
        reject(&w.finish()).kind,
        ErrorKind::CellsOutOfRange {
            property: "#interrupt-cells",
            max: 16,
            ..
        }
    ));
}

#[test]
fn string_properties_that_are_not_strings() {
    let mut w = valid_open();
    w.begin_node("dev@3000")
        .cells("reg", &[0x3000, 0x10])
        .property("compatible", b"ok\0\x01bad\0")
        .end_node();
    let e = reject(&{
        w.end_node();
        w.finish()
    });
    assert_eq!(
        e.kind,
        ErrorKind::BadString {
            property: "compatible"
        }
    );
    assert_eq!(e.node.as_deref(), Some("/dev@3000"));
    let mut w = valid_open();
    w.begin_node("dev@3000")
        .cells("reg", &[0x3000, 0x10])
        .property("status", b"okay")
        .end_node();
    assert_eq!(
        reject(&{
            w.end_node();
            w.finish()
        })
        .kind,
        ErrorKind::BadString { property: "status" }
    );
    let mut w = valid_open();
    w.begin_node("dev@3000")
        .cells("reg", &[0x3000, 0x10])
        .property("reg-names", b"a\0\0")
        .end_node();
    assert_eq!(
        reject(&{
            w.end_node();
            w.finish()
        })
        .kind,
        ErrorKind::BadString {
            property: "reg-names"
        }
    );
}

#[test]
fn a_path_too_long_for_a_description() {
    // Valid as a tree (64 levels of 100-character names), but its path does not fit a
    // DT_PATH string (4096 bytes): describing it fails, with the node named.
    let mut w = FdtWriter::new();
    w.begin_node("")
        .cells("#address-cells", &[1])
        .cells("#size-cells", &[1]);
    let name = "n".repeat(100);
    for _ in 1..MAX_DEPTH - 1 {
        w.begin_node(&name)
            .cells("#address-cells", &[1])
            .cells("#size-cells", &[1])
            .property("ranges", &[]);
    }
    w.begin_node("dev")
        .cells("reg", &[0x1000, 0x10])
        .strings("compatible", &["x"]);
    for _ in 0..MAX_DEPTH {
        w.end_node();
    }
    let b = w.finish();
    let dt = DeviceTree::parse(&b).unwrap();
    let dev = dt.devices().next().unwrap();
    assert!(dev.path.len() > 4096);
    let e = dev.build().unwrap_err();
    assert!(matches!(e.kind, ErrorKind::Describe(_)), "{e}");
    assert_eq!(e.node.as_deref(), Some(dev.path.as_str()));
}

#[test]
fn mutations_never_panic() {
    // A cheap deterministic fuzz pass (the cargo-fuzz target `dtb` goes much further).
    let base = valid().finish();
    let mut seed = 0x9e37_79b9_7f4a_7c15u64;
    let mut next = || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    let mut accepted = 0;
    for _ in 0..20_000 {
        let mut b = base.clone();
        for _ in 0..(next() % 4 + 1) {
            let at = (next() as usize) % b.len();
            b[at] = next() as u8;
        }
        if let Ok(dt) = DeviceTree::parse(&b) {
            accepted += 1;
            for d in dt.devices() {
                if let Ok(bytes) = d.build() {
                    devfd_format::parse(&bytes).unwrap();
                }
            }
        }
    }
    assert!(accepted > 0);
}
