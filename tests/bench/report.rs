//! The benchmark's printed table: one line per measured run, then ratios of each other tool to knockplay
//! for the same host count, forks and run. A run killed at the time limit reads "skipped: > N s".

use std::fmt::Write;

use crate::tools::Tool;
use crate::Row;

const HEADER: &str =
    "hosts  forks  run     tool         wall s    CPU s  max RSS MiB  tree RSS MiB  threads  target CPU s  procs/task  trips/task  changed   load  busy  check";
const RATIO_HEADER: &str =
    "hosts  forks  run     ratio                     wall      CPU      max RSS      tree RSS    target CPU";

fn mib(kib: u64) -> f64 {
    kib as f64 / 1024.0
}

fn run_name(rerun: bool) -> &'static str {
    if rerun {
        "re-run"
    } else {
        "first"
    }
}

fn forks_name(f: Option<usize>) -> String {
    f.map_or("dflt".to_string(), |f| f.to_string())
}

/// One table line for a run.
pub fn row_line(r: &Row) -> String {
    if let Some(why) = &r.skipped {
        return format!(
            "{:>5}  {:>5}  {:<6}  {:<9}  {why} (killed; load {:.1} before)",
            r.hosts,
            forks_name(r.forks),
            run_name(r.rerun),
            r.tool.name(),
            r.load1
        );
    }
    let changed = r.changed.map_or("?".to_string(), |c| c.to_string());
    let status = if r.problems.is_empty() {
        "ok".to_string()
    } else {
        format!("{} problem(s)", r.problems.len())
    };
    let per_task = |n: Option<u64>| {
        n.map_or("?".to_string(), |n| {
            format!("{:.1}", n as f64 / (crate::TASKS * r.hosts as u64) as f64)
        })
    };
    let target_cpu = r
        .target
        .cpu_ns
        .map_or("?".to_string(), |ns| format!("{:.2}", ns as f64 / 1e9));
    format!(
        "{:>5}  {:>5}  {:<6}  {:<9}  {:>8.2}  {:>7.2}  {:>11.1}  {:>12.1}  {:>7}  {:>12}  {:>10}  {:>10}  {:>7}  {:>5.1}  {:>3.0}%  {}",
        r.hosts,
        forks_name(r.forks),
        run_name(r.rerun),
        r.tool.name(),
        r.usage.wall.as_secs_f64(),
        r.usage.cpu.as_secs_f64(),
        mib(r.usage.max_rss_kib),
        mib(r.usage.tree_rss_kib),
        r.usage.peak_threads,
        target_cpu,
        per_task(r.target.processes),
        per_task(r.round_trips),
        changed,
        r.load1,
        r.usage.machine_busy * 100.0,
        status
    )
}

/// The whole table with ratios.
pub fn table(rows: &[Row]) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "{HEADER}");
    for r in rows {
        let _ = writeln!(s, "{}", row_line(r));
    }
    let _ = writeln!(
        s,
        "\nRatios to knockplay (higher = knockplay better; same hosts, forks and run): wall, CPU, max RSS (largest process), tree RSS, target CPU"
    );
    let _ = writeln!(s, "{RATIO_HEADER}");
    for kp in rows
        .iter()
        .filter(|r| r.tool == Tool::Knockplay && r.skipped.is_none())
    {
        for other in rows.iter().filter(|r| {
            r.tool != Tool::Knockplay
                && r.hosts == kp.hosts
                && r.forks == kp.forks
                && r.rerun == kp.rerun
                && r.skipped.is_none()
        }) {
            let ratio = |a: f64, b: f64| {
                if b > 0.0 {
                    format!("{:.1}x", a / b)
                } else {
                    "-".to_string()
                }
            };
            let _ = writeln!(
                s,
                "{:>5}  {:>5}  {:<6}  {:<20}  {:>8}  {:>7}  {:>11}  {:>12}  {:>12}",
                kp.hosts,
                forks_name(kp.forks),
                run_name(kp.rerun),
                format!("{}/knockplay", other.tool.name()),
                ratio(other.usage.wall.as_secs_f64(), kp.usage.wall.as_secs_f64()),
                ratio(other.usage.cpu.as_secs_f64(), kp.usage.cpu.as_secs_f64()),
                ratio(other.usage.max_rss_kib as f64, kp.usage.max_rss_kib as f64),
                ratio(
                    other.usage.tree_rss_kib as f64,
                    kp.usage.tree_rss_kib as f64
                ),
                match (other.target.cpu_ns, kp.target.cpu_ns) {
                    (Some(a), Some(b)) => ratio(a as f64, b as f64),
                    _ => "-".to_string(),
                },
            );
        }
    }
    s
}
