//! Runs one tool as a child process and measures it: wall time, CPU (user+sys) of its whole process
//! tree, largest single-process RSS, and the peak of the tree's summed RSS.
//!
//! How everything the tool starts is counted:
//! - CPU and largest RSS come from `wait4` on the child (the kernel adds every descendant the tool itself
//!   waited for).
//! - This process is a child subreaper, so daemonized descendants (ansible's `ssh -o ControlPersist`
//!   masters) are re-parented here instead of to init. After the tool exits they are stopped with SIGTERM
//!   and reaped with `wait4`, and their CPU and RSS are added too. (A later run therefore never reuses
//!   an earlier run's SSH connections: every run starts cold, as it would minutes later.)
//! - A sampler thread reads `/proc/<pid>/task/*/children` and `/proc/<pid>/statm` every 20 ms and keeps
//!   the peak of the summed RSS of the whole tree. Summed RSS counts shared pages once per process, so for
//!   multi-process tools (ansible's forks) it is an upper bound; the largest single RSS is a lower bound.
//!   The same sampler sums `Threads:` of `/proc/<pid>/status` over the tree and keeps the peak.
//! - With a time limit, the sampler kills the tool's process group (SIGKILL) once the limit has passed;
//!   the run is then marked `timed_out` (its other figures cover the run up to the kill).

use std::fs::File;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

const SAMPLE_EVERY: Duration = Duration::from_millis(20);

/// What one measured run cost the controller.
#[derive(Debug, Clone, Copy, Default)]
pub struct Usage {
    pub wall: Duration,
    /// user + system CPU of the tool and everything it started.
    pub cpu: Duration,
    /// Largest resident set of any single process of the tree, KiB.
    pub max_rss_kib: u64,
    /// Peak of the summed resident sets of all processes of the tree (sampled), KiB.
    pub tree_rss_kib: u64,
    /// Exit code (128+signal when killed by a signal).
    pub code: i32,
    /// Share of the whole machine's CPU time that was busy during the run (0..1), whoever used it: the
    /// test hosts run on the same cores, so near 1.0 means the run was bound by the machine's CPU.
    pub machine_busy: f64,
    /// Peak of the summed thread counts of all processes of the tree (sampled).
    pub peak_threads: u64,
    /// The run was killed at its time limit.
    pub timed_out: bool,
}

/// Makes this process the reaper of orphaned descendants (once; Linux only).
pub fn become_subreaper() {
    // SAFETY: prctl with PR_SET_CHILD_SUBREAPER only sets a flag on this process.
    let rc = unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) };
    assert_eq!(
        rc,
        0,
        "prctl(PR_SET_CHILD_SUBREAPER) failed: {}",
        std::io::Error::last_os_error()
    );
}

/// Runs `cmd` (stdin closed, stdout/stderr into the given files) and measures it; with `limit`, the tool
/// (its whole process group) is killed once the limit has passed.
pub fn run_measured(
    cmd: &mut Command,
    stdout: &Path,
    stderr: &Path,
    limit: Option<Duration>,
) -> std::io::Result<Usage> {
    spawn_measured(cmd, stdout, stderr, limit)?.finish(None)
}

/// A measured process that is still running (a daemon such as `knockplay listen` or `knockd`).
pub struct Measured {
    pid: u32,
    t0: Instant,
    cpu0: Option<(u64, u64)>,
    peak: Arc<AtomicU64>,
    threads: Arc<AtomicU64>,
    timed_out: Arc<AtomicBool>,
    stop: Arc<AtomicBool>,
    sampler: Option<std::thread::JoinHandle<()>>,
}

