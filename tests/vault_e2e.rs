//! Vault as repositories use it, encrypted by the real `ansible-vault`: whole-file group_vars
//! (format 1.2, a `prod` vault id), a vars_file (1.1), an inline `!vault` value, an encrypted
//! template and an encrypted `copy` source. knockplay and ansible-playbook, given the same
//! passwords, leave the same files on twin hosts; the secrets appear nowhere in knockplay's
//! output, `--json` or log files; a wrong or missing password fails before anything changes,
//! naming the file.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use common::TestBed;

const SECRETS: [&str; 5] = [
    "group-secret-9f2",
    "file-secret-71c",
    "inline-secret-44a",
    "template-secret-0de",
    "copy-secret-b5e",
];

fn venv_bin(tool: &str) -> PathBuf {
    let venv = std::env::var_os("KNOCKPLAY_VENV")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(".venv"));
    venv.join("bin").join(tool)
}

fn vault(dir: &Path, args: &[&str]) -> String {
    let out = Command::new(venv_bin("ansible-vault"))
        .args(args)
        .current_dir(dir)
        .env("ANSIBLE_LOCAL_TEMP", dir.join(".ansible-tmp"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "ansible-vault {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn write(dir: &Path, rel: &str, text: &str) {
    let p = dir.join(rel);
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(p, text).unwrap();
}

/// The repository, its secrets encrypted in place by ansible-vault.
fn repo(d: &Path) {
    write(d, "pw-prod", "p-prod\n");
    write(d, "pw-default", "hunter2\n");
    write(
        d,
        "group_vars/testhosts.yml",
        &format!("group_secret: {}\n", SECRETS[0]),
    );
    vault(
        d,
        &[
            "encrypt",
            "--vault-id",
            "prod@pw-prod",
            "--encrypt-vault-id",
            "prod",
            "group_vars/testhosts.yml",
        ],
    );
    write(d, "secrets.yml", &format!("file_secret: {}\n", SECRETS[1]));
    vault(
        d,
        &[
            "encrypt",
            "--vault-password-file",
            "pw-default",
            "secrets.yml",
        ],
    );
    let inline = vault(
        d,
        &[
            "encrypt_string",
            "--vault-password-file",
            "pw-default",
            SECRETS[2],
            "--name",
            "inline_secret",
        ],
    );
    write(d, "templates/app.conf.j2", &format!("group={{{{ group_secret }}}}\nfile={{{{ file_secret }}}}\ninline={{{{ inline_secret }}}}\ntemplate={}\n", SECRETS[3]));
    vault(
        d,
        &[
            "encrypt",
            "--vault-password-file",
            "pw-default",
            "templates/app.conf.j2",
        ],
    );
    write(d, "files/token", &format!("{}\n", SECRETS[4]));
    vault(
        d,
        &[
            "encrypt",
            "--vault-password-file",
            "pw-default",
            "files/token",
        ],
    );
    let play = format!(
        "- hosts: \"{{{{ target }}}}\"\n  gather_facts: false\n  vars_files: [secrets.yml]\n  vars:\n{}\n  tasks:\n    - template: {{src: app.conf.j2, dest: /opt/app.conf, mode: \"0600\"}}\n    - copy: {{src: token, dest: /opt/token, mode: \"0600\"}}\n    - lineinfile: {{path: /opt/lines, line: \"{{{{ inline_secret }}}}\", create: true, mode: \"0600\"}}\n",
        inline
            .lines()
            .map(|l| format!("    {l}"))
            .collect::<Vec<_>>()
            .join("\n")
    );
    write(d, "site.yml", &play);
}

fn knockplay(bed: &TestBed, d: &Path, extra: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_knockplay"))
        .arg("run")
        .arg("site.yml")
        .arg("-i")
        .arg(bed.inventory_file())
        .arg("--known-hosts")
        .arg(bed.dir().join("kp_known_hosts"))
        .args(["-e", &format!("target={}", bed.hosts[0].name)])
        .args(extra)
        .current_dir(d)
        .env("NO_COLOR", "1")
        .output()
        .unwrap()
}

fn text(o: &Output) -> String {
    format!(
        "{}\n{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn state(h: &common::Host) -> String {
    let r = h.exec("cd /opt && for f in app.conf token lines; do echo \"== $f $(stat -c %a $f)\"; cat $f; done");
    assert!(r.ok(), "{}", r.stderr);
    r.stdout
}

#[test]
fn vaulted_repositories_run_like_ansible_and_never_show_their_secrets() {
    let bed = TestBed::start(2).expect("test bed");
    let d = tempfile::tempdir().unwrap();
    repo(d.path());
    let ids = [
        "--vault-id",
        "prod@pw-prod",
        "--vault-password-file",
        "pw-default",
    ];

    // No password: refused before anything runs, naming the file.
    let none = knockplay(&bed, d.path(), &[]);
    assert_eq!(none.status.code(), Some(4), "{}", text(&none));
    assert!(
        text(&none).contains("no vault secrets found"),
        "{}",
        text(&none)
    );
    // A wrong one: the same.
    let wrong = knockplay(
        &bed,
        d.path(),
        &[
            "--vault-id",
            "prod@pw-default",
            "--vault-password-file",
            "pw-default",
        ],
    );
    assert!(!wrong.status.success());
    assert!(
        text(&wrong).contains("Decryption failed"),
        "{}",
        text(&wrong)
    );
    assert!(
        text(&wrong).contains("group_vars/testhosts.yml"),
        "{}",
        text(&wrong)
    );
    assert!(!bed.hosts[0].exists("/opt/app.conf"));

    let logs = d.path().join("logs");
    let mut args = ids.to_vec();
    args.extend(["-vvv", "--log-dir", logs.to_str().unwrap()]);
    let run = knockplay(&bed, d.path(), &args);
    assert!(run.status.success(), "{}", text(&run));
    let json = knockplay(&bed, d.path(), &[&ids[..], &["--json"]].concat());
    assert!(json.status.success(), "{}", text(&json));
    assert!(
        String::from_utf8_lossy(&json.stdout).contains("\"changed\": 0")
            || String::from_utf8_lossy(&json.stdout).contains("\"changed\":0"),
        "{}",
        text(&json)
    );
    let mut seen = text(&run) + &text(&json);
    for e in std::fs::read_dir(&logs).unwrap() {
        seen.push_str(&std::fs::read_to_string(e.unwrap().path()).unwrap());
    }
    for s in SECRETS {
        assert!(!seen.contains(s), "{s} shown:\n{seen}");
    }

    let an = Command::new(venv_bin("ansible-playbook"))
        .arg("site.yml")
        .arg("-i")
        .arg(bed.inventory_file())
        .args(["-e", &format!("target={}", bed.hosts[1].name)])
        .args(ids)
        .current_dir(d.path())
        .env("ANSIBLE_HOST_KEY_CHECKING", "False")
        .env("ANSIBLE_NOCOLOR", "1")
        .env("ANSIBLE_LOCAL_TEMP", bed.dir().join("ansible-tmp"))
        .output()
        .unwrap();
    assert!(an.status.success(), "{}", text(&an));
    let (a, b) = (state(&bed.hosts[0]), state(&bed.hosts[1]));
    assert_eq!(a, b, "knockplay (left) and ansible (right)");
    for s in SECRETS {
        assert!(a.contains(s), "{s} missing on the host:\n{a}");
    }
}
