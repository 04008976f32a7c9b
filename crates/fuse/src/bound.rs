//! Bounded device calls: a watchdog answers `ETIMEDOUT` for a call that has been inside its
//! device longer than the bound.
//!
//! The reply of each FUSE request sits in a slot shared with the watchdog. Whoever takes it
//! first answers: the thread running the call with the device's result, or the watchdog with
//! `ETIMEDOUT`. Only time inside the device counts: a call waiting behind another call of the
//! same device is not timed, so a slow device that answers every call within the bound never
//! fails one. The stuck thread keeps running (a thread cannot be cancelled safely); its device
//! counts as wedged, answering `EIO`, until every timed-out call has returned, and the calls
//! queued for it are answered `EIO` at once (see [`Watchdog::on_timeout`]) and never run.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, PoisonError, Weak};
use std::time::{Duration, Instant};

use fuser::{Errno, ReplyData, ReplyWrite};

/// A reply waiting for its answer.
pub(crate) enum Pending {
    Data(ReplyData),
    Write(ReplyWrite),
}

impl Pending {
    pub(crate) fn error(self, errno: Errno) {
        match self {
            Pending::Data(r) => r.error(errno),
            Pending::Write(r) => r.error(errno),
        }
    }
}

/// How many timed-out calls of one device are still inside it.
#[derive(Debug, Default)]
pub(crate) struct Wedge(AtomicUsize);

impl Wedge {
    /// Whether some call timed out and has not returned yet.
    pub(crate) fn is_wedged(&self) -> bool {
        self.0.load(Ordering::Acquire) > 0
    }
}

/// The reply slot of a call, and whether the watchdog emptied it.
struct Slot {
    reply: Option<Pending>,
    timed_out: bool,
}

struct Call {
    device: usize,
    reply: Mutex<Slot>,
    wedge: Arc<Wedge>,
}

impl Call {
    fn slot(&self) -> MutexGuard<'_, Slot> {
        self.reply.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Called with a device's index when one of its calls times out.
type TimeoutHook = Box<dyn Fn(usize) + Send + Sync>;

/// The calls inside devices and the watchdog that times them out.
pub(crate) struct Watchdog {
    bound: Duration,
    /// Calls that have started, with the instant they entered their device.
    running: Mutex<HashMap<u64, (Instant, Arc<Call>)>>,
    next: AtomicU64,
    on_timeout: OnceLock<TimeoutHook>,
}

/// A call on its way to a device, holding its reply. [`Ticket::start`] starts its clock;
/// [`Watchdog::finish`] takes the reply back. Dropping an unfinished ticket (a panic in the
/// device, or a queued call that is discarded) answers `EIO` if no answer was given yet.
pub(crate) struct Ticket {
    id: u64,
    call: Arc<Call>,
    dog: Arc<Watchdog>,
    finished: bool,
}

impl Ticket {
    /// Starts timing the call as it enters the device. False if the call has been answered
    /// already (a queued call of a device that wedged meanwhile): it must not run then, so a
    /// client is never told a call failed that later takes effect.
    pub(crate) fn start(&self) -> bool {
        if self.call.slot().reply.is_none() {
            return false;
        }
        self.dog
            .lock()
            .insert(self.id, (Instant::now(), self.call.clone()));
        true
    }

    /// Answers a call that has not started, if nobody has: used when a device wedges with
    /// calls queued behind the stuck one.
    pub(crate) fn abandon(&self, errno: Errno) {
        let reply = self.call.slot().reply.take();
        if let Some(reply) = reply {
            reply.error(errno);
        }
    }
}

impl Watchdog {
    pub(crate) fn start(bound: Duration) -> Arc<Watchdog> {
        let dog = Arc::new(Watchdog {
            bound,
            running: Mutex::new(HashMap::new()),
            next: AtomicU64::new(0),
            on_timeout: OnceLock::new(),
        });
        let weak = Arc::downgrade(&dog);
        let tick = (bound / 4).clamp(Duration::from_millis(5), Duration::from_millis(100));
        std::thread::Builder::new()
            .name("devfd-watchdog".into())
            .spawn(move || Self::run(weak, tick))
            .map(drop)
            .unwrap_or_else(|e| log::error!("no watchdog thread, device calls are unbounded: {e}"));
        dog
    }

    /// Sets what to do when a call of a device times out (answer its queued calls).
    pub(crate) fn on_timeout(&self, hook: TimeoutHook) {
        let _ = self.on_timeout.set(hook);
    }

    fn run(dog: Weak<Watchdog>, tick: Duration) {
        while let Some(dog) = dog.upgrade() {
            let overdue: Vec<Arc<Call>> = dog
                .lock()
                .values()
                .filter(|(started, _)| started.elapsed() > dog.bound)
                .map(|(_, call)| call.clone())
                .collect();
            for call in overdue {
                let mut slot = call.slot();
                if let Some(reply) = slot.reply.take() {
                    // Counted while the slot is locked, so `finish` sees the two together.
                    slot.timed_out = true;
                    call.wedge.0.fetch_add(1, Ordering::AcqRel);
                    drop(slot);
                    reply.error(Errno::from_i32(libc::ETIMEDOUT));
                    if let Some(hook) = dog.on_timeout.get() {
                        hook(call.device);
                    }
                }
            }
            drop(dog);
            std::thread::sleep(tick);
        }
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<u64, (Instant, Arc<Call>)>> {
        self.running.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Takes charge of the reply of a call for device `device`; its clock starts with
    /// [`Ticket::start`].
    pub(crate) fn begin(
        self: &Arc<Self>,
        device: usize,
        reply: Pending,
        wedge: &Arc<Wedge>,
    ) -> Ticket {
        let id = self.next.fetch_add(1, Ordering::Relaxed);
        let call = Arc::new(Call {
            device,
            reply: Mutex::new(Slot {
                reply: Some(reply),
                timed_out: false,
            }),
            wedge: wedge.clone(),
        });
        Ticket {
            id,
            call,
            dog: self.clone(),
            finished: false,
        }
    }

    /// Ends a call: the reply if nobody has answered it yet.
    pub(crate) fn finish(&self, mut ticket: Ticket) -> Option<Pending> {
        ticket.finished = true;
        self.end(&ticket)
    }

    fn end(&self, ticket: &Ticket) -> Option<Pending> {
        self.lock().remove(&ticket.id);
        let mut slot = ticket.call.slot();
        if slot.timed_out {
            // The watchdog answered this call; it has now returned.
            slot.timed_out = false;
            ticket.call.wedge.0.fetch_sub(1, Ordering::AcqRel);
        }
        slot.reply.take()
    }
}

impl Drop for Ticket {
    fn drop(&mut self) {
        if !self.finished
            && let Some(reply) = self.dog.end(self)
        {
            reply.error(Errno::EIO);
        }
    }
}
