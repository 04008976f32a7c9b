//! Bounded device calls: a watchdog answers `ETIMEDOUT` for a call that outlives the bound.
//!
//! The reply of each FUSE request sits in a slot shared with the watchdog. Whoever takes it
//! first answers: the request thread with the device's result, or the watchdog with
//! `ETIMEDOUT`. The stuck thread keeps running (a thread cannot be cancelled safely); its
//! device counts as wedged, answering `EIO`, until every timed-out call has returned.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, Weak};
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

struct Call {
    started: Instant,
    reply: Mutex<Option<Pending>>,
    wedge: Arc<Wedge>,
}

impl Call {
    fn reply(&self) -> MutexGuard<'_, Option<Pending>> {
        self.reply.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// The calls in progress and the watchdog that times them out.
pub(crate) struct Watchdog {
    bound: Duration,
    calls: Mutex<HashMap<u64, Arc<Call>>>,
    next: AtomicU64,
}

/// A call in progress. [`Watchdog::finish`] takes the reply back; dropping an unfinished
/// ticket (a panic in the device) finishes it without an answer.
pub(crate) struct Ticket {
    id: u64,
    call: Arc<Call>,
    dog: Arc<Watchdog>,
    finished: bool,
}

impl Ticket {
    /// Whether the request still awaits an answer (the watchdog has not given one).
    pub(crate) fn is_pending(&self) -> bool {
        self.call.reply().is_some()
    }
}

impl Watchdog {
    pub(crate) fn start(bound: Duration) -> Arc<Watchdog> {
        let dog = Arc::new(Watchdog {
            bound,
            calls: Mutex::new(HashMap::new()),
            next: AtomicU64::new(0),
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

    fn run(dog: Weak<Watchdog>, tick: Duration) {
        while let Some(dog) = dog.upgrade() {
            let overdue: Vec<Arc<Call>> = dog
                .lock()
                .values()
                .filter(|c| c.started.elapsed() > dog.bound)
                .cloned()
                .collect();
            for call in overdue {
                let mut slot = call.reply();
                if let Some(reply) = slot.take() {
                    // Counted while the slot is locked, so `finish` sees the two together.
                    call.wedge.0.fetch_add(1, Ordering::AcqRel);
                    drop(slot);
                    reply.error(Errno::from_i32(libc::ETIMEDOUT));
                }
            }
            drop(dog);
            std::thread::sleep(tick);
        }
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<u64, Arc<Call>>> {
        self.calls.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Registers a call about to start on a device.
    pub(crate) fn begin(self: &Arc<Self>, reply: Pending, wedge: &Arc<Wedge>) -> Ticket {
        let id = self.next.fetch_add(1, Ordering::Relaxed);
        let call = Arc::new(Call {
            started: Instant::now(),
            reply: Mutex::new(Some(reply)),
            wedge: wedge.clone(),
        });
        self.lock().insert(id, call.clone());
        Ticket {
            id,
            call,
            dog: self.clone(),
            finished: false,
        }
    }

    /// Ends a call: the reply if the watchdog has not answered it yet.
    pub(crate) fn finish(&self, mut ticket: Ticket) -> Option<Pending> {
        ticket.finished = true;
        self.end(&ticket)
    }

    fn end(&self, ticket: &Ticket) -> Option<Pending> {
        self.lock().remove(&ticket.id);
        let reply = ticket.call.reply().take();
        if reply.is_none() {
            // The watchdog answered this call; it has now returned.
            ticket.call.wedge.0.fetch_sub(1, Ordering::AcqRel);
        }
        reply
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
