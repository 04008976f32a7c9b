//! The PL031's registers (ARM DDI 0224) as plain state over a timeline: every access passes
//! the current time in, so the logic is exact and testable without clocks or threads.
//!
//! The counter is kept as the value it had at an anchor time plus the whole seconds since:
//! loading or starting it re-anchors, so the first increment comes one second after.
//!
//! The match interrupt is an event in time: it fires when the counter, counting, steps onto
//! the match value. Writing a match value equal to the current count (or loading the match
//! value) fires nothing until the counter comes round again, 2³² seconds later.

use std::time::Duration;

/// Data register (RO): the current count.
pub(super) const RTCDR: u64 = 0x000;
/// Match register (RW).
pub(super) const RTCMR: u64 = 0x004;
/// Load register (RW): writing sets the count; reads the last value loaded.
pub(super) const RTCLR: u64 = 0x008;
/// Control register: bit 0 starts the counter; once started it cannot be stopped.
pub(super) const RTCCR: u64 = 0x00c;
/// Interrupt mask set/clear (RW): bit 0 enables the match interrupt.
pub(super) const RTCIMSC: u64 = 0x010;
/// Raw interrupt status (RO).
pub(super) const RTCRIS: u64 = 0x014;
/// Masked interrupt status (RO): RIS & IMSC.
pub(super) const RTCMIS: u64 = 0x018;
/// Interrupt clear (WO): writing 1 to bit 0 clears the raw status.
pub(super) const RTCICR: u64 = 0x01c;
/// First of the four peripheral identification registers.
const PERIPH_ID0: u64 = 0xfe0;
/// First of the four PrimeCell identification registers.
const PCELL_ID0: u64 = 0xff0;

/// PeriphID0–3: part number 0x031, designer ARM (0x41), revision 1.
const PERIPH_ID: [u32; 4] = [0x31, 0x10, 0x14, 0x00];
/// PCellID0–3: the PrimeCell preamble.
const PCELL_ID: [u32; 4] = [0x0d, 0xf0, 0x05, 0xb1];

/// The interrupt bit of IMSC, RIS, MIS and ICR.
const INTERRUPT: u32 = 1;
/// How long the 32-bit counter takes to come round.
const WRAP: Duration = Duration::from_secs(1 << 32);

/// The register state of a PL031.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Rtc {
    /// The count at `anchor` (the frozen count while stopped).
    base: u32,
    anchor: Duration,
    running: bool,
    loaded: u32,
    match_value: u32,
    mask: bool,
    raw: bool,
    /// When the counter next steps onto the match value (`None` while stopped).
    deadline: Option<Duration>,
}

impl Rtc {
    /// An RTC at `now` holding `count`, counting if `running`; match 0, interrupt masked.
    pub(super) fn new(count: u32, running: bool, now: Duration) -> Self {
        let mut rtc = Rtc {
            base: count,
            anchor: now,
            running,
            loaded: 0,
            match_value: 0,
            mask: false,
            raw: false,
            deadline: None,
        };
        rtc.rearm(now);
        rtc
    }

    /// The count at `now`.
    pub(super) fn counter(&self, now: Duration) -> u32 {
        if self.running {
            // The counter is 32 bits and wraps.
            self.base.wrapping_add(self.elapsed(now) as u32)
        } else {
            self.base
        }
    }

    /// Whole seconds since the anchor.
    fn elapsed(&self, now: Duration) -> u64 {
        now.saturating_sub(self.anchor).as_secs()
    }

    /// The value of the 32-bit register at `offset`; unimplemented offsets read 0.
    pub(super) fn read(&self, offset: u64, now: Duration) -> u32 {
        match offset {
            RTCDR => self.counter(now),
            RTCMR => self.match_value,
            RTCLR => self.loaded,
            RTCCR => u32::from(self.running),
            RTCIMSC => u32::from(self.mask),
            RTCRIS => u32::from(self.raw),
            RTCMIS => u32::from(self.line()),
            PERIPH_ID0..=0xfec => id_register(&PERIPH_ID, offset.wrapping_sub(PERIPH_ID0)),
            PCELL_ID0..=0xffc => id_register(&PCELL_ID, offset.wrapping_sub(PCELL_ID0)),
            _ => 0,
        }
    }

