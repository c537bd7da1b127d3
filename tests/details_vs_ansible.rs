//! Details that made real playbooks end differently under knockplay than under Ansible, run by
//! both on twin hosts (`-l` the only difference) and compared: local facts from
//! `/etc/ansible/facts.d` (JSON, INI and an executable fact), `include_tasks`/`include_role`
//! counted as ok in the recap, a dict given for a string parameter (`ping: data=`), a role listed
//! twice notifying its handler once, a home directory created for an existing user with the mode
//! from login.defs, and `groups=` naming the primary group (the second run is compared too). A
//! Python filter plugin beside the playbook is reported by name.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use common::{Host, TestBed};

const SITE: &str = r#"- hosts: "{{ target }}"
  roles:
    - {role: noisy, n: 1}
    - {role: noisy, n: 2}
  tasks:
    - copy: {content: "{{ ansible_local | to_nice_json }}\n", dest: /tmp/d-local.json}
    - include_tasks: inc.yml
      loop: [a, b]
    - include_role: {name: noisy}
      vars: {n: 3}
    - ping: {data: {a: 1, b: x}}
      register: p
    - copy: {content: "{{ p.ping }}\n", dest: /tmp/d-ping}
    - user: {name: dlate, create_home: false}
    - user: {name: dlate}
    - group: {name: dstaff}
    - user: {name: dgroups, group: dstaff, groups: [dstaff, users]}
    - shell: "stat -c '%a %U' /home/dlate > /tmp/d-home; id -Gn dgroups > /tmp/d-groups"
      changed_when: false
"#;

const INC: &str = "- copy: {content: \"{{ item }}\\n\", dest: \"/tmp/d-inc-{{ item }}\"}\n";
const ROLE_TASKS: &str = "- command: \"echo {{ n }}\"\n  notify: note it\n";
const ROLE_HANDLERS: &str = "- name: note it\n  shell: echo handler >> /tmp/d-handler\n";
const FILTER: &str = "class FilterModule(object):\n    def filters(self):\n        return {'shout': lambda s: s.upper()}\n";

fn ansible_playbook() -> PathBuf {
    let venv = std::env::var_os("KNOCKPLAY_VENV")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(".venv"));
    venv.join("bin/ansible-playbook")
}

fn write(dir: &Path, rel: &str, text: &str) {
    let p = dir.join(rel);
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(p, text).unwrap();
}

fn run(mut c: Command, pb: &Path, bed: &TestBed, target: &str) -> (Output, String) {
    let out = c
        .arg(pb)
        .arg("-i")
        .arg(bed.inventory_file())
        .args(["-e", &format!("target={target}")])
        .env("NO_COLOR", "1")
        .env("ANSIBLE_NOCOLOR", "1")
        .env("ANSIBLE_HOST_KEY_CHECKING", "False")
        .env("ANSIBLE_LOCAL_TEMP", bed.dir().join("ansible-tmp"))
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out, text)
}

/// The host's recap line, counts only.
fn recap(text: &str, host: &str) -> String {
    text.lines()
        .filter(|l| l.starts_with(&format!("{host} ")) && l.contains(" ok="))
        .map(|l| {
            l.split_once(':')
                .map_or("", |(_, r)| r)
                .split_whitespace()
                .collect::<Vec<_>>()
                .join(" ")
        })
        .next_back()
        .unwrap_or_default()
}

fn state(h: &Host) -> String {
    let r = h.exec(
        "cd /tmp && for f in d-local.json d-ping d-inc-a d-inc-b d-handler d-home d-groups; do \
         echo \"== $f\"; cat $f 2>/dev/null || echo absent; done",
    );
    r.stdout
}

fn facts(h: &Host) {
    let script = r#"mkdir -p /etc/ansible/facts.d && cd /etc/ansible/facts.d &&
printf '{"version": "1.2", "ports": [80, 443]}\n' > app.fact &&
printf '[general]\nRole = web\nsize: 3\n' > site.fact &&
printf '#!/bin/sh\necho "{\\"booted\\": true}"\n' > run.fact && chmod 755 run.fact &&
printf 'not json\n' > broken.fact"#;
    let r = h.exec(script);
    assert!(r.ok(), "{r:?}");
}

#[test]
fn real_playbook_details_end_as_under_ansible() {
    let bed = TestBed::start(2).expect("test bed");
    let (kh, ah) = (&bed.hosts[0], &bed.hosts[1]);
    facts(kh);
    facts(ah);
    let d = tempfile::tempdir().unwrap();
    write(d.path(), "site.yml", SITE);
    write(d.path(), "inc.yml", INC);
    write(d.path(), "roles/noisy/tasks/main.yml", ROLE_TASKS);
    write(d.path(), "roles/noisy/handlers/main.yml", ROLE_HANDLERS);
    write(d.path(), "filter_plugins/shout.py", FILTER);
    let pb = d.path().join("site.yml");
    let knockplay = || {
        let mut c = Command::new(env!("CARGO_BIN_EXE_knockplay"));
        c.arg("run")
            .arg("--known-hosts")
            .arg(bed.dir().join("kp_known_hosts"));
        c
    };
    for round in ["first", "second"] {
        let (k, ktext) = run(knockplay(), &pb, &bed, &kh.name);
        assert!(k.status.success(), "{ktext}");
        let (a, atext) = run(Command::new(ansible_playbook()), &pb, &bed, &ah.name);
        assert!(a.status.success(), "{atext}");
        assert_eq!(
            recap(&ktext, &kh.name),
            recap(&atext, &ah.name),
            "{round} run: recap differs\n--- knockplay\n{ktext}\n--- ansible\n{atext}"
        );
        assert!(
            ktext.contains(
                "filter_plugins/shout.py: Python plugins are not supported by knockplay (filters it defines: shout)"
            ),
            "{ktext}"
        );
    }
    let (ks, ans) = (state(kh), state(ah));
    assert_eq!(ks, ans, "knockplay (left) vs ansible (right)");
    // What the comparison rests on, in plain words.
    assert!(ks.contains("\"booted\": true"), "{ks}");
    assert!(ks.contains("\"role\": \"web\""), "{ks}");
    assert!(ks.contains("== d-home\n755 dlate"), "{ks}");
    assert!(
        ks.contains("== d-handler\nhandler\nhandler\n=="),
        "once per run: {ks}"
    );
}
