//! A task's keywords on one host, templated and resolved once into [`TaskKeywords`]: `no_log`,
//! `ignore_errors`, `notify`, `timeout`, and what one execution needs (`check_mode`, `become*`,
//! `environment`, `retries`, `delay`). Conditions (`when`, `changed_when`, `failed_when`,
//! `until`) are evaluated where Ansible evaluates them (per loop item, after the result exists),
//! through [`Conditions`].
//!
//! Precedence: the task's own keyword, then what enclosing blocks and includes pass down
//! ([`Inherit`]), then the play; a keyword that is set but does not render gives way to the next
//! one that does. Except `no_log`, which fails closed: set but not evaluable means true.
//!
//! Numbers (`retries`, `delay`, `timeout`) may come from a target's output through a variable:
//! they are checked ([`crate::value::seconds_of`], [`crate::value::count_of`]) and a bad one is
//! the task's error, never a panic or a silent default.

use std::sync::Arc;
use std::time::Duration;

use super::result::is_true;
use super::RunOptions;
use crate::playbook::model::{BecomeSpec, Play, Task};
use crate::playbook::template::Templar;
use crate::ssh::Become;
use crate::value::{as_bool, count_of, seconds_of, to_display, Value, Vars};

/// Attributes inherited from enclosing blocks, roles, includes and the play.
#[derive(Clone, Default)]
pub struct Inherit<'a> {
    pub become_: BecomeSpec,
    pub when: Vec<Value>,
    pub tags: Vec<String>,
    pub block_vars: Vec<&'a Vars>,
    pub environment: Vec<Value>,
    pub ignore_errors: Option<Value>,
    pub check_mode: Option<Value>,
    pub remote_user: Option<Value>,
    pub no_log: Option<Value>,
    pub timeout: Option<Value>,
    pub delegate_to: Option<Value>,
    pub run_once: Option<Value>,
    pub connection: Option<Value>,
    pub throttle: Option<Value>,
    pub any_errors_fatal: Option<Value>,
    pub diff: Option<Value>,
    /// `module_defaults` of the play, then enclosing blocks (later ones win).
    pub module_defaults: Vec<Value>,
    /// Extra vars from include_tasks/include_role parameters (owned because loops create them).
    pub owned_vars: Vec<Arc<Vars>>,
}

/// Where a task's keywords come from on one host.
pub struct KeywordSources<'a> {
    pub templar: &'a Templar,
    pub task: &'a Task,
    pub inherited: &'a Inherit<'a>,
    pub play: &'a Play,
    pub opts: &'a RunOptions,
    /// The login user: becoming that user needs no wrapper.
    pub login_user: &'a str,
}

/// A task's keywords on one host.
pub struct TaskKeywords<'a> {
    /// Results are censored in output.
    pub no_log: bool,
    /// How long the whole task (all loop items and retries) may take; `Err` when the keyword is
    /// not a valid number of seconds (the task then fails without running).
    pub timeout: Result<Option<Duration>, String>,
    pub ignore_errors: bool,
    /// Handler names and topics to notify when the task changed something.
    pub notify: Vec<String>,
    /// What one execution of the module needs (a loop resolves this again per item).
    pub exec: ExecKeywords,
    pub conditions: Conditions<'a>,
}

/// The keywords of one execution (Ansible templates them per loop item: the item may appear).
pub struct ExecKeywords {
    pub check_mode: bool,
    /// `become*` with inventory and CLI defaults; its error is reported only when a remote module
    /// needs it (control modules run on the controller).
    pub become_: Result<Option<Become>, String>,
    /// `environment` of the play, enclosing blocks and the task, later keys winning.
    pub environment: Result<Vec<(String, String)>, String>,
    /// `until` retries and the delay between them; an invalid value is the task's error when
    /// `until` needs it.
    pub retries: Result<u32, String>,
    pub delay: Result<Duration, String>,
    /// `delegate_to` of the task or the innermost block, rendered (`None`: not delegated).
    pub delegate_to: Result<Option<String>, String>,
}

