//! The uri module's reading of a response: curl's header dump, the framed output of the
//! request script, and the result Ansible reports (status, msg, headers, json, content).

use indexmap::IndexMap;

use super::{UriArgs, RESPONSE_CAP};
use crate::modules::probe::framed;
use crate::modules::ModuleResult;
use crate::value::Value;

/// The last response in curl's header dump: status, reason and headers (lowercased names,
/// repeated headers joined with `, ` as Ansible does). Pure.
pub fn parse_headers(dump: &str) -> (i64, String, IndexMap<String, String>) {
    let mut status = -1;
    let mut reason = String::new();
    let mut headers = IndexMap::new();
    for line in dump.lines() {
        let line = line.trim_end_matches('\r');
        if line.starts_with("HTTP/") {
            let mut parts = line.splitn(3, ' ');
            parts.next();
            status = parts.next().and_then(|c| c.parse().ok()).unwrap_or(-1);
            reason = parts.next().unwrap_or("").to_string();
            headers.clear();
        } else if let Some((k, v)) = line.split_once(':') {
            let (k, v) = (k.trim().to_lowercase(), v.trim().to_string());
            match headers.get_mut(&k) {
                Some(old) => *old = format!("{old}, {v}"),
                None => {
                    headers.insert(k, v);
                }
            }
        }
    }
    if status == 100 {
        status = -1;
    }
    (status, reason, headers)
}

/// Python's reason phrase for a status, when the response gave none (HTTP/2).
fn reason_of(code: i64) -> &'static str {
    match code {
        200 => "OK",
        201 => "Created",
        204 => "No Content",
        301 => "Moved Permanently",
        302 => "Found",
        303 => "See Other",
        304 => "Not Modified",
        307 => "Temporary Redirect",
        308 => "Permanent Redirect",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        409 => "Conflict",
        500 => "Internal Server Error",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        _ => "",
    }
}

/// What came back from the request script.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Response {
    pub curl_rc: i32,
    pub curl_err: String,
    pub status: i64,
    pub reason: String,
    pub headers: IndexMap<String, String>,
    pub url: String,
    pub size: u64,
    pub body: Option<Vec<u8>>,
    /// With `dest`: the target's temporary directory and the body's SHA-1.
    pub tmp: Option<(String, String)>,
}

/// Parse the request script's output: trusted sections up to `@@KP:end`, then the announced
/// lengths of the write-out, header dump, curl's message and body. Pure.
pub fn parse_response(out: &[u8]) -> Result<Response, String> {
    let f = framed(out, "request", 4, true)?;
    let (sec, mut parts) = (f.sections, f.blobs);
    let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    let curl = sec.get("curl").cloned().unwrap_or_default();
    let mut lines = curl.lines();
    let curl_rc = lines
        .next()
        .and_then(|l| l.trim().parse().ok())
        .unwrap_or(-1);
    let size = lines
        .next()
        .and_then(|l| l.trim().parse().ok())
        .unwrap_or(0);
    let w = text(&parts[0]);
    let mut wp = w.splitn(3, ' ');
    let code: i64 = wp.next().and_then(|c| c.parse().ok()).unwrap_or(0);
    wp.next();
    let url = wp.next().unwrap_or("").to_string();
    let (mut status, reason, headers) = parse_headers(&text(&parts[1]));
    if code == 0 || curl_rc != 0 {
        status = -1;
    } else if status != code {
        status = code;
    }
    let tmp = sec.get("tmp").and_then(|t| {
        let mut l = t.lines();
        let dir = l.next()?.to_string();
        let sum = l
            .next()
            .unwrap_or("")
            .split(' ')
            .next()
            .unwrap_or("")
            .to_string();
        Some((dir, sum))
    });
    let body = std::mem::take(&mut parts[3]);
    Ok(Response {
        curl_rc,
        curl_err: text(&parts[2]).trim().to_string(),
        status,
        reason,
        headers,
        url,
        size,
        body: (!body.is_empty() || size == 0).then_some(body),
        tmp,
    })
}

/// Python's "%s" of a list of ints: `[200, 201]`.
fn py_list(codes: &[i64]) -> String {
    let v: Vec<String> = codes.iter().map(i64::to_string).collect();
    format!("[{}]", v.join(", "))
}

