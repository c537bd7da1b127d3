//! End-to-end tests of the file and command modules over real SSH against a real test host
//! without python (user `deploy`, become via sudo): bytes, modes and owners on the target,
//! `changed` on first and second runs, check mode leaving the target untouched.

mod common;

use std::path::PathBuf;
use std::time::Duration;

use knockplay::modules::{lookup, ModuleCtx, ModuleResult, Templater};
use knockplay::ssh::{Become, ConnectOptions, HostSession};
use knockplay::value::Vars;
use serde_json::json;

type R = Result<(), Box<dyn std::error::Error>>;

struct Upper;
impl Templater for Upper {
    fn render(&self, source: &str, _name: &str) -> Result<String, String> {
        Ok(source.replace("{{ who }}", "knockplay"))
    }
}

struct Target {
    session: HostSession,
    files: PathBuf,
}

impl Target {
    fn run(&mut self, module: &str, args: serde_json::Value, check: bool) -> ModuleResult {
        let facts = Vars::new();
        let args = match args {
            serde_json::Value::Object(m) => m,
            _ => panic!("args must be a dict"),
        };
        let mut ctx = ModuleCtx {
            remote: &mut self.session,
            become_: Some(Become::sudo("root")),
            env: Vec::new(),
            check_mode: check,
            diff: true,
            facts: &facts,
            inventory_hostname: "testhost",
            file_search: vec![self.files.clone()],
            template_search: vec![self.files.clone()],
            templater: &Upper,
            timeout: Some(Duration::from_secs(60)),
        };
        let m = lookup(module).unwrap_or_else(|| panic!("module {module} not registered"));
        let r = m
            .execute(&args, &mut ctx)
            .unwrap_or_else(|e| panic!("{module}: {e}"));
        assert!(!r.failed, "{module} failed: {r:?}");
        r
    }

    /// Run twice: first changed, second not.
    fn converge(&mut self, module: &str, args: serde_json::Value) -> ModuleResult {
        let first = self.run(module, args.clone(), false);
        assert!(first.changed, "{module} first run should change: {first:?}");
        let second = self.run(module, args, false);
        assert!(
            !second.changed,
            "{module} second run should not change: {second:?}"
        );
        first
    }
}

