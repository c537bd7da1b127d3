//! The live status line of `knockplay run`, seen through a real pseudo-terminal: it names the
//! task, hosts done out of the play's and failures as they happen, is erased before every other
//! line and gone before the recap. Through a pipe (not a terminal), or with `--no-progress`, the
//! output is the plain Ansible-style text, without a single escape sequence.

use std::io::Read;
use std::os::fd::{FromRawFd, OwnedFd};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const PLAYBOOK: &str = r#"
- hosts: all
  gather_facts: false
  tasks:
    - name: slow start
      command: sleep 1
    - name: one host fails
      shell: "exit {{ 1 if inventory_hostname == 'h2' else 0 }}"
    - name: slow finish
      command: sleep 1
"#;

fn setup(dir: &Path) {
    std::fs::write(dir.join("site.yml"), PLAYBOOK).unwrap();
    std::fs::write(
        dir.join("hosts"),
        "h1 ansible_connection=local\nh2 ansible_connection=local\nh3 ansible_connection=local\n",
    )
    .unwrap();
}

fn command(dir: &Path, extra: &[&str]) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_knockplay"));
    c.args(["run", "site.yml", "-i", "hosts"])
        .args(extra)
        .current_dir(dir)
        .env_remove("NO_COLOR")
        .stdin(Stdio::null());
    c
}

/// Run with stdout and stderr on a new pseudo-terminal; everything the terminal received.
fn on_pty(mut cmd: Command) -> (Option<i32>, String) {
    let (mut master, mut slave) = (0, 0);
    // SAFETY: openpty fills the two descriptors; the other arguments may be null.
    let rc = unsafe {
        libc::openpty(
            &mut master,
            &mut slave,
            std::ptr::null_mut(),
            std::ptr::null(),
            std::ptr::null(),
        )
    };
    assert_eq!(rc, 0, "openpty failed");
    // SAFETY: both descriptors were just opened and are owned here only.
    let (master, slave) = unsafe { (OwnedFd::from_raw_fd(master), OwnedFd::from_raw_fd(slave)) };
    let out = slave.try_clone().unwrap();
    let mut child = cmd
        .stdout(Stdio::from(out))
        .stderr(Stdio::from(slave))
        .spawn()
        .unwrap();
    // The command still holds the slave's descriptors: close them, or the master never ends.
    drop(cmd);
    let reader = std::thread::spawn(move || {
        let mut f = std::fs::File::from(master);
        let mut buf = Vec::new();
        let mut chunk = [0u8; 4096];
        // EIO once the child (the last holder of the slave) is gone.
        while let Ok(n) = f.read(&mut chunk) {
            if n == 0 {
                break;
            }
            buf.extend_from_slice(&chunk[..n]);
        }
        buf
    });
    let deadline = Instant::now() + Duration::from_secs(60);
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        assert!(Instant::now() < deadline, "knockplay did not finish");
        std::thread::sleep(Duration::from_millis(50));
    };
    let bytes = reader.join().unwrap();
    (status.code(), String::from_utf8_lossy(&bytes).into_owned())
}

#[test]
fn a_terminal_gets_a_live_status_line_and_a_pipe_the_plain_output() {
    let d = tempfile::tempdir().unwrap();
    setup(d.path());

    let (code, text) = on_pty(command(d.path(), &[]));
    assert_eq!(code, Some(2), "{text}");
    // The status line: task, hosts done of the play's, elapsed time; erased before other lines.
    assert!(text.contains("\r\x1b[K\x1b[2m[slow start] "), "{text:?}");
    assert!(text.contains("/3 hosts done"), "{text:?}");
    assert!(
        text.contains("[slow finish] ") && text.contains("1 failed"),
        "the failure is counted as it happens: {text:?}"
    );
    // Gone before the recap, and nothing drawn after it.
    let recap = text.find("PLAY RECAP").expect("recap");
    assert!(!text[recap..].contains("hosts done"), "{text:?}");
    // Every status line is erased before the next line of output.
    for (i, _) in text.match_indices("\x1b[2m[") {
        let rest = &text[i..];
        let end = rest.find("\x1b[0m").expect("status line end");
        let after = &rest[end + 4..];
        assert!(
            after.is_empty() || after.starts_with("\r\x1b[K"),
            "output right after a status line without erasing it: {after:?}"
        );
    }

    // --no-progress on the terminal: no status line.
    let (code, quiet) = on_pty(command(d.path(), &["--no-progress"]));
    assert_eq!(code, Some(2), "{quiet}");
    assert!(!quiet.contains("hosts done"), "{quiet:?}");

    // A pipe: the plain output, no escape sequence at all, the same lines as with --no-progress.
    let piped = command(d.path(), &[]).output().unwrap();
    assert_eq!(piped.status.code(), Some(2));
    let plain = String::from_utf8_lossy(&piped.stdout);
    assert!(!plain.contains('\x1b'), "{plain:?}");
    assert!(!plain.contains("hosts done"), "{plain:?}");
    for want in [
        "TASK [slow start] ",
        "fatal: [h2]: FAILED!",
        "TASK [slow finish] ",
        "h2                         : ok=1    changed=1    unreachable=0    failed=1",
    ] {
        assert!(plain.contains(want), "missing {want:?} in:\n{plain}");
    }
}
