//! `dnf` (and `yum`, which ansible-core 2.18 runs as dnf): RPM packages and package groups
//! (present/latest/absent, `name-version` and `name >= version` specs, `@group`, `*` with latest),
//! enablerepo/disablerepo, update_cache, disable_gpg_check, allow_downgrade, update_only,
//! autoremove, and the dnf options that map to its command line. No Python on the target: the
//! probe reads `rpm -q` (and `dnf repoquery` where availability matters) in one round trip, a pure
//! planner decides, and one `dnf -y` script applies the change, snapshotting `rpm -qa` before and
//! after to report Ansible's `results` ("Installed: n-v-r.a", "Removed: ...").

use super::plan::{failed_output, finish_command, Outcome, Plan, Report};
use super::probe::{probe_sections, section, sections};
use super::rpmver::Pkg;
use super::{Args, Module, ModuleCtx, ModuleError, ModuleResult, Param, Spec};
use crate::shell::quote;
use crate::value::{Value, Vars};

pub struct Dnf;
pub struct Yum;

const BACKENDS: &[&str] = &["auto", "dnf", "yum", "yum4", "dnf4", "dnf5"];

const PARAMS: &[Param] = &[
    Param::list("name").aliases(&["pkg"]).word(),
    Param::str("state").choices(&["absent", "installed", "latest", "present", "removed"]),
    Param::list("enablerepo"),
    Param::list("disablerepo"),
    Param::bool("update_cache")
        .default("false")
        .aliases(&["expire-cache"]),
    Param::bool("disable_gpg_check").default("false"),
    Param::bool("autoremove").default("false"),
    Param::bool("allow_downgrade").default("false"),
    Param::bool("allowerasing").default("false"),
    Param::bool("update_only").default("false"),
    Param::bool("skip_broken").default("false"),
    Param::bool("best"),
    Param::bool("nobest"),
    Param::bool("cacheonly").default("false"),
    Param::bool("install_weak_deps").default("true"),
    Param::list("exclude"),
    Param::str("releasever"),
    Param::path("conf_file"),
    Param::str("disable_excludes"),
    Param::list("disable_plugin"),
    Param::list("enable_plugin"),
    Param::bool("sslverify").default("true"),
    // dnf itself waits for the rpm database lock.
    Param::int("lock_timeout").default("30"),
    // The action plugin's choice of backend: knockplay always drives the dnf command line.
    Param::str("use_backend").choices(BACKENDS).default("auto"),
    Param::str("use").choices(BACKENDS),
    // Deprecated and without effect in ansible-core too.
    Param::bool("install_repoquery").default("true"),
    Param::bool("validate_certs").only("true"),
    Param::path("installroot").only("/"),
    Param::bool("security").only("false"),
    Param::bool("bugfix").only("false"),
    Param::bool("download_only").only("false"),
    Param::path("download_dir").refused("packages are not downloaded separately"),
    Param::str("list")
        .refused("listing packages is not implemented (use `dnf list` in a command task)"),
];

const SPEC: Spec = Spec::new("dnf", PARAMS);
const YUM_SPEC: Spec = Spec::new("yum", PARAMS);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    Present,
    Latest,
    Absent,
}

/// One requested name: a package spec or `@group`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    Pkg(String),
    Group(String),
}

impl Target {
    fn parse(name: &str) -> Result<Self, ModuleError> {
        if name.contains("://") || name.ends_with(".rpm") {
            return Err(ModuleError::Args(format!(
                "installing an rpm file or URL ({name}) is not implemented; use a package name"
            )));
        }
        match name.strip_prefix('@') {
            Some(g) if !g.trim().is_empty() => Ok(Target::Group(g.trim().to_string())),
            Some(_) => Err(ModuleError::Args("empty group name '@'".into())),
            None => Ok(Target::Pkg(name.to_string())),
        }
    }
}

/// A package spec with a relation (`name >= 1.0`) is matched as a capability.
fn is_relational(spec: &str) -> bool {
    spec.contains(['<', '>', '='])
}

