//! The flattened device tree blob (Devicetree Specification v0.4, chapter 5): the header, the
//! memory reservation map, the structure block and the strings block, checked the way libfdt's
//! `fdt_check_header` and `fdt_check_full` do, plus the block-overlap and nesting checks they
//! leave out, with overflow-safe arithmetic throughout. The result is a [`Tree`] that borrows
//! names and values from the blob.

use crate::error::{Error, ErrorKind};
use crate::tree::{NONE, RawNode, Tree};

/// The magic at offset 0 of every blob.
pub const FDT_MAGIC: u32 = 0xd00d_feed;
/// Length of a version-17 header.
pub const HEADER_LEN: usize = 40;
/// The blob version this reader implements (and writes).
pub const VERSION: u32 = 17;
/// Deepest node nesting accepted (the root is depth 1). Real trees stay below 10; libfdt's
/// own limit for path lookups is about the same order.
pub const MAX_DEPTH: usize = 64;

pub(crate) const FDT_BEGIN_NODE: u32 = 1;
pub(crate) const FDT_END_NODE: u32 = 2;
pub(crate) const FDT_PROP: u32 = 3;
pub(crate) const FDT_NOP: u32 = 4;
pub(crate) const FDT_END: u32 = 9;

/// The fields of the blob header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    /// `totalsize`: bytes of the blob.
    pub totalsize: u32,
    /// Offset of the structure block.
    pub off_dt_struct: u32,
    /// Offset of the strings block.
    pub off_dt_strings: u32,
    /// Offset of the memory reservation map.
    pub off_mem_rsvmap: u32,
    /// `version`.
    pub version: u32,
    /// `last_comp_version`.
    pub last_comp_version: u32,
    /// `boot_cpuid_phys`.
    pub boot_cpuid_phys: u32,
    /// `size_dt_strings`.
    pub size_dt_strings: u32,
    /// `size_dt_struct`.
    pub size_dt_struct: u32,
}

pub(crate) fn be32(bytes: &[u8], at: usize) -> Option<u32> {
    let b = bytes.get(at..at.checked_add(4)?)?;
    Some(u32::from_be_bytes(b.try_into().ok()?))
}

fn be64(bytes: &[u8], at: usize) -> Option<u64> {
    let b = bytes.get(at..at.checked_add(8)?)?;
    Some(u64::from_be_bytes(b.try_into().ok()?))
}

/// Rounds up to a multiple of 4 (the structure block's token alignment).
fn align4(n: usize) -> Option<usize> {
    Some(n.checked_add(3)? & !3)
}

