//! `run_once`: the first host of the batch (in inventory order) that is still running runs the
//! task; the others wait for that result and take it as theirs (registered variables,
//! notifications, failure) without running anything, as Ansible does. A host that leaves the
//! batch (failed, unreachable, ended, crashed), or finishes the step without reaching the task,
//! hands the duty to the next one.

use std::collections::{HashMap, HashSet};
use std::sync::{Condvar, Mutex, MutexGuard};

use super::result::Outcome;

enum State {
    Running,
    Done(Outcome),
}

#[derive(Default)]
struct Inner {
    slots: HashMap<String, State>,
    gone: HashSet<String>,
    /// Hosts done with the current step (linear strategy): they will not reach its tasks.
    past: HashSet<String>,
}

/// Every `run_once` task of one batch, by task.
#[derive(Default)]
pub struct RunOnce {
    order: Vec<String>,
    inner: Mutex<Inner>,
    cv: Condvar,
}

/// What a host does with a `run_once` task.
pub enum Turn<'a> {
    /// Run it, then hand the result to [`Duty::finish`].
    Run(Duty<'a>),
    /// Another host ran it: this is its result.
    Shared(Outcome),
}

/// The duty of the host that runs the task: publish its result. Dropped without one (the
/// host's run crashed), the slot is freed for the next host.
pub struct Duty<'a> {
    once: &'a RunOnce,
    key: String,
    done: bool,
}

impl Duty<'_> {
    pub fn finish(mut self, o: &Outcome) {
        let mut g = self.once.lock();
        g.slots.insert(self.key.clone(), State::Done(o.clone()));
        self.done = true;
        self.once.cv.notify_all();
    }
}

impl Drop for Duty<'_> {
    fn drop(&mut self) {
        if !self.done {
            self.once.lock().slots.remove(&self.key);
            self.once.cv.notify_all();
        }
    }
}

impl RunOnce {
    /// For a batch of hosts, in the order the play runs them.
    pub fn new(order: Vec<String>) -> RunOnce {
        RunOnce {
            order,
            ..RunOnce::default()
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// `host` has left the batch: it will not run anything more.
    pub fn host_gone(&self, host: &str) {
        self.lock().gone.insert(host.to_string());
        self.cv.notify_all();
    }

    /// A new lockstep step begins: every host still in the batch may reach its tasks.
    pub fn next_step(&self) {
        self.lock().past.clear();
    }

    /// `host` finished the current step without reaching the tasks still owed (skipped by a
    /// block's `when`, say): the duty passes over it.
    pub fn host_past(&self, host: &str) {
        self.lock().past.insert(host.to_string());
        self.cv.notify_all();
    }

    /// The turn of `host` at the task `key`. Waits (while the running host works, which its
    /// task deadline bounds) until the result exists or the duty falls to `host`.
    pub fn turn(&self, key: &str, host: &str) -> Turn<'_> {
        let mut g = self.lock();
        loop {
            match g.slots.get(key) {
                Some(State::Done(o)) => return Turn::Shared(o.clone()),
                Some(State::Running) => {}
                None => {
                    let first = self
                        .order
                        .iter()
                        .find(|h| !g.gone.contains(h.as_str()) && !g.past.contains(h.as_str()))
                        .map(String::as_str);
                    // A host outside the batch order (never expected) runs it itself.
                    if first == Some(host) || !self.order.iter().any(|h| h == host) {
                        g.slots.insert(key.to_string(), State::Running);
                        return Turn::Run(Duty {
                            once: self,
                            key: key.to_string(),
                            done: false,
                        });
                    }
                }
            }
            g = self.cv.wait(g).unwrap_or_else(|p| p.into_inner());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runner::result::Outcome;
    use std::sync::Arc;

    fn hosts(n: usize) -> Vec<String> {
        (0..n).map(|i| format!("h{i}")).collect()
    }

    #[test]
    fn the_first_live_host_runs_and_the_others_share_its_result() {
        let once = Arc::new(RunOnce::new(hosts(3)));
        std::thread::scope(|s| {
            // h2 and h1 arrive first and wait; h0 is first in order and runs.
            let waiters: Vec<_> = ["h2", "h1"]
                .into_iter()
                .map(|h| {
                    let once = &once;
                    s.spawn(move || match once.turn("t", h) {
                        Turn::Shared(o) => o.result["msg"].clone(),
                        Turn::Run(_) => panic!("{h} ran it"),
                    })
                })
                .collect();
            std::thread::sleep(std::time::Duration::from_millis(50));
            match once.turn("t", "h0") {
                Turn::Run(d) => d.finish(&Outcome::failed("from h0".into())),
                Turn::Shared(_) => panic!("h0 did not run it"),
            }
            for w in waiters {
                assert_eq!(w.join().unwrap(), "from h0");
            }
        });
    }

    #[test]
    fn a_host_that_leaves_hands_the_duty_on() {
        let once = RunOnce::new(hosts(2));
        once.host_gone("h0");
        assert!(matches!(once.turn("t", "h1"), Turn::Run(_)));
        // A duty dropped without a result frees the task for the next host.
        let again = RunOnce::new(hosts(2));
        drop(again.turn("t", "h0"));
        again.host_gone("h0");
        assert!(matches!(again.turn("t", "h1"), Turn::Run(_)));
    }

    #[test]
    fn a_host_past_the_step_hands_the_duty_on() {
        // h0 skipped the block holding the task (linear strategy): h1, waiting, runs it once h0
        // is done with the step, and the next step starts with h0 first again.
        let once = RunOnce::new(hosts(2));
        std::thread::scope(|s| {
            let waiter = s.spawn(|| matches!(once.turn("t", "h1"), Turn::Run(_)));
            std::thread::sleep(std::time::Duration::from_millis(50));
            once.host_past("h0");
            assert!(waiter.join().unwrap(), "h1 did not get the duty");
        });
        once.next_step();
        assert!(matches!(once.turn("u", "h0"), Turn::Run(_)));
    }
}
