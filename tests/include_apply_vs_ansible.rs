//! `include_tasks`/`include_role` with `apply:` (keywords for every included task: tags, vars,
//! when), run on the controller by knockplay and by ansible-playbook with `--tags`: the same
//! messages and the same recap.

use std::path::{Path, PathBuf};
use std::process::Command;

const PLAYBOOK: &str = r#"
- hosts: localhost
  gather_facts: false
  tasks:
    - include_tasks:
        file: inc.yml
        apply:
          tags: [deploy]
          vars: {greeting: applied}
      tags: [deploy]
    - include_role:
        name: greeter
        apply:
          tags: [deploy]
          when: false
      tags: [deploy]
    - include_role:
        name: greeter
        apply: {tags: [deploy], vars: {greeting: from-role}}
      tags: [deploy]
    - debug: msg=untagged
"#;

fn write(dir: &Path, rel: &str, text: &str) {
    let p = dir.join(rel);
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(p, text).unwrap();
}

fn lines(out: std::process::Output) -> Vec<String> {
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success(), "{text}");
    text.lines()
        .filter(|l| l.trim_start().starts_with("\"msg\"") || l.contains(" ok="))
        .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
        .collect()
}

#[test]
fn apply_gives_included_tasks_their_keywords_like_ansible() {
    let d = tempfile::tempdir().unwrap();
    let dir = d.path();
    write(dir, "site.yml", PLAYBOOK);
    write(
        dir,
        "inc.yml",
        "- debug: msg='{{ greeting }}'\n- debug: msg=second\n",
    );
    write(
        dir,
        "roles/greeter/tasks/main.yml",
        "- debug: msg='role says {{ greeting | default(\"nothing\") }}'\n",
    );
    write(dir, "inv", "localhost ansible_connection=local\n");
    let venv = std::env::var_os("KNOCKPLAY_VENV")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(".venv"));
    let kp = lines(
        Command::new(env!("CARGO_BIN_EXE_knockplay"))
            .args(["run", "site.yml", "-i", "inv", "--tags", "deploy"])
            .current_dir(dir)
            .env("NO_COLOR", "1")
            .output()
            .unwrap(),
    );
    let an = lines(
        Command::new(venv.join("bin/ansible-playbook"))
            .args(["site.yml", "-i", "inv", "--tags", "deploy", "-e"])
            .arg(format!(
                "ansible_python_interpreter={}",
                venv.join("bin/python").display()
            ))
            .current_dir(dir)
            .env("ANSIBLE_NOCOLOR", "1")
            .env("ANSIBLE_LOCAL_TEMP", dir.join(".tmp"))
            .output()
            .unwrap(),
    );
    assert_eq!(kp, an, "knockplay (left) vs ansible (right)");
    assert!(
        kp.iter().any(|l| l.contains("\"msg\": \"applied\"")),
        "{kp:?}"
    );
    assert!(
        kp.iter().any(|l| l.contains("role says from-role")),
        "{kp:?}"
    );
    assert!(!kp.iter().any(|l| l.contains("untagged")), "{kp:?}");
}
