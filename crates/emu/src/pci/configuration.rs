//! The configuration space of a type-0 PCI function (PCI Local Bus 3.0 §6.1–6.2), 256 bytes,
//! with one 32-bit non-prefetchable memory BAR and an MSI capability.
//!
//! Every register here is free of side effects on access, so the space is kept as bytes with a
//! per-byte mask of writable bits: an access of any width at any offset is then exactly the
//! same as the bytewise accesses it covers, sub-dword writes of dword registers included, and
//! bits outside the mask can never change. The BAR sizing protocol falls out of the mask too:
//! the address bits below the BAR's size are not writable, so writing all ones reads back
//! `!(size - 1)`.

use devfd_device::DeviceError;
use devfd_format::PciId;

use super::msi::MsiCapability;

/// Size of a conventional PCI configuration space.
pub(crate) const CONFIG_SPACE_SIZE: usize = 256;

const VENDOR_ID: usize = 0x00;
const COMMAND: usize = 0x04;
const STATUS: usize = 0x06;
const REVISION_ID: usize = 0x08;
const CLASS_CODE: usize = 0x09;
const BAR0: usize = 0x10;
const SUBSYSTEM_VENDOR_ID: usize = 0x2c;
const CAPABILITIES_POINTER: usize = 0x34;
const INTERRUPT_LINE: usize = 0x3c;
const INTERRUPT_PIN: usize = 0x3d;

/// Command register: the function answers I/O-space accesses.
pub(crate) const COMMAND_IO_SPACE: u16 = 1 << 0;
/// Command register: the function answers memory-space accesses (its memory BARs decode).
pub(crate) const COMMAND_MEMORY_SPACE: u16 = 1 << 1;
/// Command register: the function may master the bus (DMA, MSI writes).
pub(crate) const COMMAND_BUS_MASTER: u16 = 1 << 2;
/// Command register: the function must not assert INTx.
pub(crate) const COMMAND_INTX_DISABLE: u16 = 1 << 10;
/// Status register: an INTx condition is pending (whether or not INTx is disabled).
pub(crate) const STATUS_INTERRUPT: u16 = 1 << 3;
/// Status register: the capabilities pointer at 0x34 is valid.
pub(crate) const STATUS_CAPABILITIES_LIST: u16 = 1 << 4;

/// Interrupt pin register value of INTA#.
const INTERRUPT_PIN_INTA: u8 = 1;
/// Where the MSI capability lives: the first dword after the standard header.
const MSI_OFFSET: usize = 0x40;
/// The low BAR bits that encode its type; 0 = 32-bit non-prefetchable memory.
const BAR_TYPE_BITS: u32 = 0xf;
/// The smallest memory BAR the encoding allows.
const MIN_BAR_SIZE: u32 = 16;

/// A type-0 configuration space.
#[derive(Debug, Clone)]
pub(crate) struct ConfigSpace {
    bytes: [u8; CONFIG_SPACE_SIZE],
    writable: [u8; CONFIG_SPACE_SIZE],
    msi: MsiCapability,
}

