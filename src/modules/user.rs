//! `user`: local accounts via useradd/usermod/userdel, read with getent/id in one probe.
//!
//! Password hashes travel on stdin to `chpasswd -e` (never in a command line, never in results).

use super::plan::{failed_output, finish_command, Outcome, Plan, Report};
use super::probe::{probe_sections, section, sections};
use super::{Args, Module, ModuleCtx, ModuleError, ModuleResult, Param, Spec};
use crate::shell::quote;

pub struct User;

const SPEC: Spec = Spec::new(
    "user",
    &[
        Param::str("name").required().aliases(&["user"]).word(),
        Param::str("state")
            .choices(&["present", "absent"])
            .default("present"),
        Param::int("uid"),
        Param::str("group"),
        Param::list("groups"),
        Param::bool("append").default("false"),
        Param::path("shell"),
        Param::path("home"),
        Param::bool("create_home")
            .default("true")
            .aliases(&["createhome"]),
        Param::bool("move_home").default("false"),
        Param::bool("system").default("false"),
        Param::str("password"),
        Param::str("update_password")
            .choices(&["always", "on_create"])
            .default("always"),
        Param::str("comment"),
        Param::bool("remove").default("false"),
        Param::bool("force").default("false"),
        Param::bool("non_unique").default("false"),
        Param::str("skeleton"),
        Param::bool("password_lock"),
        Param::bool("generate_ssh_key").default("false"),
        Param::int("ssh_key_bits"),
        Param::path("ssh_key_file"),
        Param::str("ssh_key_type").default("rsa"),
        Param::str("ssh_key_comment"),
        Param::str("ssh_key_passphrase"),
        // knockplay edits /etc/passwd with the shadow tools (useradd, not luseradd).
        Param::bool("local").only("false"),
        Param::float("expires").refused("account expiry dates are not managed"),
    ],
);

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserArgs {
    pub name: String,
    pub present: bool,
    pub uid: Option<u64>,
    pub group: Option<String>,
    pub groups: Option<Vec<String>>,
    pub append: bool,
    pub shell: Option<String>,
    pub home: Option<String>,
    pub create_home: bool,
    pub move_home: bool,
    pub system: bool,
    pub password: Option<String>,
    pub update_always: bool,
    pub comment: Option<String>,
    pub remove: bool,
    pub force: bool,
    pub non_unique: bool,
    pub skeleton: Option<String>,
    pub password_lock: Option<bool>,
    /// `generate_ssh_key: yes`: the key to create when missing.
    pub ssh_key: Option<SshKey>,
}

/// An SSH key pair generated for the user (`generate_ssh_key`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SshKey {
    /// Relative paths are under the user's home.
    pub file: String,
    pub key_type: String,
    pub bits: u64,
    pub comment: Option<String>,
    pub passphrase: Option<String>,
}

impl UserArgs {
    pub fn from_args(args: &Args<'_>) -> Result<Self, ModuleError> {
        Ok(Self {
            name: args.req_str("name")?,
            present: args.choice("state")?.as_deref() != Some("absent"),
            uid: args.uint("uid")?,
            group: args.str("group")?.filter(|g| !g.is_empty()),
            groups: args.list("groups")?.map(split_groups),
            append: args.bool("append")?,
            shell: args.str("shell")?,
            home: args.str("home")?,
            create_home: args.bool("create_home")?,
            move_home: args.bool("move_home")?,
            system: args.bool("system")?,
            password: args.str("password")?,
            update_always: args.choice("update_password")?.as_deref() != Some("on_create"),
            comment: args.str("comment")?,
            remove: args.bool("remove")?,
            force: args.bool("force")?,
            non_unique: args.bool("non_unique")?,
            skeleton: args.str("skeleton")?,
            password_lock: args.opt_bool("password_lock")?,
            ssh_key: SshKey::from_args(args)?,
        })
    }

    /// Group names/gids to look up in the probe.
    fn lookups(&self) -> Vec<String> {
        let mut v = vec![self.name.clone()];
        v.extend(self.group.iter().cloned());
        v.extend(self.groups.iter().flatten().cloned());
        v
    }
}

/// Ansible joins the `groups` list with commas and splits it again: an item may name several
/// groups (`["a,b", "c"]`), and items are trimmed.
fn split_groups(items: Vec<String>) -> Vec<String> {
    items
        .iter()
        .flat_map(|item| item.split(','))
        .map(str::trim)
        .filter(|g| !g.is_empty())
        .map(str::to_string)
        .collect()
}

