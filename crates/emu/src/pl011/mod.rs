//! The ARM PrimeCell UART PL011 (ARM DDI 0183) as a device-tree platform device, as QEMU's
//! `virt` machine has it at `/pl011@9000000`: data, flag, control, FIFO and interrupt
//! registers, the peripheral and PrimeCell IDs, and one level-triggered interrupt (UARTINTR,
//! the OR of the masked interrupts).
//!
//! What a driver writes to UARTDR comes out, line by line, through [`Pl011Options::output`]
//! (`devfd serve` prints `devfd: uart0: hello` on standard error). Bytes to receive are fed
//! with [`Pl011::receive`]. Registers take 1-, 2- and 4-byte accesses (Linux's driver uses
//! 16-bit ones, its early console 8- or 32-bit ones); 8-byte accesses fail.

mod uart;

use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use devfd_device::{Device, DeviceError, Interrupts, le_value, put_le_value};
use devfd_format::model::{DeviceDesc, DtLocation, InterruptDesc, RegionDesc};
use devfd_format::wire::{
    DT_PROP_INTERRUPTS, DT_PROP_REG, IRQ_AUTOMASKED, IRQ_KIND_WIRED, IRQ_LEVEL, IRQ_MASKABLE,
    REGION_READ, REGION_WRITE, WIDTH_1, WIDTH_2, WIDTH_4,
};
use devfd_format::{AccessWidths, Bus};

use crate::EmuError;
use uart::Uart;

/// The device-tree node of the UART on QEMU's `virt` machine.
const DT_NODE: &str = "/pl011@9000000";
/// Size of the register block.
pub(crate) const REGISTERS_SIZE: u64 = 0x1000;
/// Longest line passed to the output; a longer one is passed in pieces.
const MAX_LINE: usize = 4096;

/// Where transmitted lines go: called with each complete line, without its `\n`.
pub type LineSink = Arc<dyn Fn(&[u8]) + Send + Sync>;

/// How a [`Pl011`] starts.
#[derive(Clone)]
pub struct Pl011Options {
    /// Receives each line the driver transmits (without the newline). Default: standard
    /// error, as `devfd: uart: LINE`.
    pub output: LineSink,
}

impl Default for Pl011Options {
    fn default() -> Self {
        Pl011Options {
            output: crate::dt_model::stderr_lines("uart"),
        }
    }
}

impl fmt::Debug for Pl011Options {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Pl011Options").finish_non_exhaustive()
    }
}

struct State {
    uart: Uart,
    /// The line being transmitted, up to its newline.
    line: Vec<u8>,
}

/// An ARM PL011 UART.
pub struct Pl011 {
    state: Mutex<State>,
    interrupts: Interrupts,
    description: Vec<u8>,
    output: LineSink,
}

impl Pl011 {
    /// Index of the register region.
    pub const REGISTERS_REGION: u32 = 0;
    /// Index of the interrupt (UARTINTR).
    pub const INTERRUPT: u32 = 0;

    /// A PL011 with the description of QEMU virt's `/pl011@9000000` ([`Self::device_desc`]).
    pub fn new(options: Pl011Options) -> Result<Self, EmuError> {
        Self::with_description(options, &Self::device_desc())
    }

    /// A PL011 with another description, such as one derived from a device-tree node
    /// ([`crate::dt_model`]): region [`Self::REGISTERS_REGION`] is the 4 KiB register block,
    /// interrupt [`Self::INTERRUPT`], if present, UARTINTR.
    pub fn with_description(options: Pl011Options, desc: &DeviceDesc) -> Result<Self, EmuError> {
        let description = desc.build()?;
        let interrupts = Interrupts::new(&devfd_format::parse(&description)?);
        Ok(Pl011 {
            state: Mutex::new(State {
                uart: Uart::new(),
                line: Vec::new(),
            }),
            interrupts,
            description,
            output: options.output,
        })
    }

