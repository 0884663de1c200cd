//! Dates with a stated precision (a year, a quarter, a month or a day) and the
//! periods they stand for. "Overdue" is judged against the END of a period.

use time::{Date, Month};

use crate::error::FieldViolation;
use crate::proto::{ApproximateDate, CalendarDate, DatePrecision};

/// Earliest year accepted.
pub const MIN_YEAR: i32 = 1900;
/// Latest year accepted.
pub const MAX_YEAR: i32 = 2200;

/// The first and last day of the period an approximate date names, or the
/// violations that make it invalid (`field` is its full path).
pub fn period(date: &ApproximateDate, field: &str) -> Result<(Date, Date), Vec<FieldViolation>> {
    let mut v = Vec::new();
    let precision = DatePrecision::try_from(date.precision).unwrap_or(DatePrecision::Unspecified);
    if precision == DatePrecision::Unspecified {
        v.push(FieldViolation::new(
            format!("{field}.precision"),
            "required: YEAR, QUARTER, MONTH or DAY",
        ));
    }
    if !(MIN_YEAR..=MAX_YEAR).contains(&date.year) {
        v.push(FieldViolation::new(
            format!("{field}.year"),
            format!("must be {MIN_YEAR} to {MAX_YEAR}, is {}", date.year),
        ));
    }
    let wants_quarter = precision == DatePrecision::Quarter;
    let wants_month = matches!(precision, DatePrecision::Month | DatePrecision::Day);
    let wants_day = precision == DatePrecision::Day;
    if wants_quarter && !(1..=4).contains(&date.quarter) {
        v.push(FieldViolation::new(
            format!("{field}.quarter"),
            format!("must be 1 to 4 with QUARTER precision, is {}", date.quarter),
        ));
    }
    if !wants_quarter && date.quarter != 0 {
        v.push(FieldViolation::new(
            format!("{field}.quarter"),
            "must be 0 unless precision is QUARTER",
        ));
    }
    if wants_month && !(1..=12).contains(&date.month) {
        v.push(FieldViolation::new(
            format!("{field}.month"),
            format!(
                "must be 1 to 12 with {} precision, is {}",
                precision.as_str_name(),
                date.month
            ),
        ));
    }
    if !wants_month && date.month != 0 {
        v.push(FieldViolation::new(
            format!("{field}.month"),
            "must be 0 unless precision is MONTH or DAY",
        ));
    }
    if !wants_day && date.day != 0 {
        v.push(FieldViolation::new(
            format!("{field}.day"),
            "must be 0 unless precision is DAY",
        ));
    }
    if !v.is_empty() {
        return Err(v);
    }
    let month = |m: i32| Month::try_from(m as u8).unwrap_or(Month::January);
    let first = |y: i32, m: i32| Date::from_calendar_date(y, month(m), 1);
    let last = |y: i32, m: i32| {
        let mo = month(m);
        Date::from_calendar_date(y, mo, mo.length(y))
    };
    let range = match precision {
        DatePrecision::Year => first(date.year, 1).and_then(|a| Ok((a, last(date.year, 12)?))),
        DatePrecision::Quarter => {
            let m = (date.quarter - 1) * 3 + 1;
            first(date.year, m).and_then(|a| Ok((a, last(date.year, m + 2)?)))
        }
        DatePrecision::Month => {
            first(date.year, date.month).and_then(|a| Ok((a, last(date.year, date.month)?)))
        }
        DatePrecision::Day | DatePrecision::Unspecified => {
            Date::from_calendar_date(date.year, month(date.month), date.day as u8).map(|d| (d, d))
        }
    };
    range.map_err(|_| {
        vec![FieldViolation::new(
            format!("{field}.day"),
            format!(
                "{}-{:02}-{:02} is not a day of the calendar",
                date.year, date.month, date.day
            ),
        )]
    })
}

/// The last day of the period, for a date known to be valid.
pub fn period_end(date: &ApproximateDate) -> Option<Date> {
    period(date, "").ok().map(|(_, end)| end)
}

