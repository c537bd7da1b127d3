//! Differential test of git, uri and pip on real test hosts: one playbook run by `knockplay run`
//! on one fresh test host and by ansible-playbook on its twin, both talking to a third host (the
//! "server": a bare git repository reached over SSH and a `python3 -m http.server`).
//! - git: clone over ssh:// (key_file copied onto the targets, accept_newhostkey) and over
//!   file:// (a bare repository on each target), then an update to an annotated tag, then a run
//!   that changes nothing; compared: changed/before/after/msg and the checked-out trees.
//! - uri: GET with return_content (status, content, json), a status_code mismatch and a 404
//!   (ignore_errors; msg/status compared), a download to `dest` with `creates`; compared: the
//!   results and the downloaded file.
//! - pip: offline install of a hand-made wheel into a new venv (`virtualenv_command`); compared:
//!   results, `pip freeze` of the venvs, changed=0 on the later runs.
//!
//! Needs the venv with ansible-playbook (`$KNOCKPLAY_VENV`) and the test-host image with git,
//! curl, python3-venv and python3-pip.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use common::twin::{ansible_playbook, knockplay, run_playbook, text};
use common::{Host, TestBed};
use serde_json::Value;

const PLAYBOOK: &str = r#"
- hosts: "{{ target }}"
  gather_facts: false
  tasks:
    - git:
        repo: "ssh://root@{{ server }}/srv/repo.git"
        dest: /opt/src
        version: "{{ gitver }}"
        key_file: /root/.ssh/kp_key
        accept_newhostkey: true
      register: r01
    - git: {repo: "file:///srv/local.git", dest: /opt/local, version: "{{ gitver }}"}
      register: r02
    - git: {repo: "file:///srv/local.git", dest: /opt/local-v1, version: v1, depth: 1}
      register: r03
    - uri: {url: "http://{{ server }}:8080/data.json", return_content: true}
      register: r04
    - uri: {url: "http://{{ server }}:8080/note.txt", status_code: [201, 204]}
      register: r05
      ignore_errors: true
    - uri: {url: "http://{{ server }}:8080/missing.txt"}
      register: r06
      ignore_errors: true
    - uri: {url: "http://{{ server }}:8080/note.txt", dest: /opt/dl/note.txt, creates: /opt/dl/note.txt}
      register: r07
    - pip:
        name: kptoy
        virtualenv: /opt/venv
        virtualenv_command: python3 -m venv
        extra_args: "--no-index --find-links /opt/wheels"
      register: r08
    - copy:
        dest: /tmp/kp-results.json
        content: "{{ [r01, r02, r03, r04, r05, r06, r07, r08] | to_json }}"
      changed_when: false
"#;

/// A bare repository at `$1` with two commits on `main` (annotated tag v1 on the first), made
/// the same way (fixed identity and dates) on every host so the commit ids agree.
const MAKE_REPO: &str = r#"set -e
export GIT_AUTHOR_NAME=kp GIT_AUTHOR_EMAIL=kp@example.test GIT_COMMITTER_NAME=kp GIT_COMMITTER_EMAIL=kp@example.test
export GIT_AUTHOR_DATE='2024-01-01T00:00:00Z' GIT_COMMITTER_DATE='2024-01-01T00:00:00Z'
rm -rf "$1" /tmp/kp-work
git init -q --bare -b main "$1"
git init -q -b main /tmp/kp-work && cd /tmp/kp-work
printf 'one\n' > README && mkdir -p sub && printf 'x=1\n' > sub/conf
git add -A && git commit -q -m first && git tag -a v1 -m 'version 1'
printf 'two\n' >> README && printf '#!/bin/sh\necho hi\n' > run.sh && chmod +x run.sh
git add -A && git commit -q -m second
git push -q "$1" main --tags
cd / && rm -rf /tmp/kp-work
"#;

