//! The PL011's registers (ARM PrimeCell UART PL011 TRM, DDI 0183) as plain state: writes
//! and reads go in, transmitted bytes and the interrupt line come out, so the logic is
//! testable without threads.
//!
//! There is no wire: a byte leaves the transmit FIFO as soon as the UART and its transmitter
//! are enabled (UARTCR UARTEN and TXE), so the FIFO drains at once and BUSY is set only while
//! bytes wait for an enable. Received bytes come from [`Uart::receive`].

use std::collections::VecDeque;

/// Data register: write transmits, read pops the receive FIFO (data + error bits 8–11).
pub(super) const UARTDR: u64 = 0x000;
/// Receive status (read) / error clear (write).
pub(super) const UARTRSR: u64 = 0x004;
/// Flag register (read-only).
pub(super) const UARTFR: u64 = 0x018;
/// IrDA low-power counter.
pub(super) const UARTILPR: u64 = 0x020;
/// Integer baud rate divisor.
pub(super) const UARTIBRD: u64 = 0x024;
/// Fractional baud rate divisor.
pub(super) const UARTFBRD: u64 = 0x028;
/// Line control: bit 4 FEN enables the FIFOs.
pub(super) const UARTLCR_H: u64 = 0x02c;
/// Control: bit 0 UARTEN, bit 8 TXE, bit 9 RXE.
pub(super) const UARTCR: u64 = 0x030;
/// FIFO level select: TX bits 2:0, RX bits 5:3.
pub(super) const UARTIFLS: u64 = 0x034;
/// Interrupt mask set/clear.
pub(super) const UARTIMSC: u64 = 0x038;
/// Raw interrupt status (read-only).
pub(super) const UARTRIS: u64 = 0x03c;
/// Masked interrupt status (read-only).
pub(super) const UARTMIS: u64 = 0x040;
/// Interrupt clear (write-only).
pub(super) const UARTICR: u64 = 0x044;
/// DMA control.
pub(super) const UARTDMACR: u64 = 0x048;
/// First of the four peripheral identification registers.
const PERIPH_ID0: u64 = 0xfe0;
/// First of the four PrimeCell identification registers.
const PCELL_ID0: u64 = 0xff0;

/// PeriphID0–3 as QEMU's `pl011` presents them: part 0x011, designer ARM, revision 1.
const PERIPH_ID: [u32; 4] = [0x11, 0x10, 0x14, 0x00];
/// PCellID0–3: the PrimeCell preamble.
const PCELL_ID: [u32; 4] = [0x0d, 0xf0, 0x05, 0xb1];

/// UARTFR bits.
pub(super) const FR_BUSY: u32 = 1 << 3;
pub(super) const FR_RXFE: u32 = 1 << 4;
pub(super) const FR_TXFF: u32 = 1 << 5;
pub(super) const FR_RXFF: u32 = 1 << 6;
pub(super) const FR_TXFE: u32 = 1 << 7;

/// Interrupt bits of IMSC, RIS, MIS and ICR.
pub(super) const INT_RX: u32 = 1 << 4;
pub(super) const INT_TX: u32 = 1 << 5;
pub(super) const INT_RT: u32 = 1 << 6;
pub(super) const INT_OE: u32 = 1 << 10;
/// Every interrupt bit (RI, CTS, DCD, DSR modem bits 0–3 included).
const INT_ALL: u32 = 0x7ff;

/// UARTCR bits.
pub(super) const CR_UARTEN: u32 = 1 << 0;
pub(super) const CR_TXE: u32 = 1 << 8;
pub(super) const CR_RXE: u32 = 1 << 9;
/// UARTLCR_H FIFO enable.
pub(super) const LCR_FEN: u32 = 1 << 4;
/// Receive error bit: overrun (UARTRSR bit 3, UARTDR bit 11).
const RSR_OE: u32 = 1 << 3;

/// FIFO depth with FEN; without it the FIFOs are one-entry holding registers.
const FIFO_DEPTH: usize = 16;

/// The register state of a PL011.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Uart {
    tx: VecDeque<u8>,
    rx: VecDeque<u16>,
    rsr: u32,
    ilpr: u32,
    ibrd: u32,
    fbrd: u32,
    lcr_h: u32,
    cr: u32,
    ifls: u32,
    imsc: u32,
    ris: u32,
    dmacr: u32,
}

