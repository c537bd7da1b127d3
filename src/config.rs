//! knock.toml: the listener configuration model (unknown keys rejected) and its validation.
