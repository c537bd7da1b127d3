//! End-to-end tests of `knockplay::ssh` against a real OpenSSH sshd started on 127.0.0.1 per test
//! (temp host key, temp authorized key, torn down on drop).

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use knockplay::ssh::become_::{wrap, wrap_input, Become};
use knockplay::ssh::known_hosts::{self, HostKeyPolicy};
use knockplay::ssh::{ConnectOptions, HostSession, Remote, SshError};

mod common;

const SSHD: &str = "/usr/sbin/sshd";

/// A throwaway sshd on a free loopback port, owned by this test. It is the controller's own
/// `/usr/sbin/sshd` when installed, else the test-host image's sshd in a container on the host
/// network (set `KP_SSHD_IN_DOCKER=1` to force that), with config and keys in the same temp dir.
struct LocalSshd {
    dir: tempfile::TempDir,
    port: u16,
    child: Option<Child>,
    /// Name of the sshd container when running in Docker.
    container: Option<String>,
}

fn sshd_in_docker() -> bool {
    std::env::var_os("KP_SSHD_IN_DOCKER").is_some() || !Path::new(SSHD).exists()
}

impl LocalSshd {
    /// Always `Some`; the `Option` keeps the call sites uniform.
    fn start() -> Option<LocalSshd> {
        let sshd = Self::prepare()?;
        let mut sshd = sshd;
        sshd.spawn();
        Some(sshd)
    }

    /// Keys and config, not yet running.
    fn prepare() -> Option<LocalSshd> {
        if sshd_in_docker() {
            if let Err(e) = common::require_docker() {
                panic!("no {SSHD} on this machine and no Docker for the test-host image: {e}");
            }
        } else {
            // sshd's privilege separation directory.
            std::fs::create_dir_all("/run/sshd").unwrap();
        }
        let dir = tempfile::tempdir().unwrap();
        let port = free_port();
        let sshd = LocalSshd {
            dir,
            port,
            child: None,
            container: None,
        };
        sshd.new_host_key();
        keygen(&sshd.client_key(), "ed25519");
        std::fs::copy(
            sshd.client_key().with_extension("pub"),
            sshd.path("authorized_keys"),
        )
        .unwrap();
        let config = format!(
            "Port {port}\nListenAddress 127.0.0.1\nHostKey {hk}\nAuthorizedKeysFile {ak}\n\
             PidFile {pid}\nStrictModes no\nUsePAM no\nPermitRootLogin prohibit-password\n\
             PasswordAuthentication no\nKbdInteractiveAuthentication no\nLogLevel ERROR\n\
             MaxStartups 100\nMaxSessions 100\nSetEnv HOME={home}\n",
            hk = sshd.path("host_key").display(),
            ak = sshd.path("authorized_keys").display(),
            pid = sshd.path("sshd.pid").display(),
            // A clean HOME: the dev machine's root ~/.bashrc (sourced by bash for ssh commands) is
            // slow and would dominate the exec round trip.
            home = sshd.path("home").display(),
        );
        std::fs::create_dir_all(sshd.path("home")).unwrap();
        std::fs::write(sshd.path("sshd_config"), config).unwrap();
        Some(sshd)
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn client_key(&self) -> PathBuf {
        self.path("id_ed25519")
    }

    fn known_hosts(&self) -> PathBuf {
        self.path("state/known_hosts")
    }

    fn new_host_key(&self) {
        let hk = self.path("host_key");
        let _ = std::fs::remove_file(&hk);
        let _ = std::fs::remove_file(hk.with_extension("pub"));
        keygen(&hk, "ed25519");
    }

    fn spawn(&mut self) {
        if sshd_in_docker() {
            self.spawn_in_docker();
        } else {
            self.spawn_local();
        }
        let deadline = Instant::now() + Duration::from_secs(30);
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(Instant::now() < deadline, "sshd did not start");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn spawn_in_docker(&mut self) {
        static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let name = format!(
            "kp-sshd-{}-{}",
            std::process::id(),
            N.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
        );
        let dir = self.dir.path().display().to_string();
        let script = format!(
            "mkdir -p /run/sshd && exec /usr/sbin/sshd -D -e -f {dir}/sshd_config 2>>{dir}/sshd.log"
        );
        let out = Command::new("docker")
            .args(["run", "-d", "--rm", "--network", "host", "--name", &name])
            .arg("--label")
            .arg(common::LABEL)
            .arg("--label")
            .arg(format!(
                "{}={}",
                common::OWNER_LABEL,
                common::owner_identity()
            ))
            .arg("-v")
            .arg(format!("{dir}:{dir}"))
            .args(["--entrypoint", "/bin/sh", common::IMAGE, "-c", &script])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "docker run sshd: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        self.container = Some(name);
    }

    fn spawn_local(&mut self) {
        let child = Command::new(SSHD)
            .arg("-D")
            .arg("-e")
            .arg("-f")
            .arg(self.path("sshd_config"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(self.path("sshd.log")).unwrap())
            .spawn()
            .unwrap();
        self.child = Some(child);
    }

    /// Stop sshd and every connection it serves: the listener, each connection's monitor, its
    /// session process (which holds the TCP connection) and the commands it runs. sshd puts each
    /// connection in a session of its own, so they are found as descendants through /proc, not
    /// by process group; all are killed at once and waited for, so the client sees the connection
    /// closed as soon as this returns.
    fn stop(&mut self) {
        if let Some(name) = self.container.take() {
            let _ = Command::new("docker")
                .args(["rm", "-f", &name])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
        }
        if let Some(mut child) = self.child.take() {
            let pid = child.id() as i32;
            let tree = descendants_of(pid);
            // SAFETY: signalling the sshd we spawned (stops accepting first).
            unsafe { libc::kill(pid, libc::SIGKILL) };
            let _ = child.wait();
            for &p in &tree {
                // SAFETY: signalling a process forked (directly or not) by the sshd we spawned.
                unsafe { libc::kill(p, libc::SIGKILL) };
            }
            // Killed processes are reaped by init; wait until they are gone.
            let deadline = Instant::now() + Duration::from_secs(5);
            while tree.iter().any(|p| process_alive(*p)) && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(10));
            }
        }
    }

    fn options(&self) -> ConnectOptions {
        let mut o = ConnectOptions::new("127.0.0.1", "root");
        o.port = self.port;
        o.private_keys = vec![self.client_key()];
        o.use_agent = false;
        o.known_hosts = self.known_hosts();
        o.connect_timeout = Duration::from_secs(5);
        o
    }

    fn connect(&self) -> HostSession {
        HostSession::connect(&self.options()).unwrap()
    }
}

impl Drop for LocalSshd {
    fn drop(&mut self) {
        self.stop();
    }
}

fn keygen(path: &Path, kind: &str) {
    let st = Command::new("ssh-keygen")
        .args(["-q", "-t", kind, "-N", "", "-C", "knockplay-test", "-f"])
        .arg(path)
        .stdout(Stdio::null())
        .status()
        .unwrap();
    assert!(st.success());
}

/// All descendants of `pid`, children first (from /proc/*/stat).
fn descendants_of(pid: i32) -> Vec<i32> {
    let mut out = children_of(pid);
    let mut i = 0;
    while i < out.len() {
        let grandchildren = children_of(out[i]);
        out.extend(grandchildren);
        i += 1;
    }
    out
}

/// Whether `pid` still exists and is not a zombie.
fn process_alive(pid: i32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().next())
            .is_some_and(|state| state != "Z" && state != "X"),
        Err(_) => false,
    }
}

