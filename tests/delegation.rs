//! Tasks that run somewhere other than the target: a play for the implicit localhost,
//! `local_action`, `delegate_to: localhost` (also on a block), and a play with
//! `connection: local`, run by knockplay against one test host and by real `ansible-playbook`
//! against its twin: the same files on the controller and on the targets, and knockplay's
//! second run changes nothing. A task delegated to another inventory host runs there, over a
//! session of its own, with the target's variables (knockplay used to run it on the target).

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use common::TestBed;

const PLAYBOOK: &str = r#"
- hosts: localhost
  gather_facts: false
  tasks:
    - name: a play for the implicit localhost runs on the controller
      copy: {content: "controller\n", dest: "{{ out }}/play-local.txt", mode: "0644"}

- hosts: "{{ target }}"
  gather_facts: false
  tasks:
    - command: cat /etc/hostname
      register: hn
      changed_when: false
    - name: local_action
      local_action: copy content="{{ hn.stdout }}\n" dest={{ out }}/from-{{ inventory_hostname }}.txt mode=0644
    - name: delegate_to localhost
      lineinfile: {path: "{{ out }}/delegated.txt", line: "seen {{ inventory_hostname }}", create: true, mode: "0644"}
      delegate_to: localhost
    - name: on the target
      copy: {content: "target\n", dest: /tmp/on-target.txt, mode: "0644"}
    - block:
        - copy: {content: "block\n", dest: "{{ out }}/block.txt", mode: "0644"}
      delegate_to: 127.0.0.1

- hosts: "{{ target }}"
  connection: local
  gather_facts: false
  tasks:
    - copy: {content: "play connection local\n", dest: "{{ out }}/conn-local-{{ inventory_hostname }}.txt", mode: "0644"}
"#;

fn ansible_playbook() -> PathBuf {
    let venv = std::env::var_os("KNOCKPLAY_VENV")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(".venv"));
    venv.join("bin/ansible-playbook")
}

fn check(out: Output, what: &str) -> String {
    let text = format!(
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{what}: {text}");
    text
}

fn knockplay(bed: &TestBed, pb: &Path, extra: &[String]) -> Output {
    let mut c = Command::new(env!("CARGO_BIN_EXE_knockplay"));
    c.arg("run")
        .arg(pb)
        .arg("-i")
        .arg(bed.inventory_file())
        .arg("--known-hosts")
        .arg(bed.dir().join("kp_known_hosts"))
        .env("NO_COLOR", "1");
    for e in extra {
        c.args(["-e", e]);
    }
    c.output().unwrap()
}

/// Every file under `dir` with its mode and contents, host names made alike.
fn listing(dir: &Path, host: &str) -> String {
    let mut names: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    names.sort();
    let mut s = String::new();
    for p in names {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&p).unwrap().permissions().mode() & 0o7777;
        let text = std::fs::read_to_string(&p).unwrap();
        let name = p.file_name().unwrap().to_string_lossy().into_owned();
        s.push_str(&format!("{name} {mode:o}\n{text}"));
    }
    s.replace(host, "HOST")
}

