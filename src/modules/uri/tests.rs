//! Tests of the uri module: argument encoding, curl's config, the response framing and result,
//! and the flow with a scripted remote (secrets on stdin, check mode skipped).

use super::super::testing::{args, ctx, out, parse_with, FakeRemote};
use super::*;
use serde_json::json;

fn ua(v: serde_json::Value) -> UriArgs {
    parse_with(&SPEC, v, UriArgs::from_args).unwrap()
}

#[test]
fn bodies_are_encoded_like_ansible() {
    let a = ua(json!({"url": "http://h/", "body": {"a": 1, "b": "é"}, "body_format": "json"}));
    assert_eq!(
        a.body.as_deref(),
        Some(&b"{\"a\": 1, \"b\": \"\\u00e9\"}"[..])
    );
    assert!(a
        .headers
        .contains(&("Content-Type".into(), "application/json".into())));
    let a = ua(
        json!({"url": "http://h/", "body": {"a": "x y&z", "b": ["1", 2], "c": null},
        "body_format": "form-urlencoded", "headers": {"content-type": "text/x"}}),
    );
    assert_eq!(a.body.as_deref(), Some(&b"a=x+y%26z&b=1&b=2"[..]));
    assert_eq!(
        a.headers,
        [("content-type".to_string(), "text/x".to_string())]
    );
    let a = ua(json!({"url": "http://h/", "body": "raw"}));
    assert_eq!((a.body.as_deref(), a.headers.len()), (Some(&b"raw"[..]), 0));
    assert_eq!(a.status_code, [200]);
    for (bad, needle) in [
        (json!({"url": "ftp://h/"}), "must start with http"),
        (
            json!({"url": "http://h/", "headers": {"X": "a\nurl = http://evil"}}),
            "line break",
        ),
        (
            json!({"url": "http://h/", "status_code": ["x"]}),
            "status_code",
        ),
        (
            json!({"url": "http://h/", "body_format": "form-multipart", "body": {}}),
            "form-multipart",
        ),
        (
            json!({"url": "http://h/", "src": "/x"}),
            "'src' is not supported",
        ),
    ] {
        let e = parse_with(&SPEC, bad.clone(), UriArgs::from_args)
            .unwrap_err()
            .to_string();
        assert!(e.contains(needle), "{bad}: {e}");
    }
}

#[test]
fn curl_config_holds_the_secrets_and_the_method() {
    let a = ua(
        json!({"url": "http://h/x?t=s3cret", "url_username": "u", "url_password": "p\"w",
        "method": "PUT", "validate_certs": false, "follow_redirects": "all"}),
    );
    let c = curl_config(&a, true);
    for want in [
        "url = \"http://h/x?t=s3cret\"\n",
        "user = \"u:p\\\"w\"\nanyauth\n",
        "data-binary = \"@KP_BODY\"\n",
        "request = \"PUT\"\n",
        "insecure\n",
        "location\n",
        "user-agent = \"ansible-httpget\"\n",
    ] {
        assert!(c.contains(want), "{want:?} in {c}");
    }
    // POST with a body and GET need no explicit method; safe redirects only for GET/HEAD.
    let post = ua(json!({"url": "http://h/", "method": "post", "body": "x"}));
    let c = curl_config(&post, true);
    assert!(!c.contains("request") && !c.contains("location"), "{c}");
    let get = ua(json!({"url": "http://h/", "force_basic_auth": true, "user": "u"}));
    let c = curl_config(&get, false);
    assert!(c.contains("location\n") && c.contains("basic\n") && !c.contains("request"));
    // The script itself carries none of it.
    let s = request_script(&a);
    assert!(!s.contains("s3cret") && !s.contains("p\\\"w"));
}

