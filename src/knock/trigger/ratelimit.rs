//! A token bucket that keeps floods of failed knocks from filling the history database.

use std::time::Instant;

/// Allows `rate` events per second with bursts of `10 × rate`; counts what it refuses.
#[derive(Debug)]
pub struct RateLimit {
    rate: f64,
    burst: f64,
    tokens: f64,
    last: Instant,
    suppressed: u64,
}

/// The verdict for one event.
#[derive(Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Record it; `suppressed_before` events were refused since the last one allowed.
    Record {
        suppressed_before: u64,
    },
    Suppress,
}

impl RateLimit {
    pub fn new(rate: u32, now: Instant) -> Self {
        let rate = f64::from(rate);
        RateLimit {
            rate,
            burst: (rate * 10.0).max(1.0),
            tokens: (rate * 10.0).max(1.0),
            last: now,
            suppressed: 0,
        }
    }

    /// Events refused since the last one allowed (or the last call), now reported elsewhere.
    pub fn take_suppressed(&mut self) -> u64 {
        std::mem::take(&mut self.suppressed)
    }

    pub fn check(&mut self, now: Instant) -> Verdict {
        let dt = now.saturating_duration_since(self.last).as_secs_f64();
        self.last = now.max(self.last);
        self.tokens = (self.tokens + dt * self.rate).min(self.burst);
        if self.rate > 0.0 && self.tokens >= 1.0 {
            self.tokens -= 1.0;
            let suppressed_before = std::mem::take(&mut self.suppressed);
            Verdict::Record { suppressed_before }
        } else {
            self.suppressed += 1;
            Verdict::Suppress
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn bursts_then_refills_at_the_rate() {
        let t0 = Instant::now();
        let mut r = RateLimit::new(2, t0);
        for _ in 0..20 {
            assert_eq!(
                r.check(t0),
                Verdict::Record {
                    suppressed_before: 0
                }
            );
        }
        assert_eq!(r.check(t0), Verdict::Suppress);
        assert_eq!(r.check(t0), Verdict::Suppress);
        assert_eq!(
            r.check(t0 + Duration::from_millis(500)),
            Verdict::Record {
                suppressed_before: 2
            }
        );
        assert_eq!(r.check(t0 + Duration::from_millis(500)), Verdict::Suppress);
        let mut zero = RateLimit::new(0, t0);
        assert_eq!(zero.check(t0 + Duration::from_secs(100)), Verdict::Suppress);
    }
}
