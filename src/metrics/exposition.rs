//! The Prometheus text exposition format (version 0.0.4): metric families with `# HELP` and
//! `# TYPE`, escaped label values, and histograms as cumulative `_bucket{le=...}` lines ending in
//! `+Inf`, then `_sum` and `_count`.

use std::fmt::Write as _;

/// The content type scrapers expect for this format.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// A family's type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Counter,
    Gauge,
    Histogram,
}

impl Kind {
    fn as_str(self) -> &'static str {
        match self {
            Kind::Counter => "counter",
            Kind::Gauge => "gauge",
            Kind::Histogram => "histogram",
        }
    }
}

/// Observations sorted into buckets by upper bound (`le`), with their sum and count.
#[derive(Debug, Clone, PartialEq)]
pub struct Histogram {
    bounds: &'static [f64],
    /// Observations per bucket, not cumulative; one more than `bounds` (the `+Inf` bucket).
    buckets: Vec<u64>,
    sum: f64,
    count: u64,
}

impl Histogram {
    /// `bounds`: finite, ascending upper bounds.
    pub fn new(bounds: &'static [f64]) -> Histogram {
        Histogram {
            bounds,
            buckets: vec![0; bounds.len() + 1],
            sum: 0.0,
            count: 0,
        }
    }

    pub fn observe(&mut self, v: f64) {
        let i = self
            .bounds
            .iter()
            .position(|b| v <= *b)
            .unwrap_or(self.bounds.len());
        if let Some(b) = self.buckets.get_mut(i) {
            *b += 1;
        }
        self.sum += v;
        self.count += 1;
    }
}

/// A page of metric families being written.
#[derive(Debug, Default)]
pub struct Exposition {
    out: String,
}

impl Exposition {
    pub fn new() -> Exposition {
        Exposition::default()
    }

    /// Starts a family: its `# HELP` and `# TYPE` lines. Its samples follow.
    pub fn family(&mut self, name: &str, kind: Kind, help: &str) {
        let _ = writeln!(self.out, "# HELP {name} {}", escape_help(help));
        let _ = writeln!(self.out, "# TYPE {name} {}", kind.as_str());
    }

    /// One sample line: `name{label="value",...} value`.
    pub fn sample(&mut self, name: &str, labels: &[(&str, &str)], value: f64) {
        self.out.push_str(name);
        self.labels(labels, None);
        let _ = writeln!(self.out, " {}", number(value));
    }

    /// A histogram's lines under `name` (the family must be of kind histogram).
    pub fn histogram(&mut self, name: &str, labels: &[(&str, &str)], h: &Histogram) {
        let mut cumulative = 0u64;
        let bounds = h.bounds.iter().map(|b| number(*b));
        for (le, n) in bounds.chain(["+Inf".to_string()]).zip(&h.buckets) {
            cumulative += n;
            let _ = write!(self.out, "{name}_bucket");
            self.labels(labels, Some(&le));
            let _ = writeln!(self.out, " {cumulative}");
        }
        self.sample(&format!("{name}_sum"), labels, h.sum);
        self.sample(&format!("{name}_count"), labels, h.count as f64);
    }

    fn labels(&mut self, labels: &[(&str, &str)], le: Option<&str>) {
        if labels.is_empty() && le.is_none() {
            return;
        }
        self.out.push('{');
        let all = labels.iter().copied().chain(le.map(|v| ("le", v)));
        for (i, (k, v)) in all.enumerate() {
            if i > 0 {
                self.out.push(',');
            }
            let _ = write!(self.out, "{k}=\"{}\"", escape_label(v));
        }
        self.out.push('}');
    }

    pub fn finish(self) -> String {
        self.out
    }
}

/// A label value: backslash, double quote and line feed escaped.
pub fn escape_label(v: &str) -> String {
    let mut s = String::with_capacity(v.len());
    for c in v.chars() {
        match c {
            '\\' => s.push_str("\\\\"),
            '"' => s.push_str("\\\""),
            '\n' => s.push_str("\\n"),
            c => s.push(c),
        }
    }
    s
}