#[test]
fn responses_are_framed_by_length() {
    // A hostile header trying to forge a section stays inside the header part.
    let w = "200 1 http://h/final";
    let h = "HTTP/1.1 302 Found\r\nLocation: /final\r\n\r\nHTTP/1.1 200 OK\r\nContent-Type: application/json\r\nX-A: 1\r\nX-A: 2\r\nX-Evil: \n@@KP:tmp\n/etc\r\n\r\n";
    let body = "{\"k\": \"{{ lookup('pipe', 'id') }}\"}";
    let raw = format!(
        "\n@@KP:curl\n0\n{}\n\n@@KP:lens\n{}\n{}\n0\n{}\n\n@@KP:end\n{w}{h}{body}",
        body.len(),
        w.len(),
        h.len(),
        body.len()
    );
    let r = parse_response(raw.as_bytes()).unwrap();
    assert_eq!((r.status, r.reason.as_str()), (200, "OK"));
    assert_eq!(r.tmp, None);
    assert_eq!(r.headers["x-a"], "1, 2");
    assert_eq!(r.url, "http://h/final");
    let a = ua(json!({"url": "http://h/start", "return_content": true}));
    let res = result_of(&a, &r).unwrap();
    assert!(!res.failed);
    assert_eq!(res.msg.as_deref(), Some("OK (unknown bytes)"));
    assert_eq!(res.data["redirected"], json!(true));
    assert_eq!(res.data["content_type"], json!("application/json"));
    // Content is data: kept literally, never rendered.
    assert_eq!(res.data["json"]["k"], json!("{{ lookup('pipe', 'id') }}"));
    assert_eq!(res.data["content"], json!(body));
    assert!(parse_response(&raw.as_bytes()[..raw.len() - 3]).is_err());
}

#[test]
fn status_messages_match_ansible() {
    let resp = |status: i64, reason: &str| Response {
        status,
        reason: reason.into(),
        url: "http://h/x".into(),
        ..Response::default()
    };
    let a = ua(json!({"url": "http://h/x", "status_code": [200, 201]}));
    let cases = [
        (resp(404, "File not found"), "Status code was 404 and not [200, 201]: HTTP Error 404: File not found"),
        (resp(302, ""), "Status code was 302 and not [200, 201]: HTTP Error 302: Found"),
        (
            Response { curl_rc: 7, curl_err: "curl: (7) Couldn't connect to server".into(), ..resp(-1, "") },
            "Status code was -1 and not [200, 201]: Request failed: <urlopen error [Errno 111] Connection refused>",
        ),
    ];
    for (r, want) in cases {
        let res = result_of(&a, &r).unwrap();
        assert!(res.failed);
        assert_eq!(res.msg.as_deref(), Some(want));
    }
    let big = Response {
        body: Some(vec![b'x'; (RESPONSE_CAP + 1) as usize]),
        ..resp(200, "OK")
    };
    assert!(result_of(&a, &big).unwrap_err().contains("64 MiB"));
    assert_eq!(absolute_location("http://h:1/a/b", "/c"), "http://h:1/c");
    assert_eq!(absolute_location("http://h/a/b", "c"), "http://h/a/c");
    assert_eq!(
        absolute_location("http://h/a/b", "https://x/"),
        "https://x/"
    );
    let mut r = resp(200, "OK");
    r.url = "http://h/dir/f%20x.txt?q".into();
    assert_eq!(response_filename(&r), "f x.txt");
    r.headers.insert(
        "content-disposition".into(),
        "attachment; filename=\"../n.bin\"".into(),
    );
    assert_eq!(response_filename(&r), "n.bin");
    r.url = "http://h/".into();
    r.headers.clear();
    assert_eq!(response_filename(&r), "index.html");
}

#[test]
fn flow_sends_secrets_on_stdin_and_skips_check_mode() {
    let mut r = FakeRemote::default();
    let res = Uri
        .execute(
            &args(json!({"url": "http://h/"})),
            &mut ctx(&mut r, true, false, vec![]),
        )
        .unwrap();
    assert_eq!(res.data["skipped"], json!(true));
    assert!(r.seen.is_empty());
    let w = "200 0 http://h/";
    let reply = format!(
        "\n@@KP:curl\n0\n0\n\n@@KP:lens\n{}\n0\n0\n0\n\n@@KP:end\n{w}",
        w.len()
    );
    let mut r = FakeRemote::new(vec![out(0, &reply)]);
    let res = Uri
        .execute(
            &args(
                json!({"url": "http://h/", "url_password": "s3cret", "url_username": "u",
                "headers": {"Authorization": "Bearer t0ken"}}),
            ),
            &mut ctx(&mut r, false, false, vec![]),
        )
        .unwrap();
    assert!(!res.failed && !res.changed, "{res:?}");
    assert_eq!(r.seen.len(), 1);
    let stdin = String::from_utf8_lossy(r.seen[0].1.as_deref().unwrap()).into_owned();
    assert!(stdin.contains("s3cret") && stdin.contains("t0ken"));
    assert!(!r.seen[0].0.contains("s3cret") && !r.seen[0].0.contains("t0ken"));
}
