//! Runner tests through a local `sh` "connection": the whole runner (parsing, vars, loops,
//! blocks, handlers, output, recap) without SSH. The real path is covered by tests/ against
//! sshd in containers.

use std::path::Path;
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex};

use super::*;
use crate::modules::testing::LocalRemote;
use crate::ssh::{Remote, SshError};

/// A JSON object literal as variables (anything else: none).
pub fn vars(v: crate::value::Value) -> Vars {
    match v {
        crate::value::Value::Object(m) => m,
        _ => Vars::new(),
    }
}

pub struct LocalConnector {
    pub refuse: Vec<String>,
}

impl Connector for LocalConnector {
    fn connect(&self, host: &HostConn) -> Result<Box<dyn Remote + Send>, SshError> {
        if self.refuse.contains(&host.name) {
            return Err(SshError::Refused {
                addr: host.addr.clone(),
            });
        }
        Ok(Box::new(LocalRemote::default()))
    }
}

/// A connector whose sessions panic on every command for the hosts in `panic_on` (a bug in
/// knockplay, or a target that found one): the run must count those hosts failed.
pub struct PanickingConnector {
    pub panic_on: Vec<String>,
}

struct PanickingRemote(LocalRemote);

impl Remote for PanickingRemote {
    fn exec(
        &mut self,
        _cmd: &str,
        _stdin: Option<&[u8]>,
        _timeout: Option<std::time::Duration>,
    ) -> Result<crate::ssh::ExecOutput, SshError> {
        panic!("injected failure in the host's session")
    }

    fn name(&self) -> &str {
        self.0.name()
    }
}

impl Connector for PanickingConnector {
    fn connect(&self, host: &HostConn) -> Result<Box<dyn Remote + Send>, SshError> {
        if self.panic_on.contains(&host.name) {
            return Ok(Box::new(PanickingRemote(LocalRemote::default())));
        }
        Ok(Box::new(LocalRemote::default()))
    }
}

/// Run `playbook` text against `hosts` through the local shell; returns (report, output).
pub fn run_text(
    dir: &Path,
    playbook: &str,
    hosts: &[&str],
    extra: &[&str],
    refuse: &[&str],
) -> (RunReport, String) {
    let (opts, buf) = options(dir, playbook, hosts, extra, refuse);
    let report = run_playbook(opts).unwrap_or_else(|e| panic!("parse error: {e}"));
    let out = String::from_utf8(buf.lock().unwrap().clone()).unwrap();
    (report, out)
}

/// Options for running `playbook` text through the local shell, and the buffer its output goes to.
pub fn options(
    dir: &Path,
    playbook: &str,
    hosts: &[&str],
    extra: &[&str],
    refuse: &[&str],
) -> (RunOptions, Arc<Mutex<Vec<u8>>>) {
    let pb = dir.join("site.yml");
    std::fs::write(&pb, playbook).unwrap();
    let list = format!("{},", hosts.join(","));
    let inventory = crate::inventory::Inventory::from_sources(&[list]).unwrap();
    let buf = Arc::new(Mutex::new(Vec::new()));
    let mut report = ReportOptions::for_terminal(0, true);
    report.progress = false;
    report.color = false;
    report.capture = Some(buf.clone());
    let opts = RunOptions {
        playbook: pb.clone(),
        inventory,
        limit: None,
        tags: Vec::new(),
        skip_tags: Vec::new(),
        extra_vars: crate::cli::parse_extra_vars(
            &extra.iter().map(|s| s.to_string()).collect::<Vec<_>>(),
        )
        .unwrap(),
        check: false,
        diff: false,
        forks: 5,
        remote_user: Some("root".into()),
        private_key: None,
        become_: false,
        become_user: None,
        become_method: None,
        connector: Arc::new(LocalConnector {
            refuse: refuse.iter().map(|s| s.to_string()).collect(),
        }),
        report,
        cancel: Arc::new(AtomicBool::new(false)),
        finish_command: None,
        task_timeout: None,
    };
    (opts, buf)
}

