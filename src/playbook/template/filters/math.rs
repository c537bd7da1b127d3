//! Ansible's math and combinatorics filters: `log`, `pow`, `root`, `permutations`,
//! `combinations`, `product`, `zip`, `zip_longest`, `shuffle`, `human_readable`,
//! `human_to_bytes`, and the string `split`.

use super::{defined, from_json_value, invalid, py_str, to_json_value};
use crate::value::Value as Json;
use minijinja::value::{Kwargs, Rest};
use minijinja::{Environment, Error, Value};

/// Most items a combinatoric filter may produce (a template must not allocate without bound).
const MAX_ITEMS: usize = 1_000_000;

/// Register this file's filters on `env`.
pub(super) fn register(env: &mut Environment<'static>) {
    env.add_filter("log", log);
    env.add_filter("pow", pow);
    env.add_filter("root", root);
    env.add_filter("permutations", permutations);
    env.add_filter("combinations", combinations);
    env.add_filter("product", product);
    env.add_filter("zip", zip);
    env.add_filter("zip_longest", zip_longest);
    env.add_filter("shuffle", shuffle);
    env.add_filter("human_readable", human_readable);
    env.add_filter("human_to_bytes", human_to_bytes);
    env.add_filter("split", split);
}

fn number(v: &Value, filter: &str) -> Result<f64, Error> {
    defined(v)?;
    match to_json_value(v)? {
        Json::Number(n) => n
            .as_f64()
            .ok_or_else(|| invalid(format!("{filter}: not a number"))),
        Json::String(s) => s
            .trim()
            .parse()
            .map_err(|_| invalid(format!("{filter}: '{s}' is not a number"))),
        other => Err(invalid(format!("{filter}: {other} is not a number"))),
    }
}

/// A float result as Python prints it: whole numbers stay floats (`8.0`).
fn float(f: f64) -> Value {
    Value::from(f)
}

fn log(v: Value, base: Option<f64>) -> Result<Value, Error> {
    let x = number(&v, "log")?;
    Ok(float(match base {
        None => x.ln(),
        Some(b) => x.ln() / b.ln(),
    }))
}

fn pow(v: Value, exp: f64) -> Result<Value, Error> {
    Ok(float(number(&v, "pow")?.powf(exp)))
}

fn root(v: Value, base: Option<f64>) -> Result<Value, Error> {
    let x = number(&v, "root")?;
    let b = base.unwrap_or(2.0);
    Ok(float(if b == 2.0 { x.sqrt() } else { x.powf(1.0 / b) }))
}

fn items(v: &Value, filter: &str) -> Result<Vec<Json>, Error> {
    match to_json_value(v)? {
        Json::Array(a) => Ok(a),
        Json::String(s) => Ok(s.chars().map(|c| Json::String(c.to_string())).collect()),
        Json::Object(m) => Ok(m.keys().map(|k| Json::String(k.clone())).collect()),
        other => Err(invalid(format!("{filter}: {other} is not iterable"))),
    }
}

fn guard(n: usize, filter: &str) -> Result<(), Error> {
    if n > MAX_ITEMS {
        return Err(invalid(format!("{filter}: more than {MAX_ITEMS} results")));
    }
    Ok(())
}

/// Python's `itertools.permutations(v, r)` as lists.
fn permutations(v: Value, r: Option<usize>) -> Result<Value, Error> {
    let pool = items(&v, "permutations")?;
    let r = r.unwrap_or(pool.len());
    let mut out = Vec::new();
    if r <= pool.len() {
        let mut used = vec![false; pool.len()];
        let mut cur = Vec::new();
        permute(&pool, r, &mut used, &mut cur, &mut out)?;
    }
    Ok(from_json_value(&Json::Array(out)))
}

