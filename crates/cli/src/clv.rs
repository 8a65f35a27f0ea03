//! `stratum clv`: fit BG/NBD and Gamma-Gamma to a raw transaction log (CSV) and print the
//! parameters (the policy integration is still to come; see docs/ARCHITECTURE.md).

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use chrono::NaiveDate;
use clap::{Subcommand, ValueEnum};
use stratum_core::clv::{BgNbd, GammaGamma, TimeUnit, summarise};

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum Unit {
    Day,
    Week,
    Month,
}

#[derive(Debug, Subcommand)]
pub enum ClvCommand {
    /// Fit BG/NBD (purchases, alive) and Gamma-Gamma (spend) to a transaction log (CSV)
    Clv {
        #[arg(long)]
        transactions: PathBuf,
        #[arg(long, default_value = "customer_id")]
        customer_column: String,
        /// Dates as YYYY-MM-DD or YYYYMMDD
        #[arg(long, default_value = "date")]
        time_column: String,
        #[arg(long, default_value = "amount")]
        amount_column: String,
        #[arg(long)]
        as_of: String,
        #[arg(long, value_enum, default_value = "week")]
        unit: Unit,
        /// Print the fit as JSON
        #[arg(long)]
        json: bool,
    },
}

fn date(text: &str) -> Option<NaiveDate> {
    NaiveDate::parse_from_str(text, "%Y-%m-%d")
        .or_else(|_| NaiveDate::parse_from_str(text, "%Y%m%d"))
        .ok()
}

pub fn run(cmd: &ClvCommand) -> Result<ExitCode> {
    let ClvCommand::Clv {
        transactions,
        customer_column,
        time_column,
        amount_column,
        as_of,
        unit,
        json,
    } = cmd;
    let Some(as_of) = date(as_of) else {
        bail!("invalid --as-of `{as_of}`; write YYYY-MM-DD");
    };
    let shown = transactions.display();
    let mut reader =
        csv::Reader::from_path(transactions).with_context(|| format!("cannot read {shown}"))?;
    let headers = reader.headers()?.clone();
    let column = |name: &str| {
        headers.iter().position(|h| h == name).with_context(|| {
            format!(
                "{shown}: no column `{name}` (columns: {})",
                headers.iter().collect::<Vec<_>>().join(", ")
            )
        })
    };
    let (c, t, a) = (
        column(customer_column)?,
        column(time_column)?,
        column(amount_column)?,
    );
    let mut rows: Vec<(String, NaiveDate, f64)> = Vec::new();
    for (i, record) in reader.records().enumerate() {
        let line = i + 2;
        let record = record.with_context(|| format!("{shown}:{line}"))?;
        let field = |k: usize| record.get(k).unwrap_or("").trim();
        let day = date(field(t)).with_context(|| {
            format!(
                "{shown}:{line}: column `{time_column}`: `{}` is not a date",
                field(t)
            )
        })?;
        let amount: f64 = field(a).parse().with_context(|| {
            format!(
                "{shown}:{line}: column `{amount_column}`: `{}` is not a number",
                field(a)
            )
        })?;
        rows.push((field(c).to_string(), day, amount));
    }
    let unit = match unit {
        Unit::Day => TimeUnit::Day,
        Unit::Week => TimeUnit::Week,
        Unit::Month => TimeUnit::Month,
    };
    let customers = summarise(
        rows.iter().map(|(c, d, a)| (c.as_str(), *d, *a)),
        as_of,
        unit,
    );
    let (bg, bg_fit) = BgNbd::fit(&customers)?;
    let (gg, gg_fit) = GammaGamma::fit(&customers)?;
    if *json {
        println!(
            "{}",
            serde_json::json!({
                "bgnbd": {"r": bg.r, "alpha": bg.alpha, "a": bg.a, "b": bg.b,
                          "log_likelihood": bg_fit.log_likelihood, "iterations": bg_fit.iterations,
                          "standard_errors": bg_fit.standard_errors},
                "gamma_gamma": {"p": gg.p, "q": gg.q, "v": gg.v,
                                "log_likelihood": gg_fit.log_likelihood, "iterations": gg_fit.iterations,
                                "standard_errors": gg_fit.standard_errors},
                "customers": customers.len(),
            })
        );
    } else {
        println!("{} customers as of {as_of}", customers.len());
        println!(
            "BG/NBD       r {:.4}  alpha {:.4}  a {:.4}  b {:.4}  (log-likelihood {:.2}, {} iterations)",
            bg.r, bg.alpha, bg.a, bg.b, bg_fit.log_likelihood, bg_fit.iterations
        );
        println!("  standard errors {:.4?}", bg_fit.standard_errors);
        println!(
            "Gamma-Gamma  p {:.4}  q {:.4}  v {:.4}  (log-likelihood {:.2}, {} iterations)",
            gg.p, gg.q, gg.v, gg_fit.log_likelihood, gg_fit.iterations
        );
        println!("  standard errors {:.4?}", gg_fit.standard_errors);
    }
    Ok(ExitCode::SUCCESS)
}
