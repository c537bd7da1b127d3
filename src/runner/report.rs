//! Output of a run: Ansible-style lines on the terminal, per-host log files, the JSON report, and
//! the PLAY RECAP. All hosts' threads report here; one mutex keeps lines whole.
//!
//! Every piece of text that can come from a target (host names, loop items, results, diffs, notes)
//! passes through `escape` on its way into a line, so a target cannot rewrite the terminal.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use serde_json::json;

use super::escape;
use super::progress::{Progress, StatusWriter};
use crate::counters::RunCounts;
use crate::modules::FileDiff;
use crate::value::Value;

/// How a task ended on one host.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Ok,
    Changed,
    Skipped,
    Failed,
    Unreachable,
}

impl Status {
    fn word(self) -> &'static str {
        match self {
            Status::Ok => "ok",
            Status::Changed => "changed",
            Status::Skipped => "skipping",
            Status::Failed => "fatal",
            Status::Unreachable => "fatal",
        }
    }
    fn color(self) -> &'static str {
        match self {
            Status::Ok => "\x1b[0;32m",
            Status::Changed => "\x1b[0;33m",
            Status::Skipped => "\x1b[0;36m",
            Status::Failed | Status::Unreachable => "\x1b[0;31m",
        }
    }
}

/// One line of output about one host and one task (or one loop item).
#[derive(Debug, Clone)]
pub struct HostLine<'a> {
    pub host: &'a str,
    pub task: &'a str,
    pub status: Status,
    /// Loop item label, for `(item=...)`.
    pub item: Option<String>,
    /// The result as registered (printed for failures, debug, and with -v).
    pub result: &'a Value,
    pub diff: &'a [FileDiff],
    pub ignored: bool,
    /// Print the result even without -v (debug).
    pub show_result: bool,
    pub is_item: bool,
}

/// Where output goes and how much of it.
#[derive(Clone)]
pub struct ReportOptions {
    /// Human-readable output on stdout (false with --json).
    pub human: bool,
    pub verbosity: u8,
    pub show_diff: bool,
    pub color: bool,
    pub log_dir: Option<PathBuf>,
    /// Appended to host names for log file names (the listener adds a timestamp).
    pub log_suffix: String,
    /// Write the output here instead of stdout (tests).
    pub capture: Option<Arc<Mutex<Vec<u8>>>>,
    /// Write the output to this file instead of stdout (the listener: one file per run).
    pub log_file: Option<PathBuf>,
    /// A live status line under the output (`run` on a terminal, unless `--no-progress`).
    pub progress: bool,
}

/// A `Write` into a shared buffer.
struct SharedBuf(Arc<Mutex<Vec<u8>>>);

