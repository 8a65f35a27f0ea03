//! Commands over what is kept between runs: the schema, the run history, migrations between
//! runs, what-if simulation, the effect report, and the overrides, inputs and tags people
//! enter (each change recorded with who, when and why).

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result};
use chrono::NaiveDate;
use clap::Subcommand;
use stratum_core::fmt_num;
use stratum_runner::{DiffReport, RunOptions};
use stratum_store::{NewOverride, Store};

use crate::{Reporter, Settings, print_ladder};

#[derive(Subcommand, Debug)]
pub enum KeptCommand {
    /// List the policy's recorded runs (--all: every policy's); retire one, or pin the one
    /// served
    Runs(RunsArgs),
    /// A customer's level timeline on every ladder of the policy, with the reasons
    History(HistoryArgs),
    /// Migration matrix between two runs of the policy (default: its last two runs)
    Diff(DiffArgs),
    /// Write every customer's recorded result on every ladder of a run (default: the
    /// policy's latest) to FILE, Parquet or CSV by its extension, for SQL tools
    ExportRun(ExportRunArgs),
    /// Evaluate a draft policy (--policy) against today's data and the latest run; records
    /// nothing
    Simulate(SimulateArgs),
    /// Effect KPIs per level per run: count, value share, repeat-purchase and churn rates,
    /// upgrades, downgrades
    Report(ReportArgs),
    /// Level overrides kept in the history database
    #[command(subcommand)]
    Override(OverrideCommand),
    /// Manual inputs (person-entered scorecard points) kept in the history database
    #[command(subcommand)]
    Input(InputCommand),
    /// Customer tags (e.g. blacklist) kept in the history database
    #[command(subcommand)]
    Tag(TagCommand),
    /// A consistent copy of the SQLite history (safe while it is in use); for PostgreSQL it
    /// says how to use pg_dump
    Backup(BackupArgs),
    /// Who changed what, newest first (runs recorded included)
    Audit(AuditArgs),
}

/// `stratum history`.
#[derive(clap::Args, Debug)]
pub struct HistoryArgs {
    pub customer_id: String,
}

/// `stratum diff`.
#[derive(clap::Args, Debug)]
pub struct DiffArgs {
    /// The earlier run (#N in `stratum runs`; default: the one before the latest)
    pub run_a: Option<i64>,
    /// The later run (default: the policy's latest)
    pub run_b: Option<i64>,
    /// Write the customers who moved (up, down, in/out of scope) to FILE (.csv or .parquet)
    #[arg(long, value_name = "FILE")]
    pub export: Option<PathBuf>,
    /// Allow comparing runs of two different policies
    #[arg(long)]
    pub across_policies: bool,
}

/// `stratum export-run`.
#[derive(clap::Args, Debug)]
pub struct ExportRunArgs {
    /// The run (#N in `stratum runs`)
    pub run: Option<i64>,
    #[arg(long, value_name = "FILE")]
    pub out: PathBuf,
}

/// `stratum simulate`.
#[derive(clap::Args, Debug)]
pub struct SimulateArgs {
    #[arg(long)]
    pub as_of: Option<String>,
}

/// `stratum report`.
#[derive(clap::Args, Debug)]
pub struct ReportArgs {
    /// Policy name (default: the workspace's policy, else the policy of the latest run)
    #[arg(long = "policy-name")]
    pub policy_name: Option<String>,
    /// Write the report as CSV
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
}

/// `stratum backup`.
#[derive(clap::Args, Debug)]
pub struct BackupArgs {
    /// The new file
    pub file: PathBuf,
}

/// `stratum audit`.
#[derive(clap::Args, Debug)]
pub struct AuditArgs {
    #[arg(long, default_value_t = 50)]
    pub limit: i64,
    /// Only what this user did
    #[arg(long, value_name = "NAME")]
    pub user: Option<String>,
    /// Only what concerns this customer (or run number, user name, …)
    #[arg(long, value_name = "ID")]
    pub customer: Option<String>,
    /// Only this action (`override.add`), or every action of a kind (`override`)
    #[arg(long)]
    pub action: Option<String>,
    /// From this day (YYYY-MM-DD, UTC)
    #[arg(long, value_name = "DATE", value_parser = parse_date)]
    pub since: Option<NaiveDate>,
    /// To this day, inclusive
    #[arg(long, value_name = "DATE", value_parser = parse_date)]
    pub until: Option<NaiveDate>,
}

