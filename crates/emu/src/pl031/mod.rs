//! The ARM PrimeCell PL031 real-time clock (ARM DDI 0224) as a device-tree platform device,
//! as in QEMU's `virt` machine: a 32-bit seconds counter with a match register and one
//! level-triggered interrupt.
//!
//! Description (as `examples/pl031.toml`): platform bus, compatible `arm,pl031`,
//! `arm,primecell`; region 0 = the 4 KiB register block (`/pl031@9010000` `reg[0]`) at file
//! offset 0x1000; interrupt 0 = the wired alarm line (level, maskable, automasked;
//! `interrupts[0]`), control window at 0x2000.
//!
//! Registers are 32 bits wide and take 4-byte accesses only; other widths fail with
//! [`DeviceError::Unsupported`]. The counter runs on a [`Clock`] (the host's monotonic clock
//! unless the options name another), and a timer thread raises the match interrupt on time.

mod rtc;
mod timer;

use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, SystemTime};

use devfd_device::{Device, DeviceError, Interrupts, le_value, put_le_value};
use devfd_format::model::{DeviceDesc, DtLocation, InterruptDesc, RegionDesc};
use devfd_format::wire::{
    DT_PROP_INTERRUPTS, DT_PROP_REG, IRQ_AUTOMASKED, IRQ_KIND_WIRED, IRQ_LEVEL, IRQ_MASKABLE,
    REGION_READ, REGION_WRITE, WIDTH_4,
};
use devfd_format::{AccessWidths, Bus};

use crate::EmuError;
use crate::clock::{Clock, MonotonicClock};
use rtc::Rtc;

/// The device-tree node of the RTC on QEMU's `virt` machine.
const DT_NODE: &str = "/pl031@9010000";
/// Size of the register block.
const REGISTERS_SIZE: u64 = 0x1000;

/// How a [`Pl031`] starts.
#[derive(Debug, Clone)]
pub struct Pl031Options {
    /// The time base the counter runs on.
    pub clock: Arc<dyn Clock>,
    /// The count at power-on; `None`: the host's time in seconds since the Unix epoch, as a
    /// battery-backed RTC would hold.
    pub start: Option<u32>,
    /// Whether the counter runs from power-on (as QEMU presents it). If not, it holds still
    /// until software sets RTCCR bit 0.
    pub running: bool,
}

impl Default for Pl031Options {
    fn default() -> Self {
        Pl031Options {
            clock: Arc::new(MonotonicClock::new()),
            start: None,
            running: true,
        }
    }
}

/// An ARM PL031 real-time clock.
pub struct Pl031 {
    shared: Arc<Shared>,
    timer: Option<JoinHandle<()>>,
    description: Vec<u8>,
    start: Option<u32>,
    running: bool,
}

/// State shared with the timer thread.
struct Shared {
    state: Mutex<State>,
    /// Wakes the timer: the deadline may have moved, the clock jumped, or shutdown.
    wake: Condvar,
    interrupts: Interrupts,
    clock: Arc<dyn Clock>,
}

struct State {
    rtc: Rtc,
    shutdown: bool,
}

impl Pl031 {
    /// Index of the register region.
    pub const REGISTERS_REGION: u32 = 0;
    /// Index of the interrupt.
    pub const INTERRUPT: u32 = 0;

    /// A powered-on PL031 with its timer thread running.
    pub fn new(options: Pl031Options) -> Result<Self, EmuError> {
        Self::with_description(options, &Self::device_desc())
    }

    /// A PL031 with another description, such as one derived from a device-tree node
    /// ([`crate::dt_model`]): region [`Self::REGISTERS_REGION`] is the register block (at
    /// least 4 KiB), interrupt [`Self::INTERRUPT`], if present, the match interrupt.
    pub fn with_description(options: Pl031Options, desc: &DeviceDesc) -> Result<Self, EmuError> {
        let description = desc.build()?;
        let interrupts = Interrupts::new(&devfd_format::parse(&description)?);
        let now = options.clock.now();
        let shared = Arc::new(Shared {
            state: Mutex::new(State {
                rtc: Rtc::new(start_count(options.start), options.running, now),
                shutdown: false,
            }),
            wake: Condvar::new(),
            interrupts,
            clock: options.clock,
        });
        let weak = Arc::downgrade(&shared);
        shared.clock.on_jump(Box::new(move || {
            if let Some(shared) = weak.upgrade() {
                // Taken so the notification cannot fall between the timer reading the time
                // and going to sleep.
                let _state = shared.lock();
                shared.wake.notify_all();
            }
        }));
        let timer_shared = shared.clone();
        let timer = std::thread::Builder::new()
            .name("pl031-timer".into())
            .spawn(move || timer::run(timer_shared))
            .map_err(|source| EmuError::Thread {
                name: "pl031 timer",
                source,
            })?;
        Ok(Pl031 {
            shared,
            timer: Some(timer),
            description,
            start: options.start,
            running: options.running,
        })
    }

