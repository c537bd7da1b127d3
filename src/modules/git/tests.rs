//! Tests of the git module: Ansible's decisions from a probe, remote heads from `ls-remote`, the
//! SSH options, and a real clone and update of a local repository in two round trips each.

use super::super::testing::{args, ctx, parse_with, sh, LocalRemote};
use super::*;
use serde_json::json;

fn ga(v: serde_json::Value) -> GitArgs {
    parse_with(&SPEC, v, GitArgs::from_args).unwrap()
}

fn listing() -> Vec<(String, String)> {
    [
        ("h", "HEAD"),
        ("m", "refs/heads/main"),
        ("f", "refs/heads/feature"),
        ("t", "refs/tags/v1"),
        ("a", "refs/tags/v1a"),
        ("c", "refs/tags/v1a^{}"),
    ]
    .iter()
    .map(|(s, r)| (s.to_string(), r.to_string()))
    .collect()
}

#[test]
fn remote_heads_and_decisions_follow_ansible() {
    let p = Report {
        refs: listing(),
        after: "main".into(),
        ..Report::default()
    };
    for (version, cloning, want) in [
        ("HEAD", true, "h"),
        ("HEAD", false, "m"),
        ("feature", false, "f"),
        ("v1", false, "t"),
        ("v1a", false, "c"),
        ("abc123", false, "abc123"),
    ] {
        let a = ga(json!({"repo": "/r", "dest": "/d", "version": version}));
        assert_eq!(remote_head(&a, &p, cloning).unwrap(), want, "{version}");
    }
    let a = ga(json!({"repo": "/r", "dest": "/d"}));
    assert_eq!(a.repo, "file:///r");
    let Decision::Done(r) = decide(&a, &p, true) else {
        panic!()
    };
    assert!(r.changed && r.data["before"].is_null() && r.data["after"] == json!("h"));
    assert!(matches!(decide(&a, &p, false), Decision::Apply { .. }));
    let repo = Report {
        has_repo: true,
        before: "old".into(),
        remote_url: Some("file:///r".into()),
        ..p.clone()
    };
    let Decision::Done(r) = decide(&a, &repo, true) else {
        panic!()
    };
    assert!(r.changed && r.data["remote_url_changed"] == json!(false));
    let mods = Report {
        mods: true,
        ..repo.clone()
    };
    let Decision::Done(r) = decide(&a, &mods, false) else {
        panic!()
    };
    assert_eq!(
        r.msg.as_deref(),
        Some("Local modifications exist in the destination: /d (force=no).")
    );
    assert_eq!(r.data["before"], json!("old"));
    let forced = ga(json!({"repo": "/r", "dest": "/d", "force": true}));
    let Decision::Apply { result, script } = decide(&forced, &mods, false) else {
        panic!()
    };
    assert_eq!(
        result.msg.as_deref(),
        Some("Local modifications exist in the destination: /d")
    );
    assert!(script.contains("reset --hard HEAD"));
    let moved = Report {
        remote_url: Some("/elsewhere".into()),
        ..repo.clone()
    };
    let Decision::Apply { result, script } = decide(&a, &moved, false) else {
        panic!()
    };
    assert_eq!(result.data["remote_url_changed"], json!(true));
    assert!(script.contains("remote set-url origin file:///r"));
    let no_update = ga(json!({"repo": "/r", "dest": "/d", "update": false}));
    let Decision::Done(r) = decide(&no_update, &repo, false) else {
        panic!()
    };
    assert!(!r.changed && r.data["after"] == json!("old"));
    let failed = Report {
        rc: 128,
        msg: "fatal: no such repo".into(),
        ..Report::default()
    };
    let Decision::Done(r) = decide(&a, &failed, false) else {
        panic!()
    };
    assert!(r.failed && r.msg.as_deref() == Some("fatal: no such repo"));
}

#[test]
fn ssh_options_are_explicit() {
    let a =
        ga(json!({"repo": "git@h:r", "dest": "/d", "accept_hostkey": true, "key_file": "/k y"}));
    assert_eq!(
        a.ssh_opts,
        " -o StrictHostKeyChecking=no -o BatchMode=yes  -i '/k y' -o IdentitiesOnly=yes"
    );
    assert_eq!(
        a.warnings.len(),
        1,
        "disabling host key checking is reported"
    );
    let a = ga(json!({"repo": "git@h:r", "dest": "/d", "accept_newhostkey": true}));
    assert_eq!(
        a.ssh_opts,
        " -o StrictHostKeyChecking=accept-new -o BatchMode=yes"
    );
    assert!(a.warnings.is_empty());
    for (bad, msg) in [
        (
            json!({"repo": "r", "dest": "/d", "accept_hostkey": true, "accept_newhostkey": true}),
            "mutually exclusive",
        ),
        (
            json!({"repo": "r"}),
            "the destination directory must be specified unless clone=no",
        ),
        (
            json!({"repo": "r", "dest": "/d", "umask": 18}),
            "quoted octal",
        ),
        (
            json!({"repo": "r", "dest": "/d", "archive": "/a.zip"}),
            "'archive' is not supported",
        ),
    ] {
        let e = parse_with(&SPEC, bad.clone(), GitArgs::from_args)
            .unwrap_err()
            .to_string();
        assert!(e.contains(msg), "{bad}: {e}");
    }
}

/// A real repository with the local git: clone, no-op update, a tag, then local modifications.
#[test]
fn clones_and_updates_a_local_repository() {
    if !sh("command -v git", None).ok() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().display().to_string();
    let setup = sh(
        &format!(
            "cd '{d}' && export GIT_AUTHOR_NAME=t GIT_AUTHOR_EMAIL=t@t GIT_COMMITTER_NAME=t GIT_COMMITTER_EMAIL=t@t && \
             git init -q src && cd src && git checkout -q -b main && echo 1 > f && git add f && git commit -qm one && \
             git tag v1 && echo 2 > f && git commit -qam two && git rev-parse HEAD v1"
        ),
        None,
    );
    assert!(setup.ok(), "{}", setup.stderr_str());
    let shas: Vec<String> = setup.stdout_str().lines().map(str::to_string).collect();
    let a =
        |v: &str| args(json!({"repo": format!("{d}/src"), "dest": format!("{d}/w"), "version": v}));
    let mut r = LocalRemote::default();
    let res = Git
        .execute(&a("HEAD"), &mut ctx(&mut r, false, false, vec![]))
        .unwrap();
    assert!(res.changed && !res.failed, "{res:?}");
    assert_eq!(res.data["after"], json!(shas[0]));
    assert_eq!(r.calls.len(), 2);
    let res = Git
        .execute(&a("HEAD"), &mut ctx(&mut r, false, false, vec![]))
        .unwrap();
    assert!(!res.changed && !res.failed, "{res:?}");
    assert_eq!(res.data["remote_url_changed"], json!(false));
    let res = Git
        .execute(&a("v1"), &mut ctx(&mut r, true, false, vec![]))
        .unwrap();
    assert!(res.changed && res.data["after"] == json!(shas[1]));
    let res = Git
        .execute(&a("v1"), &mut ctx(&mut r, false, false, vec![]))
        .unwrap();
    assert!(
        res.changed && res.data["after"] == json!(shas[1]),
        "{res:?}"
    );
    std::fs::write(dir.path().join("w/f"), "local\n").unwrap();
    let res = Git
        .execute(&a("HEAD"), &mut ctx(&mut r, false, false, vec![]))
        .unwrap();
    assert!(res.failed && res.msg.unwrap().contains("Local modifications exist"));
}
