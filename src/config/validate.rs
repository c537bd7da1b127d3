//! knock.toml validation: the raw file → [`ListenConfig`], with every problem found (not just
//! the first) and its line and column. Doors are checked in `door`.

mod door;

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::time::Duration;

use toml::Spanned;

use super::raw::{RawConfig, RawHistory, RawListener, RawRunner, Seconds};
use super::{
    HistorySettings, HostKeyChecking, ListenConfig, ListenerSettings, Problem, RunnerSettings,
    SystemInfo,
};
use crate::history::HistoryUrl;

/// Parses and validates knock.toml text; relative paths are resolved against `path`'s directory.
pub(super) fn parse(
    text: &str,
    path: &Path,
    system: &SystemInfo,
) -> Result<ListenConfig, Vec<Problem>> {
    let raw: RawConfig = toml::from_str(text).map_err(|e| {
        let (line, col) = e.span().map(|s| line_col(text, s.start)).unwrap_or((1, 1));
        vec![Problem {
            line,
            col,
            message: e.message().trim().to_string(),
        }]
    })?;
    let base = path.parent().map(Path::to_path_buf).unwrap_or_default();
    let mut v = Validator {
        text,
        problems: Vec::new(),
        base,
    };
    let config = v.config(raw, path, system);
    if v.problems.is_empty() {
        Ok(config)
    } else {
        v.problems.sort_by_key(|p| (p.line, p.col));
        Err(v.problems)
    }
}

/// 1-based line and column of a byte offset.
fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let before = text.get(..offset.min(text.len())).unwrap_or(text);
    let line = before.matches('\n').count() + 1;
    let col = before
        .rsplit('\n')
        .next()
        .map(|l| l.chars().count())
        .unwrap_or(0)
        + 1;
    (line, col)
}

/// Collects every problem while turning the raw file into the validated model.
struct Validator<'a> {
    text: &'a str,
    problems: Vec<Problem>,
    /// The config file's directory: relative paths in it are relative to this.
    base: PathBuf,
}

const DEFAULT_RECEIVE_BUFFER: usize = 8 << 20;

