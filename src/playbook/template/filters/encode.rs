//! Filters that turn values into text and back: JSON and YAML the way Python writes them,
//! base64, shell quoting and hashes.

use super::{from_json_value, invalid, py_str, to_json_value};
use crate::playbook::template::pyfmt;
use crate::value::Value as Json;
use base64::Engine as _;
use minijinja::value::Kwargs;
use minijinja::{Environment, Error, State, Value};

/// Register this file's filters on `env`.
pub(super) fn register(env: &mut Environment<'static>) {
    env.add_filter("to_json", to_json);
    env.add_filter("to_nice_json", to_nice_json);
    env.add_filter("to_yaml", to_yaml);
    env.add_filter("to_nice_yaml", to_nice_yaml);
    env.add_filter("from_json", from_json);
    env.add_filter("from_yaml", from_yaml);
    env.add_filter("b64encode", b64encode);
    env.add_filter("b64decode", b64decode);
    env.add_filter("quote", quote);
    env.add_filter("hash", hash);
    env.add_filter("checksum", |v: Value| digest(&v, "sha1"));
    env.add_filter("sha1", |v: Value| digest(&v, "sha1"));
    env.add_filter("md5", |v: Value| digest(&v, "md5"));
    env.add_filter("to_uuid", to_uuid);
    env.add_filter("urlsplit", urlsplit);
    env.add_filter("from_yaml_all", from_yaml_all);
    env.add_filter("urldecode", urldecode);
    env.add_filter("comment", comment);
    env.add_filter("password_hash", password_hash);
}

/// `password_hash('sha512'|'sha256', salt=None, rounds=None)`: a crypt(3) hash for `user:
/// password=`. Without a salt a random one is used (then every run changes the hash, as in
/// Ansible: pass a salt to stay idempotent).
fn password_hash(
    password: String,
    hashtype: Option<String>,
    salt: Option<String>,
    kwargs: Kwargs,
) -> Result<Value, Error> {
    let hashtype = match kwargs.get::<Option<String>>("hashtype")? {
        Some(h) => h,
        None => hashtype.unwrap_or_else(|| "sha512".into()),
    };
    let salt = match kwargs.get::<Option<String>>("salt")? {
        Some(s) => Some(s),
        None => salt,
    };
    let rounds: Option<usize> = kwargs.get("rounds")?;
    let _: Option<Value> = kwargs.get("salt_size")?;
    kwargs.assert_all_used()?;
    const ALPHABET: &[u8] = b"./0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
    let salt = match salt {
        Some(s) => s.chars().take(16).collect::<String>(),
        None => {
            let mut raw = [0u8; 16];
            getrandom::getrandom(&mut raw)
                .map_err(|e| invalid(format!("password_hash: no random salt: {e}")))?;
            raw.iter()
                .map(|b| ALPHABET[usize::from(*b) % ALPHABET.len()] as char)
                .collect()
        }
    };
    let n = rounds.unwrap_or(5000);
    let bad = |e: sha_crypt::CryptError| invalid(format!("password_hash: {e:?}"));
    let (id, hash) = match hashtype.as_str() {
        "sha512" => (
            6,
            sha_crypt::sha512_crypt_b64(
                password.as_bytes(),
                salt.as_bytes(),
                &sha_crypt::Sha512Params::new(n).map_err(bad)?,
            )
            .map_err(bad)?,
        ),
        "sha256" => (
            5,
            sha_crypt::sha256_crypt_b64(
                password.as_bytes(),
                salt.as_bytes(),
                &sha_crypt::Sha256Params::new(n).map_err(bad)?,
            )
            .map_err(bad)?,
        ),
        other => {
            return Err(invalid(format!(
                "password_hash: '{other}' is not supported by knockplay (sha512, sha256)"
            )))
        }
    };
    let rounds_part = rounds.map(|r| format!("rounds={r}$")).unwrap_or_default();
    Ok(Value::from(format!("${id}${rounds_part}{salt}${hash}")))
}

