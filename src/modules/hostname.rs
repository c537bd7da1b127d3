//! `hostname`: the host's name, current and permanent, set with ansible-core's strategies: the
//! systemd one (`hostnamectl`, also what `use: debian` names) on a systemd-managed host, else the
//! distribution's: Debian-like hosts keep the name in `/etc/hostname` only (ansible-core's
//! `FileStrategy`: the current name is read from, and only written to, that file), RedHat-like in
//! `/etc/sysconfig/network`, Alpine in `/etc/hostname` plus `hostname -F`, SUSE in
//! `/etc/HOSTNAME`. One probe round trip reads everything; the result keys, facts and diff are
//! ansible-core's. The BSD, macOS and Solaris strategies are refused.

use super::plan::{failure_msg, Plan};
use super::probe::{probe_sections, section, sections};
use super::{Args, Module, ModuleCtx, ModuleError, ModuleResult, Param, Spec};
use crate::shell::quote;
use crate::value::Value;
use serde_json::json;

pub struct Hostname;

const SPEC: Spec = Spec::new(
    "hostname",
    &[
        Param::str("name").required(),
        Param::str("use").choices(&[
            "alpine", "debian", "freebsd", "generic", "macos", "macosx", "darwin", "openbsd",
            "openrc", "redhat", "sles", "solaris", "systemd",
        ]),
    ],
);

/// How the name is read and written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Strategy {
    Systemd,
    /// A file holding only the name (`/etc/hostname`, `/etc/HOSTNAME`); `alpine` also runs
    /// `hostname -F` on it.
    File {
        path: &'static str,
        alpine: bool,
    },
    /// `HOSTNAME=` in `/etc/sysconfig/network`.
    RedHat,
    /// `hostname="..."` in `/etc/conf.d/hostname`.
    OpenRc,
}

const NETWORK: &str = "/etc/sysconfig/network";
const CONF_D: &str = "/etc/conf.d/hostname";

/// The strategy for `use`, or else for a systemd-managed host or the distribution (`ID`/
/// `ID_LIKE` of os-release). `Err` holds the failure message. Pure.
pub fn strategy(use_: Option<&str>, systemd: bool, os_ids: &[String]) -> Result<Strategy, String> {
    let file = |path, alpine| Strategy::File { path, alpine };
    match use_ {
        Some("systemd" | "debian") => return Ok(Strategy::Systemd),
        Some("alpine") => return Ok(file("/etc/hostname", true)),
        Some("redhat") => return Ok(Strategy::RedHat),
        Some("sles") => return Ok(file("/etc/HOSTNAME", false)),
        Some("openrc") => return Ok(Strategy::OpenRc),
        Some(other) => {
            return Err(format!(
                "hostname: use={other} is not supported by knockplay (only systemd, debian, \
                 alpine, redhat, sles and openrc)"
            ))
        }
        None => {}
    }
    if systemd {
        return Ok(Strategy::Systemd);
    }
    for id in os_ids {
        match id.as_str() {
            "debian" | "ubuntu" | "linuxmint" | "raspbian" | "kali" | "devuan" | "pop" => {
                return Ok(file("/etc/hostname", false))
            }
            "rhel" | "centos" | "fedora" | "rocky" | "almalinux" | "ol" | "amzn" => {
                return Ok(Strategy::RedHat)
            }
            "alpine" => return Ok(file("/etc/hostname", true)),
            "gentoo" => return Ok(Strategy::OpenRc),
            "sles" | "opensuse" | "suse" | "opensuse-leap" => {
                return Ok(file("/etc/HOSTNAME", false))
            }
            _ => {}
        }
    }
    Err(format!(
        "hostname module cannot be used on platform Linux ({})",
        os_ids.first().map_or("unknown", String::as_str)
    ))
}

