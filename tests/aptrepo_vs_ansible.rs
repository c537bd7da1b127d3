//! Differential test of the Debian repository modules: the same playbook (apt_repository adding a
//! one-line source with update_cache, another into a named file with a mode, re-enabling a disabled
//! line of sources.list, failures; deb822_repository with an inline key block and trusted, and with
//! a key file; apt_key from a file, from data and into a keyring) run by knockplay on one
//! `knockplay-testhost` host and by ansible-playbook on its twin, then a removal playbook.
//! Compared: every registered result's changed/failed/msg and module keys, the sources and key
//! files' bytes, modes and owners, apt's lists; a check-mode run first (changes nothing), the run,
//! and a second run (changed=0). Needs the image (tests/hosts/build-image, with python3-apt,
//! python3-debian and gpg for Ansible) and the venv with ansible-playbook.

mod common;

use std::path::Path;
use std::process::{Command, Output};

use common::twin::{ansible_playbook, knockplay, run_playbook, text};
use common::{Host, TestBed};
use serde_json::Value;

/// An ed25519 public key made for this test (no secret part anywhere).
const KEY: &str = "-----BEGIN PGP PUBLIC KEY BLOCK-----

mDMEaxVPwxYJKwYBBAHaRw8BAQdA4gjjUThGf4P1MH91OUHqzT9OjSjlVqdpzFGi
rWyGH5y0J2tub2NrcGxheSB0ZXN0IGtleSA8a3BAZXhhbXBsZS5pbnZhbGlkPoiQ
BBMWCAA4FiEETyvTchoRkE1uiOing8I/Wbe7+L8FAmsVT8MCGwMFCwkIBwIGFQoJ
CAsCBBYCAwECHgECF4AACgkQg8I/Wbe7+L+VdgEA2vg2fmoHfLp7GDTxaTPsY6b3
ZAuobsdlhLe9M4ZSYXwA/09C0J1Q1r3hWGYiKkOpLHQhWjHpA75K+V0Kfl1Wox4H
=Msw6
-----END PGP PUBLIC KEY BLOCK-----\n";
const KEY_ID: &str = "83C23F59B7BBF8BF";

const PLAYBOOK: &str = r#"
- hosts: "{{ target }}"
  gather_facts: false
  vars:
    kpkey: |
@KEYBLOCK@
  tasks:
    - apt_repository: {repo: "deb [trusted=yes] file:/srv/localrepo-copy ./"}
      register: r01
    - apt_repository:
        repo: "deb [trusted=yes arch=amd64]   file:/srv/localrepo-copy ./ # second"
        filename: kp-extra
        mode: "0600"
        update_cache: false
      register: r02
    - apt_repository: {repo: "deb [trusted=yes] file:/srv/localrepo-copy2 ./"}
      register: r03
    - deb822_repository:
        name: KP Local 822
        uris: file:/srv/localrepo-822
        suites: ["./"]
        trusted: true
        signed_by: "{{ kpkey }}"
        pdiffs: false
        languages: [en]
      register: r04
    - deb822_repository:
        name: kp_file_key
        types: [deb, deb-src]
        uris: ["file:/srv/nowhere", "file:/srv/nowhere2"]
        suites: [bookworm]
        components: [main, contrib]
        signed_by: /root/kp-test.asc
        enabled: false
        mode: "0640"
      register: r05
    - apt_key: {file: /root/kp-test.asc}
      register: r06
    - apt_key: {data: "{{ kpkey }}"}
      register: r07
    - apt_key: {data: "{{ kpkey }}", keyring: /etc/apt/trusted.gpg.d/kp.gpg}
      register: r08
    - apt_repository: {repo: "deb [trusted=yes] file:/srv/missing ./", update_cache_retries: 1, update_cache_retry_max_delay: 1}
      register: r09
      ignore_errors: true
    - apt_repository: {repo: "foo bar"}
      register: r10
      ignore_errors: true
    - apt_key: {id: "xyz"}
      register: r11
      ignore_errors: true
    - copy:
        dest: /tmp/kp-results.json
        content: "{{ [r01, r02, r03, r04, r05, r06, r07, r08, r09, r10, r11] | to_json }}"
      changed_when: false
      check_mode: false
