//! Shared end-to-end test harness: real Debian test hosts (containers of the local image
//! `knockplay-testhost`, built by `tests/hosts/build-image`) on a private Docker network per bed, with
//! inspection helpers (exec, file bytes, modes, owners, packages), fault tools (stop, kill sshd,
//! disconnect) and cleanup that survives panics and killed runs.
//!
//! ```ignore
//! mod common;
//! let bed = common::TestBed::start(3)?;                      // 3 hosts, sshd up, key installed
//! let bed = common::TestBed::builder().hosts(2).no_python()
//!     .userdata("knock $KP_GATEWAY 9000 9999", common::UserDataOrder::BeforeSshd)
//!     .sshd_delay(10).boot(false).start()?;                    // created, not booted yet
//! bed.boot()?;                                                 // start them (listener runs first)
//! bed.hosts[0].exec("cat /etc/hostname").stdout;             // docker exec, as root
//! bed.inventory_file();                                        // INI inventory for all hosts
//! ```
//!
//! Every bed owns one Docker network `kptest-<N>` with subnet 10.231.N.0/24 (N is allocated by trying to
//! create the network: Docker refuses overlapping subnets, so parallel tests and parallel test binaries
//! never collide), bridge interface `kp-<N>` on the controller side (gateway 10.231.N.1), and hosts
//! `host<i>` at 10.231.N.(10+i). Containers and networks carry the label `knockplay-test=1` and their owner
//! process; the first bed of every process removes labelled leftovers whose owner is gone. Dropping the
//! bed (also during a panic) removes its containers and network. Nothing here knows knockplay internals.
#![allow(dead_code)]

mod cleanup;
mod docker;
mod host;
pub mod listener;
pub mod postgres;
pub mod twin;

// Re-exports for the tests; a test binary that uses none of them must not warn.
use cleanup::cleanup_leftovers_once;
#[allow(unused_imports)]
pub use cleanup::{cleanup_leftovers, owner_alive, owner_identity, Cleanup};
#[allow(unused_imports)]
pub use docker::require_docker;
use docker::{create_network, docker, docker_ok, remove_containers, run_parallel};
pub use host::Host;

use std::fmt;
use std::net::{IpAddr, Ipv4Addr};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Image every test host runs.
pub const IMAGE: &str = "knockplay-testhost:latest";
/// The test-host image plus Debian's cloud-init (`tests/hosts/build-cloudinit-image`).
pub const CLOUD_INIT_IMAGE: &str = "knockplay-testhost-cloudinit:latest";
/// Label on every container and network the harness creates.
pub const LABEL: &str = "knockplay-test";
/// Label holding `<pid>:<start time>` of the process that owns the object.
pub const OWNER_LABEL: &str = "knockplay-test.owner";
/// Subnets used by beds: 10.231.N.0/24.
pub const SUBNET_BASE: [u8; 2] = [10, 231];
/// Where every host sees the bed's shared directory (read-only); see [`TestBed::signal`].
pub const SHARED_MOUNT: &str = "/kp-shared";
/// Non-root user with passwordless sudo on every host.
pub const DEPLOY_USER: &str = "deploy";
/// Docker commands run at once while starting or removing many hosts (2-core machine).
const DEFAULT_WORKERS: usize = 4;

/// Worker threads for Docker commands: `KNOCKPLAY_TEST_WORKERS` or 4.
fn workers() -> usize {
    std::env::var("KNOCKPLAY_TEST_WORKERS")
        .ok()
        .and_then(|v| v.parse().ok())
        .filter(|&n| n > 0)
        .unwrap_or(DEFAULT_WORKERS)
}
/// How long to wait for sshd on a booted host (plus any configured sshd delay).
const SSH_WAIT: Duration = Duration::from_secs(90);

