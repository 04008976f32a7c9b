//! Interrupts that arrive on eventfds, as VFIO delivers them (the kernel's SET_IRQS, or a
//! vfio-user server's): one eventfd per vector of a description's interrupts, and a thread
//! that turns their signals into device-file events.

use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::sync::Arc;
use std::thread::JoinHandle;

use devfd_device::Interrupts;
use devfd_format::Description;

use crate::ioctl;

struct Shared {
    interrupts: Interrupts,
    /// (interrupt index, vector, eventfd) of every vector.
    eventfds: Vec<(u32, u32, OwnedFd)>,
    stop: OwnedFd,
}

/// A description's interrupts fed by eventfds; the thread stops when this is dropped.
pub struct EventfdInterrupts {
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
}

impl std::fmt::Debug for EventfdInterrupts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EventfdInterrupts")
            .field("vectors", &self.shared.eventfds.len())
            .finish_non_exhaustive()
    }
}

impl EventfdInterrupts {
    /// The interrupts of `d`, an eventfd for each of their vectors, and a thread named
    /// `thread` that raises a vector's event whenever its eventfd is signalled.
    pub fn new(d: &Description<'_>, thread: String) -> io::Result<Self> {
        let mut eventfds = Vec::new();
        for irq in d.interrupts() {
            for vector in 0..irq.count {
                eventfds.push((irq.index, vector, ioctl::eventfd()?));
            }
        }
        let shared = Arc::new(Shared {
            interrupts: Interrupts::new(d),
            eventfds,
            stop: ioctl::eventfd()?,
        });
        let thread_shared = shared.clone();
        let thread = std::thread::Builder::new()
            .name(thread)
            .spawn(move || deliver(&thread_shared))?;
        Ok(EventfdInterrupts {
            shared,
            thread: Some(thread),
        })
    }

    /// The interrupts.
    pub fn interrupts(&self) -> &Interrupts {
        &self.shared.interrupts
    }

    /// The eventfds of interrupt `index`, by vector (to register with SET_IRQS).
    pub fn fds_of(&self, index: u32) -> Vec<RawFd> {
        self.shared
            .eventfds
            .iter()
            .filter(|(i, _, _)| *i == index)
            .map(|(_, _, fd)| fd.as_raw_fd())
            .collect()
    }
}

impl Drop for EventfdInterrupts {
    fn drop(&mut self) {
        ioctl::eventfd_signal(self.shared.stop.as_fd());
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// The interrupt thread: turns eventfd signals into device-file events until told to stop.
fn deliver(shared: &Shared) {
    let mut fds: Vec<BorrowedFd<'_>> = shared
        .eventfds
        .iter()
        .map(|(_, _, fd)| fd.as_fd())
        .collect();
    fds.push(shared.stop.as_fd());
    let stop_at = fds.len() - 1;
    loop {
        let ready = match ioctl::poll_readable(&fds, -1) {
            Ok(r) => r,
            Err(e) => {
                log::error!("eventfd interrupt thread: poll: {e}");
                return;
            }
        };
        for i in ready {
            if i == stop_at {
                return;
            }
            if let Some((index, vector, fd)) = shared.eventfds.get(i)
                && ioctl::eventfd_take(fd.as_fd()) > 0
            {
                shared.interrupts.raise(*index, *vector);
            }
        }
    }
}
