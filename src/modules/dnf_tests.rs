//! Tests of the `dnf` module: argument reading, the planner's table, probe parsing and the run
//! flow against a scripted remote.

use super::*;
use crate::modules::rpmver::Pkg;
use crate::modules::testing::{args, ctx, out, parse_with, FakeRemote};
use serde_json::json;

fn parse(v: serde_json::Value) -> Result<DnfArgs, ModuleError> {
    parse_with(&SPEC, v, DnfArgs::from_args)
}

fn parsed(v: serde_json::Value) -> DnfArgs {
    parse(v).unwrap()
}

fn pkgs(lines: &[&str]) -> Vec<Pkg> {
    lines.iter().filter_map(|l| Pkg::parse(l)).collect()
}

fn st(installed: &[&str], available: &[&str], same: &[&str]) -> SpecState {
    SpecState {
        installed: pkgs(installed),
        available: pkgs(available),
        same_name: pkgs(same),
    }
}

fn probe(specs: Vec<SpecState>) -> Probe {
    Probe {
        root: true,
        specs,
        ..Probe::default()
    }
}

const H10: &str = "kp-hello 0:1.0-1 noarch";
const H11: &str = "kp-hello 0:1.1-1 noarch";

/// (args, probe) -> (steps, notes, failures, would)
type Case = (
    serde_json::Value,
    Probe,
    Vec<Step>,
    Vec<String>,
    Vec<String>,
    Vec<String>,
);

#[test]
fn planner_table() {
    let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
    // (args, probe) -> (steps, notes, failures, would)
    let cases: Vec<Case> = vec![
        // present: missing → install; installed → nothing
        (
            json!({"name": "kp-hello"}),
            probe(vec![st(&[], &[H10], &[])]),
            vec![Step::Install(s(&["kp-hello"]))],
            vec![],
            vec![],
            s(&["Installed: kp-hello-1.0-1.noarch"]),
        ),
        (
            json!({"name": "kp-hello"}),
            probe(vec![st(&[H10], &[], &[])]),
            vec![],
            vec![],
            vec![],
            vec![],
        ),
        // a version older than the installed one: nothing, or a downgrade when allowed
        (
            json!({"name": "kp-hello-1.0"}),
            probe(vec![st(&[], &[H10], &[H11])]),
            vec![],
            vec![],
            vec![],
            vec![],
        ),
        (
            json!({"name": "kp-hello-1.0", "allow_downgrade": true}),
            probe(vec![st(&[], &[H10], &[H11])]),
            vec![Step::Downgrade(s(&["kp-hello-1.0"]))],
            vec![],
            vec![],
            s(&[
                "Installed: kp-hello-1.0-1.noarch",
                "Removed: kp-hello-1.1-1.noarch",
            ]),
        ),
        // a newer version than the installed one: upgrade through install
        (
            json!({"name": "kp-hello-1.1"}),
            probe(vec![st(&[], &[H11], &[H10])]),
            vec![Step::Install(s(&["kp-hello-1.1"]))],
            vec![],
            vec![],
            s(&["Installed: kp-hello-1.1-1.noarch"]),
        ),
        // unavailable
        (
            json!({"name": "kp-nope"}),
            probe(vec![st(&[], &[], &[])]),
            vec![],
            vec![],
            s(&["No package kp-nope available."]),
            vec![],
        ),
        // latest
        (
            json!({"name": "kp-hello", "state": "latest"}),
            probe(vec![st(&[H10], &[H11], &[H10])]),
            vec![Step::Upgrade(s(&["kp-hello"]))],
            vec![],
            vec![],
            s(&[
                "Installed: kp-hello-1.1-1.noarch",
                "Removed: kp-hello-1.0-1.noarch",
            ]),
        ),
        (
            json!({"name": "kp-hello", "state": "latest"}),
            probe(vec![st(&[H11], &[H11], &[H11])]),
            vec![],
            vec![],
            vec![],
            vec![],
        ),
        (
            json!({"name": "kp-hello", "state": "latest"}),
            probe(vec![st(&[], &[H11], &[])]),
            vec![Step::Install(s(&["kp-hello"]))],
            vec![],
            vec![],
            s(&["Installed: kp-hello-1.1-1.noarch"]),
        ),
        // update_only skips what is not installed
        (
            json!({"name": "kp-hello", "update_only": true}),
            probe(vec![st(&[], &[H11], &[])]),
            vec![],
            s(&["Packages providing kp-hello not installed due to update_only specified"]),
            vec![],
            vec![],
        ),
        // absent
        (
            json!({"name": ["kp-hello", "kp-nope"], "state": "removed"}),
            probe(vec![st(&[H10], &[], &[]), st(&[], &[], &[])]),
            vec![Step::Remove(s(&["kp-hello"]))],
            s(&["No match for argument: kp-nope"]),
            vec![],
            s(&["Removed: kp-hello-1.0-1.noarch"]),
        ),
    ];
    for (a, p, steps, notes, failures, would) in cases {
        let d = plan(&parsed(a.clone()), &p);
        assert_eq!(
            (d.steps, d.notes, d.failures, d.would),
            (steps, notes, failures, would),
            "{a}"
        );
    }
}