const HOW_TO_GET_DOCKER: &str = "the end-to-end tests need Docker to run real test hosts. \
Install Docker Engine (Debian: `apt-get install docker.io`), start the daemon (`systemctl start docker`, \
or `dockerd &` where there is no systemd), then run `bash tests/hosts/setup` (builds the test-host image) \
or simply `bash tests/run`";

/// Error from the harness, with a message saying what to do.
pub struct BedError(pub String);

impl fmt::Display for BedError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}
// Debug shows the plain message: `fn test() -> Result<..>` prints Debug on failure.
impl fmt::Debug for BedError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}
impl std::error::Error for BedError {}

pub type Result<T> = std::result::Result<T, BedError>;

fn err<T>(msg: impl Into<String>) -> Result<T> {
    Err(BedError(msg.into()))
}

/// Result of a command run inside a host.
#[derive(Debug, Clone)]
pub struct ExecResult {
    pub rc: i32,
    pub stdout: String,
    pub stderr: String,
}

impl ExecResult {
    pub fn ok(&self) -> bool {
        self.rc == 0
    }
    fn from_output(out: Output) -> ExecResult {
        ExecResult {
            rc: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }
}

/// Mode, owner and type of a file on a host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileStat {
    /// Permission bits, e.g. 0o644.
    pub mode: u32,
    pub owner: String,
    pub group: String,
    pub size: u64,
    /// `stat -c %F`: "regular file", "directory", "symbolic link", ...
    pub kind: String,
}

/// When the user-data script runs relative to sshd.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UserDataOrder {
    /// Run the user data to completion, then (after any sshd delay) start sshd: a boot that knocks before
    /// sshd is ready.
    BeforeSshd,
    /// Start sshd, wait until it listens, then run the user data.
    AfterSshd,
}

// ---------------------------------------------------------------------------------------------------
// builder

/// Options for a bed; finish with [`TestBedBuilder::start`].
#[derive(Debug, Clone)]
pub struct TestBedBuilder {
    hosts: usize,
    no_python: bool,
    userdata: Option<(String, UserDataOrder)>,
    userdata_every_boot: bool,
    sshd_delay: u64,
    env: Vec<(String, String)>,
    /// (path here, path in the host, writable)
    mounts: Vec<(PathBuf, String, bool)>,
    boot: bool,
    wait_ssh: bool,
    /// Another image than [`IMAGE`] (a variant such as [`CLOUD_INIT_IMAGE`]).
    image: Option<String>,
}

impl Default for TestBedBuilder {
    fn default() -> Self {
        TestBedBuilder {
            hosts: 1,
            no_python: false,
            userdata: None,
            userdata_every_boot: false,
            sshd_delay: 0,
            env: Vec::new(),
            mounts: Vec::new(),
            image: None,
            boot: true,
            wait_ssh: true,
        }
    }
}