impl ConfigSpace {
    /// The power-on space of a function with identity `id`, BAR0 a 32-bit non-prefetchable
    /// memory BAR of `bar0_size` bytes (rounded up to a power of two, at least 16), interrupt
    /// pin INTA#, and an MSI capability at 0x40.
    pub(crate) fn new(id: &PciId, bar0_size: u32) -> Self {
        let mut space = ConfigSpace {
            bytes: [0; CONFIG_SPACE_SIZE],
            writable: [0; CONFIG_SPACE_SIZE],
            msi: MsiCapability::at(MSI_OFFSET),
        };
        space.put_bytes(VENDOR_ID, &id.vendor.to_le_bytes());
        space.put_bytes(VENDOR_ID + 2, &id.device.to_le_bytes());
        space.allow_writes(
            COMMAND,
            &(COMMAND_IO_SPACE | COMMAND_MEMORY_SPACE | COMMAND_BUS_MASTER | COMMAND_INTX_DISABLE)
                .to_le_bytes(),
        );
        space.put_bytes(STATUS, &STATUS_CAPABILITIES_LIST.to_le_bytes());
        space.put_bytes(REVISION_ID, &[id.revision]);
        // Class code: programming interface, sub-class, base class (low byte first).
        let class = id.class.to_le_bytes();
        space.put_bytes(CLASS_CODE, class.get(..3).unwrap_or_default());
        // Header type (0x0e) stays 0: type-0 header, single function.
        let size = bar0_size
            .checked_next_power_of_two()
            .unwrap_or(1 << 31)
            .max(MIN_BAR_SIZE);
        let address_bits = !size.wrapping_sub(1) & !BAR_TYPE_BITS;
        space.allow_writes(BAR0, &address_bits.to_le_bytes());
        // BAR1–5, CardBus CIS and the expansion ROM BAR stay 0 and read-only: not implemented.
        space.put_bytes(SUBSYSTEM_VENDOR_ID, &id.subsystem_vendor.to_le_bytes());
        space.put_bytes(SUBSYSTEM_VENDOR_ID + 2, &id.subsystem_device.to_le_bytes());
        space.put_bytes(CAPABILITIES_POINTER, &[MSI_OFFSET as u8]);
        space.allow_writes(INTERRUPT_LINE, &[0xff]);
        space.put_bytes(INTERRUPT_PIN, &[INTERRUPT_PIN_INTA]);
        let msi = space.msi;
        msi.install(&mut space, 0);
        space
    }

    /// Reads `data.len()` bytes at `offset`; fails if they are not all inside the space.
    pub(crate) fn read(&self, offset: u64, data: &mut [u8]) -> Result<(), DeviceError> {
        let bytes = Self::span(offset, data.len())
            .and_then(|range| self.bytes.get(range))
            .ok_or(DeviceError::Unsupported)?;
        data.copy_from_slice(bytes);
        Ok(())
    }

    /// Writes `data` at `offset`, changing only writable bits; fails if the bytes are not all
    /// inside the space.
    pub(crate) fn write(&mut self, offset: u64, data: &[u8]) -> Result<(), DeviceError> {
        let range = Self::span(offset, data.len()).ok_or(DeviceError::Unsupported)?;
        let (Some(bytes), Some(writable)) =
            (self.bytes.get_mut(range.clone()), self.writable.get(range))
        else {
            return Err(DeviceError::Unsupported);
        };
        for ((byte, mask), value) in bytes.iter_mut().zip(writable).zip(data) {
            *byte = (*byte & !mask) | (value & mask);
        }
        Ok(())
    }

    /// The command register.
    pub(crate) fn command(&self) -> u16 {
        self.u16_at(COMMAND)
    }

    /// Whether the driver has set the command register's INTx-disable bit.
    pub(crate) fn bus_master(&self) -> bool {
        self.command() & COMMAND_BUS_MASTER != 0
    }

    pub(crate) fn intx_disabled(&self) -> bool {
        self.command() & COMMAND_INTX_DISABLE != 0
    }

    /// Whether the driver has enabled MSI.
    pub(crate) fn msi_enabled(&self) -> bool {
        self.msi.enabled(self)
    }

    /// Reflects a pending INTx condition in the status register's interrupt-status bit.
    pub(crate) fn set_interrupt_status(&mut self, pending: bool) {
        let status = self.u16_at(STATUS) & !STATUS_INTERRUPT;
        let status = if pending {
            status | STATUS_INTERRUPT
        } else {
            status
        };
        self.put_bytes(STATUS, &status.to_le_bytes());
    }

    /// The byte range `[offset, offset + len)` if it lies inside the space.
    fn span(offset: u64, len: usize) -> Option<std::ops::Range<usize>> {
        let start = usize::try_from(offset).ok()?;
        let end = start.checked_add(len)?;
        (end <= CONFIG_SPACE_SIZE).then_some(start..end)
    }

    /// Sets register bytes (at construction; ignored if out of range).
    pub(super) fn put_bytes(&mut self, offset: usize, value: &[u8]) {
        if let Some(dst) = offset
            .checked_add(value.len())
            .and_then(|end| self.bytes.get_mut(offset..end))
        {
            dst.copy_from_slice(value);
        }
    }

