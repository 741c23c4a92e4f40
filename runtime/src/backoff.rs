//! Capped exponential backoff with jitter, for reconnecting to a parent directory.

use std::time::Duration;

/// Delays between reconnection attempts: `first`, doubling each time, never over `max`,
/// each spread by ±10% so many children of one restarted directory do not arrive at once.
#[derive(Debug, Clone)]
pub struct Backoff {
    first: Duration,
    max: Duration,
    next: Duration,
}

impl Backoff {
    /// The default: 20 ms at first, at most 2 s.
    pub const STANDARD: (Duration, Duration) = (Duration::from_millis(20), Duration::from_secs(2));

    /// A backoff starting at `first` and capped at `max`.
    pub fn new(first: Duration, max: Duration) -> Backoff {
        let first = first.min(max);
        Backoff {
            first,
            max,
            next: first,
        }
    }

    /// The delay before the next attempt (without jitter), and advance.
    pub fn next_base(&mut self) -> Duration {
        let delay = self.next;
        self.next = self.next.saturating_mul(2).min(self.max);
        delay
    }

    /// The delay before the next attempt, with ±10% jitter, and advance.
    pub fn next_delay(&mut self) -> Duration {
        let base = self.next_base();
        base.mul_f64(0.9 + fastrand::f64() * 0.2)
    }

    /// A connection succeeded: start from `first` again next time.
    pub fn reset(&mut self) {
        self.next = self.first;
    }
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff::new(Self::STANDARD.0, Self::STANDARD.1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn grows_monotonically_to_the_cap_and_never_past_it(first_ms in 1u64..5_000, max_ms in 1u64..60_000, steps in 1usize..64) {
            let (first, max) = (Duration::from_millis(first_ms), Duration::from_millis(max_ms));
            let mut b = Backoff::new(first, max);
            let mut last = Duration::ZERO;
            for _ in 0..steps {
                let d = b.next_base();
                prop_assert!(d <= max);
                prop_assert!(d >= last);
                last = d;
            }
            let jittered = b.next_delay();
            prop_assert!(jittered <= max.mul_f64(1.1) + Duration::from_nanos(1));
            b.reset();
            prop_assert_eq!(b.next_base(), first.min(max));
        }
    }

    #[test]
    fn default_reaches_the_cap_in_a_few_steps() {
        let mut b = Backoff::default();
        let delays: Vec<u128> = (0..9).map(|_| b.next_base().as_millis()).collect();
        assert_eq!(delays, vec![20, 40, 80, 160, 320, 640, 1280, 2000, 2000]);
    }
}
