//! Tests of the shared test-host harness (tests/common) against real containers: independent hosts,
//! login by key, fault tools, user data, the offline apt repository, leftovers of killed runs, 50 hosts.

mod common;

use common::{TestBed, UserDataOrder, DEPLOY_USER};
use std::collections::HashSet;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

type R = Result<(), Box<dyn std::error::Error>>;

#[test]
fn three_hosts_have_distinct_addresses_and_independent_filesystems() -> R {
    let bed = TestBed::start(3)?;
    let ips: HashSet<_> = bed.hosts.iter().map(|h| h.ip).collect();
    assert_eq!(ips.len(), 3, "addresses: {ips:?}");
    assert!(!ips.contains(&bed.gateway_ip));
    for h in &bed.hosts {
        let ip = h.exec("ip -4 -o addr show eth0").stdout;
        assert!(ip.contains(&format!("{}/24", h.ip)), "{}: {ip}", h.name);
        assert_eq!(
            h.read_to_string("/etc/hostname").as_deref().map(str::trim),
            Some(h.name.as_str())
        );
    }
    // The bridge interface named after the network is on this machine, with the gateway address.
    let link = Command::new("ip")
        .args(["-4", "-o", "addr", "show", "dev", &bed.bridge_if])
        .output()?;
    assert!(
        String::from_utf8_lossy(&link.stdout).contains(&format!("{}/24", bed.gateway_ip)),
        "bridge {}: {}",
        bed.bridge_if,
        String::from_utf8_lossy(&link.stderr)
    );

    bed.hosts[1].write_file("/root/only-here", b"host1 bytes\n")?;
    assert_eq!(
        bed.hosts[1].read_file("/root/only-here").as_deref(),
        Some(&b"host1 bytes\n"[..])
    );
    assert_eq!(bed.hosts[0].read_file("/root/only-here"), None);
    assert_eq!(bed.hosts[2].read_file("/root/only-here"), None);
    assert!(bed.hosts[1].exists("/root/only-here"));
    assert!(!bed.hosts[0].exists("/root/only-here"));

    let r = bed.hosts[2].exec("install -m 0640 -o deploy -g root /dev/null /tmp/m && echo done");
    assert_eq!((r.rc, r.stdout.trim()), (0, "done"), "{r:?}");
    assert_eq!(
        bed.hosts[2].file_mode_owner("/tmp/m"),
        Some((0o640, "deploy".into(), "root".into()))
    );
    assert_eq!(
        bed.hosts[2].stat("/tmp").map(|s| s.kind),
        Some("directory".to_string())
    );
    assert_eq!(bed.hosts[0].file_mode_owner("/tmp/m"), None);
    assert!(bed.hosts[0].user_exists(DEPLOY_USER));
    assert!(!bed.hosts[0].user_exists("nobody-here"));

    let r = bed.hosts[0].exec("echo out; echo err >&2; exit 7");
    assert_eq!(
        (r.rc, r.stdout.as_str(), r.stderr.as_str()),
        (7, "out\n", "err\n")
    );
    let all = bed.exec_all("hostname");
    let names: Vec<_> = all.iter().map(|r| r.stdout.trim().to_string()).collect();
    assert_eq!(names, ["host0", "host1", "host2"]);
    Ok(())
}

#[test]
fn ssh_login_with_generated_key_as_root_and_deploy_with_sudo() -> R {
    let bed = TestBed::start(1)?;
    let h = &bed.hosts[0];
    let r = h.ssh("root", "id -un");
    assert_eq!((r.rc, r.stdout.trim()), (0, "root"), "{r:?}");
    let r = h.ssh(DEPLOY_USER, "id -un && sudo -n true && sudo -n id -u");
    assert_eq!((r.rc, r.stdout.as_str()), (0, "deploy\n0\n"), "{r:?}");
    // Host key recorded in the bed's own known_hosts (accept-new), and the key is per container.
    let kh = std::fs::read_to_string(&bed.known_hosts)?;
    assert!(kh.contains(&h.ip.to_string()), "known_hosts: {kh}");
    let host_pub = h
        .read_to_string("/etc/ssh/ssh_host_ed25519_key.pub")
        .unwrap_or_default();
    let key_b64 = host_pub.split_whitespace().nth(1).unwrap_or("missing");
    assert!(
        kh.contains(key_b64),
        "known_hosts {kh} lacks the host's key {host_pub}"
    );
    // A key not installed on the host is refused.
    let other = bed.dir().join("other_key");
    let st = Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-f"])
        .arg(&other)
        .status()?;
    assert!(st.success());
    let out = Command::new("ssh")
        .arg("-i")
        .arg(&other)
        .arg("-o")
        .arg(format!("UserKnownHostsFile={}", bed.known_hosts.display()))
        .args([
            "-o",
            "StrictHostKeyChecking=yes",
            "-o",
            "BatchMode=yes",
            "-o",
            "IdentitiesOnly=yes",
        ])
        .arg(format!("root@{}", h.ip))
        .arg("true")
        .stdin(Stdio::null())
        .output()?;
    assert_eq!(
        out.status.code(),
        Some(255),
        "login with a foreign key must fail"
    );
    // The inventory names every host with its address, user and key.
    let inv = std::fs::read_to_string(bed.inventory_file())?;
    assert!(inv.contains(&format!(
        "host0 ansible_host={} ansible_user=root ansible_ssh_private_key_file={}",
        h.ip,
        bed.key_path.display()
    )));
    let inv = std::fs::read_to_string(bed.inventory_file_as(DEPLOY_USER))?;
    assert!(inv.contains("ansible_user=deploy"), "{inv}");
    Ok(())
}