fn is_glob(spec: &str) -> bool {
    spec.contains(['*', '?', '['])
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DnfArgs {
    pub targets: Vec<Target>,
    pub state: State,
    pub update_cache: bool,
    pub autoremove: bool,
    pub allow_downgrade: bool,
    pub allowerasing: bool,
    pub update_only: bool,
    /// Options every dnf command gets (repositories, gpg check, excludes, ...).
    pub opts: Vec<String>,
}

/// Ansible's list handling: comma-separated items are split, items trimmed.
fn listify(args: &Args<'_>, name: &str) -> Result<Vec<String>, ModuleError> {
    Ok(args
        .list(name)?
        .unwrap_or_default()
        .iter()
        .flat_map(|s| s.split(',').map(|p| p.trim().to_string()))
        .filter(|s| !s.is_empty())
        .collect())
}

/// Ansible's refusal of `name: "a b"`.
const SPACE_MSG: &str =
    "It appears that a space separated string of packages was passed in as an argument. \
To operate on several packages, pass a comma separated string of packages or a list of packages.";

impl DnfArgs {
    pub fn from_args(args: &Args<'_>) -> Result<Self, ModuleError> {
        args.exclusive("use", "use_backend")?;
        args.exclusive("best", "nobest")?;
        let names = listify(args, "name")?;
        if names
            .iter()
            .any(|n| n.contains(' ') && !n.contains(['@', '>', '<', '=']))
        {
            return Err(ModuleError::Args(SPACE_MSG.into()));
        }
        let autoremove = args.bool("autoremove")?;
        let state = match args.choice("state")?.as_deref() {
            Some("absent" | "removed") => State::Absent,
            Some("latest") => State::Latest,
            Some(_) => State::Present,
            None if autoremove => State::Absent,
            None => State::Present,
        };
        if autoremove && state != State::Absent {
            return Err(ModuleError::Args(
                "Autoremove should be used alone or with state=absent".into(),
            ));
        }
        let update_cache = args.bool("update_cache")?;
        if names.is_empty() && !update_cache && !autoremove {
            return Err(ModuleError::Args(
                "one of the following is required: name, list, update_cache".into(),
            ));
        }
        args.int("lock_timeout")?;
        args.bool("install_repoquery")?;
        Ok(Self {
            targets: names
                .iter()
                .map(|n| Target::parse(n))
                .collect::<Result<_, _>>()?,
            state,
            update_cache,
            autoremove,
            allow_downgrade: args.bool("allow_downgrade")?,
            allowerasing: args.bool("allowerasing")?,
            update_only: args.bool("update_only")?,
            opts: common_opts(args)?,
        })
    }

    fn all_latest(&self) -> bool {
        self.state == State::Latest && self.targets == [Target::Pkg("*".into())]
    }
}

/// The dnf options every command of the task gets. Repositories are disabled before others are
/// enabled, as Ansible applies them.
fn common_opts(args: &Args<'_>) -> Result<Vec<String>, ModuleError> {
    let mut o = Vec::new();
    if let Some(c) = args.str("conf_file")? {
        o.push(format!("--config={c}"));
    }
    for r in listify(args, "disablerepo")? {
        o.push(format!("--disablerepo={r}"));
    }
    for r in listify(args, "enablerepo")? {
        o.push(format!("--enablerepo={r}"));
    }
    if args.bool("disable_gpg_check")? {
        o.push("--nogpgcheck".into());
    }
    for x in listify(args, "exclude")? {
        o.push(format!("--exclude={x}"));
    }
    if let Some(d) = args.str("disable_excludes")? {
        o.push(format!("--disableexcludes={d}"));
    }
    for p in listify(args, "disable_plugin")? {
        o.push(format!("--disableplugin={p}"));
    }
    for p in listify(args, "enable_plugin")? {
        o.push(format!("--enableplugin={p}"));
    }
    if let Some(r) = args.str("releasever")? {
        o.push(format!("--releasever={r}"));
    }
    match (args.opt_bool("best")?, args.opt_bool("nobest")?) {
        (Some(true), _) | (_, Some(false)) => o.push("--best".into()),
        (Some(false), _) | (_, Some(true)) => o.push("--nobest".into()),
        _ => {}
    }
    if args.bool("skip_broken")? {
        o.push("--skip-broken".into());
    }
    if args.bool("cacheonly")? {
        o.push("--cacheonly".into());
    }
    if !args.bool("install_weak_deps")? {
        o.push("--setopt=install_weak_deps=False".into());
    }
    if !args.bool("sslverify")? {
        o.push("--setopt=sslverify=False".into());
    }
    Ok(o)
}

/// What the probe found for one package spec.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SpecState {
    /// Installed packages matching the spec.
    pub installed: Vec<Pkg>,
    /// Latest available package(s) matching it (queried when it matters).
    pub available: Vec<Pkg>,
    /// Installed packages with the available ones' names (for "a newer version is installed").
    pub same_name: Vec<Pkg>,
}