    /// Writes the 32-bit register at `offset`; read-only and unimplemented ones ignore it.
    pub(super) fn write(&mut self, offset: u64, value: u32, now: Duration) {
        match offset {
            RTCMR => {
                self.match_value = value;
                self.rearm(now);
            }
            RTCLR => {
                self.loaded = value;
                self.base = value;
                self.anchor = now;
                self.rearm(now);
            }
            RTCCR if value & 1 != 0 && !self.running => {
                self.running = true;
                self.anchor = now;
                self.rearm(now);
            }
            RTCIMSC => self.mask = value & INTERRUPT != 0,
            RTCICR if value & INTERRUPT != 0 => self.raw = false,
            _ => {}
        }
    }

    /// Fires the match if its time has come by `now`.
    pub(super) fn update(&mut self, now: Duration) {
        if let Some(deadline) = self.deadline
            && now >= deadline
        {
            self.raw = true;
            self.deadline = deadline.checked_add(WRAP);
        }
    }

    /// The interrupt output: RIS & IMSC.
    pub(super) fn line(&self) -> bool {
        self.raw && self.mask
    }

    /// When the match fires next, if the counter runs.
    pub(super) fn deadline(&self) -> Option<Duration> {
        self.deadline
    }

    /// Recomputes the deadline after the counter or the match value changed.
    fn rearm(&mut self, now: Duration) {
        self.deadline = if self.running {
            let elapsed = self.elapsed(now);
            let counter = self.base.wrapping_add(elapsed as u32);
            // Steps until the counter next equals the match value; a full turn if it does now.
            let steps = match self.match_value.wrapping_sub(counter) {
                0 => 1 << 32,
                steps => u64::from(steps),
            };
            elapsed
                .checked_add(steps)
                .and_then(|secs| self.anchor.checked_add(Duration::from_secs(secs)))
        } else {
            None
        };
    }
}

