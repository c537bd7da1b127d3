//! Table tests of the `mount` module's fstab edits and mount-table reading.

use super::*;

fn entry() -> Entry {
    Entry {
        name: "/mnt/data dir".into(),
        src: Some("/dev/sdb1".into()),
        fstype: Some("ext4".into()),
        opts: "defaults".into(),
        dump: "0".into(),
        passno: "2".into(),
    }
}

#[test]
fn set_mount_rewrites_only_what_differs() {
    let line = "/dev/sdb1 /mnt/data\\040dir ext4 defaults 0 2\n";
    // (fstab, want new, changed)
    let cases = [
        ("# fstab\n", format!("# fstab\n{line}"), true),
        (line, line.to_string(), false),
        // Odd spacing is kept when nothing differs; a comment after the fields is ignored.
        (
            "/dev/sdb1   /mnt/data\\040dir ext4 defaults 0 2 # data\n",
            "/dev/sdb1   /mnt/data\\040dir ext4 defaults 0 2 # data\n".into(),
            false,
        ),
        (
            "/dev/sdc1 /mnt/data\\040dir xfs defaults 0 2\nproc /proc proc defaults 0 0",
            format!("{line}proc /proc proc defaults 0 0\n"),
            true,
        ),
        // Four fields: dump and passno are always rewritten.
        (
            "/dev/sdb1 /mnt/data\\040dir ext4 defaults\n",
            line.to_string(),
            true,
        ),
    ];
    for (fstab, want, changed) in cases {
        assert_eq!(set_mount(fstab, &entry()), (want, changed), "{fstab:?}");
    }
}

#[test]
fn unset_mount_removes_six_field_lines() {
    let fstab = "# x\n/dev/sdb1 /mnt/data\\040dir ext4 defaults 0 2\n/dev/a /b ext4 defaults 0 0\n";
    assert_eq!(
        unset_mount(fstab, "/mnt/data dir", None),
        ("# x\n/dev/a /b ext4 defaults 0 0\n".into(), true)
    );
    assert_eq!(unset_mount(fstab, "/nope", None), (fstab.into(), false));
    assert_eq!(escape("a b&c\\"), "a\\040b\\046c\\134");
}

#[test]
fn mount_table_and_ismount() {
    let info = "22 1 8:1 / / rw - ext4 /dev/sda1 rw\n\
                30 22 8:1 /srv/data /mnt/bind rw - ext4 /dev/sda1 rw\n\
                31 22 0:5 / /proc rw - proc proc rw\n";
    let m = linux_mounts(info);
    assert_eq!(m["/"], "/dev/sda1");
    assert_eq!(m["/mnt/bind"], "/srv/data");
    let out = format!("\n@@KP:stat\n2049 12\n2050 2\n\n@@KP:mountinfo\n{info}\n@@KP:end\n");
    let st = parse_mount_probe(&out);
    assert!(st.ismount);
    assert!(st.bind_mounted("/mnt/bind", Some("/srv/data")));
    assert!(!st.bind_mounted("/mnt/bind", Some("/other")));
    let st = parse_mount_probe("\n@@KP:stat\n2049 12\n2049 2\n\n@@KP:mountinfo\n\n@@KP:end\n");
    assert!(!st.ismount);
}