/// The permanent name a strategy's file holds (None: the file is missing or, for RedHat, has no
/// `HOSTNAME` line). Pure.
pub fn permanent_from_file(s: Strategy, content: Option<&str>) -> Option<String> {
    let content = content?;
    match s {
        Strategy::File { .. } => Some(content.trim().to_string()),
        Strategy::RedHat => content
            .lines()
            .map(str::trim)
            .find(|l| l.starts_with("HOSTNAME"))
            .map(|l| l.split_once('=').map_or("", |(_, v)| v).trim().to_string()),
        Strategy::OpenRc => Some(
            content
                .lines()
                .map(str::trim)
                .find_map(|l| l.strip_prefix("hostname="))
                .map(|v| v.trim_matches('"').to_string())
                .unwrap_or_default(),
        ),
        Strategy::Systemd => None,
    }
}

/// The new content of a strategy's file. Pure.
pub fn new_file(s: Strategy, content: Option<&str>, name: &str) -> String {
    match s {
        Strategy::RedHat => {
            let mut found = false;
            let mut out = String::new();
            for line in content.unwrap_or("").split_inclusive('\n') {
                if line.trim().starts_with("HOSTNAME") {
                    out.push_str(&format!("HOSTNAME={name}\n"));
                    found = true;
                } else {
                    out.push_str(line);
                }
            }
            if !found {
                out.push_str(&format!("HOSTNAME={name}\n"));
            }
            out
        }
        Strategy::OpenRc => {
            let mut lines: Vec<String> = content
                .unwrap_or("")
                .lines()
                .map(|l| l.trim().to_string())
                .collect();
            if let Some(l) = lines.iter_mut().find(|l| l.starts_with("hostname=")) {
                *l = format!("hostname=\"{name}\"");
            }
            format!("{}\n", lines.join("\n"))
        }
        _ => format!("{name}\n"),
    }
}

fn probe_script() -> String {
    let file = |name: &str, path: &str| {
        format!(
            "{}; if [ -f {p} ]; then echo yes; base64 -w0 < {p}; fi",
            section(name),
            p = quote(path)
        )
    };
    format!(
        "{}; if command -v systemctl >/dev/null && {{ [ -e /run/systemd/system/ ] || [ -e /dev/.run/systemd/ ] || [ -e /dev/.systemd/ ]; }}; then echo yes; fi; \
         {}; . /etc/os-release 2>/dev/null; echo $ID $ID_LIKE; \
         {}; hostname 2>/dev/null; {}; hostname -f 2>/dev/null || hostname; \
         {}; {}; {}; {}; {}",
        section("systemd"),
        section("os"),
        section("current"),
        section("fqdn"),
        file("etc_hostname", "/etc/hostname"),
        file("etc_HOSTNAME", "/etc/HOSTNAME"),
        file("network", NETWORK),
        file("confd", CONF_D),
        section("end"),
    )
}

/// A file section of the probe: None when the file is missing.
fn file_of(s: &indexmap::IndexMap<String, String>, name: &str) -> Option<String> {
    use base64::Engine;
    let body = s.get(name)?.strip_prefix("yes\n")?;
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(body.trim())
        .ok()?;
    Some(String::from_utf8_lossy(&bytes).into_owned())
}

impl Module for Hostname {
    fn spec(&self) -> &'static Spec {
        &SPEC
    }
    fn run(&self, args: &Args<'_>, ctx: &mut ModuleCtx<'_>) -> Result<ModuleResult, ModuleError> {
        let name = args.req_str("name")?;
        let use_ = args.choice("use")?;
        let out = match probe_sections(ctx, &probe_script())? {
            Ok(o) => o,
            Err(o) => return Ok(ModuleResult::failed(failure_msg(&o)).with_output(&o)),
        };
        let text = out.stdout_str();
        let s = sections(&text);
        let get = |k: &str| s.get(k).map_or("", |v| v.trim());
        let ids: Vec<String> = get("os").split_whitespace().map(str::to_string).collect();
        let strat = match strategy(use_.as_deref(), get("systemd") == "yes", &ids) {
            Ok(st) => st,
            Err(msg) => return Ok(ModuleResult::failed(msg)),
        };
        if strat == Strategy::Systemd {
            return systemd(ctx, &name);
        }
        let (path, key) = match strat {
            Strategy::File { path, .. } if path == "/etc/HOSTNAME" => (path, "etc_HOSTNAME"),
            Strategy::File { path, .. } => (path, "etc_hostname"),
            Strategy::RedHat => (NETWORK, "network"),
            _ => (CONF_D, "confd"),
        };
        let content = file_of(&s, key);
        let permanent = match permanent_from_file(strat, content.as_deref()) {
            Some(p) => p,
            None if strat == Strategy::RedHat => {
                return Ok(ModuleResult::failed(format!(
                    "failed to read hostname: Unable to locate HOSTNAME entry in {NETWORK}"
                )))
            }
            None => String::new(),
        };
        // ansible-core's file strategies read the current name from the file too.
        let changed = permanent != name;
        let mut script = Vec::new();
        if changed {
            // Written in place, as ansible-core does: a container's /etc/hostname is a bind
            // mount that a rename cannot replace. The file is root's alone (/etc).
            script.push(format!("cat > {}", quote(path)));
            if let Strategy::File { alpine: true, .. } = strat {
                script.push(format!("hostname -F {}", quote(path)));
            }
        }
        let before = permanent.clone();
        let mut r = apply(
            ctx,
            changed,
            script,
            new_file(strat, content.as_deref(), &name),
        )?;
        if r.failed {
            return Ok(r);
        }
        finish_result(&mut r, &name, &before, get("fqdn"));
        Ok(r)
    }
}