/// Reads and checks the header: magic, version, `totalsize`, the three blocks inside the
/// blob, aligned and not overlapping (the reservation map measured to its (0, 0) entry).
/// Returns the header and the reservation entries.
pub(crate) fn header(bytes: &[u8]) -> Result<(Header, Vec<(u64, u64)>), Error> {
    let short = |needed| {
        let kind = ErrorKind::TooShort {
            needed,
            available: bytes.len(),
        };
        Error::at(kind, bytes.len())
    };
    let magic = be32(bytes, 0).ok_or_else(|| short(4))?;
    if magic != FDT_MAGIC {
        return Err(Error::at(ErrorKind::BadMagic { found: magic }, 0));
    }
    let field = |at: usize| be32(bytes, at).ok_or_else(|| short(HEADER_LEN));
    let version = field(20)?;
    let last_comp_version = field(24)?;
    if version < VERSION || last_comp_version > VERSION || last_comp_version > version {
        let at = if version < VERSION { 20 } else { 24 };
        let kind = ErrorKind::BadVersion {
            version,
            last_comp_version,
        };
        return Err(Error::at(kind, at));
    }
    let h = Header {
        totalsize: field(4)?,
        off_dt_struct: field(8)?,
        off_dt_strings: field(12)?,
        off_mem_rsvmap: field(16)?,
        version,
        last_comp_version,
        boot_cpuid_phys: field(28)?,
        size_dt_strings: field(32)?,
        size_dt_struct: field(36)?,
    };
    let total = h.totalsize as usize;
    if total < HEADER_LEN {
        let kind = ErrorKind::TotalSizeTooSmall {
            totalsize: h.totalsize,
            header: HEADER_LEN,
        };
        return Err(Error::at(kind, 4));
    }
    if total > bytes.len() {
        let kind = ErrorKind::Truncated {
            totalsize: h.totalsize,
            available: bytes.len(),
        };
        return Err(Error::at(kind, 4));
    }
    let bytes = bytes.get(..total).unwrap_or_default();

    // Each block lies in [HEADER_LEN, totalsize], computed without overflow.
    let inside = |block, offset: u32, size: u32, at: usize| {
        let end = u64::from(offset).saturating_add(u64::from(size));
        if (offset as usize) < HEADER_LEN || end > u64::from(h.totalsize) {
            let kind = ErrorKind::BlockOutside {
                block,
                offset,
                size,
                totalsize: h.totalsize,
            };
            return Err(Error::at(kind, at));
        }
        Ok(())
    };
    let aligned = |block, value: u32, align: u32, at: usize| {
        if value.is_multiple_of(align) {
            Ok(())
        } else {
            Err(Error::at(
                ErrorKind::BlockMisaligned {
                    block,
                    value,
                    align,
                },
                at,
            ))
        }
    };
    const RSV: &str = "memory reservation";
    const STRUCT: &str = "structure";
    const STRINGS: &str = "strings";
    inside(RSV, h.off_mem_rsvmap, 0, 16)?;
    aligned(RSV, h.off_mem_rsvmap, 8, 16)?;
    inside(STRUCT, h.off_dt_struct, h.size_dt_struct, 8)?;
    aligned(STRUCT, h.off_dt_struct, 4, 8)?;
    aligned(STRUCT, h.size_dt_struct, 4, 36)?;
    inside(STRINGS, h.off_dt_strings, h.size_dt_strings, 12)?;

    // The reservation map runs to its (0, 0) entry, which must be inside the blob.
    let mut reserved = Vec::new();
    let mut at = h.off_mem_rsvmap as usize;
    loop {
        let (Some(address), Some(size)) = (be64(bytes, at), be64(bytes, at.saturating_add(8)))
        else {
            return Err(Error::at(ErrorKind::ReserveMapUnterminated, at));
        };
        at = at.saturating_add(16);
        if address == 0 && size == 0 {
            break;
        }
        reserved.push((address, size));
    }
    let rsv_len = at.saturating_sub(h.off_mem_rsvmap as usize) as u32;

    // No two blocks share a byte (empty blocks overlap nothing).
    let blocks = [
        (RSV, h.off_mem_rsvmap, rsv_len, 16),
        (STRUCT, h.off_dt_struct, h.size_dt_struct, 8),
        (STRINGS, h.off_dt_strings, h.size_dt_strings, 12),
    ];
    for (i, a) in blocks.iter().enumerate() {
        for b in blocks.iter().skip(i.saturating_add(1)) {
            let (a_end, b_end) = (
                u64::from(a.1).saturating_add(u64::from(a.2)),
                u64::from(b.1).saturating_add(u64::from(b.2)),
            );
            let overlap = a.2 != 0 && b.2 != 0 && u64::from(a.1) < b_end && u64::from(b.1) < a_end;
            if overlap {
                let (first, second) = if a.1 <= b.1 { (a, b) } else { (b, a) };
                let kind = ErrorKind::BlocksOverlap {
                    first: first.0,
                    second: second.0,
                };
                return Err(Error::at(kind, second.3));
            }
        }
    }
    Ok((h, reserved))
}

/// A node or property name: non-empty printable ASCII; node names also without `/`.
fn name_ok(name: &[u8], node: bool) -> bool {
    !name.is_empty()
        && name
            .iter()
            .all(|&b| (0x21..0x7f).contains(&b) && !(node && b == b'/'))
}

fn bad_name(what: &'static str, name: &[u8], at: usize) -> Error {
    let kind = ErrorKind::BadName {
        what,
        name: String::from_utf8_lossy(name).into_owned(),
    };
    Error::at(kind, at)
}

/// An open node during the walk.
struct Open {
    id: u32,
    /// Its last child so far, to link the next one.
    last_child: u32,
    /// A subnode was seen, so no more properties may follow.
    has_child: bool,
}

