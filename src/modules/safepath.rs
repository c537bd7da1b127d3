//! Writing as root into directories that other users may own, without following what they plant.
//!
//! A user who owns a directory on the way to a file root writes (`~/.ssh/authorized_keys`) can
//! rename entries and plant symbolic links in it at any moment, so every path root uses there is
//! a race. POSIX sh cannot open files with `O_NOFOLLOW`, so the shell code here works on held
//! working directories instead of path names:
//!
//! - `kp_enter DIR MKDIRS [MODE]` makes `DIR` the working directory (creating missing
//!   directories with MKDIRS=1, given MODE when set). The leading directories that are
//!   root's alone (owned by root, not writable by group or others) are entered by name: nobody
//!   else can change their entries. Below the first directory another user can write, it enters
//!   one component at a time and checks, from inside, that the directory it now holds is the entry
//!   of that name in the directory it held before (`stat . .. ../name`): a symbolic link, or a
//!   directory swapped in or out between two steps, is refused. `kp_safe=1` when `DIR` itself is
//!   root's alone.
//! - `kp_private NAME`: in a directory that is not root's alone, a fresh `mktemp -d` directory
//!   (mode 0700, root's) is created and entered and checked the same way; the new file is written
//!   and given its attributes there, where nobody else can reach it, and renamed into place with
//!   `mv -T ../NAME` (a rename replaces a planted link and never follows it).
//! - `kp_fix NAME CMD...` changes the attributes of an existing entry: in a directory that is not
//!   root's alone the entry is first moved into the private directory (a planted link moves as a
//!   link), checked (not a link; not a hard link to root's file in a directory another user owns)
//!   and changed there, then moved back.
//!
//! Each script is a subshell: its `cd` never reaches the next command.

use crate::shell::quote;