    /// The PL031's description, laid out as `examples/pl031-access.toml` builds it: its
    /// registers take 4-byte accesses only, which the ACCESS sub-record says (version 1.1).
    pub fn device_desc() -> DeviceDesc {
        let mut d = DeviceDesc::new(Bus::Platform);
        d.compatible = vec!["arm,pl031".into(), "arm,primecell".into()];
        d.label = Some("rtc".into());
        d.regions.push(RegionDesc {
            index: Self::REGISTERS_REGION,
            offset: 0x1000,
            size: REGISTERS_SIZE,
            flags: REGION_READ | REGION_WRITE,
            location: Default::default(),
            dt: Some(DtLocation::new(DT_NODE, DT_PROP_REG, 0)),
            label: Some("registers".into()),
            sparse: None,
            dma_address: None,
            access_widths: AccessWidths::new(WIDTH_4),
        });
        d.interrupts.push(InterruptDesc {
            index: Self::INTERRUPT,
            count: 1,
            kind: IRQ_KIND_WIRED,
            flags: IRQ_LEVEL | IRQ_MASKABLE | IRQ_AUTOMASKED,
            control_offset: 0x2000,
            dt: Some(DtLocation::new(DT_NODE, DT_PROP_INTERRUPTS, 0)),
            label: Some("alarm".into()),
        });
        d
    }

    /// Locks the state, catches up with the clock, and returns both.
    fn lock_now(&self) -> (MutexGuard<'_, State>, Duration) {
        let mut state = self.shared.lock();
        let now = self.shared.clock.now();
        state.catch_up(now, &self.shared.interrupts);
        (state, now)
    }
}

/// The power-on count: `start`, or the host's Unix time (wrapped to 32 bits, as the counter
/// wraps; 0 if the host clock is before 1970).
fn start_count(start: Option<u32>) -> u32 {
    start.unwrap_or_else(|| {
        SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map(|t| t.as_secs() as u32)
            .unwrap_or(0)
    })
}

/// The PL031's registers are 32-bit and take naturally aligned 4-byte accesses only.
fn check_access(region: u32, offset: u64, len: usize) -> Result<(), DeviceError> {
    if region == Pl031::REGISTERS_REGION
        && len == 4
        && offset.is_multiple_of(4)
        && offset < REGISTERS_SIZE
    {
        Ok(())
    } else {
        Err(DeviceError::Unsupported)
    }
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        // Every update leaves the state consistent, so a panicked holder's state is usable.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn wait<'a>(&self, state: MutexGuard<'a, State>) -> MutexGuard<'a, State> {
        self.wake
            .wait(state)
            .unwrap_or_else(PoisonError::into_inner)
    }

    fn wait_for<'a>(&self, state: MutexGuard<'a, State>, time: Duration) -> MutexGuard<'a, State> {
        match self.wake.wait_timeout(state, time) {
            Ok((state, _)) => state,
            Err(poisoned) => poisoned.into_inner().0,
        }
    }
}

impl State {
    /// Fires a match that is due and sets the line to match.
    fn catch_up(&mut self, now: Duration, interrupts: &Interrupts) {
        self.rtc.update(now);
        self.sync_line(interrupts);
    }

    fn sync_line(&self, interrupts: &Interrupts) {
        interrupts.set_level(Pl031::INTERRUPT, 0, self.rtc.line());
    }
}

impl Device for Pl031 {
    fn description(&self) -> &[u8] {
        &self.description
    }

    fn read(&self, region: u32, offset: u64, data: &mut [u8]) -> Result<(), DeviceError> {
        check_access(region, offset, data.len())?;
        let (state, now) = self.lock_now();
        put_le_value(data, u64::from(state.rtc.read(offset, now)));
        Ok(())
    }

    fn write(&self, region: u32, offset: u64, data: &[u8]) -> Result<(), DeviceError> {
        check_access(region, offset, data.len())?;
        let (mut state, now) = self.lock_now();
        state.rtc.write(offset, le_value(data) as u32, now);
        state.sync_line(&self.shared.interrupts);
        // The deadline may have moved.
        self.shared.wake.notify_all();
        Ok(())
    }

    fn interrupts(&self) -> &Interrupts {
        &self.shared.interrupts
    }

    fn reset(&self) {
        let mut state = self.shared.lock();
        let now = self.shared.clock.now();
        state.rtc = Rtc::new(start_count(self.start), self.running, now);
        self.shared.interrupts.reset();
        self.shared.wake.notify_all();
    }

    fn kind(&self) -> &str {
        "pl031"
    }
}

