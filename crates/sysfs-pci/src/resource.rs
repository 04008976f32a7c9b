//! The sysfs `resource` file: what the kernel made of a function's BARs, ROM and (for
//! bridges) windows, one line per resource, `start end flags`, each `0x%016llx`
//! (drivers/pci/pci-sysfs.c `resource_show`). Lines 0–5 are the BARs, line 6 the expansion
//! ROM; an absent resource is all zeros.
//!
//! The kernel writes the file, but devfd parses it as untrusted text anyway (a fake tree in
//! a test, a damaged copy): every problem is an error located by line and byte.

use crate::error::{ResourceError, ResourceErrorKind};

/// `IORESOURCE_IO`: an I/O-port resource.
pub const IORESOURCE_IO: u64 = 0x0000_0100;
/// `IORESOURCE_MEM`: a memory resource.
pub const IORESOURCE_MEM: u64 = 0x0000_0200;
/// `IORESOURCE_PREFETCH`: prefetchable memory.
pub const IORESOURCE_PREFETCH: u64 = 0x0000_2000;
/// `IORESOURCE_READONLY`: read-only (the expansion ROM).
pub const IORESOURCE_READONLY: u64 = 0x0000_4000;
/// `IORESOURCE_MEM_64`: a 64-bit memory BAR.
pub const IORESOURCE_MEM_64: u64 = 0x0010_0000;

/// Line of the expansion ROM in the file.
pub const ROM_LINE: usize = 6;
/// More lines than any kernel writes (it writes 7, or up to 17 for bridges with SR-IOV).
pub const MAX_LINES: usize = 64;

/// One resource line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Resource {
    /// First address (bus address as the kernel shows it to user space).
    pub start: u64,
    /// Last address (inclusive).
    pub end: u64,
    /// `IORESOURCE_*` flags; the low byte holds the BAR register's type bits.
    pub flags: u64,
}

impl Resource {
    /// Size in bytes: 0 for an absent resource (start and end 0).
    pub fn size(&self) -> u64 {
        if self.start == 0 && self.end == 0 {
            return 0;
        }
        // Checked by the parser: end >= start, and the size fits.
        self.end
            .checked_sub(self.start)
            .and_then(|d| d.checked_add(1))
            .unwrap_or(0)
    }
}

/// Parses a `resource` file.
pub fn parse_resource(text: &[u8]) -> Result<Vec<Resource>, ResourceError> {
    let mut out = Vec::new();
    let mut line_start = 0usize;
    let body = text.strip_suffix(b"\n").unwrap_or(text);
    if body.is_empty() {
        return Ok(out);
    }
    for (n, line) in body.split(|&b| b == b'\n').enumerate() {
        let number = n.saturating_add(1);
        if n >= MAX_LINES {
            return Err(ResourceError {
                line: number,
                offset: line_start,
                kind: ResourceErrorKind::TooManyLines { max: MAX_LINES },
            });
        }
        out.push(parse_line(line, number, line_start)?);
        line_start = line_start.saturating_add(line.len()).saturating_add(1);
    }
    Ok(out)
}

fn parse_line(line: &[u8], number: usize, line_start: usize) -> Result<Resource, ResourceError> {
    let fail = |offset, kind| ResourceError {
        line: number,
        offset,
        kind,
    };
    let mut fields = [0u64; 3];
    let mut found = 0usize;
    let mut pos = 0usize;
    for word in line.split(|b| *b == b' ' || *b == b'\t') {
        let at = line_start.saturating_add(pos);
        pos = pos.saturating_add(word.len()).saturating_add(1);
        if word.is_empty() {
            continue;
        }
        let Some(slot) = fields.get_mut(found) else {
            return Err(fail(line_start, ResourceErrorKind::FieldCount { found: 4 }));
        };
        *slot = hex(word).ok_or_else(|| fail(at, ResourceErrorKind::NotHex))?;
        found = found.saturating_add(1);
    }
    if found != 3 {
        return Err(fail(line_start, ResourceErrorKind::FieldCount { found }));
    }
    let [start, end, flags] = fields;
    let r = Resource { start, end, flags };
    if !(start == 0 && end == 0) {
        if end < start {
            return Err(fail(line_start, ResourceErrorKind::EndBeforeStart));
        }
        if start == 0 && end == u64::MAX {
            return Err(fail(line_start, ResourceErrorKind::TooLarge));
        }
    }
    Ok(r)
}

