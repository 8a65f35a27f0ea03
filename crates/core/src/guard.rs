//! Input guards: how many bad rows a source may have and how far it may shrink from one
//! recorded run to the next before a run stops. An export cut short or mostly unreadable
//! must stop a run, not become history that wipes holds and ownership.

use std::fmt;

/// How many rows of a source may be rejected: a count, or a share of the rows read.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum RejectLimit {
    Rows(u64),
    /// A fraction in [0, 1].
    Share(f64),
}

impl RejectLimit {
    /// The default: 1% of a source's rows.
    pub const DEFAULT: RejectLimit = RejectLimit::Share(0.01);

    /// Whether `rejected` of `read` rows is over the limit.
    pub fn exceeded(self, rejected: u64, read: u64) -> bool {
        match self {
            RejectLimit::Rows(n) => rejected > n,
            RejectLimit::Share(s) => rejected > 0 && rejected as f64 > s * read as f64,
        }
    }
}

impl Default for RejectLimit {
    fn default() -> Self {
        Self::DEFAULT
    }
}

impl fmt::Display for RejectLimit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RejectLimit::Rows(n) => write!(f, "{n} rows"),
            RejectLimit::Share(s) => write!(f, "{}%", crate::fmt_num(s * 100.0)),
        }
    }
}

impl std::str::FromStr for RejectLimit {
    type Err = String;

    /// `"1%"` (a share of the rows read) or `"50"` (a number of rows).
    fn from_str(s: &str) -> Result<Self, String> {
        let s = s.trim();
        if let Some(p) = s.strip_suffix('%') {
            match p.trim().parse::<f64>() {
                Ok(v) if (0.0..=100.0).contains(&v) => Ok(RejectLimit::Share(v / 100.0)),
                _ => Err(format!(
                    "`{s}` is not a share between 0% and 100% (write e.g. \"1%\")"
                )),
            }
        } else {
            s.parse::<u64>().map(RejectLimit::Rows).map_err(|_| {
                format!("`{s}` is neither a number of rows nor a share (write e.g. 50 or \"1%\")")
            })
        }
    }
}

/// `[policy] max_rejects` and `max_shrink`, checked.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Guards {
    pub max_rejects: RejectLimit,
    /// The largest drop in a source's rows since the last recorded run, as a fraction
    /// (0.5: a source may lose half its rows, not more).
    pub max_shrink: f64,
    /// `[policy] non_finite = "error"`: a metric that is infinite or NaN for any customer
    /// stops the run (default: a warning, and the value counts as missing).
    pub non_finite_is_error: bool,
}

impl Guards {
    pub const DEFAULT_MAX_SHRINK: f64 = 0.5;

    /// Whether a source that had `before` rows at the last recorded run and has `now` shrank
    /// past the limit. A source with no rows always has.
    pub fn shrank(&self, before: Option<u64>, now: u64) -> bool {
        now == 0 || before.is_some_and(|b| (now as f64) < (b as f64) * (1.0 - self.max_shrink))
    }
}

impl Default for Guards {
    fn default() -> Self {
        Guards {
            max_rejects: RejectLimit::DEFAULT,
            max_shrink: Self::DEFAULT_MAX_SHRINK,
            non_finite_is_error: false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_parse_and_apply() {
        assert_eq!("1%".parse::<RejectLimit>(), Ok(RejectLimit::Share(0.01)));
        assert_eq!("50".parse::<RejectLimit>(), Ok(RejectLimit::Rows(50)));
        assert!("lots".parse::<RejectLimit>().is_err());
        assert!("150%".parse::<RejectLimit>().is_err());
        assert!(RejectLimit::Share(0.01).exceeded(1, 5));
        assert!(!RejectLimit::Share(0.01).exceeded(1, 100));
        assert!(RejectLimit::Share(0.01).exceeded(2, 100));
        assert!(!RejectLimit::Share(0.0).exceeded(0, 100));
        assert!(RejectLimit::Rows(0).exceeded(1, 1_000_000));
        assert_eq!(RejectLimit::Share(0.01).to_string(), "1%");
        let g = Guards::default();
        assert!(g.shrank(None, 0));
        assert!(g.shrank(Some(16_548), 5));
        assert!(!g.shrank(Some(16_548), 8_274));
        assert!(g.shrank(Some(16_548), 8_273));
        assert!(!g.shrank(None, 1));
    }
}