impl Drop for Pl031 {
    fn drop(&mut self) {
        self.shared.lock().shutdown = true;
        self.shared.wake.notify_all();
        if let Some(timer) = self.timer.take() {
            // The timer only ever waits on `wake`, so it sees the shutdown and returns.
            let _ = timer.join();
        }
    }
}

impl std::fmt::Debug for Pl031 {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pl031")
            .field("clock", &self.shared.clock)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::ManualClock;
    use rtc::*;
    use std::time::Instant;

    const REGS: u32 = Pl031::REGISTERS_REGION;
    const IRQ: u32 = Pl031::INTERRUPT;

    fn manual(start: u32, running: bool) -> (Pl031, Arc<ManualClock>) {
        let clock = Arc::new(ManualClock::new());
        let rtc = Pl031::new(Pl031Options {
            clock: clock.clone(),
            start: Some(start),
            running,
        })
        .unwrap();
        (rtc, clock)
    }

    fn read(d: &Pl031, offset: u64) -> u32 {
        let mut b = [0; 4];
        d.read(REGS, offset, &mut b).unwrap();
        u32::from_le_bytes(b)
    }

    fn write(d: &Pl031, offset: u64, value: u32) {
        d.write(REGS, offset, &value.to_le_bytes()).unwrap();
    }

    /// Polls `done` for up to `limit`.
    fn within(limit: Duration, mut done: impl FnMut() -> bool) -> bool {
        let start = Instant::now();
        while start.elapsed() < limit {
            if done() {
                return true;
            }
            std::thread::sleep(Duration::from_millis(1));
        }
        false
    }

    #[test]
    fn description_matches_the_golden_file() {
        let golden = std::fs::read(
            std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("../../tests/golden/pl031-access.bin"),
        )
        .unwrap();
        let (d, _) = manual(0, true);
        assert_eq!(d.description(), golden.as_slice());
        let parsed = devfd_format::parse(&golden).unwrap();
        assert_eq!(DeviceDesc::from_description(&parsed), Pl031::device_desc());
        assert_eq!(d.kind(), "pl031");
    }

    #[test]
    fn counts_on_the_clock() {
        let (d, clock) = manual(1000, true);
        assert_eq!(read(&d, RTCDR), 1000);
        clock.advance(Duration::from_millis(999));
        assert_eq!(read(&d, RTCDR), 1000);
        clock.advance(Duration::from_millis(1));
        assert_eq!(read(&d, RTCDR), 1001);
        write(&d, RTCLR, 5);
        assert_eq!(read(&d, RTCLR), 5);
        clock.advance(Duration::from_secs(60));
        assert_eq!(read(&d, RTCDR), 65);
        assert_eq!(read(&d, RTCCR), 1);
        write(&d, RTCDR, 0); // read-only
        assert_eq!(read(&d, RTCDR), 65);
    }

    #[test]
    fn match_interrupt_on_access() {
        let (d, clock) = manual(10, true);
        let sub = d.interrupts().subscribe();
        write(&d, RTCMR, 12);
        clock.advance(Duration::from_secs(2));
        assert_eq!(read(&d, RTCRIS), 1);
        assert_eq!(read(&d, RTCMIS), 0);
        assert_eq!(sub.take(IRQ, 0), Some(0), "masked by IMSC");
        write(&d, RTCIMSC, 1);
        assert_eq!(read(&d, RTCMIS), 1);
        assert_eq!(sub.take(IRQ, 0), Some(1));
        // Automasked; unmasking while still raised fires again, clearing lowers the line.
        d.interrupts().set_masked(IRQ, 0, false);
        assert_eq!(sub.take(IRQ, 0), Some(1));
        write(&d, RTCICR, 1);
        assert_eq!(read(&d, RTCRIS), 0);
        d.interrupts().set_masked(IRQ, 0, false);
        assert_eq!(sub.take(IRQ, 0), Some(0));
        // IMSC off lowers the line too.
        write(&d, RTCMR, read(&d, RTCDR).wrapping_add(1));
        clock.advance(Duration::from_secs(1));
        write(&d, RTCIMSC, 0);
        assert_eq!(read(&d, RTCRIS), 1);
        assert_eq!(sub.take(IRQ, 0), Some(1));
        d.interrupts().set_masked(IRQ, 0, false);
        assert_eq!(sub.take(IRQ, 0), Some(0));
    }

    #[test]
    fn timer_fires_without_access() {
        let (d, clock) = manual(0, true);
        let sub = d.interrupts().subscribe();
        write(&d, RTCMR, 3);
        write(&d, RTCIMSC, 1);
        clock.advance(Duration::from_secs(2));
        std::thread::sleep(Duration::from_millis(50));
        assert_eq!(sub.take(IRQ, 0), Some(0), "not due yet");
        clock.advance(Duration::from_secs(1));
        // Only the timer thread, woken by the clock, can deliver this.
        assert!(within(Duration::from_secs(5), || sub.take(IRQ, 0) == Some(1)));
    }

