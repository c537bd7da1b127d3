//! `service` and `systemd`: start/stop/restart/reload, enable at boot, masks, daemon-reload.
//!
//! One probe round trip detects the init system (`/run/systemd/system` → systemctl, otherwise
//! sysvinit through `/etc/init.d/NAME` or `service`, `update-rc.d` for boot links) and reads the
//! service's state; a pure planner picks actions; they run in one more round trip only when needed.
//! restarted/reloaded always report changed, as in Ansible.

use super::plan::{failed_output, finish_command, Outcome, Plan, Report};
use super::probe::{probe_sections, sections};
use super::{Args, Module, ModuleCtx, ModuleError, ModuleResult, Param, Spec};
use crate::shell::quote;

/// One module type registered under both names.
pub struct Service {
    pub name: &'static str,
}

pub const SERVICE: Service = Service { name: "service" };
pub const SYSTEMD: Service = Service { name: "systemd" };

/// Both names take the union of Ansible's `service` and `systemd` parameters: Ansible's `service`
/// hands its arguments to the `systemd` module on systemd hosts.
const PARAMS: &[Param] = &[
    Param::str("name").aliases(&["service", "unit"]).word(),
    Param::str("state").choices(&["started", "stopped", "restarted", "reloaded"]),
    Param::bool("enabled"),
    Param::bool("masked"),
    Param::bool("daemon_reload")
        .default("false")
        .aliases(&["daemon-reload"]),
    Param::bool("daemon_reexec")
        .default("false")
        .aliases(&["daemon-reexec"]),
    Param::str("pattern"),
    Param::str("arguments").default("").aliases(&["args"]),
    Param::str("use")
        .choices(&["auto", "systemd", "sysvinit", "service"])
        .default("auto"),
    // knockplay runs plain `systemctl VERB UNIT` for the system manager, and init scripts' own
    // restart.
    Param::bool("force").only("false"),
    Param::bool("no_block").only("false"),
    Param::str("scope").only("system"),
    Param::str("runlevel").only("default"),
    // Init scripts: a restart becomes stop, sleep, start (systemd ignores it, as in Ansible).
    Param::int("sleep"),
];

