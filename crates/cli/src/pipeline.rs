//! `stratum calls` and `stratum contact`: a rep's call list for a day, and logging a contact
//! (which moves the customer in the pipeline and off today's list).

use std::process::ExitCode;

use anyhow::{Context, Result};
use chrono::NaiveDate;
use clap::Subcommand;
use stratum_core::pipeline::{Channel, Intent, Outcome};
use stratum_runner::pipeline::ReportKind;

use crate::settings::Settings;

#[derive(Debug, Subcommand)]
pub enum PipelineCommand {
    /// The day's call list of every rep, or one rep's: who is due by their class's cycle or
    /// their set date, overdue first, capped by the day's capacity and the class quotas,
    /// in morning and afternoon blocks
    Calls(CallsArgs),
    /// Log a contact with a customer: channel, outcome, intent, the class it is now in and
    /// the next contact date
    Contact(ContactArgs),
    /// Dedicated managers (客户经理制) for the served run's customers on the policy's
    /// `[assignment]` levels: balanced within one customer of the ideal count, within each
    /// manager's capacity, stable against their owners now; writes customer_id,manager,why,
    /// and with --apply makes them the owners
    Assign(AssignArgs),
    /// The daily activity report: per rep and day, contacts against the weekday's target,
    /// by outcome and by channel
    Activity(ReportArgs),
    /// The funnel by class over a period: prospects now, who entered, who left and where
    /// to (the share of those who left), the median working days they stayed
    Funnel(ReportArgs),
    /// Plan against actual per rep and week: contacts planned by the weekly targets over
    /// the working days, made, the share done, reached
    Weeks(ReportArgs),
    /// The intent customers (possible, good, very likely) as of --to: rep, class, last
    /// contact, when due, working days overdue; likeliest and most overdue first
    Intents(ReportArgs),
    /// The lost-sale reasons: the notes of refused contacts in the period, counted
    Lost(ReportArgs),
    /// The day's overdue follow-ups that reached a step of `[pipeline.escalation]`: whom to
    /// remind, which team lead to tell, who takes those returned to the pool (--apply hands
    /// them over)
    Escalate(EscalateArgs),
    /// Import a register of contacts (CSV: customer_id, rep, on, channel, outcome[, intent,
    /// class, next_contact, notes]); all rows or none, unless quarantined
    ImportContacts(ImportArgs),
}

#[derive(clap::Args, Debug)]
pub struct AssignArgs {
    /// The levels whose customers get a dedicated manager (comma-separated; default the
    /// policy's `[assignment] levels`)
    #[arg(long, value_delimiter = ',')]
    levels: Vec<String>,
    /// The managers (comma-separated), each optionally NAME:CAPACITY (default the policy's
    /// `[assignment.managers]`; a manager left out has left: its customers move)
    #[arg(long, value_delimiter = ',')]
    managers: Vec<String>,
    /// Save the assignments: they become the customers' owners (agent permissions, the
    /// service's owner, the pipeline's rep); customers no longer on the levels are released
    #[arg(long)]
    apply: bool,
    /// The ladder (default: the service ladder)
    #[arg(long)]
    ladder: Option<String>,
    /// Write the assignments here (CSV); default: standard output
    #[arg(long)]
    out: Option<std::path::PathBuf>,
}

#[derive(clap::Args, Debug)]
pub struct EscalateArgs {
    /// The day (default: today)
    #[arg(long)]
    date: Option<NaiveDate>,
    /// Hand the customers returned to the pool to the team member holding fewest prospects
    #[arg(long)]
    apply: bool,
}

#[derive(clap::Args, Debug)]
pub struct ReportArgs {
    /// The first day of the period (default: the first of --to's month)
    #[arg(long)]
    from: Option<NaiveDate>,
    /// The last day of the period (default: today)
    #[arg(long)]
    to: Option<NaiveDate>,
    /// One rep's (default: every rep's)
    #[arg(long)]
    rep: Option<String>,
    /// Also write the report here as CSV
    #[arg(long)]
    csv: Option<std::path::PathBuf>,
}