/// Entry `byte_offset / 4` of an identification block.
fn id_register(block: &[u32; 4], byte_offset: u64) -> u32 {
    usize::try_from(byte_offset / 4)
        .ok()
        .and_then(|i| block.get(i))
        .copied()
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secs(s: f64) -> Duration {
        Duration::from_secs_f64(s)
    }

    #[test]
    fn counts_whole_seconds_and_wraps() {
        let mut rtc = Rtc::new(100, true, secs(5.0));
        assert_eq!(rtc.read(RTCDR, secs(5.0)), 100);
        assert_eq!(rtc.read(RTCDR, secs(5.999)), 100);
        assert_eq!(rtc.read(RTCDR, secs(6.0)), 101);
        assert_eq!(rtc.read(RTCDR, secs(15.5)), 110);
        // Time before the anchor (never, with a monotonic clock) is not negative time.
        assert_eq!(rtc.read(RTCDR, secs(1.0)), 100);
        rtc.write(RTCLR, u32::MAX - 1, secs(20.5));
        assert_eq!(rtc.read(RTCLR, secs(20.5)), u32::MAX - 1);
        assert_eq!(rtc.read(RTCDR, secs(21.4)), u32::MAX - 1);
        assert_eq!(rtc.read(RTCDR, secs(21.5)), u32::MAX);
        assert_eq!(rtc.read(RTCDR, secs(22.5)), 0);
        assert_eq!(rtc.read(RTCDR, secs(23.5)), 1);
    }

    #[test]
    fn match_fires_when_the_count_arrives() {
        let mut rtc = Rtc::new(0, true, secs(0.0));
        rtc.write(RTCLR, 1000, secs(0.25));
        rtc.write(RTCMR, 1003, secs(0.5));
        assert_eq!(rtc.deadline(), Some(secs(3.25)));
        rtc.update(secs(3.2));
        assert_eq!(rtc.read(RTCRIS, secs(3.2)), 0);
        rtc.update(secs(3.25));
        assert_eq!(rtc.read(RTCRIS, secs(3.25)), 1);
        assert_eq!(rtc.read(RTCMIS, secs(3.25)), 0, "masked");
        assert!(!rtc.line());
        rtc.write(RTCIMSC, 0xffff_ffff, secs(4.0));
        assert_eq!(rtc.read(RTCIMSC, secs(4.0)), 1);
        assert_eq!(rtc.read(RTCMIS, secs(4.0)), 1);
        assert!(rtc.line());
        // Clearing needs bit 0; the next match is a full turn away.
        rtc.write(RTCICR, 2, secs(4.0));
        assert!(rtc.line());
        rtc.write(RTCICR, 1, secs(4.0));
        assert!(!rtc.line());
        assert_eq!(rtc.deadline(), Some(secs(3.25) + WRAP));
        rtc.update(secs(100.0));
        assert!(!rtc.line());
    }

    #[test]
    fn matching_the_current_count_waits_a_full_turn() {
        let mut rtc = Rtc::new(50, true, secs(0.0));
        rtc.write(RTCMR, 50, secs(0.5));
        assert_eq!(rtc.deadline(), Some(WRAP));
        rtc.write(RTCMR, 49, secs(0.5));
        assert_eq!(rtc.deadline(), Some(WRAP - secs(1.0)));
        // Across the wrap.
        rtc.write(RTCLR, u32::MAX, secs(1.0));
        rtc.write(RTCMR, 0, secs(1.5));
        assert_eq!(rtc.deadline(), Some(secs(2.0)));
    }

    #[test]
    fn stopped_until_started() {
        let mut rtc = Rtc::new(7, false, secs(0.0));
        assert_eq!(rtc.read(RTCCR, secs(0.0)), 0);
        assert_eq!(rtc.read(RTCDR, secs(10.0)), 7);
        rtc.write(RTCMR, 8, secs(10.0));
        assert_eq!(rtc.deadline(), None);
        rtc.write(RTCLR, 20, secs(10.0));
        assert_eq!(rtc.read(RTCDR, secs(30.0)), 20, "loads while stopped hold");
        rtc.write(RTCCR, 0, secs(30.0));
        assert_eq!(rtc.read(RTCCR, secs(30.0)), 0);
        rtc.write(RTCCR, 1, secs(30.5));
        assert_eq!(rtc.read(RTCCR, secs(30.5)), 1);
        assert_eq!(rtc.read(RTCDR, secs(31.5)), 21);
        // Cannot be stopped again.
        rtc.write(RTCCR, 0, secs(32.0));
        assert_eq!(rtc.read(RTCCR, secs(32.0)), 1);
        rtc.write(RTCMR, 25, secs(32.0));
        assert_eq!(rtc.deadline(), Some(secs(35.5)));
    }

    #[test]
    fn identification_and_other_registers() {
        let mut rtc = Rtc::new(0, true, secs(0.0));
        let id: Vec<u32> = (0..4).map(|i| rtc.read(0xfe0 + 4 * i, secs(0.0))).collect();
        assert_eq!(id, [0x31, 0x10, 0x14, 0x00]);
        let id: Vec<u32> = (0..4).map(|i| rtc.read(0xff0 + 4 * i, secs(0.0))).collect();
        assert_eq!(id, [0x0d, 0xf0, 0x05, 0xb1]);
        for offset in [0x020, 0x100, 0xfdc, 0xff0 + 16, u64::MAX] {
            assert_eq!(rtc.read(offset, secs(0.0)), 0, "{offset:#x}");
        }
        assert_eq!(rtc.read(RTCICR, secs(0.0)), 0);
        let before = rtc.clone();
        for offset in [RTCDR, RTCRIS, RTCMIS, 0xfe0, 0xff0, 0x100, u64::MAX] {
            rtc.write(offset, u32::MAX, secs(0.0));
        }
        assert_eq!(
            rtc, before,
            "read-only and unimplemented registers ignore writes"
        );
    }
}