const SERVICE_SPEC: Spec = Spec::new("service", PARAMS);
const SYSTEMD_SPEC: Spec = Spec::new("systemd", PARAMS);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wanted {
    Started,
    Stopped,
    Restarted,
    Reloaded,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceArgs {
    pub name: Option<String>,
    pub state: Option<Wanted>,
    pub enabled: Option<bool>,
    pub masked: Option<bool>,
    pub daemon_reload: bool,
    pub daemon_reexec: bool,
    pub pattern: Option<String>,
    pub arguments: String,
    /// `use:` forces a manager (`systemd`, `sysvinit`/`service`); `None` = detect.
    pub force_mgr: Option<Mgr>,
    /// Seconds between stop and start when an init script restarts the service.
    pub sleep: Option<u64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mgr {
    Systemd,
    Sysv,
}

impl ServiceArgs {
    pub fn from_args(args: &Args<'_>) -> Result<Self, ModuleError> {
        let module = args.module();
        let state = args.choice("state")?.map(|s| match s.as_str() {
            "stopped" => Wanted::Stopped,
            "restarted" => Wanted::Restarted,
            "reloaded" => Wanted::Reloaded,
            _ => Wanted::Started,
        });
        let force_mgr = match args.choice("use")?.as_deref() {
            Some("systemd") => Some(Mgr::Systemd),
            Some("sysvinit" | "service") => Some(Mgr::Sysv),
            _ => None,
        };
        let a = Self {
            name: args.str("name")?,
            state,
            enabled: args.opt_bool("enabled")?,
            masked: args.opt_bool("masked")?,
            daemon_reload: args.bool("daemon_reload")?,
            daemon_reexec: args.bool("daemon_reexec")?,
            pattern: args.str("pattern")?,
            arguments: args.str("arguments")?.unwrap_or_default(),
            force_mgr,
            sleep: args
                .int("sleep")?
                .filter(|n| *n > 0)
                .map(|n| n.unsigned_abs().min(3600)),
        };
        let needs_name = a.state.is_some() || a.enabled.is_some() || a.masked.is_some();
        // `service` always needs the name; `systemd` only to act on a unit.
        if a.name.is_none() && (needs_name || module == SERVICE.name) {
            return Err(ModuleError::Args(
                "missing required parameter 'name'".into(),
            ));
        }
        if !needs_name && !a.daemon_reload && !a.daemon_reexec {
            return Err(ModuleError::Args(format!(
                "one of the following is required: state, enabled{}",
                if module == SYSTEMD.name {
                    ", masked, daemon_reload, daemon_reexec"
                } else {
                    ""
                }
            )));
        }
        Ok(a)
    }
}

/// What the probe found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Probe {
    pub mgr: Mgr,
    /// The unit / init script exists.
    pub found: bool,
    pub running: bool,
    pub enabled: bool,
    pub masked: bool,
    /// sysvinit: `update-rc.d` exists; K links exist (then `defaults` is not needed).
    pub update_rc_d: bool,
    pub klinks: bool,
    /// sysvinit: what controls the service: `initd` (`/etc/init.d/NAME`) or `service`.
    pub control: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// systemctl / service verb (start, stop, restart, reload, enable, disable, mask, unmask).
    Systemctl(&'static str),
    Init(&'static str),
    /// update-rc.d NAME defaults | enable | disable
    UpdateRcD(&'static str),
    /// `sleep:` seconds between an init script's stop and start.
    Sleep(u64),
}

/// Pure: actions bringing the service to the wanted state, or a failure message.
pub fn plan(a: &ServiceArgs, p: &Probe) -> Result<Vec<Action>, String> {
    let name = a.name.as_deref().unwrap_or("");
    let mut acts = Vec::new();
    let needs_unit = a.state.is_some() || a.enabled.is_some();
    if a.name.is_some() && needs_unit && !p.found {
        return Err(match p.mgr {
            Mgr::Systemd => format!("Could not find the requested service {name}: host"),
            Mgr::Sysv => format!(
                "Could not find the requested service {name}: no /etc/init.d/{name} and no 'service' command"
            ),
        });
    }
    match p.mgr {
        Mgr::Systemd => {
            if let Some(m) = a.masked {
                if m != p.masked {
                    acts.push(Action::Systemctl(if m { "mask" } else { "unmask" }));
                }
            }
            if let Some(e) = a.enabled {
                if e != p.enabled {
                    acts.push(Action::Systemctl(if e { "enable" } else { "disable" }));
                }
            }
        }
        Mgr::Sysv => {
            if a.masked.is_some() {
                return Err("masked is only supported with systemd".into());
            }
            if let Some(e) = a.enabled {
                if e != p.enabled {
                    if !p.update_rc_d {
                        return Err(format!(
                            "cannot set enabled for {name}: update-rc.d not found on this sysvinit host"
                        ));
                    }
                    if e && !p.klinks {
                        acts.push(Action::UpdateRcD("defaults"));
                    }
                    acts.push(Action::UpdateRcD(if e { "enable" } else { "disable" }));
                }
            }
        }
    }
    let verb = match a.state {
        None => None,
        Some(Wanted::Started) => (!p.running).then_some("start"),
        Some(Wanted::Stopped) => p.running.then_some("stop"),
        Some(Wanted::Restarted) => Some(if p.running { "restart" } else { "start" }),
        Some(Wanted::Reloaded) => Some(if p.running { "reload" } else { "start" }),
    };
    match (verb, p.mgr, a.sleep) {
        (Some("restart"), Mgr::Sysv, Some(n)) => {
            acts.extend([
                Action::Init("stop"),
                Action::Sleep(n),
                Action::Init("start"),
            ]);
        }
        (Some(v), Mgr::Systemd, _) => acts.push(Action::Systemctl(v)),
        (Some(v), Mgr::Sysv, _) => acts.push(Action::Init(v)),
        (None, ..) => {}
    }
    Ok(acts)
}

/// `printf` octal escapes, so a pattern does not appear literally in our own command line.
fn octal(s: &str) -> String {
    s.bytes().map(|b| format!("\\{b:03o}")).collect()
}

/// The probe script (daemon-reload/reexec run here unless in check mode, as in Ansible).
pub fn probe_script(a: &ServiceArgs, check_mode: bool) -> String {
    let n = quote(a.name.as_deref().unwrap_or(""));
    let detect = match a.force_mgr {
        Some(Mgr::Systemd) => "true".to_string(),
        Some(Mgr::Sysv) => "false".to_string(),
        None => "[ -d /run/systemd/system ] && command -v systemctl >/dev/null 2>&1".to_string(),
    };
    let mut s = format!(
        "LC_ALL=C; export LC_ALL\nprintf '\\n@@KP:kv\\n'\nif {detect}; then\n  echo mgr=systemd\n"
    );
    if !check_mode && a.daemon_reload {
        s.push_str("  systemctl daemon-reload || { echo 'daemon-reload failed' >&2; exit 1; }\n");
    }
    if !check_mode && a.daemon_reexec {
        s.push_str("  systemctl daemon-reexec || { echo 'daemon-reexec failed' >&2; exit 1; }\n");
    }
    if a.name.is_some() {
        s.push_str(&format!(
            "  systemctl show -p LoadState -p ActiveState -p UnitFileState {n} 2>/dev/null\n  \
             echo \"is_enabled=$(systemctl is-enabled {n} 2>/dev/null)\"\n  \
             systemctl is-enabled {n} >/dev/null 2>&1; echo \"enabled_rc=$?\"\n"
        ));
    }
    s.push_str("else\n  echo mgr=sysv\n");
    if a.name.is_some() {
        s.push_str(&format!(
            "  command -v update-rc.d >/dev/null 2>&1 && echo update_rc_d=1\n  \
             c=; if [ -x /etc/init.d/{n} ]; then c=initd; \
             elif command -v service >/dev/null 2>&1; then service {n} status >/dev/null 2>&1 </dev/null; \
             [ $? -ne 1 ] && c=service; fi; [ -n \"$c\" ] && echo control=$c\n  \
             for f in /etc/rc?.d/S??{n}; do [ -e \"$f\" ] && {{ echo slinks=1; break; }}; done\n  \
             for f in /etc/rc?.d/K??{n}; do [ -e \"$f\" ] && {{ echo klinks=1; break; }}; done\n"
        ));
        match &a.pattern {
            Some(p) => s.push_str(&format!(
                "  kp_p=$(printf '{}')\n  kp_all=$(cat /proc/[0-9]*/cmdline 2>/dev/null | tr '\\000' ' ')\n  \
                 case \"$kp_all\" in *\"$kp_p\"*) echo running=1;; esac\n",
                octal(p)
            )),
            None => s.push_str(&format!(
                "  case $c in initd) /etc/init.d/{n} status >/dev/null 2>&1 </dev/null && echo running=1;; \
                 service) service {n} status >/dev/null 2>&1 </dev/null && echo running=1;; esac\n"
            )),
        }
    }
    s.push_str("fi\nprintf '\\n@@KP:end\\n'\n");
    s
}

pub fn parse_probe(out: &str) -> Probe {
    let s = sections(out);
    let kv: std::collections::HashMap<&str, &str> = s
        .get("kv")
        .map(|t| t.lines().filter_map(|l| l.split_once('=')).collect())
        .unwrap_or_default();
    let get = |k: &str| kv.get(k).copied().unwrap_or("");
    if get("mgr") == "systemd" {
        let load = get("LoadState");
        let active = get("ActiveState");
        let is_enabled = get("is_enabled");
        Probe {
            mgr: Mgr::Systemd,
            found: !load.is_empty() && load != "not-found",
            running: matches!(active, "active" | "activating" | "reloading"),
            enabled: get("enabled_rc") == "0" && is_enabled != "masked",
            masked: load == "masked" || is_enabled.starts_with("masked"),
            update_rc_d: false,
            klinks: false,
            control: None,
        }
    } else {
        let control = kv.get("control").map(|c| c.to_string());
        Probe {
            mgr: Mgr::Sysv,
            found: control.is_some(),
            running: get("running") == "1",
            enabled: get("slinks") == "1",
            masked: false,
            update_rc_d: get("update_rc_d") == "1",
            klinks: get("klinks") == "1",
            control,
        }
    }
}

/// Shell for the actions. Init scripts run with output to a file so a daemon that keeps the
/// inherited stdout open cannot hold the SSH channel.
pub fn apply_script(a: &ServiceArgs, p: &Probe, acts: &[Action]) -> String {
    let n = quote(a.name.as_deref().unwrap_or(""));
    let mut s = String::from("LC_ALL=C; export LC_ALL; kp_o=$(mktemp) || exit 1\nkp_run() { \"$@\" </dev/null >\"$kp_o\" 2>&1; kp_rc=$?; cat \"$kp_o\"; if [ $kp_rc -ne 0 ]; then echo \"'$*' failed (rc=$kp_rc)\" >&2; rm -f \"$kp_o\"; exit $kp_rc; fi; }\n");
    for act in acts {
        let line = match act {
            Action::Systemctl(v) => format!("kp_run systemctl {v} {n}"),
            Action::UpdateRcD(v) => format!("kp_run update-rc.d {n} {v}"),
            Action::Sleep(secs) => format!("sleep {secs}"),
            Action::Init(v) => {
                let args = if a.arguments.is_empty() {
                    String::new()
                } else {
                    format!(" {}", a.arguments)
                };
                // The probe says which of the two controls the service; the name is quoted here.
                let name = a.name.as_deref().unwrap_or("");
                let control = match p.control.as_deref() {
                    Some("initd") => quote(&format!("/etc/init.d/{name}")),
                    _ => format!("service {n}"),
                };
                format!("kp_run {control} {v}{args}")
            }
        };
        s.push_str(&line);
        s.push('\n');
    }
    s.push_str("rm -f \"$kp_o\"\n");
    s
}

impl Module for Service {
    fn spec(&self) -> &'static Spec {
        if self.name == SYSTEMD.name {
            &SYSTEMD_SPEC
        } else {
            &SERVICE_SPEC
        }
    }
    fn run(&self, args: &Args<'_>, ctx: &mut ModuleCtx<'_>) -> Result<ModuleResult, ModuleError> {
        let a = ServiceArgs::from_args(args)?;
        let text = match probe_sections(ctx, &probe_script(&a, ctx.check_mode))? {
            Ok(out) => out.stdout_str(),
            Err(out) => {
                let what = format!("{}: reading service state", self.name);
                return Ok(failed_output(&what, &out));
            }
        };
        let probe = parse_probe(&text);
        let acts = match plan(&a, &probe) {
            Ok(acts) => acts,
            Err(msg) => return Ok(ModuleResult::failed(msg)),
        };
        let outcome = Outcome::new(if acts.is_empty() {
            Plan::NoChange
        } else {
            Plan::script(apply_script(&a, &probe, &acts), None)
        });
        let unit = a.name.as_deref().unwrap_or("");
        let report = Report::command(format!("{} {unit}", self.name));
        let mut res = finish_command(ctx, outcome, &report)?;
        if res.failed {
            return Ok(res);
        }
        if let Some(n) = &a.name {
            res = res.set("name", n.as_str());
        }
        if let Some(st) = a.state {
            let st = match st {
                Wanted::Stopped => "stopped",
                _ => "started",
            };
            res = res.set("state", st);
        }
        if let Some(e) = a.enabled {
            res = res.set("enabled", e);
        }
        Ok(res)
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::{args, ctx, out, parse_with, sh, FakeRemote};
    use super::*;
    use serde_json::json;

    fn parse(spec: &'static Spec, v: serde_json::Value) -> Result<ServiceArgs, ModuleError> {
        parse_with(spec, v, ServiceArgs::from_args)
    }

    fn sysv(running: bool, enabled: bool, klinks: bool) -> Probe {
        Probe {
            mgr: Mgr::Sysv,
            found: true,
            running,
            enabled,
            masked: false,
            update_rc_d: true,
            klinks,
            control: Some("initd".into()),
        }
    }
    fn sd(running: bool, enabled: bool) -> Probe {
        Probe {
            mgr: Mgr::Systemd,
            found: true,
            running,
            enabled,
            masked: false,
            update_rc_d: false,
            klinks: false,
            control: None,
        }
    }
    fn parsed(v: serde_json::Value) -> ServiceArgs {
        parse(&SERVICE_SPEC, v).unwrap()
    }

    #[test]
    fn planner_table() {
        use Action::*;
        let cases: Vec<(serde_json::Value, Probe, Vec<Action>)> = vec![
            (
                json!({"name": "kpd", "state": "started"}),
                sysv(true, false, false),
                vec![],
            ),
            (
                json!({"name": "kpd", "state": "started"}),
                sysv(false, false, false),
                vec![Init("start")],
            ),
            (
                json!({"name": "kpd", "state": "stopped"}),
                sysv(true, false, false),
                vec![Init("stop")],
            ),
            (
                json!({"name": "kpd", "state": "stopped"}),
                sysv(false, false, false),
                vec![],
            ),
            (
                json!({"name": "kpd", "state": "restarted", "sleep": 2}),
                sysv(true, true, true),
                vec![Init("stop"), Action::Sleep(2), Init("start")],
            ),
            (
                json!({"name": "kpd", "state": "restarted"}),
                sysv(true, true, true),
                vec![Init("restart")],
            ),
            (
                json!({"name": "kpd", "state": "reloaded"}),
                sysv(true, true, true),
                vec![Init("reload")],
            ),
            (
                json!({"name": "kpd", "state": "reloaded"}),
                sysv(false, true, true),
                vec![Init("start")],
            ),
            (
                json!({"name": "kpd", "enabled": "yes", "state": "started"}),
                sysv(false, false, false),
                vec![UpdateRcD("defaults"), UpdateRcD("enable"), Init("start")],
            ),
            (
                json!({"name": "kpd", "enabled": true}),
                sysv(false, false, true),
                vec![UpdateRcD("enable")],
            ),
            (
                json!({"name": "kpd", "enabled": false}),
                sysv(false, true, true),
                vec![UpdateRcD("disable")],
            ),
            (
                json!({"name": "kpd", "enabled": true}),
                sysv(false, true, true),
                vec![],
            ),
            (
                json!({"name": "nginx", "state": "started", "enabled": true}),
                sd(false, false),
                vec![Systemctl("enable"), Systemctl("start")],
            ),
            (
                json!({"name": "nginx", "state": "started", "enabled": true}),
                sd(true, true),
                vec![],
            ),
            (
                json!({"name": "nginx", "state": "restarted"}),
                sd(true, true),
                vec![Systemctl("restart")],
            ),
            (
                json!({"name": "nginx", "masked": true}),
                sd(false, false),
                vec![Systemctl("mask")],
            ),
        ];
        for (a, p, want) in cases {
            assert_eq!(plan(&parsed(a.clone()), &p), Ok(want), "{a}");
        }
    }

    #[test]
    fn planner_failures() {
        let mut p = sysv(false, false, false);
        p.found = false;
        p.control = None;
        let e = plan(&parsed(json!({"name": "nope", "state": "started"})), &p).unwrap_err();
        assert!(
            e.contains("Could not find the requested service nope"),
            "{e}"
        );
        let mut p = sysv(false, false, false);
        p.update_rc_d = false;
        let e = plan(&parsed(json!({"name": "kpd", "enabled": true})), &p).unwrap_err();
        assert!(e.contains("update-rc.d"));
        let e = parse(&SERVICE_SPEC, json!({"name": "x"})).unwrap_err();
        assert!(e.to_string().contains("state, enabled"));
        let e = parse(&SERVICE_SPEC, json!({"state": "started"})).unwrap_err();
        assert!(e.to_string().contains("'name'"));
        assert_eq!(
            parse(&SYSTEMD_SPEC, json!({"masked": true}))
                .unwrap_err()
                .to_string(),
            "systemd: missing required parameter 'name'"
        );
        assert_eq!(
            parse(&SYSTEMD_SPEC, json!({"name": "x"}))
                .unwrap_err()
                .to_string(),
            "systemd: one of the following is required: state, enabled, masked, daemon_reload, daemon_reexec"
        );
        for (v, needle) in [
            (
                json!({"name": "x", "state": "up"}),
                "'state' must be one of",
            ),
            (json!({"name": "x", "enabled": "perhaps"}), "'enabled'"),
            (
                json!({"name": "x", "enabled": true, "scope": "user"}),
                "only scope=system",
            ),
        ] {
            let e = parse(&SERVICE_SPEC, v.clone()).unwrap_err().to_string();
            assert!(e.starts_with("service: ") && e.contains(needle), "{v}: {e}");
        }
        let a = parsed(json!({"unit": "x", "enabled": "yes", "no_block": false, "args": "-v"}));
        assert_eq!((a.name.as_deref(), a.enabled), (Some("x"), Some(true)));
        assert_eq!(a.arguments, "-v");
        // systemd accepts daemon_reload alone.
        assert!(parse(&SYSTEMD_SPEC, json!({"daemon_reload": true})).is_ok());
    }

    #[test]
    fn parses_probes() {
        let p = parse_probe("\n@@KP:kv\nmgr=systemd\nLoadState=loaded\nActiveState=active\nUnitFileState=enabled\nis_enabled=enabled\nenabled_rc=0\n\n@@KP:end\n");
        assert_eq!(p, sd(true, true));
        let p = parse_probe("\n@@KP:kv\nmgr=systemd\nLoadState=not-found\nActiveState=inactive\nis_enabled=\nenabled_rc=1\n\n@@KP:end\n");
        assert!(!p.found && !p.running && !p.enabled);
        let p = parse_probe(
            "\n@@KP:kv\nmgr=sysv\nupdate_rc_d=1\ncontrol=initd\nklinks=1\nrunning=1\n\n@@KP:end\n",
        );
        assert_eq!(p, sysv(true, false, true));
    }

    /// Runs the real probe and apply scripts with sh against a throwaway init.d-style tree.
    #[test]
    fn sysv_scripts_drive_a_real_init_script() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path().display().to_string();
        let init = format!("{d}/kpd");
        std::fs::write(
            &init,
            format!("#!/bin/sh\ncase \"$1\" in start) touch {d}/run; echo started;; stop) rm -f {d}/run;; status) [ -e {d}/run ];; restart) echo restarted;; esac\n"),
        )
        .unwrap();
        std::process::Command::new("chmod")
            .args(["+x", &init])
            .status()
            .unwrap();
        let a = ServiceArgs {
            force_mgr: Some(Mgr::Sysv),
            ..parsed(json!({"name": "kpd", "state": "started"}))
        };
        let fix = |s: String| s.replace("/etc/init.d/", &format!("{d}/"));
        let run = |s: &str| {
            let o = sh(s, None);
            (Some(o.rc), o.stdout_str())
        };
        let (_, out) = run(&fix(probe_script(&a, false)));
        let p = parse_probe(&out);
        assert!(p.found && !p.running, "{out}");
        let acts = plan(&a, &p).unwrap();
        assert_eq!(acts, vec![Action::Init("start")]);
        let (rc, out) = run(&fix(apply_script(&a, &p, &acts)));
        assert_eq!((rc, out.as_str()), (Some(0), "started\n"));
        let (_, out) = run(&fix(probe_script(&a, false)));
        let p = parse_probe(&out);
        assert!(p.running);
        assert_eq!(plan(&a, &p).unwrap(), vec![]);
    }

    #[test]
    fn pattern_does_not_match_the_probe_itself() {
        let a = ServiceArgs {
            force_mgr: Some(Mgr::Sysv),
            ..parsed(
                json!({"name": "kpd", "state": "started", "pattern": "kp-unlikely-process-xyz"}),
            )
        };
        let p = parse_probe(&sh(&probe_script(&a, true), None).stdout_str());
        assert!(!p.running);
        // A real process whose command line contains the pattern is seen as running.
        let mut child = std::process::Command::new("sleep")
            .arg("37.0123")
            .spawn()
            .unwrap();
        let a = ServiceArgs {
            pattern: Some("sleep 37.0123".into()),
            ..a
        };
        let o = sh(&probe_script(&a, true), None);
        let _ = child.kill();
        let _ = child.wait();
        assert!(parse_probe(&o.stdout_str()).running);
    }

    #[test]
    fn run_flow_and_check_mode() {
        let probe = "\n@@KP:kv\nmgr=sysv\nupdate_rc_d=1\ncontrol=initd\n\n@@KP:end\n";
        let a = args(json!({"name": "kpd", "state": "started"}));
        let mut r = FakeRemote::new(vec![out(0, probe)]);
        let res = SERVICE
            .execute(&a, &mut ctx(&mut r, true, false, vec![]))
            .unwrap();
        assert!(res.changed);
        assert_eq!(r.seen.len(), 1);
        let mut r = FakeRemote::new(vec![out(0, probe), out(0, "ok\n")]);
        let res = SYSTEMD
            .execute(&a, &mut ctx(&mut r, false, false, vec![]))
            .unwrap();
        assert!(res.changed && !res.failed);
        assert!(
            r.seen[1].0.contains("kp_run /etc/init.d/kpd start"),
            "{}",
            r.seen[1].0
        );
        assert_eq!(res.data["state"], "started");
    }

    #[test]
    fn failures_name_the_module_and_the_unit() {
        let a = args(json!({"name": "kpd", "state": "started"}));
        let mut r = FakeRemote::new(vec![out(1, "")]);
        let res = SYSTEMD
            .execute(&a, &mut ctx(&mut r, false, false, vec![]))
            .unwrap();
        assert_eq!(
            res.msg.as_deref(),
            Some("systemd: reading service state failed (rc=1)")
        );
        let probe = "\n@@KP:kv\nmgr=sysv\nupdate_rc_d=1\ncontrol=initd\n\n@@KP:end\n";
        let mut r = FakeRemote::new(vec![out(0, probe), out(3, "")]);
        let res = SERVICE
            .execute(&a, &mut ctx(&mut r, false, false, vec![]))
            .unwrap();
        assert_eq!(res.msg.as_deref(), Some("service kpd failed (rc=3)"));
        assert!(res.failed && res.data.is_empty(), "{res:?}");
    }
}
