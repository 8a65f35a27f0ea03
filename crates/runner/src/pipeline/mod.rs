//! The sales pipeline over the store: the policy's `[pipeline]` with its calendar file, the
//! prospects the store keeps, and the day's call lists they make.

use chrono::NaiveDate;
use stratum_core::calendar::Calendar;
use stratum_core::pipeline::{CallList, Pipeline, Prospect};
use stratum_store::{ProspectRow, Store};

use crate::{LoadedPolicy, RunError};

mod reports;
pub use reports::{
    ActivityRow, FunnelRow, IntentRow, LostReason, Report, ReportKind, WeekRow, activity, funnel,
    intents, lost_reasons, report, weeks,
};

/// The policy's pipeline, or why there is none.
pub fn pipeline_of(loaded: &LoadedPolicy) -> Result<&Pipeline, RunError> {
    loaded.policy.pipeline.as_ref().ok_or_else(|| {
        RunError::Refused(format!(
            "policy `{}` has no [pipeline] (docs/POLICY.md says how to declare its classes)",
            loaded.policy.history_name()
        ))
    })
}

/// The pipeline's working-day calendar, read from its file (Monday to Friday without one).
pub fn calendar(loaded: &LoadedPolicy) -> Result<Calendar, RunError> {
    let Some(file) = pipeline_of(loaded)?.calendar.as_deref() else {
        return Ok(Calendar::default());
    };
    let path = loaded.base_dir.join(file);
    let text = std::fs::read_to_string(&path).map_err(|e| {
        RunError::Refused(format!("cannot read the calendar {}: {e}", path.display()))
    })?;
    Calendar::parse(&text, &path.display().to_string())
        .map_err(|e| RunError::Refused(e.to_string()))
}

/// The stored prospects as the pipeline counts them. A prospect in a class the policy no
/// longer has stops the list rather than vanishing from it.
pub fn prospects(pipeline: &Pipeline, rows: &[ProspectRow]) -> Result<Vec<Prospect>, RunError> {
    let mut unknown: Vec<String> = Vec::new();
    let out = rows
        .iter()
        .filter_map(|r| match pipeline.class_index(&r.class) {
            Some(class) => Some(Prospect {
                customer_id: r.customer_id.clone(),
                rep: r.rep.clone(),
                class,
                class_since: r.class_since,
                last_contact: r.last_contact,
                next_contact: r.next_contact,
                intent: r.intent,
            }),
            None => {
                unknown.push(format!("{} (class {})", r.customer_id, r.class));
                None
            }
        })
        .collect();
    if !unknown.is_empty() {
        let names: Vec<&str> = pipeline.classes.iter().map(|c| c.name.as_str()).collect();
        return Err(RunError::Refused(format!(
            "{} prospect(s) are in classes the policy does not have: {}; its classes: {}",
            unknown.len(),
            unknown
                .iter()
                .take(5)
                .cloned()
                .collect::<Vec<_>>()
                .join(", "),
            names.join(", ")
        )));
    }
    Ok(out)
}

/// The call lists of `date`: every rep's, or one rep's (empty when the rep holds nobody).
pub async fn call_lists(
    loaded: &LoadedPolicy,
    store: &Store,
    date: NaiveDate,
    rep: Option<&str>,
) -> Result<Vec<CallList>, RunError> {
    let pipeline = pipeline_of(loaded)?;
    let calendar = calendar(loaded)?;
    let rows: Vec<ProspectRow> = store
        .prospects()
        .await?
        .into_iter()
        .filter(|r| rep.is_none_or(|rep| r.rep == rep))
        .collect();
    let prospects = prospects(pipeline, &rows)?;
    let mut lists = pipeline.call_lists(&calendar, &prospects, date);
    if let (Some(rep), true) = (rep, lists.is_empty()) {
        lists.push(CallList {
            rep: rep.to_string(),
            date,
            working_day: calendar.is_working(date),
            target: pipeline.target_on(date),
            month_working_days: calendar.working_days_in_month(date),
            ..CallList::default()
        });
    }
    Ok(lists)
}

