//! The example user data under the real cloud-init (Debian's package in the test-host image variant
//! `knockplay-testhost-cloudinit`, a NoCloud seed, its stages run by hand: containers have no
//! systemd). The examples pass `cloud-init schema`, and hosts that boot with them send an SPA knock
//! and end configured by the listener. The client is the shipped one (`bash dist/build`): the .deb
//! installed in the image, the static binary baked in, or the binary fetched by the user data from
//! an artifact server with its checksum pinned; a tampered download is refused and nothing knocks.

mod common;

use std::io::{Read, Write};
use std::net::{IpAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use common::listener::{knocks_for, runs_for, spa_door_config, wait_for, Listener};
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

/// The shipped client: (static binary, its .sha256 file, .deb), built by `bash dist/build` when
/// missing (tests/run builds them first).
fn dist() -> (PathBuf, PathBuf, PathBuf) {
    let v = env!("CARGO_PKG_VERSION");
    let out = repo().join("target/dist");
    let bin = out.join(format!("knockplay-{v}-x86_64-linux-musl"));
    let sum = out.join(format!("knockplay-{v}-x86_64-linux-musl.sha256"));
    let deb = out.join(format!("knockplay_{v}_amd64.deb"));
    if !(bin.exists() && sum.exists() && deb.exists()) {
        let st = Command::new("bash")
            .arg(repo().join("dist/build"))
            .status()
            .expect("bash dist/build");
        assert!(st.success(), "bash dist/build failed");
    }
    (bin, sum, deb)
}

/// Whether an ELF file asks for a program interpreter (a dynamic loader).
fn has_interpreter(elf: &[u8]) -> bool {
    assert_eq!(&elf[..4], b"\x7fELF");
    assert_eq!(elf[4], 2, "64-bit ELF");
    let u16_at = |o: usize| u16::from_le_bytes([elf[o], elf[o + 1]]) as usize;
    let phoff = u64::from_le_bytes(elf[0x20..0x28].try_into().unwrap()) as usize;
    let (size, count) = (u16_at(0x36), u16_at(0x38));
    (0..count).any(|i| {
        let at = phoff + i * size;
        u32::from_le_bytes(elf[at..at + 4].try_into().unwrap()) == 3 // PT_INTERP
    })
}

/// A throwaway artifact server on the bridge: answers every GET with `body`.
fn serve(ip: IpAddr, body: Vec<u8>) -> String {
    let l = TcpListener::bind((ip, 0)).unwrap();
    let port = l.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for conn in l.incoming() {
            let Ok(mut c) = conn else { continue };
            let _ = c.set_read_timeout(Some(Duration::from_secs(5)));
            let mut req = [0u8; 4096];
            let _ = c.read(&mut req);
            let head = format!(
                "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                body.len()
            );
            let _ = c.write_all(head.as_bytes());
            let _ = c.write_all(&body);
        }
    });
    format!("http://{ip}:{port}/knockplay-x86_64-linux-musl")
}

/// examples/cloud-init-per-instance.yaml with its download line switched on.
fn with_download(yaml: &str, url: &str, sha256: &str) -> String {
    let line = "  # - [ sh, -c, \"curl ";
    assert!(yaml.contains(line), "the example lost its download line");
    let out = yaml
        .replace(line, "  - [ sh, -c, \"curl ")
        .replace("ARTIFACT_URL", url)
        .replace("ARTIFACT_SHA256", sha256);
    assert!(!out.contains("ARTIFACT_"), "{out}");
    out
}

#[test]
fn hosts_booting_with_the_example_user_data_end_configured() {
    let (bin, sum, deb) = dist();
    let bin_bytes = std::fs::read(&bin).unwrap();
    assert!(
        !has_interpreter(&bin_bytes),
        "{} is not static",
        bin.display()
    );
    let sha = std::fs::read_to_string(&sum).unwrap();
    let sha = sha.split_whitespace().next().unwrap().to_string();
    let bed = TestBed::builder()
        .hosts(4)
        .image(CLOUD_INIT_IMAGE)
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
    let yaml = yaml_text
        .replace("CONTROLLER", &gw)
        .replace("FLEET_KEY", fleet_key.trim())
        .replace(
            "ssh-ed25519 AAAA...controller-key... knockplay@controller",
            bed.public_key.trim(),
        );
    let configured = |h: &Host, out: &str| {
        assert!(out.contains("rc=0"), "{}: {out}\n{}", h.name, l.output());
        assert!(
            h.exists("/var/lib/knockplay/configured"),
            "{}: {out}\n{}",
            h.name,
            l.output()
        );
        assert_eq!(
            h.read_to_string("/etc/configured-by-knockplay").as_deref(),
            Some("cloud-init\n")
        );
    };

    // host0: the image has the .deb installed; examples/cloud-init-per-instance.yaml as is.
    h0.copy_in(&deb, "/tmp/knockplay.deb").unwrap();
    let dpkg = h0.exec("dpkg -i /tmp/knockplay.deb && command -v knockplay");
    assert!(dpkg.ok(), "{}{}", dpkg.stdout, dpkg.stderr);
    assert_eq!(dpkg.stdout.lines().last(), Some("/usr/bin/knockplay"));
    let out = boot_with_cloud_init(h0, &yaml);
    configured(h0, &out);
    let mode = h0.exec("stat -c %a /etc/knockplay/fleet.key");
    assert_eq!(
        mode.stdout.trim(),
        "600",
        "cloud-init wrote the key readable by others"
    );

    // host1: examples/cloud-init-per-boot.sh as a user-data script; the static binary and the
    // key baked into the image.
    let h1 = &bed.hosts[1];
    h1.copy_in(&bin, "/usr/local/bin/knockplay").unwrap();
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
    configured(h1, &out);

    // host2: nothing in the image; the user data downloads the binary from the operator's
    // artifact server and installs it because its SHA-256 matches.
    let h2 = &bed.hosts[2];
    assert!(!h2.exec("command -v knockplay").ok());
    let url = serve(bed.gateway_ip, bin_bytes.clone());
    let out = boot_with_cloud_init(h2, &with_download(&yaml, &url, &sha));
    configured(h2, &out);
    let installed = h2.read_file("/usr/local/bin/knockplay").unwrap();
    assert!(installed == bin_bytes, "host2 runs another binary");

    // host3: the artifact server hands out a tampered binary. It is not installed, nothing
    // knocks, and the console says why.
    let h3 = &bed.hosts[3];
    let mut tampered = bin_bytes;
    let last = tampered.len() - 1;
    tampered[last] ^= 1;
    let evil = serve(bed.gateway_ip, tampered);
    let out = boot_with_cloud_init(h3, &with_download(&yaml, &evil, &sha));
    assert!(!out.contains("rc=0"), "{out}");
    let console = h3
        .read_to_string("/var/log/cloud-init-output.log")
        .unwrap_or_default();
    assert!(console.contains("FAILED"), "{console}");
    assert!(
        console.contains("knockplay: client missing: this host will not be configured"),
        "{console}"
    );
    assert!(!h3.exists("/usr/local/bin/knockplay"));
    assert!(!h3.exists("/var/lib/knockplay/configured"));

    wait_for("three runs recorded", Duration::from_secs(30), || {
        let hist = l.history_json();
        [h0, h1, h2].iter().all(|h| {
            runs_for(&hist, &h.ip.to_string())
                .iter()
                .any(|r| r["status"] == "ok")
        })
    });
    let hist = l.history_json();
    assert!(runs_for(&hist, &h3.ip.to_string()).is_empty());
    assert!(knocks_for(&hist, &h3.ip.to_string()).is_empty());
}