#[test]
fn delegated_and_local_tasks_run_on_the_controller_like_ansible() {
    let bed = TestBed::start(2).expect("test bed");
    let d = tempfile::tempdir().unwrap();
    let pb = d.path().join("site.yml");
    std::fs::write(&pb, PLAYBOOK).unwrap();
    let (kp_out, an_out) = (d.path().join("kp"), d.path().join("an"));
    std::fs::create_dir_all(&kp_out).unwrap();
    std::fs::create_dir_all(&an_out).unwrap();
    let (h0, h1) = (&bed.hosts[0], &bed.hosts[1]);

    let kp_vars = [
        format!("out={}", kp_out.display()),
        format!("target={}", h0.name),
    ];
    check(knockplay(&bed, &pb, &kp_vars), "knockplay");
    let an = Command::new(ansible_playbook())
        .arg(&pb)
        .arg("-i")
        .arg(bed.inventory_file())
        .args(["-e", &format!("out={}", an_out.display())])
        .args(["-e", &format!("target={}", h1.name)])
        .env("ANSIBLE_HOST_KEY_CHECKING", "False")
        .env("ANSIBLE_NOCOLOR", "1")
        .env("ANSIBLE_LOCAL_TEMP", bed.dir().join("ansible-tmp"))
        .output()
        .unwrap();
    check(an, "ansible-playbook");

    let (a, b) = (listing(&kp_out, &h0.name), listing(&an_out, &h1.name));
    assert_eq!(
        a, b,
        "knockplay (left) and ansible (right) on the controller"
    );
    assert!(a.contains("delegated.txt 644\nseen HOST\n"), "{a}");
    assert!(a.contains("from-HOST.txt 644\nHOST\n"), "{a}");
    for h in [h0, h1] {
        assert_eq!(
            h.read_to_string("/tmp/on-target.txt").as_deref(),
            Some("target\n")
        );
        // Nothing meant for the controller landed on the target.
        assert!(!h.exists(&kp_out.display().to_string()));
        assert!(!h.exists(&an_out.display().to_string()));
    }

    let again = check(knockplay(&bed, &pb, &kp_vars), "knockplay again");
    let recap = again.split("PLAY RECAP").nth(1).unwrap_or("");
    assert!(!recap.contains("changed=1"), "{again}");
    assert!(
        recap.contains("localhost") && recap.contains(&h0.name),
        "{again}"
    );
}

#[test]
fn a_task_delegated_to_another_host_runs_there_with_the_targets_variables_like_ansible() {
    let bed = TestBed::start(4).expect("test bed");
    let d = tempfile::tempdir().unwrap();
    let pb = d.path().join("other.yml");
    std::fs::write(
        &pb,
        "- hosts: \"{{ target }}\"\n  gather_facts: false\n  tasks:\n    - copy: {content: \"from {{ inventory_hostname }}\\n\", dest: /tmp/delegated-from}\n      delegate_to: \"{{ delegate }}\"\n",
    )
    .unwrap();
    let h = &bed.hosts;
    let vars = |t: &common::Host, dl: &common::Host| {
        [
            format!("target={}", t.name),
            format!("delegate={}", dl.name),
        ]
    };
    check(knockplay(&bed, &pb, &vars(&h[0], &h[1])), "knockplay");
    let mut an = Command::new(ansible_playbook());
    an.arg(&pb).arg("-i").arg(bed.inventory_file());
    for v in vars(&h[2], &h[3]) {
        an.args(["-e", &v]);
    }
    let an = an
        .env("ANSIBLE_HOST_KEY_CHECKING", "False")
        .env("ANSIBLE_NOCOLOR", "1")
        .env("ANSIBLE_LOCAL_TEMP", bed.dir().join("ansible-tmp"))
        .output()
        .unwrap();
    check(an, "ansible-playbook");
    for (target, delegate) in [(&h[0], &h[1]), (&h[2], &h[3])] {
        assert!(!target.exists("/tmp/delegated-from"), "{}", target.name);
        assert_eq!(
            delegate.read_to_string("/tmp/delegated-from"),
            Some(format!("from {}\n", target.name))
        );
    }
}