/// Logs a contact once the policy has the class it names and the served run the customer
/// (unless `new_customer`: a lead the data does not have yet): the CLI's and the API's one
/// way in.
pub async fn log_contact(
    loaded: &LoadedPolicy,
    store: &Store,
    new: &stratum_store::NewInteraction,
    new_customer: bool,
    actor: &stratum_store::Actor,
) -> Result<stratum_store::InteractionRow, RunError> {
    let pipeline = pipeline_of(loaded)?;
    if let Some(class) = &new.class
        && pipeline.class_index(class).is_none()
    {
        let names: Vec<&str> = pipeline.classes.iter().map(|c| c.name.as_str()).collect();
        return Err(RunError::Refused(format!(
            "unknown class `{class}`: the policy's classes are {}",
            names.join(", ")
        )));
    }
    crate::manual::check_customer(store, &loaded.policy, &new.customer_id, new_customer).await?;
    Ok(store.log_interaction(new, actor).await?)
}

/// What an imported register came to.
#[derive(Debug, Clone, PartialEq)]
pub struct Imported {
    pub read: usize,
    pub logged: usize,
    /// (line, why) of each row left out.
    pub rejected: Vec<(usize, String)>,
}

/// The columns a register has (the first five required).
pub const REGISTER_COLUMNS: [&str; 9] = [
    "customer_id",
    "rep",
    "on",
    "channel",
    "outcome",
    "intent",
    "class",
    "next_contact",
    "notes",
];

