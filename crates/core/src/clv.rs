//! Customer lifetime models: BG/NBD (Fader, Hardie & Lee 2005) for how many purchases a
//! customer will make and whether it is still "alive", and the Gamma-Gamma model of spend
//! per purchase (Fader & Hardie 2013). Both are fitted by maximum likelihood over the
//! per-customer summary (frequency, recency, age T, mean repeat spend).
//!
//! Crates: `libm` for the log-gamma function (the Rust project's port of musl's libm, exact to
//! an ulp or two), `statrs` for the digamma function, `argmin` for the optimisers (see
//! [`likelihood`] for how the fits are made fast). The Gaussian hypergeometric function
//! the conditional expectation needs has no well-kept crate; its series is summed here until
//! the terms vanish, with an error (not NaN) if it does not converge.

mod likelihood;

use std::collections::BTreeMap;

use chrono::NaiveDate;
use likelihood::{BgNbdSample, GammaGammaSample};

/// One customer's purchase history, in the model's time unit.
#[derive(Debug, Clone, PartialEq)]
pub struct CustomerSummary {
    pub customer_id: String,
    /// Repeat purchases: purchase days after the first (several on a day count as one).
    pub frequency: u32,
    /// Time from the first to the last purchase.
    pub recency: f64,
    /// Time from the first purchase to the end of the observation (`as_of`).
    pub age: f64,
    /// Mean amount per repeat purchase day (0 without repeats).
    pub monetary: f64,
}

/// Why a model could not be fitted.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ClvError {
    #[error("no customers to fit the model on")]
    NoCustomers,
    #[error(
        "the Gamma-Gamma model needs customers with repeat purchases and positive spend; none has both"
    )]
    NoRepeatBuyers,
    #[error("the {model} fit did not converge after {iterations} iterations ({reason})")]
    NotConverged {
        model: &'static str,
        iterations: u64,
        reason: String,
    },
    #[error("{0}")]
    Numeric(String),
}

pub use crate::time::TimeUnit;

impl CustomerSummary {
    /// The summary from a customer's purchase days: how many distinct days, the first and
    /// the last, the total spend over all of them and the first day's spend (which the spend
    /// model leaves out: it describes repeat purchases).
    #[allow(clippy::too_many_arguments)]
    pub fn from_days(
        customer_id: String,
        days: u32,
        first: NaiveDate,
        last: NaiveDate,
        total: f64,
        first_day_amount: f64,
        as_of: NaiveDate,
        unit: TimeUnit,
    ) -> CustomerSummary {
        let span = |a: NaiveDate, b: NaiveDate| (b - a).num_days() as f64 / unit.days();
        let frequency = days.saturating_sub(1);
        CustomerSummary {
            customer_id,
            frequency,
            recency: span(first, last),
            age: span(first, as_of),
            monetary: if frequency == 0 {
                0.0
            } else {
                (total - first_day_amount) / f64::from(frequency)
            },
        }
    }
}

/// Builds each customer's summary from a transaction log as of `as_of` (later transactions
/// are ignored). Purchases on one day count as one, their amounts added.
pub fn summarise<'a>(
    transactions: impl IntoIterator<Item = (&'a str, NaiveDate, f64)>,
    as_of: NaiveDate,
    unit: TimeUnit,
) -> Vec<CustomerSummary> {
    let mut days: BTreeMap<&str, BTreeMap<NaiveDate, f64>> = BTreeMap::new();
    for (customer, date, amount) in transactions {
        if date <= as_of {
            *days.entry(customer).or_default().entry(date).or_default() += amount;
        }
    }
    days.into_iter()
        .map(|(customer, by_day)| {
            let (&first, &first_amount) = by_day.iter().next().expect("a customer has a purchase");
            let last = *by_day
                .keys()
                .next_back()
                .expect("a customer has a purchase");
            CustomerSummary::from_days(
                customer.to_string(),
                by_day.len() as u32,
                first,
                last,
                by_day.values().sum(),
                first_amount,
                as_of,
                unit,
            )
        })
        .collect()
}

/// What a fit reports besides the parameters.
#[derive(Debug, Clone, PartialEq)]
pub struct FitReport {
    pub log_likelihood: f64,
    pub iterations: u64,
    /// How the optimum was found: "L-BFGS", or "Nelder-Mead (…why L-BFGS failed)".
    pub method: String,
    /// Evaluations of the likelihood over all the customers, standard errors included.
    pub passes: u64,
    /// Standard errors of the parameters, in their order (from the inverse of the observed
    /// information: the negated Hessian of the log-likelihood, by central differences).
    pub standard_errors: Vec<f64>,
}

