//! A device that misbehaves on purpose, for testing servers, clients and drivers under faults:
//! slow calls, calls that hang, device models that panic, interrupt storms, and a region at the
//! very end of the file offset space.
//!
//! Description: platform bus, compatible `devfd,fault`, label "fault".
//! * Region 0 ("regs", read/write) at 0x1000: 32 little-endian u64 registers. Registers 0x00 to
//!   0xe8 store what is written. 0xf0 reads the number of completed accesses (this one not
//!   counted). Writing n to 0xf8 raises n events on interrupt 0 at once (a storm).
//! * Region 1 ("high", read/write, only with [`FaultOptions::high_end`]): 8 such registers whose
//!   last byte is just below `high_end`.
//! * Interrupt 0 ("storm"): one maskable edge vector, control window at 0x2000.
//! * A reset word at 0x3000 (RESET, format 1.2): a reset zeroes the registers.
//!
//! Every region access first applies the faults set in [`FaultOptions`] or, while it runs,
//! through a [`FaultControl`]: a delay, a hang (until released, or for a while), a panic.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::time::{Duration, Instant};

use devfd_device::{Device, DeviceError, Interrupts};
use devfd_format::Bus;
use devfd_format::model::{DeviceDesc, InterruptDesc, RegionDesc};
use devfd_format::wire::{IRQ_KIND_WIRED, IRQ_MASKABLE, REGION_READ, REGION_WRITE};

use crate::EmuError;

/// Faults a [`Faulty`] starts with.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FaultOptions {
    /// Every access takes at least this long.
    pub delay: Duration,
    /// Every access hangs: for this long, or (`Duration::MAX`) until released.
    pub hang: Option<Duration>,
    /// Every access panics inside the device model.
    pub panic: bool,
    /// Adds region 1, ending at this file offset (a multiple of 8, at least 0x4040).
    pub high_end: Option<u64>,
}

/// Changes the faults of a running [`Faulty`] and counts its accesses.
#[derive(Debug, Clone)]
pub struct FaultControl(Arc<State>);

#[derive(Debug)]
struct State {
    delay_us: AtomicU64,
    panic: AtomicBool,
    /// `None`: no hang; `Some(None)`: until released; `Some(Some(d))`: for `d`.
    hang: Mutex<Option<Option<Duration>>>,
    released: Condvar,
    started: AtomicU64,
    completed: AtomicU64,
}

impl FaultControl {
    /// Sets the delay of every later access.
    pub fn set_delay(&self, delay: Duration) {
        let us = u64::try_from(delay.as_micros()).unwrap_or(u64::MAX);
        self.0.delay_us.store(us, Ordering::SeqCst);
    }

    /// Makes later accesses hang until [`Self::release`].
    pub fn hang(&self) {
        *self.hang_lock() = Some(None);
    }

    /// Ends the hang: hung accesses complete, later ones run normally.
    pub fn release(&self) {
        *self.hang_lock() = None;
        self.0.released.notify_all();
    }

    /// Makes later accesses panic inside the device model (or stop doing so).
    pub fn set_panic(&self, panic: bool) {
        self.0.panic.store(panic, Ordering::SeqCst);
    }

    /// Accesses that have entered the device.
    pub fn started(&self) -> u64 {
        self.0.started.load(Ordering::SeqCst)
    }

    /// Accesses that have completed.
    pub fn completed(&self) -> u64 {
        self.0.completed.load(Ordering::SeqCst)
    }

    fn hang_lock(&self) -> std::sync::MutexGuard<'_, Option<Option<Duration>>> {
        self.0.hang.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// The fault-injection device.
#[derive(Debug)]
pub struct Faulty {
    description: Vec<u8>,
    interrupts: Interrupts,
    state: Arc<State>,
    regs: Mutex<[u64; 32]>,
    high: Mutex<[u64; 8]>,
}

/// Register offsets in region 0.
const COMPLETED: u64 = 0xf0;
const STORM: u64 = 0xf8;
/// Most events one storm write raises.
const MAX_STORM: u64 = 1 << 20;

impl Faulty {
    /// A fault device with `options`.
    pub fn new(options: FaultOptions) -> Result<Self, EmuError> {
        let description = Self::device_desc(options.high_end).build()?;
        let interrupts = Interrupts::new(&devfd_format::parse(&description)?);
        let state = Arc::new(State {
            delay_us: AtomicU64::new(0),
            panic: AtomicBool::new(options.panic),
            hang: Mutex::new(
                options
                    .hang
                    .map(|d| if d == Duration::MAX { None } else { Some(d) }),
            ),
            released: Condvar::new(),
            started: AtomicU64::new(0),
            completed: AtomicU64::new(0),
        });
        let control = FaultControl(state.clone());
        control.set_delay(options.delay);
        Ok(Faulty {
            description,
            interrupts,
            state,
            regs: Mutex::new([0; 32]),
            high: Mutex::new([0; 8]),
        })
    }

