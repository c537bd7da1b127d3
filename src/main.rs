//! The `knockplay` binary: parse the command line, set up logging and signals, call the library.

use std::io::IsTerminal;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use knockplay::cli::{self, Command};
use knockplay::signals::{self, Signal};

fn main() {
    let cli = match cli::parse() {
        Ok(c) => c,
        Err(code) => std::process::exit(code),
    };
    let verbose = match &cli.command {
        Command::Run(a) => a.verbose,
        _ => 1,
    };
    let default = match verbose {
        0 | 1 => "warn",
        2 => "info",
        _ => "debug",
    };
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("KNOCKPLAY_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default)),
        )
        .with_writer(std::io::stderr)
        // Escape codes only for a terminal: logs redirected to a file or journald stay plain text.
        .with_ansi(std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none())
        .init();
    let cancel = Arc::new(AtomicBool::new(false));
    // The listener routes its own signals (graceful stop, SIGHUP reload).
    if matches!(cli.command, Command::Run(_)) {
        install_interrupt(cancel.clone());
    }
    let code = cli::dispatch(cli, cancel.clone());
    std::process::exit(if cancel.load(Ordering::Relaxed) && code == 0 {
        knockplay::runner::exit::INTERRUPTED
    } else {
        code
    });
}

/// First Ctrl-C/SIGTERM: stop between tasks; second: exit now.
fn install_interrupt(cancel: Arc<AtomicBool>) {
    let mut seen = false;
    let routed = signals::route(&[Signal::Interrupt, Signal::Terminate], move |_| {
        if seen {
            std::process::exit(knockplay::runner::exit::INTERRUPTED);
        }
        seen = true;
        eprintln!("\n [ERROR]: User interrupted execution");
        cancel.store(true, Ordering::SeqCst);
    });
    if let Err(e) = routed {
        // The run still works; Ctrl-C just ends it at once instead of between tasks.
        tracing::warn!("cannot route Ctrl-C/SIGTERM: {e}");
    }
}
