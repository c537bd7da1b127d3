//! Benchmark driver (two ignored tests; run them with `bash bench/run [run|listen]`):
//! - `bench`: applies bench/playbook.yml with knockplay and ansible-playbook and bench/deploy.py with
//!   pyinfra to fresh test hosts (1 and 20), first run and idempotent re-run, measures wall time,
//!   controller CPU and memory, checks that the work is on the hosts and that re-runs change nothing, and
//!   prints a table with ratios against knockplay.
//!   Environment: KP_BENCH_HOSTS="1,20" (host counts), KP_BENCH_TOOLS="knockplay,ansible,pyinfra".
//!   Each tool's output is kept in target/bench/<tool>-<hosts>h-<run>.{out,err}.
//! - `listen_bench`: hosts knock and are configured by `knockplay listen` and by knockd +
//!   ansible-playbook (see listen.rs); prints knock → first task latency and herd times with ratios.

#[path = "../common/mod.rs"]
mod common;
mod listen;
mod measure;
mod report;
mod targets;
mod tools;
mod verify;

use std::path::{Path, PathBuf};

use common::TestBed;
use measure::Usage;
use tools::Tool;

/// One measured run.
#[derive(Debug, Clone)]
pub struct Row {
    pub tool: Tool,
    pub hosts: usize,
    pub rerun: bool,
    pub usage: Usage,
    /// 1-minute load average of the machine just before the run (other work skews the numbers).
    pub load1: f64,
    /// Changes the tool reported (None: no summary found in its output).
    pub changed: Option<u64>,
    /// Empty when the run succeeded and its checks passed.
    pub problems: Vec<String>,
    /// What the run cost the hosts (processes, CPU, sshd sessions), summed over hosts.
    pub target: targets::TargetUsage,
    /// Commands sent and awaited, summed over hosts: knockplay's own count, else sshd's sessions.
    pub round_trips: Option<u64>,
}

/// Tasks of bench/playbook.yml (and operations of deploy.py): the "per task" figures divide by
/// this and the host count (facts and the handler are in the totals).
pub const TASKS: u64 = 30;

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn env_list(key: &str, default: &str) -> Vec<String> {
    std::env::var(key)
        .unwrap_or_else(|_| default.to_string())
        .split(',')
        .map(|s| s.trim().to_string())
        .collect()
}

#[test]
#[ignore = "benchmark (minutes; needs Docker, the test-host image and .venv): run `bash bench/run`"]
fn bench() {
    measure::become_subreaper();
    let repo = repo();
    let logs = repo.join("target/bench");
    std::fs::create_dir_all(&logs).expect("create target/bench");
    let counts: Vec<usize> = env_list("KP_BENCH_HOSTS", "1,20")
        .iter()
        .map(|s| {
            s.parse()
                .unwrap_or_else(|_| panic!("KP_BENCH_HOSTS: bad host count {s:?}"))
        })
        .collect();
    let tools: Vec<Tool> = env_list("KP_BENCH_TOOLS", "knockplay,ansible,pyinfra")
        .iter()
        .map(|s| Tool::parse(s).unwrap_or_else(|| panic!("KP_BENCH_TOOLS: unknown tool {s:?}")))
        .collect();
    let data_csv =
        std::fs::read(repo.join("bench/files/data.csv")).expect("read bench/files/data.csv");

    let mut rows = Vec::new();
    let mut notes = Vec::new();
    for &n in &counts {
        let mut manifests: Vec<(Tool, Vec<String>)> = Vec::new();
        for &tool in &tools {
            // Fresh hosts from the same image for every tool, so first runs are comparable.
            let bed =
                TestBed::start(n).unwrap_or_else(|e| panic!("cannot start {n} test hosts: {e}"));
            eprintln!(
                "bench: {n} host(s) up in {:.1} s; running {}",
                bed.started_in.as_secs_f64(),
                tool.name()
            );
            targets::log_sessions(&bed);
            for rerun in [false, true] {
                let row = run_once(tool, &bed, &repo, &logs, rerun, &data_csv);
                eprintln!("bench:   {}", report::row_line(&row));
                rows.push(row);
            }
            manifests.push((
                tool,
                bed.hosts.iter().take(1).map(verify::manifest).collect(),
            ));
        }
        notes.extend(compare_manifests(n, &manifests));
    }

    let table = report::table(&rows);
    println!("\n{table}");
    if !notes.is_empty() {
        println!("Differences in what the tools left on the hosts (host0 of each tool's bed):");
        for l in &notes {
            println!("  {l}");
        }
    }
    let _ = std::fs::write(
        logs.join("results.txt"),
        format!("{table}\n{}\n", notes.join("\n")),
    );
    let problems: Vec<String> = rows.iter().flat_map(|r| r.problems.clone()).collect();
    fail_on(&problems, &logs);
}

