//! End-to-end tests of the system modules (apt, service, user, group, cron, get_url, wait_for,
//! ping) and fact gathering over real SSH against real test hosts (no systemd, local apt repo).
//! Each module runs through `ModuleCtx` on a `HostSession`; assertions read the host directly.

mod common;

use std::time::{Duration, Instant};

use knockplay::modules::{lookup, ModuleCtx, ModuleResult, Templater};
use knockplay::ssh::{Become, ConnectOptions, HostSession};
use knockplay::value::Vars;
use serde_json::json;

type R = Result<(), Box<dyn std::error::Error>>;

struct NoTemplates;
impl Templater for NoTemplates {
    fn render(&self, source: &str, _name: &str) -> Result<String, String> {
        Ok(source.to_string())
    }
}

fn connect(bed: &common::TestBed, host: &common::Host, user: &str) -> HostSession {
    let mut o = ConnectOptions::new(host.ip.to_string(), user);
    o.name = host.name.clone();
    o.private_keys = vec![bed.key_path.clone()];
    o.use_agent = false;
    o.known_hosts = bed.dir().join("knockplay_known_hosts");
    o.connect_timeout = Duration::from_secs(10);
    HostSession::connect(&o).expect("ssh connect")
}

/// Run one module task on the session; panics on argument errors (tests pass valid args).
fn run(
    s: &mut HostSession,
    become_: Option<Become>,
    check: bool,
    module: &str,
    args: serde_json::Value,
) -> ModuleResult {
    let facts = Vars::new();
    let mut ctx = ModuleCtx {
        remote: s,
        become_,
        env: Vec::new(),
        check_mode: check,
        diff: true,
        facts: &facts,
        inventory_hostname: "testhost",
        file_search: Vec::new(),
        template_search: Vec::new(),
        templater: &NoTemplates,
        timeout: Some(Duration::from_secs(600)),
    };
    let serde_json::Value::Object(args) = args else {
        panic!("args must be an object")
    };
    let m = lookup(module).unwrap_or_else(|| panic!("module {module} not registered"));
    m.execute(&args, &mut ctx)
        .unwrap_or_else(|e| panic!("{module}: {e}"))
}

/// Run a task that must succeed; report whether it changed something.
fn changed(
    s: &mut HostSession,
    become_: &Option<Become>,
    module: &str,
    args: &serde_json::Value,
) -> bool {
    ok(&run(s, become_.clone(), false, module, args.clone())).changed
}

fn ok(r: &ModuleResult) -> &ModuleResult {
    assert!(
        !r.failed,
        "task failed: {:?} rc={:?} stdout={:?} stderr={:?}",
        r.msg, r.rc, r.stdout, r.stderr
    );
    r
}

