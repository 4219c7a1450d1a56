//! Latency samples and their summary (nearest-rank percentiles, in microseconds).

use std::time::Duration;

/// Latencies of one phase, in nanoseconds.
#[derive(Debug, Default, Clone)]
pub struct Samples {
    /// One entry per successful call; bounded by the phase's call count.
    nanos: Vec<u64>,
}

/// What a phase reports about its latencies.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Summary {
    pub count: usize,
    pub p50_us: f64,
    pub p90_us: f64,
    pub p99_us: f64,
    pub max_us: f64,
    pub mean_us: f64,
}

impl Samples {
    /// Room for `n` samples.
    pub fn with_capacity(n: usize) -> Samples {
        Samples {
            nanos: Vec::with_capacity(n),
        }
    }

    /// Records one latency.
    pub fn push(&mut self, latency: Duration) {
        self.nanos
            .push(u64::try_from(latency.as_nanos()).unwrap_or(u64::MAX));
    }

    /// Adds another worker's samples.
    pub fn merge(&mut self, other: Samples) {
        self.nanos.extend(other.nanos);
    }

    /// How many latencies were recorded.
    pub fn len(&self) -> usize {
        self.nanos.len()
    }

    /// Percentiles (nearest rank) and mean.
    pub fn summary(&mut self) -> Summary {
        if self.nanos.is_empty() {
            return Summary::default();
        }
        self.nanos.sort_unstable();
        let n = self.nanos.len();
        let rank = |p: f64| -> f64 {
            let index = ((p / 100.0) * n as f64).ceil() as usize;
            self.nanos[index.clamp(1, n) - 1] as f64 / 1000.0
        };
        let sum: u128 = self.nanos.iter().map(|&v| u128::from(v)).sum();
        Summary {
            count: n,
            p50_us: rank(50.0),
            p90_us: rank(90.0),
            p99_us: rank(99.0),
            max_us: self.nanos[n - 1] as f64 / 1000.0,
            mean_us: (sum as f64 / n as f64) / 1000.0,
        }
    }
}

/// The median of some values (the mean of the middle two for an even count).
pub fn median(values: &mut [f64]) -> Option<f64> {
    if values.is_empty() {
        return None;
    }
    values.sort_by(f64::total_cmp);
    let n = values.len();
    Some(if n % 2 == 1 {
        values[n / 2]
    } else {
        (values[n / 2 - 1] + values[n / 2]) / 2.0
    })
}

/// Rounds to one decimal for the JSON lines.
pub fn round1(value: f64) -> f64 {
    (value * 10.0).round() / 10.0
}