"#;

/// Removals, run once after the main playbook.
const REMOVE: &str = r#"
- hosts: "{{ target }}"
  gather_facts: false
  tasks:
    - apt_repository: {repo: "deb [trusted=yes] file:/srv/localrepo-copy ./", state: absent}
      register: g1
    - apt_repository: {repo: "deb [trusted=yes arch=amd64] file:/srv/localrepo-copy ./", state: absent, update_cache: false}
      register: g2
    - apt_repository: {repo: "deb [trusted=yes] file:/srv/localrepo-copy2 ./", state: absent}
      register: g3
    - deb822_repository: {name: KP Local 822, state: absent}
      register: g4
    - deb822_repository: {name: kp_file_key, state: absent}
      register: g5
    - apt_key: {id: "{{ keyid }}", state: absent}
      register: g6
    - apt_key: {id: "{{ keyid }}", state: absent}
      register: g7
    - apt_key: {id: B7BBF8BF, keyring: /etc/apt/trusted.gpg.d/kp.gpg, state: absent}
      register: g8
    - copy:
        dest: /tmp/kp-results.json
        content: "{{ [g1, g2, g3, g4, g5, g6, g7, g8] | to_json }}"
      changed_when: false
"#;

const KEYS: &[&str] = &[
    "changed",
    "failed",
    "msg",
    "repo",
    "sources_added",
    "sources_removed",
    "state",
    "dest",
    "key_filename",
    "id",
    "short_id",
    "fp",
    "key_id",
    "before",
    "after",
    "uid",
    "gid",
    "owner",
    "group",
    "mode",
    "size",
];

fn run(c: Command, pb: &Path, bed: &TestBed, target: &str, extra: &[&str]) -> Output {
    let vars = [format!("target={target}"), format!("keyid={KEY_ID}")];
    run_playbook(c, pb, bed, &vars, extra)
}

