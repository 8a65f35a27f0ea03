//! Turns a [`PolicyFile`] into the checked [`Policy`] of [`crate::model`]: names resolved,
//! formats resolved, conditions parsed, metrics and scores ordered by dependency, windows
//! understood. Each part of the file is compiled in a module of its own, all with one
//! signature — `compile(raw, checked, cx) -> part`: the raw file, what earlier parts made of
//! it, and the context collecting located diagnostics.

mod churn;
mod guards;
mod ladders;
mod lifetime;
mod metrics;
mod pipeline;
mod scores;
mod service;
mod sources;
mod teams;
#[cfg(test)]
mod tests;

use std::collections::HashSet;

use indexmap::IndexMap;

use crate::diagnostic::{Code, Diagnostic, Diagnostics};
use crate::model::{Ladder, Lifetime, Metric, Policy, Score, Source};
use crate::policy::PolicyFile;
use crate::source_map::SourceMap;

/// What the parts compiled so far made: each part reads those before it.
#[derive(Default)]
struct Checked {
    sources: IndexMap<String, Source>,
    metrics: Vec<Metric>,
    lifetime: Option<Lifetime>,
    scores: Vec<Score>,
    ladders: Vec<Ladder>,
}

impl Checked {
    /// Names usable in conditions: metrics, scores and score parts.
    fn value_names(&self) -> Vec<String> {
        let mut names: Vec<String> = self.metrics.iter().map(|m| m.name.clone()).collect();
        for s in &self.scores {
            names.push(s.name.clone());
            names.extend(s.sub_names());
        }
        names
    }
}

/// Checks a parsed policy file. Errors stop at the end of the step that found them (so a
/// policy with a bad source still gets its metrics checked); warnings come with the policy.
pub fn compile(raw: PolicyFile, map: SourceMap) -> Result<Policy, Diagnostics> {
    let mut cx = Ctx {
        map: &map,
        diags: Vec::new(),
    };
    let mut checked = Checked::default();
    checked.sources = sources::compile(&raw, &checked, &mut cx);
    checked.metrics = metrics::compile(&raw, &checked, &mut cx);
    checked.lifetime = lifetime::compile(&raw, &checked, &mut cx);
    checked.scores = scores::compile(&raw, &checked, &mut cx);
    checked.ladders = ladders::compile(&raw, &checked, &mut cx);
    let (settings, guards) = guards::compile(&raw, &checked, &mut cx);
    if cx.diags.iter().any(Diagnostic::is_error) {
        return Err(Diagnostics(cx.diags));
    }
    let service = service::compile(&raw, &checked, &mut cx);
    let churn = churn::compile(&raw, &checked, &mut cx);
    let pipeline = pipeline::compile(&raw, &checked, &mut cx);
    let teams = teams::compile_teams(&raw, &mut cx);
    let service_ladder = service
        .as_ref()
        .map(|s: &crate::service::Service| s.ladder_name.clone());
    let assignment = teams::compile_assignment(&raw, &checked, service_ladder.as_deref(), &mut cx);
    if cx.diags.iter().any(Diagnostic::is_error) {
        return Err(Diagnostics(cx.diags));
    }
    let warnings = cx.diags;
    let Checked {
        sources,
        metrics,
        lifetime,
        scores,
        ladders,
    } = checked;
    Ok(Policy {
        settings,
        sources,
        map,
        metrics,
        scores,
        ladders,
        service,
        lifetime,
        churn,
        pipeline,
        teams,
        assignment,
        warnings,
        guards,
    })
}

impl Policy {
    /// Parses and checks policy text. `file` names it in diagnostics.
    pub fn from_str(file: &str, text: &str) -> Result<Policy, Diagnostics> {
        let (raw, map) = crate::policy::parse_policy(file, text)?;
        compile(raw, map)
    }
}

struct Ctx<'a> {
    map: &'a SourceMap,
    diags: Vec<Diagnostic>,
}

impl Ctx<'_> {
    fn push(&mut self, mut d: Diagnostic) {
        if d.location.is_none() {
            d.location = self.map.locate(&d.key);
        }
        self.diags.push(d);
    }
}

fn valid_name(name: &str) -> bool {
    let mut chars = name.chars();
    // Lower case only: SQL folds unquoted identifiers to lower case, so `Revenue` in an
    // expression would never find a metric named `Revenue`.
    matches!(chars.next(), Some(c) if c.is_ascii_lowercase() || c == '_')
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
}

trait HelpIfNone {
    fn with_help_if_none(self, help: &str) -> Self;
}
impl HelpIfNone for Diagnostic {
    fn with_help_if_none(self, help: &str) -> Self {
        if self.help.is_some() {
            self
        } else {
            self.with_help(help)
        }
    }
}

/// `items` (each named by `name`, with its dependencies in `deps`) in dependency order; on
/// a cycle, a `code` diagnostic at the first member under `section` ("metrics", "scores")
/// and the items as written.
fn in_dependency_order<T>(
    items: Vec<T>,
    deps: &[(String, Vec<String>)],
    name: impl Fn(&T) -> &String,
    code: Code,
    section: &str,
    cx: &mut Ctx<'_>,
) -> Vec<T> {
    match topo_order(deps) {
        Ok(order) => {
            let mut by_name: std::collections::HashMap<String, T> =
                items.into_iter().map(|i| (name(&i).clone(), i)).collect();
            order
                .into_iter()
                .filter_map(|n| by_name.remove(&n))
                .collect()
        }
        Err(cycle) => {
            cx.push(Diagnostic::new(
                code,
                format!("{section}.{}", cycle[0]),
                format!(
                    "{section} depend on each other in a cycle: {}",
                    cycle.join(" → ")
                ),
            ));
            items
        }
    }
}

/// Kahn's algorithm keeping the written order among independent items; on a cycle, its members.
fn topo_order(items: &[(String, Vec<String>)]) -> Result<Vec<String>, Vec<String>> {
    let names: HashSet<&str> = items.iter().map(|(n, _)| n.as_str()).collect();
    let mut done: HashSet<String> = HashSet::new();
    let mut order = Vec::new();
    while order.len() < items.len() {
        let mut progressed = false;
        for (name, deps) in items {
            if done.contains(name) {
                continue;
            }
            if deps
                .iter()
                .all(|d| done.contains(d) || !names.contains(d.as_str()))
            {
                done.insert(name.clone());
                order.push(name.clone());
                progressed = true;
            }
        }
        if !progressed {
            return Err(items
                .iter()
                .filter(|(n, _)| !done.contains(n))
                .map(|(n, _)| n.clone())
                .collect());
        }
    }
    Ok(order)
}
