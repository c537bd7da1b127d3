//! Tests of the pip module: planning (Ansible's messages and command words), check-mode decisions
//! from `pip list`, result reading, and the real script against a fake pip in a fake virtualenv.

use super::super::testing::{args, ctx, parse_with, LocalRemote};
use super::*;
use serde_json::json;

fn pa(v: serde_json::Value) -> PipArgs {
    parse_with(&SPEC, v, PipArgs::from_args).unwrap()
}

#[test]
fn plans_like_ansible() {
    let a = pa(
        json!({"name": ["Foo_Bar>=1", "<2", "baz"], "extra_args": "--no-index -f '/w s'", "state": "latest"}),
    );
    let p = plan(&a).unwrap();
    assert_eq!(
        p.args,
        [
            "install",
            "-U",
            "--no-index",
            "-f",
            "/w s",
            "Foo_Bar<2,>=1",
            "baz"
        ]
    );
    let a = pa(json!({"name": "kptoy", "version": "1.0", "state": "absent"}));
    assert_eq!(plan(&a).unwrap().args, ["uninstall", "-y", "kptoy==1.0"]);
    let a =
        pa(json!({"requirements": "r.txt", "virtualenv": "v", "chdir": "/srv", "editable": true}));
    assert_eq!(a.env.as_deref(), Some("/srv/v"));
    assert_eq!(plan(&a).unwrap().args, ["install", "-e", "-r", "r.txt"]);
    assert!(
        plan(&pa(
            json!({"name": "x", "virtualenv_command": "python3 -m venv"})
        ))
        .unwrap()
        .is_venv
    );
    assert!(!plan(&pa(json!({"name": "x"}))).unwrap().is_venv);
    for (bad, msg) in [
        (
            json!({"name": "x", "version": "1", "state": "latest"}),
            "version is incompatible with state=latest",
        ),
        (
            json!({"name": ["x", "y"], "version": "1"}),
            "'version' argument is ambiguous",
        ),
        (
            json!({"name": "x>1", "version": "2"}),
            "The 'version' argument conflicts",
        ),
    ] {
        assert!(
            plan(&pa(bad.clone())).unwrap_err().starts_with(msg),
            "{bad}"
        );
    }
    for (bad, msg) in [
        (
            json!({}),
            "one of the following is required: name, requirements",
        ),
        (
            json!({"name": "x", "requirements": "r"}),
            "mutually exclusive: name|requirements",
        ),
        (
            json!({"name": "x", "umask": "0x22"}),
            "umask must be an octal integer",
        ),
    ] {
        let e = parse_with(&SPEC, bad.clone(), PipArgs::from_args)
            .unwrap_err()
            .to_string();
        assert!(e.contains(msg), "{bad}: {e}");
    }
}

#[test]
fn check_mode_reads_pip_list() {
    let listing = "You are using pip version 1\nkptoy==1.0\nOther_Pkg==2.1\n";
    let cases = [
        (json!({"name": "kptoy"}), false),
        (json!({"name": "kptoy>=2"}), true),
        (json!({"name": ["other-pkg==2.1", "kptoy"]}), false),
        (json!({"name": "missing"}), true),
        (json!({"name": "kptoy", "state": "absent"}), true),
        (json!({"name": "missing", "state": "absent"}), false),
    ];
    for (v, want) in cases {
        let a = pa(v.clone());
        assert_eq!(check_changed(&a, &plan(&a).unwrap(), listing), want, "{v}");
    }
}

#[test]
fn results_follow_pips_output() {
    let a = pa(json!({"name": "kptoy", "virtualenv": "/v"}));
    let p = plan(&a).unwrap();
    let rep = |out: &str, rc: i32| Report {
        venv_existed: true,
        rc,
        pip: vec!["/v/bin/pip3".into()],
        out: out.into(),
        ..Report::default()
    };
    let r = result_of(&a, &p, &rep("Successfully installed kptoy-2.0\n", 0), false);
    assert!(r.changed && !r.failed);
    assert_eq!(r.data["cmd"], json!(["/v/bin/pip3", "install", "kptoy"]));
    assert_eq!(r.data["virtualenv"], json!("/v"));
    assert_eq!(r.data["name"], json!(["kptoy"]));
    assert!(!result_of(&a, &p, &rep("Requirement already satisfied\n", 0), false).changed);
    let f = result_of(
        &a,
        &p,
        &Report {
            err: "boom".into(),
            ..rep("x", 2)
        },
        false,
    );
    assert_eq!(f.msg.as_deref(), Some("stdout: x\n:stderr: boom"));
    let absent = pa(json!({"name": "kptoy", "state": "absent"}));
    let r = result_of(
        &absent,
        &plan(&absent).unwrap(),
        &rep("WARNING: kptoy not installed", 1),
        false,
    );
    assert!(!r.failed && !r.changed);
    let made = Report {
        venv_made: true,
        ..rep("", 0)
    };
    assert!(result_of(&a, &p, &made, false).changed);
    let missing = Report {
        venv_existed: false,
        ..rep("", 0)
    };
    assert!(result_of(&a, &p, &missing, true).changed);
}

/// The real script, with a fake virtualenv whose pip prints what it was asked.
#[test]
fn script_runs_the_venvs_pip_in_one_round_trip() {
    let dir = tempfile::tempdir().unwrap();
    let env = dir.path().join("venv");
    std::fs::create_dir_all(env.join("bin")).unwrap();
    std::fs::write(env.join("bin/activate"), "").unwrap();
    let pip = env.join("bin/pip3");
    std::fs::write(
        &pip,
        "#!/bin/sh\nif [ \"$1\" = list ]; then echo 'kptoy==1.0'; exit 0; fi\necho \"Successfully installed $*\"\necho '@@KP:end' >&2\n",
    )
    .unwrap();
    std::process::Command::new("chmod")
        .arg("755")
        .arg(&pip)
        .status()
        .unwrap();
    let e = env.display().to_string();
    let mut r = LocalRemote::default();
    let res = Pip
        .execute(
            &args(json!({"name": "kptoy", "virtualenv": e})),
            &mut ctx(&mut r, false, false, vec![]),
        )
        .unwrap();
    assert!(res.changed && !res.failed, "{res:?}");
    assert_eq!(
        res.stdout.as_deref(),
        Some("Successfully installed install kptoy\n")
    );
    assert_eq!(
        res.stderr.as_deref(),
        Some("@@KP:end\n"),
        "pip's output cannot forge the framing"
    );
    assert_eq!(r.calls.len(), 1);
    let res = Pip
        .execute(
            &args(json!({"name": "kptoy", "virtualenv": e})),
            &mut ctx(&mut r, true, false, vec![]),
        )
        .unwrap();
    assert!(!res.changed, "{res:?}");
    assert_eq!(
        res.data["cmd"],
        json!(format!("{e}/bin/pip3 list --format=freeze"))
    );
    std::fs::remove_file(&pip).unwrap();
    let res = Pip
        .execute(
            &args(json!({"name": "kptoy", "virtualenv": e})),
            &mut ctx(&mut r, false, false, vec![]),
        )
        .unwrap();
    assert!(res.failed);
    assert!(res
        .msg
        .unwrap()
        .starts_with("Unable to find pip in the virtualenv"));
}
