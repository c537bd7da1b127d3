//! Tests of `apt_repository`: Ansible's line parsing and rendering, file names, adding and
//! removing sources, the probe parser and the apply script.

use super::*;
use crate::modules::testing::{args, ctx, sh, FakeRemote};
use serde_json::json;

const SP: &str = "/etc/apt/sources.list.d/";

fn loaded(path: &str, text: &str) -> Loaded {
    Loaded {
        path: path.into(),
        real: None,
        state: FileState {
            kind: Kind::File,
            mode: 0o644,
            ..FileState::default()
        },
        content: text.as_bytes().to_vec(),
    }
}

#[test]
fn lines_parse_and_render_like_ansible() {
    // (line, rendered)
    let cases = [
        (
            "deb  http://x   bookworm main\n",
            "deb http://x bookworm main\n",
        ),
        (
            "#deb http://x bookworm main",
            "# deb http://x bookworm main\n",
        ),
        ("# a comment\n", "# a comment\n"),
        ("## double\n", "# # double\n"),
        ("deb http://x y z # note  \n", "deb http://x y z # note\n"),
        ("\n", "\n"),
        ("  garbage line # c\n", "garbage line # c\n"),
        (
            "deb-src [arch=amd64] http://x y z\n",
            "deb-src [arch=amd64] http://x y z\n",
        ),
    ];
    for (line, want) in cases {
        assert_eq!(render(&parse_file(line)), want, "{line:?}");
    }
    let (e, _) = parse_line("# deb http://x y #c");
    assert!(e.valid && !e.enabled);
    assert_eq!(
        (e.source.as_str(), e.comment.as_str()),
        ("deb http://x y", "c")
    );
    assert_eq!(
        parse_repo("deb  http://x  y # c").unwrap(),
        "deb http://x y"
    );
    assert_eq!(
        parse_repo("foo bar").unwrap_err(),
        "Invalid repository string: foo bar"
    );
    assert_eq!(
        parse_repo("# deb http://x y").unwrap_err(),
        "Invalid repository string:  deb http://x y"
    );
}

#[test]
fn file_names_follow_ansible() {
    let cases = [
        (
            "deb [trusted=yes] file:/srv/localrepo-copy ./",
            None,
            "file_srv_localrepo_copy.list",
        ),
        (
            "deb http://deb.example.org/debian bookworm main",
            None,
            "deb_example_org_debian.list",
        ),
        (
            "deb https://user:pw@repo.example.com/apt stable main",
            None,
            "repo_example_com_apt.list",
        ),
        ("deb-src http://x.org/ y", None, "x_org.list"),
        ("deb http://x.org/ y", Some("custom"), "custom.list"),
    ];
    for (line, f, want) in cases {
        assert_eq!(suggest_filename(line, f).unwrap(), want, "{line}");
    }
    assert_eq!(expand_path("a.list", SP), "/etc/apt/sources.list.d/a.list");
    assert_eq!(expand_path("/tmp/b/a.list", SP), "/tmp/b/a.list");
    assert_eq!(normalize("/etc//apt/./x/../y"), "/etc/apt/y");
}

#[test]
fn adding_and_removing_sources() {
    let sl = loaded(
        "/etc/apt/sources.list",
        "# header\n#deb http://x y  z\ndeb http://a b c\n",
    );
    let other = loaded("/etc/apt/sources.list.d/o.list", "deb http://a b c\n");
    let files = [sl, other];
    // Re-enabling a disabled identical line: no new file.
    let c = compute(&files, SP, "deb http://x y z", true, None).unwrap();
    assert!(c.changed && c.new_repos.is_empty());
    assert_eq!(
        c.after["/etc/apt/sources.list"],
        "# header\ndeb http://x y z\ndeb http://a b c\n"
    );
    // Present already: no change.
    let c = compute(&files, SP, "deb   http://a b c", true, None).unwrap();
    assert!(!c.changed);
    // A new line goes to its own file.
    let c = compute(&files, SP, "deb http://n m o", true, None).unwrap();
    assert_eq!(
        c.after["/etc/apt/sources.list.d/n.list"],
        "deb http://n m o\n"
    );
    assert!(c.new_repos.contains("/etc/apt/sources.list.d/n.list"));
    // Removing drops every enabled identical line; a file left empty disappears.
    let c = compute(&files, SP, "deb http://a b c", false, None).unwrap();
    assert!(c.changed);
    assert_eq!(
        c.after["/etc/apt/sources.list"],
        "# header\n# deb http://x y z\n"
    );
    assert!(!c.after.contains_key("/etc/apt/sources.list.d/o.list"));
    let o = outcome(&c, &files, &no_update());
    assert_eq!(
        o.result.data["sources_removed"],
        Value::Array(vec![Value::from("/etc/apt/sources.list.d/o.list")])
    );
}

