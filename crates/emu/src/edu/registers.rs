//! edu's BAR0 registers (QEMU `docs/specs/edu.rst`) as plain state: accesses in, values and
//! side effects out. Threads and interrupt lines are the device's business (`mod.rs`).

use devfd_device::DeviceError;

/// Identification (RO): `0xRRrr00ed`, major `RR`, minor `rr`.
pub(super) const IDENTIFICATION: u64 = 0x00;
/// Card liveness check (RW): reads the bitwise inverse of what was written.
pub(super) const LIVENESS: u64 = 0x04;
/// Factorial computation (RW): write n, read n! once the computing bit clears.
pub(super) const FACTORIAL: u64 = 0x08;
/// Status (RW): [`STATUS_COMPUTING`] (RO) and [`STATUS_IRQ_ON_FACTORIAL`].
pub(super) const STATUS: u64 = 0x20;
/// Interrupt status (RO): the bits that raised the interrupt.
pub(super) const INTERRUPT_STATUS: u64 = 0x24;
/// Interrupt raise (WO): ORs the value into the interrupt status and raises the interrupt.
pub(super) const INTERRUPT_RAISE: u64 = 0x60;
/// Interrupt acknowledge (WO): clears the value's bits from the interrupt status.
pub(super) const INTERRUPT_ACK: u64 = 0x64;
/// DMA source address (RW, 4 or 8 bytes).
pub(super) const DMA_SOURCE: u64 = 0x80;
/// DMA destination address (RW).
pub(super) const DMA_DESTINATION: u64 = 0x88;
/// DMA transfer count in bytes (RW).
pub(super) const DMA_COUNT: u64 = 0x90;
/// DMA command (RW): [`DMA_RUN`], [`DMA_TO_PCI`], [`DMA_IRQ`].
pub(super) const DMA_COMMAND: u64 = 0x98;
/// DMA command: start a transfer; cleared when it is done.
pub(super) const DMA_RUN: u64 = 0x1;
/// DMA command: from the device's buffer to bus memory (else from bus memory to the buffer).
pub(super) const DMA_TO_PCI: u64 = 0x2;
/// DMA command: raise an interrupt ([`IRQ_DMA_DONE`]) when the transfer is done.
pub(super) const DMA_IRQ: u64 = 0x4;
/// Interrupt status bit a finished DMA sets (with [`DMA_IRQ`]).
pub(super) const IRQ_DMA_DONE: u32 = 0x100;
/// Device address of the 4 KiB DMA buffer.
pub(super) const DMA_BUFFER_START: u64 = 0x40000;
/// Size of the DMA buffer.
pub(super) const DMA_BUFFER_SIZE: u64 = 4096;

/// The identification value: version 1.0.
pub(super) const ID_VALUE: u32 = 0x0100_00ed;
/// Status: a factorial is being computed.
pub(super) const STATUS_COMPUTING: u32 = 0x01;
/// Status: raise an interrupt when a factorial is done.
pub(super) const STATUS_IRQ_ON_FACTORIAL: u32 = 0x80;
/// Interrupt status bit a finished factorial sets.
pub(super) const IRQ_FACTORIAL_DONE: u32 = 0x01;
/// edu.rst: only 4-byte accesses below this offset; 4 or 8 bytes from it on.
const WIDE_ACCESS_START: u64 = 0x80;

/// What a register write asks of the device beyond the register state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Effect {
    /// Nothing.
    None,
    /// Compute the factorial of the value; the computing bit is set.
    StartFactorial(u32),
    /// An interrupt was raised: bits were ORed into the interrupt status.
    Raise,
    /// Bits were acknowledged: the interrupt status may have dropped.
    Acknowledge,
    /// Start the DMA transfer the DMA registers describe.
    StartDma,
}

/// A DMA transfer as the registers describe it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct DmaTransfer {
    pub(super) source: u64,
    pub(super) destination: u64,
    pub(super) count: u64,
    pub(super) to_pci: bool,
}

