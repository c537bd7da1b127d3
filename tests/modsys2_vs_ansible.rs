//! Differential test of authorized_key, getent, hostname, sysctl, fetch and mount: one playbook
//! run by `knockplay run` on one fresh test host and by ansible-playbook (with the ansible.posix
//! collection) on its twin. Compared: every registered result's changed/failed/msg and module
//! keys, the getent facts as the play sees them, authorized_keys bytes, modes and owners,
//! /etc/sysctl.conf, /etc/fstab, /etc/hostname, and the fetched files on the controller; a
//! check-mode run first (changes nothing), then the run, then a second run (changed=0).
//! Needs the venv with ansible-playbook (`$KNOCKPLAY_VENV`).

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use common::twin::{ansible_playbook, knockplay, run_playbook, text};
use common::{Host, TestBed};
use serde_json::Value;

const K1: &str = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIKp1 alice@one";
const K2: &str = "ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAABAQKp2 bob@two";

fn playbook() -> String {
    format!(
        r#"
- hosts: "{{{{ target }}}}"
  gather_facts: false
  tasks:
    - authorized_key: {{user: alice, key: "{K1}"}}
      register: r01
    - ansible.posix.authorized_key: {{user: alice, key: "{K2}", key_options: 'no-pty,from="10.0.0.1"', comment: second}}
      register: r02
    - authorized_key: {{user: alice, key: "{K1}", state: absent, path: /etc/kp_keys/alice}}
      register: r03
    - authorized_key: {{user: carol, key: "{K1}\n{K2}", exclusive: true}}
      register: r04
    - authorized_key: {{user: nobody_here, key: "{K1}"}}
      register: r05
      ignore_errors: true
    - getent: {{database: passwd, key: alice}}
      register: r06
    - getent: {{database: group}}
      register: r07
    - getent: {{database: passwd, key: nobody_here, fail_key: false}}
      register: r08
    - getent: {{database: hosts, key: localhost}}
      register: r09
    - sysctl: {{name: net.ipv4.ip_forward, value: "1", reload: false}}
      register: r10
    - ansible.posix.sysctl: {{name: vm.swappiness, value: " 10 ", sysctl_file: /etc/sysctl.d/90-kp.conf, reload: false}}
      register: r11
    - sysctl: {{name: kernel.kp_old, state: absent, reload: false}}
      register: r12
    - sysctl: {{name: vm.overcommit_memory, value: "1", sysctl_file: /etc/sysctl.d/91-kp.conf}}
      register: r13
      ignore_errors: true
    - hostname: {{name: kp-renamed.example.test}}
      register: r14
    - fetch: {{src: /etc/kp-fetch.txt, dest: "{{{{ fetch_dir }}}}"}}
      register: r15
    - fetch: {{src: /etc/kp-fetch.txt, dest: "{{{{ fetch_dir }}}}/flat/", flat: true}}
      register: r16
    - fetch: {{src: /etc/nope.txt, dest: "{{{{ fetch_dir }}}}", fail_on_missing: false}}
      register: r17
    - mount: {{path: /mnt/kp data, src: /dev/kpdisk1, fstype: ext4, opts: "noatime", state: present}}
      register: r18
    - ansible.posix.mount: {{path: /srv/old, state: absent_from_fstab}}
      register: r19
    - mount: {{path: /mnt/kp-tmp, src: tmpfs, fstype: tmpfs, state: mounted, fstab: /etc/kp-fstab}}
      register: r20
      ignore_errors: true
    - copy:
        dest: /tmp/kp-results.json
        content: "{{{{ [r01, r02, r03, r04, r05, r06, r07, r08, r09, r10, r11, r12, r13, r14, r15, r16, r17, r18, r19, r20] | to_json }}}}"
      changed_when: false
      check_mode: false
    - copy:
        dest: /tmp/kp-facts.json
        content: "{{{{ {{'passwd': getent_passwd, 'group_root': ansible_facts.getent_group.root, 'hosts': getent_hosts}} | to_json }}}}"
      changed_when: false
      check_mode: false
"#
    )
}

