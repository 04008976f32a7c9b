//! vfio-user for devfd, both ways (QEMU `docs/interop/vfio-user.rst`, protocol 0.1):
//!
//! * [`Server`]: serves a devfd [`devfd_device::Device`] to a vfio-user client, such as
//!   QEMU's `vfio-user-pci`, so a guest kernel's driver drives a device modelled in devfd. The
//!   client's DMA_MAP regions become the device's [`devfd_device::DmaSpace`].
//! * [`Client`]: the device of any vfio-user server as a devfd device, so device files,
//!   the client library and C drivers use it.
//! * [`message`]: the decoder of untrusted messages (fuzzed), with located errors.
//! * [`wire`]: the message layouts and constants.
//!
//! All `unsafe` code (sendmsg/recvmsg with fds, mmap of client memory, eventfds) is in the
//! private `sys` module.
#![deny(missing_docs)]
#![deny(unsafe_code)]
#![cfg_attr(
    not(test),
    deny(
        clippy::indexing_slicing,
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::panic
    )
)]

mod channel;
mod client;
mod error;
#[cfg_attr(not(test), deny(clippy::arithmetic_side_effects))]
pub mod layout;
#[cfg_attr(not(test), deny(clippy::arithmetic_side_effects))]
mod memory;
#[cfg_attr(not(test), deny(clippy::arithmetic_side_effects))]
pub mod message;
mod server;
mod sys;
pub mod wire;

pub use client::{Client, DMA_REGION};
pub use error::{ProtocolError, VfioUserError};
pub use layout::Layout;
pub use memory::ClientMemory;
pub use server::{ConnectionEnd, STALL_TIMEOUT, Server};
