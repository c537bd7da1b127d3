//! Signals reach the listener: SIGHUP reloads (a bad file is rejected), SIGTERM stops it
//! gracefully. Its own test binary, since signal handlers are process-wide.

mod knock_support;

use std::time::Duration;

use knock_support::{privileged, NetNs, RecordingLauncher};
use knockplay::knock::{listen, Control};

#[test]
fn sighup_reloads_and_sigterm_stops() {
    if !privileged() {
        eprintln!("skipped: needs root to create a network namespace and capture");
        return;
    }
    let ns = NetNs::create(15);
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("site.yml"), "- hosts: all\n  tasks: []\n").unwrap();
    let cfg = dir.path().join("knock.toml");
    let good = format!(
        "[listener]\ninterfaces = [\"{}\"]\n[runner]\nlog_dir = \"{d}/logs\"\nstate_dir = \"{d}/state\"\n\
         [[door]]\nname = \"base\"\nsequence = [\"7000\", \"8000\"]\nallow = [\"any\"]\nplaybook = \"site.yml\"\n",
        ns.host_if,
        d = dir.path().display()
    );
    std::fs::write(&cfg, &good).unwrap();
    let control = Control::new();
    control.install_signal_handlers().unwrap();
    let listener = {
        let c = control.clone();
        let config = knockplay::config::load(&cfg).unwrap();
        std::thread::spawn(move || listen(config, RecordingLauncher::new(Duration::ZERO), c))
    };
    assert!(control.wait_ready(Duration::from_secs(10)));

    // SAFETY: raise() sends a signal to this process; the handlers only set flags.
    unsafe { libc::raise(libc::SIGHUP) };
    assert!(control.wait_for(Duration::from_secs(5), |s| s.reloads == 1));
    std::fs::write(&cfg, good.replace("sequence", "sequense")).unwrap();
    unsafe { libc::raise(libc::SIGHUP) };
    assert!(control.wait_for(Duration::from_secs(5), |s| s.rejected_reloads == 1));

    unsafe { libc::raise(libc::SIGTERM) };
    let summary = listener.join().unwrap().unwrap();
    assert_eq!(
        (summary.stats.reloads, summary.stats.rejected_reloads),
        (1, 1)
    );
}
