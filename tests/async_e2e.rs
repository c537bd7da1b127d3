//! `async`/`poll` on a real host: `poll: 0` starts a command in the background and the play goes
//! on (the job waits for a file a later task writes, so a run that waited for it could never
//! finish); with polling, `async` is the task's deadline and a command that outlives it fails
//! with Ansible's message.

mod common;

use std::process::Command;
use std::time::{Duration, Instant};

use common::TestBed;

#[test]
fn fire_and_forget_runs_in_the_background_and_async_limits_polled_tasks() {
    let bed = TestBed::start(1).expect("test bed");
    let h = &bed.hosts[0];
    let d = tempfile::tempdir().unwrap();
    let pb = d.path().join("async.yml");
    std::fs::write(
        &pb,
        "- hosts: all\n  gather_facts: false\n  tasks:\n\
         \x20   - shell: while [ ! -e /tmp/go ]; do sleep 0.2; done; echo done > /tmp/bg-done\n\
         \x20     async: 120\n      poll: 0\n      register: job\n\
         \x20   - copy: {content: \"{{ job.ansible_job_id }} {{ job.started }} {{ job.finished }}\\n\", dest: /tmp/job}\n\
         \x20   - copy: {content: go, dest: /tmp/go}\n\
         \x20   - command: sleep 30\n      async: 1\n      poll: 1\n      ignore_errors: true\n      register: slow\n\
         \x20   - copy: {content: \"{{ slow.msg }}\\n\", dest: /tmp/slow}\n",
    )
    .unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_knockplay"))
        .arg("run")
        .arg(&pb)
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
    assert!(out.status.success(), "{text}");
    let job = h.read_to_string("/tmp/job").unwrap();
    let fields: Vec<&str> = job.split_whitespace().collect();
    assert_eq!(fields[1..], ["1", "0"], "{job}");
    assert!(fields[0].parse::<u32>().is_ok(), "{job}");
    let slow = h.read_to_string("/tmp/slow").unwrap_or_default();
    assert!(
        slow.starts_with("async task did not complete within the requested time - 1s."),
        "{slow}"
    );
    // The background job ran to its end after the play released it.
    let end = Instant::now() + Duration::from_secs(30);
    while h.read_to_string("/tmp/bg-done").is_none() {
        assert!(
            Instant::now() < end,
            "the background job never finished: {text}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    assert_eq!(h.read_to_string("/tmp/bg-done").as_deref(), Some("done\n"));
}
