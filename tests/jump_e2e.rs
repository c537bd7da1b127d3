//! A target that accepts SSH only from a jump host (its sshd allows root only from the jump
//! host's address), reached through that jump host as users configure it: `-o ProxyJump=` in
//! `ansible_ssh_common_args`, and an OpenSSH config file (`-F`) with `HostName`, `User`,
//! `IdentityFile` and `ProxyJump` naming another `Host` entry. Both host keys land in
//! knockplay's known_hosts (checked like any host's); a direct connection is refused.

mod common;

use std::process::{Command, Output};

use common::TestBed;

fn knockplay(bed: &common::TestBed, inv: &std::path::Path, pb: &std::path::Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_knockplay"))
        .arg("run")
        .arg(pb)
        .arg("-i")
        .arg(inv)
        .arg("--known-hosts")
        .arg(bed.dir().join("kp_known_hosts"))
        .env("NO_COLOR", "1")
        .output()
        .unwrap()
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

#[test]
fn a_target_behind_a_jump_host_is_configured_through_it() {
    let bed = TestBed::start(2).expect("test bed");
    let (jump, target) = (&bed.hosts[0], &bed.hosts[1]);
    // The target lets root in only from the jump host.
    let lock = target.exec(&format!(
        "echo 'AllowUsers root@{}' > /etc/ssh/sshd_config.d/only-jump.conf && pkill -HUP -x sshd",
        jump.ip
    ));
    assert!(lock.ok(), "{}", lock.stderr);
    std::thread::sleep(std::time::Duration::from_millis(500));
    let d = tempfile::tempdir().unwrap();
    let key = bed.key_path.display().to_string();
    let pb = d.path().join("site.yml");
    std::fs::write(
        &pb,
        "- hosts: all\n  gather_facts: false\n  tasks:\n    - copy: {content: \"via {{ via }}\\n\", dest: \"/tmp/through-{{ via }}\"}\n",
    )
    .unwrap();

    // Direct: refused.
    let direct = d.path().join("direct.ini");
    std::fs::write(
        &direct,
        format!("target ansible_host={} ansible_user=root ansible_ssh_private_key_file={key} via=direct\n", target.ip),
    )
    .unwrap();
    let o = knockplay(&bed, &direct, &pb);
    assert!(!o.status.success(), "{}", text(&o));
    assert!(!target.exists("/tmp/through-direct"));

    // -o ProxyJump= in ansible_ssh_common_args.
    let args = d.path().join("args.ini");
    std::fs::write(
        &args,
        format!(
            "target ansible_host={} ansible_user=root ansible_ssh_private_key_file={key} via=args ansible_ssh_common_args='-o StrictHostKeyChecking=no -o ProxyJump=root@{}'\n",
            target.ip, jump.ip
        ),
    )
    .unwrap();
    let o = knockplay(&bed, &args, &pb);
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(
        target.read_to_string("/tmp/through-args").as_deref(),
        Some("via args\n")
    );

    // An OpenSSH config file: the inventory names only an alias.
    let cfg = d.path().join("ssh_config");
    std::fs::write(
        &cfg,
        format!(
            "Host inner\n    HostName {}\n    User root\n    IdentityFile {key}\n    ProxyJump bastion\n\nHost bastion\n    HostName {}\n    User root\n    IdentityFile {key}\n",
            target.ip, jump.ip
        ),
    )
    .unwrap();
    let viaconfig = d.path().join("config.ini");
    std::fs::write(
        &viaconfig,
        format!(
            "inner via=config ansible_ssh_common_args='-F {}'\n",
            cfg.display()
        ),
    )
    .unwrap();
    let o = knockplay(&bed, &viaconfig, &pb);
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(
        target.read_to_string("/tmp/through-config").as_deref(),
        Some("via config\n")
    );
    // Both host keys were checked and recorded.
    let known = std::fs::read_to_string(bed.dir().join("kp_known_hosts")).unwrap();
    for ip in [jump.ip, target.ip] {
        assert!(known.contains(&ip.to_string()), "{ip} missing:\n{known}");
    }
}
