//! `--list-tasks` with `--tags` and `--skip-tags` lists what ansible-playbook lists: the tasks the
//! tags select, with their effective tags (inherited from the play, blocks and role entries).

use std::path::{Path, PathBuf};
use std::process::Command;

fn write(dir: &Path, rel: &str, text: &str) {
    let p = dir.join(rel);
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(p, text).unwrap();
}

fn listing(cmd: &mut Command) -> String {
    let out = cmd.env("ANSIBLE_NOCOLOR", "1").output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

#[test]
fn list_tasks_selects_and_shows_tags_like_ansible() {
    let d = tempfile::tempdir().unwrap();
    let dir = d.path();
    write(dir, "roles/web/tasks/main.yml", "- debug: msg=unnamed\n  tags: [inner]\n- name: named in role\n  debug: msg=x\n- name: never unless asked\n  debug: msg=n\n  tags: [never, debugonly]\n");
    write(
        dir,
        "site.yml",
        "- hosts: all\n  tags: [p]\n  roles:\n    - {role: web, tags: [fromrole]}\n  tasks:\n    - name: tagged x\n      debug: msg=a\n      tags: [x]\n    - block:\n        - name: in block\n          debug: msg=b\n      tags: [blk]\n    - name: always\n      debug: msg=c\n      tags: [always]\n",
    );
    let venv = std::env::var_os("KNOCKPLAY_VENV")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(".venv"));
    for flags in [
        vec![],
        vec!["--tags", "fromrole"],
        vec!["--tags", "x,blk"],
        vec!["--skip-tags", "x"],
        vec!["--tags", "debugonly"],
        vec!["--tags", "untagged"],
    ] {
        let kp = listing(
            Command::new(env!("CARGO_BIN_EXE_knockplay"))
                .args(["run", "site.yml", "-i", "localhost,", "--list-tasks"])
                .args(&flags)
                .current_dir(dir),
        );
        let an = listing(
            Command::new(venv.join("bin/ansible-playbook"))
                .args(["site.yml", "-i", "localhost,", "--list-tasks"])
                .args(&flags)
                .current_dir(dir)
                .env("ANSIBLE_LOCAL_TEMP", dir.join(".tmp")),
        );
        assert_eq!(kp, an, "{flags:?}");
    }
}
