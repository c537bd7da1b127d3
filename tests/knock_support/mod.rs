//! Test networks for the knock listener: a veth pair into a network namespace, created and
//! deleted by the test (also on panic), plus a fake launcher that records runs.
//!
//! Subnets: 10.232.N.0/24 and fd00:232:N::/64 (controller side .1 / ::1, namespace side .2 / ::2).
//! Spoofed flood sources live in 10.233.0.0/16, routed back into the veth so no reply leaves it.

#![allow(dead_code)]

pub mod herd;

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::process::{Command, Output};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use knockplay::counters::RunCounts;
use knockplay::knock::client::{knock_until_configured, UntilConfigured, UntilError};
use knockplay::knock::{Launcher, PortSpec, Proto, RunJob, RunOutcome};

/// The sequence the namespace tests' doors listen for: 7000/tcp, 8000/udp, 9000/tcp.
pub const SEQ: [PortSpec; 3] = [
    PortSpec {
        port: 7000,
        proto: Proto::Tcp,
    },
    PortSpec {
        port: 8000,
        proto: Proto::Udp,
    },
    PortSpec {
        port: 9000,
        proto: Proto::Tcp,
    },
];

pub struct NetNs {
    pub name: String,
    pub host_if: String,
    pub ns_if: String,
    pub host_ip: Ipv4Addr,
    pub peer_ip: Ipv4Addr,
    pub host_ip6: Ipv6Addr,
    pub peer_ip6: Ipv6Addr,
}

fn run(args: &[&str]) -> Output {
    Command::new(args[0])
        .args(&args[1..])
        .output()
        .unwrap_or_else(|e| panic!("{args:?}: {e}"))
}

