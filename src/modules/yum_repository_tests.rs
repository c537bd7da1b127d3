//! Tests of `yum_repository`: configparser-compatible reading and writing, the options a section
//! gets, and the run flow against a scripted remote.

use super::*;
use crate::modules::testing::{args, ctx, parse_with, FakeRemote};
use serde_json::json;

#[test]
fn parses_like_configparser() {
    let text = "# comment\n[epel]\nName = EPEL\nbaseurl=http://a/\n  http://b/\n; c\ngpgcheck: 1\n\n[other]\nenabled = 0\n";
    let s = parse(text).unwrap();
    assert_eq!(s.len(), 2);
    assert_eq!(
        s[0].1,
        vec![
            ("name".to_string(), "EPEL".to_string()),
            ("baseurl".to_string(), "http://a/\nhttp://b/".to_string()),
            ("gpgcheck".to_string(), "1".to_string()),
        ]
    );
    assert_eq!(
        render(&s),
        "[epel]\nname = EPEL\nbaseurl = http://a/\n\thttp://b/\ngpgcheck = 1\n\n[other]\nenabled = 0\n\n"
    );
    assert_eq!(
        dump(&s),
        "[epel]\nbaseurl = http://a/\nhttp://b/\ngpgcheck = 1\nname = EPEL\n\n[other]\nenabled = 0\n\n"
    );
    assert!(parse("k = v\n").unwrap_err().contains("no section headers"));
}

#[test]
fn section_options_follow_ansible() {
    let a = json!({"name": "kp", "description": "KP repo", "baseurl": ["file:///a", "file:///b"],
        "enabled": false, "gpgcheck": "yes", "priority": 10, "exclude": "x,y", "gpgkey": "file:///k",
        "sslverify": true});
    let opts = parse_with(&SPEC, a, section_options).unwrap();
    let keys: Vec<&str> = opts.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(
        keys,
        [
            "baseurl",
            "enabled",
            "exclude",
            "gpgcheck",
            "gpgkey",
            "name",
            "priority",
            "sslverify"
        ]
    );
    let get = |k: &str| opts.iter().find(|(x, _)| x == k).unwrap().1.clone();
    assert_eq!(get("baseurl"), "file:///a\nfile:///b");
    assert_eq!(get("enabled"), "0");
    assert_eq!(get("gpgcheck"), "1");
    assert_eq!(get("exclude"), "x y");
    assert_eq!(get("priority"), "10");
}

#[test]
fn run_flow_writes_replaces_and_removes() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_str().unwrap().to_string();
    let mut local = crate::modules::testing::LocalRemote::default();
    let run =
        |local: &mut crate::modules::testing::LocalRemote, v: serde_json::Value, check: bool| {
            YumRepository
                .execute(&args(v), &mut ctx(local, check, false, vec![]))
                .unwrap()
        };
    let a = json!({"name": "kp", "description": "KP", "baseurl": "file:///srv/r", "gpgcheck": false, "reposdir": d});
    let r = run(&mut local, a.clone(), true);
    assert!(r.changed && !dir.path().join("kp.repo").exists(), "{r:?}");
    let r = run(&mut local, a.clone(), false);
    assert!(r.changed && !r.failed, "{r:?}");
    assert_eq!(r.data["repo"], "kp");
    assert_eq!(r.data["state"], "present");
    let text = std::fs::read_to_string(dir.path().join("kp.repo")).unwrap();
    assert_eq!(
        text,
        "[kp]\nbaseurl = file:///srv/r\ngpgcheck = 0\nname = KP\n\n"
    );
    assert!(!run(&mut local, a.clone(), false).changed);
    // A second section in the same file, then the first removed.
    let b = json!({"name": "kp2", "file": "kp", "description": "two", "baseurl": "file:///x", "reposdir": d});
    assert!(run(&mut local, b, false).changed);
    let gone = json!({"name": "kp", "state": "absent", "reposdir": d});
    assert!(run(&mut local, gone.clone(), false).changed);
    let text = std::fs::read_to_string(dir.path().join("kp.repo")).unwrap();
    assert_eq!(text, "[kp2]\nbaseurl = file:///x\nname = two\n\n");
    assert!(!run(&mut local, gone, false).changed);
    let last = json!({"name": "kp2", "file": "kp", "state": "absent", "reposdir": d});
    assert!(run(&mut local, last, false).changed);
    assert!(!dir.path().join("kp.repo").exists());
    // Missing directory and missing options.
    let r = run(
        &mut local,
        json!({"name": "x", "description": "x", "baseurl": "b", "reposdir": format!("{d}/nope")}),
        false,
    );
    assert!(r.failed && r.msg.unwrap().contains("does not exist"));
    let mut fr = FakeRemote::new(vec![]);
    let e = YumRepository
        .execute(
            &args(json!({"name": "x", "baseurl": "b"})),
            &mut ctx(&mut fr, false, false, vec![]),
        )
        .unwrap_err()
        .to_string();
    assert!(e.contains("description"), "{e}");
    let e = YumRepository
        .execute(
            &args(json!({"name": "x", "description": "d"})),
            &mut ctx(&mut fr, false, false, vec![]),
        )
        .unwrap_err()
        .to_string();
    assert!(e.contains("baseurl, mirrorlist, metalink"), "{e}");
}
