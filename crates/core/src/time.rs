//! Units of time and distances back in time: one parser for metric windows, offsets,
//! quota periods and the lifetime models' unit.

use chrono::{Days, Months, NaiveDate};

/// A unit of time: of metric windows and offsets, of the lifetime models' frequency,
/// recency and age, and of `stratum clv --unit`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimeUnit {
    Day,
    Week,
    Month,
    Year,
}

impl TimeUnit {
    /// `day`, `week`, `month`, `year`, singular or plural.
    pub fn parse(word: &str) -> Option<TimeUnit> {
        match word.strip_suffix('s').unwrap_or(word) {
            "day" => Some(TimeUnit::Day),
            "week" => Some(TimeUnit::Week),
            "month" => Some(TimeUnit::Month),
            "year" => Some(TimeUnit::Year),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            TimeUnit::Day => "day",
            TimeUnit::Week => "week",
            TimeUnit::Month => "month",
            TimeUnit::Year => "year",
        }
    }

    /// The unit's mean length in days (the mean Gregorian month and year).
    pub fn days(self) -> f64 {
        match self {
            TimeUnit::Day => 1.0,
            TimeUnit::Week => 7.0,
            TimeUnit::Month => 365.2425 / 12.0,
            TimeUnit::Year => 365.2425,
        }
    }
}

impl std::str::FromStr for TimeUnit {
    type Err = String;
    fn from_str(s: &str) -> Result<TimeUnit, String> {
        TimeUnit::parse(s).ok_or_else(|| format!("unknown unit `{s}`; use day, week or month"))
    }
}

/// The longest period a window or offset may span.
pub const MAX_WINDOW_YEARS: u32 = 200;

/// A distance back in time, e.g. "12 months".
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Offset {
    pub amount: u32,
    pub unit: TimeUnit,
}

impl Offset {
    pub fn parse(text: &str) -> Result<Self, String> {
        let mut parts = text.split_whitespace();
        let (Some(n), Some(unit), None) = (parts.next(), parts.next(), parts.next()) else {
            return Err(format!(
                "`{text}` is not a period; write e.g. \"12 months\" or \"90 days\""
            ));
        };
        let amount: u32 = n
            .parse()
            .map_err(|_| format!("`{n}` in `{text}` is not a whole number"))?;
        let unit = TimeUnit::parse(unit).ok_or_else(|| {
            format!(
                "unknown unit `{}`; use days, weeks, months or years",
                unit.trim_end_matches('s')
            )
        })?;
        // Dates are computed back from as_of; a window past this reaches before any data
        // (and past what a calendar date can hold).
        let limit = match unit {
            TimeUnit::Day => MAX_WINDOW_YEARS * 366,
            TimeUnit::Week => MAX_WINDOW_YEARS * 53,
            TimeUnit::Month => MAX_WINDOW_YEARS * 12,
            TimeUnit::Year => MAX_WINDOW_YEARS,
        };
        if amount > limit {
            return Err(format!(
                "`{text}` is longer than {MAX_WINDOW_YEARS} years; write a shorter period"
            ));
        }
        Ok(Self { amount, unit })
    }

    /// `date` moved back by this offset.
    pub fn before(self, date: NaiveDate) -> NaiveDate {
        let n = self.amount;
        match self.unit {
            TimeUnit::Day => date - Days::new(n.into()),
            TimeUnit::Week => date - Days::new(u64::from(n) * 7),
            TimeUnit::Month => date - Months::new(n),
            TimeUnit::Year => date - Months::new(n * 12),
        }
    }
}