/// BG/NBD parameters: purchase rate ~ Gamma(r, α); dropout probability ~ Beta(a, b).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BgNbd {
    pub r: f64,
    pub alpha: f64,
    pub a: f64,
    pub b: f64,
}

fn lgamma(x: f64) -> f64 {
    libm::lgamma(x)
}

impl BgNbd {
    /// One customer's log-likelihood (Fader, Hardie & Lee 2005, eq. 6).
    pub fn log_likelihood(&self, x: f64, t_x: f64, t: f64) -> f64 {
        let BgNbd { r, alpha, a, b } = *self;
        let a1 = lgamma(r + x) - lgamma(r) + r * alpha.ln();
        let a2 = lgamma(a + b) + lgamma(b + x) - lgamma(b) - lgamma(a + b + x);
        let a3 = -(r + x) * (alpha + t).ln();
        if x > 0.0 {
            let a4 = a.ln() - (b + x - 1.0).ln() - (r + x) * (alpha + t_x).ln();
            let m = a3.max(a4);
            a1 + a2 + m + ((a3 - m).exp() + (a4 - m).exp()).ln()
        } else {
            a1 + a2 + a3
        }
    }

    /// Fits by maximum likelihood (see [`likelihood`]).
    pub fn fit(customers: &[CustomerSummary]) -> Result<(BgNbd, FitReport), ClvError> {
        if customers.is_empty() {
            return Err(ClvError::NoCustomers);
        }
        // Start at r = 1, α = mean age, a = 1, b = 1 (in logs).
        let sample = BgNbdSample::new(customers);
        let start = [0.0, sample.mean_age().max(1e-3).ln(), 0.0, 0.0];
        let (p, report) = likelihood::fit(&sample, &start)?;
        Ok((
            BgNbd {
                r: p[0],
                alpha: p[1],
                a: p[2],
                b: p[3],
            },
            report,
        ))
    }

    /// Probability that a customer with this history is still active.
    pub fn p_alive(&self, x: f64, t_x: f64, t: f64) -> f64 {
        if x == 0.0 {
            return 1.0;
        }
        let BgNbd { r, alpha, a, b } = *self;
        let odds = (a / (b + x - 1.0)) * ((alpha + t) / (alpha + t_x)).powf(r + x);
        1.0 / (1.0 + odds)
    }

    /// Expected purchases in the next `horizon` time units (eq. 10).
    pub fn expected_purchases(
        &self,
        horizon: f64,
        x: f64,
        t_x: f64,
        t: f64,
    ) -> Result<f64, ClvError> {
        let BgNbd { r, alpha, a, b } = *self;
        if horizon <= 0.0 {
            return Ok(0.0);
        }
        let z = horizon / (alpha + t + horizon);
        let f = hyp2f1(r + x, b + x, a + b + x - 1.0, z)?;
        let head = (a + b + x - 1.0) / (a - 1.0);
        let tail = 1.0 - ((alpha + t) / (alpha + t + horizon)).powf(r + x) * f;
        let denom = if x > 0.0 {
            1.0 + (a / (b + x - 1.0)) * ((alpha + t) / (alpha + t_x)).powf(r + x)
        } else {
            1.0
        };
        let value = head * tail / denom;
        if value.is_finite() {
            Ok(value)
        } else {
            Err(ClvError::Numeric(format!(
                "expected purchases are not finite for x={x}, t_x={t_x}, T={t} (the fitted a = {a}; a = 1 makes them undefined)"
            )))
        }
    }
}

/// Gamma-Gamma parameters: spend per purchase ~ Gamma(p, ν), ν ~ Gamma(q, γ).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct GammaGamma {
    pub p: f64,
    pub q: f64,
    pub v: f64,
}

impl GammaGamma {
    /// One repeat customer's log-likelihood of its mean spend `m` over `x` purchases.
    pub fn log_likelihood(&self, x: f64, m: f64) -> f64 {
        let GammaGamma { p, q, v } = *self;
        lgamma(p * x + q) - lgamma(p * x) - lgamma(q)
            + q * v.ln()
            + (p * x - 1.0) * m.ln()
            + p * x * x.ln()
            - (p * x + q) * (v + m * x).ln()
    }

