//! Process signals → a handler of the caller's: the one mechanism behind `run` (Ctrl-C stops
//! between tasks, a second one exits) and `listen` (SIGTERM/SIGINT stop, SIGHUP reloads).
//!
//! tokio's signal driver does the work, on a thread of its own with a current-thread runtime:
//! its process-wide handler only wakes that thread (no code of ours runs in signal context, no
//! polling), and it chains with other handlers. The handler gets signals in order of arrival;
//! several of one kind that arrive before it runs are delivered once.

use std::future::poll_fn;
use std::io;
use std::task::Poll;

use tokio::signal::unix::{signal, SignalKind};

/// The signals knockplay reacts to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Signal {
    /// SIGINT (Ctrl-C).
    Interrupt,
    /// SIGTERM.
    Terminate,
    /// SIGHUP.
    Hangup,
}

impl Signal {
    fn kind(self) -> SignalKind {
        match self {
            Signal::Interrupt => SignalKind::interrupt(),
            Signal::Terminate => SignalKind::terminate(),
            Signal::Hangup => SignalKind::hangup(),
        }
    }
}

/// Calls `on_signal` on a dedicated thread for each of `signals` that arrives. The handlers are
/// in place when this returns; signals not listed keep their default action. Call it once per
/// process for a given signal: every route set up receives it.
pub fn route(
    signals: &[Signal],
    mut on_signal: impl FnMut(Signal) + Send + 'static,
) -> io::Result<()> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .build()?;
    let mut streams = {
        let _in_runtime = runtime.enter();
        signals
            .iter()
            .map(|&s| Ok((s, signal(s.kind())?)))
            .collect::<io::Result<Vec<_>>>()?
    };
    std::thread::Builder::new()
        .name("knockplay-signals".into())
        .spawn(move || {
            runtime.block_on(async move {
                loop {
                    let next = poll_fn(|cx| {
                        for (which, stream) in streams.iter_mut() {
                            match stream.poll_recv(cx) {
                                Poll::Ready(Some(())) => return Poll::Ready(Some(*which)),
                                // The driver is gone: nothing more will arrive.
                                Poll::Ready(None) => return Poll::Ready(None),
                                Poll::Pending => {}
                            }
                        }
                        Poll::Pending
                    })
                    .await;
                    match next {
                        Some(s) => on_signal(s),
                        None => return,
                    }
                }
            })
        })?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::mpsc::channel;
    use std::time::Duration;

    // SIGHUP only: no other unit test routes it, and SIGINT/SIGTERM must keep stopping the run.
    #[test]
    fn a_routed_signal_reaches_the_handler() {
        let (tx, rx) = channel();
        route(&[Signal::Hangup], move |s| {
            let _ = tx.send(s);
        })
        .unwrap();
        for _ in 0..2 {
            // SAFETY: raise() only sends a signal to this process; it is routed above.
            assert_eq!(unsafe { libc::raise(libc::SIGHUP) }, 0);
            assert_eq!(
                rx.recv_timeout(Duration::from_secs(5)).unwrap(),
                Signal::Hangup
            );
        }
    }
}
