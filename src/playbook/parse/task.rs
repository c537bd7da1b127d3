//! One task mapping → [`Task`]: its keywords, its loop, and what it does (a block, a static
//! import expanded in place, a dynamic include, or a module call with checked parameters).

use std::path::Path;

use super::fields::{become_from, opt, string_list, vars_map, when_list};
use super::role::load_role_in;
use super::{
    err, load_tasks_file_ctx, parse_task_list, refer_to, resolve_tasks_path, FileCtx, ParseError,
};
use crate::playbook::keywords::{all_module_names, control_params, did_you_mean, TASK_KEYWORDS};
use crate::playbook::model::{Action, LoopSpec, RoleFiles, Task};
use crate::playbook::yaml::{Node, Pos};
use crate::playbook::{args, fqcn};
use crate::value::{Value, Vars};

/// Parse one task (or handler) mapping.
pub(super) fn parse_task(node: &Node, ctx: &FileCtx) -> Result<Task, ParseError> {
    let map = node.as_map().ok_or_else(|| {
        err(
            &node.pos,
            format!("a task must be a mapping, found {}", node.type_name()),
        )
    })?;
    let name = node
        .get("name")
        .map(|n| crate::value::to_display(&n.to_value()));
    let label = match &name {
        Some(n) => format!("task '{n}'"),
        None => "task".to_string(),
    };
    super::unsupported::check(node, &label, false)?;
    let mut task = with_keywords(node, name, ctx)?;
    task.action = match node.get("block") {
        Some(block) => block_action(node, map, block, ctx, &label)?,
        None => {
            let (module, raw_args, args_pos) = find_action(node, map, &label)?;
            task.unsupported = unsupported_loop(node).or_else(|| unsupported_reason(ctx, &module));
            let (action, bad_args) =
                module_action(node, ctx, &module, &raw_args, &args_pos, &label)?;
            task.unsupported = task.unsupported.or(bad_args);
            action
        }
    };
    Ok(task)
}

/// The task's keywords; its action is filled in by the caller.
fn with_keywords(node: &Node, name: Option<String>, ctx: &FileCtx) -> Result<Task, ParseError> {
    let placeholder = Action::Module {
        name: String::new(),
        args: Value::Null,
    };
    Ok(Task {
        name,
        pos: node.pos.clone(),
        action: placeholder,
        when: when_list(node),
        loop_: parse_loop(node)?,
        register: node
            .get("register")
            .map(|n| crate::value::to_display(&n.to_value())),
        notify: string_list(node.get("notify"))?,
        listen: string_list(node.get("listen"))?,
        changed_when: opt(node, "changed_when"),
        failed_when: opt(node, "failed_when"),
        ignore_errors: opt(node, "ignore_errors"),
        ignore_unreachable: opt(node, "ignore_unreachable"),
        tags: string_list(node.get("tags"))?,
        vars: vars_map(node.get("vars"), "task vars")?,
        environment: opt(node, "environment"),
        no_log: opt(node, "no_log"),
        check_mode: opt(node, "check_mode"),
        diff: opt(node, "diff"),
        become_: become_from(node),
        remote_user: opt(node, "remote_user"),
        until: opt(node, "until"),
        retries: opt(node, "retries"),
        delay: opt(node, "delay"),
        timeout: opt(node, "timeout"),
        run_once: opt(node, "run_once"),
        delegate_to: match node.get("local_action") {
            Some(_) => Some(Value::String("localhost".into())),
            None => opt(node, "delegate_to"),
        },
        async_: opt(node, "async"),
        poll: opt(node, "poll"),
        connection: opt(node, "connection"),
        module_defaults: opt(node, "module_defaults"),
        throttle: opt(node, "throttle"),
        delegate_facts: opt(node, "delegate_facts"),
        any_errors_fatal: opt(node, "any_errors_fatal"),
        role: ctx.role.clone(),
        unsupported: None,
    })
}