/// Direct children of `pid` (from /proc/*/stat).
fn children_of(pid: i32) -> Vec<i32> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
            continue;
        };
        // pid (comm) state ppid ...; comm may contain spaces, so split after the last ')'.
        let Some(rest) = stat.rsplit_once(')').map(|(_, r)| r) else {
            continue;
        };
        let ppid: Option<i32> = rest.split_whitespace().nth(1).and_then(|p| p.parse().ok());
        if ppid == Some(pid) {
            if let Ok(child) = entry.file_name().to_string_lossy().parse() {
                out.push(child);
            }
        }
    }
    out
}

/// CPU time (user + system) used by the calling thread.
fn thread_cpu() -> Duration {
    // SAFETY: getrusage fills the zeroed struct we pass.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    unsafe { libc::getrusage(libc::RUSAGE_THREAD, &mut ru) };
    let tv = |t: libc::timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1000);
    tv(ru.ru_utime) + tv(ru.ru_stime)
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[test]
fn exec_returns_exact_bytes_and_status() {
    let Some(sshd) = LocalSshd::start() else {
        return;
    };
    let mut s = sshd.connect();
    let out = s
        .exec(
            "printf 'out\\000bin\\377'; printf 'err\\n' >&2; exit 3",
            None,
            None,
        )
        .unwrap();
    assert_eq!(out.stdout, b"out\0bin\xff");
    assert_eq!(out.stderr, b"err\n");
    assert_eq!(out.rc, 3);

    let out = s.exec("true", None, None).unwrap();
    assert_eq!((out.rc, out.stdout.len(), out.stderr.len()), (0, 0, 0));

    // Killed by a signal: shell convention 128 + n.
    let out = s.exec("kill -TERM $$", None, None).unwrap();
    assert_eq!(out.rc, 143);

    // Commands see EOF on stdin when none is given (no hang).
    let out = s.exec("cat; echo done", None, None).unwrap();
    assert_eq!(out.stdout, b"done\n");
}

#[test]
fn keepalives_during_a_silent_command_do_not_disturb_it() {
    let Some(sshd) = LocalSshd::start() else {
        return;
    };
    let mut o = sshd.options();
    o.keepalive = Duration::from_secs(1);
    let mut s = HostSession::connect(&o).unwrap();
    let out = s
        .exec(
            "sleep 3.5; echo done; echo e >&2",
            None,
            Some(Duration::from_secs(30)),
        )
        .unwrap();
    assert_eq!(
        (out.rc, out.stdout_str(), out.stderr_str()),
        (0, "done\n".into(), "e\n".into())
    );
    std::thread::sleep(Duration::from_millis(2500));
    assert!(s.is_alive());
    assert_eq!(s.exec("echo next", None, None).unwrap().stdout, b"next\n");
}