/// Starts `cmd` (stdin closed, stdout/stderr into the given files, in a process group of its own) and
/// starts sampling its tree's RSS and threads; with `limit`, kills the group once the limit has passed.
pub fn spawn_measured(
    cmd: &mut Command,
    stdout: &Path,
    stderr: &Path,
    limit: Option<Duration>,
) -> std::io::Result<Measured> {
    use std::os::unix::process::CommandExt;
    let out = File::create(stdout)?;
    let err = File::create(stderr)?;
    let me = std::process::id();
    let peak = Arc::new(AtomicU64::new(0));
    let threads = Arc::new(AtomicU64::new(0));
    let timed_out = Arc::new(AtomicBool::new(false));
    let stop = Arc::new(AtomicBool::new(false));
    let cpu0 = machine_cpu();
    let t0 = Instant::now();
    let child = cmd
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(err)
        .process_group(0)
        .spawn()?;
    let pid = child.id();
    let sampler = {
        let (peak, threads, timed_out, stop) = (
            peak.clone(),
            threads.clone(),
            timed_out.clone(),
            stop.clone(),
        );
        std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                let (rss, n) = tree_usage(me);
                peak.fetch_max(rss, Ordering::Relaxed);
                threads.fetch_max(n, Ordering::Relaxed);
                if limit.is_some_and(|l| t0.elapsed() > l)
                    && !timed_out.swap(true, Ordering::Relaxed)
                {
                    // SAFETY: signalling the process group of our own child (it leads it).
                    unsafe { libc::kill(-(pid as libc::pid_t), libc::SIGKILL) };
                }
                std::thread::sleep(SAMPLE_EVERY);
            }
        })
    };
    Ok(Measured {
        pid,
        t0,
        cpu0,
        peak,
        threads,
        timed_out,
        stop,
        sampler: Some(sampler),
    })
}

impl Measured {
    /// Whether the process has children right now (e.g. knockd's forked commands).
    pub fn has_children(&self) -> bool {
        !children(self.pid).is_empty()
    }

    /// Sends `signal` (if any), waits for the process to exit, stops and reaps orphaned descendants,
    /// and returns what the whole run cost.
    pub fn finish(mut self, signal: Option<i32>) -> std::io::Result<Usage> {
        if let Some(sig) = signal {
            // SAFETY: signalling our own child.
            unsafe { libc::kill(self.pid as libc::pid_t, sig) };
        }
        let (status, ru) = wait4(self.pid as libc::pid_t)?;
        let mut usage = Usage {
            wall: self.t0.elapsed(),
            code: exit_code(status),
            ..Usage::default()
        };
        if let (Some((busy0, all0)), Some((busy1, all1))) = (self.cpu0, machine_cpu()) {
            if all1 > all0 {
                usage.machine_busy = (busy1 - busy0) as f64 / (all1 - all0) as f64;
            }
        }
        add(&mut usage, &ru);
        // Orphans (daemonized descendants) were re-parented to us: stop and reap them.
        for (ru, _) in reap_orphans(std::process::id()) {
            add(&mut usage, &ru);
        }
        self.stop.store(true, Ordering::Relaxed);
        if let Some(s) = self.sampler.take() {
            let _ = s.join();
        }
        usage.tree_rss_kib = self.peak.load(Ordering::Relaxed).max(usage.max_rss_kib);
        usage.peak_threads = self.threads.load(Ordering::Relaxed);
        usage.timed_out = self.timed_out.load(Ordering::Relaxed);
        Ok(usage)
    }
}

impl Drop for Measured {
    fn drop(&mut self) {
        // Only when `finish` was not called (a panic in the benchmark): do not leave a daemon behind.
        if self.sampler.is_some() {
            self.stop.store(true, Ordering::Relaxed);
            // SAFETY: signalling and reaping our own child.
            unsafe {
                libc::kill(self.pid as libc::pid_t, libc::SIGKILL);
                let mut status = 0;
                libc::waitpid(self.pid as libc::pid_t, &mut status, 0);
            }
        }
    }
}

/// (busy, total) CPU time of the whole machine so far, in clock ticks (`/proc/stat`).
fn machine_cpu() -> Option<(u64, u64)> {
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    let line = stat.lines().next()?.strip_prefix("cpu ")?;
    let v: Vec<u64> = line
        .split_whitespace()
        .filter_map(|x| x.parse().ok())
        .collect();
    // user nice system idle iowait irq softirq steal (guest time is already in user)
    let total: u64 = v.iter().take(8).sum();
    let idle = v.get(3)? + v.get(4).unwrap_or(&0);
    Some((total.saturating_sub(idle), total))
}