/// Reads a register of contacts (the walk-in and phone-in registers, a call log) and logs
/// it in one transaction. Every row is checked first: dates, the closed words (channel,
/// outcome, intent), a class the policy has, a next contact not before the contact, a
/// customer the served run has (unless `new_customers`), a class on a customer's first
/// contact. With `quarantine`, bad rows are left out (and written to `rejects`, each with
/// its line and why) and the rest logged; without, the first bad rows are the error, with
/// their file and line, and nothing is logged. A register whose every row is bad logs
/// nothing either way.
pub async fn import_register(
    loaded: &LoadedPolicy,
    store: &Store,
    path: &std::path::Path,
    quarantine: Option<&std::path::Path>,
    new_customers: bool,
    actor: &stratum_store::Actor,
) -> Result<Imported, RunError> {
    use stratum_core::pipeline::{Channel, Intent, Outcome};
    let pipeline = pipeline_of(loaded)?;
    let file = path.display().to_string();
    let io = |e: std::io::Error| RunError::Refused(format!("cannot read {file}: {e}"));
    let text = std::fs::read_to_string(path).map_err(io)?;
    let mut reader = csv::ReaderBuilder::new().from_reader(text.as_bytes());
    let headers: Vec<String> = reader
        .headers()
        .map_err(|e| RunError::Refused(format!("{file}:1: {e}")))?
        .iter()
        .map(|h| h.trim().to_string())
        .collect();
    for required in &REGISTER_COLUMNS[..5] {
        if !headers.iter().any(|h| h == required) {
            return Err(RunError::Refused(format!(
                "{file}:1: no `{required}` column (a register has {})",
                REGISTER_COLUMNS.join(", ")
            )));
        }
    }
    if let Some(unknown) = headers
        .iter()
        .find(|h| !REGISTER_COLUMNS.contains(&h.as_str()))
    {
        return Err(RunError::Refused(format!(
            "{file}:1: unknown column `{unknown}` (a register has {})",
            REGISTER_COLUMNS.join(", ")
        )));
    }
    let col = |name: &str| headers.iter().position(|h| h == name);
    let served = store.latest_run_id(loaded.policy.history_name()).await?;
    let mut known: std::collections::HashMap<String, bool> = Default::default();
    let mut in_pipeline: std::collections::HashSet<String> = store
        .prospects()
        .await?
        .into_iter()
        .map(|p| p.customer_id)
        .collect();
    // A large register checks its customers against the run's ids at once; a small one
    // looks each up.
    let in_run = match served {
        Some(run) if !new_customers && text.len() > 64 * 1024 => {
            Some(store.run_customer_ids(run).await?)
        }
        _ => None,
    };
    let mut accepted = Vec::new();
    let mut rejected: Vec<(usize, String)> = Vec::new();
    let mut read = 0;
    for record in reader.records() {
        read += 1;
        let record = match record {
            Ok(r) => r,
            Err(e) => {
                let line = e.position().map_or(0, |p| p.line() as usize);
                rejected.push((line, e.to_string()));
                continue;
            }
        };
        let line = record.position().map_or(0, |p| p.line() as usize);
        let field = |name: &str| {
            col(name)
                .and_then(|i| record.get(i))
                .map(str::trim)
                .unwrap_or("")
        };
        let optional = |name: &str| Some(field(name)).filter(|v| !v.is_empty());
        let date = |name: &str, text: &str| {
            chrono::NaiveDate::parse_from_str(text, "%Y-%m-%d")
                .map_err(|_| format!("{name} `{text}` is not YYYY-MM-DD"))
        };
        let checked = (|| -> Result<stratum_store::NewInteraction, String> {
            let customer_id = field("customer_id");
            if customer_id.is_empty() {
                return Err("no customer_id".into());
            }
            let rep = field("rep");
            if rep.is_empty() {
                return Err("no rep".into());
            }
            let on = date("on", field("on"))?;
            let class = optional("class").map(str::to_string);
            if let Some(c) = &class
                && pipeline.class_index(c).is_none()
            {
                return Err(format!("unknown class `{c}`"));
            }
            let next_contact = optional("next_contact")
                .map(|t| date("next_contact", t))
                .transpose()?;
            if next_contact.is_some_and(|n| n < on) {
                return Err(format!("next_contact is before on ({on})"));
            }
            Ok(stratum_store::NewInteraction {
                customer_id: customer_id.to_string(),
                rep: rep.to_string(),
                on,
                at: on.and_hms_opt(12, 0, 0).expect("noon exists").and_utc(),
                channel: field("channel").parse::<Channel>()?,
                outcome: field("outcome").parse::<Outcome>()?,
                intent: optional("intent").map(str::parse::<Intent>).transpose()?,
                class,
                next_contact,
                notes: field("notes").to_string(),
            })
        })();
        let new = match checked {
            Ok(n) => n,
            Err(why) => {
                rejected.push((line, why));
                continue;
            }
        };
        if !new_customers && let Some(run) = served {
            let exists = match (&in_run, known.get(&new.customer_id)) {
                (Some(ids), _) => ids.contains(&new.customer_id),
                (None, Some(e)) => *e,
                (None, None) => {
                    let e = !store.levels_of(run, &new.customer_id).await?.is_empty();
                    known.insert(new.customer_id.clone(), e);
                    e
                }
            };
            if !exists {
                rejected.push((
                    line,
                    format!(
                        "customer `{}` is not in the served run #{run}",
                        new.customer_id
                    ),
                ));
                continue;
            }
        }
        if new.class.is_none() && !in_pipeline.contains(&new.customer_id) {
            rejected.push((
                line,
                format!(
                    "customer `{}` is new to the pipeline: its first contact needs a class",
                    new.customer_id
                ),
            ));
            continue;
        }
        in_pipeline.insert(new.customer_id.clone());
        accepted.push(new);
    }
    if !rejected.is_empty() && (quarantine.is_none() || accepted.is_empty()) {
        let shown: Vec<String> = rejected
            .iter()
            .take(5)
            .map(|(line, why)| format!("{file}:{line}: {why}"))
            .collect();
        return Err(RunError::Refused(format!(
            "{} of {read} row(s) are bad{}; nothing was logged:\n{}",
            rejected.len(),
            if accepted.is_empty() {
                ", every one"
            } else {
                ""
            },
            shown.join("\n")
        )));
    }
    if let Some(rejects) = quarantine
        && !rejected.is_empty()
    {
        let mut w = csv::Writer::from_path(rejects)
            .map_err(|e| RunError::Refused(format!("cannot write {}: {e}", rejects.display())))?;
        let write = |w: &mut csv::Writer<std::fs::File>, line: String, why: &str| {
            w.write_record([line.as_str(), why])
                .map_err(|e| RunError::Refused(format!("cannot write {}: {e}", rejects.display())))
        };
        write(&mut w, "line".into(), "why")?;
        for (line, why) in &rejected {
            write(&mut w, line.to_string(), why)?;
        }
        w.flush()
            .map_err(|e| RunError::Refused(format!("cannot write {}: {e}", rejects.display())))?;
    }
    let logged = store.log_interactions(&accepted, actor).await?;
    Ok(Imported {
        read,
        logged,
        rejected,
    })
}

