//! One host's run of one play: what a host keeps across plays ([`HostState`]), what all hosts of a
//! play share ([`PlayCtx`]), and [`HostRun`] with the few things every part of the walk needs
//! (its session, one report line, hostvars, fact gathering).
//!
//! The walk itself is split by job: `walk` (blocks, includes, handlers), `task` (one leaf task),
//! `loops` (loop items), `scope` (a task's variables), `keywords` (a task's keywords),
//! `result` (result shaping).

use std::collections::BTreeMap;
use std::sync::atomic::AtomicBool;
use std::sync::Mutex;

use serde_json::json;

use super::connect::{HostConn, HostLink};
use super::keywords::resolve_become;
use super::report::{HostLine, Reporter, Status};
use super::result::{unreachable_result, Flow};
use super::RunOptions;
use crate::inventory::Inventory;
use crate::playbook::model::Play;
use crate::playbook::template::Templar;
use crate::ssh::{Remote, SshError};
use crate::value::{Value, Vars};

/// What a host keeps across plays of one run.
pub struct HostState {
    pub name: String,
    /// Its session, opened on first use.
    pub link: HostLink,
    pub facts: Vars,
    /// `set_fact` and `register` results.
    pub registered: Vars,
    pub include_vars: Vars,
    /// Failed or unreachable: left out of the rest of the run.
    pub out: bool,
    pub unreachable: bool,
    pub failed: bool,
    /// The task running (or last run) on the host, to name it if the run crashes there.
    pub current_task: Option<String>,
}

impl HostState {
    /// A host's state before its first play: not connected, nothing known yet.
    pub fn new(name: &str, conn: HostConn) -> HostState {
        HostState {
            name: name.to_string(),
            link: HostLink::new(conn),
            facts: Vars::new(),
            registered: Vars::new(),
            include_vars: Vars::new(),
            out: false,
            unreachable: false,
            failed: false,
            current_task: None,
        }
    }
}

/// Read-only context shared by all hosts of one play.
pub struct PlayCtx<'a> {
    pub play: &'a Play,
    pub opts: &'a RunOptions,
    pub templar: &'a Templar,
    pub reporter: &'a Reporter,
    pub inventory: &'a Inventory,
    pub groups: Value,
    pub play_hosts: Vec<String>,
    /// Every host's variables for `hostvars` (inventory vars + facts + registered), refreshed
    /// after facts and set_fact.
    pub hostvars: &'a Mutex<BTreeMap<String, Vars>>,
    pub end_play: AtomicBool,
    /// Results of `run_once` tasks in this batch.
    pub run_once: super::once::RunOnce,
    /// Hosts running each `throttle`d task.
    pub throttle: super::throttle::Throttle,
    /// A failure under `any_errors_fatal`: the run stops after this batch.
    pub fatal: AtomicBool,
    /// `add_host` / `group_by` changes, applied to the inventory after the play.
    pub inventory_changes: Mutex<Vec<super::control::InventoryChange>>,
    /// Facts `delegate_facts` gave other hosts, until each of them next runs a task.
    pub delegated_facts: &'a Mutex<BTreeMap<String, Vars>>,
}

impl PlayCtx<'_> {
    /// The variables a host has before any task: inventory, play vars, extra vars (for what is
    /// decided before tasks run: gather_facts, vars_files, the facts' become user).
    pub fn host_scope(&self, inventory: &Vars) -> Vars {
        let mut scope = inventory.clone();
        scope.extend(self.play.vars.clone());
        scope.extend(self.opts.extra_vars.clone());
        crate::playbook::template::mark_author_vars(&mut scope);
        scope
    }
}

/// Runs tasks for one host in one play.
pub struct HostRun<'p, 's> {
    pub ctx: &'p PlayCtx<'p>,
    pub st: &'s mut HostState,
    pub inv_vars: Vars,
    pub vars_files: Vars,
    /// Notified handler names/topics, in notification order.
    pub notified: Vec<String>,
    /// Handlers of roles included at run time (`include_role`), after the play's.
    pub role_handlers: Vec<crate::playbook::model::Task>,
    /// Sessions to `delegate_to` hosts, opened on first use.
    pub delegates: std::collections::HashMap<String, super::connect::HostLink>,
    /// Running notified handlers (their header says RUNNING HANDLER, as Ansible's).
    pub in_handlers: bool,
}

impl HostRun<'_, '_> {
    pub(super) fn name(&self) -> String {
        self.st.name.clone()
    }

