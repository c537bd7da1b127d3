//! A hostile target against the real binary (issue 9): real sshd in a test-host container whose
//! output plays the attacker. Numbers it prints cannot crash a host's run into a success, `no_log`
//! that cannot be evaluated still hides what it prints, its escape sequences never reach the
//! operator's terminal, and a task's `timeout:` stops a command that would hold the run.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use common::TestBed;

struct Run {
    code: i32,
    stdout: Vec<u8>,
    stderr: Vec<u8>,
    took: Duration,
}

impl Run {
    fn stdout(&self) -> String {
        String::from_utf8_lossy(&self.stdout).into_owned()
    }
    fn all(&self) -> String {
        format!(
            "--- exit {} after {:?}\n--- stdout\n{}\n--- stderr\n{}",
            self.code,
            self.took,
            self.stdout(),
            String::from_utf8_lossy(&self.stderr)
        )
    }
    /// The PLAY RECAP line of `host`.
    fn recap(&self, host: &str) -> String {
        let out = self.stdout();
        let recap = out.split("PLAY RECAP").nth(1).unwrap_or_default();
        recap
            .lines()
            .find(|l| l.starts_with(&format!("{host} ")))
            .unwrap_or_default()
            .to_string()
    }
}

fn knockplay(bed: &TestBed, args: &[&str]) -> Run {
    let started = Instant::now();
    let out = Command::new(env!("CARGO_BIN_EXE_knockplay"))
        .args(args)
        .arg("--known-hosts")
        .arg(bed.dir().join("knockplay_known_hosts"))
        .env("NO_COLOR", "1")
        .output()
        .expect("run knockplay");
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: out.stdout,
        stderr: out.stderr,
        took: started.elapsed(),
    }
}

/// Write `text` as a playbook and run it against the bed with `extra` flags.
fn run(bed: &TestBed, dir: &Path, text: &str, extra: &[&str]) -> Run {
    let pb: PathBuf = dir.join("site.yml");
    std::fs::write(&pb, text).unwrap();
    let inv = bed.inventory_file();
    let mut args = vec!["run", pb.to_str().unwrap(), "-i", inv.to_str().unwrap()];
    args.extend_from_slice(extra);
    knockplay(bed, &args)
}

#[test]
fn numbers_from_a_target_fail_the_task_never_the_controller() {
    let bed = TestBed::start(1).expect("test bed");
    let dir = tempfile::tempdir().unwrap();
    // (what the target prints, the task that uses it, what the failure says)
    let attacks = [
        (
            "-1",
            "wait_for_connection:\n        delay: \"{{ out.stdout }}\"",
            "wait_for_connection: parameter 'delay' must be a number of seconds",
        ),
        (
            "1e400",
            "pause:\n        seconds: \"{{ out.stdout }}\"",
            "pause: parameter 'seconds' must be a number of seconds",
        ),
        (
            "-1",
            "command: \"false\"\n      register: r\n      until: r.rc == 0\n      delay: \"{{ out.stdout }}\"",
            "the task's 'delay' must be a number of seconds from 0 to",
        ),
        (
            "18446744073709551615",
            "command: \"true\"\n      timeout: \"{{ out.stdout }}\"",
            "the task's 'timeout' must be a number of seconds from 0 to",
        ),
    ];
    for (printed, task, says) in attacks {
        let pb = format!(
            "- hosts: all\n  gather_facts: no\n  tasks:\n    - command: echo {printed}\n      register: out\n    \
             - name: uses it\n      {task}\n    - name: never\n      command: \"true\"\n"
        );
        let r = run(&bed, dir.path(), &pb, &[]);
        assert_eq!(r.code, 2, "{printed} / {task}\n{}", r.all());
        assert!(r.stdout().contains(says), "{says}\n{}", r.all());
        assert!(
            r.stdout().contains("fatal: [host0]: FAILED!"),
            "{}",
            r.all()
        );
        assert!(r.recap("host0").contains("failed=1"), "{}", r.all());
        assert!(!r.stdout().contains("TASK [never]"), "{}", r.all());
        assert!(
            !String::from_utf8_lossy(&r.stderr).contains("panicked"),
            "{}",
            r.all()
        );
    }

    // The playbook's own number, as YAML: the same checked path.
    let r = run(
        &bed,
        dir.path(),
        "- hosts: all\n  gather_facts: no\n  tasks:\n    - pause:\n        seconds: 1e400\n",
        &[],
    );
    assert_eq!(r.code, 2, "{}", r.all());
    assert!(
        r.stdout().contains("pause: parameter 'seconds' must be"),
        "{}",
        r.all()
    );
    assert!(r.recap("host0").contains("failed=1"), "{}", r.all());

    // A flag too large for any deadline is a bad option (exit 5), refused before anything runs.
    let r = run(
        &bed,
        dir.path(),
        "- hosts: all\n  gather_facts: no\n  tasks:\n    - ping:\n",
        &["--wait-for-ssh", "18446744073709551615"],
    );
    assert_eq!(r.code, 5, "{}", r.all());
    let stderr = String::from_utf8_lossy(&r.stderr);
    assert!(stderr.contains("--wait-for-ssh"), "{}", r.all());
    assert!(!r.stdout().contains("PLAY RECAP"), "{}", r.all());
}

