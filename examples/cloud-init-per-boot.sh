#!/bin/sh
# Per-boot knock (cloud-init: put this file in /var/lib/cloud/scripts/per-boot/, or use it as a
# `#!/bin/sh` user-data script). The controller's door `cooldown` keeps a rebooting host from
# being reconfigured too often; a host that already has the marker still knocks so it can pick up
# playbook changes on the next boot.
#
# With the knockplay client and a fleet key (/etc/knockplay/fleet.key, mode 0600) the knock is
# one authenticated SPA packet naming this host's SSH host keys (an SPA door). Without them, the
# stock knockd client sends a port sequence (a sequence door: knockd-compatible, not authenticated).
set -u
CONTROLLER=${CONTROLLER:-10.0.0.10}
KEY=${KEY:-/etc/knockplay/fleet.key}
if command -v knockplay >/dev/null 2>&1 && [ -r "$KEY" ]; then
    exec knockplay knock "$CONTROLLER" --spa --key "$KEY" --door boot --until-configured 900
fi
if ! command -v knock >/dev/null 2>&1; then
    msg="neither knockplay (with $KEY) nor knock is installed: not configured"
    echo "knockplay: $msg" >&2
    logger -t knockplay "$msg" 2>/dev/null
    exit 1
fi
# Stock knockd client fallback: knock, then wait for the marker, re-knocking with backoff.
delay=2
end=$(( $(date +%s) + 900 ))
rm -f /var/lib/knockplay/configured
while [ "$(date +%s)" -lt "$end" ]; do
    knock "$CONTROLLER" 7000 8000:udp 9000
    i=0
    while [ $i -lt "$delay" ]; do
        [ -e /var/lib/knockplay/configured ] && exit 0
        sleep 1; i=$((i + 1))
    done
    [ "$delay" -lt 60 ] && delay=$((delay * 2))
done
exit 1