/// `stratum runs`.
#[derive(clap::Args, Debug)]
pub struct RunsArgs {
    /// Runs of every policy in the database, not only the workspace's
    #[arg(long)]
    pub all: bool,
    #[command(subcommand)]
    pub action: Option<RunsCommand>,
}

#[derive(Subcommand, Debug)]
pub enum RunsCommand {
    /// List the recorded runs (the default)
    List,
    /// Take a run out of serving, default diffs and holds; its history stays
    Retire {
        /// The run's number (#N in `stratum runs`)
        run: i64,
        #[arg(long)]
        reason: String,
    },
    /// Serve this run of its policy instead of the latest recorded one
    Pin {
        /// The run's number (#N in `stratum runs`)
        run: i64,
    },
    /// Serve the latest recorded run again
    Unpin,
}

#[derive(Subcommand, Debug)]
pub enum OverrideCommand {
    /// Place a customer on a level of a ladder (a pin unless --mode says floor or ceiling)
    Add {
        customer_id: String,
        #[arg(long)]
        ladder: String,
        #[arg(long)]
        level: String,
        /// pin: exactly this level; floor: this level or higher; ceiling: this level or lower
        #[arg(long, default_value = "pin", value_parser = parse_mode)]
        mode: stratum_core::OverrideMode,
        /// Last day the override applies (YYYY-MM-DD); without it, until removed
        #[arg(long, value_name = "DATE", value_parser = parse_date)]
        until: Option<NaiveDate>,
        #[arg(long)]
        reason: String,
        /// The customer is not in the served run yet (the next run's data will have it)
        #[arg(long)]
        new_customer: bool,
    },
    /// List overrides (active ones; --all for removed too)
    List {
        #[arg(long)]
        all: bool,
    },
    /// End an override; it stops applying at the next run
    Remove {
        id: i64,
        #[arg(long)]
        reason: String,
    },
}

#[derive(Subcommand, Debug)]
pub enum InputCommand {
    /// Set a customer's input field (e.g. relationship_top 18)
    Set {
        customer_id: String,
        field: String,
        value: String,
        #[arg(long)]
        reason: String,
        /// The customer is not in the served run yet (the next run's data will have it)
        #[arg(long)]
        new_customer: bool,
    },
    List,
    Remove {
        customer_id: String,
        field: String,
        #[arg(long)]
        reason: String,
    },
}

#[derive(Subcommand, Debug)]
pub enum TagCommand {
    Add {
        customer_id: String,
        tag: String,
        #[arg(long)]
        reason: String,
    },
    List,
    Remove {
        customer_id: String,
        tag: String,
        #[arg(long)]
        reason: String,
    },
}

fn print_matrix(levels: &[String], cell: &dyn Fn(&str, &str) -> i64) -> Result<()> {
    let used: Vec<&String> = levels
        .iter()
        .filter(|l| levels.iter().any(|o| cell(l, o) > 0 || cell(o, l) > 0))
        .collect();
    if used.is_empty() {
        out!("  (no customers in both runs)");
        return Ok(());
    }
    let w = used.iter().map(|l| l.len()).max().unwrap_or(4).max(9);
    out_part!("  {:<w$}", "from \\ to");
    for l in &used {
        out_part!("  {:>w$}", l);
    }
    out!();
    for f in &used {
        out_part!("  {:<w$}", f);
        for t in &used {
            out_part!("  {:>w$}", fmt_num(cell(f, t) as f64));
        }
        out!();
    }
    Ok(())
}