/// A HELP text: backslash and line feed escaped (quotes stay).
fn escape_help(v: &str) -> String {
    v.replace('\\', "\\\\").replace('\n', "\\n")
}

/// A sample value as the format writes it: integers without a fraction, `+Inf`, `-Inf`, `NaN`.
fn number(v: f64) -> String {
    if v.is_nan() {
        "NaN".into()
    } else if v.is_infinite() {
        if v > 0.0 { "+Inf" } else { "-Inf" }.into()
    } else if v.fract() == 0.0 && v.abs() < 1e15 {
        format!("{}", v as i64)
    } else {
        format!("{v}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn label_values_are_escaped() {
        let cases = [
            ("base", "base"),
            (r#"a"b"#, r#"a\"b"#),
            (r"c:\dir", r"c:\\dir"),
            ("two\nlines", r"two\nlines"),
            ("é ünïcode", "é ünïcode"),
        ];
        for (raw, want) in cases {
            assert_eq!(escape_label(raw), want, "{raw:?}");
        }
        let mut e = Exposition::new();
        e.family(
            "m_total",
            Kind::Counter,
            "Help with \\ and\nnewline \"quoted\".",
        );
        e.sample("m_total", &[("door", "x\"y\\z\n"), ("result", "ok")], 3.0);
        e.sample("m_total", &[], 0.5);
        assert_eq!(
            e.finish(),
            "# HELP m_total Help with \\\\ and\\nnewline \"quoted\".\n\
             # TYPE m_total counter\n\
             m_total{door=\"x\\\"y\\\\z\\n\",result=\"ok\"} 3\n\
             m_total 0.5\n"
        );
    }

    #[test]
    fn histogram_buckets_are_cumulative_and_end_in_inf_sum_count() {
        static B: &[f64] = &[0.5, 1.0, 10.0];
        let mut h = Histogram::new(B);
        for v in [0.25, 0.5, 0.75, 3.0, 10.0, 99.0, 1000.0] {
            h.observe(v);
        }
        let mut e = Exposition::new();
        e.family("d_seconds", Kind::Histogram, "Durations.");
        e.histogram("d_seconds", &[("door", "a")], &h);
        assert_eq!(
            e.finish(),
            "# HELP d_seconds Durations.\n\
             # TYPE d_seconds histogram\n\
             d_seconds_bucket{door=\"a\",le=\"0.5\"} 2\n\
             d_seconds_bucket{door=\"a\",le=\"1\"} 3\n\
             d_seconds_bucket{door=\"a\",le=\"10\"} 5\n\
             d_seconds_bucket{door=\"a\",le=\"+Inf\"} 7\n\
             d_seconds_sum{door=\"a\"} 1113.5\n\
             d_seconds_count{door=\"a\"} 7\n"
        );
    }

    #[test]
    fn an_empty_histogram_still_has_every_bucket() {
        static B: &[f64] = &[1.0, 2.5];
        let mut e = Exposition::new();
        e.histogram("h", &[], &Histogram::new(B));
        assert_eq!(
            e.finish(),
            "h_bucket{le=\"1\"} 0\nh_bucket{le=\"2.5\"} 0\nh_bucket{le=\"+Inf\"} 0\nh_sum 0\nh_count 0\n"
        );
    }

    #[test]
    fn numbers_are_written_as_the_format_reads_them() {
        let cases = [
            (0.0, "0"),
            (42.0, "42"),
            (0.25, "0.25"),
            (f64::INFINITY, "+Inf"),
            (f64::NEG_INFINITY, "-Inf"),
            (f64::NAN, "NaN"),
            (1e20, "100000000000000000000"),
        ];
        for (v, want) in cases {
            assert_eq!(number(v), want, "{v}");
        }
    }
}