/// Prints a pipeline report for the period (and writes it as CSV when asked).
async fn report(
    loaded: &stratum_runner::LoadedPolicy,
    store: &stratum_store::Store,
    kind: ReportKind,
    args: &ReportArgs,
) -> Result<()> {
    let to = args.to.unwrap_or_else(|| chrono::Local::now().date_naive());
    let from = args
        .from
        .unwrap_or_else(|| chrono::Datelike::with_day(&to, 1).unwrap_or(to));
    anyhow::ensure!(from <= to, "--from {from} is after --to {to}");
    let reps = args.rep.clone().map(|r| vec![r]);
    let report =
        stratum_runner::pipeline::report(loaded, store, kind, from, to, reps.as_deref()).await?;
    if kind == ReportKind::Intents {
        out!("{} as of {to}", kind.as_str());
    } else {
        out!("{} {from} to {to}", kind.as_str());
    }
    out_part!("{}", report.text());
    if let Some(path) = &args.csv {
        std::fs::write(path, report.csv())
            .with_context(|| format!("writing {}", path.display()))?;
        eprintln!("stratum: wrote {}", path.display());
    }
    Ok(())
}

#[derive(clap::Args, Debug)]
pub struct ImportArgs {
    file: std::path::PathBuf,
    /// Bad rows: stop with their lines (fail), or leave them out and write them to
    /// FILE.rejects.csv (quarantine)
    #[arg(long, value_enum, default_value = "fail")]
    on_bad_rows: crate::OnBadRows,
    /// Accept customers the served run does not have (leads)
    #[arg(long)]
    new_customers: bool,
}

#[derive(clap::Args, Debug)]
pub struct CallsArgs {
    /// One rep's list (default: every rep's)
    #[arg(long)]
    rep: Option<String>,
    /// The day (default: today)
    #[arg(long)]
    date: Option<NaiveDate>,
}

#[derive(clap::Args, Debug)]
pub struct ContactArgs {
    customer_id: String,
    /// The rep who made the contact (default: the user, `--by`/STRATUM_USER)
    #[arg(long)]
    rep: Option<String>,
    #[arg(long, value_parser = parse::<Channel>, default_value = "call")]
    channel: Channel,
    #[arg(long, value_parser = parse::<Outcome>)]
    outcome: Outcome,
    #[arg(long, value_parser = parse::<Intent>)]
    intent: Option<Intent>,
    /// The class the contact put the customer in (required the first time)
    #[arg(long)]
    class: Option<String>,
    /// When to contact the customer next (default: the class's cycle)
    #[arg(long)]
    next: Option<NaiveDate>,
    /// The day of the contact (default: today)
    #[arg(long)]
    on: Option<NaiveDate>,
    #[arg(long, default_value = "")]
    notes: String,
    /// A lead the served run does not have yet (otherwise an unknown id is refused)
    #[arg(long)]
    new_customer: bool,
}

fn parse<T: std::str::FromStr<Err = String>>(text: &str) -> Result<T, String> {
    text.parse()
}

