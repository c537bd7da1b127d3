//! Keywords that used to be accepted and ignored, now honoured, against real ansible-playbook on
//! twin host pairs: `module_defaults` (play and block, FQCN keys, explicit arguments win),
//! `throttle`, task `connection: local`, `any_errors_fatal` (the run stops: no later task or
//! play on any host), and `diff: false` hiding a task's diff under `--diff`.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use common::{Host, TestBed};

const PLAYBOOK: &str = r#"
- hosts: "{{ targets }}"
  gather_facts: false
  module_defaults:
    file: {mode: "0640"}
    ansible.builtin.copy: {mode: "0600"}
  tasks:
    - file: {path: /tmp/md-file, state: touch}
    - copy: {content: "x\n", dest: /tmp/md-copy}
    - copy: {content: "y\n", dest: /tmp/md-explicit, mode: "0644"}
    - block:
        - copy: {content: "z\n", dest: /tmp/md-block}
      module_defaults:
        copy: {mode: "0604"}
    - shell: "hostname >> /tmp/throttled"
      throttle: 1
    - copy: {content: "{{ inventory_hostname }}\n", dest: "{{ out }}/conn-{{ inventory_hostname }}", mode: "0644"}
      connection: local
    - copy: {content: "secret-diff-text\n", dest: /tmp/nodiff}
      diff: false

- hosts: "{{ targets }}"
  gather_facts: false
  any_errors_fatal: true
  tasks:
    - command: /bin/false
      when: inventory_hostname == first_host
    - copy: {content: "after\n", dest: /tmp/after-fatal}

- hosts: "{{ targets }}"
  gather_facts: false
  tasks:
    - copy: {content: "next play\n", dest: /tmp/next-play}
"#;

fn ansible_playbook() -> PathBuf {
    let venv = std::env::var_os("KNOCKPLAY_VENV")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(".venv"));
    venv.join("bin/ansible-playbook")
}

fn vars(out: &Path, a: &Host, b: &Host) -> [String; 3] {
    [
        format!("out={}", out.display()),
        format!("targets={}:{}", a.name, b.name),
        format!("first_host={}", a.name),
    ]
}

fn run(mut c: Command, pb: &Path, bed: &TestBed, extra: &[String]) -> Output {
    c.arg(pb).arg("-i").arg(bed.inventory_file());
    for e in extra {
        c.args(["-e", e]);
    }
    c.env("NO_COLOR", "1")
        .env("ANSIBLE_NOCOLOR", "1")
        .env("ANSIBLE_HOST_KEY_CHECKING", "False")
        .env("ANSIBLE_LOCAL_TEMP", bed.dir().join("ansible-tmp"))
        .output()
        .unwrap()
}

fn state(h: &Host, first: &Host, second: &Host) -> String {
    let r = h.exec(
        "cd /tmp && for f in md-file md-copy md-explicit md-block nodiff after-fatal next-play; do \
         if [ -e $f ]; then echo \"$f $(stat -c %a $f)\"; else echo \"$f absent\"; fi; done; \
         sort throttled 2>/dev/null",
    );
    r.stdout
        .replace(&first.name, "FIRST")
        .replace(&second.name, "SECOND")
}