/// The conditions of a task, evaluated lazily.
pub struct Conditions<'a> {
    templar: &'a Templar,
    /// Conditions from enclosing blocks: evaluated once, without the loop item.
    pub inherited_when: &'a [Value],
    /// The task's own `when`: evaluated per loop item.
    pub when: &'a [Value],
    pub changed_when: Option<&'a Value>,
    pub failed_when: Option<&'a Value>,
    pub until: Option<&'a Value>,
}

impl<'a> KeywordSources<'a> {
    /// Resolve the task's keywords against `scope` (the task's scope, without loop variables).
    pub fn resolve(&self, scope: &Vars) -> TaskKeywords<'a> {
        let t = self.task;
        let notify = t
            .notify
            .iter()
            .map(|n| {
                self.templar
                    .render_str(n, scope)
                    .map(|v| to_display(&v))
                    .unwrap_or_else(|_| n.clone())
            })
            .collect();
        TaskKeywords {
            no_log: self.no_log(scope),
            timeout: self.timeout(scope),
            ignore_errors: self
                .innermost_bool(
                    [
                        t.ignore_errors.as_ref(),
                        self.inherited.ignore_errors.as_ref(),
                        self.play.ignore_errors.as_ref(),
                    ],
                    scope,
                )
                .unwrap_or(false),
            notify,
            exec: self.resolve_exec(scope),
            conditions: Conditions {
                templar: self.templar,
                inherited_when: &self.inherited.when,
                when: &t.when,
                changed_when: t.changed_when.as_ref(),
                failed_when: t.failed_when.as_ref(),
                until: t.until.as_ref(),
            },
        }
    }

    /// Resolve the keywords of one execution against `scope` (with the loop item, in a loop).
    pub fn resolve_exec(&self, scope: &Vars) -> ExecKeywords {
        let t = self.task;
        let check_mode = self
            .innermost_bool(
                [
                    t.check_mode.as_ref(),
                    self.inherited.check_mode.as_ref(),
                    self.play.check_mode.as_ref(),
                ],
                scope,
            )
            .unwrap_or(self.opts.check);
        let spec = t
            .become_
            .inherit(&self.inherited.become_)
            .inherit(&self.play.become_);
        let mut envs: Vec<&Value> = self.play.environment.iter().collect();
        envs.extend(self.inherited.environment.iter());
        envs.extend(t.environment.iter());
        ExecKeywords {
            check_mode,
            become_: resolve_become(self.templar, &spec, scope, self.opts, self.login_user),
            environment: resolve_environment(self.templar, &envs, scope),
            retries: self.number("retries", t.retries.as_ref(), scope, count_of, 3),
            delay: self.number(
                "delay",
                t.delay.as_ref(),
                scope,
                seconds_of,
                Duration::from_secs(5),
            ),
            delegate_to: self.delegate_to(scope),
        }
    }

    fn delegate_to(&self, scope: &Vars) -> Result<Option<String>, String> {
        let set = self
            .task
            .delegate_to
            .as_ref()
            .or(self.inherited.delegate_to.as_ref());
        let Some(v) = set else { return Ok(None) };
        let name = self
            .templar
            .render_value(v, scope)
            .map(|v| to_display(&v))
            .map_err(|e| format!("delegate_to: {e}"))?;
        Ok(Some(name.trim().to_string()).filter(|s| !s.is_empty()))
    }

    /// `no_log` of the task or the innermost block that sets it. Fails closed: a value that does
    /// not render, or is not a boolean, hides the result.
    fn no_log(&self, scope: &Vars) -> bool {
        let set = self.task.no_log.as_ref().or(self.inherited.no_log.as_ref());
        set.is_some_and(|v| {
            self.templar
                .render_value(v, scope)
                .ok()
                .and_then(|v| as_bool(&v))
                .unwrap_or(true)
        })
    }

    /// `timeout` of the task or the innermost block that sets it, else the run's default
    /// (`task_timeout`); zero means none, as in Ansible.
    fn timeout(&self, scope: &Vars) -> Result<Option<Duration>, String> {
        let set = self
            .task
            .timeout
            .as_ref()
            .or(self.inherited.timeout.as_ref());
        let Some(v) = set else {
            return Ok(self.opts.task_timeout);
        };
        let d = self.number("timeout", Some(v), scope, seconds_of, Duration::ZERO)?;
        Ok((!d.is_zero()).then_some(d))
    }

    /// A numeric keyword read by `parse`, `default` when unset; errors name the keyword.
    fn number<T>(
        &self,
        keyword: &str,
        v: Option<&Value>,
        scope: &Vars,
        parse: fn(&Value) -> Result<T, String>,
        default: T,
    ) -> Result<T, String> {
        let Some(v) = v else {
            return Ok(default);
        };
        self.templar
            .render_value(v, scope)
            .map_err(|e| e.to_string())
            .and_then(|v| parse(&v))
            .map_err(|e| format!("the task's '{keyword}' {e}"))
    }

    /// A keyword's value, or `None` when it is unset or does not render.
    fn render(&self, v: Option<&Value>, scope: &Vars) -> Option<Value> {
        v.and_then(|v| self.templar.render_value(v, scope).ok())
    }

    /// The first of `layers` (innermost first) that is set and renders, as a boolean.
    fn innermost_bool(&self, layers: [Option<&Value>; 3], scope: &Vars) -> Option<bool> {
        layers
            .into_iter()
            .find_map(|v| self.render(v, scope))
            .map(|v| is_true(&v))
    }
}

