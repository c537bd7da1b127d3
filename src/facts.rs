//! Facts gathered in one round trip: one POSIX shell script and a pure parser of its output.
//!
//! The script needs only `sh` and coreutils (it uses `hostname`, `ip`, `grep` when present and
//! falls back to `/proc` otherwise). It prints sections (`@@KP:name` headers, see
//! `modules::probe::sections`) that [`parse`] turns into `ansible_*` variables plus the same
//! keys without prefix under `ansible_facts`, like Ansible.

use serde_json::json;

use crate::modules::probe::sections;

mod local;
use crate::value::{Value, Vars};

/// The system facts. Every fork on a busy target costs, so files are read with the `read`
/// builtin (`kp_cat`, `kp_line`) and `uname`'s fields come from `/proc/sys/kernel`; only
/// `hostname -f`, `id -un` and `ip` run as programs (and the fallbacks where a file is missing).
const SCRIPT: &str = r#"LC_ALL=C; export LC_ALL
kp_cat() { while IFS= read -r l || [ -n "$l" ]; do printf '%s\n' "$l"; done < "$1"; }
kp_line() { l=; IFS= read -r l < "$1" || [ -n "$l" ]; }
printf '\n@@KP:kv\n'
if kp_line /proc/sys/kernel/hostname 2>/dev/null; then n=$l; else n=$(uname -n); fi
echo "nodename=$n"
f=$(hostname -f 2>/dev/null) || f=
if [ -z "$f" ]; then set -- $(getent hosts "$n" 2>/dev/null); f=${2:-}; fi
echo "fqdn=$f"
if kp_line /proc/sys/kernel/ostype 2>/dev/null; then echo "system=$l"; else echo "system=$(uname -s)"; fi
if kp_line /proc/sys/kernel/osrelease 2>/dev/null; then echo "kernel=$l"; else echo "kernel=$(uname -r)"; fi
if kp_line /proc/sys/kernel/version 2>/dev/null; then echo "kernel_version=$l"; else echo "kernel_version=$(uname -v)"; fi
if kp_line /proc/sys/kernel/arch 2>/dev/null; then echo "machine=$l"; else echo "machine=$(uname -m)"; fi
echo "user_id=$(id -un 2>/dev/null || whoami)"
n=
if kp_line /sys/devices/system/cpu/online 2>/dev/null; then
  n=0; kp_ifs=$IFS; IFS=,; set -f
  for r in $l; do
    case $r in
      *[!0-9-]*|'') n=; break ;;
      *-*) n=$((n + ${r#*-} - ${r%-*} + 1)) ;;
      *) n=$((n + 1)) ;;
    esac
  done
  IFS=$kp_ifs; set +f
fi
[ -n "$n" ] && [ "$n" != 0 ] || n=$(grep -c '^processor' /proc/cpuinfo 2>/dev/null) || n=
[ -n "$n" ] && [ "$n" != 0 ] || n=$(nproc 2>/dev/null)
echo "vcpus=$n"
while read -r k v rest; do [ "$k" = MemTotal: ] && echo "memtotal_kb=$v"; done < /proc/meminfo
kp_line /proc/1/comm 2>/dev/null; echo "proc1=$l"
[ -d /run/systemd/system ] && echo "run_systemd=1"
[ -e /sbin/openrc ] && echo "openrc=1"
[ -d /etc/init.d ] && echo "initd=1"
command -v initctl >/dev/null 2>&1 && [ -d /etc/init ] && echo "upstart=1"
for m in apt-get dnf yum zypper apk pacman pkg; do
  if command -v "$m" >/dev/null 2>&1; then echo "pkg_bin=$m"; break; fi
done
printf '\n@@KP:os_release\n'
if [ -r /etc/os-release ]; then kp_cat /etc/os-release; else kp_cat /usr/lib/os-release 2>/dev/null; fi
printf '\n@@KP:debian_version\n'
kp_cat /etc/debian_version 2>/dev/null
printf '\n@@KP:route\n'
kp_cat /proc/net/route 2>/dev/null
printf '\n@@KP:ip\n'
o=$(ip -4 -o addr show 2>/dev/null) || o=
printf '%s\n' "$o"
printf '\n@@KP:fib_trie\n'
[ -n "$o" ] || cat /proc/net/fib_trie 2>/dev/null
printf '\n@@KP:links\n'
for i in /sys/class/net/*; do
  [ -e "$i/address" ] || continue
  kp_line "$i/address" 2>/dev/null; a=$l; kp_line "$i/mtu" 2>/dev/null
  echo "${i##*/} $a $l"
done
"#;

/// The fact-gathering script (run once per host with `sh -c`): the system facts, then the local
/// facts of `/etc/ansible/facts.d`, then the end marker.
pub fn gather_script() -> &'static str {
    static FULL: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    FULL.get_or_init(|| format!("{SCRIPT}{}printf '\\n@@KP:end\\n'\n", local::SCRIPT))
}