    /// Makes the bits set in `mask` writable (at construction; ignored if out of range).
    pub(super) fn allow_writes(&mut self, offset: usize, mask: &[u8]) {
        if let Some(dst) = offset
            .checked_add(mask.len())
            .and_then(|end| self.writable.get_mut(offset..end))
        {
            dst.copy_from_slice(mask);
        }
    }

    /// The little-endian u16 at `offset` (0 if out of range).
    pub(super) fn u16_at(&self, offset: usize) -> u16 {
        let mut b = [0; 2];
        let _ = self.read(offset as u64, &mut b);
        u16::from_le_bytes(b)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ID: PciId = PciId {
        vendor: 0x1234,
        device: 0x11e8,
        subsystem_vendor: 0x1af4,
        subsystem_device: 0x1100,
        class: 0x00ff00,
        revision: 0x10,
    };

    fn space() -> ConfigSpace {
        ConfigSpace::new(&ID, 1 << 20)
    }

    fn read(c: &ConfigSpace, offset: u64, len: usize) -> u64 {
        let mut b = [0; 8];
        c.read(offset, &mut b[..len]).unwrap();
        u64::from_le_bytes(b)
    }

    fn write(c: &mut ConfigSpace, offset: u64, len: usize, value: u64) {
        c.write(offset, &value.to_le_bytes()[..len]).unwrap();
    }

    #[test]
    fn header_fields_read_at_every_width() {
        let c = space();
        assert_eq!(read(&c, 0, 4), 0x11e8_1234);
        assert_eq!(read(&c, 0, 2), 0x1234);
        assert_eq!(read(&c, 2, 2), 0x11e8);
        assert_eq!(read(&c, 1, 1), 0x12);
        assert_eq!(read(&c, 0, 8), 0x0010_0000_11e8_1234);
        assert_eq!(read(&c, 8, 4), 0x00ff_0010);
        assert_eq!(read(&c, 0x0e, 1), 0, "header type 0, single function");
        assert_eq!(read(&c, 0x2c, 4), 0x1100_1af4);
        assert_eq!(read(&c, 0x34, 1), 0x40);
        assert_eq!(read(&c, 0x3c, 2), 0x0100, "pin INTA, line 0");
        assert_eq!(
            read(&c, 0x40, 4),
            0x0080_0005,
            "MSI, last, 64-bit, 1 vector"
        );
        assert_eq!(read(&c, 0xf8, 8), 0);
    }

    #[test]
    fn read_only_bits_stay_put() {
        let mut c = space();
        let before: Vec<u64> = (0..32).map(|i| read(&c, i * 8, 8)).collect();
        for offset in (0..256).step_by(8) {
            write(&mut c, offset, 8, u64::MAX);
        }
        // Only the writable bits changed.
        assert_eq!(read(&c, 0, 4), 0x11e8_1234);
        assert_eq!(
            read(&c, 4, 4),
            0x0010_0407,
            "command masked, status read-only"
        );
        assert_eq!(read(&c, 8, 8), 0x0000_0000_00ff_0010);
        assert_eq!(read(&c, 0x10, 4), 0xfff0_0000);
        for bar in 1..6 {
            assert_eq!(read(&c, 0x10 + 4 * bar, 4), 0, "BAR{bar}");
        }
        assert_eq!(read(&c, 0x30, 4), 0, "no expansion ROM");
        assert_eq!(read(&c, 0x3c, 2), 0x01ff, "line writable, pin not");
        assert_eq!(
            read(&c, 0x40, 4),
            0x0081_0005,
            "only MSI enable is writable"
        );
        assert_eq!(read(&c, 0x44, 4), 0xffff_fffc);
        assert_eq!(read(&c, 0x48, 4), 0xffff_ffff);
        assert_eq!(read(&c, 0x4c, 4), 0x0000_ffff);
        assert!(c.msi_enabled());
        assert!(c.intx_disabled());
        for offset in 0x50..0x100 {
            assert_eq!(read(&c, offset, 1), 0, "offset {offset:#x}");
        }
        let c = space();
        let after: Vec<u64> = (0..32).map(|i| read(&c, i * 8, 8)).collect();
        assert_eq!(before, after);
    }

    #[test]
    fn bar_sizing_protocol() {
        let mut c = space();
        write(&mut c, 0x10, 4, 0xffff_ffff);
        assert_eq!(read(&c, 0x10, 4), 0xfff0_0000, "1 MiB, 32-bit memory");
        let size = !(read(&c, 0x10, 4) as u32 & !0xf) + 1;
        assert_eq!(size, 1 << 20);
        write(&mut c, 0x10, 4, 0xfe01_2345);
        assert_eq!(read(&c, 0x10, 4), 0xfe00_0000, "aligned to the size");
        // Sub-dword writes reach only their bytes.
        write(&mut c, 0x13, 1, 0xc0);
        assert_eq!(read(&c, 0x10, 4), 0xc000_0000);
        write(&mut c, 0x12, 2, 0x0012);
        assert_eq!(read(&c, 0x10, 4), 0x0010_0000);
        write(&mut c, 0x10, 2, 0xffff);
        assert_eq!(read(&c, 0x10, 4), 0x0010_0000, "below the size: read-only");
        // Other sizes: rounded to a power of two, at least 16.
        let mut small = ConfigSpace::new(&ID, 3);
        write(&mut small, 0x10, 4, 0xffff_ffff);
        assert_eq!(read(&small, 0x10, 4), 0xffff_fff0);
        let mut odd = ConfigSpace::new(&ID, 3000);
        write(&mut odd, 0x10, 4, 0xffff_ffff);
        assert_eq!(read(&odd, 0x10, 4), 0xffff_f000);
        let mut huge = ConfigSpace::new(&ID, u32::MAX);
        write(&mut huge, 0x10, 4, 0xffff_ffff);
        assert_eq!(read(&huge, 0x10, 4), 0x8000_0000);
    }

    #[test]
    fn command_status_and_interrupt_status() {
        let mut c = space();
        write(&mut c, 4, 2, u64::from(COMMAND_MEMORY_SPACE));
        assert_eq!(c.command(), COMMAND_MEMORY_SPACE);
        assert!(!c.intx_disabled());
        write(&mut c, 5, 1, 0x04);
        assert!(c.intx_disabled());
        assert_eq!(c.command(), COMMAND_MEMORY_SPACE | COMMAND_INTX_DISABLE);
        c.set_interrupt_status(true);
        assert_eq!(read(&c, 6, 2), 0x0018);
        write(&mut c, 6, 2, 0xffff);
        assert_eq!(read(&c, 6, 2), 0x0018, "status is read-only");
        c.set_interrupt_status(false);
        assert_eq!(read(&c, 6, 2), 0x0010);
    }

    #[test]
    fn msi_enable_bit() {
        let mut c = space();
        assert!(!c.msi_enabled());
        write(&mut c, 0x42, 2, 0xffff);
        assert!(c.msi_enabled());
        assert_eq!(read(&c, 0x42, 2), 0x0081);
        write(&mut c, 0x40, 4, 0);
        assert!(!c.msi_enabled());
        assert_eq!(read(&c, 0x40, 4), 0x0080_0005);
    }

    #[test]
    fn accesses_outside_the_space_fail() {
        let mut c = space();
        let mut b = [0; 4];
        assert_eq!(c.read(0x100, &mut b), Err(DeviceError::Unsupported));
        assert_eq!(c.read(0xfe, &mut b), Err(DeviceError::Unsupported));
        assert_eq!(c.read(u64::MAX, &mut b), Err(DeviceError::Unsupported));
        assert_eq!(c.write(u64::MAX - 1, &b), Err(DeviceError::Unsupported));
        assert_eq!(c.write(0x100, &b), Err(DeviceError::Unsupported));
        c.read(0, &mut []).unwrap();
        c.write(0x100, &[]).unwrap();
    }
}
