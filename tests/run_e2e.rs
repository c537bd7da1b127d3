//! `knockplay run` end to end: real sshd in test-host containers, real files checked on the hosts.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::TestBed;

struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

impl Run {
    fn all(&self) -> String {
        format!("--- stdout\n{}\n--- stderr\n{}", self.stdout, self.stderr)
    }
    /// Sum of `changed=N` over the recap lines.
    fn changed(&self) -> u32 {
        recap_sum(&self.stdout, "changed")
    }
}

fn recap_sum(out: &str, key: &str) -> u32 {
    let recap = out.split("PLAY RECAP").nth(1).unwrap_or("");
    recap
        .split_whitespace()
        .filter_map(|w| w.strip_prefix(&format!("{key}=")))
        .filter_map(|n| n.parse::<u32>().ok())
        .sum()
}

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn knockplay(bed: &TestBed, args: &[&str]) -> Run {
    let out = Command::new(env!("CARGO_BIN_EXE_knockplay"))
        .args(args)
        .arg("--known-hosts")
        .arg(bed.dir().join("knockplay_known_hosts"))
        .env("NO_COLOR", "1")
        .output()
        .expect("run knockplay");
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

fn run_playbook(bed: &TestBed, playbook: &Path, inventory: &Path, extra: &[&str]) -> Run {
    let pb = playbook.to_str().unwrap();
    let inv = inventory.to_str().unwrap();
    let mut args = vec!["run", pb, "-i", inv];
    args.extend_from_slice(extra);
    knockplay(bed, &args)
}

#[test]
fn classic_apache_playbook_as_sudo_user_then_idempotent() {
    let bed = TestBed::start(1).expect("test bed");
    let inv = bed.inventory_file_as(common::DEPLOY_USER);
    let pb = repo().join("tests/playbooks/apache/site.yml");
    let r = run_playbook(&bed, &pb, &inv, &[]);
    assert_eq!(r.code, 0, "{}", r.all());
    let h = &bed.hosts[0];
    assert!(
        h.package_version("apache2").is_some(),
        "apache2 not installed\n{}",
        r.all()
    );
    assert_eq!(
        h.read_file("/tmp/it_ran.txt").as_deref(),
        Some(&b"it ran\n"[..])
    );
    let (mode, owner, _) = h.file_mode_owner("/tmp/it_ran.txt").unwrap();
    assert_eq!(mode, 0o777);
    assert_eq!(owner, "root", "sudo: yes must write as root");
    assert!(r.changed() >= 2, "{}", r.all());

    let again = run_playbook(&bed, &pb, &inv, &[]);
    assert_eq!(again.code, 0, "{}", again.all());
    assert_eq!(
        again.changed(),
        0,
        "second run must change nothing\n{}",
        again.all()
    );
}

#[test]
fn demo_playbook_configures_and_is_idempotent_without_python() {
    let bed = TestBed::builder()
        .hosts(2)
        .no_python()
        .start()
        .expect("test bed");
    for h in &bed.hosts {
        assert!(!h.exists("/usr/bin/python3"), "host must have no python3");
    }
    let inv = bed.inventory_file();
    let pb = repo().join("playbooks/site.yml");
    let r = run_playbook(&bed, &pb, &inv, &[]);
    assert_eq!(r.code, 0, "{}", r.all());
    for h in &bed.hosts {
        let conf = h.read_to_string("/srv/app/app.conf").expect("app.conf");
        assert!(conf.contains(&format!("name = {}", h.name)), "{conf}");
        assert!(conf.contains(&format!("listen = {}:8080", h.ip)), "{conf}");
        assert_eq!(
            h.file_mode_owner("/srv/app/app.conf"),
            Some((0o640, "app".into(), "app".into()))
        );
        let motd = h.read_to_string("/etc/motd").unwrap();
        assert!(
            motd.starts_with(&format!("Configured by knockplay ({}, Debian", h.name)),
            "{motd}"
        );
        assert!(h
            .read_to_string("/etc/ssh/sshd_config")
            .unwrap()
            .contains("\nPasswordAuthentication no\n"));
        assert!(h.package_version("knockplay-hello").is_some());
        assert!(h.exists("/srv/app/restarted"), "handler ran");
    }
    let again = run_playbook(&bed, &pb, &inv, &[]);
    assert_eq!(again.code, 0, "{}", again.all());
    assert_eq!(again.changed(), 0, "{}", again.all());
    assert!(
        !again.stdout.contains("RUNNING HANDLER") && !again.stdout.contains("TASK [restart app]"),
        "{}",
        again.all()
    );
}

#[test]
fn check_mode_changes_nothing_and_diff_shows_unified_diffs() {
    let bed = TestBed::start(1).expect("test bed");
    let inv = bed.inventory_file();
    let pb = repo().join("tests/playbooks/files_and_lines/site.yml");
    let h = &bed.hosts[0];
    let r = run_playbook(&bed, &pb, &inv, &[]);
    assert_eq!(r.code, 0, "{}", r.all());

    // Drift made by hand: check mode must report it, show it, and leave it alone.
    h.write_file("/opt/kp/etc/hello.txt", b"tampered\n")
        .unwrap();
    h.write_file("/opt/kp/etc/settings", b"alpha=1\ngamma=2\nbeta=9\n")
        .unwrap();
    assert!(h
        .exec("rm -f /opt/kp/data/created && chmod 0600 /opt/kp/etc/config.ini")
        .ok());
    let snapshot = "find /opt/kp -printf '%p %M %u %g %s %T@\\n' | sort; cat /opt/kp/etc/*";
    let before = h.exec(snapshot).stdout;
    let r = run_playbook(&bed, &pb, &inv, &["--check", "--diff"]);
    assert_eq!(r.code, 0, "{}", r.all());
    assert_eq!(
        h.exec(snapshot).stdout,
        before,
        "check mode changed the host\n{}",
        r.all()
    );
    assert!(
        r.changed() >= 3,
        "check mode reports what would change\n{}",
        r.all()
    );
    assert!(
        r.stdout.contains("--- before: /opt/kp/etc/hello.txt"),
        "{}",
        r.all()
    );
    assert!(r.stdout.contains("-tampered\n+hello host0"), "{}", r.all());
    assert!(r.stdout.contains("-beta=9\n+beta=3"), "{}", r.all());

    // The real run repairs the drift, with the same diffs; then nothing is left to do.
    let r = run_playbook(&bed, &pb, &inv, &["--diff"]);
    assert_eq!(r.code, 0, "{}", r.all());
    assert!(r.stdout.contains("-tampered\n+hello host0"), "{}", r.all());
    assert_eq!(
        h.read_to_string("/opt/kp/etc/hello.txt").as_deref(),
        Some("hello host0\n")
    );
    assert_eq!(
        h.read_to_string("/opt/kp/etc/settings").as_deref(),
        Some("alpha=1\ngamma=2\nbeta=3\n")
    );
    assert_eq!(
        h.file_mode_owner("/opt/kp/etc/config.ini").map(|m| m.0),
        Some(0o644)
    );
    let again = run_playbook(&bed, &pb, &inv, &[]);
    assert_eq!(again.changed(), 0, "{}", again.all());
}

#[test]
fn twenty_hosts_each_get_their_own_files() {
    let bed = TestBed::start(20).expect("test bed");
    let inv = bed.inventory_file();
    let dir = tempfile::tempdir().unwrap();
    let pb = dir.path().join("own.yml");
    std::fs::write(
        &pb,
        "- hosts: all\n  gather_facts: no\n  tasks:\n    - copy:\n        content: \"{{ inventory_hostname }} {{ ansible_host }}\\n\"\n        dest: /etc/whoami\n",
    )
    .unwrap();
    let r = run_playbook(&bed, &pb, &inv, &[]);
    assert_eq!(r.code, 0, "{}", r.all());
    assert_eq!(r.changed(), 20, "{}", r.all());
    for h in &bed.hosts {
        let got = h.read_to_string("/etc/whoami").unwrap_or_default();
        assert_eq!(
            got,
            format!("{} {}\n", h.name, h.ip),
            "host {} has someone else's file",
            h.name
        );
    }
}

#[test]
fn error_cases_name_where_and_why() {
    let bed = TestBed::start(1).expect("test bed");
    let inv = bed.inventory_file();
    let dir = tempfile::tempdir().unwrap();
    let write = |name: &str, text: &str| {
        let p = dir.path().join(name);
        std::fs::write(&p, text).unwrap();
        p
    };

    // YAML syntax error: file:line:column, exit 4.
    let p = write(
        "syntax.yml",
        "- hosts: all\n  tasks:\n    - name: x\n      debug: {msg: [unclosed}\n",
    );
    let r = run_playbook(&bed, &p, &inv, &[]);
    assert_eq!(r.code, 4, "{}", r.all());
    assert!(r.stderr.contains("syntax.yml:4:"), "{}", r.all());

    // Unknown module: names it, the task, suggests, exit 4.
    let p = write(
        "module.yml",
        "- hosts: all\n  tasks:\n    - name: copy a file\n      cpy: src=a dest=/tmp/a\n",
    );
    let r = run_playbook(&bed, &p, &inv, &[]);
    assert_eq!(r.code, 4, "{}", r.all());
    assert!(r.stderr.contains("module.yml:4:7"), "{}", r.all());
    assert!(
        r.stderr.contains("'cpy'") && r.stderr.contains("Did you mean 'copy'?"),
        "{}",
        r.all()
    );
    assert!(r.stderr.contains("task 'copy a file'"), "{}", r.all());

    // Unknown parameter: a warning with a suggestion before the run, then the task fails when
    // it runs (as Ansible checks arguments there); exit 2.
    let p = write(
        "param.yml",
        "- hosts: all\n  tasks:\n    - name: f\n      file: path=/tmp/param-x stat=touch\n",
    );
    let r = run_playbook(&bed, &p, &inv, &[]);
    assert_eq!(r.code, 2, "{}", r.all());
    assert!(
        r.stderr.contains("[WARNING]: ")
            && r.stderr.contains("param.yml:3:7: task 'f': ")
            && r.stderr.contains("unsupported parameter 'stat'")
            && r.stderr.contains("Did you mean 'state'?"),
        "{}",
        r.all()
    );
    assert!(
        r.stdout.contains("fatal: [host0]") && r.stdout.contains("unsupported parameter 'stat'"),
        "{}",
        r.all()
    );
    assert!(!bed.hosts[0].exists("/tmp/param-x"));

    // Undefined variable: names variable, task, file:line and host; exit 2.
    let p = write("undef.yml", "- hosts: all\n  gather_facts: no\n  tasks:\n    - name: use it\n      copy: content={{ missing_var }} dest=/tmp/x\n");
    let r = run_playbook(&bed, &p, &inv, &[]);
    assert_eq!(r.code, 2, "{}", r.all());
    assert!(r.stdout.contains("missing_var"), "{}", r.all());
    assert!(r.stdout.contains("undef.yml:4:"), "{}", r.all());
    assert!(
        r.stdout.contains("task 'use it'") && r.stdout.contains("host0"),
        "{}",
        r.all()
    );

    // Failed command: rc, stdout, stderr raw; exit 2.
    let p = write("fail.yml", "- hosts: all\n  gather_facts: no\n  tasks:\n    - shell: echo out-text; echo err-text >&2; exit 3\n");
    let r = run_playbook(&bed, &p, &inv, &[]);
    assert_eq!(r.code, 2, "{}", r.all());
    assert!(r.stdout.contains("\"rc\":3"), "{}", r.all());
    assert!(r.stdout.contains("\"stdout\":\"out-text\""), "{}", r.all());
    assert!(r.stdout.contains("\"stderr\":\"err-text\""), "{}", r.all());

    // Unreachable (refused): says why; exit 4. Another host still gets configured.
    let bad_inv = write(
        "bad.ini",
        &format!(
            "host0 ansible_host={ip} ansible_user=root ansible_ssh_private_key_file={k}\nnosshd ansible_host={ip} ansible_port=2 ansible_user=root ansible_ssh_private_key_file={k}\n",
            ip = bed.hosts[0].ip,
            k = bed.key_path.display()
        ),
    );
    let p = write(
        "ok.yml",
        "- hosts: all\n  gather_facts: no\n  tasks:\n    - copy: content=ok dest=/tmp/ok-marker\n",
    );
    let r = run_playbook(&bed, &p, &bad_inv, &[]);
    assert_eq!(r.code, 4, "{}", r.all());
    assert!(
        r.stdout.contains("fatal: [nosshd]: UNREACHABLE!"),
        "{}",
        r.all()
    );
    assert!(r.stdout.contains("refused"), "{}", r.all());
    assert_eq!(
        bed.hosts[0].read_to_string("/tmp/ok-marker").as_deref(),
        Some("ok")
    );

    // Bad option: exit 5.
    let r = knockplay(&bed, &["run", "--forks", "many", p.to_str().unwrap()]);
    assert_eq!(r.code, 5, "{}", r.all());
}

#[test]
fn changed_host_key_is_refused_loudly() {
    let bed = TestBed::start(1).expect("test bed");
    let inv = bed.inventory_file();
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("ping.yml");
    std::fs::write(
        &p,
        "- hosts: all\n  gather_facts: no\n  tasks:\n    - ping:\n",
    )
    .unwrap();
    let r = run_playbook(&bed, &p, &inv, &[]);
    assert_eq!(r.code, 0, "{}", r.all());
    // The host is "rebuilt": new host keys.
    let h = &bed.hosts[0];
    assert!(h.exec("rm -f /etc/ssh/ssh_host_* && ssh-keygen -A >/dev/null && kill -HUP $(cat /run/sshd.pid)").ok());
    std::thread::sleep(std::time::Duration::from_millis(500));
    let r = run_playbook(&bed, &p, &inv, &[]);
    assert_eq!(r.code, 4, "{}", r.all());
    assert!(r.stdout.contains("HOST KEY CHANGED"), "{}", r.all());
}

#[test]
fn revoked_host_key_is_refused_under_every_policy_and_the_file_is_private() {
    use std::os::unix::fs::PermissionsExt;
    let bed = TestBed::start(1).expect("test bed");
    let inv = bed.inventory_file();
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("ping.yml");
    std::fs::write(
        &p,
        "- hosts: all\n  gather_facts: no\n  tasks:\n    - ping:\n",
    )
    .unwrap();
    let r = run_playbook(&bed, &p, &inv, &[]);
    assert_eq!(r.code, 0, "{}", r.all());
    let kh = bed.dir().join("knockplay_known_hosts");
    let mode = std::fs::metadata(&kh).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "known_hosts is created private");
    // The operator revokes the key the host serves (the line accept-new recorded).
    let text = std::fs::read_to_string(&kh).unwrap();
    let recorded = text.lines().next().unwrap();
    let mut fields = recorded.split_whitespace().skip(1);
    let (kind, b64) = (fields.next().unwrap(), fields.next().unwrap());
    std::fs::write(&kh, format!("{text}@revoked * {kind} {b64}\n")).unwrap();
    for policy in ["strict", "accept-new", "off"] {
        let r = run_playbook(&bed, &p, &inv, &["--host-key-checking", policy]);
        assert_eq!(r.code, 4, "{policy}: {}", r.all());
        assert!(r.all().contains("@revoked"), "{policy}: {}", r.all());
        assert!(!r.stdout.contains("ok=1"), "{policy}: {}", r.all());
    }
}