/// Resolve a become spec: keywords, then inventory `ansible_become*`, then CLI defaults. `None`
/// when become is off, or when the target user is the login user (no wrapper needed).
pub fn resolve_become(
    templar: &Templar,
    spec: &BecomeSpec,
    scope: &Vars,
    opts: &RunOptions,
    login_user: &str,
) -> Result<Option<Become>, String> {
    let render = |v: &Option<Value>| -> Result<Option<String>, String> {
        match v {
            None => Ok(None),
            Some(v) => templar
                .render_value(v, scope)
                .map(|v| Some(to_display(&v)))
                .map_err(|e| e.to_string()),
        }
    };
    let enabled = match &spec.enabled {
        Some(v) => is_true(&templar.render_value(v, scope).map_err(|e| e.to_string())?),
        None => scope
            .get("ansible_become")
            .map(is_true)
            .unwrap_or(opts.become_),
    };
    if !enabled {
        return Ok(None);
    }
    let user = render(&spec.user)?
        .or_else(|| scope.get("ansible_become_user").map(to_display))
        .or_else(|| opts.become_user.clone())
        .unwrap_or_else(|| "root".into());
    let method = render(&spec.method)?
        .or_else(|| scope.get("ansible_become_method").map(to_display))
        .or_else(|| opts.become_method.clone())
        .unwrap_or_else(|| "sudo".into());
    if method != "sudo" && method != "su" {
        return Err(format!(
            "become_method '{method}' is not supported (supported: sudo, su)"
        ));
    }
    if user == login_user {
        // Already that user: no wrapper, no extra process.
        return Ok(None);
    }
    Ok(Some(Become { method, user }))
}

/// Merge `environment` layers (outermost first): later keys win; a layer that is not a mapping
/// adds nothing.
fn resolve_environment(
    templar: &Templar,
    layers: &[&Value],
    scope: &Vars,
) -> Result<Vec<(String, String)>, String> {
    let mut out: Vec<(String, String)> = Vec::new();
    for layer in layers {
        let v = templar
            .render_value(layer, scope)
            .map_err(|e| e.to_string())?;
        if let Value::Object(o) = v {
            for (k, v) in o {
                out.retain(|(ek, _)| *ek != k);
                out.push((k, to_display(&v)));
            }
        }
    }
    Ok(out)
}

/// One condition (`when`, `changed_when`, `failed_when`, `until`, `assert`'s `that`): a boolean,
/// or an expression.
pub fn cond_true(templar: &Templar, c: &Value, scope: &Vars) -> Result<bool, String> {
    Ok(match c {
        Value::Bool(b) => *b,
        Value::String(s) => templar
            .eval_bool(s, scope)
            .map_err(|e| format!("The conditional check '{s}' failed. The error was: {e}"))?,
        other => as_bool(other).unwrap_or(false),
    })
}

