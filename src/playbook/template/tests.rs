//! Table tests for the templating engine: rendering, types, undefined handling, filters, tests.

use super::*;
use serde_json::json;

fn vars() -> Vars {
    match json!({
        "name": "web",
        "port": 8080,
        "ratio": 0.5,
        "flag": true,
        "off": false,
        "empty": "",
        "nothing": null,
        "str_false": "False",
        "str_no": "no",
        "str_yes": "yes",
        "zero_str": "0",
        "pkgs": ["nginx", "curl", "git"],
        "nums": [3, 1, 2],
        "user": {"name": "deploy", "uid": 1001, "groups": ["sudo", "adm"]},
        "users": [
            {"name": "alice", "admin": true, "shell": "/bin/bash"},
            {"name": "bob", "admin": false, "shell": "/bin/sh"}
        ],
        "base": "/srv/app",
        "url": "http://{{ name }}:{{ port }}/",
        "nested_tpl": {"path": "{{ base }}/conf", "list": ["{{ port }}"]},
        "loop_a": "{{ loop_b }}",
        "loop_b": "{{ loop_a }}",
        "bad_ref": "{{ missing_inner }}",
        "result_changed": {"changed": true, "failed": false, "rc": 0, "stdout": "ok"},
        "result_failed": {"changed": false, "failed": true, "rc": 1},
        "result_skipped": {"changed": false, "skipped": true},
        "result_loop": {"changed": false, "results": [{"changed": false}, {"changed": true}]},
        "csv": "a,b,,c",
        "path": "/etc/nginx/sites-available/default.conf",
        "text": "hello world",
        "version": "1.18.0",
        "hostvars": {"h1": {"ansible_host": "10.0.0.1", "x": "{{ not_rendered }}"},
                     "h2": {"ansible_host": "10.0.0.2"}},
        "groups": {"web": ["h1", "h2"], "all": ["h1", "h2"]},
        "item": {"key": "k1", "value": "v1"},
        "multi": "line1\nline2\n",
        "dict_a": {"a": 1, "n": {"x": 1, "l": [1]}},
        "dict_b": {"b": 2, "n": {"y": 2, "l": [2]}},
        "spaced": "  padded  ",
        "mode": "0644"
    }) {
        Value::Object(mut m) => {
            // The templates above stand for the author's variables (play vars, inventory).
            mark_author_vars(&mut m);
            m
        }
        _ => unreachable!(),
    }
}

fn render(s: &str) -> Result<Value, TemplateError> {
    Templar::new().render_str(s, &vars())
}

#[test]
fn plain_strings_are_untouched() {
    let t = Templar::new();
    for s in ["", "plain", "a } b {", "50%", "{ not: jinja }", "$HOME {x}"] {
        assert_eq!(t.render_str(s, &vars()).unwrap(), json!(s));
    }
}

#[test]
fn renders_to_strings_and_typed_values() {
    let cases: &[(&str, Value)] = &[
        ("{{ name }}", json!("web")),
        ("{{ port }}", json!(8080)),
        ("{{ ratio }}", json!(0.5)),
        ("{{ flag }}", json!(true)),
        ("{{ pkgs }}", json!(["nginx", "curl", "git"])),
        (
            "{{ user }}",
            json!({"name": "deploy", "uid": 1001, "groups": ["sudo", "adm"]}),
        ),
        ("{{nothing}}", json!(null)),
        ("{{- port -}}", json!(8080)),
        ("{{ port + 1 }}", json!(8081)),
        ("{{ pkgs | length }}", json!(3)),
        ("{{ port > 80 }}", json!(true)),
        ("{{ user.groups[0] }}", json!("sudo")),
        ("{{ user['name'] }}", json!("deploy")),
        ("port={{ port }}", json!("port=8080")),
        ("{{ name }}-{{ port }}", json!("web-8080")),
        ("{{ flag }} {{ off }}", json!("True False")),
        ("x{{ nothing }}y", json!("xy")),
        ("{{ pkgs }}!", json!("['nginx', 'curl', 'git']!")),
        // Text that reads as a Python list or dict becomes one, as in Ansible.
        ("{{ user.groups }} ", json!(["sudo", "adm"])),
        ("[{{ 5 }}]", json!([5])),
        ("{{ 'Tr' }}ue", json!(true)),
        ("[{{ 5 }}] tail", json!("[5] tail")),
        ("{{ ratio }}/{{ 2.0 }}", json!("0.5/2.0")),
        (" {{ port }}", json!(" 8080")),
        ("{% if flag %}on{% else %}off{% endif %}", json!("on")),
        (
            "{% for p in pkgs %}{{ p }},{% endfor %}",
            json!("nginx,curl,git,"),
        ),
        ("{{ multi }}", json!("line1\nline2\n")),
        (
            "a\n{% if flag %}\nyes\n{% endif %}\nb\n",
            json!("a\nyes\nb\n"),
        ),
        ("{# comment #}x", json!("x")),
        ("a{{ 'x' if off }}b", json!("ab")),
        ("{{ 'x' if off }}", json!("")),
        ("{{ 'x' if flag }}", json!("x")),
        ("{{ {'a': {'x': 1}} }}", json!({"a": {"x": 1}})),
        (
            "{{ {'a': {'x': port}} | combine({'a': {'y': 2}}, recursive=True) }}",
            json!({"a": {"x": 8080, "y": 2}}),
        ),
        ("{{ '}}' }}", json!("}}")),
        ("{{ \"a}}b\" ~ name }}", json!("a}}bweb")),
        ("{{ 1 }}{{ 2 }}", json!("12")),
        ("{{ {'k': 1} }} {{ 2 }}", json!("{'k': 1} 2")),
        ("a{{ 'x' if flag }}b", json!("axb")),
        ("{{ '{{' }}", json!("{{")),
        ("{% raw %}{{ not }}{% endraw %}", json!("{{ not }}")),
        ("{{ url }}", json!("http://web:8080/")),
        ("{{ nested_tpl.path }}", json!("/srv/app/conf")),
        ("{{ nested_tpl.list }}", json!([8080])),
        ("{{ hostvars['h1'].ansible_host }}", json!("10.0.0.1")),
        ("{{ hostvars.h1.x }}", json!("{{ not_rendered }}")),
        ("{{ [1] | ansible.builtin.to_json }}", json!("[1]")),
        (
            "{{ 'a' is ansible.builtin.string and 'b' is not ansible.builtin.number }}",
            json!(true),
        ),
        (
            "{{ {'a': 1} | community.general.json_query('a') }}",
            json!(1),
        ),
        (
            "x ansible.builtin.y {{ 1 }}",
            json!("x ansible.builtin.y 1"),
        ),
        ("{{ groups.web | join(',') }}", json!("h1,h2")),
        ("{{ omit }}", json!(OMIT)),
        ("{{ ansible_managed }}", json!("Ansible managed")),
        ("{{ [1, 'a', none] }}", json!([1, "a", null])),
        ("{{ {'k': port} }}", json!({"k": 8080})),
    ];
    let t = Templar::new();
    for (input, want) in cases {
        assert_eq!(
            &t.render_str(input, &vars()).unwrap(),
            want,
            "input {input:?}"
        );
    }
}

