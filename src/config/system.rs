//! What the machine offers the listener: its network interfaces and the interface(s) of the
//! default route, read from pnet and `/proc/net/route` / `/proc/net/ipv6_route`.

/// What the machine offers: network interfaces and the default-route interface.
#[derive(Debug, Clone, Default)]
pub struct SystemInfo {
    pub interfaces: Vec<String>,
    pub default_interfaces: Vec<String>,
}

impl SystemInfo {
    /// Reads the interfaces (pnet) and the default route (/proc/net/route, /proc/net/ipv6_route).
    pub fn probe() -> Self {
        let interfaces = pnet::datalink::interfaces()
            .into_iter()
            .map(|i| i.name)
            .collect();
        let mut default_interfaces = std::fs::read_to_string("/proc/net/route")
            .map(|routes| ipv4_default_interfaces(&routes))
            .unwrap_or_default();
        if default_interfaces.is_empty() {
            if let Ok(routes) = std::fs::read_to_string("/proc/net/ipv6_route") {
                default_interfaces.extend(ipv6_default_interface(&routes));
            }
        }
        SystemInfo {
            interfaces,
            default_interfaces,
        }
    }
}

/// Interfaces with an IPv4 default route (destination and mask 0) in `/proc/net/route`.
fn ipv4_default_interfaces(routes: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for line in routes.lines().skip(1) {
        let f: Vec<&str> = line.split_whitespace().collect();
        if f.len() > 7 && f[1] == "00000000" && f[7] == "00000000" && !out.iter().any(|i| i == f[0])
        {
            out.push(f[0].to_string());
        }
    }
    out
}

/// The first interface (not `lo`) with an IPv6 default route (`::/0`) in `/proc/net/ipv6_route`.
fn ipv6_default_interface(routes: &str) -> Option<String> {
    routes.lines().find_map(|line| {
        let f: Vec<&str> = line.split_whitespace().collect();
        (f.len() == 10 && f[0].chars().all(|c| c == '0') && f[1] == "00" && f[9] != "lo")
            .then(|| f[9].to_string())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_route_interfaces() {
        let v4 = "Iface\tDestination\tGateway\tFlags\tRefCnt\tUse\tMetric\tMask\n\
                  eth0\t00000000\t0102A8C0\t0003\t0\t0\t100\t00000000\n\
                  eth0\t0002A8C0\t00000000\t0001\t0\t0\t100\t00FFFFFF\n\
                  wlan0\t00000000\t0101A8C0\t0003\t0\t0\t600\t00000000\n\
                  eth0\t00000000\t0102A8C0\t0003\t0\t0\t200\t00000000\n";
        assert_eq!(ipv4_default_interfaces(v4), ["eth0", "wlan0"]);
        assert!(ipv4_default_interfaces("Iface\tDestination\n").is_empty());
        let zeros = "00000000000000000000000000000000";
        let v6 = format!(
            "{zeros} 00 {zeros} 00 {zeros} ffffffff 00000001 00000000 00200200 lo\n\
             fe800000000000000000000000000000 40 {zeros} 00 {zeros} 00000100 00000001 00000000 00000001 eth1\n\
             {zeros} 00 {zeros} 00 fe800000000000000000000000000001 00000400 00000001 00000000 00000003 eth1\n"
        );
        assert_eq!(ipv6_default_interface(&v6).as_deref(), Some("eth1"));
        assert_eq!(ipv6_default_interface(""), None);
    }
}