impl Uart {
    /// The power-on state: disabled (UARTCR = 0x300), FIFOs off, nothing pending.
    pub(super) fn new() -> Self {
        Uart {
            tx: VecDeque::new(),
            rx: VecDeque::new(),
            rsr: 0,
            ilpr: 0,
            ibrd: 0,
            fbrd: 0,
            lcr_h: 0,
            cr: CR_TXE | CR_RXE,
            ifls: 0x12,
            imsc: 0,
            ris: 0,
            dmacr: 0,
        }
    }

    fn depth(&self) -> usize {
        if self.lcr_h & LCR_FEN != 0 {
            FIFO_DEPTH
        } else {
            1
        }
    }

    /// A FIFO trigger level in entries: 1/8, 1/4, 1/2, 3/4 or 7/8 of 16.
    fn level(select: u32) -> usize {
        match select & 7 {
            0 => 2,
            1 => 4,
            3 => 12,
            4 => 14,
            _ => 8,
        }
    }

    fn tx_level(&self) -> usize {
        Self::level(self.ifls)
    }

    fn rx_level(&self) -> usize {
        Self::level(self.ifls >> 3)
    }

    /// The interrupt output (UARTINTR): any masked interrupt.
    pub(super) fn line(&self) -> bool {
        self.ris & self.imsc != 0
    }

    fn flags(&self) -> u32 {
        let mut fr = 0;
        if !self.tx.is_empty() {
            fr |= FR_BUSY;
        } else {
            fr |= FR_TXFE;
        }
        if self.tx.len() >= self.depth() {
            fr |= FR_TXFF;
        }
        if self.rx.is_empty() {
            fr |= FR_RXFE;
        }
        if self.rx.len() >= self.depth() {
            fr |= FR_RXFF;
        }
        fr
    }

    /// Sends what the transmit FIFO holds if the transmitter is enabled; returns the bytes.
    fn drain(&mut self, out: &mut Vec<u8>) {
        if self.cr & (CR_UARTEN | CR_TXE) != (CR_UARTEN | CR_TXE) || self.tx.is_empty() {
            return;
        }
        out.extend(self.tx.drain(..));
        // The FIFO went through (or, without FIFOs, the holding register became empty):
        // the transmit interrupt is raised (TRM 3.4.2, UARTTXINTR).
        self.ris |= INT_TX;
    }

    /// Updates the transmit interrupt for the FIFO level after a write (TRM: cleared by
    /// filling the FIFO above the trigger level).
    fn tx_level_changed(&mut self) {
        let above = if self.lcr_h & LCR_FEN != 0 {
            self.tx.len() > self.tx_level()
        } else {
            !self.tx.is_empty()
        };
        if above {
            self.ris &= !INT_TX;
        }
    }

    fn rx_level_changed(&mut self) {
        let reached = if self.lcr_h & LCR_FEN != 0 {
            self.rx.len() >= self.rx_level()
        } else {
            !self.rx.is_empty()
        };
        if reached {
            self.ris |= INT_RX;
        } else {
            self.ris &= !INT_RX;
        }
        if self.rx.is_empty() {
            self.ris &= !INT_RT;
        }
    }

    /// Reads register `offset` (a multiple of 4 inside the 4 KiB block).
    pub(super) fn read(&mut self, offset: u64) -> u32 {
        match offset {
            UARTDR => {
                let Some(v) = self.rx.pop_front() else {
                    return 0;
                };
                self.rsr = u32::from(v >> 8) & 0xf;
                self.rx_level_changed();
                u32::from(v)
            }
            UARTRSR => self.rsr,
            UARTFR => self.flags(),
            UARTILPR => self.ilpr,
            UARTIBRD => self.ibrd,
            UARTFBRD => self.fbrd,
            UARTLCR_H => self.lcr_h,
            UARTCR => self.cr,
            UARTIFLS => self.ifls,
            UARTIMSC => self.imsc,
            UARTRIS => self.ris,
            UARTMIS => self.ris & self.imsc,
            UARTDMACR => self.dmacr,
            PERIPH_ID0..=0xfec => id_word(&PERIPH_ID, offset.wrapping_sub(PERIPH_ID0)),
            PCELL_ID0..=0xffc => id_word(&PCELL_ID, offset.wrapping_sub(PCELL_ID0)),
            _ => 0,
        }
    }