/// Parse the script's output into `ansible_*` facts and an `ansible_facts` dict.
pub fn parse(output: &str) -> Vars {
    let s = sections(output);
    let get = |name: &str| s.get(name).map(String::as_str).unwrap_or("");
    let kv = key_values(get("kv"), '=');
    let kvs = |k: &str| kv.get(k).cloned().unwrap_or_default();
    let os = key_values(get("os_release"), '=');

    let mut facts = Vars::new();
    let mut put = |k: &str, v: Value| {
        facts.insert(k.to_string(), v);
    };

    let nodename = kvs("nodename");
    let hostname = nodename.split('.').next().unwrap_or("").to_string();
    let fqdn = match kvs("fqdn") {
        f if f.is_empty() => nodename.clone(),
        f => f,
    };
    let domain = fqdn
        .split_once('.')
        .map(|(_, d)| d.to_string())
        .unwrap_or_default();
    put("hostname", json!(hostname));
    put("nodename", json!(nodename));
    put("fqdn", json!(fqdn));
    put("domain", json!(domain));

    let dist = distribution(&os, get("debian_version"));
    put("distribution", json!(dist.name));
    put("distribution_version", json!(dist.version));
    put("distribution_major_version", json!(dist.major));
    put("distribution_release", json!(dist.release));
    put("os_family", json!(dist.family));

    put("system", json!(kvs("system")));
    put("kernel", json!(kvs("kernel")));
    put("kernel_version", json!(kvs("kernel_version")));
    let machine = kvs("machine");
    put("machine", json!(machine));
    put("architecture", json!(architecture(&machine)));
    put("userspace_architecture", json!(architecture(&machine)));
    put("user_id", json!(kvs("user_id")));

    let vcpus = kvs("vcpus").trim().parse::<u64>().unwrap_or(1);
    put("processor_vcpus", json!(vcpus));
    put("processor_count", json!(vcpus));
    let mem_kb = kvs("memtotal_kb").trim().parse::<u64>().unwrap_or(0);
    put("memtotal_mb", json!(mem_kb / 1024));

    put("service_mgr", json!(service_mgr(&kv)));
    put("pkg_mgr", json!(pkg_mgr(&kvs("pkg_bin"))));

    let net = network(get("route"), get("ip"), get("fib_trie"), get("links"));
    put("default_ipv4", net.default_ipv4);
    put("all_ipv4_addresses", json!(net.all));
    put("interfaces", json!(net.interfaces));
    put("local", local::parse(get("local")));

    let mut out = Vars::new();
    for (k, v) in &facts {
        out.insert(format!("ansible_{k}"), v.clone());
    }
    out.insert("ansible_facts".to_string(), Value::Object(facts));
    out
}

