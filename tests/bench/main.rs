//! Benchmark driver (two ignored tests; run them with `bash bench/run [run|listen]`):
//! - `bench`: applies bench/playbook.yml with knockplay and ansible-playbook and bench/deploy.py with
//!   pyinfra to fresh test hosts (1 and 20), first run and idempotent re-run, measures wall time,
//!   controller CPU and memory, checks that the work is on the hosts and that re-runs change nothing, and
//!   prints a table with ratios against knockplay.
//!   Environment: KP_BENCH_HOSTS="1,20" (host counts), KP_BENCH_TOOLS="knockplay,ansible,pyinfra",
//!   KP_BENCH_FORKS="50,200" (hosts at once: knockplay -f, ansible forks, pyinfra --parallel; unset: each
//!   tool's default), KP_BENCH_ANSIBLE_FORKS (Ansible's own list, default KP_BENCH_FORKS),
//!   KP_BENCH_RERUN=0 (first runs only; or a list of the tools that get the re-run), KP_BENCH_TIMEOUT=600 (seconds per run: the tool is killed and
//!   its row reads "skipped: > 600 s"), KP_BENCH_SHORT=0 (no short runs: see short.rs).
//!   Each tool's output is kept in target/bench/<tool>-<hosts>h[-f<forks>]-<run>.{out,err}.
//! - `listen_bench`: hosts knock and are configured by `knockplay listen` and by knockd +
//!   ansible-playbook (see listen.rs); prints knock → first task latency and herd times with ratios.

#[path = "../common/mod.rs"]
mod common;
mod listen;
mod measure;
mod report;
mod short;
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
    /// Forks the tool was given (None: its default).
    pub forks: Option<usize>,
    /// Why the run has no result (it passed the time limit and was killed).
    pub skipped: Option<String>,
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
        .filter(|s| !s.is_empty())
        .collect()
}

fn env_numbers(key: &str, default: &str) -> Vec<usize> {
    env_list(key, default)
        .iter()
        .map(|s| {
            s.parse()
                .unwrap_or_else(|_| panic!("{key}: bad number {s:?}"))
        })
        .collect()
}

/// How the runs of one `bench` invocation are made (from the environment).
struct Plan {
    counts: Vec<usize>,
    tools: Vec<Tool>,
    /// Fork counts per tool; `[None]`: the tool's default.
    forks: Vec<Option<usize>>,
    ansible_forks: Vec<Option<usize>>,
    /// Tools that get the idempotent re-run (KP_BENCH_RERUN: 1 all, 0 none, or a list of tools).
    rerun: Vec<Tool>,
    limit: Option<std::time::Duration>,
    /// The short runs (KP_BENCH_SHORT, default 1): knockplay's one-task playbook and the ssh floor,
    /// on knockplay's bed, when it had no fork setting of its own.
    short: bool,
}

impl Plan {
    fn from_env() -> Plan {
        let opt = |v: Vec<usize>| -> Vec<Option<usize>> {
            if v.is_empty() {
                vec![None]
            } else {
                v.into_iter().map(Some).collect()
            }
        };
        let forks_raw = std::env::var("KP_BENCH_FORKS").unwrap_or_default();
        Plan {
            counts: env_numbers("KP_BENCH_HOSTS", "1,20"),
            tools: env_list("KP_BENCH_TOOLS", "knockplay,ansible,pyinfra")
                .iter()
                .map(|s| {
                    Tool::parse(s).unwrap_or_else(|| panic!("KP_BENCH_TOOLS: unknown tool {s:?}"))
                })
                .collect(),
            forks: opt(env_numbers("KP_BENCH_FORKS", "")),
            ansible_forks: opt(env_numbers("KP_BENCH_ANSIBLE_FORKS", &forks_raw)),
            rerun: match env_list("KP_BENCH_RERUN", "1").as_slice() {
                [one] if one == "1" => tools::ALL.to_vec(),
                [zero] if zero == "0" => Vec::new(),
                list => list
                    .iter()
                    .map(|s| Tool::parse(s).unwrap_or_else(|| panic!("KP_BENCH_RERUN: {s:?}")))
                    .collect(),
            },
            limit: env_numbers("KP_BENCH_TIMEOUT", "")
                .first()
                .map(|&s| std::time::Duration::from_secs(s as u64)),
            short: env_list("KP_BENCH_SHORT", "1") != ["0"],
        }
    }

    fn forks_of(&self, tool: Tool) -> &[Option<usize>] {
        if tool == Tool::Ansible {
            &self.ansible_forks
        } else {
            &self.forks
        }
    }
}