/// What the probe found for one group.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GroupState {
    pub exists: bool,
    /// Mandatory, default and conditional member packages.
    pub members: Vec<String>,
    pub installed: Vec<Pkg>,
    /// Installed members with an upgrade available (state latest).
    pub upgradable: Vec<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Probe {
    pub root: bool,
    /// `dnf makecache` failed: its output.
    pub cache_failed: Option<String>,
    pub specs: Vec<SpecState>,
    pub groups: Vec<GroupState>,
    /// `dnf check-update` found updates (name `*` with state latest).
    pub updates: bool,
    /// Packages `dnf autoremove` would remove.
    pub unneeded: Vec<Pkg>,
}

/// One dnf command of the apply script.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    Install(Vec<String>),
    Upgrade(Vec<String>),
    Downgrade(Vec<String>),
    Remove(Vec<String>),
    GroupInstall(Vec<String>),
    GroupUpgrade(Vec<String>),
    GroupRemove(Vec<String>),
    UpgradeAll,
    Autoremove,
}

/// The planner's decision.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Decision {
    /// Results reported before the transaction's ("No match for argument: x", "Group g installed.").
    pub notes: Vec<String>,
    /// Specs that cannot be installed ("No package x available.").
    pub failures: Vec<String>,
    /// A failure that stops the task before anything runs ("No group g available.").
    pub fatal: Option<String>,
    pub steps: Vec<Step>,
    /// What check mode reports as the transaction ("Installed: n-v-r.a", "Removed: ...").
    pub would: Vec<String>,
}

const PKG_FMT: &str = "%{NAME} %{EPOCHNUM}:%{VERSION}-%{RELEASE} %{ARCH}\\n";
const REPO_FMT: &str = "%{name} %{epoch}:%{version}-%{release} %{arch}";

/// The probe script: root check, optional cache refresh, then per spec the installed matches and,
/// where they matter, the latest available ones; per group its members and their state.
pub fn probe_script(a: &DnfArgs) -> String {
    let opts = crate::shell::join(&a.opts);
    let mut s = format!(
        "LC_ALL=C; export LC_ALL\n\
         command -v rpm >/dev/null 2>&1 && command -v dnf >/dev/null 2>&1 || \
         {{ echo 'dnf: rpm and dnf are needed on the target (an RPM-based host)' >&2; exit 127; }}\n\
         kp_q() {{ rpm -q --qf '{PKG_FMT}' \"$@\" 2>/dev/null; }}\n\
         kp_dnf() {{ dnf -q {opts} \"$@\"; }}\n\
         kp_avail() {{ kp_dnf repoquery --latest-limit 1 --qf '{REPO_FMT}' \"$@\" 2>/dev/null; }}\n\
         {}; id -u\n",
        section("root")
    );
    if a.update_cache {
        s.push_str(&format!(
            "kp_o=$(kp_dnf makecache --refresh 2>&1) || {{ {}; printf '%s\\n' \"$kp_o\"; }}\n",
            section("cache_failed")
        ));
    }
    let latest = a.state == State::Latest;
    for (i, t) in a.targets.iter().enumerate() {
        match t {
            Target::Pkg(spec) if spec == "*" && a.all_latest() => {}
            Target::Pkg(spec) => s.push_str(&spec_probe(i, spec, a.state)),
            Target::Group(g) => {
                let q = quote(g);
                s.push_str(&format!(
                    "kp_m=$(kp_dnf group info {q} 2>/dev/null | awk '/^ [A-Za-z]+ Packages:/ {{ p = ($1 == \"Mandatory\" || $1 == \"Default\" || $1 == \"Conditional\"); next }} /^ *Group:/ {{ print \"@group\"; next }} /^ [^ ]/ {{ p = 0 }} p && NF {{ print $1 }}')\n\
                     {}; printf '%s\\n' \"$kp_m\"\nkp_m=$(printf '%s\\n' \"$kp_m\" | grep -v '^@group$')\n\
                     {}; [ -n \"$kp_m\" ] && kp_q $kp_m\n",
                    section(&format!("g{i}")),
                    section(&format!("gq{i}")),
                ));
                if latest {
                    s.push_str(&format!(
                        "{}; [ -n \"$kp_m\" ] && kp_dnf repoquery --upgrades --qf '%{{name}}' $kp_m 2>/dev/null\n",
                        section(&format!("gu{i}"))
                    ));
                }
            }
        }
    }
    if a.all_latest() {
        s.push_str(&format!(
            "{}; kp_dnf check-update >/dev/null 2>&1; echo $?\n",
            section("updates")
        ));
    }
    if a.autoremove {
        s.push_str(&format!(
            "{}; kp_dnf repoquery --unneeded --qf '{REPO_FMT}' 2>/dev/null\n",
            section("unneeded")
        ));
    }
    s.push_str(&format!("{}\n", section("end")));
    s
}