#[test]
fn render_value_recurses_and_drops_omit() {
    let t = Templar::new();
    let v = json!({
        "dest": "{{ base }}/x",
        "{{ name }}_key": "{{ port }}",
        "list": ["{{ name }}", 1, {"deep": "{{ flag }}"}],
        "mode": "{{ mode | default(omit) }}",
        "owner": "{{ owner | default(omit) }}",
        "n": 5
    });
    let got = t.render_value(&v, &vars()).unwrap();
    assert_eq!(
        got,
        json!({
            "dest": "/srv/app/x",
            "web_key": 8080,
            "list": ["web", 1, {"deep": true}],
            "mode": "0644",
            "n": 5
        })
    );
}

#[test]
fn undefined_variables_are_named() {
    let cases: &[(&str, &str)] = &[
        ("{{ foo }}", "foo"),
        ("x {{ foo }} y", "foo"),
        ("{{ name }} {{ foo }}", "foo"),
        ("{{ foo.bar }}", "foo"),
        ("{{ user.missing }}", "user.missing"),
        ("{{ user.missing.deeper }}", "user.missing"),
        ("{{ user.missing }}/x", "user.missing"),
        ("{{ foo | upper }}", "foo"),
        ("{% if foo %}x{% endif %}", "foo"),
        ("{% for x in foo %}{{ x }}{% endfor %}", "foo"),
        ("{{ bad_ref }}", "missing_inner"),
        ("{{ name ~ missing_var }}", "missing_var"),
        ("{{ foo | mandatory }}", "foo"),
        ("{{ user.nope | default(nope2.x) }}", "nope2"),
    ];
    let t = Templar::new();
    for (input, name) in cases {
        let err = t.render_str(input, &vars()).unwrap_err();
        assert_eq!(err.undefined_name(), Some(*name), "{input:?}: {err}");
        assert!(
            err.to_string()
                .starts_with(&format!("'{name}' is undefined")),
            "{err}"
        );
    }
}

#[test]
fn undefined_error_shows_where() {
    let t = Templar::new();
    let err = t.render_str("dest={{ foo }}/x", &vars()).unwrap_err();
    assert_eq!(
        err.to_string(),
        "'foo' is undefined in \"dest={{ foo }}/x\""
    );
    let src = "line one\nline {{ two }}\n";
    let err = t
        .render_template(src, "templates/app.conf.j2", &vars())
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "'two' is undefined in templates/app.conf.j2 line 2"
    );
}

