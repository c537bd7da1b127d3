//! The knockplay demo: three test hosts boot and knock with an authenticated SPA packet
//! (`knockplay knock --spa` in their user data, before their sshd is up), `knockplay listen` sees
//! the packets on the test network's bridge, verifies them and configures each host with
//! `playbooks/site.yml`, accepting only the host keys each packet carried. Shows the recap of
//! every run and the listener's history. Run it with `bash examples/demo`.

#[path = "../tests/common/mod.rs"]
mod common;

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{TestBed, UserDataOrder};

fn main() {
    if let Err(e) = demo() {
        eprintln!("demo failed: {e}");
        std::process::exit(1);
    }
}

fn demo() -> Result<(), String> {
    let repo = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let bin = repo.join("target/release/knockplay");
    if !bin.exists() {
        return Err(format!(
            "{} missing: run `cargo build --release`",
            bin.display()
        ));
    }
    let n = 3;
    // The fleet key: the listener's door and every host share it (cloud-init user data would
    // carry it; here it is bind-mounted, with the client binary).
    let keys = std::env::temp_dir().join(format!("knockplay-demo-{}", std::process::id()));
    std::fs::create_dir_all(&keys).map_err(|e| e.to_string())?;
    let key = keys.join("fleet.key");
    println!("==> knockplay keygen {}", key.display());
    let made = Command::new(&bin)
        .arg("keygen")
        .arg(&key)
        .status()
        .map_err(|e| e.to_string())?;
    if !made.success() {
        return Err("keygen failed".into());
    }
    println!("==> starting {n} test hosts (containers with sshd; user data knocks at boot)");
    let bed = TestBed::builder()
        .hosts(n)
        .mount(&bin, "/usr/local/bin/knockplay")
        .mount(&key, "/etc/knockplay/fleet.key")
        .userdata(
            "sleep 1; knockplay knock $KP_GATEWAY --spa --key /etc/knockplay/fleet.key --door boot",
            UserDataOrder::BeforeSshd,
        )
        .sshd_delay(3)
        .boot(false)
        .wait_ssh(false)
        .start()
        .map_err(|e| format!("test bed: {e:?}"))?;
    let dir = bed.dir().join("demo");
    std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
    let cfg = dir.join("knock.toml");
    std::fs::write(
        &cfg,
        format!(
            r#"# Demo listener configuration (see the commented knock.toml at the top of the repository).
[listener]
interfaces = ["{iface}"]

[runner]
max_concurrent_runs = 4
ssh_wait = 60
log_dir = "{dir}/logs"
state_dir = "{dir}/state"

[[door]]
name = "boot"
spa_key_file = "{fleet_key}"
allow = ["{subnet}"]
playbook = "{pb}"
user = "root"
private_key = "{key}"
cooldown = 300
"#,
            iface = bed.bridge_if,
            dir = dir.display(),
            subnet = bed.subnet,
            pb = repo.join("playbooks/site.yml").display(),
            key = bed.key_path.display(),
            fleet_key = key.display(),
        ),
    )
    .map_err(|e| e.to_string())?;
    println!("==> knockplay check-config");
    let ok = Command::new(&bin)
        .arg("check-config")
        .arg(&cfg)
        .status()
        .map_err(|e| e.to_string())?;
    if !ok.success() {
        return Err("check-config failed".into());
    }
    println!(
        "==> knockplay listen -c {} (capturing on {})",
        cfg.display(),
        bed.bridge_if
    );
    let log = std::fs::File::create(dir.join("listener.log")).map_err(|e| e.to_string())?;
    let mut listener = Command::new(&bin)
        .args(["listen", "-c"])
        .arg(&cfg)
        .env("KNOCKPLAY_LOG", "info")
        .stdout(Stdio::from(log.try_clone().map_err(|e| e.to_string())?))
        .stderr(Stdio::from(log))
        .spawn()
        .map_err(|e| e.to_string())?;
    std::thread::sleep(Duration::from_secs(1));
    let start = Instant::now();
    println!(
        "==> booting the hosts: each sends one SPA packet (fleet key, its host key fingerprints), before its sshd is up"
    );
    bed.boot().map_err(|e| format!("boot: {e:?}"))?;
    let mut done = vec![false; n];
    while done.iter().any(|d| !d) {
        if start.elapsed() > Duration::from_secs(300) {
            let _ = listener.kill();
            return Err("hosts were not configured within 5 minutes (see listener.log)".into());
        }
        for (i, h) in bed.hosts.iter().enumerate() {
            if !done[i] && h.exists("/var/lib/knockplay/configured") {
                done[i] = true;
                println!(
                    "    {} ({}) configured after {:.1}s",
                    h.name,
                    h.ip,
                    start.elapsed().as_secs_f64()
                );
            }
        }
        std::thread::sleep(Duration::from_millis(300));
    }
    println!(
        "\n==> what a configured host looks like ({}):",
        bed.hosts[0].name
    );
    for cmd in [
        "cat /var/lib/knockplay/configured",
        "cat /etc/motd",
        "cat /srv/app/app.conf",
        "dpkg-query -W knockplay-hello",
    ] {
        let r = bed.hosts[0].exec(cmd);
        println!("$ {cmd}\n{}", r.stdout.trim_end());
    }
    // Stop the listener gracefully, then show the run logs and the history.
    unsafe {
        libc::kill(listener.id() as i32, libc::SIGTERM);
    }
    let _ = listener.wait();
    println!(
        "\n==> recap of each run (per-run logs in {}/logs)",
        dir.display()
    );
    // logs/<host>/<time>-<door>.log
    let mut logs: Vec<PathBuf> = Vec::new();
    for host_dir in std::fs::read_dir(dir.join("logs"))
        .map_err(|e| e.to_string())?
        .flatten()
    {
        if let Ok(files) = std::fs::read_dir(host_dir.path()) {
            logs.extend(files.flatten().map(|f| f.path()));
        }
    }
    logs.sort();
    for l in logs {
        let text = std::fs::read_to_string(&l).unwrap_or_default();
        if let Some(recap) = text.split("PLAY RECAP").nth(1) {
            println!("{}:\nPLAY RECAP{}", l.display(), recap.trim_end());
        }
    }
    println!("\n==> knockplay history");
    Command::new(&bin)
        .args(["history", "-c"])
        .arg(&cfg)
        .status()
        .map_err(|e| e.to_string())?;
    let _ = std::fs::remove_dir_all(&keys);
    println!(
        "\n==> done: {n} hosts booted, knocked and were configured. Cleaning up the test hosts."
    );
    Ok(())
}