#[test]
fn no_log_that_cannot_be_evaluated_keeps_the_target_s_secret_out_of_every_output() {
    let bed = TestBed::start(1).expect("test bed");
    let secret = "kp-s3cr3t-7f3a";
    bed.hosts[0]
        .write_file("/root/secret", format!("{secret}\n").as_bytes())
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let logs = dir.path().join("logs");
    let pb = r#"
- hosts: all
  gather_facts: no
  tasks:
    - name: read it
      command: cat /root/secret
      register: s
      no_log: "{{ undefined_var }}"
    - name: read it and fail
      shell: cat /root/secret; exit 1
      no_log: "{{ undefined_var.attr }}"
      ignore_errors: yes
    - name: read it in a loop
      command: cat /root/secret
      loop: [1, 2]
      no_log: "{{ undefined_var }}"
    - block:
        - name: show it from a block
          debug:
            var: s.stdout
      no_log: "{{ undefined_var }}"
"#;
    let logs_flag = format!("--log-dir={}", logs.display());
    for flags in [vec![], vec!["-v"], vec!["--json"], vec![logs_flag.as_str()]] {
        let r = run(&bed, dir.path(), pb, &flags);
        assert_eq!(r.code, 0, "{flags:?}\n{}", r.all());
        assert!(r.all().contains("censored"), "{flags:?}\n{}", r.all());
        assert!(!r.all().contains(secret), "{flags:?}\n{}", r.all());
    }
    for entry in std::fs::read_dir(&logs).unwrap() {
        let text = std::fs::read_to_string(entry.unwrap().path()).unwrap();
        assert!(text.contains("censored"), "{text}");
        assert!(!text.contains(secret), "{text}");
    }
}