/// `KEY=VALUE` lines (values unquoted like os-release) in order.
fn key_values(text: &str, sep: char) -> indexmap::IndexMap<String, String> {
    text.lines()
        .filter_map(|l| l.split_once(sep))
        .map(|(k, v)| {
            let v = v.trim();
            let v = v
                .strip_prefix('"')
                .and_then(|x| x.strip_suffix('"'))
                .or_else(|| v.strip_prefix('\'').and_then(|x| x.strip_suffix('\'')))
                .unwrap_or(v);
            (k.trim().to_string(), v.to_string())
        })
        .collect()
}

struct Distribution {
    name: String,
    version: String,
    major: String,
    release: String,
    family: String,
}

/// Ansible's distribution naming from os-release (ID, ID_LIKE, VERSION_ID, VERSION_CODENAME).
fn distribution(os: &indexmap::IndexMap<String, String>, debian_version: &str) -> Distribution {
    let id = os.get("ID").cloned().unwrap_or_default().to_lowercase();
    let like = os
        .get("ID_LIKE")
        .cloned()
        .unwrap_or_default()
        .to_lowercase();
    let name = match id.as_str() {
        "debian" => "Debian",
        "ubuntu" => "Ubuntu",
        "linuxmint" => "Linux Mint",
        "raspbian" => "Debian",
        "kali" => "Kali",
        "pop" => "Pop!_OS",
        "devuan" => "Devuan",
        "centos" => "CentOS",
        "rhel" => "RedHat",
        "fedora" => "Fedora",
        "rocky" => "Rocky",
        "almalinux" => "AlmaLinux",
        "ol" => "OracleLinux",
        "amzn" => "Amazon",
        "alpine" => "Alpine",
        "arch" => "Archlinux",
        "opensuse-leap" | "opensuse" => "openSUSE Leap",
        "opensuse-tumbleweed" => "openSUSE Tumbleweed",
        "sles" => "SLES",
        "gentoo" => "Gentoo",
        "" => "",
        other => return finish(capitalize(other), &id, &like, os, debian_version),
    };
    finish(name.to_string(), &id, &like, os, debian_version)
}

fn finish(
    name: String,
    id: &str,
    like: &str,
    os: &indexmap::IndexMap<String, String>,
    debian_version: &str,
) -> Distribution {
    let family_of = |x: &str| -> Option<&'static str> {
        Some(match x {
            "debian" | "ubuntu" | "linuxmint" | "raspbian" | "kali" | "pop" | "devuan" => "Debian",
            "rhel" | "centos" | "fedora" | "rocky" | "almalinux" | "ol" | "amzn" => "RedHat",
            "suse" | "opensuse" | "opensuse-leap" | "opensuse-tumbleweed" | "sles" => "Suse",
            "alpine" => "Alpine",
            "arch" => "Archlinux",
            "gentoo" => "Gentoo",
            _ => return None,
        })
    };
    let family = family_of(id)
        .or_else(|| like.split_whitespace().find_map(family_of))
        .map(str::to_string)
        .unwrap_or_else(|| name.clone());
    let mut version = os.get("VERSION_ID").cloned().unwrap_or_default();
    // Debian: Ansible reports the point release from /etc/debian_version (12.5), when numeric.
    let dv = debian_version.trim();
    if id == "debian" && dv.starts_with(|c: char| c.is_ascii_digit()) {
        version = dv.to_string();
    }
    let major = version.split('.').next().unwrap_or("").to_string();
    let mut release = os
        .get("VERSION_CODENAME")
        .or_else(|| os.get("UBUNTU_CODENAME"))
        .cloned()
        .unwrap_or_default();
    if release.is_empty() {
        // "12 (bookworm)" style VERSION.
        if let Some(v) = os.get("VERSION") {
            if let (Some(a), Some(b)) = (v.find('('), v.find(')')) {
                if a < b {
                    release = v[a + 1..b].to_string();
                }
            }
        }
    }
    if release.is_empty() && dv.contains('/') {
        // Debian testing/sid: "trixie/sid".
        release = dv.split('/').next().unwrap_or("").to_string();
    }
    Distribution {
        name,
        version,
        major,
        release,
        family,
    }
}