fn permute(
    pool: &[Json],
    r: usize,
    used: &mut Vec<bool>,
    cur: &mut Vec<Json>,
    out: &mut Vec<Json>,
) -> Result<(), Error> {
    if cur.len() == r {
        guard(out.len() + 1, "permutations")?;
        out.push(Json::Array(cur.clone()));
        return Ok(());
    }
    for i in 0..pool.len() {
        if !used[i] {
            used[i] = true;
            cur.push(pool[i].clone());
            permute(pool, r, used, cur, out)?;
            cur.pop();
            used[i] = false;
        }
    }
    Ok(())
}

/// Python's `itertools.combinations(v, r)` as lists.
fn combinations(v: Value, r: usize) -> Result<Value, Error> {
    let pool = items(&v, "combinations")?;
    let mut out = Vec::new();
    let mut cur = Vec::new();
    combine(&pool, r, 0, &mut cur, &mut out)?;
    Ok(from_json_value(&Json::Array(out)))
}

fn combine(
    pool: &[Json],
    r: usize,
    start: usize,
    cur: &mut Vec<Json>,
    out: &mut Vec<Json>,
) -> Result<(), Error> {
    if cur.len() == r {
        guard(out.len() + 1, "combinations")?;
        out.push(Json::Array(cur.clone()));
        return Ok(());
    }
    for i in start..pool.len() {
        cur.push(pool[i].clone());
        combine(pool, r, i + 1, cur, out)?;
        cur.pop();
    }
    Ok(())
}

/// Python's `itertools.product(v, *others, repeat=1)` as lists.
fn product(v: Value, others: Rest<Value>, kwargs: Kwargs) -> Result<Value, Error> {
    let repeat: Option<usize> = kwargs.get("repeat")?;
    kwargs.assert_all_used()?;
    let mut pools = vec![items(&v, "product")?];
    for o in others.iter() {
        pools.push(items(o, "product")?);
    }
    let pools: Vec<Vec<Json>> = (0..repeat.unwrap_or(1))
        .flat_map(|_| pools.clone())
        .collect();
    let total = pools
        .iter()
        .try_fold(1usize, |acc, p| acc.checked_mul(p.len()));
    guard(total.unwrap_or(usize::MAX), "product")?;
    let mut out: Vec<Vec<Json>> = vec![Vec::new()];
    for pool in &pools {
        out = out
            .into_iter()
            .flat_map(|prefix| {
                pool.iter().map(move |x| {
                    let mut p = prefix.clone();
                    p.push(x.clone());
                    p
                })
            })
            .collect();
    }
    Ok(from_json_value(&Json::Array(
        out.into_iter().map(Json::Array).collect(),
    )))
}

/// Python's `zip(v, *others)` as lists: as long as the shortest.
fn zip(v: Value, others: Rest<Value>) -> Result<Value, Error> {
    zipped(v, others, false, Json::Null)
}

/// Python's `itertools.zip_longest(v, *others, fillvalue=None)` as lists.
fn zip_longest(v: Value, others: Rest<Value>, kwargs: Kwargs) -> Result<Value, Error> {
    let fill: Option<Value> = kwargs.get("fillvalue")?;
    kwargs.assert_all_used()?;
    let fill = match fill {
        Some(f) => to_json_value(&f)?,
        None => Json::Null,
    };
    zipped(v, others, true, fill)
}

fn zipped(v: Value, others: Rest<Value>, longest: bool, fill: Json) -> Result<Value, Error> {
    let mut lists = vec![items(&v, "zip")?];
    for o in others.iter() {
        lists.push(items(o, "zip")?);
    }
    let lens = lists.iter().map(Vec::len);
    let n = if longest { lens.max() } else { lens.min() }.unwrap_or(0);
    let out: Vec<Json> = (0..n)
        .map(|i| {
            Json::Array(
                lists
                    .iter()
                    .map(|l| l.get(i).cloned().unwrap_or_else(|| fill.clone()))
                    .collect(),
            )
        })
        .collect();
    Ok(from_json_value(&Json::Array(out)))
}

