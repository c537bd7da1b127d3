//! Tests for knock.toml validation: every error names its line and column.

use super::*;

fn system() -> SystemInfo {
    SystemInfo {
        interfaces: vec!["lo".into(), "eth0".into()],
        default_interfaces: vec!["eth0".into()],
    }
}

struct Dir {
    dir: tempfile::TempDir,
}

impl Dir {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("site.yml"), "- hosts: all\n  tasks: []\n").unwrap();
        Dir { dir }
    }
    fn parse(&self, text: &str) -> Result<ListenConfig, ConfigError> {
        parse(text, &self.dir.path().join("knock.toml"), &system())
    }
    /// The rendered error messages with the temp dir stripped.
    fn errors(&self, text: &str) -> Vec<String> {
        let e = self.parse(text).expect_err("config should be rejected");
        let prefix = format!("{}/", self.dir.path().display());
        e.to_string()
            .lines()
            .map(|l| l.replace(&prefix, ""))
            .collect()
    }
}

const GOOD: &str = r#"
[listener]
interfaces = ["eth0"]
receive_buffer = "16MiB"

[runner]
max_concurrent_runs = 4
queue_limit = 100
ssh_wait = 30
log_dir = "logs"
state_dir = "/tmp/kp-state"

[[door]]
name = "base"
sequence = ["7000/tcp", "8000/udp", 9000]
seq_timeout = 2.5
allow = ["10.232.0.0/24", "fd00::1"]
playbook = "site.yml"
inventory_vars = { role = "web", replicas = 3 }
groups = ["web"]
user = "deploy"
become = true
cooldown = 0

[[door]]
name = "legacy"
sequence = ["1111/udp", "2222/udp"]
allow = ["any"]
command = "/usr/local/bin/hello %IP%"
"#;

#[test]
fn a_good_config_is_fully_validated() {
    let d = Dir::new();
    let c = d.parse(GOOD).unwrap();
    assert_eq!(c.listener.interfaces, vec!["eth0"]);
    assert_eq!(c.listener.receive_buffer, 16 << 20);
    assert_eq!(c.runner.max_concurrent_runs, 4);
    assert_eq!(c.runner.queue_limit, 100);
    assert_eq!(c.runner.ssh_wait, Duration::from_secs(30));
    assert_eq!(c.runner.log_dir, d.dir.path().join("logs"));
    assert_eq!(c.runner.host_key_checking, HostKeyChecking::AcceptNew);
    let base = &c.doors[0];
    assert_eq!(
        base.sequence,
        vec![
            PortSpec::tcp(7000),
            PortSpec::udp(8000),
            PortSpec::tcp(9000)
        ]
    );
    assert_eq!(base.seq_timeout, Duration::from_millis(2500));
    assert_eq!(base.tcp_flags, TcpFlagRule::default());
    assert!(base.allow.permits("10.232.0.9".parse().unwrap()));
    assert!(base.allow.permits("fd00::1".parse().unwrap()));
    assert!(!base.allow.permits("10.232.1.9".parse().unwrap()));
    assert_eq!(base.cooldown, Duration::ZERO);
    let Action::Playbook(p) = &base.action else {
        panic!("playbook door")
    };
    assert_eq!(p.playbook, d.dir.path().join("site.yml"));
    assert_eq!(p.inventory_vars["role"], "web");
    assert_eq!(p.inventory_vars["replicas"], 3);
    assert_eq!((p.user.as_str(), p.port, p.become_), ("deploy", 22, true));
    assert_eq!(c.doors[1].allow, Allow::Any);
    assert_eq!(
        c.doors[1].action,
        Action::Command("/usr/local/bin/hello %IP%".into())
    );
    assert_eq!(c.doors[1].cooldown, Duration::from_secs(60));
    let text = c.describe();
    assert!(text.contains("door base [7000/tcp 8000/udp 9000/tcp]: within 2.5s, from 10.232.0.0/24, fd00::1/128; runs playbook"), "{text}");
    assert!(text.contains("door legacy [1111/udp 2222/udp]: within 5s, from anyone; runs command /usr/local/bin/hello %IP%"), "{text}");
}

