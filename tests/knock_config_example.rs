//! The top-level knock.toml is the documented example: it must stay valid.

use knockplay::config::{self, Action, Allow, SystemInfo};

#[test]
fn the_example_knock_toml_is_valid() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(root.join("knock.toml")).unwrap();
    // Validate it next to a playbook, on a machine with eth0 as the default route.
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("playbooks")).unwrap();
    std::fs::write(
        dir.path().join("playbooks/site.yml"),
        "- hosts: all\n  tasks: []\n",
    )
    .unwrap();
    let system = SystemInfo {
        interfaces: vec!["lo".into(), "eth0".into()],
        default_interfaces: vec!["eth0".into()],
    };
    let c = config::parse(&text, &dir.path().join("knock.toml"), &system)
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(c.listener.interfaces, vec!["eth0"]);
    assert_eq!(c.listener.receive_buffer, 8 << 20);
    assert_eq!(c.doors.len(), 1);
    let d = &c.doors[0];
    assert_eq!(d.name, "base");
    assert!(matches!(&d.allow, Allow::Nets(n) if n.len() == 2));
    assert!(
        matches!(&d.action, Action::Playbook(p) if p.playbook == dir.path().join("playbooks/site.yml"))
    );

    // The commented-out command door is valid too once uncommented.
    let uncommented: String = text
        .lines()
        .skip_while(|l| !l.starts_with("# [[door]]"))
        .map(|l| l.strip_prefix("# ").unwrap_or(l))
        .collect::<Vec<_>>()
        .join("\n");
    let with_command = format!("{text}\n{uncommented}\n");
    let c = config::parse(&with_command, &dir.path().join("knock.toml"), &system)
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(c.doors.len(), 2);
    assert!(matches!(&c.doors[1].action, Action::Command(cmd) if cmd.contains("%IP%")));
}
