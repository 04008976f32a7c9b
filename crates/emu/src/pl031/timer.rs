//! The match timer: a thread that sleeps until the match deadline and fires it, so the
//! interrupt arrives on time even when no one touches the registers.
//!
//! Accesses fire a due match themselves too (every access first catches up with the clock),
//! so the thread only matters while the device is idle. It sleeps on a condition variable that
//! writes, resets, clock jumps and shutdown notify; it never polls.

use std::sync::Arc;

use super::Shared;

/// Runs until the device is dropped.
pub(super) fn run(shared: Arc<Shared>) {
    let mut state = shared.lock();
    loop {
        if state.shutdown {
            return;
        }
        let now = shared.clock.now();
        state.catch_up(now, &shared.interrupts);
        state = match state.rtc.deadline() {
            Some(deadline) => shared.wait_for(state, deadline.saturating_sub(now)),
            None => shared.wait(state),
        };
    }
}