#[test]
fn defaults_take_the_default_route_interface() {
    let d = Dir::new();
    let c = d
        .parse("[[door]]\nname = \"a\"\nsequence = [\"1/tcp\"]\nallow = [\"any\"]\nplaybook = \"site.yml\"\n")
        .unwrap();
    assert_eq!(c.listener.interfaces, vec!["eth0"]);
    assert_eq!(c.listener.receive_buffer, 8 << 20);
    assert_eq!(c.runner.max_concurrent_runs, 10);
    assert_eq!(c.runner.state_dir, PathBuf::from("/var/lib/knockplay"));
    assert_eq!(c.runner.task_timeout, Some(Duration::from_secs(1800)));
}

#[test]
fn task_timeout_bounds_listen_runs_and_zero_lifts_it() {
    let d = Dir::new();
    let door = "[[door]]\nname = \"a\"\nsequence = [\"1/tcp\"]\nallow = [\"any\"]\nplaybook = \"site.yml\"\n";
    let c = d
        .parse(&format!("[runner]\ntask_timeout = 90\n\n{door}"))
        .unwrap();
    assert_eq!(c.runner.task_timeout, Some(Duration::from_secs(90)));
    let c = d
        .parse(&format!("[runner]\ntask_timeout = 0\n\n{door}"))
        .unwrap();
    assert_eq!(c.runner.task_timeout, None);
    let errors = d.errors(&format!("[runner]\ntask_timeout = -5\n\n{door}"));
    assert!(
        errors
            .iter()
            .any(|e| e.starts_with("knock.toml:2:") && e.contains("task_timeout")),
        "{errors:?}"
    );
}

#[test]
fn unknown_keys_are_rejected_with_line_and_column() {
    let d = Dir::new();
    let text =
        "[listener]\ninterfaces = [\"eth0\"]\n\n[[door]]\nname = \"a\"\nsequense = [\"1/tcp\"]\n";
    let errors = d.errors(text);
    assert_eq!(errors.len(), 1);
    assert!(
        errors[0].starts_with("knock.toml:6:1: unknown field `sequense`"),
        "{}",
        errors[0]
    );

    let errors = d.errors("[listner]\n");
    assert!(
        errors[0].starts_with(
            "knock.toml:1:2: unknown field `listner`, expected one of `listener`, `runner`, `history`, `door`"
        ),
        "{}",
        errors[0]
    );
}

#[test]
fn semantic_errors_are_all_reported_with_positions() {
    let d = Dir::new();
    let text = r#"[listener]
interfaces = ["eth9"]

[[door]]
name = "a"
sequence = ["7000/tcp", "70000/tcp", "8000/sctp"]
allow = ["10.0.0.0/33"]
playbook = "missing.yml"

[[door]]
name = "b"
sequence = ["1/tcp"]
playbook = "site.yml"
"#;
    let errors = d.errors(text);
    assert_eq!(
        errors,
        vec![
            "knock.toml:2:15: unknown interface 'eth9' (this machine has: lo, eth0)",
            "knock.toml:6:25: door 'a': port 70000 out of range (1-65535)",
            "knock.toml:6:38: door 'a': unknown protocol 'sctp' (expected tcp or udp)",
            "knock.toml:7:10: door 'a': '10.0.0.0/33' is not an address or CIDR (like 10.0.0.0/8)",
            format!("knock.toml:8:12: door 'a': playbook {}/missing.yml not found", d.dir.path().display())
                .replace(&format!("{}/", d.dir.path().display()), "")
                .as_str(),
            "knock.toml:11:8: door 'b' has no allowlist: add allow = [\"10.0.0.0/8\", ...] or, to accept anyone, allow = [\"any\"]",
        ]
    );
}

