//! A herd of lightweight knocking hosts: one network namespace per host, each with a veth pair on
//! a bridge the harness creates. Subnet 10.234.0.0/16 (controller 10.234.0.1, host i at
//! 10.234.(1 + i / 250).(1 + i % 250)), clear of the docker beds (10.231.N.0/24) and the other
//! knock tests (10.232/10.233). Everything is deleted on drop, also when a test panics halfway.
//!
//! Hosts knock all at once: each host's client waits in a shell on a FIFO, the harness opens and
//! closes it, and every waiting shell goes on at the same moment.

use std::io::Write;
use std::net::Ipv4Addr;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub const GATEWAY: Ipv4Addr = Ipv4Addr::new(10, 234, 0, 1);
pub const SUBNET: &str = "10.234.0.0/16";

pub struct HerdHost {
    pub ns: String,
    pub ip: Ipv4Addr,
}

pub struct Herd {
    pub bridge: String,
    pub hosts: Vec<HerdHost>,
    /// veth ends on the bridge (deleting a namespace deletes its pair; these are for leftovers).
    links: Vec<String>,
    dir: tempfile::TempDir,
}

/// Runs `ip -batch -` (optionally inside namespace `ns`) with `lines`; panics with its stderr.
fn ip_batch(ns: Option<&str>, lines: &str) {
    let mut cmd = Command::new("ip");
    if let Some(ns) = ns {
        cmd.args(["-n", ns]);
    }
    let mut child = cmd
        .args(["-batch", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("ip -batch: {e}"));
    child
        .stdin
        .take()
        .unwrap()
        .write_all(lines.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "ip -batch ({ns:?}) failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

impl Herd {
    /// Creates the bridge and `n` (at most 2,000) namespace hosts on it.
    pub fn create(n: usize) -> Herd {
        assert!(n <= 2000, "at most 2000 hosts");
        let pid = std::process::id();
        let mut herd = Herd {
            bridge: format!("kph{pid}"),
            hosts: Vec::new(),
            links: Vec::new(),
            dir: tempfile::tempdir().unwrap(),
        };
        // Leftovers of a killed run with the same pid are removed first (best effort).
        herd.cleanup_named(n);
        ip_batch(
            None,
            &format!(
                "link add {b} type bridge\naddr add {GATEWAY}/16 dev {b}\nlink set {b} up\n",
                b = herd.bridge
            ),
        );
        let mut root = String::new();
        for i in 0..n {
            let ns = format!("kph-{pid}-{i}");
            let link = format!("kh{i}p{pid}");
            root.push_str(&format!("netns add {ns}\nlink add {link} type veth peer name eth0 netns {ns}\nlink set {link} master {} up\n", herd.bridge));
            herd.hosts.push(HerdHost {
                ns,
                ip: Ipv4Addr::new(10, 234, 1 + (i / 250) as u8, 1 + (i % 250) as u8),
            });
            herd.links.push(link);
        }
        ip_batch(None, &root);
        for h in &herd.hosts {
            ip_batch(
                Some(&h.ns),
                &format!(
                    "addr add {}/16 dev eth0\nlink set eth0 up\nlink set lo up\n",
                    h.ip
                ),
            );
        }
        herd
    }

    fn cleanup_named(&self, n: usize) {
        let pid = std::process::id();
        let mut lines = String::new();
        for i in 0..n {
            lines.push_str(&format!("netns del kph-{pid}-{i}\nlink del kh{i}p{pid}\n"));
        }
        lines.push_str(&format!("link del {}\n", self.bridge));
        // -force: go on past the lines that name nothing.
        let _ = Command::new("ip")
            .args(["-force", "-batch", "-"])
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .and_then(|mut c| {
                if let Some(mut i) = c.stdin.take() {
                    let _ = i.write_all(lines.as_bytes());
                }
                c.wait()
            });
    }

    /// Starts one knocking client per host, each waiting for [`Herd::release`]. `client(i)` is
    /// the command line host `i` runs (in its namespace, through `/bin/sh -c`).
    pub fn arm(&self, client: impl Fn(usize, &HerdHost) -> String) -> Armed {
        let fifo = self.dir.path().join(format!("go-{}", unique()));
        let ready = self.dir.path().join(format!("ready-{}", unique()));
        std::fs::create_dir(&ready).unwrap();
        let c = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
        // SAFETY: a valid NUL-terminated path.
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0, "mkfifo");
        let children = self
            .hosts
            .iter()
            .enumerate()
            .map(|(i, h)| {
                let script = format!(
                    ": > {ready}/{i}; cat {fifo} > /dev/null; exec {cmd}",
                    ready = ready.display(),
                    fifo = fifo.display(),
                    cmd = client(i, h)
                );
                Command::new("ip")
                    .args(["netns", "exec", &h.ns, "/bin/sh", "-c", &script])
                    .stdin(Stdio::null())
                    .stdout(Stdio::null())
                    .stderr(Stdio::piped())
                    .spawn()
                    .unwrap_or_else(|e| panic!("ip netns exec {}: {e}", h.ns))
            })
            .collect();
        Armed {
            fifo,
            ready,
            children,
        }
    }
}

impl Drop for Herd {
    fn drop(&mut self) {
        self.cleanup_named(self.hosts.len().max(self.links.len()));
    }
}

fn unique() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0)
}

/// Clients waiting for the signal.
pub struct Armed {
    fifo: PathBuf,
    ready: PathBuf,
    children: Vec<Child>,
}

impl Armed {
    /// Waits until every client waits, lets them all go at once, and waits (up to `timeout`) for
    /// every client to exit. Returns when the signal was given and each client's
    /// (exit success, stderr); clients still running at the deadline are killed (reported failed).
    pub fn release(mut self, timeout: Duration) -> (Instant, Vec<(bool, String)>) {
        let n = self.children.len();
        let deadline = Instant::now() + timeout;
        while count_files(&self.ready) < n {
            assert!(
                Instant::now() < deadline,
                "only {} of {n} clients got ready",
                count_files(&self.ready)
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        // The ready mark comes just before `cat` opens the FIFO: give the last ones a moment.
        std::thread::sleep(Duration::from_millis(200));
        let go = Instant::now();
        // Opening read-write never blocks; every reader blocked in open() goes on, and once this
        // end is closed each of them reads end-of-file.
        let f = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .custom_flags(libc::O_NONBLOCK)
            .open(&self.fifo)
            .unwrap();
        std::thread::sleep(Duration::from_millis(100));
        drop(f);
        let mut results = Vec::with_capacity(n);
        for c in &mut self.children {
            results.push(wait_child(c, deadline));
        }
        (go, results)
    }
}

impl Drop for Armed {
    fn drop(&mut self) {
        for c in &mut self.children {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

fn count_files(dir: &Path) -> usize {
    std::fs::read_dir(dir).map(|d| d.count()).unwrap_or(0)
}

fn wait_child(c: &mut Child, deadline: Instant) -> (bool, String) {
    loop {
        match c.try_wait() {
            Ok(Some(status)) => {
                let mut err = String::new();
                if let Some(mut e) = c.stderr.take() {
                    let _ = std::io::Read::read_to_string(&mut e, &mut err);
                }
                return (status.success(), err);
            }
            Ok(None) if Instant::now() >= deadline => {
                let _ = c.kill();
                let _ = c.wait();
                return (false, "still running at the deadline: killed".into());
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(10)),
            Err(e) => return (false, format!("wait: {e}")),
        }
    }
}
