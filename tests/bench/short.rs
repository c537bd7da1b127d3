//! Short runs: bench/one-task.yml (one small file per host, no facts) with knockplay on a bed, next to
//! the floor every SSH tool pays there: each host's OpenSSH login running `true`, all hosts at once.
//! Each is run three times on the same bed and the median is reported (the first knockplay run writes
//! the file, the others find it in place).

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::common::TestBed;

/// Medians of three runs on one bed.
pub struct Short {
    pub hosts: usize,
    pub knockplay: Duration,
    pub ssh_floor: Duration,
    pub problems: Vec<String>,
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v.get(v.len() / 2).copied().unwrap_or_default()
}

/// Measure both on `bed` (whose knockplay known_hosts the main runs filled).
pub fn measure(bed: &TestBed, repo: &Path) -> Short {
    let mut problems = Vec::new();
    let mut kp = Vec::new();
    for i in 0..3 {
        let t0 = Instant::now();
        let out = Command::new(env!("CARGO_BIN_EXE_knockplay"))
            .arg("run")
            .arg(repo.join("bench/one-task.yml"))
            .arg("-i")
            .arg(bed.inventory_file())
            .arg("--known-hosts")
            .arg(bed.dir().join("knockplay_known_hosts"))
            .args(["--host-key-checking", "accept-new"])
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .output();
        kp.push(t0.elapsed());
        match out {
            Ok(o) if o.status.success() => {}
            Ok(o) => problems.push(format!(
                "one-task run {i}: exit {:?}\n{}",
                o.status.code(),
                String::from_utf8_lossy(&o.stdout)
            )),
            Err(e) => problems.push(format!("one-task run {i}: {e}")),
        }
    }
    for h in &bed.hosts {
        if h.read_to_string("/tmp/one-task").as_deref() != Some("one task\n") {
            problems.push(format!("one-task: {} has no /tmp/one-task", h.name));
        }
    }
    let mut floor = Vec::new();
    for _ in 0..3 {
        let t0 = Instant::now();
        let children: Vec<_> = bed
            .hosts
            .iter()
            .map(|h| {
                h.ssh_command("root")
                    .arg("true")
                    .stdout(Stdio::null())
                    .stderr(Stdio::null())
                    .spawn()
            })
            .collect();
        for (h, c) in bed.hosts.iter().zip(children) {
            let ok = c.and_then(|mut c| c.wait()).is_ok_and(|s| s.success());
            if !ok {
                problems.push(format!("ssh floor: ssh root@{} true failed", h.ip));
            }
        }
        floor.push(t0.elapsed());
    }
    Short {
        hosts: bed.hosts.len(),
        knockplay: median(kp),
        ssh_floor: median(floor),
        problems,
    }
}

/// The short-runs table.
pub fn table(rows: &[Short]) -> String {
    let mut s = String::from(
        "Short runs (median of 3 on the same bed): bench/one-task.yml with knockplay, and every host's\n\
         OpenSSH login running `true`, all hosts at once (what any SSH tool pays before its first task)\n\
         hosts  one-task knockplay s  ssh floor s  knockplay/floor\n",
    );
    for r in rows {
        let ratio = r.knockplay.as_secs_f64() / r.ssh_floor.as_secs_f64().max(1e-6);
        s.push_str(&format!(
            "{:>5}  {:>20.2}  {:>11.2}  {:>14.1}x\n",
            r.hosts,
            r.knockplay.as_secs_f64(),
            r.ssh_floor.as_secs_f64(),
            ratio
        ));
    }
    s
}