impl Write for SharedBuf {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl ReportOptions {
    pub fn for_terminal(verbosity: u8, show_diff: bool) -> Self {
        ReportOptions {
            human: true,
            verbosity,
            show_diff,
            color: std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none(),
            log_dir: None,
            log_suffix: String::new(),
            capture: None,
            log_file: None,
            progress: std::io::stdout().is_terminal(),
        }
    }
}

struct Inner {
    last_header: Option<String>,
    /// Where the task whose header was printed last is defined (two tasks may share a name).
    last_task_at: Option<String>,
    logs: BTreeMap<String, Option<File>>,
    json_plays: Vec<Value>,
    stats: BTreeMap<String, RunCounts>,
    out: StatusWriter,
    /// The task whose header is printed is a notified handler.
    handler: bool,
}

/// Collects and prints everything about a run.
pub struct Reporter {
    opts: ReportOptions,
    inner: Mutex<Inner>,
    /// The live status line, when shown.
    progress: Option<Progress>,
}

const WIDTH: usize = 79;

/// `TASK [name] ****…` like Ansible's banner (the name stays on its line).
pub fn banner(msg: &str) -> String {
    let msg = escape::line(msg);
    let stars = WIDTH.saturating_sub(msg.len()).max(3);
    format!("\n{msg} {}", "*".repeat(stars))
}

/// Serialize a result the way Ansible prints it (keys sorted), with no raw control characters.
/// What Ansible shows of a `debug` result: with `msg`, only the message (and exception,
/// warnings, deprecations); with `var`, everything but its bookkeeping keys.
fn debug_shown(v: &Value) -> Value {
    let Value::Object(m) = v else {
        return v.clone();
    };
    let keep = |k: &str| {
        if m.contains_key("msg") {
            ["msg", "exception", "warnings", "deprecations"].contains(&k) || k.starts_with('_')
        } else {
            !["changed", "failed", "skipped", "invocation", "skip_reason"].contains(&k)
        }
    };
    Value::Object(
        m.iter()
            .filter(|(k, _)| keep(k))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect(),
    )
}

fn result_json(v: &Value, pretty: bool) -> String {
    escape::json(&raw_result_json(v, pretty)).into_owned()
}

fn raw_result_json(v: &Value, pretty: bool) -> String {
    fn sorted(v: &Value) -> Value {
        match v {
            Value::Object(m) => {
                let b: BTreeMap<&String, Value> = m.iter().map(|(k, v)| (k, sorted(v))).collect();
                serde_json::to_value(b).unwrap_or(Value::Null)
            }
            Value::Array(a) => Value::Array(a.iter().map(sorted).collect()),
            other => other.clone(),
        }
    }
    let s = sorted(v);
    if pretty {
        // Ansible's debug output is indented by 4.
        let mut buf = Vec::new();
        let fmt = serde_json::ser::PrettyFormatter::with_indent(b"    ");
        let mut ser = serde_json::Serializer::with_formatter(&mut buf, fmt);
        if serde::Serialize::serialize(&s, &mut ser).is_err() {
            return s.to_string();
        }
        String::from_utf8_lossy(&buf).into_owned()
    } else {
        s.to_string()
    }
}

/// A unified diff of one file (the files' bytes come from the target: escaped).
pub fn unified_diff(d: &FileDiff) -> String {
    let diff = similar::TextDiff::from_lines(&d.before, &d.after);
    let text = diff
        .unified_diff()
        .context_radius(3)
        .header(
            &format!("before: {}", escape::line(&d.path)),
            &format!("after: {}", escape::line(&d.path)),
        )
        .to_string();
    escape::text(&text).into_owned()
}

impl Reporter {
    pub fn new(opts: ReportOptions) -> Self {
        let out: Box<dyn Write + Send> = match (&opts.capture, &opts.log_file) {
            (Some(buf), _) => Box::new(SharedBuf(buf.clone())),
            (None, Some(path)) => match crate::private_fs::append(path) {
                Ok(f) => Box::new(f),
                Err(e) => {
                    tracing::error!("cannot open run log {}: {e}", path.display());
                    Box::new(std::io::sink())
                }
            },
            (None, None) => Box::new(std::io::stdout()),
        };
        Self::with_writer(opts, out)
    }

    pub fn with_writer(opts: ReportOptions, out: Box<dyn Write + Send>) -> Self {
        let progress = (opts.progress && opts.human).then(|| Progress::new(Instant::now()));
        Reporter {
            progress,
            opts,
            inner: Mutex::new(Inner {
                last_header: None,
                last_task_at: None,
                logs: BTreeMap::new(),
                json_plays: Vec::new(),
                stats: BTreeMap::new(),
                out: StatusWriter::new(out),
                handler: false,
            }),
        }
    }

    /// Whether a live status line is kept under the output.
    pub fn progress_enabled(&self) -> bool {
        self.progress.is_some()
    }