/// A pure-Python wheel of `kptoy` 1.0 in `out`, made by hand (no network, no build backend).
fn make_wheel(out: &Path) -> PathBuf {
    let script = r#"
import base64, hashlib, os, sys, zipfile
out = sys.argv[1]
v = "1.0"
files = {
    "kptoy.py": "VERSION = %r\n" % v,
    "kptoy-%s.dist-info/METADATA" % v: "Metadata-Version: 2.1\nName: kptoy\nVersion: %s\n" % v,
    "kptoy-%s.dist-info/WHEEL" % v: "Wheel-Version: 1.0\nGenerator: hand\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
}
rec = []
with zipfile.ZipFile(os.path.join(out, "kptoy-%s-py3-none-any.whl" % v), "w") as z:
    for name, text in files.items():
        data = text.encode()
        z.writestr(name, data)
        h = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
        rec.append("%s,sha256=%s,%d" % (name, h, len(data)))
    rec.append("kptoy-%s.dist-info/RECORD,," % v)
    z.writestr("kptoy-%s.dist-info/RECORD" % v, "\n".join(rec) + "\n")
"#;
    let python = ansible_playbook().with_file_name("python");
    let o = Command::new(python)
        .arg("-c")
        .arg(script)
        .arg(out)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    out.join("kptoy-1.0-py3-none-any.whl")
}

fn run(c: Command, pb: &Path, bed: &TestBed, target: &str, extra: &[String]) -> Output {
    let mut vars = vec![format!("target={target}")];
    vars.extend(extra.iter().cloned());
    run_playbook(c, pb, bed, &vars, &[])
}

/// Runs the playbook with knockplay on `k` and with ansible-playbook on `a`.
fn both(pb: &Path, bed: &TestBed, k: &Host, a: &Host, extra: &[String]) -> (String, String) {
    let ko = run(
        knockplay(env!("CARGO_BIN_EXE_knockplay"), bed),
        pb,
        bed,
        &k.name,
        extra,
    );
    let ao = run(Command::new(ansible_playbook()), pb, bed, &a.name, extra);
    let (kt, at) = (text(&ko), text(&ao));
    assert!(ko.status.success(), "knockplay failed:\n{kt}");
    assert!(ao.status.success(), "ansible-playbook failed:\n{at}");
    (kt, at)
}

/// The registered results, reduced to the keys both tools report.
fn results(h: &Host) -> Vec<Value> {
    let raw = h
        .read_to_string("/tmp/kp-results.json")
        .expect("results file")
        .replace(&h.name, "HOST");
    let all: Vec<Value> = serde_json::from_str(&raw).expect("results json");
    all.into_iter()
        .map(|r| {
            let mut o = serde_json::Map::new();
            for k in [
                "changed",
                "failed",
                "msg",
                "skipped",
                "before",
                "after",
                "remote_url_changed",
                "status",
                "url",
                "redirected",
                "content",
                "json",
                "content_type",
                "content_length",
                "path",
                "state",
                "mode",
                "owner",
                "group",
                "uid",
                "gid",
                "size",
                "stdout",
                "cmd",
                "name",
                "version",
                "requirements",
                "virtualenv",
            ] {
                let Some(v) = r.get(k) else { continue };
                if k == "failed" && v == &Value::Bool(false) {
                    continue;
                }
                o.insert(k.to_string(), v.clone());
            }
            Value::Object(o)
        })
        .collect()
}

/// What a user would compare on the two hosts: the checked-out trees, the download, the venv.
fn host_state(h: &Host) -> String {
    h.exec(
        "for d in /opt/src /opt/local /opt/local-v1; do echo \"== $d\"; [ -d $d ] || continue; \
         git -C $d rev-parse HEAD; git -C $d status --porcelain; git -C $d describe --tags --always; \
         git -C $d rev-parse --abbrev-ref HEAD; git -C $d remote -v; git -C $d rev-parse --is-shallow-repository; \
         (cd $d && find . -path ./.git -prune -o -print | LC_ALL=C sort | while read -r f; do \
           echo \"$f $(stat -c %a \"$f\")\"; [ -f \"$f\" ] && cat \"$f\"; done); done; \
         echo '== /opt/dl'; ls -l /opt/dl | awk 'NR>1 {print $1, $3, $4, $5, $9}'; cat /opt/dl/* 2>/dev/null; \
         echo '== venv'; /opt/venv/bin/pip freeze 2>&1; true",
    )
    .stdout
}

fn changed_count(out: &str) -> Option<String> {
    out.lines()
        .find(|l| l.contains("changed=") && l.contains("ok="))
        .and_then(|l| l.split_whitespace().find(|w| w.starts_with("changed=")))
        .map(str::to_string)
}

fn compare(k: &Host, a: &Host, what: &str) -> Vec<Value> {
    let (rk, ra) = (results(k), results(a));
    assert_eq!(rk.len(), ra.len(), "{what}: result counts");
    for (i, (x, y)) in rk.iter().zip(&ra).enumerate() {
        assert_eq!(x, y, "{what}, task r{:02}: knockplay vs Ansible", i + 1);
    }
    let (sk, sa) = (host_state(k), host_state(a));
    assert_eq!(sk, sa, "{what}: hosts differ");
    eprintln!("{what}: {}\n{sk}", Value::Array(rk.clone()));
    rk
}