/// The first of `conds` that is false, as written (the skip reason); `None` when all hold.
pub fn first_false(
    templar: &Templar,
    conds: &[Value],
    scope: &Vars,
) -> Result<Option<String>, String> {
    for c in conds {
        if !cond_true(templar, c, scope)? {
            return Ok(Some(to_display(c)));
        }
    }
    Ok(None)
}

impl Conditions<'_> {
    /// Why enclosing blocks skip this task, if they do.
    pub fn inherited_skip(&self, scope: &Vars) -> Result<Option<String>, String> {
        first_false(self.templar, self.inherited_when, scope)
    }

    /// Why the task's own `when` skips it (or this loop item), if it does.
    pub fn own_skip(&self, scope: &Vars) -> Result<Option<String>, String> {
        first_false(self.templar, self.when, scope)
    }

    /// A condition keyword's value against a result's scope (a list means all of them).
    pub fn holds(&self, v: &Value, scope: &Vars) -> Result<bool, String> {
        let list: Vec<&Value> = match v {
            Value::Array(a) => a.iter().collect(),
            other => vec![other],
        };
        for c in list {
            if !cond_true(self.templar, c, scope)? {
                return Ok(false);
            }
        }
        Ok(true)
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::{options, vars};
    use super::*;
    use serde_json::json;

    /// A play, run options and a templar to resolve keywords with.
    struct Fixture {
        dir: tempfile::TempDir,
        opts: RunOptions,
        templar: Templar,
        play: Play,
    }

    impl Fixture {
        fn new() -> Fixture {
            let dir = tempfile::tempdir().unwrap();
            let (opts, _) = options(dir.path(), "- hosts: all\n  tasks: []\n", &["h1"], &[], &[]);
            Fixture {
                dir,
                opts,
                templar: Templar::new(),
                play: crate::playbook::parse::tests_support::empty_play(),
            }
        }

        /// The first task of `yaml`, parsed as a tasks file.
        fn task(&self, yaml: &str) -> Task {
            let p = self.dir.path().join("tasks.yml");
            std::fs::write(&p, format!("- {yaml}\n")).unwrap();
            crate::playbook::parse::load_tasks_file(&p, self.dir.path(), &Default::default(), None)
                .unwrap()
                .remove(0)
        }

        fn sources<'a>(&'a self, task: &'a Task, inherited: &'a Inherit<'a>) -> KeywordSources<'a> {
            KeywordSources {
                templar: &self.templar,
                task,
                inherited,
                play: &self.play,
                opts: &self.opts,
                login_user: "root",
            }
        }
    }

    #[test]
    fn become_resolution() {
        let f = Fixture::new();
        let spec = |e: Option<Value>, u: Option<Value>, m: Option<Value>| BecomeSpec {
            enabled: e,
            user: u,
            method: m,
        };
        let scope = vars(json!({"who": "app", "ansible_become_user": "inv"}));
        let b = |user: &str, method: &str| -> Result<Option<Become>, String> {
            Ok(Some(Become {
                method: method.into(),
                user: user.into(),
            }))
        };
        let cases = vec![
            (spec(None, None, None), "root", Ok(None)),
            (spec(Some(json!(false)), None, None), "root", Ok(None)),
            (
                spec(Some(json!(true)), None, None),
                "root",
                b("inv", "sudo"),
            ),
            (
                spec(
                    Some(json!("yes")),
                    Some(json!("{{ who }}")),
                    Some(json!("su")),
                ),
                "root",
                b("app", "su"),
            ),
            // Becoming the login user needs no wrapper.
            (
                spec(Some(json!(true)), Some(json!("me")), None),
                "me",
                Ok(None),
            ),
            (
                spec(Some(json!(true)), None, Some(json!("doas"))),
                "root",
                Err("become_method 'doas' is not supported (supported: sudo, su)".into()),
            ),
        ];
        for (s, login, want) in cases {
            assert_eq!(
                resolve_become(&f.templar, &s, &scope, &f.opts, login),
                want,
                "{s:?}"
            );
        }
        let undefined = spec(Some(json!("{{ nope }}")), None, None);
        assert!(resolve_become(&f.templar, &undefined, &scope, &f.opts, "root").is_err());
    }

    #[test]
    fn environment_layers_merge_later_wins() {
        let t = Templar::new();
        let scope = vars(json!({"v": "x"}));
        let play = json!({"A": "1", "B": "play"});
        let block = json!("not a mapping");
        let task = json!({"B": "{{ v }}", "C": 3});
        let got = resolve_environment(&t, &[&play, &block, &task], &scope).unwrap();
        let want: Vec<(String, String)> = vec![
            ("A".into(), "1".into()),
            ("B".into(), "x".into()),
            ("C".into(), "3".into()),
        ];
        assert_eq!(got, want);
        assert!(resolve_environment(&t, &[&json!({"X": "{{ nope }}"})], &scope).is_err());
    }

    #[test]
    fn keywords_resolve_innermost_first() {
        let mut f = Fixture::new();
        let scope = vars(json!({"yes_": true}));
        // (task, inherited, play) ignore_errors and check_mode → resolved
        let cases = vec![
            (None, None, None, false),
            (None, None, Some(json!(true)), true),
            (None, Some(json!(true)), Some(json!(false)), true),
            (
                Some(json!(false)),
                Some(json!(true)),
                Some(json!(true)),
                false,
            ),
            (Some(json!("{{ yes_ }}")), None, None, true),
            // A keyword that does not render gives way to the enclosing one.
            (Some(json!("{{ nope }}")), Some(json!(true)), None, true),
        ];
        for (tv, iv, pv, want) in cases {
            let mut tk = f.task("debug: msg=x");
            tk.ignore_errors = tv.clone();
            tk.check_mode = tv.clone();
            let inh = Inherit {
                ignore_errors: iv.clone(),
                check_mode: iv.clone(),
                ..Inherit::default()
            };
            f.play.ignore_errors = pv.clone();
            f.play.check_mode = pv.clone();
            let kw = f.sources(&tk, &inh).resolve(&scope);
            assert_eq!(kw.ignore_errors, want, "{tv:?} {iv:?} {pv:?}");
            assert_eq!(kw.exec.check_mode, want, "{tv:?} {iv:?} {pv:?}");
        }
    }

    #[test]
    fn retries_delay_no_log_notify() {
        let f = Fixture::new();
        let inh = Inherit::default();
        let scope = vars(json!({"n": 7, "h": "restart app"}));
        let mut tk = f.task("debug: msg=x");
        let defaults = f.sources(&tk, &inh).resolve(&scope);
        assert_eq!(
            (defaults.exec.retries, defaults.exec.delay),
            (Ok(3), Ok(Duration::from_secs(5)))
        );
        assert!(!defaults.no_log);
        tk.retries = Some(json!("{{ n }}"));
        tk.delay = Some(json!("0.5"));
        tk.no_log = Some(json!("yes"));
        tk.notify = vec!["{{ h }}".into(), "{{ nope }}".into()];
        let kw = f.sources(&tk, &inh).resolve(&scope);
        assert_eq!(
            (kw.exec.retries, kw.exec.delay),
            (Ok(7), Ok(Duration::from_millis(500)))
        );
        assert!(kw.no_log);
        assert_eq!(
            kw.notify,
            vec!["restart app".to_string(), "{{ nope }}".into()]
        );
    }

    #[test]
    fn conditions() {
        let t = Templar::new();
        let scope = vars(json!({"x": 1}));
        let when = vec![json!(true), json!("x == 1"), json!("x == 2")];
        let c = Conditions {
            templar: &t,
            inherited_when: &[],
            when: &when,
            changed_when: None,
            failed_when: None,
            until: None,
        };
        assert_eq!(c.inherited_skip(&scope), Ok(None));
        assert_eq!(c.own_skip(&scope), Ok(Some("x == 2".into())));
        let cases = [
            (json!("x == 1"), true),
            (json!(["x == 1", "x > 0"]), true),
            (json!(["x == 1", false]), false),
            (json!("yes"), true),
            (json!(0), false),
        ];
        for (v, want) in cases {
            assert_eq!(c.holds(&v, &scope), Ok(want), "{v}");
        }
        let err = c.holds(&json!("nope.x"), &scope).unwrap_err();
        assert!(
            err.starts_with("The conditional check 'nope.x' failed."),
            "{err}"
        );
    }

    #[test]
    fn no_log_fails_closed() {
        let f = Fixture::new();
        let scope = vars(json!({"hide": true, "show": false}));
        // (task no_log, enclosing block's no_log, censored)
        let cases = vec![
            (None, None, false),
            (Some(json!(false)), None, false),
            (Some(json!("{{ show }}")), None, false),
            (Some(json!(true)), None, true),
            (Some(json!("{{ hide }}")), None, true),
            // Cannot be evaluated, or not a boolean: hidden.
            (Some(json!("{{ undefined_var }}")), None, true),
            (
                Some(json!("{{ undefined_var.x }}")),
                Some(json!(false)),
                true,
            ),
            (Some(json!("maybe")), None, true),
            (Some(json!(null)), None, true),
            // A block's no_log covers its tasks; the task's own value wins.
            (None, Some(json!(true)), true),
            (None, Some(json!("{{ nope }}")), true),
            (Some(json!(false)), Some(json!(true)), false),
        ];
        for (task, block, want) in cases {
            let mut tk = f.task("debug: msg=x");
            tk.no_log = task.clone();
            let inh = Inherit {
                no_log: block.clone(),
                ..Inherit::default()
            };
            let kw = f.sources(&tk, &inh).resolve(&scope);
            assert_eq!(kw.no_log, want, "task {task:?}, block {block:?}");
        }
    }

    #[test]
    fn numbers_from_targets_are_checked() {
        let f = Fixture::new();
        let inh = Inherit::default();
        // What a hostile target prints into a registered variable.
        let scope = vars(json!({"out": {"stdout": "-1"}, "big": "1e400", "two": "2"}));
        let mut tk = f.task("debug: msg=x");
        tk.delay = Some(json!("{{ out.stdout }}"));
        tk.retries = Some(json!("{{ out.stdout }}"));
        tk.timeout = Some(json!("{{ big }}"));
        let kw = f.sources(&tk, &inh).resolve(&scope);
        let delay = kw.exec.delay.unwrap_err();
        assert!(
            delay.starts_with("the task's 'delay' must be a number of seconds"),
            "{delay}"
        );
        assert!(delay.contains("'-1'"), "{delay}");
        let retries = kw.exec.retries.unwrap_err();
        assert!(
            retries.starts_with("the task's 'retries' must be a whole number"),
            "{retries}"
        );
        let timeout = kw.timeout.unwrap_err();
        assert!(timeout.contains("'1e400'"), "{timeout}");
        tk.timeout = Some(json!("{{ nope }}"));
        assert!(f.sources(&tk, &inh).resolve(&scope).timeout.is_err());
    }

    #[test]
    fn timeout_is_the_task_s_then_the_block_s_then_the_run_s() {
        let mut f = Fixture::new();
        let scope = vars(json!({"two": "2"}));
        let s = Duration::from_secs;
        // (task timeout, block timeout, run default, resolved)
        let cases = vec![
            (None, None, None, None),
            (None, None, Some(s(30)), Some(s(30))),
            (Some(json!("{{ two }}")), None, Some(s(30)), Some(s(2))),
            (None, Some(json!(5)), Some(s(30)), Some(s(5))),
            (Some(json!(0)), Some(json!(5)), Some(s(30)), None),
        ];
        for (task, block, default, want) in cases {
            f.opts.task_timeout = default;
            let mut tk = f.task("debug: msg=x");
            tk.timeout = task.clone();
            let inh = Inherit {
                timeout: block.clone(),
                ..Inherit::default()
            };
            let kw = f.sources(&tk, &inh).resolve(&scope);
            assert_eq!(kw.timeout, Ok(want), "{task:?} {block:?} {default:?}");
        }
    }
}