fn capitalize(s: &str) -> String {
    let mut c = s.chars();
    c.next()
        .map(|f| f.to_uppercase().collect::<String>() + c.as_str())
        .unwrap_or_default()
}

fn architecture(machine: &str) -> String {
    match machine {
        "i386" | "i486" | "i586" | "i686" => "i386".to_string(),
        other => other.to_string(),
    }
}

/// Ansible's service manager detection: PID 1's name when it is a known init, else probes.
fn service_mgr(kv: &indexmap::IndexMap<String, String>) -> &'static str {
    let has = |k: &str| kv.contains_key(k);
    let proc1 = kv.get("proc1").map(|s| s.trim()).unwrap_or("");
    match proc1 {
        "systemd" => return "systemd",
        "runit" | "runit-init" | "runsvdir" => return "runit",
        "openrc" | "openrc-init" => return "openrc",
        "upstart" => return "upstart",
        _ => {}
    }
    if has("run_systemd") {
        "systemd"
    } else if has("upstart") {
        "upstart"
    } else if has("openrc") {
        "openrc"
    } else if has("initd") {
        "sysvinit"
    } else {
        "service"
    }
}

fn pkg_mgr(bin: &str) -> &'static str {
    match bin {
        "apt-get" => "apt",
        "dnf" => "dnf",
        "yum" => "yum",
        "zypper" => "zypper",
        "apk" => "apk",
        "pacman" => "pacman",
        "pkg" => "pkgng",
        _ => "unknown",
    }
}

struct Network {
    default_ipv4: Value,
    all: Vec<String>,
    interfaces: Vec<String>,
}

/// One IPv4 address on an interface.
struct Addr {
    iface: String,
    addr: std::net::Ipv4Addr,
    prefix: u8,
}

/// Default route from /proc/net/route; addresses from `ip -4 -o addr` or, without `ip`, from
/// /proc/net/fib_trie (local /32 host entries matched to the routes' interfaces).
fn network(route: &str, ip: &str, fib_trie: &str, links: &str) -> Network {
    let routes: Vec<(String, u32, u32, u32)> = route
        .lines()
        .skip(1)
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            if f.len() < 8 {
                return None;
            }
            // Hex of the address in the target's (little-endian) memory order.
            let hex = |s: &str| u32::from_str_radix(s, 16).ok().map(u32::swap_bytes);
            Some((f[0].to_string(), hex(f[1])?, hex(f[2])?, hex(f[7])?))
        })
        .collect();
    let mut addrs = parse_ip_addr(ip);
    if addrs.is_empty() {
        addrs = parse_fib_trie(fib_trie, &routes);
    }
    let mut all: Vec<String> = Vec::new();
    for a in &addrs {
        let s = a.addr.to_string();
        if !a.addr.is_loopback() && !all.contains(&s) {
            all.push(s);
        }
    }
    let mut interfaces: Vec<String> = links
        .lines()
        .filter_map(|l| l.split_whitespace().next().map(str::to_string))
        .collect();
    if interfaces.is_empty() {
        for a in &addrs {
            if !interfaces.contains(&a.iface) {
                interfaces.push(a.iface.clone());
            }
        }
    }
    let default = routes
        .iter()
        .filter(|r| r.1 == 0 && r.3 == 0)
        .find(|r| addrs.iter().any(|a| a.iface == r.0));
    let default_ipv4 = match default {
        None => json!({}),
        Some((iface, _, gw, _)) => {
            let mut d = Vars::new();
            if let Some(a) = addrs.iter().find(|a| &a.iface == iface) {
                let mask = prefix_mask(a.prefix);
                let addr_n = u32::from(a.addr);
                d.insert("address".into(), json!(a.addr.to_string()));
                d.insert("alias".into(), json!(iface));
                d.insert(
                    "broadcast".into(),
                    json!(std::net::Ipv4Addr::from(addr_n | !mask).to_string()),
                );
                d.insert(
                    "gateway".into(),
                    json!(std::net::Ipv4Addr::from(*gw).to_string()),
                );
                d.insert("interface".into(), json!(iface));
                d.insert(
                    "netmask".into(),
                    json!(std::net::Ipv4Addr::from(mask).to_string()),
                );
                d.insert(
                    "network".into(),
                    json!(std::net::Ipv4Addr::from(addr_n & mask).to_string()),
                );
                d.insert("prefix".into(), json!(a.prefix.to_string()));
                if let Some(link) = links
                    .lines()
                    .map(|l| l.split_whitespace().collect::<Vec<_>>())
                    .find(|f| f.first() == Some(&iface.as_str()))
                {
                    if let Some(mac) = link.get(1) {
                        d.insert("macaddress".into(), json!(mac));
                    }
                    if let Some(mtu) = link.get(2).and_then(|m| m.parse::<u64>().ok()) {
                        d.insert("mtu".into(), json!(mtu));
                    }
                }
                d.insert("type".into(), json!("ether"));
            }
            Value::Object(d)
        }
    };
    Network {
        default_ipv4,
        all,
        interfaces,
    }
}

