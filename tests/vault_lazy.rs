//! An inline `!vault` value is decrypted where it is used, as in Ansible: without any vault
//! password a play that never uses it runs (and `--syntax-check` passes), and one that uses it
//! fails naming the value's file, line and column.

use std::process::Command;

// `ansible-vault encrypt_string --vault-password-file pw 'inline-secret'` (password "hunter2").
const VAULTED: &str = "    secret: !vault |
          $ANSIBLE_VAULT;1.1;AES256
          37373763386337373361306134633966323661333138626339646263336464323737336330666665
          3839373164323561643366346664633133663565633136660a366230633535336366313534366131
          36343164336431353439623462326232356235303139306164663730326664396462376635363131
          3630363737663632380a333930323438636366376235343836383564643032343633373765343935
          6166
";

fn run(dir: &std::path::Path, task: &str, extra: &[&str]) -> (bool, String) {
    std::fs::write(
        dir.join("site.yml"),
        format!(
            "- hosts: localhost\n  gather_facts: false\n  vars:\n{VAULTED}  tasks:\n    - {task}\n"
        ),
    )
    .unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_knockplay"))
        .args(["run", "site.yml"])
        .args(extra)
        .current_dir(dir)
        .env("NO_COLOR", "1")
        .env_remove("ANSIBLE_VAULT_PASSWORD_FILE")
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

#[test]
fn vault_values_are_decrypted_only_when_used() {
    let d = tempfile::tempdir().unwrap();
    let (ok, text) = run(d.path(), "debug: msg=unrelated", &["--syntax-check"]);
    assert!(ok, "{text}");
    let (ok, text) = run(d.path(), "debug: msg=unrelated", &[]);
    assert!(ok, "{text}");
    let (ok, text) = run(d.path(), "debug: msg={{ secret }}", &[]);
    assert!(!ok, "{text}");
    assert!(
        text.contains("no vault secrets found: the !vault value at site.yml:5:11"),
        "{text}"
    );
    std::fs::write(d.path().join("pw"), "hunter2\n").unwrap();
    let (ok, text) = run(
        d.path(),
        "debug: msg={{ secret }}",
        &["--vault-password-file", "pw"],
    );
    assert!(ok && text.contains("inline-secret"), "{text}");
}
