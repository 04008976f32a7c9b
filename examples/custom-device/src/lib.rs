//! A device model of your own, served as a devfd device file: a small watchdog timer.
//!
//! Writing a device takes three steps, all in this file:
//!
//! 1. **Describe it** with [`devfd_format::model::DeviceDesc`]: the bus, an identity, its
//!    regions (where they sit in the device file, how big, what may be done to them) and its
//!    interrupts (kind, vectors, where their control window sits). [`Watchdog::device_desc`].
//! 2. **Implement [`devfd_device::Device`]**: hand out the built description, answer reads
//!    and writes of your regions, and own an [`Interrupts`] made from the description, on
//!    which the device raises events. The server checks every access against the
//!    description first (range, width, alignment, flags), so `read` and `write` only ever see
//!    accesses that are in range and allowed.
//! 3. **Serve it** with [`devfd_fuse::serve`] (see `src/main.rs`).
//!
//! # The watchdog
//!
//! Once enabled, the watchdog counts down from its timeout. Software *kicks* it to start the
//! countdown again. If the countdown reaches zero the watchdog *expires*: it sets the expired
//! status bit, counts the expiry, raises its interrupt if interrupts are enabled, and starts
//! the next countdown.
//!
//! Region 0 (`regs`, file offset 0x1000, 256 bytes): 32-bit registers, 4-byte accesses only.
//!
//! | offset | name      | access | meaning                                                    |
//! |--------|-----------|--------|------------------------------------------------------------|
//! | 0x00   | ID        | RO     | [`ID_VALUE`]                                               |
//! | 0x04   | CTRL      | RW     | bit 0 [`CTRL_ENABLE`], bit 1 [`CTRL_IRQ`]                   |
//! | 0x08   | TIMEOUT   | RW     | countdown in milliseconds, 1 to [`MAX_TIMEOUT_MS`] (clamped) |
//! | 0x0c   | KICK      | WO     | write [`KICK_KEY`] to restart the countdown; other values are ignored |
//! | 0x10   | REMAINING | RO     | milliseconds left; 0 while disabled                        |
//! | 0x14   | STATUS    | R/W1C  | bit 0 [`STATUS_EXPIRED`]; write 1 to clear                 |
//! | 0x18   | EXPIRIES  | RO     | expiries since reset                                       |
//!
//! Interrupt 0 (`expired`, wired, edge-triggered, maskable, control window at 0x2000): one
//! event per expiry while [`CTRL_IRQ`] is set.
#![deny(missing_docs)]

use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use devfd_device::{Device, DeviceError, Interrupts, le_value, put_le_value};
use devfd_format::model::{DeviceDesc, InterruptDesc, RegionDesc};
use devfd_format::wire::{IRQ_KIND_WIRED, IRQ_MASKABLE, REGION_READ, REGION_WRITE};
use devfd_format::{Bus, Location};

/// ID register.
pub const ID: u64 = 0x00;
/// Control register.
pub const CTRL: u64 = 0x04;
/// Timeout register (milliseconds).
pub const TIMEOUT: u64 = 0x08;
/// Kick register.
pub const KICK: u64 = 0x0c;
/// Remaining-time register (milliseconds).
pub const REMAINING: u64 = 0x10;
/// Status register.
pub const STATUS: u64 = 0x14;
/// Expiry counter.
pub const EXPIRIES: u64 = 0x18;

/// What ID reads: "WDOG" in ASCII.
pub const ID_VALUE: u32 = 0x5744_4f47;
/// CTRL: count down.
pub const CTRL_ENABLE: u32 = 1 << 0;
/// CTRL: raise interrupt 0 on each expiry.
pub const CTRL_IRQ: u32 = 1 << 1;
/// The value a KICK write must have: "KICK" in ASCII.
pub const KICK_KEY: u32 = 0x4b49_434b;
/// STATUS: the watchdog has expired since the bit was last cleared.
pub const STATUS_EXPIRED: u32 = 1 << 0;
/// TIMEOUT at power-on.
pub const DEFAULT_TIMEOUT_MS: u32 = 1000;
/// The largest TIMEOUT; larger writes are clamped to it.
pub const MAX_TIMEOUT_MS: u32 = 60_000;

/// Index of the register region.
pub const REGS_REGION: u32 = 0;
/// Index of the expiry interrupt.
pub const EXPIRED_IRQ: u32 = 0;