/// The register state of BAR0, all zero at power-on.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(super) struct Registers {
    liveness: u32,
    factorial: u32,
    status: u32,
    interrupt_status: u32,
    dma_source: u64,
    dma_destination: u64,
    dma_count: u64,
    dma_command: u64,
}

impl Registers {
    /// The value a read of `len` bytes at `offset` returns (little-endian, low `len` bytes).
    ///
    /// Write-only and unimplemented registers read as all ones, as QEMU's model answers.
    pub(super) fn read(&self, offset: u64, len: usize) -> Result<u64, DeviceError> {
        check_width(offset, len)?;
        Ok(match offset {
            IDENTIFICATION => u64::from(ID_VALUE),
            LIVENESS => u64::from(!self.liveness),
            FACTORIAL => u64::from(self.factorial),
            STATUS => u64::from(self.status),
            INTERRUPT_STATUS => u64::from(self.interrupt_status),
            DMA_SOURCE => self.dma_source,
            DMA_DESTINATION => self.dma_destination,
            DMA_COUNT => self.dma_count,
            DMA_COMMAND => self.dma_command,
            _ => u64::MAX,
        })
    }

    /// Applies a write of `len` bytes of `value` at `offset`; writes to read-only and
    /// unimplemented registers are ignored.
    pub(super) fn write(
        &mut self,
        offset: u64,
        len: usize,
        value: u64,
    ) -> Result<Effect, DeviceError> {
        check_width(offset, len)?;
        // The DMA registers are 64 bits wide and ignore writes while a transfer runs.
        let running = self.dma_command & DMA_RUN != 0;
        match offset {
            DMA_SOURCE | DMA_DESTINATION | DMA_COUNT | DMA_COMMAND if running => {
                return Ok(Effect::None);
            }
            DMA_SOURCE => self.dma_source = value,
            DMA_DESTINATION => self.dma_destination = value,
            DMA_COUNT => self.dma_count = value,
            // Only a write that sets the run bit is a command (QEMU's edu.c).
            DMA_COMMAND if value & DMA_RUN != 0 => {
                self.dma_command = value;
                return Ok(Effect::StartDma);
            }
            _ => {}
        }
        // Every other register that takes a write is 32 bits wide.
        let value = value as u32;
        match offset {
            LIVENESS => self.liveness = value,
            // A new value while computing is ignored: the running computation owns the register.
            FACTORIAL if self.status & STATUS_COMPUTING == 0 => {
                self.factorial = value;
                self.status |= STATUS_COMPUTING;
                return Ok(Effect::StartFactorial(value));
            }
            STATUS => {
                self.status = (self.status & STATUS_COMPUTING) | (value & STATUS_IRQ_ON_FACTORIAL);
            }
            INTERRUPT_RAISE => {
                self.interrupt_status |= value;
                return Ok(Effect::Raise);
            }
            INTERRUPT_ACK => {
                self.interrupt_status &= !value;
                return Ok(Effect::Acknowledge);
            }
            _ => {}
        }
        Ok(Effect::None)
    }

    /// Stores a finished factorial and clears the computing bit; returns whether it raises
    /// an interrupt (then [`IRQ_FACTORIAL_DONE`] is set in the interrupt status).
    pub(super) fn finish_factorial(&mut self, result: u32) -> bool {
        self.factorial = result;
        self.status &= !STATUS_COMPUTING;
        let raise = self.status & STATUS_IRQ_ON_FACTORIAL != 0;
        if raise {
            self.interrupt_status |= IRQ_FACTORIAL_DONE;
        }
        raise
    }

    /// The transfer the DMA registers describe, if one is running.
    pub(super) fn dma_transfer(&self) -> Option<DmaTransfer> {
        (self.dma_command & DMA_RUN != 0).then_some(DmaTransfer {
            source: self.dma_source,
            destination: self.dma_destination,
            count: self.dma_count,
            to_pci: self.dma_command & DMA_TO_PCI != 0,
        })
    }

