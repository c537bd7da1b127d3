//! `json_query` (community.general): a JMESPath expression applied to a value, by the jmespath
//! project's Rust implementation. The expression comes from the playbook; the data may come from
//! a target, and is only read.

use super::{from_json_value, invalid, to_json_value};
use minijinja::{Environment, Error, Value};

/// Register this file's filters on `env`.
pub(super) fn register(env: &mut Environment<'static>) {
    env.add_filter("json_query", json_query);
}

fn json_query(v: Value, expr: String) -> Result<Value, Error> {
    let data = to_json_value(&v)?;
    let compiled = jmespath::compile(&expr)
        .map_err(|e| invalid(format!("JMESPathError in json_query filter plugin:\n{e}")))?;
    let found = compiled.search(data).map_err(|e| {
        invalid(format!(
            "Error in jmespath.search in json_query filter plugin:\n{e}"
        ))
    })?;
    let json = serde_json::to_value(&*found).map_err(|e| invalid(format!("json_query: {e}")))?;
    Ok(from_json_value(&json))
}

#[cfg(test)]
mod tests {
    fn render(template: &str) -> Result<String, String> {
        let mut env = minijinja::Environment::new();
        super::super::register(&mut env);
        env.render_str(template, ()).map_err(|e| e.to_string())
    }

    #[test]
    fn jmespath_queries_as_community_general() {
        let data = "{% set d = {'domains': [{'name': 'a', 'srv': [{'p': 1}, {'p': 2}]}, {'name': 'b', 'srv': []}]} %}";
        let cases = [
            ("{{ d | json_query('domains[*].name') }}", "[\"a\", \"b\"]"),
            (
                "{{ d | json_query(\"domains[?name=='a'].srv[].p\") }}",
                "[1, 2]",
            ),
            (
                "{{ d | json_query('domains[0].{n: name}') }}",
                "{\"n\": \"a\"}",
            ),
            ("{{ d | json_query('length(domains)') }}", "2"),
            ("{{ d | json_query('nope') is none }}", "True"),
        ];
        for (t, want) in cases {
            assert_eq!(render(&format!("{data}{t}")).as_deref(), Ok(want), "{t}");
        }
        assert!(render("{{ {} | json_query('[') }}")
            .unwrap_err()
            .contains("JMESPathError"));
    }
}
