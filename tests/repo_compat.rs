//! An Ansible repository as admins bring it, run unchanged by knockplay and by real
//! `ansible-playbook` (each against one of two twin hosts, `-l` the only flag): ansible.cfg names
//! the inventory, the key, the user, the vault password file, `roles_path` (a Galaxy-named role
//! there, depending on a sibling role) and `collections_path` (a collection role, used from
//! `roles:` and from `include_role` with `tasks_from`); group_vars override role defaults, and
//! vault-encrypted group_vars (by the real `ansible-vault`) feed a role template; role templates,
//! files and handlers. The targets accept SSH only from a bastion, which the inventory reaches
//! through an OpenSSH config file (`-F`, `ProxyJump`). Both hosts must end with the same files,
//! the secret never shows in knockplay's output, and knockplay's second run changes nothing.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use common::TestBed;

fn write(dir: &Path, rel: &str, text: &str) {
    let p = dir.join(rel);
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(p, text).unwrap();
}

fn ansible_playbook() -> PathBuf {
    let venv = std::env::var_os("KNOCKPLAY_VENV")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(".venv"));
    let p = venv.join("bin/ansible-playbook");
    assert!(
        p.exists(),
        "{} missing: run bash tests/hosts/setup",
        p.display()
    );
    p
}

/// The repository, as `ansible-galaxy install` and a checkout would leave it.
/// The secret the vault-encrypted group_vars hold.
const SECRET: &str = "s3cr3t-db-pass";

fn ansible_vault() -> PathBuf {
    ansible_playbook().with_file_name("ansible-vault")
}