#[test]
fn a_running_task_is_announced_before_it_ends() {
    // The task waits until the test has seen its header: printed at the end (after the result), it
    // would not be seen within 20 s (the task itself gives up after 30 s).
    let d = tempfile::tempdir().unwrap();
    let go = d.path().join("go");
    let pb = format!(
        "- hosts: all\n  gather_facts: no\n  tasks:\n    - name: first\n      command: \"true\"\n    \
         - name: waits for the header\n      shell: i=0; while [ ! -e {go} ] && [ $i -lt 600 ]; do sleep 0.05; i=$((i+1)); done; test -e {go}\n",
        go = go.display()
    );
    let (opts, buf) = options(d.path(), &pb, &["h1", "h2"], &[], &[]);
    let run = std::thread::spawn(move || run_playbook(opts).unwrap());
    let seen = |buf: &Arc<Mutex<Vec<u8>>>| {
        String::from_utf8_lossy(&buf.lock().unwrap()).contains("TASK [waits for the header]")
    };
    let end = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while !seen(&buf) && std::time::Instant::now() < end {
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let announced = seen(&buf);
    std::fs::write(&go, b"").unwrap();
    let report = run.join().unwrap();
    let out = String::from_utf8(buf.lock().unwrap().clone()).unwrap();
    assert!(announced, "no header while the task ran:\n{out}");
    assert_eq!(report.exit_code, 0, "{out}");
    // One header per task, each before its hosts' lines.
    assert_eq!(
        out.matches("TASK [waits for the header]").count(),
        1,
        "{out}"
    );
    let header = out.find("TASK [waits for the header]").unwrap();
    let first_line = out.find("changed: [h1]").unwrap();
    assert!(first_line < header, "{out}");
    assert_eq!(out[header..].matches("changed: [").count(), 2, "{out}");
}

#[test]
fn two_tasks_with_the_same_name_get_a_header_each() {
    let d = tempfile::tempdir().unwrap();
    let (_, out) = run_text(
        d.path(),
        "- hosts: all\n  gather_facts: no\n  tasks:\n    - command: \"true\"\n    - command: \"true\"\n",
        &["h1"],
        &[],
        &[],
    );
    assert_eq!(out.matches("TASK [command]").count(), 2, "{out}");
}

#[test]
fn control_flow_vars_loops_blocks_handlers() {
    let d = tempfile::tempdir().unwrap();
    std::fs::write(
        d.path().join("inc.yml"),
        "- debug: msg=\"included {{ item }}\"\n",
    )
    .unwrap();
    let pb = r#"
- hosts: all
  gather_facts: no
  vars:
    base: /srv
    dir: "{{ base }}/app"
    pkgs: [a, b, c]
  tasks:
    - name: set a fact
      set_fact:
        answer: "{{ 40 + 2 }}"
        where: "{{ dir }}"
    - name: check it
      assert:
        that:
          - answer | int == 42
          - where == "/srv/app"
    - name: loop with when
      debug: msg="{{ item }}"
      loop: "{{ pkgs }}"
      when: item != 'b'
      register: looped
    - name: loop result is registered
      assert:
        that:
          - looped.results | length == 3
          - looped.results[1].skipped
    - name: skipped task
      debug: msg=never
      when: false
    - name: block with rescue
      block:
        - name: this fails
          fail: msg=boom
        - debug: msg="not reached"
      rescue:
        - name: rescued
          debug: msg=rescued
          changed_when: true
          notify: my handler
      always:
        - set_fact: always_ran=yes
    - include_tasks: inc.yml
      loop: [x, y]
    - name: extra var wins
      assert:
        that: extra == "from_cli"
  handlers:
    - name: my handler
      debug: msg="handler ran"
"#;
    let (rep, out) = run_text(d.path(), pb, &["h1", "h2"], &["extra=from_cli"], &[]);
    assert_eq!(rep.exit_code, 0, "{out}");
    assert!(out.contains("RUNNING HANDLER [my handler]"), "{out}");
    assert!(out.contains("\"msg\": \"included x\""), "{out}");
    assert!(out.contains("skipping: [h1] => (item=b)"), "{out}");
    let s = &rep.stats["h1"];
    assert_eq!(s.rescued, 1, "{out}");
    assert_eq!(s.failed, 0, "{out}");
    assert_eq!(s.skipped, 1, "{out}");
    assert_eq!(s.changed, 1, "{out}");
    assert!(out.contains("PLAY RECAP"), "{out}");
}

#[test]
fn failure_and_unreachable_exit_codes() {
    let d = tempfile::tempdir().unwrap();
    let (rep, out) = run_text(
        d.path(),
        "- hosts: all\n  gather_facts: no\n  tasks:\n    - fail: msg=nope\n      when: inventory_hostname == 'bad'\n    - debug: msg=after\n",
        &["good", "bad"],
        &[],
        &[],
    );
    assert_eq!(rep.exit_code, 2, "{out}");
    assert!(
        out.contains("fatal: [bad]: FAILED! => {\"changed\":false,\"failed\":true,\"msg\":"),
        "{out}"
    );
    // The good host carried on.
    assert_eq!(rep.stats["good"].ok, 1, "{out}");
    assert_eq!(rep.stats["bad"].failed, 1, "{out}");

    let (rep, out) = run_text(
        d.path(),
        "- hosts: all\n  tasks:\n    - debug: msg=x\n",
        &["up", "down"],
        &[],
        &["down"],
    );
    assert_eq!(rep.exit_code, 4, "{out}");
    assert!(out.contains("fatal: [down]: UNREACHABLE!"), "{out}");
    assert!(out.contains("connection refused"), "{out}");
}

#[test]
fn undefined_variable_names_variable_task_and_position() {
    let d = tempfile::tempdir().unwrap();
    let (rep, out) = run_text(
        d.path(),
        "- hosts: all\n  gather_facts: no\n  tasks:\n    - name: uses undefined\n      debug: msg=\"{{ nosuchvar }}\"\n",
        &["h1"],
        &[],
        &[],
    );
    assert_eq!(rep.exit_code, 2, "{out}");
    assert!(out.contains("nosuchvar"), "{out}");
    assert!(out.contains("site.yml:4:7"), "{out}");
    assert!(out.contains("task 'uses undefined'"), "{out}");
    assert!(out.contains("host h1"), "{out}");
}

#[test]
fn commands_register_and_creates_are_idempotent() {
    let d = tempfile::tempdir().unwrap();
    let target = d.path().join("made");
    let pb = format!(
        "- hosts: all\n  gather_facts: no\n  tasks:\n    - command: touch {t} creates={t}\n    - shell: echo hello; echo oops >&2\n      register: out\n      changed_when: false\n    - assert:\n        that:\n          - out.stdout == 'hello'\n          - out.stderr_lines == ['oops']\n          - out.rc == 0\n",
        t = target.display()
    );
    let (rep, out) = run_text(d.path(), &pb, &["h1"], &[], &[]);
    assert_eq!(rep.exit_code, 0, "{out}");
    assert!(target.exists());
    assert_eq!(rep.stats["h1"].changed, 1, "{out}");
    let (rep, out) = run_text(d.path(), &pb, &["h1"], &[], &[]);
    assert_eq!(rep.stats["h1"].changed, 0, "{out}");
}

#[test]
fn control_modules_change_the_run_through_their_effects() {
    let d = tempfile::tempdir().unwrap();
    std::fs::write(d.path().join("more.yml"), "from_file: loaded\n").unwrap();
    let pb = r#"
- hosts: all
  gather_facts: no
  tasks:
    - command: "true"
      notify: remember
    - meta: flush_handlers
    - assert:
        that: handled == 'yes'
    - include_vars: more.yml
    - assert:
        that: from_file == 'loaded'
    - meta: end_host
      when: inventory_hostname == 'h2'
    - name: only h1 gets here
      command: "true"
  handlers:
    - name: remember
      set_fact:
        handled: "yes"
- hosts: all
  gather_facts: no
  tasks:
    - meta: end_play
    - name: never
      command: "true"
- hosts: h1
  gather_facts: no
  tasks:
    - name: the next play runs
      command: "true"
"#;
    let (rep, out) = run_text(d.path(), pb, &["h1", "h2"], &[], &[]);
    assert_eq!(rep.exit_code, 0, "{out}");
    assert!(out.contains("RUNNING HANDLER [remember]"), "{out}");
    assert!(!out.contains("TASK [never]"), "{out}");
    assert!(!out.contains("_knockplay"), "{out}");
    assert!(out.contains("TASK [the next play runs]"), "{out}");
    assert_eq!(rep.stats["h1"].changed, 3, "{out}");
    assert_eq!(rep.stats["h2"].changed, 1, "{out}");
}

#[test]
fn a_host_whose_run_panics_is_counted_failed_and_gets_no_finish_command() {
    let d = tempfile::tempdir().unwrap();
    let finished = d.path().join("finished");
    let pb = "- hosts: all\n  gather_facts: no\n  tasks:\n    - name: first\n      command: \"true\"\n    \
              - name: second\n      command: \"true\"\n";
    for forks in [1, 5] {
        let _ = std::fs::remove_file(&finished);
        let (mut opts, buf) = options(d.path(), pb, &["good", "bad"], &[], &[]);
        opts.forks = forks;
        opts.connector = Arc::new(PanickingConnector {
            panic_on: vec!["bad".into()],
        });
        opts.finish_command = Some(format!("echo done >> {}", finished.display()));
        // Linear strategy: the good host waits for the bad one at every step, so a crash that
        // left its seat (or its fork) taken would hang the run here.
        let report = run_playbook(opts).unwrap();
        let out = String::from_utf8(buf.lock().unwrap().clone()).unwrap();
        assert_eq!(report.exit_code, exit::HOST_FAILED, "{out}");
        assert_eq!(report.stats["bad"].failed, 1, "{out}");
        assert_eq!(report.stats["good"].ok, 2, "{out}");
        assert_eq!(report.totals().failed, 1, "{out}");
        assert!(
            out.contains("fatal: [bad]: FAILED!") && out.contains("knockplay internal error"),
            "{out}"
        );
        assert!(out.contains("injected failure"), "{out}");
        let recap = out.split("PLAY RECAP").nth(1).unwrap_or_default();
        assert!(recap.contains("bad") && recap.contains("failed=1"), "{out}");
        // Only the good host got the finish command (the listener's marker).
        assert_eq!(
            std::fs::read_to_string(&finished).unwrap(),
            "done\n",
            "{out}"
        );
    }
}

#[test]
fn no_log_that_cannot_be_evaluated_hides_the_result() {
    let d = tempfile::tempdir().unwrap();
    let pb = "- hosts: all\n  gather_facts: no\n  tasks:\n    - shell: echo s3cr3t-token\n      \
              no_log: \"{{ undefined_var }}\"\n    - shell: echo s3cr3t-token; exit 1\n      \
              no_log: \"{{ undefined_var }}\"\n      ignore_errors: yes\n    - block:\n        \
              - debug: msg=\"s3cr3t-token\"\n      no_log: \"{{ undefined_var }}\"\n";
    for json in [false, true] {
        let (mut opts, buf) = options(d.path(), pb, &["h1"], &[], &[]);
        opts.report.verbosity = 1;
        opts.report.human = !json;
        let report = run_playbook(opts).unwrap();
        let out = String::from_utf8(buf.lock().unwrap().clone()).unwrap();
        assert_eq!(report.exit_code, 0, "{out}");
        assert!(!out.contains("s3cr3t"), "{out}");
        assert!(out.contains("censored"), "{out}");
    }
}

#[test]
fn task_timeout_bounds_waits_loops_and_retries_and_the_next_task_runs() {
    // (The command's own timeout needs SSH: tests/hostile_target.rs runs `sleep 30` for that.)
    let d = tempfile::tempdir().unwrap();
    let pb = r#"
- hosts: all
  gather_facts: no
  tasks:
    - name: long pause
      pause: seconds=30
      timeout: 1
      ignore_errors: yes
    - name: slow loop
      shell: sleep 0.4
      loop: [1, 2, 3, 4, 5, 6, 7, 8]
      timeout: 1
      ignore_errors: yes
    - name: retried
      command: "false"
      register: r
      until: r.rc == 0
      retries: 100
      delay: 5
      timeout: 1
      ignore_errors: yes
    - name: after
      command: "true"
"#;
    let started = std::time::Instant::now();
    let (report, out) = run_text(d.path(), pb, &["h1"], &[], &[]);
    let took = started.elapsed();
    assert!(took < std::time::Duration::from_secs(20), "{took:?}\n{out}");
    assert_eq!(report.exit_code, 0, "{out}");
    assert_eq!(report.stats["h1"].ignored, 3, "{out}");
    for task in ["long pause", "slow loop", "retried"] {
        let section = out
            .split(&format!("TASK [{task}]"))
            .nth(1)
            .unwrap_or_default();
        let section = section.split("TASK [").next().unwrap_or_default();
        assert!(
            section.contains("did not finish within its timeout of 1 seconds"),
            "{task}: {out}"
        );
    }
    // The loop stopped at its deadline instead of running all eight items.
    let items = out.matches("(item=").count();
    assert!(items < 8, "{out}");
    let after = out.split("TASK [after]").nth(1).unwrap_or_default();
    assert!(after.contains("changed: [h1]"), "{out}");
}

#[test]
fn run_once_falls_to_the_next_host_when_the_first_never_reaches_it() {
    // h1 skips the include, so it never sees the run_once task inside: h2 runs it, once, in
    // both strategies and with fewer forks than hosts; nothing waits for h1 forever.
    let d = tempfile::tempdir().unwrap();
    let dir = d.path().to_str().unwrap().to_string();
    std::fs::write(
        d.path().join("inner.yml"),
        format!(
            "- name: once\n  shell: echo {{{{ inventory_hostname }}}} >> {dir}/once\n  run_once: true\n"
        ),
    )
    .unwrap();
    for strategy in ["linear", "free"] {
        for forks in [1, 3] {
            let _ = std::fs::remove_file(d.path().join("once"));
            let _ = std::fs::remove_file(d.path().join("after"));
            let pb = format!(
                "- hosts: all\n  gather_facts: no\n  strategy: {strategy}\n  tasks:\n    \
                 - include_tasks: inner.yml\n      when: inventory_hostname != 'h1'\n    \
                 - shell: echo {{{{ inventory_hostname }}}} >> {dir}/after\n"
            );
            let (mut opts, buf) = options(d.path(), &pb, &["h1", "h2", "h3"], &[], &[]);
            opts.forks = forks;
            let (tx, rx) = std::sync::mpsc::channel();
            std::thread::spawn(move || {
                let _ = tx.send(run_playbook(opts).map(|r| r.exit_code));
            });
            let code = rx
                .recv_timeout(std::time::Duration::from_secs(60))
                .unwrap_or_else(|_| panic!("{strategy}, -f {forks}: the run hangs"));
            let out = String::from_utf8(buf.lock().unwrap().clone()).unwrap();
            assert_eq!(code.ok(), Some(exit::OK), "{strategy} -f {forks}: {out}");
            let once = std::fs::read_to_string(d.path().join("once")).unwrap_or_default();
            assert_eq!(once, "h2\n", "{strategy} -f {forks}: {out}");
            let after = std::fs::read_to_string(d.path().join("after")).unwrap_or_default();
            assert_eq!(after.lines().count(), 3, "{strategy} -f {forks}: {out}");
        }
    }
}