/// The probe lines for package spec number `i`.
fn spec_probe(i: usize, spec: &str, state: State) -> String {
    let q = quote(spec);
    let installed = if is_relational(spec) {
        format!("kp_dnf repoquery --installed --qf '{REPO_FMT}' --whatprovides {q} 2>/dev/null")
    } else if is_glob(spec) {
        format!("rpm -qa --qf '{PKG_FMT}' {q}")
    } else {
        format!("kp_q {q} || kp_q --whatprovides {q}")
    };
    let avail = if is_relational(spec) {
        format!("kp_avail --whatprovides {q}")
    } else {
        format!("kp_avail {q}")
    };
    let mut s = format!(
        "{}; kp_i=$({installed}); printf '%s\\n' \"$kp_i\"\n",
        section(&format!("q{i}"))
    );
    if state != State::Absent {
        // Availability matters for latest, and for present when nothing installed matches.
        let always = u8::from(state == State::Latest);
        s.push_str(&format!(
            "if [ {always} = 1 ] || ! printf '%s\\n' \"$kp_i\" | grep -q ':'; then\n\
             {}; kp_a=$({avail}); printf '%s\\n' \"$kp_a\"\n\
             kp_n=$(printf '%s\\n' \"$kp_a\" | awk 'NF == 3 {{ print $1 }}' | sort -u)\n\
             {}; [ -n \"$kp_n\" ] && kp_q $kp_n\nfi\n",
            section(&format!("a{i}")),
            section(&format!("n{i}")),
        ));
    }
    s
}

/// Parse the probe output.
pub fn parse_probe(a: &DnfArgs, out: &str) -> Probe {
    let s = sections(out);
    let get = |k: &str| s.get(k).map(String::as_str).unwrap_or("");
    let mut p = Probe {
        root: get("root").trim() == "0",
        cache_failed: s.get("cache_failed").map(|t| t.trim().to_string()),
        updates: get("updates").trim() == "100",
        unneeded: Pkg::parse_all(get("unneeded")),
        ..Probe::default()
    };
    for (i, t) in a.targets.iter().enumerate() {
        match t {
            Target::Pkg(_) => p.specs.push(SpecState {
                installed: Pkg::parse_all(get(&format!("q{i}"))),
                available: Pkg::parse_all(get(&format!("a{i}"))),
                same_name: Pkg::parse_all(get(&format!("n{i}"))),
            }),
            Target::Group(_) => {
                let info = get(&format!("g{i}"));
                p.specs.push(SpecState::default());
                p.groups.push(GroupState {
                    exists: info.lines().any(|l| l == "@group"),
                    members: info
                        .lines()
                        .filter(|l| !l.is_empty() && *l != "@group")
                        .map(str::to_string)
                        .collect(),
                    installed: Pkg::parse_all(get(&format!("gq{i}"))),
                    upgradable: get(&format!("gu{i}"))
                        .lines()
                        .map(str::trim)
                        .filter(|l| !l.is_empty())
                        .map(str::to_string)
                        .collect(),
                });
            }
        }
    }
    p
}

/// Ansible's `_is_newer_version_installed`: an installed package of an available one's name and
/// arch is newer than the latest available.
fn newer_installed(st: &SpecState) -> bool {
    st.available.iter().any(|av| {
        st.same_name
            .iter()
            .filter(|i| i.name == av.name && i.arch == av.arch)
            .any(|i| i.evr > av.evr)
    })
}

