//! `[sources.*]`: names, paths, formats, derived and `inputs` sources.

use indexmap::IndexMap;

use super::{Checked, Ctx, valid_name};
use crate::diagnostic::{Code, Diagnostic};
use crate::model::Source;
use crate::policy::{CUSTOMERS, PolicyFile, SourceFormat};

pub(super) fn compile(
    raw: &PolicyFile,
    _checked: &Checked,
    cx: &mut Ctx<'_>,
) -> IndexMap<String, Source> {
    if !raw.sources.contains_key(CUSTOMERS) {
        cx.push(
            Diagnostic::new(
                Code::MissingCustomers,
                "sources",
                "the policy has no `[sources.customers]` table",
            )
            .with_help("every policy lists its customers in a source named `customers`"),
        );
    }
    for (name, src) in &raw.sources {
        let key = format!("sources.{name}");
        if !valid_name(name) {
            cx.push(Diagnostic::new(
                Code::InvalidName,
                &key,
                format!("source name `{name}` must be lower-case letters, digits and _"),
            ));
        }
        if let Some(from) = &src.from {
            let event = raw
                .sources
                .get(from)
                .filter(|s| s.time.is_some() && s.from.is_none());
            if name != CUSTOMERS {
                cx.push(Diagnostic::new(
                    Code::InvalidDerivedSource,
                    format!("{key}.from"),
                    "only the customers source can be derived from another source",
                ));
            } else if !src.path.is_empty() {
                cx.push(Diagnostic::new(
                    Code::InvalidDerivedSource,
                    format!("{key}.from"),
                    "a customers source takes either `path` or `from`, not both",
                ));
            } else if event.is_none() {
                cx.push(
                    Diagnostic::new(
                        Code::InvalidDerivedSource,
                        format!("{key}.from"),
                        format!("`{from}` is not an event source (a source with a `time` column)"),
                    )
                    .suggest(
                        from,
                        raw.sources
                            .iter()
                            .filter(|(_, s)| s.time.is_some())
                            .map(|(n, _)| n.as_str()),
                    ),
                );
            }
        } else if src.format == Some(SourceFormat::Inputs) {
            if !src.path.is_empty() || src.time.is_some() || name == CUSTOMERS {
                cx.push(Diagnostic::new(
                    Code::InvalidInputsSource,
                    &key,
                    "a `format = \"inputs\"` source reads the manual inputs kept in the history \
                     database: it takes no path and no time, and cannot be the customers source",
                ));
            }
        } else if src.path.is_empty() {
            cx.push(
                Diagnostic::new(
                    Code::MissingPath,
                    format!("{key}.path"),
                    "the source has no path",
                )
                .with_help("add path = \"<file relative to the policy>\""),
            );
        } else if src.resolved_format().is_none() {
            cx.push(
                Diagnostic::new(
                    Code::UnknownFormat,
                    format!("{key}.path"),
                    format!("cannot tell the format of `{}`", src.path),
                )
                .with_help("add format = \"csv\", \"parquet\" or \"jsonl\""),
            );
        }
        if name == CUSTOMERS && src.time.is_some() {
            cx.push(Diagnostic::new(
                Code::CustomersWithTime,
                format!("{key}.time"),
                "the customers source has one row per customer and takes no `time` column",
            ));
        }
        if name != CUSTOMERS && src.tags.is_some() {
            cx.push(Diagnostic::new(
                Code::TagsOutsideCustomers,
                format!("{key}.tags"),
                "only the customers source can name a tags column",
            ));
        }
    }
    raw.sources
        .iter()
        .map(|(name, def)| {
            // A derived source reads as its event source; an unknown format is an error
            // above, and the policy is not returned then.
            let format = match &def.from {
                Some(from) => raw.sources.get(from).and_then(|e| e.resolved_format()),
                None => def.resolved_format(),
            };
            let source = Source {
                path: def.path.clone(),
                format: format.unwrap_or(SourceFormat::Csv),
                key: def.key.clone(),
                time: def.time.clone(),
                columns: def.columns.clone(),
                tags: def.tags.clone(),
                tag_separator: def.tag_separator.clone(),
                delimiter: def.delimiter.clone(),
                from: def.from.clone(),
            };
            (name.clone(), source)
        })
        .collect()
}
