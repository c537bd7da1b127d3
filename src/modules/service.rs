//! `service` and `systemd`: start/stop/restart/reload, enable at boot, masks, daemon-reload.
//!
//! One probe round trip detects the init system (`/run/systemd/system` → systemctl, otherwise
//! sysvinit through `/etc/init.d/NAME` or `service`, `update-rc.d` for boot links) and reads the
//! service's state; a pure planner picks actions; they run in one more round trip only when needed.
//! restarted/reloaded always report changed, as in Ansible.

use super::sysutil::{bool_or, choice, failed_output, opt_bool, opt_str, req_str, sections};
use super::{Args, Module, ModuleCtx, ModuleError, ModuleResult, Param, Spec};
use crate::shell::quote;
use crate::value::Vars;

/// One module type registered under both names.
pub struct Service {
    pub name: &'static str,
}

pub const SERVICE: Service = Service { name: "service" };
pub const SYSTEMD: Service = Service { name: "systemd" };

const PARAMS: &[Param] = &[
    Param::raw("name"),
    Param::raw("service"),
    Param::raw("unit"),
    Param::raw("state"),
    Param::raw("enabled"),
    Param::raw("daemon_reload"),
    Param::raw("daemon-reload"),
    Param::raw("daemon_reexec"),
    Param::raw("daemon-reexec"),
    Param::raw("masked"),
    Param::raw("force"),
    Param::raw("no_block"),
    Param::raw("scope"),
    Param::raw("pattern"),
    Param::raw("sleep"),
    Param::raw("arguments"),
    Param::raw("args"),
    Param::raw("runlevel"),
    Param::raw("use"),
];

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
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mgr {
    Systemd,
    Sysv,
}