#[test]
#[ignore = "benchmark (minutes; needs Docker, the test-host image and .venv): run `bash bench/run`"]
fn bench() {
    measure::become_subreaper();
    let repo = repo();
    let logs = repo.join("target/bench");
    std::fs::create_dir_all(&logs).expect("create target/bench");
    let plan = Plan::from_env();
    let data_csv =
        std::fs::read(repo.join("bench/files/data.csv")).expect("read bench/files/data.csv");

    let mut rows = Vec::new();
    let mut notes = Vec::new();
    let mut shorts = Vec::new();
    for &n in &plan.counts {
        let mut manifests: Vec<(Tool, Vec<String>)> = Vec::new();
        for &tool in &plan.tools {
            for &forks in plan.forks_of(tool) {
                let ctx = RunCtx {
                    repo: &repo,
                    logs: &logs,
                    data_csv: &data_csv,
                    forks,
                    limit: plan.limit,
                };
                let (new, manifest, short) =
                    bed_runs(tool, n, &ctx, plan.rerun.contains(&tool), plan.short);
                rows.extend(new);
                shorts.extend(short);
                if let Some(m) = manifest.filter(|_| !manifests.iter().any(|(t, _)| *t == tool)) {
                    manifests.push((tool, m));
                }
            }
        }
        notes.extend(compare_manifests(n, &manifests));
    }

    let mut table = report::table(&rows);
    if !shorts.is_empty() {
        table.push('\n');
        table.push_str(&short::table(&shorts));
    }
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
    let problems: Vec<String> = rows
        .iter()
        .flat_map(|r| r.problems.clone())
        .chain(shorts.iter().flat_map(|s| s.problems.clone()))
        .collect();
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

/// What every run of one `bench` invocation shares.
struct RunCtx<'a> {
    repo: &'a Path,
    logs: &'a Path,
    data_csv: &'a [u8],
    forks: Option<usize>,
    limit: Option<std::time::Duration>,
}

/// A fresh bed of `n` hosts for `tool`: the first run, then (if asked and the first run was not
/// killed at the time limit) the re-run, then knockplay's short runs when asked. Returns the rows,
/// host0's manifest and the short runs.
fn bed_runs(
    tool: Tool,
    n: usize,
    ctx: &RunCtx<'_>,
    rerun: bool,
    short: bool,
) -> (Vec<Row>, Option<Vec<String>>, Option<short::Short>) {
    // Fresh hosts from the same image for every tool, so first runs are comparable.
    let bed = TestBed::start(n).unwrap_or_else(|e| panic!("cannot start {n} test hosts: {e}"));
    eprintln!(
        "bench: {n} host(s) up in {:.1} s; running {}{}",
        bed.started_in.as_secs_f64(),
        tool.name(),
        ctx.forks
            .map(|f| format!(" with {f} forks"))
            .unwrap_or_default()
    );
    targets::log_sessions(&bed);
    let mut rows = Vec::new();
    for again in [false, true] {
        if again && (!rerun || rows.iter().any(|r: &Row| r.skipped.is_some())) {
            break;
        }
        let row = run_once(tool, &bed, ctx, again);
        eprintln!("bench:   {}", report::row_line(&row));
        rows.push(row);
    }
    // A run killed at the time limit left half the work: no manifest to compare.
    let manifest = rows
        .iter()
        .all(|r| r.skipped.is_none())
        .then(|| bed.hosts.iter().take(1).map(verify::manifest).collect());
    let short = (short && tool == Tool::Knockplay && ctx.forks.is_none() && manifest.is_some())
        .then(|| short::measure(&bed, ctx.repo));
    (rows, manifest, short)
}

/// Runs `tool` once on every host of `bed` and checks the result.
fn run_once(tool: Tool, bed: &TestBed, ctx: &RunCtx<'_>, rerun: bool) -> Row {
    let label = format!(
        "{}-{}h{}-{}",
        tool.name(),
        bed.hosts.len(),
        ctx.forks.map(|f| format!("-f{f}")).unwrap_or_default(),
        if rerun { "rerun" } else { "first" }
    );
    let (out, err) = (
        ctx.logs.join(format!("{label}.out")),
        ctx.logs.join(format!("{label}.err")),
    );
    let mut cmd = tool.command(bed, ctx.repo, ctx.forks);
    let load1 = load_average();
    let before = targets::Snapshot::take(bed);
    let usage = measure::run_measured(&mut cmd, &out, &err, ctx.limit)
        .unwrap_or_else(|e| panic!("cannot run {}: {e} ({cmd:?})", tool.name()));
    let target = targets::Snapshot::take(bed).since(&before);
    let stdout = std::fs::read_to_string(&out).unwrap_or_default();
    let stderr = std::fs::read_to_string(&err).unwrap_or_default();
    let round_trips = tool.round_trips(&stderr).or(target.sessions);
    let changed = tool.changed(&stdout, &stderr);
    let mut problems = Vec::new();
    let skipped = usage
        .timed_out
        .then(|| format!("skipped: > {} s", ctx.limit.map_or(0, |l| l.as_secs())));
    // Killed at the time limit: nothing to check (the note is in the row).
    if skipped.is_none() {
        problems = check_run(&label, bed, ctx, rerun, changed);
        if usage.code != 0 {
            problems.insert(
                0,
                format!(
                    "{label}: exit code {} (see {})\n{}",
                    usage.code,
                    out.display(),
                    tail(&stdout, &stderr)
                ),
            );
        }
    }
    Row {
        tool,
        hosts: bed.hosts.len(),
        forks: ctx.forks,
        skipped,
        rerun,
        usage,
        load1,
        changed,
        problems,
        target,
        round_trips,
    }
}

/// What is wrong with a finished run: a re-run that changed something, a host without the work.
fn check_run(
    label: &str,
    bed: &TestBed,
    ctx: &RunCtx<'_>,
    rerun: bool,
    changed: Option<u64>,
) -> Vec<String> {
    let mut problems = Vec::new();
    if rerun {
        match changed {
            Some(0) => {}
            Some(c) => problems.push(format!("{label}: idempotent re-run reported {c} change(s)")),
            None => problems.push(format!("{label}: no change summary found in the output")),
        }
    } else {
        let found = targets::for_each_host(bed, |h| verify::check_host(h, &h.name, ctx.data_csv));
        problems.extend(found.into_iter().flatten().map(|p| format!("{label}: {p}")));
    }
    problems
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
