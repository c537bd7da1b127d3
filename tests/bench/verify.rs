//! Checks on the hosts that a tool really did the benchmark's work, and a manifest of what it left
//! (paths, types, modes, owners, content hashes) to compare the tools with each other.

use sha2::{Digest, Sha256};

use crate::common::Host;

/// Problems found on `host` after a first run (empty: the work is there). `inventory_name` is the name
/// the tool knew the host by (`host0` from an inventory; its address when it knocked).
pub fn check_host(host: &Host, inventory_name: &str, data_csv: &[u8]) -> Vec<String> {
    let sha = hex::encode(Sha256::digest(data_csv));
    let (name, inv) = (&host.name, inventory_name);
    let script = format!(
        r#"p() {{ echo "$1"; }}
c=/opt/bench/conf
grep -qx 'name = {inv}' $c/app.ini || p "app.ini lacks 'name = {inv}'"
grep -qx 'hostname = {name}' $c/app.ini || p "app.ini lacks 'hostname = {name}'"
grep -qx 'APP_HOST={inv}' $c/service.env || p "service.env lacks APP_HOST={inv}"
grep -qx 'upstream beta 10.0.0.2:9002' $c/upstreams.txt || p "upstreams.txt lacks beta"
[ "$(sha256sum < /opt/bench/data/data.csv | cut -d' ' -f1)" = {sha} ] || p "data.csv differs from bench/files/data.csv"
cmp -s $c/motd - <<'EOF' || p "motd content wrong"
Managed by the knockplay benchmark
EOF
for l in max_connections=100 timeout=30 log_level=info '[extra]' cache_dir=/opt/bench/cache; do
  grep -qxF "$l" $c/settings.conf || p "settings.conf lacks $l"; done
grep -q '^debug=' $c/settings.conf && p "settings.conf still has debug="
grep -qx 'nofile 65536' $c/limits.conf || p "limits.conf lacks the block"
[ "$(stat -c %a:%U:%G $c/secrets.env)" = 600:root:root ] || p "secrets.env is $(stat -c %a:%U:%G $c/secrets.env)"
[ "$(stat -c %a:%U:%G /opt/bench/logs)" = 775:deploy:deploy ] || p "logs dir is $(stat -c %a:%U:%G /opt/bench/logs)"
[ "$(stat -c %a:%U /opt/bench/logs/access.log)" = 640:deploy ] || p "access.log is $(stat -c %a:%U /opt/bench/logs/access.log)"
[ "$(stat -c %a /opt/bench/bin/run.sh)" = 755 ] || p "run.sh is not 0755"
[ "$(readlink /opt/bench/current)" = /opt/bench/bin ] || p "current is not a link to /opt/bench/bin"
[ -d /opt/bench/cache/objects/tmp ] || p "nested cache dir missing"
for f in initialized seed index installed-version; do [ -e /opt/bench/data/$f ] || p "data/$f missing"; done
[ "$(cat /opt/bench/data/index 2>/dev/null)" = 2001 ] || p "data/index is not 2001"
[ "$(wc -l < /opt/bench/logs/restarts.log 2>/dev/null)" = 1 ] || p "handler ran $(wc -l < /opt/bench/logs/restarts.log 2>/dev/null) times, not once"
true
"#
    );
    let r = host.exec(&script);
    let mut problems: Vec<String> = r.stdout.lines().map(|l| format!("{name}: {l}")).collect();
    if r.rc != 0 {
        problems.push(format!(
            "{name}: check script failed rc={}: {}",
            r.rc,
            r.stderr.trim()
        ));
    }
    problems
}

/// One line per path under /opt/bench: path, type, mode, owner, group, and content hash of regular files
/// (restarts.log holds timestamps and is left out of the hash).
pub fn manifest(host: &Host) -> String {
    let r = host.exec(
        "cd /opt/bench 2>/dev/null && find . -printf '%p %y %m %u %g ' -exec sh -c \
         'if [ -f \"$1\" ] && [ \"$1\" != ./logs/restarts.log ]; then sha256sum < \"$1\" | cut -c1-16; \
         elif [ -L \"$1\" ]; then readlink \"$1\"; else echo; fi' sh {} \\; | sort",
    );
    r.stdout
}

/// Lines present in one manifest and not the other, prefixed with the tool names.
pub fn manifest_diff(a_name: &str, a: &str, b_name: &str, b: &str) -> Vec<String> {
    let la: std::collections::BTreeSet<&str> = a.lines().collect();
    let lb: std::collections::BTreeSet<&str> = b.lines().collect();
    let mut out: Vec<String> = la
        .difference(&lb)
        .map(|l| format!("only {a_name}: {l}"))
        .collect();
    out.extend(lb.difference(&la).map(|l| format!("only {b_name}: {l}")));
    out
}