fn print_diff(d: &DiffReport) -> Result<()> {
    out!(
        "run #{} ({}, as of {}) -> run #{} ({}, as of {})",
        d.from.id,
        d.from.policy_name,
        d.from.as_of,
        d.to.id,
        d.to.policy_name,
        d.to.as_of
    );
    for l in &d.ladders {
        out!("\nladder {}", l.ladder);
        print_matrix(&l.levels, &|f, t| l.cell(f, t))?;
        let value: f64 = l.cells.iter().map(|c| c.value).sum();
        out!(
            "  upgrades {}, downgrades {}, new customers {}, gone {}; value at the later run {}",
            fmt_num(l.upgrades as f64),
            fmt_num(l.downgrades as f64),
            fmt_num(l.arrived as f64),
            fmt_num(l.left as f64),
            fmt_num(value)
        );
        let show = 10;
        for (title, want) in [("upgraded", 1i8), ("downgraded", -1)] {
            let list: Vec<_> = l.moves.iter().filter(|(_, d)| *d == want).collect();
            if list.is_empty() {
                continue;
            }
            out!("  {title} ({}):", fmt_num(list.len() as f64));
            for (m, _) in list.iter().take(show) {
                out!(
                    "    {:<12} {} -> {}: {}",
                    m.customer_id,
                    m.from_level,
                    m.to_level,
                    m.explanation
                );
            }
            if list.len() > show {
                out!("    … {} more (--export FILE)", list.len() - show);
            }
        }
    }
    Ok(())
}

fn parse_mode(s: &str) -> Result<stratum_core::OverrideMode, String> {
    s.parse()
}

fn parse_date(s: &str) -> Result<NaiveDate> {
    NaiveDate::parse_from_str(s, "%Y-%m-%d")
        .with_context(|| format!("invalid date `{s}`; write YYYY-MM-DD"))
}

pub async fn run(settings: &Settings, cmd: &KeptCommand) -> Result<ExitCode> {
    let store = settings.open_store().await?;
    match cmd {
        KeptCommand::Runs(args) => runs(settings, &store, args).await?,
        KeptCommand::History(args) => history(settings, &store, args).await?,
        KeptCommand::Diff(args) => diff(settings, &store, args).await?,
        KeptCommand::ExportRun(args) => export_run(settings, &store, args).await?,
        KeptCommand::Simulate(args) => simulate(settings, &store, args).await?,
        KeptCommand::Report(args) => report(settings, &store, args).await?,
        KeptCommand::Override(cmd) => overrides(settings, &store, cmd).await?,
        KeptCommand::Input(cmd) => inputs(settings, &store, cmd).await?,
        KeptCommand::Tag(cmd) => tags(settings, &store, cmd).await?,
        KeptCommand::Audit(args) => audit(&store, args).await?,
        KeptCommand::Backup(args) => backup(&store, args).await?,
    }
    store.close().await?;
    Ok(ExitCode::SUCCESS)
}

/// `stratum migrate`: applies pending schema migrations (connects without migrating first).
pub async fn migrate(settings: &Settings) -> Result<ExitCode> {
    let store = Store::connect(&settings.database_url).await?;
    let applied = store.migrate().await?;
    if applied.is_empty() {
        out!("{}: schema is up to date", store.url());
    }
    for (v, d) in applied {
        out!("{}: applied migration {v} {d}", store.url());
    }
    Ok(ExitCode::SUCCESS)
}

async fn runs(settings: &Settings, store: &Store, args: &RunsArgs) -> Result<()> {
    let RunsArgs { all, action } = args;
    match action {
        None | Some(RunsCommand::List) => {
            let policy = if *all {
                None
            } else {
                settings.history_policy()?
            };
            let runs = store.runs(policy.as_deref()).await?;
            if runs.is_empty() {
                out!("no runs recorded in {}", store.url());
            }
            let name_width = runs
                .iter()
                .map(|r| r.policy_name.chars().count())
                .max()
                .unwrap_or(0);
            for r in runs {
                let retired = match (&r.retired_at, &r.retired_by) {
                    (Some(at), by) => format!(
                        "  retired by {} at {at}",
                        by.as_deref().unwrap_or("unknown")
                    ),
                    (None, _) => String::new(),
                };
                out!(
                    "#{:<4} {:<name_width$}  as of {}  {:>10} customers  policy {} ({}, {})  by {} at {}{retired}",
                    r.id,
                    r.policy_name,
                    r.as_of,
                    fmt_num(r.customers as f64),
                    r.policy_file,
                    &r.policy_hash[..12],
                    r.inputs.matches("sha256").count().to_string() + " input files",
                    r.recorded_by,
                    r.finished_at
                );
            }
        }
        Some(RunsCommand::Retire { run, reason }) => {
            let r = store.retire_run(*run, reason, &settings.actor()).await?;
            out!(
                "retired run #{} ({}, as of {}): no longer served, compared with by default or held from; its history stays",
                r.id,
                r.policy_name,
                r.as_of
            );
        }
        Some(RunsCommand::Pin { run }) => {
            let r = store.run(*run).await?;
            store
                .pin_served_run(&r.policy_name, Some(r.id), &settings.actor())
                .await?;
            out!(
                "run #{} ({}, as of {}) is served until `stratum runs unpin`",
                r.id,
                r.policy_name,
                r.as_of
            );
        }
        Some(RunsCommand::Unpin) => {
            let loaded = stratum_runner::load_policy(&settings.policy_path(None))?;
            let name = loaded.policy.history_name();
            store.pin_served_run(name, None, &settings.actor()).await?;
            out!("policy `{name}`: the latest recorded run is served again");
        }
    }
    Ok(())
}