/// A calendar day as a `time::Date`, or the violation naming `field`.
pub fn calendar(date: &CalendarDate, field: &str) -> Result<Date, FieldViolation> {
    if !(MIN_YEAR..=MAX_YEAR).contains(&date.year) {
        return Err(FieldViolation::new(
            format!("{field}.year"),
            format!("must be {MIN_YEAR} to {MAX_YEAR}, is {}", date.year),
        ));
    }
    let month = u8::try_from(date.month)
        .ok()
        .and_then(|m| Month::try_from(m).ok())
        .ok_or_else(|| {
            FieldViolation::new(
                format!("{field}.month"),
                format!("must be 1 to 12, is {}", date.month),
            )
        })?;
    let day = u8::try_from(date.day).unwrap_or(0);
    Date::from_calendar_date(date.year, month, day).map_err(|_| {
        FieldViolation::new(
            format!("{field}.day"),
            format!(
                "{}-{:02}-{:02} is not a day of the calendar",
                date.year, date.month, date.day
            ),
        )
    })
}

/// A `time::Date` as a proto calendar day.
pub fn to_calendar(date: Date) -> CalendarDate {
    CalendarDate {
        year: date.year(),
        month: u8::from(date.month()) as i32,
        day: date.day() as i32,
    }
}

/// Today in UTC.
pub fn today() -> Date {
    time::OffsetDateTime::now_utc().date()
}

/// The current time as a protobuf timestamp.
pub fn now() -> pbjson_types::Timestamp {
    let t = time::OffsetDateTime::now_utc();
    pbjson_types::Timestamp {
        seconds: t.unix_timestamp(),
        nanos: t.nanosecond() as i32,
    }
}

/// An ApproximateDate of DAY precision.
pub fn day(year: i32, month: i32, day: i32) -> ApproximateDate {
    ApproximateDate {
        precision: DatePrecision::Day as i32,
        year,
        quarter: 0,
        month,
        day,
    }
}

/// A calendar day as an ApproximateDate of DAY precision.
pub fn as_day(date: Date) -> ApproximateDate {
    day(
        date.year(),
        i32::from(u8::from(date.month())),
        i32::from(date.day()),
    )
}

/// Days since 1970-01-01 as a sortable key.
pub fn day_key(date: Date) -> i32 {
    date.to_julian_day()
}

