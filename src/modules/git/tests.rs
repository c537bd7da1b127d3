//! Tests of the git module.