#[test]
fn a_private_key_others_can_read_is_refused_unless_allowed() {
    use std::os::unix::fs::PermissionsExt;
    let bed = TestBed::start(1).expect("test bed");
    let dir = tempfile::tempdir().unwrap();
    // The fleet key copied carelessly: readable by everyone on the controller.
    let loose = dir.path().join("fleet_key");
    std::fs::copy(&bed.key_path, &loose).unwrap();
    std::fs::set_permissions(&loose, std::fs::Permissions::from_mode(0o644)).unwrap();
    let inv = dir.path().join("hosts.ini");
    let text = bed.inventory_text("root").replace(
        &bed.key_path.display().to_string(),
        &loose.display().to_string(),
    );
    std::fs::write(&inv, text).unwrap();
    let p = dir.path().join("ping.yml");
    std::fs::write(
        &p,
        "- hosts: all\n  gather_facts: no\n  tasks:\n    - ping:\n",
    )
    .unwrap();
    let r = run_playbook(&bed, &p, &inv, &[]);
    assert_eq!(r.code, 4, "{}", r.all());
    assert!(
        r.all().contains("readable by group or others"),
        "{}",
        r.all()
    );
    assert!(
        r.all().contains("--allow-loose-key-permissions"),
        "{}",
        r.all()
    );
    let r = run_playbook(&bed, &p, &inv, &["--allow-loose-key-permissions"]);
    assert_eq!(r.code, 0, "{}", r.all());
}