/// `block:` with its `rescue:` and `always:`; a block holds no module.
fn block_action(
    node: &Node,
    map: &[(String, Node)],
    block: &Node,
    ctx: &FileCtx,
    label: &str,
) -> Result<Action, ParseError> {
    for (k, v) in map {
        if !TASK_KEYWORDS.contains(&k.as_str()) {
            return Err(err(
                v.where_(),
                format!(
                    "{label}: '{k}' is not allowed in a block (a block holds tasks under 'block:', not a module)"
                ),
            ));
        }
    }
    Ok(Action::Block {
        block: parse_task_list(Some(block), ctx)?,
        rescue: parse_task_list(node.get("rescue"), ctx)?,
        always: parse_task_list(node.get("always"), ctx)?,
    })
}

/// The module, its raw arguments and where they are: exactly one non-keyword key, or
/// `action:` / `local_action:`.
fn find_action(
    node: &Node,
    map: &[(String, Node)],
    label: &str,
) -> Result<(String, Value, Pos), ParseError> {
    // `with_<lookup>` of a lookup knockplay does not loop over is no action: the task fails
    // when it runs (see [`unsupported_loop`]).
    let mut action_keys: Vec<&(String, Node)> = map
        .iter()
        .filter(|(k, _)| !TASK_KEYWORDS.contains(&k.as_str()) && !k.starts_with("with_"))
        .collect();
    if let Some(a) = node.get("action").or_else(|| node.get("local_action")) {
        if let Some((k, _)) = action_keys.first() {
            return Err(err(
                &a.pos,
                format!("{label}: conflicting action statements: action, {k}"),
            ));
        }
        return old_style_action(a, label);
    }
    if action_keys.len() > 1 {
        return Err(conflicting_keys(&action_keys, label));
    }
    match action_keys.pop() {
        Some((k, v)) => Ok((k.clone(), v.to_value(), v.where_().clone())),
        None => Err(err(
            &node.pos,
            format!("{label}: no module/action detected in task"),
        )),
    }
}

/// `action: copy src=a dest=b` or `action: {module: copy, src: a}`.
fn old_style_action(a: &Node, label: &str) -> Result<(String, Value, Pos), ParseError> {
    match a.to_value() {
        Value::String(s) => {
            let s = s.trim();
            let (m, rest) = s.split_once(char::is_whitespace).unwrap_or((s, ""));
            Ok((
                m.to_string(),
                Value::String(rest.trim().to_string()),
                a.where_().clone(),
            ))
        }
        Value::Object(mut o) => match o.remove("module") {
            Some(Value::String(m)) => Ok((m, Value::Object(o), a.where_().clone())),
            _ => Err(err(
                &a.pos,
                format!("{label}: action mapping needs 'module'"),
            )),
        },
        _ => Err(err(&a.pos, format!("{label}: invalid action"))),
    }
}

/// Two or more keys that are not task keywords: a typo of a keyword, or two modules.
fn conflicting_keys(action_keys: &[&(String, Node)], label: &str) -> ParseError {
    let names: Vec<&str> = action_keys.iter().map(|(k, _)| k.as_str()).collect();
    let unknown: Vec<&str> = names
        .iter()
        .copied()
        .filter(|n| !is_known_module(n))
        .collect();
    let msg = if let Some(u) = unknown.first() {
        format!(
            "{label}: '{u}' is neither a task keyword nor a module the task can use alongside '{}'.{}",
            names.iter().find(|n| *n != u).unwrap_or(&""),
            did_you_mean(u, TASK_KEYWORDS.iter().copied())
        )
    } else {
        format!(
            "{label}: conflicting action statements: {}",
            names.join(", ")
        )
    };
    err(action_keys[1].1.where_(), msg)
}

