//! `apt`: Debian packages (present/absent/latest, version pins, update_cache, cache_valid_time,
//! upgrade, autoremove), waiting for the dpkg/apt locks instead of failing.
//!
//! One probe round trip reads dpkg's status (and `apt-cache policy` for `latest`); when the cache
//! must be updated, `apt-get update` runs inside that same round trip, before the status is read.
//! A pure planner decides; a second round trip runs apt-get only when something must change.
//! `update_cache` alone reports changed only when the cache stamp moved, as Ansible does.

use std::collections::HashMap;

use super::plan::{failed_output, finish_command, Outcome, Plan, Report};
use super::probe::{probe_sections, section, sections};
use super::{Args, Module, ModuleCtx, ModuleError, ModuleResult, Param, Spec};
use crate::shell::quote;
use crate::value::{Value, Vars};

pub struct Apt;

/// The `state` values knockplay knows (`installed`/`removed` are Ansible's old spellings); the
/// `package` module offers the same.
pub const STATES: &[&str] = &[
    "present",
    "installed",
    "absent",
    "removed",
    "latest",
    "build-dep",
    "fixed",
];

const SPEC: Spec = Spec::new(
    "apt",
    &[
        Param::list("name").aliases(&["pkg", "package"]).word(),
        Param::str("state").choices(STATES).default("present"),
        Param::bool("update_cache")
            .default("false")
            .aliases(&["update-cache"]),
        Param::int("cache_valid_time").default("0"),
        Param::bool("purge").default("false"),
        Param::bool("install_recommends").aliases(&["install-recommends"]),
        Param::bool("autoremove").default("false"),
        // Ansible's choices plus the boolean spellings YAML turns `upgrade: yes` into.
        Param::str("upgrade"),
        Param::str("default_release").aliases(&["default-release"]),
        Param::bool("allow_downgrade")
            .default("false")
            .aliases(&["allow-downgrade", "allow_downgrades"]),
        Param::bool("only_upgrade").default("false"),
        // Longer than Ansible's 60: a fresh cloud host's unattended-upgrades often holds the lock.
        Param::int("lock_timeout").default("300"),
        Param::list("dpkg_options").default("force-confdef,force-confold"),
        // knockplay always runs apt-get, once, and passes no override flags.
        Param::bool("force_apt_get").only("true"),
        Param::int("update_cache_retries").only("1"),
        Param::int("update_cache_retry_max_delay")
            .refused("apt-get update is not retried (update_cache_retries is 1)"),
        Param::bool("force").only("false"),
        Param::bool("allow_unauthenticated").only("false"),
        Param::bool("allow_change_held_packages").only("false"),
        Param::bool("fail_on_autoremove").only("false"),
        Param::path("deb").refused("installing a .deb file is not implemented; use a package name"),
        Param::bool("autoclean").refused("the package cache is not cleaned"),
        Param::bool("clean").refused("the package cache is not cleaned"),
        Param::int("policy_rc_d").refused("policy-rc.d is not managed"),
    ],
);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    Present,
    Absent,
    Latest,
}

impl State {
    fn from_choice(s: &str) -> Result<Self, ModuleError> {
        match s {
            "absent" | "removed" => Ok(State::Absent),
            "latest" => Ok(State::Latest),
            "build-dep" | "fixed" => Err(ModuleError::Args(
                "state build-dep/fixed is not supported by knockplay".into(),
            )),
            _ => Ok(State::Present),
        }
    }
}

/// One requested package: `name` or `name=version` (a trailing `*` in the version is a prefix match).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PkgSpec {
    pub name: String,
    pub version: Option<String>,
}

