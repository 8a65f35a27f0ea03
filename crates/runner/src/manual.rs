//! Checks on what people enter (manual inputs, overrides) against the policy and its served
//! run, before anything is kept: the CLI and the API refuse the same things the same way.

use stratum_core::{ColumnType, Policy, SourceFormat};
use stratum_store::Store;

use crate::RunError;

/// A manual input must be a field the policy reads, with a value of the declared type.
pub fn check_input(policy: &Policy, field: &str, value: &str) -> Result<(), RunError> {
    let sources: Vec<_> = policy
        .sources
        .values()
        .filter(|s| s.format == SourceFormat::Inputs)
        .collect();
    if sources.is_empty() {
        return Err(RunError::Refused(format!(
            "policy `{}` reads no manual inputs (no source with format = \"inputs\")",
            policy.history_name()
        )));
    }
    let declared = sources.iter().find_map(|s| s.columns.get(field).copied());
    let Some(ty) = declared else {
        // A source without declared columns takes any field.
        if sources.iter().any(|s| s.columns.is_empty()) {
            return Ok(());
        }
        let fields: Vec<&str> = sources
            .iter()
            .flat_map(|s| s.columns.keys().map(String::as_str))
            .collect();
        return Err(RunError::Refused(format!(
            "`{field}` is not a manual input of policy `{}` (its inputs: {})",
            policy.history_name(),
            fields.join(", ")
        )));
    };
    let ok = match ty {
        ColumnType::String => true,
        ColumnType::Int => value.trim().parse::<i64>().is_ok(),
        ColumnType::Float => value.trim().parse::<f64>().is_ok_and(f64::is_finite),
        ColumnType::Bool => matches!(value.trim().to_ascii_lowercase().as_str(), "true" | "false"),
        ColumnType::Date => chrono::NaiveDate::parse_from_str(value.trim(), "%Y-%m-%d").is_ok(),
        ColumnType::Timestamp => chrono::DateTime::parse_from_rfc3339(value.trim()).is_ok(),
    };
    if ok {
        Ok(())
    } else {
        Err(RunError::Refused(format!(
            "`{value}` is not a valid {} for manual input `{field}`",
            ty.name()
        )))
    }
}

/// A customer someone enters something for must be in the served run of the policy, unless
/// `new` says the next run's data will bring it. Without a recorded run nothing is known
/// and nothing is refused.
pub async fn check_customer(
    store: &Store,
    policy: &Policy,
    customer: &str,
    new: bool,
) -> Result<(), RunError> {
    if new {
        return Ok(());
    }
    let Some(run) = store.latest_run_id(policy.history_name()).await? else {
        return Ok(());
    };
    if store.levels_of(run, customer).await?.is_empty() {
        return Err(RunError::Refused(format!(
            "customer `{customer}` is not in run #{run} of policy `{}`, the one served; check the id, \
             or say it is a new customer the next run's data will have (--new-customer)",
            policy.history_name()
        )));
    }
    Ok(())
}

/// An override names a ladder of the policy and one of its levels.
pub fn check_override(policy: &Policy, ladder: &str, level: &str) -> Result<(), RunError> {
    let Some(l) = policy.ladder(ladder) else {
        return Err(RunError::Refused(format!(
            "policy `{}` has no ladder `{ladder}` (ladders: {})",
            policy.history_name(),
            policy
                .ladders
                .iter()
                .map(|l| l.name.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        )));
    };
    if l.level_index(level).is_none() {
        return Err(RunError::Refused(format!(
            "ladder `{ladder}` has no level `{level}` (levels: {})",
            l.levels
                .iter()
                .map(|l| l.name.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inputs_must_be_declared_fields_of_their_type() {
        let text = "[sources.customers]\npath = \"c.csv\"\nkey = \"id\"\n\
                    [sources.manual]\nformat = \"inputs\"\nkey = \"id\"\ncolumns = { relationship_top = \"float\" }\n\
                    [metrics.relationship_top]\nsource = \"manual\"\nexpr = \"relationship_top\"\n\
                    [ladders.l]\n[[ladders.l.levels]]\nname = \"x\"\nrest = true\n";
        let policy = Policy::from_str("p.toml", text).unwrap();
        assert!(check_input(&policy, "relationship_top", "18").is_ok());
        assert_eq!(
            check_input(&policy, "relationship_top", "lots")
                .unwrap_err()
                .to_string(),
            "`lots` is not a valid float for manual input `relationship_top`"
        );
        assert_eq!(
            check_input(&policy, "relationship", "1")
                .unwrap_err()
                .to_string(),
            "`relationship` is not a manual input of policy `default` (its inputs: relationship_top)"
        );
        assert!(check_override(&policy, "l", "x").is_ok());
        assert_eq!(
            check_override(&policy, "l", "y").unwrap_err().to_string(),
            "ladder `l` has no level `y` (levels: x)"
        );
    }
}