    /// Fits on the customers with repeat purchases and positive mean spend.
    pub fn fit(customers: &[CustomerSummary]) -> Result<(GammaGamma, FitReport), ClvError> {
        let sample = GammaGammaSample::new(customers).ok_or(ClvError::NoRepeatBuyers)?;
        let start = [0.0, 0.0, sample.mean_spend().max(1e-3).ln()];
        let (p, report) = likelihood::fit(&sample, &start)?;
        Ok((
            GammaGamma {
                p: p[0],
                q: p[1],
                v: p[2],
            },
            report,
        ))
    }

    /// Expected spend per purchase given `x` repeat purchases averaging `m`.
    pub fn expected_spend(&self, x: f64, m: f64) -> f64 {
        let GammaGamma { p, q, v } = *self;
        (v + x * m) * p / (p * x + q - 1.0)
    }
}

/// Customer lifetime value: the expected spend of the purchases in each of `periods`
/// consecutive periods of `period` time units, each discounted by `(1 + discount)^i` for the
/// i-th period. A period's purchases are the growth of the conditional expectation over it;
/// spend per purchase is Gamma-Gamma's conditional expectation (for customers without
/// repeats, the population mean).
pub fn lifetime_value(
    purchases: &BgNbd,
    spend: &GammaGamma,
    customer: &CustomerSummary,
    periods: u32,
    period: f64,
    discount: f64,
) -> Result<f64, ClvError> {
    let (x, t_x, t) = (
        f64::from(customer.frequency),
        customer.recency,
        customer.age,
    );
    // Gamma-Gamma describes positive spend: a customer whose refunds outweigh the purchases
    // counts as having spent nothing (lifetimes users clip the same way).
    let per_purchase = spend.expected_spend(x, customer.monetary.max(0.0));
    let mut value = 0.0;
    let mut before = 0.0;
    for i in 1..=periods {
        let upto = purchases.expected_purchases(f64::from(i) * period, x, t_x, t)?;
        value += (upto - before) * per_purchase / (1.0 + discount).powi(i as i32);
        before = upto;
    }
    Ok(value)
}

/// What a lifetime metric measures for a customer (`lifetime = "…"` in a policy).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Measure {
    /// Probability the customer is still active.
    PAlive,
    /// Expected purchases in the next `horizon` time units.
    ExpectedPurchases {
        horizon: f64,
    },
    /// Expected spend per purchase (Gamma-Gamma).
    ExpectedSpend,
    /// Lifetime value over `months` calendar months at a monthly `discount` rate.
    Clv {
        months: u32,
        discount: f64,
    },
    /// The summary itself: repeat purchase days, recency, age, mean repeat spend.
    Frequency,
    Recency,
    Age,
    Monetary,
}

impl Measure {
    /// Parses `p_alive`, `expected_purchases(26)`, `clv(12, 0.01)`, `frequency`, ….
    pub fn parse(text: &str) -> Result<Measure, String> {
        let text = text.trim();
        let (name, args) = match text.split_once('(') {
            Some((name, rest)) => {
                let Some(args) = rest.trim_end().strip_suffix(')') else {
                    return Err(format!("`{text}` lacks its closing parenthesis"));
                };
                let args: Vec<&str> = args.split(',').map(str::trim).collect();
                (name.trim(), args)
            }
            None => (text, Vec::new()),
        };
        let number = |s: &str| -> Result<f64, String> {
            s.parse::<f64>()
                .ok()
                .filter(|v| v.is_finite() && *v >= 0.0)
                .ok_or_else(|| format!("`{s}` in `{text}` is not a non-negative number"))
        };
        let arity = |n: usize, usage: &str| {
            if args.len() == n {
                Ok(())
            } else {
                Err(format!("write {usage}"))
            }
        };
        Ok(match name {
            "p_alive" => {
                arity(0, "`p_alive` (no arguments)")?;
                Measure::PAlive
            }
            "expected_purchases" => {
                arity(
                    1,
                    "`expected_purchases(HORIZON)` with the horizon in the model's unit",
                )?;
                Measure::ExpectedPurchases {
                    horizon: number(args[0])?,
                }
            }
            "expected_spend" => {
                arity(0, "`expected_spend` (no arguments)")?;
                Measure::ExpectedSpend
            }
            "clv" => {
                arity(2, "`clv(MONTHS, MONTHLY_DISCOUNT)`, e.g. `clv(12, 0.01)`")?;
                let months = args[0]
                    .parse::<u32>()
                    .ok()
                    .filter(|m| (1..=1200).contains(m))
                    .ok_or_else(|| {
                        format!(
                            "`{}` in `{text}` is not a number of months (1 to 1200)",
                            args[0]
                        )
                    })?;
                Measure::Clv {
                    months,
                    discount: number(args[1])?,
                }
            }
            "frequency" | "recency" | "age" | "monetary" => {
                arity(0, &format!("`{name}` (no arguments)"))?;
                match name {
                    "frequency" => Measure::Frequency,
                    "recency" => Measure::Recency,
                    "age" => Measure::Age,
                    _ => Measure::Monetary,
                }
            }
            other => {
                let known = MEASURES.iter().map(|m| m.split('(').next().unwrap_or(m));
                let hint = crate::diagnostic::did_you_mean(other, known)
                    .map(|m| format!("did you mean `{m}`? "))
                    .unwrap_or_default();
                return Err(format!(
                    "unknown lifetime measure `{other}`; {hint}use one of {}",
                    MEASURES.join(", ")
                ));
            }
        })
    }

