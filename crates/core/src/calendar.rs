//! Working days: Monday to Friday, less the calendar file's holidays, plus its extra working
//! days (China moves weekends to make bridges, 调休: a Sunday before a holiday week is
//! worked). Follow-up cycles, payment deadlines and coverage count in these days.
//!
//! The file is CSV with a header `date,kind,note`: `date` as `YYYY-MM-DD`, `kind` either
//! `holiday` or `workday`, `note` free text. A bad line is refused with its file and line.

use std::collections::BTreeMap;

use chrono::{Datelike, Days, NaiveDate, Weekday};

/// What a calendar file says of one date.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DayKind {
    /// Not worked though a weekday.
    Holiday,
    /// Worked though a weekend day.
    Workday,
}

/// The working-day calendar.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Calendar {
    days: BTreeMap<NaiveDate, (DayKind, String)>,
}

/// A line of a calendar file that cannot be read.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{file}:{line}: {message}")]
pub struct CalendarError {
    pub file: String,
    pub line: usize,
    pub message: String,
}

impl Calendar {
    /// Reads a calendar file's text (`file` names it in errors).
    pub fn parse(text: &str, file: &str) -> Result<Calendar, CalendarError> {
        let err = |line: usize, message: String| CalendarError {
            file: file.to_string(),
            line,
            message,
        };
        let mut reader = csv::ReaderBuilder::new()
            .has_headers(true)
            .flexible(false)
            .from_reader(text.as_bytes());
        let headers = reader
            .headers()
            .map_err(|e| err(1, format!("cannot read the header: {e}")))?
            .clone();
        let want = ["date", "kind", "note"];
        if headers.iter().map(str::trim).collect::<Vec<_>>() != want {
            return Err(err(
                1,
                format!(
                    "the header is `{}`; a calendar has `date,kind,note`",
                    headers.iter().collect::<Vec<_>>().join(",")
                ),
            ));
        }
        let mut days = BTreeMap::new();
        for record in reader.records() {
            let record = record.map_err(|e| {
                let line = e.position().map_or(0, |p| p.line() as usize);
                err(line, format!("{e}"))
            })?;
            let line = record.position().map_or(0, |p| p.line() as usize);
            let date_text = record.get(0).unwrap_or("").trim();
            let date = NaiveDate::parse_from_str(date_text, "%Y-%m-%d")
                .map_err(|_| err(line, format!("date `{date_text}` is not YYYY-MM-DD")))?;
            let kind = match record.get(1).unwrap_or("").trim() {
                "holiday" => DayKind::Holiday,
                "workday" => DayKind::Workday,
                other => {
                    return Err(err(
                        line,
                        format!("kind `{other}` is neither `holiday` nor `workday`"),
                    ));
                }
            };
            let weekend = matches!(date.weekday(), Weekday::Sat | Weekday::Sun);
            match (kind, weekend) {
                (DayKind::Workday, false) => {
                    return Err(err(
                        line,
                        format!(
                            "{date} is a {} already: only a weekend day can be an extra workday",
                            date.weekday()
                        ),
                    ));
                }
                (DayKind::Holiday, true) => {
                    return Err(err(
                        line,
                        format!(
                            "{date} is a {}: weekends are not worked already",
                            date.weekday()
                        ),
                    ));
                }
                _ => {}
            }
            let note = record.get(2).unwrap_or("").trim().to_string();
            if days.insert(date, (kind, note)).is_some() {
                return Err(err(line, format!("{date} is listed twice")));
            }
        }
        Ok(Calendar { days })
    }

    /// Whether people work on `d`.
    pub fn is_working(&self, d: NaiveDate) -> bool {
        match self.days.get(&d) {
            Some((DayKind::Holiday, _)) => false,
            Some((DayKind::Workday, _)) => true,
            None => !matches!(d.weekday(), Weekday::Sat | Weekday::Sun),
        }
    }

    /// The note of a listed date (a holiday's name).
    pub fn note(&self, d: NaiveDate) -> Option<&str> {
        self.days.get(&d).map(|(_, note)| note.as_str())
    }

    /// The `n`-th working day after `d` (`n = 0`: `d` itself if it is worked, else the next
    /// working day).
    pub fn add_working_days(&self, d: NaiveDate, n: u32) -> NaiveDate {
        let mut day = d;
        if n == 0 {
            while !self.is_working(day) {
                day = day + Days::new(1);
            }
            return day;
        }
        let mut left = n;
        while left > 0 {
            day = day + Days::new(1);
            if self.is_working(day) {
                left -= 1;
            }
        }
        day
    }