    /// Writes register `offset`; returns the bytes transmitted by the write.
    pub(super) fn write(&mut self, offset: u64, value: u32) -> Vec<u8> {
        let mut out = Vec::new();
        match offset {
            UARTDR => {
                // A write to a full FIFO is lost (there is no transmit overrun flag).
                if self.tx.len() < self.depth() {
                    self.tx.push_back(value as u8);
                }
                self.tx_level_changed();
                self.drain(&mut out);
            }
            UARTRSR => self.rsr = 0,
            UARTILPR => self.ilpr = value & 0xff,
            UARTIBRD => self.ibrd = value & 0xffff,
            UARTFBRD => self.fbrd = value & 0x3f,
            UARTLCR_H => {
                // Changing FEN flushes the FIFOs (QEMU does the same).
                if (self.lcr_h ^ value) & LCR_FEN != 0 {
                    self.tx.clear();
                    self.rx.clear();
                    self.rx_level_changed();
                }
                self.lcr_h = value & 0xff;
            }
            UARTCR => {
                self.cr = value & 0xff87;
                self.drain(&mut out);
            }
            UARTIFLS => self.ifls = value & 0x3f,
            UARTIMSC => self.imsc = value & INT_ALL,
            UARTICR => self.ris &= !(value & INT_ALL),
            UARTDMACR => self.dmacr = value & 0x7,
            _ => {}
        }
        out
    }

    /// Bytes arriving on the receive line. Dropped while the receiver is disabled; a byte that
    /// finds the FIFO full is an overrun (RSR and RIS OE). The end of a burst with bytes left
    /// below the trigger level is a receive timeout (RTRIS).
    pub(super) fn receive(&mut self, bytes: &[u8]) {
        if self.cr & (CR_UARTEN | CR_RXE) != (CR_UARTEN | CR_RXE) {
            return;
        }
        for &b in bytes {
            if self.rx.len() >= self.depth() {
                self.rsr |= RSR_OE;
                self.ris |= INT_OE;
                if let Some(last) = self.rx.back_mut() {
                    *last |= (RSR_OE as u16) << 8;
                }
                continue;
            }
            self.rx.push_back(u16::from(b));
        }
        self.rx_level_changed();
        if !self.rx.is_empty() {
            self.ris |= INT_RT;
        }
    }
}