#[test]
fn facts_ping_and_package_lifecycle_over_sudo() -> R {
    let bed = common::TestBed::start(1)?;
    let host = &bed.hosts[0];
    let mut s = connect(&bed, host, common::DEPLOY_USER);
    let root = Some(Become::sudo("root"));

    // Facts: one script, parsed; compared with what the host says about itself.
    let out = knockplay::ssh::Remote::exec(&mut s, knockplay::facts::gather_script(), None, None)?;
    assert_eq!(out.rc, 0, "{}", out.stderr_str());
    let f = knockplay::facts::parse(&out.stdout_str());
    let hostname = host
        .exec("cat /proc/sys/kernel/hostname")
        .stdout
        .trim()
        .to_string();
    assert_eq!(
        f["ansible_hostname"],
        hostname.split('.').next().unwrap_or("")
    );
    assert_eq!(f["ansible_distribution"], "Debian");
    assert_eq!(f["ansible_os_family"], "Debian");
    let dv = host
        .exec("cat /etc/debian_version")
        .stdout
        .trim()
        .to_string();
    assert_eq!(f["ansible_distribution_version"], dv.as_str());
    assert_eq!(
        f["ansible_distribution_major_version"],
        dv.split('.').next().unwrap_or("")
    );
    assert_eq!(f["ansible_distribution_release"], "bookworm");
    assert_eq!(f["ansible_pkg_mgr"], "apt");
    assert_eq!(f["ansible_service_mgr"], "sysvinit");
    assert_eq!(f["ansible_user_id"], "deploy");
    assert_eq!(f["ansible_system"], "Linux");
    assert_eq!(
        f["ansible_default_ipv4"]["address"],
        host.ip.to_string().as_str()
    );
    assert_eq!(
        f["ansible_default_ipv4"]["gateway"],
        bed.gateway_ip.to_string().as_str()
    );
    assert!(f["ansible_all_ipv4_addresses"]
        .as_array()
        .is_some_and(|a| a.contains(&json!(host.ip.to_string()))));
    assert!(f["ansible_memtotal_mb"].as_u64().unwrap_or(0) > 0);
    assert_eq!(f["ansible_facts"]["distribution"], "Debian");

    assert_eq!(
        ok(&run(&mut s, None, false, "ping", json!({}))).data["ping"],
        "pong"
    );

    // apt: install, idempotent re-run, check mode changes nothing.
    let hello = json!({"name": "knockplay-hello"});
    let r = run(&mut s, root.clone(), true, "apt", hello.clone());
    assert!(ok(&r).changed);
    assert_eq!(
        host.package_version("knockplay-hello"),
        None,
        "check mode installed it"
    );
    assert!(ok(&run(&mut s, root.clone(), false, "apt", hello.clone())).changed);
    assert_eq!(
        host.package_version("knockplay-hello").as_deref(),
        Some("1.0")
    );
    assert!(!ok(&run(&mut s, root.clone(), false, "apt", hello.clone())).changed);

    // latest: a newer version appears in the repo; update_cache sees it, the second run is a no-op.
    assert!(host.exec("localrepo-publish knockplay-hello 2.0").ok());
    let latest = json!({"name": "knockplay-hello", "state": "latest", "update_cache": "yes"});
    let r = run(&mut s, root.clone(), false, "apt", latest.clone());
    assert!(ok(&r).changed);
    assert_eq!(
        host.package_version("knockplay-hello").as_deref(),
        Some("2.0")
    );
    assert_eq!(host.exec("knockplay-hello").stdout, "hello 2.0\n");
    assert!(!ok(&run(&mut s, root.clone(), false, "apt", latest)).changed);

    // The acceptance playbook's task, twice, in its key=value spelling's parsed form.
    let accept = json!({"update_cache": "yes", "pkg": "apache2", "state": "latest"});
    assert!(ok(&run(&mut s, root.clone(), false, "apt", accept.clone())).changed);
    assert_eq!(host.package_version("apache2").as_deref(), Some("2.4.99-1"));
    assert!(!ok(&run(&mut s, root.clone(), false, "apt", accept)).changed);

    // update_cache alone with a fresh cache_valid_time: nothing to do.
    let r = run(
        &mut s,
        root.clone(),
        false,
        "apt",
        json!({"update_cache": true, "cache_valid_time": 3600}),
    );
    assert!(!ok(&r).changed);

    // Waits for the dpkg lock instead of failing: hold it for a few seconds, then remove.
    host.exec(
        "nohup python3 -c 'import fcntl,time; f=open(\"/var/lib/dpkg/lock-frontend\",\"w\"); \
         fcntl.lockf(f, fcntl.LOCK_EX); open(\"/tmp/locked\",\"w\").close(); time.sleep(4)' >/dev/null 2>&1 &",
    );
    let t0 = Instant::now();
    while !host.exists("/tmp/locked") && t0.elapsed() < Duration::from_secs(10) {
        std::thread::sleep(Duration::from_millis(100));
    }
    let r = run(
        &mut s,
        root.clone(),
        false,
        "apt",
        json!({"name": "knockplay-hello", "state": "absent"}),
    );
    assert!(ok(&r).changed);
    assert_eq!(host.package_version("knockplay-hello"), None);
    assert!(
        !ok(&run(
            &mut s,
            root.clone(),
            false,
            "apt",
            json!({"name": "knockplay-hello", "state": "absent"})
        ))
        .changed
    );

    // package dispatches to apt (facts not gathered: it probes).
    assert!(
        ok(&run(
            &mut s,
            root.clone(),
            false,
            "package",
            json!({"name": "knockplay-hello"})
        ))
        .changed
    );
    assert_eq!(
        host.package_version("knockplay-hello").as_deref(),
        Some("2.0")
    );

    // A missing package fails with apt's own message.
    let r = run(
        &mut s,
        root.clone(),
        false,
        "apt",
        json!({"name": "knockplay-no-such-package"}),
    );
    assert!(r.failed);
    assert!(
        format!("{:?}{:?}", r.msg, r.stderr).contains("Unable to locate package"),
        "{r:?}"
    );

    // service on a sysvinit host: the fake apache2's init script.
    let started = json!({"name": "apache2", "state": "started"});
    assert!(ok(&run(&mut s, root.clone(), true, "service", started.clone())).changed);
    assert_ne!(
        host.exec("/etc/init.d/apache2 status").rc,
        0,
        "check mode started it"
    );
    assert!(
        ok(&run(
            &mut s,
            root.clone(),
            false,
            "service",
            started.clone()
        ))
        .changed
    );
    assert_eq!(host.exec("/etc/init.d/apache2 status").rc, 0);
    assert!(!ok(&run(&mut s, root.clone(), false, "service", started)).changed);
    let r = run(
        &mut s,
        root.clone(),
        false,
        "systemd",
        json!({"name": "apache2", "state": "reloaded"}),
    );
    assert!(ok(&r).changed, "reloaded is always changed");
    assert!(
        ok(&run(
            &mut s,
            root.clone(),
            false,
            "service",
            json!({"name": "apache2", "state": "restarted"})
        ))
        .changed
    );
    assert_eq!(host.exec("/etc/init.d/apache2 status").rc, 0);
    let stopped = json!({"name": "apache2", "state": "stopped"});
    assert!(changed(&mut s, &root, "service", &stopped));
    assert_ne!(host.exec("/etc/init.d/apache2 status").rc, 0);
    assert!(!changed(&mut s, &root, "service", &stopped));

    // enabled via update-rc.d needs an LSB header (the fake apache2 has none): a dummy service.
    host.write_file(
        "/etc/init.d/kpdummy",
        b"#!/bin/sh\n### BEGIN INIT INFO\n# Provides:          kpdummy\n# Required-Start:\n# Required-Stop:\n\
# Default-Start:     2 3 4 5\n# Default-Stop:      0 1 6\n# Short-Description: knockplay test service\n\
### END INIT INFO\ncase \"$1\" in start|restart|reload) touch /run/kpdummy;; stop) rm -f /run/kpdummy;; \
status) [ -e /run/kpdummy ];; esac\n",
    )?;
    host.exec("chmod 0755 /etc/init.d/kpdummy");
    let enabled = json!({"name": "kpdummy", "enabled": true, "state": "started"});
    assert!(changed(&mut s, &root, "service", &enabled));
    assert!(host.exec("ls /etc/rc2.d/S*kpdummy").ok());
    assert!(host.exists("/run/kpdummy"));
    assert!(!changed(&mut s, &root, "service", &enabled));
    let disabled = json!({"name": "kpdummy", "enabled": false, "state": "stopped"});
    assert!(changed(&mut s, &root, "service", &disabled));
    assert!(!host.exec("ls /etc/rc2.d/S*kpdummy").ok());
    assert!(!host.exists("/run/kpdummy"));
    assert!(!changed(&mut s, &root, "service", &disabled));
    let r = run(
        &mut s,
        root.clone(),
        false,
        "service",
        json!({"name": "nosuchd", "state": "started"}),
    );
    assert!(
        r.failed && r.msg.as_deref().unwrap_or("").contains("nosuchd"),
        "{r:?}"
    );
    Ok(())
}