    /// A handle that changes this device's faults while it is served.
    pub fn control(&self) -> FaultControl {
        FaultControl(self.state.clone())
    }

    /// The description, with region 1 ending at `high_end` if given.
    pub fn device_desc(high_end: Option<u64>) -> DeviceDesc {
        let region = |index, offset, size, label: &str| RegionDesc {
            index,
            offset,
            size,
            flags: REGION_READ | REGION_WRITE,
            location: Default::default(),
            dt: None,
            label: Some(label.into()),
            sparse: None,
            dma_address: None,
            access_widths: None,
        };
        let mut d = DeviceDesc::new(Bus::Platform);
        d.compatible = vec!["devfd,fault".into()];
        d.label = Some("fault".into());
        d.regions.push(region(0, 0x1000, 0x100, "regs"));
        if let Some(end) = high_end {
            d.regions
                .push(region(1, end.saturating_sub(0x40), 0x40, "high"));
        }
        d.interrupts.push(InterruptDesc {
            index: 0,
            count: 1,
            kind: IRQ_KIND_WIRED,
            flags: IRQ_MASKABLE,
            control_offset: 0x2000,
            dt: None,
            label: Some("storm".into()),
        });
        d.reset = Some(0x3000);
        d
    }

    /// Applies the faults in force as an access enters the device.
    fn enter(&self) {
        self.state.started.fetch_add(1, Ordering::SeqCst);
        if self.state.panic.load(Ordering::SeqCst) {
            #[allow(clippy::panic)]
            {
                panic!("devfd,fault: injected panic");
            }
        }
        let delay = self.state.delay_us.load(Ordering::SeqCst);
        if delay > 0 {
            std::thread::sleep(Duration::from_micros(delay));
        }
        let start = Instant::now();
        let mut hang = self
            .state
            .hang
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        while let Some(limit) = *hang {
            let wait = match limit {
                None => Duration::from_secs(3600),
                Some(d) => match d.checked_sub(start.elapsed()) {
                    Some(left) if !left.is_zero() => left,
                    _ => break,
                },
            };
            hang = self
                .state
                .released
                .wait_timeout(hang, wait)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
    }

    fn leave(&self) {
        self.state.completed.fetch_add(1, Ordering::SeqCst);
    }

    fn register(&self, region: u32, offset: u64) -> Result<(usize, u32), DeviceError> {
        let (slot, shift) = (offset / 8, (offset % 8).saturating_mul(8));
        let limit = if region == 0 { 32 } else { 8 };
        if slot >= limit {
            return Err(DeviceError::Unsupported);
        }
        Ok((
            usize::try_from(slot).map_err(|_| DeviceError::Unsupported)?,
            u32::try_from(shift).map_err(|_| DeviceError::Unsupported)?,
        ))
    }
}

/// Stores the `len`-byte `value` at bit `shift` of register `slot`.
fn store(regs: &mut [u64], slot: usize, shift: u32, len: usize, value: u64) {
    if let Some(reg) = regs.get_mut(slot) {
        let bits = u32::try_from(len.saturating_mul(8)).unwrap_or(64).min(64);
        let mask = u64::MAX
            .checked_shr(64u32.saturating_sub(bits))
            .unwrap_or(0);
        let mask = mask.checked_shl(shift).unwrap_or(0);
        *reg = (*reg & !mask) | (value.checked_shl(shift).unwrap_or(0) & mask);
    }
}

impl Device for Faulty {
    fn description(&self) -> &[u8] {
        &self.description
    }