/// Formats an approximate date the way people write it: `2024`, `2024-Q1`,
/// `2024-03`, `2024-03-15`.
pub fn display(date: &ApproximateDate) -> String {
    match DatePrecision::try_from(date.precision).unwrap_or(DatePrecision::Unspecified) {
        DatePrecision::Year => format!("{}", date.year),
        DatePrecision::Quarter => format!("{}-Q{}", date.year, date.quarter),
        DatePrecision::Month => format!("{}-{:02}", date.year, date.month),
        DatePrecision::Day => format!("{}-{:02}-{:02}", date.year, date.month, date.day),
        DatePrecision::Unspecified => "unknown".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::date;

    fn approx(
        precision: DatePrecision,
        year: i32,
        quarter: i32,
        month: i32,
        day: i32,
    ) -> ApproximateDate {
        ApproximateDate {
            precision: precision as i32,
            year,
            quarter,
            month,
            day,
        }
    }

    #[test]
    fn periods_span_their_whole_precision() {
        assert_eq!(
            period(&approx(DatePrecision::Year, 2024, 0, 0, 0), "d"),
            Ok((date!(2024 - 01 - 01), date!(2024 - 12 - 31)))
        );
        assert_eq!(
            period(&approx(DatePrecision::Quarter, 2024, 1, 0, 0), "d"),
            Ok((date!(2024 - 01 - 01), date!(2024 - 03 - 31)))
        );
        assert_eq!(
            period(&approx(DatePrecision::Quarter, 2024, 4, 0, 0), "d"),
            Ok((date!(2024 - 10 - 01), date!(2024 - 12 - 31)))
        );
        assert_eq!(
            period(&approx(DatePrecision::Month, 2024, 0, 2, 0), "d"),
            Ok((date!(2024 - 02 - 01), date!(2024 - 02 - 29)))
        );
        assert_eq!(
            period(&approx(DatePrecision::Day, 2023, 0, 12, 8), "d"),
            Ok((date!(2023 - 12 - 08), date!(2023 - 12 - 08)))
        );
    }

    #[test]
    fn invalid_dates_name_every_bad_part() {
        let v = period(&approx(DatePrecision::Quarter, 1800, 5, 3, 0), "x").unwrap_err();
        let fields: Vec<_> = v.iter().map(|v| v.field.as_str()).collect();
        assert_eq!(fields, vec!["x.year", "x.quarter", "x.month"]);
        let v = period(&approx(DatePrecision::Day, 2023, 0, 2, 30), "x").unwrap_err();
        assert_eq!(v[0].field, "x.day");
        let v = period(&approx(DatePrecision::Unspecified, 2023, 0, 0, 0), "x").unwrap_err();
        assert_eq!(v[0].field, "x.precision");
    }

    #[test]
    fn calendar_days_are_checked() {
        assert_eq!(
            calendar(
                &CalendarDate {
                    year: 2024,
                    month: 2,
                    day: 29
                },
                "d"
            ),
            Ok(date!(2024 - 02 - 29))
        );
        assert_eq!(
            calendar(
                &CalendarDate {
                    year: 2023,
                    month: 2,
                    day: 29
                },
                "d"
            )
            .unwrap_err()
            .field,
            "d.day"
        );
        assert_eq!(
            calendar(
                &CalendarDate {
                    year: 2023,
                    month: 13,
                    day: 1
                },
                "d"
            )
            .unwrap_err()
            .field,
            "d.month"
        );
        assert_eq!(
            to_calendar(date!(2024 - 03 - 05)),
            CalendarDate {
                year: 2024,
                month: 3,
                day: 5
            }
        );
    }
}

/// Parses a date as people write it, at its precision: `2024`, `2024-Q1`,
/// `2024-03` or `2024-03-15`. The result still has to pass [`period`].
pub fn parse(text: &str) -> Option<ApproximateDate> {
    let text = text.trim();
    let parts: Vec<&str> = text.split('-').collect();
    let num = |s: &str| s.parse::<i32>().ok();
    let mut d = ApproximateDate {
        year: num(parts.first()?)?,
        ..Default::default()
    };
    match parts.as_slice() {
        [_] => d.precision = DatePrecision::Year as i32,
        [_, q] if q.starts_with(['Q', 'q']) => {
            d.precision = DatePrecision::Quarter as i32;
            d.quarter = num(&q[1..])?;
        }
        [_, m] => {
            d.precision = DatePrecision::Month as i32;
            d.month = num(m)?;
        }
        [_, m, day] => {
            d.precision = DatePrecision::Day as i32;
            d.month = num(m)?;
            d.day = num(day)?;
        }
        _ => return None,
    }
    period(&d, "").ok().map(|_| d)
}

/// A calendar day written `2024-03-15`; `None` for anything else (another
/// precision, or not a day of the calendar).
pub fn parse_day(text: &str) -> Option<CalendarDate> {
    parse(text)
        .filter(|d| d.precision == DatePrecision::Day as i32)
        .map(|d| CalendarDate {
            year: d.year,
            month: d.month,
            day: d.day,
        })
}

#[cfg(test)]
mod parse_tests {
    use super::*;

    #[test]
    fn parses_each_precision() {
        assert_eq!(parse("2024").map(|d| display(&d)), Some("2024".into()));
        assert_eq!(
            parse("2024-Q1").map(|d| display(&d)),
            Some("2024-Q1".into())
        );
        assert_eq!(
            parse("2024-03").map(|d| display(&d)),
            Some("2024-03".into())
        );
        assert_eq!(
            parse("2024-03-15").map(|d| display(&d)),
            Some("2024-03-15".into())
        );
        assert_eq!(parse("2024-Q5"), None);
        assert_eq!(parse("2023-02-30"), None);
        assert_eq!(parse("soon"), None);
    }
}
