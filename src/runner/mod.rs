//! The runner: inventory + playbook + vars → per-host task execution.
