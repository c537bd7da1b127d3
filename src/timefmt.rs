//! Time as text, UTC, without a date crate: the history's RFC 3339 stamps and the `start`/`end`/
//! `delta` strings of command results (Python's `str(datetime)` and `str(timedelta)`).

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// A UTC calendar date and time of day, to the second.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Civil {
    year: i64,
    month: i64,
    day: i64,
    hour: i64,
    minute: i64,
    second: i64,
}

impl Civil {
    /// The date and time `secs` seconds after 1970-01-01T00:00:00Z (before it when negative).
    fn from_unix(secs: i64) -> Civil {
        let days = secs.div_euclid(86_400);
        let rem = secs.rem_euclid(86_400);
        // Howard Hinnant's days-to-civil algorithm.
        let z = days + 719_468;
        let era = z.div_euclid(146_097);
        let doe = z.rem_euclid(146_097);
        let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
        let mp = (5 * doy + 2) / 153;
        let day = doy - (153 * mp + 2) / 5 + 1;
        let month = if mp < 10 { mp + 3 } else { mp - 9 };
        Civil {
            year: yoe + era * 400 + i64::from(month <= 2),
            month,
            day,
            hour: rem / 3600,
            minute: rem % 3600 / 60,
            second: rem % 60,
        }
    }

    /// `YYYY-MM-DD`, `between`, `HH:MM:SS`.
    fn text(&self, between: char) -> String {
        format!(
            "{:04}-{:02}-{:02}{between}{:02}:{:02}:{:02}",
            self.year, self.month, self.day, self.hour, self.minute, self.second
        )
    }
}

/// Milliseconds since the Unix epoch (0 for a time before it).
pub fn unix_millis(t: SystemTime) -> i64 {
    t.duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// Unix milliseconds as `YYYY-MM-DDTHH:MM:SS.mmmZ`.
pub fn rfc3339_millis(ms: i64) -> String {
    let c = Civil::from_unix(ms.div_euclid(1000));
    format!("{}.{:03}Z", c.text('T'), ms.rem_euclid(1000))
}

/// `2024-05-01 12:00:00.123456`, like Python's `str(datetime)` (a time before the epoch is
/// shown as the epoch).
pub fn python_datetime(t: SystemTime) -> String {
    let d = t.duration_since(UNIX_EPOCH).unwrap_or_default();
    let c = Civil::from_unix(d.as_secs() as i64);
    format!("{}.{:06}", c.text(' '), d.subsec_micros())
}

/// `0:00:00.002345`, like Python's `str(timedelta)`.
pub fn python_timedelta(d: Duration) -> String {
    let s = d.as_secs();
    format!(
        "{}:{:02}:{:02}.{:06}",
        s / 3600,
        s % 3600 / 60,
        s % 60,
        d.subsec_micros()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_utc_times() {
        let cases: &[(i64, &str)] = &[
            (0, "1970-01-01T00:00:00.000Z"),
            (1_795_873_883_123, "2026-11-28T13:51:23.123Z"),
            (951_782_400_000, "2000-02-29T00:00:00.000Z"),
            (-1, "1969-12-31T23:59:59.999Z"),
        ];
        for (ms, want) in cases {
            assert_eq!(rfc3339_millis(*ms), *want, "{ms}");
        }
    }

    #[test]
    fn timestamps_format_like_python() {
        let t = UNIX_EPOCH + Duration::from_micros(1_700_000_000_123_456);
        assert_eq!(python_datetime(t), "2023-11-14 22:13:20.123456");
        assert_eq!(
            python_datetime(UNIX_EPOCH - Duration::from_secs(5)),
            "1970-01-01 00:00:00.000000"
        );
        assert_eq!(
            python_timedelta(Duration::from_micros(3_723_000_005)),
            "1:02:03.000005"
        );
    }

    #[test]
    fn unix_millis_clamps_before_the_epoch() {
        let cases: &[(SystemTime, i64)] = &[
            (UNIX_EPOCH, 0),
            (UNIX_EPOCH + Duration::from_millis(1_234), 1_234),
            (UNIX_EPOCH - Duration::from_secs(1), 0),
        ];
        for (t, want) in cases {
            assert_eq!(unix_millis(*t), *want, "{t:?}");
        }
    }
}
