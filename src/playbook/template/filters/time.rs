//! Dates: `to_datetime` (Python's `datetime.strptime`, as a `{year, month, ...}` value with
//! `strftime` and `timestamp`) and `strftime` (a format applied to epoch seconds, UTC as on a
//! controller set to UTC). Only the directives playbooks use are known; others are an error.

use super::{invalid, py_str};
use minijinja::value::{Object, Value as MjValue};
use minijinja::{Environment, Error, State, Value};
use std::sync::Arc;

/// Register this file's filters on `env`.
pub(super) fn register(env: &mut Environment<'static>) {
    env.add_filter("to_datetime", to_datetime);
    env.add_filter("strftime", strftime);
}

/// A point in time, UTC, to the second (plus microseconds as parsed).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct DateTime {
    pub year: i64,
    pub month: u32,
    pub day: u32,
    pub hour: u32,
    pub minute: u32,
    pub second: u32,
    pub micro: u32,
}

/// Days since 1970-01-01 of a civil date (Howard Hinnant's algorithm).
fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (i64::from(m) + 9) % 12;
    let doy = (153 * mp + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146097 + doe - 719468
}

fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719468;
    let era = z.div_euclid(146097);
    let doe = z - era * 146097;
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

impl DateTime {
    pub fn timestamp(&self) -> f64 {
        let days = days_from_civil(self.year, self.month, self.day);
        let secs = days * 86400
            + i64::from(self.hour) * 3600
            + i64::from(self.minute) * 60
            + i64::from(self.second);
        secs as f64 + f64::from(self.micro) / 1e6
    }

    pub fn from_timestamp(t: f64) -> DateTime {
        let secs = t.floor() as i64;
        let micro = ((t - t.floor()) * 1e6).round() as u32;
        let (y, m, d) = civil_from_days(secs.div_euclid(86400));
        let rem = secs.rem_euclid(86400);
        DateTime {
            year: y,
            month: m,
            day: d,
            hour: (rem / 3600) as u32,
            minute: (rem % 3600 / 60) as u32,
            second: (rem % 60) as u32,
            micro,
        }
    }

    fn weekday(&self) -> usize {
        // 1970-01-01 was a Thursday; 0 = Monday as Python's weekday().
        (days_from_civil(self.year, self.month, self.day) + 3).rem_euclid(7) as usize
    }
}

const DAYS: [&str; 7] = [
    "Monday",
    "Tuesday",
    "Wednesday",
    "Thursday",
    "Friday",
    "Saturday",
    "Sunday",
];
const MONTHS: [&str; 12] = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
];

/// Python's `strptime` for `%Y %m %d %H %M %S %f %y %b %B %j %%` and literal text.
pub fn parse(text: &str, format: &str) -> Result<DateTime, String> {
    let mut dt = DateTime {
        year: 1900,
        month: 1,
        day: 1,
        hour: 0,
        minute: 0,
        second: 0,
        micro: 0,
    };
    let bad = || format!("time data '{text}' does not match format '{format}'");
    let mut rest = text;
    let mut f = format.chars();
    while let Some(c) = f.next() {
        if c != '%' {
            rest = rest.strip_prefix(c).ok_or_else(bad)?;
            continue;
        }
        let d = f.next().ok_or_else(bad)?;
        let digits = |rest: &mut &str, max: usize| -> Result<u32, String> {
            let n = rest
                .chars()
                .take(max)
                .take_while(char::is_ascii_digit)
                .count();
            if n == 0 {
                return Err(bad());
            }
            let v = rest[..n].parse().map_err(|_| bad())?;
            *rest = &rest[n..];
            Ok(v)
        };
        match d {
            'Y' => dt.year = i64::from(digits(&mut rest, 4)?),
            'y' => {
                let y = digits(&mut rest, 2)?;
                dt.year = i64::from(if y < 69 { 2000 + y } else { 1900 + y });
            }
            'm' => dt.month = digits(&mut rest, 2)?,
            'd' => dt.day = digits(&mut rest, 2)?,
            'H' => dt.hour = digits(&mut rest, 2)?,
            'M' => dt.minute = digits(&mut rest, 2)?,
            'S' => dt.second = digits(&mut rest, 2)?,
            'f' => {
                let before = rest.len();
                let v = digits(&mut rest, 6)?;
                let n = before - rest.len();
                dt.micro = v * 10u32.pow(6 - n as u32);
            }
            'b' | 'B' => {
                let i = MONTHS
                    .iter()
                    .position(|m| {
                        let name = if d == 'b' { &m[..3] } else { m };
                        rest.len() >= name.len() && rest[..name.len()].eq_ignore_ascii_case(name)
                    })
                    .ok_or_else(bad)?;
                let len = if d == 'b' { 3 } else { MONTHS[i].len() };
                rest = &rest[len..];
                dt.month = i as u32 + 1;
            }
            '%' => rest = rest.strip_prefix('%').ok_or_else(bad)?,
            other => return Err(format!("'{other}' is a bad directive in format '%{other}'")),
        }
    }
    if !rest.is_empty() {
        return Err(format!("unconverted data remains: {rest}"));
    }
    let valid = (1..=12).contains(&dt.month)
        && (1..=31).contains(&dt.day)
        && dt.hour < 24
        && dt.minute < 60
        && dt.second < 62;
    valid.then_some(dt).ok_or_else(bad)
}