/// The assignment to make: the policy's `[assignment]`, with what the command line gives
/// instead (`ladder`, `levels`, `managers`: each replaces the policy's).
pub fn assignment_rule(
    loaded: &LoadedPolicy,
    ladder: Option<&str>,
    levels: &[String],
    managers: &[stratum_core::assign::Manager],
) -> Result<stratum_core::assign::AssignmentRule, RunError> {
    let policy = &loaded.policy;
    let declared = policy.assignment.as_ref();
    if declared.is_none() && (levels.is_empty() || managers.is_empty()) {
        return Err(RunError::Refused(
            "the policy has no [assignment]: give the levels and the managers \
             (docs/POLICY.md says how to declare them)"
                .into(),
        ));
    }
    let ladder = match (ladder, declared) {
        (Some(l), _) => l.to_string(),
        (None, Some(rule)) => rule.ladder.clone(),
        (None, None) => match policy.service.as_ref() {
            Some(s) => s.ladder_name.clone(),
            None => policy
                .ladders
                .first()
                .map(|l| l.name.clone())
                .ok_or_else(|| RunError::Refused("the policy has no ladder".into()))?,
        },
    };
    let Some(known) = policy.ladders.iter().find(|l| l.name == ladder) else {
        return Err(RunError::Refused(format!("unknown ladder `{ladder}`")));
    };
    let levels = match (levels.is_empty(), declared) {
        (true, Some(rule)) => rule.levels.clone(),
        _ => levels.to_vec(),
    };
    for level in &levels {
        if known.level_index(level).is_none() {
            let names: Vec<&str> = known.levels.iter().map(|l| l.name.as_str()).collect();
            return Err(RunError::Refused(format!(
                "ladder `{ladder}` has no level `{level}` (its levels: {})",
                names.join(", ")
            )));
        }
    }
    Ok(stratum_core::assign::AssignmentRule {
        ladder,
        levels,
        by_rating: declared.is_some_and(|r| r.by_rating),
        managers: match (managers.is_empty(), declared) {
            (true, Some(rule)) => rule.managers.clone(),
            _ => managers.to_vec(),
        },
    })
}

/// Dedicated managers for the served run's customers on the rule's levels: balanced by
/// count and, among equally loaded managers, by the ladder's score; stable against their
/// owners now (their managers, else the run's `[service] owner`), each move with its
/// reason.
pub async fn assign_managers(
    loaded: &LoadedPolicy,
    store: &Store,
    rule: &stratum_core::assign::AssignmentRule,
) -> Result<Vec<stratum_core::assign::Assignment>, RunError> {
    let policy = &loaded.policy;
    let ladder = policy
        .ladders
        .iter()
        .find(|l| l.name == rule.ladder)
        .ok_or_else(|| RunError::Refused(format!("unknown ladder `{}`", rule.ladder)))?;
    let run = store
        .latest_run_id(policy.history_name())
        .await?
        .ok_or_else(|| RunError::Refused("no run recorded yet: run `stratum run`".into()))?;
    let standings = store.run_standings(run).await?;
    let owners: std::collections::HashMap<&str, &str> = standings
        .owners
        .iter()
        .map(|(c, o)| (c.as_str(), o.as_str()))
        .collect();
    let customers: Vec<stratum_core::assign::Assignee> = standings
        .rows
        .iter()
        .filter(|r| r.ladder == rule.ladder && rule.levels.contains(&r.level))
        .map(|r| stratum_core::assign::Assignee {
            customer_id: r.customer_id.clone(),
            level: ladder.level_index(&r.level).unwrap_or(usize::MAX),
            value: r.score.unwrap_or(0.0),
            manager: owners.get(r.customer_id.as_str()).map(|o| o.to_string()),
        })
        .collect();
    stratum_core::assign::assign(&customers, &rule.managers, rule.by_rating)
        .map_err(|e| RunError::Refused(e.to_string()))
}