    /// One plain result line for this host (no loop item, no diff).
    pub(super) fn report(&self, task: &str, status: Status, result: &Value) {
        self.ctx.reporter.host_line(&HostLine {
            host: &self.st.name,
            task,
            status,
            item: None,
            result,
            diff: &[],
            ignored: false,
            show_result: false,
            is_item: false,
        });
    }

    /// The host's session, connecting first when there is none.
    pub(super) fn remote(&mut self) -> Result<&mut (dyn Remote + Send), SshError> {
        self.st.link.open(self.ctx.opts.connector.as_ref())
    }

    /// Gather facts in one round trip.
    pub fn gather_facts(&mut self, display: &str) -> Flow {
        let host = self.name();
        self.st.current_task = Some(display.to_string());
        self.ctx.reporter.task_start(display, "gather_facts");
        // Facts are gathered as the play's become user, as Ansible does (ansible_user_id).
        let become_ = resolve_become(
            self.ctx.templar,
            &self.ctx.play.become_,
            &self.ctx.host_scope(&self.inv_vars),
            self.ctx.opts,
            &self.st.link.conn.user,
        )
        .unwrap_or_default();
        let script =
            crate::ssh::become_::wrap(crate::facts::gather_script(), become_.as_ref(), &[]);
        // The run's default task deadline bounds fact gathering too.
        let timeout = self.ctx.opts.task_timeout;
        match self.remote().and_then(|r| r.exec(&script, None, timeout)) {
            Ok(out) => {
                let facts = crate::facts::parse(&out.stdout_str());
                self.st.facts.extend(facts);
                self.publish_hostvars(&self.st.facts);
                let r = json!({"changed": false});
                self.report(display, Status::Ok, &r);
                self.ctx.reporter.count(&host, |s| s.ok += 1);
                Flow::Continue
            }
            Err(e) => self.report_unreachable(display, e),
        }
    }

    /// Report the host unreachable for `display`, count it, and drop its session.
    pub fn report_unreachable(&mut self, display: &str, e: SshError) -> Flow {
        let host = self.name();
        self.report(display, Status::Unreachable, &unreachable_result(&e));
        self.ctx.reporter.count(&host, |s| s.unreachable += 1);
        self.st.unreachable = true;
        self.st.link.close();
        Flow::Unreachable
    }

    /// Merge the `ansible_facts` a module returned (`getent`, `hostname`) into the host's facts,
    /// as Ansible does: each name as a variable and, without its `ansible_` prefix, under
    /// `ansible_facts`. A failed module's facts are dropped. Returns the module's outcome.
    pub(super) fn merge_module_facts(
        &mut self,
        r: crate::modules::ModuleResult,
        owner: Option<String>,
    ) -> super::result::Outcome {
        let Some(Value::Object(facts)) = r.data.get("ansible_facts").filter(|_| !r.failed) else {
            return super::result::Outcome::of(r);
        };
        let mut given = Vars::new();
        let mut ns = Vars::new();
        for (k, v) in facts {
            given.insert(k.clone(), v.clone());
            ns.insert(
                k.strip_prefix("ansible_").unwrap_or(k).to_string(),
                v.clone(),
            );
        }
        given.insert("ansible_facts".into(), Value::Object(ns));
        match owner {
            // `delegate_facts`: the delegated host gets them.
            Some(o) => self.give_facts(&o, &given),
            None => {
                merge_facts(&mut self.st.facts, &given);
                self.publish_hostvars(&self.st.facts);
            }
        }
        super::result::Outcome::of(r)
    }

    /// Copy `vars` into this host's entry in `hostvars` (after facts and set_fact).
    pub(super) fn publish_hostvars(&self, vars: &Vars) {
        if let Ok(mut hv) = self.ctx.hostvars.lock() {
            let e = hv.entry(self.st.name.clone()).or_default();
            for (k, v) in vars {
                e.insert(k.clone(), v.clone());
            }
        }
    }
}

/// Facts merged as Ansible merges gathered facts: top-level names replaced, `ansible_facts`
/// merged key by key.
pub(super) fn merge_facts(into: &mut Vars, facts: &Vars) {
    for (k, v) in facts {
        match (k.as_str(), into.get_mut(k), v) {
            ("ansible_facts", Some(Value::Object(have)), Value::Object(new)) => {
                for (fk, fv) in new {
                    have.insert(fk.clone(), fv.clone());
                }
            }
            _ => {
                into.insert(k.clone(), v.clone());
            }
        }
    }
}