/// Python's `strftime` for the common directives.
pub fn format(dt: &DateTime, fmt: &str) -> Result<String, String> {
    let mut out = String::new();
    let mut f = fmt.chars();
    while let Some(c) = f.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        let Some(d) = f.next() else {
            out.push('%');
            break;
        };
        let m = (dt.month as usize).saturating_sub(1).min(11);
        match d {
            'Y' => out.push_str(&dt.year.to_string()),
            'y' => out.push_str(&format!("{:02}", dt.year.rem_euclid(100))),
            'm' => out.push_str(&format!("{:02}", dt.month)),
            'd' => out.push_str(&format!("{:02}", dt.day)),
            'e' => out.push_str(&format!("{:2}", dt.day)),
            'H' => out.push_str(&format!("{:02}", dt.hour)),
            'I' => out.push_str(&format!("{:02}", (dt.hour + 11) % 12 + 1)),
            'p' => out.push_str(if dt.hour < 12 { "AM" } else { "PM" }),
            'M' => out.push_str(&format!("{:02}", dt.minute)),
            'S' => out.push_str(&format!("{:02}", dt.second)),
            'f' => out.push_str(&format!("{:06}", dt.micro)),
            's' => out.push_str(&format!("{}", dt.timestamp().floor() as i64)),
            'j' => {
                let doy =
                    days_from_civil(dt.year, dt.month, dt.day) - days_from_civil(dt.year, 1, 1) + 1;
                out.push_str(&format!("{doy:03}"));
            }
            'a' => out.push_str(&DAYS[dt.weekday()][..3]),
            'A' => out.push_str(DAYS[dt.weekday()]),
            'b' | 'h' => out.push_str(&MONTHS[m][..3]),
            'B' => out.push_str(MONTHS[m]),
            'u' => out.push_str(&(dt.weekday() + 1).to_string()),
            'w' => out.push_str(&((dt.weekday() + 1) % 7).to_string()),
            'F' => out.push_str(&format!("{}-{:02}-{:02}", dt.year, dt.month, dt.day)),
            'T' => out.push_str(&format!("{:02}:{:02}:{:02}", dt.hour, dt.minute, dt.second)),
            'z' => out.push_str("+0000"),
            'Z' => out.push_str("UTC"),
            '%' => out.push('%'),
            other => {
                return Err(format!(
                    "strftime: the directive %{other} is not supported by knockplay"
                ))
            }
        }
    }
    Ok(out)
}

/// What `to_datetime` returns: Python's datetime as far as templates use it (`.year`, ...,
/// `.strftime(fmt)`, `.timestamp()`, subtraction via `(a - b).days` is not supported).
#[derive(Debug)]
struct PyDateTime(DateTime);

impl Object for PyDateTime {
    fn get_value(self: &Arc<Self>, key: &MjValue) -> Option<MjValue> {
        let d = &self.0;
        Some(match key.as_str()? {
            "year" => MjValue::from(d.year),
            "month" => MjValue::from(d.month),
            "day" => MjValue::from(d.day),
            "hour" => MjValue::from(d.hour),
            "minute" => MjValue::from(d.minute),
            "second" => MjValue::from(d.second),
            "microsecond" => MjValue::from(d.micro),
            _ => return None,
        })
    }

