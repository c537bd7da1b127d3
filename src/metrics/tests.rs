//! Tests of the metrics page: every family once with HELP and TYPE, counters by label.

use super::*;

fn gauges() -> Gauges {
    Gauges {
        queued: 3,
        running: 2,
        tracked_attempts: 7,
        capture_packets: 1000,
        capture_drops: 4,
        history_suppressed: 1,
        history: HistoryHealth {
            backend: "sqlite",
            db_up: true,
            spool_rows: 0,
            write_errors: 5,
        },
        healthy: true,
    }
}

#[test]
fn the_page_has_every_family_once_with_help_and_type() {
    let r = Registry::new();
    r.knock("boot", "accepted");
    let page = r.render(&gauges());
    for name in METRIC_NAMES {
        let help = format!("# HELP {name} ");
        let ty = format!("# TYPE {name} ");
        assert_eq!(page.matches(&help).count(), 1, "{name}:\n{page}");
        assert_eq!(page.matches(&ty).count(), 1, "{name}:\n{page}");
    }
    // Nothing exported that the list (and with it the docs and the dashboard test) misses.
    let families = page.lines().filter(|l| l.starts_with("# TYPE ")).count();
    assert_eq!(families, METRIC_NAMES.len(), "{page}");
    for line in [
        "knockplay_queue_depth 3",
        "knockplay_runs_in_progress 2",
        "knockplay_tracked_attempts 7",
        "knockplay_capture_packets_total 1000",
        "knockplay_capture_drops_total 4",
        "knockplay_history_suppressed_total 1",
        "knockplay_history_up{backend=\"sqlite\"} 1",
        "knockplay_history_write_errors_total{backend=\"sqlite\"} 5",
        "knockplay_history_spool_rows{backend=\"sqlite\"} 0",
        "knockplay_healthy 1",
        "# TYPE knockplay_run_duration_seconds histogram",
        "# TYPE knockplay_knocks_total counter",
        "# TYPE knockplay_queue_depth gauge",
    ] {
        assert!(page.lines().any(|l| l == line), "{line} missing:\n{page}");
    }
    let mut down = gauges();
    down.history.db_up = false;
    down.healthy = false;
    let page = r.render(&down);
    assert!(
        page.contains("\nknockplay_history_up{backend=\"sqlite\"} 0\n"),
        "{page}"
    );
    assert!(page.contains("\nknockplay_healthy 0\n"), "{page}");
}

#[test]
fn knocks_and_runs_are_counted_by_door_and_result() {
    let r = Registry::new();
    for _ in 0..3 {
        r.knock("boot", "accepted");
    }
    r.knock("boot", "wrong_order");
    r.knock("web \"x\"", "cooldown");
    r.run_finished("boot", "ok", Some(Duration::from_millis(1500)));
    r.run_finished("boot", "ok", Some(Duration::from_secs(40)));
    r.run_finished("boot", "failed", Some(Duration::from_secs(4000)));
    r.run_finished("boot", "interrupted", None);
    let page = r.render(&gauges());
    for line in [
        "knockplay_knocks_total{door=\"boot\",result=\"accepted\"} 3",
        "knockplay_knocks_total{door=\"boot\",result=\"wrong_order\"} 1",
        "knockplay_knocks_total{door=\"web \\\"x\\\"\",result=\"cooldown\"} 1",
        "knockplay_runs_total{door=\"boot\",status=\"ok\"} 2",
        "knockplay_runs_total{door=\"boot\",status=\"failed\"} 1",
        "knockplay_runs_total{door=\"boot\",status=\"interrupted\"} 1",
        // Interrupted runs have no duration: three observations.
        "knockplay_run_duration_seconds_bucket{door=\"boot\",le=\"1\"} 0",
        "knockplay_run_duration_seconds_bucket{door=\"boot\",le=\"2.5\"} 1",
        "knockplay_run_duration_seconds_bucket{door=\"boot\",le=\"60\"} 2",
        "knockplay_run_duration_seconds_bucket{door=\"boot\",le=\"3600\"} 2",
        "knockplay_run_duration_seconds_bucket{door=\"boot\",le=\"+Inf\"} 3",
        "knockplay_run_duration_seconds_sum{door=\"boot\"} 4041.5",
        "knockplay_run_duration_seconds_count{door=\"boot\"} 3",
    ] {
        assert!(page.lines().any(|l| l == line), "{line} missing:\n{page}");
    }
}

#[test]
fn run_duration_buckets_ascend() {
    assert!(RUN_SECONDS_BUCKETS.windows(2).all(|w| w[0] < w[1]));
    assert!(RUN_SECONDS_BUCKETS
        .iter()
        .all(|b| b.is_finite() && *b > 0.0));
}