impl SshKey {
    /// The key to generate, when `generate_ssh_key` is set.
    fn from_args(args: &Args<'_>) -> Result<Option<Self>, ModuleError> {
        if !args.bool("generate_ssh_key")? {
            return Ok(None);
        }
        let key_type = args.str("ssh_key_type")?.unwrap_or_else(|| "rsa".into());
        Ok(Some(Self {
            // ansible-core's default: .ssh/id_<type>.
            file: args
                .str("ssh_key_file")?
                .unwrap_or_else(|| format!(".ssh/id_{key_type}")),
            key_type,
            bits: args.uint("ssh_key_bits")?.unwrap_or(0),
            comment: args.str("ssh_key_comment")?,
            passphrase: args.str("ssh_key_passphrase")?,
        }))
    }
}

/// A `passwd` entry.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Passwd {
    pub uid: u64,
    pub gid: u64,
    pub comment: String,
    pub home: String,
    pub shell: String,
}

/// What the probe found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Probe {
    pub passwd: Option<Passwd>,
    /// Every group line found for the looked-up names/gids: (name, gid).
    pub groups: Vec<(String, u64)>,
    /// `id -Gn` of the user (all groups, primary included).
    pub member_of: Vec<String>,
    /// Shadow hash (None when unreadable or not asked).
    pub shadow: Option<String>,
    pub home_exists: bool,
    /// Raw `KPKEY` lines when the requested SSH key already exists.
    pub ssh_key: Option<String>,
}

impl Probe {
    fn group(&self, name_or_gid: &str) -> Option<&(String, u64)> {
        self.groups
            .iter()
            .find(|(n, g)| n == name_or_gid || g.to_string() == name_or_gid)
    }
    fn group_name_of_gid(&self, gid: u64) -> Option<&str> {
        self.groups
            .iter()
            .find(|(_, g)| *g == gid)
            .map(|(n, _)| n.as_str())
    }
}

pub fn probe_script(a: &UserArgs) -> String {
    let n = quote(&a.name);
    let mut s = format!(
        "{}; getent passwd {n}\n{}; ",
        section("passwd"),
        section("groups")
    );
    for g in a.lookups() {
        s.push_str(&format!("getent group {}; ", quote(&g)));
    }
    s.push_str(&format!(
        "\n{}; id -Gn {n} 2>/dev/null\n",
        section("member_of")
    ));
    if a.password.is_some() || a.password_lock.is_some() {
        s.push_str(&format!(
            "{}; getent shadow {n} 2>/dev/null\n",
            section("shadow")
        ));
    }
    s.push_str(&format!(
        "{}; kp_h=$(getent passwd {n}) && {{ kp_h=${{kp_h#*:*:*:*:*:}}; kp_h=${{kp_h%%:*}}; [ -d \"$kp_h\" ] && echo yes; }}\n",
        section("home"),
    ));
    if let Some(k) = &a.ssh_key {
        s.push_str(&format!(
            "{}; if [ -n \"$kp_h\" ]; then f={f}; case $f in /*) ;; *) f=\"$kp_h/$f\";; esac; \
             if [ -f \"$f\" ] || [ -f \"$f.pub\" ]; then {KEY_INFO}; fi; fi\n",
            section("sshkey"),
            f = quote(&k.file),
        ));
    }
    s.push_str(&format!("{}\ntrue\n", section("end")));
    s
}

/// Prints `KPKEY path=/pub=/fp=` lines for key file "$f".
const KEY_INFO: &str = "printf 'KPKEY path=%s\\n' \"$f\"; printf 'KPKEY pub=%s\\n' \"$(cat \"$f.pub\" 2>/dev/null)\"; \
printf 'KPKEY fp=%s\\n' \"$(ssh-keygen -l -f \"$f.pub\" 2>/dev/null)\"";

