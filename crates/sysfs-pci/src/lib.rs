//! A devfd source for the machine's real PCI functions, read from Linux sysfs
//! (`/sys/bus/pci/devices/DOMAIN:BUS:DEV.FN`, or any root with that layout).
//!
//! * [`Sysfs`] lists functions and reads each into a [`PciFunction`]: identity (vendor,
//!   device, subsystem, class, revision) from configuration space; every BAR (I/O, 32- or
//!   64-bit memory, prefetchable, size) and the ROM from the kernel's `resource` file and
//!   the BAR registers; the configuration space size (256 or 4096, the `config` file's
//!   size); INTx (pin, line, the kernel's `irq`), MSI (vectors, 64-bit, per-vector masking)
//!   and MSI-X (table size, table and PBA BAR and offset) from the capability list; the
//!   bound `driver`, `msi_bus` and the allocated `msi_irqs`. Where the kernel has parsed
//!   something already (`resource`, `irq`, `driver`) its result is used.
//! * [`PciFunction::device_desc`] turns a function into a devfd description (PCI_ID, one
//!   REGION + PCI_BAR per BAR, PCI_ROM, PCI_CONFIG, INTERRUPT per INTx/MSI/MSI-X).
//! * [`SysfsPciDevice`] serves a function as a [`devfd_device::Device`]: configuration
//!   space readable; writes and BAR access only when asked for and never while a kernel
//!   driver is bound (see [`device`] for every rule). Interrupts are described but never
//!   delivered: that needs VFIO.
//!
//! Configuration space and the `resource` file are untrusted input: [`config`] and
//! [`resource`] never index out of bounds, never overflow and never loop; damage (a
//! capability loop, a pointer into the header, a misaligned pointer, a truncated file, a
//! pointer past the end) is a [`ConfigError`] located at the offending byte and naming the
//! capability. A process without `CAP_SYS_ADMIN` reads only the first 64 bytes of
//! configuration space; [`PciFunction::capabilities_read`] is then `false`, and describing
//! or serving the function fails with [`SysfsError::NeedsRoot`], which says so.
#![deny(missing_docs)]
#![deny(unsafe_code)]
#![cfg_attr(
    not(test),
    deny(
        clippy::indexing_slicing,
        clippy::arithmetic_side_effects,
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::panic
    )
)]

mod class;
pub mod config;
pub mod device;
mod error;
mod function;
#[allow(unsafe_code)]
mod mmio;
pub mod resource;
mod sysfs;

pub use class::{base_class_name, class_name};
pub use device::{AccessOptions, SysfsPciDevice};
pub use error::{
    AnalyzeError, CapId, ConfigError, ConfigErrorKind, Refused, ResourceError, ResourceErrorKind,
    SysfsError, UNPRIVILEGED_CONFIG_LEN,
};
pub use function::{
    Address, Bar, BarKind, CONFIG_REGION, INTX_INTERRUPT, Inputs, Intx, MSI_INTERRUPT,
    MSIX_INTERRUPT, PciFunction, Policy, ROM_REGION, Rom, analyze, capability_text, io_widths,
};
pub use sysfs::{Listing, SYSFS_PCI_DEVICES, Sysfs};
