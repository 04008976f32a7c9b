//! The kernel's answer to `VFIO_DEVICE_GET_REGION_INFO`, parsed as untrusted bytes: the fixed
//! `vfio_region_info` and its capability chain (sparse mmap areas, region type, MSI-X
//! mappable). Every offset and count is checked before use; a chain that loops, points into
//! the header or past `argsz`, is misaligned, or whose area count overflows is a located
//! [`CapError`], never a hang or a panic.

use vfio_bindings::bindings::vfio::{
    VFIO_REGION_INFO_CAP_MSIX_MAPPABLE, VFIO_REGION_INFO_CAP_SPARSE_MMAP,
    VFIO_REGION_INFO_CAP_TYPE, VFIO_REGION_INFO_FLAG_CAPS,
};

/// Bytes of `struct vfio_region_info`.
pub const REGION_INFO_LEN: usize = 32;
/// Bytes of `struct vfio_info_cap_header`.
const CAP_HEADER_LEN: usize = 8;
/// Bytes of one `vfio_region_sparse_mmap_area`.
const AREA_LEN: usize = 16;
/// More capabilities than any kernel sends.
const MAX_CAPS: usize = 64;

/// One region as the kernel describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegionInfo {
    /// VFIO region index.
    pub index: u32,
    /// `VFIO_REGION_INFO_FLAG_*`.
    pub flags: u32,
    /// Size in bytes (0: the region is absent).
    pub size: u64,
    /// Offset of the region in the VFIO device fd.
    pub offset: u64,
    /// Its capabilities, in chain order.
    pub caps: Vec<Capability>,
}

impl RegionInfo {
    /// The sparse mmap areas, if the region has that capability.
    pub fn sparse_areas(&self) -> Option<&[(u64, u64)]> {
        self.caps.iter().find_map(|c| match c {
            Capability::SparseMmap(areas) => Some(areas.as_slice()),
            _ => None,
        })
    }
}

/// A region capability.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Capability {
    /// `VFIO_REGION_INFO_CAP_SPARSE_MMAP`: only these (offset, size) areas may be mapped.
    SparseMmap(Vec<(u64, u64)>),
    /// `VFIO_REGION_INFO_CAP_TYPE`: a device-specific region's type and subtype.
    Type {
        /// Type.
        kind: u32,
        /// Subtype.
        subtype: u32,
    },
    /// `VFIO_REGION_INFO_CAP_MSIX_MAPPABLE`: the MSI-X table may be mapped.
    MsixMappable,
    /// A capability this crate does not know.
    Unknown {
        /// Its id.
        id: u16,
        /// Its version.
        version: u16,
    },
}

/// Why a region info answer was rejected; `at` is a byte offset in the answer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CapError {
    /// Shorter than `vfio_region_info`, or than its own `argsz`.
    #[error("region info: {len} bytes, need {need}")]
    Truncated {
        /// Bytes given.
        len: usize,
        /// Bytes needed.
        need: usize,
    },
    /// A capability offset that points into the fixed header.
    #[error("region info: capability at +{at} lies inside the {REGION_INFO_LEN}-byte header")]
    IntoHeader {
        /// The offset.
        at: u32,
    },
    /// A capability, or its data, that runs past `argsz`.
    #[error("region info: capability at +{at} runs past the end (+{end})")]
    PastEnd {
        /// Its offset.
        at: u32,
        /// The end of the answer.
        end: usize,
    },
    /// A capability offset not a multiple of 4.
    #[error("region info: capability at +{at} is misaligned")]
    Misaligned {
        /// The offset.
        at: u32,
    },
    /// A `next` that does not move forward: the chain would loop.
    #[error("region info: capability at +{at} has next +{next}, which does not move forward")]
    Loop {
        /// Offset of the capability.
        at: u32,
        /// Its `next`.
        next: u32,
    },
    /// More capabilities than any kernel sends.
    #[error("region info: more than {MAX_CAPS} capabilities")]
    TooMany,
    /// A sparse mmap area count whose size overflows or exceeds the answer.
    #[error("region info: sparse mmap capability at +{at} claims {count} areas, which do not fit")]
    BadAreaCount {
        /// Offset of the capability.
        at: u32,
        /// The count.
        count: u32,
    },
}

fn u16_at(b: &[u8], at: usize) -> Option<u16> {
    let bytes = b.get(at..at.checked_add(2)?)?;
    Some(u16::from_le_bytes(bytes.try_into().ok()?))
}

fn u32_at(b: &[u8], at: usize) -> Option<u32> {
    let bytes = b.get(at..at.checked_add(4)?)?;
    Some(u32::from_le_bytes(bytes.try_into().ok()?))
}