/// What one package spec needs, and what check mode reports for it.
#[derive(Debug, Clone, PartialEq, Eq)]
enum PkgNeed {
    Nothing,
    Install,
    Upgrade,
    Downgrade,
    Unavailable,
    UpdateOnly,
}

fn pkg_need(a: &DnfArgs, st: &SpecState) -> PkgNeed {
    let latest = a.state == State::Latest;
    if newer_installed(st) {
        return match (a.allow_downgrade, latest && !st.installed.is_empty()) {
            (false, _) => PkgNeed::Nothing,
            (true, true) => PkgNeed::Upgrade,
            (true, false) => PkgNeed::Downgrade,
        };
    }
    if !st.installed.is_empty() {
        let newer = st.available.iter().any(|av| {
            st.installed
                .iter()
                .filter(|i| i.name == av.name && i.arch == av.arch)
                .all(|i| av.evr > i.evr)
        });
        return if latest && newer {
            PkgNeed::Upgrade
        } else {
            PkgNeed::Nothing
        };
    }
    if a.update_only {
        PkgNeed::UpdateOnly
    } else if st.available.is_empty() {
        PkgNeed::Unavailable
    } else {
        PkgNeed::Install
    }
}

/// Pure: from arguments and probe, the dnf commands and the results to report.
pub fn plan(a: &DnfArgs, p: &Probe) -> Decision {
    let mut d = Decision::default();
    let (mut install, mut upgrade, mut downgrade, mut remove) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let mut groups = p.groups.iter();
    let mut group_steps: Vec<Step> = Vec::new();
    for (t, st) in a.targets.iter().zip(&p.specs) {
        let spec = match t {
            Target::Group(g) => {
                let gs = groups.next().cloned().unwrap_or_default();
                if !gs.exists {
                    d.fatal = Some(format!("No group {g} available."));
                    return d;
                }
                plan_group(a.state, g, &gs, &mut d, &mut group_steps);
                continue;
            }
            Target::Pkg(spec) if a.all_latest() => {
                if p.updates {
                    d.steps.push(Step::UpgradeAll);
                }
                let _ = spec;
                continue;
            }
            Target::Pkg(spec) => spec,
        };
        if a.state == State::Absent {
            if st.installed.is_empty() {
                d.notes.push(format!("No match for argument: {spec}"));
            } else {
                remove.push(spec.clone());
                d.would.extend(
                    st.installed
                        .iter()
                        .map(|i| format!("Removed: {}", i.nevra())),
                );
            }
            continue;
        }
        let need = pkg_need(a, st);
        let newest = || {
            st.available
                .iter()
                .map(|av| format!("Installed: {}", av.nevra()))
        };
        match need {
            PkgNeed::Nothing => {}
            PkgNeed::Install => {
                install.push(spec.clone());
                d.would.extend(newest());
            }
            PkgNeed::Upgrade | PkgNeed::Downgrade => {
                d.would.extend(newest());
                let names: Vec<&str> = st.available.iter().map(|av| av.name.as_str()).collect();
                d.would.extend(
                    st.same_name
                        .iter()
                        .filter(|i| names.contains(&i.name.as_str()))
                        .map(|i| format!("Removed: {}", i.nevra())),
                );
                if need == PkgNeed::Upgrade {
                    upgrade.push(spec.clone());
                } else {
                    downgrade.push(spec.clone());
                }
            }
            PkgNeed::Unavailable => d.failures.push(format!("No package {spec} available.")),
            PkgNeed::UpdateOnly => d.notes.push(format!(
                "Packages providing {spec} not installed due to update_only specified"
            )),
        }
    }
    for (list, step) in [
        (install, Step::Install as fn(Vec<String>) -> Step),
        (upgrade, Step::Upgrade),
        (downgrade, Step::Downgrade),
        (remove, Step::Remove),
    ] {
        if !list.is_empty() {
            d.steps.push(step(list));
        }
    }
    d.steps.extend(group_steps);
    if a.autoremove && !p.unneeded.is_empty() {
        d.steps.push(Step::Autoremove);
        d.would
            .extend(p.unneeded.iter().map(|i| format!("Removed: {}", i.nevra())));
    }
    d.would.sort();
    d.would.dedup();
    // Ansible lists what is installed before what is removed.
    d.would.sort_by_key(|w| w.starts_with("Removed: "));
    d
}