/// Shell that creates the key (run after the account exists), as root, in a private directory
/// beside the key file, then hands it to the user and renames it into place: nothing follows a
/// link the user plants in their own directory ([`super::safepath`]).
fn keygen_script(a: &UserArgs, k: &SshKey) -> String {
    let comment = match &k.comment {
        Some(c) => quote(c),
        None => "\"ansible-generated on $(uname -n)\"".to_string(),
    };
    let bits = if k.bits > 0 {
        format!(" -b {}", k.bits)
    } else {
        String::new()
    };
    let pass = if k.passphrase.is_some() {
        "\"$kp_pp\""
    } else {
        "''"
    };
    format!(
        "kp_e=$(getent passwd {n}); kp_r=${{kp_e#*:*:}}; kp_uid=${{kp_r%%:*}}; kp_r=${{kp_r#*:}}; kp_gid=${{kp_r%%:*}}; \
         kp_home=${{kp_e#*:*:*:*:*:}}; kp_home=${{kp_home%%:*}}; f={f}; case $f in /*) ;; *) f=\"$kp_home/$f\";; esac; \
         kp_dir=${{f%/*}}; kp_dir=${{kp_dir:-/}}; kp_base=${{f##*/}}\n\
         (\n{lib}kp_enter \"$kp_dir\" 1 || exit 1\n\
         if [ $kp_made = 1 ]; then chmod 0700 . && chown \"$kp_uid:$kp_gid\" . || exit 1; fi\n\
         if [ ! -f \"$kp_base\" ] && [ ! -f \"$kp_base.pub\" ]; then command -v ssh-keygen >/dev/null 2>&1 || {{ echo 'generate_ssh_key: ssh-keygen not found on the target (package openssh-client)' >&2; exit 127; }}\n\
         kp_private \"$kp_base\" || exit 1\n\
         ssh-keygen -q -t {t}{bits} -C {comment} -N {pass} -f key </dev/null >/dev/null && chown \"$kp_uid:$kp_gid\" key key.pub \
         && mv -fT -- key.pub \"../$kp_base.pub\" && mv -fT -- key \"../$kp_base\"; kp_rc=$?\n\
         rm -f key key.pub; cd .. && rmdir -- \"$kp_w\"; exit $kp_rc; fi\n\
         ) || exit $?\n{KEY_INFO}\n",
        n = quote(&a.name),
        f = quote(&k.file),
        t = quote(&k.key_type),
        lib = super::safepath::LIB,
    )
}

/// `KPKEY key=value` lines → result keys (ssh_key_file, ssh_public_key, ssh_fingerprint).
fn key_results(text: &str) -> Vec<(&'static str, String)> {
    text.lines()
        .filter_map(|l| l.strip_prefix("KPKEY "))
        .filter_map(|l| l.split_once('='))
        .filter_map(|(k, v)| {
            let key = match k {
                "path" => "ssh_key_file",
                "pub" => "ssh_public_key",
                "fp" => "ssh_fingerprint",
                _ => return None,
            };
            Some((key, v.to_string()))
        })
        .collect()
}

pub fn parse_probe(out: &str) -> Probe {
    let s = sections(out);
    let text = |k: &str| s.get(k).map(String::as_str).unwrap_or("");
    let passwd = text("passwd").lines().find_map(|l| {
        let f: Vec<&str> = l.split(':').collect();
        (f.len() >= 7).then(|| Passwd {
            uid: f[2].parse().unwrap_or(0),
            gid: f[3].parse().unwrap_or(0),
            comment: f[4].to_string(),
            home: f[5].to_string(),
            shell: f[6].to_string(),
        })
    });
    let groups = text("groups")
        .lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split(':').collect();
            (f.len() >= 3).then(|| Some((f[0].to_string(), f[2].parse().ok()?)))?
        })
        .collect();
    Probe {
        passwd,
        groups,
        member_of: text("member_of")
            .split_whitespace()
            .map(str::to_string)
            .collect(),
        shadow: text("shadow")
            .lines()
            .find_map(|l| l.split(':').nth(1).map(str::to_string)),
        home_exists: text("home").trim() == "yes",
        ssh_key: s
            .get("sshkey")
            .filter(|t| t.contains("KPKEY path="))
            .cloned(),
    }
}

/// Pure plan: commands in order, and the password (fed to `chpasswd -e` on stdin) if it changes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AccountPlan {
    pub commands: Vec<String>,
    pub set_password: bool,
    /// The requested SSH key is missing and must be generated.
    pub generate_key: bool,
}

impl AccountPlan {
    pub fn is_empty(&self) -> bool {
        self.commands.is_empty() && !self.set_password && !self.generate_key
    }
}

pub fn plan(a: &UserArgs, p: &Probe) -> Result<AccountPlan, String> {
    let mut plan = plan_account(a, p)?;
    plan.generate_key = a.present && a.ssh_key.is_some() && p.ssh_key.is_none();
    Ok(plan)
}

fn plan_account(a: &UserArgs, p: &Probe) -> Result<AccountPlan, String> {
    if !a.present {
        return Ok(AccountPlan {
            commands: userdel_command(a, p).into_iter().collect(),
            ..AccountPlan::default()
        });
    }
    // Validate groups first, like Ansible ("Group x does not exist").
    let groups = WantedGroups::resolve(a, p)?;
    Ok(match &p.passwd {
        None => plan_new_account(a, p, &groups),
        Some(cur) => plan_existing_account(a, p, cur, &groups),
    })
}

fn userdel_command(a: &UserArgs, p: &Probe) -> Option<String> {
    p.passwd.as_ref()?;
    let mut cmd = String::from("userdel");
    if a.force {
        cmd.push_str(" -f");
    }
    if a.remove {
        cmd.push_str(" -r");
    }
    Some(format!("{cmd} {}", quote(&a.name)))
}