/// `0x` and 1–16 hexadecimal digits.
fn hex(word: &[u8]) -> Option<u64> {
    let digits = word.strip_prefix(b"0x")?;
    if digits.is_empty() || digits.len() > 16 || !digits.iter().all(u8::is_ascii_hexdigit) {
        return None;
    }
    u64::from_str_radix(std::str::from_utf8(digits).ok()?, 16).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    const VIRTIO: &[u8] = b"0x0000004000000000 0x000000400007ffff 0x0000000000140204
0x0000000000000000 0x0000000000000000 0x0000000000000000
0x0000000000000000 0x0000000000000000 0x0000000000000000
0x0000000000000000 0x0000000000000000 0x0000000000000000
0x0000000000000000 0x0000000000000000 0x0000000000000000
0x0000000000000000 0x0000000000000000 0x0000000000000000
0x00000000fe800000 0x00000000fe83ffff 0x0000000000046200
";

    #[test]
    fn a_kernel_file() {
        let r = parse_resource(VIRTIO).unwrap();
        assert_eq!(r.len(), 7);
        assert_eq!(r[0].size(), 512 * 1024);
        assert_eq!(r[0].flags & IORESOURCE_MEM_64, IORESOURCE_MEM_64);
        assert_eq!(r[1].size(), 0);
        assert_eq!(r[ROM_LINE].size(), 256 * 1024);
        assert_eq!(r[ROM_LINE].flags & IORESOURCE_READONLY, IORESOURCE_READONLY);
        assert!(parse_resource(b"").unwrap().is_empty());
        // No final newline, tabs, short numbers: accepted.
        let r = parse_resource(b"0xc000\t0xc01f 0x101").unwrap();
        assert_eq!((r[0].size(), r[0].flags), (32, 0x101));
    }

    #[test]
    fn damage_is_located() {
        let e = parse_resource(b"0x0 0x0 0x0\n0x10 0xf 0x200\n").unwrap_err();
        assert_eq!(
            (e.line, e.offset, e.kind),
            (2, 12, ResourceErrorKind::EndBeforeStart)
        );
        let e = parse_resource(b"0x0 0x0\n").unwrap_err();
        assert_eq!(e.kind, ResourceErrorKind::FieldCount { found: 2 });
        let e = parse_resource(b"0x0 0x0 0x0 0x0\n").unwrap_err();
        assert_eq!(e.kind, ResourceErrorKind::FieldCount { found: 4 });
        let e = parse_resource(b"0x0 0x0 0x0\n0x1 zz 0x0\n").unwrap_err();
        assert_eq!(
            (e.line, e.offset, e.kind),
            (2, 16, ResourceErrorKind::NotHex)
        );
        for bad in [
            &b"0x 0x1 0x0"[..],
            b"0x+1 0x2 0x0",
            b"1 2 3",
            b"0x00000000000000001 0x2 0",
        ] {
            assert_eq!(
                parse_resource(bad).unwrap_err().kind,
                ResourceErrorKind::NotHex
            );
        }
        let e = parse_resource(b"0x0 0xffffffffffffffff 0x200").unwrap_err();
        assert_eq!(e.kind, ResourceErrorKind::TooLarge);
        assert!(parse_resource(b"\n").unwrap().is_empty());
        let e = parse_resource(b"\n\n").unwrap_err();
        assert_eq!(e.kind, ResourceErrorKind::FieldCount { found: 0 });
        let many = b"0x0 0x0 0x0\n".repeat(MAX_LINES + 1);
        let e = parse_resource(&many).unwrap_err();
        assert_eq!(e.line, MAX_LINES + 1);
        assert!(e.to_string().starts_with("line 65"), "{e}");
    }
}
