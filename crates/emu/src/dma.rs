//! DMA memory: shared memory that a device reaches at a bus (IO virtual) address, served as
//! an mmap region of the device file with a DMA_WINDOW sub-record (SPEC.md §4.19), so that a
//! driver maps the very bytes the device's DMA engine reads and writes.

use std::os::fd::BorrowedFd;

use devfd_format::model::RegionDesc;
use devfd_format::wire::{PAGE_SIZE, REGION_MMAP, REGION_READ, REGION_WRITE};

use devfd_device::{DmaFault, DmaSpace};

use crate::{EmuError, SharedMemory};

/// The bus address emulated devices place their DMA window at: 1 MiB, so that a window of up
/// to 255 MiB stays below QEMU edu's 28-bit DMA mask.
pub const DEFAULT_BUS_ADDRESS: u64 = 1 << 20;

/// A DMA window.
#[derive(Debug)]
pub struct DmaMemory {
    memory: SharedMemory,
    bus_address: u64,
}

impl DmaMemory {
    /// Zeroed DMA memory of `size` bytes (a non-zero multiple of 4096) at `bus_address`.
    pub fn new(size: u64, bus_address: u64) -> Result<Self, EmuError> {
        if size == 0 || !size.is_multiple_of(PAGE_SIZE) {
            return Err(EmuError::BadMemorySize(size));
        }
        if bus_address.checked_add(size).is_none() {
            return Err(EmuError::BadOption {
                option: "dma".into(),
                value: format!("{size:#x} at {bus_address:#x}"),
                reason: "the window runs past the 64-bit bus address space",
            });
        }
        Ok(DmaMemory {
            memory: SharedMemory::new(size)?,
            bus_address,
        })
    }

    /// Bus address of the first byte.
    pub fn bus_address(&self) -> u64 {
        self.bus_address
    }

    /// Size in bytes.
    pub fn size(&self) -> u64 {
        self.memory.size()
    }

    /// The memfd behind the window (for mmap through the device file).
    pub fn memory_fd(&self) -> BorrowedFd<'_> {
        self.memory.as_fd()
    }

    /// The memory itself.
    pub fn memory(&self) -> &SharedMemory {
        &self.memory
    }

    /// Offset in the window of `[address, address + len)`, if all of it is inside.
    fn offset(&self, address: u64, len: usize) -> Result<u64, DmaFault> {
        let fault = DmaFault { address, len };
        let offset = address.checked_sub(self.bus_address).ok_or(fault)?;
        let end = offset.checked_add(len as u64).ok_or(fault)?;
        if end > self.size() {
            return Err(fault);
        }
        Ok(offset)
    }

    /// The device reads `buf.len()` bytes at bus address `address`.
    fn read_at_bus(&self, address: u64, buf: &mut [u8]) -> Result<(), DmaFault> {
        let offset = self.offset(address, buf.len())?;
        self.memory.read_at(offset, buf).map_err(|_| DmaFault {
            address,
            len: buf.len(),
        })
    }

    /// The device writes `data` at bus address `address`.
    fn write_at_bus(&self, address: u64, data: &[u8]) -> Result<(), DmaFault> {
        let offset = self.offset(address, data.len())?;
        self.memory.write_at(offset, data).map_err(|_| DmaFault {
            address,
            len: data.len(),
        })
    }

    /// The device reads `buf.len()` bytes at bus address `address`.
    pub fn read(&self, address: u64, buf: &mut [u8]) -> Result<(), DmaFault> {
        self.read_at_bus(address, buf)
    }

    /// The device writes `data` at bus address `address`.
    pub fn write(&self, address: u64, data: &[u8]) -> Result<(), DmaFault> {
        self.write_at_bus(address, data)
    }

    /// The REGION of the window: read/write/mmap at file offset `offset`, with its
    /// DMA_WINDOW bus address.
    pub fn region_desc(&self, index: u32, offset: u64) -> RegionDesc {
        RegionDesc {
            index,
            offset,
            size: self.size(),
            flags: REGION_READ | REGION_WRITE | REGION_MMAP,
            location: Default::default(),
            dt: None,
            label: Some("dma".into()),
            sparse: None,
            dma_address: Some(self.bus_address),
            access_widths: None,
        }
    }
}

impl DmaSpace for DmaMemory {
    fn read(&self, address: u64, buf: &mut [u8]) -> Result<(), DmaFault> {
        self.read_at_bus(address, buf)
    }

    fn write(&self, address: u64, data: &[u8]) -> Result<(), DmaFault> {
        self.write_at_bus(address, data)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transfers_inside_the_window_only() {
        let w = DmaMemory::new(8192, DEFAULT_BUS_ADDRESS).unwrap();
        w.write(DEFAULT_BUS_ADDRESS + 8190, &[1, 2]).unwrap();
        let mut b = [0u8; 2];
        w.read(DEFAULT_BUS_ADDRESS + 8190, &mut b).unwrap();
        assert_eq!(b, [1, 2]);
        let fault = w.write(DEFAULT_BUS_ADDRESS + 8191, &[1, 2]).unwrap_err();
        assert_eq!(fault.address, DEFAULT_BUS_ADDRESS + 8191);
        assert!(w.read(DEFAULT_BUS_ADDRESS - 1, &mut b).is_err());
        assert!(w.read(u64::MAX, &mut b).is_err());
        assert!(DmaMemory::new(4096, u64::MAX - 100).is_err());
    }
}