impl TestBedBuilder {
    /// Number of hosts (1..=240).
    pub fn hosts(mut self, n: usize) -> Self {
        self.hosts = n;
        self
    }
    /// Hosts without python3 (removed at boot).
    pub fn no_python(mut self) -> Self {
        self.no_python = true;
        self
    }
    /// A user-data script (POSIX sh) every host runs at first boot, like cloud-init. `$KP_GATEWAY` inside
    /// the script is the controller's address on the bed network, e.g. `knock $KP_GATEWAY 9000 9999`.
    pub fn userdata(mut self, script: &str, order: UserDataOrder) -> Self {
        self.userdata = Some((script.to_string(), order));
        self
    }
    /// Run the user data at every boot (also after `stop()`/`start()`), not only the first.
    pub fn userdata_every_boot(mut self) -> Self {
        self.userdata_every_boot = true;
        self
    }
    /// Hosts from another image (e.g. [`CLOUD_INIT_IMAGE`]).
    pub fn image(mut self, name: &str) -> Self {
        self.image = Some(name.to_string());
        self
    }
    /// Start sshd this many seconds late at every boot. `start()` then does not wait for sshd.
    pub fn sshd_delay(mut self, secs: u64) -> Self {
        self.sshd_delay = secs;
        self
    }
    /// Extra environment variable for every host's entrypoint (see tests/hosts/image/testhost-init).
    pub fn env(mut self, key: &str, value: &str) -> Self {
        self.env.push((key.to_string(), value.to_string()));
        self
    }
    /// Bind-mounts a file or directory of this machine read-only into every host, e.g. the knockplay
    /// binary at `/usr/local/bin/knockplay` (hosts run the same Debian release, so it links).
    pub fn mount(mut self, host_path: impl AsRef<Path>, container_path: &str) -> Self {
        self.mounts.push((
            host_path.as_ref().to_path_buf(),
            container_path.to_string(),
            false,
        ));
        self
    }
    /// Bind-mounts a directory of this machine read-write into every host (e.g. where the benchmark's
    /// playbook drops time stamps the controller reads without `docker exec`).
    pub fn mount_rw(mut self, host_path: impl AsRef<Path>, container_path: &str) -> Self {
        self.mounts.push((
            host_path.as_ref().to_path_buf(),
            container_path.to_string(),
            true,
        ));
        self
    }
    /// `false`: create the network and containers but do not boot them; call [`TestBed::boot`] later
    /// (e.g. after the knock listener is capturing on `bridge_if`).
    pub fn boot(mut self, boot: bool) -> Self {
        self.boot = boot;
        self
    }
    /// `false`: do not wait for sshd when booting (default: wait, unless an sshd delay is set).
    pub fn wait_ssh(mut self, wait: bool) -> Self {
        self.wait_ssh = wait;
        self
    }
    pub fn start(self) -> Result<TestBed> {
        TestBed::start_with(self)
    }
}

// ---------------------------------------------------------------------------------------------------
// the bed

/// A set of test hosts on their own network. Dropping it removes containers and network.
pub struct TestBed {
    pub hosts: Vec<Host>,
    /// Private key (ed25519, generated for this bed) accepted for `root` and `deploy` on every host.
    pub key_path: PathBuf,
    /// Public key line matching `key_path`.
    pub public_key: String,
    /// Empty known_hosts file for this bed (the ssh client helpers use it with accept-new).
    pub known_hosts: PathBuf,
    /// Controller-side address on the bed network (the bridge); hosts knock to it.
    pub gateway_ip: IpAddr,
    /// Controller-side bridge interface of the bed network, e.g. `kp-17`: capture knocks here.
    pub bridge_if: String,
    /// Docker network name, e.g. `kptest-17`.
    pub network: String,
    /// Subnet in CIDR form, e.g. `10.231.17.0/24`.
    pub subnet: String,
    /// How long creating and booting the hosts took.
    pub started_in: Duration,
    opts: TestBedBuilder,
    net_index: u8,
    dir: tempfile::TempDir,
}

static NEXT_NET: AtomicUsize = AtomicUsize::new(0);

impl TestBed {
    /// `n` booted hosts with sshd accepting connections.
    pub fn start(n: usize) -> Result<TestBed> {
        TestBed::builder().hosts(n).start()
    }

    pub fn builder() -> TestBedBuilder {
        TestBedBuilder::default()
    }