#[test]
fn definedness_checks_and_defaults() {
    let cases: &[(&str, Value)] = &[
        ("{{ foo | default('x') }}", json!("x")),
        ("{{ foo | d('x') }}", json!("x")),
        ("{{ foo|d }}", json!("")),
        ("{{ foo.bar | default('x') }}", json!("x")),
        ("{{ foo.bar.baz | default('deep') }}", json!("deep")),
        ("{{ user.missing | default(5) }}", json!(5)),
        ("{{ empty | default('x') }}", json!("")),
        ("{{ empty | default('x', true) }}", json!("x")),
        ("{{ nothing | default('x') }}", json!(null)),
        ("{{ nothing | default('x', true) }}", json!("x")),
        ("{{ name | default('x') }}", json!("web")),
        ("{{ foo is defined }}", json!(false)),
        ("{{ foo is undefined }}", json!(true)),
        ("{{ name is defined }}", json!(true)),
        ("{{ foo.bar is defined }}", json!(false)),
        ("{{ user.name is defined }}", json!(true)),
        ("{{ user.nope is defined }}", json!(false)),
        ("{{ nothing is none }}", json!(true)),
        ("{{ (foo is defined) and foo }}", json!(false)),
        ("{{ foo.bar if foo is defined else 'none' }}", json!("none")),
        ("{{ lst | default([]) | length }}", json!(0)),
        ("{{ bad_ref | default('fallback') }}", json!("fallback")),
        ("{{ bad_ref is defined }}", json!(false)),
    ];
    let t = Templar::new();
    for (input, want) in cases {
        assert_eq!(
            &t.render_str(input, &vars()).unwrap(),
            want,
            "input {input:?}"
        );
    }
}

#[test]
fn definedness_retry_still_refuses_to_print_undefined() {
    let t = Templar::new();
    let err = t
        .render_str("{{ foo.bar is defined }} {{ foo.bar }}", &vars())
        .unwrap_err();
    assert_eq!(err.undefined_name(), Some("foo"), "{err}");
}

#[test]
fn recursive_variables_are_detected() {
    let err = render("{{ loop_a }}").unwrap_err();
    assert!(matches!(err, TemplateError::Recursion { .. }), "{err}");
    assert!(err.to_string().contains("recursive loop"), "{err}");
}

#[test]
fn conditions() {
    let cases: &[(&str, bool)] = &[
        ("flag", true),
        ("off", false),
        ("not off", true),
        ("port == 8080", true),
        ("port > 9000", false),
        ("name == 'web' and flag", true),
        ("'nginx' in pkgs", true),
        ("'apache' not in pkgs", true),
        ("pkgs | length > 2", true),
        ("foo is defined", false),
        ("foo is not defined", true),
        ("foo is undefined or foo", true),
        ("foo is defined and foo.bar == 1", false),
        ("user.missing is defined", false),
        ("str_false", false),
        ("str_no", false),
        ("str_yes", true),
        ("'x' if off", false),
        ("str_false | bool", false),
        ("str_yes | bool", true),
        ("zero_str | bool", false),
        ("empty", false),
        ("nothing", false),
        ("pkgs", true),
        ("result_changed is changed", true),
        ("result_changed is not failed", true),
        ("result_failed is failed", true),
        ("result_failed is succeeded", false),
        ("result_changed is success", true),
        ("result_skipped is skipped", true),
        ("result_changed is skipped", false),
        ("result_loop is changed", true),
        ("result_changed.rc == 0", true),
        ("'ok' in result_changed.stdout", true),
        ("yes", true),
        ("True", true),
        ("no", false),
        ("false", false),
        ("", true),
        ("{{ flag }}", true),
        ("{{ off }}", false),
        ("{{ str_false }}", false),
        ("{{ port }} == 8080", true),
        ("ansible_managed is defined", true),
        ("version is version('1.10', '>=')", true),
        ("version is version('2.0', '<')", true),
        ("version is version_compare('1.18.0', '==')", true),
        ("text is match('hello')", true),
        ("text is match('world')", false),
        ("text is search('world')", true),
        ("text is regex('^h.*d$')", true),
        ("pkgs is contains('git')", true),
        ("['curl'] is subset(pkgs)", true),
        ("pkgs is superset(['git', 'nginx'])", true),
        ("name is string", true),
        ("port is number", true),
        ("user is mapping", true),
        ("pkgs is sequence", true),
        ("user.name.startswith('dep')", true),
        ("path.endswith(('.conf', '.cfg'))", true),
    ];
    let t = Templar::new();
    for (expr, want) in cases {
        assert_eq!(t.eval_bool(expr, &vars()).unwrap(), *want, "when: {expr}");
    }
}

#[test]
fn condition_values_and_errors() {
    let t = Templar::new();
    let v = vars();
    assert!(t.eval_condition(&json!(true), &v).unwrap());
    assert!(!t.eval_condition(&json!(false), &v).unwrap());
    assert!(t.eval_condition(&json!(null), &v).unwrap());
    assert!(!t.eval_condition(&json!(0), &v).unwrap());
    assert!(t
        .eval_condition(&json!(["flag", "port == 8080"]), &v)
        .unwrap());
    assert!(!t.eval_condition(&json!(["flag", "off"]), &v).unwrap());
    assert!(t.eval_condition(&json!({"a": 1}), &v).is_err());
    let err = t.eval_bool("my_flg == 'x'", &v).unwrap_err();
    assert_eq!(err.undefined_name(), Some("my_flg"), "{err}");
    let err = t.eval_bool("not typo", &v).unwrap_err();
    assert_eq!(err.undefined_name(), Some("typo"), "{err}");
    let err = t.eval_bool("name is failed", &v).unwrap_err();
    assert!(err.to_string().contains("expects a dictionary"), "{err}");
}