#[test]
fn groups_all_and_autoremove() {
    let a = parsed(json!({"name": "@kp-tools"}));
    let g = |members: &[&str], installed: &[&str]| GroupState {
        exists: true,
        members: members.iter().map(|m| m.to_string()).collect(),
        installed: pkgs(installed),
        upgradable: vec![],
    };
    let mut p = probe(vec![SpecState::default()]);
    p.groups = vec![g(&["kp-tool"], &[])];
    let d = plan(&a, &p);
    assert_eq!(d.steps, vec![Step::GroupInstall(vec!["kp-tools".into()])]);
    assert_eq!(d.notes, vec!["Group kp-tools installed."]);
    p.groups = vec![g(&["kp-tool"], &["kp-tool 0:2.0-1 noarch"])];
    assert!(plan(&a, &p).steps.is_empty());
    p.groups = vec![GroupState::default()];
    assert_eq!(
        plan(&a, &p).fatal.as_deref(),
        Some("No group kp-tools available.")
    );
    let a = parsed(json!({"name": "@kp-tools", "state": "absent"}));
    p.groups = vec![g(&["kp-tool"], &["kp-tool 0:2.0-1 noarch"])];
    assert_eq!(
        plan(&a, &p).steps,
        vec![Step::GroupRemove(vec!["kp-tools".into()])]
    );

    let a = parsed(json!({"name": "*", "state": "latest"}));
    let mut p = probe(vec![SpecState::default()]);
    assert!(plan(&a, &p).steps.is_empty());
    p.updates = true;
    assert_eq!(plan(&a, &p).steps, vec![Step::UpgradeAll]);

    let a = parsed(json!({"autoremove": true}));
    assert_eq!(a.state, State::Absent);
    let mut p = probe(vec![]);
    assert!(plan(&a, &p).steps.is_empty());
    p.unneeded = pkgs(&["kp-lib 0:1.0-1 noarch"]);
    let d = plan(&a, &p);
    assert_eq!(d.steps, vec![Step::Autoremove]);
    assert_eq!(d.would, vec!["Removed: kp-lib-1.0-1.noarch"]);
}

#[test]
fn arguments_and_options() {
    let a = parsed(
        json!({"name": "a, b", "enablerepo": "x,y", "disablerepo": ["*"],
        "disable_gpg_check": true, "install_weak_deps": false, "nobest": true, "use_backend": "dnf4"}),
    );
    assert_eq!(
        a.targets,
        vec![Target::Pkg("a".into()), Target::Pkg("b".into())]
    );
    assert_eq!(
        a.opts,
        [
            "--disablerepo=*",
            "--enablerepo=x",
            "--enablerepo=y",
            "--nogpgcheck",
            "--nobest",
            "--setopt=install_weak_deps=False"
        ]
    );
    assert_eq!(
        parsed(json!({"name": "@g"})).targets,
        vec![Target::Group("g".into())]
    );
    for (v, needle) in [
        (json!({"name": "a b"}), "space separated"),
        (
            json!({"name": "a", "state": "latest", "autoremove": true}),
            "Autoremove should be used alone",
        ),
        (
            json!({"state": "present"}),
            "one of the following is required",
        ),
        (json!({"name": "/tmp/x.rpm"}), "rpm file"),
        (json!({"name": "https://h/x.rpm"}), "rpm file"),
        (json!({"name": "a", "list": "installed"}), "'list'"),
        (json!({"name": "a", "security": true}), "security"),
        (
            json!({"name": "a", "use": "dnf", "use_backend": "dnf"}),
            "mutually exclusive",
        ),
        (json!({"name": "a", "state": "gone"}), "'state'"),
    ] {
        let e = parse(v.clone()).unwrap_err().to_string();
        assert!(e.contains(needle), "{v}: {e}");
        assert!(e.starts_with("dnf: "), "{e}");
    }
    // Relations keep their spaces.
    assert_eq!(
        parsed(json!({"name": "a >= 1.0"})).targets,
        vec![Target::Pkg("a >= 1.0".into())]
    );
}

#[test]
fn parses_probe_output() {
    let a = parsed(json!({"name": ["kp-hello-1.0", "@kp-tools"], "state": "latest"}));
    let text = "\n@@KP:root\n0\n@@KP:q0\npackage kp-hello-1.0 is not installed\nno package provides kp-hello-1.0\n\
@@KP:a0\nkp-hello 0:1.0-1 noarch\n@@KP:n0\nkp-hello 0:1.1-1 noarch\n\
@@KP:g1\n@group\nkp-tool\n@@KP:gq1\npackage kp-tool is not installed\n@@KP:gu1\n\n@@KP:end\n";
    let p = parse_probe(&a, text);
    assert!(p.root && p.cache_failed.is_none());
    assert_eq!(p.specs[0], st(&[], &[H10], &[H11]));
    assert_eq!(p.groups[0].members, vec!["kp-tool"]);
    assert!(p.groups[0].exists && p.groups[0].installed.is_empty());
    let script = probe_script(&a);
    assert!(
        script.contains("kp_q 'kp-hello-1.0' || kp_q --whatprovides 'kp-hello-1.0'")
            || script.contains("kp_q kp-hello-1.0 ||"),
        "{script}"
    );
    assert!(script.contains("group info"));
}

