//! Bounded device calls: a watchdog answers `ETIMEDOUT` for a call that outlives the bound.
//!
//! The reply of each FUSE request sits in a slot shared with the watchdog. Whoever takes it
//! first answers: the request thread with the device's result, or the watchdog with
//! `ETIMEDOUT`. The stuck thread keeps running (a thread cannot be cancelled safely); its
//! device is marked wedged and answers `EIO` until the call returns.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError, Weak};
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

struct Call {
    started: Instant,
    reply: Mutex<Option<Pending>>,
    wedged: Arc<AtomicBool>,
}

/// The calls in progress and the watchdog that times them out.
pub(crate) struct Watchdog {
    bound: Duration,
    calls: Mutex<HashMap<u64, Arc<Call>>>,
    next: AtomicU64,
}

/// A call in progress; take the reply back with [`Ticket::finish`].
pub(crate) struct Ticket {
    id: u64,
    call: Arc<Call>,
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
                let reply = call
                    .reply
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .take();
                if let Some(reply) = reply {
                    call.wedged.store(true, Ordering::Release);
                    reply.error(Errno::from_i32(libc::ETIMEDOUT));
                }
            }
            drop(dog);
            std::thread::sleep(tick);
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<u64, Arc<Call>>> {
        self.calls.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Registers a call about to start on a device whose wedged flag is `wedged`.
    pub(crate) fn begin(&self, reply: Pending, wedged: &Arc<AtomicBool>) -> Ticket {
        let id = self.next.fetch_add(1, Ordering::Relaxed);
        let call = Arc::new(Call {
            started: Instant::now(),
            reply: Mutex::new(Some(reply)),
            wedged: wedged.clone(),
        });
        self.lock().insert(id, call.clone());
        Ticket { id, call }
    }

    /// Ends a call: the reply if the watchdog has not answered it yet.
    pub(crate) fn finish(&self, ticket: Ticket) -> Option<Pending> {
        self.lock().remove(&ticket.id);
        let reply = ticket
            .call
            .reply
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        if reply.is_none() {
            // The watchdog answered; the device is usable again now that the call returned.
            ticket.call.wedged.store(false, Ordering::Release);
        }
        reply
    }
}