impl PkgSpec {
    fn parse(s: &str) -> Result<Self, ModuleError> {
        match s.split_once('=') {
            None => Ok(Self {
                name: s.to_string(),
                version: None,
            }),
            Some((n, v)) if !n.is_empty() && !v.is_empty() && !v.contains('=') => Ok(Self {
                name: n.to_string(),
                version: Some(v.to_string()),
            }),
            _ => Err(ModuleError::Args(format!("invalid package spec: {s}"))),
        }
    }
    fn spec(&self) -> String {
        match &self.version {
            Some(v) => format!("{}={}", self.name, v.trim_end_matches('*')),
            None => self.name.clone(),
        }
    }
    /// Name as dpkg-query reports it (`${Package}` drops the `:arch` suffix).
    fn bare(&self) -> &str {
        self.name.split(':').next().unwrap_or(&self.name)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AptArgs {
    pub packages: Vec<PkgSpec>,
    pub state: State,
    pub update_cache: bool,
    pub cache_valid_time: u64,
    pub purge: bool,
    pub install_recommends: Option<bool>,
    pub autoremove: bool,
    /// apt-get subcommand for `upgrade:` (`upgrade` or `dist-upgrade`).
    pub upgrade: Option<&'static str>,
    pub default_release: Option<String>,
    pub allow_downgrade: bool,
    pub only_upgrade: bool,
    pub lock_timeout: u64,
    pub dpkg_options: Vec<String>,
}

impl AptArgs {
    pub fn from_args(args: &Args<'_>) -> Result<Self, ModuleError> {
        let packages = args
            .list("name")?
            .unwrap_or_default()
            .iter()
            // Ansible strips each name; a list item is one package (no comma splitting).
            .map(|s| PkgSpec::parse(s.trim()))
            .collect::<Result<Vec<_>, _>>()?;
        let state = State::from_choice(&args.choice("state")?.unwrap_or_default())?;
        if state == State::Latest && packages.iter().any(|p| p.version.is_some()) {
            return Err(ModuleError::Args(
                "a version pin (name=version) cannot be combined with state=latest".into(),
            ));
        }
        let cache_valid_time = args.uint("cache_valid_time")?.unwrap_or(0);
        Ok(Self {
            packages,
            state,
            // Like Ansible, cache_valid_time implies update_cache.
            update_cache: args.bool("update_cache")? || cache_valid_time > 0,
            cache_valid_time,
            purge: args.bool("purge")?,
            install_recommends: args.opt_bool("install_recommends")?,
            autoremove: args.bool("autoremove")?,
            upgrade: upgrade_command(args.str("upgrade")?)?,
            default_release: args.str("default_release")?,
            allow_downgrade: args.bool("allow_downgrade")?,
            only_upgrade: args.bool("only_upgrade")?,
            lock_timeout: args.uint("lock_timeout")?.unwrap_or_default(),
            dpkg_options: args.list("dpkg_options")?.unwrap_or_default(),
        })
    }
}

/// The apt-get subcommand for `upgrade:` (None for `no`).
fn upgrade_command(upgrade: Option<String>) -> Result<Option<&'static str>, ModuleError> {
    let Some(s) = upgrade.map(|s| s.to_lowercase()) else {
        return Ok(None);
    };
    match s.as_str() {
        "no" | "false" | "off" | "0" => Ok(None),
        "yes" | "true" | "safe" | "on" | "1" => Ok(Some("upgrade")),
        "dist" | "full" => Ok(Some("dist-upgrade")),
        other => Err(ModuleError::Args(format!(
            "parameter 'upgrade' must be one of: dist, full, no, safe, yes; got '{other}'"
        ))),
    }
}

/// dpkg's view of one package.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PkgStatus {
    /// Version when fully installed.
    pub installed: Option<String>,
    /// Some trace left (config files, half-installed): matters for absent/purge.
    pub present_any: bool,
}

/// What the probe round trip found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Probe {
    pub status: HashMap<String, PkgStatus>,
    /// `apt-cache policy` candidate per package (`None` = no candidate).
    pub candidate: HashMap<String, Option<String>>,
    /// Cache stamp mtime before and after the update (equal when no update ran), and "now".
    pub stamp_before: i64,
    pub stamp_after: i64,
    pub now: i64,
    /// `apt-get update` ran and failed: (rc, output).
    pub update_failed: Option<(i32, String)>,
    /// `apt-get -s` of upgrade/autoremove reported something to do.
    pub sim_changes: bool,
}

/// What apt-get must do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    Nothing,
    /// apt-get install of these specs (`name` or `name=version`).
    Install(Vec<String>),
    Remove(Vec<String>),
    /// apt-get upgrade/dist-upgrade/autoremove as given.
    Run(&'static str),
}

/// Does the cache need `apt-get update` (Ansible: unless stamp + valid_time >= now)?
pub fn cache_stale(args: &AptArgs, stamp: i64, now: i64) -> bool {
    args.update_cache && stamp.saturating_add(args.cache_valid_time as i64) < now
}

/// Pure: from arguments and probe, the commands' intent.
pub fn plan(args: &AptArgs, probe: &Probe) -> Action {
    let status = |p: &PkgSpec| probe.status.get(p.bare()).cloned().unwrap_or_default();
    match args.state {
        State::Absent => {
            let names: Vec<String> = args
                .packages
                .iter()
                .filter(|p| {
                    let s = status(p);
                    s.installed.is_some() || (args.purge && s.present_any)
                })
                .map(|p| p.name.clone())
                .collect();
            if !names.is_empty() {
                return Action::Remove(names);
            }
        }
        State::Present | State::Latest => {
            let specs: Vec<String> = args
                .packages
                .iter()
                .filter(|p| match (status(p).installed, &p.version) {
                    (None, _) => !args.only_upgrade,
                    (Some(have), Some(want)) => !version_matches(&have, want),
                    (Some(have), None) => {
                        args.state == State::Latest
                            && matches!(probe.candidate.get(p.bare()), Some(Some(c)) if *c != have)
                    }
                })
                .map(PkgSpec::spec)
                .collect();
            if !specs.is_empty() {
                return Action::Install(specs);
            }
        }
    }
    if let Some(cmd) = args.upgrade {
        if probe.sim_changes {
            return Action::Run(cmd);
        }
    } else if args.packages.is_empty() && args.autoremove && probe.sim_changes {
        return Action::Run("autoremove");
    }
    Action::Nothing
}

