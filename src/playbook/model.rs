//! Plays, tasks, blocks and roles as parsed from YAML, with source positions.
