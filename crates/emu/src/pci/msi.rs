//! The MSI capability (PCI Local Bus 3.0 §6.8.1) in its smallest useful form: one vector,
//! 64-bit message address, no per-vector masking.
//!
//! Layout from the capability's offset:
//!
//! | +   | size | field                | writable                          |
//! |-----|------|----------------------|-----------------------------------|
//! | 0x0 | 1    | capability ID (0x05) | no                                |
//! | 0x1 | 1    | next capability      | no                                |
//! | 0x2 | 2    | message control      | bit 0 (MSI enable) only           |
//! | 0x4 | 4    | message address      | bits 31:2 (dword aligned)         |
//! | 0x8 | 4    | message upper address| all                               |
//! | 0xc | 2    | message data         | all                               |
//!
//! Multiple Message Enable stays 0 (one vector), which is all Multiple Message Capable = 0
//! allows anyway. The message itself is never sent: devfd delivers the interrupt to clients
//! through the MSI control window, so the address and data are stored for the driver only.

use super::configuration::ConfigSpace;

/// Capability ID of MSI.
pub(crate) const CAPABILITY_ID: u8 = 0x05;

const MESSAGE_CONTROL: usize = 0x2;
const MESSAGE_ADDRESS: usize = 0x4;
const MESSAGE_UPPER_ADDRESS: usize = 0x8;
const MESSAGE_DATA: usize = 0xc;

/// Message control: MSI enable.
pub(crate) const CONTROL_ENABLE: u16 = 1 << 0;
/// Message control: the function can generate 64-bit message addresses.
pub(crate) const CONTROL_64BIT: u16 = 1 << 7;

/// Where an MSI capability sits in a configuration space.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct MsiCapability {
    offset: usize,
}

impl MsiCapability {
    /// A capability at `offset` (a dword-aligned offset past the standard header).
    pub(crate) const fn at(offset: usize) -> Self {
        MsiCapability { offset }
    }

    /// Writes the power-on registers and their writable bits, linking to `next` (0: last).
    pub(crate) fn install(self, config: &mut ConfigSpace, next: u8) {
        let at = |field: usize| self.offset.saturating_add(field);
        config.put_bytes(self.offset, &[CAPABILITY_ID, next]);
        config.put_bytes(at(MESSAGE_CONTROL), &CONTROL_64BIT.to_le_bytes());
        config.allow_writes(at(MESSAGE_CONTROL), &CONTROL_ENABLE.to_le_bytes());
        config.allow_writes(at(MESSAGE_ADDRESS), &0xffff_fffc_u32.to_le_bytes());
        config.allow_writes(at(MESSAGE_UPPER_ADDRESS), &u32::MAX.to_le_bytes());
        config.allow_writes(at(MESSAGE_DATA), &u16::MAX.to_le_bytes());
    }

    /// Whether the driver has enabled MSI (then the function must not use INTx).
    pub(crate) fn enabled(self, config: &ConfigSpace) -> bool {
        config.u16_at(self.offset.saturating_add(MESSAGE_CONTROL)) & CONTROL_ENABLE != 0
    }
}