    /// Ends the running transfer; returns whether it raises an interrupt (then
    /// [`IRQ_DMA_DONE`] is set in the interrupt status).
    pub(super) fn finish_dma(&mut self) -> bool {
        self.dma_command &= !DMA_RUN;
        let raise = self.dma_command & DMA_IRQ != 0;
        if raise {
            self.interrupt_status |= IRQ_DMA_DONE;
        }
        raise
    }

    /// The interrupt status register.
    pub(super) fn interrupt_status(&self) -> u32 {
        self.interrupt_status
    }
}

/// `n!` modulo 2³². Stops early: from 34! on, 2³² divides the product, so it is 0.
pub(super) fn factorial(n: u32) -> u32 {
    let mut product: u32 = 1;
    for i in 2..=n {
        product = product.wrapping_mul(i);
        if product == 0 {
            break;
        }
    }
    product
}

/// edu.rst's access sizes: 4 bytes below 0x80, 4 or 8 from there on, naturally aligned.
fn check_width(offset: u64, len: usize) -> Result<(), DeviceError> {
    let allowed = match len {
        4 => true,
        8 => offset >= WIDE_ACCESS_START,
        _ => false,
    };
    if allowed && offset.is_multiple_of(len as u64) {
        Ok(())
    } else {
        Err(DeviceError::Unsupported)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn factorials() {
        assert_eq!(factorial(0), 1);
        assert_eq!(factorial(1), 1);
        assert_eq!(factorial(5), 120);
        assert_eq!(factorial(12), 479_001_600);
        assert_eq!(factorial(13), (6_227_020_800u64 % (1 << 32)) as u32);
        assert_ne!(factorial(33), 0);
        assert_eq!(factorial(34), 0);
        assert_eq!(factorial(u32::MAX), 0);
    }

    #[test]
    fn access_widths_follow_edu_rst() {
        let r = Registers::default();
        for len in [1, 2, 8] {
            assert_eq!(r.read(0, len), Err(DeviceError::Unsupported), "{len} bytes");
        }
        assert_eq!(r.read(0x78, 8), Err(DeviceError::Unsupported));
        assert_eq!(r.read(0x02, 4), Err(DeviceError::Unsupported));
        assert_eq!(r.read(0x84, 8), Err(DeviceError::Unsupported));
        assert_eq!(r.read(u64::MAX, 8), Err(DeviceError::Unsupported));
        assert_eq!(r.read(0x80, 8), Ok(0));
        assert_eq!(r.read(0x84, 4), Ok(u64::MAX));
        assert_eq!(r.read(0x98, 8), Ok(0));
        assert_eq!(r.read(0xa0, 8), Ok(u64::MAX));
        assert_eq!(r.read(0xf_fffc, 4), Ok(u64::MAX));
        assert_eq!(r.read(u64::MAX - 7, 8), Ok(u64::MAX));
    }

    #[test]
    fn register_semantics() {
        let mut r = Registers::default();
        assert_eq!(r.read(IDENTIFICATION, 4), Ok(0x0100_00ed));
        assert_eq!(r.read(LIVENESS, 4), Ok(0xffff_ffff));
        assert_eq!(r.write(LIVENESS, 4, 0x1234_5678), Ok(Effect::None));
        assert_eq!(r.read(LIVENESS, 4), Ok(0xedcb_a987));
        // Read-only and write-only registers.
        assert_eq!(r.write(IDENTIFICATION, 4, 0), Ok(Effect::None));
        assert_eq!(r.read(IDENTIFICATION, 4), Ok(0x0100_00ed));
        assert_eq!(r.write(INTERRUPT_STATUS, 4, 7), Ok(Effect::None));
        assert_eq!(r.read(INTERRUPT_STATUS, 4), Ok(0));
        assert_eq!(r.read(INTERRUPT_RAISE, 4), Ok(u64::MAX));
        assert_eq!(r.read(INTERRUPT_ACK, 4), Ok(u64::MAX));
        // Status: only the interrupt-on-factorial bit is writable.
        assert_eq!(r.write(STATUS, 4, 0xffff_ffff), Ok(Effect::None));
        assert_eq!(r.read(STATUS, 4), Ok(0x80));
        // Interrupt raise ORs in, acknowledge clears.
        assert_eq!(r.write(INTERRUPT_RAISE, 4, 0x5), Ok(Effect::Raise));
        assert_eq!(r.write(INTERRUPT_RAISE, 4, 0x100), Ok(Effect::Raise));
        assert_eq!(r.read(INTERRUPT_STATUS, 4), Ok(0x105));
        assert_eq!(r.write(INTERRUPT_ACK, 4, 0x101), Ok(Effect::Acknowledge));
        assert_eq!(r.interrupt_status(), 0x4);
        assert_eq!(r.write(0x40, 2, 1), Err(DeviceError::Unsupported));
    }

    #[test]
    fn dma_registers() {
        let mut r = Registers::default();
        assert_eq!(r.write(DMA_SOURCE, 8, 0x10_0000), Ok(Effect::None));
        assert_eq!(
            r.write(DMA_DESTINATION, 8, DMA_BUFFER_START),
            Ok(Effect::None)
        );
        assert_eq!(r.write(DMA_COUNT, 4, 64), Ok(Effect::None));
        assert_eq!(r.read(DMA_SOURCE, 8), Ok(0x10_0000));
        // A command without the run bit is not a command.
        assert_eq!(r.write(DMA_COMMAND, 8, DMA_IRQ), Ok(Effect::None));
        assert_eq!(r.dma_transfer(), None);
        assert_eq!(
            r.write(DMA_COMMAND, 8, DMA_RUN | DMA_IRQ),
            Ok(Effect::StartDma)
        );
        assert_eq!(
            r.dma_transfer(),
            Some(DmaTransfer {
                source: 0x10_0000,
                destination: DMA_BUFFER_START,
                count: 64,
                to_pci: false
            })
        );
        // Ignored while running.
        assert_eq!(r.write(DMA_COUNT, 8, 1), Ok(Effect::None));
        assert_eq!(r.read(DMA_COUNT, 8), Ok(64));
        assert!(r.finish_dma());
        assert_eq!(r.read(DMA_COMMAND, 8), Ok(DMA_IRQ));
        assert_eq!(r.interrupt_status(), IRQ_DMA_DONE);
    }

    #[test]
    fn factorial_register() {
        let mut r = Registers::default();
        assert_eq!(r.write(FACTORIAL, 4, 6), Ok(Effect::StartFactorial(6)));
        assert_eq!(r.read(STATUS, 4), Ok(1));
        assert_eq!(r.read(FACTORIAL, 4), Ok(6));
        // Ignored while computing; the status write keeps the computing bit.
        assert_eq!(r.write(FACTORIAL, 4, 9), Ok(Effect::None));
        assert_eq!(r.write(STATUS, 4, 0), Ok(Effect::None));
        assert_eq!(r.read(STATUS, 4), Ok(1));
        assert!(!r.finish_factorial(720));
        assert_eq!(r.read(FACTORIAL, 4), Ok(720));
        assert_eq!(r.read(STATUS, 4), Ok(0));
        assert_eq!(r.interrupt_status(), 0);
        r.write(STATUS, 4, 0x80).unwrap();
        r.write(FACTORIAL, 4, 3).unwrap();
        assert!(r.finish_factorial(6));
        assert_eq!(r.read(STATUS, 4), Ok(0x80));
        assert_eq!(r.interrupt_status(), IRQ_FACTORIAL_DONE);
    }
}