/// The watchdog device. Dropping it stops its timer thread.
pub struct Watchdog {
    inner: Arc<Inner>,
    timer: Option<JoinHandle<()>>,
}

/// What the device and its timer thread share.
struct Inner {
    description: Vec<u8>,
    interrupts: Interrupts,
    state: Mutex<State>,
    /// Wakes the timer thread: the deadline moved, or shutdown.
    wake: Condvar,
}

/// The register state.
#[derive(Debug, Clone)]
struct State {
    ctrl: u32,
    timeout_ms: u32,
    status: u32,
    expiries: u32,
    /// When the countdown reaches zero; `None` while disabled.
    deadline: Option<Instant>,
    shutdown: bool,
}

impl State {
    fn power_on() -> Self {
        State {
            ctrl: 0,
            timeout_ms: DEFAULT_TIMEOUT_MS,
            status: 0,
            expiries: 0,
            deadline: None,
            shutdown: false,
        }
    }

    /// Starts a full countdown (or stops counting, if disabled).
    fn restart(&mut self, now: Instant) {
        self.deadline = (self.ctrl & CTRL_ENABLE != 0)
            .then(|| now + Duration::from_millis(u64::from(self.timeout_ms)));
    }

    fn remaining_ms(&self, now: Instant) -> u32 {
        self.deadline.map_or(0, |d| {
            u32::try_from(d.saturating_duration_since(now).as_millis()).unwrap_or(u32::MAX)
        })
    }
}

impl Watchdog {
    /// A powered-on watchdog (disabled, timeout [`DEFAULT_TIMEOUT_MS`]) with its timer thread
    /// running.
    pub fn new() -> std::io::Result<Self> {
        let description = Self::device_desc()
            .build()
            .map_err(|e| std::io::Error::other(format!("building the description: {e}")))?;
        let parsed = devfd_format::parse(&description)
            .map_err(|e| std::io::Error::other(format!("parsing the description: {e}")))?;
        let interrupts = Interrupts::new(&parsed);
        let inner = Arc::new(Inner {
            description,
            interrupts,
            state: Mutex::new(State::power_on()),
            wake: Condvar::new(),
        });
        let timer_inner = inner.clone();
        let timer = std::thread::Builder::new()
            .name("watchdog-timer".into())
            .spawn(move || timer_inner.run_timer())?;
        Ok(Watchdog {
            inner,
            timer: Some(timer),
        })
    }

    /// The description: a platform device with one register region and one interrupt.
    pub fn device_desc() -> DeviceDesc {
        let mut d = DeviceDesc::new(Bus::Platform);
        // A platform device names itself with device-tree `compatible` strings.
        d.compatible = vec!["devfd-example,watchdog".into()];
        d.label = Some("watchdog".into());
        d.regions.push(RegionDesc {
            index: REGS_REGION,
            // Regions start on their own page after the description.
            offset: 0x1000,
            size: 0x100,
            // Register-like (no REGION_MMAP): accesses of 1, 2, 4 or 8 bytes, one at a time.
            flags: REGION_READ | REGION_WRITE,
            location: Location::None,
            dt: None,
            label: Some("regs".into()),
            sparse: None,
            dma_address: None,
            access_widths: None,
        });
        d.interrupts.push(InterruptDesc {
            index: EXPIRED_IRQ,
            count: 1,
            kind: IRQ_KIND_WIRED,
            // Edge-triggered (no IRQ_LEVEL): every expiry is one event.
            flags: IRQ_MASKABLE,
            control_offset: 0x2000,
            dt: None,
            label: Some("expired".into()),
        });
        d
    }
}

impl Inner {
    fn lock(&self) -> MutexGuard<'_, State> {
        // Every update leaves the state consistent, so a panicked holder's state is usable.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The timer thread: sleeps until the deadline (or a change), then expires.
    fn run_timer(&self) {
        let mut state = self.lock();
        loop {
            if state.shutdown {
                return;
            }
            let now = Instant::now();
            state = match state.deadline {
                None => self
                    .wake
                    .wait(state)
                    .unwrap_or_else(PoisonError::into_inner),
                Some(deadline) if now < deadline => {
                    self.wake
                        .wait_timeout(state, deadline - now)
                        .unwrap_or_else(PoisonError::into_inner)
                        .0
                }
                Some(_) => {
                    state.status |= STATUS_EXPIRED;
                    state.expiries = state.expiries.wrapping_add(1);
                    state.restart(now);
                    if state.ctrl & CTRL_IRQ != 0 {
                        // Counts an event for every open file of the device (or sets the
                        // vector pending while masked) and wakes pollers.
                        self.interrupts.raise(EXPIRED_IRQ, 0);
                    }
                    state
                }
            };
        }
    }
}

