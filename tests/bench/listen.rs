//! Listener benchmark (issue 4): hosts boot, knock, and are configured with `bench/listen.yml` by
//! `knockplay listen`, and by the classic glue it replaces — `knockd` whose door command runs
//! `ansible-playbook -i %IP%, bench/listen.yml` — on the same kind of hosts, with the same sequence and
//! the same stock `knock` client.
//!
//! Two phases per trigger, each on a fresh bed and a freshly started listener (measured like the run
//! benchmark: wall, CPU of the listener and everything it started, peak memory):
//! - solo: one host knocks `KP_BENCH_SOLO_KNOCKS` times (default 5), each time after the previous run
//!   ended; the first run configures, the others find nothing to change.
//! - herd: `KP_BENCH_LISTEN_HOSTS` hosts (default 50) knock at the same moment (they wait in
//!   `testbed-wait go`).
//!
//! Time stamps come from the hosts themselves (containers share the controller's clock): the user data
//! appends `date +%s.%N` to `/kp-bench/<host>.knock` right after the knock client exits (its last packet
//! is out), and the playbook's first and last tasks append to `<host>.first` and `<host>.configured`.
//! `/kp-bench` is a directory of the controller mounted into every host, so nothing polls the hosts while
//! the listener works (a `docker exec` per host and second would load the 2-core machine).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use crate::common::{Host, TestBed, UserDataOrder};
use crate::measure::{self, Usage};

/// The door's sequence, as knock.toml and knockd.conf spell it, and as the stock client sends it.
const SEQ_KNOCKPLAY: &str = r#"["7000/tcp", "8000/udp", "9000/tcp"]"#;
const SEQ_KNOCKD: &str = "7000:tcp,8000:udp,9000:tcp";
const KNOCK: &str = "knock $KP_GATEWAY 7000 8000:udp 9000";
/// The SPA door's knock (the client and the key are bind-mounted into the hosts).
const SPA_KNOCK: &str =
    "knockplay knock $KP_GATEWAY --spa --key /etc/knockplay/fleet.key --door bench";
/// Where the hosts see the stamp directory.
const STAMPS: &str = "/kp-bench";
/// A phase gives up after this long.
const PHASE_TIMEOUT: Duration = Duration::from_secs(900);
/// knockd + ansible-playbook is stopped this long after a herd's signal (its ansible runs can take
/// far longer with hundreds of hosts); the table says so.
const KNOCKD_HERD_LIMIT: Duration = Duration::from_secs(600);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Trigger {
    Knockplay,
    /// knockplay with an SPA door: the hosts send `knockplay knock --spa`.
    KnockplaySpa,
    Knockd,
}

impl Trigger {
    pub fn name(self) -> &'static str {
        match self {
            Trigger::Knockplay => "knockplay",
            Trigger::KnockplaySpa => "knockplay-spa",
            Trigger::Knockd => "knockd+ansible",
        }
    }
    pub fn parse(s: &str) -> Option<Trigger> {
        match s.trim() {
            "knockplay" => Some(Trigger::Knockplay),
            "spa" | "knockplay-spa" => Some(Trigger::KnockplaySpa),
            "knockd" | "knockd+ansible" => Some(Trigger::Knockd),
            _ => None,
        }
    }
}

/// What one phase measured.
#[derive(Debug, Clone)]
pub struct Outcome {
    pub trigger: Trigger,
    /// knockplay's max_concurrent_runs for this phase.
    pub max_runs: Option<usize>,
    pub herd: bool,
    pub hosts: usize,
    /// Knocks sent (stamps written by the hosts).
    pub knocks: usize,
    /// Runs that started (first-task stamps).
    pub started: usize,
    /// Knocks the listener detected, from its own log: knockplay's `knock accepted` lines, knockd's
    /// `running command:` lines (a detected knock whose ansible-playbook then failed counts here).
    pub detected: usize,
    /// Hosts configured at least once.
    pub configured: usize,
    /// Hosts configured more than once (herd: each host knocks once).
    pub repeated: usize,
    /// Seconds from a knock to the first task of the run it caused, per run.
    pub latency: Vec<f64>,
    /// Seconds from a knock to the end of the run it caused, per run.
    pub to_configured: Vec<f64>,
    /// Herd: seconds from the first knock to the last host configured.
    pub herd_time: Option<f64>,
    pub usage: Usage,
    pub load1: f64,
    /// knockd + ansible-playbook was stopped at [`KNOCKD_HERD_LIMIT`] with runs still going.
    pub cut_off: bool,
    pub problems: Vec<String>,
}

