//! Tests of `apt_key`: key id parsing, apt-key's listing, the decision table and the run flow
//! against a scripted remote.

use super::*;
use crate::modules::testing::{args, ctx, FakeRemote};
use serde_json::json;

const LISTING: &str =
    "Executing: /tmp/apt-key-gpghome.x/gpg.1.sh --list-public-keys --keyid-format=long\n\
/tmp/apt-key-gpghome.x/pubring.gpg\n-----------------------------------\n\
pub   rsa4096/B7C5D7D6350947F8 2023-01-21 [SC] [expires: 2031-01-19]\n\
      B8B80B5B623EAB6AD8775C45B7C5D7D6350947F8\n\
uid                 [ unknown] Debian Archive Automatic Signing Key\n\
sub   rsa4096/6ED0E7B82643E131 2023-01-21 [S] [expires: 2031-01-19]\n\n\
pub   rsa2048/1111222233334444 2010-01-01 [SC] [expired: 2012-01-01]\n";

#[test]
fn key_ids_parse_like_ansible() {
    let ok = |id: &str| parse_key_id(id).unwrap();
    assert_eq!(
        ok("0x83c23f59b7bbf8bf"),
        (
            "B7BBF8BF".into(),
            "83C23F59B7BBF8BF".into(),
            "83C23F59B7BBF8BF".into()
        )
    );
    assert_eq!(
        ok("B7BBF8BF"),
        ("B7BBF8BF".into(), "B7BBF8BF".into(), "B7BBF8BF".into())
    );
    let fpr = "4F2BD3721A11904D6E88E8A783C23F59B7BBF8BF";
    assert_eq!(ok(fpr).1, "83C23F59B7BBF8BF");
    assert_eq!(ok(fpr).2, fpr);
    for bad in ["xyz", "", "123456789", "0x"] {
        assert_eq!(parse_key_id(bad).unwrap_err(), "Invalid key_id", "{bad}");
    }
}

#[test]
fn listing_parses_pub_and_sub_lines() {
    assert_eq!(
        parse_keys(LISTING, false),
        ["B7C5D7D6350947F8", "6ED0E7B82643E131"]
    );
    assert_eq!(parse_keys(LISTING, true), ["350947F8", "2643E131"]);
    // gpg's colon form
    assert_eq!(
        parse_keys(
            "pub:u:255:22:83C23F59B7BBF8BF:1796558787:::u:::scSC:\n",
            false
        ),
        ["83C23F59B7BBF8BF"]
    );
}

#[test]
fn decision_table() {
    let keys = vec!["B7C5D7D6350947F8".to_string()];
    let short = vec!["350947F8".to_string()];
    // (present, short, fp, short format, keys) -> act
    let cases = [
        (
            true,
            "350947F8",
            "B7C5D7D6350947F8",
            false,
            &keys,
            Act::Nothing,
        ),
        (true, "B7BBF8BF", "83C23F59B7BBF8BF", false, &keys, Act::Add),
        (true, "350947F8", "350947F8", true, &short, Act::Nothing),
        (
            false,
            "350947F8",
            "B7C5D7D6350947F8",
            false,
            &keys,
            Act::Remove,
        ),
        (
            false,
            "B7BBF8BF",
            "83C23F59B7BBF8BF",
            false,
            &keys,
            Act::Nothing,
        ),
        (false, "350947F8", "350947F8", true, &short, Act::Remove),
    ];
    for (present, s, fp, sf, k, want) in cases {
        assert_eq!(decide(present, s, fp, sf, k), want, "{present} {fp}");
    }
}

fn probe_reply(listing: &str, file: Option<&str>) -> String {
    let mut s = format!(
        "\n@@KP:bin\n/usr/bin/apt-key\n\n@@KP:listrc\n0\n\n@@KP:listout\n{listing}\n@@KP:listerr\nWarning: apt-key is deprecated.\n"
    );
    if let Some(f) = file {
        s.push_str(&format!("\n@@KP:file\n{f}\n"));
    }
    s.push_str("\n@@KP:end\n");
    s
}

