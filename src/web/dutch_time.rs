//! Moments as people at a Dutch school read and type them: Europe/Amsterdam, with summer
//! time, in `dd-mm-jjjj uu:mm`; forms use HTML `datetime-local` (no zone: Dutch time).

use chrono::{DateTime, NaiveDateTime, TimeZone, Utc};
use chrono_tz::Europe::Amsterdam;

/// `07-12-2026 08:30` in Dutch time.
pub fn format(at: DateTime<Utc>) -> String {
    at.with_timezone(&Amsterdam)
        .format("%d-%m-%Y %H:%M")
        .to_string()
}

pub fn format_ts(secs: i64) -> String {
    format(crate::storage::from_ts(secs))
}

/// `07-12-2026`.
pub fn day(secs: i64) -> String {
    crate::storage::from_ts(secs)
        .with_timezone(&Amsterdam)
        .format("%d-%m-%Y")
        .to_string()
}

/// The value of a `datetime-local` input for `at`.
pub fn to_input(at: DateTime<Utc>) -> String {
    at.with_timezone(&Amsterdam)
        .format("%Y-%m-%dT%H:%M")
        .to_string()
}

/// A `datetime-local` value (`2026-12-07T08:30`, seconds optional) read as Dutch time. A
/// moment that does not exist (the hour skipped when summer time starts) is refused; one
/// that exists twice (when it ends) is the first.
pub fn parse_input(value: &str) -> Option<DateTime<Utc>> {
    let value = value.trim();
    let naive = NaiveDateTime::parse_from_str(value, "%Y-%m-%dT%H:%M")
        .or_else(|_| NaiveDateTime::parse_from_str(value, "%Y-%m-%dT%H:%M:%S"))
        .ok()?;
    Amsterdam
        .from_local_datetime(&naive)
        .earliest()
        .map(|local| local.with_timezone(&Utc))
}

/// 1 August of the school year that `at` falls in (Dutch school years run August to July).
pub fn school_year_start(at: DateTime<Utc>) -> DateTime<Utc> {
    use chrono::Datelike;
    let local = at.with_timezone(&Amsterdam);
    let year = if local.month() >= 8 {
        local.year()
    } else {
        local.year() - 1
    };
    Amsterdam
        .with_ymd_and_hms(year, 8, 1, 0, 0, 0)
        .earliest()
        .map(|d| d.with_timezone(&Utc))
        .unwrap_or(at)
}

/// The last day (Dutch time) a period ending at `until` covers: a period that ends at
/// midnight covers the day before ("tot en met").
pub fn last_day(until: DateTime<Utc>) -> String {
    (until - chrono::Duration::seconds(1))
        .with_timezone(&Amsterdam)
        .format("%d-%m-%Y")
        .to_string()
}

/// As [`last_day`], as the value of an HTML `date` input.
pub fn last_day_input(until: DateTime<Utc>) -> String {
    (until - chrono::Duration::seconds(1))
        .with_timezone(&Amsterdam)
        .format("%Y-%m-%d")
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dutch_time_follows_summer_time() {
        let winter = parse_input("2026-12-07T08:30").unwrap();
        assert_eq!(winter.to_rfc3339(), "2026-12-07T07:30:00+00:00");
        let summer = parse_input("2026-06-01T08:30").unwrap();
        assert_eq!(summer.to_rfc3339(), "2026-06-01T06:30:00+00:00");
        assert_eq!(format(winter), "07-12-2026 08:30");
        assert_eq!(to_input(summer), "2026-06-01T08:30");
        // 29 March 2026, 02:30 does not exist in Amsterdam.
        assert_eq!(parse_input("2026-03-29T02:30"), None);
        assert_eq!(parse_input("morgen"), None);
    }

    #[test]
    fn the_school_year_starts_in_august() {
        let dec = parse_input("2026-12-07T08:30").unwrap();
        assert_eq!(format(school_year_start(dec)), "01-08-2026 00:00");
        let may = parse_input("2027-05-07T08:30").unwrap();
        assert_eq!(format(school_year_start(may)), "01-08-2026 00:00");
    }
}