impl Validator<'_> {
    fn problem<T>(&mut self, at: &Spanned<T>, message: impl Into<String>) {
        self.problem_at(at.span().start, message);
    }

    /// A problem at byte `offset` of the file.
    fn problem_at(&mut self, offset: usize, message: impl Into<String>) {
        let (line, col) = line_col(self.text, offset);
        self.problems.push(Problem {
            line,
            col,
            message: message.into(),
        });
    }

    /// A problem with the file as a whole (reported at 1:1).
    fn file_problem(&mut self, message: &str) {
        self.problems.push(Problem {
            line: 1,
            col: 1,
            message: message.into(),
        });
    }

    fn int(
        &mut self,
        v: &Option<Spanned<i64>>,
        name: &str,
        range: std::ops::RangeInclusive<i64>,
        default: i64,
    ) -> i64 {
        match v {
            None => default,
            Some(s) if range.contains(s.get_ref()) => *s.get_ref(),
            Some(s) => {
                self.problem(
                    s,
                    format!(
                        "{name} = {} out of range ({}-{})",
                        s.get_ref(),
                        range.start(),
                        range.end()
                    ),
                );
                default
            }
        }
    }

    fn seconds(
        &mut self,
        v: &Option<Spanned<Seconds>>,
        name: &str,
        max: f64,
        default: f64,
    ) -> Duration {
        let secs = match v {
            None => default,
            Some(s) => {
                let f = s.get_ref().as_f64();
                if f.is_finite() && (0.0..=max).contains(&f) {
                    f
                } else {
                    self.problem(s, format!("{name} = {f} out of range (0-{max} seconds)"));
                    default
                }
            }
        };
        Duration::from_secs_f64(secs)
    }

    fn path(&self, p: &str) -> PathBuf {
        let p = PathBuf::from(p);
        if p.is_absolute() {
            p
        } else {
            self.base.join(p)
        }
    }

    fn config(&mut self, raw: RawConfig, path: &Path, system: &SystemInfo) -> ListenConfig {
        let listener = self.listener(raw.listener, system);
        let runner = self.runner(raw.runner);
        let history = self.history(raw.history, &runner.state_dir);
        let mut doors = Vec::new();
        let mut names: HashSet<String> = HashSet::new();
        let mut door_spans = Vec::new();
        for d in raw.door {
            let span = d.span();
            if let Some(door) = self.door(d.into_inner(), &mut names) {
                doors.push(door);
                door_spans.push(span);
            }
        }
        if doors.is_empty() && self.problems.is_empty() {
            self.file_problem("no [[door]] defined: the listener would do nothing");
        }
        self.overlaps(&doors, &door_spans);
        ListenConfig {
            source: path.to_path_buf(),
            listener,
            runner,
            history,
            doors,
        }
    }

    fn history(&mut self, raw: Option<RawHistory>, state_dir: &Path) -> HistorySettings {
        let raw = raw.unwrap_or_default();
        let mut h = HistorySettings::default_for(state_dir);
        if let Some(u) = &raw.url {
            match HistoryUrl::parse(u.get_ref(), &self.base) {
                Ok(url) => h.url = url,
                Err(e) => self.problem(u, format!("[history] url: {e}")),
            }
        }
        h.lease = self.seconds(&raw.lease, "lease", 3600.0, h.lease.as_secs_f64());
        if h.lease < Duration::from_secs(1) {
            if let Some(l) = &raw.lease {
                self.problem(l, "lease must be at least 1 second");
            }
            h.lease = Duration::from_secs(1);
        }
        if let Some(id) = &raw.listener_id {
            let ok = !id.get_ref().is_empty()
                && id.get_ref().len() <= 128
                && id.get_ref().chars().all(|c| c.is_ascii_graphic());
            if ok {
                h.listener_id = id.get_ref().clone();
            } else {
                self.problem(id, "listener_id: 1 to 128 visible ASCII characters");
            }
        }
        h.spool_limit = self.int(
            &raw.spool_rows,
            "spool_rows",
            1..=10_000_000,
            h.spool_limit as i64,
        ) as usize;
        h
    }

    fn listener(&mut self, raw: Option<RawListener>, system: &SystemInfo) -> ListenerSettings {
        let Some(raw) = raw else {
            return ListenerSettings {
                interfaces: self.default_interfaces(system),
                receive_buffer: DEFAULT_RECEIVE_BUFFER,
                max_attempts: 100_000,
                history_failed_per_second: 20,
                history_retention_days: 90,
                metrics: None,
            };
        };
        let interfaces = match &raw.interfaces {
            Some(list) if !list.is_empty() => {
                let mut out = Vec::new();
                for i in list {
                    if !system.interfaces.iter().any(|n| n == i.get_ref()) {
                        let known = system.interfaces.join(", ");
                        self.problem(
                            i,
                            format!(
                                "unknown interface '{}' (this machine has: {known})",
                                i.get_ref()
                            ),
                        );
                    } else if !out.contains(i.get_ref()) {
                        out.push(i.get_ref().clone());
                    }
                }
                out
            }
            _ => self.default_interfaces(system),
        };
        let receive_buffer = match &raw.receive_buffer {
            None => DEFAULT_RECEIVE_BUFFER,
            Some(s) => match s.get_ref().bytes() {
                Ok(b) if (64 * 1024..=1 << 30).contains(&b) => b as usize,
                Ok(b) => {
                    self.problem(
                        s,
                        format!("receive_buffer = {b} bytes out of range (64KiB-1GiB)"),
                    );
                    DEFAULT_RECEIVE_BUFFER
                }
                Err(e) => {
                    self.problem(s, format!("receive_buffer: {e}"));
                    DEFAULT_RECEIVE_BUFFER
                }
            },
        };
        ListenerSettings {
            interfaces,
            receive_buffer,
            max_attempts: self.int(&raw.max_attempts, "max_attempts", 1..=10_000_000, 100_000)
                as usize,
            history_failed_per_second: self.int(
                &raw.history_failed_per_second,
                "history_failed_per_second",
                0..=100_000,
                20,
            ) as u32,
            history_retention_days: self.int(
                &raw.history_retention,
                "history_retention",
                0..=36_500,
                90,
            ) as u32,
            metrics: self.metrics_address(&raw.metrics),
        }
    }

    /// `metrics = "127.0.0.1:9464"`: an IP address and a port (not 0), `[v6]:port` for IPv6.
    fn metrics_address(&mut self, v: &Option<Spanned<String>>) -> Option<std::net::SocketAddr> {
        let s = v.as_ref()?;
        match s.get_ref().trim().parse::<std::net::SocketAddr>() {
            Ok(a) if a.port() != 0 => Some(a),
            Ok(_) => {
                self.problem(s, "metrics: port 0 is not a fixed port; choose one (9464 is Prometheus' usual for exporters like this)");
                None
            }
            Err(_) => {
                self.problem(
                    s,
                    format!(
                        "metrics = '{}': expected an IP address and port like \"127.0.0.1:9464\" or \"[::1]:9464\"",
                        s.get_ref()
                    ),
                );
                None
            }
        }
    }

    fn default_interfaces(&mut self, system: &SystemInfo) -> Vec<String> {
        if system.default_interfaces.is_empty() {
            self.file_problem(
                "no default route to take the interface from: set [listener] interfaces",
            );
        }
        system.default_interfaces.clone()
    }

    fn runner(&mut self, raw: Option<RawRunner>) -> RunnerSettings {
        let raw = raw.unwrap_or_default();
        let host_key_checking = match &raw.host_key_checking {
            None => HostKeyChecking::AcceptNew,
            Some(s) => match s.get_ref().as_str() {
                "accept-new" => HostKeyChecking::AcceptNew,
                "strict" | "yes" => HostKeyChecking::Strict,
                "off" | "no" => HostKeyChecking::Off,
                other => {
                    self.problem(
                        s,
                        format!(
                            "host_key_checking = '{other}': expected accept-new, strict or off"
                        ),
                    );
                    HostKeyChecking::AcceptNew
                }
            },
        };
        RunnerSettings {
            max_concurrent_runs: self.int(
                &raw.max_concurrent_runs,
                "max_concurrent_runs",
                1..=1024,
                10,
            ) as usize,
            queue_limit: self.int(&raw.queue_limit, "queue_limit", 0..=1_000_000, 1000) as usize,
            ssh_wait: self.seconds(&raw.ssh_wait, "ssh_wait", 3600.0, 120.0),
            grace_period: self.seconds(&raw.grace_period, "grace_period", 3600.0, 30.0),
            command_timeout: self.seconds(&raw.command_timeout, "command_timeout", 86400.0, 600.0),
            task_timeout: Some(self.seconds(&raw.task_timeout, "task_timeout", 86400.0, 1800.0))
                .filter(|d| !d.is_zero()),
            host_key_checking,
            log_dir: raw
                .log_dir
                .map(|p| self.path(p.get_ref()))
                .unwrap_or_else(|| "/var/log/knockplay".into()),
            state_dir: raw
                .state_dir
                .map(|p| self.path(p.get_ref()))
                .unwrap_or_else(|| "/var/lib/knockplay".into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::line_col;

    #[test]
    fn offsets_to_line_and_column() {
        let text = "a = 1\n[x]\nbé = 2\n";
        for (offset, want) in [
            (0, (1, 1)),
            (4, (1, 5)),
            (6, (2, 1)),
            (13, (3, 3)),
            (999, (4, 1)),
        ] {
            assert_eq!(line_col(text, offset), want, "offset {offset}");
        }
    }
}