/// The requested groups, as found on the target.
struct WantedGroups {
    /// `group`: (name, gid).
    primary: Option<(String, u64)>,
    /// `groups`, by name, without repeats.
    supplementary: Vec<String>,
}

impl WantedGroups {
    fn resolve(a: &UserArgs, p: &Probe) -> Result<Self, String> {
        let find = |g: &str| {
            p.group(g)
                .ok_or_else(|| format!("Group {g} does not exist"))
        };
        let primary = match &a.group {
            Some(g) => Some(find(g)?.clone()),
            None => None,
        };
        let mut supplementary: Vec<String> = Vec::new();
        for g in a.groups.iter().flatten() {
            let (name, _) = find(g)?;
            if !supplementary.contains(name) {
                supplementary.push(name.clone());
            }
        }
        Ok(Self {
            primary,
            supplementary,
        })
    }
}

fn plan_new_account(a: &UserArgs, p: &Probe, groups: &WantedGroups) -> AccountPlan {
    let mut commands = vec![useradd_command(a, p, groups)];
    if a.password_lock == Some(true) {
        commands.push(format!("usermod -L {}", quote(&a.name)));
    }
    AccountPlan {
        commands,
        set_password: a.password.is_some(),
        generate_key: false,
    }
}

fn useradd_command(a: &UserArgs, p: &Probe, groups: &WantedGroups) -> String {
    let mut cmd = vec!["useradd".to_string()];
    if let Some(uid) = a.uid {
        cmd.push(format!("-u {uid}"));
        if a.non_unique {
            cmd.push("-o".into());
        }
    }
    match &a.group {
        Some(g) => cmd.push(format!("-g {}", quote(g))),
        // A group named like the user exists: don't let USERGROUPS_ENAB try to create it.
        None if p.group(&a.name).is_some() => cmd.push("-N".into()),
        None => {}
    }
    if !groups.supplementary.is_empty() {
        cmd.push(format!("-G {}", quote(&groups.supplementary.join(","))));
    }
    if let Some(c) = &a.comment {
        cmd.push(format!("-c {}", quote(c)));
    }
    if let Some(h) = &a.home {
        cmd.push(format!("-d {}", quote(h)));
    }
    if let Some(s) = &a.shell {
        cmd.push(format!("-s {}", quote(s)));
    }
    if a.create_home {
        cmd.push("-m".into());
        if let Some(k) = &a.skeleton {
            cmd.push(format!("-k {}", quote(k)));
        }
    } else {
        cmd.push("-M".into());
    }
    if a.system {
        cmd.push("-r".into());
    }
    cmd.push(quote(&a.name));
    cmd.join(" ")
}

fn plan_existing_account(
    a: &UserArgs,
    p: &Probe,
    cur: &Passwd,
    groups: &WantedGroups,
) -> AccountPlan {
    let n = quote(&a.name);
    let mut plan = AccountPlan::default();
    let primary_gid = groups.primary.as_ref().map_or(cur.gid, |(_, g)| *g);
    let flags = usermod_flags(a, p, cur, groups, primary_gid);
    if !flags.is_empty() {
        plan.commands
            .push(format!("usermod {} {n}", flags.join(" ")));
    }
    if let (Some(want), true) = (&a.password, a.update_always) {
        let have = p.shadow.as_deref().map(|h| h.trim_start_matches('!'));
        if have != Some(want.as_str()) {
            plan.set_password = true;
        }
    }
    match (a.password_lock, p.shadow.as_deref()) {
        (Some(true), Some(h)) if !h.starts_with('!') => {
            plan.commands.push(format!("usermod -L {n}"))
        }
        (Some(false), Some(h)) if h.starts_with('!') => {
            plan.commands.push(format!("usermod -U {n}"))
        }
        _ => {}
    }
    // Ansible creates a missing home directory of an existing user (copying the skeleton).
    let home_moves = a.move_home && a.home.as_ref().is_some_and(|h| *h != cur.home);
    if a.create_home && !p.home_exists && !home_moves {
        let h = quote(a.home.as_deref().unwrap_or(&cur.home));
        let skel = quote(a.skeleton.as_deref().unwrap_or("/etc/skel"));
        plan.commands.push(format!(
            "kp_h={h}; mkdir -p \"$kp_h\" && {{ [ ! -d {skel} ] || cp -a {skel}/. \"$kp_h\"; }} && chown -R {}:{} \"$kp_h\" && {HOME_MODE}",
            a.uid.unwrap_or(cur.uid),
            primary_gid
        ));
    }
    plan
}