#[test]
fn stdin_binary_round_trip_and_file_write() {
    let Some(sshd) = LocalSshd::start() else {
        return;
    };
    let mut s = sshd.connect();
    let data: Vec<u8> = (0..3_000_000u32).map(|i| (i * 7 % 256) as u8).collect();
    let out = s.exec("cat", Some(&data), None).unwrap();
    assert_eq!(out.rc, 0);
    assert!(out.stdout == data, "stdin round trip differs");

    // The module way of writing a file: stream bytes into a temp file, then rename.
    let dest = sshd.path("written.bin");
    let cmd = format!("cat > {d}.tmp && mv {d}.tmp {d}", d = dest.display());
    let out = s.exec(&cmd, Some(&data[..100_000]), None).unwrap();
    assert_eq!(out.rc, 0, "{}", out.stderr_str());
    assert_eq!(std::fs::read(&dest).unwrap(), &data[..100_000]);

    // A command that ignores its stdin and exits does not hang the writer.
    let out = s.exec("exit 4", Some(&data), None).unwrap();
    assert_eq!(out.rc, 4);
}

#[test]
fn large_stdout_and_stderr_at_once_do_not_deadlock() {
    let Some(sshd) = LocalSshd::start() else {
        return;
    };
    let mut s = sshd.connect();
    let five_mb = 5 * 1024 * 1024;
    let cmd = format!(
        "yes stderr-line | head -c {five_mb} >&2 & yes stdout-line | head -c {five_mb}; wait"
    );
    let out = s.exec(&cmd, None, Some(Duration::from_secs(120))).unwrap();
    assert_eq!(out.rc, 0);
    assert_eq!(out.stdout.len(), five_mb);
    assert_eq!(out.stderr.len(), five_mb);
    assert!(out.stdout.starts_with(b"stdout-line\nstdout-line\n"));
    assert!(out.stderr.starts_with(b"stderr-line\nstderr-line\n"));
    assert!(out
        .stdout
        .split(|b| *b == b'\n')
        .all(|l| b"stdout-line".starts_with(l)));
    assert!(out
        .stderr
        .split(|b| *b == b'\n')
        .all(|l| b"stderr-line".starts_with(l)));

    // Big stdin while the command writes big stdout and stderr.
    let data: Vec<u8> = (0..five_mb).map(|i| (i % 251) as u8).collect();
    let out = s
        .exec(
            "tee /dev/stderr",
            Some(&data),
            Some(Duration::from_secs(120)),
        )
        .unwrap();
    assert_eq!(out.rc, 0);
    assert!(out.stdout == data && out.stderr == data);
}

#[test]
fn command_timeout_then_session_still_works() {
    let Some(sshd) = LocalSshd::start() else {
        return;
    };
    let mut s = sshd.connect();
    let start = Instant::now();
    let err = s
        .exec("sleep 30", None, Some(Duration::from_millis(1500)))
        .unwrap_err();
    let took = start.elapsed();
    assert!(
        matches!(err, SshError::CommandTimeout { secs: 2 }),
        "{err:?}"
    );
    assert!(!err.is_unreachable());
    eprintln!("timed out after {took:?}");
    assert!(took < Duration::from_secs(10), "timeout took {took:?}");
    let out = s.exec("echo still-here", None, None).unwrap();
    assert_eq!(out.stdout, b"still-here\n");

    // The default from the options applies when exec gives none.
    let mut o = sshd.options();
    o.command_timeout = Some(Duration::from_secs(1));
    let mut s = HostSession::connect(&o).unwrap();
    assert!(matches!(
        s.exec("sleep 30", None, None),
        Err(SshError::CommandTimeout { .. })
    ));
    assert_eq!(s.exec("echo ok", None, None).unwrap().stdout, b"ok\n");
}

#[test]
fn refused_port_is_refused() {
    let Some(sshd) = LocalSshd::prepare() else {
        return;
    };
    let err = HostSession::connect(&sshd.options()).unwrap_err();
    assert!(matches!(err, SshError::Refused { .. }), "{err:?}");
    assert!(err.is_unreachable());
    assert!(
        err.to_string()
            .contains(&format!("127.0.0.1:{}", sshd.port)),
        "{err}"
    );
}

#[test]
fn wrong_key_is_an_auth_error_naming_the_keys() {
    let Some(sshd) = LocalSshd::start() else {
        return;
    };
    let other = sshd.path("other_key");
    keygen(&other, "ed25519");
    let mut o = sshd.options();
    let missing = sshd.path("no_such_key");
    o.private_keys = vec![other.clone(), missing.clone()];
    let err = HostSession::connect(&o).unwrap_err();
    let msg = err.to_string();
    assert!(matches!(err, SshError::Auth { .. }), "{err:?}");
    assert!(msg.contains("root@127.0.0.1"), "{msg}");
    assert!(
        msg.contains(&format!("{} (rejected)", other.display())),
        "{msg}"
    );
    assert!(
        msg.contains(&format!("{} (not found)", missing.display())),
        "{msg}"
    );

    // An RSA key works as well as ed25519 (and a rejected one before it is skipped).
    let rsa = sshd.path("rsa_key");
    keygen(&rsa, "rsa");
    let ecdsa = sshd.path("ecdsa_key");
    keygen(&ecdsa, "ecdsa");
    let mut keys = std::fs::read_to_string(rsa.with_extension("pub")).unwrap();
    keys.push_str(&std::fs::read_to_string(ecdsa.with_extension("pub")).unwrap());
    std::fs::write(sshd.path("authorized_keys"), keys).unwrap();
    for key in [&rsa, &ecdsa] {
        o.private_keys = vec![other.clone(), key.clone()];
        let mut s = HostSession::connect(&o).unwrap();
        assert_eq!(s.exec("echo in", None, None).unwrap().stdout, b"in\n");
    }
}