#[test]
fn honoured_keywords_match_ansible() {
    let bed = TestBed::start(4).expect("test bed");
    let h = &bed.hosts;
    let d = tempfile::tempdir().unwrap();
    let pb = d.path().join("site.yml");
    std::fs::write(&pb, PLAYBOOK).unwrap();
    let (kp_out, an_out) = (d.path().join("kp"), d.path().join("an"));
    std::fs::create_dir_all(&kp_out).unwrap();
    std::fs::create_dir_all(&an_out).unwrap();

    let mut kp = Command::new(env!("CARGO_BIN_EXE_knockplay"));
    kp.arg("run")
        .arg("--diff")
        .arg("--known-hosts")
        .arg(bed.dir().join("kp_known_hosts"));
    let k = run(kp, &pb, &bed, &vars(&kp_out, &h[0], &h[1]));
    let ktext = format!(
        "{}{}",
        String::from_utf8_lossy(&k.stdout),
        String::from_utf8_lossy(&k.stderr)
    );
    let mut an = Command::new(ansible_playbook());
    an.arg("--diff");
    let a = run(an, &pb, &bed, &vars(&an_out, &h[2], &h[3]));
    let atext = format!(
        "{}{}",
        String::from_utf8_lossy(&a.stdout),
        String::from_utf8_lossy(&a.stderr)
    );
    // Both fail (the fatal task) and stop there.
    assert_eq!(k.status.code(), Some(2), "{ktext}");
    assert!(!a.status.success(), "{atext}");

    for (x, y) in [(0, 2), (1, 3)] {
        let (ks, ans) = (state(&h[x], &h[0], &h[1]), state(&h[y], &h[2], &h[3]));
        assert_eq!(
            ks, ans,
            "knockplay (left) vs ansible (right) on host pair {x}/{y}"
        );
    }
    let s = state(&h[0], &h[0], &h[1]);
    for want in [
        "md-file 640",
        "md-copy 600",
        "md-explicit 644",
        "md-block 604",
        "after-fatal absent",
        "next-play absent",
    ] {
        assert!(s.contains(want), "{want}: {s}");
    }
    // connection: local wrote on the controller, for each host.
    for (dir, a, b) in [(&kp_out, &h[0], &h[1]), (&an_out, &h[2], &h[3])] {
        for x in [a, b] {
            let f = dir.join(format!("conn-{}", x.name));
            assert_eq!(
                std::fs::read_to_string(&f).unwrap(),
                format!("{}\n", x.name)
            );
        }
    }
    assert!(!ktext.contains("secret-diff-text"), "{ktext}");
    assert!(
        ktext.contains("/tmp/md-copy"),
        "--diff shows the other diffs: {ktext}"
    );
}

#[test]
fn add_host_and_group_by_shape_the_plays_that_follow_like_ansible() {
    let bed = TestBed::start(4).expect("test bed");
    let h = &bed.hosts;
    let d = tempfile::tempdir().unwrap();
    let pb = d.path().join("dynamic.yml");
    std::fs::write(
        &pb,
        r#"
- hosts: "{{ first }}"
  gather_facts: false
  tasks:
    - add_host: {name: "{{ second }}", groups: [dynamic], role_note: added}
    - group_by: {key: "os_{{ 'debian' }}"}
- hosts: dynamic
  gather_facts: false
  tasks:
    - copy: {content: "{{ role_note }} {{ groups['dynamic'] | join(',') }}\n", dest: /tmp/dynamic}
- hosts: os_debian
  gather_facts: false
  tasks:
    - copy: {content: "grouped\n", dest: /tmp/grouped}
"#,
    )
    .unwrap();
    let pair = |a: &Host, b: &Host| [format!("first={}", a.name), format!("second={}", b.name)];
    let mut kp = Command::new(env!("CARGO_BIN_EXE_knockplay"));
    kp.arg("run")
        .arg("--known-hosts")
        .arg(bed.dir().join("kp_known_hosts"));
    let k = run(kp, &pb, &bed, &pair(&h[0], &h[1]));
    assert!(
        k.status.success(),
        "{}{}",
        String::from_utf8_lossy(&k.stdout),
        String::from_utf8_lossy(&k.stderr)
    );
    let a = run(
        Command::new(ansible_playbook()),
        &pb,
        &bed,
        &pair(&h[2], &h[3]),
    );
    assert!(
        a.status.success(),
        "{}{}",
        String::from_utf8_lossy(&a.stdout),
        String::from_utf8_lossy(&a.stderr)
    );
    let look = |x: &Host, first: &Host, second: &Host| {
        x.exec("cat /tmp/dynamic /tmp/grouped 2>&1")
            .stdout
            .replace(&first.name, "FIRST")
            .replace(&second.name, "SECOND")
    };
    for (x, y) in [(0, 2), (1, 3)] {
        assert_eq!(
            look(&h[x], &h[0], &h[1]),
            look(&h[y], &h[2], &h[3]),
            "knockplay (left) vs ansible (right) on host pair {x}/{y}"
        );
    }
    assert!(look(&h[1], &h[0], &h[1]).contains("added SECOND\n"));
    assert!(look(&h[0], &h[0], &h[1]).contains("grouped\n"));
}