fn repo(dir: &Path, bed: &TestBed) {
    let bastion = &bed.hosts[0];
    let key = bed.key_path.display();
    // The targets (every host but the bastion) are reached through the bastion only.
    let mut ssh_config = format!(
        "Host bastion\n    HostName {}\n    User root\n    IdentityFile {key}\n    \
         StrictHostKeyChecking no\n    UserKnownHostsFile /dev/null\n",
        bastion.ip
    );
    let mut hosts = String::from("[web]\n");
    for h in &bed.hosts[1..] {
        hosts.push_str(&format!("{} ansible_host={}\n", h.name, h.ip));
        ssh_config.push_str(&format!(
            "\nHost {}\n    ProxyJump bastion\n    StrictHostKeyChecking no\n    UserKnownHostsFile /dev/null\n",
            h.ip
        ));
    }
    write(dir, "ssh_config", &ssh_config);
    hosts.push_str(&format!(
        "\n[web:vars]\nansible_python_interpreter=/usr/bin/python3\nansible_ssh_common_args='-F {}'\n",
        dir.join("ssh_config").display()
    ));
    write(dir, "inventory/hosts.ini", &hosts);
    // Vault: group_vars/web/vault.yml encrypted in place by ansible-vault.
    write(dir, ".vault_pass", "repo-vault-password\n");
    write(
        dir,
        "group_vars/web/vault.yml",
        &format!("vault_db_password: {SECRET}\n"),
    );
    let enc = Command::new(ansible_vault())
        .args([
            "encrypt",
            "--vault-password-file",
            ".vault_pass",
            "group_vars/web/vault.yml",
        ])
        .current_dir(dir)
        .output()
        .unwrap();
    assert!(
        enc.status.success(),
        "{}",
        String::from_utf8_lossy(&enc.stderr)
    );
    let encrypted = std::fs::read_to_string(dir.join("group_vars/web/vault.yml")).unwrap();
    assert!(
        encrypted.starts_with("$ANSIBLE_VAULT;1.1;AES256"),
        "{encrypted}"
    );
    write(
        dir,
        "ansible.cfg",
        &format!(
            "[defaults]\n\
             inventory = inventory/hosts.ini\n\
             roles_path = galaxy_roles:shared_roles\n\
             collections_path = ./collections\n\
             remote_user = root\n\
             private_key_file = {}\n\
             host_key_checking = False\n\
             vault_password_file = .vault_pass\n\
             forks = 5\n\
             retry_files_enabled = False ; a key knockplay does not use\n\
             \n\
             [ssh_connection]\n\
             pipelining = True\n",
            bed.key_path.display()
        ),
    );
    write(
        dir,
        "group_vars/web/main.yml",
        "motd_text: Welcome\ndb_password: \"{{ vault_db_password }}\"\n",
    );
    write(
        dir,
        "site.yml",
        "- hosts: web\n  gather_facts: false\n  roles:\n    - geerlingguy.motd\n    - role: acme.base.layout\n      layout_mode: \"0640\"\n  tasks:\n    - include_role:\n        name: acme.base.layout\n        tasks_from: extra\n        vars_from: alt\n        defaults_from: alt\n        handlers_from: alt\n",
    );
    // A sibling role the Galaxy role depends on.
    write(
        dir,
        "shared_roles/common/tasks/main.yml",
        "- file: {path: /opt/kp, state: directory, mode: \"0755\"}\n- copy: {content: \"common\\n\", dest: /opt/kp/common.txt, mode: \"0644\"}\n",
    );
    let motd = "galaxy_roles/geerlingguy.motd";
    write(
        dir,
        &format!("{motd}/meta/main.yml"),
        "galaxy_info:\n  author: someone\ndependencies:\n  - common\n",
    );
    write(
        dir,
        &format!("{motd}/defaults/main.yml"),
        "motd_text: role default\nmotd_owner: root\n",
    );
    write(
        dir,
        &format!("{motd}/tasks/main.yml"),
        "- name: motd from the role's template\n  template: {src: motd.j2, dest: /opt/kp/motd, owner: \"{{ motd_owner }}\", mode: \"0644\"}\n  notify: motd changed\n- name: database settings from the vault\n  template: {src: db.conf.j2, dest: /opt/kp/db.conf, mode: \"0600\"}\n",
    );
    write(
        dir,
        &format!("{motd}/templates/motd.j2"),
        "{{ motd_text }} to {{ inventory_hostname }}\n",
    );
    write(
        dir,
        &format!("{motd}/templates/db.conf.j2"),
        "[db]\npassword = {{ db_password }}\n",
    );
    write(
        dir,
        &format!("{motd}/handlers/main.yml"),
        "- name: motd changed\n  copy: {content: \"handler ran\\n\", dest: /opt/kp/handler-ran}\n",
    );
    let layout = "collections/ansible_collections/acme/base/roles/layout";
    write(
        dir,
        &format!("{layout}/defaults/main.yml"),
        "layout_mode: \"0600\"\n",
    );
    // Depends on `common` too: Ansible runs a dependency once per play.
    write(
        dir,
        &format!("{layout}/meta/main.yml"),
        "dependencies: [common]\n",
    );
    write(
        dir,
        &format!("{layout}/vars/alt.yml"),
        "extra_line: \"alt=1\"\n",
    );
    write(
        dir,
        &format!("{layout}/defaults/alt.yml"),
        "extra_mode: \"0604\"\n",
    );
    write(
        dir,
        &format!("{layout}/handlers/alt.yml"),
        "- name: extra written\n  copy: {content: \"alt handler\\n\", dest: /opt/kp/alt-handler, mode: \"0644\"}\n",
    );
    write(
        dir,
        &format!("{layout}/tasks/main.yml"),
        "- copy: {src: layout.conf, dest: /opt/kp/layout.conf, mode: \"{{ layout_mode }}\"}\n",
    );
    write(
        dir,
        &format!("{layout}/tasks/extra.yml"),
        "- lineinfile: {path: /opt/kp/extra.conf, line: \"{{ extra_line }}\", create: true, mode: \"{{ extra_mode }}\"}\n  notify: extra written\n",
    );
    write(
        dir,
        &format!("{layout}/files/layout.conf"),
        "[layout]\nwidth=80\n",
    );
}