#[test]
fn agent_identities_and_encrypted_key_files() {
    let Some(sshd) = LocalSshd::start() else {
        return;
    };
    // An encrypted key file is reported as such (knockplay does not ask for passphrases).
    let enc = sshd.path("enc_key");
    let st = Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "secret pass", "-f"])
        .arg(&enc)
        .status()
        .unwrap();
    assert!(st.success());
    let mut o = sshd.options();
    o.private_keys = vec![enc.clone()];
    let msg = HostSession::connect(&o).unwrap_err().to_string();
    assert!(
        msg.contains(&format!(
            "{} (encrypted; load it into ssh-agent)",
            enc.display()
        )),
        "{msg}"
    );

    // A private agent holding the authorized key.
    let sock = sshd.path("agent.sock");
    let mut agent = Command::new("ssh-agent")
        .arg("-D")
        .arg("-a")
        .arg(&sock)
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while !sock.exists() {
        assert!(Instant::now() < deadline, "ssh-agent did not start");
        std::thread::sleep(Duration::from_millis(20));
    }
    let added = Command::new("ssh-add")
        .arg(sshd.client_key())
        .env("SSH_AUTH_SOCK", &sock)
        .output()
        .unwrap();
    let mut o = sshd.options();
    o.private_keys = vec![enc.clone()];
    o.use_agent = true;
    o.agent_socket = Some(sock.clone());
    let result = HostSession::connect(&o).and_then(|mut s| s.exec("echo agent", None, None));
    let _ = agent.kill();
    let _ = agent.wait();
    assert!(
        added.status.success(),
        "{}",
        String::from_utf8_lossy(&added.stderr)
    );
    assert_eq!(result.unwrap().stdout, b"agent\n");

    // Agent gone: the error says so next to the key that failed.
    let msg = HostSession::connect(&o).unwrap_err().to_string();
    assert!(
        msg.contains("ssh-agent at ") && msg.contains("unavailable"),
        "{msg}"
    );
    assert!(msg.contains("encrypted"), "{msg}");
}

#[test]
fn accept_new_records_key_and_changed_key_is_refused_loudly() {
    let Some(mut sshd) = LocalSshd::start() else {
        return;
    };
    let kh = sshd.known_hosts();
    assert!(!kh.exists());
    {
        let mut s = sshd.connect();
        assert_eq!(s.exec("echo 1", None, None).unwrap().stdout, b"1\n");
    }
    let text = std::fs::read_to_string(&kh).unwrap();
    let host_pub = std::fs::read_to_string(sshd.path("host_key.pub")).unwrap();
    let host_b64 = host_pub.split_whitespace().nth(1).unwrap();
    assert_eq!(
        text,
        format!("[127.0.0.1]:{} ssh-ed25519 {host_b64}\n", sshd.port)
    );
    // Known now: strict accepts it, and nothing is appended twice.
    let mut o = sshd.options();
    o.host_key_policy = HostKeyPolicy::Strict;
    drop(HostSession::connect(&o).unwrap());
    drop(sshd.connect());
    assert_eq!(std::fs::read_to_string(&kh).unwrap(), text);

    // The host is rebuilt with a new key.
    sshd.stop();
    sshd.new_host_key();
    sshd.spawn();
    for policy in [HostKeyPolicy::AcceptNew, HostKeyPolicy::Strict] {
        let mut o = sshd.options();
        o.host_key_policy = policy;
        let err = HostSession::connect(&o).unwrap_err();
        let msg = err.to_string();
        assert!(matches!(err, SshError::HostKeyChanged { .. }), "{err:?}");
        assert!(msg.contains("HOST KEY CHANGED"), "{msg}");
        assert!(msg.contains("man-in-the-middle"), "{msg}");
        assert!(msg.contains(&kh.display().to_string()), "{msg}");
    }
    assert_eq!(
        std::fs::read_to_string(&kh).unwrap(),
        text,
        "file untouched"
    );

    // The fix the message suggests works: remove the entry, then accept-new records the new key.
    let err = HostSession::connect(&sshd.options())
        .unwrap_err()
        .to_string();
    let suggested = err.split("remove the old entry: ").nth(1).unwrap();
    let st = Command::new("sh")
        .arg("-c")
        .arg(suggested)
        .output()
        .unwrap();
    assert!(
        st.status.success(),
        "{suggested}: {}",
        String::from_utf8_lossy(&st.stderr)
    );
    let mut fixed = sshd.connect();
    assert_eq!(
        fixed.exec("echo fixed", None, None).unwrap().stdout,
        b"fixed\n"
    );
    drop(fixed);
    let new_pub = std::fs::read_to_string(sshd.path("host_key.pub")).unwrap();
    let new_b64 = new_pub.split_whitespace().nth(1).unwrap();
    let now = std::fs::read_to_string(&kh).unwrap();
    assert!(now.contains(new_b64) && !now.contains(host_b64), "{now}");
    // Back to the recorded state for the `off` check below.
    std::fs::write(&kh, &text).unwrap();

    // Off connects anyway (with a warning) and still does not write.
    let mut o = sshd.options();
    o.host_key_policy = HostKeyPolicy::Off;
    let mut s = HostSession::connect(&o).unwrap();
    assert_eq!(s.exec("echo off", None, None).unwrap().stdout, b"off\n");
    assert_eq!(std::fs::read_to_string(&kh).unwrap(), text);
}

