//! `wait_for`: wait for a TCP port, a file, or a regex in a file, as ONE remote shell loop.
//!
//! Ports on local addresses are checked by reading /proc/net/tcp{,6} for a LISTEN socket (pure
//! sh, no nc/ss/awk needed); other hosts are probed with bash's /dev/tcp under coreutils
//! `timeout`. `search_regex` uses `grep -E` (grep is in every Debian base system). `drained`
//! waits until no connection in `active_connection_states` remains on the port.

use super::plan::failed_output;
use super::{Args, Module, ModuleCtx, ModuleError, ModuleResult, Param, Spec};
use crate::shell::quote;

pub struct WaitFor;

const SPEC: Spec = Spec::new(
    "wait_for",
    &[
        Param::str("host").default("127.0.0.1"),
        Param::int("port"),
        Param::path("path"),
        Param::str("state")
            .choices(&["started", "stopped", "present", "absent", "drained"])
            .default("started"),
        Param::int("timeout").default("300"),
        Param::int("delay").default("0"),
        Param::int("sleep").default("1"),
        Param::int("connect_timeout").default("5"),
        Param::str("search_regex"),
        Param::str("msg"),
        Param::list("active_connection_states")
            .default("ESTABLISHED,FIN_WAIT1,FIN_WAIT2,SYN_RECV,SYN_SENT,TIME_WAIT"),
        Param::list("exclude_hosts")
            .refused("state=drained counts the connections from every host"),
    ],
);

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WaitArgs {
    pub host: String,
    pub port: Option<u16>,
    pub path: Option<String>,
    pub state: String,
    pub timeout: u64,
    pub delay: u64,
    pub sleep: u64,
    pub connect_timeout: u64,
    pub search_regex: Option<String>,
    pub msg: Option<String>,
    pub active_states: Vec<String>,
}

const TCP_STATES: &[(&str, &str)] = &[
    ("ESTABLISHED", "01"),
    ("SYN_SENT", "02"),
    ("SYN_RECV", "03"),
    ("FIN_WAIT1", "04"),
    ("FIN_WAIT2", "05"),
    ("TIME_WAIT", "06"),
    ("CLOSE", "07"),
    ("CLOSE_WAIT", "08"),
    ("LAST_ACK", "09"),
    ("LISTEN", "0A"),
    ("CLOSING", "0B"),
];

impl WaitArgs {
    pub fn from_args(args: &Args<'_>) -> Result<Self, ModuleError> {
        let port = match args.uint("port")? {
            None => None,
            Some(p) if (1..=65535).contains(&p) => Some(p as u16),
            Some(p) => {
                return Err(ModuleError::Args(format!(
                    "parameter 'port' must be 1-65535, got {p}"
                )))
            }
        };
        let secs =
            |name: &str| -> Result<u64, ModuleError> { Ok(args.uint(name)?.unwrap_or_default()) };
        let a = Self {
            host: args.str("host")?.unwrap_or_default(),
            port,
            path: args.str("path")?,
            state: args.choice("state")?.unwrap_or_default(),
            timeout: secs("timeout")?,
            delay: secs("delay")?,
            sleep: secs("sleep")?.max(1),
            connect_timeout: secs("connect_timeout")?.max(1),
            search_regex: args.str("search_regex")?,
            msg: args.str("msg")?,
            active_states: args.list("active_connection_states")?.unwrap_or_default(),
        };
        a.check().map_err(ModuleError::Args)?;
        Ok(a)
    }

    /// The combinations Ansible (or knockplay) refuses.
    fn check(&self) -> Result<(), String> {
        if self.port.is_some() && self.path.is_some() {
            return Err("port and path parameter can not both be passed to wait_for".into());
        }
        if self.path.is_some() && self.state == "drained" {
            return Err(
                "state=drained should only be used for checking a port in the wait_for module"
                    .into(),
            );
        }
        if self.port.is_some() && self.search_regex.is_some() {
            return Err("search_regex is only supported together with path in knockplay".into());
        }
        if self.state == "drained" && self.port.is_none() {
            return Err("state=drained requires parameter 'port'".into());
        }
        match self
            .active_states
            .iter()
            .find(|s| !TCP_STATES.iter().any(|(n, _)| n == s))
        {
            Some(s) => Err(format!(
                "unknown connection state '{s}' in active_connection_states"
            )),
            None => Ok(()),
        }
    }