/// The shell functions (see the module docs). Pure text, prepended to each script that uses them.
pub const LIB: &str = r#"kp_nl='
'
kp_start=$PWD
kp_enter() {
  kp_d=$1 kp_mk=$2 kp_dm=$3 kp_safe=0 kp_made=0
  case $kp_d in
    /*) ;;
    *) cd -P -- "$kp_start" || return 1
       if [ "$kp_mk" = 1 ]; then mkdir -p -- "$kp_d" || return 1; fi
       cd -P -- "$kp_d" || return 1; kp_h=$(stat -c %d:%i .) || return 1; return 0 ;;
  esac
  set -f; kp_ifs=$IFS; IFS=/; set -- '' $kp_d; IFS=$kp_ifs; set +f
  kp_p=; kp_first=1
  for kp_c do
    if [ $kp_first = 1 ]; then set --; kp_first=0; continue; fi
    case $kp_c in
      ''|.) continue ;;
      ..) echo "knockplay: refusing a path with '..' in it: $kp_d" >&2; return 1 ;;
    esac
    kp_p=$kp_p/$kp_c; set -- "$@" "$kp_p"
  done
  kp_k=0; kp_h=
  for kp_x in $(stat -L -c '%u:%a:%d:%i' -- / "$@" 2>/dev/null); do
    kp_u=${kp_x%%:*}; kp_r=${kp_x#*:}; kp_a=${kp_r%%:*}
    case $kp_u:$kp_a in
      0:*[0145][0145]) kp_k=$((kp_k + 1)); kp_h=${kp_r#*:} ;;
      *) break ;;
    esac
  done
  if [ $kp_k -le 1 ]; then
    cd / || return 1
    [ $kp_k = 1 ] || kp_h=$(stat -c %d:%i .) || return 1
  else
    eval "kp_s=\${$((kp_k - 1))}"
    cd -P -- "$kp_s" || return 1
    shift $((kp_k - 1))
  fi
  [ $# = 0 ] && kp_safe=1
  for kp_p do
    kp_c=${kp_p##*/}; kp_made=0
    if [ "$kp_mk" = 1 ] && [ ! -e "$kp_c" ] && [ ! -L "$kp_c" ]; then
      mkdir -- "$kp_c" || return 1; kp_made=1
    fi
    cd -P -- "$kp_c" || return 1
    kp_x=$(stat -c %d:%i -- . .. "../$kp_c" 2>/dev/null)
    kp_y=${kp_x%%"$kp_nl"*}
    if [ "$kp_x" != "$kp_y$kp_nl$kp_h$kp_nl$kp_y" ]; then
      echo "knockplay: refusing to write under $kp_p: it is a symbolic link, or it was replaced while the path was walked" >&2
      return 1
    fi
    kp_h=$kp_y
    if [ $kp_made = 1 ] && [ -n "$kp_dm" ]; then chmod "$kp_dm" . || return 1; fi
  done
}
kp_private() {
  kp_w=$(mktemp -d -- ".$1.kp.XXXXXX") || return 1
  cd -P -- "$kp_w" || return 1
  kp_x=$(stat -c '%a %d:%i' -- . ..) || return 1
  case $kp_x in
    "700 "*"$kp_nl"*" $kp_h") [ -O . ] && return 0 ;;
  esac
  echo "knockplay: refusing to write in $kp_d: its temporary directory was replaced" >&2
  return 1
}
kp_fix() {
  kp_n=$1; shift
  if [ $kp_safe = 1 ]; then
    for kp_cmd do eval "$kp_cmd" '"$kp_n"' || return 1; done
    return 0
  fi
  kp_private "$kp_n" || return 1
  mv -fT -- "../$kp_n" f || { cd .. && rmdir -- "$kp_w"; return 1; }
  kp_rc=0
  # A hard link to root's file is refused where others own the directory (they may have made it).
  kp_x=$(stat -c %h:%u -- f .. 2>/dev/null)
  case $kp_x in
    1:*|*:0"$kp_nl"*:0) kp_x=ok ;;
    *:0"$kp_nl"*) ;;
    ?*) kp_x=ok ;;
  esac
  if [ ! -L f ] && { [ -d f ] || { [ -f f ] && [ "$kp_x" = ok ]; }; }; then
    for kp_cmd do eval "$kp_cmd" f || { kp_rc=1; break; }; done
  else
    echo "knockplay: refusing to change $kp_d/$kp_n: it is a symbolic link, a hard link or not a regular file" >&2
    kp_rc=1
  fi
  mv -fT -- f "../$kp_n" || { echo "knockplay: could not move $kp_n back; it is in $kp_d/$kp_w" >&2; return 1; }
  cd .. && rmdir -- "$kp_w"
  return $kp_rc
}
"#;

/// Longest file name used in a temporary name (the rest of a long name is cut).
const MAX_NAME_IN_TEMP: usize = 100;

/// `name` shortened for `.NAME.kp.XXXXXX` temporary names (whole characters).
pub fn temp_stem(name: &str) -> String {
    name.chars().take(MAX_NAME_IN_TEMP).collect()
}