#[test]
fn file_modules_converge_on_a_host_without_python() -> R {
    let bed = common::TestBed::builder().hosts(1).no_python().start()?;
    let host = &bed.hosts[0];
    let mut o = ConnectOptions::new(host.ip.to_string(), common::DEPLOY_USER);
    o.name = host.name.clone();
    o.private_keys = vec![bed.key_path.clone()];
    o.use_agent = false;
    o.known_hosts = bed.dir().join("knockplay_known_hosts");
    o.connect_timeout = Duration::from_secs(10);
    let local = tempfile::tempdir()?;
    std::fs::write(local.path().join("it_ran.txt"), "it ran\n")?;
    std::fs::write(local.path().join("motd.j2"), "managed by {{ who }}\n")?;
    std::fs::create_dir_all(local.path().join("site/css"))?;
    std::fs::write(local.path().join("site/index.html"), "<h1>hi</h1>\n")?;
    std::fs::write(local.path().join("site/css/a.css"), "body{}\n")?;
    std::fs::write(
        local.path().join("setup.sh"),
        "#!/bin/sh\necho \"configured $1\" > /etc/kp-script\n",
    )?;
    let mut t = Target {
        session: HostSession::connect(&o)?,
        files: local.path().to_path_buf(),
    };

    // Acceptance playbook's copy: src into a directory dest with a trailing slash, mode 0777.
    t.converge(
        "copy",
        json!({"src": "it_ran.txt", "dest": "/tmp/", "mode": "0777"}),
    );
    assert_eq!(
        host.read_file("/tmp/it_ran.txt"),
        Some(b"it ran\n".to_vec())
    );
    let st = host.stat("/tmp/it_ran.txt").ok_or("missing")?;
    assert_eq!((st.mode, st.owner.as_str()), (0o777, "root"));

    // Content with owner/group, then check mode must not touch the file.
    let conf = json!({"content": "a=1\n", "dest": "/etc/kp.conf", "mode": "0640", "owner": "root", "group": "deploy"});
    t.converge("copy", conf);
    let st = host.stat("/etc/kp.conf").ok_or("missing")?;
    assert_eq!(
        (st.mode, st.owner.as_str(), st.group.as_str()),
        (0o640, "root", "deploy")
    );
    let r = t.run(
        "copy",
        json!({"content": "a=2\n", "dest": "/etc/kp.conf"}),
        true,
    );
    assert!(r.changed);
    assert_eq!(r.diff[0].before, "a=1\n");
    assert_eq!(host.read_file("/etc/kp.conf"), Some(b"a=1\n".to_vec()));

    // Directory tree.
    t.converge("copy", json!({"src": "site/", "dest": "/srv/www"}));
    assert_eq!(
        host.read_file("/srv/www/css/a.css"),
        Some(b"body{}\n".to_vec())
    );

    // Template.
    t.converge(
        "template",
        json!({"src": "motd.j2", "dest": "/etc/motd", "mode": "0644"}),
    );
    assert_eq!(
        host.read_file("/etc/motd"),
        Some(b"managed by knockplay\n".to_vec())
    );

    // file: directory with mode and owner, link, absent.
    t.converge(
        "file",
        json!({"path": "/opt/app/data", "state": "directory", "mode": "0750", "owner": "deploy"}),
    );
    let st = host.stat("/opt/app/data").ok_or("missing")?;
    assert_eq!((st.mode, st.owner.as_str()), (0o750, "deploy"));
    t.converge(
        "file",
        json!({"path": "/opt/current", "state": "link", "src": "/opt/app"}),
    );
    assert_eq!(
        host.stat("/opt/current").ok_or("missing")?.kind,
        "symbolic link"
    );
    t.converge("file", json!({"path": "/opt/current", "state": "absent"}));
    assert!(!host.exists("/opt/current"));

    // lineinfile / blockinfile.
    host.exec("printf 'Port 22\\nPermitRootLogin yes\\n' > /etc/kp_sshd");
    t.converge(
        "lineinfile",
        json!({"path": "/etc/kp_sshd", "regexp": "^PermitRootLogin", "line": "PermitRootLogin no"}),
    );
    t.converge(
        "blockinfile",
        json!({"path": "/etc/kp_sshd", "block": "Match User deploy\n  X11Forwarding no"}),
    );
    assert_eq!(
        host.read_to_string("/etc/kp_sshd").ok_or("missing")?,
        "Port 22\nPermitRootLogin no\n# BEGIN ANSIBLE MANAGED BLOCK\nMatch User deploy\n  X11Forwarding no\n# END ANSIBLE MANAGED BLOCK\n"
    );

    // stat.
    let r = t.run("stat", json!({"path": "/etc/kp.conf"}), false);
    assert_eq!(r.data["stat"]["mode"], json!("0640"));
    assert_eq!(r.data["stat"]["pw_name"], json!("root"));
    assert_eq!(r.data["stat"]["gr_name"], json!("deploy"));

    // command with creates, shell, script.
    t.converge(
        "command",
        json!({"_raw_params": "touch /var/kp-made", "creates": "/var/kp-made"}),
    );
    let r = t.run(
        "shell",
        json!({"_raw_params": "id -un | tr a-z A-Z"}),
        false,
    );
    assert_eq!(r.stdout.as_deref(), Some("ROOT"));
    t.converge(
        "script",
        json!({"_raw_params": "setup.sh web", "creates": "/etc/kp-script"}),
    );
    assert_eq!(
        host.read_file("/etc/kp-script"),
        Some(b"configured web\n".to_vec())
    );
    Ok(())
}