/// A known module with normalised, checked arguments; includes and imports become their own
/// actions (static ones loaded now).
fn module_action(
    node: &Node,
    ctx: &FileCtx,
    module: &str,
    raw_args: &Value,
    args_pos: &Pos,
    label: &str,
) -> Result<(Action, Option<String>), ParseError> {
    let short = fqcn::short(module).to_string();
    if !is_known_module(&short) {
        if unsupported_reason(ctx, module).is_some() {
            // A module Ansible has and knockplay lacks fails when the task would run (a
            // RedHat-only branch of a role still runs on Debian); `--syntax-check` warns.
            let args_node = node.get("args").map(Node::to_value);
            let args = args::normalize(raw_args, args_node.as_ref(), false)
                .map_err(|e| err(args_pos, format!("{label}: {short}: {e}")))?;
            return Ok((
                Action::Module {
                    name: short,
                    args: Value::Object(args),
                },
                None,
            ));
        }
        let all = all_module_names();
        let hint = match did_you_mean(&short, all.iter().copied()) {
            h if h.is_empty() => " knockplay has the modules of ansible.builtin it documents; \
                                  a module of another collection is not supported"
                .to_string(),
            h => h,
        };
        return Err(err(
            args_pos,
            format!("{label}: couldn't resolve module/action '{module}'.{hint}"),
        ));
    }
    // Only command/shell/raw/script keep `k=v` words in their free text; for the other
    // free-form modules (include_tasks, meta, ...) bare words go to `_raw_params` and `k=v` pairs
    // are parameters, as in Ansible.
    let free_form = args::is_free_form(&short);
    let args_node = node.get("args").map(Node::to_value);
    let args = args::normalize(raw_args, args_node.as_ref(), free_form)
        .map_err(|e| err(args_pos, format!("{label}: {short}: {e}")))?;
    // Arguments a remote module does not take fail the task when it runs, as Ansible checks
    // them there (`--syntax-check` and `run` warn); a control module's are checked now.
    let bad_args = match check_params(&short, &args) {
        Err(e) if crate::modules::lookup(&short).is_some() => Some(e),
        Err(e) => return Err(err(args_pos, format!("{label}: {e}"))),
        Ok(()) => None,
    };
    let call = Call {
        short: &short,
        args: &args,
        pos: args_pos,
        label,
        apply: apply_block(node, module, ctx, label)?,
    };
    match short.as_str() {
        "import_tasks" | "include" | "include_tasks" => Ok((tasks_file_action(&call, ctx)?, None)),
        "import_role" | "include_role" => Ok((role_action(&call, ctx)?, None)),
        _ => Ok((
            Action::Module {
                name: short,
                args: Value::Object(args),
            },
            bad_args,
        )),
    }
}

/// Why a module knockplay lacks cannot run, when Ansible would run it: one of Ansible's or of
/// another collection, or a module of the repository's own `library/` (beside the playbook or in
/// the role). `None` for knockplay's modules and for names nobody defines (a parse error).
fn unsupported_reason(ctx: &FileCtx, module: &str) -> Option<String> {
    let short = fqcn::short(module);
    if is_known_module(short) {
        return None;
    }
    if let Some(why) = crate::playbook::ansible_names::unsupported_module(module) {
        return Some(why);
    }
    let dirs = [
        Some(ctx.play_dir.as_path()),
        ctx.role.as_ref().map(|r| r.dir.as_path()),
    ];
    dirs.into_iter().flatten().find_map(|d| {
        let lib = d.join("library");
        let found = std::fs::read_dir(&lib).ok()?.flatten().find(|e| {
            let p = e.path();
            p.file_stem().and_then(|s| s.to_str()) == Some(short) && p.is_file()
        })?;
        Some(format!(
            "module '{short}' is the repository's own module {}: modules other than knockplay's \
             are not supported by knockplay",
            found.path().display()
        ))
    })
}

/// An include or import being resolved: the module's short name, its checked arguments,
/// where they are written and the task's label, for errors; `apply`'s keywords.
struct Call<'a> {
    short: &'a str,
    args: &'a Vars,
    pos: &'a Pos,
    label: &'a str,
    apply: Option<Box<Task>>,
}

