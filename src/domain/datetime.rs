//! Dates and times: Unix seconds shown in UTC, calendar dates as typed (`YYYY-MM-DD`),
//! day numbers, and times in a named IANA zone. Built on jiff, which reads the system's
//! time zone database and knows daylight saving time.

use jiff::civil::Date;
use jiff::tz::TimeZone;
use jiff::{Timestamp, ToSpan};

/// Why a text is not a calendar date.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DateError {
    #[error("{0:?} is not a date (expected YYYY-MM-DD)")]
    NotADate(String),
    #[error("{text} is not a date: there is no month {month}")]
    NoSuchMonth { text: String, year: i16, month: i8 },
    #[error("{text} is not a date: {month_name} {year} has no day {day}")]
    NoSuchDay {
        text: String,
        year: i16,
        month_name: String,
        day: i8,
    },
}

impl DateError {
    /// The year as typed, when the text had the shape of a date.
    pub fn year(&self) -> Option<i16> {
        match self {
            DateError::NotADate(_) => None,
            DateError::NoSuchMonth { year, .. } | DateError::NoSuchDay { year, .. } => Some(*year),
        }
    }
}

/// `2026-11-21 17:40` (UTC) from Unix seconds.
pub fn utc_minutes(unix: i64) -> String {
    instant(unix).strftime("%Y-%m-%d %H:%M").to_string()
}

/// `2026-11-21`: the UTC date of Unix seconds.
pub fn utc_date(unix: i64) -> String {
    day_date(unix.div_euclid(86_400))
}

/// `2026-11-21` (UTC) of a day number (days since 1970-01-01).
pub fn day_date(day: i64) -> String {
    format_date(date_of_day(day))
}

/// `2026-11-21 18:40` in the IANA time zone `zone` (`Europe/Berlin`), from Unix seconds.
pub fn zoned_minutes(unix: i64, zone: &str) -> Result<String, jiff::Error> {
    let zone = TimeZone::get(zone)?;
    Ok(instant(unix)
        .with_time_zone(zone)
        .strftime("%Y-%m-%d %H:%M")
        .to_string())
}

/// A calendar date typed as exactly `YYYY-MM-DD` (ASCII digits, surrounding blanks
/// ignored) that names a real day: no 31 April, 29 February only in leap years.
pub fn parse_date(text: &str) -> Result<Date, DateError> {
    let text = text.trim();
    let bytes = text.as_bytes();
    let shaped = bytes.len() == 10
        && bytes.iter().enumerate().all(|(i, b)| match i {
            4 | 7 => *b == b'-',
            _ => b.is_ascii_digit(),
        });
    let not_a_date = || DateError::NotADate(text.to_string());
    if !shaped {
        return Err(not_a_date());
    }
    let number = |range: std::ops::Range<usize>| text[range].parse::<i16>();
    let (year, month, day) = match (number(0..4), number(5..7), number(8..10)) {
        (Ok(y), Ok(m), Ok(d)) => (y, m as i8, d as i8),
        _ => return Err(not_a_date()),
    };
    if !(1..=12).contains(&month) {
        return Err(DateError::NoSuchMonth {
            text: text.to_string(),
            year,
            month,
        });
    }
    Date::new(year, month, day).map_err(|_| DateError::NoSuchDay {
        text: text.to_string(),
        year,
        month_name: Date::new(year, month, 1)
            .map(|first| first.strftime("%B").to_string())
            .unwrap_or_default(),
        day,
    })
}

/// The day number (days since 1970-01-01) of a `YYYY-MM-DD` date from 1970 on.
pub fn parse_day(text: &str) -> Option<i64> {
    let date = parse_date(text).ok()?;
    let day = i64::from(date.since(epoch()).ok()?.get_days());
    (day >= 0).then_some(day)
}

fn epoch() -> Date {
    Date::constant(1970, 1, 1)
}

fn date_of_day(day: i64) -> Date {
    epoch()
        .checked_add(day.days())
        .unwrap_or(if day < 0 { Date::MIN } else { Date::MAX })
}

fn format_date(date: Date) -> String {
    date.strftime("%Y-%m-%d").to_string()
}

/// The instant of Unix seconds, held to jiff's range (years -9999 to 9999).
fn instant(unix: i64) -> jiff::Zoned {
    let clamped = unix.clamp(Timestamp::MIN.as_second(), Timestamp::MAX.as_second());
    Timestamp::from_second(clamped)
        .unwrap_or(Timestamp::UNIX_EPOCH)
        .to_zoned(TimeZone::UTC)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_known_instants() {
        assert_eq!(utc_minutes(0), "1970-01-01 00:00");
        assert_eq!(utc_minutes(1_672_653_600), "2023-01-02 10:00");
        assert_eq!(utc_minutes(951_782_400), "2000-02-29 00:00");
        assert_eq!(utc_minutes(-1), "1969-12-31 23:59");
        assert_eq!(utc_date(951_868_799), "2000-02-29");
        assert_eq!(day_date(-1), "1969-12-31");
    }

    #[test]
    fn dates_round_trip_and_impossible_ones_are_refused() {
        assert_eq!(parse_day("1970-01-01"), Some(0));
        assert_eq!(parse_day(" 2000-02-29 "), Some(951_782_400 / 86_400));
        for day in [0, 11_016, 19_358, 20_000, 30_000, 2_932_896] {
            assert_eq!(parse_day(&day_date(day)), Some(day));
        }
        for bad in [
            "",
            "2023-02-30",
            "2023-13-01",
            "2023-00-10",
            "2023-01-00",
            "2023-1-01",
            "23-01-01",
            "2023/01/01",
            "2023-01-01x",
            "+023-01-01",
            "１２３４-01-01",
            "1969-12-31",
        ] {
            assert_eq!(parse_day(bad), None, "{bad}");
        }
    }

    #[test]
    fn a_date_that_is_no_day_says_why() {
        assert_eq!(
            parse_date("2026-02-30").unwrap_err().to_string(),
            "2026-02-30 is not a date: February 2026 has no day 30"
        );
        assert_eq!(
            parse_date("2026-13-01").unwrap_err().to_string(),
            "2026-13-01 is not a date: there is no month 13"
        );
        assert_eq!(
            parse_date("tomorrow").unwrap_err().to_string(),
            "\"tomorrow\" is not a date (expected YYYY-MM-DD)"
        );
        assert_eq!(parse_date("1999-02-30").unwrap_err().year(), Some(1999));
    }

    #[test]
    fn times_in_a_named_zone_follow_daylight_saving() {
        // 2026-01-15 12:00 UTC is 13:00 in Berlin (CET), 2026-07-15 12:00 UTC is 14:00 (CEST).
        assert_eq!(
            zoned_minutes(1_768_478_400, "Europe/Berlin").unwrap(),
            "2026-01-15 13:00"
        );
        assert_eq!(
            zoned_minutes(1_784_116_800, "Europe/Berlin").unwrap(),
            "2026-07-15 14:00"
        );
        assert!(zoned_minutes(0, "Mars/Olympus_Mons").is_err());
    }
}
