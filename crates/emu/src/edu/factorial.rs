//! The factorial worker: computes off the access path, as the real device does, so a driver
//! sees the computing bit and can poll it or wait for the interrupt.

use std::sync::Arc;

use super::Shared;
use super::registers::factorial;

/// Runs until the device is dropped: takes each job, computes it, and — unless the device
/// was reset meanwhile — publishes the result.
pub(super) fn run(shared: Arc<Shared>) {
    let mut state = shared.lock();
    loop {
        if state.shutdown {
            return;
        }
        if std::mem::take(&mut state.dma_job) {
            let Some(plan) = state.dma_plan() else {
                continue;
            };
            // The bytes move with the lock released: the DMA space may be slow.
            let generation = state.generation;
            drop(state);
            let moved = shared.move_dma(&plan);
            state = shared.lock();
            if state.generation == generation {
                state.finish_dma(plan, moved, &shared.interrupts);
            }
            continue;
        }
        let Some(n) = state.job.take() else {
            state = shared.wait(state);
            continue;
        };
        let generation = state.generation;
        drop(state);
        let result = factorial(n);
        state = shared.lock();
        // The configured compute time; cut short by shutdown or reset.
        state = shared.wait_while(state, shared.factorial_time, |s| {
            !s.shutdown && s.generation == generation
        });
        if !state.shutdown && state.generation == generation {
            state.finish_factorial(result, &shared.interrupts);
        }
    }
}