/// The state both hosts start from.
const PREPARE: &str = "echo kp-twin > /etc/hostname && useradd -m alice && useradd -m -s /bin/sh carol && mkdir -p /home/carol/.ssh \
 && printf '# old\\nssh-rsa AAAAold carol@old\\n' > /home/carol/.ssh/authorized_keys \
 && mkdir -p /etc/kp_keys && printf '%s\\n' 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIKp1 x' > /etc/kp_keys/alice \
 && printf '# sysctl\\nkernel.kp_old = 3\\nnet.ipv4.ip_forward = 0\\nfs.x=1\\nfs.x=2' > /etc/sysctl.conf \
 && printf 'kp fetch\\n' > /etc/kp-fetch.txt && chmod 0640 /etc/kp-fetch.txt \
 && printf '# fstab\\n/dev/sdz9 /srv/old ext4 defaults 0 0\\nproc /proc proc defaults 0 0\\n' > /etc/fstab \
 && : > /etc/kp-fstab";

fn run(c: Command, pb: &Path, bed: &TestBed, target: &str, fetch: &Path, extra: &[&str]) -> Output {
    let vars = [
        format!("target={target}"),
        format!("fetch_dir={}", fetch.display()),
    ];
    run_playbook(c, pb, bed, &vars, extra)
}

struct Twins<'a> {
    bed: &'a TestBed,
    pb: PathBuf,
    k: &'a Host,
    a: &'a Host,
    kf: PathBuf,
    af: PathBuf,
}

impl Twins<'_> {
    fn both(&self, extra: &[&str]) -> (String, String) {
        let kp = knockplay(env!("CARGO_BIN_EXE_knockplay"), self.bed);
        let ko = run(kp, &self.pb, self.bed, &self.k.name, &self.kf, extra);
        let ao = run(
            Command::new(ansible_playbook()),
            &self.pb,
            self.bed,
            &self.a.name,
            &self.af,
            extra,
        );
        let (kt, at) = (text(&ko), text(&ao));
        assert!(ko.status.success(), "knockplay failed:\n{kt}");
        assert!(ao.status.success(), "ansible-playbook failed:\n{at}");
        (kt, at)
    }
}

/// The registered results, reduced to the keys both tools report, host names and fetch
/// directories made comparable.
fn results(h: &Host, fetch: &Path) -> Vec<Value> {
    let raw = h
        .read_to_string("/tmp/kp-results.json")
        .expect("results file");
    let raw = raw
        .replace(&fetch.display().to_string(), "FETCH")
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
                "key",
                "key_options",
                "keyfile",
                "user",
                "exclusive",
                "manage_dir",
                "path",
                "state",
                "validate_certs",
                "comment",
                "follow",
                "ansible_facts",
                "name",
                "checksum",
                "dest",
                "file",
                "md5sum",
                "remote_checksum",
                "remote_md5sum",
                "opts",
                "dump",
                "passno",
                "fstab",
                "boot",
                "src",
                "fstype",
                "backup_file",
            ] {
                let Some(v) = r.get(k) else { continue };
                if k == "failed" && v == &Value::Bool(false) {
                    continue;
                }
                // The FQDN facts come from each host's resolver.
                let mut v = v.clone();
                if let Some(f) = v.as_object_mut() {
                    f.remove("ansible_fqdn");
                    f.remove("ansible_domain");
                }
                o.insert(k.to_string(), v);
            }
            Value::Object(o)
        })
        .collect()
}