fn prefix_mask(prefix: u8) -> u32 {
    if prefix == 0 {
        0
    } else {
        u32::MAX << (32 - u32::from(prefix.min(32)))
    }
}

/// `ip -4 -o addr show` lines: `2: eth0    inet 10.0.0.5/24 brd ... scope global eth0\ ...`.
fn parse_ip_addr(text: &str) -> Vec<Addr> {
    text.lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            let i = f.iter().position(|w| *w == "inet")?;
            let iface = f
                .get(1)?
                .trim_end_matches(':')
                .split('@')
                .next()?
                .to_string();
            let (a, p) = f.get(i + 1)?.split_once('/')?;
            Some(Addr {
                iface,
                addr: a.parse().ok()?,
                prefix: p.parse().ok()?,
            })
        })
        .collect()
}

/// Local addresses from fib_trie's `Main:` table (`|-- A.B.C.D` followed by `/32 host LOCAL`),
/// each assigned to the interface whose connected route contains it.
fn parse_fib_trie(text: &str, routes: &[(String, u32, u32, u32)]) -> Vec<Addr> {
    let mut out: Vec<Addr> = Vec::new();
    let mut last: Option<std::net::Ipv4Addr> = None;
    let mut in_main = true;
    for line in text.lines() {
        let t = line.trim();
        if !line.starts_with(' ') {
            in_main = t == "Main:";
            continue;
        }
        if !in_main {
            continue;
        }
        if let Some(a) = t.strip_prefix("|-- ") {
            last = a.parse().ok();
        } else if t.starts_with("/32 host LOCAL") {
            if let Some(addr) = last.take() {
                if out.iter().any(|x| x.addr == addr) {
                    continue;
                }
                let n = u32::from(addr);
                let route = routes
                    .iter()
                    .filter(|r| r.3 != 0 && n & r.3 == r.1 && r.2 == 0)
                    .max_by_key(|r| r.3.count_ones());
                let (iface, prefix) = match route {
                    Some(r) => (r.0.clone(), r.3.count_ones() as u8),
                    None if addr.is_loopback() => ("lo".to_string(), 8),
                    None => continue,
                };
                out.push(Addr {
                    iface,
                    addr,
                    prefix,
                });
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const ROUTE: &str =
        "Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT\n\
eth0\t00000000\t010200C0\t0003\t0\t0\t0\t00000000\t0\t0\t0\n\
docker0\t000011AC\t00000000\t0001\t0\t0\t0\t0000FFFF\t0\t0\t0\n\
eth0\t000200C0\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0\n";

    const FIB: &str = "Main:\n  +-- 0.0.0.0/0 3 0 4\n     |-- 0.0.0.0\n        /0 universe UNICAST\n     +-- 127.0.0.0/8 2 0 2\n        +-- 127.0.0.0/31 1 0 0\n           |-- 127.0.0.0\n              /8 host LOCAL\n           |-- 127.0.0.1\n              /32 host LOCAL\n        |-- 127.255.255.255\n           /32 link BROADCAST\n     +-- 172.17.0.0/16 2 0 2\n           |-- 172.17.0.0\n              /16 link UNICAST\n           |-- 172.17.0.1\n              /32 host LOCAL\n     +-- 192.0.2.0/24 2 0 2\n           |-- 192.0.2.0\n              /24 link UNICAST\n           |-- 192.0.2.2\n              /32 host LOCAL\n        |-- 192.0.2.255\n           /32 link BROADCAST\nLocal:\n  +-- 0.0.0.0/0 3 0 4\n           |-- 10.9.9.9\n              /32 host LOCAL\n";

    fn fixture(ip: &str, os_release: &str, debian_version: &str, extra_kv: &str) -> String {
        format!(
            "\n@@KP:kv\nnodename=web1\nfqdn=web1.example.test\nsystem=Linux\nkernel=6.1.0-18-amd64\n\
kernel_version=#1 SMP\nmachine=x86_64\nuser_id=root\nvcpus=4\nmemtotal_kb=2048000\nproc1=sshd\n\
initd=1\npkg_bin=apt-get\n{extra_kv}\n@@KP:os_release\n{os_release}\n@@KP:debian_version\n{debian_version}\n\
@@KP:route\n{ROUTE}\n@@KP:ip\n{ip}\n@@KP:fib_trie\n{FIB}\n@@KP:links\neth0 02:42:c0:00:02:02 1500\nlo 00:00:00:00:00:00 65536\n\n@@KP:end\n"
        )
    }

    const DEBIAN: &str = "PRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\nNAME=\"Debian GNU/Linux\"\nVERSION_ID=\"12\"\nVERSION=\"12 (bookworm)\"\nVERSION_CODENAME=bookworm\nID=debian\n";
    const UBUNTU: &str = "NAME=\"Ubuntu\"\nVERSION_ID=\"22.04\"\nVERSION=\"22.04.3 LTS (Jammy Jellyfish)\"\nVERSION_CODENAME=jammy\nID=ubuntu\nID_LIKE=debian\nUBUNTU_CODENAME=jammy\n";

    #[test]
    fn debian_facts_from_fib_trie_without_ip() {
        let f = parse(&fixture("", DEBIAN, "12.5\n", ""));
        assert_eq!(f["ansible_hostname"], "web1");
        assert_eq!(f["ansible_fqdn"], "web1.example.test");
        assert_eq!(f["ansible_domain"], "example.test");
        assert_eq!(f["ansible_os_family"], "Debian");
        assert_eq!(f["ansible_distribution"], "Debian");
        assert_eq!(f["ansible_distribution_version"], "12.5");
        assert_eq!(f["ansible_distribution_major_version"], "12");
        assert_eq!(f["ansible_distribution_release"], "bookworm");
        assert_eq!(f["ansible_system"], "Linux");
        assert_eq!(f["ansible_architecture"], "x86_64");
        assert_eq!(f["ansible_machine"], "x86_64");
        assert_eq!(f["ansible_kernel"], "6.1.0-18-amd64");
        assert_eq!(f["ansible_processor_vcpus"], 4);
        assert_eq!(f["ansible_memtotal_mb"], 2000);
        assert_eq!(f["ansible_service_mgr"], "sysvinit");
        assert_eq!(f["ansible_pkg_mgr"], "apt");
        assert_eq!(f["ansible_user_id"], "root");
        let d = &f["ansible_default_ipv4"];
        assert_eq!(d["address"], "192.0.2.2");
        assert_eq!(d["interface"], "eth0");
        assert_eq!(d["gateway"], "192.0.2.1");
        assert_eq!(d["netmask"], "255.255.255.0");
        assert_eq!(d["network"], "192.0.2.0");
        assert_eq!(d["macaddress"], "02:42:c0:00:02:02");
        // Only the Main table counts; loopback is excluded like Ansible.
        assert_eq!(
            f["ansible_all_ipv4_addresses"],
            json!(["172.17.0.1", "192.0.2.2"])
        );
        assert_eq!(f["ansible_facts"]["distribution"], "Debian");
        assert_eq!(f["ansible_facts"]["default_ipv4"]["gateway"], "192.0.2.1");
    }

    #[test]
    fn ubuntu_with_ip_and_systemd() {
        let ip = "1: lo    inet 127.0.0.1/8 scope host lo\\       valid_lft forever\n\
4: eth0    inet 192.0.2.2/24 brd 192.0.2.255 scope global eth0\\       valid_lft forever\n\
5: docker0    inet 172.17.0.1/16 brd 172.17.255.255 scope global docker0\\  x\n";
        let f = parse(&fixture(ip, UBUNTU, "bookworm/sid\n", "run_systemd=1\n"));
        assert_eq!(f["ansible_distribution"], "Ubuntu");
        assert_eq!(f["ansible_os_family"], "Debian");
        assert_eq!(f["ansible_distribution_version"], "22.04");
        assert_eq!(f["ansible_distribution_major_version"], "22");
        assert_eq!(f["ansible_distribution_release"], "jammy");
        assert_eq!(f["ansible_service_mgr"], "systemd");
        assert_eq!(f["ansible_default_ipv4"]["address"], "192.0.2.2");
        assert_eq!(f["ansible_default_ipv4"]["prefix"], "24");
        assert_eq!(
            f["ansible_all_ipv4_addresses"],
            json!(["192.0.2.2", "172.17.0.1"])
        );
    }

    #[test]
    fn family_from_id_like_and_missing_pieces() {
        let os = "ID=weirdos\nID_LIKE=\"rhel fedora\"\nVERSION_ID=9.3\n";
        let f = parse(&format!(
            "\n@@KP:kv\nnodename=box.lan\nmachine=i686\nproc1=systemd\n\n@@KP:os_release\n{os}\n@@KP:end\n"
        ));
        assert_eq!(f["ansible_os_family"], "RedHat");
        assert_eq!(f["ansible_distribution"], "Weirdos");
        assert_eq!(f["ansible_distribution_major_version"], "9");
        assert_eq!(f["ansible_hostname"], "box");
        assert_eq!(f["ansible_fqdn"], "box.lan");
        assert_eq!(f["ansible_architecture"], "i386");
        assert_eq!(f["ansible_service_mgr"], "systemd");
        assert_eq!(f["ansible_default_ipv4"], json!({}));
        assert_eq!(f["ansible_pkg_mgr"], "unknown");
    }

    #[test]
    fn script_runs_under_plain_sh_here() {
        let out = std::process::Command::new("sh")
            .arg("-c")
            .arg(gather_script())
            .output()
            .unwrap();
        assert!(out.status.success());
        let f = parse(&String::from_utf8_lossy(&out.stdout));
        let uname = std::process::Command::new("uname")
            .arg("-n")
            .output()
            .unwrap();
        let node = String::from_utf8_lossy(&uname.stdout).trim().to_string();
        assert_eq!(f["ansible_nodename"], node.as_str());
        assert_eq!(f["ansible_system"], "Linux");
        assert!(f["ansible_memtotal_mb"].as_u64().unwrap() > 0);
        assert!(f["ansible_processor_vcpus"].as_u64().unwrap() >= 1);
        assert!(!f["ansible_distribution"].as_str().unwrap().is_empty());
    }
}