#[test]
fn hosts_have_distinct_host_keys() -> R {
    let bed = TestBed::start(2)?;
    let a = bed.hosts[0].read_file("/etc/ssh/ssh_host_ed25519_key.pub");
    let b = bed.hosts[1].read_file("/etc/ssh/ssh_host_ed25519_key.pub");
    assert!(a.is_some() && b.is_some());
    assert_ne!(a, b);
    // Pre-filled known_hosts: strict checking accepts the real host key.
    let kh = bed.write_known_hosts()?;
    let text = std::fs::read_to_string(&kh)?;
    assert_eq!(text.lines().count(), 2);
    let out = Command::new("ssh")
        .arg("-i")
        .arg(&bed.key_path)
        .arg("-o")
        .arg(format!("UserKnownHostsFile={}", kh.display()))
        .args([
            "-o",
            "StrictHostKeyChecking=yes",
            "-o",
            "BatchMode=yes",
            "-o",
            "IdentitiesOnly=yes",
        ])
        .args(["-o", "HostKeyAlgorithms=ssh-ed25519"])
        .arg(format!("root@{}", bed.hosts[1].ip))
        .arg("hostname")
        .stdin(Stdio::null())
        .output()?;
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "host1\n",
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // A restart keeps the key (generated at first boot only).
    bed.hosts[0].stop()?;
    assert!(!bed.hosts[0].is_running());
    bed.hosts[0].start()?;
    assert_eq!(
        bed.hosts[0].read_file("/etc/ssh/ssh_host_ed25519_key.pub"),
        a
    );
    Ok(())
}

#[test]
fn fault_tools_stop_kill_sshd_disconnect_reconnect() -> R {
    let bed = TestBed::start(2)?;
    let (h, other) = (&bed.hosts[0], &bed.hosts[1]);
    h.write_file("/root/keep", b"kept")?;

    h.stop()?;
    assert!(!h.is_running());
    assert!(!h.ssh_up());
    assert!(other.ssh_up(), "stopping one host leaves the other alone");
    h.start()?;
    assert!(h.ssh_up());
    assert_eq!(
        h.read_file("/root/keep").as_deref(),
        Some(&b"kept"[..]),
        "stop/start keeps the filesystem"
    );

    h.kill_sshd()?;
    assert!(h.is_running(), "the host lives on without sshd");
    assert!(!h.ssh_up());
    assert_eq!(h.exec("pgrep -x sshd").rc, 1);
    h.start_sshd()?;
    assert_eq!(h.ssh("root", "echo back").stdout, "back\n");

    h.disconnect()?;
    assert!(!h.ssh_up());
    assert!(h.is_running());
    let r = h.exec("ip -4 -o addr show eth0");
    assert_ne!(r.rc, 0, "eth0 gone while disconnected: {r:?}");
    h.reconnect()?;
    h.wait_ssh(Duration::from_secs(120))?;
    assert_eq!(h.ssh("root", "hostname").stdout.trim(), h.name);

    h.kill()?;
    assert!(!h.is_running());
    Ok(())
}

