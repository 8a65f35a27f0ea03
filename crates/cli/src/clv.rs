//! `stratum clv`: fit BG/NBD and Gamma-Gamma to a raw transaction log (CSV, JSON lines or
//! Parquet, read through the engine), print the parameters and write per-customer
//! predictions. Policies use the same models through `[lifetime]` metrics.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use chrono::NaiveDate;
use clap::Subcommand;
use stratum_core::clv::{LifetimeFit, Measure, TimeUnit};
use stratum_core::fmt_num;
use stratum_engine::lifetime::{TransactionFile, summarise_file};
use stratum_runner::blocking::blocking;

/// `--unit`: the lifetime models' units (as `[lifetime] unit`), one type with the policy's.
fn lifetime_unit(text: &str) -> Result<TimeUnit, String> {
    match text.parse::<TimeUnit>()? {
        TimeUnit::Year => Err("a year is too coarse for the models; use day, week or month".into()),
        unit => Ok(unit),
    }
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
        /// SQL predicate choosing the rows that are purchases (default: "AMOUNT >= 0", so
        /// refunds stay out of the fit, as in the lifecycle policy)
        #[arg(long)]
        filter: Option<String>,
        /// Fit refunds (negative amounts) too: no default filter
        #[arg(long)]
        include_refunds: bool,
        /// The end of the observation: later transactions are ignored
        #[arg(long)]
        as_of: String,
        /// The unit of recency, age (T) and the printed parameters
        #[arg(long, default_value = "week", value_parser = lifetime_unit)]
        unit: TimeUnit,
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
    /// Churn warning: customers whose probability of being alive fell below the policy's
    /// threshold, or dropped sharply, since the previous run; with value at risk and action
    Churn {
        #[arg(long)]
        as_of: Option<String>,
        /// Compare with the policy as of this date (default: the previous recorded run's)
        #[arg(long)]
        since: Option<String>,
        /// Show at most this many customers (all are written with --out)
        #[arg(long, default_value_t = 20)]
        limit: usize,
        /// Write every warning to this CSV file
        #[arg(long)]
        out: Option<PathBuf>,
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
                  "log_likelihood": report.log_likelihood, "iterations": report.iterations, "method": report.method,
                  "standard_errors": report.standard_errors},
        "customers": fit.customers,
        "unit": fit.unit.name(),
    });
    if let Some((gg, report)) = &fit.spend {
        out["gamma_gamma"] = serde_json::json!({"p": gg.p, "q": gg.q, "v": gg.v,
            "log_likelihood": report.log_likelihood, "iterations": report.iterations, "method": report.method,
            "standard_errors": report.standard_errors});
    }
    out
}

