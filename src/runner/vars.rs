//! Variable precedence: the layers that make up a task's variables on one host.
//!
//! Lowest to highest (a subset of Ansible's 22 levels, in the same order):
//!
//! 1. role defaults (`roles/x/defaults/main.yml`)
//! 2. inventory group vars (`[g:vars]`, `group_vars/`; `all` < parent < child)
//! 3. inventory host vars (inline host vars, `host_vars/`)
//! 4. facts (`ansible_*`, `ansible_facts`)
//! 5. play `vars:`
//! 6. play `vars_files:`
//! 7. role vars (`roles/x/vars/main.yml`)
//! 8. block vars, then task `vars:` (inner wins)
//! 9. `include_vars`
//! 10. `set_fact` and `register`
//! 11. role parameters (`- role: x  param: 1`)
//! 12. extra vars (`-e`): always win
//!
//! Magic variables (`inventory_hostname`, `groups`, `hostvars`, `item`, ...) are set last.
//! Values defined in templatable layers may themselves contain templates (`x: "{{ y }}/z"`);
//! they are rendered against the whole scope when the scope is built. Facts, registered results
//! and the results of rendering are data, never templated again (a command's stdout containing
//! `{{` stays literal).

use crate::playbook::model::RoleCtx;
use crate::playbook::template::{self, Templar};
use crate::value::{Value, Vars};

/// The inputs for one task's scope on one host.
pub struct Layers<'a> {
    pub role: Option<&'a RoleCtx>,
    pub inventory: &'a Vars,
    pub facts: &'a Vars,
    pub play_vars: &'a Vars,
    pub vars_files: &'a Vars,
    pub block_vars: &'a [&'a Vars],
    pub task_vars: &'a Vars,
    pub include_vars: &'a Vars,
    pub registered: &'a Vars,
    pub extra: &'a Vars,
    pub magic: Vars,
}

fn has_template(v: &Value) -> bool {
    match v {
        Value::String(s) => s.contains("{{") || s.contains("{%"),
        Value::Array(a) => a.iter().any(has_template),
        Value::Object(o) => o.values().any(has_template),
        _ => false,
    }
}

/// Build the merged scope and resolve templated variables in it.
///
/// Each author template is rendered once, against the scope as merged (a template that uses
/// another author template renders that one on the way, see [`Templar`]); its result is data and
/// never rendered again, even when it holds `{{` (a registered stdout passed through `vars:`).
/// A variable that fails to render stays as written and listed as the author's: the error
/// surfaces where it is used.
pub fn build(l: &Layers<'_>, templar: &Templar) -> Vars {
    let mut scope = Vars::new();
    let mut lazy: Vec<String> = Vec::new();
    let mut put = |scope: &mut Vars, layer: &Vars, templatable: bool| {
        for (k, v) in layer {
            if template::is_hidden(k) {
                continue;
            }
            let data = template::listed(layer, template::DATA_VARS, k);
            lazy.retain(|x| x != k);
            if templatable && !data && has_template(v) {
                lazy.push(k.clone());
            }
            scope.insert(k.clone(), v.clone());
        }
    };
    if let Some(r) = l.role {
        put(&mut scope, &r.defaults, true);
    }
    put(&mut scope, l.inventory, true);
    put(&mut scope, l.facts, false);
    put(&mut scope, l.play_vars, true);
    put(&mut scope, l.vars_files, true);
    if let Some(r) = l.role {
        put(&mut scope, &r.vars, true);
    }
    for b in l.block_vars {
        put(&mut scope, b, true);
    }
    put(&mut scope, l.task_vars, true);
    put(&mut scope, l.include_vars, true);
    put(&mut scope, l.registered, false);
    if let Some(r) = l.role {
        put(&mut scope, &r.params, true);
    }
    put(&mut scope, l.extra, true);
    put(&mut scope, &l.magic, false);
    if lazy.is_empty() {
        return scope;
    }
    template::set_author_vars(&mut scope, &lazy);
    let rendered: Vec<(String, Option<Value>)> = lazy
        .iter()
        .map(|k| {
            let v = scope
                .get(k)
                .and_then(|v| templar.render_value(v, &scope).ok());
            (k.clone(), v)
        })
        .collect();
    let mut failed = Vec::new();
    for (k, v) in rendered {
        match v {
            Some(v) => {
                scope.insert(k, v);
            }
            None => failed.push(k),
        }
    }
    template::set_author_vars(&mut scope, &failed);
    scope
}

#[cfg(test)]
mod tests {
    use super::super::tests::vars;
    use super::*;
    use serde_json::json;

