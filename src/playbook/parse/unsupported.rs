//! Keywords Ansible has that knockplay accepts only in the forms it honours: anything else is
//! refused at parse time, at the keyword, instead of being silently ignored. (A `connection`
//! knockplay lacks, such as `winrm`, is not refused here: like a module knockplay lacks, the hosts
//! fail when they would use it, and `--syntax-check` warns.)

use super::{err, ParseError};
use crate::playbook::yaml::Node;
use crate::value::{to_display, Value};

/// sudo flags knockplay's own `sudo -n -H` already covers.
const SUDO_FLAGS: [&str; 3] = ["-H", "-S", "-n"];

/// Checks the keywords of a task, block or play mapping. `label` names it in messages.
pub fn check(node: &Node, label: &str, is_play: bool) -> Result<(), ParseError> {
    let Some(map) = node.as_map() else {
        return Ok(());
    };
    for (k, v) in map {
        let value = v.to_value();
        let literal = match &value {
            Value::String(s) if s.contains("{{") => None,
            other => Some(other),
        };
        let refuse = |why: String| Err(err(v.where_(), format!("{label}: {why}")));
        match (k.as_str(), literal) {
            ("debugger", Some(d)) if to_display(d) != "never" => {
                return refuse(format!(
                    "debugger: {} is not supported by knockplay (only 'never')",
                    to_display(d)
                ))
            }
            ("become_exe", _) => {
                return refuse(
                    "become_exe is not supported by knockplay (it runs sudo or su from PATH)"
                        .into(),
                )
            }
            ("become_flags", Some(f)) => {
                let text = to_display(f);
                if let Some(bad) = text.split_whitespace().find(|w| !SUDO_FLAGS.contains(w)) {
                    return refuse(format!(
                        "become_flags '{bad}' is not supported by knockplay (it runs sudo -n -H)"
                    ));
                }
            }
            ("port", _) if !is_play => {
                return refuse(
                    "port on a task is not supported by knockplay; set ansible_port".into(),
                )
            }
            ("module_defaults", Some(Value::Object(m))) => {
                if let Some(g) = m.keys().find(|g| g.starts_with("group/")) {
                    return refuse(format!(
                        "module_defaults for the action group '{g}' are not supported by knockplay; name the modules"
                    ));
                }
            }
            ("module_defaults", Some(Value::Null)) => {}
            ("module_defaults", Some(other)) => {
                return refuse(format!(
                    "module_defaults must be a mapping of module names to arguments, found {}",
                    to_display(other)
                ))
            }
            _ => {}
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::playbook::yaml::load_str;

    fn checked(text: &str, is_play: bool) -> Result<(), String> {
        let n = load_str(text, "t.yml").unwrap().unwrap();
        check(&n, "task", is_play).map_err(|e| e.to_string())
    }

    #[test]
    fn refuses_what_it_would_ignore() {
        assert!(checked("debugger: never\nbecome_flags: -H -S -n\nconnection: local\nmodule_defaults: {file: {mode: '0644'}}", false).is_ok());
        for (text, want) in [
            (
                "debugger: on_failed",
                "t.yml:1:1: task: debugger: on_failed is not supported",
            ),
            ("become_exe: /opt/sudo", "become_exe is not supported"),
            ("become_flags: -i", "become_flags '-i' is not supported"),
            ("port: 2222", "port on a task is not supported"),
            (
                "module_defaults: {group/aws: {region: x}}",
                "action group 'group/aws'",
            ),
        ] {
            let e = checked(text, false).unwrap_err();
            assert!(e.contains(want), "{text}: {e}");
        }
        assert!(checked("port: 2222", true).is_ok());
    }
}