#[test]
fn run_once_runs_on_the_first_host_and_shares_its_result_like_ansible() {
    let bed = TestBed::start(4).expect("test bed");
    let d = tempfile::tempdir().unwrap();
    let pb = d.path().join("once.yml");
    std::fs::write(
        &pb,
        r#"
- hosts: "{{ targets }}"
  gather_facts: false
  tasks:
    - command: cat /etc/hostname
      register: who
      run_once: true
      changed_when: false
    - copy: {content: "{{ who.stdout }}\n", dest: /tmp/who.txt, mode: "0644"}
    - shell: echo once >> /tmp/once-count
      run_once: true
"#,
    )
    .unwrap();
    let h = &bed.hosts;
    let kp_targets = format!("targets={}:{}", h[0].name, h[1].name);
    check(knockplay(&bed, &pb, &[kp_targets]), "knockplay");
    let an = Command::new(ansible_playbook())
        .arg(&pb)
        .arg("-i")
        .arg(bed.inventory_file())
        .args(["-e", &format!("targets={}:{}", h[2].name, h[3].name)])
        .env("ANSIBLE_HOST_KEY_CHECKING", "False")
        .env("ANSIBLE_NOCOLOR", "1")
        .env("ANSIBLE_LOCAL_TEMP", bed.dir().join("ansible-tmp"))
        .output()
        .unwrap();
    check(an, "ansible-playbook");
    let state = |first: &common::Host, second: &common::Host| {
        [first, second]
            .iter()
            .map(|x| {
                let r =
                    x.exec("cat /tmp/who.txt; cat /tmp/once-count 2>/dev/null || echo no-count");
                r.stdout
                    .replace(&first.name, "FIRST")
                    .replace(&second.name, "SECOND")
            })
            .collect::<Vec<_>>()
    };
    let kp = state(&h[0], &h[1]);
    assert_eq!(
        kp,
        state(&h[2], &h[3]),
        "knockplay (left) and ansible (right)"
    );
    assert_eq!(kp, ["FIRST\nonce\n", "FIRST\nno-count\n"]);
}

#[test]
fn delegate_facts_gives_gathered_and_set_facts_to_the_delegated_host_like_ansible() {
    let bed = TestBed::start(4).expect("test bed");
    let d = tempfile::tempdir().unwrap();
    let pb = d.path().join("facts.yml");
    std::fs::write(
        &pb,
        r#"
- hosts: "{{ first }}"
  gather_facts: false
  tasks:
    - setup:
      delegate_to: "{{ second }}"
      delegate_facts: true
    - copy:
        content: "{{ hostvars[second].ansible_hostname is defined }} {{ ansible_hostname is defined }}\n"
        dest: /tmp/df-first
    - set_fact: {marker: from-first}
      delegate_to: "{{ second }}"
      delegate_facts: true
    - setup:
      delegate_to: "{{ second }}"
    - copy:
        content: "{{ ansible_hostname == hostvars[second].ansible_hostname }} {{ marker | default('unset') }}\n"
        dest: /tmp/df-plain
- hosts: "{{ second }}"
  gather_facts: false
  tasks:
    - copy:
        content: "{{ ansible_hostname is defined }} {{ marker }}\n"
        dest: /tmp/df-second
"#,
    )
    .unwrap();
    let h = &bed.hosts;
    let pair = |a: &common::Host, b: &common::Host| {
        vec![format!("first={}", a.name), format!("second={}", b.name)]
    };
    check(knockplay(&bed, &pb, &pair(&h[0], &h[1])), "knockplay");
    let mut an = Command::new(ansible_playbook());
    an.arg(&pb).arg("-i").arg(bed.inventory_file());
    for e in pair(&h[2], &h[3]) {
        an.args(["-e", &e]);
    }
    let an = an
        .env("ANSIBLE_HOST_KEY_CHECKING", "False")
        .env("ANSIBLE_NOCOLOR", "1")
        .env("ANSIBLE_LOCAL_TEMP", bed.dir().join("ansible-tmp"))
        .output()
        .unwrap();
    check(an, "ansible-playbook");
    let state = |first: &common::Host, second: &common::Host| {
        let a = first.exec("cat /tmp/df-first /tmp/df-plain").stdout;
        let b = second.exec("cat /tmp/df-second").stdout;
        format!("{a}{b}")
    };
    let kp = state(&h[0], &h[1]);
    assert_eq!(
        kp,
        state(&h[2], &h[3]),
        "knockplay (left) and ansible (right)"
    );
    assert_eq!(kp, "True False\nTrue unset\nTrue from-first\n");
}