    /// The description of QEMU virt's UART: platform bus, compatible `arm,pl011`,
    /// `arm,primecell`; region 0 the 4 KiB register block at file offset 0x1000 (1-, 2- and
    /// 4-byte accesses); interrupt 0 UARTINTR (level, maskable, automasked) at 0x2000.
    pub fn device_desc() -> DeviceDesc {
        let mut d = DeviceDesc::new(Bus::Platform);
        d.compatible = vec!["arm,pl011".into(), "arm,primecell".into()];
        d.label = Some("uart".into());
        let mut reg = DtLocation::new(DT_NODE, DT_PROP_REG, 0);
        reg.address = Some(0x900_0000);
        d.regions.push(RegionDesc {
            index: Self::REGISTERS_REGION,
            offset: 0x1000,
            size: REGISTERS_SIZE,
            flags: REGION_READ | REGION_WRITE,
            location: Default::default(),
            dt: Some(reg),
            label: Some("registers".into()),
            sparse: None,
            dma_address: None,
            access_widths: Self::access_widths(),
        });
        d.interrupts.push(InterruptDesc {
            index: Self::INTERRUPT,
            count: 1,
            kind: IRQ_KIND_WIRED,
            flags: IRQ_LEVEL | IRQ_MASKABLE | IRQ_AUTOMASKED,
            control_offset: 0x2000,
            dt: Some(DtLocation::new(DT_NODE, DT_PROP_INTERRUPTS, 0)),
            label: Some("uartintr".into()),
        });
        d
    }

    /// The access widths the registers accept: 1, 2 and 4 bytes.
    pub fn access_widths() -> Option<AccessWidths> {
        AccessWidths::new(WIDTH_1 | WIDTH_2 | WIDTH_4)
    }

    /// Bytes arriving on the UART's receive line (dropped unless UARTEN and RXE are set).
    pub fn receive(&self, bytes: &[u8]) {
        let mut state = self.lock();
        state.uart.receive(bytes);
        self.sync_line(&state);
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // Every update leaves the state consistent, so a panicked holder's state is usable.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn sync_line(&self, state: &State) {
        self.interrupts
            .set_level(Self::INTERRUPT, 0, state.uart.line());
    }

    /// Appends transmitted bytes to the current line and passes on every completed one.
    fn emit(&self, state: &mut State, bytes: &[u8]) {
        for &b in bytes {
            if b == b'\n' {
                let line = std::mem::take(&mut state.line);
                let line = line.strip_suffix(b"\r").unwrap_or(&line);
                (self.output)(line);
            } else {
                state.line.push(b);
                if state.line.len() >= MAX_LINE {
                    (self.output)(&std::mem::take(&mut state.line));
                }
            }
        }
    }
}

/// Registers are 32-bit words; 1- and 2-byte accesses reach the low bits of the word.
fn check_access(region: u32, offset: u64, len: usize) -> Result<u64, DeviceError> {
    let ok = region == Pl011::REGISTERS_REGION
        && matches!(len, 1 | 2 | 4)
        && offset < REGISTERS_SIZE
        && offset.is_multiple_of(len as u64);
    if !ok {
        return Err(DeviceError::Unsupported);
    }
    Ok(offset & !3)
}

impl Device for Pl011 {
    fn description(&self) -> &[u8] {
        &self.description
    }

    fn read(&self, region: u32, offset: u64, data: &mut [u8]) -> Result<(), DeviceError> {
        let word = check_access(region, offset, data.len())?;
        let mut state = self.lock();
        let value = state
            .uart
            .read(word)
            .wrapping_shr(((offset & 3) as u32).wrapping_mul(8));
        self.sync_line(&state);
        put_le_value(data, u64::from(value));
        Ok(())
    }

    fn write(&self, region: u32, offset: u64, data: &[u8]) -> Result<(), DeviceError> {
        let word = check_access(region, offset, data.len())?;
        // A narrow write to the low bytes of a register writes the register (as on an APB
        // bus, which carries whole words); writes to its upper bytes do nothing.
        if offset & 3 != 0 {
            return Ok(());
        }
        let mut state = self.lock();
        let sent = state.uart.write(word, le_value(data) as u32);
        self.emit(&mut state, &sent);
        self.sync_line(&state);
        Ok(())
    }

    fn interrupts(&self) -> &Interrupts {
        &self.interrupts
    }

    fn reset(&self) {
        let mut state = self.lock();
        state.uart = Uart::new();
        if !state.line.is_empty() {
            let line = std::mem::take(&mut state.line);
            (self.output)(&line);
        }
        self.interrupts.reset();
    }

    fn kind(&self) -> &str {
        "pl011"
    }
}

impl Drop for Pl011 {
    fn drop(&mut self) {
        // A last line without its newline is still shown.
        let line = std::mem::take(&mut self.lock().line);
        if !line.is_empty() {
            (self.output)(&line);
        }
    }
}

