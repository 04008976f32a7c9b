//! Mapping `REGION_MMAP` regions (SPEC.md §6.5): the device file itself, or `D.rN`.

use std::fs::{File, OpenOptions};
use std::io;
use std::os::fd::AsFd;
use std::path::Path;

use crate::info::{AsRegion, RegionInfo};
use crate::sys::{self, Refused};
use crate::{ClientError, DeviceFile, Op};

/// A shared mapping of (an area of) a region, unmapped on drop.
///
/// The memory is shared with the device and other processes, which change it at any time,
/// so it is never lent out as `&[u8]`: every access is a bounds-checked volatile load or
/// store ([`Mapping::read_u32`], [`Mapping::copy_to`], …). Offsets are relative to the
/// start of the mapping, which is [`Mapping::region_offset`] bytes into the region.
///
/// As with any mapped file, a backing file truncated while mapped raises `SIGBUS` on access;
/// [`DeviceFile::map`] refuses to map past the end of a plain file.
#[derive(Debug)]
pub struct Mapping {
    mmap: sys::Mmap,
    region: u32,
    region_offset: u64,
    /// Bus address of the mapping's first byte, for a DMA window.
    bus_address: Option<u64>,
}

macro_rules! mapping_accessors {
    ($($ty:ty, $read:ident, $write:ident;)*) => {
        impl Mapping {
            $(
                #[doc = concat!(
                    "Loads a little-endian `", stringify!($ty), "` at `offset` with one ",
                    "volatile access. It must be inside the mapping and naturally aligned."
                )]
                pub fn $read(&self, offset: usize) -> Result<$ty, ClientError> {
                    let v = self.mmap.read::<$ty>(offset);
                    v.map(<$ty>::from_le).map_err(|e| self.refused(e, offset, size_of::<$ty>(), Op::Read))
                }

                #[doc = concat!(
                    "Stores a little-endian `", stringify!($ty), "` at `offset` with one ",
                    "volatile access. It must be inside the mapping and naturally aligned."
                )]
                pub fn $write(&self, offset: usize, value: $ty) -> Result<(), ClientError> {
                    self.mmap
                        .write::<$ty>(offset, value.to_le())
                        .map_err(|e| self.refused(e, offset, size_of::<$ty>(), Op::Write))
                }
            )*
        }
    };
}

mapping_accessors! {
    u8, read_u8, write_u8;
    u16, read_u16, write_u16;
    u32, read_u32, write_u32;
    u64, read_u64, write_u64;
}

impl Mapping {
    /// The bus (IO virtual) address the device reaches byte `offset` of this mapping at, for
    /// a mapping of a DMA window (SPEC.md §4.19): what a driver programs into the device's DMA
    /// registers. `None` outside the mapping or for other regions.
    pub fn bus_address(&self, offset: usize) -> Option<u64> {
        if offset >= self.len() {
            return None;
        }
        self.bus_address?.checked_add(offset as u64)
    }

    /// The offset in this mapping of bus address `address`, if the window maps it.
    pub fn offset_of_bus_address(&self, address: u64) -> Option<usize> {
        let offset = usize::try_from(address.checked_sub(self.bus_address?)?).ok()?;
        (offset < self.len()).then_some(offset)
    }

    /// Length of the mapping in bytes.
    pub fn len(&self) -> usize {
        self.mmap.len()
    }

    /// Always false: mappings are never empty.
    pub fn is_empty(&self) -> bool {
        self.mmap.len() == 0
    }

    /// Index of the mapped region.
    pub fn region(&self) -> u32 {
        self.region
    }

    /// Where the mapping starts within its region (the sparse area's offset, or 0).
    pub fn region_offset(&self) -> u64 {
        self.region_offset
    }

    /// Whether the mapping may be read (`PROT_READ`: the region has `REGION_READ`).
    pub fn is_readable(&self) -> bool {
        self.mmap.readable()
    }

    /// Whether the mapping may be written (`PROT_WRITE`: the region has `REGION_WRITE` and
    /// the file was opened for writing).
    pub fn is_writable(&self) -> bool {
        self.mmap.writable()
    }

    /// The first byte of the mapping, for callers that do their own (volatile) accesses.
    pub fn as_ptr(&self) -> *const u8 {
        self.mmap.as_ptr()
    }

    /// The first byte of the mapping, mutable.
    pub fn as_mut_ptr(&self) -> *mut u8 {
        self.mmap.as_ptr()
    }

    /// Copies `dst.len()` bytes at `offset` into `dst`, with volatile loads of at most
    /// 8 naturally aligned bytes each. Nothing is copied if the range does not fit.
    pub fn copy_to(&self, dst: &mut [u8], offset: usize) -> Result<(), ClientError> {
        let len = dst.len();
        self.mmap
            .copy_to(offset, dst)
            .map_err(|e| self.refused(e, offset, len, Op::Read))
    }