/// `comment`: text as a comment block (`{{ ansible_managed | comment }}`), in the styles
/// plain (`#`), erlang (`%`), c (`//`), cblock (`/* */`) and xml (`<!-- -->`), with
/// Ansible's keywords (`decoration`, `prefix`, `prefix_count`, `postfix`, `postfix_count`,
/// `beginning`, `end`, `newline`).
fn comment(text: String, style: Option<String>, kwargs: Kwargs) -> Result<Value, Error> {
    let style = style.unwrap_or_else(|| "plain".into());
    let (beginning, decoration, end) = match style.as_str() {
        "plain" => ("", "# ", ""),
        "erlang" => ("", "% ", ""),
        "c" => ("", "// ", ""),
        "cblock" => ("/*", " * ", " */"),
        "xml" => ("<!--", " - ", "-->"),
        other => return Err(invalid(format!("comment: unknown style '{other}'"))),
    };
    let get = |k: &str| -> Result<Option<String>, Error> {
        let v: Option<Value> = kwargs.get(k)?;
        Ok(v.map(|v| {
            v.as_str()
                .map(str::to_string)
                .unwrap_or_else(|| v.to_string())
        }))
    };
    let count = |k: &str| -> Result<usize, Error> {
        let v: Option<Value> = kwargs.get(k)?;
        Ok(v.map(|v| v.to_string().parse().unwrap_or(1)).unwrap_or(1))
    };
    let prepostfix = get("decoration")?.unwrap_or_else(|| decoration.to_string());
    let newline = get("newline")?.unwrap_or_else(|| "\n".into());
    let beginning = get("beginning")?.unwrap_or_else(|| beginning.into());
    let decoration = get("decoration")?.unwrap_or_else(|| decoration.into());
    let prefix = get("prefix")?.unwrap_or_else(|| prepostfix.trim_end().into());
    let postfix = get("postfix")?.unwrap_or_else(|| prepostfix.trim_end().into());
    let end = get("end")?.unwrap_or_else(|| end.into());
    let (prefix_count, postfix_count) = (count("prefix_count")?, count("postfix_count")?);
    kwargs.assert_all_used()?;
    let mut out = String::new();
    if !beginning.is_empty() {
        out.push_str(&beginning);
        out.push_str(&newline);
    }
    if !prefix.is_empty() {
        let one = if prefix == newline {
            newline.clone()
        } else {
            format!("{prefix}{newline}")
        };
        out.push_str(&one.repeat(prefix_count));
    }
    let body = format!(
        "{decoration}{}",
        text.replace(&newline, &format!("{newline}{decoration}"))
    )
    .replace(
        &format!("{decoration}{newline}"),
        &format!("{}{newline}", decoration.trim_end()),
    );
    out.push_str(&body);
    for _ in 0..postfix_count {
        out.push_str(&newline);
        out.push_str(&postfix);
    }
    if !end.is_empty() {
        out.push_str(&newline);
        out.push_str(&end);
    }
    Ok(Value::from(out))
}

/// `to_json` and `to_nice_json`: the same keywords, `nice` changes the defaults (indent 4,
/// sorted keys).
fn dump_json(v: Value, kwargs: Kwargs, nice: bool) -> Result<Value, Error> {
    let indent: Option<usize> = kwargs.get("indent")?;
    let sort: Option<bool> = kwargs.get("sort_keys")?;
    let _: Option<bool> = kwargs.get("ensure_ascii")?;
    kwargs.assert_all_used()?;
    let indent = if nice {
        Some(indent.unwrap_or(4))
    } else {
        indent.filter(|&i| i > 0)
    };
    Ok(Value::from(pyfmt::json_dumps(
        &to_json_value(&v)?,
        indent,
        sort.unwrap_or(nice),
    )))
}

fn to_json(v: Value, kwargs: Kwargs) -> Result<Value, Error> {
    dump_json(v, kwargs, false)
}

fn to_nice_json(v: Value, kwargs: Kwargs) -> Result<Value, Error> {
    dump_json(v, kwargs, true)
}