fn u64_at(b: &[u8], at: usize) -> Option<u64> {
    let bytes = b.get(at..at.checked_add(8)?)?;
    Some(u64::from_le_bytes(bytes.try_into().ok()?))
}

/// Parses a region info answer of `bytes` (the whole buffer the kernel filled).
pub fn parse_region_info(bytes: &[u8]) -> Result<RegionInfo, CapError> {
    let truncated = |need| CapError::Truncated {
        len: bytes.len(),
        need,
    };
    if bytes.len() < REGION_INFO_LEN {
        return Err(truncated(REGION_INFO_LEN));
    }
    let field = |at| u32_at(bytes, at).ok_or(truncated(REGION_INFO_LEN));
    let argsz = field(0)? as usize;
    let flags = field(4)?;
    let index = field(8)?;
    let cap_offset = field(12)?;
    let size = u64_at(bytes, 16).ok_or(truncated(REGION_INFO_LEN))?;
    let offset = u64_at(bytes, 24).ok_or(truncated(REGION_INFO_LEN))?;
    if argsz < REGION_INFO_LEN || argsz > bytes.len() {
        return Err(truncated(argsz.max(REGION_INFO_LEN)));
    }
    // Only the bytes the kernel claims to have written count.
    let answer = bytes.get(..argsz).ok_or(truncated(argsz))?;
    let mut caps = Vec::new();
    if flags & VFIO_REGION_INFO_FLAG_CAPS != 0 {
        let mut at = cap_offset;
        while at != 0 {
            if caps.len() >= MAX_CAPS {
                return Err(CapError::TooMany);
            }
            let (cap, next) = parse_cap(answer, at)?;
            caps.push(cap);
            if next != 0 && next <= at {
                return Err(CapError::Loop { at, next });
            }
            at = next;
        }
    }
    Ok(RegionInfo {
        index,
        flags,
        size,
        offset,
        caps,
    })
}