/// Run the change (unless in check mode), feeding the new file on stdin.
fn apply(
    ctx: &mut ModuleCtx<'_>,
    changed: bool,
    script: Vec<String>,
    file: String,
) -> Result<ModuleResult, ModuleError> {
    let mut r = ModuleResult::ok();
    r.changed = changed;
    if !changed || ctx.check_mode || script.is_empty() {
        return Ok(r);
    }
    let plan = Plan::script(script.join(" && "), Some(file.into_bytes()));
    let Plan::Change { script, stdin, .. } = plan else {
        return Ok(r);
    };
    let o = ctx.run_with_stdin(&script, stdin.as_deref())?;
    if !o.ok() {
        return Ok(failed_command(&o));
    }
    Ok(r)
}

/// ansible-core's message for a failed hostname command.
fn failed_command(o: &crate::ssh::ExecOutput) -> ModuleResult {
    ModuleResult::failed(format!(
        "Command failed rc={}, out={}, err={}",
        o.rc,
        o.stdout_str(),
        o.stderr_str()
    ))
}

/// The systemd strategy: `hostnamectl` for the static (permanent) then the transient name.
fn systemd(ctx: &mut ModuleCtx<'_>, name: &str) -> Result<ModuleResult, ModuleError> {
    let get = |ctx: &mut ModuleCtx<'_>,
               which: &str|
     -> Result<Result<String, ModuleResult>, ModuleError> {
        let o = ctx.run(&format!("hostnamectl --{which} status"))?;
        Ok(if o.ok() {
            Ok(o.stdout_str().trim().to_string())
        } else {
            Err(failed_command(&o))
        })
    };
    let current = match get(ctx, "transient")? {
        Ok(c) => c,
        Err(r) => return Ok(r),
    };
    let permanent = match get(ctx, "static")? {
        Ok(c) => c,
        Err(r) => return Ok(r),
    };
    let mut cmds = Vec::new();
    if permanent != name {
        cmds.push(format!(
            "hostnamectl --pretty --static set-hostname {}",
            quote(name)
        ));
    }
    if current != name {
        cmds.push(format!(
            "hostnamectl --transient set-hostname {}",
            quote(name)
        ));
    }
    if !cmds.is_empty() && name.chars().count() > 64 {
        return Ok(ModuleResult::failed(
            "name cannot be longer than 64 characters on systemd servers, try a shorter name",
        ));
    }
    let mut r = ModuleResult::ok();
    r.changed = !cmds.is_empty();
    if r.changed && !ctx.check_mode {
        let o = ctx.run(&cmds.join(" && "))?;
        if !o.ok() {
            return Ok(failed_command(&o));
        }
    }
    let before = if name != current { current } else { permanent };
    let fqdn = ctx.run("hostname -f 2>/dev/null || hostname")?.stdout_str();
    finish_result(&mut r, name, &before, fqdn.trim());
    Ok(r)
}

