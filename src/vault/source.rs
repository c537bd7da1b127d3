//! Where vault passwords come from: files, executables that print them, the terminal. The
//! command line's only I/O about vault; [`super::decrypt`] itself is pure.

use std::io::{BufRead, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Stdio};

use super::Secret;

/// Reads one password source for `label`: `prompt` asks on the terminal, an executable file is
/// run and prints it, any other file holds it (trailing whitespace dropped).
pub fn read(label: &str, source: &str) -> Result<Secret, String> {
    if source == "prompt" || source == "@prompt" {
        let question = if label == "default" {
            "Vault password: ".to_string()
        } else {
            format!("Vault password ({label}): ")
        };
        return prompt(&question).map(|p| Secret::new(label, p.as_bytes()));
    }
    let path = Path::new(source);
    let meta = std::fs::metadata(path)
        .map_err(|e| format!("The vault password file {source} was not found: {e}"))?;
    let raw = if meta.permissions().mode() & 0o111 != 0 {
        // Ansible passes --vault-id to scripts named *-client.
        let mut cmd = Command::new(path);
        let client = path
            .file_stem()
            .is_some_and(|s| s.to_string_lossy().ends_with("-client"));
        if client {
            cmd.args(["--vault-id", label]);
        }
        let out = cmd
            .stdin(Stdio::null())
            .stderr(Stdio::inherit())
            .output()
            .map_err(|e| format!("Problem running vault password script {source}: {e}"))?;
        if !out.status.success() {
            return Err(format!(
                "Vault password script {source} returned non-zero ({})",
                out.status
            ));
        }
        out.stdout
    } else {
        std::fs::read(path).map_err(|e| format!("cannot read vault password file {source}: {e}"))?
    };
    let text = String::from_utf8_lossy(&raw);
    let password = text.trim_end_matches(['\n', '\r', ' ', '\t']);
    if password.is_empty() {
        return Err(format!(
            "Invalid vault password was provided from file ({source})"
        ));
    }
    Ok(Secret::new(label, password.as_bytes()))
}

/// `label@source`, or a bare source (label `default`), as `--vault-id` takes it.
pub fn from_vault_id(spec: &str) -> Result<Secret, String> {
    match spec.split_once('@') {
        Some((label, source)) if !label.is_empty() => read(label, source),
        Some((_, source)) => read("default", source),
        None => read("default", spec),
    }
}

/// Asks on the controlling terminal with echo off.
fn prompt(question: &str) -> Result<String, String> {
    let tty = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/tty")
        .map_err(|e| format!("--ask-vault-pass needs a terminal: {e}"))?;
    use std::os::fd::AsRawFd;
    let fd = tty.as_raw_fd();
    // SAFETY: termios is plain data, filled by tcgetattr on a valid fd.
    let mut old: libc::termios = unsafe { std::mem::zeroed() };
    // SAFETY: fd is open for the lifetime of `tty`.
    let have_termios = unsafe { libc::tcgetattr(fd, &mut old) } == 0;
    if have_termios {
        let mut quiet = old;
        quiet.c_lflag &= !libc::ECHO;
        // SAFETY: as above.
        unsafe {
            libc::tcsetattr(fd, libc::TCSANOW, &quiet);
        }
    }
    let mut w = &tty;
    let _ = w.write_all(question.as_bytes());
    let _ = w.flush();
    let mut line = String::new();
    let read = std::io::BufReader::new(&tty).read_line(&mut line);
    if have_termios {
        // SAFETY: as above; restores what was there.
        unsafe {
            libc::tcsetattr(fd, libc::TCSANOW, &old);
        }
    }
    let _ = w.write_all(b"\n");
    read.map_err(|e| format!("reading the vault password: {e}"))?;
    Ok(line.trim_end_matches(['\n', '\r']).to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn files_scripts_and_vault_ids() {
        let d = tempfile::tempdir().unwrap();
        let f = d.path().join("pw");
        std::fs::write(&f, "hunter2\n\n").unwrap();
        let s = from_vault_id(f.to_str().unwrap()).unwrap();
        assert_eq!(
            (s.label.as_str(), s.password.as_slice()),
            ("default", &b"hunter2"[..])
        );
        let script = d.path().join("pass-client.sh");
        std::fs::write(&script, "#!/bin/sh\necho \"pw-for-$2\"\n").unwrap();
        std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o700)).unwrap();
        let s = from_vault_id(&format!("prod@{}", script.display())).unwrap();
        assert_eq!(
            (s.label.as_str(), s.password.as_slice()),
            ("prod", &b"pw-for-prod"[..])
        );
        std::fs::write(&f, "\n").unwrap();
        assert!(read("default", f.to_str().unwrap())
            .unwrap_err()
            .contains("Invalid vault password"));
        assert!(read("default", "/nonexistent/pw")
            .unwrap_err()
            .contains("was not found"));
    }
}
