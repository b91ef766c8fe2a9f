//! Exponential backoff between retries: 0.2 s doubling to at most 10 s, with jitter.

use std::time::Duration;

const FIRST: Duration = Duration::from_millis(200);
const CAP: Duration = Duration::from_secs(10);

pub struct Backoff {
    next: Duration,
}

impl Backoff {
    pub fn new() -> Self {
        Self { next: FIRST }
    }

    /// The wait before the next attempt (up to a quarter less, so that daemons that
    /// lost one server do not all come back at the same instant).
    pub fn next_delay(&mut self) -> Duration {
        let base = self.next;
        self.next = (self.next * 2).min(CAP);
        base.mul_f64(1.0 - rand::random::<f64>() * 0.25)
    }

    /// After a success: start again from the shortest wait.
    pub fn reset(&mut self) {
        self.next = FIRST;
    }
}

impl Default for Backoff {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doubles_up_to_the_cap_and_resets() {
        let mut b = Backoff::new();
        let waits: Vec<_> = (0..10).map(|_| b.next_delay()).collect();
        assert!(waits[0] <= FIRST && waits[0] >= FIRST.mul_f64(0.75));
        assert!(waits[1] > waits[0].mul_f64(1.0));
        assert!(waits.iter().all(|w| *w <= CAP));
        assert!(waits[9] >= CAP.mul_f64(0.75));
        b.reset();
        assert!(b.next_delay() <= FIRST);
    }
}