#[test]
fn every_shipped_playbook_is_idempotent() {
    let bed = TestBed::start(1).expect("test bed");
    let inv = bed.inventory_file();
    let mut playbooks = vec![repo().join("playbooks/site.yml")];
    for e in std::fs::read_dir(repo().join("tests/playbooks")).unwrap() {
        let p = e.unwrap().path().join("site.yml");
        if p.exists() {
            playbooks.push(p);
        }
    }
    playbooks.sort();
    for pb in &playbooks {
        let first = run_playbook(&bed, pb, &inv, &[]);
        assert_eq!(first.code, 0, "{}: {}", pb.display(), first.all());
        let second = run_playbook(&bed, pb, &inv, &[]);
        assert_eq!(second.code, 0, "{}: {}", pb.display(), second.all());
        assert_eq!(
            second.changed(),
            0,
            "{}: second run changed something\n{}",
            pb.display(),
            second.all()
        );
    }
}

#[test]
fn facts_are_gathered_as_the_become_user() {
    let bed = TestBed::start(1).expect("test bed");
    let inv = bed.inventory_file_as(common::DEPLOY_USER);
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("facts.yml");
    std::fs::write(
        &p,
        "- hosts: all\n  become: yes\n  tasks:\n    - assert:\n        that:\n          - ansible_user_id == 'root'\n          - ansible_facts['os_family'] == 'Debian'\n- hosts: all\n  tasks:\n    - assert:\n        that: ansible_user_id == 'deploy'\n",
    )
    .unwrap();
    let r = run_playbook(&bed, &p, &inv, &[]);
    assert_eq!(r.code, 0, "{}", r.all());
}

