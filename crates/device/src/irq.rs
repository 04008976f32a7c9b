//! Interrupts of a device (SPEC.md §6.3–6.4): per-vector mask, pending and level state shared
//! by all opens; per-open event counters; a waker the server uses for poll readiness.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, RwLock, Weak};

use devfd_format::Description;
use devfd_format::wire::{IRQ_AUTOMASKED, IRQ_LEVEL};

#[derive(Debug, Default, Clone, Copy)]
struct Vector {
    masked: bool,
    pending: bool,
    asserted: bool,
    /// An automasked vector delivered an event that was not acknowledged (unmasked) yet.
    unacked: bool,
}

impl Vector {
    /// Whether the vector has an event a driver has yet to handle (SPEC.md §6.3): a late
    /// opener's counter starts at 1 for it.
    fn outstanding(&self, level: bool) -> bool {
        self.pending || self.unacked || (level && self.asserted)
    }
}

/// Status word bit (control window +12, SPEC.md §6.3): an event arrived while masked.
pub const STATUS_PENDING: u32 = 1 << 0;
/// Status word bit: an automasked vector fired and awaits acknowledgement (unmask).
pub const STATUS_UNACKED: u32 = 1 << 1;
/// Status word bit: the level-triggered source is asserted.
pub const STATUS_ASSERTED: u32 = 1 << 2;

#[derive(Debug)]
struct Line {
    index: u32,
    flags: u32,
    vectors: Vec<Vector>,
}

#[derive(Debug, Default)]
struct State {
    lines: Vec<Line>,
    subscribers: Vec<Weak<Subscriber>>,
}

type Waker = Arc<dyn Fn() + Send + Sync>;

/// The interrupts of one device.
pub struct Interrupts {
    state: Mutex<State>,
    waker: RwLock<Option<Waker>>,
}

impl std::fmt::Debug for Interrupts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Interrupts")
            .field("state", &self.state)
            .finish_non_exhaustive()
    }
}

/// One open file's view of the interrupts: an event counter per vector.
#[derive(Debug)]
pub struct Subscriber {
    lines: Vec<(u32, Vec<AtomicU64>)>,
}

impl Subscriber {
    /// Returns the events counted on `vector` of interrupt `index` since the last call, and
    /// resets the count. `None` if there is no such vector.
    pub fn take(&self, index: u32, vector: u32) -> Option<u64> {
        let (_, counters) = self.lines.iter().find(|(i, _)| *i == index)?;
        Some(counters.get(vector as usize)?.swap(0, Ordering::AcqRel))
    }

    /// Whether any vector has a non-zero counter (POLLPRI readiness).
    pub fn ready(&self) -> bool {
        self.lines
            .iter()
            .any(|(_, c)| c.iter().any(|c| c.load(Ordering::Acquire) != 0))
    }

    fn count(&self, index: u32, vector: usize) {
        if let Some((_, counters)) = self.lines.iter().find(|(i, _)| *i == index)
            && let Some(c) = counters.get(vector)
        {
            let _ = c.fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                Some(n.saturating_add(1))
            });
        }
    }
}