/// Parses and checks a whole blob.
pub(crate) fn parse(bytes: &[u8]) -> Result<Tree<'_>, Error> {
    let (header, reserved) = header(bytes)?;
    let strings_start = header.off_dt_strings as usize;
    let strings = bytes
        .get(strings_start..strings_start.saturating_add(header.size_dt_strings as usize))
        .unwrap_or_default();
    let start = header.off_dt_struct as usize;
    let end = start.saturating_add(header.size_dt_struct as usize);
    // Everything below reads only inside [start, end): the structure block.
    let block = bytes.get(..end).unwrap_or_default();

    // A structure block of n bytes has at most n / 8 nodes (BEGIN_NODE + END_NODE).
    let estimate = (header.size_dt_struct as usize) >> 5;
    let mut nodes: Vec<RawNode<'_>> = Vec::with_capacity(estimate);
    let mut props = Vec::with_capacity(estimate.saturating_mul(3));
    let mut stack: Vec<Open> = Vec::with_capacity(16);
    let mut scratch: Vec<&str> = Vec::new();
    let mut root_done = false;
    let mut pos = start;
    let truncated = |what, at| Error::at(ErrorKind::StructTruncated { what }, at);
    loop {
        let Some(token) = be32(block, pos) else {
            if pos >= end {
                return Err(Error::at(ErrorKind::MissingEnd, end));
            }
            return Err(truncated("a token", pos));
        };
        let here = pos;
        let after = pos.saturating_add(4);
        match token {
            FDT_BEGIN_NODE => {
                let rest = block.get(after..).unwrap_or_default();
                let Some(len) = rest.iter().position(|&b| b == 0) else {
                    return Err(Error::at(ErrorKind::UnterminatedName, after));
                };
                let name_bytes = rest.get(..len).unwrap_or_default();
                let is_root = stack.is_empty();
                if is_root {
                    if root_done {
                        return Err(Error::at(ErrorKind::ExtraRoot, here));
                    }
                    if !name_bytes.is_empty() {
                        return Err(Error::at(ErrorKind::NoRoot, here));
                    }
                } else if !name_ok(name_bytes, true) {
                    return Err(bad_name("node", name_bytes, after));
                }
                if stack.len() >= MAX_DEPTH {
                    return Err(Error::at(ErrorKind::TooDeep { max: MAX_DEPTH }, here));
                }
                let name = std::str::from_utf8(name_bytes).unwrap_or_default();
                let id = nodes.len() as u32;
                let parent = match stack.last_mut() {
                    Some(open) => {
                        if !open.has_child {
                            open.has_child = true;
                            dup_props(&props, nodes.get(open.id as usize), &mut scratch)?;
                        }
                        if let Some(prev) = nodes.get_mut(open.last_child as usize) {
                            prev.next_sibling = id;
                        } else if let Some(p) = nodes.get_mut(open.id as usize) {
                            p.first_child = id;
                        }
                        open.last_child = id;
                        open.id
                    }
                    None => NONE,
                };
                nodes.push(RawNode {
                    name,
                    parent,
                    first_child: NONE,
                    next_sibling: NONE,
                    props_start: props.len() as u32,
                    props_end: props.len() as u32,
                    offset: here as u32,
                    depth: stack.len() as u8,
                });
                stack.push(Open {
                    id,
                    last_child: NONE,
                    has_child: false,
                });
                pos = after
                    .checked_add(len)
                    .and_then(|n| n.checked_add(1))
                    .and_then(align4)
                    .ok_or_else(|| truncated("a node name", after))?;
            }
            FDT_END_NODE => {
                let Some(open) = stack.pop() else {
                    return Err(Error::at(ErrorKind::UnexpectedEndNode, here));
                };
                if !open.has_child {
                    dup_props(&props, nodes.get(open.id as usize), &mut scratch)?;
                }
                dup_children(&nodes, open.id, &mut scratch)?;
                if stack.is_empty() {
                    root_done = true;
                }
                pos = after;
            }
            FDT_PROP => {
                let (Some(len), Some(nameoff)) =
                    (be32(block, after), be32(block, after.saturating_add(4)))
                else {
                    return Err(truncated("a property header", here));
                };
                let value_at = after.saturating_add(8);
                let value = value_at
                    .checked_add(len as usize)
                    .and_then(|value_end| block.get(value_at..value_end))
                    .ok_or_else(|| truncated("a property value", value_at))?;
                let name_bytes = match strings.get(nameoff as usize..) {
                    Some(tail) if nameoff < header.size_dt_strings => {
                        let Some(n) = tail.iter().position(|&b| b == 0) else {
                            let kind = ErrorKind::UnterminatedString { nameoff };
                            return Err(Error::at(kind, after.saturating_add(4)));
                        };
                        tail.get(..n).unwrap_or_default()
                    }
                    _ => {
                        let kind = ErrorKind::NameOffsetOutside {
                            nameoff,
                            size: header.size_dt_strings,
                        };
                        return Err(Error::at(kind, after.saturating_add(4)));
                    }
                };
                if !name_ok(name_bytes, false) {
                    return Err(bad_name("property", name_bytes, here));
                }
                let name = std::str::from_utf8(name_bytes).unwrap_or_default();
                let Some(open) = stack.last() else {
                    return Err(Error::at(ErrorKind::PropertyOutsideNode, here));
                };
                if open.has_child {
                    let kind = ErrorKind::PropertyAfterSubnode { name: name.into() };
                    return Err(Error::at(kind, here));
                }
                props.push(crate::tree::Property {
                    name,
                    value,
                    offset: here,
                });
                if let Some(node) = nodes.get_mut(open.id as usize) {
                    node.props_end = props.len() as u32;
                }
                pos = value_at
                    .checked_add(len as usize)
                    .and_then(align4)
                    .ok_or_else(|| truncated("a property value", value_at))?;
            }
            FDT_NOP => pos = after,
            FDT_END => {
                if !stack.is_empty() {
                    let kind = ErrorKind::UnclosedNode { open: stack.len() };
                    return Err(Error::at(kind, here));
                }
                if !root_done {
                    return Err(Error::at(ErrorKind::NoRoot, here));
                }
                if after != end {
                    let kind = ErrorKind::TrailingData {
                        bytes: end.saturating_sub(after),
                    };
                    return Err(Error::at(kind, after));
                }
                break;
            }
            token => return Err(Error::at(ErrorKind::UnknownToken { token }, here)),
        }
    }
    Ok(Tree::new(bytes, header, reserved, nodes, props))
}

