//! Local facts (`ansible_local`): the `*.fact` files of `/etc/ansible/facts.d` on the target,
//! read (or, when executable, run) by the gathering script and sent base64-encoded, one line per
//! file, so no content can break the script's framing. Each is parsed here as Ansible does: JSON,
//! else INI (sections of `key = value`, keys lowercased), else an error text in place of the
//! value. Target content is hostile: the script caps each file at 1 MiB and each run at 10 s, and
//! nothing here renders it.

use base64::Engine;
use serde_json::{Map, Value};

/// The script's part: one `name base64` line per fact file (the name is the file name without
/// `.fact`; names outside `[A-Za-z0-9_.-]` are skipped).
pub const SCRIPT: &str = r#"printf '\n@@KP:local\n'
for f in /etc/ansible/facts.d/*.fact; do
  [ -f "$f" ] || continue
  n=${f##*/}; n=${n%.fact}
  case $n in ''|*[!A-Za-z0-9_.-]*) continue;; esac
  if [ -x "$f" ]; then o=$(timeout 10 "$f" 2>/dev/null | head -c 1048576 | base64 -w0)
  else o=$(head -c 1048576 "$f" | base64 -w0); fi
  echo "$n ${o:-}"
done
"#;

/// `ansible_local` from the script's `local` section.
pub fn parse(section: &str) -> Value {
    let mut out = Map::new();
    for line in section.lines() {
        let Some((name, b64)) = line.split_once(' ').or(Some((line, ""))) else {
            continue;
        };
        if name.is_empty() {
            continue;
        }
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(b64.trim())
            .unwrap_or_default();
        out.insert(name.to_string(), fact_value(name, &bytes));
    }
    Value::Object(out)
}

/// One file's value: JSON, else INI, else Ansible's error text.
fn fact_value(name: &str, bytes: &[u8]) -> Value {
    let bad = format!(
        "error loading facts as JSON or ini - please check content: /etc/ansible/facts.d/{name}.fact"
    );
    let Ok(text) = std::str::from_utf8(bytes) else {
        return Value::String(bad);
    };
    if let Ok(v) = serde_json::from_str::<Value>(text) {
        return v;
    }
    ini(text).map_or_else(|| Value::String(bad), Value::Object)
}

/// Python's configparser, as far as fact files use it: `[section]` headers, `key = value` or
/// `key: value` lines (keys lowercased, values trimmed), `#`/`;` comments, indented continuation
/// lines. `None` when the text is not INI (an option before any section, a line without a
/// separator), as configparser fails there.
fn ini(text: &str) -> Option<Map<String, Value>> {
    let mut out: Map<String, Value> = Map::new();
    let mut section: Option<String> = None;
    let mut last_key: Option<String> = None;
    for raw in text.lines() {
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
            continue;
        }
        if raw.starts_with([' ', '\t']) {
            // A continuation of the previous value.
            let (s, k) = (section.as_ref()?, last_key.as_ref()?);
            let entry = out.get_mut(s)?.as_object_mut()?.get_mut(k)?;
            let joined = format!("{}\n{line}", entry.as_str().unwrap_or_default());
            *entry = Value::String(joined);
            continue;
        }
        if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            out.entry(name.to_string())
                .or_insert_with(|| Value::Object(Map::new()));
            section = Some(name.to_string());
            last_key = None;
            continue;
        }
        let s = section.as_ref()?;
        let at = line.find(['=', ':'])?;
        let key = line[..at].trim().to_lowercase();
        let value = line[at + 1..].trim().to_string();
        out.get_mut(s)?
            .as_object_mut()?
            .insert(key.clone(), Value::String(value));
        last_key = Some(key);
    }
    (!out.is_empty()).then_some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn b64(s: &str) -> String {
        base64::engine::general_purpose::STANDARD.encode(s)
    }

    #[test]
    fn json_ini_and_broken_facts() {
        let section = format!(
            "app {}\nsite {}\nbad {}\nempty \nbin {}\n",
            b64("{\"version\": 3, \"tags\": [\"a\"]}"),
            b64("# c\n[general]\nName = web\nport: 80\n  more\n[empty]\n"),
            b64("just text"),
            base64::engine::general_purpose::STANDARD.encode([0xff, 0xfe]),
        );
        assert_eq!(
            parse(&section),
            json!({
                "app": {"version": 3, "tags": ["a"]},
                "site": {"general": {"name": "web", "port": "80\nmore"}, "empty": {}},
                "bad": "error loading facts as JSON or ini - please check content: /etc/ansible/facts.d/bad.fact",
                "empty": "error loading facts as JSON or ini - please check content: /etc/ansible/facts.d/empty.fact",
                "bin": "error loading facts as JSON or ini - please check content: /etc/ansible/facts.d/bin.fact",
            })
        );
        assert_eq!(parse(""), json!({}));
    }

    #[test]
    fn script_reads_plain_and_runs_executable_facts() {
        let d = tempfile::tempdir().unwrap();
        let dir = d.path().join("facts.d");
        std::fs::create_dir(&dir).unwrap();
        std::fs::write(dir.join("a.fact"), "{\"x\": 1}").unwrap();
        std::fs::write(dir.join("b.fact"), "#!/bin/sh\necho '{\"y\": 2}'\n").unwrap();
        std::fs::write(dir.join("bad name.fact"), "{}").unwrap();
        std::fs::write(dir.join("other.txt"), "{}").unwrap();
        let status = std::process::Command::new("chmod")
            .arg("755")
            .arg(dir.join("b.fact"))
            .status()
            .unwrap();
        assert!(status.success());
        let script = SCRIPT.replace("/etc/ansible/facts.d", &dir.display().to_string());
        let out = std::process::Command::new("sh")
            .arg("-c")
            .arg(&script)
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        let section = text.split_once("@@KP:local\n").unwrap().1;
        assert_eq!(parse(section), json!({"a": {"x": 1}, "b": {"y": 2}}));
    }
}