    /// Whether it needs the spend model (and so the `[lifetime] amount`).
    pub fn needs_spend(&self) -> bool {
        matches!(
            self,
            Measure::ExpectedSpend | Measure::Clv { .. } | Measure::Monetary
        )
    }
}

/// The measures a policy can name, as written.
pub const MEASURES: [&str; 8] = [
    "p_alive",
    "expected_purchases(HORIZON)",
    "expected_spend",
    "clv(MONTHS, DISCOUNT)",
    "frequency",
    "recency",
    "age",
    "monetary",
];

/// Both models fitted to one population, ready to predict.
#[derive(Debug, Clone, PartialEq)]
pub struct LifetimeFit {
    pub unit: TimeUnit,
    pub customers: usize,
    pub purchases: BgNbd,
    pub purchases_report: FitReport,
    /// Absent when the source has no amount or nobody has repeat purchases with spend.
    pub spend: Option<(GammaGamma, FitReport)>,
}

impl LifetimeFit {
    /// Fits BG/NBD, and Gamma-Gamma when `with_spend`.
    pub fn fit(
        customers: &[CustomerSummary],
        unit: TimeUnit,
        with_spend: bool,
    ) -> Result<LifetimeFit, ClvError> {
        let (purchases, purchases_report) = BgNbd::fit(customers)?;
        let spend = if with_spend {
            Some(GammaGamma::fit(customers)?)
        } else {
            None
        };
        Ok(LifetimeFit {
            unit,
            customers: customers.len(),
            purchases,
            purchases_report,
            spend,
        })
    }

    /// One customer's value of a measure.
    pub fn measure(&self, measure: Measure, c: &CustomerSummary) -> Result<f64, ClvError> {
        let (x, t_x, t) = (f64::from(c.frequency), c.recency, c.age);
        let spend = || {
            self.spend.as_ref().map(|s| &s.0).ok_or_else(|| {
                ClvError::Numeric("this measure needs the spend model, which was not fitted".into())
            })
        };
        match measure {
            Measure::PAlive => Ok(self.purchases.p_alive(x, t_x, t)),
            Measure::ExpectedPurchases { horizon } => {
                self.purchases.expected_purchases(horizon, x, t_x, t)
            }
            Measure::ExpectedSpend => Ok(spend()?.expected_spend(x, c.monetary.max(0.0))),
            Measure::Clv { months, discount } => lifetime_value(
                &self.purchases,
                spend()?,
                c,
                months,
                TimeUnit::Month.days() / self.unit.days(),
                discount,
            ),
            Measure::Frequency => Ok(x),
            Measure::Recency => Ok(t_x),
            Measure::Age => Ok(t),
            Measure::Monetary => Ok(c.monetary),
        }
    }

    /// One measure for every customer, in order, on every core (a 12-month CLV sums twelve
    /// hypergeometric series per customer). An error names the customer's index.
    pub fn measure_all(
        &self,
        measure: Measure,
        customers: &[CustomerSummary],
    ) -> Result<Vec<f64>, (usize, ClvError)> {
        let threads = std::thread::available_parallelism().map_or(1, usize::from);
        let per_thread = customers.len().div_ceil(threads).max(1);
        let parts: Vec<Result<Vec<f64>, (usize, ClvError)>> = std::thread::scope(|scope| {
            let handles: Vec<_> = customers
                .chunks(per_thread)
                .enumerate()
                .map(|(part, chunk)| {
                    scope.spawn(move || {
                        chunk
                            .iter()
                            .enumerate()
                            .map(|(i, c)| {
                                self.measure(measure, c)
                                    .map_err(|e| (part * per_thread + i, e))
                            })
                            .collect()
                    })
                })
                .collect();
            handles
                .into_iter()
                .map(|h| {
                    h.join()
                        .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
                })
                .collect()
        });
        let mut values = Vec::with_capacity(customers.len());
        for part in parts {
            values.extend(part?);
        }
        Ok(values)
    }