/// Lists the problems after the table and fails the benchmark if there are any.
fn fail_on(problems: &[String], logs: &Path) {
    if problems.is_empty() {
        return;
    }
    println!(
        "\nProblems ({}; outputs in {}):",
        problems.len(),
        logs.display()
    );
    for p in problems {
        println!("  {p}");
    }
    panic!("{} problem(s): see above", problems.len());
}

#[test]
#[ignore = "benchmark (minutes; needs Docker, the test-host image, .venv and knockd): run `bash bench/run listen`"]
fn listen_bench() {
    measure::become_subreaper();
    let repo = repo();
    let logs = repo.join("target/bench");
    std::fs::create_dir_all(&logs).expect("create target/bench");
    let data_csv =
        std::fs::read(repo.join("bench/files/data.csv")).expect("read bench/files/data.csv");
    let params = listen::Params::from_env();
    let outcomes = listen::run_all(&params, &repo, &logs, &data_csv);
    let table = listen::table(&outcomes);
    println!("\n{table}");
    let _ = std::fs::write(logs.join("listen-results.txt"), &table);
    fail_on(&listen::problems(&outcomes), &logs);
}

/// Runs `tool` once on every host of `bed` and checks the result.
fn run_once(
    tool: Tool,
    bed: &TestBed,
    repo: &Path,
    logs: &Path,
    rerun: bool,
    data_csv: &[u8],
) -> Row {
    let label = format!(
        "{}-{}h-{}",
        tool.name(),
        bed.hosts.len(),
        if rerun { "rerun" } else { "first" }
    );
    let (out, err) = (
        logs.join(format!("{label}.out")),
        logs.join(format!("{label}.err")),
    );
    let mut cmd = tool.command(bed, repo);
    let load1 = load_average();
    let before = targets::Snapshot::take(bed);
    let usage = measure::run_measured(&mut cmd, &out, &err)
        .unwrap_or_else(|e| panic!("cannot run {}: {e} ({cmd:?})", tool.name()));
    let target = targets::Snapshot::take(bed).since(&before);
    let stdout = std::fs::read_to_string(&out).unwrap_or_default();
    let stderr = std::fs::read_to_string(&err).unwrap_or_default();
    let round_trips = tool.round_trips(&stderr).or(target.sessions);
    let changed = tool.changed(&stdout, &stderr);
    let mut problems = Vec::new();
    if usage.code != 0 {
        problems.push(format!(
            "{label}: exit code {} (see {})\n{}",
            usage.code,
            out.display(),
            tail(&stdout, &stderr)
        ));
    }
    if rerun {
        match changed {
            Some(0) => {}
            Some(c) => problems.push(format!("{label}: idempotent re-run reported {c} change(s)")),
            None => problems.push(format!("{label}: no change summary found in the output")),
        }
    } else {
        for h in &bed.hosts {
            problems.extend(
                verify::check_host(h, &h.name, data_csv)
                    .into_iter()
                    .map(|p| format!("{label}: {p}")),
            );
        }
    }
    Row {
        tool,
        hosts: bed.hosts.len(),
        rerun,
        usage,
        load1,
        changed,
        problems,
        target,
        round_trips,
    }
}

fn load_average() -> f64 {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|s| s.split_whitespace().next().and_then(|x| x.parse().ok()))
        .unwrap_or(f64::NAN)
}

/// Last lines of a failed run's output, for the report.
fn tail(stdout: &str, stderr: &str) -> String {
    let all: Vec<&str> = stdout.lines().chain(stderr.lines()).collect();
    all[all.len().saturating_sub(25)..]
        .iter()
        .map(|l| format!("      | {l}"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Differences between each tool's manifests and the first tool's, per host index.
fn compare_manifests(n: usize, manifests: &[(Tool, Vec<String>)]) -> Vec<String> {
    let Some((base_tool, base)) = manifests.first() else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for (tool, m) in &manifests[1..] {
        // host0 stands for all: every host gets the same work.
        if let (Some(a), Some(b)) = (base.first(), m.first()) {
            for d in verify::manifest_diff(base_tool.name(), a, tool.name(), b) {
                out.push(format!("{n} hosts, host0: {d}"));
            }
        }
    }
    out
}