/// `to_yaml` and `to_nice_yaml`: `nice` means indent 4 and block style throughout (and no
/// `default_flow_style` keyword).
fn dump_yaml(v: Value, kwargs: Kwargs, nice: bool) -> Result<Value, Error> {
    let indent: Option<usize> = kwargs.get("indent")?;
    let flow: Option<Value> = if nice {
        None
    } else {
        kwargs.get("default_flow_style")?
    };
    let _: Option<Value> = kwargs.get("width")?;
    let _: Option<bool> = kwargs.get("sort_keys")?;
    kwargs.assert_all_used()?;
    // default_flow_style: None (default) = flow for leaf collections; False = always block.
    let flow_leaves = !nice && flow.is_none_or(|f| f.is_none() || f.is_true());
    Ok(Value::from(pyfmt::yaml_dump(
        &to_json_value(&v)?,
        indent.unwrap_or(if nice { 4 } else { 2 }),
        flow_leaves,
    )))
}

fn to_yaml(v: Value, kwargs: Kwargs) -> Result<Value, Error> {
    dump_yaml(v, kwargs, false)
}

fn to_nice_yaml(v: Value, kwargs: Kwargs) -> Result<Value, Error> {
    dump_yaml(v, kwargs, true)
}

fn from_json(v: Value) -> Result<Value, Error> {
    let s = py_str(&v)?;
    let parsed: Json =
        serde_json::from_str(&s).map_err(|e| invalid(format!("from_json: invalid JSON: {e}")))?;
    Ok(from_json_value(&parsed))
}

fn from_yaml(v: Value) -> Result<Value, Error> {
    let s = py_str(&v)?;
    let parsed: Json =
        serde_yaml::from_str(&s).map_err(|e| invalid(format!("from_yaml: invalid YAML: {e}")))?;
    Ok(from_json_value(&parsed))
}

fn b64encode(v: Value, _encoding: Option<String>) -> Result<Value, Error> {
    Ok(Value::from(
        base64::engine::general_purpose::STANDARD.encode(py_str(&v)?.as_bytes()),
    ))
}

fn b64decode(v: Value, _encoding: Option<String>) -> Result<Value, Error> {
    let s = py_str(&v)?;
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(s.trim())
        .map_err(|e| invalid(format!("b64decode: invalid base64: {e}")))?;
    Ok(Value::from(String::from_utf8_lossy(&bytes).into_owned()))
}

/// Python's `shlex.quote` (what Ansible's `quote` uses): same safe characters as
/// `crate::shell::quote`, but a quote inside is written `'"'"'`, so rendered files match Ansible's
/// byte for byte.
fn quote(v: Value) -> Result<Value, Error> {
    let s = if v.is_none() {
        String::new()
    } else {
        py_str(&v)?
    };
    let safe = !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_@%+=:,./-".contains(&b));
    if safe {
        return Ok(Value::from(s));
    }
    Ok(Value::from(format!("'{}'", s.replace('\'', "'\"'\"'"))))
}

fn hash(state: &State, v: Value, algo: Option<String>) -> Result<Value, Error> {
    let _ = state;
    digest(&v, &algo.unwrap_or_else(|| "sha1".into()))
}

/// The hex digest of a value's text (Python's `hashlib`), as `hash`, `checksum`, `sha1`, `md5`.
fn digest(v: &Value, algo: &str) -> Result<Value, Error> {
    use sha2::Digest;
    let s = py_str(v)?;
    let hex = match algo {
        "sha1" => hex::encode(sha1::Sha1::digest(s.as_bytes())),
        "md5" => hex::encode(md5::Md5::digest(s.as_bytes())),
        "sha224" => hex::encode(sha2::Sha224::digest(s.as_bytes())),
        "sha256" => hex::encode(sha2::Sha256::digest(s.as_bytes())),
        "sha384" => hex::encode(sha2::Sha384::digest(s.as_bytes())),
        "sha512" => hex::encode(sha2::Sha512::digest(s.as_bytes())),
        other => {
            return Err(invalid(format!(
                "hash: unsupported hash type {other:?} (supported: sha1, md5, sha224, sha256, sha384, sha512)"
            )))
        }
    };
    Ok(Value::from(hex))
}