fn version_matches(have: &str, want: &str) -> bool {
    match want.strip_suffix('*') {
        Some(prefix) => have.starts_with(prefix),
        None => have == want,
    }
}

/// Shell prelude: C locale, non-interactive frontend, and `kp_apt` which retries apt-get while
/// another process holds the dpkg/apt lock (newer apt also waits by itself via Lock::Timeout).
fn prelude(lock_timeout: u64) -> String {
    format!(
        r#"LC_ALL=C LANG=C DEBIAN_FRONTEND=noninteractive; export LC_ALL LANG DEBIAN_FRONTEND
kp_stamp() {{ stat -c %Y /var/lib/apt/periodic/update-success-stamp 2>/dev/null || stat -c %Y /var/lib/apt/lists 2>/dev/null || echo 0; }}
kp_apt() {{
  kp_end=$(( $(date +%s) + {lock_timeout} )); kp_e=$(mktemp) || return 1
  while :; do
    "$@" -o DPkg::Lock::Timeout={lock_timeout} 2>"$kp_e"; kp_rc=$?
    if [ $kp_rc -ne 0 ] && [ "$(date +%s)" -lt "$kp_end" ]; then
      case "$(cat "$kp_e")" in *"Could not get lock"*|*"Unable to lock"*|*"Unable to acquire the dpkg frontend lock"*|*"is another process using it"*) sleep 2; continue;; esac
    fi
    cat "$kp_e" >&2; rm -f "$kp_e"; return $kp_rc
  done
}}
"#
    )
}

fn common_opts(args: &AptArgs) -> Vec<String> {
    let mut v = vec!["-y".to_string(), "-q".to_string()];
    for o in &args.dpkg_options {
        v.push("-o".into());
        v.push(format!("Dpkg::Options::=--{}", o.trim_start_matches('-')));
    }
    if let Some(r) = &args.default_release {
        v.push("-t".into());
        v.push(r.clone());
    }
    v
}

/// The probe script. `check_mode` skips `apt-get update` (nothing is written in check mode).
pub fn probe_script(args: &AptArgs, check_mode: bool) -> String {
    let mut s = prelude(args.lock_timeout);
    s.push_str(
        "command -v apt-get >/dev/null 2>&1 && command -v dpkg-query >/dev/null 2>&1 || \
         { echo 'apt: apt-get/dpkg-query not found on the target (the apt module needs a Debian-family host)' >&2; exit 127; }\n",
    );
    s.push_str(&format!(
        "{}; kp_b=$(kp_stamp); echo \"$kp_b $(date +%s)\"\n",
        section("stamp")
    ));
    if args.update_cache && !check_mode {
        s.push_str(&format!(
            "if [ $(( kp_b + {valid} )) -lt \"$(date +%s)\" ]; then {upd}; kp_o=$(kp_apt apt-get -q update 2>&1); kp_r=$?; \
             if [ $kp_r -ne 0 ]; then {fail}; echo \"$kp_r\"; printf '%s\\n' \"$kp_o\"; fi; fi\n{after}; kp_stamp\n",
            valid = args.cache_valid_time,
            upd = section("updated"),
            fail = section("update_failed"),
            after = section("stamp_after"),
        ));
    }
    let names: Vec<&str> = args.packages.iter().map(|p| p.name.as_str()).collect();
    if !names.is_empty() {
        let q = crate::shell::join(&names);
        s.push_str(&format!(
            "{}; dpkg-query -W -f='${{Package}} ${{Status}} ${{Version}}\\n' {q} 2>/dev/null\n",
            section("status")
        ));
        if args.state == State::Latest {
            s.push_str(&format!(
                "{}; apt-cache policy {q} 2>/dev/null\n",
                section("policy")
            ));
        }
    }
    let sim = match args.upgrade {
        Some(cmd) => Some(cmd),
        None if names.is_empty() && args.autoremove => Some("autoremove"),
        None => None,
    };
    if let Some(cmd) = sim {
        s.push_str(&format!(
            "{}; apt-get -s {} {cmd} 2>&1\n",
            section("sim"),
            crate::shell::join(common_opts(args))
        ));
    }
    s.push_str(&format!("{}\n", section("end")));
    s
}