/// What a user would compare on the two hosts.
fn host_state(h: &Host) -> String {
    h.exec(
        "for f in /home/alice/.ssh /home/alice/.ssh/authorized_keys /home/carol/.ssh/authorized_keys \
         /etc/kp_keys/alice /etc/sysctl.conf /etc/sysctl.d/90-kp.conf /etc/sysctl.d/91-kp.conf \
         /etc/fstab /etc/kp-fstab /etc/hostname; do [ -e \"$f\" ] || { echo \"== $f absent\"; continue; }; \
         echo \"== $f $(stat -c '%a %U %G' \"$f\")\"; [ -f \"$f\" ] && cat \"$f\"; done; \
         [ -e '/mnt/kp data' ] && echo mnt-made; [ -e /mnt/kp-tmp ] && echo tmp-made; true",
    )
    .stdout
}

fn fetched(dir: &Path, host: &str) -> Vec<(String, Vec<u8>, u32)> {
    use std::os::unix::fs::PermissionsExt;
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(rd) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in rd.flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else {
                let rel = p
                    .strip_prefix(dir)
                    .unwrap()
                    .display()
                    .to_string()
                    .replace(host, "HOST");
                let mode = std::fs::metadata(&p).unwrap().permissions().mode() & 0o777;
                out.push((rel, std::fs::read(&p).unwrap(), mode));
            }
        }
    }
    out.sort();
    out
}

fn changed_count(out: &str) -> Option<String> {
    out.lines()
        .find(|l| l.contains("changed=") && l.contains("ok="))
        .and_then(|l| l.split_whitespace().find(|w| w.starts_with("changed=")))
        .map(str::to_string)
}

#[test]
fn posix_modules_match_ansible() {
    if !ansible_playbook().exists() {
        assert!(
            std::env::var_os("CI").is_none(),
            "ansible-playbook not found: set KNOCKPLAY_VENV"
        );
        eprintln!("skipping: ansible-playbook not found");
        return;
    }
    let bed = TestBed::start(2).expect("test bed");
    let (k, a) = (&bed.hosts[0], &bed.hosts[1]);
    for h in [k, a] {
        let r = h.exec(PREPARE);
        assert!(r.ok(), "{}", r.stderr);
    }
    let d = tempfile::tempdir().unwrap();
    let pb = d.path().join("posix.yml");
    std::fs::write(&pb, playbook()).unwrap();
    let t = Twins {
        bed: &bed,
        pb,
        k,
        a,
        kf: d.path().join("kfetch"),
        af: d.path().join("afetch"),
    };
    let initial = host_state(k);
    assert_eq!(initial, host_state(a));

    // Check mode: the same verdicts, nothing changed.
    t.both(&["--check"]);
    let (rk, ra) = (results(k, &t.kf), results(a, &t.af));
    for (i, (x, y)) in rk.iter().zip(&ra).enumerate() {
        assert_eq!(x, y, "check mode, task r{:02}: knockplay vs Ansible", i + 1);
    }
    assert_eq!(
        host_state(k),
        initial,
        "knockplay's check mode changed the host"
    );
    assert_eq!(host_state(a), initial);

    // The run.
    t.both(&[]);
    let (rk, ra) = (results(k, &t.kf), results(a, &t.af));
    for (i, (x, y)) in rk.iter().zip(&ra).enumerate() {
        assert_eq!(x, y, "task r{:02}: knockplay vs Ansible", i + 1);
    }
    assert_eq!(rk.len(), ra.len());
    let after = host_state(k);
    assert_eq!(after, host_state(a), "hosts differ after the run");
    let facts = |h: &Host| h.read_to_string("/tmp/kp-facts.json").unwrap();
    assert_eq!(facts(k), facts(a), "getent facts differ");
    assert_eq!(
        fetched(&t.kf, &k.name),
        fetched(&t.af, &a.name),
        "fetched files differ"
    );

    // A second run changes nothing.
    let (kt, at) = t.both(&[]);
    assert_eq!(changed_count(&at).as_deref(), Some("changed=0"), "{at}");
    assert_eq!(changed_count(&kt).as_deref(), Some("changed=0"), "{kt}");
    assert_eq!(
        results(k, &t.kf),
        results(a, &t.af),
        "second-run results differ"
    );
}