/// The result Ansible's uri reports for a response (without `dest` handling). Pure.
pub fn result_of(a: &UriArgs, r: &Response) -> Result<ModuleResult, String> {
    if r.body
        .as_ref()
        .is_some_and(|b| b.len() as u64 > RESPONSE_CAP)
    {
        return Err(format!(
            "the response body exceeds {} MiB",
            RESPONSE_CAP / 1024 / 1024
        ));
    }
    let mut res = ModuleResult::ok();
    let info_msg = if r.status < 0 {
        format!("Request failed: {}", urlopen_error(r.curl_rc, &r.curl_err))
    } else if (200..300).contains(&r.status) {
        format!(
            "OK ({} bytes)",
            r.headers
                .get("content-length")
                .map_or("unknown", String::as_str)
        )
    } else {
        let reason = if r.reason.is_empty() {
            reason_of(r.status)
        } else {
            &r.reason
        };
        format!("HTTP Error {}: {reason}", r.status)
    };
    let url = if r.status < 0 || r.url.is_empty() || !(200..300).contains(&r.status) {
        a.url.clone()
    } else {
        r.url.clone()
    };
    for (k, v) in &r.headers {
        let key = k.replace('-', "_");
        let v = if key == "location" {
            absolute_location(&a.url, v)
        } else {
            v.clone()
        };
        res = res.set(&key, v);
    }
    res = res
        .set("redirected", url != a.url)
        .set("url", url.as_str())
        .set("status", r.status)
        .set("elapsed", 0)
        .set("cookies", Value::Object(Default::default()))
        .set("cookies_string", "");
    let ct = r
        .headers
        .get("content-type")
        .map(|c| c.split(';').next().unwrap_or("").trim().to_lowercase())
        .unwrap_or_default();
    let sub = ct.split_once('/').map_or("", |x| x.1);
    let sub = sub.split_once('+').map_or(sub, |x| x.1);
    let maybe_json = sub == "json" || sub == "javascript";
    let charset = r
        .headers
        .get("content-type")
        .and_then(|c| {
            c.to_lowercase()
                .split("charset=")
                .nth(1)
                .map(str::to_string)
        })
        .unwrap_or_default();
    let text = r.body.as_ref().map(|b| decode(b, charset.trim()));
    if maybe_json {
        if let Some(js) = text
            .as_ref()
            .and_then(|t| serde_json::from_str::<Value>(t).ok())
        {
            res = res.set("json", js);
        }
    }
    if a.return_content {
        res = res.set("content", text.clone().unwrap_or_default());
    }
    if !a.status_code.contains(&r.status) {
        res.failed = true;
        res.msg = Some(format!(
            "Status code was {} and not {}: {info_msg}",
            r.status,
            py_list(&a.status_code)
        ));
    } else {
        res.msg = Some(info_msg);
    }
    Ok(res)
}

/// Python's `URLError` text for the curl failures that have one (connection refused, unknown
/// host, timeout); curl's own message otherwise.
fn urlopen_error(rc: i32, err: &str) -> String {
    match rc {
        7 if err.contains("Couldn't connect") || err.contains("refused") => {
            "<urlopen error [Errno 111] Connection refused>".into()
        }
        6 => "<urlopen error [Errno -2] Name or service not known>".into(),
        28 => "<urlopen error timed out>".into(),
        _ => err.to_string(),
    }
}

fn decode(b: &[u8], charset: &str) -> String {
    if charset.starts_with("iso-8859-1") || charset.starts_with("latin") {
        b.iter().map(|&c| c as char).collect()
    } else {
        String::from_utf8_lossy(b).into_owned()
    }
}

/// Ansible's `absolute_location` of a `Location` header. Pure.
pub fn absolute_location(url: &str, location: &str) -> String {
    if location.contains("://") {
        location.to_string()
    } else if location.starts_with('/') {
        let after = url.find("://").map_or(0, |i| i + 3);
        let host_end = url[after..].find('/').map_or(url.len(), |i| after + i);
        format!("{}{location}", &url[..host_end])
    } else {
        let base = url.rsplit_once('/').map_or(url, |x| x.0);
        format!("{base}/{location}")
    }
}

/// The file name a response is saved as inside a directory `dest`. Pure.
pub fn response_filename(r: &Response) -> String {
    if let Some(cd) = r.headers.get("content-disposition") {
        if let Some(f) = cd.split("filename=").nth(1) {
            let f = f.split(';').next().unwrap_or("").trim().trim_matches('"');
            let base = f.rsplit('/').next().unwrap_or("");
            if !base.is_empty() {
                return base.to_string();
            }
        }
    }
    let path = r.url.split(['?', '#']).next().unwrap_or("");
    let path = path.splitn(4, '/').nth(3).unwrap_or("");
    match path.trim_end_matches('/').rsplit('/').next() {
        Some(b) if !b.is_empty() => percent_decode(b),
        _ => "index.html".into(),
    }
}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 2 < b.len() {
            if let Ok(v) = u8::from_str_radix(&s[i + 1..i + 3], 16) {
                out.push(v);
                i += 3;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}