/// Run `pb` with both tools (knockplay on `k`, Ansible on `a`).
fn both(bed: &TestBed, pb: &Path, k: &Host, a: &Host, extra: &[&str]) -> (String, String) {
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

/// The registered results, reduced to the keys both tools report (sets sorted).
fn results(h: &Host) -> Vec<Value> {
    let raw = h
        .read_to_string("/tmp/kp-results.json")
        .expect("results file");
    let all: Vec<Value> = serde_json::from_str(&raw).expect("results json");
    all.into_iter()
        .map(|r| {
            let mut o = serde_json::Map::new();
            for k in KEYS {
                let Some(v) = r.get(*k) else { continue };
                if *k == "failed" && *v == Value::Bool(false) {
                    continue;
                }
                let v = match v {
                    Value::Array(items) if k.starts_with("sources_") => {
                        let mut items = items.clone();
                        items.sort_by_key(|i| i.to_string());
                        Value::Array(items)
                    }
                    v => v.clone(),
                };
                o.insert(k.to_string(), v);
            }
            Value::Object(o)
        })
        .collect()
}

/// The failed cache update's message comes from python-apt on one side and apt-get on the other.
fn without_update_msg(mut v: Vec<Value>, i: usize) -> Vec<Value> {
    if let Some(Value::String(m)) = v[i].get("msg") {
        assert!(
            m.starts_with("Failed to update apt cache after 1 retries: "),
            "{m}"
        );
    }
    if let Some(o) = v[i].as_object_mut() {
        o.remove("msg");
    }
    v
}

/// What a user would compare on the two hosts.
fn host_state(h: &Host) -> String {
    h.exec(
        "cd /etc/apt; for f in sources.list sources.list.d/* keyrings/* trusted.gpg trusted.gpg.d/kp*; do \
         [ -e \"$f\" ] || continue; echo \"== $f $(stat -c '%a %U %G' $f)\"; \
         case $f in *.gpg) apt-key --keyring $f list 2>/dev/null | grep -v '^/' ;; *) cat $f ;; esac; done; \
         echo '-- lists'; ls /var/lib/apt/lists | grep -v -e '^lock$' -e '^partial$'",
    )
    .stdout
}

fn changed_count(out: &str) -> Option<String> {
    out.lines()
        .find(|l| l.contains("changed=") && l.contains("ok="))
        .and_then(|l| l.split_whitespace().find(|w| w.starts_with("changed=")))
        .map(str::to_string)
}

fn prepare(h: &Host) {
    let r = h.exec(
        "set -e; cp -a /srv/localrepo /srv/localrepo-copy; cp -a /srv/localrepo /srv/localrepo-copy2; \
         cp -a /srv/localrepo /srv/localrepo-822; \
         printf '# knockplay test sources\\n#deb [trusted=yes] file:/srv/localrepo-copy2   ./\\n\\n' >/etc/apt/sources.list",
    );
    assert!(r.ok(), "{}", r.stderr);
    h.write_file("/root/kp-test.asc", KEY.as_bytes()).unwrap();
}

#[test]
fn apt_repository_modules_match_ansible() {
    if !ansible_playbook().exists() {
        assert!(
            std::env::var_os("CI").is_none(),
            "ansible-playbook not found: set KNOCKPLAY_VENV or run tests/hosts/setup"
        );
        eprintln!("skipping: ansible-playbook not found (run tests/hosts/setup)");
        return;
    }
    let bed = TestBed::builder()
        .hosts(2)
        .start()
        .expect("test bed (build the image with tests/hosts/build-image)");
    let (k, a) = (&bed.hosts[0], &bed.hosts[1]);
    for h in [k, a] {
        prepare(h);
    }
    let d = tempfile::tempdir().unwrap();
    let pb = d.path().join("aptrepo.yml");
    let block: Vec<String> = KEY.lines().map(|l| format!("      {l}")).collect();
    std::fs::write(&pb, PLAYBOOK.replace("@KEYBLOCK@", &block.join("\n"))).unwrap();
    let initial = host_state(k);
    assert_eq!(initial, host_state(a));

    // Check mode first: the same verdicts, nothing changed.
    both(&bed, &pb, k, a, &["--check"]);
    let (rk, ra) = (results(k), results(a));
    for (i, (x, y)) in rk.iter().zip(&ra).enumerate() {
        assert_eq!(x, y, "check mode, task r{:02}: knockplay vs Ansible", i + 1);
    }
    // Both list the keyring of r08 with apt-key, which creates it empty: the one trace.
    let checked = host_state(k);
    assert_eq!(
        checked,
        host_state(a),
        "check mode left the hosts different"
    );
    assert_eq!(
        checked.replace("== trusted.gpg.d/kp.gpg 644 root root\n", ""),
        initial,
        "check mode changed the host"
    );

    // The run.
    both(&bed, &pb, k, a, &[]);
    let (rk, ra) = (
        without_update_msg(results(k), 8),
        without_update_msg(results(a), 8),
    );
    for (i, (x, y)) in rk.iter().zip(&ra).enumerate() {
        assert_eq!(x, y, "task r{:02}: knockplay vs Ansible", i + 1);
    }
    assert_eq!(rk.len(), ra.len());
    let after = host_state(k);
    assert_eq!(after, host_state(a), "hosts differ after the run");
    assert!(after.contains("file_srv_localrepo_copy.list"), "{after}");

    // A second run changes nothing.
    let (kt, at) = both(&bed, &pb, k, a, &[]);
    assert_eq!(changed_count(&kt).as_deref(), Some("changed=0"), "{kt}");
    assert_eq!(changed_count(&at).as_deref(), Some("changed=0"), "{at}");
    let (rk, ra) = (
        without_update_msg(results(k), 8),
        without_update_msg(results(a), 8),
    );
    assert_eq!(rk, ra, "second-run results differ");
    assert_eq!(host_state(k), host_state(a));

    // Removals.
    let rpb = d.path().join("remove.yml");
    std::fs::write(&rpb, REMOVE).unwrap();
    both(&bed, &rpb, k, a, &[]);
    let (rk, ra) = (results(k), results(a));
    for (i, (x, y)) in rk.iter().zip(&ra).enumerate() {
        assert_eq!(x, y, "removal g{}: knockplay vs Ansible", i + 1);
    }
    let end = host_state(k);
    assert_eq!(end, host_state(a), "hosts differ after the removals");
    assert!(!end.contains("localrepo-copy"), "{end}");
}
