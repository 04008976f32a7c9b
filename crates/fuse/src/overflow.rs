//! Threads for device calls that FUSE threads must not run themselves.
//!
//! fuser's pool of FUSE threads is fixed when the session starts, so a device call that hangs
//! on a FUSE thread takes that thread for good. The server keeps one FUSE thread out of device
//! calls; a call that would take the last one runs here instead. Each job gets a thread of
//! its own (a job may hang, and must not hold up another device's), reusing idle ones; a
//! thread idle for [`IDLE`] exits.

use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

/// A device call with everything it needs.
pub(crate) type Job = Box<dyn FnOnce() + Send>;

/// How long an idle thread waits for work before it exits.
const IDLE: Duration = Duration::from_secs(10);

/// Idle threads (by id), each waiting on its own channel.
type IdleList = Mutex<Vec<(u64, Sender<Job>)>>;

/// Idle threads, each waiting on its own channel.
#[derive(Default)]
pub(crate) struct Overflow {
    idle: Arc<IdleList>,
    next: std::sync::atomic::AtomicU64,
}

impl Overflow {
    /// Runs `job` on an idle thread or a new one; gives the job back if no thread can be had.
    pub(crate) fn run(&self, job: Job) -> Result<(), Job> {
        let mut job = job;
        loop {
            let idle = self
                .idle
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .pop();
            match idle {
                Some((_, sender)) => match sender.send(job) {
                    Ok(()) => return Ok(()),
                    // That thread has just exited; try the next.
                    Err(mpsc::SendError(back)) => job = back,
                },
                None => break,
            }
        }
        let id = self.next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let (sender, receiver) = mpsc::channel::<Job>();
        let idle = self.idle.clone();
        // The job travels with the thread so that a failed spawn can hand it back.
        let slot = Arc::new(Mutex::new(Some(job)));
        let first = slot.clone();
        let spawned = std::thread::Builder::new()
            .name("devfd-call".into())
            .spawn(move || {
                let job = first.lock().unwrap_or_else(PoisonError::into_inner).take();
                if let Some(job) = job {
                    job();
                }
                worker(id, &idle, &sender, &receiver);
            });
        match spawned {
            Ok(_) => Ok(()),
            Err(e) => {
                log::warn!("spawning a thread for a device call: {e}");
                let job = slot.lock().unwrap_or_else(PoisonError::into_inner).take();
                job.map_or(Ok(()), Err)
            }
        }
    }
}

/// Offers the thread for more jobs until it has been idle for [`IDLE`].
fn worker(id: u64, idle: &IdleList, sender: &Sender<Job>, receiver: &Receiver<Job>) {
    loop {
        idle.lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push((id, sender.clone()));
        match receiver.recv_timeout(IDLE) {
            Ok(job) => job(),
            Err(RecvTimeoutError::Timeout) => {
                let mut list = idle.lock().unwrap_or_else(PoisonError::into_inner);
                match list.iter().position(|(i, _)| *i == id) {
                    Some(at) => {
                        list.swap_remove(at);
                        return;
                    }
                    // Claimed just now: a job is on its way.
                    None => {
                        drop(list);
                        if let Ok(job) = receiver.recv() {
                            job();
                        }
                    }
                }
            }
            Err(RecvTimeoutError::Disconnected) => return,
        }
    }
}
