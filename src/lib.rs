//! knockplay: machines knock, knockplay configures them.
//!
//! Architecture map (data flows top to bottom):
//!
//! - [`knock`]      wire bytes → knock events → per-source sequence state → trigger
//!   - `knock::wire`      checked zero-copy views over captured frames → [`knock::wire::Knock`]
//!   - `knock::sequence`  sans-IO sequence tracker: `observe(knock, now)`
//!   - `knock::listener`  capture threads (pnet), one per interface
//!   - `knock::trigger`   authorize, coalesce, queue, bounded worker pool
//!   - `knock::client`    `knockplay knock`: sends knock packets
//! - [`cli`]        command line → validated options → library calls
//! - [`config`]     knock.toml model → validated listener config
//! - [`history`]    durable knock/run history (SQLite)
//! - [`inventory`]  hosts, groups, host/group vars, host patterns
//! - [`playbook`]   YAML → plays/tasks with positions; templating; module arguments
//! - [`runner`]     inventory + playbook + vars → per-host task execution, recap, reports
//! - [`ssh`]        one session per host: connect, auth, host keys, become quoting; commands run in
//!   one long-lived `/bin/sh` per session (the command shell, `ssh/shell_session.rs`; its protocol
//!   is the pure `ssh/framer.rs`)
//! - [`modules`]    one file per task module: plan shell commands from facts, then apply
//! - [`facts`]      fact gathering in one round trip: one shell script + a pure parser
//! - [`shell`]      POSIX shell quoting
//! - [`value`]      the variable value type and YAML-style boolean coercion

pub mod cli;
pub mod config;
pub mod counters;
pub mod facts;
pub mod history;
pub mod inventory;
pub mod knock;
pub mod modules;
pub mod playbook;
pub mod runner;
pub mod shell;
pub mod signals;
pub mod ssh;
pub mod timefmt;
pub mod value;
