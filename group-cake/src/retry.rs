//! When a role that ended is started again: the [`RetryPolicy`] worked through, one exit at a
//! time. Pure (the caller passes the clock), so it is tested without waiting.

use layer_cake::home::RetryPolicy;
use std::collections::VecDeque;
use std::time::{Duration, Instant};

/// What to do after a role's process ended.
#[derive(Debug, Clone, PartialEq)]
pub enum Next {
    /// Start it again after this delay.
    After(Duration),
    /// It restarted `intensity` times within `period`: leave it stopped.
    Failed {
        /// The restarts allowed.
        intensity: u32,
        /// Their window.
        period: Duration,
    },
}

/// One role's restart sequence.
#[derive(Debug)]
pub struct Restarts {
    policy: RetryPolicy,
    /// Restarts since the sequence was last reset.
    step: usize,
    /// When recent restarts happened, for the intensity limit.
    recent: VecDeque<Instant>,
}

impl Restarts {
    /// A fresh sequence under `policy`.
    pub fn new(policy: RetryPolicy) -> Restarts {
        Restarts {
            policy,
            step: 0,
            recent: VecDeque::new(),
        }
    }

    /// The policy it follows.
    pub fn policy(&self) -> &RetryPolicy {
        &self.policy
    }

    /// A process that ran for `ran` ended at `now`: when to start the next one.
    /// `jitter` in `[0, 1)` picks the random part of the delay.
    pub fn on_exit(&mut self, ran: Duration, now: Instant, jitter: f64) -> Next {
        let p = &self.policy;
        if ran.as_secs_f64() >= p.stable {
            self.step = 0;
        }
        let period = Duration::from_secs_f64(p.period);
        while self
            .recent
            .front()
            .is_some_and(|t| now.saturating_duration_since(*t) >= period)
        {
            self.recent.pop_front();
        }
        if self.recent.len() >= p.intensity as usize {
            return Next::Failed {
                intensity: p.intensity,
                period,
            };
        }
        self.recent.push_back(now);
        let base = self.base_delay(self.step);
        self.step += 1;
        Next::After(Duration::from_secs_f64(
            base + p.randomized * jitter.clamp(0.0, 1.0),
        ))
    }

    /// The delay before restart number `step` (from 0) of the sequence, before randomising.
    fn base_delay(&self, step: usize) -> f64 {
        let p = &self.policy;
        if let Some(delay) = p.first_steps.get(step) {
            return *delay;
        }
        if let Some(regular) = p.regular_steps {
            return regular;
        }
        let doublings = (step - p.first_steps.len()).min(63) as i32;
        (p.min * 2f64.powi(doublings)).min(p.max)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn delays(restarts: &mut Restarts, n: usize, ran: Duration) -> Vec<f64> {
        let start = Instant::now();
        (0..n)
            .map(
                |i| match restarts.on_exit(ran, start + Duration::from_secs(i as u64 * 1000), 0.0) {
                    Next::After(d) => d.as_secs_f64(),
                    Next::Failed { .. } => f64::NAN,
                },
            )
            .collect()
    }

    #[test]
    fn exponential_backoff_doubles_from_min_to_max() {
        let policy = RetryPolicy {
            min: 0.5,
            max: 3.0,
            ..RetryPolicy::default()
        };
        let mut r = Restarts::new(policy);
        assert_eq!(delays(&mut r, 5, Duration::ZERO), vec![0.5, 1.0, 2.0, 3.0, 3.0]);
    }

    #[test]
    fn steps_as_in_the_original_first_then_regular() {
        let policy = RetryPolicy {
            first_steps: vec![0.0, 1.0],
            regular_steps: Some(30.0),
            ..RetryPolicy::default()
        };
        let mut r = Restarts::new(policy);
        assert_eq!(delays(&mut r, 4, Duration::ZERO), vec![0.0, 1.0, 30.0, 30.0]);
    }

    #[test]
    fn a_stable_run_resets_the_sequence() {
        let policy = RetryPolicy {
            min: 1.0,
            max: 8.0,
            stable: 10.0,
            ..RetryPolicy::default()
        };
        let mut r = Restarts::new(policy);
        assert_eq!(delays(&mut r, 3, Duration::from_secs(1)), vec![1.0, 2.0, 4.0]);
        assert_eq!(delays(&mut r, 2, Duration::from_secs(10)), vec![1.0, 1.0]);
    }

    #[test]
    fn randomized_adds_up_to_its_seconds() {
        let policy = RetryPolicy {
            regular_steps: Some(2.0),
            randomized: 1.0,
            ..RetryPolicy::default()
        };
        let mut r = Restarts::new(policy);
        let now = Instant::now();
        assert_eq!(
            r.on_exit(Duration::ZERO, now, 0.5),
            Next::After(Duration::from_secs_f64(2.5))
        );
    }

    #[test]
    fn intensity_limit_marks_the_role_failed_and_old_restarts_age_out() {
        let policy = RetryPolicy {
            min: 0.0,
            intensity: 3,
            period: 10.0,
            ..RetryPolicy::default()
        };
        let mut r = Restarts::new(policy);
        let t0 = Instant::now();
        for i in 0..3 {
            let next = r.on_exit(Duration::ZERO, t0 + Duration::from_secs(i), 0.0);
            assert!(matches!(next, Next::After(_)), "{next:?}");
        }
        assert_eq!(
            r.on_exit(Duration::ZERO, t0 + Duration::from_secs(3), 0.0),
            Next::Failed {
                intensity: 3,
                period: Duration::from_secs(10)
            }
        );
        // Ten seconds after the first restart, it has aged out of the window.
        let next = r.on_exit(Duration::ZERO, t0 + Duration::from_secs(10), 0.0);
        assert!(matches!(next, Next::After(_)), "{next:?}");
    }
}