/// ansible-core's result keys: `name`, the host facts, and the diff when changed.
fn finish_result(r: &mut ModuleResult, name: &str, before: &str, fqdn: &str) {
    let domain = fqdn.split_once('.').map_or("", |(_, d)| d);
    r.data.insert("name".into(), Value::from(name));
    r.data.insert(
        "ansible_facts".into(),
        json!({
            "ansible_hostname": name.split('.').next().unwrap_or(""),
            "ansible_nodename": name,
            "ansible_fqdn": fqdn,
            "ansible_domain": domain,
        }),
    );
    if r.changed {
        r.diff.push(super::FileDiff {
            path: "hostname".into(),
            before: format!("hostname = {before}\n"),
            after: format!("hostname = {name}\n"),
        });
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::*;
    use super::*;

    #[test]
    fn strategies_follow_ansible_core() {
        let ids = |s: &str| s.split_whitespace().map(String::from).collect::<Vec<_>>();
        assert_eq!(strategy(None, true, &ids("debian")), Ok(Strategy::Systemd));
        assert_eq!(
            strategy(None, false, &ids("ubuntu debian")),
            Ok(Strategy::File {
                path: "/etc/hostname",
                alpine: false
            })
        );
        assert_eq!(strategy(Some("debian"), false, &[]), Ok(Strategy::Systemd));
        assert_eq!(
            strategy(None, false, &ids("rocky rhel centos fedora")),
            Ok(Strategy::RedHat)
        );
        assert!(strategy(Some("freebsd"), false, &[])
            .unwrap_err()
            .contains("not supported by knockplay"));
        assert_eq!(
            strategy(None, false, &ids("plan9")).unwrap_err(),
            "hostname module cannot be used on platform Linux (plan9)"
        );
    }

    #[test]
    fn files_are_read_and_written_like_ansible_core() {
        let f = Strategy::File {
            path: "/etc/hostname",
            alpine: false,
        };
        assert_eq!(permanent_from_file(f, Some(" web1 \n")).unwrap(), "web1");
        assert_eq!(permanent_from_file(f, None), None);
        assert_eq!(new_file(f, Some("old\n"), "new"), "new\n");
        let net = "NETWORKING=yes\n  HOSTNAME = old\n";
        assert_eq!(
            permanent_from_file(Strategy::RedHat, Some(net)).unwrap(),
            "old"
        );
        assert_eq!(
            new_file(Strategy::RedHat, Some(net), "new"),
            "NETWORKING=yes\nHOSTNAME=new\n"
        );
        assert_eq!(
            new_file(Strategy::RedHat, Some("A=1"), "n"),
            "A=1HOSTNAME=n\n"
        );
        assert_eq!(
            new_file(Strategy::OpenRc, Some("# x\nhostname=\"a\"\n"), "b"),
            "# x\nhostname=\"b\"\n"
        );
    }

    #[test]
    fn a_debian_container_gets_etc_hostname_only() {
        use base64::Engine;
        let b64 = base64::engine::general_purpose::STANDARD.encode("old\n");
        let probe = format!(
            "\n@@KP:systemd\n\n@@KP:os\ndebian\n\n@@KP:current\nold\n\n@@KP:fqdn\nold.lan\n\n@@KP:etc_hostname\nyes\n{b64}\n@@KP:etc_HOSTNAME\n\n@@KP:network\n\n@@KP:confd\n\n@@KP:end\n"
        );
        for check in [true, false] {
            let mut r = FakeRemote::scripted(&[(0, &probe), (0, "")]);
            let res = Hostname
                .execute(
                    &args(serde_json::json!({"name": "web1.example"})),
                    &mut ctx(&mut r, check, false, vec![]),
                )
                .unwrap();
            assert!(res.changed && !res.failed, "{res:?}");
            assert_eq!(res.data["name"], "web1.example");
            assert_eq!(res.data["ansible_facts"]["ansible_hostname"], "web1");
            assert_eq!(res.diff[0].before, "hostname = old\n");
            assert_eq!(r.seen.len(), if check { 1 } else { 2 });
            if !check {
                assert_eq!(r.seen[1].1.as_deref(), Some(&b"web1.example\n"[..]));
            }
        }
    }
}