/// The mode Ansible gives a home directory it creates: `0777 & ~UMASK` from login.defs (its last
/// `UMASK` line), else what `mkdir` made (`$kp_h` names the directory).
const HOME_MODE: &str = "u=$(sed -n 's/^UMASK[[:space:]]\\{1,\\}\\([0-7]\\{1,\\}\\)$/\\1/p' /etc/login.defs 2>/dev/null | tail -n 1); \
     if [ -n \"$u\" ]; then chmod \"$(printf '%o' $((0777 & ~0$u)))\" \"$kp_h\"; fi";

/// `usermod` flags for what differs from the current account.
fn usermod_flags(
    a: &UserArgs,
    p: &Probe,
    cur: &Passwd,
    groups: &WantedGroups,
    primary_gid: u64,
) -> Vec<String> {
    let mut flags: Vec<String> = Vec::new();
    if let Some(uid) = a.uid {
        if uid != cur.uid {
            flags.push(format!("-u {uid}"));
            if a.non_unique {
                flags.push("-o".into());
            }
        }
    }
    if let Some((gname, gid)) = &groups.primary {
        if *gid != cur.gid {
            flags.push(format!("-g {}", quote(gname)));
        }
    }
    if a.groups.is_some() {
        flags.extend(supplementary_flags(a, p, groups, primary_gid));
    }
    if let Some(c) = &a.comment {
        if *c != cur.comment {
            flags.push(format!("-c {}", quote(c)));
        }
    }
    if let Some(h) = &a.home {
        if *h != cur.home {
            flags.push(format!("-d {}", quote(h)));
            if a.move_home {
                flags.push("-m".into());
            }
        }
    }
    if let Some(s) = &a.shell {
        if *s != cur.shell {
            flags.push(format!("-s {}", quote(s)));
        }
    }
    flags
}

/// `-G` (and `-a`) when the supplementary groups differ; the primary group does not count.
fn supplementary_flags(
    a: &UserArgs,
    p: &Probe,
    groups: &WantedGroups,
    primary_gid: u64,
) -> Vec<String> {
    let primary_name = p.group_name_of_gid(primary_gid).map(str::to_string);
    let not_primary = |g: &&String| Some(*g) != primary_name.as_ref();
    let current: Vec<&String> = p.member_of.iter().filter(not_primary).collect();
    let wanted: Vec<&String> = groups.supplementary.iter().filter(not_primary).collect();
    let missing = wanted.iter().any(|g| !current.contains(g));
    let extra = current.iter().any(|g| !wanted.contains(g));
    if a.groups.as_ref().is_some_and(Vec::is_empty) {
        return if !current.is_empty() && !a.append {
            vec!["-G ''".into()]
        } else {
            Vec::new()
        };
    }
    if !(missing || (extra && !a.append)) {
        return Vec::new();
    }
    let mut flags = Vec::new();
    if a.append {
        flags.push("-a".into());
    }
    let list: Vec<&str> = wanted.iter().map(|s| s.as_str()).collect();
    flags.push(format!("-G {}", quote(&list.join(","))));
    flags
}

/// The script applying `plan`: its commands under `set -e`, then `chpasswd -e` and the key
/// generation. Secrets travel on stdin (the key passphrase as the first line, then
/// `name:hash`), never in the command text.
pub fn apply(a: &UserArgs, plan: &AccountPlan) -> Plan {
    if plan.is_empty() {
        return Plan::NoChange;
    }
    let mut script = String::from("set -e\n");
    let key = a.ssh_key.as_ref().filter(|_| plan.generate_key);
    if key.is_some_and(|k| k.passphrase.is_some()) {
        script.push_str("IFS= read -r kp_pp\n");
    }
    for c in &plan.commands {
        script.push_str(c);
        script.push('\n');
    }
    if plan.set_password {
        script.push_str("chpasswd -e\n");
    }
    if let Some(k) = key {
        script.push_str(&keygen_script(a, k));
    }
    let mut stdin = String::new();
    if let Some(pp) = key.and_then(|k| k.passphrase.as_deref()) {
        stdin.push_str(pp);
        stdin.push('\n');
    }
    if plan.set_password {
        stdin.push_str(&format!(
            "{}:{}\n",
            a.name,
            a.password.as_deref().unwrap_or("")
        ));
    }
    Plan::script(script, (!stdin.is_empty()).then(|| stdin.into_bytes()))
}

impl Module for User {
    fn spec(&self) -> &'static Spec {
        &SPEC
    }
    fn run(&self, args: &Args<'_>, ctx: &mut ModuleCtx<'_>) -> Result<ModuleResult, ModuleError> {
        let a = UserArgs::from_args(args)?;
        let text = match probe_sections(ctx, &probe_script(&a))? {
            Ok(out) => out.stdout_str(),
            Err(out) => return Ok(failed_output("user: reading account state", &out)),
        };
        let probe = parse_probe(&text);
        let plan = match plan(&a, &probe) {
            Ok(p) => p,
            Err(msg) => return Ok(ModuleResult::failed(msg)),
        };
        // Commands carry no secrets; stderr of chpasswd does not echo the hash.
        let report = Report::command(format!("user {}", a.name));
        let res = finish_command(ctx, Outcome::new(apply(&a, &plan)), &report)?;
        if res.failed {
            return Ok(res);
        }
        Ok(report_account(&a, &probe, res))
    }
}