/// A group: installed when a member is missing, upgraded (latest) when one has an upgrade,
/// removed (absent) when a member is installed.
fn plan_group(state: State, g: &str, gs: &GroupState, d: &mut Decision, steps: &mut Vec<Step>) {
    let missing = gs
        .members
        .iter()
        .any(|m| !gs.installed.iter().any(|i| &i.name == m));
    match state {
        State::Absent => {
            if !gs.installed.is_empty() {
                steps.push(Step::GroupRemove(vec![g.to_string()]));
                d.would.extend(
                    gs.installed
                        .iter()
                        .map(|i| format!("Removed: {}", i.nevra())),
                );
            }
        }
        State::Latest if !missing => {
            d.notes.push(format!("Group {g} upgraded."));
            if !gs.upgradable.is_empty() {
                steps.push(Step::GroupUpgrade(vec![g.to_string()]));
            }
        }
        State::Present | State::Latest => {
            if gs.members.is_empty() {
                d.notes.push(format!("Group {g} already installed."));
            } else {
                d.notes.push(format!("Group {g} installed."));
            }
            if missing {
                steps.push(Step::GroupInstall(vec![g.to_string()]));
            }
        }
    }
}

impl Step {
    fn command(&self, a: &DnfArgs) -> String {
        let (sub, words): (&[&str], &[String]) = match self {
            Step::Install(w) => (&["install"], w),
            Step::Upgrade(w) => (&["upgrade"], w),
            Step::Downgrade(w) => (&["downgrade"], w),
            Step::Remove(w) => (&["remove"], w),
            Step::GroupInstall(w) => (&["group", "install"], w),
            Step::GroupUpgrade(w) => (&["group", "upgrade"], w),
            Step::GroupRemove(w) => (&["group", "remove"], w),
            Step::UpgradeAll => (&["upgrade"], &[]),
            Step::Autoremove => (&["autoremove"], &[]),
        };
        let mut cmd: Vec<String> = vec!["dnf".into(), "-y".into()];
        cmd.extend(a.opts.iter().cloned());
        // As Ansible configures dnf: unused dependencies go only with autoremove.
        cmd.push(format!(
            "--setopt=clean_requirements_on_remove={}",
            if a.autoremove { "True" } else { "False" }
        ));
        if a.allowerasing && !matches!(self, Step::Remove(_) | Step::GroupRemove(_)) {
            cmd.push("--allowerasing".into());
        }
        cmd.extend(sub.iter().map(|s| s.to_string()));
        cmd.extend(words.iter().cloned());
        crate::shell::join(&cmd)
    }

    fn what(&self) -> &'static str {
        match self {
            Step::Remove(_) | Step::GroupRemove(_) | Step::Autoremove => "dnf remove",
            _ => "dnf install",
        }
    }
}

/// The apply script: every step in order (stopping at the first failure), with `rpm -qa` taken
/// before and after so the result can name what was installed and removed.
pub fn apply_script(a: &DnfArgs, steps: &[Step]) -> Option<String> {
    if steps.is_empty() {
        return None;
    }
    let cmds: Vec<String> = steps.iter().map(|s| s.command(a)).collect();
    Some(format!(
        "LC_ALL=C; export LC_ALL\n\
         kp_snap() {{ rpm -qa --qf '%{{NAME}}-%|EPOCH?{{%{{EPOCH}}:}}:{{}}|%{{VERSION}}-%{{RELEASE}}.%{{ARCH}}\\n' | LC_ALL=C sort; }}\n\
         kp_b=$(mktemp) && kp_a=$(mktemp) || exit 1\n\
         kp_snap >\"$kp_b\"\n\
         {{ {}; }} 1>&2\nkp_rc=$?\n\
         kp_snap >\"$kp_a\"\n\
         {}; LC_ALL=C comm -13 \"$kp_b\" \"$kp_a\"\n\
         {}; LC_ALL=C comm -23 \"$kp_b\" \"$kp_a\"\n\
         {}\nrm -f \"$kp_b\" \"$kp_a\"\nexit $kp_rc\n",
        cmds.join(" && "),
        section("installed"),
        section("removed"),
        section("end"),
    ))
}

