//! Every date and duration format of the tool, over one civil-date algorithm.
//!
//! A leaf: it imports nothing from the crate.

use std::time::{Duration, Instant, SystemTime};

/// Formats a duration for messages: `2 s`, `500 ms`.
pub fn human(d: Duration) -> String {
    if d.as_millis().is_multiple_of(1000) {
        format!("{} s", d.as_secs())
    } else {
        format!("{} ms", d.as_millis())
    }
}

/// Milliseconds since `since`, rounded to the microsecond (the unit of every `elapsed_ms`).
pub fn elapsed_ms(since: Instant) -> f64 {
    (since.elapsed().as_secs_f64() * 1_000_000.0).round() / 1000.0
}

/// The current Unix time in seconds.
pub fn now_unix() -> i64 {
    unix(SystemTime::now())
}

/// A system time as Unix seconds (0 before the epoch).
fn unix(at: SystemTime) -> i64 {
    at.duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// Days since 1970-01-01 to (year, month, day) in the proleptic Gregorian calendar
/// (Howard Hinnant's algorithm).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

/// A Unix time split into its civil date and time of day (UTC).
struct Civil {
    days: i64,
    year: i64,
    month: u32,
    day: u32,
    hour: i64,
    minute: i64,
    second: i64,
}

impl Civil {
    fn of(unix: i64) -> Civil {
        let (days, rem) = (unix.div_euclid(86_400), unix.rem_euclid(86_400));
        let (year, month, day) = civil_from_days(days);
        Civil {
            days,
            year,
            month,
            day,
            hour: rem / 3600,
            minute: rem % 3600 / 60,
            second: rem % 60,
        }
    }

    fn rfc3339_date_time(&self) -> String {
        format!(
            "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}",
            self.year, self.month, self.day, self.hour, self.minute, self.second
        )
    }
}

/// Formats a Unix time as RFC 3339 in UTC (`2025-03-01T12:00:00Z`).
pub fn rfc3339(unix: i64) -> String {
    format!("{}Z", Civil::of(unix).rfc3339_date_time())
}

/// `YYYY-MM-DDTHH:MM:SS.mmmZ` for a system time (UTC).
pub fn rfc3339_millis(at: SystemTime) -> String {
    let millis = at
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.subsec_millis())
        .unwrap_or(0);
    format!("{}.{millis:03}Z", Civil::of(unix(at)).rfc3339_date_time())
}

/// `YYYY-MM-DDTHH:MM:SS` for a system time (UTC, no zone: JUnit's timestamp).
pub fn rfc3339_seconds_local(at: SystemTime) -> String {
    Civil::of(unix(at)).rfc3339_date_time()
}

/// RFC 5322 date-time in UTC: `Sun, 22 Nov 2026 07:00:00 +0000`.
pub fn rfc5322_date(at: SystemTime) -> String {
    const DAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let c = Civil::of(unix(at));
    format!(
        "{}, {:02} {} {:04} {:02}:{:02}:{:02} +0000",
        DAYS[c.days.rem_euclid(7) as usize],
        c.day,
        MONTHS[(c.month - 1) as usize],
        c.year,
        c.hour,
        c.minute,
        c.second
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_in_words() {
        assert_eq!(human(Duration::from_secs(2)), "2 s");
        assert_eq!(human(Duration::from_millis(500)), "500 ms");
        assert_eq!(human(Duration::from_millis(1500)), "1500 ms");
    }

    #[test]
    fn dates() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(rfc3339(-86_400), "1969-12-31T00:00:00Z");
        assert_eq!(rfc3339(1_709_294_399), "2024-03-01T11:59:59Z");
        assert_eq!(rfc3339(-1), "1969-12-31T23:59:59Z");
        assert_eq!(rfc3339(253_402_300_799), "9999-12-31T23:59:59Z");
        let epoch = SystemTime::UNIX_EPOCH;
        assert_eq!(rfc3339_millis(epoch), "1970-01-01T00:00:00.000Z");
        assert_eq!(rfc5322_date(epoch), "Thu, 01 Jan 1970 00:00:00 +0000");
        assert_eq!(rfc3339_seconds_local(epoch), "1970-01-01T00:00:00");
        let at = epoch + Duration::from_millis(1_795_330_801_123);
        assert_eq!(rfc3339_millis(at), "2026-11-22T07:00:01.123Z");
        assert_eq!(rfc3339_seconds_local(at), "2026-11-22T07:00:01");
        assert_eq!(rfc5322_date(at), "Sun, 22 Nov 2026 07:00:01 +0000");
        let leap = epoch + Duration::from_secs(951_782_400);
        assert_eq!(rfc5322_date(leap), "Tue, 29 Feb 2000 00:00:00 +0000");
        for (days, want) in [
            (0, (1970, 1, 1)),
            (11_016, (2000, 2, 29)),
            (-1, (1969, 12, 31)),
        ] {
            assert_eq!(civil_from_days(days), want);
        }
    }
}