pub async fn run(settings: &Settings, cmd: &PipelineCommand) -> Result<ExitCode> {
    let loaded = stratum_runner::load_policy(&settings.policy_path(None))?;
    let store = settings.open_store().await?;
    match cmd {
        PipelineCommand::Calls(args) => calls(&loaded, &store, args).await?,
        PipelineCommand::Contact(args) => contact(settings, &loaded, &store, args).await?,
        PipelineCommand::Assign(args) => {
            use stratum_core::assign::{Manager, Why};
            let managers = args
                .managers
                .iter()
                .map(|m| match m.split_once(':') {
                    Some((name, cap)) => cap
                        .parse()
                        .map(|c| Manager {
                            name: name.to_string(),
                            capacity: Some(c),
                            rating: 0,
                        })
                        .map_err(|_| anyhow::anyhow!("`{m}`: a capacity is a whole number")),
                    None => Ok(Manager {
                        name: m.to_string(),
                        capacity: None,
                        rating: 0,
                    }),
                })
                .collect::<Result<Vec<_>>>()?;
            let rule = stratum_runner::pipeline::assignment_rule(
                &loaded,
                args.ladder.as_deref(),
                &args.levels,
                &managers,
            )?;
            let done = stratum_runner::pipeline::assign_managers(&loaded, &store, &rule).await?;
            let mut w = csv::Writer::from_writer(Vec::new());
            w.write_record(["customer_id", "manager", "why"])?;
            for a in &done {
                let why = a.why.to_string();
                w.write_record([a.customer_id.as_str(), a.manager.as_str(), why.as_str()])?;
            }
            let bytes = w.into_inner().map_err(|e| anyhow::anyhow!("{e}"))?;
            match &args.out {
                Some(path) => std::fs::write(path, &bytes)
                    .with_context(|| format!("writing {}", path.display()))?,
                None => {
                    use std::io::Write as _;
                    std::io::stdout().lock().write_all(&bytes)?;
                }
            }
            let moved = done.iter().filter(|a| a.why != Why::Kept).count();
            eprintln!(
                "stratum: {} customer(s) of {} on {} over {} manager(s); {moved} new or moved",
                done.len(),
                rule.ladder,
                rule.levels.join(", "),
                rule.managers.len()
            );
            if args.apply {
                let today = chrono::Local::now().date_naive();
                let applied = stratum_runner::pipeline::apply_assignments(
                    &loaded,
                    &store,
                    &done,
                    today,
                    &settings.actor(),
                )
                .await?;
                eprintln!(
                    "stratum: applied: {} assigned, {} released, {} prospect(s) handed to their manager",
                    applied.assigned, applied.released, applied.prospects_moved
                );
            } else {
                eprintln!("stratum: nothing saved (--apply makes them the owners)");
            }
        }
        PipelineCommand::Escalate(args) => {
            let date = args
                .date
                .unwrap_or_else(|| chrono::Local::now().date_naive());
            let (all, moved) = if args.apply {
                stratum_runner::pipeline::return_to_pool(&loaded, &store, date, &settings.actor())
                    .await?
            } else {
                (
                    stratum_runner::pipeline::escalations(&loaded, &store, date).await?,
                    0,
                )
            };
            use stratum_core::pipeline::Escalation;
            let count = |step: Escalation| all.iter().filter(|e| e.step == step).count();
            out!(
                "escalations {date}: {} to remind their rep, {} to tell the team lead, {} returned to the pool",
                count(Escalation::RemindRep),
                count(Escalation::TellManager),
                count(Escalation::ReturnToPool)
            );
            if !all.is_empty() {
                out!(
                    "{:<10} {:<8} {:<10} {:>7}  {:<22} {}",
                    "customer",
                    "rep",
                    "class",
                    "overdue",
                    "step",
                    "lead / hand to"
                );
            }
            for e in &all {
                let who = match e.step {
                    Escalation::RemindRep => String::new(),
                    Escalation::TellManager => e.lead.clone().unwrap_or_else(|| "(no team)".into()),
                    Escalation::ReturnToPool => match &e.hand_to {
                        Some(to) => format!("→ {to}"),
                        None => "(no team to hand to)".into(),
                    },
                };
                out!(
                    "{:<10} {:<8} {:<10} {:>7}  {:<22} {who}",
                    e.customer_id,
                    e.rep,
                    e.class,
                    e.overdue_days,
                    e.step.as_str()
                );
            }
            if args.apply {
                out!("handed over: {moved}");
            }
        }
        PipelineCommand::Activity(args) => {
            report(&loaded, &store, ReportKind::Activity, args).await?
        }
        PipelineCommand::Funnel(args) => report(&loaded, &store, ReportKind::Funnel, args).await?,
        PipelineCommand::Weeks(args) => report(&loaded, &store, ReportKind::Weeks, args).await?,
        PipelineCommand::Intents(args) => {
            report(&loaded, &store, ReportKind::Intents, args).await?
        }
        PipelineCommand::Lost(args) => report(&loaded, &store, ReportKind::Lost, args).await?,
        PipelineCommand::ImportContacts(args) => {
            let rejects = args.file.with_extension("rejects.csv");
            let quarantine = matches!(args.on_bad_rows, crate::OnBadRows::Quarantine)
                .then_some(rejects.as_path());
            let done = stratum_runner::pipeline::import_register(
                &loaded,
                &store,
                &args.file,
                quarantine,
                args.new_customers,
                &settings.actor(),
            )
            .await?;
            out!(
                "{}: {} row(s) read, {} logged, {} rejected{}",
                args.file.display(),
                done.read,
                done.logged,
                done.rejected.len(),
                if done.rejected.is_empty() {
                    String::new()
                } else {
                    format!(" (see {})", rejects.display())
                }
            );
        }
    }
    store.close().await?;
    Ok(ExitCode::SUCCESS)
}

