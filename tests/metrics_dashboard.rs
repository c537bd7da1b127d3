//! The Grafana dashboard in `examples/` and the README's Metrics section against what the
//! listener exports: the JSON parses, every metric a query names exists (with `_bucket`, `_sum`,
//! `_count` for the histogram), `rate`/`increase` are applied to counters only, and the README
//! lists every metric.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

use knockplay::metrics::{Gauges, HistoryHealth, Registry, METRIC_NAMES};

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Metric name → type, from a page the registry renders (the types as the listener writes them).
fn exported_types() -> BTreeMap<String, String> {
    let r = Registry::new();
    r.knock("d", "accepted");
    r.run_finished("d", "ok", Some(std::time::Duration::from_secs(1)));
    let page = r.render(&Gauges {
        queued: 0,
        running: 0,
        tracked_attempts: 0,
        capture_packets: 0,
        capture_drops: 0,
        history_suppressed: 0,
        history: HistoryHealth {
            backend: "sqlite",
            db_up: true,
            spool_rows: 0,
            write_errors: 0,
        },
        healthy: true,
    });
    page.lines()
        .filter_map(|l| l.strip_prefix("# TYPE "))
        .filter_map(|l| l.split_once(' '))
        .map(|(n, t)| (n.to_string(), t.to_string()))
        .collect()
}

/// `knockplay_...` identifiers in a query, each with whether `rate(` or `increase(` wraps it.
fn names_in(expr: &str) -> Vec<(String, bool)> {
    let mut out = Vec::new();
    let mut rest = expr;
    while let Some(i) = rest.find("knockplay_") {
        let before = &rest[..i];
        let tail = &rest[i..];
        let end = tail
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(tail.len());
        let rated = before.ends_with("rate(") || before.ends_with("increase(");
        out.push((tail[..end].to_string(), rated));
        rest = &tail[end..];
    }
    out
}

/// Every `expr` and template `query` string in the dashboard.
fn queries(v: &serde_json::Value, out: &mut Vec<String>) {
    match v {
        serde_json::Value::Object(m) => {
            for (k, v) in m {
                match (k.as_str(), v) {
                    ("expr" | "definition", serde_json::Value::String(s)) => out.push(s.clone()),
                    _ => queries(v, out),
                }
            }
        }
        serde_json::Value::Array(a) => a.iter().for_each(|v| queries(v, out)),
        _ => {}
    }
}

#[test]
fn the_dashboard_queries_only_metrics_the_listener_exports() {
    let path = repo().join("examples/grafana-dashboard.json");
    let text = std::fs::read_to_string(&path).unwrap();
    let dash: serde_json::Value =
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let types = exported_types();
    assert_eq!(
        types.keys().cloned().collect::<BTreeSet<_>>(),
        METRIC_NAMES.iter().map(|s| s.to_string()).collect(),
        "METRIC_NAMES and the page disagree"
    );

    let panels = dash["panels"].as_array().expect("panels");
    let mut ids = BTreeSet::new();
    for p in panels {
        assert!(
            ids.insert(p["id"].as_u64().expect("panel id")),
            "duplicate id: {p}"
        );
        if p["type"] != "row" {
            let targets = p["targets"].as_array().map(Vec::len).unwrap_or(0);
            assert!(targets > 0, "panel without a query: {}", p["title"]);
        }
    }

    let mut all = Vec::new();
    queries(&dash, &mut all);
    let mut used = BTreeSet::new();
    for q in &all {
        for (name, rated) in names_in(q) {
            let family = ["_bucket", "_sum", "_count"]
                .iter()
                .find_map(|s| name.strip_suffix(s))
                .filter(|base| types.get(*base).map(String::as_str) == Some("histogram"))
                .unwrap_or(&name)
                .to_string();
            let ty = types.get(&family).unwrap_or_else(|| {
                panic!("the dashboard queries {name}, which is not exported: {q}")
            });
            if rated {
                assert!(ty != "gauge", "rate/increase over the gauge {name}: {q}");
            }
            used.insert(family);
        }
    }
    for wanted in [
        "knockplay_knocks_total",
        "knockplay_runs_total",
        "knockplay_run_duration_seconds",
        "knockplay_queue_depth",
        "knockplay_runs_in_progress",
        "knockplay_capture_drops_total",
        "knockplay_history_up",
        "knockplay_history_spool_rows",
    ] {
        assert!(
            used.contains(wanted),
            "the dashboard does not show {wanted}"
        );
    }
}

#[test]
fn the_readme_lists_every_metric() {
    let readme = std::fs::read_to_string(repo().join("README.md")).unwrap();
    let section = readme
        .split("\n## Metrics\n")
        .nth(1)
        .expect("a '## Metrics' section")
        .split("\n## ")
        .next()
        .unwrap_or_default();
    for name in METRIC_NAMES {
        assert!(
            section.contains(&format!("`{name}`")),
            "README Metrics: {name} missing"
        );
    }
    for (name, _) in names_in(section) {
        let family = ["_bucket", "_sum", "_count"]
            .iter()
            .find_map(|s| name.strip_suffix(s).filter(|b| METRIC_NAMES.contains(b)))
            .unwrap_or(&name);
        assert!(
            METRIC_NAMES.contains(&family),
            "README names {name}, not exported"
        );
    }
}

#[test]
fn names_are_found_with_their_rate() {
    assert_eq!(
        names_in("sum(rate(knockplay_knocks_total{door=~\"$door\"}[5m])) / knockplay_queue_depth"),
        vec![
            ("knockplay_knocks_total".to_string(), true),
            ("knockplay_queue_depth".to_string(), false),
        ]
    );
}