    /// Working days after `from` up to and including `to` (0 when `to` is not after it).
    pub fn working_days_between(&self, from: NaiveDate, to: NaiveDate) -> u32 {
        let mut n = 0;
        let mut day = from;
        while day < to {
            day = day + Days::new(1);
            n += u32::from(self.is_working(day));
        }
        n
    }

    /// Working days of the month holding `d`.
    pub fn working_days_in_month(&self, d: NaiveDate) -> u32 {
        let first = d.with_day(1).expect("every month has a first day");
        let next = first
            .checked_add_months(chrono::Months::new(1))
            .expect("dates far from the end of time");
        let mut n = 0;
        let mut day = first;
        while day < next {
            n += u32::from(self.is_working(day));
            day = day + Days::new(1);
        }
        n
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> NaiveDate {
        NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
    }

    // National Day 2026: October 1–7 off; Sunday September 20 and Saturday October 10 worked.
    const GOLDEN_WEEK: &str = "date,kind,note\n\
        2026-09-20,workday,National Day bridge\n\
        2026-10-01,holiday,National Day\n2026-10-02,holiday,National Day\n\
        2026-10-05,holiday,National Day\n2026-10-06,holiday,National Day\n\
        2026-10-07,holiday,National Day\n2026-10-10,workday,National Day bridge\n";

    #[test]
    fn holidays_and_moved_weekends_count_as_china_works_them() {
        let c = Calendar::parse(GOLDEN_WEEK, "calendar.csv").unwrap();
        assert!(c.is_working(d("2026-09-20")), "a Sunday worked");
        assert!(!c.is_working(d("2026-10-01")));
        assert!(!c.is_working(d("2026-10-03")), "a Saturday in the holiday");
        assert!(c.is_working(d("2026-10-10")), "a Saturday worked");
        assert!(c.is_working(d("2026-10-08")));
        // Thursday September 30 + 1 working day: Thursday October 8, over the holiday.
        assert_eq!(c.add_working_days(d("2026-09-30"), 1), d("2026-10-08"));
        assert_eq!(c.add_working_days(d("2026-10-09"), 1), d("2026-10-10"));
        assert_eq!(c.add_working_days(d("2026-10-03"), 0), d("2026-10-08"));
        assert_eq!(c.working_days_between(d("2026-09-30"), d("2026-10-12")), 4);
        assert_eq!(c.working_days_between(d("2026-10-12"), d("2026-10-12")), 0);
        // October 2026: 22 weekdays, 5 of them off, one Saturday worked.
        assert_eq!(c.working_days_in_month(d("2026-10-15")), 18);
        assert_eq!(c.working_days_in_month(d("2026-09-01")), 23);
        assert_eq!(c.note(d("2026-10-01")), Some("National Day"));
        // Without a file: Monday to Friday.
        let plain = Calendar::default();
        assert_eq!(plain.add_working_days(d("2026-10-02"), 1), d("2026-10-05"));
    }

    #[test]
    fn a_bad_line_names_its_file_and_line() {
        let cases = [
            (
                "date,kind\n2026-10-01,holiday\n",
                1,
                "a calendar has `date,kind,note`",
            ),
            (
                "date,kind,note\n2026-10-01,holiday,x\n2026-13-01,holiday,x\n",
                3,
                "date `2026-13-01` is not YYYY-MM-DD",
            ),
            (
                "date,kind,note\n2026-10-01,off,x\n",
                2,
                "kind `off` is neither",
            ),
            (
                "date,kind,note\n2026-10-01,workday,x\n",
                2,
                "only a weekend day can be an extra workday",
            ),
            (
                "date,kind,note\n2026-10-03,holiday,x\n",
                2,
                "weekends are not worked already",
            ),
            (
                "date,kind,note\n2026-10-01,holiday,x\n2026-10-01,holiday,y\n",
                3,
                "listed twice",
            ),
            (
                "date,kind,note\n2026-10-01,holiday\n",
                2,
                "found record with 2 fields",
            ),
        ];
        for (text, line, message) in cases {
            let e = Calendar::parse(text, "data/calendar.csv").unwrap_err();
            assert_eq!(
                (e.file.as_str(), e.line),
                ("data/calendar.csv", line),
                "{text}: {e}"
            );
            assert!(e.message.contains(message), "{text}: {e}");
            assert!(
                e.to_string()
                    .starts_with(&format!("data/calendar.csv:{line}: "))
            );
        }
    }
}