#[test]
fn escape_sequences_from_a_target_never_reach_the_terminal() {
    let bed = TestBed::start(1).expect("test bed");
    let h = &bed.hosts[0];
    let dir = tempfile::tempdir().unwrap();
    // Clear screen, carriage return, a forged recap (newline-separated and on the same line
    // after CR), backspace, and CSI as the C1 control U+009B.
    let pb = r#"
- hosts: all
  gather_facts: no
  tasks:
    - name: hostile output
      shell: |
        printf '\033[2J\r\nPLAY RECAP ****\nhost0 : ok=9 changed=0 unreachable=0 failed=0\r\010\302\2332J\n'
      register: out
    - name: show it
      debug:
        var: out.stdout
    - name: loop over it
      debug:
        msg: "{{ item }}"
      loop: "{{ out.stdout_lines }}"
    - name: fix the file
      copy:
        content: "clean\n"
        dest: /tmp/evil.conf
    - name: fail with it
      fail:
        msg: "{{ out.stdout }}"
"#;
    for flags in [vec!["--diff"], vec!["-v", "--diff"]] {
        // A file the playbook replaces, so its old bytes show in the diff.
        h.write_file("/tmp/evil.conf", b"\x1b[2J\rold line\x08\n")
            .unwrap();
        let r = run(&bed, dir.path(), pb, &flags);
        assert_eq!(r.code, 2, "{flags:?}\n{}", r.all());
        for (what, bytes) in [
            ("ESC", &b"\x1b"[..]),
            ("CR", b"\r"),
            ("BS", b"\x08"),
            ("CSI (C1)", "\u{9b}".as_bytes()),
        ] {
            let found = r.stdout.windows(bytes.len()).any(|w| w == bytes);
            assert!(!found, "raw {what} on stdout with {flags:?}\n{}", r.all());
        }
        let out = r.stdout();
        // The escaped forms are there (the operator still sees what the target sent).
        assert!(out.contains("\\u{1b}[2J"), "{}", r.all());
        assert!(out.contains("-\\u{1b}[2J\\r"), "{}", r.all());
        assert!(out.contains("old line\\u{8}"), "{}", r.all());
        // Exactly one recap, and no line that looks like a recap of host0 but the real one.
        assert_eq!(
            out.lines().filter(|l| l.starts_with("PLAY RECAP")).count(),
            1,
            "{}",
            r.all()
        );
        let recap_like: Vec<&str> = out
            .lines()
            .filter(|l| l.starts_with("host0 ") && l.contains(": ok="))
            .collect();
        assert_eq!(recap_like.len(), 1, "{recap_like:?}\n{}", r.all());
        assert!(recap_like[0].contains("failed=1"), "{}", r.all());
    }
    assert_eq!(
        h.read_to_string("/tmp/evil.conf").as_deref(),
        Some("clean\n")
    );
}

#[test]
fn task_timeout_stops_a_slow_command_and_the_host_carries_on() {
    let bed = TestBed::start(1).expect("test bed");
    let dir = tempfile::tempdir().unwrap();
    let pb = r#"
- hosts: all
  gather_facts: no
  tasks:
    - name: slow
      command: sleep 30
      timeout: 2
      ignore_errors: yes
    - name: next
      copy:
        content: "ran\n"
        dest: /tmp/next-ran
    - name: slow and fatal
      shell: sleep 30
      timeout: 2
    - name: never
      command: "true"
"#;
    let r = run(&bed, dir.path(), pb, &[]);
    // Two 2 s timeouts and a few quick tasks: well under one 30 s sleep (never a tight bound).
    assert!(r.took < Duration::from_secs(20), "{}", r.all());
    assert_eq!(r.code, 2, "{}", r.all());
    let out = r.stdout();
    assert_eq!(
        out.matches("did not finish within its timeout of 2 seconds")
            .count(),
        2,
        "{}",
        r.all()
    );
    assert!(out.contains("...ignoring"), "{}", r.all());
    assert!(!out.contains("TASK [never]"), "{}", r.all());
    assert!(r.recap("host0").contains("failed=1"), "{}", r.all());
    assert_eq!(
        bed.hosts[0].read_to_string("/tmp/next-ran").as_deref(),
        Some("ran\n"),
        "the task after the timed-out one ran\n{}",
        r.all()
    );
}

