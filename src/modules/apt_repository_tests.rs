//! Tests of `apt_repository`: Ansible's line parsing and rendering, file names, adding and
//! removing sources, the probe parser and the apply script.

use super::*;