/// `apply:` of `include_tasks`/`include_role`: task keywords for every included task, parsed as
/// a block's keywords (its action is set when the include runs).
fn apply_block(
    node: &Node,
    module: &str,
    ctx: &FileCtx,
    label: &str,
) -> Result<Option<Box<Task>>, ParseError> {
    let from_args = |n: &Node| n.get("apply").cloned();
    let Some(apply) = node
        .get(module)
        .and_then(from_args)
        .or_else(|| node.get("args").and_then(from_args))
    else {
        return Ok(None);
    };
    let Some(map) = apply.as_map() else {
        return Err(err(
            &apply.pos,
            format!("{label}: apply must be a mapping of task keywords"),
        ));
    };
    if let Some((k, v)) = map
        .iter()
        .find(|(k, _)| !TASK_KEYWORDS.contains(&k.as_str()))
    {
        return Err(err(
            v.where_(),
            format!("{label}: apply: '{k}' is not a task keyword"),
        ));
    }
    super::unsupported::check(&apply, label, false)?;
    Ok(Some(Box::new(with_keywords(&apply, None, ctx)?)))
}

impl Call<'_> {
    /// `task 'x': include_role needs 'name'`.
    fn error(&self, problem: &str) -> ParseError {
        err(
            self.pos,
            format!("{}: {} {problem}", self.label, self.short),
        )
    }
}

/// `import_tasks`/`include` of a literal file: its tasks, loaded now; otherwise a dynamic include.
fn tasks_file_action(call: &Call, ctx: &FileCtx) -> Result<Action, ParseError> {
    let file = call
        .args
        .get("_raw_params")
        .or_else(|| call.args.get("file"))
        .cloned()
        .ok_or_else(|| call.error("needs a file name"))?;
    let literal = file
        .as_str()
        .filter(|s| !s.contains("{{"))
        .map(str::to_string);
    match (call.short, literal) {
        ("import_tasks", Some(f)) | ("include", Some(f)) => {
            let path = resolve_tasks_path(&ctx.dir, &ctx.play_dir, ctx.role.as_deref(), &f);
            let file_ctx = FileCtx {
                dir: path.parent().map(Path::to_path_buf).unwrap_or_default(),
                play_dir: ctx.play_dir.clone(),
                search: ctx.search.clone(),
                seen_roles: ctx.seen_roles.clone(),
                handlers: ctx.handlers.clone(),
                role: ctx.role.clone(),
            };
            let prefix = format!("{}: {}: ", call.label, call.short);
            let tasks = load_tasks_file_ctx(&path, &file_ctx)
                .map_err(|e| refer_to(e, call.pos, &prefix))?;
            Ok(Action::block_of(tasks))
        }
        _ => Ok(Action::IncludeTasks {
            file,
            apply: call.apply.clone(),
        }),
    }
}

/// `import_role` of a literal name: its tasks, loaded now; otherwise a dynamic include.
fn role_action(call: &Call, ctx: &FileCtx) -> Result<Action, ParseError> {
    let rname = call
        .args
        .get("name")
        .cloned()
        .ok_or_else(|| call.error("needs 'name'"))?;
    let from = RoleFiles {
        tasks: call.args.get("tasks_from").cloned(),
        vars: call.args.get("vars_from").cloned(),
        defaults: call.args.get("defaults_from").cloned(),
        handlers: call.args.get("handlers_from").cloned(),
    };
    match (call.short, rname.as_str()) {
        ("import_role", Some(n)) if !n.contains("{{") => {
            let files = from.map(|v| v.as_str().map(str::to_string));
            let prefix = format!("{}: ", call.label);
            let (tasks, handlers) = load_role_in(n, ctx, Vars::new(), &files, false)
                .map_err(|e| refer_to(e, call.pos, &prefix))?;
            // The role's handlers join the play's.
            ctx.handlers
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .extend(handlers);
            Ok(Action::block_of(tasks))
        }
        _ => Ok(Action::IncludeRole {
            name: rname,
            from: Box::new(from),
            apply: call.apply.clone(),
        }),
    }
}

fn is_known_module(name: &str) -> bool {
    let short = fqcn::short(name);
    control_params(short).is_some() || crate::modules::lookup(short).is_some()
}

/// Every argument must be a parameter the module declares (its [`crate::modules::Spec`]).
fn check_params(module: &str, args: &Vars) -> Result<(), String> {
    let spec = control_params(module).or_else(|| crate::modules::lookup(module).map(|m| m.spec()));
    match spec {
        Some(spec) => spec.validate(args).map_err(|e| e.to_string()),
        None => Ok(()),
    }
}