    fn start_with(opts: TestBedBuilder) -> Result<TestBed> {
        if opts.hosts == 0 || opts.hosts > 240 {
            return err(format!("a bed has 1..=240 hosts, not {}", opts.hosts));
        }
        require_docker()?;
        cleanup_leftovers_once()?;
        let t0 = Instant::now();
        let dir = tempfile::Builder::new()
            .prefix("kptest-")
            .tempdir()
            .map_err(|e| BedError(format!("cannot create temp dir: {e}")))?;
        let (key_path, public_key) = generate_key(dir.path())?;
        let known_hosts = dir.path().join("known_hosts");
        let shared = dir.path().join("shared");
        std::fs::create_dir(&shared)
            .and_then(|_| {
                std::fs::set_permissions(
                    &shared,
                    std::os::unix::fs::PermissionsExt::from_mode(0o755),
                )
            })
            .map_err(|e| BedError(format!("cannot create {}: {e}", shared.display())))?;
        let fifo = shared.join(".signal");
        let st = Command::new("mkfifo")
            .arg("-m")
            .arg("0644")
            .arg(&fifo)
            .status();
        if !matches!(st, Ok(s) if s.success()) {
            return err(format!("mkfifo {} failed", fifo.display()));
        }
        std::fs::write(&known_hosts, b"")
            .map_err(|e| BedError(format!("write known_hosts: {e}")))?;
        let net_index = create_network()?;
        let network = format!("kptest-{net_index}");
        let mut bed = TestBed {
            hosts: Vec::new(),
            key_path,
            public_key,
            known_hosts,
            gateway_ip: IpAddr::V4(Ipv4Addr::new(SUBNET_BASE[0], SUBNET_BASE[1], net_index, 1)),
            bridge_if: format!("kp-{net_index}"),
            subnet: format!("{}.{}.{net_index}.0/24", SUBNET_BASE[0], SUBNET_BASE[1]),
            network,
            started_in: Duration::ZERO,
            opts,
            net_index,
            dir,
        };
        // From here on, Drop cleans up whatever was created if a step fails.
        bed.add_hosts(bed.opts.hosts)?;
        bed.started_in = t0.elapsed();
        Ok(bed)
    }

    /// Adds `n` more hosts with the bed's options (booted if the bed boots hosts). Returns their indexes.
    pub fn add_hosts(&mut self, n: usize) -> Result<std::ops::Range<usize>> {
        let first = self.hosts.len();
        if first + n > 240 {
            return err("a bed has at most 240 hosts");
        }
        let new: Vec<Host> = (first..first + n).map(|i| self.host_spec(i)).collect();
        let create_args: Vec<Vec<String>> = new.iter().map(|h| self.create_args(h)).collect();
        self.hosts.extend(new);
        let t0 = Instant::now();
        run_parallel(&create_args, |args| {
            let refs: Vec<&str> = args.iter().map(String::as_str).collect();
            docker_ok(&refs).map(|_| ())
        })?;
        let created = t0.elapsed();
        if self.opts.boot {
            self.boot_range(first..first + n)?;
        }
        if n >= 10 {
            eprintln!(
                "testbed: {n} hosts on {}: created in {:.1} s, booted{} in {:.1} s",
                self.network,
                created.as_secs_f64(),
                if self.opts.boot {
                    " and sshd answering"
                } else {
                    " (not yet)"
                },
                (t0.elapsed() - created).as_secs_f64()
            );
        }
        Ok(first..first + n)
    }

    fn host_spec(&self, i: usize) -> Host {
        Host {
            index: i,
            name: format!("host{i}"),
            ip: IpAddr::V4(Ipv4Addr::new(
                SUBNET_BASE[0],
                SUBNET_BASE[1],
                self.net_index,
                10 + i as u8,
            )),
            container: format!("kptest-{}-{i}", self.net_index),
            network: self.network.clone(),
            key_path: self.key_path.clone(),
            known_hosts: self.known_hosts.clone(),
            sshd_delay: self.opts.sshd_delay,
        }
    }