async fn history(settings: &Settings, store: &Store, args: &HistoryArgs) -> Result<()> {
    let HistoryArgs { customer_id } = args;
    let policy = settings.history_policy()?;
    let rows = stratum_runner::history(store, policy.as_deref(), customer_id).await?;
    let mut ladder = "";
    let mut last_level = "";
    for r in &rows {
        if r.ladder != ladder {
            ladder = &r.ladder;
            last_level = "";
            out!("\nladder {} ({})", r.ladder, r.policy_name);
        }
        let mark = if last_level.is_empty() || last_level == r.level {
            "  "
        } else {
            "->"
        };
        let rules = if r.rule_level != r.level {
            format!(" (rules: {})", r.rule_level)
        } else {
            String::new()
        };
        out!(
            "  {} run #{:<4} {} {:<12}{rules}  {}",
            r.as_of,
            r.run_id,
            mark,
            r.level,
            r.explanation
        );
        last_level = &r.level;
    }
    Ok(())
}

async fn diff(settings: &Settings, store: &Store, args: &DiffArgs) -> Result<()> {
    let DiffArgs {
        run_a,
        run_b,
        export,
        across_policies,
    } = args;
    let policy = settings.history_policy()?;
    let report =
        stratum_runner::diff(store, policy.as_deref(), *run_a, *run_b, *across_policies).await?;
    print_diff(&report)?;
    if let Some(path) = export {
        let n = stratum_runner::write_moves(path, &report)?;
        out!("\nwrote {} ({} customers who moved)", path.display(), n);
    }
    Ok(())
}

async fn export_run(settings: &Settings, store: &Store, args: &ExportRunArgs) -> Result<()> {
    let ExportRunArgs { run, out } = args;
    let policy = settings.history_policy()?;
    let (run, rows) = stratum_runner::export_run(store, policy.as_deref(), *run, out).await?;
    out!(
        "wrote {} ({rows} rows: run #{}, {}, as of {})",
        out.display(),
        run.id,
        run.policy_name,
        run.as_of
    );
    Ok(())
}

async fn simulate(settings: &Settings, store: &Store, args: &SimulateArgs) -> Result<()> {
    let SimulateArgs { as_of } = args;
    let path = settings.policy_path(None);
    let draft = stratum_runner::load_policy(&path)?;
    let options = RunOptions {
        as_of: as_of.clone(),
        ..Default::default()
    };
    let mut reporter = Reporter::new();
    let sim = stratum_runner::simulate(&draft, &options, store, &mut reporter).await;
    reporter.finish();
    let sim = sim?;
    match &sim.base {
        Some(b) => out!(
            "draft {} as of {} against run #{} ({}, as of {}); nothing recorded",
            path.display(),
            sim.as_of,
            b.id,
            b.policy_name,
            b.as_of
        ),
        None => out!(
            "draft {} as of {}: no recorded run to compare with; nothing recorded",
            path.display(),
            sim.as_of
        ),
    }
    for (l, s) in sim.ladders.iter().zip(&sim.summaries) {
        print_ladder(s)?;
        if sim.base.is_some() {
            out!("  migration from the recorded run:");
            print_matrix(&l.levels, &|f, t| l.cell(f, t))?;
            let new: i64 = l.cells.iter().filter(|c| c.0.is_none()).map(|c| c.2).sum();
            out!(
                "  would upgrade {}, downgrade {}{}",
                fmt_num(l.upgrades as f64),
                fmt_num(l.downgrades as f64),
                if new > 0 {
                    format!(", {} not in the recorded run", fmt_num(new as f64))
                } else {
                    String::new()
                }
            );
        }
        if let (Some(before), Some(after)) = (l.cost_before, l.cost_after) {
            out!(
                "  benefit cost: {} -> {} ({}{})",
                fmt_num(before),
                fmt_num(after),
                if after >= before { "+" } else { "-" },
                fmt_num((after - before).abs())
            );
        }
    }
    Ok(())
}

