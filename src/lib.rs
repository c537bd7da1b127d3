//! knockplay: machines knock, knockplay configures them.
//!
//! Architecture map (data flows top to bottom):
//!
//! - [`knock`]      wire bytes → knock events → per-source sequence state → trigger
//!   - `knock::listener`  capture threads, one per interface: an own `AF_PACKET` socket with a
//!     kernel BPF filter and drop counters (`listener/socket.rs`, `listener/bpf.rs`); pnet only
//!     lists interfaces (`config`)
//!   - `knock::wire`      checked zero-copy views over captured frames → [`knock::wire::Knock`]
//!   - `knock::sequence`  sans-IO sequence tracker: `observe(knock, now)`
//!   - `knock::spa`       SPA packets (XChaCha20-Poly1305, a key per door by HKDF): seal, open,
//!     `verify(packet, now, replay cache)`; SPA runs pin the host keys the packet carried
//!   - `knock::trigger`   authorize, coalesce, queue, bounded worker pool → [`knock::Launcher`]
//!     (the runner implements it; `knock` never imports the runner)
//!   - `knock::service`   `listen`: starts and supervises the above; `Control` stops and reloads
//!   - `knock::client`    `knockplay knock`: sends knock packets or an SPA packet
//!   - `knock::port`, `knock::flags`  door syntax: `9000/tcp` ports and `syn,!ack` flag rules
//! - [`cli`]        command line → validated options → library calls
//! - [`config`]     knock.toml: `raw` (serde model with spans) → `validate` (+ `validate/door`) →
//!   `ListenConfig`; `system` reads interfaces and default routes
//! - [`history`]    durable knock/run history (SQLite, or PostgreSQL shared by listeners) and `knockplay history`
//! - [`metrics`]    Prometheus metrics and `/healthz`: counters, the text format (`exposition`),
//!   a bounded HTTP/1.1 endpoint (`http`); `knock::service::exporter` feeds it
//! - [`inventory`]  hosts, groups, host/group vars, host patterns (`ini`, `yaml_source`, `vars_dir`)
//! - [`playbook`]   YAML → plays/tasks with positions; templating; module arguments
//!   - `playbook::yaml`      bounded YAML loader with positions (size, depth, alias expansion)
//!   - `playbook::parse`     playbooks and plays; `parse/task`, `parse/role`, `parse/fields`
//!   - `playbook::template`  minijinja with Ansible's filters (`template/filters/*`), tests, lookups
//!   - `playbook::args`, `keywords`, `fqcn`  argument forms, keyword lists, `ansible.builtin.` names
//! - [`runner`]     inventory + playbook + vars → per-host task execution, recap, reports
//!   - `runner::play`     plays, host order, forks and serial batches; a pool of `--forks` threads
//!   - `runner::walk`     blocks/rescue/always, includes, handlers; `runner::task` one leaf task;
//!     `runner::loops` loop items; `runner::result` module result → registered value
//!   - `runner::keywords` a task's keywords resolved once per task and host (`TaskKeywords`)
//!   - `runner::control`  control modules (`set_fact`, `meta`, …) return an `Effect`
//!   - `runner::report`, `escape`, `deadline`, `connect`, `knocked` (the listener's `Launcher`)
//! - [`ssh`]        one session per host: `options`, `connect`, `auth`, `transport`, `channel`,
//!   `known_hosts`, `become_`; commands run in one long-lived `/bin/sh` per session (the command
//!   shell, `ssh/shell_session.rs`; its protocol is the pure `ssh/framer.rs`)
//! - [`modules`]    one file per task module: plan shell commands from facts, then apply. Shared
//!   helpers, one set: `params` (each module's `Spec`), `args` + `coerce` (reading values through
//!   it), `probe`, `plan` (`finish`), `write`, `mode`, `textfile`, `control_specs`, `testing`
//! - [`facts`]      fact gathering in one round trip: one shell script + a pure parser
//!
//! Small shared pieces, each written once:
//!
//! - [`private_fs`] controller state kept private: directories 0700, files 0600
//! - [`counters`]   run counters (ok, changed, …) for the recap, JSON report, knocked runs, history
//! - [`shell`]      POSIX shell text: quoting, `shlex`-style word splitting, base64 here-documents
//! - [`signals`]    SIGINT/SIGTERM/SIGHUP → a handler (tokio's signal driver), for `run` and `listen`
//! - [`timefmt`]    time as text: RFC 3339 history stamps, Python-style command result times
//! - [`value`]      the variable value type; boolean, seconds and count coercion

pub mod ansible_cfg;
pub mod cli;
pub mod config;
pub mod counters;
pub mod facts;
pub mod history;
pub mod inventory;
pub mod knock;
pub mod metrics;
pub mod modules;
pub mod playbook;
pub mod private_fs;
pub mod runner;
pub mod shell;
pub mod signals;
pub mod ssh;
pub mod timefmt;
pub mod value;
pub mod vault;