impl fmt::Debug for Pl011 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Pl011").finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use uart::*;

    fn captured() -> (Pl011, Arc<Mutex<Vec<String>>>) {
        let lines = Arc::new(Mutex::new(Vec::new()));
        let sink = lines.clone();
        let d = Pl011::new(Pl011Options {
            output: Arc::new(move |l: &[u8]| {
                sink.lock()
                    .unwrap()
                    .push(String::from_utf8_lossy(l).into_owned())
            }),
        })
        .unwrap();
        (d, lines)
    }

    fn write(d: &Pl011, offset: u64, value: u32) {
        d.write(0, offset, &value.to_le_bytes()).unwrap();
    }

    fn read(d: &Pl011, offset: u64) -> u32 {
        let mut b = [0; 4];
        d.read(0, offset, &mut b).unwrap();
        u32::from_le_bytes(b)
    }

    #[test]
    fn lines_come_out_of_the_sink() {
        let (d, lines) = captured();
        write(&d, UARTCR, CR_UARTEN | CR_TXE | CR_RXE);
        for b in b"hello\r\nwor" {
            d.write(0, UARTDR, &[*b]).unwrap(); // byte writes, as an early console does
        }
        assert_eq!(*lines.lock().unwrap(), ["hello"]);
        for b in b"ld\n" {
            d.write(0, UARTDR, &u16::from(*b).to_le_bytes()).unwrap(); // 16-bit, as Linux
        }
        assert_eq!(*lines.lock().unwrap(), ["hello", "world"]);
        write(&d, UARTDR, u32::from(b'!'));
        drop(d);
        assert_eq!(*lines.lock().unwrap(), ["hello", "world", "!"]);
    }

    #[test]
    fn interrupt_line_follows_mis() {
        let (d, _) = captured();
        let sub = d.interrupts().subscribe();
        write(&d, UARTCR, CR_UARTEN | CR_TXE | CR_RXE);
        write(&d, UARTIMSC, INT_TX);
        assert_eq!(sub.take(0, 0), Some(0), "nothing sent yet");
        write(&d, UARTDR, u32::from(b'x'));
        assert_eq!(sub.take(0, 0), Some(1));
        assert_eq!(read(&d, UARTMIS), INT_TX);
        write(&d, UARTICR, INT_TX);
        d.interrupts().set_masked(0, 0, false);
        assert_eq!(
            sub.take(0, 0),
            Some(0),
            "cleared at the device, then acknowledged"
        );
        // Receive interrupts.
        write(&d, UARTIMSC, INT_RX);
        d.receive(b"k");
        assert_eq!(sub.take(0, 0), Some(1));
        assert_eq!(read(&d, UARTDR), u32::from(b'k'));
        assert_eq!(read(&d, UARTMIS), 0);
    }

    #[test]
    fn access_widths_and_ids() {
        let (d, _) = captured();
        let mut b = [0u8; 8];
        assert_eq!(d.read(0, 0, &mut b), Err(DeviceError::Unsupported));
        assert_eq!(d.read(0, 1, &mut b[..2]), Err(DeviceError::Unsupported));
        assert_eq!(
            d.read(0, 0x1000, &mut b[..4]),
            Err(DeviceError::Unsupported)
        );
        assert_eq!(d.read(1, 0, &mut b[..4]), Err(DeviceError::Unsupported));
        d.read(0, UARTFR, &mut b[..1]).unwrap();
        assert_eq!(u32::from(b[0]), FR_TXFE | FR_RXFE);
        d.read(0, 0xfe0, &mut b[..2]).unwrap();
        assert_eq!(b[..2], [0x11, 0]);
        d.read(0, UARTCR + 1, &mut b[..1]).unwrap();
        assert_eq!(b[0], 0x03, "upper byte of CR = 0x300");
        assert_eq!(d.kind(), "pl011");
        let parsed = devfd_format::parse(d.description()).unwrap();
        assert_eq!(parsed.region(0).unwrap().access(), Pl011::access_widths());
    }

    #[test]
    fn reset_restores_power_on_state() {
        let (d, lines) = captured();
        write(&d, UARTCR, CR_UARTEN | CR_TXE);
        write(&d, UARTIMSC, INT_TX);
        write(&d, UARTDR, u32::from(b'p'));
        d.reset();
        assert_eq!(*lines.lock().unwrap(), ["p"], "the partial line is flushed");
        assert_eq!(read(&d, UARTCR), 0x300);
        assert_eq!(read(&d, UARTIMSC), 0);
        assert_eq!(d.interrupts().is_masked(0, 0), Some(false));
    }
}
