//! SIGTERM/SIGINT → graceful stop, SIGHUP → reload, delivered to a [`Control`].
//!
//! The handlers only set atomic flags (async-signal-safe); a small thread turns them into
//! `Control` calls.

use std::io;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

use super::service::Control;

static STOP: AtomicBool = AtomicBool::new(false);
static RELOAD: AtomicBool = AtomicBool::new(false);
static TARGET: OnceLock<Mutex<Option<Control>>> = OnceLock::new();

extern "C" fn on_signal(sig: libc::c_int) {
    if sig == libc::SIGHUP {
        RELOAD.store(true, Ordering::SeqCst);
    } else {
        STOP.store(true, Ordering::SeqCst);
    }
}

/// Routes SIGTERM, SIGINT and SIGHUP to `control` (the latest call wins).
pub fn install(control: &Control) -> io::Result<()> {
    let target = TARGET.get_or_init(|| Mutex::new(None));
    let first = {
        let mut t = target.lock().unwrap_or_else(|p| p.into_inner());
        let first = t.is_none();
        *t = Some(control.clone());
        first
    };
    if !first {
        return Ok(());
    }
    for sig in [libc::SIGTERM, libc::SIGINT, libc::SIGHUP] {
        // SAFETY: the handler only stores to atomics; sigaction is given a zeroed, valid struct.
        unsafe {
            let mut sa: libc::sigaction = std::mem::zeroed();
            sa.sa_sigaction = on_signal as *const () as usize;
            sa.sa_flags = libc::SA_RESTART;
            libc::sigemptyset(&mut sa.sa_mask);
            if libc::sigaction(sig, &sa, std::ptr::null_mut()) != 0 {
                return Err(io::Error::last_os_error());
            }
        }
    }
    std::thread::Builder::new()
        .name("knockplay-signals".into())
        .spawn(|| loop {
            std::thread::sleep(Duration::from_millis(100));
            let stop = STOP.swap(false, Ordering::SeqCst);
            let reload = RELOAD.swap(false, Ordering::SeqCst);
            if !stop && !reload {
                continue;
            }
            let target = TARGET
                .get()
                .and_then(|t| t.lock().unwrap_or_else(|p| p.into_inner()).clone());
            if let Some(c) = target {
                if reload {
                    tracing::info!("SIGHUP: reloading the configuration");
                    c.reload();
                }
                if stop {
                    tracing::info!("stop signal: shutting down gracefully");
                    c.shutdown();
                }
            }
        })?;
    Ok(())
}