    /// One line per model, for run summaries and `explain`.
    pub fn describe(&self) -> Vec<String> {
        let BgNbd { r, alpha, a, b } = self.purchases;
        let mut out = vec![format!(
            "BG/NBD over {} customers (unit: {}): r {r:.4}, alpha {alpha:.4}, a {a:.4}, b {b:.4}; log-likelihood {:.2}, {} iterations of {}, {} passes",
            self.customers,
            self.unit.name(),
            self.purchases_report.log_likelihood,
            self.purchases_report.iterations,
            self.purchases_report.method,
            self.purchases_report.passes
        )];
        if let Some((GammaGamma { p, q, v }, report)) = &self.spend {
            out.push(format!(
                "Gamma-Gamma: p {p:.4}, q {q:.4}, v {v:.4}; log-likelihood {:.2}, {} iterations of {}, {} passes",
                report.log_likelihood, report.iterations, report.method, report.passes
            ));
        }
        out
    }
}

/// The Gaussian hypergeometric function ₂F₁(a, b; c; z) for 0 ≤ z < 1, by its series.
pub fn hyp2f1(a: f64, b: f64, c: f64, z: f64) -> Result<f64, ClvError> {
    if !(0.0..1.0).contains(&z) {
        return Err(ClvError::Numeric(format!("2F1 needs 0 <= z < 1, got {z}")));
    }
    let (mut term, mut sum) = (1.0f64, 1.0f64);
    for n in 0..100_000u32 {
        let n = f64::from(n);
        term *= (a + n) * (b + n) / ((c + n) * (n + 1.0)) * z;
        sum += term;
        if term.abs() <= f64::EPSILON * sum.abs() {
            return Ok(sum);
        }
        if !sum.is_finite() {
            break;
        }
    }
    Err(ClvError::Numeric(format!(
        "2F1({a}, {b}; {c}; {z}) did not converge"
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hypergeometric_matches_closed_forms() {
        // 2F1(1, 1; 2; z) = -ln(1 - z) / z.
        let z = 0.6;
        let got = hyp2f1(1.0, 1.0, 2.0, z).unwrap();
        assert!((got - (-(1.0f64 - z).ln() / z)).abs() < 1e-12, "{got}");
        // 2F1(a, b; b; z) = (1 - z)^-a.
        let got = hyp2f1(2.5, 3.0, 3.0, 0.3).unwrap();
        assert!((got - 0.7f64.powf(-2.5)).abs() < 1e-12, "{got}");
        assert!(hyp2f1(1.0, 1.0, 2.0, 1.0).is_err());
    }

    #[test]
    fn one_purchase_and_same_day_purchases() {
        let d = |s: &str| NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap();
        let log = [
            ("a", d("2026-01-01"), 10.0),
            ("b", d("2026-01-01"), 5.0),
            ("b", d("2026-01-01"), 7.0), // the same day: one purchase of 12
            ("c", d("2026-01-01"), 4.0),
            ("c", d("2026-01-08"), 6.0),
            ("c", d("2026-01-15"), 8.0),
            ("c", d("2026-12-31"), 99.0), // after as_of
        ];
        let s = summarise(log, d("2026-01-29"), TimeUnit::Week);
        let by = |id: &str| s.iter().find(|c| c.customer_id == id).unwrap().clone();
        assert_eq!(
            (by("a").frequency, by("a").recency, by("a").age),
            (0, 0.0, 4.0)
        );
        assert_eq!((by("b").frequency, by("b").monetary), (0, 0.0));
        let c = by("c");
        assert_eq!(
            (c.frequency, c.recency, c.age, c.monetary),
            (2, 2.0, 4.0, 7.0)
        );
        // No NaN for customers with one purchase or zero age.
        let m = BgNbd {
            r: 0.243,
            alpha: 4.414,
            a: 0.793,
            b: 2.426,
        };
        for (x, tx, t) in [(0.0, 0.0, 0.0), (0.0, 0.0, 4.0), (2.0, 2.0, 2.0)] {
            assert!(m.log_likelihood(x, tx, t).is_finite());
            assert!(m.p_alive(x, tx, t).is_finite());
        }
    }
}
