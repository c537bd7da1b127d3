//! Hostile input to the controller's parsers, through the real binary: every file is bounded
//! (size, nesting, alias expansion) and refused with a clear error that names the file and line,
//! quickly and without the memory an expansion would take.

use std::process::Command;

fn knockplay(args: &[&str]) -> (i32, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_knockplay"))
        .args(args)
        .output()
        .expect("run knockplay");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.code().unwrap_or(-1), text)
}

/// Peak resident memory of finished children of this process, in KiB (Linux `ru_maxrss`).
fn children_max_rss_kib() -> i64 {
    let mut usage = std::mem::MaybeUninit::<libc::rusage>::zeroed();
    // SAFETY: getrusage fills the struct it is given.
    let rc = unsafe { libc::getrusage(libc::RUSAGE_CHILDREN, usage.as_mut_ptr()) };
    assert_eq!(rc, 0);
    // SAFETY: initialised by the successful call above.
    unsafe { usage.assume_init() }.ru_maxrss
}

/// The classic "billion laughs": nine levels of nine aliases, under 600 bytes, which would expand
/// to 387 million strings.
fn alias_bomb() -> String {
    let mut text =
        String::from("- hosts: all\n  vars:\n    a: &a [lol,lol,lol,lol,lol,lol,lol,lol,lol]\n");
    let names = ["a", "b", "c", "d", "e", "f", "g", "h", "i"];
    for w in names.windows(2) {
        let refs = vec![format!("*{}", w[0]); 9].join(",");
        text.push_str(&format!("    {n}: &{n} [{refs}]\n", n = w[1]));
    }
    text.push_str("  tasks:\n    - debug: msg=hi\n");
    text
}

#[test]
fn yaml_alias_bomb_is_refused_by_syntax_check_without_the_memory() {
    let dir = tempfile::tempdir().unwrap();
    let bomb = dir.path().join("bomb.yml");
    let text = alias_bomb();
    assert!(text.len() < 700, "{}", text.len());
    std::fs::write(&bomb, &text).unwrap();
    let (code, out) = knockplay(&[
        "run",
        "--syntax-check",
        bomb.to_str().unwrap(),
        "-i",
        "localhost,",
    ]);
    assert_ne!(code, 0, "{out}");
    assert!(out.contains("bomb.yml:"), "names the file: {out}");
    assert!(out.contains("more than 1000000 nodes"), "{out}");
    // One million nodes at most were built before the refusal: far below the gigabytes of the
    // expansion.
    let rss_mib = children_max_rss_kib() / 1024;
    assert!(rss_mib < 600, "knockplay peaked at {rss_mib} MiB");
}

#[test]
fn the_same_bounds_hold_for_vars_and_inventory_files() {
    let dir = tempfile::tempdir().unwrap();
    let vars = dir.path().join("vars.yml");
    std::fs::write(
        &vars,
        alias_bomb().replace("- hosts: all\n  vars:\n", "x:\n"),
    )
    .unwrap();
    let play = dir.path().join("site.yml");
    std::fs::write(
        &play,
        format!(
            "- hosts: all\n  gather_facts: no\n  vars_files: [{}]\n  tasks:\n    - debug: msg=hi\n",
            vars.display()
        ),
    )
    .unwrap();
    let (code, out) = knockplay(&["run", play.to_str().unwrap(), "-i", "localhost,"]);
    assert_ne!(code, 0, "{out}");
    assert!(out.contains("vars.yml"), "{out}");
    assert!(out.contains("more than 1000000 nodes"), "{out}");

    let deep = dir.path().join("hosts.yml");
    let nested: String = (0..300)
        .map(|i| format!("{}g{i}:\n", " ".repeat(i)))
        .collect();
    std::fs::write(&deep, nested).unwrap();
    let (code, out) = knockplay(&[
        "run",
        "--list-hosts",
        play.to_str().unwrap(),
        "-i",
        deep.to_str().unwrap(),
    ]);
    assert_ne!(code, 0, "{out}");
    assert!(out.contains("hosts.yml"), "{out}");
    assert!(out.contains("nesting deeper than 200"), "{out}");
}