impl Interrupts {
    /// The interrupts a (validated) description declares, all unmasked and idle.
    pub fn new(d: &Description<'_>) -> Self {
        let lines = d
            .interrupts()
            .map(|i| Line {
                index: i.index,
                flags: i.flags,
                vectors: vec![Vector::default(); i.count as usize],
            })
            .collect();
        Interrupts {
            state: Mutex::new(State {
                lines,
                subscribers: Vec::new(),
            }),
            waker: RwLock::new(None),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // The state stays consistent across a panic in a caller: every update is one store.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Sets the function called whenever an event is counted (the server's poll wake-up).
    pub fn set_waker(&self, waker: impl Fn() + Send + Sync + 'static) {
        *self.waker.write().unwrap_or_else(PoisonError::into_inner) = Some(Arc::new(waker));
    }

    /// A new per-open set of counters. Each starts at 1 for a vector with an outstanding
    /// event (pending, delivered and unacknowledged, or a level source still asserted), else
    /// 0, so that a late opener learns about an event that fired before it opened.
    pub fn subscribe(&self) -> Arc<Subscriber> {
        let mut state = self.lock();
        let sub = Arc::new(Subscriber {
            lines: state
                .lines
                .iter()
                .map(|l| {
                    let level = l.flags & IRQ_LEVEL != 0;
                    (
                        l.index,
                        l.vectors
                            .iter()
                            .map(|v| AtomicU64::new(u64::from(v.outstanding(level))))
                            .collect(),
                    )
                })
                .collect(),
        });
        state.subscribers.retain(|w| w.strong_count() > 0);
        state.subscribers.push(Arc::downgrade(&sub));
        sub
    }

    /// An edge event on `vector` of interrupt `index` (ignored if there is no such vector).
    pub fn raise(&self, index: u32, vector: u32) {
        let delivered = {
            let mut state = self.lock();
            Self::event(&mut state, index, vector as usize)
        };
        if delivered {
            self.wake();
        }
    }

    /// Asserts or deasserts a level-triggered source; asserting is an event.
    pub fn set_level(&self, index: u32, vector: u32, asserted: bool) {
        let delivered = {
            let mut state = self.lock();
            let Some(v) = Self::vector(&mut state, index, vector as usize) else {
                return;
            };
            let rising = asserted && !v.asserted;
            v.asserted = asserted;
            if !asserted {
                v.pending = false;
            }
            rising && Self::event(&mut state, index, vector as usize)
        };
        if delivered {
            self.wake();
        }
    }

    /// Masks or unmasks a vector; unmasking delivers a pending (or still asserted level)
    /// event. Returns `None` if there is no such vector.
    pub fn set_masked(&self, index: u32, vector: u32, masked: bool) -> Option<()> {
        let delivered = {
            let mut state = self.lock();
            let level = state.lines.iter().find(|l| l.index == index)?.flags & IRQ_LEVEL != 0;
            let v = Self::vector(&mut state, index, vector as usize)?;
            let was_masked = v.masked;
            v.masked = masked;
            if !masked {
                // Unmasking acknowledges a delivered automasked event.
                v.unacked = false;
            }
            let redeliver = was_masked && !masked && (v.pending || (level && v.asserted));
            if redeliver {
                v.pending = false;
            }
            redeliver && Self::event(&mut state, index, vector as usize)
        };
        if delivered {
            self.wake();
        }
        Some(())
    }

    /// Whether a vector is masked; `None` if there is no such vector.
    pub fn is_masked(&self, index: u32, vector: u32) -> Option<bool> {
        let mut state = self.lock();
        Some(Self::vector(&mut state, index, vector as usize)?.masked)
    }

    /// The status word of a vector ([`STATUS_PENDING`], [`STATUS_UNACKED`],
    /// [`STATUS_ASSERTED`]); `None` if there is no such vector.
    pub fn status(&self, index: u32, vector: u32) -> Option<u32> {
        let mut state = self.lock();
        let v = Self::vector(&mut state, index, vector as usize)?;
        let bit = |set: bool, b: u32| if set { b } else { 0 };
        Some(
            bit(v.pending, STATUS_PENDING)
                | bit(v.unacked, STATUS_UNACKED)
                | bit(v.asserted, STATUS_ASSERTED),
        )
    }

    /// Unmasks every vector and forgets pending and asserted state (device reset).
    pub fn reset(&self) {
        let mut state = self.lock();
        for line in &mut state.lines {
            line.vectors.fill(Vector::default());
        }
    }

    fn vector(state: &mut State, index: u32, vector: usize) -> Option<&mut Vector> {
        state
            .lines
            .iter_mut()
            .find(|l| l.index == index)?
            .vectors
            .get_mut(vector)
    }

    /// Counts an event for every subscriber, or marks it pending while masked.
    fn event(state: &mut State, index: u32, vector: usize) -> bool {
        let Some(line) = state.lines.iter_mut().find(|l| l.index == index) else {
            return false;
        };
        let automasked = line.flags & IRQ_AUTOMASKED != 0;
        let Some(v) = line.vectors.get_mut(vector) else {
            return false;
        };
        if v.masked {
            v.pending = true;
            return false;
        }
        if automasked {
            v.masked = true;
            v.unacked = true;
        }
        for sub in state.subscribers.iter().filter_map(Weak::upgrade) {
            sub.count(index, vector);
        }
        true
    }

    fn wake(&self) {
        let waker = self
            .waker
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        if let Some(w) = waker {
            w();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use devfd_format::Bus;
    use devfd_format::model::{DeviceDesc, InterruptDesc};
    use devfd_format::wire::*;

    fn irqs() -> Interrupts {
        let mut d = DeviceDesc::new(Bus::Other(b'X'));
        for (index, flags) in [
            (0, IRQ_MASKABLE),
            (1, IRQ_LEVEL | IRQ_MASKABLE | IRQ_AUTOMASKED),
        ] {
            d.interrupts.push(InterruptDesc {
                index,
                count: 2,
                kind: IRQ_KIND_WIRED,
                flags,
                control_offset: 0x1000 + 32 * u64::from(index),
                dt: None,
                label: None,
            });
        }
        let bytes = d.build().unwrap();
        Interrupts::new(&devfd_format::parse(&bytes).unwrap())
    }

    #[test]
    fn every_open_sees_every_event_and_masking_holds_one() {
        let irq = irqs();
        let (a, b) = (irq.subscribe(), irq.subscribe());
        irq.raise(0, 1);
        irq.raise(0, 1);
        assert_eq!(a.take(0, 1), Some(2));
        assert_eq!(a.take(0, 1), Some(0));
        assert_eq!(b.take(0, 1), Some(2));
        irq.set_masked(0, 0, true);
        irq.raise(0, 0);
        irq.raise(0, 0);
        assert!(!a.ready());
        irq.set_masked(0, 0, false);
        assert_eq!(a.take(0, 0), Some(1));
        assert_eq!(irq.set_masked(9, 0, true), None);
    }

    #[test]
    fn level_automasked_redelivers_while_asserted() {
        let irq = irqs();
        let s = irq.subscribe();
        irq.set_level(1, 0, true);
        assert_eq!(irq.is_masked(1, 0), Some(true));
        assert_eq!(s.take(1, 0), Some(1));
        // Acknowledge while still asserted: fires again and masks again.
        irq.set_masked(1, 0, false);
        assert_eq!(s.take(1, 0), Some(1));
        irq.set_level(1, 0, false);
        irq.set_masked(1, 0, false);
        assert_eq!(s.take(1, 0), Some(0));
        let woken = Arc::new(AtomicU64::new(0));
        let w = woken.clone();
        irq.set_waker(move || {
            w.fetch_add(1, Ordering::Relaxed);
        });
        irq.set_level(1, 0, true);
        assert_eq!(woken.load(Ordering::Relaxed), 1);
    }

    #[test]
    fn a_late_opener_learns_of_an_outstanding_event() {
        let irq = irqs();
        // Edge, unmasked: an event before the open is gone (nobody was listening).
        irq.raise(0, 0);
        assert_eq!(irq.subscribe().take(0, 0), Some(0));
        // Edge, masked: pending, so the late opener's counter starts at 1.
        irq.set_masked(0, 1, true);
        irq.raise(0, 1);
        assert_eq!(irq.status(0, 1), Some(STATUS_PENDING));
        assert_eq!(irq.subscribe().take(0, 1), Some(1));
        // Level, automasked: delivered with nobody open, still unacknowledged.
        irq.set_level(1, 0, true);
        assert_eq!(irq.status(1, 0), Some(STATUS_UNACKED | STATUS_ASSERTED));
        let late = irq.subscribe();
        assert!(late.ready());
        assert_eq!(late.take(1, 0), Some(1));
        // The device deasserts; the ack (unmask) clears the rest, and later opens see nothing.
        irq.set_level(1, 0, false);
        irq.set_masked(1, 0, false);
        assert_eq!(irq.status(1, 0), Some(0));
        assert_eq!(irq.subscribe().take(1, 0), Some(0));
        // Automasked edge-like use: fire, ack while deasserted, fire again: each open sees one.
        for _ in 0..3 {
            irq.set_level(1, 0, true);
            assert_eq!(irq.subscribe().take(1, 0), Some(1));
            irq.set_level(1, 0, false);
            irq.set_masked(1, 0, false);
        }
    }
}