async fn calls(
    loaded: &stratum_runner::LoadedPolicy,
    store: &stratum_store::Store,
    args: &CallsArgs,
) -> Result<()> {
    let date = args
        .date
        .unwrap_or_else(|| chrono::Local::now().date_naive());
    let pipeline = stratum_runner::pipeline::pipeline_of(loaded)?;
    let lists =
        stratum_runner::pipeline::call_lists(loaded, store, date, args.rep.as_deref()).await?;
    if lists.is_empty() {
        out!("nobody is in the pipeline yet (log a first contact with `stratum contact`)");
    }
    for list in &lists {
        let weekday = date.format("%A");
        let coverage = format!(
            "  holds {} customer(s): at {} a day everyone is reached every {} working day(s) ({} this month){}",
            list.held,
            pipeline.daily_capacity,
            list.coverage_days,
            list.month_working_days,
            list.over_capacity
                .iter()
                .map(|(class, held, cap)| format!(
                    "; over capacity in class {}: {held} of {cap}",
                    pipeline.classes[*class].name
                ))
                .collect::<String>()
        );
        if !list.working_day {
            out!("{}, {weekday} {date}: not a working day", list.rep);
            continue;
        }
        out!(
            "{}, {weekday} {date}: {} call(s){}{}",
            list.rep,
            list.calls.len(),
            list.target
                .map(|t| format!(" (target {t})"))
                .unwrap_or_default(),
            if list.carried.is_empty() {
                String::new()
            } else {
                format!(", {} carried to the next working day", list.carried.len())
            }
        );
        out!("{coverage}");
        for (block, name) in [(0u8, "morning"), (1, "afternoon")] {
            let calls: Vec<_> = list.calls.iter().filter(|c| c.block == block).collect();
            if calls.is_empty() {
                continue;
            }
            out!("  {name}");
            let first = list
                .calls
                .iter()
                .position(|c| c.block == block)
                .unwrap_or(0);
            for (i, c) in calls.iter().enumerate() {
                let mut flags = Vec::new();
                if c.overdue {
                    flags.push(match c.escalation {
                        Some(step) => format!(
                            "overdue {} working day(s): {}",
                            c.overdue_days,
                            step.as_str()
                        ),
                        None => format!("overdue {} working day(s)", c.overdue_days),
                    });
                }
                if c.past_deadline {
                    flags.push("past payment deadline".to_string());
                }
                if let Some(intent) = c.intent {
                    flags.push(format!("intent {intent}"));
                }
                out!(
                    "  {:>4}  {:<10} class {:<10} due {}{}",
                    first + i + 1,
                    c.customer_id,
                    pipeline.classes[c.class].name,
                    c.due,
                    if flags.is_empty() {
                        String::new()
                    } else {
                        format!("  {}", flags.join(", "))
                    }
                );
            }
        }
    }
    Ok(())
}

async fn contact(
    settings: &Settings,
    loaded: &stratum_runner::LoadedPolicy,
    store: &stratum_store::Store,
    args: &ContactArgs,
) -> Result<()> {
    let actor = settings.actor();
    let now = chrono::Utc::now();
    let new = stratum_store::NewInteraction {
        customer_id: args.customer_id.clone(),
        rep: args.rep.clone().unwrap_or_else(|| actor.name.clone()),
        on: args.on.unwrap_or_else(|| chrono::Local::now().date_naive()),
        at: now,
        channel: args.channel,
        outcome: args.outcome,
        intent: args.intent,
        class: args.class.clone(),
        next_contact: args.next,
        notes: args.notes.clone(),
    };
    let row = stratum_runner::pipeline::log_contact(loaded, store, &new, args.new_customer, &actor)
        .await?;
    let p = store
        .prospect(&args.customer_id)
        .await?
        .context("the prospect just logged")?;
    out!(
        "logged #{} for {}: {} {}; class {}, next contact {}",
        row.id,
        row.customer_id,
        row.channel,
        row.outcome,
        p.class,
        p.next_contact
            .map(|d| d.to_string())
            .unwrap_or_else(|| "by the class's cycle".into())
    );
    Ok(())
}