#[test]
fn users_groups_cron_get_url_wait_for_as_root() -> R {
    let bed = common::TestBed::builder().hosts(1).no_python().start()?;
    let host = &bed.hosts[0];
    let mut s = connect(&bed, host, "root");

    // group
    let g = json!({"name": "kpweb", "gid": 2345});
    assert!(ok(&run(&mut s, None, false, "group", g.clone())).changed);
    assert!(host
        .exec("getent group kpweb")
        .stdout
        .starts_with("kpweb:x:2345:"));
    assert!(!ok(&run(&mut s, None, false, "group", g)).changed);

    // user with supplementary group, shell, comment, password hash
    let hash = "$6$kpsalt$0Qv0n1rVvFEZ6Kq6m0H2k3mC1yq3d5B1mJ6w6kGgGZ4QyVqHcQ7nqkT6YHq9J8o3nQ3n7m6E6yq7fQp3n2fZ0.";
    let u = json!({"name": "alice", "groups": "kpweb", "shell": "/bin/sh", "comment": "Alice A", "password": hash, "uid": 3001});
    let r = run(&mut s, None, true, "user", u.clone());
    assert!(ok(&r).changed);
    assert!(!host.user_exists("alice"), "check mode created the user");
    let r = run(&mut s, None, false, "user", u.clone());
    assert!(ok(&r).changed);
    assert_eq!(r.data["password"], "NOT_LOGGING_PASSWORD");
    assert!(
        !format!("{r:?}").contains("kpsalt"),
        "the hash leaked into the result"
    );
    assert_eq!(
        host.exec("getent passwd alice").stdout,
        "alice:x:3001:3001:Alice A:/home/alice:/bin/sh\n"
    );
    assert_eq!(host.exec("id -Gn alice").stdout, "alice kpweb\n");
    assert_eq!(
        host.exec("getent shadow alice | cut -d: -f2").stdout.trim(),
        hash
    );
    assert!(host.exists("/home/alice/.bashrc") || host.exists("/home/alice"));
    assert!(!ok(&run(&mut s, None, false, "user", u)).changed);
    // append keeps groups; a change of shell is one usermod
    let r = run(
        &mut s,
        None,
        false,
        "user",
        json!({"name": "alice", "groups": "sudo", "append": true, "shell": "/bin/bash"}),
    );
    assert!(ok(&r).changed);
    assert_eq!(host.exec("id -Gn alice").stdout, "alice sudo kpweb\n");
    assert!(host
        .exec("getent passwd alice")
        .stdout
        .ends_with(":/bin/bash\n"));
    let gone = json!({"name": "alice", "state": "absent", "remove": true});
    assert!(ok(&run(&mut s, None, false, "user", gone.clone())).changed);
    assert!(!host.user_exists("alice") && !host.exists("/home/alice"));
    assert!(!ok(&run(&mut s, None, false, "user", gone)).changed);
    assert!(
        ok(&run(
            &mut s,
            None,
            false,
            "group",
            json!({"name": "kpweb", "state": "absent"})
        ))
        .changed
    );

    // generate_ssh_key: created once, owned by the user, reported like Ansible (whose default
    // ssh_key_file is .ssh/id_<type>).
    let bob = json!({"name": "bob", "generate_ssh_key": true, "ssh_key_type": "ed25519"});
    let r = run(&mut s, None, false, "user", bob.clone());
    assert!(ok(&r).changed);
    let pubkey = host
        .read_to_string("/home/bob/.ssh/id_ed25519.pub")
        .ok_or_else(|| {
            format!(
                "no pub key: {r:?} {:?}",
                host.exec("ls -laR /home/bob; getent passwd bob")
            )
        })?;
    assert_eq!(r.data["ssh_public_key"], pubkey.trim_end());
    assert_eq!(r.data["ssh_key_file"], "/home/bob/.ssh/id_ed25519");
    assert_eq!(
        host.file_mode_owner("/home/bob/.ssh/id_ed25519"),
        Some((0o600, "bob".to_string(), "bob".to_string()))
    );
    assert_eq!(
        host.file_mode_owner("/home/bob/.ssh").map(|m| m.0),
        Some(0o700)
    );
    let r = run(&mut s, None, false, "user", bob);
    assert!(!ok(&r).changed);
    assert_eq!(r.data["ssh_public_key"], pubkey.trim_end());

    // cron: user crontab and a cron.d file, byte-identical to Ansible's format
    let job = json!({"name": "nightly", "minute": "0", "hour": "3", "job": "/usr/local/bin/backup >/dev/null 2>&1"});
    assert!(ok(&run(&mut s, None, false, "cron", job.clone())).changed);
    assert_eq!(
        host.exec("crontab -l").stdout,
        "#Ansible: nightly\n0 3 * * * /usr/local/bin/backup >/dev/null 2>&1\n"
    );
    assert!(!ok(&run(&mut s, None, false, "cron", job)).changed);
    let file_job = json!({"name": "sweep", "special_time": "hourly", "user": "root", "job": "rm -f /tmp/kp-*", "cron_file": "kp_sweep"});
    assert!(ok(&run(&mut s, None, false, "cron", file_job.clone())).changed);
    assert_eq!(
        host.read_to_string("/etc/cron.d/kp_sweep").as_deref(),
        Some("#Ansible: sweep\n@hourly root rm -f /tmp/kp-*\n")
    );
    assert_eq!(
        host.file_mode_owner("/etc/cron.d/kp_sweep").map(|m| m.0),
        Some(0o644)
    );
    assert!(!ok(&run(&mut s, None, false, "cron", file_job)).changed);
    let rm = json!({"name": "sweep", "cron_file": "kp_sweep", "state": "absent"});
    assert!(ok(&run(&mut s, None, false, "cron", rm)).changed);
    assert!(!host.exists("/etc/cron.d/kp_sweep"));

    // get_url with curl: a refused connection is a clear failure naming the URL, nothing written.
    let r = run(
        &mut s,
        None,
        false,
        "get_url",
        json!({"url": "http://127.0.0.1:1/x", "dest": "/tmp/kp-x"}),
    );
    assert!(r.failed);
    assert!(
        format!("{:?}", r.msg).contains("http://127.0.0.1:1/x"),
        "{r:?}"
    );
    assert!(!host.exists("/tmp/kp-x"));
    // Without curl or wget: a clear failure, nothing written.
    let hide = host.exec(
        "for t in curl wget; do p=$(command -v $t) && mv \"$p\" \"$p.kp-hidden\"; done; true",
    );
    assert!(hide.ok(), "{hide:?}");
    let r = run(
        &mut s,
        None,
        false,
        "get_url",
        json!({"url": "http://127.0.0.1:1/x", "dest": "/tmp/kp-x"}),
    );
    assert!(r.failed);
    assert!(
        format!("{:?}", r.msg).contains("neither curl nor wget"),
        "{r:?}"
    );
    assert!(!host.exists("/tmp/kp-x"));
    // ... and an existing file with force=no is left alone without any download tool.
    host.exec("echo hi > /tmp/kp-y");
    let r = run(
        &mut s,
        None,
        false,
        "get_url",
        json!({"url": "http://127.0.0.1:1/y", "dest": "/tmp/kp-y", "mode": "0600"}),
    );
    assert!(ok(&r).changed, "mode changed");
    assert_eq!(host.file_mode_owner("/tmp/kp-y").map(|m| m.0), Some(0o600));
    let back = host.exec("for f in /usr/bin/*.kp-hidden /bin/*.kp-hidden; do [ -e \"$f\" ] && mv \"$f\" \"${f%.kp-hidden}\"; done; true");
    assert!(back.ok(), "{back:?}");

    // wait_for: a port that opens after a delay (sshd's own port is already open), a path,
    // and a timeout with Ansible's message.
    let r = run(
        &mut s,
        None,
        false,
        "wait_for",
        json!({"port": 22, "timeout": 5}),
    );
    assert!(!ok(&r).changed);
    host.exec("(sleep 2; echo ready > /tmp/kp-ready) >/dev/null 2>&1 &");
    let r = run(
        &mut s,
        None,
        false,
        "wait_for",
        json!({"path": "/tmp/kp-ready", "search_regex": "^ready$", "timeout": 20}),
    );
    assert!(ok(&r).data["elapsed"].as_u64().is_some());
    let r = run(
        &mut s,
        None,
        false,
        "wait_for",
        json!({"port": 1, "timeout": 1}),
    );
    assert!(r.failed);
    assert_eq!(
        r.msg.as_deref(),
        Some("Timeout when waiting for 127.0.0.1:1")
    );
    let r = run(
        &mut s,
        None,
        false,
        "wait_for",
        json!({"host": bed.gateway_ip.to_string(), "port": 1, "state": "stopped", "timeout": 3, "connect_timeout": 1}),
    );
    assert!(!ok(&r).changed);
    Ok(())
}