/// Parse the probe output.
pub fn parse_probe(out: &str) -> Probe {
    let s = sections(out);
    let mut p = Probe::default();
    let nums: Vec<i64> = s
        .get("stamp")
        .map(|t| {
            t.split_whitespace()
                .filter_map(|n| n.parse().ok())
                .collect()
        })
        .unwrap_or_default();
    p.stamp_before = nums.first().copied().unwrap_or(0);
    p.now = nums.get(1).copied().unwrap_or(0);
    p.stamp_after = s
        .get("stamp_after")
        .and_then(|t| t.trim().parse().ok())
        .unwrap_or(p.stamp_before);
    if let Some(f) = s.get("update_failed") {
        let (rc, text) = f.split_once('\n').unwrap_or((f, ""));
        p.update_failed = Some((rc.trim().parse().unwrap_or(1), text.trim_end().to_string()));
    }
    for line in s.get("status").map(String::as_str).unwrap_or("").lines() {
        // "name want ok status version" (version empty when not installed).
        let f: Vec<&str> = line.split_whitespace().collect();
        if f.len() < 4 {
            continue;
        }
        let entry = p.status.entry(f[0].to_string()).or_default();
        if f[3] == "installed" {
            entry.installed = f.get(4).map(|v| v.to_string());
            entry.present_any = true;
        } else if f[3] != "not-installed" {
            entry.present_any = true;
        }
    }
    let mut current: Option<String> = None;
    for line in s.get("policy").map(String::as_str).unwrap_or("").lines() {
        if !line.starts_with(' ') && line.ends_with(':') {
            let name = line.trim_end_matches(':');
            current = Some(name.split(':').next().unwrap_or(name).to_string());
        } else if let (Some(name), Some(c)) = (&current, line.trim().strip_prefix("Candidate:")) {
            let c = c.trim();
            p.candidate
                .insert(name.clone(), (c != "(none)").then(|| c.to_string()));
        }
    }
    if let Some(sim) = s.get("sim") {
        p.sim_changes = sim_has_changes(sim);
    }
    p
}

/// `apt-get -s` summary: "N upgraded, N newly installed, N to remove and N not upgraded."
fn sim_has_changes(text: &str) -> bool {
    text.lines()
        .find(|l| l.contains(" upgraded, ") && l.contains(" newly installed"))
        .map(|l| {
            l.split([',', ' '])
                .filter_map(|w| w.parse::<u64>().ok())
                .take(3)
                .any(|n| n > 0)
        })
        .unwrap_or(false)
}

/// The apply command for a plan.
pub fn apply_script(args: &AptArgs, plan: &Action) -> Option<String> {
    let mut cmd = vec!["apt-get".to_string()];
    cmd.extend(common_opts(args));
    match plan {
        Action::Nothing => return None,
        Action::Install(specs) => {
            match args.install_recommends {
                Some(true) => cmd.extend(["-o".into(), "APT::Install-Recommends=yes".into()]),
                Some(false) => cmd.push("--no-install-recommends".into()),
                None => {}
            }
            if args.allow_downgrade {
                cmd.push("--allow-downgrades".into());
            }
            if args.autoremove {
                cmd.push("--auto-remove".into());
            }
            cmd.push("install".into());
            cmd.extend(specs.iter().cloned());
        }
        Action::Remove(names) => {
            if args.purge {
                cmd.push("--purge".into());
            }
            if args.autoremove {
                cmd.push("--auto-remove".into());
            }
            cmd.push("remove".into());
            cmd.extend(names.iter().cloned());
        }
        Action::Run(sub) => {
            if args.purge && *sub == "autoremove" {
                cmd.push("--purge".into());
            }
            cmd.push(sub.to_string());
        }
    }
    let words: Vec<String> = cmd.iter().map(|w| quote(w)).collect();
    Some(format!(
        "{}kp_apt {}\n",
        prelude(args.lock_timeout),
        words.join(" ")
    ))
}

impl Action {
    /// What a failure of the apply step names.
    fn what(&self) -> &'static str {
        match self {
            Action::Remove(_) => "apt-get remove",
            Action::Run(sub) => sub,
            Action::Nothing | Action::Install(_) => "apt-get install",
        }
    }
}

/// Did the cache get updated: in check mode, would it be (stale); otherwise, did its stamp move.
pub fn cache_updated(args: &AptArgs, probe: &Probe, check_mode: bool) -> bool {
    if check_mode {
        cache_stale(args, probe.stamp_before, probe.now)
    } else {
        probe.stamp_after != probe.stamp_before
    }
}

/// Pure: the outcome to apply. `update_cache` alone reports changed when the cache was updated.
pub fn outcome(args: &AptArgs, action: &Action, cache_updated: bool) -> Outcome {
    let script = apply_script(args, action);
    let only_cache = args.packages.is_empty() && args.upgrade.is_none() && !args.autoremove;
    let mut outcome = Outcome::new(match script {
        Some(script) => Plan::script(script, None),
        None => Plan::NoChange,
    });
    outcome.result.changed = !outcome.plan.is_change() && only_cache && cache_updated;
    outcome
}