async fn report(settings: &Settings, store: &Store, args: &ReportArgs) -> Result<()> {
    let ReportArgs { policy_name, out } = args;
    let policy = match policy_name {
        Some(name) => Some(name.clone()),
        None => settings.history_policy()?,
    };
    let rows = stratum_runner::report(store, policy.as_deref()).await?;
    let pct = |v: Option<f64>| v.map_or("-".into(), |x| format!("{:.1}", x * 100.0));
    let int = |v: Option<i64>| v.map_or("-".into(), |x| fmt_num(x as f64));
    let header = [
        "run",
        "as_of",
        "ladder",
        "level",
        "customers",
        "share",
        "value%",
        "repeat%",
        "churn%",
        "up",
        "down",
    ]
    .map(String::from);
    let table: Vec<[String; 11]> = rows
        .iter()
        .map(|r| {
            [
                format!("#{}", r.run_id),
                r.as_of.to_string(),
                r.ladder.clone(),
                r.level.clone(),
                fmt_num(r.customers as f64),
                format!("{:.1}", r.share * 100.0),
                pct(r.value_share),
                pct(r.repeat_rate),
                pct(r.churn_rate),
                int(r.upgrades),
                int(r.downgrades),
            ]
        })
        .collect();
    // Columns as wide as their widest cell: text left, figures right.
    let widths: Vec<usize> = (0..11)
        .map(|c| {
            std::iter::once(&header)
                .chain(&table)
                .map(|row| row[c].chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    for row in std::iter::once(&header).chain(&table) {
        let cells: Vec<String> = row
            .iter()
            .zip(&widths)
            .enumerate()
            .map(|(c, (cell, &w))| {
                if c < 4 {
                    format!("{cell:<w$}")
                } else {
                    format!("{cell:>w$}")
                }
            })
            .collect();
        out!("{}", cells.join("  ").trim_end());
    }
    if let Some(path) = out {
        stratum_runner::write_kpis(path, &rows)?;
        out!("\nwrote {}", path.display());
    }
    Ok(())
}

async fn overrides(settings: &Settings, store: &Store, cmd: &OverrideCommand) -> Result<()> {
    match cmd {
        OverrideCommand::Add {
            customer_id,
            ladder,
            level,
            mode,
            until,
            reason,
            new_customer,
        } => {
            // Checked against the workspace's policy and its served run; a policy that
            // does not load is an error, not a reason to skip the check.
            let loaded = stratum_runner::load_policy(&settings.policy_path(None))?;
            stratum_runner::manual::check_override(&loaded.policy, ladder, level)?;
            stratum_runner::manual::check_customer(
                store,
                &loaded.policy,
                customer_id,
                *new_customer,
            )
            .await?;
            let until = *until;
            let id = store
                .add_override(
                    &NewOverride {
                        customer_id: customer_id.clone(),
                        ladder: ladder.clone(),
                        level: level.clone(),
                        mode: *mode,
                        reason: reason.clone(),
                        until,
                    },
                    &settings.actor(),
                )
                .await?;
            out!(
                "override #{id}: {customer_id} {mode} {level} on {ladder}{}; applies from the next run",
                until.map_or(String::new(), |d| format!(" until {d}"))
            );
        }
        OverrideCommand::List { all } => {
            for o in store.overrides().await? {
                if !all && o.removed_at.is_some() {
                    continue;
                }
                out!(
                    "#{:<4} {:<12} {:<8} {:<12} on {:<14} {:<18} {} (by {} at {}){}",
                    o.id,
                    o.customer_id,
                    o.mode,
                    o.level,
                    o.ladder,
                    o.until.map_or("no expiry".into(), |d| format!("until {d}")),
                    o.reason,
                    o.created_by,
                    o.created_at,
                    o.removed_at
                        .as_ref()
                        .map(|r| format!(
                            " removed by {} at {r}",
                            o.removed_by.as_deref().unwrap_or("?")
                        ))
                        .unwrap_or_default()
                );
            }
        }
        OverrideCommand::Remove { id, reason } => {
            store
                .remove_override(*id, reason, &settings.actor())
                .await?;
            out!("override #{id} removed; it stops applying at the next run");
        }
    }
    Ok(())
}

async fn inputs(settings: &Settings, store: &Store, cmd: &InputCommand) -> Result<()> {
    match cmd {
        InputCommand::Set {
            customer_id,
            field,
            value,
            reason,
            new_customer,
        } => {
            let loaded = stratum_runner::load_policy(&settings.policy_path(None))?;
            stratum_runner::manual::check_input(&loaded.policy, field, value)?;
            stratum_runner::manual::check_customer(
                store,
                &loaded.policy,
                customer_id,
                *new_customer,
            )
            .await?;
            if store
                .set_input(customer_id, field, value, reason, &settings.actor())
                .await?
            {
                out!("{customer_id}: {field} = {value}; applies from the next run");
            } else {
                out!("{customer_id}: {field} is {value} already; nothing changed");
            }
        }
        InputCommand::List => {
            for r in store.inputs().await? {
                out!(
                    "{:<12} {:<24} {:<10} {} (by {} at {})",
                    r.customer_id,
                    r.field,
                    r.value,
                    r.reason,
                    r.updated_by,
                    r.updated_at
                );
            }
        }
        InputCommand::Remove {
            customer_id,
            field,
            reason,
        } => {
            store
                .remove_input(customer_id, field, reason, &settings.actor())
                .await?;
            out!("{customer_id}: {field} removed");
        }
    }
    Ok(())
}

async fn tags(settings: &Settings, store: &Store, cmd: &TagCommand) -> Result<()> {
    match cmd {
        TagCommand::Add {
            customer_id,
            tag,
            reason,
        } => {
            store
                .add_tag(customer_id, tag, reason, &settings.actor())
                .await?;
            out!("{customer_id}: tagged {tag}; applies from the next run");
        }
        TagCommand::List => {
            for r in store.tags().await? {
                out!(
                    "{:<12} {:<14} {} (by {} at {})",
                    r.customer_id,
                    r.tag,
                    r.reason,
                    r.added_by,
                    r.added_at
                );
            }
            // And the tags the data itself gives, as the policy's last run recorded them.
            if let Some(policy) = settings.history_policy()? {
                for (customer, tags) in store.data_tags(&policy).await? {
                    for tag in tags.split(',').filter(|t| !t.is_empty()) {
                        out!("{customer:<12} {tag:<14} (from the data)");
                    }
                }
            }
        }
        TagCommand::Remove {
            customer_id,
            tag,
            reason,
        } => {
            store
                .remove_tag(customer_id, tag, reason, &settings.actor())
                .await?;
            out!("{customer_id}: tag {tag} removed");
        }
    }
    Ok(())
}

async fn audit(store: &Store, args: &AuditArgs) -> Result<()> {
    let AuditArgs {
        limit,
        user,
        customer,
        action,
        since,
        until,
    } = args;
    let filter = stratum_store::AuditFilter {
        actor: user.clone(),
        subject: customer.clone(),
        action: action.clone(),
        since: *since,
        until: *until,
    };
    for a in store.audit_search(&filter, *limit).await? {
        out!(
            "{} {:<10} {:<6} {:<16} {:<12} {}",
            a.at,
            a.actor,
            a.origin,
            a.action,
            a.subject,
            a.detail
        );
    }
    Ok(())
}

async fn backup(store: &Store, args: &BackupArgs) -> Result<()> {
    let BackupArgs { file } = args;
    store.backup(file).await?;
    out!(
        "wrote {}: a consistent copy of {}",
        file.display(),
        store.url()
    );
    Ok(())
}
