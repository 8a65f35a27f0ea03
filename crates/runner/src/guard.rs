//! The input guards of a run (`core::guard` holds the limits): a source with too many bad
//! rows, no rows, or far fewer rows than at the last recorded run stops the run before
//! anything is computed or recorded. The rows each source had are kept with the run's input
//! fingerprints, so the next run has something to compare with.

use std::collections::HashMap;

use stratum_core::{Guards, RejectLimit, SourceFormat};
use stratum_engine::Engine;

use crate::RunError;

/// What a run allows beyond the policy's guards.
#[derive(Debug, Clone, Copy, Default)]
pub struct GuardOptions {
    /// `--max-rejects`: replaces the policy's `max_rejects`.
    pub max_rejects: Option<RejectLimit>,
    /// `--allow-shrink`: sources that shrank past `max_shrink` go through (the run says so).
    pub allow_shrink: bool,
}

/// The sources that shrank past the limit and were let through by `--allow-shrink`.
pub(crate) type Allowed = Vec<String>;

/// Checks every file source of a loaded engine. `before`: the rows each source had at the
/// last recorded run of the policy (from its inputs JSON).
pub(crate) fn check(
    engine: &Engine,
    guards: &Guards,
    options: GuardOptions,
    before: &HashMap<String, u64>,
) -> Result<Allowed, RunError> {
    let max_rejects = options.max_rejects.unwrap_or(guards.max_rejects);
    let mut allowed = Vec::new();
    for s in engine
        .sources
        .iter()
        .filter(|s| s.format != SourceFormat::Inputs)
    {
        if max_rejects.exceeded(s.stats.rejected, s.stats.read) {
            return Err(RunError::TooManyRejects {
                source_name: s.name.clone(),
                file: s.file.clone(),
                read: s.stats.read,
                rejected: s.stats.rejected,
                limit: max_rejects,
            });
        }
        let previous = before.get(&s.name).copied();
        if guards.shrank(previous, s.stats.accepted) {
            if options.allow_shrink {
                allowed.push(s.name.clone());
                continue;
            }
            return Err(RunError::Shrunk {
                source_name: s.name.clone(),
                file: s.file.clone(),
                rows: s.stats.accepted,
                before: previous,
                max_shrink: guards.max_shrink,
            });
        }
    }
    Ok(allowed)
}

/// The rows per source recorded with a run's inputs (runs recorded before rows were kept
/// have none, and nothing is compared).
pub(crate) fn recorded_rows(inputs: &str) -> HashMap<String, u64> {
    let Ok(serde_json::Value::Array(entries)) = serde_json::from_str(inputs) else {
        return HashMap::new();
    };
    entries
        .iter()
        .filter_map(|e| {
            Some((
                e.get("source")?.as_str()?.to_string(),
                e.get("rows")?.as_u64()?,
            ))
        })
        .collect()
}

/// Adds each source's rows (read, accepted, rejected) to the fingerprints JSON, and marks the
/// sources let through by `--allow-shrink`.
pub(crate) fn with_rows(inputs: &str, engine: &Engine, allowed: &Allowed) -> String {
    let Ok(serde_json::Value::Array(mut entries)) = serde_json::from_str(inputs) else {
        return inputs.to_string();
    };
    for e in &mut entries {
        let Some(name) = e.get("source").and_then(|s| s.as_str()).map(str::to_string) else {
            continue;
        };
        let (Some(source), Some(map)) = (engine.source(&name), e.as_object_mut()) else {
            continue;
        };
        map.insert("rows".into(), source.stats.accepted.into());
        map.insert("read".into(), source.stats.read.into());
        map.insert("rejected".into(), source.stats.rejected.into());
        if allowed.contains(&name) {
            map.insert("shrink_allowed".into(), true.into());
        }
    }
    serde_json::Value::Array(entries).to_string()
}