#[test]
fn stock_knock_client_and_offline_local_apt_repository() -> R {
    let bed = TestBed::start(1)?;
    let h = &bed.hosts[0];
    let r = h.exec("command -v knock && command -v python3 && command -v sudo && command -v ss");
    assert_eq!(r.rc, 0, "{r:?}");
    // Only the local repository is configured.
    let r = h.exec("cat /etc/apt/sources.list.d/* ; ls /etc/apt/sources.list 2>/dev/null; true");
    assert_eq!(
        r.stdout.trim(),
        "deb [trusted=yes] file:/srv/localrepo ./",
        "{r:?}"
    );

    let r = h.exec("apt-get update -q && apt-get install -y -q knockplay-hello && knockplay-hello");
    assert_eq!(r.rc, 0, "{r:?}");
    assert!(r.stdout.ends_with("hello 1.0\n"), "{}", r.stdout);
    assert_eq!(h.package_version("knockplay-hello").as_deref(), Some("1.0"));

    // A newer version appears only after publishing it and updating the cache.
    let r = h.exec("apt-get install -y -q --only-upgrade knockplay-hello");
    assert_eq!(r.rc, 0, "{r:?}");
    assert_eq!(h.package_version("knockplay-hello").as_deref(), Some("1.0"));
    let r = h.exec("localrepo-publish knockplay-hello 2.0 && apt-get update -q && apt-get install -y -q knockplay-hello");
    assert_eq!(r.rc, 0, "{r:?}");
    assert_eq!(h.package_version("knockplay-hello").as_deref(), Some("2.0"));
    assert_eq!(
        h.read_to_string("/usr/share/knockplay-hello/VERSION")
            .as_deref(),
        Some("2.0\n")
    );

    let r =
        h.exec("apt-get install -y -q apache2 && service apache2 start && service apache2 status");
    assert_eq!(r.rc, 0, "{r:?}");
    assert!(h.exists("/usr/share/doc/apache2-fake/README"));
    assert!(h.exists("/etc/apache2-fake.conf"));
    let r = h.exec("service apache2 stop; service apache2 status");
    assert_eq!(r.rc, 3, "{r:?}");

    let r = h.exec("apt-get purge -y -q knockplay-hello apache2");
    assert_eq!(r.rc, 0, "{r:?}");
    assert_eq!(h.package_version("knockplay-hello"), None);
    assert!(!h.exists("/etc/apache2-fake.conf"));
    Ok(())
}

#[test]
fn userdata_runs_before_or_after_sshd_and_python_can_be_absent() -> R {
    let probe = "if ss -Hltn 'sport = :22' | grep -q .; then echo sshd-up; else echo sshd-down; fi; echo gw=$KP_GATEWAY";
    let before = TestBed::builder()
        .hosts(1)
        .no_python()
        .userdata(probe, UserDataOrder::BeforeSshd)
        .sshd_delay(3)
        .start()?;
    let after = TestBed::builder()
        .hosts(1)
        .userdata(probe, UserDataOrder::AfterSshd)
        .start()?;

    let h = &before.hosts[0];
    // sshd starts 3 s late: not up at first, up after waiting.
    h.wait_ssh(Duration::from_secs(120))?;
    let (log, rc) = h.userdata_result();
    assert_eq!(rc, Some(0));
    assert_eq!(
        log.as_deref(),
        Some(format!("sshd-down\ngw={}\n", before.gateway_ip).as_str())
    );
    assert_ne!(h.exec("command -v python3").rc, 0, "python3 must be absent");
    assert!(!before.inventory_text("root").contains("python"));

    let h = &after.hosts[0];
    let deadline = Instant::now() + Duration::from_secs(120);
    while h.userdata_result().1.is_none() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(
        h.userdata_result(),
        (Some(format!("sshd-up\ngw={}\n", after.gateway_ip)), Some(0))
    );
    assert_eq!(h.exec("command -v python3").rc, 0);
    Ok(())
}

#[test]
fn sshd_delay_keeps_sshd_down_at_first() -> R {
    let bed = TestBed::builder()
        .hosts(1)
        .sshd_delay(15)
        .boot(false)
        .start()?;
    let h = &bed.hosts[0];
    assert!(!h.is_running(), "boot(false) creates without starting");
    bed.boot()?;
    std::thread::sleep(Duration::from_secs(1));
    assert!(h.is_running());
    assert!(!h.ssh_up(), "sshd must not answer during its delay");
    h.wait_ssh(Duration::from_secs(120))?;
    Ok(())
}

