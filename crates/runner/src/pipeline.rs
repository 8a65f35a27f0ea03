//! The sales pipeline over the store: the policy's `[pipeline]` with its calendar file, the
//! prospects the store keeps, and the day's call lists they make.

use chrono::NaiveDate;
use stratum_core::calendar::Calendar;
use stratum_core::pipeline::{CallList, Pipeline, Prospect};
use stratum_store::{ProspectRow, Store};

use crate::{LoadedPolicy, RunError};

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