/// `loop`, `with_items`, `with_list`, `with_dict`, `with_first_found` and `loop_control`.
fn parse_loop(node: &Node) -> Result<Option<LoopSpec>, ParseError> {
    let control = node.get("loop_control").map(Node::to_value);
    let ctl = |k: &str| control.as_ref().and_then(|c| c.get(k)).cloned();
    let mut spec = LoopSpec {
        loop_var: ctl("loop_var")
            .and_then(|v| v.as_str().map(str::to_string))
            .unwrap_or_else(|| "item".into()),
        label: ctl("label"),
        index_var: ctl("index_var").and_then(|v| v.as_str().map(str::to_string)),
        ..LoopSpec::default()
    };
    if let Some(n) = node.get("loop").or_else(|| node.get("with_list")) {
        spec.items = n.to_value();
    } else if let Some(n) = node.get("with_items") {
        spec.items = n.to_value();
        spec.flatten = true;
    } else if let Some(n) = node.get("with_dict") {
        spec.items = n.to_value();
        spec.dict = true;
    } else if let Some(n) = node.get("with_first_found") {
        spec.items = n.to_value();
        spec.first_found = true;
    } else if let Some((k, n)) = crate::playbook::keywords::LOOKUP_LOOPS
        .iter()
        .find_map(|k| node.get(k).map(|n| (k, n)))
    {
        spec.items = n.to_value();
        spec.lookup = k.strip_prefix("with_").map(str::to_string);
    } else {
        return Ok(None);
    }
    Ok(Some(spec))
}