    fn call_method(
        self: &Arc<Self>,
        _state: &State,
        method: &str,
        args: &[MjValue],
    ) -> Result<MjValue, Error> {
        match method {
            "strftime" => {
                let fmt = args.first().and_then(|a| a.as_str()).unwrap_or("");
                format(&self.0, fmt).map(MjValue::from).map_err(invalid)
            }
            "timestamp" => Ok(MjValue::from(self.0.timestamp())),
            "isoformat" => Ok(MjValue::from(
                format(&self.0, "%Y-%m-%dT%H:%M:%S").map_err(invalid)?,
            )),
            other => Err(invalid(format!("datetime has no method {other}()"))),
        }
    }

    fn render(self: &Arc<Self>, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result
    where
        Self: Sized + 'static,
    {
        let text = format(&self.0, "%Y-%m-%d %H:%M:%S").unwrap_or_default();
        if self.0.micro > 0 {
            write!(f, "{text}.{:06}", self.0.micro)
        } else {
            f.write_str(&text)
        }
    }
}

/// `'2024-01-02 03:04:05' | to_datetime` (format `%Y-%m-%d %H:%M:%S` by default).
fn to_datetime(v: Value, fmt: Option<String>) -> Result<Value, Error> {
    let text = py_str(&v)?;
    let fmt = fmt.unwrap_or_else(|| "%Y-%m-%d %H:%M:%S".into());
    let dt = parse(&text, &fmt).map_err(invalid)?;
    Ok(Value::from_object(PyDateTime(dt)))
}

/// `'%Y-%m-%d' | strftime(second=epoch)`: the format applied to epoch seconds (now by default),
/// in UTC.
fn strftime(v: Value, second: Option<Value>, utc: Option<bool>) -> Result<Value, Error> {
    let _ = utc;
    let fmt = py_str(&v)?;
    let t = match second {
        Some(s) if !s.is_none() && !s.is_undefined() => {
            let text = py_str(&s)?;
            text.trim()
                .parse::<f64>()
                .map_err(|_| invalid(format!("Invalid value for epoch value ({text})")))?
        }
        _ => std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs_f64())
            .unwrap_or(0.0),
    };
    format(&DateTime::from_timestamp(t), &fmt)
        .map(Value::from)
        .map_err(invalid)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn render(template: &str) -> Result<String, String> {
        let mut env = minijinja::Environment::new();
        super::super::register(&mut env);
        env.render_str(template, ()).map_err(|e| e.to_string())
    }

    #[test]
    fn dates_parse_and_format_like_python() {
        let cases = [
            (
                "{{ '2024-02-29 13:04:05' | to_datetime }}",
                "2024-02-29 13:04:05",
            ),
            ("{{ ('2024-02-29 13:04:05' | to_datetime).year }}", "2024"),
            (
                "{{ ('29/02/24' | to_datetime('%d/%m/%y')).strftime('%A %d %B %Y') }}",
                "Thursday 29 February 2024",
            ),
            (
                "{{ ('2024-01-01 00:00:00' | to_datetime).timestamp() }}",
                "1704067200.0",
            ),
            (
                "{{ '%Y-%m-%d %H:%M:%S' | strftime(0) }}",
                "1970-01-01 00:00:00",
            ),
            (
                "{{ '%F %T %j %a' | strftime(1709211845) }}",
                "2024-02-29 13:04:05 060 Thu",
            ),
            ("{{ ('Mar 5 2021' | to_datetime('%b %d %Y')).month }}", "3"),
        ];
        for (t, want) in cases {
            assert_eq!(render(t).as_deref(), Ok(want), "{t}");
        }
        let e = render("{{ 'x' | to_datetime }}").unwrap_err();
        assert!(e.contains("time data 'x' does not match format"), "{e}");
        for t in [0.0, 951782400.0, 1709211845.5, 4102444800.0] {
            assert_eq!(DateTime::from_timestamp(t).timestamp(), t);
        }
    }
}
