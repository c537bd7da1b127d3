//! Differential tests of the file, command, find, unarchive, uri, pip and git modules against ansible-core: every scenario runs once through
//! ansible-playbook (`-c local`, the venv from `tests/hosts/setup`) and once through knockplay's module
//! on the same machine (commands run by the local `sh`), each in its own fresh directory after the
//! same setup; the resulting trees (paths, types, modes, link targets, contents) and the
//! changed/failed flags, failure messages and the result keys users read (`rc`, `stdout`, `stderr`,
//! `msg`, `stat.*`) must be equal. Each scenario also runs a second time in its directory (the
//! changed and failed flags of that run must be Ansible's: `changed=false` where Ansible is
//! idempotent) and once in check mode in a third directory (same flags, and the tree Ansible leaves,
//! which is the setup's).
//!
//! Scenario text may use `{D}` (the scenario's directory), `{S}` (sources prepared at the start:
//! files, archives, a bare git repository `{S}/repo.git`, wheels of `kptoy` 1.0 and 2.0 in
//! `{S}/wheels`, `{S}/req.txt`), `{U}` (a Python HTTP server on 127.0.0.1 serving `{S}/www`,
//! a redirect and a POST echo), `{python}` (the venv's python) and `{C1}` (the repository's first
//! commit). A scenario's `"tree"` option chooses what is compared after each run: the whole tree
//! (default), `"git"` (the tree without `.git`, plus each repository's HEAD, branch, status and
//! refs), `"pip"` (`pip freeze` of `{D}/venv`) or `"none"`. `KNOCKPLAY_SCENARIOS=a,b` runs only
//! the scenarios whose names start with one of the prefixes.

use std::path::{Path, PathBuf};
use std::process::Command;

use knockplay::modules::{lookup, ModuleCtx, Templater};
use knockplay::ssh::LocalShell;
use serde_json::{json, Value};

struct Verbatim;
impl Templater for Verbatim {
    fn render(&self, source: &str, _name: &str) -> Result<String, String> {
        Ok(source.to_string())
    }
}