fn must(args: &[&str]) {
    let o = run(args);
    assert!(
        o.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
}

/// Whether this process can create namespaces and capture (root or CAP_NET_ADMIN + CAP_NET_RAW).
pub fn privileged() -> bool {
    // SAFETY: geteuid has no preconditions.
    let root = unsafe { libc::geteuid() == 0 };
    // In CI these tests must run, never skip silently.
    assert!(
        root || std::env::var_os("CI").is_none(),
        "knock capture tests need root (raw sockets, network namespaces); CI must run them as root"
    );
    root
}

impl NetNs {
    /// Creates namespace and veth pair number `index` (1–250). Panics with the failing command.
    pub fn create(index: u8) -> NetNs {
        let pid = std::process::id();
        let n = NetNs {
            name: format!("kpk-{pid}-{index}"),
            host_if: format!("kpk{index:02}{pid}h"),
            ns_if: format!("kpk{index:02}{pid}n"),
            host_ip: Ipv4Addr::new(10, 232, index, 1),
            peer_ip: Ipv4Addr::new(10, 232, index, 2),
            host_ip6: format!("fd00:232:{index:x}::1").parse().unwrap(),
            peer_ip6: format!("fd00:232:{index:x}::2").parse().unwrap(),
        };
        // A leftover from a killed earlier run with the same pid would block us.
        let _ = run(&["ip", "netns", "del", &n.name]);
        let _ = run(&["ip", "link", "del", &n.host_if]);
        must(&["ip", "netns", "add", &n.name]);
        must(&[
            "ip", "link", "add", &n.host_if, "type", "veth", "peer", "name", &n.ns_if,
        ]);
        must(&["ip", "link", "set", &n.ns_if, "netns", &n.name]);
        must(&[
            "ip",
            "addr",
            "add",
            &format!("{}/24", n.host_ip),
            "dev",
            &n.host_if,
        ]);
        must(&[
            "ip",
            "-6",
            "addr",
            "add",
            &format!("{}/64", n.host_ip6),
            "dev",
            &n.host_if,
            "nodad",
        ]);
        must(&["ip", "link", "set", &n.host_if, "up"]);
        must(&[
            "ip",
            "route",
            "add",
            &format!("10.233.{index}.0/24"),
            "dev",
            &n.host_if,
        ]);
        n.exec_ok(&[
            "ip",
            "addr",
            "add",
            &format!("{}/24", n.peer_ip),
            "dev",
            &n.ns_if,
        ]);
        n.exec_ok(&[
            "ip",
            "-6",
            "addr",
            "add",
            &format!("{}/64", n.peer_ip6),
            "dev",
            &n.ns_if,
            "nodad",
        ]);
        n.exec_ok(&["ip", "link", "set", &n.ns_if, "up"]);
        n.exec_ok(&["ip", "link", "set", "lo", "up"]);
        assert!(
            n.wait_up(Duration::from_secs(10)),
            "veth pair did not come up"
        );
        n
    }

    /// Waits until both ends report operstate `up`.
    pub fn wait_up(&self, timeout: Duration) -> bool {
        let end = std::time::Instant::now() + timeout;
        loop {
            let host =
                std::fs::read_to_string(format!("/sys/class/net/{}/operstate", self.host_if))
                    .unwrap_or_default();
            let peer = self.exec(&["cat", &format!("/sys/class/net/{}/operstate", self.ns_if)]);
            if host.trim() == "up" && String::from_utf8_lossy(&peer.stdout).trim() == "up" {
                return true;
            }
            if std::time::Instant::now() >= end {
                return false;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Routes `cidr` (spoofed flood sources) back into the veth, so replies never leave it.
    pub fn route_back(&self, cidr: &str) {
        must(&["ip", "route", "replace", cidr, "dev", &self.host_if]);
    }

    /// Runs a command inside the namespace.
    pub fn exec(&self, args: &[&str]) -> Output {
        let mut full = vec!["ip", "netns", "exec", &self.name];
        full.extend_from_slice(args);
        run(&full)
    }

    pub fn exec_ok(&self, args: &[&str]) -> Output {
        let o = self.exec(args);
        assert!(
            o.status.success(),
            "{args:?} in {}: {}",
            self.name,
            String::from_utf8_lossy(&o.stderr)
        );
        o
    }

    /// Runs `f` on a thread that has entered the namespace (so its sockets live there).
    pub fn within<T: Send + 'static>(&self, f: impl FnOnce() -> T + Send + 'static) -> T {
        let path = format!("/var/run/netns/{}", self.name);
        std::thread::spawn(move || {
            let file = std::fs::File::open(&path).unwrap();
            use std::os::fd::AsRawFd;
            // SAFETY: setns on a valid namespace descriptor; affects only this thread.
            let rc = unsafe { libc::setns(file.as_raw_fd(), libc::CLONE_NEWNET) };
            assert_eq!(rc, 0, "setns: {}", std::io::Error::last_os_error());
            f()
        })
        .join()
        .unwrap()
    }

    /// The MAC address of the controller-side interface.
    pub fn host_mac(&self) -> [u8; 6] {
        let s =
            std::fs::read_to_string(format!("/sys/class/net/{}/address", self.host_if)).unwrap();
        let mut mac = [0u8; 6];
        for (i, part) in s.trim().split(':').enumerate() {
            mac[i] = u8::from_str_radix(part, 16).unwrap();
        }
        mac
    }

    pub fn peer(&self) -> IpAddr {
        IpAddr::V4(self.peer_ip)
    }

    /// Knocks [`SEQ`] at the controller side until configured (the client of `knockplay knock
    /// --until-configured`), from a thread that has entered the namespace.
    pub fn spawn_knock_until_configured(
        &self,
        opts: UntilConfigured,
    ) -> std::thread::JoinHandle<Result<u32, UntilError>> {
        let host = self.host_ip.to_string();
        let path = format!("/var/run/netns/{}", self.name);
        std::thread::spawn(move || {
            let f = std::fs::File::open(path).unwrap();
            use std::os::fd::AsRawFd;
            // SAFETY: enters the test namespace on this thread only.
            assert_eq!(unsafe { libc::setns(f.as_raw_fd(), libc::CLONE_NEWNET) }, 0);
            knock_until_configured(&host, &SEQ, Duration::ZERO, &opts)
        })
    }
}

impl Drop for NetNs {
    fn drop(&mut self) {
        // Deleting the namespace deletes its veth end, which deletes the pair.
        let _ = run(&["ip", "netns", "del", &self.name]);
        let _ = run(&["ip", "link", "del", &self.host_if]);
    }
}

/// A launcher that records jobs, writes the log and succeeds after `delay`.
#[derive(Default)]
pub struct RecordingLauncher {
    pub jobs: Mutex<Vec<RunJob>>,
    /// When each job reached the launcher.
    pub started: Mutex<Vec<std::time::Instant>>,
    pub delay: Duration,
    pub active: AtomicUsize,
    pub peak: AtomicUsize,
}

impl RecordingLauncher {
    pub fn new(delay: Duration) -> Arc<Self> {
        Arc::new(RecordingLauncher {
            delay,
            ..Default::default()
        })
    }
    pub fn hosts(&self) -> Vec<IpAddr> {
        self.jobs.lock().unwrap().iter().map(|j| j.host).collect()
    }
}

impl Launcher for RecordingLauncher {
    fn run(&self, job: &RunJob) -> RunOutcome {
        let now = self.active.fetch_add(1, Ordering::SeqCst) + 1;
        self.peak.fetch_max(now, Ordering::SeqCst);
        std::fs::write(
            &job.log_path,
            format!("PLAY [{}] host {}\n", job.door, job.host),
        )
        .unwrap();
        self.started.lock().unwrap().push(std::time::Instant::now());
        self.jobs.lock().unwrap().push(job.clone());
        std::thread::sleep(self.delay);
        self.active.fetch_sub(1, Ordering::SeqCst);
        RunOutcome {
            counts: RunCounts {
                ok: 2,
                changed: 1,
                ..RunCounts::default()
            },
            ..RunOutcome::default()
        }
    }
}

/// Resident memory of this process, KiB.
pub fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .unwrap()
        .lines()
        .find_map(|l| {
            l.strip_prefix("VmRSS:")
                .map(|v| v.trim().trim_end_matches(" kB").trim().parse().unwrap())
        })
        .unwrap()
}

/// Writes raw Ethernet frames onto an interface (run it `within` the namespace).
pub struct FrameSender {
    fd: std::os::fd::OwnedFd,
    ifindex: i32,
}

impl FrameSender {
    pub fn open(ifname: &str) -> FrameSender {
        use std::os::fd::FromRawFd;
        let name = std::ffi::CString::new(ifname).unwrap();
        // SAFETY: valid C string.
        let ifindex = unsafe { libc::if_nametoindex(name.as_ptr()) } as i32;
        assert!(ifindex > 0, "no interface {ifname}");
        // SAFETY: plain socket call; protocol 0 means send-only.
        let fd = unsafe { libc::socket(libc::AF_PACKET, libc::SOCK_RAW | libc::SOCK_CLOEXEC, 0) };
        assert!(fd >= 0, "socket: {}", std::io::Error::last_os_error());
        // SAFETY: fd is fresh and owned from here on.
        FrameSender {
            fd: unsafe { std::os::fd::OwnedFd::from_raw_fd(fd) },
            ifindex,
        }
    }

    /// Sends one frame; retries briefly when the device queue is full.
    pub fn send(&self, frame: &[u8]) {
        use std::os::fd::AsRawFd;
        // SAFETY: sockaddr_ll is plain old data.
        let mut sll: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
        sll.sll_family = libc::AF_PACKET as u16;
        sll.sll_ifindex = self.ifindex;
        sll.sll_halen = 6;
        sll.sll_addr[..6].copy_from_slice(&frame[..6]);
        for _ in 0..100 {
            // SAFETY: frame and sll are valid for the lengths given.
            let n = unsafe {
                libc::sendto(
                    self.fd.as_raw_fd(),
                    frame.as_ptr() as *const libc::c_void,
                    frame.len(),
                    0,
                    &sll as *const libc::sockaddr_ll as *const libc::sockaddr,
                    std::mem::size_of::<libc::sockaddr_ll>() as u32,
                )
            };
            if n >= 0 {
                return;
            }
            let e = std::io::Error::last_os_error();
            assert_eq!(e.raw_os_error(), Some(libc::ENOBUFS), "sendto: {e}");
            std::thread::sleep(Duration::from_micros(100));
        }
    }
}

/// Marks the run as started (writes its id into the file), then hangs: the listener gets killed
/// meanwhile.
pub struct HangingLauncher(pub std::path::PathBuf);

impl Launcher for HangingLauncher {
    fn run(&self, job: &RunJob) -> RunOutcome {
        std::fs::write(&self.0, job.run_id.to_string()).unwrap();
        std::thread::sleep(Duration::from_secs(600));
        RunOutcome::default()
    }
}

/// The body of a test file's ignored `child_listener` test: the listener process a test starts
/// (config in `KNOCKPLAY_TEST_CHILD_CONFIG`) and kills. It writes `<started>.ready` once it listens
/// and the run id into `KNOCKPLAY_TEST_CHILD_STARTED` when a run starts (then hangs).
pub fn child_listener_main() {
    let Ok(cfg) = std::env::var("KNOCKPLAY_TEST_CHILD_CONFIG") else {
        return;
    };
    let started = std::path::PathBuf::from(std::env::var("KNOCKPLAY_TEST_CHILD_STARTED").unwrap());
    let config = knockplay::config::load(std::path::Path::new(&cfg)).unwrap();
    let control = knockplay::knock::Control::new();
    let c = control.clone();
    let ready = started.with_extension("ready");
    std::thread::spawn(move || {
        if c.wait_ready(Duration::from_secs(10)) {
            std::fs::write(ready, "").unwrap();
        }
    });
    knockplay::knock::listen(config, Arc::new(HangingLauncher(started)), control).unwrap();
}

/// Polls `f` every 50 ms until it holds; panics naming `what` after `timeout`.
pub fn wait(what: &str, timeout: Duration, f: impl Fn() -> bool) {
    let end = std::time::Instant::now() + timeout;
    while !f() {
        assert!(
            std::time::Instant::now() < end,
            "timed out waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The listener's history under state directory `state`, as `knockplay history --json` prints it.
pub fn history_json(state: &std::path::Path) -> serde_json::Value {
    let mut out = Vec::new();
    knockplay::history::print(
        &knockplay::history::HistoryUrl::default_for(state),
        &Default::default(),
        true,
        &mut out,
    )
    .unwrap();
    serde_json::from_slice(&out).unwrap()
}

/// Starts this test binary's ignored `child_listener` test (see [`child_listener_main`]) as a
/// listener process with config `cfg`, and waits until it listens; `who` names it in the timeout.
pub fn start_child_listener(
    cfg: &std::path::Path,
    started: &std::path::Path,
    who: &str,
) -> std::process::Child {
    let child = Command::new(std::env::current_exe().unwrap())
        .args(["--ignored", "--exact", "child_listener", "--nocapture"])
        .env("KNOCKPLAY_TEST_CHILD_CONFIG", cfg)
        .env("KNOCKPLAY_TEST_CHILD_STARTED", started)
        .spawn()
        .unwrap();
    wait(who, Duration::from_secs(20), || {
        started.with_extension("ready").exists()
    });
    child
}