impl Outcome {
    /// The trigger's name, with knockplay's pool size for a herd: `knockplay/10`.
    pub fn label(&self) -> String {
        match self.max_runs {
            Some(n) if self.herd => format!("{}/{n}", self.trigger.name()),
            _ => self.trigger.name().to_string(),
        }
    }
}

/// Parameters of the listener benchmark (environment).
pub struct Params {
    pub herd_hosts: usize,
    pub solo_knocks: usize,
    /// knockplay's max_concurrent_runs; the herd runs once per value.
    pub max_concurrent_runs: Vec<usize>,
    pub triggers: Vec<Trigger>,
}

impl Params {
    pub fn from_env() -> Params {
        let num = |key: &str, default: usize| -> usize {
            std::env::var(key)
                .ok()
                .map(|v| {
                    v.trim()
                        .parse()
                        .unwrap_or_else(|_| panic!("{key}: not a number: {v:?}"))
                })
                .unwrap_or(default)
        };
        let triggers = std::env::var("KP_BENCH_LISTEN_TOOLS")
            .unwrap_or_else(|_| "knockplay,knockplay-spa,knockd".into())
            .split(',')
            .map(|s| {
                Trigger::parse(s).unwrap_or_else(|| {
                    panic!(
                        "KP_BENCH_LISTEN_TOOLS: unknown {s:?} (knockplay, knockplay-spa, knockd)"
                    )
                })
            })
            .collect();
        Params {
            herd_hosts: num("KP_BENCH_LISTEN_HOSTS", 50),
            solo_knocks: num("KP_BENCH_SOLO_KNOCKS", 5),
            // 10 is knock.toml's default (what a user gets without tuning); 50 lets the whole herd run
            // at once, as knockd does.
            max_concurrent_runs: std::env::var("KP_BENCH_LISTEN_RUNS")
                .unwrap_or_else(|_| "10,50".into())
                .split(',')
                .map(|v| {
                    v.trim()
                        .parse()
                        .unwrap_or_else(|_| panic!("KP_BENCH_LISTEN_RUNS: not a number: {v:?}"))
                })
                .collect(),
            triggers,
        }
    }
}

/// Runs every phase for every trigger; returns the outcomes in order.
pub fn run_all(p: &Params, repo: &Path, logs: &Path, data_csv: &[u8]) -> Vec<Outcome> {
    let mut out = Vec::new();
    let first_limit = p.max_concurrent_runs.first().copied().unwrap_or(10);
    for herd in [false, true] {
        for &t in &p.triggers {
            // The pool size matters only for a herd.
            let limits = match t {
                Trigger::Knockplay if herd => p.max_concurrent_runs.clone(),
                Trigger::Knockplay | Trigger::KnockplaySpa => vec![first_limit],
                Trigger::Knockd => vec![0],
            };
            for limit in limits {
                let o = phase(t, herd, limit, p, repo, logs, data_csv);
                eprintln!("bench: {}", outcome_line(&o));
                out.push(o);
            }
        }
    }
    out
}

