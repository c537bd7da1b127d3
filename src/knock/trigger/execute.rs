//! A run on a worker thread: claim the host (listeners sharing a history), put the run on
//! record, then run the door's playbook or command.

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use crate::config::{Action, RunnerSettings};
use crate::history::{Claim, KnockOutcome};

use super::{bump, run_command, Job, RunJob, RunOutcome, Shared};

/// How long a run waits for its `running` row to be in the history before it starts.
const STARTED_DURABLE_WITHIN: Duration = Duration::from_secs(2);

/// Runs the job; `None` when another listener sharing the history had claimed the host.
pub(super) fn execute(shared: &Shared, job: &Job, settings: &RunnerSettings) -> Option<RunOutcome> {
    if !claim(shared, job) {
        return None;
    }
    shared.writer.run_started(job.run_id, SystemTime::now());
    // The run is on record before it touches the host: a listener killed mid-run leaves a
    // `running` row that the next start marks `interrupted`, never nothing. Bounded: a slow
    // database delays the run, it does not stop it.
    if !shared.writer.flush(Instant::now() + STARTED_DURABLE_WITHIN) {
        tracing::warn!(
            run = job.run_id,
            "the history is behind: run started before its row was written"
        );
    }
    if let Some(dir) = job.log_path.parent() {
        if let Err(e) = std::fs::create_dir_all(dir) {
            tracing::error!("cannot create log directory {}: {e}", dir.display());
        }
    }
    tracing::info!(door = %job.door.name, host = %job.host, run = job.run_id, log = %job.log_path.display(), "run started");
    Some(match &job.door.action {
        Action::Command(cmd) => run_command(cmd, job.host, &job.log_path, settings.command_timeout),
        Action::Playbook(p) => {
            let run = RunJob {
                run_id: job.run_id,
                door: job.door.name.clone(),
                host: job.host,
                action: p.clone(),
                ssh_wait: settings.ssh_wait,
                task_timeout: settings.task_timeout,
                host_key_checking: settings.host_key_checking,
                log_path: job.log_path.clone(),
                pinned_host_keys: job.claim.as_ref().map(|c| c.fingerprints.clone()),
            };
            // A panicking launcher must not take the worker (and its pool slot) with it.
            let launcher = Arc::clone(&shared.launcher);
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| launcher.run(&run)))
                .unwrap_or_else(|_| RunOutcome::failed("the runner panicked".into()))
        }
    })
}

/// Claims the host in a shared history. False: another listener has it (recorded here as
/// `claimed_elsewhere` or `cooldown`). A database that cannot be asked does not stop the run:
/// a repeated run of an idempotent playbook is safe, a machine left unconfigured is not.
fn claim(shared: &Shared, job: &Job) -> bool {
    let door = &job.door.name;
    match shared
        .history
        .claim(job.host, door, job.run_id, job.knocked)
    {
        Claim::Granted => true,
        Claim::Unavailable(e) => {
            tracing::warn!(door = %door, host = %job.host, run = job.run_id, "DEGRADED: run goes ahead without a claim ({e})");
            true
        }
        Claim::Held {
            listener,
            run_id,
            cooling_down,
        } => {
            let (outcome, detail) = if cooling_down {
                bump(&shared.counters.cooldown);
                let d = format!("configured by listener {listener} (run {run_id}); cooldown");
                (KnockOutcome::Cooldown, d)
            } else {
                let d = format!("listener {listener} claimed this host (run {run_id})");
                (KnockOutcome::ClaimedElsewhere, d)
            };
            tracing::info!(door = %door, host = %job.host, run = job.run_id, "{detail}: not run here");
            shared.count_knock(door, outcome);
            shared
                .writer
                .claimed_elsewhere(job.run_id, outcome, detail, Some(run_id));
            false
        }
    }
}