/// A `with_<lookup>` knockplay does not loop over (a builtin lookup it lacks, another
/// collection's, or one nobody defines): why, naming the lookup and where the key is. Ansible
/// resolves lookups when the task runs; so does this (the task fails there, `--syntax-check`
/// warns).
fn unsupported_loop(node: &Node) -> Option<String> {
    let map = node.as_map()?;
    let (k, v) = map
        .iter()
        .find(|(k, _)| k.starts_with("with_") && !TASK_KEYWORDS.contains(&k.as_str()))?;
    Some(format!(
        "{} (at {})",
        crate::playbook::ansible_names::unsupported_with(k),
        v.where_()
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::playbook::yaml;

    fn parse(text: &str) -> Result<Task, ParseError> {
        let node = match yaml::load_str(text, "t.yml") {
            Ok(Some(n)) => n,
            other => panic!("bad test YAML {text:?}: {other:?}"),
        };
        let ctx = FileCtx {
            dir: ".".into(),
            play_dir: ".".into(),
            search: Default::default(),
            seen_roles: Default::default(),
            handlers: Default::default(),
            role: None,
        };
        parse_task(&node, &ctx)
    }

    #[test]
    fn task_errors_name_the_task_and_the_problem() {
        let cases = [
            ("- a", "a task must be a mapping, found a list"),
            ("aptt: name=x", "couldn't resolve module/action 'aptt'. Did you mean 'apt'?"),
            ("name: x\nblock: []\ndebug: msg=hi", "task 'x': 'debug' is not allowed in a block"),
            (
                "action: debug msg=hi\nping:",
                "task: conflicting action statements: action, ping",
            ),
            ("action: {msg: hi}", "task: action mapping needs 'module'"),
            ("action: [1]", "task: invalid action"),
            ("debug: msg=hi\nping:", "task: conflicting action statements: debug, ping"),
            (
                "debug: msg=hi\nwhn: x",
                "task: 'whn' is neither a task keyword nor a module the task can use alongside 'debug'. Did you mean 'when'?",
            ),
            ("name: x", "task 'x': no module/action detected in task"),
            ("include_tasks:", "task: include_tasks needs a file name"),
            ("include_role: {}", "task: include_role needs 'name'"),
        ];
        for (text, want) in cases {
            let e = match parse(text) {
                Ok(t) => panic!("{text:?} parsed: {t:?}"),
                Err(e) => e,
            };
            assert!(e.msg.contains(want), "{text:?}: {e}");
        }
    }

    #[test]
    fn bad_arguments_of_remote_modules_fail_the_task_when_it_runs() {
        for (text, want) in [
            ("ping: hello", "ping does not take free-form text"),
            (
                "get_url: {url: 'http://x/', dest: /y, sha256sum: abc}",
                "unsupported parameter 'sha256sum'",
            ),
            (
                "copy: {dest: /y, content: x, mdoe: '0644'}",
                "Did you mean 'mode'?",
            ),
            (
                "name: x\nwith_random_choice: [1]\ndebug: msg=hi",
                "with_random_choice: the 'random_choice' lookup is not supported by knockplay as a loop",
            ),
            ("with_foo: [1]\ndebug: msg=hi", "with_foo: lookup plugin 'foo' not found"),
            (
                "with_community.general.flattened: [[1]]\ndebug: msg=hi",
                "lookup plugin 'community.general.flattened'",
            ),
        ] {
            let t = parse(text).unwrap_or_else(|e| panic!("{text}: {e}"));
            let why = t.unsupported.unwrap_or_default();
            assert!(why.contains(want), "{text}: {why}");
        }
        // A control module's arguments are still checked at parse time.
        let e = parse("include_role: {nmae: x}").unwrap_err();
        assert!(e.msg.contains("nmae"), "{e}");
    }

    #[test]
    fn modules_knockplay_lacks_parse_and_fail_when_run() {
        for text in [
            "git: repo=x dest=/y",
            "community.general.ufw: {rule: allow}",
        ] {
            let t = parse(text).unwrap_or_else(|e| panic!("{text}: {e}"));
            assert!(matches!(&t.action, Action::Module { .. }), "{text}");
            assert!(crate::playbook::ansible_names::unsupported_module(
                t.module_name().unwrap_or_default()
            )
            .is_some());
        }
        let t = parse("ansible.builtin.git: repo=x dest=/y").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(t.module_name(), Some("git"));
    }

    #[test]
    fn community_general_modules_knockplay_has_are_checked_like_its_own() {
        let t = parse("community.general.ini_file: {path: /x, section: s, option: o, value: v}")
            .unwrap_or_else(|e| panic!("{e}"));
        let name = t.module_name().unwrap_or_default();
        assert!(crate::modules::lookup(name).is_some(), "{name}");
        // Arguments are checked as for knockplay's own modules: the task fails when it runs.
        let bad = |text: &str| {
            parse(text)
                .unwrap_or_else(|e| panic!("{e}"))
                .unsupported
                .unwrap_or_default()
        };
        let e = bad("community.general.ini_file: {path: /x, sektion: s}");
        assert!(e.contains("unsupported parameter 'sektion'"), "{e}");
        let e = bad("community.general.ini_file: {path: /x, section_has_values: []}");
        assert!(e.contains("not supported by knockplay"), "{e}");
    }

    #[test]
    fn actions_and_keywords() {
        let t = parse("name: n\nansible.builtin.debug: msg=hi\nwhen: [x, null]\ntags: a, b")
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(t.module_name(), Some("debug"));
        assert_eq!(t.when, vec![Value::String("x".into())]);
        assert_eq!(t.tags, ["a", "b"]);
        let t = parse("local_action: debug msg=hi").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(t.module_name(), Some("debug"));
        let t = parse("include_tasks: '{{ f }}.yml'").unwrap_or_else(|e| panic!("{e}"));
        assert!(matches!(t.action, Action::IncludeTasks { .. }));
        let t = parse("include_role: name=r tasks_from=x").unwrap_or_else(|e| panic!("{e}"));
        assert!(matches!(t.action, Action::IncludeRole { .. }));
        let t = parse("with_items: [1, [2]]\nloop_control: {loop_var: i}\ndebug: var=i")
            .unwrap_or_else(|e| panic!("{e}"));
        let spec = t.loop_.unwrap_or_default();
        assert!(spec.flatten);
        assert_eq!(spec.loop_var, "i");
    }
}
