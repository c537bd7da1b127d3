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

    // The commented-out doors (an SPA door, a command door) are valid too once uncommented.
    let blocks = commented_doors(&text);
    assert_eq!(blocks.len(), 2, "{blocks:#?}");
    let key = dir.path().join("fleet.key");
    knockplay::knock::spa::write_new_key_file(&key).unwrap();
    let with_both = format!("{text}\n{}\n", blocks.join("\n"))
        .replace("/etc/knockplay/fleet.key", &key.display().to_string());
    let c = config::parse(&with_both, &dir.path().join("knock.toml"), &system)
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(c.doors.len(), 3);
    let spa = c.doors[1].spa.as_ref().expect("the SPA door");
    assert_eq!((spa.port, spa.window.as_secs()), (62201, 60));
    assert!(matches!(&c.doors[2].action, Action::Command(cmd) if cmd.contains("%IP%")));
}

/// Each commented-out `# [[door]]` block, uncommented (`# # notes` inside it are skipped; a line
/// that is not `# ...` ends it).
fn commented_doors(text: &str) -> Vec<String> {
    let mut blocks = Vec::new();
    let mut current: Option<Vec<String>> = None;
    for line in text.lines() {
        if line == "# [[door]]" {
            if let Some(b) = current.take() {
                blocks.push(b.join("\n"));
            }
            current = Some(vec!["[[door]]".to_string()]);
            continue;
        }
        let Some(b) = current.as_mut() else { continue };
        match line.strip_prefix("# ") {
            Some(rest) if rest.starts_with('#') => {}
            Some(rest) => b.push(rest.to_string()),
            None => {
                if let Some(b) = current.take() {
                    blocks.push(b.join("\n"));
                }
            }
        }
    }
    blocks.extend(current.map(|b| b.join("\n")));
    blocks
}
