//! Meaning of SOQL literals: string escapes, calendar arithmetic for date and datetime
//! values, the date literals (`TODAY`, `LAST_N_DAYS:n`, ...) and 15-character Ids.

use chrono::Datelike;

use super::ast::{DateUnit, RelativeDate};

/// Milliseconds in a day.
pub(crate) const DAY_MS: i64 = 86_400_000;

/// Walks the text between a string's quotes, handing each character to `emit` with
/// whether it was escaped (which matters for `%` and `_` in `LIKE`). Returns the
/// offending sequence (e.g. `\q`) if an escape is not one SOQL knows.
pub(crate) fn walk_escapes(raw: &str, mut emit: impl FnMut(char, bool)) -> Result<(), String> {
    let mut chars = raw.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            emit(c, false);
            continue;
        }
        let Some(e) = chars.next() else {
            return Err("\\".to_owned());
        };
        let resolved = match e {
            'n' | 'N' => '\n',
            'r' | 'R' => '\r',
            't' | 'T' => '\t',
            'b' | 'B' => '\u{8}',
            'f' | 'F' => '\u{c}',
            '\'' | '"' | '\\' | '%' | '_' => e,
            other => return Err(format!("\\{other}")),
        };
        emit(resolved, true);
    }
    Ok(())
}

/// The value of a string literal, or the offending escape sequence.
pub(crate) fn unescape(raw: &str) -> Result<String, String> {
    let mut out = String::with_capacity(raw.len());
    walk_escapes(raw, |c, _| out.push(c))?;
    Ok(out)
}

/// Days since the epoch of a proleptic Gregorian date, `None` if the day does not exist.
pub(crate) fn civil_days(year: u32, month: u32, day: u32) -> Option<i64> {
    let year = i32::try_from(year).ok()?;
    chrono::NaiveDate::from_ymd_opt(year, month, day).map(|d| i64::from(crate::value::days_from_date(d)))
}

/// Days since the epoch of the first day of a month given as `year * 12 + month0`.
/// Works for any month index (date literals with a huge `n` reach far-off years).
fn first_day_of_month(index: i64) -> i64 {
    let year = index.div_euclid(12);
    let month = index.rem_euclid(12) + 1;
    // Howard Hinnant's days_from_civil, with the day fixed at 1.
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era.saturating_mul(146_097).saturating_add(doe - 719_468)
}

/// The `[start, end)` day range a date literal covers when today is `today` (days
/// since the epoch, in the org's time zone, which is UTC).
pub(crate) fn day_range(lit: RelativeDate, today: i32) -> (i64, i64) {
    let today_i = i64::from(today);
    let date = crate::value::date_from_days(today);
    let month_index = i64::from(date.year()) * 12 + i64::from(date.month0());
    let months = |first: i64, step: i64| {
        (
            first_day_of_month(first.saturating_add(lit.start.saturating_mul(step))),
            first_day_of_month(first.saturating_add(lit.end.saturating_mul(step))),
        )
    };
    match lit.unit {
        DateUnit::Day => (today_i.saturating_add(lit.start), today_i.saturating_add(lit.end)),
        DateUnit::Week => {
            // 1970-01-01 was a Thursday; weeks start on Sunday.
            let week_start = today_i - (today_i + 4).rem_euclid(7);
            (
                week_start.saturating_add(lit.start.saturating_mul(7)),
                week_start.saturating_add(lit.end.saturating_mul(7)),
            )
        }
        DateUnit::Month => months(month_index, 1),
        DateUnit::Quarter => months(month_index - month_index.rem_euclid(3), 3),
        DateUnit::Year => months(month_index - month_index.rem_euclid(12), 12),
    }
}

/// The families of date literals that take `:n`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Span {
    /// `LAST_N_DAYS:n`, `LAST_N_WEEKS:n`, ...
    Last,
    /// `NEXT_N_DAYS:n`, ...
    Next,
    /// `N_DAYS_AGO:n`, ...
    Ago,
}

