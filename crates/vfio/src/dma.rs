//! A DMA window for a VFIO device: a memfd mapped in the server, mapped for the device by the
//! IOMMU (`VFIO_IOMMU_MAP_DMA`) at an IO virtual address inside the IOMMU's valid ranges, and
//! served as an mmap region with its DMA_WINDOW bus address. Unmapped when dropped; if the
//! server dies, closing the container unmaps it.

use std::os::fd::BorrowedFd;
use std::sync::{Arc, Mutex, PoisonError};

use devfd_device::DeviceError;
use devfd_emu::DmaMemory;
use devfd_format::model::RegionDesc;
use devfd_format::wire::PAGE_SIZE;

use crate::open::Container;
use crate::{VfioError, ioctl};

/// Region index of the DMA window in a VFIO device's description (past VFIO's PCI indices).
pub const DMA_REGION: u32 = 16;
/// Lowest IO virtual address a window is placed at.
const LOWEST_IOVA: u64 = 1 << 20;
/// Windows are placed below this when they fit (QEMU edu's 28-bit DMA mask).
const PREFERRED_LIMIT: u64 = 1 << 28;

const VFIO_DMA_MAP_FLAG_READ: u32 = 1;
const VFIO_DMA_MAP_FLAG_WRITE: u32 = 2;
const IOVA_RANGE_CAP: u16 = 1;
/// Bytes of `struct vfio_iommu_type1_info`.
const IOMMU_INFO_LEN: usize = 24;

/// A mapped DMA window.
#[derive(Debug)]
pub struct DmaWindow {
    memory: DmaMemory,
    container: Arc<Mutex<Container>>,
}

/// The IOMMU's valid IOVA ranges `(start, end inclusive)`, from IOMMU_GET_INFO's
/// IOVA_RANGE capability; the whole space if the kernel reports none.
fn iova_ranges(container: &Container) -> Vec<(u64, u64)> {
    let mut words = IOMMU_INFO_LEN / 8;
    for _ in 0..4 {
        let mut buf = vec![0u64; words];
        buf[0] = (words * 8) as u64;
        if ioctl::iommu_get_info(container.fd(), &mut buf).is_err() {
            break;
        }
        let bytes: Vec<u8> = buf.iter().flat_map(|w| w.to_le_bytes()).collect();
        let argsz = u32_at(&bytes, 0).unwrap_or(0) as usize;
        if argsz > bytes.len() {
            words = argsz.div_ceil(8).min(1 << 16);
            continue;
        }
        if let Some(ranges) = parse_iova_ranges(&bytes) {
            return ranges;
        }
        break;
    }
    vec![(0, u64::MAX)]
}

fn u32_at(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_le_bytes(
        b.get(at..at.checked_add(4)?)?.try_into().ok()?,
    ))
}

fn u64_at(b: &[u8], at: usize) -> Option<u64> {
    Some(u64::from_le_bytes(
        b.get(at..at.checked_add(8)?)?.try_into().ok()?,
    ))
}

/// The IOVA ranges in an IOMMU_GET_INFO answer (untrusted: every offset is checked, the
/// chain must move forward); `None` without the capability.
pub fn parse_iova_ranges(answer: &[u8]) -> Option<Vec<(u64, u64)>> {
    const INFO_CAPS: u32 = 2;
    let argsz = (u32_at(answer, 0)? as usize).min(answer.len());
    let answer = answer.get(..argsz)?;
    if u32_at(answer, 4)? & INFO_CAPS == 0 {
        return None;
    }
    let mut at = u32_at(answer, 16)? as usize;
    for _ in 0..64 {
        if at < IOMMU_INFO_LEN || !at.is_multiple_of(4) {
            return None;
        }
        let id = u16::from_le_bytes(answer.get(at..at + 2)?.try_into().ok()?);
        let next = u32_at(answer, at + 4)? as usize;
        if id == IOVA_RANGE_CAP {
            let count = u32_at(answer, at + 8)? as usize;
            let table = at.checked_add(16)?;
            let len = count.checked_mul(16)?;
            let ranges = answer.get(table..table.checked_add(len)?)?;
            return Some(
                ranges
                    .chunks_exact(16)
                    .filter_map(|r| Some((u64_at(r, 0)?, u64_at(r, 8)?)))
                    .collect(),
            );
        }
        if next == 0 || next <= at {
            return None;
        }
        at = next;
    }
    None
}

/// The lowest IOVA for `size` bytes inside `ranges`: at or above 1 MiB, aligned to `size`'s
/// power of two (at most 2 MiB), below 2^28 when it fits there.
pub fn place(ranges: &[(u64, u64)], size: u64) -> Option<u64> {
    let align = size.checked_next_power_of_two()?.clamp(PAGE_SIZE, 2 << 20);
    let fits = |limit: u64| {
        ranges.iter().find_map(|&(start, end)| {
            let start = start.max(LOWEST_IOVA).checked_next_multiple_of(align)?;
            let last = start.checked_add(size)?.checked_sub(1)?;
            (last <= end && last < limit).then_some(start)
        })
    };
    fits(PREFERRED_LIMIT).or_else(|| fits(u64::MAX))
}