    /// Redraw the status line (the ticker calls this every [`super::progress::TICK`]).
    pub fn draw_status(&self) {
        if let Some(p) = &self.progress {
            let line = p.line(
                Instant::now(),
                super::progress::terminal_width().saturating_sub(1),
            );
            self.lock().out.draw(&line);
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        // A poisoned lock only means another thread panicked mid-print; keep reporting.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn paint(&self, s: &str, color: &str) -> String {
        if self.opts.color {
            format!("{color}{s}\x1b[0m")
        } else {
            s.to_string()
        }
    }

    fn log(&self, inner: &mut Inner, host: &str, text: &str) {
        let Some(dir) = &self.opts.log_dir else {
            return;
        };
        let entry = inner.logs.entry(host.to_string()).or_insert_with(|| {
            let _ = crate::private_fs::dir(dir);
            let path = dir.join(format!("{host}{}.log", self.opts.log_suffix));
            match crate::private_fs::append(&path) {
                Ok(f) => Some(f),
                Err(e) => {
                    tracing::warn!("cannot open log file {}: {e}", path.display());
                    None
                }
            }
        });
        if let Some(f) = entry {
            let _ = writeln!(f, "{text}");
        }
    }

    /// Path of the per-host log file, if logging to files.
    pub fn log_path(&self, host: &str) -> Option<PathBuf> {
        self.opts
            .log_dir
            .as_ref()
            .map(|d| d.join(format!("{host}{}.log", self.opts.log_suffix)))
    }

    pub fn play_start(&self, name: &str, hosts: &[String]) {
        if let Some(p) = &self.progress {
            p.play(hosts, Instant::now());
        }
        let mut inner = self.lock();
        inner.last_header = None;
        inner.last_task_at = None;
        let line = banner(&format!("PLAY [{name}]"));
        if self.opts.human {
            let _ = writeln!(inner.out, "{line}");
        }
        for h in hosts {
            self.log(&mut inner, h, &line);
            inner.stats.entry(h.clone()).or_default();
        }
        inner
            .json_plays
            .push(json!({"play": {"name": name, "hosts": hosts}, "tasks": []}));
    }

    /// A warning or note not tied to a task line (e.g. no hosts matched); one line.
    pub fn note(&self, msg: &str) {
        let msg = escape::line(msg);
        let mut inner = self.lock();
        if self.opts.human {
            let _ = writeln!(inner.out, "{msg}");
        } else {
            eprintln!("{msg}");
        }
    }

    /// A task starts on a host (`at`: where it is defined). Its `TASK [...]` header is printed now,
    /// once, so a long task shows what is running instead of the previous task's results.
    /// A notified handler starts: its header says `RUNNING HANDLER [...]`.
    pub fn handler_start(&self, task: &str, at: &str) {
        self.lock().handler = true;
        self.task_start_as(task, at);
    }

    pub fn task_start(&self, task: &str, at: &str) {
        self.lock().handler = false;
        self.task_start_as(task, at);
    }

    fn task_start_as(&self, task: &str, at: &str) {
        if let Some(p) = &self.progress {
            p.task(task, Instant::now());
        }
        let mut inner = self.lock();
        if inner.last_task_at.as_deref() != Some(at) {
            inner.last_task_at = Some(at.to_string());
            self.header(&mut inner, task, true);
        }
    }

    /// Prints the header of `task` unless it was the last one printed (`force`: print anyway).
    fn header(&self, inner: &mut Inner, task: &str, force: bool) {
        if !force && inner.last_header.as_deref() == Some(task) {
            return;
        }
        if self.opts.human {
            let kind = if inner.handler {
                "RUNNING HANDLER"
            } else {
                "TASK"
            };
            let header = banner(&format!("{kind} [{task}]"));
            let _ = writeln!(inner.out, "{header}");
            let _ = inner.out.flush();
        }
        inner.last_header = Some(task.to_string());
        if let Some(Value::Object(play)) = inner.json_plays.last_mut() {
            if let Some(Value::Array(tasks)) = play.get_mut("tasks") {
                tasks.push(json!({"task": {"name": task}, "hosts": {}}));
            }
        }
    }

    pub fn host_line(&self, line: &HostLine<'_>) {
        if let (Some(p), false) = (&self.progress, line.is_item) {
            p.host_done(
                line.host,
                matches!(line.status, Status::Failed | Status::Unreachable),
            );
        }
        let mut inner = self.lock();
        let header = banner(&format!("TASK [{}]", line.task));
        // Another task's lines came in between (free strategy): say again which task this is.
        self.header(&mut inner, line.task, false);
        self.log(&mut inner, line.host, &header);
        let text = self.format_line(line);
        if self.opts.human {
            let _ = writeln!(inner.out, "{text}");
        }
        self.log(&mut inner, line.host, &text);
        if !line.is_item {
            if let Some(Value::Object(play)) = inner.json_plays.last_mut() {
                if let Some(Value::Array(tasks)) = play.get_mut("tasks") {
                    if let Some(Value::Object(t)) = tasks.last_mut() {
                        if let Some(Value::Object(hosts)) = t.get_mut("hosts") {
                            hosts.insert(line.host.to_string(), line.result.clone());
                        }
                    }
                }
            }
        }
    }

    fn format_line(&self, line: &HostLine<'_>) -> String {
        let mut s = String::new();
        if self.opts.show_diff {
            for d in line.diff {
                s.push_str(&unified_diff(d));
            }
        }
        let host = escape::line(line.host);
        let label = line.item.as_deref().map(escape::line);
        let item = label
            .as_ref()
            .map(|i| format!(" => (item={i})"))
            .unwrap_or_default();
        let head = match line.status {
            Status::Failed if line.is_item => {
                format!("failed: [{host}] (item={})", label.unwrap_or_default())
            }
            Status::Failed => format!("fatal: [{host}]: FAILED!"),
            Status::Unreachable => format!("fatal: [{host}]: UNREACHABLE!"),
            st => format!("{}: [{host}]{item}", st.word()),
        };
        let body = match line.status {
            Status::Failed | Status::Unreachable => {
                format!(" => {}", result_json(line.result, false))
            }
            _ if line.show_result || self.opts.verbosity > 0 => {
                if line.item.is_some() && !line.show_result {
                    format!(" {}", result_json(line.result, false))
                } else if line.show_result {
                    format!(" => {}", result_json(&debug_shown(line.result), true))
                } else {
                    format!(" => {}", result_json(line.result, false))
                }
            }
            _ => String::new(),
        };
        let mut out = self.paint(&format!("{head}{body}"), line.status.color());
        if line.ignored {
            out.push_str(&self.paint("\n...ignoring", "\x1b[0;36m"));
        }
        s.push_str(&out);
        // Module warnings, as Ansible prints them under the host's line.
        let warnings = line.result.get("warnings").and_then(Value::as_array);
        for w in warnings.into_iter().flatten().filter_map(Value::as_str) {
            s.push_str(&self.paint(&format!("\n[WARNING]: {}", escape::line(w)), "\x1b[1;35m"));
        }
        s
    }

    /// Add to a host's counters.
    pub fn count(&self, host: &str, f: impl FnOnce(&mut RunCounts)) {
        let mut inner = self.lock();
        f(inner.stats.entry(host.to_string()).or_default());
    }

    pub fn stats(&self) -> BTreeMap<String, RunCounts> {
        self.lock().stats.clone()
    }

    /// Print PLAY RECAP (and the JSON report when not human).
    pub fn recap(&self) {
        if let Some(p) = &self.progress {
            p.finish();
        }
        let mut inner = self.lock();
        inner.out.erase();
        let stats = inner.stats.clone();
        let mut text = banner("PLAY RECAP");
        text.push('\n');
        for (h, t) in &stats {
            text.push_str(&self.recap_line(h, t));
            text.push('\n');
        }
        if self.opts.human {
            let _ = write!(inner.out, "{text}");
        } else {
            let report = json!({
                "plays": inner.json_plays,
                "stats": stats,
            });
            let _ = writeln!(inner.out, "{}", result_json(&report, true));
        }
        for (h, t) in &stats {
            let line = format!("{}\n{}", banner("PLAY RECAP"), self.recap_line(h, t));
            self.log(&mut inner, h, &line);
        }
        let _ = inner.out.flush();
    }

    /// One recap line in Ansible's exact column format.
    pub fn recap_line(&self, host: &str, t: &RunCounts) -> String {
        let host = escape::line(host);
        let col = |lead: &str, n: u32, color: &str| {
            let s = format!("{lead}={n:<4}");
            if n != 0 {
                self.paint(&s, color)
            } else {
                s
            }
        };
        let host_color = if t.failed > 0 || t.unreachable > 0 {
            "\x1b[0;31m"
        } else if t.changed > 0 {
            "\x1b[0;33m"
        } else {
            "\x1b[0;32m"
        };
        let host_s = if self.opts.color {
            format!("{:<37}", format!("{host_color}{host}\x1b[0m"))
        } else {
            format!("{host:<26}")
        };
        format!(
            "{host_s} : {} {} {} {} {} {} {}",
            col("ok", t.ok, "\x1b[0;32m"),
            col("changed", t.changed, "\x1b[0;33m"),
            col("unreachable", t.unreachable, "\x1b[0;31m"),
            col("failed", t.failed, "\x1b[0;31m"),
            col("skipped", t.skipped, "\x1b[0;36m"),
            col("rescued", t.rescued, "\x1b[0;32m"),
            col("ignored", t.ignored, "\x1b[0;35m"),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plain() -> ReportOptions {
        ReportOptions {
            human: true,
            verbosity: 0,
            show_diff: true,
            color: false,
            log_dir: None,
            log_suffix: String::new(),
            capture: None,
            log_file: None,
            progress: false,
        }
    }

    #[test]
    fn recap_matches_ansible_columns() {
        let r = Reporter::new(plain());
        let t = RunCounts {
            ok: 2,
            changed: 1,
            ..Default::default()
        };
        assert_eq!(
            r.recap_line("10.231.0.2", &t),
            "10.231.0.2                 : ok=2    changed=1    unreachable=0    failed=0    skipped=0    rescued=0    ignored=0   "
        );
    }

    #[test]
    fn banner_is_80_wide() {
        let b = banner("PLAY [all]");
        assert_eq!(b.trim_start_matches('\n').len(), 80);
    }

    #[test]
    fn diff_is_unified() {
        let d = FileDiff {
            path: "/etc/x".into(),
            before: "a\nb\n".into(),
            after: "a\nc\n".into(),
        };
        let s = unified_diff(&d);
        assert!(s.contains("--- before: /etc/x"), "{s}");
        assert!(s.contains("+++ after: /etc/x"), "{s}");
        assert!(s.contains("-b\n+c"), "{s}");
    }
}