impl Module for Apt {
    fn spec(&self) -> &'static Spec {
        &SPEC
    }
    fn run(&self, args: &Args<'_>, ctx: &mut ModuleCtx<'_>) -> Result<ModuleResult, ModuleError> {
        run_parsed(&AptArgs::from_args(args)?, ctx)
    }
}

/// Run as the `package` module's backend: `names` in `state`, with the other options `package`
/// passed on (`options`; apt refuses those it does not have), the rest apt's defaults.
pub fn run_packages(
    names: Vec<String>,
    state: String,
    options: Vars,
    ctx: &mut ModuleCtx<'_>,
) -> Result<ModuleResult, ModuleError> {
    let mut vars = options;
    vars.insert("name".into(), Value::from(names));
    vars.insert("state".into(), Value::from(state));
    run_parsed(&AptArgs::from_args(&Args::new(&SPEC, &vars)?)?, ctx)
}

/// Probe once, plan, apply unless in check mode.
fn run_parsed(a: &AptArgs, ctx: &mut ModuleCtx<'_>) -> Result<ModuleResult, ModuleError> {
    let text = match probe_sections(ctx, &probe_script(a, ctx.check_mode))? {
        Ok(out) => out.stdout_str(),
        Err(out) => return Ok(failed_output("apt: reading package state", &out)),
    };
    let probe = parse_probe(&text);
    if let Some((rc, output)) = &probe.update_failed {
        let mut r = ModuleResult::failed(format!("Failed to update apt cache: {}", output.trim()));
        r.rc = Some(*rc);
        r.stdout = Some(output.clone());
        return Ok(r);
    }
    let cache_updated = cache_updated(a, &probe, ctx.check_mode);
    let action = plan(a, &probe);
    let mut result = finish_command(
        ctx,
        outcome(a, &action, cache_updated),
        &Report::command(action.what()),
    )?;
    if let (false, Action::Install(specs) | Action::Remove(specs)) = (result.failed, &action) {
        result = result.set("packages", specs.clone());
    }
    Ok(result
        .set("cache_updated", cache_updated)
        .set("cache_update_time", probe.stamp_after))
}

#[cfg(test)]
mod tests {
    use super::super::testing::{args, ctx, out, parse_with, sh, FakeRemote};
    use super::*;
    use serde_json::json;

    fn parse(v: serde_json::Value) -> Result<AptArgs, ModuleError> {
        parse_with(&SPEC, v, AptArgs::from_args)
    }

    fn parsed(v: serde_json::Value) -> AptArgs {
        parse(v).unwrap()
    }

    fn probe(status: &[(&str, Option<&str>)], cand: &[(&str, Option<&str>)]) -> Probe {
        Probe {
            status: status
                .iter()
                .map(|(n, v)| {
                    (
                        n.to_string(),
                        PkgStatus {
                            installed: v.map(str::to_string),
                            present_any: v.is_some(),
                        },
                    )
                })
                .collect(),
            candidate: cand
                .iter()
                .map(|(n, c)| (n.to_string(), c.map(str::to_string)))
                .collect(),
            ..Probe::default()
        }
    }