/// Starts tcpdump on the bed's bridge for TCP SYNs to `port` and waits until it captures.
fn capture_syns(
    bed: &TestBed,
    port: u16,
    count: usize,
) -> Result<std::process::Child, Box<dyn std::error::Error>> {
    let filter = format!("tcp[tcpflags] & tcp-syn != 0 and dst port {port}");
    let mut tcpdump = Command::new("tcpdump")
        .args([
            "-i",
            &bed.bridge_if,
            "-n",
            "-l",
            "-tt",
            "-c",
            &count.to_string(),
            &filter,
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot run tcpdump ({e}); `bash tests/hosts/setup` installs it"))?;
    let stderr = tcpdump.stderr.take().ok_or("no stderr")?;
    let mut lines = std::io::BufRead::lines(std::io::BufReader::new(stderr));
    let listening = lines
        .by_ref()
        .take(5)
        .map_while(Result::ok)
        .any(|l| l.contains("listening on"));
    assert!(listening, "tcpdump did not start on {}", bed.bridge_if);
    Ok(tcpdump)
}

/// Waits (bounded) for tcpdump to finish and returns its output lines.
fn captured(
    mut tcpdump: std::process::Child,
    within: Duration,
) -> Result<Vec<String>, Box<dyn std::error::Error>> {
    let deadline = Instant::now() + within;
    while tcpdump.try_wait()?.is_none() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
    }
    let _ = tcpdump.kill();
    let out = tcpdump.wait_with_output()?;
    Ok(String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_string)
        .collect())
}

#[test]
fn fifty_hosts_start_answer_and_knock_together() -> R {
    // KP_TESTBED_HERD=n runs it with another number of hosts.
    let n: usize = std::env::var("KP_TESTBED_HERD")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(50);
    // Herd: every host boots, starts sshd, then waits for the controller's signal before knocking.
    let bed = TestBed::builder()
        .hosts(n)
        .userdata(
            "testbed-wait go && knock $KP_GATEWAY 9000 9999",
            UserDataOrder::AfterSshd,
        )
        .start()?;
    eprintln!(
        "testbed: {n} hosts started (sshd up on all) in {:.1} s",
        bed.started_in.as_secs_f64()
    );
    let ips: HashSet<_> = bed.hosts.iter().map(|h| h.ip).collect();
    assert_eq!(ips.len(), n);
    assert!(bed.hosts.iter().all(|h| h.ssh_up()));
    let names = bed.exec_all("hostname");
    for (h, r) in bed.hosts.iter().zip(&names) {
        assert_eq!(r.stdout.trim(), h.name);
    }

    let tcpdump = capture_syns(&bed, 9999, n)?;
    bed.signal("go")?;
    let lines = captured(tcpdump, Duration::from_secs(120))?;
    let sources: HashSet<String> = lines
        .iter()
        .filter_map(|l| l.split_whitespace().nth(2))
        .filter_map(|src| src.rsplit_once('.').map(|(ip, _port)| ip.to_string()))
        .collect();
    let expected: HashSet<String> = bed.hosts.iter().map(|h| h.ip.to_string()).collect();
    let missing: Vec<String> = bed
        .hosts
        .iter()
        .filter(|h| !sources.contains(&h.ip.to_string()))
        .map(|h| {
            format!(
                "{} {}: userdata {:?}\n{}",
                h.name,
                h.ip,
                h.userdata_result(),
                h.logs()
            )
        })
        .collect();
    assert!(
        missing.is_empty(),
        "hosts that did not knock once signalled:\n{}",
        missing.join("\n")
    );
    assert_eq!(sources, expected);
    let times: Vec<f64> = lines
        .iter()
        .filter_map(|l| l.split_whitespace().next()?.parse().ok())
        .collect();
    let spread = times.iter().cloned().fold(f64::MIN, f64::max)
        - times.iter().cloned().fold(f64::MAX, f64::min);
    eprintln!("testbed: {n} hosts knocked within {spread:.2} s of each other");

    let t = Instant::now();
    drop(bed);
    eprintln!(
        "testbed: {n} hosts removed in {:.1} s",
        t.elapsed().as_secs_f64()
    );
    Ok(())
}