/// Rejects two properties of `node` with the same name.
fn dup_props<'a>(
    props: &[crate::tree::Property<'a>],
    node: Option<&RawNode<'a>>,
    scratch: &mut Vec<&'a str>,
) -> Result<(), Error> {
    let Some(node) = node else { return Ok(()) };
    let list = props
        .get(node.props_start as usize..node.props_end as usize)
        .unwrap_or_default();
    if list.len() < 2 {
        return Ok(());
    }
    scratch.clear();
    scratch.extend(list.iter().map(|p| p.name));
    scratch.sort_unstable();
    if let Some(w) = scratch.windows(2).find(|w| w.first() == w.last()) {
        let name = w.first().copied().unwrap_or_default();
        let at = list
            .iter()
            .filter(|p| p.name == name)
            .nth(1)
            .map_or(node.offset as usize, |p| p.offset);
        let kind = ErrorKind::DuplicateProperty { name: name.into() };
        return Err(Error::at(kind, at));
    }
    Ok(())
}

/// Rejects two children of `parent` with the same name: a path must name one node.
fn dup_children<'a>(
    nodes: &[RawNode<'a>],
    parent: u32,
    scratch: &mut Vec<&'a str>,
) -> Result<(), Error> {
    let Some(p) = nodes.get(parent as usize) else {
        return Ok(());
    };
    scratch.clear();
    let mut child = p.first_child;
    while let Some(c) = nodes.get(child as usize) {
        scratch.push(c.name);
        child = c.next_sibling;
    }
    if scratch.len() < 2 {
        return Ok(());
    }
    scratch.sort_unstable();
    if let Some(w) = scratch.windows(2).find(|w| w.first() == w.last()) {
        let name = w.first().copied().unwrap_or_default();
        let mut seen = false;
        let mut child = p.first_child;
        let mut at = p.offset as usize;
        while let Some(c) = nodes.get(child as usize) {
            if c.name == name {
                if seen {
                    at = c.offset as usize;
                    break;
                }
                seen = true;
            }
            child = c.next_sibling;
        }
        let kind = ErrorKind::DuplicateNode { name: name.into() };
        return Err(Error::at(kind, at));
    }
    Ok(())
}