#[test]
fn removal_keeps_ansibles_pop_quirk() {
    // Two identical lines in a row: the second is skipped (Python's list iteration).
    let mut files: Files = IndexMap::new();
    files.insert(
        "/f".into(),
        parse_file("deb http://a b\ndeb http://a b\nx\n"),
    );
    remove_source(&mut files, "deb http://a b").unwrap();
    assert_eq!(render(&files["/f"]), "deb http://a b\nx\n");
    // A later line whose number is past the end now fails as Python does.
    let mut files: Files = IndexMap::new();
    files.insert(
        "/f".into(),
        parse_file("deb http://a b\nx\ndeb http://a b\n"),
    );
    assert!(remove_source(&mut files, "deb http://a b").is_err());
}

fn no_update() -> Apply {
    Apply {
        mode: None,
        update_cache: false,
        retries: 5,
        max_delay: 12,
    }
}

#[test]
fn probe_output_parses() {
    use base64::Engine;
    let e = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
    let out = format!(
        "\n@@KP:cfg\n/etc/apt/sources.list\n/etc/apt/sources.list.d/\n\n@@KP:f0\n{}\n{}\n600 0 4\n{}\n\n@@KP:end\n",
        e("/etc/apt/sources.list.d//x.list"),
        e("/srv/real.list"),
        e("deb http://a b\n")
    );
    let (sp, l) = parse_probe(&out).unwrap();
    assert_eq!(sp, SP);
    assert_eq!(l.len(), 1);
    assert_eq!(l[0].path, "/etc/apt/sources.list.d/x.list");
    assert_eq!(l[0].real.as_deref(), Some("/srv/real.list"));
    assert_eq!((l[0].state.mode, l[0].state.gid), (0o600, 4));
    assert_eq!(l[0].content, b"deb http://a b\n");
}

#[test]
fn probe_and_apply_run_in_a_shell() {
    // The probe script runs with the local sh (whatever this machine's apt configuration).
    let out = sh(&probe_script(), None);
    assert!(out.ok(), "{}", out.stderr_str());
    parse_probe(&out.stdout_str()).unwrap();
    // The apply script writes, re-enables and removes files in a scratch directory.
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_str().unwrap();
    let keep = format!("{d}/keep.list");
    std::fs::write(&keep, "#deb http://x y\n").unwrap();
    std::fs::write(format!("{d}/empty.list"), "").unwrap();
    let files = [
        loaded(&keep, "#deb http://x y\n"),
        loaded(&format!("{d}/empty.list"), ""),
    ];
    let c = compute(&files, d, "deb http://x y", true, None).unwrap();
    let out = sh(&apply_script(&c, &files, &no_update()), None);
    assert!(out.ok(), "{}", out.stderr_str());
    assert_eq!(std::fs::read_to_string(&keep).unwrap(), "deb http://x y\n");
    assert!(!std::path::Path::new(&format!("{d}/empty.list")).exists());
}

#[test]
fn failed_cache_update_restores_the_files() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_str().unwrap();
    let files = [loaded(&format!("{d}/old.list"), "deb  http://o p\n")];
    std::fs::write(format!("{d}/old.list"), "deb  http://o p\n").unwrap();
    let c = compute(&files, d, "deb http://n m", true, None).unwrap();
    let a = Apply {
        update_cache: true,
        retries: 0,
        ..no_update()
    };
    // No retries at all: Ansible's loop never runs and reports an unknown reason.
    let out = sh(&apply_script(&c, &files, &a), None);
    assert_eq!(out.rc, 1);
    assert!(out
        .stderr_str()
        .contains("Failed to update apt cache after 0 retries: unknown reason"));
    assert!(!std::path::Path::new(&format!("{d}/n.list")).exists());
    assert_eq!(
        std::fs::read_to_string(format!("{d}/old.list")).unwrap(),
        "deb http://o p\n"
    );
}

#[test]
fn run_flow_check_mode_and_refusals() {
    use base64::Engine;
    let e = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
    let probe = format!(
        "\n@@KP:cfg\n/etc/apt/sources.list\n{SP}\n\n@@KP:f0\n{}\n-\n644 0 0\n{}\n\n@@KP:end\n",
        e("/etc/apt/sources.list"),
        e("deb http://a b c\n")
    );
    let mut r = FakeRemote::scripted(&[(0, &probe)]);
    let a = args(json!({"repo": "deb http://n m o"}));
    let res = AptRepository
        .execute(&a, &mut ctx(&mut r, true, true, vec![]))
        .unwrap();
    assert!(res.changed && !res.failed);
    assert_eq!(res.diff.len(), 1);
    assert_eq!(res.diff[0].after, "deb http://n m o\n");
    assert_eq!(r.seen.len(), 1, "check mode: the probe only");
    let mut r = FakeRemote::default();
    let a = args(json!({"repo": "ppa:owner/name"}));
    let e = AptRepository
        .execute(&a, &mut ctx(&mut r, false, false, vec![]))
        .unwrap_err();
    assert!(e.to_string().contains("ppa:"), "{e}");
}