    #[test]
    fn planner_table() {
        let cases: Vec<(serde_json::Value, Probe, Action)> = vec![
            // present: missing installs, installed is a no-op
            (
                json!({"name": ["a", "b"]}),
                probe(&[("a", Some("1.0"))], &[]),
                Action::Install(vec!["b".into()]),
            ),
            (
                json!({"pkg": "a,b", "state": "installed"}),
                probe(&[("a", Some("1")), ("b", Some("2"))], &[]),
                Action::Nothing,
            ),
            // version pins
            (
                json!({"name": "a=1.0"}),
                probe(&[("a", Some("1.0"))], &[]),
                Action::Nothing,
            ),
            (
                json!({"name": "a=2.0"}),
                probe(&[("a", Some("1.0"))], &[]),
                Action::Install(vec!["a=2.0".into()]),
            ),
            (
                json!({"name": "a=1.*"}),
                probe(&[("a", Some("1.4-2"))], &[]),
                Action::Nothing,
            ),
            // latest: candidate newer → install; same → nothing; no candidate → nothing
            (
                json!({"name": "apache2", "state": "latest"}),
                probe(&[("apache2", Some("1.0"))], &[("apache2", Some("1.1"))]),
                Action::Install(vec!["apache2".into()]),
            ),
            (
                json!({"name": "apache2", "state": "latest"}),
                probe(&[("apache2", Some("1.1"))], &[("apache2", Some("1.1"))]),
                Action::Nothing,
            ),
            (
                json!({"name": "x", "state": "latest"}),
                probe(&[("x", Some("1"))], &[("x", None)]),
                Action::Nothing,
            ),
            (
                json!({"name": "apache2", "state": "latest"}),
                probe(&[], &[("apache2", Some("1.1"))]),
                Action::Install(vec!["apache2".into()]),
            ),
            // absent / purge of leftover config files
            (
                json!({"name": "a", "state": "absent"}),
                probe(&[("a", Some("1"))], &[]),
                Action::Remove(vec!["a".into()]),
            ),
            (
                json!({"name": "a", "state": "removed"}),
                probe(&[], &[]),
                Action::Nothing,
            ),
            (
                json!({"name": "a", "state": "absent", "purge": true}),
                Probe {
                    status: [(
                        "a".to_string(),
                        PkgStatus {
                            installed: None,
                            present_any: true,
                        },
                    )]
                    .into(),
                    ..Probe::default()
                },
                Action::Remove(vec!["a".into()]),
            ),
            // only_upgrade skips missing packages
            (
                json!({"name": "a", "only_upgrade": "yes"}),
                probe(&[], &[]),
                Action::Nothing,
            ),
            // upgrade / autoremove follow the simulation
            (
                json!({"upgrade": "dist"}),
                Probe {
                    sim_changes: true,
                    ..Probe::default()
                },
                Action::Run("dist-upgrade"),
            ),
            (json!({"upgrade": "yes"}), Probe::default(), Action::Nothing),
            (
                json!({"autoremove": true}),
                Probe {
                    sim_changes: true,
                    ..Probe::default()
                },
                Action::Run("autoremove"),
            ),
        ];
        for (a, p, want) in cases {
            assert_eq!(plan(&parsed(a.clone()), &p), want, "{a}");
        }
    }

    #[test]
    fn argument_errors_name_the_problem() {
        for (a, needle) in [
            (json!({"name": "a", "state": "gone"}), "'state'"),
            (json!({"name": "a=1", "state": "latest"}), "state=latest"),
            (json!({"name": "a=1=2"}), "invalid package spec"),
            (json!({"name": "a", "purge": "perhaps"}), "'purge'"),
            (json!({"deb": "/tmp/x.deb"}), "'deb'"),
            (json!({"upgrade": "everything"}), "'upgrade'"),
            (
                json!({"update_cache": true, "cache_valid_time": "soon"}),
                "'cache_valid_time'",
            ),
            (
                json!({"name": "a", "state": "build-dep"}),
                "apt: state build-dep/fixed is not supported by knockplay",
            ),
            (
                json!({"name": "a", "force_apt_get": false}),
                "only force_apt_get=true",
            ),
            (
                json!({"name": "a", "update_cache_retries": 5}),
                "only update_cache_retries=1",
            ),
            (json!({"name": "a", "clean": true}), "'clean'"),
            (json!({"name": {"k": 1}}), "'name' must be a list"),
        ] {
            let e = parse(a.clone()).unwrap_err().to_string();
            assert!(e.contains(needle), "{a}: {e}");
        }
        // What knockplay does anyway may be said.
        assert!(parse(json!({"name": "a", "force_apt_get": true, "force": "no"})).is_ok());
    }

    #[test]
    fn package_lists_aliases_and_nulls() {
        let names = |v: serde_json::Value| -> Vec<String> {
            parsed(v).packages.iter().map(PkgSpec::spec).collect()
        };
        assert_eq!(names(json!({"name": "a, b,c"})), ["a", "b", "c"]);
        // A list item is one package, stripped, as in Ansible.
        assert_eq!(names(json!({"pkg": ["x", " y ", 3]})), ["x", "y", "3"]);
        let a = parsed(json!({"name": null, "pkg": "vim", "update_cache": "yes"}));
        assert_eq!(a.packages[0].name, "vim");
        assert!(a.update_cache && !a.purge);
        assert_eq!(a.lock_timeout, 300);
        assert_eq!(a.dpkg_options, ["force-confdef", "force-confold"]);
    }

    #[test]
    fn cache_staleness_follows_valid_time() {
        let a = parsed(json!({"update_cache": "yes", "cache_valid_time": 3600}));
        assert!(!cache_stale(&a, 1000, 4000));
        assert!(cache_stale(&a, 1000, 4601));
        let a = parsed(json!({"update_cache": "yes"}));
        assert!(cache_stale(&a, 1000, 1001));
        assert!(cache_stale(&parsed(json!({"cache_valid_time": 10})), 0, 11));
        assert!(!cache_stale(&parsed(json!({"name": "x"})), 0, 11));
    }

