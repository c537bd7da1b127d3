//! Private state on the controller: directories 0700 and files 0600 for everything knockplay keeps
//! (history, run logs, known_hosts), because they say which machines this controller manages and
//! what ran there. Directories that exist already are tightened; nothing else is touched.

use std::fs::{DirBuilder, File, OpenOptions, Permissions};
use std::io;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::Path;

/// Creates `dir` (and missing parents) as 0700, and sets an existing `dir` to 0700.
pub fn dir(dir: &Path) -> io::Result<()> {
    DirBuilder::new().recursive(true).mode(0o700).create(dir)?;
    std::fs::set_permissions(dir, Permissions::from_mode(0o700))
}

/// Opens `path` for appending, creating it 0600; an existing file is set to 0600.
pub fn append(path: &Path) -> io::Result<File> {
    let f = OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o600)
        .open(path)?;
    f.set_permissions(Permissions::from_mode(0o600))?;
    Ok(f)
}

/// Creates (or truncates) `path` for writing as 0600.
pub fn create(path: &Path) -> io::Result<File> {
    let f = OpenOptions::new()
        .create(true)
        .write(true)
        .truncate(true)
        .mode(0o600)
        .open(path)?;
    f.set_permissions(Permissions::from_mode(0o600))?;
    Ok(f)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mode(p: &Path) -> u32 {
        std::fs::metadata(p).unwrap().permissions().mode() & 0o777
    }

    #[test]
    fn new_and_existing_state_is_made_private() {
        let tmp = tempfile::tempdir().unwrap();
        let d = tmp.path().join("state/deep");
        dir(&d).unwrap();
        assert_eq!(mode(&d), 0o700);
        std::fs::set_permissions(&d, Permissions::from_mode(0o755)).unwrap();
        dir(&d).unwrap();
        assert_eq!(mode(&d), 0o700, "an existing directory is tightened");
        let f = d.join("run.log");
        std::fs::write(&f, "old").unwrap();
        std::fs::set_permissions(&f, Permissions::from_mode(0o644)).unwrap();
        drop(append(&f).unwrap());
        assert_eq!(mode(&f), 0o600);
        let g = d.join("cmd.log");
        drop(create(&g).unwrap());
        assert_eq!(mode(&g), 0o600);
    }
}