    fn create_args(&self, h: &Host) -> Vec<String> {
        let mut a: Vec<String> = [
            "create",
            "--name",
            &h.container,
            "--hostname",
            &h.name,
            "--network",
            &self.network,
            "--ip",
            &h.ip.to_string(),
            "--stop-timeout",
            "2",
            "--label",
            &format!("{LABEL}=1"),
            "--label",
            &format!("{OWNER_LABEL}={}", owner_identity()),
            "--label",
            &format!("knockplay-test.bed={}", self.network),
            "-e",
            &format!("AUTHORIZED_KEYS={}", self.public_key),
            "-e",
            &format!("KP_GATEWAY={}", self.gateway_ip),
            "-v",
            &format!("{}:{SHARED_MOUNT}:ro", self.shared_dir().display()),
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        let mut env = self.opts.env.clone();
        if self.opts.no_python {
            env.push(("NO_PYTHON".into(), "1".into()));
        }
        if let Some((script, order)) = &self.opts.userdata {
            env.push(("USERDATA".into(), script.clone()));
            let order = match order {
                UserDataOrder::BeforeSshd => "before",
                UserDataOrder::AfterSshd => "after",
            };
            env.push(("USERDATA_ORDER".into(), order.into()));
        }
        if self.opts.userdata_every_boot {
            env.push(("USERDATA_EVERY_BOOT".into(), "1".into()));
        }
        if self.opts.sshd_delay > 0 {
            env.push(("SSHD_DELAY".into(), self.opts.sshd_delay.to_string()));
        }
        for (k, v) in env {
            a.push("-e".into());
            a.push(format!("{k}={v}"));
        }
        for (from, to, rw) in &self.opts.mounts {
            a.push("-v".into());
            let mode = if *rw { "rw" } else { "ro" };
            a.push(format!("{}:{to}:{mode}", from.display()));
        }
        a.push(self.opts.image.clone().unwrap_or_else(|| IMAGE.into()));
        a
    }

    /// Boots every host that is not running (for beds built with `.boot(false)`), then waits for sshd
    /// unless the bed has an sshd delay or `.wait_ssh(false)`.
    pub fn boot(&self) -> Result<()> {
        self.boot_range(0..self.hosts.len())
    }

    fn boot_range(&self, range: std::ops::Range<usize>) -> Result<()> {
        let hosts = &self.hosts[range];
        run_parallel(hosts, |h| docker_ok(&["start", &h.container]).map(|_| ()))?;
        if self.opts.wait_ssh && self.opts.sshd_delay == 0 {
            for h in hosts {
                h.wait_ssh(SSH_WAIT)?;
            }
        }
        Ok(())
    }

    /// Waits until every host's sshd answers with its banner.
    pub fn wait_ssh(&self, timeout: Duration) -> Result<()> {
        let deadline = Instant::now() + timeout;
        for h in &self.hosts {
            h.wait_ssh(deadline.saturating_duration_since(Instant::now()))?;
        }
        Ok(())
    }

    /// Temporary directory of this bed (keys, known_hosts, inventories); removed on drop.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// INI inventory of all hosts in group `testhosts`, logging in as root with the bed's key.
    pub fn inventory_file(&self) -> PathBuf {
        self.inventory_file_as("root")
    }

    /// Like [`TestBed::inventory_file`] with another login user (e.g. [`DEPLOY_USER`]).
    pub fn inventory_file_as(&self, user: &str) -> PathBuf {
        let path = self.dir.path().join(format!("inventory-{user}.ini"));
        let text = self.inventory_text(user);
        std::fs::write(&path, text).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
        path
    }

    /// The inventory text [`TestBed::inventory_file_as`] writes.
    pub fn inventory_text(&self, user: &str) -> String {
        let mut s = String::from("[testhosts]\n");
        for h in &self.hosts {
            s.push_str(&format!(
                "{} ansible_host={} ansible_user={user} ansible_ssh_private_key_file={}\n",
                h.name,
                h.ip,
                self.key_path.display()
            ));
        }
        s.push_str(&format!(
            "\n[testhosts:vars]\nansible_ssh_common_args='-o UserKnownHostsFile={} -o StrictHostKeyChecking=accept-new -o HashKnownHosts=no'\n",
            self.known_hosts.display()
        ));
        if !self.opts.no_python {
            s.push_str("ansible_python_interpreter=/usr/bin/python3\n");
        }
        s
    }

    /// Fills the bed's known_hosts with every host's ed25519 host key (read with docker exec), for tests
    /// of strict host-key checking. Returns its path.
    pub fn write_known_hosts(&self) -> Result<PathBuf> {
        let mut text = String::new();
        for h in &self.hosts {
            text.push_str(&h.known_hosts_line()?);
            text.push('\n');
        }
        std::fs::write(&self.known_hosts, text)
            .map_err(|e| BedError(format!("write {}: {e}", self.known_hosts.display())))?;
        Ok(self.known_hosts.clone())
    }

    /// Directory of this machine that every host sees read-only at [`SHARED_MOUNT`].
    pub fn shared_dir(&self) -> PathBuf {
        self.dir.path().join("shared")
    }

    /// Creates `<shared dir>/<name>`: every host sees `/kp-shared/<name>` at once. With user data that
    /// runs `testbed-wait go` before knocking, `bed.signal("go")` makes all hosts knock together (herd).
    pub fn signal(&self, name: &str) -> Result<()> {
        let path = self.shared_dir().join(name);
        std::fs::write(&path, b"")
            .map_err(|e| BedError(format!("cannot create {}: {e}", path.display())))?;
        // Wake the hosts sleeping in `testbed-wait` (blocked reading the FIFO): opening it read-write
        // never blocks, and closing it gives the readers end-of-file.
        let fifo = self.shared_dir().join(".signal");
        std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(&fifo)
            .map(drop)
            .map_err(|e| BedError(format!("cannot open {}: {e}", fifo.display())))
    }

    /// Host by inventory name (`host0`, ...).
    pub fn host(&self, name: &str) -> Option<&Host> {
        self.hosts.iter().find(|h| h.name == name)
    }

    /// Runs `cmd` on every host concurrently (few workers); results in host order.
    pub fn exec_all(&self, cmd: &str) -> Vec<ExecResult> {
        let out: Vec<Mutex<Option<ExecResult>>> =
            self.hosts.iter().map(|_| Mutex::new(None)).collect();
        let next = AtomicUsize::new(0);
        std::thread::scope(|s| {
            for _ in 0..workers() {
                s.spawn(|| loop {
                    let i = next.fetch_add(1, Ordering::SeqCst);
                    if i >= self.hosts.len() {
                        break;
                    }
                    let r = self.hosts[i].exec(cmd);
                    *out[i].lock().unwrap_or_else(|p| p.into_inner()) = Some(r);
                });
            }
        });
        out.into_iter()
            .map(|m| {
                m.into_inner()
                    .unwrap_or_else(|p| p.into_inner())
                    .unwrap_or_else(|| ExecResult {
                        rc: -1,
                        stdout: String::new(),
                        stderr: "not run".into(),
                    })
            })
            .collect()
    }
}

impl Drop for TestBed {
    fn drop(&mut self) {
        let names: Vec<String> = self.hosts.iter().map(|h| h.container.clone()).collect();
        remove_containers(&names);
        let _ = docker(&["network", "rm", &self.network]);
    }
}

/// Makes an ed25519 key pair without passphrase in `dir`; returns (private key path, public key line).
fn generate_key(dir: &Path) -> Result<(PathBuf, String)> {
    let key = dir.join("id_ed25519");
    let out = Command::new("ssh-keygen")
        .args([
            "-q",
            "-t",
            "ed25519",
            "-N",
            "",
            "-C",
            "knockplay-test",
            "-f",
        ])
        .arg(&key)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| {
            BedError(format!(
                "cannot run ssh-keygen (apt-get install openssh-client): {e}"
            ))
        })?;
    if !out.status.success() {
        return err(format!(
            "ssh-keygen failed: {}",
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    let public = std::fs::read_to_string(dir.join("id_ed25519.pub"))
        .map_err(|e| BedError(format!("read public key: {e}")))?;
    Ok((key, public.trim().to_string()))
}
