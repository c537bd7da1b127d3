//! A `knockplay listen` process for end-to-end tests: its own config, state and logs, history
//! read through `knockplay history --json`.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The binary under test (examples that share `tests/common` have no such variable).
fn bin() -> &'static str {
    option_env!("CARGO_BIN_EXE_knockplay").unwrap_or("knockplay")
}

/// A listener process with its own config, state and logs.
pub struct Listener {
    child: Option<Child>,
    pub dir: PathBuf,
    pub cfg: PathBuf,
}

impl Listener {
    pub fn start(dir: &Path, cfg: &Path) -> Listener {
        let log = std::fs::File::create(dir.join("listener.out")).unwrap();
        let child = Command::new(bin())
            .args(["listen", "-c"])
            .arg(cfg)
            .env("KNOCKPLAY_LOG", "info")
            .stdout(Stdio::from(log.try_clone().unwrap()))
            .stderr(Stdio::from(log))
            .spawn()
            .expect("start listener");
        let l = Listener {
            child: Some(child),
            dir: dir.to_path_buf(),
            cfg: cfg.to_path_buf(),
        };
        // Ready when it says it captures (or give it a moment).
        let end = Instant::now() + Duration::from_secs(10);
        while Instant::now() < end && !l.output().contains("captur") {
            std::thread::sleep(Duration::from_millis(100));
        }
        std::thread::sleep(Duration::from_millis(300));
        l
    }

    /// The listener's process id (while it runs).
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(|c| c.id())
    }

    pub fn output(&self) -> String {
        std::fs::read_to_string(self.dir.join("listener.out")).unwrap_or_default()
    }

    pub fn history_json(&self) -> serde_json::Value {
        let out = Command::new(bin())
            .args(["history", "--json", "-c"])
            .arg(&self.cfg)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "history: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
            panic!(
                "history --json: {e}: {}",
                String::from_utf8_lossy(&out.stdout)
            )
        })
    }

    pub fn history_text(&self) -> String {
        let out = Command::new(bin())
            .args(["history", "-c"])
            .arg(&self.cfg)
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    pub fn kill(&mut self, signal: i32) {
        if let Some(c) = &self.child {
            unsafe {
                libc::kill(c.id() as i32, signal);
            }
        }
        if let Some(mut c) = self.child.take() {
            let _ = c.wait();
        }
    }
}

impl Listener {
    /// Sends `signal` and waits up to `limit` for the listener to exit; its status if it did.
    pub fn signal_and_wait(
        &mut self,
        signal: i32,
        limit: Duration,
    ) -> Option<std::process::ExitStatus> {
        let c = self.child.as_mut()?;
        unsafe {
            libc::kill(c.id() as i32, signal);
        }
        let end = Instant::now() + limit;
        while Instant::now() < end {
            if let Ok(Some(status)) = c.try_wait() {
                self.child = None;
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        None
    }
}

impl Drop for Listener {
    fn drop(&mut self) {
        self.kill(libc::SIGKILL);
    }
}

pub fn wait_for(what: &str, timeout: Duration, mut f: impl FnMut() -> bool) {
    let end = Instant::now() + timeout;
    while !f() {
        assert!(
            Instant::now() < end,
            "timed out after {timeout:?} waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

pub fn runs_for<'a>(h: &'a serde_json::Value, ip: &str) -> Vec<&'a serde_json::Value> {
    h["runs"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter(|r| r["host"].as_str() == Some(ip))
                .collect()
        })
        .unwrap_or_default()
}

pub fn knocks_for<'a>(h: &'a serde_json::Value, ip: &str) -> Vec<&'a serde_json::Value> {
    h["knocks"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter(|r| r["source"].as_str() == Some(ip))
                .collect()
        })
        .unwrap_or_default()
}

/// Makes a fleet key file at `key` with `knockplay keygen`.
pub fn keygen(key: &Path) {
    let out = Command::new(bin()).arg("keygen").arg(key).output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A knock.toml with one SPA door named `boot` on `iface`/`subnet` that runs `playbook` as root with
/// `ssh_key`, state and logs under `dir`; the fleet key is made with `knockplay keygen` in `dir`.
/// Returns the config and the key file.
pub fn spa_door_config(
    iface: &str,
    subnet: &str,
    dir: &Path,
    playbook: &Path,
    ssh_key: &Path,
) -> (PathBuf, PathBuf) {
    let key = dir.join("fleet.key");
    keygen(&key);
    let cfg = dir.join("knock.toml");
    std::fs::write(
        &cfg,
        format!(
            r#"[listener]
interfaces = ["{iface}"]

[runner]
ssh_wait = 60
grace_period = 5
log_dir = "{dir}/logs"
state_dir = "{dir}/state"

[[door]]
name = "boot"
spa_key_file = "{key}"
allow = ["{subnet}"]
playbook = "{pb}"
user = "root"
private_key = "{ssh_key}"
"#,
            dir = dir.display(),
            key = key.display(),
            pb = playbook.display(),
            ssh_key = ssh_key.display(),
        ),
    )
    .unwrap();
    let check = Command::new(bin())
        .arg("check-config")
        .arg(&cfg)
        .output()
        .unwrap();
    assert!(
        check.status.success(),
        "{}",
        String::from_utf8_lossy(&check.stderr)
    );
    (cfg, key)
}