#[test]
fn syntax_errors_name_the_template() {
    let t = Templar::new();
    for bad in [
        "{{ name ",
        "{{ name | }}",
        "{% if x %}no end",
        "{{ 1 +* 2 }}",
    ] {
        let err = t.render_str(bad, &vars()).unwrap_err();
        assert!(
            matches!(err, TemplateError::Syntax { .. }),
            "{bad}: {err:?}"
        );
        assert!(err.to_string().contains(bad.trim()), "{bad}: {err}");
    }
    let err = t.eval_bool("port ==", &vars()).unwrap_err();
    assert!(matches!(err, TemplateError::Syntax { .. }), "{err:?}");
    assert!(err.to_string().contains("port =="), "{err}");
    let err = t
        .render_str("{{ name | no_such_filter }}", &vars())
        .unwrap_err();
    assert!(
        err.to_string().contains("no_such_filter") || err.to_string().contains("unknown filter"),
        "{err}"
    );
}

#[test]
fn ansible_filters() {
    let cases: &[(&str, Value)] = &[
        ("{{ 'yes' | bool }}", json!(true)),
        ("{{ 'On' | bool }}", json!(true)),
        ("{{ '1' | bool }}", json!(true)),
        ("{{ 'TRUE' | bool }}", json!(true)),
        ("{{ 'no' | bool }}", json!(false)),
        ("{{ 'False' | bool }}", json!(false)),
        ("{{ 'whatever' | bool }}", json!(false)),
        ("{{ 1 | bool }}", json!(true)),
        ("{{ 0 | bool }}", json!(false)),
        ("{{ true | bool }}", json!(true)),
        ("{{ '42' | int }}", json!(42)),
        ("{{ ' 42 ' | int }}", json!(42)),
        ("{{ '4.7' | int }}", json!(4)),
        ("{{ 'abc' | int }}", json!(0)),
        ("{{ 'abc' | int(7) }}", json!(7)),
        ("{{ '0x1f' | int(0, 16) }}", json!(31)),
        ("{{ 3.9 | int }}", json!(3)),
        ("{{ '-5' | int }}", json!(-5)),
        ("{{ '2.5' | float }}", json!(2.5)),
        ("{{ 'x' | float }}", json!(0.0)),
        ("{{ port | string }}", json!("8080")),
        ("{{ flag | string }}", json!("True")),
        ("{{ pkgs | string }}", json!("['nginx', 'curl', 'git']")),
        ("{{ pkgs | length }}", json!(3)),
        ("{{ text | count }}", json!(11)),
        ("{{ pkgs | join(', ') }}", json!("nginx, curl, git")),
        ("{{ name | upper }}", json!("WEB")),
        ("{{ 'ABC' | lower }}", json!("abc")),
        ("{{ text | capitalize }}", json!("Hello world")),
        ("{{ spaced | trim }}", json!("padded")),
        ("{{ text | replace('world', 'there') }}", json!("hello there")),
        ("{{ user | to_json }}", json!(r#"{"name": "deploy", "uid": 1001, "groups": ["sudo", "adm"]}"#)),
        ("{{ {'b': 1, 'a': [1, 2]} | to_nice_json }}", json!("{\n    \"a\": [\n        1,\n        2\n    ],\n    \"b\": 1\n}")),
        ("{{ {'b': 1, 'a': 2} | to_nice_json(indent=2) }}", json!("{\n  \"a\": 2,\n  \"b\": 1\n}")),
        ("{{ {'a': [1, 2]} | to_yaml }}", json!("a: [1, 2]\n")),
        ("{{ {'a': 1, 'b': 'x'} | to_yaml }}", json!("{a: 1, b: x}\n")),
        ("{{ {'a': [1, 2]} | to_nice_yaml }}", json!("a:\n- 1\n- 2\n")),
        ("{{ {'a': [{'b': 1}]} | to_nice_yaml }}", json!("a:\n-   b: 1\n")),
        ("{{ '0x1f' | int(base=16) }}", json!(31)),
        ("{{ 'z' | int(default=9) }}", json!(9)),
        ("{{ {'a': {'b': 'c'}} | to_nice_yaml(indent=2) }}", json!("a:\n  b: c\n")),
        ("{{ '{\"a\": [1, true]}' | from_json }}", json!({"a": [1, true]})),
        ("{{ 'a: 1\nb: [x, y]' | from_yaml }}", json!({"a": 1, "b": ["x", "y"]})),
        ("{{ text | list | first }}", json!("h")),
        ("{{ user | list }}", json!(["name", "uid", "groups"])),
        ("{{ path | dirname }}", json!("/etc/nginx/sites-available")),
        ("{{ path | basename }}", json!("default.conf")),
        ("{{ path | splitext }}", json!(["/etc/nginx/sites-available/default", ".conf"])),
        ("{{ '.bashrc' | splitext }}", json!([".bashrc", ""])),
        ("{{ 'a.tar.gz' | splitext }}", json!(["a.tar", ".gz"])),
        ("{{ ['/etc', 'nginx', 'x.conf'] | path_join }}", json!("/etc/nginx/x.conf")),
        ("{{ 'ansible' | regex_replace('^a.*i(.*)$', 'a\\1') }}", json!("able")),
        ("{{ 'foobar' | regex_replace('^f.*o(.*)$', '\\1') }}", json!("bar")),
        ("{{ 'localhost:80' | regex_replace('^(?P<host>.+):(?P<port>\\d+)$', '\\g<host>, \\g<port>') }}", json!("localhost, 80")),
        ("{{ 'a-b-c' | regex_replace('-', '_', count=1) }}", json!("a_b-c")),
        ("{{ 'ABC' | regex_replace('b', 'x', ignorecase=true) }}", json!("AxC")),
        ("{{ 'cost $5' | regex_replace('cost', 'price') }}", json!("price $5")),
        ("{{ 'x' | regex_replace('x', '$1') }}", json!("$1")),
        ("{{ 'server1/database42' | regex_search('database[0-9]+') }}", json!("database42")),
        ("{{ 'foo' | regex_search('bar') }}", json!(null)),
        ("{{ 'server1/database42' | regex_search('server([0-9]+)/database([0-9]+)', '\\1', '\\2') }}", json!(["1", "42"])),
        ("{{ 'a1b22c333' | regex_findall('[0-9]+') }}", json!(["1", "22", "333"])),
        ("{{ 'k1=v1 k2=v2' | regex_findall('(\\w+)=(\\w+)') }}", json!([["k1", "v1"], ["k2", "v2"]])),
        ("{{ '^f.*o(.*)$' | regex_escape }}", json!("\\^f\\.\\*o\\(\\.\\*\\)\\$")),
        ("{{ flag | ternary('yes', 'no') }}", json!("yes")),
        ("{{ off | ternary('yes', 'no') }}", json!("no")),
        ("{{ nothing | ternary('yes', 'no', 'null') }}", json!("null")),
        ("{{ (port == 8080) | ternary(1, 2) }}", json!(1)),
        ("{{ 'line1\nline2' | indent(2) }}", json!("line1\n  line2")),
        ("{{ 'line1\nline2' | indent(4, true) }}", json!("    line1\n    line2")),
        ("{{ 'hello' | b64encode }}", json!("aGVsbG8=")),
        ("{{ 'aGVsbG8=' | b64decode }}", json!("hello")),
        ("{{ 'héllo wörld' | b64encode | b64decode }}", json!("héllo wörld")),
        ("{{ text | quote }}", json!("'hello world'")),
        ("{{ \"it's\" | quote }}", json!("'it'\"'\"'s'")),
        ("{{ name | quote }}", json!("web")),
        ("{{ name | mandatory }}", json!("web")),
        ("{{ {'a': 1, 'b': 2} | dict2items }}", json!([{"key": "a", "value": 1}, {"key": "b", "value": 2}])),
        ("{{ {'a': 1} | dict2items(key_name='k', value_name='v') }}", json!([{"k": "a", "v": 1}])),
        ("{{ [{'key': 'a', 'value': 1}, {'key': 'b', 'value': 2}] | items2dict }}", json!({"a": 1, "b": 2})),
        ("{{ [{'n': 'a', 'v': 1}] | items2dict(key_name='n', value_name='v') }}", json!({"a": 1})),
        ("{{ dict_a | combine(dict_b) }}", json!({"a": 1, "n": {"y": 2, "l": [2]}, "b": 2})),
        ("{{ dict_a | combine(dict_b, recursive=true) }}", json!({"a": 1, "n": {"x": 1, "l": [2], "y": 2}, "b": 2})),
        ("{{ dict_a | combine(dict_b, recursive=true, list_merge='append') }}", json!({"a": 1, "n": {"x": 1, "l": [1, 2], "y": 2}, "b": 2})),
        ("{{ {'a': 1} | combine({'b': 2}, {'a': 3}) }}", json!({"a": 3, "b": 2})),
        ("{{ [{'a': 1}, {'b': 2}] | combine }}", json!({"a": 1, "b": 2})),
        ("{{ pkgs | first }}", json!("nginx")),
        ("{{ pkgs | last }}", json!("git")),
        ("{{ [1, 2, 1, 3] | unique }}", json!([1, 2, 3])),
        ("{{ nums | sort }}", json!([1, 2, 3])),
        ("{{ nums | min }}", json!(1)),
        ("{{ nums | max }}", json!(3)),
        ("{{ nums | sum }}", json!(6)),
        ("{{ users | selectattr('admin') | map(attribute='name') | list }}", json!(["alice"])),
        ("{{ users | rejectattr('admin') | map(attribute='name') | list }}", json!(["bob"])),
        ("{{ users | selectattr('shell', 'equalto', '/bin/sh') | map(attribute='name') | first }}", json!("bob")),
        ("{{ nums | select('odd') | list }}", json!([3, 1])),
        ("{{ nums | reject('odd') | list }}", json!([2])),
        ("{{ pkgs | map('upper') | list }}", json!(["NGINX", "CURL", "GIT"])),
        ("{{ [[1, [2]], [3], none, 4] | flatten }}", json!([1, 2, 3, 4])),
        ("{{ [[1, [2]], [3]] | flatten(levels=1) }}", json!([1, [2], 3])),
        ("{{ ['h1', 'h2'] | map('extract', hostvars, 'ansible_host') | list }}", json!(["10.0.0.1", "10.0.0.2"])),
        ("{{ 'h1' | extract(hostvars) }}", json!({"ansible_host": "10.0.0.1", "x": "{{ not_rendered }}"})),
        ("{{ [1, 2] | union([2, 3]) }}", json!([1, 2, 3])),
        ("{{ [1, 2, 3] | intersect([2, 3, 4]) }}", json!([2, 3])),
        ("{{ [1, 2, 3] | difference([2]) }}", json!([1, 3])),
        ("{{ [1, 2] | symmetric_difference([2, 3]) }}", json!([1, 3])),
        ("{{ csv | split(',') }}", json!(["a", "b", "", "c"])),
        ("{{ csv.split(',') }}", json!(["a", "b", "", "c"])),
        ("{{ 'a b  c' .split() }}", json!(["a", "b", "c"])),
        ("{{ 'k=v=w'.split('=', 1) }}", json!(["k", "v=w"])),
        ("{{ 'a.b.c'.rsplit('.', 1) }}", json!(["a.b", "c"])),
        ("{{ spaced.strip() }}", json!("padded")),
        ("{{ 'xxhixx'.strip('x') }}", json!("hi")),
        ("{{ name.upper() }}", json!("WEB")),
        ("{{ text.replace('l', 'L') }}", json!("heLLo worLd")),
        ("{{ ','.join(pkgs) }}", json!("nginx,curl,git")),
        ("{{ user.keys() | list }}", json!(["name", "uid", "groups"])),
        ("{{ user.get('uid') }}", json!(1001)),
        ("{{ user.get('nope', 'dflt') }}", json!("dflt")),
        ("{% for k, v in user.items() %}{{ k }}={{ v }};{% endfor %}", json!("name=deploy;uid=1001;groups=['sudo', 'adm'];")),
        ("{{ '{}-{}'.format(name, port) }}", json!("web-8080")),
        ("{{ '7'.zfill(3) }}", json!("007")),
        ("{{ port | type_debug }}", json!("int")),
        ("{{ user | type_debug }}", json!("dict")),
        ("{{ 'abc' | hash('sha256') }}", json!("ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")),
        ("{{ item.key }}={{ item.value }}", json!("k1=v1")),
        ("{{ user.uid | string | length }}", json!(4)),
        ("{{ '%s-%s' | format(name, port) }}", json!("web-8080")),
        ("{{ range(3) | list }}", json!([0, 1, 2])),
        ("{{ users | map(attribute='name') | join(' ') }}", json!("alice bob")),
        ("{{ multi.splitlines() }}", json!(["line1", "line2"])),
        ("{{ dict(['a', 'b'] | zip([1, 2])) }}", json!({"a": 1, "b": 2})),
        ("{{ dict(x=1) }}", json!({"x": 1})),
        ("{{ dict(user, uid=0) }}", json!({"name": "deploy", "uid": 0, "groups": ["sudo", "adm"]})),
        ("{{ [{'n': 'a', 'k': [1, 2]}, {'n': 'b', 'k': [3]}] | subelements('k') }}", json!([[{"n": "a", "k": [1, 2]}, 1], [{"n": "a", "k": [1, 2]}, 2], [{"n": "b", "k": [3]}, 3]])),
        ("{{ [{'n': 'a'}] | subelements('k', skip_missing=true) }}", json!([])),
        ("{{ 60 | random(seed=name) == 60 | random(seed=name) }}", json!(true)),
        ("{{ (60 | random) < 60 }}", json!(true)),
        ("{{ pkgs | random in pkgs }}", json!(true)),
    ];
    let t = Templar::new();
    for (input, want) in cases {
        match t.render_str(input, &vars()) {
            Ok(got) => assert_eq!(&got, want, "input {input:?}"),
            Err(e) => panic!("input {input:?}: {e}"),
        }
    }
}

#[test]
fn filter_errors_are_clear() {
    let cases: &[(&str, &str)] = &[
        (
            "{{ pkgs | dict2items }}",
            "dict2items requires a dictionary",
        ),
        ("{{ 'x' | regex_replace('(', 'y') }}", "regular expression"),
        ("{{ '{bad' | from_json }}", "from_json"),
        ("{{ 'x' | hash('whirlpool') }}", "unsupported hash type"),
        ("{{ foo | mandatory('set foo please') }}", "set foo please"),
        (
            "{{ lookup('dig', 'example.test') }}",
            "lookup plugin 'dig' is not supported",
        ),
        (
            "{{ lookup('file', '/nonexistent/knockplay/x') }}",
            "could not locate file",
        ),
        ("{{ [1] | combine({'a': 1}) }}", "combine"),
        (
            "{{ [{'n': 'a'}] | subelements('k') }}",
            "could not find 'k'",
        ),
        ("{{ dict([1, 2]) }}", "not iterable"),
        ("{{ dict([[1, 2, 3]]) }}", "(key, value) pair"),
        (
            "{{ users | subelements('shell') }}",
            "should point to a list",
        ),
    ];
    let t = Templar::new();
    for (input, needle) in cases {
        let err = t.render_str(input, &vars()).unwrap_err();
        assert!(err.to_string().contains(needle), "{input}: {err}");
    }
}

#[test]
fn lookups_env_and_file() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("files")).unwrap();
    std::fs::write(
        dir.path().join("files/key.pub"),
        "ssh-ed25519 AAAA test\n\n",
    )
    .unwrap();
    std::fs::write(dir.path().join("top.txt"), "top\n").unwrap();
    let mut v = vars();
    v.insert("playbook_dir".into(), json!(dir.path().to_str().unwrap()));
    let t = Templar::new();
    let r = |s: &str| t.render_str(s, &v).unwrap();
    assert_eq!(
        r("{{ lookup('file', 'key.pub') }}"),
        json!("ssh-ed25519 AAAA test")
    );
    assert_eq!(r("{{ lookup('file', 'top.txt') }}"), json!("top"));
    let abs = dir.path().join("top.txt");
    assert_eq!(
        r(&format!("{{{{ lookup('file', '{}') }}}}", abs.display())),
        json!("top")
    );
    assert_eq!(r("{{ query('file', 'top.txt') }}"), json!(["top"]));
    let path = std::env::var("PATH").unwrap_or_default();
    assert_eq!(r("{{ lookup('env', 'PATH') }}"), json!(path));
    assert_eq!(
        r("{{ lookup('env', 'KNOCKPLAY_SURELY_UNSET_VAR') }}"),
        json!("")
    );
    assert_eq!(
        r("{{ lookup('env', 'KNOCKPLAY_SURELY_UNSET_VAR', default='d') }}"),
        json!("d")
    );
}