/// Ansible's `to_uuid(namespace=...)`: a version 5 UUID of the text in Ansible's namespace.
fn to_uuid(v: Value, namespace: Option<String>) -> Result<Value, Error> {
    use sha2::Digest;
    let ns = namespace.unwrap_or_else(|| "361E6D51-FAEC-444A-9079-341386DA8E2E".into());
    let ns_bytes = hex::decode(ns.replace('-', ""))
        .ok()
        .filter(|b| b.len() == 16)
        .ok_or_else(|| invalid(format!("to_uuid: invalid namespace UUID {ns:?}")))?;
    let mut h = sha1::Sha1::new();
    h.update(&ns_bytes);
    h.update(py_str(&v)?.as_bytes());
    let mut b: Vec<u8> = h.finalize()[..16].to_vec();
    b[6] = (b[6] & 0x0f) | 0x50;
    b[8] = (b[8] & 0x3f) | 0x80;
    let x = hex::encode(b);
    Ok(Value::from(format!(
        "{}-{}-{}-{}-{}",
        &x[..8],
        &x[8..12],
        &x[12..16],
        &x[16..20],
        &x[20..]
    )))
}

/// Ansible's `urlsplit(query='')`: Python's `urlsplit` as a dict (`scheme`, `netloc`, `path`,
/// `query`, `fragment`, `hostname`, `port`, `username`, `password`), or one of its fields.
fn urlsplit(v: Value, field: Option<String>) -> Result<Value, Error> {
    let url = py_str(&v)?;
    let (scheme, rest) = match url.split_once("://") {
        Some((s, r))
            if !s.is_empty()
                && s.chars()
                    .all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c)) =>
        {
            (s.to_ascii_lowercase(), format!("//{r}"))
        }
        _ => (String::new(), url.clone()),
    };
    let (rest, fragment) = rest.split_once('#').unwrap_or((rest.as_str(), ""));
    let (rest, query) = rest.split_once('?').unwrap_or((rest, ""));
    let (netloc, path) = match rest.strip_prefix("//") {
        Some(r) => match r.find('/') {
            Some(i) => (&r[..i], &r[i..]),
            None => (r, ""),
        },
        None => ("", rest),
    };
    let (userinfo, hostport) = match netloc.rsplit_once('@') {
        Some((u, h)) => (Some(u), h),
        None => (None, netloc),
    };
    let (username, password) = match userinfo {
        Some(u) => match u.split_once(':') {
            Some((a, b)) => (Json::from(a), Json::from(b)),
            None => (Json::from(u), Json::Null),
        },
        None => (Json::Null, Json::Null),
    };
    let (host, port) = match hostport.rsplit_once(':') {
        Some((h, p)) if !h.ends_with(']') || hostport.starts_with('[') => {
            (h, p.parse::<u16>().ok())
        }
        _ => (hostport, None),
    };
    let host = host
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_ascii_lowercase();
    let parts = serde_json::json!({
        "fragment": fragment,
        "hostname": if host.is_empty() { Json::Null } else { Json::from(host) },
        "netloc": netloc,
        "password": password,
        "path": path,
        "port": port,
        "query": query,
        "scheme": scheme,
        "username": username,
    });
    match field {
        None => Ok(from_json_value(&parts)),
        Some(f) => parts
            .get(&f)
            .map(from_json_value)
            .ok_or_else(|| invalid(format!("urlsplit: unknown URL component: {f}"))),
    }
}

/// Python's `unquote_plus`: `%XX` escapes decoded, `+` as a space.
fn urldecode(v: Value) -> Result<Value, Error> {
    let s = py_str(&v)?;
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < b.len() => {
                let hex = |c: u8| (c as char).to_digit(16);
                match (hex(b[i + 1]), hex(b[i + 2])) {
                    (Some(h), Some(l)) => {
                        out.push((h * 16 + l) as u8);
                        i += 2;
                    }
                    _ => out.push(b'%'),
                }
            }
            other => out.push(other),
        }
        i += 1;
    }
    Ok(Value::from(String::from_utf8_lossy(&out).into_owned()))
}