#[test]
fn mounts_copies_and_background_commands() -> R {
    let dir = tempfile::tempdir()?;
    let mounted = dir.path().join("tool");
    std::fs::write(&mounted, "#!/bin/sh\necho tool-ran\n")?;
    std::fs::set_permissions(
        &mounted,
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )?;
    let bed = TestBed::builder()
        .hosts(2)
        .mount(&mounted, "/usr/local/bin/tool")
        .start()?;
    for h in &bed.hosts {
        assert_eq!(h.exec("tool").stdout, "tool-ran\n");
    }
    let local = dir.path().join("payload");
    std::fs::write(&local, b"copied bytes")?;
    bed.hosts[0].copy_in(&local, "/root/payload")?;
    assert_eq!(
        bed.hosts[0].read_file("/root/payload").as_deref(),
        Some(&b"copied bytes"[..])
    );
    assert_eq!(bed.hosts[1].read_file("/root/payload"), None);
    // The detached command waits for a signal, so "not yet there" is certain however slow the machine is.
    bed.hosts[1].exec_detached("testbed-wait later 120 && echo later > /root/later")?;
    assert_eq!(
        bed.hosts[1].read_file("/root/later"),
        None,
        "detached command returns at once"
    );
    bed.signal("later")?;
    let deadline = Instant::now() + Duration::from_secs(120);
    while bed.hosts[1].read_file("/root/later").is_none() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(
        bed.hosts[1].read_file("/root/later").as_deref(),
        Some(&b"later\n"[..])
    );
    // The shared directory is visible (read-only) on every host.
    assert_eq!(
        bed.hosts[0].exec("testbed-wait ready 1").rc,
        1,
        "times out before the signal"
    );
    bed.signal("ready")?;
    assert_eq!(bed.hosts[0].exec("testbed-wait ready 5").rc, 0);
    assert_ne!(
        bed.hosts[1].exec("touch /kp-shared/x").rc,
        0,
        "read-only for hosts"
    );
    Ok(())
}

fn docker_lines(args: &[&str]) -> Vec<String> {
    let out = Command::new("docker").args(args).output().expect("docker");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_string)
        .collect()
}

fn dead_owner() -> String {
    // A process that has exited: its pid no longer names it (and its start time cannot match a new one).
    let mut child = Command::new("true").spawn().expect("spawn true");
    let pid = child.id();
    child.wait().expect("wait");
    format!("{pid}:1")
}

#[test]
fn leftovers_of_a_dead_run_are_removed_and_live_ones_kept() -> R {
    common::require_docker()?;
    let owner = dead_owner();
    // Names unique per process: another worktree may run this test at the same time.
    let net = format!("kptest-leftover-{}", std::process::id());
    let ctr = format!("{net}-0");
    let (net, ctr) = (net.as_str(), ctr.as_str());
    let labels = ["--label", "knockplay-test=1", "--label"];
    let owner_label = format!("{}={owner}", common::OWNER_LABEL);
    // No subnet given: Docker picks one from its own pools; nothing is sent on this network.
    let st = Command::new("docker")
        .args(["network", "create"])
        .args(labels)
        .arg(&owner_label)
        .arg(net)
        .output()?;
    assert!(
        st.status.success(),
        "{}",
        String::from_utf8_lossy(&st.stderr)
    );
    let st = Command::new("docker")
        .args(["create", "--name", ctr, "--network", net])
        .args(labels)
        .arg(&owner_label)
        .arg(common::IMAGE)
        .output()?;
    assert!(
        st.status.success(),
        "{}",
        String::from_utf8_lossy(&st.stderr)
    );
    // A live bed of this process must survive the cleanup.
    let live = TestBed::start(1)?;

    let removed = common::cleanup_leftovers()?;
    assert!(removed.containers.contains(&ctr.to_string()), "{removed:?}");
    assert!(removed.networks.contains(&net.to_string()), "{removed:?}");
    assert!(docker_lines(&["ps", "-a", "-q", "--filter", &format!("name=^{ctr}$")]).is_empty());
    assert!(
        docker_lines(&["network", "ls", "-q", "--filter", &format!("name=^{net}$")]).is_empty()
    );
    assert!(live.hosts[0].is_running() && live.hosts[0].ssh_up());
    assert!(!removed.networks.contains(&live.network));
    Ok(())
}

/// Helper run in a child process by `a_killed_run_leaves_nothing_that_breaks_the_next`: starts a bed,
/// says so, and waits to be killed.
#[test]
#[ignore = "helper: runs only inside the killed-run test"]
fn helper_bed_then_wait_to_be_killed() -> R {
    if std::env::var("KP_TESTBED_HELPER").as_deref() != Ok("killed-run") {
        return Ok(());
    }
    let bed = TestBed::start(2)?;
    println!("READY {}", bed.network);
    std::thread::sleep(Duration::from_secs(120));
    Ok(())
}