#[test]
fn overlapping_doors_are_rejected() {
    let d = Dir::new();
    let text = r#"[[door]]
name = "short"
sequence = ["1/tcp", "2/tcp"]
allow = ["any"]
playbook = "site.yml"

[[door]]
name = "long"
sequence = ["1/tcp", "2/tcp", "3/tcp"]
allow = ["any"]
playbook = "site.yml"

[[door]]
name = "other"
sequence = ["1/tcp", "5/udp"]
allow = ["any"]
playbook = "site.yml"
"#;
    let errors = d.errors(text);
    assert_eq!(
        errors,
        vec!["knock.toml:7:1: door 'long' overlaps door 'short': knocking 'long' (1/tcp 2/tcp 3/tcp) also opens 'short'"]
    );
    // Identical sequences are reported once.
    let same = text
        .replace("\"1/tcp\", \"2/tcp\", \"3/tcp\"", "\"1/tcp\", \"2/tcp\"")
        .replace("\"1/tcp\", \"5/udp\"", "\"9/tcp\"");
    assert_eq!(d.errors(&same).len(), 1);
}

#[test]
fn door_field_rules() {
    let d = Dir::new();
    let both = "[[door]]\nname = \"a\"\nsequence = [\"1\"]\nallow = [\"any\"]\nplaybook = \"site.yml\"\ncommand = \"x\"\n";
    assert_eq!(
        d.errors(both),
        vec!["knock.toml:5:12: door 'a': set either playbook or command, not both"]
    );
    let user_on_command = "[[door]]\nname = \"a\"\nsequence = [\"1\"]\nallow = [\"any\"]\ncommand = \"x %IP%\"\nuser = \"bob\"\n";
    assert_eq!(
        d.errors(user_on_command),
        vec!["knock.toml:6:8: door 'a': user only applies to a playbook, not to a command"]
    );
    let any_mixed = "[[door]]\nname = \"a\"\nsequence = [\"1\"]\nallow = [\"any\", \"10.0.0.0/8\"]\ncommand = \"x\"\n";
    assert_eq!(
        d.errors(any_mixed),
        vec!["knock.toml:4:9: door 'a': \"any\" cannot be combined with other entries"]
    );
    let flags = "[[door]]\nname = \"a\"\nsequence = [\"1\"]\nallow = [\"any\"]\ncommand = \"x\"\ntcp_flags = \"syn,!bogus\"\n";
    assert!(d.errors(flags)[0]
        .starts_with("knock.toml:6:13: door 'a': tcp_flags: unknown TCP flag '!bogus'"));
    let long: Vec<String> = (1..=33).map(|p| format!("\"{p}\"")).collect();
    let too_long = format!(
        "[[door]]\nname = \"a\"\nsequence = [{}]\nallow = [\"any\"]\ncommand = \"x\"\n",
        long.join(",")
    );
    assert_eq!(
        d.errors(&too_long),
        vec!["knock.toml:3:12: door 'a': sequence needs 1 to 32 ports, has 33"]
    );
    let dup = "[[door]]\nname = \"a\"\nsequence = [\"1\"]\nallow = [\"any\"]\ncommand = \"x\"\n[[door]]\nname = \"a\"\nsequence = [\"2\"]\nallow = [\"any\"]\ncommand = \"x\"\n";
    assert_eq!(
        d.errors(dup),
        vec!["knock.toml:7:8: duplicate door name 'a'"]
    );
    let ranges = "[runner]\nmax_concurrent_runs = 0\nhost_key_checking = \"maybe\"\n[[door]]\nname = \"a\"\nsequence = [\"1\"]\nallow = [\"any\"]\ncommand = \"x\"\n";
    assert_eq!(
        d.errors(ranges),
        vec![
            "knock.toml:2:23: max_concurrent_runs = 0 out of range (1-1024)",
            "knock.toml:3:21: host_key_checking = 'maybe': expected accept-new, strict or off",
        ]
    );
    assert_eq!(
        d.errors(""),
        vec!["knock.toml:1:1: no [[door]] defined: the listener would do nothing"]
    );
}