pub async fn run(settings: &crate::Settings, cmd: &ClvCommand) -> Result<ExitCode> {
    if let ClvCommand::Churn {
        as_of,
        since,
        limit,
        out,
    } = cmd
    {
        return churn(
            settings,
            as_of.as_deref(),
            since.as_deref(),
            *limit,
            out.as_deref(),
        )
        .await;
    }
    let ClvCommand::Clv {
        transactions,
        customer_column,
        time_column,
        amount_column,
        filter,
        include_refunds,
        as_of,
        unit,
        json,
        out,
        horizon_months,
        discount,
    } = cmd
    else {
        unreachable!("churn is handled above")
    };
    let Some(as_of) = date(as_of) else {
        bail!("invalid --as-of `{as_of}`; write YYYY-MM-DD");
    };
    if !(discount.is_finite() && *discount >= 0.0) {
        bail!("--discount must be a rate of 0 or more, e.g. 0.01 for 1% a month");
    }
    if !(1..=1200).contains(horizon_months) {
        bail!("--horizon-months must be between 1 and 1200");
    }
    let unit = *unit;
    // Refunds are not purchases: left out unless asked for, like `[lifetime] filter`.
    let default_filter = format!("\"{}\" >= 0", amount_column.replace('"', "\"\""));
    let filter = match (filter, include_refunds) {
        (Some(f), _) => Some(f.as_str()),
        (None, true) => None,
        (None, false) => Some(default_filter.as_str()),
    };
    let file = TransactionFile {
        path: transactions,
        customer: customer_column,
        time: time_column,
        amount: amount_column,
        filter,
    };
    let started = std::time::Instant::now();
    let customers = summarise_file(&file, as_of, unit).await?;
    let summarised = started.elapsed();
    let customers = std::sync::Arc::new(customers);
    let fit = {
        let customers = std::sync::Arc::clone(&customers);
        blocking(move || LifetimeFit::fit(&customers, unit, true)).await?
    };
    let fit = std::sync::Arc::new(fit);
    let fitted = started.elapsed();
    let summary = fit_json(&fit);
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
    // Predictions for every customer: written with --out, the most valuable shown on screen.
    let columns = if out.is_some() || !*json {
        let (fit, customers) = (
            std::sync::Arc::clone(&fit),
            std::sync::Arc::clone(&customers),
        );
        blocking(move || {
            measures
                .iter()
                .map(|m| {
                    fit.measure_all(*m, &customers).map_err(|(i, e)| {
                        anyhow::anyhow!("customer {}: {e}", customers[i].customer_id)
                    })
                })
                .collect::<Result<Vec<Vec<f64>>>>()
        })
        .await?
    } else {
        Vec::new()
    };
    if *json {
        out!("{summary}");
    } else {
        out!(
            "{} customers as of {as_of}",
            fmt_num(customers.len() as f64)
        );
        for line in fit.describe() {
            out!("{line}");
        }
        let b = fit.purchases;
        print_errors(
            "BG/NBD",
            &[("r", b.r), ("alpha", b.alpha), ("a", b.a), ("b", b.b)],
            &fit.purchases_report.standard_errors,
        )?;
        if let Some((g, report)) = &fit.spend {
            print_errors(
                "Gamma-Gamma",
                &[("p", g.p), ("q", g.q), ("v", g.v)],
                &report.standard_errors,
            )?;
        }
        let mut by_value: Vec<usize> = (0..customers.len()).collect();
        by_value.sort_by(|&a, &b| columns[3][b].total_cmp(&columns[3][a]));
        out!(
            "  top customers by {horizon_months}-month CLV (all with --out):\n  {:<14} {:>8} {:>10} {:>12} {:>12}",
            "customer",
            "p_alive",
            "purchases",
            "spend",
            "clv"
        );
        for &i in by_value.iter().take(10) {
            out!(
                "  {:<14} {:>8.3} {:>10.2} {:>12.2} {:>12.2}",
                customers[i].customer_id,
                columns[0][i],
                columns[1][i],
                columns[2][i],
                columns[3][i]
            );
        }
    }
    if let Some(dir) = out {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
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
        // Six decimals for counts and probabilities, cents for money.
        let decimals = [6, 6, 2, 2];
        for (i, c) in customers.iter().enumerate() {
            let mut record = vec![
                c.customer_id.clone(),
                c.frequency.to_string(),
                format!("{:.6}", c.recency),
                format!("{:.6}", c.age),
                format!("{:.2}", c.monetary),
            ];
            record.extend(
                columns
                    .iter()
                    .zip(decimals)
                    .map(|(column, d)| format!("{:.*}", d, column[i])),
            );
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
            out!("wrote {}", path.display());
            out!("wrote {}", fit_path.display());
        }
    }
    // On stderr, like `run`'s: benchmarks read them.
    let secs = |d: std::time::Duration| format!("{:.2}s", d.as_secs_f64());
    eprintln!(
        "timings: read+summary {}, fit {}, predictions+write {}",
        secs(summarised),
        secs(fitted - summarised),
        secs(started.elapsed() - fitted)
    );
    Ok(ExitCode::SUCCESS)
}