#[test]
fn a_killed_run_leaves_nothing_that_breaks_the_next() -> R {
    common::require_docker()?;
    let mut child = Command::new(std::env::current_exe()?)
        .args([
            "--ignored",
            "--exact",
            "helper_bed_then_wait_to_be_killed",
            "--nocapture",
            "--test-threads=1",
        ])
        .env("KP_TESTBED_HELPER", "killed-run")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()?;
    let mut out = child.stdout.take().ok_or("no stdout")?;
    // Read until the READY line (the bed is up).
    let mut text = String::new();
    let mut buf = [0u8; 256];
    let deadline = Instant::now() + Duration::from_secs(120);
    while !text.contains("READY") && Instant::now() < deadline {
        use std::io::Read;
        let n = out.read(&mut buf)?;
        if n == 0 {
            break;
        }
        text.push_str(&String::from_utf8_lossy(&buf[..n]));
    }
    let network = text
        .split("READY ")
        .nth(1)
        .and_then(|s| s.split_whitespace().next())
        .map(str::to_string)
        .ok_or_else(|| format!("helper did not start a bed: {text}"))?;
    child.kill()?; // SIGKILL: no Drop, no cleanup
    child.wait()?;
    assert_eq!(
        docker_lines(&[
            "ps",
            "-q",
            "--filter",
            &format!("label=knockplay-test.bed={network}")
        ])
        .len(),
        2
    );

    let removed = common::cleanup_leftovers()?;
    assert!(removed.networks.contains(&network), "{removed:?}");
    assert!(docker_lines(&[
        "ps",
        "-a",
        "-q",
        "--filter",
        &format!("label=knockplay-test.bed={network}")
    ])
    .is_empty());
    assert!(docker_lines(&[
        "network",
        "ls",
        "-q",
        "--filter",
        &format!("name=^{network}$")
    ])
    .is_empty());
    let next = TestBed::start(1)?;
    assert!(next.hosts[0].ssh_up());
    Ok(())
}

/// Helper for `missing_docker_gives_clear_instructions`: tries to start a bed with no docker on PATH.
#[test]
#[ignore = "helper: runs only inside the missing-docker test"]
fn helper_start_without_docker() {
    if std::env::var("KP_TESTBED_HELPER").as_deref() != Ok("no-docker") {
        return;
    }
    match TestBed::start(1) {
        Ok(_) => println!("UNEXPECTED: bed started"),
        Err(e) => println!("ERROR: {e}"),
    }
}

#[test]
fn missing_docker_gives_clear_instructions() -> R {
    let empty = tempfile::tempdir()?;
    let out = Command::new(std::env::current_exe()?)
        .args([
            "--ignored",
            "--exact",
            "helper_start_without_docker",
            "--nocapture",
        ])
        .env("KP_TESTBED_HELPER", "no-docker")
        .env("PATH", empty.path())
        .output()?;
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("ERROR: `docker` not found"), "{text}");
    assert!(text.contains("apt-get install docker.io"), "{text}");
    Ok(())
}

#[test]
fn owner_identity_names_a_live_process_only() {
    assert!(common::owner_alive(&common::owner_identity()));
    assert!(!common::owner_alive(&dead_owner()));
    assert!(!common::owner_alive(""));
    assert!(!common::owner_alive("garbage"));
    let pid = std::process::id();
    assert!(
        !common::owner_alive(&format!("{pid}:0")),
        "same pid, other start time"
    );
}

#[test]
fn stock_knock_from_a_booting_host_is_seen_on_the_bridge() -> R {
    let bed = TestBed::builder()
        .hosts(1)
        .userdata("knock $KP_GATEWAY 9000 9999", UserDataOrder::BeforeSshd)
        .boot(false)
        .start()?;
    // Capture where the knock listener will: on the bed's bridge, before the host boots.
    let tcpdump = capture_syns(&bed, 9000, 1)?;
    let tcpdump_last = capture_syns(&bed, 9999, 1)?;
    bed.boot()?;
    let mut seen = captured(tcpdump, Duration::from_secs(120))?;
    seen.extend(captured(tcpdump_last, Duration::from_secs(120))?);
    let text = seen.join("\n");
    let h = &bed.hosts[0];
    let gw = bed.gateway_ip;
    assert_eq!(seen.len(), 2, "captured: {text}\nhost log: {}", h.logs());
    assert!(
        seen[0].contains(&format!("{}.", h.ip)) && seen[0].contains(&format!("> {gw}.9000:")),
        "{text}"
    );
    assert!(seen[1].contains(&format!("> {gw}.9999:")), "{text}");
    assert_eq!(h.userdata_result().1, Some(0));
    Ok(())
}