#[test]
fn load_reports_a_missing_file() {
    let e = load_with(Path::new("/nonexistent/knock.toml"), &system()).unwrap_err();
    assert!(
        e.to_string().starts_with("/nonexistent/knock.toml: "),
        "{e}"
    );
}

#[test]
fn a_playbook_that_does_not_parse_is_reported_before_any_knock() {
    let d = Dir::new();
    std::fs::write(
        d.dir.path().join("site.yml"),
        "- hosts: all\n  tasks:\n    - copy: src=a dest=/b\n      bogus_kw: 1\n",
    )
    .unwrap();
    let text = "[listener]\ninterfaces = [\"lo\"]\n\n[[door]]\nname = \"a\"\nsequence = [\"7000/tcp\", \"8000/tcp\"]\nallow = [\"any\"]\nplaybook = \"site.yml\"\n";
    let errors = d.errors(text);
    assert_eq!(errors.len(), 1, "{errors:?}");
    // Where in knock.toml, which door, and where in the playbook.
    assert!(
        errors[0]
            .starts_with("knock.toml:8:12: door 'a': the playbook does not parse: site.yml:4:7: ")
            && errors[0].contains("bogus_kw"),
        "{errors:?}"
    );
}

#[test]
fn spa_doors_take_private_keys_and_exclude_sequences() {
    use std::os::unix::fs::PermissionsExt;
    let d = Dir::new();
    let dir = d.dir.path();
    crate::knock::spa::write_new_key_file(&dir.join("k1")).unwrap();
    crate::knock::spa::write_new_key_file(&dir.join("k2")).unwrap();
    let door = |extra: &str| {
        format!(
            "[[door]]\nname = \"boot\"\nallow = [\"10.0.0.0/8\"]\nplaybook = \"site.yml\"\n{extra}"
        )
    };
    let c = d.parse(&door("spa_key_file = \"k1\"\n")).unwrap();
    let spa = c.doors[0].spa.as_ref().unwrap();
    assert_eq!(
        (spa.port, spa.window.as_secs(), spa.keys.len()),
        (62201, 60, 1)
    );
    assert!(c.doors[0].sequence.is_empty());
    assert!(c
        .describe()
        .contains("door boot [SPA 62201/udp]: packets within 60s of now, 1 key(s)"));
    // Rotation: two keys; another port and window.
    let c = d
        .parse(&door(
            "spa_key_file = [\"k1\", \"k2\"]\nspa_port = 4000\nspa_window = 30\n",
        ))
        .unwrap();
    let spa = c.doors[0].spa.as_ref().unwrap();
    assert_eq!(
        (spa.port, spa.window.as_secs(), spa.keys.len()),
        (4000, 30, 2)
    );
    // Mutually exclusive with a sequence; one of the two is needed; options of the other kind.
    let both = d.errors(&door("spa_key_file = \"k1\"\nsequence = [\"1\"]\n"));
    assert!(
        both[0].contains("sequence and spa_key_file are mutually exclusive"),
        "{both:?}"
    );
    let neither = d.errors(&door(""));
    assert!(
        neither[0].contains("needs a sequence") && neither[0].contains("keygen"),
        "{neither:?}"
    );
    let stray = d.errors(&door("spa_key_file = \"k1\"\nseq_timeout = 3\n"));
    assert!(
        stray[0].contains("seq_timeout applies to sequence doors only"),
        "{stray:?}"
    );
    let stray = d.errors(&door("sequence = [\"1\"]\nspa_port = 3\n"));
    assert!(
        stray[0].contains("spa_port applies to SPA doors only"),
        "{stray:?}"
    );
    // A key others can read, a missing one, a bad one: each named with its position.
    std::fs::set_permissions(dir.join("k2"), std::fs::Permissions::from_mode(0o644)).unwrap();
    let loose = d.errors(&door("spa_key_file = \"k2\"\n"));
    assert!(
        loose[0].starts_with("knock.toml:5:16:") && loose[0].contains("chmod 600"),
        "{loose:?}"
    );
    let missing = d.errors(&door("spa_key_file = \"nope\"\n"));
    assert!(
        missing[0].contains("cannot read") && missing[0].contains("nope"),
        "{missing:?}"
    );
    std::fs::write(dir.join("bad"), "not a key").unwrap();
    std::fs::set_permissions(dir.join("bad"), std::fs::Permissions::from_mode(0o600)).unwrap();
    let bad = d.errors(&door("spa_key_file = \"bad\"\n"));
    assert!(bad[0].contains("32 bytes in base64"), "{bad:?}");
    let three = d.errors(&door("spa_key_file = [\"k1\", \"k1\", \"k1\"]\n"));
    assert!(three[0].contains("one key, or two"), "{three:?}");
}