fn add(u: &mut Usage, ru: &libc::rusage) {
    let tv = |t: libc::timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1000);
    u.cpu += tv(ru.ru_utime) + tv(ru.ru_stime);
    u.max_rss_kib = u.max_rss_kib.max(ru.ru_maxrss as u64);
}

fn exit_code(status: libc::c_int) -> i32 {
    if libc::WIFEXITED(status) {
        libc::WEXITSTATUS(status)
    } else if libc::WIFSIGNALED(status) {
        128 + libc::WTERMSIG(status)
    } else {
        -1
    }
}

fn wait4(pid: libc::pid_t) -> std::io::Result<(libc::c_int, libc::rusage)> {
    let mut status = 0;
    // SAFETY: rusage is plain old data; wait4 fills it.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    loop {
        // SAFETY: valid pointers to locals.
        let r = unsafe { libc::wait4(pid, &mut status, 0, &mut ru) };
        if r == pid {
            return Ok((status, ru));
        }
        let e = std::io::Error::last_os_error();
        if e.kind() != std::io::ErrorKind::Interrupted {
            return Err(e);
        }
    }
}

/// SIGTERM to every child of `me` that is still around, then reap each (SIGKILL after 3 s).
fn reap_orphans(me: u32) -> Vec<(libc::rusage, libc::pid_t)> {
    let pids = children(me);
    for &p in &pids {
        // SAFETY: sending a signal to our own child.
        unsafe { libc::kill(p as libc::pid_t, libc::SIGTERM) };
    }
    let deadline = Instant::now() + Duration::from_secs(3);
    let mut done = Vec::new();
    for p in pids {
        let pid = p as libc::pid_t;
        loop {
            let mut status = 0;
            // SAFETY: as in wait4 above.
            let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
            let r = unsafe { libc::wait4(pid, &mut status, libc::WNOHANG, &mut ru) };
            if r == pid {
                done.push((ru, pid));
                break;
            }
            if r < 0 {
                break; // not our child after all (already reaped)
            }
            if Instant::now() > deadline {
                unsafe { libc::kill(pid, libc::SIGKILL) };
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }
    done
}

/// Direct children of `pid` (all its threads).
fn children(pid: u32) -> Vec<u32> {
    let mut v = Vec::new();
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return v;
    };
    for t in tasks.flatten() {
        if let Ok(s) = std::fs::read_to_string(t.path().join("children")) {
            v.extend(s.split_whitespace().filter_map(|x| x.parse::<u32>().ok()));
        }
    }
    v
}

/// Summed RSS (KiB) and summed thread count of every descendant of `root`, excluding `root` itself.
fn tree_usage(root: u32) -> (u64, u64) {
    let page_kib = page_size() / 1024;
    let (mut total, mut threads) = (0, 0);
    let mut stack = children(root);
    while let Some(p) = stack.pop() {
        if let Ok(s) = std::fs::read_to_string(format!("/proc/{p}/statm")) {
            let rss_pages: u64 = s
                .split_whitespace()
                .nth(1)
                .and_then(|x| x.parse().ok())
                .unwrap_or(0);
            total += rss_pages * page_kib;
        }
        if let Ok(s) = std::fs::read_to_string(format!("/proc/{p}/status")) {
            threads += s
                .lines()
                .find_map(|l| l.strip_prefix("Threads:"))
                .and_then(|v| v.trim().parse::<u64>().ok())
                .unwrap_or(0);
        }
        stack.extend(children(p));
    }
    (total, threads)
}

fn page_size() -> u64 {
    // SAFETY: sysconf has no preconditions.
    let n = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    if n > 0 {
        n as u64
    } else {
        4096
    }
}