impl ServiceArgs {
    pub fn parse(args: &Vars, module: &str) -> Result<Self, ModuleError> {
        let state = match opt_str(args, &["state"])? {
            None => None,
            Some(_) => Some(
                match choice(
                    args,
                    &["state"],
                    &["started", "stopped", "restarted", "reloaded"],
                    "started",
                )?
                .as_str()
                {
                    "stopped" => Wanted::Stopped,
                    "restarted" => Wanted::Restarted,
                    "reloaded" => Wanted::Reloaded,
                    _ => Wanted::Started,
                },
            ),
        };
        let force_mgr = match choice(
            args,
            &["use"],
            &["auto", "systemd", "sysvinit", "service"],
            "auto",
        )?
        .as_str()
        {
            "systemd" => Some(Mgr::Systemd),
            "sysvinit" | "service" => Some(Mgr::Sysv),
            _ => None,
        };
        let a = Self {
            name: opt_str(args, &["name", "service", "unit"])?,
            state,
            enabled: opt_bool(args, &["enabled"])?,
            masked: opt_bool(args, &["masked"])?,
            daemon_reload: bool_or(args, &["daemon_reload", "daemon-reload"], false)?,
            daemon_reexec: bool_or(args, &["daemon_reexec", "daemon-reexec"], false)?,
            pattern: opt_str(args, &["pattern"])?,
            arguments: opt_str(args, &["arguments", "args"])?.unwrap_or_default(),
            force_mgr,
        };
        let needs_name = a.state.is_some() || a.enabled.is_some() || a.masked.is_some();
        if a.name.is_none() && (needs_name || module == "service") {
            req_str(args, &["name"])?;
        }
        if !needs_name && !a.daemon_reload && !a.daemon_reexec {
            return Err(ModuleError::Args(format!(
                "{module}: one of the following is required: state, enabled{}",
                if module == "systemd" {
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
    /// sysvinit: command prefix that controls the service (`/etc/init.d/x` or `service x`).
    pub control: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// systemctl / service verb (start, stop, restart, reload, enable, disable, mask, unmask).
    Systemctl(&'static str),
    Init(&'static str),
    /// update-rc.d NAME defaults | enable | disable
    UpdateRcD(&'static str),
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
    if let Some(v) = verb {
        acts.push(match p.mgr {
            Mgr::Systemd => Action::Systemctl(v),
            Mgr::Sysv => Action::Init(v),
        });
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
             c=; if [ -x /etc/init.d/{n} ]; then c=\"/etc/init.d/{n}\"; \
             elif command -v service >/dev/null 2>&1; then service {n} status >/dev/null 2>&1 </dev/null; \
             [ $? -ne 1 ] && c=\"service {n}\"; fi; [ -n \"$c\" ] && echo control=$c\n  \
             for f in /etc/rc?.d/S??{n}; do [ -e \"$f\" ] && {{ echo slinks=1; break; }}; done\n  \
             for f in /etc/rc?.d/K??{n}; do [ -e \"$f\" ] && {{ echo klinks=1; break; }}; done\n"
        ));
        match &a.pattern {
            Some(p) => s.push_str(&format!(
                "  kp_p=$(printf '{}')\n  kp_all=$(cat /proc/[0-9]*/cmdline 2>/dev/null | tr '\\000' ' ')\n  \
                 case \"$kp_all\" in *\"$kp_p\"*) echo running=1;; esac\n",
                octal(p)
            )),
            None => s.push_str(
                "  if [ -n \"$c\" ]; then $c status >/dev/null 2>&1 </dev/null && echo running=1; fi\n",
            ),
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
            Action::Init(v) => {
                let control = p.control.as_deref().unwrap_or("service");
                let args = if a.arguments.is_empty() {
                    String::new()
                } else {
                    format!(" {}", a.arguments)
                };
                // `control` is our own "/etc/init.d/<quoted>" or "service <quoted>": re-quote words.
                let words: Vec<String> = control.split(' ').map(quote).collect();
                format!("kp_run {} {v}{args}", words.join(" "))
            }
        };
        s.push_str(&line);
        s.push('\n');
    }
    s.push_str("rm -f \"$kp_o\"\n");
    s
}

const SERVICE_SPEC: Spec = Spec::new("service", PARAMS);
const SYSTEMD_SPEC: Spec = Spec::new("systemd", PARAMS);

impl Module for Service {
    fn spec(&self) -> &'static Spec {
        if self.name == SYSTEMD.name {
            &SYSTEMD_SPEC
        } else {
            &SERVICE_SPEC
        }
    }
    fn run(&self, args: &Args<'_>, ctx: &mut ModuleCtx<'_>) -> Result<ModuleResult, ModuleError> {
        let args = args.legacy_vars();
        let a = ServiceArgs::parse(args, self.name)?;
        let out = ctx.run(&probe_script(&a, ctx.check_mode))?;
        if !out.ok() || !out.stdout_str().contains("@@KP:end") {
            return Ok(failed_output(
                &format!("{}: reading service state", self.name),
                &out,
            ));
        }
        let probe = parse_probe(&out.stdout_str());
        let acts = match plan(&a, &probe) {
            Ok(acts) => acts,
            Err(msg) => return Ok(ModuleResult::failed(msg)),
        };
        let mut res = if acts.is_empty() {
            ModuleResult::ok()
        } else if ctx.check_mode {
            ModuleResult::changed()
        } else {
            let out = ctx.run(&apply_script(&a, &probe, &acts))?;
            if !out.ok() {
                return Ok(failed_output(
                    &format!("{} {}", self.name, a.name.as_deref().unwrap_or("")),
                    &out,
                ));
            }
            ModuleResult::changed().with_output(&out)
        };
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
    use super::*;
    use crate::modules::sysutil::testing::{args, ctx, FakeRemote};
    use serde_json::json;

    fn sysv(running: bool, enabled: bool, klinks: bool) -> Probe {
        Probe {
            mgr: Mgr::Sysv,
            found: true,
            running,
            enabled,
            masked: false,
            update_rc_d: true,
            klinks,
            control: Some("/etc/init.d/kpd".into()),
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
        ServiceArgs::parse(&args(v), "service").unwrap()
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
        let e = ServiceArgs::parse(&args(json!({"name": "x"})), "service").unwrap_err();
        assert!(e.to_string().contains("state, enabled"));
        let e = ServiceArgs::parse(&args(json!({"state": "started"})), "service").unwrap_err();
        assert!(e.to_string().contains("'name'"));
        // systemd accepts daemon_reload alone.
        assert!(ServiceArgs::parse(&args(json!({"daemon_reload": true})), "systemd").is_ok());
    }

    #[test]
    fn parses_probes() {
        let p = parse_probe("\n@@KP:kv\nmgr=systemd\nLoadState=loaded\nActiveState=active\nUnitFileState=enabled\nis_enabled=enabled\nenabled_rc=0\n\n@@KP:end\n");
        assert_eq!(p, sd(true, true));
        let p = parse_probe("\n@@KP:kv\nmgr=systemd\nLoadState=not-found\nActiveState=inactive\nis_enabled=\nenabled_rc=1\n\n@@KP:end\n");
        assert!(!p.found && !p.running && !p.enabled);
        let p = parse_probe("\n@@KP:kv\nmgr=sysv\nupdate_rc_d=1\ncontrol=/etc/init.d/kpd\nklinks=1\nrunning=1\n\n@@KP:end\n");
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
            let o = std::process::Command::new("sh")
                .arg("-c")
                .arg(s)
                .output()
                .unwrap();
            (
                o.status.code(),
                String::from_utf8_lossy(&o.stdout).into_owned(),
            )
        };
        let (_, out) = run(&fix(probe_script(&a, false)));
        let p = parse_probe(&out);
        assert!(p.found && !p.running, "{out}");
        let acts = plan(&a, &p).unwrap();
        assert_eq!(acts, vec![Action::Init("start")]);
        let (rc, out) = run(&apply_script(&a, &p, &acts));
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
        let o = std::process::Command::new("sh")
            .arg("-c")
            .arg(probe_script(&a, true))
            .output()
            .unwrap();
        let p = parse_probe(&String::from_utf8_lossy(&o.stdout));
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
        let o = std::process::Command::new("sh")
            .arg("-c")
            .arg(probe_script(&a, true))
            .output()
            .unwrap();
        let _ = child.kill();
        let _ = child.wait();
        assert!(parse_probe(&String::from_utf8_lossy(&o.stdout)).running);
    }

    #[test]
    fn run_flow_and_check_mode() {
        let facts = Vars::new();
        let probe = "\n@@KP:kv\nmgr=sysv\nupdate_rc_d=1\ncontrol=/etc/init.d/kpd\n\n@@KP:end\n";
        let a = args(json!({"name": "kpd", "state": "started"}));
        let mut r = FakeRemote::new(&[(0, probe)]);
        let res = SERVICE.execute(&a, &mut ctx(&mut r, &facts, true)).unwrap();
        assert!(res.changed);
        assert_eq!(r.commands.len(), 1);
        let mut r = FakeRemote::new(&[(0, probe), (0, "ok\n")]);
        let res = SYSTEMD
            .execute(&a, &mut ctx(&mut r, &facts, false))
            .unwrap();
        assert!(res.changed && !res.failed);
        assert!(
            r.commands[1].contains("kp_run /etc/init.d/kpd start"),
            "{}",
            r.commands[1]
        );
        assert_eq!(res.data["state"], "started");
    }
}