fn phase(
    trigger: Trigger,
    herd: bool,
    max_runs: usize,
    p: &Params,
    repo: &Path,
    logs: &Path,
    data_csv: &[u8],
) -> Outcome {
    let n = if herd { p.herd_hosts } else { 1 };
    let label = match trigger {
        Trigger::Knockplay if herd => format!("listen-knockplay{max_runs}-herd"),
        Trigger::Knockplay => "listen-knockplay-solo".to_string(),
        Trigger::KnockplaySpa => format!(
            "listen-knockplay-spa-{}",
            if herd { "herd" } else { "solo" }
        ),
        Trigger::Knockd => format!("listen-knockd-{}", if herd { "herd" } else { "solo" }),
    };
    let stamps = tempfile::Builder::new()
        .prefix("kp-bench-stamps-")
        .tempdir()
        .expect("stamp dir");
    let after_knock = format!("date +%s.%N >> {STAMPS}/$(hostname).knock");
    let knock = match trigger {
        Trigger::KnockplaySpa => SPA_KNOCK,
        _ => KNOCK,
    };
    let userdata = if herd {
        format!("testbed-wait go && {knock} && {after_knock}")
    } else {
        format!(
            "for i in $(seq 1 {}); do testbed-wait k$i || exit 1; {knock} && {after_knock}; done",
            p.solo_knocks
        )
    };
    let keys = tempfile::Builder::new()
        .prefix("kp-bench-key-")
        .tempdir()
        .expect("key dir");
    let fleet_key = keys.path().join("fleet.key");
    knockplay::knock::spa::write_new_key_file(&fleet_key).expect("fleet key");
    let mut builder = TestBed::builder()
        .hosts(n)
        .userdata(&userdata, UserDataOrder::AfterSshd)
        .mount_rw(stamps.path(), STAMPS);
    if trigger == Trigger::KnockplaySpa {
        builder = builder
            .mount(env!("CARGO_BIN_EXE_knockplay"), "/usr/local/bin/knockplay")
            .mount(&fleet_key, "/etc/knockplay/fleet.key");
    }
    let bed = builder
        .start()
        .unwrap_or_else(|e| panic!("cannot start {n} test host(s): {e}"));
    eprintln!(
        "bench: {label}: {n} host(s) up in {:.1} s",
        bed.started_in.as_secs_f64()
    );
    let (out_path, err_path) = (
        logs.join(format!("{label}.out")),
        logs.join(format!("{label}.err")),
    );
    let mut cmd = match trigger {
        Trigger::Knockplay => knockplay_command(&bed, repo, max_runs, None),
        Trigger::KnockplaySpa => knockplay_command(&bed, repo, max_runs, Some(&fleet_key)),
        Trigger::Knockd => knockd_command(&bed, repo, logs, &label),
    };
    let load1 = crate::load_average();
    let m = measure::spawn_measured(&mut cmd, &out_path, &err_path, None)
        .unwrap_or_else(|e| panic!("cannot start {}: {e} ({cmd:?})", trigger.name()));
    let mut problems = Vec::new();
    let ready = match trigger {
        Trigger::Knockplay | Trigger::KnockplaySpa => "captur",
        Trigger::Knockd => "listening on",
    };
    if !wait_until(Duration::from_secs(15), || {
        let o = std::fs::read_to_string(&out_path).unwrap_or_default()
            + &std::fs::read_to_string(&err_path).unwrap_or_default();
        o.contains(ready)
    }) {
        problems.push(format!(
            "{label}: the listener did not say {ready:?} within 15 s"
        ));
    }
    let t0 = Instant::now();
    let mut cut_off = false;
    let read = |suffix: &str| read_stamps(stamps.path(), &bed.hosts, suffix);
    if herd {
        bed.signal("go").expect("signal the herd");
        // knockplay must configure every host; knockd's glue is done when every host has knocked and no
        // command it started is still running (10 s in a row).
        let mut idle_since: Option<Instant> = None;
        loop {
            if trigger == Trigger::Knockd && t0.elapsed() > KNOCKD_HERD_LIMIT {
                cut_off = true;
                eprintln!(
                    "bench: {label}: stopped after {} s (the limit for knockd + ansible-playbook)",
                    KNOCKD_HERD_LIMIT.as_secs()
                );
                break;
            }
            let configured = read("configured")
                .values()
                .filter(|v| !v.is_empty())
                .count();
            if configured == n || t0.elapsed() > PHASE_TIMEOUT {
                break;
            }
            if trigger == Trigger::Knockd {
                let knocked = read("knock").values().filter(|v| !v.is_empty()).count();
                if knocked == n && !m.has_children() {
                    let since = *idle_since.get_or_insert_with(Instant::now);
                    if since.elapsed() > Duration::from_secs(10) {
                        break;
                    }
                } else {
                    idle_since = None;
                }
            }
            std::thread::sleep(Duration::from_millis(250));
        }
    } else {
        for i in 1..=p.solo_knocks {
            bed.signal(&format!("k{i}")).expect("signal the knock");
            let done = wait_until(PHASE_TIMEOUT, || {
                read("configured").values().all(|v| v.len() >= i)
            });
            if !done {
                problems.push(format!("{label}: knock {i} was not followed by a run"));
                break;
            }
        }
    }
    // knockd waits for its running commands when stopped; knockplay for its runs (grace period).
    let usage = m
        .finish(Some(libc::SIGTERM))
        .unwrap_or_else(|e| panic!("wait for {}: {e}", trigger.name()));

    let knocks = read("knock");
    let first = read("first");
    let configured = read("configured");
    let mut o = Outcome {
        trigger,
        max_runs: (trigger != Trigger::Knockd).then_some(max_runs),
        herd,
        hosts: n,
        knocks: knocks.values().map(Vec::len).sum(),
        started: first.values().map(Vec::len).sum(),
        detected: count_lines(
            &[&out_path, &err_path],
            match trigger {
                Trigger::Knockd => "running command:",
                _ => "knock accepted",
            },
        ),
        configured: configured.values().filter(|v| !v.is_empty()).count(),
        repeated: configured.values().filter(|v| v.len() > 1).count(),
        latency: Vec::new(),
        to_configured: Vec::new(),
        herd_time: None,
        usage,
        load1,
        cut_off,
        problems,
    };
    for h in &bed.hosts {
        let (k, f, c) = (&knocks[&h.name], &first[&h.name], &configured[&h.name]);
        // Run i follows knock i (solo: one knock at a time; herd: one knock per host).
        for (i, ks) in k.iter().enumerate() {
            if let Some(fs) = f.get(i) {
                o.latency.push(fs - ks);
            }
            if let Some(cs) = c.get(i) {
                o.to_configured.push(cs - ks);
            }
        }
    }
    if herd {
        let first_knock = knocks
            .values()
            .flatten()
            .cloned()
            .fold(f64::INFINITY, f64::min);
        let last_done = configured
            .values()
            .flatten()
            .cloned()
            .fold(f64::NEG_INFINITY, f64::max);
        if first_knock.is_finite() && last_done.is_finite() {
            o.herd_time = Some(last_done - first_knock);
        }
    }

    // What users would check: every host that was configured has the work; knockplay configures every
    // host that knocked, exactly once.
    // Stopped with SIGTERM: knockplay exits 0, knockd exits with status 15.
    if ![0, libc::SIGTERM, 128 + libc::SIGTERM].contains(&o.usage.code) {
        o.problems.push(format!(
            "{label}: {} exited with {} (see {})",
            trigger.name(),
            o.usage.code,
            out_path.display()
        ));
    }
    if o.knocks < n * if herd { 1 } else { p.solo_knocks } {
        o.problems.push(format!(
            "{label}: only {} knock(s) were sent (user data failed?)",
            o.knocks
        ));
    }
    for h in &bed.hosts {
        if configured[&h.name].is_empty() {
            if trigger != Trigger::Knockd {
                o.problems.push(format!(
                    "{label}: {} knocked and was never configured",
                    h.name
                ));
            }
            continue;
        }
        o.problems.extend(
            crate::verify::check_host(h, &h.ip.to_string(), data_csv)
                .into_iter()
                .map(|p| format!("{label}: {p}")),
        );
    }
    if trigger != Trigger::Knockd && herd && o.repeated > 0 {
        o.problems.push(format!(
            "{label}: {} host(s) were configured more than once",
            o.repeated
        ));
    }
    if !herd && o.started != p.solo_knocks {
        o.problems.push(format!(
            "{label}: {} knocks started {} runs",
            p.solo_knocks, o.started
        ));
    }
    o
}

