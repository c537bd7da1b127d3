//! The example user data under the real cloud-init (Debian's package in the test-host image variant
//! `knockplay-testhost-cloudinit`, a NoCloud seed, its stages run by hand: containers have no
//! systemd). The examples pass `cloud-init schema`, and hosts that boot with them send an SPA knock
//! and end configured by the listener.

mod common;

use std::path::Path;
use std::time::Duration;

use common::listener::{runs_for, spa_door_config, wait_for, Listener};
use common::{Host, TestBed, CLOUD_INIT_IMAGE};

const PLAYBOOK: &str = "- hosts: all\n  gather_facts: no\n  tasks:\n    - copy:\n        content: \"cloud-init\\n\"\n        dest: /etc/configured-by-knockplay\n";

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// Seeds NoCloud with `user_data` and runs cloud-init's four stages, as a boot would. Returns
/// cloud-init's output with `rc=N` of the stages.
fn boot_with_cloud_init(h: &Host, user_data: &str) -> String {
    let seed = "/var/lib/cloud/seed/nocloud";
    // NoCloud only: no probing of cloud metadata services (nothing leaves the test network).
    let setup = h.exec(&format!(
        "mkdir -p {seed} /etc/cloud/cloud.cfg.d && \
         printf 'datasource_list: [ NoCloud, None ]\\nlocale: C.UTF-8\\n' > /etc/cloud/cloud.cfg.d/99-knockplay-test.cfg && \
         printf 'instance-id: iid-{name}\\nlocal-hostname: {name}\\n' > {seed}/meta-data",
        name = h.name
    ));
    assert!(setup.ok(), "{}", setup.stderr);
    h.write_file(&format!("{seed}/user-data"), user_data.as_bytes())
        .unwrap();
    // Every stage runs, as at boot; the final one (runcmd, user scripts) is what knocks.
    let run = h.exec(
        "cloud-init init --local >/tmp/ci.log 2>&1; cloud-init init >>/tmp/ci.log 2>&1; \
         cloud-init modules --mode=config >>/tmp/ci.log 2>&1; \
         cloud-init modules --mode=final >>/tmp/ci.log 2>&1; echo rc=$?; tail -n 30 /tmp/ci.log",
    );
    format!("{}{}", run.stdout, run.stderr)
}

#[test]
fn hosts_booting_with_the_example_user_data_end_configured() {
    let bin = env!("CARGO_BIN_EXE_knockplay");
    let bed = TestBed::builder()
        .hosts(2)
        .image(CLOUD_INIT_IMAGE)
        // The image carries the client, as the examples ask (here: bind-mounted).
        .mount(bin, "/usr/local/bin/knockplay")
        .start()
        .expect("test bed (bash tests/hosts/setup builds the cloud-init image)");
    let yaml_text =
        std::fs::read_to_string(repo().join("examples/cloud-init-per-instance.yaml")).unwrap();
    let h0 = &bed.hosts[0];
    h0.write_file("/tmp/per-instance.yaml", yaml_text.as_bytes())
        .unwrap();
    let schema = h0.exec("cloud-init schema --config-file /tmp/per-instance.yaml");
    assert!(schema.ok(), "{}{}", schema.stdout, schema.stderr);
    assert!(schema.stdout.contains("Valid"), "{}", schema.stdout);

    let dir = tempfile::tempdir().unwrap();
    let pb = dir.path().join("site.yml");
    std::fs::write(&pb, PLAYBOOK).unwrap();
    let (cfg, key) = spa_door_config(&bed.bridge_if, &bed.subnet, dir.path(), &pb, &bed.key_path);
    let fleet_key = std::fs::read_to_string(&key).unwrap();
    let l = Listener::start(dir.path(), &cfg);
    let gw = bed.gateway_ip.to_string();

    // host0: examples/cloud-init-per-instance.yaml with its placeholders filled in.
    let yaml = yaml_text
        .replace("CONTROLLER", &gw)
        .replace("FLEET_KEY", fleet_key.trim())
        .replace(
            "ssh-ed25519 AAAA...controller-key... knockplay@controller",
            bed.public_key.trim(),
        );
    let out = boot_with_cloud_init(h0, &yaml);
    assert!(out.contains("rc=0"), "{out}\n{}", l.output());
    assert!(
        h0.exists("/var/lib/knockplay/configured"),
        "{out}\n{}",
        l.output()
    );
    assert_eq!(
        h0.read_to_string("/etc/configured-by-knockplay").as_deref(),
        Some("cloud-init\n")
    );
    let mode = h0.exec("stat -c %a /etc/knockplay/fleet.key");
    assert_eq!(
        mode.stdout.trim(),
        "600",
        "cloud-init wrote the key readable by others"
    );

    // host1: examples/cloud-init-per-boot.sh as a user-data script, the key baked into the image.
    let h1 = &bed.hosts[1];
    let key_in_image = h1.exec(&format!(
        "mkdir -p /etc/knockplay && printf '%s\\n' '{}' > /etc/knockplay/fleet.key && chmod 600 /etc/knockplay/fleet.key",
        fleet_key.trim()
    ));
    assert!(key_in_image.ok(), "{}", key_in_image.stderr);
    let script = std::fs::read_to_string(repo().join("examples/cloud-init-per-boot.sh"))
        .unwrap()
        .replace(
            "${CONTROLLER:-10.0.0.10}",
            &format!("${{CONTROLLER:-{gw}}}"),
        );
    let out = boot_with_cloud_init(h1, &script);
    assert!(out.contains("rc=0"), "{out}\n{}", l.output());
    assert!(
        h1.exists("/var/lib/knockplay/configured"),
        "{out}\n{}",
        l.output()
    );

    wait_for("both runs recorded", Duration::from_secs(30), || {
        let hist = l.history_json();
        [h0, h1].iter().all(|h| {
            runs_for(&hist, &h.ip.to_string())
                .iter()
                .any(|r| r["status"] == "ok")
        })
    });
}