/// Commands run on an existing `path` (each gets the entry's name appended as its last word,
/// e.g. `chmod 0600`), following no link planted on the way or at the entry. Pure.
pub fn fix_script(dir: &str, name: &str, cmds: &[String]) -> String {
    let cmds: Vec<String> = cmds.iter().map(|c| quote(c)).collect();
    format!(
        "(\n{LIB}kp_enter {} 0 || exit 1\nkp_fix {} {}\n) || exit $?",
        quote(dir),
        quote(name),
        cmds.join(" ")
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::{symlink, MetadataExt, PermissionsExt};
    use std::path::Path;
    use std::process::Command;

    fn sh(script: &str) -> (i32, String) {
        let out = Command::new("sh").arg("-c").arg(script).output().unwrap();
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        (out.status.code().unwrap_or(-1), text)
    }

    fn enter(dir: &Path, mk: bool) -> String {
        format!(
            "{LIB}kp_enter {} {} || exit 9; echo \"safe=$kp_safe made=$kp_made pwd=$(pwd -P)\"",
            quote(dir.to_str().unwrap()),
            if mk { 1 } else { 0 }
        )
    }

    #[test]
    fn enters_directories_and_creates_missing_ones() {
        let t = tempfile::tempdir().unwrap();
        let real = std::fs::canonicalize(t.path()).unwrap();
        let (rc, out) = sh(&enter(&real.join("a/b"), true));
        assert_eq!(rc, 0, "{out}");
        assert!(
            out.contains(&format!("pwd={}", real.join("a/b").display())),
            "{out}"
        );
        assert!(out.contains("made=1"), "{out}");
        // Root's own directories (when the tests run as root) are safe; /etc is.
        let (rc, out) = sh(&enter(Path::new("/etc"), false));
        assert_eq!(rc, 0, "{out}");
        if running_as_root() {
            assert!(out.contains("safe=1 made=0 pwd=/etc"), "{out}");
        }
        let (rc, out) = sh(&enter(Path::new("/"), false));
        assert_eq!(rc, 0, "{out}");
        assert!(out.contains("pwd=/\n") || out.ends_with("pwd=/\n"), "{out}");
        let (rc, out) = sh(&enter(Path::new("/etc/../etc"), false));
        assert_eq!(rc, 9, "{out}");
        assert!(out.contains("'..'"), "{out}");
    }

    fn running_as_root() -> bool {
        std::fs::metadata("/proc/self")
            .map(|m| m.uid() == 0)
            .unwrap_or(false)
    }

    #[test]
    fn a_link_planted_in_a_directory_others_can_write_is_refused() {
        let t = tempfile::tempdir().unwrap();
        let real = std::fs::canonicalize(t.path()).unwrap();
        // A directory anyone can write (like a user's home, as root sees it).
        let home = real.join("home");
        std::fs::create_dir(&home).unwrap();
        std::fs::set_permissions(&home, std::fs::Permissions::from_mode(0o777)).unwrap();
        let elsewhere = real.join("elsewhere");
        std::fs::create_dir(&elsewhere).unwrap();
        symlink(&elsewhere, home.join(".ssh")).unwrap();
        let (rc, out) = sh(&enter(&home.join(".ssh"), false));
        assert_eq!(rc, 9, "{out}");
        assert!(out.contains("symbolic link"), "{out}");
        // A real directory is entered (and is not safe: its parent is writable by others).
        std::fs::remove_file(home.join(".ssh")).unwrap();
        std::fs::create_dir(home.join(".ssh")).unwrap();
        let (rc, out) = sh(&enter(&home.join(".ssh"), false));
        assert_eq!(rc, 0, "{out}");
        assert!(out.contains("safe=0"), "{out}");
    }

    #[test]
    fn fix_changes_the_entry_and_refuses_links() {
        let t = tempfile::tempdir().unwrap();
        let real = std::fs::canonicalize(t.path()).unwrap();
        let home = real.join("home");
        std::fs::create_dir(&home).unwrap();
        std::fs::set_permissions(&home, std::fs::Permissions::from_mode(0o777)).unwrap();
        std::fs::write(home.join("keys"), "k\n").unwrap();
        let victim = real.join("victim");
        std::fs::write(&victim, "v\n").unwrap();
        std::fs::set_permissions(&victim, std::fs::Permissions::from_mode(0o644)).unwrap();
        symlink(&victim, home.join("link")).unwrap();
        let dir = home.to_str().unwrap();
        let (rc, out) = sh(&fix_script(dir, "keys", &["chmod 0600".into()]));
        assert_eq!(rc, 0, "{out}");
        let mode = |p: &Path| std::fs::symlink_metadata(p).unwrap().permissions().mode() & 0o7777;
        assert_eq!(mode(&home.join("keys")), 0o600);
        let (rc, out) = sh(&fix_script(dir, "link", &["chmod 0600".into()]));
        assert_ne!(rc, 0, "{out}");
        assert!(out.contains("symbolic link"), "{out}");
        assert_eq!(mode(&victim), 0o644, "the link's target was changed");
        assert!(std::fs::symlink_metadata(home.join("link"))
            .unwrap()
            .file_type()
            .is_symlink());
        // Nothing is left behind.
        let names: Vec<String> = std::fs::read_dir(&home)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert_eq!(names.len(), 2, "{names:?}");
    }
}
