//! The listener's side of the metrics endpoint: binds `[listener] metrics`, fills the page from
//! the trigger and the listener's counters, and decides what `/healthz` says.

use std::net::TcpListener;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use super::{Control, ListenError, Running};
use crate::config::ListenConfig;
use crate::knock::trigger::Trigger;
use crate::metrics::http::{Server, Source};
use crate::metrics::Gauges;

/// Binds the configured address (before anything else starts, so a taken port stops the start).
pub(super) fn bind(
    config: &ListenConfig,
    control: &Control,
) -> Result<Option<TcpListener>, ListenError> {
    set(control, Some("starting".into()));
    let Some(addr) = config.listener.metrics else {
        return Ok(None);
    };
    let l = TcpListener::bind(addr).map_err(|source| ListenError::Metrics { addr, source })?;
    tracing::info!("metrics on http://{addr}/metrics, health on http://{addr}/healthz");
    Ok(Some(l))
}

/// Starts serving on the bound socket. A failure here is logged: the listener keeps working.
pub(super) fn serve(
    endpoint: Option<TcpListener>,
    control: &Control,
    trigger: &Arc<Trigger>,
) -> Option<Server> {
    let source = Arc::new(ListenerSource {
        control: control.clone(),
        trigger: Arc::clone(trigger),
    });
    match Server::serve(endpoint?, source) {
        Ok(s) => Some(s),
        Err(e) => {
            tracing::error!("metrics endpoint: {e}");
            None
        }
    }
}

struct ListenerSource {
    control: Control,
    trigger: Arc<Trigger>,
}

impl Source for ListenerSource {
    fn metrics(&self) -> String {
        let s = self.control.stats();
        let (running, queued) = self.trigger.load();
        let gauges = Gauges {
            queued: queued as u64,
            running: running as u64,
            tracked_attempts: s.tracked_attempts,
            capture_packets: s.packets,
            capture_drops: s.kernel_drops,
            history_suppressed: self.trigger.stats().history_suppressed,
            history: self.trigger.history_health(),
            healthy: self.health().is_ok(),
        };
        self.trigger.metrics().render(&gauges)
    }

    fn health(&self) -> Result<(), String> {
        let why = self
            .control
            .inner
            .unhealthy
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        why.map_or(Ok(()), Err)
    }
}

fn set(control: &Control, why: Option<String>) {
    *control
        .inner
        .unhealthy
        .lock()
        .unwrap_or_else(|p| p.into_inner()) = why;
}

/// Healthy while every capture thread runs with its socket up, the detector runs, and the
/// trigger has live workers; otherwise every reason, joined.
pub(super) fn check(control: &Control, running: &Running) {
    let mut why = Vec::new();
    for c in &running.captures {
        if !c.is_running() {
            why.push(format!("capture thread for {} stopped", c.interface));
        } else if !c.stats.up.load(Ordering::SeqCst) {
            why.push(format!("capture on {} is down", c.interface));
        }
    }
    if running.captures.is_empty() {
        why.push("no interface to capture on".into());
    }
    if running.detector.is_finished() {
        why.push("the knock detector stopped".into());
    }
    if let Some(t) = running.trigger.unhealthy() {
        why.push(t);
    }
    set(control, (!why.is_empty()).then(|| why.join("; ")));
}

/// From the stop request on, `/healthz` says so (load balancers and systemd look elsewhere).
pub(super) fn stopping(control: &Control) {
    set(control, Some("the listener is stopping".into()));
}