async fn churn(
    settings: &crate::Settings,
    as_of: Option<&str>,
    since: Option<&str>,
    limit: usize,
    out: Option<&std::path::Path>,
) -> Result<ExitCode> {
    let since = match since {
        Some(s) => {
            Some(date(s).with_context(|| format!("invalid --since `{s}`; write YYYY-MM-DD"))?)
        }
        None => None,
    };
    let path = settings.policy_path(None);
    let loaded = stratum_runner::load_policy(&path)?;
    let options = stratum_runner::RunOptions {
        as_of: as_of.map(str::to_string),
        ..Default::default()
    };
    let store = settings.open_existing_store().await?;
    let report = stratum_runner::churn(&loaded, &options, store.as_ref(), since).await?;
    let rule = &report.rule;
    match (report.since, report.since_run) {
        (Some(d), Some(id)) => out!(
            "churn warning as of {} against run #{id} (as of {d}): {} customers",
            report.as_of,
            fmt_num(report.customers as f64)
        ),
        (Some(d), None) => out!(
            "churn warning as of {} against {d}: {} customers",
            report.as_of,
            fmt_num(report.customers as f64)
        ),
        _ => out!(
            "churn warning as of {}: {} customers (no previous run to compare with: threshold only)",
            report.as_of,
            fmt_num(report.customers as f64)
        ),
    }
    if let Some(fit) = &report.lifetime {
        for line in fit.describe() {
            out!("  {line}");
        }
    }
    let at_risk: f64 = report.warnings.iter().filter_map(|w| w.value_at_risk).sum();
    out!(
        "{} customers with {} below {} or dropped by more than {}{}",
        report.warnings.len(),
        rule.p_alive,
        rule.below,
        rule.drop,
        rule.value
            .as_ref()
            .map(|v| format!("; value at risk ({v}): {}", stratum_core::fmt_num(at_risk)))
            .unwrap_or_default()
    );
    if !report.warnings.is_empty() {
        out!(
            "\n  {:<14} {:>7} {:>7} {:>12}  {:<20} {:<18} action",
            "customer",
            "before",
            "now",
            "at risk",
            "why",
            "stage"
        );
    }
    let opt =
        |v: Option<f64>, digits: usize| v.map_or("-".to_string(), |v| format!("{v:.digits$}"));
    for w in report.warnings.iter().take(limit) {
        out!(
            "  {:<14} {:>7} {:>7.3} {:>12}  {:<20} {:<18} {}",
            w.customer_id,
            opt(w.before, 3),
            w.now,
            w.value_at_risk.map_or("-".into(), stratum_core::fmt_num),
            w.reason.as_str(),
            w.level.as_deref().unwrap_or("-"),
            w.action.as_deref().unwrap_or("")
        );
    }
    if report.warnings.len() > limit {
        out!("  … and {} more", report.warnings.len() - limit);
    }
    if let Some(path) = out {
        let mut w = csv::Writer::from_path(path)
            .with_context(|| format!("cannot write {}", path.display()))?;
        w.write_record([
            "customer_id",
            "p_alive_before",
            "p_alive_now",
            "reason",
            "value_at_risk",
            "level",
            "action",
        ])?;
        for x in &report.warnings {
            w.write_record([
                x.customer_id.clone(),
                x.before.map_or(String::new(), |v| v.to_string()),
                x.now.to_string(),
                x.reason.as_str().to_string(),
                x.value_at_risk.map_or(String::new(), |v| v.to_string()),
                x.level.clone().unwrap_or_default(),
                x.action.clone().unwrap_or_default(),
            ])?;
        }
        w.flush()?;
        out!("wrote {}", path.display());
    }
    Ok(ExitCode::SUCCESS)
}

/// Each parameter with its standard error, and a warning for one the data hardly
/// determines (an error over ten times the estimate).
fn print_errors(model: &str, params: &[(&str, f64)], errors: &[f64]) -> Result<()> {
    let parts: Vec<String> = params
        .iter()
        .zip(errors)
        .map(|((name, value), se)| format!("{name} {value:.4} ± {se:.4}"))
        .collect();
    out!("  {model} standard errors: {}", parts.join(", "));
    for ((name, value), se) in params.iter().zip(errors) {
        if se.is_finite() && value.abs() > 0.0 && *se > 10.0 * value.abs() {
            out!(
                "  warning: {model} `{name}` is poorly determined by the data (standard error {:.0}× the estimate); \
                 predictions that lean on it are unreliable",
                se / value.abs()
            );
        } else if !se.is_finite() {
            out!("  warning: {model} `{name}` has no finite standard error");
        }
    }
    Ok(())
}