/// `shuffle`: the items in a random order (`seed` is accepted; the order is random anyway).
fn shuffle(v: Value, _seed: Option<Value>) -> Result<Value, Error> {
    let mut list = items(&v, "shuffle")?;
    for i in (1..list.len()).rev() {
        let mut b = [0u8; 8];
        getrandom::getrandom(&mut b).map_err(|e| invalid(format!("shuffle: {e}")))?;
        let j = (u64::from_le_bytes(b) % (i as u64 + 1)) as usize;
        list.swap(i, j);
    }
    Ok(from_json_value(&Json::Array(list)))
}

/// Ansible's size ranges: powers of 1024 for bytes and bits alike, largest first.
const PREFIXES: &[(char, u32, &str, &str)] = &[
    ('Y', 8, "yottabyte", "yottabit"),
    ('Z', 7, "zetabyte", "zetabit"),
    ('E', 6, "exabyte", "exabit"),
    ('P', 5, "petabyte", "petabit"),
    ('T', 4, "terabyte", "terabit"),
    ('G', 3, "gigabyte", "gigabit"),
    ('M', 2, "megabyte", "megabit"),
    ('K', 1, "kilobyte", "kilobit"),
    ('B', 0, "byte", "bit"),
];

/// Ansible's `human_readable(isbits=False, unit=None)`: `1.00 KB`, `4.77 Mb`, `123.00 Bytes`.
fn human_readable(
    v: Value,
    isbits: Option<bool>,
    unit: Option<String>,
    kwargs: Kwargs,
) -> Result<Value, Error> {
    let isbits = kwargs.get::<Option<bool>>("isbits")?.or(isbits);
    let unit = kwargs.get::<Option<String>>("unit")?.or(unit);
    kwargs.assert_all_used()?;
    let n = number(&v, "human_readable")?;
    let base = if isbits.unwrap_or(false) {
        "bits"
    } else {
        "Bytes"
    };
    let unit = unit.map(|u| u.to_uppercase());
    let (letter, exp) = PREFIXES
        .iter()
        .find(|(p, e, _, _)| match &unit {
            None => n >= 1024f64.powi(*e as i32),
            Some(u) => u.starts_with(*p) && u.len() == 1,
        })
        .map_or(('B', 0), |(p, e, _, _)| (*p, *e));
    let limit = 1024f64.powi(exp as i32);
    let suffix = if exp == 0 {
        base.to_string()
    } else {
        format!("{letter}{}", &base[..1])
    };
    Ok(Value::from(format!("{:.2} {suffix}", n / limit)))
}

/// Ansible's `human_to_bytes(default_unit=None, isbits=False)`: `'1 KB'` → 1024, `'10M'`,
/// `'1Mb'` with `isbits`.
fn human_to_bytes(
    v: Value,
    default_unit: Option<String>,
    isbits: Option<bool>,
    kwargs: Kwargs,
) -> Result<Value, Error> {
    let default_unit = kwargs
        .get::<Option<String>>("default_unit")?
        .or(default_unit);
    let isbits = kwargs
        .get::<Option<bool>>("isbits")?
        .or(isbits)
        .unwrap_or(false);
    kwargs.assert_all_used()?;
    let text = py_str(&v)?;
    let t = text.trim_end();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (num, unit) = (&t[..split], t[split..].trim_start());
    let n: f64 = match num.parse() {
        Ok(n) if unit.chars().all(|c| c.is_ascii_alphabetic()) && !num.is_empty() => n,
        _ => {
            return Err(invalid(format!(
                "human_to_bytes() can't interpret following string: {text}"
            )))
        }
    };
    let unit = if unit.is_empty() {
        default_unit
    } else {
        Some(unit.to_string())
    };
    let Some(unit) = unit else {
        return Ok(Value::from(n.round() as i64));
    };
    let key = unit
        .chars()
        .next()
        .map(|c| c.to_ascii_uppercase())
        .unwrap_or('B');
    let Some((_, exp, byte_word, bit_word)) = PREFIXES.iter().find(|(p, ..)| *p == key) else {
        return Err(invalid(format!(
            "human_to_bytes() failed to convert {text} (unit = {unit}). The suffix must be one of Y, Z, E, P, T, G, M, K, B"
        )));
    };
    if unit.len() > 1 {
        let (word, short) = if isbits {
            (*bit_word, format!("{key}b"))
        } else {
            (*byte_word, format!("{key}B"))
        };
        let short = if key == 'B' {
            short[1..].to_string()
        } else {
            short
        };
        if unit.to_lowercase() != word && unit != short {
            let class = if isbits { 'b' } else { 'B' };
            let expect = if key == 'B' {
                format!("expect {class} or {}", if isbits { "bit" } else { "byte" })
            } else {
                format!("expect {key}{class} or {key}")
            };
            return Err(invalid(format!(
                "human_to_bytes() failed to convert {text}. Value is not a valid string ({expect})"
            )));
        }
    }
    Ok(Value::from((n * 1024f64.powi(*exp as i32)).round() as i64))
}

