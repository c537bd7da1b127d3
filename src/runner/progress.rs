//! The live status line of `knockplay run` on a terminal: the current task, hosts done out of
//! the play's, failures so far, elapsed time and the slowest hosts still working. The reporter
//! feeds it ([`Progress::play`], [`Progress::task`], [`Progress::host_done`]); a ticker thread
//! redraws it (see [`StatusWriter`]), and every other line of output first erases it, so the
//! plain Ansible-style lines stay exactly as they are. Off when stdout is not a terminal or with
//! `--no-progress`. [`Progress::line`] is pure: it takes the time as an argument.

use std::collections::BTreeMap;
use std::io::Write;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How often the ticker redraws.
pub const TICK: Duration = Duration::from_millis(200);

/// How many of the slowest hosts the line names.
const SLOWEST: usize = 3;

#[derive(Debug)]
struct State {
    run_start: Instant,
    task: String,
    task_start: Instant,
    /// The play's hosts; true once done with the current task.
    hosts: BTreeMap<String, bool>,
    failed: usize,
}

/// What the status line shows, updated by the reporter.
#[derive(Debug)]
pub struct Progress {
    state: Mutex<State>,
}

impl Progress {
    pub fn new(now: Instant) -> Self {
        Progress {
            state: Mutex::new(State {
                run_start: now,
                task: String::new(),
                task_start: now,
                hosts: BTreeMap::new(),
                failed: 0,
            }),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A play starts on these hosts.
    pub fn play(&self, hosts: &[String], now: Instant) {
        let mut s = self.lock();
        s.hosts = hosts.iter().map(|h| (h.clone(), false)).collect();
        s.task.clear();
        s.task_start = now;
    }

    /// A task starts (every host is working on it again).
    pub fn task(&self, task: &str, now: Instant) {
        let mut s = self.lock();
        if s.task != task {
            s.task = task.to_string();
            s.task_start = now;
            for done in s.hosts.values_mut() {
                *done = false;
            }
        }
    }

    /// The run is over: nothing more to show.
    pub fn finish(&self) {
        self.lock().hosts.clear();
    }

    /// A host finished the current task (`failed`: it failed or was unreachable).
    pub fn host_done(&self, host: &str, failed: bool) {
        let mut s = self.lock();
        if let Some(done) = s.hosts.get_mut(host) {
            *done = true;
        }
        if failed {
            s.failed += 1;
        }
    }

    /// The status line at `now`, at most `width` columns, plain text.
    pub fn line(&self, now: Instant, width: usize) -> String {
        let s = self.lock();
        if s.hosts.is_empty() {
            return String::new();
        }
        let done = s.hosts.values().filter(|d| **d).count();
        let elapsed = now.saturating_duration_since(s.run_start).as_secs_f64();
        let on_task = now.saturating_duration_since(s.task_start).as_secs_f64();
        let mut text = format!(
            "[{}] {done}/{} hosts done",
            if s.task.is_empty() {
                "starting"
            } else {
                &s.task
            },
            s.hosts.len()
        );
        if s.failed > 0 {
            text.push_str(&format!(", {} failed", s.failed));
        }
        text.push_str(&format!(", {elapsed:.1}s"));
        let waiting: Vec<&str> = s
            .hosts
            .iter()
            .filter(|(_, d)| !**d)
            .map(|(h, _)| h.as_str())
            .take(SLOWEST)
            .collect();
        if !waiting.is_empty() && done > 0 {
            // All the hosts still on the task started it together: they are the slowest.
            text.push_str(&format!(", waiting {on_task:.1}s on {}", waiting.join(" ")));
        }
        truncate(&super::escape::line(&text), width)
    }
}

fn truncate(s: &str, width: usize) -> String {
    if s.chars().count() <= width {
        return s.to_string();
    }
    let mut out: String = s.chars().take(width.saturating_sub(1)).collect();
    out.push('…');
    out
}

/// The terminal's width in columns (80 when unknown).
pub fn terminal_width() -> usize {
    // SAFETY: TIOCGWINSZ writes a `winsize` into the struct we pass; nothing else is touched.
    let mut ws: libc::winsize = unsafe { std::mem::zeroed() };
    let ok = unsafe { libc::ioctl(libc::STDOUT_FILENO, libc::TIOCGWINSZ, &mut ws) } == 0;
    if ok && ws.ws_col > 0 {
        usize::from(ws.ws_col)
    } else {
        80
    }
}

/// The reporter's output: lines as written, plus a status line kept at the bottom that any other
/// output erases first (`\r` and erase-line), so it never mixes with them.
pub struct StatusWriter {
    out: Box<dyn Write + Send>,
    visible: bool,
}

impl StatusWriter {
    pub fn new(out: Box<dyn Write + Send>) -> Self {
        StatusWriter {
            out,
            visible: false,
        }
    }

    /// Draw (or redraw) the status line.
    pub fn draw(&mut self, line: &str) {
        if line.is_empty() {
            self.erase();
            return;
        }
        let _ = write!(self.out, "\r\x1b[K\x1b[2m{line}\x1b[0m");
        let _ = self.out.flush();
        self.visible = true;
    }

    /// Remove the status line, if shown.
    pub fn erase(&mut self) {
        if self.visible {
            let _ = self.out.write_all(b"\r\x1b[K");
            let _ = self.out.flush();
            self.visible = false;
        }
    }
}

impl Write for StatusWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.erase();
        self.out.write(buf)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.out.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_line_says_task_hosts_failures_time_and_who_is_slow() {
        let t0 = Instant::now();
        let p = Progress::new(t0);
        let hosts: Vec<String> = ["h1", "h2", "h3", "h4"]
            .iter()
            .map(|h| h.to_string())
            .collect();
        assert_eq!(p.line(t0, 200), "");
        p.play(&hosts, t0);
        assert_eq!(p.line(t0, 200), "[starting] 0/4 hosts done, 0.0s");
        p.task("install packages", t0 + Duration::from_secs(1));
        p.host_done("h2", false);
        p.host_done("h4", true);
        assert_eq!(
            p.line(t0 + Duration::from_millis(3500), 200),
            "[install packages] 2/4 hosts done, 1 failed, 3.5s, waiting 2.5s on h1 h3"
        );
        // A new task: everyone works again; failures stay counted.
        p.task("restart", t0 + Duration::from_secs(4));
        assert_eq!(
            p.line(t0 + Duration::from_secs(4), 200),
            "[restart] 0/4 hosts done, 1 failed, 4.0s"
        );
        let short = p.line(t0 + Duration::from_secs(4), 12);
        assert_eq!(short.chars().count(), 12);
        assert!(short.ends_with('…'));
        // Text from a task name never reaches the terminal raw.
        p.task("evil\x1b[2J", t0);
        assert!(!p.line(t0, 200).contains('\x1b'));
    }

    #[test]
    fn output_erases_the_status_line_first() {
        #[derive(Clone, Default)]
        struct Buf(std::sync::Arc<Mutex<Vec<u8>>>);
        impl Write for Buf {
            fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
                self.0.lock().unwrap().extend_from_slice(b);
                Ok(b.len())
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }
        let buf = Buf::default();
        let mut w = StatusWriter::new(Box::new(buf.clone()));
        writeln!(w, "line one").unwrap();
        w.draw("[t] 1/2 hosts done");
        writeln!(w, "line two").unwrap();
        w.erase();
        let text = String::from_utf8(buf.0.lock().unwrap().clone()).unwrap();
        assert_eq!(
            text,
            "line one\n\r\x1b[K\x1b[2m[t] 1/2 hosts done\x1b[0m\r\x1b[Kline two\n"
        );
    }
}