#[test]
fn history_defaults_to_sqlite_in_state_dir_and_takes_a_postgres_url_without_password() {
    let d = Dir::new();
    let c = d.parse(GOOD).unwrap();
    assert_eq!(
        c.history.url,
        crate::history::HistoryUrl::Sqlite("/tmp/kp-state/history.sqlite3".into())
    );
    assert!(c
        .describe()
        .contains("history: sqlite:///tmp/kp-state/history.sqlite3"));
    let text = format!(
        "{GOOD}\n[history]\nurl = \"postgres://kp@db.example:5433/knock?sslmode=require\"\nlease = 10\nlistener_id = \"ctl-a\"\n"
    );
    let c = d.parse(&text).unwrap();
    assert_eq!(
        c.history.url.to_string(),
        "postgres://kp@db.example:5433/knock?sslmode=require"
    );
    assert_eq!(c.history.lease, Duration::from_secs(10));
    assert_eq!(c.history.listener_id, "ctl-a");
    let line = GOOD.lines().count() + 3;
    let text = format!("{GOOD}\n[history]\nurl = \"postgres://kp:s3cret@db/knock\"\n");
    let errors = d.errors(&text);
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert!(
        errors[0].starts_with(&format!(
            "knock.toml:{line}:7: [history] url: a password in the URL is not accepted"
        )),
        "{}",
        errors[0]
    );
    assert!(errors[0].contains("PGPASSFILE") && !errors[0].contains("s3cret"));
}

#[test]
fn the_metrics_address_is_optional_and_checked_with_its_position() {
    let d = Dir::new();
    assert_eq!(d.parse(GOOD).unwrap().listener.metrics, None);
    let with = |v: &str| GOOD.replace("receive_buffer", &format!("metrics = {v}\nreceive_buffer"));
    let c = d.parse(&with("\"127.0.0.1:9464\"")).unwrap();
    assert_eq!(c.listener.metrics, Some("127.0.0.1:9464".parse().unwrap()));
    assert!(c.describe().contains(
        "\n  metrics: http://127.0.0.1:9464/metrics, health http://127.0.0.1:9464/healthz\n"
    ));
    assert!(!d.parse(GOOD).unwrap().describe().contains("metrics"));
    let c = d.parse(&with("\"[::1]:9100\"")).unwrap();
    assert_eq!(c.listener.metrics, Some("[::1]:9100".parse().unwrap()));
    assert_eq!(
        d.errors(&with("\"localhost:9464\"")),
        vec![
            "knock.toml:4:11: metrics = 'localhost:9464': expected an IP address and port like \"127.0.0.1:9464\" or \"[::1]:9464\""
        ]
    );
    let errors = d.errors(&with("\"127.0.0.1:0\""));
    assert!(
        errors[0].starts_with("knock.toml:4:11: metrics: port 0 is not a fixed port"),
        "{errors:?}"
    );
    let errors = d.errors(&with("9464"));
    assert!(errors[0].starts_with("knock.toml:4:11: "), "{errors:?}");
}