    #[test]
    fn precedence_order() {
        let role = RoleCtx {
            defaults: vars(json!({"a": "role_default", "b": "role_default"})),
            vars: vars(json!({"f": "role_vars"})),
            params: vars(json!({"g": "role_param"})),
            ..Default::default()
        };
        let inv =
            vars(json!({"b": "inventory", "c": "inventory", "f": "inventory", "g": "inventory"}));
        let play = vars(json!({"c": "play", "d": "play", "f": "play"}));
        let vf = vars(json!({"d": "vars_files"}));
        let task = vars(json!({"e": "task", "h": "task"}));
        let reg = vars(json!({"h": "registered", "g": "registered"}));
        let extra = vars(json!({"a": "extra"}));
        let empty = Vars::new();
        let t = Templar::new();
        let s = build(
            &Layers {
                role: Some(&role),
                inventory: &inv,
                facts: &empty,
                play_vars: &play,
                vars_files: &vf,
                block_vars: &[],
                task_vars: &task,
                include_vars: &empty,
                registered: &reg,
                extra: &extra,
                magic: Vars::new(),
            },
            &t,
        );
        assert_eq!(s["a"], json!("extra"));
        assert_eq!(s["b"], json!("inventory"));
        assert_eq!(s["c"], json!("play"));
        assert_eq!(s["d"], json!("vars_files"));
        assert_eq!(s["e"], json!("task"));
        assert_eq!(s["f"], json!("role_vars"));
        assert_eq!(s["g"], json!("role_param"));
        assert_eq!(s["h"], json!("registered"));
    }

    #[test]
    fn resolves_chained_templates_but_not_registered_output() {
        let play = vars(json!({"base": "/srv", "dir": "{{ base }}/app", "conf": "{{ dir }}/conf"}));
        let reg = vars(json!({"out": {"stdout": "{{ not_a_var }}"}}));
        let empty = Vars::new();
        let t = Templar::new();
        let s = build(
            &Layers {
                role: None,
                inventory: &empty,
                facts: &empty,
                play_vars: &play,
                vars_files: &empty,
                block_vars: &[],
                task_vars: &empty,
                include_vars: &empty,
                registered: &reg,
                extra: &empty,
                magic: Vars::new(),
            },
            &t,
        );
        assert_eq!(s["conf"], json!("/srv/app/conf"));
        assert_eq!(s["out"]["stdout"], json!("{{ not_a_var }}"));
    }

    fn scope_of(play: &Vars, task: &Vars, block: &Vars, reg: &Vars) -> Vars {
        let empty = Vars::new();
        build(
            &Layers {
                role: None,
                inventory: &empty,
                facts: &empty,
                play_vars: play,
                vars_files: &empty,
                block_vars: &[block],
                task_vars: task,
                include_vars: &empty,
                registered: reg,
                extra: &empty,
                magic: Vars::new(),
            },
            &Templar::new(),
        )
    }

    #[test]
    fn results_of_rendering_are_data_and_never_rendered_again() {
        let evil = "{{ lookup('env', 'HOME') }}";
        let reg = vars(json!({"out": {"stdout": evil}, "fact": evil}));
        // Author variables that pass target text on, directly and through filters.
        let play =
            vars(json!({"direct": "{{ out.stdout }}", "trimmed": "{{ out.stdout | trim }}"}));
        let task = vars(json!({"via_fact": "{{ fact ~ '' }}", "chain": "{{ trimmed }}"}));
        let mut block = vars(json!({"item": evil, "author": "{{ 'a' ~ 'b' }}"}));
        template::mark_data(&mut block, "item");
        let s = scope_of(&play, &task, &block, &reg);
        for k in ["direct", "trimmed", "via_fact", "chain", "item"] {
            assert_eq!(s[k], json!(evil), "{k}");
        }
        assert_eq!(s["author"], json!("ab"));
        // Nothing is left for lazy rendering, and the data renders as itself anywhere.
        assert!(!template::listed(&s, template::LAZY_VARS, "direct"));
        let t = Templar::new();
        for src in [
            "{{ direct }}",
            "{{ chain | trim | string }}",
            "x{{ item }}x",
            "{{ out }}",
        ] {
            let v = t.render_str(src, &s).unwrap();
            assert!(
                v.to_string().contains("lookup('env', 'HOME')"),
                "{src}: {v}"
            );
        }
    }

    #[test]
    fn an_author_template_that_fails_is_reported_where_it_is_used() {
        let play = vars(json!({"broken": "{{ missing }}", "fine": "ok"}));
        let empty = Vars::new();
        let s = scope_of(&play, &empty, &empty, &empty);
        assert!(template::listed(&s, template::LAZY_VARS, "broken"));
        let err = Templar::new()
            .render_str("{{ broken }}", &s)
            .unwrap_err()
            .to_string();
        assert!(err.contains("missing"), "{err}");
        assert_eq!(
            Templar::new().render_str("{{ fine }}", &s).unwrap(),
            json!("ok")
        );
    }
}