    #[test]
    fn stopped_rtc_starts_on_rtccr() {
        let (d, clock) = manual(42, false);
        let sub = d.interrupts().subscribe();
        write(&d, RTCMR, 43);
        write(&d, RTCIMSC, 1);
        clock.advance(Duration::from_secs(5));
        assert_eq!(read(&d, RTCCR), 0);
        assert_eq!(read(&d, RTCDR), 42);
        assert_eq!(read(&d, RTCRIS), 0);
        write(&d, RTCCR, 1);
        assert_eq!(read(&d, RTCCR), 1);
        write(&d, RTCCR, 0);
        assert_eq!(read(&d, RTCCR), 1, "cannot be stopped");
        clock.advance(Duration::from_secs(1));
        assert_eq!(read(&d, RTCDR), 43);
        assert_eq!(sub.take(IRQ, 0), Some(1));
    }

    #[test]
    fn identification_and_access_widths() {
        let (d, _) = manual(0, true);
        let id: Vec<u32> = (0..8).map(|i| read(&d, 0xfe0 + 4 * i)).collect();
        assert_eq!(id, [0x31, 0x10, 0x14, 0x00, 0x0d, 0xf0, 0x05, 0xb1]);
        assert_eq!(read(&d, 0x800), 0);
        let mut b = [0; 8];
        assert_eq!(d.read(REGS, 0, &mut b), Err(DeviceError::Unsupported));
        assert_eq!(d.read(REGS, 0, &mut b[..2]), Err(DeviceError::Unsupported));
        assert_eq!(d.read(REGS, 0, &mut b[..1]), Err(DeviceError::Unsupported));
        assert_eq!(d.read(REGS, 2, &mut b[..4]), Err(DeviceError::Unsupported));
        assert_eq!(
            d.read(REGS, 0x1000, &mut b[..4]),
            Err(DeviceError::Unsupported)
        );
        assert_eq!(
            d.read(REGS, u64::MAX - 3, &mut b[..4]),
            Err(DeviceError::Unsupported)
        );
        assert_eq!(d.read(1, 0, &mut b[..4]), Err(DeviceError::Unsupported));
        assert_eq!(d.write(REGS, 4, &b[..2]), Err(DeviceError::Unsupported));
        assert_eq!(d.write(REGS, 4, &b), Err(DeviceError::Unsupported));
    }

    #[test]
    fn reset_restores_power_on_state() {
        let (d, clock) = manual(100, true);
        let sub = d.interrupts().subscribe();
        write(&d, RTCLR, 7);
        write(&d, RTCMR, 8);
        write(&d, RTCIMSC, 1);
        clock.advance(Duration::from_secs(1));
        assert_eq!(read(&d, RTCRIS), 1);
        assert_eq!(sub.take(IRQ, 0), Some(1));
        d.reset();
        assert_eq!(d.interrupts().is_masked(IRQ, 0), Some(false));
        assert_eq!(read(&d, RTCDR), 100);
        assert_eq!(read(&d, RTCMR), 0);
        assert_eq!(read(&d, RTCLR), 0);
        assert_eq!(read(&d, RTCIMSC), 0);
        assert_eq!(read(&d, RTCRIS), 0);
    }

    #[test]
    fn drop_stops_the_timer_promptly() {
        let d = Pl031::new(Pl031Options {
            start: Some(0),
            ..Default::default()
        })
        .unwrap();
        write(&d, RTCMR, 1_000_000);
        let start = Instant::now();
        drop(d);
        assert!(start.elapsed() < Duration::from_secs(5));
    }

    #[test]
    fn default_start_is_the_host_time() {
        let d = Pl031::new(Pl031Options::default()).unwrap();
        let host = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap()
            .as_secs() as u32;
        assert!(read(&d, RTCDR).wrapping_sub(host).wrapping_add(2) <= 4);
    }

    #[test]
    fn real_clock_match_interrupt() {
        let d = Pl031::new(Pl031Options {
            start: Some(0),
            ..Default::default()
        })
        .unwrap();
        let sub = d.interrupts().subscribe();
        let start = Instant::now();
        write(&d, RTCLR, 5000);
        write(&d, RTCMR, 5001);
        write(&d, RTCIMSC, 1);
        assert!(within(Duration::from_millis(2500), || sub.take(IRQ, 0) == Some(1)));
        assert!(start.elapsed() >= Duration::from_millis(990));
        assert_eq!(read(&d, RTCMIS), 1);
        assert!((5001..=5002).contains(&read(&d, RTCDR)));
    }
}