#[test]
fn strict_with_unknown_host_is_refused() {
    let Some(sshd) = LocalSshd::start() else {
        return;
    };
    let mut o = sshd.options();
    o.host_key_policy = HostKeyPolicy::Strict;
    let err = HostSession::connect(&o).unwrap_err();
    assert!(matches!(err, SshError::HostKeyUnknown { .. }), "{err:?}");
    assert!(err.to_string().contains("strict"), "{err}");
    assert!(!sshd.known_hosts().exists());
}

#[test]
fn known_key_type_is_preferred_when_the_host_has_several() {
    let Some(mut sshd) = LocalSshd::prepare() else {
        return;
    };
    // The host has ed25519 and rsa keys; we only know its rsa key.
    let rsa = sshd.path("host_rsa");
    keygen(&rsa, "rsa");
    let cfg = sshd.path("sshd_config");
    let mut text = std::fs::read_to_string(&cfg).unwrap();
    text.push_str(&format!("HostKey {}\n", rsa.display()));
    std::fs::write(&cfg, text).unwrap();
    let rsa_pub = std::fs::read_to_string(rsa.with_extension("pub")).unwrap();
    let b64 = rsa_pub.split_whitespace().nth(1).unwrap();
    let kh = sshd.known_hosts();
    std::fs::create_dir_all(kh.parent().unwrap()).unwrap();
    std::fs::write(
        &kh,
        format!(
            "{} ssh-rsa {b64}\n",
            known_hosts::host_pattern("127.0.0.1", sshd.port)
        ),
    )
    .unwrap();
    sshd.spawn();
    let mut o = sshd.options();
    o.host_key_policy = HostKeyPolicy::Strict;
    let mut s = HostSession::connect(&o).unwrap();
    assert_eq!(s.exec("echo rsa", None, None).unwrap().stdout, b"rsa\n");
}

#[test]
fn wait_for_ssh_connects_once_sshd_starts_late() {
    let Some(mut sshd) = LocalSshd::prepare() else {
        return;
    };
    let mut o = sshd.options();
    o.wait_for_ssh = Some(Duration::from_secs(30));
    let start = Instant::now();
    let connecting = std::thread::spawn(move || {
        HostSession::connect(&o).map(|mut s| s.exec("echo up", None, None))
    });
    std::thread::sleep(Duration::from_secs(3));
    sshd.spawn();
    let out = connecting.join().unwrap().unwrap().unwrap();
    assert_eq!(out.stdout, b"up\n");
    let took = start.elapsed();
    assert!(
        took >= Duration::from_secs(3) && took < Duration::from_secs(15),
        "{took:?}"
    );

    // Without waiting, a refused port fails at once; with a short wait it fails after the wait.
    let mut o = sshd.options();
    o.port = free_port();
    let start = Instant::now();
    assert!(matches!(
        HostSession::connect(&o),
        Err(SshError::Refused { .. })
    ));
    o.wait_for_ssh = Some(Duration::from_secs(1));
    assert!(matches!(
        HostSession::connect(&o),
        Err(SshError::Refused { .. })
    ));
    assert!(start.elapsed() >= Duration::from_secs(1));
}