/// Lines containing `needle` in the files.
fn count_lines(files: &[&Path], needle: &str) -> usize {
    files
        .iter()
        .map(|f| {
            std::fs::read_to_string(f)
                .unwrap_or_default()
                .lines()
                .filter(|l| l.contains(needle))
                .count()
        })
        .sum()
}

/// Stamps per host name (seconds since the epoch, one per line, in order).
fn read_stamps(dir: &Path, hosts: &[Host], suffix: &str) -> BTreeMap<String, Vec<f64>> {
    hosts
        .iter()
        .map(|h| {
            let text = std::fs::read_to_string(dir.join(format!("{}.{suffix}", h.name)))
                .unwrap_or_default();
            let v = text
                .lines()
                .filter_map(|l| l.trim().parse::<f64>().ok())
                .collect();
            (h.name.clone(), v)
        })
        .collect()
}

fn wait_until(timeout: Duration, mut f: impl FnMut() -> bool) -> bool {
    let end = Instant::now() + timeout;
    loop {
        if f() {
            return true;
        }
        if Instant::now() > end {
            return false;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// `knockplay listen` with one door on the bed's bridge: the knock.toml a user would write (defaults for
/// everything not named), root with the bed's key, knockplay's own known_hosts (accept-new).
fn knockplay_command(
    bed: &TestBed,
    repo: &Path,
    max_runs: usize,
    spa_key: Option<&Path>,
) -> Command {
    let dir = bed.dir();
    let cfg = dir.join("knock.toml");
    let how = match spa_key {
        Some(k) => format!("spa_key_file = \"{}\"", k.display()),
        None => format!("sequence = {SEQ_KNOCKPLAY}\nseq_timeout = 5"),
    };
    let text = format!(
        r#"[listener]
interfaces = ["{iface}"]

[runner]
max_concurrent_runs = {max_runs}
log_dir = "{dir}/kp-logs"
state_dir = "{dir}/kp-state"

[[door]]
name = "bench"
{how}
allow = ["{subnet}"]
playbook = "{pb}"
user = "root"
private_key = "{key}"
cooldown = 0
"#,
        iface = bed.bridge_if,
        dir = dir.display(),
        subnet = bed.subnet,
        pb = repo.join("bench/listen.yml").display(),
        key = bed.key_path.display(),
    );
    std::fs::write(&cfg, text).expect("write knock.toml");
    let mut c = Command::new(env!("CARGO_BIN_EXE_knockplay"));
    c.args(["listen", "-c"])
        .arg(cfg)
        .env("KNOCKPLAY_LOG", "info")
        .env("NO_COLOR", "1");
    c
}

/// The classic glue: knockd with the same door, whose command runs ansible-playbook against the knocking
/// address (`-i %IP%,`), pipelining on, host keys checked with accept-new into a known_hosts of its own.
fn knockd_command(bed: &TestBed, repo: &Path, logs: &Path, label: &str) -> Command {
    let dir = bed.dir();
    let ansible_logs = logs.join(format!("{label}-ansible"));
    let _ = std::fs::remove_dir_all(&ansible_logs);
    std::fs::create_dir_all(&ansible_logs).expect("create ansible log dir");
    let cfg = dir.join("glue-ansible.cfg");
    std::fs::write(
        &cfg,
        format!(
            "[defaults]\nremote_user = root\nprivate_key_file = {key}\nhost_key_checking = True\n\
             interpreter_python = /usr/bin/python3\nlocal_tmp = {dir}/ansible-tmp\nretry_files_enabled = False\n\n\
             [ssh_connection]\npipelining = True\ncontrol_path_dir = {dir}/cp\n\
             ssh_args = -C -o ControlMaster=auto -o ControlPersist=60s -o UserKnownHostsFile={dir}/glue_known_hosts \
             -o StrictHostKeyChecking=accept-new\n",
            key = bed.key_path.display(),
            dir = dir.display(),
        ),
    )
    .expect("write ansible.cfg");
    let glue = dir.join("glue.sh");
    std::fs::write(
        &glue,
        format!(
            "#!/bin/sh\n# knockd's door command: configure the host that knocked.\n\
             exec {ap} -i \"$1,\" {pb} >> {logs}/\"$1\".log 2>&1\n",
            ap = repo.join(".venv/bin/ansible-playbook").display(),
            pb = repo.join("bench/listen.yml").display(),
            logs = ansible_logs.display(),
        ),
    )
    .expect("write glue.sh");
    let conf = dir.join("knockd.conf");
    std::fs::write(
        &conf,
        format!(
            "[options]\n    LogFile = {dir}/knockd.log\n\n[bench]\n    sequence    = {SEQ_KNOCKD}\n    \
             seq_timeout = 5\n    tcpflags    = syn\n    command     = /bin/sh {glue} %IP%\n",
            dir = dir.display(),
            glue = glue.display(),
        ),
    )
    .expect("write knockd.conf");
    let mut c = Command::new("knockd");
    c.arg("-i")
        .arg(&bed.bridge_if)
        .arg("-c")
        .arg(conf)
        .arg("-v")
        .env("ANSIBLE_CONFIG", cfg)
        .env("ANSIBLE_NOCOLOR", "1")
        .env_remove("ANSIBLE_PIPELINING");
    c
}

fn percentile(v: &[f64], q: f64) -> Option<f64> {
    if v.is_empty() {
        return None;
    }
    let mut s = v.to_vec();
    s.sort_by(|a, b| a.total_cmp(b));
    let i = ((s.len() as f64 - 1.0) * q).round() as usize;
    Some(s[i.min(s.len() - 1)])
}

fn secs(x: Option<f64>) -> String {
    x.map_or("-".into(), |v| format!("{v:.2}"))
}

const HEADER: &str = "phase  trigger          hosts  knocks  detected  runs  configured  knock->first task s (med/p95/max)  knock->configured s (med)  herd done s   CPU s  max RSS MiB  tree RSS MiB  load  busy  check";

pub fn outcome_line(o: &Outcome) -> String {
    let lat = format!(
        "{} / {} / {}",
        secs(percentile(&o.latency, 0.5)),
        secs(percentile(&o.latency, 0.95)),
        secs(percentile(&o.latency, 1.0))
    );
    format!(
        "{:<5}  {:<15}  {:>5}  {:>6}  {:>8}  {:>4}  {:>10}  {:>33}  {:>25}  {:>11}  {:>6.2}  {:>11.1}  {:>12.1}  {:>4.1}  {:>3.0}%  {}",
        if o.herd { "herd" } else { "solo" },
        o.label(),
        o.hosts,
        o.knocks,
        o.detected,
        o.started,
        format!("{}/{}", o.configured, o.hosts),
        lat,
        secs(percentile(&o.to_configured, 0.5)),
        secs(o.herd_time),
        o.usage.cpu.as_secs_f64(),
        o.usage.max_rss_kib as f64 / 1024.0,
        o.usage.tree_rss_kib as f64 / 1024.0,
        o.load1,
        o.usage.machine_busy * 100.0,
        if o.problems.is_empty() && o.cut_off {
            format!("ok, stopped at {} s", KNOCKD_HERD_LIMIT.as_secs())
        } else if o.problems.is_empty() {
            "ok".to_string()
        } else {
            format!("{} problem(s)", o.problems.len())
        }
    )
}

/// The table, then the ratios knockd+ansible / knockplay per phase.
pub fn table(outcomes: &[Outcome]) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "Listener benchmark: knock -> configured with bench/listen.yml (30 tasks). knockplay/N: max_concurrent_runs = N \
         (10 is the default); knockd starts every command at once."
    );
    let _ = writeln!(s, "{}", spa_cost());
    let _ = writeln!(s, "{HEADER}");
    for o in outcomes {
        let _ = writeln!(s, "{}", outcome_line(o));
    }
    let _ = writeln!(
        s,
        "\nRatios knockd+ansible / knockplay (higher = knockplay better)"
    );
    let ratio = |a: Option<f64>, b: Option<f64>| match (a, b) {
        (Some(a), Some(b)) if b > 0.0 => format!("{:.1}x", a / b),
        _ => "-".into(),
    };
    for kp in outcomes.iter().filter(|o| o.trigger != Trigger::Knockd) {
        let Some(kd) = outcomes
            .iter()
            .find(|o| o.trigger == Trigger::Knockd && o.herd == kp.herd)
        else {
            continue;
        };
        let phase = if kp.herd { "herd" } else { "solo" };
        let _ = writeln!(
            s,
            "{phase} {:<15} knock->first task (median) {}, knock->configured (median) {}, CPU {}, tree RSS {}",
            kp.label(),
            ratio(percentile(&kd.latency, 0.5), percentile(&kp.latency, 0.5)),
            ratio(
                percentile(&kd.to_configured, 0.5),
                percentile(&kp.to_configured, 0.5)
            ),
            ratio(
                Some(kd.usage.cpu.as_secs_f64()),
                Some(kp.usage.cpu.as_secs_f64())
            ),
            ratio(
                Some(kd.usage.tree_rss_kib as f64),
                Some(kp.usage.tree_rss_kib as f64)
            ),
        );
        if kp.herd {
            let _ = writeln!(
                s,
                "     {:<15} knocks detected {}/{} vs {}/{}; runs started {} vs {}; hosts configured {}/{} vs {}/{}; first knock -> last host configured {} ({} s vs {} s{}{})",
                "",
                kp.detected,
                kp.hosts,
                kd.detected,
                kd.hosts,
                kp.started,
                kd.started,
                kp.configured,
                kp.hosts,
                kd.configured,
                kd.hosts,
                ratio(kd.herd_time, kp.herd_time),
                secs(kd.herd_time),
                secs(kp.herd_time),
                if kd.configured < kd.hosts {
                    format!(
                        "; knockd's time covers only the {} hosts whose knock it detected",
                        kd.configured
                    )
                } else {
                    String::new()
                },
                if kd.cut_off {
                    format!(
                        "; knockd + ansible-playbook stopped after {} s with runs still going",
                        KNOCKD_HERD_LIMIT.as_secs()
                    )
                } else {
                    String::new()
                }
            );
        }
    }
    s
}

/// What verifying one SPA datagram costs the listener's detector thread: garbage that carries a
/// valid header (one failed AEAD attempt: the most an attacker without the key can make it do) and
/// a valid packet (opened, checked, remembered), measured over many packets on one core.
pub fn spa_cost() -> String {
    use knockplay::knock::spa::{self, FleetKey, Message, ReplayCache, SpaDoor};
    const N: u32 = 20_000;
    let key = FleetKey::from_bytes([9; 32]);
    let doors = [SpaDoor::new(
        0,
        "bench",
        std::slice::from_ref(&key),
        spa::DEFAULT_PORT,
        60,
    )];
    let src: std::net::IpAddr = "10.0.0.5"
        .parse()
        .unwrap_or(std::net::IpAddr::from([10, 0, 0, 5]));
    let now = 1_000_000;
    let mut garbage = vec![0x5au8; 300];
    garbage[..4].copy_from_slice(&spa::HEADER);
    let mut cache = ReplayCache::new(spa::REPLAY_CAPACITY);
    let t = Instant::now();
    for _ in 0..N {
        let _ = spa::verify(
            &doors,
            spa::DEFAULT_PORT,
            src,
            &garbage,
            now,
            &mut cache,
            |_, _| true,
        );
    }
    let per_garbage = t.elapsed().as_secs_f64() / f64::from(N);
    let packets: Vec<Vec<u8>> = (0..N)
        .map(|i| {
            let mut nonce = [0u8; 16];
            nonce[..4].copy_from_slice(&i.to_be_bytes());
            let m = Message {
                door: "bench".into(),
                timestamp: now,
                nonce,
                reach: None,
                fingerprints: vec![[1; 32], [2; 32]],
                name: "bench".into(),
            };
            spa::seal(&key, &m, [3; 24]).unwrap_or_default()
        })
        .collect();
    let t = Instant::now();
    let mut ok = 0;
    for p in &packets {
        ok += spa::verify(
            &doors,
            spa::DEFAULT_PORT,
            src,
            p,
            now,
            &mut cache,
            |_, _| true,
        )
        .is_ok() as u32;
    }
    let per_valid = t.elapsed().as_secs_f64() / f64::from(N);
    format!(
        "SPA verification on one core: {:.2} us per garbage datagram with a valid header ({:.0} per second), {:.2} us per valid packet ({ok}/{N} accepted)",
        per_garbage * 1e6,
        1.0 / per_garbage,
        per_valid * 1e6
    )
}

/// Problems of all phases.
pub fn problems(outcomes: &[Outcome]) -> Vec<String> {
    outcomes.iter().flat_map(|o| o.problems.clone()).collect()
}
