//! Where one execution of a task runs: on its host, on the controller (`connection: local` on
//! the task or a block, `delegate_to: localhost`, `local_action`, a delegate with
//! `ansible_connection=local`), or on another host (`delegate_to: db1`) over a session of its own,
//! opened with that host's connection variables and kept for the host's run.

use std::collections::HashMap;

use super::connect::{HostConn, HostLink, Transport};
use super::host::{HostRun, PlayCtx};
use super::keywords::ExecKeywords;
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