#[test]
fn apply_script_runs_steps_between_snapshots() {
    let a = parsed(json!({"name": "x", "enablerepo": "extra"}));
    let s = apply_script(
        &a,
        &[
            Step::Install(vec!["x".into()]),
            Step::Remove(vec!["y".into()]),
        ],
    )
    .unwrap();
    assert!(s.contains("dnf -y --enablerepo=extra --setopt=clean_requirements_on_remove=False install x && dnf -y"), "{s}");
    assert!(s.contains("remove y"));
    assert!(s.contains("comm -13"));
    assert_eq!(apply_script(&a, &[]), None);
}

#[test]
fn run_flow_reports_like_ansible() {
    let probe_out = "\n@@KP:root\n0\n@@KP:q0\npackage kp-hello is not installed\n@@KP:a0\nkp-hello 0:1.0-1 noarch\n@@KP:n0\n@@KP:end\n";
    let applied = "\n@@KP:installed\nkp-hello-1.0-1.noarch\n@@KP:removed\n@@KP:end\n";
    let a = args(json!({"name": "kp-hello"}));
    let mut r = FakeRemote::new(vec![out(0, probe_out), out(0, applied)]);
    let res = Dnf
        .execute(&a, &mut ctx(&mut r, false, false, vec![]))
        .unwrap();
    assert!(res.changed && !res.failed, "{res:?}");
    assert_eq!(res.msg.as_deref(), Some(""));
    assert_eq!(res.rc, Some(0));
    assert_eq!(
        res.data["results"],
        json!(["Installed: kp-hello-1.0-1.noarch"])
    );
    assert_eq!(res.stdout, None);
    // check mode: one round trip, the would-be transaction
    let mut r = FakeRemote::new(vec![out(0, probe_out)]);
    let res = Yum
        .execute(&a, &mut ctx(&mut r, true, false, vec![]))
        .unwrap();
    assert!(res.changed);
    assert_eq!(
        res.msg.as_deref(),
        Some("Check mode: No changes made, but would have if not in check mode")
    );
    assert_eq!(
        res.data["results"],
        json!(["Installed: kp-hello-1.0-1.noarch"])
    );
    assert_eq!(r.seen.len(), 1);
    // nothing to do
    let done = "\n@@KP:root\n0\n@@KP:q0\nkp-hello 0:1.0-1 noarch\n@@KP:end\n";
    let mut r = FakeRemote::new(vec![out(0, done)]);
    let res = Dnf
        .execute(&a, &mut ctx(&mut r, false, false, vec![]))
        .unwrap();
    assert!(!res.changed && !res.failed);
    assert_eq!(res.msg.as_deref(), Some("Nothing to do"));
    // not root; unavailable; cache only
    let mut r = FakeRemote::new(vec![out(0, "\n@@KP:root\n1000\n@@KP:end\n")]);
    let res = Dnf
        .execute(&a, &mut ctx(&mut r, false, false, vec![]))
        .unwrap();
    assert_eq!(
        res.msg.as_deref(),
        Some("This command has to be run under the root user.")
    );
    let none = "\n@@KP:root\n0\n@@KP:q0\n\n@@KP:a0\n\n@@KP:n0\n@@KP:end\n";
    let mut r = FakeRemote::new(vec![out(0, none)]);
    let res = Dnf
        .execute(&a, &mut ctx(&mut r, false, false, vec![]))
        .unwrap();
    assert!(res.failed && res.rc == Some(1));
    assert_eq!(
        res.msg.as_deref(),
        Some("Failed to install some of the specified packages")
    );
    assert_eq!(
        res.data["failures"],
        json!(["No package kp-hello available."])
    );
    let mut r = FakeRemote::new(vec![out(0, "\n@@KP:root\n0\n@@KP:end\n")]);
    let res = Dnf
        .execute(
            &args(json!({"update_cache": true})),
            &mut ctx(&mut r, false, false, vec![]),
        )
        .unwrap();
    assert_eq!(
        (res.changed, res.msg.as_deref()),
        (false, Some("Cache updated"))
    );
    assert!(r.seen[0].0.contains("makecache --refresh"));
    // a failing dnf
    let mut r = FakeRemote::new(vec![out(0, probe_out), out(1, "")]);
    let res = Dnf
        .execute(&a, &mut ctx(&mut r, false, false, vec![]))
        .unwrap();
    assert!(res.failed && res.msg.unwrap().starts_with("dnf install failed (rc=1)"));
}
