//! A role's `meta/argument_specs.yml` is checked before its first task, with Ansible's messages:
//! the same verdicts and error lines as ansible-playbook for valid parameters, a missing required
//! one, a wrong type, a value outside `choices` and wrong list elements. (The validation runs on
//! the controller: no host is contacted before it fails.)

use std::path::{Path, PathBuf};
use std::process::Command;

fn write(dir: &Path, rel: &str, text: &str) {
    let p = dir.join(rel);
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(p, text).unwrap();
}

const SPEC: &str = "argument_specs:
  main:
    short_description: the web role
    options:
      web_port: {type: int, required: true}
      web_state: {type: str, choices: [present, absent], default: present}
      web_users: {type: list, elements: int}
";

/// The validation task's verdict: its error messages, or "passed".
fn verdict(out: &std::process::Output) -> Vec<String> {
    let text = String::from_utf8_lossy(&out.stdout);
    let re = regex::Regex::new(
        r#"missing required arguments: [\w, ]*\w|argument '\w+' is of type <class '[\w.]+'> and we were unable to convert to \w+(: \\?"'\w+'\\?" cannot be converted to an? \w+)?|value of \w+ must be one of: [\w, ]+, got: \w+|Elements value for option '\w+' is of type <class '[\w.]+'> and we were unable to convert to \w+(: \\?"'\w+'\\?" cannot be converted to an? \w+)?"#,
    )
    .unwrap();
    let mut found: Vec<String> = re
        .find_iter(&text)
        .map(|m| m.as_str().replace("\\\"", "\""))
        .collect();
    found.sort();
    found.dedup();
    if found.is_empty()
        && text.contains("Validating arguments against arg spec 'main' - the web role")
    {
        found.push("passed".into());
    }
    found
}

#[test]
fn role_argument_specs_are_validated_like_ansible() {
    let d = tempfile::tempdir().unwrap();
    let dir = d.path();
    write(dir, "roles/web/meta/argument_specs.yml", SPEC);
    write(dir, "roles/web/tasks/main.yml", "- debug: msg=ran\n");
    let venv = std::env::var_os("KNOCKPLAY_VENV")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(".venv"));
    let cases = [
        ("{role: web, web_port: 80, web_users: [1, 2]}", true),
        ("{role: web}", false),
        ("{role: web, web_port: eighty}", false),
        ("{role: web, web_port: 80, web_state: gone}", false),
        ("{role: web, web_port: 80, web_users: [1, x]}", false),
    ];
    for (entry, ok) in cases {
        write(
            dir,
            "site.yml",
            &format!("- hosts: localhost\n  gather_facts: false\n  roles:\n    - {entry}\n"),
        );
        let kp = Command::new(env!("CARGO_BIN_EXE_knockplay"))
            .args(["run", "site.yml", "-v"])
            .current_dir(dir)
            .env("NO_COLOR", "1")
            .output()
            .unwrap();
        let an = Command::new(venv.join("bin/ansible-playbook"))
            .args(["site.yml", "-i", "localhost,", "-c", "local"])
            .current_dir(dir)
            .env("ANSIBLE_NOCOLOR", "1")
            .env("ANSIBLE_LOCAL_TEMP", dir.join(".tmp"))
            .output()
            .unwrap();
        assert_eq!(
            kp.status.success(),
            ok,
            "{entry}: {}",
            String::from_utf8_lossy(&kp.stdout)
        );
        assert_eq!(
            an.status.success(),
            ok,
            "{entry}: {}",
            String::from_utf8_lossy(&an.stdout)
        );
        let (k, a) = (verdict(&kp), verdict(&an));
        assert!(
            !k.is_empty(),
            "{entry}: {}",
            String::from_utf8_lossy(&kp.stdout)
        );
        assert_eq!(k, a, "{entry}: knockplay (left) vs ansible (right)");
    }
}
