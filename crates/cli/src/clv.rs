//! `stratum clv`: fit BG/NBD and Gamma-Gamma to a raw transaction log (CSV, JSON lines or
//! Parquet, read through the engine), print the parameters and write per-customer
//! predictions. Policies use the same models through `[lifetime]` metrics.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use chrono::NaiveDate;
use clap::{Subcommand, ValueEnum};
use stratum_core::clv::{LifetimeFit, Measure, TimeUnit};
use stratum_engine::lifetime::{TransactionFile, summarise_file};

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum Unit {
    Day,
    Week,
    Month,
}

#[derive(Debug, Subcommand)]
pub enum ClvCommand {
    /// Fit BG/NBD (purchases, alive) and Gamma-Gamma (spend) to a transaction log and
    /// predict each customer's purchases, probability alive and lifetime value
    Clv {
        /// CSV, JSON lines or Parquet (by extension), one row per transaction
        #[arg(long)]
        transactions: PathBuf,
        #[arg(long, default_value = "customer_id")]
        customer_column: String,
        /// Dates or timestamps (YYYY-MM-DD, YYYY/MM/DD, YYYYMMDD, RFC 3339)
        #[arg(long, default_value = "date")]
        time_column: String,
        #[arg(long, default_value = "amount")]
        amount_column: String,
        /// The end of the observation: later transactions are ignored
        #[arg(long)]
        as_of: String,
        /// The unit of recency, age (T) and the printed parameters
        #[arg(long, value_enum, default_value = "week")]
        unit: Unit,
        /// Print the fit as JSON
        #[arg(long)]
        json: bool,
        /// Write predictions.csv (one row per customer) and fit.json here
        #[arg(long)]
        out: Option<PathBuf>,
        /// Horizon of the predictions, in calendar months
        #[arg(long, default_value_t = 12)]
        horizon_months: u32,
        /// Monthly discount rate of the lifetime value
        #[arg(long, default_value_t = 0.01)]
        discount: f64,
    },
}

fn date(text: &str) -> Option<NaiveDate> {
    NaiveDate::parse_from_str(text, "%Y-%m-%d")
        .or_else(|_| NaiveDate::parse_from_str(text, "%Y%m%d"))
        .ok()
}

fn fit_json(fit: &LifetimeFit) -> serde_json::Value {
    let bg = &fit.purchases;
    let report = &fit.purchases_report;
    let mut out = serde_json::json!({
        "bgnbd": {"r": bg.r, "alpha": bg.alpha, "a": bg.a, "b": bg.b,
                  "log_likelihood": report.log_likelihood, "iterations": report.iterations,
                  "standard_errors": report.standard_errors},
        "customers": fit.customers,
        "unit": fit.unit.name(),
    });
    if let Some((gg, report)) = &fit.spend {
        out["gamma_gamma"] = serde_json::json!({"p": gg.p, "q": gg.q, "v": gg.v,
            "log_likelihood": report.log_likelihood, "iterations": report.iterations,
            "standard_errors": report.standard_errors});
    }
    out
}

pub async fn run(cmd: &ClvCommand) -> Result<ExitCode> {
    let ClvCommand::Clv {
        transactions,
        customer_column,
        time_column,
        amount_column,
        as_of,
        unit,
        json,
        out,
        horizon_months,
        discount,
    } = cmd;
    let Some(as_of) = date(as_of) else {
        bail!("invalid --as-of `{as_of}`; write YYYY-MM-DD");
    };
    if !(discount.is_finite() && *discount >= 0.0) {
        bail!("--discount must be a rate of 0 or more, e.g. 0.01 for 1% a month");
    }
    if !(1..=1200).contains(horizon_months) {
        bail!("--horizon-months must be between 1 and 1200");
    }
    let unit = match unit {
        Unit::Day => TimeUnit::Day,
        Unit::Week => TimeUnit::Week,
        Unit::Month => TimeUnit::Month,
    };
    let file = TransactionFile {
        path: transactions,
        customer: customer_column,
        time: time_column,
        amount: amount_column,
    };
    let customers = summarise_file(&file, as_of, unit).await?;
    let fit = tokio::task::block_in_place(|| LifetimeFit::fit(&customers, unit, true))?;
    let summary = fit_json(&fit);
    if *json {
        println!("{summary}");
    } else {
        println!("{} customers as of {as_of}", customers.len());
        for line in fit.describe() {
            println!("{line}");
        }
        println!(
            "  BG/NBD standard errors {:.4?}",
            fit.purchases_report.standard_errors
        );
        if let Some((_, report)) = &fit.spend {
            println!(
                "  Gamma-Gamma standard errors {:.4?}",
                report.standard_errors
            );
        }
    }
    if let Some(dir) = out {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
        let horizon = f64::from(*horizon_months) * TimeUnit::Month.days() / unit.days();
        let measures = [
            Measure::PAlive,
            Measure::ExpectedPurchases { horizon },
            Measure::ExpectedSpend,
            Measure::Clv {
                months: *horizon_months,
                discount: *discount,
            },
        ];
        let path = dir.join("predictions.csv");
        let mut w = csv::Writer::from_path(&path)
            .with_context(|| format!("cannot write {}", path.display()))?;
        w.write_record([
            "customer_id",
            "frequency",
            "recency",
            "T",
            "monetary",
            "p_alive",
            "expected_purchases",
            "expected_spend",
            "clv",
        ])?;
        let rows = tokio::task::block_in_place(|| {
            customers
                .iter()
                .map(|c| {
                    let values = measures
                        .iter()
                        .map(|m| fit.measure(*m, c))
                        .collect::<Result<Vec<f64>, _>>()
                        .with_context(|| format!("customer {}", c.customer_id))?;
                    Ok((c, values))
                })
                .collect::<Result<Vec<_>>>()
        })?;
        for (c, values) in rows {
            let mut record = vec![
                c.customer_id.clone(),
                c.frequency.to_string(),
                c.recency.to_string(),
                c.age.to_string(),
                c.monetary.to_string(),
            ];
            record.extend(values.iter().map(f64::to_string));
            w.write_record(&record)?;
        }
        w.flush()?;
        let fit_path = dir.join("fit.json");
        let mut summary = summary;
        summary["as_of"] = as_of.to_string().into();
        summary["horizon_months"] = (*horizon_months).into();
        summary["expected_purchases_horizon"] = horizon.into();
        summary["monthly_discount"] = (*discount).into();
        let mut f = std::fs::File::create(&fit_path)
            .with_context(|| format!("cannot write {}", fit_path.display()))?;
        writeln!(f, "{}", serde_json::to_string_pretty(&summary)?)?;
        if !*json {
            println!("wrote {}", path.display());
            println!("wrote {}", fit_path.display());
        }
    }
    Ok(ExitCode::SUCCESS)
}
