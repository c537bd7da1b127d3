//! Where one execution of a task runs: on its host, on the controller (`connection: local` on
//! the task or a block, `delegate_to: localhost`, `local_action`, a delegate with
//! `ansible_connection=local`), or on another host (`delegate_to: db1`) over a session of its own,
//! opened with that host's connection variables and kept for the host's run.

use std::collections::HashMap;

use super::connect::{HostConn, HostLink, Transport};
use super::host::{HostRun, PlayCtx};
use super::keywords::ExecKeywords;
use crate::playbook::model::Task;
use crate::value::{to_display, Value, Vars};

/// Where an execution goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Place {
    Host,
    Local,
    Delegate(String),
}

impl HostRun<'_, '_> {
    /// Where this execution runs. `connection`: the task's or the innermost block's
    /// `connection:` keyword.
    pub(super) fn where_to_run(
        &self,
        connection: Option<&Value>,
        exec: &ExecKeywords,
        scope: &Vars,
    ) -> Result<Place, String> {
        if let Some(c) = connection {
            let c = self
                .ctx
                .templar
                .render_value(c, scope)
                .map(|v| to_display(&v))
                .map_err(|e| format!("connection: {e}"))?;
            match Transport::parse(&c) {
                Transport::Local => return Ok(Place::Local),
                Transport::Ssh => {}
                Transport::Unsupported(name) => {
                    return Err(format!(
                        "connection '{name}' is not supported by knockplay (ssh and local are)"
                    ))
                }
            }
        }
        let name = match &exec.delegate_to {
            Err(e) => return Err(e.clone()),
            Ok(None) => return Ok(Place::Host),
            Ok(Some(n)) => n,
        };
        if *name == self.st.name {
            return Ok(Place::Host);
        }
        let inv = self.ctx.inventory;
        let implicit_local =
            matches!(name.as_str(), "localhost" | "127.0.0.1") && !inv.contains_host(name);
        match Transport::of_vars(&inv.host_vars(name), implicit_local) {
            Transport::Local => Ok(Place::Local),
            Transport::Ssh => Ok(Place::Delegate(name.clone())),
            Transport::Unsupported(c) => Err(format!(
                "delegate_to: '{name}' uses connection '{c}', which knockplay does not support"
            )),
        }
    }
}

/// The session slot for delegate `name` (its inventory variables, or just its name).
pub(super) fn delegate_link<'a>(
    delegates: &'a mut HashMap<String, HostLink>,
    ctx: &PlayCtx<'_>,
    name: &str,
) -> &'a mut HostLink {
    delegates.entry(name.to_string()).or_insert_with(|| {
        let vars = ctx.inventory.host_vars(name);
        HostLink::new(HostConn::from_vars(
            name,
            &vars,
            ctx.opts.remote_user.as_deref(),
            ctx.opts.private_key.as_ref(),
        ))
    })
}

impl HostRun<'_, '_> {
    /// The host that gets the facts this task gathers or sets: the delegated host under
    /// `delegate_facts: true`, else `None` (this host).
    pub(super) fn facts_owner(
        &self,
        task: &Task,
        exec: &ExecKeywords,
        scope: &Vars,
    ) -> Option<String> {
        let wanted = task
            .delegate_facts
            .as_ref()
            .and_then(|v| self.ctx.templar.render_value(v, scope).ok())
            .and_then(|v| crate::value::as_bool(&v))
            .unwrap_or(false);
        match &exec.delegate_to {
            Ok(Some(name)) if wanted && *name != self.st.name => Some(name.clone()),
            _ => None,
        }
    }

    /// Give `facts` to host `name`: in `hostvars` now, in its own facts when it next runs a task
    /// (in this play or a later one).
    pub(super) fn give_facts(&self, name: &str, facts: &Vars) {
        let mut pending = self
            .ctx
            .delegated_facts
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        super::host::merge_facts(pending.entry(name.to_string()).or_default(), facts);
        if let Ok(mut hv) = self.ctx.hostvars.lock() {
            super::host::merge_facts(hv.entry(name.to_string()).or_default(), facts);
        }
    }

    /// Take the facts other hosts' tasks gave this host (`delegate_facts`).
    pub(super) fn take_delegated_facts(&mut self) {
        let mine = self
            .ctx
            .delegated_facts
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&self.st.name);
        if let Some(facts) = mine {
            super::host::merge_facts(&mut self.st.facts, &facts);
        }
    }

    /// `setup` delegated to another host or the controller: that machine's facts (`None`: the
    /// task runs on this host, as usual).
    pub(super) fn delegated_setup(
        &mut self,
        place: Place,
        deadline: Option<super::deadline::Deadline>,
    ) -> Option<Result<Vars, crate::ssh::SshError>> {
        use crate::ssh::Remote;
        let timeout = deadline.map(|d| d.command_timeout(std::time::Instant::now()));
        let script = crate::facts::gather_script();
        let out = match place {
            Place::Host => return None,
            Place::Local => {
                crate::ssh::LocalShell::new("localhost", None).exec(script, None, timeout)
            }
            Place::Delegate(name) => {
                let connector = self.ctx.opts.connector.as_ref();
                delegate_link(&mut self.delegates, self.ctx, &name)
                    .open(connector)
                    .and_then(|r| r.exec(script, None, timeout))
            }
        };
        Some(out.map(|o| crate::facts::parse(&o.stdout_str())))
    }
}