    fn local_host(&self) -> bool {
        matches!(
            self.host.as_str(),
            "127.0.0.1" | "localhost" | "0.0.0.0" | "::1" | "::" | "ip6-localhost"
        ) || self.host.starts_with("127.")
    }
}

/// A shell condition that is true when the port accepts connections.
fn port_open(a: &WaitArgs, port: u16) -> String {
    if a.local_host() {
        format!("kp_sock {port:04X} 0A")
    } else {
        // The host is an argument of bash, never part of its script.
        format!(
            "timeout {ct} bash -c 'exec 3<>\"/dev/tcp/$1/$2\"' kp {host} {port} >/dev/null 2>&1",
            ct = a.connect_timeout,
            host = quote(&a.host)
        )
    }
}

/// The whole wait as one script: exits 0 when the condition holds, 1 on timeout.
pub fn script(a: &WaitArgs) -> String {
    let mut s = String::new();
    // kp_sock PORTHEX STATES...: a socket on local port PORTHEX in one of the (hex) states.
    s.push_str(
        "kp_sock() { kp_p=$1; shift; for kp_f in /proc/net/tcp /proc/net/tcp6; do [ -r $kp_f ] || continue; \
         while read -r kp_sl kp_local kp_rem kp_st kp_rest; do [ \"${kp_local##*:}\" = \"$kp_p\" ] || continue; \
         for kp_w in \"$@\"; do [ \"$kp_st\" = \"$kp_w\" ] && return 0; done; done < $kp_f; done; return 1; }\n",
    );
    let cond = match (&a.path, a.port) {
        (Some(p), _) => {
            let p = quote(p);
            match (a.state.as_str(), &a.search_regex) {
                ("absent" | "stopped", _) => format!("[ ! -e {p} ]"),
                (_, Some(re)) => format!("[ -r {p} ] && grep -Eq -- {} {p}", quote(re)),
                _ => format!("[ -e {p} ]"),
            }
        }
        (None, Some(port)) => match a.state.as_str() {
            "stopped" | "absent" => format!("! {{ {}; }}", port_open(a, port)),
            "drained" => {
                let states: Vec<&str> = a
                    .active_states
                    .iter()
                    .filter_map(|n| TCP_STATES.iter().find(|(x, _)| x == n).map(|(_, h)| *h))
                    .collect();
                format!("! kp_sock {port:04X} {}", states.join(" "))
            }
            _ => port_open(a, port),
        },
        // Neither port nor path: Ansible just sleeps for `timeout` seconds.
        (None, None) => "false".to_string(),
    };
    let bash_check = if a.port.is_some() && !a.local_host() && a.path.is_none() {
        "command -v bash >/dev/null 2>&1 || { echo 'wait_for: checking a remote port needs bash on the target' >&2; exit 2; }\n"
    } else {
        ""
    };
    let only_sleep = a.port.is_none() && a.path.is_none();
    s.push_str(bash_check);
    s.push_str(&format!(
        "kp_start=$(date +%s); sleep {delay}; kp_end=$(( $(date +%s) + {timeout} ))\n\
         while :; do\n  if {cond}; then echo \"elapsed=$(( $(date +%s) - kp_start ))\"; exit 0; fi\n  \
         [ \"$(date +%s)\" -ge \"$kp_end\" ] && {{ echo \"elapsed=$(( $(date +%s) - kp_start ))\"; exit {timeout_rc}; }}\n  \
         sleep {sleep}\ndone\n",
        delay = a.delay,
        timeout = a.timeout,
        sleep = if only_sleep { 1 } else { a.sleep },
        timeout_rc = if only_sleep { 0 } else { 1 },
    ));
    s
}