#[test]
fn template_files_keep_layout() {
    let t = Templar::new();
    let src = "# {{ ansible_managed }}\nserver {\n{% for p in pkgs %}\n  pkg {{ p }};\n{% endfor %}\n  enabled {{ flag }};\n}\n";
    let out = t.render_template(src, "nginx.conf.j2", &vars()).unwrap();
    assert_eq!(
        out,
        "# Ansible managed\nserver {\n  pkg nginx;\n  pkg curl;\n  pkg git;\n  enabled True;\n}\n"
    );
    assert_eq!(
        t.render_template("no templating\n", "x", &vars()).unwrap(),
        "no templating\n"
    );
}

#[test]
fn shared_across_threads() {
    let t = std::sync::Arc::new(Templar::new());
    let handles: Vec<_> = (0..4)
        .map(|i| {
            let t = t.clone();
            std::thread::spawn(move || {
                let mut v = vars();
                v.insert("i".into(), json!(i));
                for _ in 0..50 {
                    assert_eq!(
                        t.render_str("{{ name }}-{{ i }}", &v).unwrap(),
                        json!(format!("web-{i}"))
                    );
                }
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
}

#[test]
fn bound_templar_and_render_args() {
    use crate::modules::Templater;
    let t = Templar::new();
    let v = vars();
    let b = BoundTemplar {
        templar: &t,
        vars: &v,
    };
    assert_eq!(
        b.render("port {{ port }}\n", "t.j2").unwrap(),
        "port 8080\n"
    );
    assert_eq!(
        b.render("{{ nope }}", "t.j2").unwrap_err(),
        "'nope' is undefined in \"t.j2\""
    );
    let args = match json!({"name": "{{ name }}", "mode": "{{ m | default(omit) }}", "{{ name }}_x": 1})
    {
        Value::Object(m) => m,
        _ => unreachable!(),
    };
    let got = t.render_args(&args, &v).unwrap();
    assert_eq!(Value::Object(got), json!({"name": "web", "web_x": 1}));
}

#[test]
fn eval_expr_is_typed() {
    let t = Templar::new();
    assert_eq!(t.eval_expr("pkgs | length", &vars()).unwrap(), json!(3));
    assert_eq!(
        t.eval_expr("pkgs", &vars()).unwrap(),
        json!(["nginx", "curl", "git"])
    );
    assert_eq!(t.eval_expr("user.name", &vars()).unwrap(), json!("deploy"));
    assert!(t.eval_expr("missing", &vars()).is_err());
}

#[test]
fn huge_lazy_results_are_refused_not_materialized() {
    // Found by the fuzzer: a sequence times 10^16 is lazy in minijinja; converting or printing
    // it must fail, not allocate exabytes or loop for ever.
    let t = Templar::new();
    let mut vars = Vars::new();
    vars.insert("l".into(), serde_json::json!([1, "two", null]));
    for (expr, text) in [
        ("3**33*3*l", "{{ [1] * 10**15 }}"),
        ("[[1] * 10**9]", "{{ {'a': [0] * 10**12} }}"),
    ] {
        let e = t.eval_expr(expr, &vars).unwrap_err().to_string();
        assert!(e.contains("more than 1000000 items"), "{expr}: {e}");
        let e = t.render_str(text, &vars).unwrap_err().to_string();
        assert!(e.contains("more than 1000000 items"), "{text}: {e}");
    }
    assert_eq!(
        t.eval_expr("[1] * 3", &vars).unwrap(),
        serde_json::json!([1, 1, 1])
    );
}

#[test]
fn lookups_vars_pipe_lines_password() {
    let dir = tempfile::tempdir().unwrap();
    let mut v = vars();
    v.insert("playbook_dir".into(), json!(dir.path().to_str().unwrap()));
    v.insert("data_tpl".into(), json!("{{ port }}"));
    let t = Templar::new();
    let r = |s: &str| t.render_str(s, &v);
    // vars: by computed name; the author's templates are rendered, data is not.
    assert_eq!(r("{{ lookup('vars', 'po' ~ 'rt') }}").unwrap(), json!(8080));
    assert_eq!(
        r("{{ lookup('vars', 'url') }}").unwrap(),
        json!("http://web:8080/")
    );
    assert_eq!(
        r("{{ lookup('vars', 'data_tpl') }}").unwrap(),
        json!("{{ port }}")
    );
    assert_eq!(
        r("{{ lookup('vars', 'nope', default='d') }}").unwrap(),
        json!("d")
    );
    let e = r("{{ lookup('vars', 'nope') }}").unwrap_err().to_string();
    assert!(e.contains("No variable found with this name: nope"), "{e}");
    // pipe and lines run in the playbook's directory.
    std::fs::write(dir.path().join("here.txt"), "a\nb\n").unwrap();
    assert_eq!(
        r("{{ lookup('pipe', 'cat here.txt') }}").unwrap(),
        json!("a\nb")
    );
    assert_eq!(
        r("{{ query('lines', 'cat here.txt') }}").unwrap(),
        json!(["a", "b"])
    );
    let e = r("{{ lookup('pipe', 'exit 3') }}").unwrap_err().to_string();
    assert!(e.contains("lookup_plugin.pipe(exit 3) returned 3"), "{e}");
    // password: generated once, stored 0600, then read back.
    let first = r("{{ lookup('password', 'creds/db length=12 chars=digits') }}").unwrap();
    let pw = first.as_str().unwrap().to_string();
    assert_eq!(pw.len(), 12);
    assert!(pw.chars().all(|c| c.is_ascii_digit()), "{pw}");
    let again = r("{{ lookup('password', 'creds/db length=12 chars=digits') }}").unwrap();
    assert_eq!(again, first);
    use std::os::unix::fs::PermissionsExt;
    let meta = std::fs::metadata(dir.path().join("creds/db")).unwrap();
    assert_eq!(meta.permissions().mode() & 0o777, 0o600);
    let other = r("{{ lookup('password', '/dev/null') }}").unwrap();
    assert_eq!(other.as_str().unwrap().len(), 20);
    // template: a file from templates/, rendered with the scope (nested variables too).
    std::fs::create_dir_all(dir.path().join("templates")).unwrap();
    std::fs::write(
        dir.path().join("templates/t.j2"),
        "{{ name }} at {{ url }}\n",
    )
    .unwrap();
    std::fs::write(
        dir.path().join("templates/self.j2"),
        "{{ lookup('template', 'self.j2') }}",
    )
    .unwrap();
    assert_eq!(
        r("{{ lookup('template', 't.j2') }}").unwrap(),
        json!("web at http://web:8080/\n")
    );
    let e = r("{{ lookup('template', 'self.j2') }}")
        .unwrap_err()
        .to_string();
    assert!(e.contains("nested more than"), "{e}");
    let e = r("{{ lookup('template', 'none.j2') }}")
        .unwrap_err()
        .to_string();
    assert!(e.contains("none.j2 could not be found"), "{e}");
}

#[test]
fn negative_slices_like_python() {
    let mut v = vars();
    v.insert("keyid".into(), json!("0123456789ABCDEF"));
    let t = Templar::new();
    for (src, want) in [
        ("{{ keyid[-8:] }}", json!("89ABCDEF")),
        ("{{ keyid[-8:] | lower }}", json!("89abcdef")),
        ("{{ keyid[:-14] }}", json!("01")),
        ("{{ pkgs[-1] }}", json!("git")),
        ("x{{ keyid[-2:] }}", json!("xEF")),
    ] {
        assert_eq!(
            t.render_str(src, &v)
                .unwrap_or_else(|e| panic!("{src}: {e}")),
            want,
            "{src}"
        );
    }
}
