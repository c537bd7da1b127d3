//! Walks every module, remote and control: each has a well-formed declaration, and a parameter it
//! does not declare is refused with a message naming the module and the closest declared name.

use super::control_specs::CONTROL;
use super::params::{Spec, Support};
use super::registry;
use crate::playbook::keywords::edit_distance;
use crate::value::{Value, Vars};

fn all_specs() -> Vec<&'static Spec> {
    let mut v: Vec<&'static Spec> = CONTROL.to_vec();
    v.extend(registry().iter().map(|m| m.spec()));
    v
}

/// `name` with one letter changed so that it is not a declared name or alias.
fn typo(spec: &Spec, name: &str) -> Option<String> {
    let chars: Vec<char> = name.chars().collect();
    for i in (0..chars.len()).rev() {
        for c in ['q', 'z', 'x'] {
            if chars[i] == c {
                continue;
            }
            let mut t = chars.clone();
            t[i] = c;
            let t: String = t.into_iter().collect();
            if spec.param(&t).is_none() {
                return Some(t);
            }
        }
    }
    None
}

#[test]
fn every_module_has_a_well_formed_declaration() {
    let specs = all_specs();
    let mut names: Vec<&str> = specs.iter().map(|s| s.module).collect();
    let n = names.len();
    names.sort_unstable();
    names.dedup();
    assert_eq!(names.len(), n, "a module is declared twice");
    for want in [
        "debug",
        "set_fact",
        "assert",
        "fail",
        "meta",
        "include_vars",
        "setup",
        "gather_facts",
        "wait_for_connection",
        "pause",
        "include_tasks",
        "import_tasks",
        "include_role",
        "import_role",
        "import_playbook",
        "include",
    ] {
        assert!(names.contains(&want), "control module {want} has no spec");
    }
    assert_eq!(registry().len() + CONTROL.len(), n);
    let problems: Vec<String> = specs.iter().flat_map(|s| s.problems()).collect();
    assert!(problems.is_empty(), "{problems:#?}");
}

#[test]
fn an_undeclared_parameter_names_the_module_and_the_closest_declared_one() {
    for spec in all_specs() {
        if spec.any_params {
            let mut args = Vars::new();
            args.insert("any_variable_name".into(), Value::from(1));
            assert!(spec.validate(&args).is_ok(), "{}", spec.module);
            continue;
        }
        let readable = spec
            .all_params()
            .filter(|p| !matches!(p.support, Support::Refused(_)));
        for p in readable {
            let Some(bad) = typo(spec, p.name) else {
                continue;
            };
            let mut args = Vars::new();
            args.insert(bad.clone(), Value::from("x"));
            let e = spec.validate(&args).unwrap_err();
            assert!(
                e.starts_with(&format!(
                    "unsupported parameter '{bad}' for module {}.",
                    spec.module
                )),
                "{e}"
            );
            // The suggestion is a declared name at the typo's distance (one letter), which is
            // this parameter unless another declared name is equally close.
            let suggested = e
                .split("Did you mean '")
                .nth(1)
                .and_then(|s| s.strip_suffix("'?"))
                .unwrap_or_else(|| panic!("no suggestion for {bad}: {e}"));
            assert!(spec.param(suggested).is_some(), "{e}");
            assert!(
                suggested == p.name || edit_distance(suggested, &bad) == 1,
                "{e}"
            );
        }
        if !spec.free_form {
            let mut args = Vars::new();
            args.insert("_raw_params".into(), Value::from("text"));
            let e = spec.validate(&args).unwrap_err();
            assert!(e.contains("does not take free-form text"), "{e}");
        }
    }
}

#[test]
fn refused_parameters_are_errors_that_say_why() {
    for spec in all_specs() {
        for p in spec.all_params() {
            if let Support::Refused(why) = p.support {
                let mut args = Vars::new();
                args.insert(p.name.into(), Value::from("x"));
                let e = spec.validate(&args).unwrap_err();
                assert_eq!(
                    e,
                    format!(
                        "{}: parameter '{}' is not supported by knockplay ({why})",
                        spec.module, p.name
                    )
                );
            }
        }
    }
}

#[test]
fn names_that_become_command_words_cannot_be_options() {
    let cases: &[(&str, Value)] = &[
        ("user", serde_json::json!({"name": "-o"})),
        ("group", serde_json::json!({"name": "--help"})),
        (
            "apt",
            serde_json::json!({"name": ["curl", "-oDebug::pkgProblemResolver=1"]}),
        ),
        ("package", serde_json::json!({"name": "-y"})),
        (
            "service",
            serde_json::json!({"name": "-x", "state": "started"}),
        ),
        (
            "copy",
            serde_json::json!({"dest": "/x", "content": "", "owner": "-R"}),
        ),
        (
            "file",
            serde_json::json!({"path": "/x", "group": "--reference=/etc/shadow"}),
        ),
    ];
    for (module, args) in cases {
        let spec = registry()
            .iter()
            .find(|m| m.spec().module == *module)
            .map(|m| m.spec())
            .unwrap_or_else(|| panic!("no module {module}"));
        let args: Vars = args.as_object().cloned().unwrap_or_default();
        let err = spec.check_values(&args).unwrap_err();
        assert!(err.contains("must not start with '-'"), "{module}: {err}");
    }
    // A name with a dash elsewhere is fine.
    let user = registry()
        .iter()
        .find(|m| m.spec().module == "user")
        .unwrap();
    let ok: Vars = serde_json::json!({"name": "deploy-bot"})
        .as_object()
        .cloned()
        .unwrap();
    assert!(user.spec().check_values(&ok).is_ok());
}