/// The result keys Ansible's user module returns: the generated (or existing) key, the account.
fn report_account(a: &UserArgs, probe: &Probe, mut res: ModuleResult) -> ModuleResult {
    let generated = res.stdout.clone().unwrap_or_default();
    for (k, v) in key_results(&generated) {
        res = res.set(k, v);
    }
    if let Some(existing) = &probe.ssh_key {
        for (k, v) in key_results(existing) {
            res = res.set(k, v);
        }
    }
    res = res
        .set("name", a.name.as_str())
        .set("state", if a.present { "present" } else { "absent" });
    if a.password.is_some() {
        res = res.set("password", "NOT_LOGGING_PASSWORD");
    }
    if !a.present {
        return if a.remove {
            res.set("remove", true)
        } else {
            res
        };
    }
    if let Some(cur) = &probe.passwd {
        res = res
            .set("uid", a.uid.unwrap_or(cur.uid))
            .set("home", a.home.clone().unwrap_or_else(|| cur.home.clone()))
            .set(
                "shell",
                a.shell.clone().unwrap_or_else(|| cur.shell.clone()),
            );
    }
    if let Some(g) = &a.groups {
        res = res.set("groups", g.join(","));
    }
    res.set("system", a.system)
        .set("create_home", a.create_home)
        .set("append", a.append)
}

#[cfg(test)]
mod tests {
    use super::super::testing::{args, ctx, out, parse_with, sh, FakeRemote};
    use super::*;
    use serde_json::json;

    fn parse(v: serde_json::Value) -> Result<UserArgs, ModuleError> {
        parse_with(&SPEC, v, UserArgs::from_args)
    }

    fn ua(v: serde_json::Value) -> UserArgs {
        parse(v).unwrap()
    }

    fn existing() -> Probe {
        Probe {
            passwd: Some(Passwd {
                uid: 1001,
                gid: 1001,
                comment: "Deploy".into(),
                home: "/home/deploy".into(),
                shell: "/bin/bash".into(),
            }),
            groups: vec![
                ("deploy".into(), 1001),
                ("sudo".into(), 27),
                ("adm".into(), 4),
                ("users".into(), 100),
            ],
            member_of: vec!["deploy".into(), "sudo".into()],
            shadow: Some("$6$abc$xyz".into()),
            home_exists: true,
            ssh_key: None,
        }
    }

    #[test]
    fn planner_table() {
        let none = Probe {
            groups: vec![("sudo".into(), 27), ("users".into(), 100)],
            ..Probe::default()
        };
        let cases: Vec<(serde_json::Value, Probe, Vec<&str>)> = vec![
            (
                json!({"name": "deploy", "shell": "/bin/bash", "groups": "sudo", "uid": 1001, "comment": "Deploy me"}),
                none.clone(),
                vec!["useradd -u 1001 -G sudo -c 'Deploy me' -s /bin/bash -m deploy"],
            ),
            (
                json!({"name": "svc", "system": true, "create_home": "no", "group": "users"}),
                none.clone(),
                vec!["useradd -g users -M -r svc"],
            ),
            // nothing to do
            (
                json!({"name": "deploy", "shell": "/bin/bash", "groups": ["sudo"], "uid": 1001}),
                existing(),
                vec![],
            ),
            // append adds only missing groups; extra groups are kept
            (
                json!({"name": "deploy", "groups": "sudo", "append": true}),
                existing(),
                vec![],
            ),
            (
                json!({"name": "deploy", "groups": "adm", "append": true}),
                existing(),
                vec!["usermod -a -G adm deploy"],
            ),
            // without append the list is exact
            (
                json!({"name": "deploy", "groups": "adm"}),
                existing(),
                vec!["usermod -G adm deploy"],
            ),
            (
                json!({"name": "deploy", "groups": ""}),
                existing(),
                vec!["usermod -G '' deploy"],
            ),
            (
                json!({"name": "deploy", "shell": "/bin/sh", "group": "users", "home": "/srv/d", "move_home": true}),
                existing(),
                vec!["usermod -g users -d /srv/d -m -s /bin/sh deploy"],
            ),
            (
                json!({"name": "deploy", "state": "absent", "remove": true}),
                existing(),
                vec!["userdel -r deploy"],
            ),
            (
                json!({"name": "gone", "state": "absent"}),
                none.clone(),
                vec![],
            ),
            (
                json!({"name": "deploy", "password_lock": true}),
                existing(),
                vec!["usermod -L deploy"],
            ),
        ];
        for (a, p, want) in cases {
            let got = plan(&ua(a.clone()), &p).unwrap();
            assert_eq!(got.commands, want, "{a}");
            assert!(!got.set_password);
        }
    }

