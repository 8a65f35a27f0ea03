//! `[teams]` and `[assignment]`: who leads whom, and who gets a dedicated manager.

use super::{Checked, Ctx};
use crate::assign::{AssignmentRule, Manager};
use crate::diagnostic::{Code, Diagnostic};
use crate::policy::PolicyFile;
use crate::teams::{Team, Teams};

pub(super) fn compile_teams(raw: &PolicyFile, cx: &mut Ctx<'_>) -> Teams {
    let mut teams: Vec<Team> = Vec::new();
    for (lead, members) in &raw.teams {
        let key = format!("teams.{lead}");
        if members.is_empty() {
            cx.push(Diagnostic::new(
                Code::InvalidTeams,
                key.clone(),
                format!("team lead `{lead}` has no members"),
            ));
        }
        for member in members {
            if member == lead {
                cx.push(Diagnostic::new(
                    Code::InvalidTeams,
                    key.clone(),
                    format!("`{lead}` leads the team it is listed in"),
                ));
            } else if let Some(other) = teams
                .iter()
                .find(|t| t.members.contains(member))
                .map(|t| t.lead.clone())
                .or_else(|| {
                    members
                        .iter()
                        .filter(|m| *m == member)
                        .nth(1)
                        .map(|_| lead.clone())
                })
            {
                cx.push(Diagnostic::new(
                    Code::InvalidTeams,
                    key.clone(),
                    format!("`{member}` is already in {other}'s team: a member has one lead"),
                ));
            }
        }
        teams.push(Team {
            lead: lead.clone(),
            members: members.clone(),
        });
    }
    Teams::new(teams)
}

pub(super) fn compile_assignment(
    raw: &PolicyFile,
    checked: &Checked,
    service_ladder: Option<&str>,
    cx: &mut Ctx<'_>,
) -> Option<AssignmentRule> {
    let def = raw.assignment.as_ref()?;
    let bad = |key: &str, message: String, cx: &mut Ctx<'_>| {
        cx.push(Diagnostic::new(Code::InvalidAssignment, key, message));
    };
    let ladder_name = def
        .ladder
        .clone()
        .or_else(|| service_ladder.map(str::to_string))
        .or_else(|| checked.ladders.first().map(|l| l.name.clone()))?;
    let Some(ladder) = checked.ladders.iter().find(|l| l.name == ladder_name) else {
        cx.push(
            Diagnostic::new(
                Code::UnknownLadder,
                "assignment.ladder",
                format!("no ladder named `{ladder_name}`"),
            )
            .suggest(
                &ladder_name,
                checked.ladders.iter().map(|l| l.name.as_str()),
            ),
        );
        return None;
    };
    if def.levels.is_empty() {
        bad(
            "assignment.levels",
            "name the levels whose customers get a dedicated manager".into(),
            cx,
        );
    }
    for level in &def.levels {
        if ladder.level_index(level).is_none() {
            let names: Vec<&str> = ladder.levels.iter().map(|l| l.name.as_str()).collect();
            bad(
                "assignment.levels",
                format!(
                    "ladder `{ladder_name}` has no level `{level}` (its levels: {})",
                    names.join(", ")
                ),
                cx,
            );
        }
    }
    if def.managers.is_empty() {
        bad(
            "assignment.managers",
            "an assignment needs its managers (`[assignment.managers]`)".into(),
            cx,
        );
    }
    let mut managers = Vec::new();
    for (name, m) in &def.managers {
        if m.capacity == Some(0) {
            bad(
                &format!("assignment.managers.{name}"),
                format!("manager `{name}`: a capacity is at least 1 customer"),
                cx,
            );
        }
        managers.push(Manager {
            name: name.clone(),
            capacity: m.capacity,
            rating: m.rating,
        });
    }
    Some(AssignmentRule {
        ladder: ladder_name,
        levels: def.levels.clone(),
        by_rating: def.by_rating,
        managers,
    })
}
