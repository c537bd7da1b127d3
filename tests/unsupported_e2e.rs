//! A module knockplay lacks fails when its task would run, as Ansible fails a task, not the whole
//! playbook at parse time: a multi-OS role whose RedHat branch uses `dnf5` (statically
//! and through `include_tasks`) still configures a Debian host, `--syntax-check` lists those tasks
//! as warnings with file:line:col, and a task that does run fails naming the module and its place.

mod common;

use std::path::Path;
use std::process::{Command, Output};

use common::TestBed;

const ROLE_TASKS: &str = r#"- name: install with dnf5
  dnf5: {name: httpd, state: present}
  when: ansible_os_family == "RedHat"
- include_tasks: "{{ ansible_os_family }}.yml"
- name: common file
  copy: {content: "common\n", dest: /tmp/unsupported-common, mode: "0644"}
"#;

const REDHAT: &str = r#"- name: install with dnf5 too
  dnf5: {name: httpd, state: present}
"#;

const DEBIAN: &str = r#"- name: debian branch
  copy: {content: "debian\n", dest: /tmp/unsupported-debian, mode: "0644"}
"#;

const SITE: &str = r#"- hosts: all
  roles: [multi_os]
  tasks:
    - name: only on RedHat
      ansible.builtin.dnf5: {name: httpd}
      when: ansible_os_family == "RedHat"
    - name: after
      copy: {content: "after\n", dest: /tmp/unsupported-after, mode: "0644"}
"#;

const RUNS: &str = r#"- hosts: all
  gather_facts: false
  tasks:
    - name: before
      copy: {content: "before\n", dest: /tmp/unsupported-before, mode: "0644"}
    - name: clone it
      subversion: {repo: 'svn://example.test/x', dest: /tmp/x}
    - name: never reached
      copy: {content: "no\n", dest: /tmp/unsupported-never, mode: "0644"}
"#;

fn write(dir: &Path, rel: &str, text: &str) {
    let p = dir.join(rel);
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(p, text).unwrap();
}

fn knockplay(bed: &TestBed, args: &[&str]) -> (Output, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_knockplay"))
        .arg("run")
        .args(args)
        .arg("-i")
        .arg(bed.inventory_file())
        .arg("--known-hosts")
        .arg(bed.dir().join("kp_known_hosts"))
        .env("NO_COLOR", "1")
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out, text)
}

#[test]
fn modules_knockplay_lacks_fail_only_where_their_task_runs() {
    let bed = TestBed::start(1).expect("test bed");
    let host = &bed.hosts[0];
    let d = tempfile::tempdir().unwrap();
    write(d.path(), "roles/multi_os/tasks/main.yml", ROLE_TASKS);
    write(d.path(), "roles/multi_os/tasks/RedHat.yml", REDHAT);
    write(d.path(), "roles/multi_os/tasks/Debian.yml", DEBIAN);
    write(d.path(), "site.yml", SITE);
    write(d.path(), "runs.yml", RUNS);
    let site = d.path().join("site.yml");
    let site_s = site.to_str().unwrap();

    // --syntax-check accepts it and names both static tasks (the dynamic include is read at run time).
    let (out, text) = knockplay(&bed, &["--syntax-check", site_s]);
    assert_eq!(out.status.code(), Some(0), "{text}");
    let role_file = d.path().join("roles/multi_os/tasks/main.yml");
    for want in [
        format!(
            "[WARNING]: {}:1:3: task 'multi_os : install with dnf5': module 'dnf5' is not supported by knockplay; the task fails if it runs",
            role_file.display()
        ),
        format!(
            "[WARNING]: {site_s}:4:7: task 'only on RedHat': module 'dnf5' is not supported by knockplay; the task fails if it runs"
        ),
    ] {
        assert!(text.contains(&want), "missing {want:?} in:\n{text}");
    }

    // On Debian every RedHat task is skipped and the run succeeds; the second run changes nothing.
    let (out, text) = knockplay(&bed, &[site_s]);
    assert_eq!(out.status.code(), Some(0), "{text}");
    assert_eq!(
        host.read_to_string("/tmp/unsupported-debian").as_deref(),
        Some("debian\n")
    );
    assert_eq!(
        host.read_to_string("/tmp/unsupported-after").as_deref(),
        Some("after\n")
    );
    let (out, text) = knockplay(&bed, &[site_s]);
    assert_eq!(out.status.code(), Some(0), "{text}");
    assert!(text.contains("changed=0"), "{text}");
    assert!(text.contains("failed=0"), "{text}");

    // A task that runs fails, naming the module and where the task is; the host stops there.
    let runs = d.path().join("runs.yml");
    let (out, text) = knockplay(&bed, &[runs.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2), "{text}");
    let want = format!(
        "module 'subversion' is not supported by knockplay. The error appears to be in '{}:6:7' (task 'clone it', host host0)",
        runs.display()
    );
    assert!(text.contains(&want), "missing {want:?} in:\n{text}");
    assert!(text.contains("failed=1"), "{text}");
    assert!(host.exists("/tmp/unsupported-before"));
    assert!(!host.exists("/tmp/unsupported-never"));
    assert!(!host.exists("/tmp/x"));
}