#[test]
fn lost_connection_is_detected_and_reconnect_works() {
    let Some(mut sshd) = LocalSshd::start() else {
        return;
    };
    let mut s = sshd.connect();
    assert!(s.is_alive());
    sshd.stop();
    // The server side of the connection is gone.
    let deadline = Instant::now() + Duration::from_secs(5);
    while s.is_alive() {
        assert!(
            Instant::now() < deadline,
            "is_alive did not notice the closed connection"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let err = s.exec("true", None, None).unwrap_err();
    assert!(err.is_unreachable(), "{err:?}");
    sshd.spawn();
    Remote::reconnect(&mut s, Duration::from_secs(10)).unwrap();
    assert!(s.is_alive());
    assert_eq!(s.exec("echo back", None, None).unwrap().stdout, b"back\n");

    // Known dead, server back: the next exec reconnects by itself (the command was not sent yet).
    sshd.stop();
    while s.is_alive() {
        std::thread::sleep(Duration::from_millis(50));
    }
    sshd.spawn();
    assert_eq!(s.exec("echo again", None, None).unwrap().stdout, b"again\n");
}

#[test]
fn exec_after_server_died_mid_session_reports_unreachable() {
    let Some(mut sshd) = LocalSshd::start() else {
        return;
    };
    let mut s = sshd.connect();
    assert_eq!(s.exec("echo 1", None, None).unwrap().rc, 0);
    sshd.stop();
    std::thread::sleep(Duration::from_millis(200));
    // The command was never sent; the one reconnect attempt is refused.
    let err = s
        .exec("echo 2", None, Some(Duration::from_secs(5)))
        .unwrap_err();
    assert!(matches!(err, SshError::Refused { .. }), "{err:?}");
    assert!(!s.is_alive());
}

#[test]
fn connection_dropped_while_idle_is_reopened_for_the_next_command() {
    let Some(mut sshd) = LocalSshd::start() else {
        return;
    };
    let mut s = sshd.connect();
    let marker = sshd.path("ran");
    let count = format!("echo x >> {}", marker.display());
    s.exec(&count, None, None).unwrap();
    sshd.stop();
    sshd.spawn();
    std::thread::sleep(Duration::from_millis(200));
    let out = s.exec(&count, None, None).unwrap();
    assert_eq!(out.rc, 0);
    assert!(s.is_alive());
    // Each command ran exactly once.
    assert_eq!(std::fs::read_to_string(&marker).unwrap(), "x\nx\n");

    // A command cut off while it runs is not repeated: the error goes to the caller.
    let out = s.exec(&count, None, None).unwrap();
    assert_eq!(out.rc, 0);
    let started = sshd.path("started");
    let cmd = format!("touch {}; sleep 30", started.display());
    let killer = {
        let started = started.clone();
        std::thread::spawn(move || {
            while !started.exists() {
                std::thread::sleep(Duration::from_millis(20));
            }
            sshd.stop();
            sshd
        })
    };
    let err = s
        .exec(&cmd, None, Some(Duration::from_secs(20)))
        .unwrap_err();
    assert!(err.is_unreachable(), "{err:?}");
    let sshd = killer.join().unwrap();
    assert_eq!(std::fs::read_to_string(&marker).unwrap(), "x\nx\nx\n");
    drop(sshd);
}

#[test]
fn become_and_env_quoting_survive_the_real_path() {
    let Some(sshd) = LocalSshd::start() else {
        return;
    };
    let mut s = sshd.connect();
    let env = vec![
        ("KP_V".to_string(), "it's \"$HOME\" `x` \\ end".to_string()),
        ("KP_N".to_string(), "two\nlines".to_string()),
    ];
    let cmd = "printf '%s|%s|' \"$KP_V\" \"$KP_N\"; id -un; cat <<'EOF'\n$literal 'q'\nEOF";
    let want_tail = "it's \"$HOME\" `x` \\ end|two\nlines|";
    let out = s.exec(&wrap(cmd, None, &env), None, None).unwrap();
    assert_eq!(out.stdout_str(), format!("{want_tail}root\n$literal 'q'\n"));

    // su from root to an unprivileged user: no password needed.
    let nobody = Become::su("nobody");
    let out = s.exec(&wrap(cmd, Some(&nobody), &env), None, None).unwrap();
    assert_eq!(out.rc, 0, "{}", out.stderr_str());
    assert_eq!(
        out.stdout_str(),
        format!("{want_tail}nobody\n$literal 'q'\n")
    );

    // stdin passes through become.
    let data: Vec<u8> = (0..=255u8).cycle().take(200_000).collect();
    let w = wrap_input("wc -c", Some(&nobody), &[], Some(&data));
    let out = s.exec(&w.command, w.stdin.as_deref(), None).unwrap();
    assert_eq!(out.stdout_str().trim(), "200000");
}

#[test]
fn exec_round_trip_time() {
    let Some(sshd) = LocalSshd::start() else {
        return;
    };
    let mut s = sshd.connect();
    let n = 30;
    let start = Instant::now();
    for i in 0..n {
        let out = s.exec(&format!("echo {i}"), None, None).unwrap();
        assert_eq!(out.stdout_str(), format!("{i}\n"));
    }
    let per = start.elapsed() / n;
    // Reported, not asserted: speed is measured, never a test condition.
    eprintln!("exec round trip over loopback: {per:?} per command ({n} commands)");
}

// ---------------------------------------------------------------------------------------------------
// Against the shared test hosts (containers of `knockplay-testhost`, user `deploy` with sudo).

type R = Result<(), Box<dyn std::error::Error>>;

fn bed_options(bed: &common::TestBed, host: &common::Host, user: &str) -> ConnectOptions {
    let mut o = ConnectOptions::new(host.ip.to_string(), user);
    o.name = host.name.clone();
    o.private_keys = vec![bed.key_path.clone()];
    o.use_agent = false;
    o.known_hosts = bed.dir().join("knockplay_known_hosts");
    o.connect_timeout = Duration::from_secs(10);
    o
}

#[test]
fn testbed_become_sudo_from_deploy_to_root_and_file_write() -> R {
    let bed = common::TestBed::start(1)?;
    let host = &bed.hosts[0];
    let mut s = HostSession::connect(&bed_options(&bed, host, common::DEPLOY_USER))?;
    assert_eq!(s.name(), host.name);

    let out = s.exec("id -un", None, None)?;
    assert_eq!(out.stdout_str(), "deploy\n");

    let root = Become::sudo("root");
    let env = vec![(
        "KP_MSG".to_string(),
        "it's \"$HOME\" `x`\nline2".to_string(),
    )];
    let cmd = "id -un; printf '%s\\n' \"$HOME\"; printf '%s' \"$KP_MSG\"";
    let out = s.exec(&wrap(cmd, Some(&root), &env), None, None)?;
    assert_eq!(out.rc, 0, "{}", out.stderr_str());
    assert_eq!(out.stdout_str(), "root\n/root\nit's \"$HOME\" `x`\nline2");

    // The module way to write a root-owned file in one round trip: bytes over stdin, temp + rename.
    let data: Vec<u8> = (0..=255u8).cycle().take(300_000).collect();
    let write = "umask 077; cat > /root/.kp.tmp && mv /root/.kp.tmp /root/kp-written.bin";
    let w = wrap_input(write, Some(&root), &[], Some(&data));
    let out = s.exec(&w.command, w.stdin.as_deref(), None)?;
    assert_eq!(out.rc, 0, "{}", out.stderr_str());
    assert_eq!(host.read_file("/root/kp-written.bin"), Some(data));
    let stat = host.stat("/root/kp-written.bin").ok_or("no stat")?;
    assert_eq!((stat.owner.as_str(), stat.mode), ("root", 0o600));

    // sudo to a non-root user, and a heredoc through two quoting layers.
    let nobody = Become::sudo("nobody");
    let out = s.exec(
        &wrap("id -un; cat <<'EOF'\n$X 'q' \"d\"\nEOF", Some(&nobody), &[]),
        None,
        None,
    )?;
    assert_eq!(out.stdout_str(), "nobody\n$X 'q' \"d\"\n");

    // su needs root; from deploy it fails clearly instead of prompting for a password.
    let w = wrap_input("id -un", Some(&Become::su("root")), &[], Some(b"secret?"));
    let out = s.exec(&w.command, w.stdin.as_deref(), None)?;
    assert_eq!(out.rc, knockplay::ssh::become_::BECOME_UNSUPPORTED_RC);
    assert!(
        out.stderr_str().contains("su passwords are not supported"),
        "{}",
        out.stderr_str()
    );
    assert!(out.stdout.is_empty());
    Ok(())
}

#[test]
fn testbed_su_as_root_and_failed_sudo_rc() -> R {
    let bed = common::TestBed::start(1)?;
    let host = &bed.hosts[0];
    let mut s = HostSession::connect(&bed_options(&bed, host, "root"))?;
    let out = s.exec(
        &wrap("id -un", Some(&Become::su("deploy")), &[]),
        None,
        None,
    )?;
    assert_eq!(out.stdout_str(), "deploy\n", "{}", out.stderr_str());
    let out = s.exec(
        &wrap("exit 9", Some(&Become::sudo("root")), &[]),
        None,
        None,
    )?;
    assert_eq!(out.rc, 9);
    Ok(())
}

#[test]
fn testbed_wait_for_ssh_on_a_booting_host() -> R {
    let bed = common::TestBed::builder()
        .hosts(1)
        .sshd_delay(4)
        .boot(false)
        .start()?;
    let host = &bed.hosts[0];
    let mut o = bed_options(&bed, host, "root");
    o.wait_for_ssh = Some(Duration::from_secs(90));
    let start = Instant::now();
    let connecting = std::thread::spawn(move || {
        HostSession::connect(&o).and_then(|mut s| s.exec("cat /etc/hostname", None, None))
    });
    bed.boot()?;
    let out = connecting.join().map_err(|_| "connect thread panicked")??;
    assert_eq!(out.stdout_str().trim(), host.name);
    assert!(start.elapsed() >= Duration::from_secs(4));

    // The recorded key is what the host really has.
    let kh = std::fs::read_to_string(bed.dir().join("knockplay_known_hosts"))?;
    let host_pub = host
        .read_to_string("/etc/ssh/ssh_host_ed25519_key.pub")
        .ok_or("no key")?;
    let b64 = host_pub.split_whitespace().nth(1).ok_or("bad key")?;
    assert!(
        kh.contains(&format!("{} ", host.ip)) && kh.contains(b64),
        "{kh}"
    );
    Ok(())
}

#[test]
fn testbed_killed_sshd_is_unreachable_then_reconnect() -> R {
    let bed = common::TestBed::start(1)?;
    let host = &bed.hosts[0];
    let mut s = HostSession::connect(&bed_options(&bed, host, "root"))?;
    assert_eq!(s.exec("echo 1", None, None)?.stdout, b"1\n");
    host.kill_sshd()?;
    let err = s
        .exec("echo 2", None, Some(Duration::from_secs(10)))
        .unwrap_err();
    assert!(err.is_unreachable(), "{err:?}");
    assert!(!s.is_alive());
    let refused = HostSession::connect(&bed_options(&bed, host, "root")).unwrap_err();
    assert!(matches!(refused, SshError::Refused { .. }), "{refused:?}");
    host.start_sshd()?;
    Remote::reconnect(&mut s, Duration::from_secs(30))?;
    assert_eq!(s.exec("echo 3", None, None)?.stdout, b"3\n");
    Ok(())
}

#[test]
fn testbed_hosts_in_parallel_one_session_per_thread() -> R {
    let bed = common::TestBed::start(4)?;
    let handles: Vec<_> = bed
        .hosts
        .iter()
        .map(|h| {
            let opts = bed_options(&bed, h, common::DEPLOY_USER);
            let name = h.name.clone();
            std::thread::spawn(move || -> Result<(), String> {
                let mut s = HostSession::connect(&opts).map_err(|e| e.to_string())?;
                let root = Become::sudo("root");
                for i in 0..20 {
                    let cmd = wrap(
                        &format!("echo {i} > /root/kp-{i}; hostname"),
                        Some(&root),
                        &[],
                    );
                    let out = s.exec(&cmd, None, None).map_err(|e| e.to_string())?;
                    if out.stdout_str().trim() != name || out.rc != 0 {
                        return Err(format!("{name}: {out:?}"));
                    }
                }
                Ok(())
            })
        })
        .collect();
    for h in handles {
        h.join().map_err(|_| "thread panicked")??;
    }
    for h in &bed.hosts {
        assert_eq!(h.read_to_string("/root/kp-19").as_deref(), Some("19\n"));
    }
    // Every host recorded once, by concurrent accept-new.
    let kh = std::fs::read_to_string(bed.dir().join("knockplay_known_hosts"))?;
    let entries = known_hosts::parse(&kh);
    assert_eq!(entries.len(), bed.hosts.len(), "{kh}");
    for h in &bed.hosts {
        assert!(
            entries.iter().any(|e| e.hosts == [h.ip.to_string()]),
            "{kh}"
        );
    }
    Ok(())
}

#[test]
fn testbed_exec_round_trip_time() -> R {
    let bed = common::TestBed::start(1)?;
    let host = &bed.hosts[0];
    let start = Instant::now();
    let mut s = HostSession::connect(&bed_options(&bed, host, "root"))?;
    eprintln!(
        "connect + auth to a test host container: {:?}",
        start.elapsed()
    );
    let n = 100;
    let cpu0 = thread_cpu();
    let start = Instant::now();
    for i in 0..n {
        assert_eq!(
            s.exec(&format!("echo {i}"), None, None)?.stdout_str(),
            format!("{i}\n")
        );
    }
    // Reported, not asserted.
    eprintln!(
        "exec round trip to a test host container: {:?} per command, controller CPU {:?} per \
         command ({n} commands)",
        start.elapsed() / n,
        (thread_cpu() - cpu0) / n
    );
    // Baseline for the report: OpenSSH's client over one multiplexed connection (ControlMaster).
    if std::env::var_os("KP_SSH_BASELINE").is_some() {
        let cm = bed.dir().join("cm");
        let mux = |c: &mut Command| {
            c.arg("-o")
                .arg(format!("ControlPath={}", cm.display()))
                .arg("-o")
                .arg("ControlMaster=auto")
                .arg("-o")
                .arg("ControlPersist=30");
        };
        let mut first = host.ssh_command("root");
        mux(&mut first);
        assert!(first.arg("true").status()?.success());
        let start = Instant::now();
        for i in 0..n {
            let mut c = host.ssh_command("root");
            mux(&mut c);
            let out = c.arg(format!("echo {i}")).output()?;
            assert_eq!(String::from_utf8_lossy(&out.stdout), format!("{i}\n"));
        }
        eprintln!(
            "baseline, OpenSSH client over a ControlMaster connection: {:?} per command",
            start.elapsed() / n
        );
        let _ = Command::new("ssh")
            .arg("-o")
            .arg(format!("ControlPath={}", cm.display()))
            .args(["-O", "exit", "mux"])
            .output();
    }
    Ok(())
}

#[test]
fn the_command_shell_gives_the_same_results_as_a_channel_per_command() {
    let Some(sshd) = LocalSshd::start() else {
        return;
    };
    let mut with = sshd.options();
    with.command_shell = true;
    let mut without = sshd.options();
    without.command_shell = false;
    let mut a = HostSession::connect(&with).unwrap();
    let mut b = HostSession::connect(&without).unwrap();
    let all_bytes: Vec<u8> = (0..=255u8).cycle().take(70_000).collect();
    let big = vec![b'x'; 2 << 20];
    // (command, stdin)
    let cases: Vec<(&str, Option<&[u8]>)> =
        vec![
        ("sha256sum", Some(&all_bytes)),
        ("cat", Some(&all_bytes[..300])),
        ("wc -c", Some(b"")),
        ("head -c 3; echo", Some(&all_bytes)),
        ("wc -c", Some(&big)),
        ("read -r l; echo \"got $l\"; exit 4", Some(b"line one\nline two\n")),
        ("printf 'no newline'", None),
        ("printf 'out\\000bin\\377'; printf 'err' >&2; exit 7", None),
        ("cd /tmp; X=leak; export Y=leak", None),
        ("pwd; echo \"x=$X y=$Y\"", None),
        ("exit 0", None),
        ("if then fi", None),
        ("cat; echo done", None),
        ("cat | wc -c", Some(b"twelve bytes")),
        (
            "head -c 1048576 /dev/zero | tr '\\0' o; head -c 1048576 /dev/zero | tr '\\0' e >&2",
            None,
        ),
        ("echo \"$0\" | grep -c sh", None),
        // Strict shell options in the command do not reach the shell's own bookkeeping.
        ("set -eu; echo \"${KP_UNSET:-default}\"; exit 3", None),
        ("set -eu; false; echo unreachable", None),
        ("set -u; sleep 0.1 & wait; echo waited", None),
        ("kill -TERM $$", None),
        ("echo still here", None),
    ];
    for (cmd, stdin) in &cases {
        let x = a.exec(cmd, *stdin, None).unwrap();
        let y = b.exec(cmd, *stdin, None).unwrap();
        assert_eq!(
            (x.rc, &x.stdout),
            (y.rc, &y.stdout),
            "{cmd}: command shell vs channel per command"
        );
        // A syntax error is worded by the shell that parses it (sh vs the login shell).
        if cmd.starts_with("if then") {
            assert!(!x.stderr.is_empty() && !y.stderr.is_empty(), "{cmd}");
        } else {
            assert_eq!(x.stderr, y.stderr, "{cmd}");
        }
    }
    // A command that leaves a background job writing later: the next command's output is its own.
    let out = a
        .exec("(sleep 0.3; echo late) & echo now", None, None)
        .unwrap();
    assert_eq!(out.stdout_str(), "now\n");
    std::thread::sleep(Duration::from_millis(600));
    let out = a.exec("echo next", None, None).unwrap();
    assert_eq!(out.stdout_str(), "next\n");
    // A timed-out command does not block the next one.
    let e = a
        .exec("sleep 5", None, Some(Duration::from_millis(300)))
        .unwrap_err();
    assert!(matches!(e, SshError::CommandTimeout { .. }), "{e:?}");
    let out = a.exec("echo after timeout", None, None).unwrap();
    assert_eq!(out.stdout_str(), "after timeout\n");
}
