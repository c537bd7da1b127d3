//! `throttle`: at most N hosts run a task at once (per task, within a batch).

use std::collections::HashMap;
use std::sync::{Condvar, Mutex};

/// Running counts per task.
#[derive(Default)]
pub struct Throttle {
    running: Mutex<HashMap<String, usize>>,
    cv: Condvar,
}

/// A place among the `limit` hosts running the task; given back when dropped.
pub struct Permit<'a> {
    t: &'a Throttle,
    key: String,
}

impl Throttle {
    /// Waits until fewer than `limit` hosts run `key` (the wait ends as hosts finish the task,
    /// each within its own deadline).
    pub fn enter(&self, key: &str, limit: usize) -> Permit<'_> {
        let limit = limit.max(1);
        let mut g = self.running.lock().unwrap_or_else(|p| p.into_inner());
        while g.get(key).copied().unwrap_or(0) >= limit {
            g = self.cv.wait(g).unwrap_or_else(|p| p.into_inner());
        }
        *g.entry(key.to_string()).or_insert(0) += 1;
        Permit {
            t: self,
            key: key.to_string(),
        }
    }
}

impl Drop for Permit<'_> {
    fn drop(&mut self) {
        let mut g = self.t.running.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(n) = g.get_mut(&self.key) {
            *n = n.saturating_sub(1);
        }
        self.t.cv.notify_all();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Duration;

    #[test]
    fn never_more_than_the_limit_at_once() {
        let t = Throttle::default();
        let (now, peak) = (AtomicUsize::new(0), AtomicUsize::new(0));
        std::thread::scope(|s| {
            for _ in 0..8 {
                s.spawn(|| {
                    let _p = t.enter("task", 2);
                    let n = now.fetch_add(1, Ordering::SeqCst) + 1;
                    peak.fetch_max(n, Ordering::SeqCst);
                    std::thread::sleep(Duration::from_millis(20));
                    now.fetch_sub(1, Ordering::SeqCst);
                });
            }
        });
        assert_eq!(peak.load(Ordering::SeqCst), 2);
    }
}
