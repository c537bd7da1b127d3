//! Safe writes (issue 9 item 2) against the real binary and a real test host: a user who owns the
//! directory root writes into races every step with symlinks and renames, and no file outside the
//! path the playbook names ever changes.

mod common;

use std::process::{Command, Stdio};

use common::TestBed;

/// A listing of everything outside the racer's home that a redirected write could touch: path,
/// type, owner, group, mode, size, mtime (directories too: a new entry changes their mtime), and
/// the content hash of files under /etc and /root.
const SNAPSHOT: &str = r#"find /etc /root /usr/local /opt /srv /home /var/lib /var/spool /var/backups \
  -path /home/racer -prune -o -printf '%p|%y|%U|%G|%m|%s|%T@\n' 2>/dev/null | sort
find /etc /root -type f -exec sha256sum {} + 2>/dev/null | sort"#;

/// The racer, as the user `racer` in its own ~/.ssh: swaps the destination, every temporary entry
/// knockplay makes and the ~/.ssh directory itself with links to root's files, as fast as sh can.
const RACER: &str = r#"cd /home/racer/.ssh || exit 1
n=0
while [ -e /tmp/racer-go ]; do
  for t in .authorized_keys.kp.* authorized_keys.*~; do
    if [ -L "$t" ]; then rm -f -- "$t"; continue; fi
    if [ -e "$t" ]; then
      mv -f -- "$t" "moved.$n.$t" 2>/dev/null && ln -s /etc "$t" 2>/dev/null
    fi
  done
  ln -sfn /etc/racer-victim kl && mv -fT kl authorized_keys
  printf 'mine\n' > own && chmod 0666 own && mv -fT own authorized_keys
  cd /home/racer && mv -T .ssh .ssh.real 2>/dev/null && ln -sfn /etc .ssh && rm -f .ssh && mv -T .ssh.real .ssh
  cd /home/racer/.ssh || exit 1
  ln -sfn /etc/racer-victim authorized_keys
  n=$((n + 1))
  echo $n > /tmp/racer-count
done
"#;

const PLAYBOOK: &str = r#"
- hosts: all
  gather_facts: no
  tasks:
    - name: write the racer's authorized_keys 200 times
      copy:
        content: "ssh-ed25519 AAAA{{ item // 2 }} fleet\n"
        dest: /home/racer/.ssh/authorized_keys
        owner: racer
        group: racer
        mode: "0600"
        backup: "{{ item % 2 == 0 }}"
      loop: "{{ range(200) | list }}"
      ignore_errors: yes
    - name: and with lineinfile
      lineinfile:
        path: /home/racer/.ssh/authorized_keys
        line: "ssh-ed25519 BBBB{{ item }} admin"
        owner: racer
        mode: "0600"
        create: yes
      loop: "{{ range(50) | list }}"
      ignore_errors: yes
"#;

#[test]
fn a_racing_user_never_redirects_a_write_outside_the_path() {
    let bed = TestBed::start(1).expect("test bed");
    let h = &bed.hosts[0];
    let setup = h.exec(
        "useradd -m -s /bin/sh racer && install -d -o racer -g racer -m 0700 /home/racer/.ssh \
         && printf 'victim\\n' > /etc/racer-victim && chmod 0644 /etc/racer-victim",
    );
    assert_eq!(setup.rc, 0, "{}", setup.stderr);
    let before = h.exec(SNAPSHOT);
    assert_eq!(before.rc, 0, "{}", before.stderr);
    assert!(
        before.stdout.contains("/etc/racer-victim"),
        "{}",
        before.stdout
    );

    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("site.yml"), PLAYBOOK).unwrap();
    let inv = bed.inventory_file();
    let run = || {
        Command::new(env!("CARGO_BIN_EXE_knockplay"))
            .args(["run", dir.path().join("site.yml").to_str().unwrap()])
            .args(["-i", inv.to_str().unwrap()])
            .arg("--known-hosts")
            .arg(bed.dir().join("knockplay_known_hosts"))
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .output()
            .expect("run knockplay")
    };

    assert_eq!(h.exec("touch /tmp/racer-go").rc, 0);
    h.exec_detached_as("racer", RACER).expect("start the racer");
    let raced = run();
    assert_eq!(h.exec("rm -f /tmp/racer-go").rc, 0);
    let text = String::from_utf8_lossy(&raced.stdout).into_owned();
    // Refusals are failures of single items (ignored); the run itself never crashes.
    assert_eq!(raced.status.code(), Some(0), "{text}");
    let count: u64 = h
        .read_to_string("/tmp/racer-count")
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(0);
    assert!(count >= 10, "the racer barely ran ({count} rounds)\n{text}");
    std::thread::sleep(std::time::Duration::from_millis(500));

    // Nothing outside the path changed: no file, mode, owner, and no new entry anywhere.
    let after = h.exec(SNAPSHOT);
    assert_eq!(after.rc, 0, "{}", after.stderr);
    if before.stdout != after.stdout {
        let b: Vec<&str> = before.stdout.lines().collect();
        let a: Vec<&str> = after.stdout.lines().collect();
        let gone: Vec<&&str> = b.iter().filter(|l| !a.contains(l)).collect();
        let new: Vec<&&str> = a.iter().filter(|l| !b.contains(l)).collect();
        panic!("files outside the path changed (racer ran {count} rounds)\nbefore only: {gone:#?}\nafter only: {new:#?}\n{text}");
    }
    assert_eq!(
        h.read_to_string("/etc/racer-victim").as_deref(),
        Some("victim\n")
    );

    // Without the racer, the same playbook puts the file right.
    let calm = h.exec(
        "rm -rf -- /home/racer/.ssh/* /home/racer/.ssh/.authorized_keys* /home/racer/.ssh.real",
    );
    assert_eq!(calm.rc, 0, "{}", calm.stderr);
    let out = run();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert_eq!(out.status.code(), Some(0), "{text}");
    assert!(!text.contains("failed: ["), "{text}");
    let keys = h
        .read_to_string("/home/racer/.ssh/authorized_keys")
        .unwrap();
    assert!(keys.starts_with("ssh-ed25519 AAAA99 fleet\n"), "{keys}");
    assert!(keys.ends_with("ssh-ed25519 BBBB49 admin\n"), "{keys}");
    let st = h.stat("/home/racer/.ssh/authorized_keys").unwrap();
    assert_eq!(st.mode & 0o7777, 0o600, "{st:?}");
    let owner = h.exec("stat -c %U:%G /home/racer/.ssh/authorized_keys");
    assert_eq!(owner.stdout.trim(), "racer:racer");
}