#[test]
fn git_uri_pip_match_ansible() {
    if !ansible_playbook().exists() {
        assert!(
            std::env::var_os("CI").is_none(),
            "ansible-playbook not found: set KNOCKPLAY_VENV"
        );
        eprintln!("skipping: ansible-playbook not found");
        return;
    }
    let bed = TestBed::start(3).expect("test bed");
    let (k, a, server) = (&bed.hosts[0], &bed.hosts[1], &bed.hosts[2]);
    let d = tempfile::tempdir().unwrap();

    // The server: a bare repository over SSH and an HTTP server.
    let r = server.exec_stdin("sh -s /srv/repo.git", MAKE_REPO.as_bytes());
    assert!(r.ok(), "server repo: {}{}", r.stdout, r.stderr);
    let r = server.exec(
        "mkdir -p /srv/www && printf '{\"name\": \"kp\", \"items\": [1, 2], \"ok\": true}\\n' > /srv/www/data.json \
         && printf 'hello from the server\\n' > /srv/www/note.txt",
    );
    assert!(r.ok(), "{}", r.stderr);
    server
        .exec_detached("cd /srv/www && exec python3 -m http.server 8080 >/tmp/http.log 2>&1")
        .unwrap();
    let r = server.exec(
        "for i in $(seq 50); do curl -fs http://127.0.0.1:8080/note.txt >/dev/null && exit 0; sleep 0.2; done; exit 1",
    );
    assert!(r.ok(), "http server did not come up");

    // The targets: the bed's key (accepted by root on the server), a wheel, a local bare repo.
    let key = std::fs::read(&bed.key_path).unwrap();
    let wheel = make_wheel(d.path());
    let wheel_bytes = std::fs::read(&wheel).unwrap();
    for h in [k, a] {
        let r = h.exec("mkdir -p /root/.ssh /opt/wheels /opt/dl && chmod 700 /root/.ssh");
        assert!(r.ok(), "{}", r.stderr);
        h.write_file("/root/.ssh/kp_key", &key).unwrap();
        assert!(h.exec("chmod 600 /root/.ssh/kp_key").ok());
        h.write_file("/opt/wheels/kptoy-1.0-py3-none-any.whl", &wheel_bytes)
            .unwrap();
        let r = h.exec_stdin("sh -s /srv/local.git", MAKE_REPO.as_bytes());
        assert!(r.ok(), "local repo: {}{}", r.stdout, r.stderr);
    }
    assert_eq!(host_state(k), host_state(a));

    let pb = d.path().join("net.yml");
    std::fs::write(&pb, PLAYBOOK).unwrap();
    let server_var = format!("server={}", server.ip);

    // Clone at main: everything changes.
    both(&pb, &bed, k, a, &[server_var.clone(), "gitver=main".into()]);
    let rk = compare(k, a, "clone");
    for i in [0, 1, 2, 7] {
        assert_eq!(rk[i]["changed"], Value::Bool(true), "r{:02}: {rk:?}", i + 1);
    }
    assert!(rk[4]["failed"] == Value::Bool(true) && rk[5]["failed"] == Value::Bool(true));
    assert_eq!(rk[0]["after"].as_str().map(str::len), Some(40), "{rk:?}");
    assert_eq!(rk[3]["json"]["name"], "kp", "{rk:?}");
    assert_eq!(
        (&rk[4]["status"], &rk[5]["status"]),
        (&200.into(), &404.into())
    );
    assert!(host_state(k).contains("kptoy==1.0"));

    // Update to the tag: the clones change.
    both(&pb, &bed, k, a, &[server_var.clone(), "gitver=v1".into()]);
    let rk = compare(k, a, "update to v1");
    assert_eq!(rk[0]["changed"], Value::Bool(true), "{rk:?}");
    assert_ne!(rk[0]["before"], rk[0]["after"]);

    // Again: nothing changes.
    let (kt, at) = both(&pb, &bed, k, a, &[server_var, "gitver=v1".into()]);
    let rk = compare(k, a, "second run");
    assert_eq!(rk[6]["changed"], Value::Bool(false), "{rk:?}");
    assert_eq!(changed_count(&at).as_deref(), Some("changed=0"), "{at}");
    assert_eq!(changed_count(&kt).as_deref(), Some("changed=0"), "{kt}");
}
