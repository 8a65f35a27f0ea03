//! The manual overrides file: `customer_id,ladder,level,reason`, one pin per row.

use std::path::Path;

use stratum_core::ManualPin;

use crate::RunError;

pub fn read(path: &Path, display: &str) -> Result<Vec<ManualPin>, RunError> {
    let err = |line: u64, message: String| RunError::Overrides {
        file: display.to_string(),
        line,
        message,
    };
    let mut reader = csv::ReaderBuilder::new()
        .flexible(true)
        .from_path(path)
        .map_err(|e| err(0, e.to_string()))?;
    let header: Vec<String> = reader
        .headers()
        .map_err(|e| err(1, e.to_string()))?
        .iter()
        .map(|h| h.trim().to_string())
        .collect();
    let col = |name: &str| header.iter().position(|h| h == name);
    let (Some(c), Some(l), Some(v)) = (col("customer_id"), col("ladder"), col("level")) else {
        return Err(err(
            1,
            format!(
                "the header must name customer_id, ladder, level and reason; found: {}",
                header.join(", ")
            ),
        ));
    };
    let r = col("reason");
    let mut pins = Vec::new();
    for rec in reader.records() {
        let rec = rec.map_err(|e| err(e.position().map_or(0, |p| p.line()), e.to_string()))?;
        let line = rec.position().map_or(0, |p| p.line());
        if rec.len() != header.len() {
            return Err(err(
                line,
                format!(
                    "row has {} fields, the header has {}",
                    rec.len(),
                    header.len()
                ),
            ));
        }
        let field = |i: usize| rec.get(i).unwrap_or("").trim().to_string();
        for (i, name) in [(c, "customer_id"), (l, "ladder"), (v, "level")] {
            if field(i).is_empty() {
                return Err(err(line, format!("`{name}` is empty")));
            }
        }
        pins.push(ManualPin {
            customer_id: field(c),
            ladder: field(l),
            level: field(v),
            reason: r
                .map(field)
                .filter(|s| !s.is_empty())
                .unwrap_or_else(|| "no reason given".into()),
            mode: stratum_core::OverrideMode::Pin,
            origin: format!("{display}:{line}"),
        });
    }
    Ok(pins)
}