    /// Copies `src` to `offset`, with volatile stores of at most 8 naturally aligned bytes
    /// each. Nothing is copied if the range does not fit.
    pub fn copy_from(&self, src: &[u8], offset: usize) -> Result<(), ClientError> {
        self.mmap
            .copy_from(offset, src)
            .map_err(|e| self.refused(e, offset, src.len(), Op::Write))
    }

    fn refused(&self, e: Refused, offset: usize, len: usize, op: Op) -> ClientError {
        match e {
            Refused::Outside => ClientError::OutsideMapping {
                offset,
                len,
                size: self.len(),
            },
            Refused::Misaligned => ClientError::MisalignedMapping { offset, width: len },
            Refused::Protection => ClientError::MappingProtection {
                region: self.region,
                op,
            },
        }
    }
}

impl DeviceFile {
    /// The areas of a region that may be mapped, as `(offset within the region, size)`: its
    /// SPARSE_MMAP areas, or the whole region. Fails if the region lacks `REGION_MMAP`.
    pub fn mmap_areas(&self, region: impl AsRegion) -> Result<Vec<(u64, u64)>, ClientError> {
        let r = self.region_of(&region)?;
        if !r.mmappable() {
            return Err(ClientError::NotMappable(r.index));
        }
        if r.sparse_areas == 0 {
            return Ok(vec![(0, r.size)]);
        }
        let areas = self
            .description()
            .region(r.index)
            .and_then(|d| d.sparse_areas())
            .map(Iterator::collect)
            .unwrap_or_default();
        Ok(areas)
    }

    /// Maps a whole region. It must have `REGION_MMAP` and no SPARSE_MMAP (else use
    /// [`Self::map_area`]).
    ///
    /// The device file is mapped at the region's offset first. If the server cannot map it
    /// (`ENODEV`, or `EINVAL`/`EACCES` as FUSE `direct_io` files answer), or the device file
    /// is a plain file too short to back the region (its pages would raise `SIGBUS`), the
    /// region's own file `<path>.r<index>` is mapped instead (SPEC.md §6.5). The protection
    /// follows the region's flags and the file's open mode.
    pub fn map(&self, region: impl AsRegion) -> Result<Mapping, ClientError> {
        let r = self.region_of(&region)?;
        if !r.mmappable() {
            return Err(ClientError::NotMappable(r.index));
        }
        if r.sparse_areas != 0 {
            return Err(ClientError::Sparse {
                region: r.index,
                areas: r.sparse_areas,
            });
        }
        self.map_range(&r, 0, r.size, true)
    }

    /// Maps area `area` of [`Self::mmap_areas`]: a SPARSE_MMAP area, or (area 0) the whole
    /// region if it has no SPARSE_MMAP. Falls back to `<path>.r<index>` as [`Self::map`].
    pub fn map_area(&self, region: impl AsRegion, area: usize) -> Result<Mapping, ClientError> {
        let (r, off, size) = self.area(&region, area)?;
        self.map_range(&r, off, size, true)
    }

    /// Maps `len` bytes (rounded up to whole pages) at region offset `offset`, a multiple of
    /// the page size, lying inside one mappable area (SPEC.md §6.5): part of a region, for
    /// example one queue of a large BAR. Falls back to `<path>.r<index>` as [`Self::map`].
    pub fn map_part(
        &self,
        region: impl AsRegion,
        offset: u64,
        len: u64,
    ) -> Result<Mapping, ClientError> {
        let r = self.region_of(&region)?;
        let page = sys::page_size();
        let size = len
            .checked_next_multiple_of(page)
            .filter(|&s| s != 0)
            .ok_or(ClientError::OutOfRange {
                region: r.index,
                offset,
                len,
                size: r.size,
            })?;
        let inside = self.mmap_areas(r)?.into_iter().any(|(o, s)| {
            offset >= o
                && offset
                    .checked_add(size)
                    .is_some_and(|end| end <= o.saturating_add(s))
        });
        if !inside {
            return Err(ClientError::OutOfRange {
                region: r.index,
                offset,
                len,
                size: r.size,
            });
        }
        self.map_range(&r, offset, size, true)
    }

    /// Maps area `area` through the region's own file `<path>.r<index>` only, without
    /// trying the device file: for servers known not to map the device file.
    pub fn map_sibling(&self, region: impl AsRegion, area: usize) -> Result<Mapping, ClientError> {
        let (r, off, size) = self.area(&region, area)?;
        self.map_range(&r, off, size, false)
    }

