//! The parts of the benchmark harness that more than one benchmark binary uses: thread
//! placement, the raw FUSE floor, samples and their percentiles, and the Markdown report.
//! `devfd-bench` (src/main.rs) and `vfio-user-bench` (src/bin/vfio-user-bench.rs) build on them.

pub mod affinity;
pub mod floor;
pub mod report;
pub mod stats;
