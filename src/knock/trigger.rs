//! Trigger: authorize, coalesce per host, bounded queue and worker pool that calls the runner.