/// The peak thread count of process `pid` while it runs, sampled every 10 ms.
fn peak_threads(child: &mut std::process::Child) -> usize {
    let dir = format!("/proc/{}/task", child.id());
    let mut peak = 0;
    while child.try_wait().ok().flatten().is_none() {
        if let Ok(rd) = std::fs::read_dir(&dir) {
            peak = peak.max(rd.count());
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    peak
}

#[test]
fn forks_bound_the_threads_and_the_hosts_at_work_not_the_hosts_in_the_play() {
    // 12 hosts, -f 3: never more than 3 hosts run a task at once, and the controller's threads
    // are bounded by the forks (3 workers, the main thread among them, and a few fixed
    // threads), not by the 12 hosts; every host is still configured and the steps stay in
    // lockstep (no host starts the second task before every host finished the first).
    let bed = TestBed::start(12).expect("test bed");
    let inv = bed.inventory_file();
    let dir = tempfile::tempdir().unwrap();
    let pb = dir.path().join("forks.yml");
    std::fs::write(
        &pb,
        "- hosts: all\n  gather_facts: no\n  tasks:\n\
         \x20   - shell: date +%s%N > /tmp/one.start; sleep 0.3; date +%s%N > /tmp/one.end\n\
         \x20   - shell: date +%s%N > /tmp/two.start; sleep 0.3; date +%s%N > /tmp/two.end\n",
    )
    .unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_knockplay"))
        .args([
            "run",
            pb.to_str().unwrap(),
            "-i",
            inv.to_str().unwrap(),
            "-f",
            "3",
        ])
        .arg("--known-hosts")
        .arg(bed.dir().join("knockplay_known_hosts"))
        .env("NO_COLOR", "1")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("run knockplay");
    let peak = peak_threads(&mut child);
    let out = child.wait_with_output().expect("knockplay output");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}");
    assert_eq!(recap_sum(&stdout, "changed"), 24, "{stdout}");
    assert!(
        (3..=6).contains(&peak),
        "peak of {peak} threads for 12 hosts at -f 3"
    );
    let times = |h: &common::Host, f: &str| -> u128 {
        h.read_to_string(f)
            .and_then(|s| s.trim().parse().ok())
            .unwrap_or_else(|| panic!("{}: no {f}", h.name))
    };
    for task in ["one", "two"] {
        let spans: Vec<(u128, u128)> = bed
            .hosts
            .iter()
            .map(|h| {
                (
                    times(h, &format!("/tmp/{task}.start")),
                    times(h, &format!("/tmp/{task}.end")),
                )
            })
            .collect();
        let most = spans
            .iter()
            .map(|(s, _)| spans.iter().filter(|(a, b)| a <= s && s < b).count())
            .max()
            .unwrap_or(0);
        assert!(most <= 3, "task {task}: {most} hosts at once with -f 3");
    }
    let last_one = bed.hosts.iter().map(|h| times(h, "/tmp/one.end")).max();
    let first_two = bed.hosts.iter().map(|h| times(h, "/tmp/two.start")).min();
    assert!(
        last_one < first_two,
        "a host started task two before all finished task one"
    );
}