/// name, shell setup ({D} = the scenario's directory), module, args ({D}, {S} = local sources).
const SCENARIOS: &str = r#"[
  {"name": "replace_groups", "setup": "printf 'port=80\\nhost=a\\nport=8080\\n' > {D}/f", "module": "replace", "args": {"path": "{D}/f", "regexp": "^port=(\\d+)$", "replace": "port=\\g<1>0"}, "keys": ["msg"]},
  {"name": "replace_after_before", "setup": "printf 'a=1\\n[s]\\na=2\\n[t]\\na=3\\n' > {D}/f", "module": "replace", "args": {"path": "{D}/f", "regexp": "a=(\\d)", "replace": "b=\\1", "after": "\\[s\\]", "before": "\\[t\\]"}, "keys": ["msg"]},
  {"name": "replace_nomatch", "setup": "printf 'x\\n' > {D}/f", "module": "replace", "args": {"path": "{D}/f", "regexp": "y", "replace": "z"}, "keys": ["msg"]},
  {"name": "replace_section_missing", "setup": "printf 'x\\n' > {D}/f", "module": "replace", "args": {"path": "{D}/f", "regexp": "x", "replace": "z", "after": "nope"}, "keys": ["msg"]},
  {"name": "replace_missing_file", "setup": "", "module": "replace", "args": {"path": "{D}/none", "regexp": "x"}, "keys": ["msg"]},
  {"name": "replace_mode", "setup": "printf 'x\\n' > {D}/f; chmod 644 {D}/f", "module": "replace", "args": {"path": "{D}/f", "regexp": "x", "replace": "y", "mode": "0600"}, "keys": ["msg"]},
  {"name": "copy_new_nomode", "setup": "", "module": "copy", "args": {"content": "x\n", "dest": "{D}/new"}},
  {"name": "copy_keep_mode", "setup": "printf old > {D}/f; chmod 600 {D}/f", "module": "copy", "args": {"content": "x\n", "dest": "{D}/f"}},
  {"name": "copy_into_dir_slash_missing", "setup": "", "module": "copy", "args": {"src": "{S}/it_ran.txt", "dest": "{D}/newdir/"}},
  {"name": "copy_into_existing_dir", "setup": "mkdir {D}/dd", "module": "copy", "args": {"src": "{S}/it_ran.txt", "dest": "{D}/dd"}},
  {"name": "copy_content_to_existing_dir", "setup": "mkdir {D}/dd", "module": "copy", "args": {"content": "a", "dest": "{D}/dd"}},
  {"name": "copy_missing_parent", "setup": "", "module": "copy", "args": {"content": "a", "dest": "{D}/no/such"}},
  {"name": "copy_force_no", "setup": "printf old > {D}/f", "module": "copy", "args": {"content": "new", "dest": "{D}/f", "force": false}},
  {"name": "copy_tree", "setup": "", "module": "copy", "args": {"src": "{S}/site", "dest": "{D}/t"}},
  {"name": "copy_tree_contents", "setup": "", "module": "copy", "args": {"src": "{S}/site/", "dest": "{D}/t2", "directory_mode": "0700"}},
  {"name": "copy_symbolic_mode", "setup": "", "module": "copy", "args": {"content": "a", "dest": "{D}/s", "mode": "u=rw,g=r"}},
  {"name": "copy_over_link_nofollow", "setup": "printf a > {D}/real; ln -s real {D}/lnk", "module": "copy", "args": {"content": "b", "dest": "{D}/lnk"}},
  {"name": "copy_over_link_follow", "setup": "printf a > {D}/real; ln -s real {D}/lnk", "module": "copy", "args": {"content": "b", "dest": "{D}/lnk", "follow": true}},
  {"name": "copy_same_over_link", "setup": "printf b > {D}/real; ln -s real {D}/lnk", "module": "copy", "args": {"content": "b", "dest": "{D}/lnk"}},
  {"name": "dir_deep_mode", "setup": "", "module": "file", "args": {"path": "{D}/a/b/c", "state": "directory", "mode": "0750"}},
  {"name": "dir_symbolic_existing", "setup": "mkdir {D}/x; chmod 700 {D}/x", "module": "file", "args": {"path": "{D}/x", "state": "directory", "mode": "g+rx"}},
  {"name": "touch_symbolic", "setup": "", "module": "file", "args": {"path": "{D}/t", "state": "touch", "mode": "u=rw,g=r"}},
  {"name": "touch_existing", "setup": "printf a > {D}/t; chmod 600 {D}/t", "module": "file", "args": {"path": "{D}/t", "state": "touch"}},
  {"name": "file_absent_path", "setup": "", "module": "file", "args": {"path": "{D}/nope", "state": "file"}},
  {"name": "file_default_state_absent", "setup": "", "module": "file", "args": {"path": "{D}/nope", "mode": "0644"}},
  {"name": "file_on_dir", "setup": "mkdir {D}/d", "module": "file", "args": {"path": "{D}/d", "state": "file"}},
  {"name": "dir_on_file", "setup": "printf a > {D}/f", "module": "file", "args": {"path": "{D}/f", "state": "directory"}},
  {"name": "link_missing_src", "setup": "", "module": "file", "args": {"path": "{D}/l", "state": "link", "src": "nope"}},
  {"name": "link_missing_src_force", "setup": "", "module": "file", "args": {"path": "{D}/l", "state": "link", "src": "nope", "force": true}},
  {"name": "link_over_file", "setup": "printf a > {D}/f; printf b > {D}/t", "module": "file", "args": {"path": "{D}/f", "state": "link", "src": "t"}},
  {"name": "link_over_file_force", "setup": "printf a > {D}/f; printf b > {D}/t", "module": "file", "args": {"path": "{D}/f", "state": "link", "src": "t", "force": true}},
  {"name": "link_retarget", "setup": "printf a > {D}/t1; printf b > {D}/t2; ln -s t1 {D}/l", "module": "file", "args": {"path": "{D}/l", "state": "link", "src": "t2"}},
  {"name": "hard_new", "setup": "printf a > {D}/t", "module": "file", "args": {"path": "{D}/h", "state": "hard", "src": "{D}/t"}},
  {"name": "hard_over_file", "setup": "printf a > {D}/t; printf b > {D}/h", "module": "file", "args": {"path": "{D}/h", "state": "hard", "src": "{D}/t"}},
  {"name": "recurse_mode", "setup": "mkdir -p {D}/r/s; printf a > {D}/r/s/f; chmod 600 {D}/r/s/f", "module": "file", "args": {"path": "{D}/r", "state": "directory", "recurse": true, "mode": "u=rwX,g=rX,o=rX"}},
  {"name": "absent_dir", "setup": "mkdir -p {D}/r/s", "module": "file", "args": {"path": "{D}/r", "state": "absent"}},
  {"name": "lif_create", "setup": "", "module": "lineinfile", "args": {"path": "{D}/sub/new.conf", "line": "x", "create": true}},
  {"name": "lif_missing", "setup": "", "module": "lineinfile", "args": {"path": "{D}/missing", "line": "x"}},
  {"name": "lif_absent_missing", "setup": "", "module": "lineinfile", "args": {"path": "{D}/missing", "line": "x", "state": "absent"}},
  {"name": "lif_mode_only", "setup": "printf 'x\\n' > {D}/f; chmod 600 {D}/f", "module": "lineinfile", "args": {"path": "{D}/f", "line": "x", "mode": "0644"}},
  {"name": "bif_create", "setup": "", "module": "blockinfile", "args": {"path": "{D}/b", "block": "x", "create": true}},
  {"name": "bif_missing", "setup": "", "module": "blockinfile", "args": {"path": "{D}/b", "block": "x"}},
  {"name": "bif_absent_missing_create", "setup": "", "module": "blockinfile", "args": {"path": "{D}/b", "state": "absent", "create": true}},
  {"name": "cmd_simple", "setup": "", "module": "command", "args": {"_raw_params": "echo hello  world"}, "keys": ["rc", "stdout", "stderr"]},
  {"name": "cmd_fail", "setup": "", "module": "command", "args": {"_raw_params": "ls {D}/nonexistent"}, "keys": ["rc", "stdout", "stderr", "msg"]},
  {"name": "cmd_no_shell", "setup": "", "module": "command", "args": {"_raw_params": "printf '%s|' 'a b' c;d \"e f\" '*'"}, "keys": ["rc", "stdout"]},
  {"name": "cmd_creates_exists", "setup": "touch {D}/m", "module": "command", "args": {"_raw_params": "false", "creates": "{D}/m"}, "keys": ["rc", "stdout", "msg"]},
  {"name": "cmd_creates_glob", "setup": "touch {D}/m1", "module": "command", "args": {"_raw_params": "false", "creates": "{D}/m*"}, "keys": ["rc", "stdout", "msg"]},
  {"name": "cmd_removes_missing", "setup": "", "module": "command", "args": {"_raw_params": "false", "removes": "{D}/nope"}, "keys": ["rc", "stdout", "msg"]},
  {"name": "cmd_removes_runs", "setup": "touch {D}/m", "module": "command", "args": {"_raw_params": "rm {D}/m", "removes": "{D}/m"}, "keys": ["rc", "stdout"]},
  {"name": "cmd_chdir", "setup": "", "module": "command", "args": {"_raw_params": "pwd", "chdir": "{D}"}, "keys": ["rc", "stdout"]},
  {"name": "cmd_stdin", "setup": "", "module": "command", "args": {"_raw_params": "cat", "stdin": "fed"}, "keys": ["rc", "stdout"]},
  {"name": "cmd_argv", "setup": "", "module": "command", "args": {"argv": ["printf", "%s|", "a b", "$HOME/x"]}, "keys": ["rc", "stdout"]},
  {"name": "shell_pipe", "setup": "", "module": "shell", "args": {"_raw_params": "echo a b | wc -w; echo err >&2; exit 3"}, "keys": ["rc", "stdout", "stderr", "msg"]},
  {"name": "shell_strip", "setup": "", "module": "shell", "args": {"_raw_params": "printf 'x\\n\\n'; printf 'e\\n' >&2"}, "keys": ["rc", "stdout", "stderr"]},
  {"name": "shell_chdir_creates", "setup": "", "module": "shell", "args": {"_raw_params": "echo hi > out; cat out", "chdir": "{D}", "creates": "{D}/nothere"}, "keys": ["rc", "stdout"]},
  {"name": "stat_file", "setup": "printf 'hello\\n' > {D}/f; chmod 640 {D}/f", "module": "stat", "args": {"path": "{D}/f"}, "stat": true},
  {"name": "stat_link", "setup": "printf 'hello\\n' > {D}/f; ln -s f {D}/l", "module": "stat", "args": {"path": "{D}/l"}, "stat": true},
  {"name": "stat_link_follow", "setup": "printf 'hello\\n' > {D}/f; ln -s f {D}/l", "module": "stat", "args": {"path": "{D}/l", "follow": true, "checksum_algorithm": "sha256"}, "stat": true},
  {"name": "stat_dir", "setup": "mkdir {D}/d; chmod 2750 {D}/d", "module": "stat", "args": {"path": "{D}/d"}, "stat": true},
  {"name": "stat_missing", "setup": "", "module": "stat", "args": {"path": "{D}/nope"}, "stat": true},
  {"name": "stat_missing", "setup": "", "module": "stat", "args": {"path": "{D}/nope"}, "stat": true},
  {"name": "ini_new_file", "setup": "", "module": "community.general.ini_file", "args": {"path": "{D}/sub/new.ini", "section": "s", "option": "o", "value": "v"}, "keys": ["msg", "path"]},
  {"name": "ini_add_option", "setup": "printf '[a]\\nx=1\\n\\n[b]\\nz=3\\n' > {D}/f.ini", "module": "community.general.ini_file", "args": {"path": "{D}/f.ini", "section": "a", "option": "y", "value": "2"}, "keys": ["msg", "path"]},
  {"name": "ini_new_section", "setup": "printf '[a]\\nx=1\\n' > {D}/f.ini", "module": "community.general.ini_file", "args": {"dest": "{D}/f.ini", "section": "c", "option": "o", "value": "v"}, "keys": ["msg", "path"]},
  {"name": "ini_change_value", "setup": "printf '[a]\\nx=1\\n\\n[b]\\nx=3\\n' > {D}/f.ini", "module": "community.general.ini_file", "args": {"path": "{D}/f.ini", "section": "a", "option": "x", "value": "2"}, "keys": ["msg", "path"]},
  {"name": "ini_unchanged", "setup": "printf '[a]\\nx = 1\\n' > {D}/f.ini", "module": "community.general.ini_file", "args": {"path": "{D}/f.ini", "section": "a", "option": "x", "value": 1}, "keys": ["msg", "path"]},
  {"name": "ini_absent_option", "setup": "printf '[a]\\nx=1\\ny=2\\nx=3\\n[b]\\nx=4\\n' > {D}/f.ini", "module": "community.general.ini_file", "args": {"path": "{D}/f.ini", "section": "a", "option": "x", "state": "absent"}, "keys": ["msg", "path"]},
  {"name": "ini_absent_value", "setup": "printf '[a]\\nx=1\\ny=2\\nx=3\\n' > {D}/f.ini", "module": "community.general.ini_file", "args": {"path": "{D}/f.ini", "section": "a", "option": "x", "values": ["3"], "exclusive": false, "state": "absent"}, "keys": ["msg", "path"]},
  {"name": "ini_absent_section", "setup": "printf 'g=0\\n[a]\\nx=1\\n[b]\\ny=2\\n' > {D}/f.ini", "module": "community.general.ini_file", "args": {"path": "{D}/f.ini", "section": "a", "state": "absent"}, "keys": ["msg", "path"]},
  {"name": "ini_exclusive", "setup": "printf '[a]\\nx=2\\nx=3\\nx=1\\ny=5\\n' > {D}/f.ini", "module": "community.general.ini_file", "args": {"path": "{D}/f.ini", "section": "a", "option": "x", "values": ["1", "2"]}, "keys": ["msg", "path"]},
  {"name": "ini_not_exclusive", "setup": "printf '[a]\\nx=2\\nx=3\\ny=5\\n' > {D}/f.ini", "module": "community.general.ini_file", "args": {"path": "{D}/f.ini", "section": "a", "option": "x", "values": ["1", "2"], "exclusive": false}, "keys": ["msg", "path"]},
  {"name": "ini_values_new", "setup": "printf '[a]\\nx=0\\ny=5\\n' > {D}/f.ini", "module": "community.general.ini_file", "args": {"path": "{D}/f.ini", "section": "a", "option": "x", "values": ["1", "2"]}, "keys": ["msg", "path"]},
  {"name": "ini_no_extra_spaces", "setup": "printf '[a]\\nx = 1\\n' > {D}/f.ini", "module": "community.general.ini_file", "args": {"path": "{D}/f.ini", "section": "a", "option": "x", "value": "1", "no_extra_spaces": true}, "keys": ["msg", "path"]},
  {"name": "ini_ignore_spaces", "setup": "printf '[a]\\nx=1\\n' > {D}/f.ini", "module": "community.general.ini_file", "args": {"path": "{D}/f.ini", "section": "a", "option": "x", "value": "1", "ignore_spaces": true}, "keys": ["msg", "path"]},
  {"name": "ini_allow_no_value", "setup": "printf '[a]\\nx=1\\n' > {D}/f.ini", "module": "community.general.ini_file", "args": {"path": "{D}/f.ini", "section": "a", "option": "flag", "allow_no_value": true}, "keys": ["msg", "path"]},
  {"name": "ini_global", "setup": "printf '# top\\ng=0\\n[a]\\nx=1\\n' > {D}/f.ini", "module": "community.general.ini_file", "args": {"path": "{D}/f.ini", "section": null, "option": "g", "value": "1"}, "keys": ["msg", "path"]},
  {"name": "ini_global_new_file", "setup": "", "module": "community.general.ini_file", "args": {"path": "{D}/g.ini", "option": "g", "value": "1"}, "keys": ["msg", "path"]},
  {"name": "ini_commented", "setup": "printf '[a]\\n# x = 1\\n; x is the thing\\ny=2\\n' > {D}/f.ini", "module": "community.general.ini_file", "args": {"path": "{D}/f.ini", "section": "a", "option": "x", "value": "9"}, "keys": ["msg", "path"]},
  {"name": "ini_inactive_kept", "setup": "printf '[a]\\n# x = 1\\ny=2\\n\\n# end\\n' > {D}/f.ini", "module": "community.general.ini_file", "args": {"path": "{D}/f.ini", "section": "a", "option": "x", "value": "9", "modify_inactive_option": false}, "keys": ["msg", "path"]},
  {"name": "ini_crlf_unchanged", "setup": "printf '\\357\\273\\277[a]\\r\\nx = 1\\r\\n' > {D}/f.ini", "module": "community.general.ini_file", "args": {"path": "{D}/f.ini", "section": "a", "option": "x", "value": "1"}, "keys": ["msg", "path"]},
  {"name": "ini_crlf_changed", "setup": "printf '\\357\\273\\277[a]\\r\\nx = 1\\r\\n' > {D}/f.ini", "module": "community.general.ini_file", "args": {"path": "{D}/f.ini", "section": "a", "option": "x", "value": "2"}, "keys": ["msg", "path"]},
  {"name": "ini_mode", "setup": "printf '[a]\\nx=1\\n' > {D}/f.ini; chmod 644 {D}/f.ini", "module": "community.general.ini_file", "args": {"path": "{D}/f.ini", "section": "a", "option": "x", "value": "2", "mode": "0600"}, "keys": ["msg", "path"]},
  {"name": "ini_mode_only", "setup": "printf '[a]\\nx = 1\\n' > {D}/f.ini; chmod 644 {D}/f.ini", "module": "community.general.ini_file", "args": {"path": "{D}/f.ini", "section": "a", "option": "x", "value": "1", "mode": "0600"}, "keys": ["msg", "path"]},
  {"name": "ini_new_file_mode", "setup": "", "module": "community.general.ini_file", "args": {"path": "{D}/n.ini", "section": "s", "option": "o", "value": "v", "mode": "0640"}, "keys": ["msg", "path"]},
  {"name": "ini_missing_nocreate", "setup": "", "module": "community.general.ini_file", "args": {"path": "{D}/none.ini", "section": "s", "option": "o", "value": "v", "create": false}, "keys": ["msg", "rc"]},
  {"name": "ini_missing_value", "setup": "printf '[a]\\n' > {D}/f.ini", "module": "community.general.ini_file", "args": {"path": "{D}/f.ini", "section": "a", "option": "o"}, "keys": ["msg"]},
  {"name": "ini_absent_missing_file", "setup": "", "module": "community.general.ini_file", "args": {"path": "{D}/none.ini", "section": "s", "option": "o", "state": "absent"}, "keys": ["msg", "path"]},
  {"name": "ini_link_nofollow", "setup": "printf '[a]\\nx=1\\n' > {D}/real.ini; ln -s real.ini {D}/l.ini", "module": "community.general.ini_file", "args": {"path": "{D}/l.ini", "section": "a", "option": "x", "value": "2"}, "keys": ["msg", "path"]},
  {"name": "ini_link_follow", "setup": "printf '[a]\\nx=1\\n' > {D}/real.ini; ln -s real.ini {D}/l.ini", "module": "community.general.ini_file", "args": {"path": "{D}/l.ini", "section": "a", "option": "x", "value": "2", "follow": true}, "keys": ["msg", "path"]},
  {"name": "slurp_file", "setup": "printf 'hi\\000\\377\\n' > {D}/f", "module": "slurp", "args": {"src": "{D}/f"}, "keys": ["content", "encoding", "source"]},
  {"name": "slurp_empty_via_path", "setup": ": > {D}/e; ln -s e {D}/l", "module": "slurp", "args": {"path": "{D}/l"}, "keys": ["content", "encoding", "source"]},
  {"name": "slurp_missing", "setup": "", "module": "slurp", "args": {"src": "{D}/nope"}, "keys": ["content", "encoding", "source"]},
  {"name": "slurp_directory", "setup": "mkdir {D}/d", "module": "slurp", "args": {"src": "{D}/d"}, "keys": ["content", "encoding", "source"]},
  {"name": "find_patterns", "setup": "mkdir -p {D}/sub; touch {D}/a.log {D}/b.txt {D}/sub/c.log; ln -s a.log {D}/l.log", "module": "find", "args": {"paths": "{D}", "patterns": "*.log"}, "find": true},
  {"name": "find_excludes_recurse", "setup": "mkdir -p {D}/sub/deep; touch {D}/a.log {D}/b.txt {D}/b.log {D}/sub/c.log {D}/sub/deep/bd.txt", "module": "find", "args": {"paths": ["{D}"], "patterns": ["*.log", "*.txt"], "excludes": "b*", "recurse": true}, "find": true},
  {"name": "find_dirs", "setup": "mkdir -p {D}/a/b/c {D}/d; touch {D}/f {D}/a/g", "module": "find", "args": {"paths": "{D}", "file_type": "directory", "recurse": true}, "find": true},
  {"name": "find_depth", "setup": "mkdir -p {D}/a/b/c; touch {D}/f {D}/a/f {D}/a/b/f {D}/a/b/c/f", "module": "find", "args": {"paths": "{D}", "file_type": "any", "recurse": true, "depth": 2}, "find": true},
  {"name": "find_hidden", "setup": "mkdir -p {D}/.hid {D}/v; touch {D}/.h {D}/v/.x {D}/.hid/e {D}/n", "module": "find", "args": {"paths": "{D}", "hidden": true, "recurse": true}, "find": true},
  {"name": "find_not_hidden", "setup": "mkdir -p {D}/.hid {D}/v; touch {D}/.h {D}/v/.x {D}/.hid/e {D}/n", "module": "find", "args": {"paths": "{D}", "recurse": true}, "find": true},
  {"name": "find_contains", "setup": "mkdir {D}/s; printf 'a\\nport=80\\n' > {D}/p; printf 'xport=80\\n' > {D}/q; printf 'port=8080\\n' > {D}/s/r", "module": "find", "args": {"paths": "{D}", "recurse": true, "contains": "port=\\d+$"}, "find": true},
  {"name": "find_size", "setup": "head -c 3000 /dev/zero > {D}/big; printf x > {D}/small; mkdir {D}/d", "module": "find", "args": {"paths": "{D}", "size": "2k", "file_type": "any"}, "find": true},
  {"name": "find_size_neg", "setup": "head -c 3000 /dev/zero > {D}/big; printf x > {D}/small", "module": "find", "args": {"paths": "{D}", "size": "-1k"}, "find": true},
  {"name": "find_age", "setup": "touch {D}/new; touch -d '3 days ago' {D}/old", "module": "find", "args": {"paths": "{D}", "age": "2d"}, "find": true},
  {"name": "find_age_neg", "setup": "touch {D}/new; touch -d '3 days ago' {D}/old", "module": "find", "args": {"paths": "{D}", "age": "-1d"}, "find": true},
  {"name": "find_regex", "setup": "touch {D}/a.conf {D}/b.conf {D}/c.conf {D}/ab", "module": "find", "args": {"paths": "{D}", "patterns": "[ab]\\.", "use_regex": true}, "find": true},
  {"name": "find_links", "setup": "touch {D}/f; ln -s f {D}/l; ln -s nope {D}/broken", "module": "find", "args": {"paths": "{D}", "file_type": "link"}, "find": true},
  {"name": "find_mode", "setup": "touch {D}/a {D}/b; chmod 600 {D}/a; chmod 644 {D}/b", "module": "find", "args": {"paths": "{D}", "mode": "0600"}, "find": true},
  {"name": "find_not_a_dir", "setup": "touch {D}/f", "module": "find", "args": {"paths": ["{D}/f", "{D}"]}, "find": true, "keys": ["msg", "skipped_paths"]},
  {"name": "un_tgz", "setup": "", "module": "unarchive", "args": {"src": "{S}/t.tgz", "dest": "{D}", "list_files": true}, "keys": ["handler", "files", "dest"]},
  {"name": "un_tgz_again", "setup": "tar -xzf {S}/t.tgz -C {D}", "module": "unarchive", "args": {"src": "{S}/t.tgz", "dest": "{D}"}, "keys": ["handler", "dest"]},
  {"name": "un_tgz_changed_file", "setup": "tar -xzf {S}/t.tgz -C {D}; printf changed > {D}/top/a.txt", "module": "unarchive", "args": {"src": "{S}/t.tgz", "dest": "{D}"}, "keys": ["handler"]},
  {"name": "un_creates", "setup": "touch {D}/m", "module": "unarchive", "args": {"src": "{S}/t.tgz", "dest": "{D}", "creates": "{D}/m"}, "keys": ["msg", "skipped"]},
  {"name": "un_dest_missing", "setup": "", "module": "unarchive", "args": {"src": "{S}/t.tgz", "dest": "{D}/nope"}},
  {"name": "un_remote_src", "setup": "cp {S}/t.tgz {D}/t.tgz; mkdir {D}/out", "module": "unarchive", "args": {"src": "{D}/t.tgz", "dest": "{D}/out", "remote_src": true, "list_files": true}, "keys": ["handler", "files", "src"]},
  {"name": "un_remote_src_missing", "setup": "", "module": "unarchive", "args": {"src": "{D}/nope.tgz", "dest": "{D}", "remote_src": true}},
  {"name": "un_txz", "setup": "", "module": "unarchive", "args": {"src": "{S}/t.tar.xz", "dest": "{D}"}, "keys": ["handler"]},
  {"name": "un_mode", "setup": "", "module": "unarchive", "args": {"src": "{S}/t.tgz", "dest": "{D}", "mode": "0750"}, "keys": ["handler"]},
  {"name": "un_exclude", "setup": "", "module": "unarchive", "args": {"src": "{S}/t.tgz", "dest": "{D}", "exclude": ["top/sub"], "list_files": true}, "keys": ["files"]},
  {"name": "un_zip", "setup": "", "module": "unarchive", "args": {"src": "{S}/t.zip", "dest": "{D}", "list_files": true}, "keys": ["handler", "files"]},
  {"name": "un_zip_again", "setup": "unzip -q {S}/t.zip -d {D}", "module": "unarchive", "args": {"src": "{S}/t.zip", "dest": "{D}"}, "keys": ["handler"]},
  {"name": "uri_get_json", "setup": "", "module": "uri", "args": {"url": "{U}/data.json", "return_content": true}, "keys": ["status", "url", "redirected", "msg", "content", "json", "content_type", "content_length", "path", "location", "stdout"]},
  {"name": "uri_get_text", "setup": "", "module": "uri", "args": {"url": "{U}/hello.txt"}, "keys": ["status", "url", "redirected", "msg", "content", "json", "content_type", "content_length", "path", "location", "stdout"]},
  {"name": "uri_status_mismatch", "setup": "", "module": "uri", "args": {"url": "{U}/missing"}, "keys": ["status", "url", "redirected", "msg", "content", "json", "content_type", "content_length", "path", "location", "stdout"]},
  {"name": "uri_status_list", "setup": "", "module": "uri", "args": {"url": "{U}/missing", "status_code": [200, 404], "return_content": true}, "keys": ["status", "url", "redirected", "msg", "content", "json", "content_type", "content_length", "path", "location", "stdout"]},
  {"name": "uri_redirect", "setup": "", "module": "uri", "args": {"url": "{U}/redirect", "return_content": true}, "keys": ["status", "url", "redirected", "msg", "content", "json", "content_type", "content_length", "path", "location", "stdout"]},
  {"name": "uri_redirect_none", "setup": "", "module": "uri", "args": {"url": "{U}/redirect", "follow_redirects": "none"}, "keys": ["status", "url", "redirected", "msg", "content", "json", "content_type", "content_length", "path", "location", "stdout"]},
  {"name": "uri_post_json", "setup": "", "module": "uri", "args": {"url": "{U}/echo", "method": "POST", "body": {"a": 1, "b": "x é"}, "body_format": "json"}, "keys": ["status", "url", "redirected", "msg", "content", "json", "content_type", "content_length", "path", "location", "stdout"]},
  {"name": "uri_post_form", "setup": "", "module": "uri", "args": {"url": "{U}/echo", "method": "POST", "body": {"a": "x y&z", "b": ["1", "2"]}, "body_format": "form-urlencoded", "return_content": true}, "keys": ["status", "url", "redirected", "msg", "content", "json", "content_type", "content_length", "path", "location", "stdout"]},
  {"name": "uri_post_raw", "setup": "", "module": "uri", "args": {"url": "{U}/echo", "method": "PUT", "body": "raw text", "headers": {"Content-Type": "text/plain"}}, "keys": ["status", "url", "redirected", "msg", "content", "json", "content_type", "content_length", "path", "location", "stdout"]},
  {"name": "uri_dest_creates", "setup": "", "module": "uri", "args": {"url": "{U}/hello.txt", "dest": "{D}/hello.txt", "creates": "{D}/hello.txt"}, "keys": ["status", "url", "redirected", "msg", "content", "json", "content_type", "content_length", "path", "location", "stdout"]},
  {"name": "uri_dest_dir", "setup": "", "module": "uri", "args": {"url": "{U}/hello.txt", "dest": "{D}", "mode": "0640"}, "keys": ["status", "url", "redirected", "msg", "content", "json", "content_type", "content_length", "path", "location", "stdout"]},
  {"name": "uri_dest_same", "setup": "printf 'hello\\n' > {D}/h.txt; touch -d 2000-01-01 {D}/h.txt", "module": "uri", "args": {"url": "{U}/hello.txt", "dest": "{D}/h.txt"}, "keys": ["status", "url", "redirected", "msg", "content", "json", "content_type", "content_length", "path", "location", "stdout"]},
  {"name": "uri_removes_skip", "setup": "", "module": "uri", "args": {"url": "{U}/hello.txt", "removes": "{D}/nope"}, "keys": ["status", "url", "redirected", "content", "json", "content_type", "content_length", "path", "location", "stdout"]},
  {"name": "uri_refused", "setup": "", "module": "uri", "args": {"url": "http://127.0.0.1:1/x", "timeout": 2}, "keys": ["status", "url", "redirected", "msg", "content", "json", "content_type", "content_length", "path", "location", "stdout"]},
  {"name": "pip_install", "setup": "", "module": "pip", "args": {"name": "kptoy", "virtualenv": "{D}/venv", "virtualenv_command": "{python} -m venv", "extra_args": "--no-index --find-links {S}/wheels"}, "keys": ["cmd", "name", "version", "state", "requirements", "virtualenv"], "tree": "pip"},
  {"name": "pip_version", "setup": "", "module": "pip", "args": {"name": "kptoy", "version": "1.0", "virtualenv": "{D}/venv", "virtualenv_command": "{python} -m venv", "extra_args": "--no-index --find-links {S}/wheels"}, "keys": ["cmd", "name", "version", "state", "requirements", "virtualenv"], "tree": "pip"},
  {"name": "pip_specifier", "setup": "", "module": "pip", "args": {"name": ["kptoy<2"], "virtualenv": "{D}/venv", "virtualenv_command": "{python} -m venv", "extra_args": "--no-index --find-links {S}/wheels"}, "keys": ["cmd", "name", "version", "state", "requirements", "virtualenv"], "tree": "pip"},
  {"name": "pip_latest", "setup": "{python} -m venv {D}/venv && {D}/venv/bin/pip install -q --no-index --find-links {S}/wheels kptoy==1.0", "module": "pip", "args": {"name": "kptoy", "state": "latest", "virtualenv": "{D}/venv", "virtualenv_command": "{python} -m venv", "extra_args": "--no-index --find-links {S}/wheels"}, "keys": ["cmd", "name", "version", "state", "requirements", "virtualenv"], "tree": "pip"},
  {"name": "pip_present_installed", "setup": "{python} -m venv {D}/venv && {D}/venv/bin/pip install -q --no-index --find-links {S}/wheels kptoy==1.0", "module": "pip", "args": {"name": "kptoy", "virtualenv": "{D}/venv", "virtualenv_command": "{python} -m venv", "extra_args": "--no-index --find-links {S}/wheels"}, "keys": ["cmd", "name", "version", "state", "requirements", "virtualenv"], "tree": "pip"},
  {"name": "pip_absent", "setup": "{python} -m venv {D}/venv && {D}/venv/bin/pip install -q --no-index --find-links {S}/wheels kptoy==1.0", "module": "pip", "args": {"name": "kptoy", "state": "absent", "virtualenv": "{D}/venv", "virtualenv_command": "{python} -m venv", "extra_args": "--no-index --find-links {S}/wheels"}, "keys": ["cmd", "name", "version", "state", "requirements", "virtualenv"], "tree": "pip"},
  {"name": "pip_requirements", "setup": "", "module": "pip", "args": {"requirements": "{S}/req.txt", "virtualenv": "{D}/venv", "virtualenv_command": "{python} -m venv", "extra_args": "--no-index --find-links {S}/wheels"}, "keys": ["cmd", "name", "version", "state", "requirements", "virtualenv"], "tree": "pip"},
  {"name": "pip_check_listing", "setup": "{python} -m venv {D}/venv && {D}/venv/bin/pip install -q --no-index --find-links {S}/wheels kptoy==1.0", "module": "pip", "args": {"name": ["kptoy>=1,<2"], "virtualenv": "{D}/venv"}, "keys": ["cmd", "name", "version", "state", "requirements", "virtualenv"], "tree": "pip"},
  {"name": "pip_absent_not_installed", "setup": "{python} -m venv {D}/venv && {D}/venv/bin/pip install -q --no-index --find-links {S}/wheels kptoy==1.0", "module": "pip", "args": {"name": ["kpother"], "virtualenv": "{D}/venv", "state": "absent"}, "keys": ["cmd", "name", "version", "state", "requirements", "virtualenv"], "tree": "pip"},
  {"name": "pip_absent_plain", "setup": "{python} -m venv {D}/venv && {D}/venv/bin/pip install -q --no-index --find-links {S}/wheels kptoy==1.0", "module": "pip", "args": {"name": "kptoy", "state": "absent", "virtualenv": "{D}/venv"}, "keys": ["cmd", "name", "version", "state", "requirements", "virtualenv"], "tree": "pip"},
  {"name": "pip_no_pip_in_venv", "setup": "mkdir -p {D}/venv/bin && touch {D}/venv/bin/activate", "module": "pip", "args": {"name": "kptoy", "virtualenv": "{D}/venv"}, "keys": ["cmd", "name", "version", "state", "requirements", "virtualenv"], "tree": "pip"},
  {"name": "pip_version_latest", "setup": "", "module": "pip", "args": {"name": "kptoy", "version": "1.0", "state": "latest", "virtualenv": "{D}/venv", "virtualenv_command": "{python} -m venv", "extra_args": "--no-index --find-links {S}/wheels"}, "keys": ["cmd", "name", "version", "state", "requirements", "virtualenv"], "tree": "pip"},
  {"name": "git_clone", "setup": "", "module": "git", "args": {"repo": "file://{S}/repo.git", "dest": "{D}/w"}, "keys": ["before", "after", "remote_url_changed"], "tree": "git"},
  {"name": "git_clone_tag", "setup": "", "module": "git", "args": {"repo": "file://{S}/repo.git", "dest": "{D}/w", "version": "v1"}, "keys": ["before", "after", "remote_url_changed"], "tree": "git"},
  {"name": "git_clone_annotated_tag", "setup": "", "module": "git", "args": {"repo": "file://{S}/repo.git", "dest": "{D}/w", "version": "v1a"}, "keys": ["before", "after", "remote_url_changed"], "tree": "git"},
  {"name": "git_clone_branch", "setup": "", "module": "git", "args": {"repo": "file://{S}/repo.git", "dest": "{D}/w", "version": "feature"}, "keys": ["before", "after", "remote_url_changed"], "tree": "git"},
  {"name": "git_clone_commit", "setup": "", "module": "git", "args": {"repo": "file://{S}/repo.git", "dest": "{D}/w", "version": "{C1}"}, "keys": ["before", "after", "remote_url_changed"], "tree": "git"},
  {"name": "git_clone_depth", "setup": "", "module": "git", "args": {"repo": "file://{S}/repo.git", "dest": "{D}/w", "depth": 1}, "keys": ["before", "after", "remote_url_changed"], "tree": "git"},
  {"name": "git_clone_depth_branch", "setup": "", "module": "git", "args": {"repo": "file://{S}/repo.git", "dest": "{D}/w", "depth": 1, "version": "feature"}, "keys": ["before", "after", "remote_url_changed"], "tree": "git"},
  {"name": "git_clone_single_branch", "setup": "", "module": "git", "args": {"repo": "file://{S}/repo.git", "dest": "{D}/w", "single_branch": true, "version": "feature"}, "keys": ["before", "after", "remote_url_changed"], "tree": "git"},
  {"name": "git_clone_path", "setup": "", "module": "git", "args": {"repo": "{S}/repo.git", "dest": "{D}/w"}, "keys": ["before", "after", "remote_url_changed"], "tree": "git"},
  {"name": "git_clone_bare", "setup": "", "module": "git", "args": {"repo": "file://{S}/repo.git", "dest": "{D}/b.git", "bare": true}, "keys": ["before", "after", "remote_url_changed"], "tree": "git"},
  {"name": "git_clone_missing_version", "setup": "", "module": "git", "args": {"repo": "file://{S}/repo.git", "dest": "{D}/w", "version": "nope"}, "keys": ["before", "after", "remote_url_changed"], "tree": "git"},
  {"name": "git_clone_bad_repo", "setup": "", "module": "git", "args": {"repo": "file://{S}/nope.git", "dest": "{D}/w"}, "keys": ["before", "after", "remote_url_changed"], "tree": "git"},
  {"name": "git_no_clone", "setup": "", "module": "git", "args": {"repo": "file://{S}/repo.git", "dest": "{D}/w", "clone": false}, "keys": ["before", "after", "remote_url_changed"], "tree": "git"},
  {"name": "git_update_noop", "setup": "git clone -q file://{S}/repo.git {D}/w", "module": "git", "args": {"repo": "file://{S}/repo.git", "dest": "{D}/w"}, "keys": ["before", "after", "remote_url_changed"], "tree": "git"},
  {"name": "git_update_tag", "setup": "git clone -q file://{S}/repo.git {D}/w", "module": "git", "args": {"repo": "file://{S}/repo.git", "dest": "{D}/w", "version": "v1"}, "keys": ["before", "after", "remote_url_changed"], "tree": "git"},
  {"name": "git_update_commit", "setup": "git clone -q file://{S}/repo.git {D}/w", "module": "git", "args": {"repo": "file://{S}/repo.git", "dest": "{D}/w", "version": "{C1}"}, "keys": ["before", "after", "remote_url_changed"], "tree": "git"},
  {"name": "git_update_branch", "setup": "git clone -q file://{S}/repo.git {D}/w", "module": "git", "args": {"repo": "file://{S}/repo.git", "dest": "{D}/w", "version": "feature"}, "keys": ["before", "after", "remote_url_changed"], "tree": "git"},
  {"name": "git_update_from_tag", "setup": "git clone -q file://{S}/repo.git {D}/w && git -C {D}/w checkout -q v1", "module": "git", "args": {"repo": "file://{S}/repo.git", "dest": "{D}/w"}, "keys": ["before", "after", "remote_url_changed"], "tree": "git"},
  {"name": "git_update_behind", "setup": "git clone -q file://{S}/repo.git {D}/w && git -C {D}/w reset -q --hard HEAD~1", "module": "git", "args": {"repo": "file://{S}/repo.git", "dest": "{D}/w"}, "keys": ["before", "after", "remote_url_changed"], "tree": "git"},
  {"name": "git_url_changed", "setup": "git clone -q {S}/repo.git {D}/w", "module": "git", "args": {"repo": "file://{S}/repo.git", "dest": "{D}/w"}, "keys": ["before", "after", "remote_url_changed"], "tree": "git"},
  {"name": "git_local_mods", "setup": "git clone -q file://{S}/repo.git {D}/w && echo changed > {D}/w/f", "module": "git", "args": {"repo": "file://{S}/repo.git", "dest": "{D}/w", "version": "v1"}, "keys": ["before", "after", "remote_url_changed"], "tree": "git"},
  {"name": "git_local_mods_force", "setup": "git clone -q file://{S}/repo.git {D}/w && echo changed > {D}/w/f", "module": "git", "args": {"repo": "file://{S}/repo.git", "dest": "{D}/w", "version": "v1", "force": true}, "keys": ["before", "after", "remote_url_changed", "msg"], "tree": "git"},
  {"name": "git_untracked_only", "setup": "git clone -q file://{S}/repo.git {D}/w && echo new > {D}/w/untracked", "module": "git", "args": {"repo": "file://{S}/repo.git", "dest": "{D}/w"}, "keys": ["before", "after", "remote_url_changed"], "tree": "git"},
  {"name": "git_no_update", "setup": "git clone -q file://{S}/repo.git {D}/w && git -C {D}/w reset -q --hard HEAD~1", "module": "git", "args": {"repo": "file://{S}/repo.git", "dest": "{D}/w", "update": false}, "keys": ["before", "after", "remote_url_changed"], "tree": "git"},
  {"name": "git_update_bare", "setup": "git clone -q --bare file://{S}/repo.git {D}/b.git", "module": "git", "args": {"repo": "file://{S}/repo.git", "dest": "{D}/b.git", "bare": true}, "keys": ["before", "after", "remote_url_changed"], "tree": "git"}
]"#;