fn timeout_msg(a: &WaitArgs) -> String {
    if let Some(m) = &a.msg {
        return m.clone();
    }
    match (&a.path, a.port) {
        (Some(p), _) if a.state == "absent" || a.state == "stopped" => {
            format!("Timeout when waiting for {p} to be absent.")
        }
        (Some(p), _) => match &a.search_regex {
            Some(re) => format!("Timeout when waiting for search string {re} in {p}"),
            None => format!("Timeout when waiting for file {p}"),
        },
        (None, Some(port)) if a.state == "drained" => {
            format!("Timeout when waiting for {}:{port} to drain", a.host)
        }
        (None, Some(port)) if a.state == "stopped" || a.state == "absent" => {
            format!("Timeout when waiting for {}:{port} to stop.", a.host)
        }
        (None, Some(port)) => format!("Timeout when waiting for {}:{port}", a.host),
        _ => "Timeout".into(),
    }
}

impl Module for WaitFor {
    fn spec(&self) -> &'static Spec {
        &SPEC
    }
    fn run(&self, args: &Args<'_>, ctx: &mut ModuleCtx<'_>) -> Result<ModuleResult, ModuleError> {
        let a = WaitArgs::from_args(args)?;
        let out = ctx.run(&script(&a))?;
        let elapsed: u64 = out
            .stdout_str()
            .lines()
            .find_map(|l| {
                l.strip_prefix("elapsed=")
                    .and_then(|v| v.trim().parse().ok())
            })
            .unwrap_or(0);
        let mut res = match out.rc {
            0 => ModuleResult::ok(),
            1 => ModuleResult::failed(timeout_msg(&a)),
            _ => failed_output("wait_for", &out),
        };
        res = res.set("elapsed", elapsed).set("state", a.state.as_str());
        if let Some(p) = a.port {
            res = res.set("port", p).set("host", a.host.as_str());
        }
        if let Some(p) = &a.path {
            res = res.set("path", p.as_str());
        }
        if let Some(re) = &a.search_regex {
            res = res.set("search_regex", re.as_str());
        }
        Ok(res)
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::{args, ctx, out, parse_with, sh, FakeRemote};
    use super::*;
    use serde_json::json;

    fn parse(v: serde_json::Value) -> Result<WaitArgs, ModuleError> {
        parse_with(&SPEC, v, WaitArgs::from_args)
    }

    fn wa(v: serde_json::Value) -> WaitArgs {
        parse(v).unwrap()
    }

    fn run_sh(s: &str) -> (Option<i32>, String) {
        let o = sh(s, None);
        (Some(o.rc), o.stdout_str())
    }

    #[test]
    fn argument_errors() {
        for (a, needle) in [
            (json!({"port": 22, "path": "/x"}), "can not both"),
            (json!({"port": 70000}), "'port'"),
            (json!({"path": "/x", "state": "drained"}), "drained"),
            (json!({"port": 1, "state": "up"}), "'state'"),
            (
                json!({"port": 1, "active_connection_states": ["BUSY"]}),
                "BUSY",
            ),
            (json!({"port": 1, "timeout": "soon"}), "'timeout'"),
            (
                json!({"port": 1, "state": "drained", "exclude_hosts": ["10.0.0.1"]}),
                "wait_for: parameter 'exclude_hosts' is not supported by knockplay",
            ),
            (
                json!({"port": 0}),
                "wait_for: parameter 'port' must be 1-65535, got 0",
            ),
        ] {
            let e = parse(a.clone()).unwrap_err().to_string();
            assert!(e.contains(needle), "{a}: {e}");
        }
    }

    #[test]
    fn defaults_follow_ansible() {
        let a = wa(json!({"port": "22", "sleep": 0}));
        assert_eq!(a.host, "127.0.0.1");
        assert_eq!(a.port, Some(22));
        assert_eq!(a.state, "started");
        assert_eq!(
            (a.timeout, a.delay, a.sleep, a.connect_timeout),
            (300, 0, 1, 5)
        );
        assert_eq!(
            a.active_states,
            [
                "ESTABLISHED",
                "FIN_WAIT1",
                "FIN_WAIT2",
                "SYN_RECV",
                "SYN_SENT",
                "TIME_WAIT"
            ]
        );
    }

    #[test]
    fn path_present_absent_and_regex_with_real_sh() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("ready").display().to_string();
        let (rc, _) = run_sh(&script(&wa(json!({"path": f, "timeout": 0}))));
        assert_eq!(rc, Some(1), "missing file times out");
        std::fs::write(&f, "booting\nstatus: READY\n").unwrap();
        let (rc, out) = run_sh(&script(&wa(json!({"path": f, "timeout": 0}))));
        // The present file is found on the first look (a loaded machine may still cross a second).
        assert_eq!(rc, Some(0), "{out}");
        assert!(out.starts_with("elapsed=") && out.ends_with('\n'), "{out}");
        let (rc, _) = run_sh(&script(&wa(
            json!({"path": f, "search_regex": "status: (READY|UP)", "timeout": 0}),
        )));
        assert_eq!(rc, Some(0));
        let (rc, _) = run_sh(&script(&wa(
            json!({"path": f, "search_regex": "FAILED", "timeout": 0}),
        )));
        assert_eq!(rc, Some(1));
        let (rc, _) = run_sh(&script(&wa(
            json!({"path": f, "state": "absent", "timeout": 0}),
        )));
        assert_eq!(rc, Some(1));
    }

    #[test]
    fn local_port_seen_through_proc_net_tcp() {
        if !std::path::Path::new("/proc/net/tcp").exists() {
            return;
        }
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        let (rc, _) = run_sh(&script(&wa(json!({"port": port, "timeout": 0}))));
        assert_eq!(rc, Some(0), "listening port is started");
        let (rc, _) = run_sh(&script(&wa(
            json!({"port": port, "state": "stopped", "timeout": 0}),
        )));
        assert_eq!(rc, Some(1), "listening port is not stopped");
        // drained: no connections yet
        let (rc, _) = run_sh(&script(&wa(
            json!({"port": port, "state": "drained", "timeout": 0}),
        )));
        assert_eq!(rc, Some(0));
        let c = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
        let (rc, _) = run_sh(&script(&wa(
            json!({"port": port, "state": "drained", "timeout": 0}),
        )));
        assert_eq!(rc, Some(1), "an established connection is not drained");
        drop(c);
        drop(l);
        let (rc, _) = run_sh(&script(&wa(json!({"port": port, "timeout": 0}))));
        assert_eq!(rc, Some(1), "closed port is not started");
    }

    #[test]
    fn remote_host_uses_bash_dev_tcp() {
        let s = script(&wa(
            json!({"host": "10.1.2.3", "port": 80, "connect_timeout": 2}),
        ));
        assert!(
            s.contains("timeout 2 bash -c 'exec 3<>\"/dev/tcp/$1/$2\"' kp 10.1.2.3 80"),
            "{s}"
        );
        assert!(s.contains("needs bash"));
    }

    #[test]
    fn a_host_value_is_never_run_as_shell() {
        let dir = tempfile::tempdir().unwrap();
        let marker = dir.path().join("pwned");
        let host = format!("x/1; touch {}; #", marker.display());
        let s = script(&wa(
            json!({"host": host, "port": 9, "timeout": 1, "connect_timeout": 1}),
        ));
        let out = std::process::Command::new("sh")
            .arg("-c")
            .arg(&s)
            .output()
            .unwrap();
        assert_ne!(out.status.code(), Some(0));
        assert!(!marker.exists(), "the host value ran as a command");
    }

    #[test]
    fn run_flow_reports_timeout_message() {
        let mut r = FakeRemote::new(vec![out(1, "elapsed=5\n"), out(0, "elapsed=2\n")]);
        let a = args(json!({"port": 8080, "timeout": 5}));
        let res = WaitFor
            .execute(&a, &mut ctx(&mut r, false, false, vec![]))
            .unwrap();
        assert!(res.failed);
        assert_eq!(
            res.msg.as_deref(),
            Some("Timeout when waiting for 127.0.0.1:8080")
        );
        assert_eq!(res.data["elapsed"], 5);
        let res = WaitFor
            .execute(&a, &mut ctx(&mut r, true, false, vec![]))
            .unwrap();
        assert!(!res.failed && !res.changed);
        assert_eq!(res.data["elapsed"], 2);
    }
}