    fn area(
        &self,
        region: &impl AsRegion,
        area: usize,
    ) -> Result<(RegionInfo, u64, u64), ClientError> {
        let r = self.region_of(region)?;
        let areas = self.mmap_areas(r)?;
        let &(off, size) = areas.get(area).ok_or(ClientError::NoSuchArea {
            region: r.index,
            area,
            count: areas.len(),
        })?;
        Ok((r, off, size))
    }

    fn map_range(
        &self,
        r: &RegionInfo,
        off: u64,
        size: u64,
        direct: bool,
    ) -> Result<Mapping, ClientError> {
        let read = r.readable();
        let write = r.writable() && self.is_writable();
        if !read && !write {
            return Err(ClientError::NotPermitted {
                region: r.index,
                op: Op::Map,
            });
        }
        // SPEC.md §6.5: servers align to 4096; clients check against their own page size. The
        // offset in the device file matters only for the direct mapping: on a host with larger
        // pages `D.rN` may still work.
        let page = sys::page_size();
        let page_error = |offset| ClientError::PageSize {
            region: r.index,
            offset,
            size,
            page_size: page,
        };
        if !off.is_multiple_of(page) || !size.is_multiple_of(page) {
            return Err(page_error(off));
        }
        // Areas lie inside the region, which ends at or below 2^63 (validated).
        let file_off = r.offset.saturating_add(off);
        let len = usize::try_from(size).map_err(|_| ClientError::Map {
            region: r.index,
            path: self.path().to_owned(),
            source: io::Error::from_raw_os_error(libc::ENOMEM),
        })?;
        let map = |file: &File, path: &Path, at: u64| -> Result<Mapping, ClientError> {
            let map_err = |source| ClientError::Map {
                region: r.index,
                path: path.to_owned(),
                source,
            };
            backs(file, at, size).map_err(map_err)?;
            let mmap = sys::Mmap::new(file.as_fd(), at, len, read, write).map_err(map_err)?;
            Ok(Mapping {
                mmap,
                region: r.index,
                region_offset: off,
                bus_address: r.dma_address.and_then(|a| a.checked_add(off)),
            })
        };
        let mut first = None;
        if direct && !file_off.is_multiple_of(page) {
            first = Some(page_error(file_off));
        } else if direct {
            match map(self.file(), self.path(), file_off) {
                Ok(m) => return Ok(m),
                Err(e) if can_fall_back(&e) => first = Some(e),
                Err(e) => return Err(e),
            }
        }
        let sibling = self.sibling_path(r.index);
        let file = match (
            OpenOptions::new().read(true).write(write).open(&sibling),
            first,
        ) {
            (Ok(f), _) => f,
            // No sibling: the device file's own failure says more.
            (Err(e), Some(first)) if e.kind() == io::ErrorKind::NotFound => return Err(first),
            (Err(source), _) => {
                return Err(ClientError::Map {
                    region: r.index,
                    path: sibling,
                    source,
                });
            }
        };
        match map(&file, &sibling, off) {
            // FUSE answers ENODEV for a file it cannot pass through (SPEC.md §6.5).
            Err(ClientError::Map { source, .. }) if source.raw_os_error() == Some(libc::ENODEV) => {
                Err(ClientError::MmapUnavailable {
                    region: r.index,
                    path: sibling,
                })
            }
            other => other,
        }
    }
}

/// Whether a failed direct mapping may succeed through `D.rN`.
fn can_fall_back(e: &ClientError) -> bool {
    match e {
        ClientError::Map { source, .. } => {
            source.kind() == io::ErrorKind::UnexpectedEof
                || matches!(
                    source.raw_os_error(),
                    Some(libc::ENODEV | libc::EINVAL | libc::EACCES)
                )
        }
        _ => false,
    }
}

/// Checks that a regular file (FUSE files included) has bytes behind `[at, at + size)`:
/// touching a mapped page past its end raises `SIGBUS`. Character devices have no size.
fn backs(file: &File, at: u64, size: u64) -> io::Result<()> {
    let meta = file.metadata()?;
    let end = at.saturating_add(size);
    if meta.is_file() && meta.len() < end {
        return Err(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            format!(
                "the file is {:#x} bytes, too short to back bytes {at:#x}..{end:#x}",
                meta.len()
            ),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fallback_errors() {
        let map = |source| ClientError::Map {
            region: 0,
            path: "d".into(),
            source,
        };
        for errno in [libc::ENODEV, libc::EINVAL, libc::EACCES] {
            assert!(can_fall_back(&map(io::Error::from_raw_os_error(errno))));
        }
        assert!(can_fall_back(&map(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            "short"
        ))));
        assert!(!can_fall_back(&map(io::Error::from_raw_os_error(
            libc::ENXIO
        ))));
        assert!(!can_fall_back(&map(io::Error::from_raw_os_error(
            libc::ENOMEM
        ))));
        assert!(!can_fall_back(&ClientError::NotMappable(0)));
    }
}
