//! Tests of `apt_key`: key id parsing, apt-key's listing, the decision table and the run flow
//! against a scripted remote.

use super::*;
use crate::modules::testing::{args, ctx, FakeRemote};
use serde_json::json;
