//! Full-jitter exponential backoff: how long to pause before trying again after a failure
//! that another try may not repeat (a lost compare-and-swap on the log, a refused push, a
//! transient HTTP error). The pause is a uniform draw from zero to `base * 2^(n-1)`, capped, so
//! that a crowd of writers or clients that failed together spreads out instead of retrying in
//! lockstep.

use std::hash::{BuildHasher, Hasher};
use std::time::{Duration, SystemTime};

/// Full-jitter exponential backoff.
#[derive(Debug, Clone, Copy)]
pub struct Backoff {
    /// The ceiling of the wait after the first failed attempt; it doubles with each further one.
    pub base: Duration,
    /// The most any wait may be.
    pub cap: Duration,
}

impl Backoff {
    /// The ceiling of the wait after failed attempt `n` (1-based): `min(cap, base * 2^(n-1))`.
    pub fn ceiling(&self, n: u32) -> Duration {
        let factor = 2u32.saturating_pow(n.saturating_sub(1).min(30));
        self.base.saturating_mul(factor).min(self.cap)
    }

    /// The wait after failed attempt `n`, given a uniform draw `unit` in `[0, 1)`.
    pub fn delay(&self, n: u32, unit: f64) -> Duration {
        // `mul_f64` panics on NaN and on a product past `Duration::MAX` (which a ceiling near
        // it reaches by rounding); a draw is never NaN, but no input should panic here.
        let unit = if unit.is_nan() {
            0.0
        } else {
            unit.clamp(0.0, 1.0)
        };
        let ceiling = self.ceiling(n);
        Duration::try_from_secs_f64(ceiling.as_secs_f64() * unit)
            .unwrap_or(ceiling)
            .min(ceiling)
    }

    /// The wait after failed attempt `n`, with a fresh draw.
    pub fn pause(&self, n: u32) -> Duration {
        self.delay(n, jitter_unit())
    }
}

/// A uniform draw in `[0, 1)`. The standard library seeds each `RandomState` from the OS, which
/// is plenty for spreading retries, and spares a dependency on `rand`.
pub fn jitter_unit() -> f64 {
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u64(
        SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64),
    );
    (hasher.finish() >> 11) as f64 / (1u64 << 53) as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_never_panics_on_a_strange_draw() {
        let b = Backoff {
            base: Duration::MAX,
            cap: Duration::MAX,
        };
        for unit in [f64::NAN, f64::INFINITY, -1.0, 0.5, 2.0] {
            assert!(b.delay(u32::MAX, unit) <= Duration::MAX);
        }
        assert_eq!(b.delay(1, f64::NAN), Duration::ZERO);
    }

    #[test]
    fn backoff_doubles_up_to_the_cap_and_jitter_stays_inside_it() {
        let b = Backoff {
            base: Duration::from_millis(100),
            cap: Duration::from_secs(1),
        };
        assert_eq!(b.ceiling(1), Duration::from_millis(100));
        assert_eq!(b.ceiling(2), Duration::from_millis(200));
        assert_eq!(b.ceiling(4), Duration::from_millis(800));
        assert_eq!(b.ceiling(5), Duration::from_secs(1));
        assert_eq!(b.ceiling(u32::MAX), Duration::from_secs(1));
        assert_eq!(b.delay(3, 0.0), Duration::ZERO);
        assert_eq!(b.delay(3, 0.5), Duration::from_millis(200));
        for n in 1..40 {
            let d = b.delay(n, jitter_unit());
            assert!(d <= b.ceiling(n), "attempt {n}: {d:?}");
        }
    }

    #[test]
    fn jitter_is_in_the_unit_interval_and_varies() {
        let draws: Vec<f64> = (0..64).map(|_| jitter_unit()).collect();
        assert!(draws.iter().all(|u| (0.0..1.0).contains(u)));
        assert!(draws.iter().any(|u| *u != draws[0]));
    }

    #[test]
    fn a_pause_stays_under_its_ceiling() {
        let b = Backoff {
            base: Duration::from_millis(1),
            cap: Duration::from_millis(50),
        };
        for n in 0..40 {
            assert!(b.pause(n) <= b.ceiling(n), "attempt {n}");
        }
    }
}