    #[test]
    fn parses_probe_output() {
        let out = "\n@@KP:stamp\n100 200\n@@KP:updated\n\n@@KP:stamp_after\n150\n\
@@KP:status\napache2 install ok installed 2.4.57-2\nold deinstall ok config-files 1.0\nnew unknown ok not-installed \n\
@@KP:policy\napache2:\n  Installed: 2.4.57-2\n  Candidate: 2.4.58-1\n  Version table:\n     2.4.58-1 500\nnew:\n  Installed: (none)\n  Candidate: (none)\n\
@@KP:end\n";
        let p = parse_probe(out);
        assert_eq!((p.stamp_before, p.now, p.stamp_after), (100, 200, 150));
        assert_eq!(p.status["apache2"].installed.as_deref(), Some("2.4.57-2"));
        assert_eq!(
            p.status["old"],
            PkgStatus {
                installed: None,
                present_any: true
            }
        );
        assert_eq!(p.status["new"], PkgStatus::default());
        assert_eq!(p.candidate["apache2"].as_deref(), Some("2.4.58-1"));
        assert_eq!(p.candidate["new"], None);
        assert!(!p.sim_changes);
        assert!(sim_has_changes(
            "Inst x\n1 upgraded, 0 newly installed, 0 to remove and 0 not upgraded.\n"
        ));
        assert!(!sim_has_changes(
            "0 upgraded, 0 newly installed, 0 to remove and 3 not upgraded.\n"
        ));
    }

    #[test]
    fn outcome_table() {
        let install = Action::Install(vec!["a".into()]);
        // (args, action, cache updated) -> (a script runs, changed without one)
        let cases = [
            (json!({"name": "a"}), install.clone(), false, (true, false)),
            (json!({"name": "a"}), Action::Nothing, true, (false, false)),
            (
                json!({"update_cache": true}),
                Action::Nothing,
                true,
                (false, true),
            ),
            (
                json!({"update_cache": true}),
                Action::Nothing,
                false,
                (false, false),
            ),
            (
                json!({"upgrade": "yes"}),
                Action::Nothing,
                true,
                (false, false),
            ),
            (
                json!({"autoremove": true}),
                Action::Nothing,
                true,
                (false, false),
            ),
        ];
        for (a, action, updated, want) in cases {
            let o = outcome(&parsed(a.clone()), &action, updated);
            assert_eq!(
                (o.plan.is_change(), o.result.changed),
                want,
                "{a} {action:?}"
            );
        }
        assert_eq!(install.what(), "apt-get install");
        assert_eq!(Action::Remove(vec![]).what(), "apt-get remove");
        assert_eq!(Action::Run("dist-upgrade").what(), "dist-upgrade");
    }

    #[test]
    fn apply_commands() {
        let a = parsed(json!({"name": "a", "install_recommends": "no", "autoremove": true}));
        let cmd = apply_script(&a, &Action::Install(vec!["a".into(), "b=1.0".into()])).unwrap();
        assert!(cmd.contains(
            "kp_apt apt-get -y -q -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold --no-install-recommends --auto-remove install a b=1.0"
        ), "{cmd}");
        assert!(cmd.contains("DEBIAN_FRONTEND=noninteractive"));
        let a = parsed(json!({"name": "a", "state": "absent", "purge": true}));
        let cmd = apply_script(&a, &Action::Remove(vec!["a".into()])).unwrap();
        assert!(cmd.contains("--purge remove a"), "{cmd}");
        assert_eq!(apply_script(&a, &Action::Nothing), None);
    }

    #[test]
    fn lock_wrapper_retries_until_the_lock_is_free() {
        // A fake apt-get that reports a held lock twice, then succeeds.
        let dir = tempfile::tempdir().unwrap();
        let n = dir.path().join("n");
        let script = format!(
            "{}apt_fake() {{ c=$(cat {n} 2>/dev/null || echo 0); echo $((c+1)) > {n}; \
             if [ $c -lt 2 ]; then echo 'E: Could not get lock /var/lib/dpkg/lock-frontend' >&2; return 100; fi; echo done; }}\n\
             sleep() {{ :; }}\nkp_apt apt_fake",
            prelude(30),
            n = n.display()
        );
        let out = sh(&script, None);
        assert!(out.ok(), "{}", out.stderr_str());
        assert_eq!(out.stdout_str(), "done\n");
        assert_eq!(std::fs::read_to_string(&n).unwrap().trim(), "3");
        // A different error is not retried.
        let script = format!(
            "{}f() {{ echo 'E: broken' >&2; return 100; }}\nkp_apt f",
            prelude(30)
        );
        let out = sh(&script, None);
        assert_eq!(out.rc, 100);
        assert!(out.stderr_str().contains("E: broken"));
    }