impl Span {
    /// The range `n` units make. LAST_N_DAYS includes today; LAST_N of the longer
    /// units, and every NEXT_N, leave the current unit out (Salesforce's definitions).
    pub(crate) fn range(self, unit: DateUnit, n: i64) -> RelativeDate {
        let (start, end) = match self {
            Span::Last => (-n, i64::from(unit == DateUnit::Day)),
            Span::Next => (1, n.saturating_add(1)),
            Span::Ago => (-n, 1 - n),
        };
        RelativeDate { unit, start, end }
    }
}

/// What a date literal's name stands for.
pub(crate) enum DateLiteralName {
    /// `TODAY`, `LAST_WEEK`, ...: a range on its own.
    Fixed(RelativeDate),
    /// A name that must be followed by `:n`.
    WithN(Span, DateUnit),
}

/// Looks up a date literal by name, case-insensitively.
pub(crate) fn date_literal(name: &str) -> Option<DateLiteralName> {
    let upper = name.to_ascii_uppercase();
    let fixed = |unit, start, end| Some(DateLiteralName::Fixed(RelativeDate { unit, start, end }));
    match upper.as_str() {
        "YESTERDAY" => return fixed(DateUnit::Day, -1, 0),
        "TODAY" => return fixed(DateUnit::Day, 0, 1),
        "TOMORROW" => return fixed(DateUnit::Day, 1, 2),
        // Salesforce: "starts with the current day and continues for the last 90 days",
        // 91 days in all; NEXT_90_DAYS starts tomorrow.
        "LAST_90_DAYS" => return fixed(DateUnit::Day, -90, 1),
        "NEXT_90_DAYS" => return fixed(DateUnit::Day, 1, 91),
        _ => {}
    }
    // The org's fiscal year is the calendar year (Salesforce's default), so the FISCAL
    // literals are the calendar ones.
    let unit_of = |word: &str| match word {
        "WEEK" => Some(DateUnit::Week),
        "MONTH" => Some(DateUnit::Month),
        "QUARTER" | "FISCAL_QUARTER" => Some(DateUnit::Quarter),
        "YEAR" | "FISCAL_YEAR" => Some(DateUnit::Year),
        _ => None,
    };
    for (prefix, start, end) in [("LAST_", -1, 0), ("THIS_", 0, 1), ("NEXT_", 1, 2)] {
        if let Some(unit) = upper.strip_prefix(prefix).and_then(unit_of) {
            return fixed(unit, start, end);
        }
    }
    let units_of = |word: &str| match word {
        "DAYS" => Some(DateUnit::Day),
        _ => word.strip_suffix('S').and_then(unit_of),
    };
    for (prefix, suffix, span) in [("LAST_N_", "", Span::Last), ("NEXT_N_", "", Span::Next), ("N_", "_AGO", Span::Ago)]
    {
        if let Some(unit) = upper.strip_prefix(prefix).and_then(|rest| rest.strip_suffix(suffix)).and_then(units_of) {
            return Some(DateLiteralName::WithN(span, unit));
        }
    }
    None
}

/// The 18-character form of a 15-character Id (Salesforce's case checksum), or `None`
/// if `id` is not 15 ASCII letters and digits.
pub(crate) fn id18(id: &str) -> Option<String> {
    if id.len() != 15 || !id.bytes().all(|b| b.is_ascii_alphanumeric()) {
        return None;
    }
    const ALPHABET: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ012345";
    let mut out = String::with_capacity(18);
    out.push_str(id);
    for chunk in id.as_bytes().chunks(5) {
        let bits =
            chunk.iter().enumerate().filter(|(_, b)| b.is_ascii_uppercase()).fold(0usize, |acc, (j, _)| acc | (1 << j));
        out.push(char::from(ALPHABET[bits]));
    }
    Some(out)
}
