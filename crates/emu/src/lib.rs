//! Devices emulated in Rust for devfd, each a [`devfd_device::Device`] that owns its
//! description and its [`devfd_device::Interrupts`]:
//!
//! * [`Edu`]: QEMU's educational PCI device (`edu`): BAR0 registers, a type-0 configuration
//!   space with an MSI capability, INTx and MSI.
//! * [`Pl031`]: the ARM PrimeCell PL031 real-time clock as a device-tree platform device, with
//!   a match interrupt on an injectable [`Clock`].
//! * [`Pl011`]: the ARM PrimeCell PL011 UART as a device-tree platform device; what a driver
//!   transmits comes out line by line.
//! * [`Faulty`]: a device that misbehaves on purpose (delays, hangs, panics, interrupt storms,
//!   a region at the end of the offset space), for tests of servers and clients.
//! * [`Memory`]: RAM whose region is a sealed memfd ([`SharedMemory`]), so a client's mmap of
//!   it is coherent with the device.
//!
//! [`from_spec`] makes any of them by name (`memory,size=4M`); [`demo_devices`] makes one of
//! each; [`dt_model`] finds the model for a device-tree node by its `compatible` strings.
//!
//! Every access value and offset is untrusted: devices check them and fail with
//! [`devfd_device::DeviceError`] rather than panic. All `unsafe` code is in [`shm`].
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

pub mod clock;
mod dma;
mod dt_model;
mod edu;
mod error;
mod fault;
mod memory;
mod pci;
mod pl011;
mod pl031;
#[allow(unsafe_code)]
pub mod shm;
mod spec;

pub use clock::{Clock, ManualClock, MonotonicClock};
pub use devfd_device::{DmaFault, DmaSpace};
pub use dma::{DEFAULT_BUS_ADDRESS, DmaMemory};
pub use dt_model::{DT_MODELS, DtModel, DtModelOptions, dt_model, log_line, stderr_lines};
pub use edu::{Edu, EduOptions};
pub use error::{EmuError, ShmError};
pub use fault::{FaultControl, FaultOptions, Faulty};
pub use memory::{Memory, MemoryOptions};
pub use pl011::{LineSink, Pl011, Pl011Options};
pub use pl031::{Pl031, Pl031Options};
pub use shm::SharedMemory;
pub use spec::{KINDS, demo_devices, from_spec, from_spec_str, parse_size};