    #[test]
    fn run_flow_idempotent_latest_is_one_round_trip() {
        let probe_out = "\n@@KP:stamp\n100 200\n@@KP:updated\n\n@@KP:stamp_after\n100\n\
@@KP:status\napache2 install ok installed 1.1\n@@KP:policy\napache2:\n  Installed: 1.1\n  Candidate: 1.1\n@@KP:end\n";
        let mut r = FakeRemote::new(vec![out(0, probe_out)]);
        let a = args(json!({"update_cache": "yes", "pkg": "apache2", "state": "latest"}));
        let res = Apt
            .execute(&a, &mut ctx(&mut r, false, false, vec![]))
            .unwrap();
        assert!(!res.changed && !res.failed, "{res:?}");
        assert_eq!(res.data["cache_updated"], false);
        assert_eq!(r.seen.len(), 1);
        assert!(r.seen[0].0.contains("apt-get -q update"));
        assert!(r.seen[0].0.contains("apt-cache policy apache2"));
    }

    #[test]
    fn run_flow_installs_and_check_mode_does_not() {
        let probe_out = "\n@@KP:stamp\n100 200\n@@KP:status\n@@KP:end\n";
        let a = args(json!({"name": "knockplay-hello"}));
        let mut r = FakeRemote::new(vec![
            out(0, probe_out),
            out(0, "Setting up knockplay-hello\n"),
        ]);
        let res = Apt
            .execute(&a, &mut ctx(&mut r, false, false, vec![]))
            .unwrap();
        assert!(res.changed && !res.failed);
        assert!(r.seen[1].0.contains("install knockplay-hello"));
        let mut r = FakeRemote::new(vec![out(0, probe_out)]);
        let res = Apt
            .execute(&a, &mut ctx(&mut r, true, false, vec![]))
            .unwrap();
        assert!(res.changed);
        assert_eq!(r.seen.len(), 1, "check mode must not run apt-get install");
        // Check mode never updates the cache either.
        let mut r = FakeRemote::new(vec![out(0, probe_out)]);
        let a = args(json!({"update_cache": true}));
        let res = Apt
            .execute(&a, &mut ctx(&mut r, true, false, vec![]))
            .unwrap();
        assert!(res.changed, "a stale cache would be updated");
        assert!(!r.seen[0].0.contains("apt-get -q update"));
    }

    #[test]
    fn run_flow_failed_install_shows_output() {
        let probe_out = "\n@@KP:stamp\n100 200\n@@KP:status\n@@KP:end\n";
        let mut r = FakeRemote::new(vec![out(0, probe_out), out(100, "")]);
        let res = Apt
            .execute(
                &args(json!({"name": "nosuch"})),
                &mut ctx(&mut r, false, false, vec![]),
            )
            .unwrap();
        assert!(res.failed);
        assert_eq!(res.rc, Some(100));
    }

    #[test]
    fn probe_reads_this_machines_dpkg_in_check_mode() {
        if std::process::Command::new("dpkg-query")
            .arg("--version")
            .output()
            .is_err()
        {
            return; // not a Debian machine
        }
        let a = parsed(
            json!({"name": ["coreutils", "knockplay-no-such-pkg"], "state": "latest", "update_cache": true}),
        );
        let mut local = crate::modules::testing::LocalRemote::default();
        let out = ctx(&mut local, true, false, vec![])
            .run(&probe_script(&a, true))
            .unwrap();
        let p = parse_probe(&out.stdout_str());
        assert!(p.now > 1_600_000_000, "{}", out.stdout_str());
        assert!(p.status["coreutils"].installed.is_some());
        assert!(!p.status.contains_key("knockplay-no-such-pkg"));
        assert_eq!(
            plan(&a, &p),
            Action::Install(vec!["knockplay-no-such-pkg".into()]),
            "the missing package must be installed"
        );
    }

    #[test]
    fn update_cache_alone_changed_only_when_stamp_moved() {
        let a = args(json!({"update_cache": true}));
        let moved = "\n@@KP:stamp\n100 200\n@@KP:updated\n\n@@KP:stamp_after\n201\n@@KP:end\n";
        let same = "\n@@KP:stamp\n100 200\n@@KP:updated\n\n@@KP:stamp_after\n100\n@@KP:end\n";
        let mut r = FakeRemote::new(vec![out(0, moved), out(0, same)]);
        assert!(
            Apt.execute(&a, &mut ctx(&mut r, false, false, vec![]))
                .unwrap()
                .changed
        );
        assert!(
            !Apt.execute(&a, &mut ctx(&mut r, false, false, vec![]))
                .unwrap()
                .changed
        );
        let failed = "\n@@KP:stamp\n100 200\n@@KP:updated\n\n@@KP:update_failed\n100\nE: Failed to fetch\n@@KP:stamp_after\n100\n@@KP:end\n";
        let mut r = FakeRemote::new(vec![out(0, failed)]);
        let res = Apt
            .execute(&a, &mut ctx(&mut r, false, false, vec![]))
            .unwrap();
        assert!(res.failed && res.msg.unwrap().contains("E: Failed to fetch"));
    }
}