/// Saves assignments as the policy's dedicated managers (owners for permissions, the
/// service and the pipeline, whose prospects follow them), releasing those no longer named.
pub async fn apply_assignments(
    loaded: &LoadedPolicy,
    store: &Store,
    done: &[stratum_core::assign::Assignment],
    on: NaiveDate,
    actor: &stratum_store::Actor,
) -> Result<stratum_store::AppliedAssignments, RunError> {
    let set: Vec<stratum_store::Handover> = done
        .iter()
        .map(|a| stratum_store::Handover {
            customer_id: a.customer_id.clone(),
            to: a.manager.clone(),
            reason: format!("assigned: {}", a.why),
        })
        .collect();
    Ok(store
        .apply_assignments(loaded.policy.history_name(), &set, on, actor)
        .await?)
}

/// An overdue follow-up that has reached a step of `[pipeline.escalation]`.
#[derive(Debug, Clone, PartialEq)]
pub struct Escalated {
    pub customer_id: String,
    pub rep: String,
    /// The rep's team lead (`[teams]`), told from `manager_after` on.
    pub lead: Option<String>,
    pub class: String,
    pub overdue_days: u32,
    pub step: stratum_core::pipeline::Escalation,
    /// At `pool_after`: the team member it goes to (the one holding fewest prospects); none
    /// when the rep has no team to hand it to.
    pub hand_to: Option<String>,
}

/// Every overdue follow-up on `date` that has reached an escalation step, furthest first:
/// who is reminded, which lead is told, and who takes the customers returned to the pool.
pub async fn escalations(
    loaded: &LoadedPolicy,
    store: &Store,
    date: NaiveDate,
) -> Result<Vec<Escalated>, RunError> {
    use stratum_core::pipeline::Escalation;
    let pipeline = pipeline_of(loaded)?;
    let teams = &loaded.policy.teams;
    let lists = call_lists(loaded, store, date, None).await?;
    let mut held: std::collections::HashMap<String, usize> = lists
        .iter()
        .map(|l| (l.rep.clone(), l.held as usize))
        .collect();
    let mut out = Vec::new();
    for list in &lists {
        for call in list.calls.iter().chain(&list.carried) {
            let Some(step) = call.escalation else {
                continue;
            };
            let lead = teams.lead_of(&list.rep).map(str::to_string);
            let hand_to = match (step, &lead) {
                (Escalation::ReturnToPool, Some(lead)) => {
                    let taker = teams
                        .members_of(lead)
                        .iter()
                        .filter(|m| **m != list.rep)
                        .min_by_key(|m| (held.get(*m).copied().unwrap_or(0), (*m).clone()))
                        .cloned();
                    if let Some(t) = &taker {
                        *held.entry(t.clone()).or_default() += 1;
                    }
                    taker
                }
                _ => None,
            };
            out.push(Escalated {
                customer_id: call.customer_id.clone(),
                rep: list.rep.clone(),
                lead,
                class: pipeline.classes[call.class].name.clone(),
                overdue_days: call.overdue_days,
                step,
                hand_to,
            });
        }
    }
    out.sort_by(|a, b| {
        b.step
            .cmp(&a.step)
            .then(b.overdue_days.cmp(&a.overdue_days))
            .then(a.customer_id.cmp(&b.customer_id))
    });
    Ok(out)
}

/// Acts on the pool step of `date`'s escalations: each customer returned to the pool is
/// handed to the member of its rep's team holding fewest prospects (a rep change, saying
/// why). The escalations, with what was handed over.
pub async fn return_to_pool(
    loaded: &LoadedPolicy,
    store: &Store,
    date: NaiveDate,
    actor: &stratum_store::Actor,
) -> Result<(Vec<Escalated>, usize), RunError> {
    let all = escalations(loaded, store, date).await?;
    let moves: Vec<stratum_store::Handover> = all
        .iter()
        .filter_map(|e| {
            e.hand_to.as_ref().map(|to| stratum_store::Handover {
                customer_id: e.customer_id.clone(),
                to: to.clone(),
                reason: format!(
                    "returned to the pool: {} working days overdue with {}",
                    e.overdue_days, e.rep
                ),
            })
        })
        .collect();
    let moved = if moves.is_empty() {
        0
    } else {
        store.hand_prospects(&moves, date, actor).await?
    };
    Ok((all, moved))
}