/// One capability at `at`; returns it and its `next`.
fn parse_cap(answer: &[u8], at: u32) -> Result<(Capability, u32), CapError> {
    let start = at as usize;
    if start < REGION_INFO_LEN {
        return Err(CapError::IntoHeader { at });
    }
    if !start.is_multiple_of(4) {
        return Err(CapError::Misaligned { at });
    }
    let past_end = CapError::PastEnd {
        at,
        end: answer.len(),
    };
    let header_end = start.checked_add(CAP_HEADER_LEN).ok_or(past_end.clone())?;
    if header_end > answer.len() {
        return Err(past_end);
    }
    let id = u16_at(answer, start).ok_or(past_end.clone())?;
    let version = u16_at(answer, start + 2).ok_or(past_end.clone())?;
    let next = u32_at(answer, start + 4).ok_or(past_end.clone())?;
    let cap = match u32::from(id) {
        VFIO_REGION_INFO_CAP_SPARSE_MMAP => {
            let count = u32_at(answer, header_end).ok_or(past_end.clone())?;
            let areas_at = header_end.checked_add(8).ok_or(past_end.clone())?;
            let bad = CapError::BadAreaCount { at, count };
            let len = (count as usize).checked_mul(AREA_LEN).ok_or(bad.clone())?;
            let end = areas_at.checked_add(len).ok_or(bad.clone())?;
            let table = answer.get(areas_at..end).ok_or(bad)?;
            let areas = table
                .chunks_exact(AREA_LEN)
                .filter_map(|a| Some((u64_at(a, 0)?, u64_at(a, 8)?)))
                .collect();
            Capability::SparseMmap(areas)
        }
        VFIO_REGION_INFO_CAP_TYPE => {
            let kind = u32_at(answer, header_end).ok_or(past_end.clone())?;
            let subtype = u32_at(answer, header_end + 4).ok_or(past_end)?;
            Capability::Type { kind, subtype }
        }
        VFIO_REGION_INFO_CAP_MSIX_MAPPABLE => Capability::MsixMappable,
        _ => Capability::Unknown { id, version },
    };
    Ok((cap, next))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A region info answer with the given capability bytes appended at +32.
    fn answer(flags: u32, cap_offset: u32, caps: &[u8]) -> Vec<u8> {
        let mut b = Vec::new();
        let argsz = (REGION_INFO_LEN + caps.len()) as u32;
        for v in [argsz, flags, 0, cap_offset] {
            b.extend_from_slice(&v.to_le_bytes());
        }
        b.extend_from_slice(&0x10_0000u64.to_le_bytes());
        b.extend_from_slice(&0u64.to_le_bytes());
        b.extend_from_slice(caps);
        b
    }

    fn cap(id: u16, next: u32, body: &[u8]) -> Vec<u8> {
        let mut c = Vec::new();
        c.extend_from_slice(&id.to_le_bytes());
        c.extend_from_slice(&1u16.to_le_bytes());
        c.extend_from_slice(&next.to_le_bytes());
        c.extend_from_slice(body);
        c
    }

    fn sparse(next: u32, areas: &[(u64, u64)], count: u32) -> Vec<u8> {
        let mut body = Vec::new();
        body.extend_from_slice(&count.to_le_bytes());
        body.extend_from_slice(&0u32.to_le_bytes());
        for (o, s) in areas {
            body.extend_from_slice(&o.to_le_bytes());
            body.extend_from_slice(&s.to_le_bytes());
        }
        cap(VFIO_REGION_INFO_CAP_SPARSE_MMAP as u16, next, &body)
    }

    const CAPS: u32 = VFIO_REGION_INFO_FLAG_CAPS;

    #[test]
    fn a_chain_of_every_known_capability() {
        let mut caps = sparse(32 + 48, &[(0, 0x1000), (0x3000, 0x1000)], 2);
        caps.extend(cap(
            VFIO_REGION_INFO_CAP_TYPE as u16,
            32 + 48 + 16,
            &[1, 0, 0, 0, 2, 0, 0, 0],
        ));
        caps.extend(cap(VFIO_REGION_INFO_CAP_MSIX_MAPPABLE as u16, 0, &[]));
        let info = parse_region_info(&answer(CAPS | 7, 32, &caps)).unwrap();
        assert_eq!(info.size, 0x10_0000);
        assert_eq!(
            info.caps,
            [
                Capability::SparseMmap(vec![(0, 0x1000), (0x3000, 0x1000)]),
                Capability::Type {
                    kind: 1,
                    subtype: 2
                },
                Capability::MsixMappable,
            ]
        );
        assert_eq!(info.sparse_areas().unwrap().len(), 2);
    }

    #[test]
    fn no_caps_flag_means_the_offset_is_ignored() {
        let info = parse_region_info(&answer(7, 4, &[])).unwrap();
        assert!(info.caps.is_empty());
    }

    #[test]
    fn each_kind_of_damage_is_located() {
        let t = |b: Vec<u8>| parse_region_info(&b).unwrap_err();
        assert!(matches!(
            parse_region_info(&[0; 16]),
            Err(CapError::Truncated { len: 16, .. })
        ));
        // argsz larger than the buffer.
        let mut b = answer(0, 0, &[]);
        b[0] = 200;
        assert!(matches!(t(b), CapError::Truncated { .. }));
        assert_eq!(t(answer(CAPS, 8, &[0; 16])), CapError::IntoHeader { at: 8 });
        assert_eq!(
            t(answer(CAPS, 34, &[0; 16])),
            CapError::Misaligned { at: 34 }
        );
        assert_eq!(
            t(answer(CAPS, 40, &[0; 12])),
            CapError::PastEnd { at: 40, end: 44 }
        );
        // Self-loop, and a next that goes backwards.
        let self_loop = cap(VFIO_REGION_INFO_CAP_MSIX_MAPPABLE as u16, 32, &[]);
        assert_eq!(
            t(answer(CAPS, 32, &self_loop)),
            CapError::Loop { at: 32, next: 32 }
        );
        let mut back = cap(VFIO_REGION_INFO_CAP_MSIX_MAPPABLE as u16, 40, &[]);
        back.extend(cap(VFIO_REGION_INFO_CAP_MSIX_MAPPABLE as u16, 32, &[]));
        assert_eq!(
            t(answer(CAPS, 32, &back)),
            CapError::Loop { at: 40, next: 32 }
        );
        // A next past argsz.
        let far = cap(VFIO_REGION_INFO_CAP_MSIX_MAPPABLE as u16, 4096, &[]);
        assert!(matches!(
            t(answer(CAPS, 32, &far)),
            CapError::PastEnd { at: 4096, .. }
        ));
        // count × 16 overflows, or exceeds the answer.
        let huge = sparse(0, &[(0, 0x1000)], u32::MAX);
        assert_eq!(
            t(answer(CAPS, 32, &huge)),
            CapError::BadAreaCount {
                at: 32,
                count: u32::MAX
            }
        );
        let short = sparse(0, &[(0, 0x1000)], 2);
        assert!(matches!(
            t(answer(CAPS, 32, &short)),
            CapError::BadAreaCount { count: 2, .. }
        ));
    }

    proptest::proptest! {
        #[test]
        fn any_bytes_parse_or_fail_cleanly(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..256)) {
            let _ = parse_region_info(&bytes);
        }
    }
}
