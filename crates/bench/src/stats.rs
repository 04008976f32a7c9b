//! Samples and their percentiles.

use std::time::Instant;

/// Durations in nanoseconds.
#[derive(Debug, Default, Clone)]
pub struct Samples {
    ns: Vec<u64>,
    sorted: bool,
}

impl Samples {
    /// Room for `n` samples.
    pub fn with_capacity(n: usize) -> Self {
        Samples {
            ns: Vec::with_capacity(n),
            sorted: true,
        }
    }

    /// Adds one sample.
    pub fn push(&mut self, ns: u64) {
        self.ns.push(ns);
        self.sorted = false;
    }

    /// Adds the time since `start`.
    pub fn since(&mut self, start: Instant) {
        self.push(u64::try_from(start.elapsed().as_nanos()).unwrap_or(u64::MAX));
    }

    /// Adds all of `other`'s samples.
    pub fn extend(&mut self, other: Samples) {
        self.ns.extend(other.ns);
        self.sorted = false;
    }

    /// Number of samples.
    pub fn len(&self) -> usize {
        self.ns.len()
    }

    /// Whether there are no samples.
    pub fn is_empty(&self) -> bool {
        self.ns.is_empty()
    }

    fn sort(&mut self) {
        if !self.sorted {
            self.ns.sort_unstable();
            self.sorted = true;
        }
    }

    /// The `q`-quantile (0 ≤ q ≤ 1) in nanoseconds, nearest rank; 0 without samples.
    pub fn quantile(&mut self, q: f64) -> f64 {
        self.sort();
        if self.ns.is_empty() {
            return 0.0;
        }
        let rank = ((q * self.ns.len() as f64).ceil() as usize).clamp(1, self.ns.len());
        self.ns[rank - 1] as f64
    }

    /// The fraction of samples above `ns` nanoseconds.
    pub fn share_above(&self, ns: u64) -> f64 {
        if self.ns.is_empty() {
            return 0.0;
        }
        self.ns.iter().filter(|&&x| x > ns).count() as f64 / self.ns.len() as f64
    }

    /// Median in microseconds.
    pub fn p50_us(&mut self) -> f64 {
        self.quantile(0.50) / 1e3
    }

    /// 99th percentile in microseconds.
    pub fn p99_us(&mut self) -> f64 {
        self.quantile(0.99) / 1e3
    }

    /// Median in milliseconds.
    pub fn p50_ms(&mut self) -> f64 {
        self.quantile(0.50) / 1e6
    }

    /// Throughput in GB/s (10⁹ bytes per second) of moving `bytes` in the median time.
    pub fn gbps(&mut self, bytes: usize) -> f64 {
        let ns = self.quantile(0.50);
        if ns == 0.0 { 0.0 } else { bytes as f64 / ns }
    }
}

/// Runs each op (one timed operation, returning its duration in nanoseconds) `warm` times,
/// then `rounds` rounds of `per_round` each, the ops interleaved round by round so that a
/// change in the machine's load touches every op alike.
pub fn measure<O, E>(
    warm: usize,
    rounds: usize,
    per_round: usize,
    ops: &mut [O],
) -> Result<Vec<Samples>, E>
where
    O: FnMut() -> Result<u64, E>,
{
    for op in ops.iter_mut() {
        for _ in 0..warm {
            op()?;
        }
    }
    let mut samples: Vec<Samples> = ops
        .iter()
        .map(|_| Samples::with_capacity(rounds * per_round))
        .collect();
    for _ in 0..rounds {
        for (op, s) in ops.iter_mut().zip(samples.iter_mut()) {
            for _ in 0..per_round {
                s.push(op()?);
            }
        }
    }
    Ok(samples)
}