fn id_word(ids: &[u32; 4], rel: u64) -> u32 {
    ids.get((rel >> 2) as usize).copied().unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn enabled() -> Uart {
        let mut u = Uart::new();
        assert!(u.write(UARTCR, CR_UARTEN | CR_TXE | CR_RXE).is_empty());
        u
    }

    #[test]
    fn power_on_state() {
        let mut u = Uart::new();
        assert_eq!(u.read(UARTCR), 0x300);
        assert_eq!(u.read(UARTFR), FR_TXFE | FR_RXFE);
        assert_eq!(u.read(UARTIFLS), 0x12);
        assert_eq!((u.read(UARTRIS), u.read(UARTMIS)), (0, 0));
        let id: Vec<u32> = (0..8).map(|i| u.read(0xfe0 + 4 * i)).collect();
        assert_eq!(id, [0x11, 0x10, 0x14, 0x00, 0x0d, 0xf0, 0x05, 0xb1]);
    }

    #[test]
    fn transmit_when_enabled() {
        let mut u = enabled();
        assert_eq!(u.write(UARTDR, u32::from(b'h')), b"h");
        assert_eq!(u.read(UARTFR) & (FR_TXFE | FR_BUSY | FR_TXFF), FR_TXFE);
        assert_eq!(u.read(UARTRIS) & INT_TX, INT_TX, "TX interrupt once sent");
        // Only bits 7:0 are data.
        assert_eq!(u.write(UARTDR, 0x141), b"A");
    }

    #[test]
    fn disabled_uart_holds_bytes_until_enabled() {
        let mut u = Uart::new();
        // No FIFO: one holding register; BUSY and TXFF while it is occupied.
        assert!(u.write(UARTDR, u32::from(b'a')).is_empty());
        assert_eq!(
            u.read(UARTFR) & (FR_TXFE | FR_BUSY | FR_TXFF),
            FR_BUSY | FR_TXFF
        );
        assert!(
            u.write(UARTDR, u32::from(b'b')).is_empty(),
            "lost: the register is full"
        );
        assert_eq!(u.write(UARTCR, CR_UARTEN | CR_TXE), b"a");
        // FIFO mode: 16 entries; TXFF at 16, the 17th is lost.
        let mut u = Uart::new();
        u.write(UARTLCR_H, LCR_FEN | 0x60);
        for i in 0..17u32 {
            u.write(UARTDR, u32::from(b'0') + i);
        }
        assert_eq!(u.read(UARTFR) & FR_TXFF, FR_TXFF);
        assert_eq!(u.write(UARTCR, CR_UARTEN | CR_TXE).len(), 16);
        assert_eq!(u.read(UARTFR) & (FR_TXFE | FR_BUSY), FR_TXFE);
        // TXE clear: enabled UART, transmitter off, holds again.
        u.write(UARTCR, CR_UARTEN);
        assert!(u.write(UARTDR, 1).is_empty());
        assert_eq!(u.read(UARTFR) & FR_BUSY, FR_BUSY);
    }

    #[test]
    fn transmit_interrupt_masks_and_clears() {
        let mut u = enabled();
        u.write(UARTDR, 1);
        assert!(!u.line(), "masked");
        u.write(UARTIMSC, INT_TX);
        assert!(u.line());
        assert_eq!(u.read(UARTMIS), INT_TX);
        u.write(UARTICR, INT_TX);
        assert_eq!((u.read(UARTRIS), u.read(UARTMIS)), (0, 0));
        assert!(!u.line());
        // Filling the FIFO above the trigger level (1/2 = 8) with the transmitter off clears it.
        u.write(UARTLCR_H, LCR_FEN);
        u.write(UARTCR, CR_UARTEN);
        u.write(UARTCR, CR_UARTEN | CR_TXE);
        u.write(UARTDR, 1);
        assert!(u.line());
        u.write(UARTCR, CR_UARTEN);
        for _ in 0..9 {
            u.write(UARTDR, 2);
        }
        assert_eq!(u.read(UARTRIS) & INT_TX, 0);
        assert!(!u.line());
    }

    #[test]
    fn receive_fifo_and_interrupts() {
        let mut u = enabled();
        u.write(UARTIMSC, INT_RX | INT_RT | INT_OE);
        // No FIFO: one byte raises RX; a second is an overrun.
        u.receive(b"x");
        assert_eq!(u.read(UARTRIS) & (INT_RX | INT_RT), INT_RX | INT_RT);
        assert_eq!(u.read(UARTFR) & (FR_RXFE | FR_RXFF), FR_RXFF);
        u.receive(b"y");
        assert_eq!(u.read(UARTRIS) & INT_OE, INT_OE);
        assert_eq!(u.read(UARTDR), u32::from(b'x') | RSR_OE << 8);
        assert_eq!(u.read(UARTRSR), RSR_OE);
        u.write(UARTRSR, 0);
        assert_eq!(u.read(UARTRSR), 0);
        assert_eq!(u.read(UARTRIS) & (INT_RX | INT_RT), 0, "empty again");
        assert_eq!(u.read(UARTFR) & FR_RXFE, FR_RXFE);
        u.write(UARTICR, INT_OE);
        assert!(!u.line());
        // FIFO: RX at the trigger level (1/2 = 8), RT for fewer.
        u.write(UARTLCR_H, LCR_FEN);
        u.receive(b"abc");
        assert_eq!(u.read(UARTRIS) & (INT_RX | INT_RT), INT_RT);
        u.receive(b"defgh");
        assert_eq!(u.read(UARTRIS) & INT_RX, INT_RX);
        assert_eq!(u.read(UARTDR), u32::from(b'a'));
        assert_eq!(u.read(UARTRIS) & INT_RX, 0, "below the level again");
        // The receiver disabled drops input.
        u.write(UARTCR, CR_UARTEN | CR_TXE);
        u.receive(b"zz");
        let got: Vec<u32> = (0..7).map(|_| u.read(UARTDR)).collect();
        assert_eq!(got, b"bcdefgh".map(u32::from));
        assert_eq!(u.read(UARTFR) & FR_RXFE, FR_RXFE);
    }

    #[test]
    fn plain_registers_keep_their_bits() {
        let mut u = Uart::new();
        for (reg, value, kept) in [
            (UARTIBRD, 0x12345, 0x2345),
            (UARTFBRD, 0xff, 0x3f),
            (UARTILPR, 0x1ff, 0xff),
            (UARTIFLS, 0xff, 0x3f),
            (UARTDMACR, 0xf, 0x7),
            (UARTIMSC, 0xffff, 0x7ff),
        ] {
            u.write(reg, value);
            assert_eq!(u.read(reg), kept, "{reg:#x}");
        }
        u.write(UARTFR, 0);
        assert_eq!(u.read(UARTFR), FR_TXFE | FR_RXFE, "read-only");
        assert_eq!(u.read(0x800), 0);
    }
}