fn run(cmd: &mut Command, dir: &Path, bed: &TestBed) -> Output {
    let out = cmd
        .current_dir(dir)
        .env("NO_COLOR", "1")
        .env("ANSIBLE_NOCOLOR", "1")
        .env("ANSIBLE_LOCAL_TEMP", bed.dir().join("ansible-tmp"))
        .env("KNOCKPLAY_KNOWN_HOSTS", bed.dir().join("kp_known_hosts"))
        .env_remove("ANSIBLE_CONFIG")
        .env_remove("ANSIBLE_ROLES_PATH")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{cmd:?}: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn snapshot(h: &common::Host) -> String {
    let r = h.exec(
        "cd /opt/kp && find . -printf '%p %M %u %g\\n' | sort && for f in $(find . -type f | sort); do echo \"== $f\"; cat \"$f\"; done",
    );
    assert!(r.ok(), "{}: {}", h.name, r.stderr);
    r.stdout.replace(&h.name, "HOST")
}

#[test]
fn an_ansible_repository_runs_unchanged_with_the_same_result_as_ansible() {
    let bed = TestBed::start(3).expect("test bed");
    // The targets let root in only from the bastion.
    for t in &bed.hosts[1..] {
        let lock = t.exec(&format!(
            "echo 'AllowUsers root@{}' > /etc/ssh/sshd_config.d/only-bastion.conf && pkill -HUP -x sshd",
            bed.hosts[0].ip
        ));
        assert!(lock.ok(), "{}", lock.stderr);
    }
    std::thread::sleep(std::time::Duration::from_millis(500));
    let d = tempfile::tempdir().unwrap();
    repo(d.path(), &bed);
    let kp = || {
        let mut c = Command::new(env!("CARGO_BIN_EXE_knockplay"));
        c.args(["run", "site.yml", "-v", "-l", &bed.hosts[1].name]);
        c
    };
    let first = run(&mut kp(), d.path(), &bed);
    let stdout = String::from_utf8_lossy(&first.stdout);
    let stderr = String::from_utf8_lossy(&first.stderr);
    assert!(
        stdout.contains(&format!(
            "Using {} as config file",
            d.path().join("ansible.cfg").display()
        )),
        "{stdout}"
    );
    // host_key_checking = False is honoured, never silently.
    assert!(stderr.contains("turns host key checking off"), "{stderr}");
    let ansible = run(
        Command::new(ansible_playbook()).args(["site.yml", "-l", &bed.hosts[2].name]),
        d.path(),
        &bed,
    );
    let ansible_out = String::from_utf8_lossy(&ansible.stdout).into_owned();
    let (a, b) = (snapshot(&bed.hosts[1]), snapshot(&bed.hosts[2]));
    if a != b {
        let diff = similar::TextDiff::from_lines(&b, &a);
        panic!(
            "knockplay (+) and ansible (-) left different state:\n{}",
            diff.unified_diff().header("ansible", "knockplay")
        );
    }
    assert!(a.contains("== ./motd\nWelcome to HOST\n"), "{a}");
    assert!(a.contains("./layout.conf -rw-r----- root root"), "{a}");
    assert!(a.contains("== ./handler-ran\nhandler ran\n"), "{a}");
    assert!(a.contains("== ./extra.conf\nalt=1\n"), "{a}");
    assert!(a.contains("./extra.conf -rw----r-- root root"), "{a}");
    assert!(a.contains("== ./alt-handler\nalt handler\n"), "{a}");
    assert!(
        a.contains(&format!("== ./db.conf\n[db]\npassword = {SECRET}\n")),
        "{a}"
    );
    assert!(a.contains("./db.conf -rw------- root root"), "{a}");
    // The vault's secret reached the target, never knockplay's output.
    assert!(
        !stdout.contains(SECRET) && !stderr.contains(SECRET),
        "{stdout}{stderr}"
    );
    // A direct connection to a target is refused: the bastion was really used.
    let direct = bed.hosts[1]
        .ssh_command("root")
        .arg("true")
        .output()
        .unwrap();
    assert!(
        !direct.status.success(),
        "the target accepted a direct connection"
    );
    // The shared dependency of the two play roles ran once there; as often in all as Ansible's.
    let runs = |out: &str| out.matches("TASK [common : copy]").count();
    assert_eq!(
        runs(&stdout),
        runs(&ansible_out),
        "{stdout}\n---\n{ansible_out}"
    );
    let again = run(&mut kp(), d.path(), &bed);
    let recap = String::from_utf8_lossy(&again.stdout);
    assert!(recap.contains("changed=0"), "{recap}");
    assert!(recap.contains("failed=0"), "{recap}");
}