#[test]
fn run_flow_adds_and_verifies() {
    let key = "-----BEGIN PGP PUBLIC KEY BLOCK-----\n\nmDMEaxVPwxYJKwYBBAHaRw8BAQdA4gjjUThGf4P1MH91OUHqzT9OjSjlVqdpzFGi\nrWyGH5y0J2tub2NrcGxheSB0ZXN0IGtleSA8a3BAZXhhbXBsZS5pbnZhbGlkPoiQ\nBBMWCAA4FiEETyvTchoRkE1uiOing8I/Wbe7+L8FAmsVT8MCGwMFCwkIBwIGFQoJ\nCAsCBBYCAwECHgECF4AACgkQg8I/Wbe7+L+VdgEA2vg2fmoHfLp7GDTxaTPsY6b3\nZAuobsdlhLe9M4ZSYXwA/09C0J1Q1r3hWGYiKkOpLHQhWjHpA75K+V0Kfl1Wox4H\n=Msw6\n-----END PGP PUBLIC KEY BLOCK-----\n";
    assert_eq!(
        key_id_of(key.as_bytes()).as_deref(),
        Some("83C23F59B7BBF8BF")
    );
    let after = format!("{LISTING}pub   ed25519/83C23F59B7BBF8BF 2026-12-06 [SC]\n");
    let apply = format!(
        "\n@@KP:oprc\n0\n\n@@KP:opout\nOK\n\n@@KP:operr\n\n@@KP:listrc\n0\n\n@@KP:listout\n{after}\n@@KP:listerr\n\n"
    );
    let mut r = FakeRemote::scripted(&[(0, &probe_reply(LISTING, None)), (0, &apply)]);
    let a = args(json!({"data": key}));
    let res = AptKey
        .execute(&a, &mut ctx(&mut r, false, false, vec![]))
        .unwrap();
    assert!(res.changed && !res.failed, "{res:?}");
    assert_eq!(res.data["id"], "83C23F59B7BBF8BF");
    assert_eq!(res.data["short_id"], "B7BBF8BF");
    let n = |k: &str| res.data[k].as_array().map(Vec::len);
    assert_eq!((n("before"), n("after")), (Some(2), Some(3)));
    assert!(res.rc.is_none() && res.stdout.is_none());
    assert_eq!(
        r.seen[1].1.as_deref(),
        Some(key.as_bytes()),
        "data on stdin"
    );
    assert!(r.seen[1].0.contains("add -"));

    // Already there: one round trip, no change.
    let mut r = FakeRemote::scripted(&[(0, &probe_reply(&after, None))]);
    let res = AptKey
        .execute(&a, &mut ctx(&mut r, false, false, vec![]))
        .unwrap();
    assert!(!res.changed && !res.failed);
    assert_eq!(r.seen.len(), 1);
}

#[test]
fn failures_and_refusals() {
    // A file that is not a key.
    let mut r = FakeRemote::scripted(&[(0, &probe_reply(LISTING, Some("@missing")))]);
    let res = AptKey
        .execute(
            &args(json!({"file": "/nope"})),
            &mut ctx(&mut r, false, false, vec![]),
        )
        .unwrap();
    assert_eq!(
        res.msg.as_deref(),
        Some("Unable to extract key from '/nope'")
    );
    // Removing fails when apt-key del fails.
    let apply = "\n@@KP:oprc\n1\n\n@@KP:opout\n\n@@KP:operr\nboom\n\n@@KP:listrc\n0\n\n@@KP:listout\n\n@@KP:listerr\n\n";
    let mut r = FakeRemote::scripted(&[(0, &probe_reply(LISTING, None)), (0, apply)]);
    let res = AptKey
        .execute(
            &args(json!({"id": "B7C5D7D6350947F8", "state": "absent"})),
            &mut ctx(&mut r, false, false, vec![]),
        )
        .unwrap();
    assert!(res.failed);
    assert_eq!(
        res.msg.as_deref(),
        Some("Unable to remove a key with id 350947F8")
    );
    assert_eq!(res.data["cmd"], "/usr/bin/apt-key del 350947F8");
    assert_eq!(res.stderr.as_deref(), Some("boom\n"));
    for bad in [
        json!({"url": "https://x/k"}),
        json!({"id": "AB", "keyserver": "k"}),
    ] {
        let mut r = FakeRemote::default();
        let e = AptKey
            .execute(&args(bad), &mut ctx(&mut r, false, false, vec![]))
            .unwrap_err();
        assert!(e.to_string().contains("get_url"), "{e}");
    }
}
