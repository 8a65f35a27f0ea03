//! `[pipeline]`: the sales team's classes, quotas and weekly targets.

use super::{Checked, Ctx};
use crate::diagnostic::{Code, Diagnostic};
use crate::pipeline::{ClassQuota, Pipeline, PipelineClass, weekday_of};
use crate::policy::PolicyFile;

pub(super) fn compile(raw: &PolicyFile, _checked: &Checked, cx: &mut Ctx<'_>) -> Option<Pipeline> {
    let def = raw.pipeline.as_ref()?;
    let mut ok = true;
    let mut bad = |key: String, message: String, cx: &mut Ctx<'_>| {
        cx.push(Diagnostic::new(Code::InvalidPipeline, key, message));
        ok = false;
    };
    if def.classes.is_empty() {
        bad(
            "pipeline.classes".into(),
            "a pipeline needs its classes (`[[pipeline.classes]]`, in the order they are served)"
                .into(),
            cx,
        );
    }
    let mut classes: Vec<PipelineClass> = Vec::new();
    for (i, c) in def.classes.iter().enumerate() {
        let key = format!("pipeline.classes[{i}]");
        if c.name.trim().is_empty() {
            bad(format!("{key}.name"), "a class needs a name".into(), cx);
        } else if classes.iter().any(|x| x.name == c.name) {
            bad(
                format!("{key}.name"),
                format!("class `{}` is named twice", c.name),
                cx,
            );
        }
        if c.follow_up_days == 0 {
            bad(
                format!("{key}.follow_up_days"),
                format!(
                    "class `{}`: a follow-up cycle is at least 1 working day",
                    c.name
                ),
                cx,
            );
        }
        classes.push(PipelineClass {
            name: c.name.clone(),
            label: c.label.clone(),
            description: c.description.clone(),
            capacity: c.capacity,
            follow_up_days: c.follow_up_days,
            pay_within_days: c.pay_within_days,
        });
    }
    let mut quotas = Vec::new();
    for (i, q) in def.quotas.iter().enumerate() {
        let key = format!("pipeline.quotas[{i}]");
        let mut members = Vec::new();
        for name in &q.classes {
            match classes.iter().position(|c| &c.name == name) {
                Some(at) => members.push(at),
                None => bad(
                    format!("{key}.classes"),
                    format!(
                        "unknown class `{name}` (the classes: {})",
                        classes
                            .iter()
                            .map(|c| c.name.as_str())
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                    cx,
                ),
            }
        }
        if members.is_empty() {
            bad(
                format!("{key}.classes"),
                "a quota names the classes it counts".into(),
                cx,
            );
        }
        if let (Some(min), Some(max)) = (q.min, q.max)
            && min > max
        {
            bad(
                format!("{key}.min"),
                format!("min {min} is above max {max}"),
                cx,
            );
        }
        quotas.push(ClassQuota {
            classes: members,
            min: q.min.unwrap_or(0),
            max: q.max,
        });
    }
    let mut weekly_targets = [None; 7];
    for (day, target) in &def.weekly_targets {
        match weekday_of(day) {
            Some(w) => weekly_targets[w.num_days_from_monday() as usize] = Some(*target),
            None => bad(
                format!("pipeline.weekly_targets.{day}"),
                format!("`{day}` is not a weekday: use mon, tue, wed, thu, fri, sat, sun"),
                cx,
            ),
        }
    }
    let daily_capacity = def.daily_capacity.unwrap_or(60);
    if daily_capacity == 0 {
        bad(
            "pipeline.daily_capacity".into(),
            "a rep makes at least 1 contact a day".into(),
            cx,
        );
    }
    let escalation = def.escalation.as_ref().map_or([None; 3], |e| {
        [e.remind_after, e.manager_after, e.pool_after]
    });
    let set: Vec<u32> = escalation.iter().flatten().copied().collect();
    if set.contains(&0) {
        bad(
            "pipeline.escalation".into(),
            "escalation steps count working days overdue: at least 1".into(),
            cx,
        );
    }
    if set.windows(2).any(|w| w[0] >= w[1]) {
        bad(
            "pipeline.escalation".into(),
            "escalation steps come in order: remind_after < manager_after < pool_after".into(),
            cx,
        );
    }
    ok.then(|| Pipeline {
        calendar: def.calendar.clone(),
        daily_capacity,
        weekly_targets,
        classes,
        quotas,
        escalation,
    })
}