fn results_value(items: Vec<String>) -> Value {
    Value::from(items)
}

/// A failed result as Ansible's dnf reports it (`results` empty, `rc` 1).
fn failure(msg: impl Into<String>) -> ModuleResult {
    let mut r = ModuleResult::failed(msg);
    r.rc = Some(1);
    r.set("results", results_value(Vec::new()))
}

impl Module for Dnf {
    fn spec(&self) -> &'static Spec {
        &SPEC
    }
    fn run(&self, args: &Args<'_>, ctx: &mut ModuleCtx<'_>) -> Result<ModuleResult, ModuleError> {
        run_parsed(&DnfArgs::from_args(args)?, ctx)
    }
}

impl Module for Yum {
    fn spec(&self) -> &'static Spec {
        &YUM_SPEC
    }
    fn run(&self, args: &Args<'_>, ctx: &mut ModuleCtx<'_>) -> Result<ModuleResult, ModuleError> {
        run_parsed(&DnfArgs::from_args(args)?, ctx)
    }
}

/// Run as the `package` module's backend: `names` in `state`, the other options `package` passed
/// on (dnf refuses those it does not have).
pub fn run_packages(
    names: Vec<String>,
    state: String,
    options: Vars,
    ctx: &mut ModuleCtx<'_>,
) -> Result<ModuleResult, ModuleError> {
    let mut vars = options;
    vars.insert("name".into(), Value::from(names));
    vars.insert("state".into(), Value::from(state));
    run_parsed(&DnfArgs::from_args(&Args::new(&SPEC, &vars)?)?, ctx)
}

/// Probe once, plan, apply unless in check mode.
fn run_parsed(a: &DnfArgs, ctx: &mut ModuleCtx<'_>) -> Result<ModuleResult, ModuleError> {
    let text = match probe_sections(ctx, &probe_script(a))? {
        Ok(out) => out.stdout_str(),
        Err(out) => return Ok(failed_output("dnf: reading package state", &out)),
    };
    let probe = parse_probe(a, &text);
    if !probe.root {
        return Ok(failure("This command has to be run under the root user."));
    }
    if let Some(e) = probe.cache_failed {
        return Ok(failure(e));
    }
    if a.targets.is_empty() && !a.autoremove {
        let r = ModuleResult {
            msg: Some("Cache updated".into()),
            rc: Some(0),
            ..ModuleResult::ok()
        };
        return Ok(r.set("results", results_value(Vec::new())));
    }
    let d = plan(a, &probe);
    if let Some(f) = d.fatal {
        return Ok(failure(f));
    }
    if !d.failures.is_empty() {
        return Ok(failure("Failed to install some of the specified packages")
            .set("failures", Value::from(d.failures)));
    }
    let step = d.steps.first().map(Step::what).unwrap_or("dnf install");
    let plan = match apply_script(a, &d.steps) {
        Some(script) => Plan::script(script, None),
        None => Plan::NoChange,
    };
    let mut r = finish_command(ctx, Outcome::new(plan), &Report::command(step))?;
    if r.failed {
        r.stdout = None;
        return Ok(r.set("results", results_value(Vec::new())));
    }
    let mut results = d.notes;
    if r.changed && ctx.check_mode {
        results.extend(d.would);
        r.msg = Some("Check mode: No changes made, but would have if not in check mode".into());
    } else if let Some(out) = r.stdout.take() {
        let s = sections(&out);
        let lines = |k: &str| -> Vec<String> {
            s.get(k)
                .map(|t| {
                    t.lines()
                        .filter(|l| !l.is_empty())
                        .map(str::to_string)
                        .collect()
                })
                .unwrap_or_default()
        };
        let (added, gone) = (lines("installed"), lines("removed"));
        r.changed = !added.is_empty() || !gone.is_empty();
        results.extend(added.iter().map(|p| format!("Installed: {p}")));
        results.extend(gone.iter().map(|p| format!("Removed: {p}")));
    }
    if r.msg.is_none() {
        r.msg = Some(if r.changed { "" } else { "Nothing to do" }.into());
    }
    r.stderr = None;
    r.rc = Some(0);
    Ok(r.set("results", results_value(results)))
}

#[cfg(test)]
#[path = "dnf_tests.rs"]
mod tests;