impl DmaWindow {
    /// Allocates `size` bytes and maps them for every device of `container`.
    pub fn new(container: &Arc<Mutex<Container>>, size: u64) -> Result<Self, VfioError> {
        let dma_err =
            |source: Box<dyn std::error::Error + Send + Sync>| VfioError::Dma { size, source };
        let c = container.lock().unwrap_or_else(PoisonError::into_inner);
        let ranges = iova_ranges(&c);
        let iova = place(&ranges, size)
            .ok_or_else(|| dma_err(format!("no room in the IOMMU's ranges {ranges:x?}").into()))?;
        let memory = DmaMemory::new(size, iova).map_err(|e| dma_err(Box::new(e)))?;
        ioctl::iommu_map_dma(
            c.fd(),
            memory.memory().address(),
            iova,
            size,
            VFIO_DMA_MAP_FLAG_READ | VFIO_DMA_MAP_FLAG_WRITE,
        )
        .map_err(|e| dma_err(Box::new(e)))?;
        drop(c);
        Ok(DmaWindow {
            memory,
            container: container.clone(),
        })
    }

    /// The region index it is served as.
    pub fn index(&self) -> u32 {
        DMA_REGION
    }

    /// Size in bytes.
    pub fn size(&self) -> u64 {
        self.memory.size()
    }

    /// The IO virtual address the device reaches it at.
    pub fn iova(&self) -> u64 {
        self.memory.bus_address()
    }

    /// The region of the window at file offset `offset`.
    pub fn region_desc(&self, offset: u64) -> RegionDesc {
        self.memory.region_desc(DMA_REGION, offset)
    }

    /// The memfd, served for mmap.
    pub fn memory_fd(&self) -> BorrowedFd<'_> {
        self.memory.memory_fd()
    }

    /// A client read of the window.
    pub fn read(&self, offset: u64, data: &mut [u8]) -> Result<(), DeviceError> {
        self.memory
            .memory()
            .read_at(offset, data)
            .map_err(|_| DeviceError::Unsupported)
    }

    /// A client write of the window.
    pub fn write(&self, offset: u64, data: &[u8]) -> Result<(), DeviceError> {
        self.memory
            .memory()
            .write_at(offset, data)
            .map_err(|_| DeviceError::Unsupported)
    }
}

impl Drop for DmaWindow {
    fn drop(&mut self) {
        let c = self
            .container
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if let Err(e) = ioctl::iommu_unmap_dma(c.fd(), self.iova(), self.size()) {
            log::warn!("unmapping the DMA window at {:#x}: {e}", self.iova());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn windows_go_low_inside_the_ranges() {
        let all = [(0, u64::MAX)];
        assert_eq!(place(&all, 1 << 20), Some(1 << 20));
        assert_eq!(place(&all, 3 << 20), Some(2 << 20));
        // Intel's MSI window is not valid: the ranges skip it.
        let intel = [(0, 0xfedf_ffff), (0xfef0_0000, (1 << 39) - 1)];
        assert_eq!(place(&intel, 1 << 20), Some(1 << 20));
        assert_eq!(place(&[(0x1000_0000, u64::MAX)], 4096), Some(0x1000_0000));
        assert_eq!(place(&[(0, 0x10_0fff)], 8192), None);
        assert_eq!(place(&[], 4096), None);
    }

    #[test]
    fn iova_ranges_are_parsed_from_untrusted_bytes() {
        let mut b = Vec::new();
        let argsz = 24 + 16 + 32;
        for v in [argsz as u32, 3] {
            b.extend_from_slice(&v.to_le_bytes());
        }
        b.extend_from_slice(&0x1000u64.to_le_bytes());
        b.extend_from_slice(&24u32.to_le_bytes());
        b.extend_from_slice(&0u32.to_le_bytes());
        b.extend_from_slice(&1u16.to_le_bytes());
        b.extend_from_slice(&1u16.to_le_bytes());
        b.extend_from_slice(&0u32.to_le_bytes());
        b.extend_from_slice(&2u32.to_le_bytes());
        b.extend_from_slice(&0u32.to_le_bytes());
        for (s, e) in [(0u64, 0xfedf_ffffu64), (0xfef0_0000, 0x7f_ffff_ffff)] {
            b.extend_from_slice(&s.to_le_bytes());
            b.extend_from_slice(&e.to_le_bytes());
        }
        assert_eq!(
            parse_iova_ranges(&b),
            Some(vec![(0, 0xfedf_ffff), (0xfef0_0000, 0x7f_ffff_ffff)])
        );
        // A count that overflows, a self-loop, truncation: none of them panic.
        let mut huge = b.clone();
        huge[32..36].copy_from_slice(&u32::MAX.to_le_bytes());
        assert_eq!(parse_iova_ranges(&huge), None);
        let mut looped = b.clone();
        looped[24..26].copy_from_slice(&7u16.to_le_bytes());
        looped[28..32].copy_from_slice(&24u32.to_le_bytes());
        assert_eq!(parse_iova_ranges(&looped), None);
        for n in 0..b.len() {
            let _ = parse_iova_ranges(&b[..n]);
        }
    }
}