    #[test]
    fn home_mode_follows_login_defs_umask() {
        let defs = std::fs::read_to_string("/etc/login.defs").unwrap_or_default();
        let umask = defs
            .lines()
            .filter_map(|l| l.strip_prefix("UMASK"))
            .filter_map(|v| u32::from_str_radix(v.trim(), 8).ok())
            .next_back();
        let d = tempfile::tempdir().unwrap();
        let h = d.path().join("home");
        std::fs::create_dir(&h).unwrap();
        let script = format!("kp_h='{}'; chmod 700 \"$kp_h\"; {HOME_MODE}", h.display());
        let ok = std::process::Command::new("sh")
            .arg("-c")
            .arg(&script)
            .status()
            .unwrap();
        assert!(ok.success());
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&h).unwrap().permissions().mode() & 0o7777;
        assert_eq!(mode, umask.map_or(0o700, |u| 0o777 & !u));
    }

    #[test]
    fn passwords_and_missing_homes() {
        let p = existing();
        let same = plan(&ua(json!({"name": "deploy", "password": "$6$abc$xyz"})), &p).unwrap();
        assert!(same.is_empty());
        let new = plan(&ua(json!({"name": "deploy", "password": "$6$new"})), &p).unwrap();
        assert!(new.set_password && new.commands.is_empty());
        let on_create = plan(
            &ua(json!({"name": "deploy", "password": "$6$new", "update_password": "on_create"})),
            &p,
        )
        .unwrap();
        assert!(on_create.is_empty());
        let mut nohome = existing();
        nohome.home_exists = false;
        let got = plan(&ua(json!({"name": "deploy"})), &nohome).unwrap();
        assert_eq!(got.commands.len(), 1);
        assert!(got.commands[0].starts_with("kp_h=/home/deploy; mkdir -p \"$kp_h\""));
        assert!(got.commands[0].contains("chown -R 1001:1001 \"$kp_h\""));
        let e = plan(&ua(json!({"name": "deploy", "groups": "nosuch"})), &p).unwrap_err();
        assert_eq!(e, "Group nosuch does not exist");
    }

    #[test]
    fn arguments_follow_ansible_and_errors_name_the_parameter() {
        // Ansible joins `groups` with commas and splits it again.
        let a = ua(json!({"user": "deploy", "groups": ["x", "y,z", 3]}));
        assert_eq!(a.name, "deploy");
        assert_eq!(a.groups.unwrap(), ["x", "y", "z", "3"]);
        assert_eq!(
            ua(json!({"name": "d", "groups": "a, b,c"})).groups.unwrap(),
            ["a", "b", "c"]
        );
        assert_eq!(
            ua(json!({"name": "d", "groups": ""})).groups.unwrap(),
            Vec::<String>::new()
        );
        let a = ua(json!({"name": "d", "generate_ssh_key": true}));
        assert_eq!(a.ssh_key.unwrap().file, ".ssh/id_rsa");
        for (v, needle) in [
            (json!({"name": "d", "state": "sideways"}), "'state'"),
            (json!({"name": "d", "append": "maybe"}), "'append'"),
            (json!({"name": "d", "uid": "-1"}), "'uid'"),
            (json!({"uid": 5}), "missing required parameter 'name'"),
            (
                json!({"name": "d", "expires": 1.5}),
                "'expires' is not supported",
            ),
            (json!({"name": "d", "local": true}), "only local=false"),
        ] {
            let e = parse(v.clone()).unwrap_err().to_string();
            assert!(e.starts_with("user: ") && e.contains(needle), "{v}: {e}");
        }
    }

    #[test]
    fn parses_probe() {
        let out = "\n@@KP:passwd\ndeploy:x:1001:1001:Deploy,,,:/home/deploy:/bin/bash\n\
\n@@KP:groups\ndeploy:x:1001:\nsudo:x:27:deploy\n\n@@KP:member_of\ndeploy sudo\n\
\n@@KP:shadow\ndeploy:$6$abc:19000:0:99999:7:::\n\n@@KP:home\nyes\n\n@@KP:end\n";
        let p = parse_probe(out);
        assert_eq!(p.passwd.as_ref().unwrap().comment, "Deploy,,,");
        assert_eq!(
            p.groups,
            vec![("deploy".to_string(), 1001), ("sudo".to_string(), 27)]
        );
        assert_eq!(p.member_of, ["deploy", "sudo"]);
        assert_eq!(p.shadow.as_deref(), Some("$6$abc"));
        assert!(p.home_exists);
    }

    #[test]
    fn probe_script_runs_locally() {
        let a = ua(json!({"name": "root", "groups": "root"}));
        let p = parse_probe(&sh(&probe_script(&a), None).stdout_str());
        assert_eq!(p.passwd.as_ref().map(|x| x.uid), Some(0));
        assert!(p.home_exists);
        assert!(p.member_of.contains(&"root".to_string()));
    }

    #[test]
    fn ssh_key_generated_once_with_real_sh() {
        if std::process::Command::new("ssh-keygen")
            .arg("-?")
            .output()
            .is_err()
        {
            return;
        }
        let me = String::from_utf8(
            std::process::Command::new("id")
                .arg("-un")
                .output()
                .unwrap()
                .stdout,
        )
        .unwrap();
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("keys/id_ed25519").display().to_string();
        let a = ua(
            json!({"name": me.trim(), "generate_ssh_key": true, "ssh_key_type": "ed25519",
                          "ssh_key_file": file, "ssh_key_comment": "kp test", "ssh_key_passphrase": "pp"}),
        );
        let k = a.ssh_key.clone().unwrap();
        let run_sh = |script: String, stdin: &str| sh(&script, Some(stdin.as_bytes())).stdout_str();
        let p = parse_probe(&run_sh(probe_script(&a), ""));
        assert!(p.ssh_key.is_none());
        assert!(plan(&a, &p).unwrap().generate_key);
        let out = run_sh(
            format!("IFS= read -r kp_pp\n{}", keygen_script(&a, &k)),
            "pp\n",
        );
        let keys: std::collections::HashMap<_, _> = key_results(&out).into_iter().collect();
        assert_eq!(keys["ssh_key_file"], file);
        assert!(
            keys["ssh_public_key"].starts_with("ssh-ed25519 ")
                && keys["ssh_public_key"].ends_with(" kp test")
        );
        assert!(keys["ssh_fingerprint"].contains("SHA256:"));
        // The passphrase works: ssh-keygen -y with it recovers the public key.
        let o = std::process::Command::new("ssh-keygen")
            .args(["-y", "-P", "pp", "-f", &file])
            .output()
            .unwrap();
        assert!(o.status.success());
        let p = parse_probe(&run_sh(probe_script(&a), ""));
        assert!(p.ssh_key.is_some());
        assert!(!plan(&a, &p).unwrap().generate_key);
    }

    #[test]
    fn password_goes_through_stdin_only() {
        let probe = "\n@@KP:passwd\n\n@@KP:groups\n\n@@KP:member_of\n\n@@KP:shadow\n\n@@KP:home\n\n@@KP:end\n";
        let mut r = FakeRemote::new(vec![out(0, probe), out(0, "")]);
        let res = User
            .execute(
                &args(json!({"name": "alice", "password": "$6$secret"})),
                &mut ctx(&mut r, false, false, vec![]),
            )
            .unwrap();
        assert!(res.changed, "{res:?}");
        assert!(!r.seen.iter().any(|(c, _)| c.contains("secret")));
        assert_eq!(r.seen[1].1.as_deref(), Some(&b"alice:$6$secret\n"[..]));
        assert_eq!(res.data["password"], "NOT_LOGGING_PASSWORD");
        // check mode: probe only
        let mut r = FakeRemote::new(vec![out(0, probe)]);
        let res = User
            .execute(
                &args(json!({"name": "alice"})),
                &mut ctx(&mut r, true, false, vec![]),
            )
            .unwrap();
        assert!(res.changed);
        assert_eq!(r.seen.len(), 1);
    }

    #[test]
    fn a_failed_apply_names_the_user_and_reports_no_account_keys() {
        let probe = "\n@@KP:passwd\n\n@@KP:groups\n\n@@KP:member_of\n\n@@KP:home\n\n@@KP:end\n";
        let failed = crate::ssh::ExecOutput {
            rc: 9,
            stdout: Vec::new(),
            stderr: b"useradd: user 'alice' already exists\n".to_vec(),
        };
        let mut r = FakeRemote::new(vec![out(0, probe), failed]);
        let res = User
            .execute(
                &args(json!({"name": "alice"})),
                &mut ctx(&mut r, false, false, vec![]),
            )
            .unwrap();
        assert_eq!(
            res.msg.as_deref(),
            Some("user alice failed (rc=9): useradd: user 'alice' already exists")
        );
        assert!(res.failed && res.data.is_empty(), "{res:?}");
        assert_eq!(r.seen[1].0, "set -e\nuseradd -m alice\n");
        assert_eq!(r.seen[1].1, None);
    }
}