/// Ansible's `split(sep=None)`: Python's `str.split`.
fn split(v: Value, sep: Option<String>) -> Result<Value, Error> {
    let s = py_str(&v)?;
    let parts: Vec<Value> = match sep {
        Some(sep) if !sep.is_empty() => s.split(sep.as_str()).map(Value::from).collect(),
        _ => s.split_whitespace().map(Value::from).collect(),
    };
    Ok(Value::from(parts))
}

#[cfg(test)]
mod tests {
    fn render(template: &str) -> Result<String, String> {
        let mut env = minijinja::Environment::new();
        super::super::register(&mut env);
        env.render_str(template, ()).map_err(|e| e.to_string())
    }

    #[test]
    fn math_and_combinatorics_like_python() {
        let cases = [
            ("{{ 8 | log(2) }}", "3.0"),
            ("{{ 2 | pow(10) }}", "1024.0"),
            ("{{ 81 | root }}", "9.0"),
            ("{{ 27 | root(3) | round(6) }}", "3.0"),
            ("{{ [1, 2, 3] | permutations(2) | list | length }}", "6"),
            (
                "{{ [1, 2, 3] | combinations(2) | list }}",
                "[[1, 2], [1, 3], [2, 3]]",
            ),
            (
                "{{ [1, 2] | product(['a', 'b']) | list }}",
                "[[1, \"a\"], [1, \"b\"], [2, \"a\"], [2, \"b\"]]",
            ),
            (
                "{{ [1, 2, 3] | zip(['a', 'b']) | list }}",
                "[[1, \"a\"], [2, \"b\"]]",
            ),
            (
                "{{ [1, 2] | zip_longest(['a'], fillvalue='x') | list }}",
                "[[1, \"a\"], [2, \"x\"]]",
            ),
            ("{{ [1, 2, 3] | shuffle | sort }}", "[1, 2, 3]"),
            ("{{ 1024 | human_readable }}", "1.00 KB"),
            ("{{ 1048576 | human_readable(unit='K') }}", "1024.00 KB"),
            ("{{ 500 | human_readable }}", "500.00 Bytes"),
            ("{{ 5000000 | human_readable(isbits=True) }}", "4.77 Mb"),
            ("{{ 5 | human_readable(isbits=True) }}", "5.00 bits"),
            ("{{ '1Mb' | human_to_bytes(isbits=True) }}", "1048576"),
            ("{{ '1 KB' | human_to_bytes }}", "1024"),
            ("{{ '10M' | human_to_bytes }}", "10485760"),
            ("{{ '2' | human_to_bytes('K') }}", "2048"),
            ("{{ 'a b  c' | split }}", "[\"a\", \"b\", \"c\"]"),
            ("{{ 'a,b' | split(',') }}", "[\"a\", \"b\"]"),
        ];
        for (t, want) in cases {
            assert_eq!(render(t).as_deref(), Ok(want), "{t}");
        }
        assert!(render("{{ range(100) | permutations(5) | list }}").is_err());
        assert!(render("{{ '1 KX' | human_to_bytes }}").is_err());
    }
}
