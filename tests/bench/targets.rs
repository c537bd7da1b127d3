//! What a run cost the test hosts: processes started, CPU, and SSH sessions, read from outside the
//! run (docker and the containers' cgroups) so every tool is measured the same way.
//!
//! - **Processes**: each container has its own PID namespace, where PIDs are handed out one after
//!   the other. The PID of a probe shell started before and after the run tells how many processes
//!   (and threads) were created on the host meanwhile, minus what `docker exec` itself costs
//!   (measured per host just before: it varies by a PID or two, the noise of this number).
//! - **CPU**: the container's cgroup CPU time (cgroup v1 `cpuacct.usage`, v2 `cpu.stat`).
//! - **Sessions**: sshd (at `LogLevel VERBOSE`) logs `Starting session:` for every command or
//!   shell channel; its log is the container's output.

use std::process::{Command, Output};

use crate::common::TestBed;

fn docker(args: &[&str]) -> Option<Output> {
    Command::new("docker")
        .args(args)
        .output()
        .ok()
        .filter(|o| o.status.success())
}

/// One host's counters at one moment.
#[derive(Debug, Clone, Copy, Default)]
struct HostCounters {
    /// PIDs of two shells started in the container one after the other, now.
    first_pid: u64,
    pid: u64,
    /// PIDs one `docker exec` costs on this host (measured when the snapshot was taken).
    exec_cost: u64,
    cpu_ns: u64,
    sessions: u64,
}

/// Counters of every host of a bed.
#[derive(Debug, Clone)]
pub struct Snapshot(Vec<Option<HostCounters>>);

/// What the hosts did between two snapshots, summed over hosts (None where it could not be read).
#[derive(Debug, Clone, Copy, Default)]
pub struct TargetUsage {
    pub processes: Option<u64>,
    pub cpu_ns: Option<u64>,
    pub sessions: Option<u64>,
}

/// Makes every host's sshd log each session (`LogLevel VERBOSE`), once per bed (a few hosts at a time).
pub fn log_sessions(bed: &TestBed) {
    for_each_host(bed, |h| {
        let _ = h.exec(
            "echo 'LogLevel VERBOSE' > /etc/ssh/sshd_config.d/zz-bench.conf && \
             kill -HUP \"$(cat /run/sshd.pid)\"",
        );
        // sshd re-executes itself on SIGHUP; let it listen again before anyone connects.
        for _ in 0..50 {
            if h.exec("[ -s /run/sshd.pid ] && kill -0 \"$(cat /run/sshd.pid)\"")
                .rc
                == 0
            {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
    });
    std::thread::sleep(std::time::Duration::from_millis(300));
}

/// `f` on every host of `bed`, 16 hosts at a time (200 sequential `docker exec`s take minutes); the
/// results in host order.
pub fn for_each_host<T: Send>(
    bed: &TestBed,
    f: impl Fn(&crate::common::Host) -> T + Sync,
) -> Vec<T> {
    let chunk = bed.hosts.len().div_ceil(16).max(1);
    std::thread::scope(|s| {
        let handles: Vec<_> = bed
            .hosts
            .chunks(chunk)
            .map(|part| {
                let f = &f;
                s.spawn(move || part.iter().map(f).collect::<Vec<T>>())
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().expect("host worker panicked"))
            .collect()
    })
}

fn shell_pid(container: &str) -> Option<u64> {
    let out = docker(&["exec", container, "sh", "-c", "echo $$"])?;
    String::from_utf8_lossy(&out.stdout).trim().parse().ok()
}

fn init_pid(container: &str) -> Option<u32> {
    let out = docker(&["inspect", "-f", "{{.State.Pid}}", container])?;
    String::from_utf8_lossy(&out.stdout).trim().parse().ok()
}

/// CPU time of the container's cgroup, nanoseconds.
fn cgroup_cpu_ns(container: &str) -> Option<u64> {
    let pid = init_pid(container)?;
    let groups = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).ok()?;
    for line in groups.lines() {
        let mut f = line.splitn(3, ':');
        let (_, controllers, path) = (f.next()?, f.next()?, f.next()?);
        if controllers.split(',').any(|c| c == "cpuacct") {
            for dir in ["cpuacct", "cpu,cpuacct", "cpuacct,cpu"] {
                let file = format!("/sys/fs/cgroup/{dir}{path}/cpuacct.usage");
                if let Ok(s) = std::fs::read_to_string(&file) {
                    return s.trim().parse().ok();
                }
            }
        }
    }
    // cgroup v2: the unified hierarchy's line is `0::/path`.
    let path = groups.lines().find_map(|l| l.strip_prefix("0::"))?;
    let stat = std::fs::read_to_string(format!("/sys/fs/cgroup{path}/cpu.stat")).ok()?;
    stat.lines()
        .find_map(|l| l.strip_prefix("usage_usec "))
        .and_then(|v| v.trim().parse::<u64>().ok())
        .map(|us| us * 1000)
}

fn sessions(container: &str) -> Option<u64> {
    let out = docker(&["logs", container])?;
    let count = |b: &[u8]| {
        String::from_utf8_lossy(b)
            .lines()
            .filter(|l| l.contains("Starting session:"))
            .count() as u64
    };
    Some(count(&out.stdout) + count(&out.stderr))
}

fn host_counters(container: &str) -> Option<HostCounters> {
    let first = shell_pid(container)?;
    let pid = shell_pid(container)?;
    Some(HostCounters {
        first_pid: first,
        pid,
        exec_cost: pid.checked_sub(first)?,
        cpu_ns: cgroup_cpu_ns(container)?,
        sessions: sessions(container)?,
    })
}

impl Snapshot {
    pub fn take(bed: &TestBed) -> Snapshot {
        let handles: Vec<_> = bed
            .hosts
            .iter()
            .map(|h| {
                let c = h.container.clone();
                std::thread::spawn(move || host_counters(&c))
            })
            .collect();
        Snapshot(
            handles
                .into_iter()
                .map(|h| h.join().ok().flatten())
                .collect(),
        )
    }

    /// Sums over hosts of what happened since `before`; `None` if any host could not be read.
    pub fn since(&self, before: &Snapshot) -> TargetUsage {
        let mut pairs = Vec::new();
        for (a, b) in self.0.iter().zip(&before.0) {
            match (a, b) {
                (Some(a), Some(b)) => pairs.push((a, b)),
                _ => return TargetUsage::default(),
            }
        }
        let sum = |f: &dyn Fn(&HostCounters, &HostCounters) -> Option<u64>| {
            pairs.iter().map(|(a, b)| f(a, b)).sum::<Option<u64>>()
        };
        TargetUsage {
            // The probe after the run costs what a `docker exec` costs, as measured before it.
            processes: sum(&|a, b| a.first_pid.checked_sub(b.pid + b.exec_cost)),
            cpu_ns: sum(&|a, b| a.cpu_ns.checked_sub(b.cpu_ns)),
            sessions: sum(&|a, b| a.sessions.checked_sub(b.sessions)),
        }
    }
}