    fn read(&self, region: u32, offset: u64, data: &mut [u8]) -> Result<(), DeviceError> {
        self.enter();
        let (slot, shift) = self.register(region, offset)?;
        let value = match region {
            0 if offset == COMPLETED => self.state.completed.load(Ordering::SeqCst),
            0 => {
                let regs = self.regs.lock().unwrap_or_else(PoisonError::into_inner);
                regs.get(slot).copied().unwrap_or(0)
            }
            1 => {
                let regs = self.high.lock().unwrap_or_else(PoisonError::into_inner);
                regs.get(slot).copied().unwrap_or(0)
            }
            _ => return Err(DeviceError::Unsupported),
        };
        devfd_device::put_le_value(data, value.checked_shr(shift).unwrap_or(0));
        self.leave();
        Ok(())
    }

    fn write(&self, region: u32, offset: u64, data: &[u8]) -> Result<(), DeviceError> {
        self.enter();
        let (slot, shift) = self.register(region, offset)?;
        let value = devfd_device::le_value(data);
        match region {
            0 if offset == STORM => {
                for _ in 0..value.min(MAX_STORM) {
                    self.interrupts.raise(0, 0);
                }
            }
            0 => store(
                &mut *self.regs.lock().unwrap_or_else(PoisonError::into_inner),
                slot,
                shift,
                data.len(),
                value,
            ),
            1 => store(
                &mut *self.high.lock().unwrap_or_else(PoisonError::into_inner),
                slot,
                shift,
                data.len(),
                value,
            ),
            _ => return Err(DeviceError::Unsupported),
        }
        self.leave();
        Ok(())
    }

    fn interrupts(&self) -> &Interrupts {
        &self.interrupts
    }

    fn reset(&self) {
        *self.regs.lock().unwrap_or_else(PoisonError::into_inner) = [0; 32];
        *self.high.lock().unwrap_or_else(PoisonError::into_inner) = [0; 8];
        self.interrupts.reset();
    }

    fn kind(&self) -> &str {
        "fault"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registers_store_and_count() {
        let d = Faulty::new(FaultOptions::default()).unwrap();
        d.write(0, 8, &0x1122_3344_5566_7788u64.to_le_bytes())
            .unwrap();
        d.write(0, 9, &[0xaa]).unwrap();
        let mut b = [0u8; 8];
        d.read(0, 8, &mut b).unwrap();
        assert_eq!(u64::from_le_bytes(b), 0x1122_3344_5566_aa88);
        let mut c = [0u8; 8];
        d.read(0, COMPLETED, &mut c).unwrap();
        assert_eq!(u64::from_le_bytes(c), 3);
        assert_eq!(d.control().started(), 4);
    }

    #[test]
    fn a_timed_hang_ends_and_a_release_ends_a_hang() {
        let d = Arc::new(
            Faulty::new(FaultOptions {
                hang: Some(Duration::from_millis(50)),
                ..Default::default()
            })
            .unwrap(),
        );
        let t = Instant::now();
        d.write(0, 0, &[1]).unwrap();
        assert!(t.elapsed() >= Duration::from_millis(50));
        let control = d.control();
        control.hang();
        let d2 = d.clone();
        let h = std::thread::spawn(move || d2.write(0, 0, &[2]));
        while control.started() < 2 {
            std::thread::yield_now();
        }
        std::thread::sleep(Duration::from_millis(20));
        assert_eq!(control.completed(), 1);
        control.release();
        h.join().unwrap().unwrap();
        assert_eq!(control.completed(), 2);
    }

    #[test]
    fn the_high_region_ends_where_asked() {
        let end = (1u64 << 63) - 8;
        let d = Faulty::new(FaultOptions {
            high_end: Some(end),
            ..Default::default()
        })
        .unwrap();
        let p = devfd_format::parse(d.description()).unwrap();
        let r = p.region(1).unwrap();
        assert_eq!(r.offset + r.size, end);
        // Ending exactly at 2^63 is outside what any server can serve (SPEC.md §4.4).
        assert!(
            Faulty::new(FaultOptions {
                high_end: Some(1 << 63),
                ..Default::default()
            })
            .is_err()
        );
    }

    #[test]
    fn a_storm_raises_events() {
        let d = Faulty::new(FaultOptions::default()).unwrap();
        let sub = d.interrupts().subscribe();
        d.write(0, STORM, &1000u64.to_le_bytes()).unwrap();
        assert_eq!(sub.take(0, 0), Some(1000));
    }
}