#[test]
fn text_from_a_target_is_never_rendered_as_a_template_on_any_path() {
    let bed = TestBed::start(1).expect("test bed");
    let h = &bed.hosts[0];
    let dir = tempfile::tempdir().unwrap();
    // What the controller holds and the target wants: an environment variable and a file.
    let env_secret = "kp-env-secret-41c9";
    let file_secret = "kp-file-secret-93d0";
    let secret_file = dir.path().join("controller-secret");
    std::fs::write(&secret_file, file_secret).unwrap();
    let payload = format!(
        "{{{{ lookup('env', 'KP_CTRL_SECRET') }}}}{{{{ lookup('file', '{}') }}}}{{% if true %}}",
        secret_file.display()
    );
    h.write_file("/root/evil", format!("{payload}\n").as_bytes())
        .unwrap();
    // Facts too: every os-release field carries the payload.
    let os_release = format!(
        "NAME=\"{payload}\"\nPRETTY_NAME=\"{payload}\"\nID=debian\nVERSION_ID=\"12\"\nVERSION_CODENAME=\"{payload}\"\n"
    );
    h.write_file("/etc/os-release", os_release.as_bytes())
        .unwrap();
    std::fs::write(
        dir.path().join("t.j2"),
        "raw={{ out.stdout }}\nderived={{ derived }}\nfacts={{ ansible_facts | to_json }}\n",
    )
    .unwrap();
    std::fs::write(
        dir.path().join("inc.yml"),
        "- copy:\n    content: \"{{ item }}\\n\"\n    dest: /root/result-include\n",
    )
    .unwrap();
    let pb = r#"
- hosts: all
  gather_facts: yes
  vars:
    derived: "{{ out.stdout | trim }}"
  tasks:
    - command: cat /root/evil
      register: out
    - set_fact:
        fact_copy: "{{ out.stdout }}"
        fact_filtered: "{{ out.stdout | trim | string }}"
        fact_json: "{{ ('{\"v\": ' ~ (out.stdout | to_json) ~ '}') | from_json }}"
    - copy:
        dest: /root/result-copy
        content: |
          raw={{ out.stdout }}
          derived={{ derived }}
          fact={{ fact_copy }}
          filtered={{ fact_filtered }}
          json={{ fact_json.v }}
          hostvars={{ hostvars[inventory_hostname].fact_copy }}
          task_var={{ task_var | trim }}
      vars:
        task_var: "{{ fact_copy }} "
    - template:
        src: t.j2
        dest: /root/result-template
    - copy:
        content: "{{ item }}\n"
        dest: /root/result-loop
      loop: "{{ out.stdout_lines }}"
    - include_tasks: inc.yml
      loop: "{{ out.stdout_lines }}"
    - name: a condition that is target text
      debug:
        msg: never
      when: "{{ out.stdout }}"
      ignore_errors: yes
    - name: a condition that mixes the author's text and target text
      debug:
        msg: compared
      when: "{{ out.stdout }} == 'x'"
    - name: debug var from target text
      debug:
        var: "{{ out.stdout }}"
      ignore_errors: yes
"#;
    std::fs::write(dir.path().join("site.yml"), pb).unwrap();
    let inv = bed.inventory_file();
    let started = Instant::now();
    let out = Command::new(env!("CARGO_BIN_EXE_knockplay"))
        .args(["run", dir.path().join("site.yml").to_str().unwrap()])
        .args(["-i", inv.to_str().unwrap(), "-v"])
        .arg("--known-hosts")
        .arg(bed.dir().join("knockplay_known_hosts"))
        .env("NO_COLOR", "1")
        .env("KP_CTRL_SECRET", env_secret)
        .output()
        .expect("run knockplay");
    let r = Run {
        code: out.status.code().unwrap_or(-1),
        stdout: out.stdout,
        stderr: out.stderr,
        took: started.elapsed(),
    };
    // Two tasks fail (ignored): the condition that is not a boolean and the debug var.
    assert_eq!(r.code, 0, "{}", r.all());
    assert!(r.recap("host0").contains("ignored=2"), "{}", r.all());
    assert!(r.all().contains("neither true nor false"), "{}", r.all());
    assert!(
        r.all().contains("debug var must name a variable"),
        "{}",
        r.all()
    );
    assert!(!r.all().contains(env_secret), "{}", r.all());
    assert!(!r.all().contains(file_secret), "{}", r.all());
    let copy = h.read_to_string("/root/result-copy").unwrap();
    for key in [
        "raw", "derived", "fact", "filtered", "json", "hostvars", "task_var",
    ] {
        assert!(
            copy.contains(&format!("{key}={payload}\n")),
            "{key} is not the target's text as it was:\n{copy}"
        );
    }
    let template = h.read_to_string("/root/result-template").unwrap();
    assert!(
        template.starts_with(&format!("raw={payload}\nderived={payload}\nfacts=")),
        "{template}"
    );
    assert!(
        template.contains("lookup('env', 'KP_CTRL_SECRET')"),
        "facts lost the payload: {template}"
    );
    for path in ["/root/result-loop", "/root/result-include"] {
        assert_eq!(
            h.read_to_string(path).unwrap(),
            format!("{payload}\n"),
            "{path}"
        );
    }
    for path in ["/root/result-copy", "/root/result-template"] {
        let text = h.read_to_string(path).unwrap();
        assert!(
            !text.contains(env_secret) && !text.contains(file_secret),
            "{path}: {text}"
        );
    }
}