impl Device for Watchdog {
    fn description(&self) -> &[u8] {
        &self.inner.description
    }

    fn read(&self, region: u32, offset: u64, data: &mut [u8]) -> Result<(), DeviceError> {
        // The server has checked range, width and alignment against the description; the
        // device adds its own rule: 32-bit registers, 4-byte accesses (others answer EIO).
        if region != REGS_REGION || data.len() != 4 {
            return Err(DeviceError::Unsupported);
        }
        let state = self.inner.lock();
        let value = match offset {
            ID => ID_VALUE,
            CTRL => state.ctrl,
            TIMEOUT => state.timeout_ms,
            REMAINING => state.remaining_ms(Instant::now()),
            STATUS => state.status,
            EXPIRIES => state.expiries,
            _ => 0,
        };
        put_le_value(data, u64::from(value));
        Ok(())
    }

    fn write(&self, region: u32, offset: u64, data: &[u8]) -> Result<(), DeviceError> {
        if region != REGS_REGION || data.len() != 4 {
            return Err(DeviceError::Unsupported);
        }
        let value = le_value(data) as u32;
        let now = Instant::now();
        let mut state = self.inner.lock();
        match offset {
            CTRL => {
                let was_enabled = state.ctrl & CTRL_ENABLE != 0;
                state.ctrl = value & (CTRL_ENABLE | CTRL_IRQ);
                // Enabling starts a countdown; disabling stops it; changing only the
                // interrupt bit leaves a running countdown alone.
                if was_enabled != (state.ctrl & CTRL_ENABLE != 0) {
                    state.restart(now);
                }
            }
            TIMEOUT => {
                state.timeout_ms = value.clamp(1, MAX_TIMEOUT_MS);
                state.restart(now);
            }
            KICK if value == KICK_KEY => state.restart(now),
            STATUS => state.status &= !value,
            // Read-only registers and wrong kick keys ignore writes.
            _ => return Ok(()),
        }
        self.inner.wake.notify_all();
        Ok(())
    }

    fn interrupts(&self) -> &Interrupts {
        &self.inner.interrupts
    }

    fn reset(&self) {
        let mut state = self.inner.lock();
        *state = State::power_on();
        self.inner.interrupts.reset();
        self.inner.wake.notify_all();
    }

    fn kind(&self) -> &str {
        "watchdog"
    }
}

impl Drop for Watchdog {
    fn drop(&mut self) {
        self.inner.lock().shutdown = true;
        self.inner.wake.notify_all();
        if let Some(timer) = self.timer.take() {
            let _ = timer.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(w: &Watchdog, offset: u64) -> u32 {
        let mut b = [0; 4];
        w.read(REGS_REGION, offset, &mut b).unwrap();
        u32::from_le_bytes(b)
    }

    fn write(w: &Watchdog, offset: u64, value: u32) {
        w.write(REGS_REGION, offset, &value.to_le_bytes()).unwrap();
    }

    #[test]
    fn the_description_is_valid() {
        let w = Watchdog::new().unwrap();
        let d = devfd_format::parse(w.description()).unwrap();
        assert_eq!(DeviceDesc::from_description(&d), Watchdog::device_desc());
    }

    #[test]
    fn registers_at_power_on() {
        let w = Watchdog::new().unwrap();
        assert_eq!(read(&w, ID), ID_VALUE);
        assert_eq!(read(&w, CTRL), 0);
        assert_eq!(read(&w, TIMEOUT), DEFAULT_TIMEOUT_MS);
        assert_eq!(read(&w, REMAINING), 0);
        write(&w, TIMEOUT, 0);
        assert_eq!(read(&w, TIMEOUT), 1, "clamped");
        write(&w, TIMEOUT, u32::MAX);
        assert_eq!(read(&w, TIMEOUT), MAX_TIMEOUT_MS, "clamped");
        write(&w, ID, 0);
        assert_eq!(read(&w, ID), ID_VALUE, "read-only");
        let mut two = [0; 2];
        assert_eq!(
            w.read(REGS_REGION, ID, &mut two),
            Err(DeviceError::Unsupported)
        );
    }
}
