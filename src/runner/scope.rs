//! A task's variables on one host: the magic variables (`inventory_hostname`, `groups`,
//! `hostvars`, ...) on top of the precedence layers of [`super::vars`].

use serde_json::json;

use super::host::HostRun;
use super::keywords::Inherit;
use super::vars::{self, Layers};
use crate::playbook::model::{Action, Task};
use crate::value::{Value, Vars};

impl HostRun<'_, '_> {
    /// Magic variables for this host.
    fn magic(&self) -> Vars {
        let c = self.ctx;
        let mut m = Vars::new();
        m.insert("inventory_hostname".into(), json!(self.st.name));
        m.insert(
            "inventory_hostname_short".into(),
            json!(self.st.name.split('.').next().unwrap_or(&self.st.name)),
        );
        m.insert("groups".into(), c.groups.clone());
        m.insert(
            "group_names".into(),
            json!(c.inventory.group_names(&self.st.name)),
        );
        m.insert(
            "playbook_dir".into(),
            json!(c.play.dir.display().to_string()),
        );
        m.insert("ansible_check_mode".into(), json!(c.opts.check));
        m.insert("ansible_diff_mode".into(), json!(c.opts.diff));
        m.insert("ansible_play_hosts".into(), json!(c.play_hosts));
        m.insert("ansible_play_batch".into(), json!(c.play_hosts));
        m.insert("play_hosts".into(), json!(c.play_hosts));
        m.insert("ansible_play_name".into(), json!(c.play.name));
        m.insert(
            "ansible_managed".into(),
            json!("This file is managed by knockplay; local changes will be overwritten."),
        );
        m
    }

    /// The scope for a task (without loop variables).
    pub(super) fn scope(&self, task: &Task, inh: &Inherit<'_>) -> Vars {
        let mut magic = self.magic();
        if let Some(r) = &task.role {
            magic.insert("role_name".into(), json!(r.name));
            magic.insert("role_path".into(), json!(r.dir.display().to_string()));
        }
        // Copying every host's variables is costly; only tasks that read them pay for it.
        if mentions_hostvars(task) || self.ctx.play.vars.values().any(mentions) {
            let hv = self
                .ctx
                .hostvars
                .lock()
                .map(|h| h.clone())
                .unwrap_or_default();
            let hv: Vars = hv.into_iter().map(|(k, v)| (k, Value::Object(v))).collect();
            magic.insert("hostvars".into(), Value::Object(hv));
        }
        let mut blocks: Vec<&Vars> = inh.block_vars.clone();
        for o in &inh.owned_vars {
            blocks.push(o);
        }
        vars::build(
            &Layers {
                role: task.role.as_deref(),
                inventory: &self.inv_vars,
                facts: &self.st.facts,
                play_vars: &self.ctx.play.vars,
                vars_files: &self.vars_files,
                block_vars: &blocks,
                task_vars: &task.vars,
                include_vars: &self.st.include_vars,
                registered: &self.st.registered,
                extra: &self.ctx.opts.extra_vars,
                magic,
            },
            self.ctx.templar,
        )
    }
}

/// Does `v` mention `hostvars` anywhere?
fn mentions(v: &Value) -> bool {
    match v {
        Value::String(s) => s.contains("hostvars"),
        Value::Array(a) => a.iter().any(mentions),
        Value::Object(o) => o.values().any(mentions),
        _ => false,
    }
}

/// Does the task's action, `when`, `vars` or loop mention `hostvars`?
fn mentions_hostvars(task: &Task) -> bool {
    let in_action = match &task.action {
        Action::Module { args, .. } => mentions(args),
        Action::IncludeTasks { file, .. } => mentions(file),
        _ => false,
    };
    in_action
        || task.when.iter().any(mentions)
        || task.vars.values().any(mentions)
        || task.loop_.as_ref().is_some_and(|l| mentions(&l.items))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hostvars_mentions() {
        let cases = [
            (json!("{{ hostvars['a'].x }}"), true),
            (json!(["x", {"k": "hostvars"}]), true),
            (json!({"k": ["plain"]}), false),
            (json!(3), false),
        ];
        for (v, want) in cases {
            assert_eq!(mentions(&v), want, "{v}");
        }
    }
}
