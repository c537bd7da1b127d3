//! Door validation: name, sequence, timing, TCP flags, allowlist, what the door runs, and
//! doors whose sequences overlap.

use std::collections::HashSet;
use std::net::IpAddr;
use std::time::Duration;

use ipnet::IpNet;
use toml::Spanned;

use super::Validator;
use crate::config::raw::{KeyFiles, PortItem, RawDoor};
use crate::config::{Action, Allow, Door, PlaybookAction, SpaSettings};
use crate::knock::flags::TcpFlagRule;
use crate::knock::port::{PortSpec, Proto};
use crate::knock::sequence::SequenceTracker;
use crate::knock::wire::{tcp_flags, Knock};
use crate::value::{Value, Vars};

impl Validator<'_> {
    pub(super) fn door(&mut self, d: RawDoor, names: &mut HashSet<String>) -> Option<Door> {
        let before = self.problems.len();
        let name = d.name.get_ref().clone();
        if name.is_empty()
            || !name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
        {
            self.problem(
                &d.name,
                format!("door name '{name}' must be non-empty letters, digits, '-', '_' or '.'"),
            );
        } else if !names.insert(name.clone()) {
            self.problem(&d.name, format!("duplicate door name '{name}'"));
        }

        let mut sequence = Vec::new();
        let spa = self.spa(&d, &name);
        match (&d.sequence, &d.spa_key_file) {
            (Some(seq), Some(_)) => self.problem(
                seq,
                format!("door '{name}': sequence and spa_key_file are mutually exclusive (a door is either a knock sequence or an SPA door)"),
            ),
            (None, None) => self.problem(
                &d.name,
                format!("door '{name}' needs a sequence (a knockd-style port sequence) or spa_key_file (Single Packet Authorization; knockplay keygen FILE makes a key)"),
            ),
            (None, Some(_)) => {
                for (what, set) in [
                    ("seq_timeout", d.seq_timeout.as_ref().map(|s| s.span())),
                    ("tcp_flags", d.tcp_flags.as_ref().map(|s| s.span())),
                ] {
                    if let Some(span) = set {
                        self.problem_at(span.start, format!("door '{name}': {what} applies to sequence doors only"));
                    }
                }
            }
            (Some(seq), None) => {
                for (what, set) in [
                    ("spa_port", d.spa_port.as_ref().map(|s| s.span())),
                    ("spa_window", d.spa_window.as_ref().map(|s| s.span())),
                ] {
                    if let Some(span) = set {
                        self.problem_at(span.start, format!("door '{name}': {what} applies to SPA doors only (set spa_key_file)"));
                    }
                }
                let items = seq.get_ref();
                if items.is_empty() || items.len() > 32 {
                    self.problem(
                        seq,
                        format!(
                            "door '{name}': sequence needs 1 to 32 ports, has {}",
                            items.len()
                        ),
                    );
                }
                for item in items {
                    let parsed = match item.get_ref() {
                        PortItem::Number(n) => PortSpec::from_number(*n, Proto::Tcp),
                        PortItem::Text(t) => t.parse(),
                    };
                    match parsed {
                        Ok(p) => sequence.push(p),
                        Err(e) => self.problem(item, format!("door '{name}': {e}")),
                    }
                }
            }
        }

        let seq_timeout = self.seconds(&d.seq_timeout, "seq_timeout", 3600.0, 5.0);
        if seq_timeout.is_zero() {
            if let Some(s) = &d.seq_timeout {
                self.problem(s, "seq_timeout must be above 0");
            }
        }
        let tcp_flags = match &d.tcp_flags {
            None => TcpFlagRule::default(),
            Some(s) => s.get_ref().parse().unwrap_or_else(|e| {
                self.problem(s, format!("door '{name}': tcp_flags: {e}"));
                TcpFlagRule::default()
            }),
        };

        let allow = match &d.allow {
            None => {
                self.problem(
                    &d.name,
                    format!("door '{name}' has no allowlist: add allow = [\"10.0.0.0/8\", ...] or, to accept anyone, allow = [\"any\"]"),
                );
                Allow::Nets(Vec::new())
            }
            Some(list) => self.allow(list, &name),
        };

        let action = self.action(&d, &name);
        let cooldown = self.seconds(&d.cooldown, "cooldown", 30.0 * 86400.0, 60.0);

        if self.problems.len() > before {
            return None;
        }
        Some(Door {
            name,
            sequence,
            seq_timeout,
            tcp_flags,
            allow,
            action: action?,
            cooldown,
            spa: if d.spa_key_file.is_some() { spa } else { None },
        })
    }

    /// `spa_key_file` (one or two readable, private key files), `spa_port`, `spa_window`.
    fn spa(&mut self, d: &RawDoor, name: &str) -> Option<SpaSettings> {
        let files = d.spa_key_file.as_ref()?;
        let list: Vec<String> = match files.get_ref() {
            KeyFiles::One(f) => vec![f.clone()],
            KeyFiles::Several(v) => v.clone(),
        };
        if list.is_empty() || list.len() > 2 {
            self.problem(
                files,
                format!("door '{name}': spa_key_file names one key, or two during a rotation"),
            );
            return None;
        }
        let mut keys = Vec::new();
        let mut key_files = Vec::new();
        for f in &list {
            let path = self.path(f);
            match crate::knock::spa::read_key_file(&path) {
                Ok(k) => keys.push(k),
                Err(e) => self.problem(files, format!("door '{name}': spa_key_file: {e}")),
            }
            key_files.push(path);
        }
        let port = match &d.spa_port {
            None => crate::knock::spa::DEFAULT_PORT,
            Some(p) => match u16::try_from(*p.get_ref()) {
                Ok(n) if n > 0 => n,
                _ => {
                    self.problem(p, format!("door '{name}': spa_port must be 1-65535"));
                    crate::knock::spa::DEFAULT_PORT
                }
            },
        };
        let window = self.seconds(
            &d.spa_window,
            "spa_window",
            3600.0,
            crate::knock::spa::DEFAULT_WINDOW_SECS as f64,
        );
        if window < Duration::from_secs(1) {
            if let Some(w) = &d.spa_window {
                self.problem(
                    w,
                    format!("door '{name}': spa_window must be at least 1 second"),
                );
            }
        }
        (keys.len() == list.len()).then_some(SpaSettings {
            key_files,
            keys,
            port,
            window,
        })
    }

    fn allow(&mut self, list: &Spanned<Vec<Spanned<String>>>, name: &str) -> Allow {
        if list.get_ref().is_empty() {
            self.problem(list, format!("door '{name}': allow is empty; nobody could open it (use [\"any\"] to allow everyone)"));
            return Allow::Nets(Vec::new());
        }
        let any = list.get_ref().iter().any(|s| s.get_ref() == "any");
        if any {
            if list.get_ref().len() > 1 {
                self.problem(
                    list,
                    format!("door '{name}': \"any\" cannot be combined with other entries"),
                );
            }
            return Allow::Any;
        }
        let mut nets = Vec::new();
        for s in list.get_ref() {
            let t = s.get_ref().trim();
            let net = t
                .parse::<IpNet>()
                .or_else(|_| t.parse::<IpAddr>().map(IpNet::from));
            match net {
                Ok(n) => nets.push(n),
                Err(_) => self.problem(
                    s,
                    format!("door '{name}': '{t}' is not an address or CIDR (like 10.0.0.0/8)"),
                ),
            }
        }
        Allow::Nets(nets)
    }

    /// What the door runs: a playbook or a knockd-style command, not both.
    fn action(&mut self, d: &RawDoor, name: &str) -> Option<Action> {
        match (&d.playbook, &d.command) {
            (Some(p), Some(_)) => {
                self.problem(
                    p,
                    format!("door '{name}': set either playbook or command, not both"),
                );
                None
            }
            (None, None) => {
                self.problem(
                    &d.name,
                    format!("door '{name}': needs a playbook (or a knockd-style command)"),
                );
                None
            }
            (None, Some(c)) => Some(self.command_action(d, c, name)),
            (Some(p), None) => Some(self.playbook_action(d, p, name)),
        }
    }

    /// A command door: the playbook-only keys are mistakes there.
    fn command_action(&mut self, d: &RawDoor, c: &Spanned<String>, name: &str) -> Action {
        let playbook_only: [(&str, Option<std::ops::Range<usize>>); 6] = [
            (
                "inventory_vars",
                d.inventory_vars.as_ref().map(|s| s.span()),
            ),
            ("groups", d.groups.as_ref().map(|s| s.span())),
            ("user", d.user.as_ref().map(|s| s.span())),
            ("private_key", d.private_key.as_ref().map(|s| s.span())),
            ("port", d.port.as_ref().map(|s| s.span())),
            ("become", d.become_.as_ref().map(|s| s.span())),
        ];
        for (key, span) in playbook_only {
            if let Some(span) = span {
                self.problem_at(
                    span.start,
                    format!("door '{name}': {key} only applies to a playbook, not to a command"),
                );
            }
        }
        if c.get_ref().trim().is_empty() {
            self.problem(c, format!("door '{name}': command is empty"));
        }
        Action::Command(c.get_ref().clone())
    }

    /// A playbook door: the playbook must exist and parse now, the key must exist.
    fn playbook_action(&mut self, d: &RawDoor, p: &Spanned<String>, name: &str) -> Action {
        let playbook = self.path(p.get_ref());
        if !playbook.is_file() {
            self.problem(
                p,
                format!("door '{name}': playbook {} not found", playbook.display()),
            );
        } else if let Err(e) = crate::ansible_cfg::role_search_beside(&playbook)
            .map_err(|e| e.to_string())
            .and_then(|s| {
                crate::playbook::parse::load_playbook_with(&playbook, &s).map_err(|e| e.to_string())
            })
        {
            // Found now, not at 3 a.m. when the first host knocks. (Templates are checked
            // when a run renders them.)
            self.problem(
                p,
                format!("door '{name}': the playbook does not parse: {e}"),
            );
        }
        let private_key = d.private_key.as_ref().map(|k| {
            let key = self.path(k.get_ref());
            if !key.is_file() {
                self.problem(
                    k,
                    format!("door '{name}': private_key {} not found", key.display()),
                );
            }
            key
        });
        let inventory_vars = match &d.inventory_vars {
            None => Vars::new(),
            Some(t) => match serde_json::to_value(t.get_ref()) {
                Ok(Value::Object(m)) => m,
                _ => {
                    self.problem(
                        t,
                        format!("door '{name}': inventory_vars must be a table of values"),
                    );
                    Vars::new()
                }
            },
        };
        let port = self.int(&d.port, "port", 1..=65535, 22) as u16;
        Action::Playbook(PlaybookAction {
            playbook,
            inventory_vars,
            groups: d
                .groups
                .as_ref()
                .map(|g| g.get_ref().clone())
                .unwrap_or_default(),
            user: d
                .user
                .as_ref()
                .map(|u| u.get_ref().clone())
                .unwrap_or_else(|| "root".into()),
            private_key,
            port,
            become_: d.become_.as_ref().map(|b| *b.get_ref()).unwrap_or(false),
        })
    }

    /// Two doors overlap when knocking one's exact sequence also opens the other
    /// (identical sequences, prefixes, or a sequence hidden inside another).
    pub(super) fn overlaps(&mut self, doors: &[Door], spans: &[std::ops::Range<usize>]) {
        for (i, a) in doors.iter().enumerate() {
            for (j, b) in doors.iter().enumerate() {
                if i == j || (j < i && opens(a, b) && opens(b, a)) {
                    continue;
                }
                if opens(a, b) {
                    self.problem_at(
                        spans[j].start,
                        format!(
                            "door '{}' overlaps door '{}': knocking '{}' ({}) also opens '{}'",
                            b.name,
                            a.name,
                            b.name,
                            b.sequence
                                .iter()
                                .map(|p| p.to_string())
                                .collect::<Vec<_>>()
                                .join(" "),
                            a.name
                        ),
                    );
                }
            }
        }
    }
}

/// Whether knocking `b`'s sequence (as the stock client sends it: SYNs and datagrams) opens `a`.
fn opens(a: &Door, b: &Door) -> bool {
    let mut t = SequenceTracker::new(vec![a.tracker_sequence()], 4);
    let now = std::time::Instant::now();
    let src = IpAddr::from([192, 0, 2, 1]);
    b.sequence.iter().any(|p| {
        let k = Knock {
            source: src,
            destination: src,
            port: p.port,
            proto: p.proto,
            tcp_flags: if p.proto == Proto::Tcp {
                tcp_flags::SYN
            } else {
                0
            },
        };
        t.observe(&k, now).is_some()
    })
}
