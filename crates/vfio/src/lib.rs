//! Linux VFIO devices as devfd devices (issue 8): a PCI function bound to `vfio-pci` is opened
//! through the group/container API, described from what the kernel reports
//! (DEVICE_GET_INFO, every GET_REGION_INFO with its capability chain, GET_IRQ_INFO, and the
//! PCI identity from its config region), and served: region accesses go to the VFIO device fd
//! at the region's VFIO offset, interrupts arrive on eventfds registered with SET_IRQS, mask
//! and unmask of INTx reach the kernel, reset is DEVICE_RESET, and an optional DMA window is
//! memory the IOMMU maps for the device.
//!
//! The kernel's answers are parsed as untrusted bytes ([`caps`]); every raw system call is in
//! one module (`ioctl`) with a `// SAFETY:` line each.
#![deny(missing_docs)]
#![cfg_attr(
    not(test),
    deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)
)]

pub mod caps;
mod device;
mod dma;
mod error;
mod eventfds;
#[allow(unsafe_code)]
mod ioctl;
mod open;

pub use caps::{CapError, Capability, RegionInfo, parse_region_info};
pub use device::{
    CONFIG_REGION, KernelInfo, KernelIrq, Mapped, VfioDevice, describe, find_capability, query,
    raw_trigger_intx, raw_unmask_intx,
};
pub use dma::{DMA_REGION, DmaWindow, parse_iova_ranges, place};
pub use error::VfioError;
pub use eventfds::EventfdInterrupts;
pub use open::{Container, SYSFS_PCI, bound_driver, iommu_group};

/// Opens every function of `bdfs` in one container (each with a DMA window of `dma` bytes if
/// given).
pub fn open_all(bdfs: &[String], dma: Option<u64>) -> Result<Vec<VfioDevice>, VfioError> {
    let container = std::sync::Arc::new(std::sync::Mutex::new(Container::new()?));
    bdfs.iter()
        .map(|bdf| VfioDevice::open(&container, bdf, dma))
        .collect()
}