fn venv() -> PathBuf {
    let dir = std::env::var_os("KNOCKPLAY_VENV")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join(".venv"));
    assert!(
        dir.join("bin/ansible-playbook").exists(),
        "ansible-playbook not found in {} (set KNOCKPLAY_VENV or run `bash tests/hosts/setup`, which \
         creates .venv with ansible-core)",
        dir.display()
    );
    dir
}

fn sh(cmd: &str) -> String {
    let out = Command::new("sh").arg("-c").arg(cmd).output().unwrap();
    assert!(
        out.status.success(),
        "{cmd}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Paths, types, modes, link targets and contents of everything below `dir`.
fn tree(dir: &Path) -> String {
    sh(&format!(
        "cd '{}' && find . -printf '%p %y %m %l\\n' | LC_ALL=C sort && \
         find . -type f | LC_ALL=C sort | while read -r f; do printf '%s ' \"$f\"; sha256sum < \"$f\"; done",
        dir.display()
    ))
}

/// What a scenario's `"tree"` option compares after a run: everything ([`tree`]); `"none"`;
/// `"git"`: the tree without `.git` directories (their index, logs and pack files differ by
/// nature) plus each repository's HEAD, branch and status; `"pip"`: `pip freeze` of the
/// virtualenv `{D}/venv` (a venv's files hold its own path and byte-compiled caches).
fn tree_of(sc: &Value, dir: &Path) -> String {
    let d = dir.display();
    match sc["tree"].as_str() {
        None => tree(dir),
        Some("none") => String::new(),
        Some("git") => sh(&format!(
            "cd '{d}' && \
             find . -name .git -prune -o -name '*.git' -prune -o -printf '%p %y %m %l\\n' | LC_ALL=C sort && \
             find . -name .git -prune -o -name '*.git' -prune -o -type f -print | LC_ALL=C sort | \
             while read -r f; do printf '%s ' \"$f\"; sha256sum < \"$f\"; done; \
             for g in $(find . \\( -name .git -o -name '*.git' \\) -prune -print | LC_ALL=C sort); do \
             case $g in */.git) r=$(dirname \"$g\");; *) r=$g;; esac; \
             printf '%s head=%s %s\\n' \"$g\" \"$(git -C \"$r\" rev-parse HEAD 2>&1)\" \"$(git -C \"$r\" symbolic-ref -q HEAD || echo detached)\"; \
             git -C \"$r\" status --porcelain 2>/dev/null; \
             git -C \"$r\" for-each-ref --format='%(refname) %(objectname)' 2>/dev/null; done"
        )),
        Some("pip") => sh(&format!(
            "if [ -x '{d}/venv/bin/python' ]; then '{d}/venv/bin/python' -m pip freeze --all 2>&1 | grep -v '^pip=\\|^setuptools=' || true; else echo no venv; fi"
        )),
        Some(other) => panic!("unknown tree option {other}"),
    }
}

/// The values substituted in scenario text besides `{D}` and `{S}`: `{U}` (the test HTTP
/// server's base URL) and `{python}` (the venv's python), set once at the start of the test.
static EXTRA: std::sync::OnceLock<Vec<(&'static str, String)>> = std::sync::OnceLock::new();

fn subst_text(text: &str, d: &Path, s: &Path) -> String {
    let mut text = text
        .replace("{D}", &d.display().to_string())
        .replace("{S}", &s.display().to_string());
    for (k, v) in EXTRA.get().into_iter().flatten() {
        text = text.replace(k, v);
    }
    text
}

fn subst(v: &Value, d: &Path, s: &Path) -> Value {
    serde_json::from_str(&subst_text(&v.to_string(), d, s)).unwrap()
}

/// One scenario's setup run in a fresh directory `d`.
fn setup(sc: &Value, d: &Path, src: &Path) {
    std::fs::create_dir_all(d).unwrap();
    let setup = subst_text(sc["setup"].as_str().unwrap(), d, src);
    if !setup.is_empty() {
        sh(&setup);
    }
}

/// Ansible's results: per scenario `name` (first run), `name__run2` (second run, same directory)
/// and `name__check` (check mode in `chk/<name>`).
fn ansible_results(venv: &Path, scenarios: &[Value], work: &Path, src: &Path) -> Value {
    let mut tasks = Vec::new();
    let mut keys = Vec::new();
    for sc in scenarios {
        let name = sc["name"].as_str().unwrap();
        let module = sc["module"].as_str().unwrap();
        for (run, dir, check) in [
            (name.to_string(), "ans", false),
            (format!("{name}__run2"), "ans", false),
            (format!("{name}__check"), "chk", true),
        ] {
            let d = work.join(dir).join(name);
            if run.ends_with("__run2") {
                // Same directory as the first run.
            } else {
                setup(sc, &d, src);
            }
            tasks.push(json!({
                "name": run,
                module: subst(&sc["args"], &d, src),
                "register": format!("r_{run}"),
                "ignore_errors": true,
                "check_mode": check,
            }));
            keys.push(format!("'{run}': r_{run}"));
        }
    }
    let results = work.join("ans_results.json");
    tasks.push(json!({"copy": {"dest": results, "content": format!("{{{{ {{{}}} | to_json }}}}", keys.join(", "))}}));
    let playbook = work.join("pb.yml");
    std::fs::write(
        &playbook,
        json!([{"hosts": "localhost", "gather_facts": false, "tasks": tasks}]).to_string(),
    )
    .unwrap();
    let out = Command::new(venv.join("bin/ansible-playbook"))
        .args(["-i", "localhost,", "-c", "local", "-e"])
        .arg(format!(
            "ansible_python_interpreter={}",
            venv.join("bin/python").display()
        ))
        .arg(&playbook)
        .env("ANSIBLE_NOCOLOR", "1")
        .output()
        .unwrap();
    match std::fs::read_to_string(&results) {
        Ok(t) => serde_json::from_str(&t).unwrap(),
        Err(_) => panic!(
            "ansible-playbook did not finish: {}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    }
}

/// What knockplay's module did: changed, failed, message and the result as users `register` it.
struct Ours {
    changed: bool,
    failed: bool,
    msg: String,
    value: Value,
}

fn run_ours(sc: &Value, d: &Path, src: &Path, check: bool) -> Ours {
    let facts = serde_json::Map::new();
    let args = subst(&sc["args"], d, src);
    let mut remote = LocalShell::new("local", None);
    let mut ctx = ModuleCtx {
        remote: &mut remote,
        become_: None,
        env: Vec::new(),
        check_mode: check,
        diff: false,
        facts: &facts,
        inventory_hostname: "testhost",
        file_search: vec![src.to_path_buf()],
        template_search: vec![src.to_path_buf()],
        templater: &Verbatim,
        timeout: None,
    };
    let module = lookup(sc["module"].as_str().unwrap()).unwrap();
    match module.execute(args.as_object().unwrap(), &mut ctx) {
        Ok(r) => {
            let mut v = Value::Object(r.data.clone());
            v["rc"] = json!(r.rc);
            v["stdout"] = json!(r.stdout);
            v["stderr"] = json!(r.stderr);
            v["msg"] = json!(r.msg.clone().unwrap_or_default());
            Ours {
                changed: r.changed,
                failed: r.failed,
                msg: r.msg.unwrap_or_default(),
                value: v,
            }
        }
        Err(e) => Ours {
            changed: false,
            failed: true,
            msg: e.to_string(),
            value: json!({}),
        },
    }
}

/// Differences in the changed and failed flags between Ansible's result `a` and ours.
fn flags(what: &str, a: &Value, o: &Ours, why: &mut Vec<String>) {
    if a["changed"].as_bool().unwrap_or(false) != o.changed {
        why.push(format!(
            "{what}changed: ansible {} knockplay {}",
            a["changed"], o.changed
        ));
    }
    if a["failed"].as_bool().unwrap_or(false) != o.failed {
        why.push(format!(
            "{what}failed: ansible {} knockplay {}",
            a["failed"], o.failed
        ));
    }
}

/// Differences between Ansible's first-run result and ours: message, chosen keys, `stat`.
fn first_run(sc: &Value, a: &Value, o: &Ours, dirs: (&Path, &Path), why: &mut Vec<String>) {
    let (ans_dir, d) = dirs;
    flags("", a, o, why);
    if o.failed {
        let a_msg = a["msg"]
            .as_str()
            .unwrap_or_default()
            .replace(&ans_dir.display().to_string(), "{D}");
        let o_msg = o.msg.replace(&d.display().to_string(), "{D}");
        if a_msg != o_msg {
            why.push(format!("msg: ansible {a_msg:?} knockplay {o_msg:?}"));
        }
    }
    // Result keys users read (paths normalised to {D}).
    let norm = |v: &Value, dir: &Path| -> Value {
        serde_json::from_str(&v.to_string().replace(&dir.display().to_string(), "{D}")).unwrap()
    };
    let (an, on) = (norm(a, ans_dir), norm(&o.value, d));
    for key in sc["keys"].as_array().into_iter().flatten() {
        let k = key.as_str().unwrap();
        let (x, y) = (&an[k], &on[k]);
        if x != y {
            why.push(format!("{k}: ansible {x} knockplay {y}"));
        }
    }
    if sc["find"].as_bool() == Some(true) {
        why.extend(compare_found(&an, &on));
    }
    if sc["stat"].as_bool() == Some(true) {
        for (k, x) in an["stat"].as_object().into_iter().flatten() {
            // Keys knockplay does not report (mime, attributes, version, ...) are skipped.
            // Inodes and times differ between the two fresh trees by nature.
            let y = &on["stat"][k];
            let per_tree = ["inode", "atime", "mtime", "ctime"].contains(&k.as_str());
            if !y.is_null() && !per_tree && x != y {
                why.push(format!("stat.{k}: ansible {x} knockplay {y}"));
            }
        }
    }
}

/// Whether ansible-playbook finds the community.general collection (ini_file's home): under
/// `ANSIBLE_COLLECTIONS_PATH`, the default collection paths, or the venv's site-packages (where
/// the `ansible` package puts it). ansible-core alone lacks it.
fn has_community_general(venv: &Path) -> bool {
    let mut roots: Vec<PathBuf> = std::env::var("ANSIBLE_COLLECTIONS_PATH")
        .unwrap_or_default()
        .split(':')
        .filter(|p| !p.is_empty())
        .map(PathBuf::from)
        .collect();
    if let Some(home) = std::env::var_os("HOME") {
        roots.push(Path::new(&home).join(".ansible/collections"));
    }
    roots.push("/usr/share/ansible/collections".into());
    if let Ok(libs) = std::fs::read_dir(venv.join("lib")) {
        roots.extend(libs.flatten().map(|e| e.path().join("site-packages")));
    }
    roots.iter().any(|r| {
        r.join("ansible_collections/community/general/plugins/modules/ini_file.py")
            .exists()
    })
}

#[test]
fn modules_leave_and_report_what_ansible_does() {
    let venv = venv();
    let mut scenarios: Vec<Value> = serde_json::from_str(SCENARIOS).unwrap();
    if !has_community_general(&venv) {
        let before = scenarios.len();
        scenarios.retain(|sc| {
            !sc["module"]
                .as_str()
                .unwrap()
                .starts_with("community.general.")
        });
        eprintln!(
            "community.general is not installed for ansible-playbook: {} ini_file scenarios \
             skipped (set ANSIBLE_COLLECTIONS_PATH to a directory holding it to run them)",
            before - scenarios.len()
        );
    }
    let work = tempfile::tempdir().unwrap();
    let src = work.path().join("S");
    std::fs::create_dir_all(src.join("site/css")).unwrap();
    std::fs::write(src.join("it_ran.txt"), "it ran\n").unwrap();
    std::fs::write(src.join("site/index.html"), "hi\n").unwrap();
    std::fs::write(src.join("site/css/a.css"), "c\n").unwrap();
    sh(&format!(
        "chmod 755 '{}'",
        src.join("site/index.html").display()
    ));
    // Archives of a small tree for unarchive: tar.gz, tar.xz and zip.
    std::fs::create_dir_all(src.join("arc/top/sub")).unwrap();
    std::fs::write(src.join("arc/top/a.txt"), "a\n").unwrap();
    std::fs::write(src.join("arc/top/sub/b.txt"), "b\n").unwrap();
    sh(&format!(
        "cd '{0}/arc' && chmod 640 top/a.txt && tar -czf ../t.tgz top && tar -cJf ../t.tar.xz top && zip -qr ../t.zip top",
        src.display()
    ));
    // uri: a small HTTP server on 127.0.0.1 (the venv's python) serving {S}/www; git: a bare
    // repository; pip: two versions of a hand-made wheel and a requirements file.
    let server = HttpServer::start(&venv, &src);
    let first_commit = git_fixture(&src);
    pip_fixture(&venv, &src);
    EXTRA
        .set(vec![
            ("{U}", format!("http://127.0.0.1:{}", server.port)),
            ("{python}", venv.join("bin/python").display().to_string()),
            ("{C1}", first_commit),
        ])
        .unwrap();
    if let Ok(only) = std::env::var("KNOCKPLAY_SCENARIOS") {
        let prefixes: Vec<&str> = only.split(',').filter(|p| !p.is_empty()).collect();
        scenarios.retain(|sc| {
            let name = sc["name"].as_str().unwrap();
            prefixes.iter().any(|p| name.starts_with(p))
        });
    }
    let ans = ansible_results(&venv, &scenarios, work.path(), &src);

    // knockplay: the same scenarios through the modules, twice, then once in check mode.
    let mut mismatches = Vec::new();
    for sc in &scenarios {
        let name = sc["name"].as_str().unwrap();
        let d = work.path().join("ours").join(name);
        setup(sc, &d, &src);
        let first = run_ours(sc, &d, &src, false);
        let again = run_ours(sc, &d, &src, false);
        let chk = work.path().join("ours_chk").join(name);
        setup(sc, &chk, &src);
        let check = run_ours(sc, &chk, &src, true);

        let ans_dir = work.path().join("ans").join(name);
        let mut why = Vec::new();
        first_run(sc, &ans[name], &first, (&ans_dir, &d), &mut why);
        flags(
            "second run: ",
            &ans[format!("{name}__run2")],
            &again,
            &mut why,
        );
        flags(
            "check mode: ",
            &ans[format!("{name}__check")],
            &check,
            &mut why,
        );
        let (ta, to) = (tree_of(sc, &ans_dir), tree_of(sc, &d));
        if ta != to {
            why.push(format!("tree:\n--- ansible\n{ta}--- knockplay\n{to}"));
        }
        let (ca, co) = (
            tree_of(sc, &work.path().join("chk").join(name)),
            tree_of(sc, &chk),
        );
        if ca != co {
            why.push(format!(
                "tree after check mode:\n--- ansible\n{ca}--- knockplay\n{co}"
            ));
        }
        if !why.is_empty() {
            mismatches.push(format!("{name}: {}", why.join("; ")));
        }
    }
    assert!(
        mismatches.is_empty(),
        "{} of {} scenarios differ from ansible-core:\n{}",
        mismatches.len(),
        scenarios.len(),
        mismatches.join("\n")
    );
}

/// The Python HTTP server of the uri scenarios, stopped when dropped.
struct HttpServer {
    child: std::process::Child,
    port: u16,
}

const SERVER_PY: &str = r#"
import http.server, json, os, sys
class H(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *a):
        pass
    def do_GET(self):
        if self.path == "/redirect":
            self.send_response(302)
            self.send_header("Location", "/data.json")
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        return super().do_GET()
    def do_POST(self):
        n = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(n)
        ct = self.headers.get("Content-Type") or ""
        out = json.dumps({"body": body.decode("utf-8", "replace"), "content_type": ct}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(out)))
        self.end_headers()
        self.wfile.write(out)
os.chdir(sys.argv[1])
s = http.server.ThreadingHTTPServer(("127.0.0.1", 0), H)
print(s.server_address[1], flush=True)
s.serve_forever()
"#;

impl HttpServer {
    fn start(venv: &Path, src: &Path) -> HttpServer {
        use std::io::BufRead;
        let www = src.join("www");
        std::fs::create_dir_all(&www).unwrap();
        std::fs::write(
            www.join("data.json"),
            r#"{"name": "knockplay", "n": [1, 2]}"#,
        )
        .unwrap();
        std::fs::write(www.join("hello.txt"), "hello\n").unwrap();
        std::fs::write(src.join("server.py"), SERVER_PY).unwrap();
        let mut child = Command::new(venv.join("bin/python"))
            .arg(src.join("server.py"))
            .arg(&www)
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let mut line = String::new();
        std::io::BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let port = line
            .trim()
            .parse()
            .expect("the HTTP server printed no port");
        HttpServer { child, port }
    }
}

impl Drop for HttpServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A bare repository `{S}/repo.git`: commits one, two, three on `main`, a lightweight tag `v1`
/// and an annotated tag `v1a` on the first, a branch `feature`. Returns the first commit's SHA.
fn git_fixture(src: &Path) -> String {
    sh(&format!(
        "cd '{}' && export GIT_AUTHOR_NAME=t GIT_AUTHOR_EMAIL=t@t GIT_COMMITTER_NAME=t GIT_COMMITTER_EMAIL=t@t && \
         git init -q work && cd work && git checkout -q -b main && echo 1 > f && git add f && git commit -qm one && \
         git tag v1 && git tag -a v1a -m annotated && echo 2 > f && git commit -qam two && \
         git checkout -q -b feature && echo feat > g && git add g && git commit -qm feat && \
         git checkout -q main && echo 3 > f && git commit -qam three && cd .. && \
         git clone -q --bare work repo.git && git -C repo.git symbolic-ref HEAD refs/heads/main",
        src.display()
    ));
    sh(&format!(
        "git -C '{}/repo.git' rev-parse v1^{{commit}}",
        src.display()
    ))
    .trim()
    .to_string()
}

/// `{S}/wheels`: pure-Python wheels of `kptoy` 1.0 and 2.0, made by hand (no network, no build
/// backend); `{S}/req.txt` asks for `kptoy==1.0`.
fn pip_fixture(venv: &Path, src: &Path) {
    let script = r#"
import base64, hashlib, os, sys, zipfile
out = sys.argv[1]
os.makedirs(out, exist_ok=True)
for v in ("1.0", "2.0"):
    files = {
        "kptoy.py": "VERSION = %r\n" % v,
        "kptoy-%s.dist-info/METADATA" % v: "Metadata-Version: 2.1\nName: kptoy\nVersion: %s\n" % v,
        "kptoy-%s.dist-info/WHEEL" % v: "Wheel-Version: 1.0\nGenerator: hand\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
    }
    rec = []
    with zipfile.ZipFile(os.path.join(out, "kptoy-%s-py3-none-any.whl" % v), "w") as z:
        for name, text in files.items():
            data = text.encode()
            z.writestr(name, data)
            h = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
            rec.append("%s,sha256=%s,%d" % (name, h, len(data)))
        rec.append("kptoy-%s.dist-info/RECORD,," % v)
        z.writestr("kptoy-%s.dist-info/RECORD" % v, "\n".join(rec) + "\n")
"#;
    let out = Command::new(venv.join("bin/python"))
        .arg("-c")
        .arg(script)
        .arg(src.join("wheels"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    std::fs::write(src.join("req.txt"), "kptoy==1.0\n").unwrap();
}

/// `find` results: `matched`, `examined` and, by sorted path, the stat keys of every file.
fn compare_found(a: &Value, o: &Value) -> Vec<String> {
    let mut why = Vec::new();
    for k in ["matched", "examined"] {
        if a[k] != o[k] {
            why.push(format!("{k}: ansible {} knockplay {}", a[k], o[k]));
        }
    }
    let by_path = |v: &Value| -> Vec<(String, Value)> {
        let mut files: Vec<(String, Value)> = v["files"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|f| (f["path"].as_str().unwrap_or("").to_string(), f.clone()))
            .collect();
        files.sort_by(|x, y| x.0.cmp(&y.0));
        files
    };
    let (fa, fo) = (by_path(a), by_path(o));
    let (pa, po): (Vec<&String>, Vec<&String>) = (
        fa.iter().map(|f| &f.0).collect(),
        fo.iter().map(|f| &f.0).collect(),
    );
    if pa != po {
        why.push(format!("files: ansible {pa:?} knockplay {po:?}"));
        return why;
    }
    let keys = [
        "mode", "isreg", "isdir", "islnk", "ischr", "isblk", "isfifo", "issock", "size", "uid",
        "gid", "pw_name", "gr_name", "nlink", "wusr", "rusr", "xusr", "wgrp", "rgrp", "xgrp",
        "woth", "roth", "xoth", "isuid", "isgid",
    ];
    for ((p, x), (_, y)) in fa.iter().zip(&fo) {
        for k in keys {
            if x[k] != y[k] {
                why.push(format!("{p}.{k}: ansible {} knockplay {}", x[k], y[k]));
            }
        }
    }
    why
}
