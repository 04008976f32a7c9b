//! The devfd device model, between sources (emulated devices, real hardware) and presentations
//! (FUSE device files, the C ABI, vfio-user).
//!
//! * [`Device`]: what a device implements — its description, region accesses, reset, and its
//!   [`Interrupts`].
//! * [`RegionMap`]: turns a device-file access (offset, length, read/write) into a checked
//!   target, with the errno SPEC.md §6.6 assigns to every bad access. Device logic only ever
//!   sees accesses that are in range, of a legal width and allowed by the region's flags.
//! * [`Interrupts`]: per-vector mask and pending state, per-open event counters, and a waker
//!   for readiness (SPEC.md §6.3–6.4).

mod dispatch;
mod error;
mod irq;

pub use dispatch::{ControlField, RegionMap, Target};
pub use error::{AccessError, DeviceError};
pub use irq::{Interrupts, STATUS_ASSERTED, STATUS_PENDING, STATUS_UNACKED, Subscriber};

use std::os::fd::BorrowedFd;
use std::sync::Arc;

/// Why a DMA transfer failed, as the device sees it (an IOMMU fault on real hardware).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error(
    "DMA of {len} bytes at bus address {address:#x} is outside the memory the device may reach"
)]
pub struct DmaFault {
    /// Bus address of the transfer.
    pub address: u64,
    /// Its length.
    pub len: usize,
}

/// Memory a device reaches by DMA, at bus addresses: an emulated window
/// (`devfd_emu::DmaMemory`) or a vfio-user client's memory (its DMA_MAP regions).
///
/// A transfer whose range is not all reachable fails with a [`DmaFault`] before a byte moves;
/// one that fails while moving (memory reached by messages, a reply that is an error) may have
/// moved a prefix. A transfer may take time (the
/// memory may be reached through messages), so a device calls it without holding locks a
/// register access needs.
pub trait DmaSpace: Send + Sync {
    /// Reads `buf.len()` bytes at bus address `address`.
    fn read(&self, address: u64, buf: &mut [u8]) -> Result<(), DmaFault>;
    /// Writes `data` at bus address `address`.
    fn write(&self, address: u64, data: &[u8]) -> Result<(), DmaFault>;
}

/// A device served through a device file.
///
/// Implementations are `Send + Sync`: the server calls them from several threads at once, so
/// each keeps its own locking (usually one `Mutex` around its register state). Calls must not
/// block for long; the server bounds each call (SPEC.md §6.7) and fails it with `ETIMEDOUT`.
pub trait Device: Send + Sync {
    /// The description at offset 0 of the device file; valid per `devfd_format::parse` and
    /// constant for the device's lifetime.
    fn description(&self) -> &[u8];

    /// Reads `data.len()` bytes at `offset` within region `region`.
    ///
    /// For a register-like region the length is 1, 2, 4 or 8 and `offset` is a multiple of it;
    /// for a memory-like region (REGION_MMAP) any range inside the region. The region has
    /// REGION_READ. Values are little-endian.
    fn read(&self, region: u32, offset: u64, data: &mut [u8]) -> Result<(), DeviceError>;

    /// Writes `data` at `offset` within region `region`; the same guarantees as [`Self::read`],
    /// with REGION_WRITE.
    fn write(&self, region: u32, offset: u64, data: &[u8]) -> Result<(), DeviceError>;

    /// The device's interrupts (one [`Interrupts`] per device, made from its description).
    fn interrupts(&self) -> &Interrupts;

    /// Masks or unmasks a vector at a client's request (its control window's mask word).
    /// The default changes [`Self::interrupts`]; a device whose source masks in hardware (a
    /// VFIO device's INTx) tells the hardware too. `None` if there is no such vector.
    fn set_irq_mask(&self, index: u32, vector: u32, masked: bool) -> Option<()> {
        self.interrupts().set_masked(index, vector, masked)
    }

    /// Returns the device to its power-on state.
    fn reset(&self) {}

    /// Whether [`Self::reset`] does reset the device. By default, whether the description has
    /// a reset word (SPEC.md §4.20); a model that resets without offering the word to device
    /// files says so here, so that presentations with their own reset (vfio-user's
    /// DEVICE_RESET, which a VMM sends at machine reset) offer it.
    fn resettable(&self) -> bool {
        devfd_format::parse(self.description()).is_ok_and(|d| d.device().reset_offset().is_some())
    }

    /// Connects the device's DMA engine to `space` (`None`: back to the device's own
    /// window, if it has one). A presentation that owns the memory a device reaches, such as
    /// a vfio-user server holding its client's DMA_MAP regions, calls this. Returns false if
    /// the device does no DMA.
    fn set_dma_space(&self, space: Option<Arc<dyn DmaSpace>>) -> bool {
        let _ = space;
        false
    }

    /// A shared-memory file backing an mmap region, so a mapping of it is coherent with the
    /// device (SPEC.md §6.5). `None` if the region is not backed by shared memory.
    fn shared_memory(&self, region: u32) -> Option<BorrowedFd<'_>> {
        let _ = region;
        None
    }

    /// A short name for logs and listings, e.g. `edu`.
    fn kind(&self) -> &str;
}

/// Reads a little-endian value of `data.len()` (1, 2, 4 or 8) bytes.
pub fn le_value(data: &[u8]) -> u64 {
    let mut b = [0u8; 8];
    let n = data.len().min(8);
    b[..n].copy_from_slice(&data[..n]);
    u64::from_le_bytes(b)
}

/// Stores `value` little-endian into all of `data` (1, 2, 4 or 8 bytes).
pub fn put_le_value(data: &mut [u8], value: u64) {
    let n = data.len().min(8);
    data[..n].copy_from_slice(&value.to_le_bytes()[..n]);
}