/// `from_yaml_all`: every document of a YAML stream, as a list.
fn from_yaml_all(v: Value) -> Result<Value, Error> {
    use serde::Deserialize;
    let s = py_str(&v)?;
    let mut docs = Vec::new();
    for doc in serde_yaml::Deserializer::from_str(&s) {
        let parsed = Json::deserialize(doc)
            .map_err(|e| invalid(format!("from_yaml_all: invalid YAML: {e}")))?;
        docs.push(parsed);
    }
    Ok(from_json_value(&Json::Array(docs)))
}

#[cfg(test)]
mod tests {
    fn render(template: &str) -> Result<String, String> {
        let mut env = minijinja::Environment::new();
        super::super::register(&mut env);
        env.render_str(template, ()).map_err(|e| e.to_string())
    }

    #[test]
    fn digests_uuids_and_urls_like_python() {
        let cases = [
            ("{{ 'a' | hash }}", "86f7e437faa5a7fce15d1ddcb9eaeaea377667b8"),
            ("{{ 'a' | checksum }}", "86f7e437faa5a7fce15d1ddcb9eaeaea377667b8"),
            ("{{ 'a' | hash('md5') }}", "0cc175b9c0f1b6a831c399e269772661"),
            ("{{ 'a' | md5 }}", "0cc175b9c0f1b6a831c399e269772661"),
            ("{{ 'web1' | to_uuid }}", "4ebc6093-8026-5090-bb95-a592e5a6aec3"),
            ("{{ 'https://user:pw@Example.com:8443/a/b?x=1#f' | urlsplit('hostname') }}", "example.com"),
            ("{{ 'https://user:pw@Example.com:8443/a/b?x=1#f' | urlsplit('port') }}", "8443"),
            ("{% set u = 'https://user:pw@Example.com:8443/a/b?x=1#f' | urlsplit %}{{ [u.scheme, u.netloc, u.path, u.query, u.fragment, u.username, u.password] | join(' ') }}", "https user:pw@Example.com:8443 /a/b x=1 f user pw"),
            ("{{ 'a: 1\n---\nb: 2\n' | from_yaml_all | length }}", "2"),
            ("{{ 'a%20b+c%2Fd%' | urldecode }}", "a b c/d%"),
            ("{{ '%e9%' | urldecode | length }}", "2"),
        ];
        for (t, want) in cases {
            assert_eq!(render(t).as_deref(), Ok(want), "{t}");
        }
    }

    #[test]
    fn json_and_yaml_keywords_and_defaults() {
        let cases = [
            (
                "{{ {'b': 1, 'a': 2} | to_json(indent=2, sort_keys=true) }}",
                "{\n  \"a\": 2,\n  \"b\": 1\n}",
            ),
            (
                "{{ {'b': 1, 'a': 2} | to_json(indent=0) }}",
                r#"{"b": 1, "a": 2}"#,
            ),
            (
                "{{ {'b': 1, 'a': 2} | to_nice_json(sort_keys=false) }}",
                "{\n    \"b\": 1,\n    \"a\": 2\n}",
            ),
            ("{{ {'a': [1, 2]} | to_yaml }}", "a: [1, 2]\n"),
            (
                "{{ {'a': [1, 2]} | to_yaml(default_flow_style=false) }}",
                "a:\n- 1\n- 2\n",
            ),
            ("{{ {'a': {'b': 1}} | to_nice_yaml }}", "a:\n    b: 1\n"),
            ("{{ 'a: [1]' | from_yaml | to_json }}", r#"{"a": [1]}"#),
            ("{{ 'hi' | b64encode | b64decode }}", "hi"),
        ];
        for (template, want) in cases {
            assert_eq!(render(template).as_deref(), Ok(want), "{template}");
        }
        for template in [
            "{{ {'a': 1} | to_nice_yaml(default_flow_style=false) }}",
            "{{ 1 | to_json(colour=1) }}",
            "{{ '%%' | b64decode }}",
            "{{ 'x' | hash('md4') }}",
        ] {
            assert!(render(template).is_err(), "{template}");
        }
    }
}
