//! Property-based fuzzing of what reads user input: the CSV and JSON-lines reader, the policy
//! compiler and the condition parser. Arbitrary bytes and structure-aware mutations of the
//! demo's own files and policies; each must be accepted or refused with a located error,
//! never panic, and the reader must account for every row (read = accepted + rejected).
//!
//! CI runs a bounded number of cases (64 per property); a longer run:
//! `PROPTEST_CASES=20000 cargo test --workspace --test fuzz` (docs/SECURITY.md).

use std::path::Path;

use proptest::prelude::*;
use stratum_core::{ColumnType, Policy};
use stratum_engine::{BadRows, EngineError, TextSpec, UserError, load_csv, load_jsonl};

fn config() -> ProptestConfig {
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|c| c.parse().ok())
        .unwrap_or(64);
    ProptestConfig {
        cases,
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

const DECLARED: &[(&str, ColumnType)] = &[("amount", ColumnType::Float)];

fn spec<'a>(path: &'a Path, declared: &'a [(String, ColumnType)]) -> TextSpec<'a> {
    TextSpec {
        source: "transactions",
        path,
        display: "transactions.csv",
        key: "customer_id",
        time: Some("date"),
        declared,
        delimiter: b',',
        unique_key: false,
    }
}

/// Loads `bytes` both ways and checks the contract: quarantine accounts for every row and
/// fail mode is either the same rows or a located user error.
fn check_reader(bytes: &[u8], jsonl: bool) -> Result<(u64, u64), TestCaseError> {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("input");
    std::fs::write(&path, bytes).unwrap();
    let declared: Vec<(String, ColumnType)> =
        DECLARED.iter().map(|(n, t)| (n.to_string(), *t)).collect();
    let spec = spec(&path, &declared);
    let load = |mode| {
        if jsonl {
            load_jsonl(&spec, mode)
        } else {
            load_csv(&spec, mode)
        }
    };
    match load(BadRows::Quarantine) {
        Ok(loaded) => {
            let s = &loaded.stats;
            prop_assert_eq!(s.read, s.accepted + s.rejected);
            prop_assert_eq!(loaded.rejects.len() as u64, s.rejected);
            let rows: usize = loaded.batches.iter().map(|b| b.num_rows()).sum();
            prop_assert_eq!(rows as u64, s.accepted);
            for r in &loaded.rejects {
                prop_assert!(r.line >= 1, "a reject without a line: {:?}", r);
            }
            match load(BadRows::Fail) {
                Ok(again) => {
                    prop_assert_eq!(s.rejected, 0);
                    prop_assert_eq!(again.stats.accepted, s.accepted);
                }
                Err(EngineError::User(UserError::BadRow { line, .. })) => {
                    prop_assert_eq!(Some(line), loaded.rejects.first().map(|r| r.line))
                }
                Err(e) => prop_assert!(false, "fail mode: {e}"),
            }
            Ok((s.accepted, s.rejected))
        }
        // A file that has no header with the key and time columns is refused as a whole.
        Err(EngineError::User(UserError::MissingColumn { .. } | UserError::Unreadable { .. })) => {
            Ok((0, 0))
        }
        Err(e) => Err(TestCaseError::fail(format!("quarantine: {e}"))),
    }
}

const HEADER: &str = "customer_id,date,amount\n";

/// Quote-free transaction lines.
fn clean_lines(n: usize) -> Vec<String> {
    (0..n)
        .map(|i| format!("C{i:04},2026-10-{:02},{}.5", i % 28 + 1, i * 7 % 300))
        .collect()
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn arbitrary_bytes_are_read_or_refused_never_lost(body in proptest::collection::vec(any::<u8>(), 0..600)) {
        let mut bytes = HEADER.as_bytes().to_vec();
        bytes.extend_from_slice(&body);
        check_reader(&bytes, false)?;
        let mut json = b"{\"customer_id\":\"C1\",\"date\":\"2026-10-01\",\"amount\":1}\n".to_vec();
        json.extend_from_slice(&body);
        check_reader(&json, true)?;
    }

    #[test]
    fn mutated_demo_lines_account_for_every_row(
        n in 5usize..60,
        edits in proptest::collection::vec((any::<prop::sample::Index>(), any::<prop::sample::Index>(), prop::sample::select(vec!["\"", ",", "\n", "\r", "\u{0}", "\u{feff}", "é", "\"\"", ";"])), 1..6),
    ) {
        let mut text = HEADER.to_string() + &clean_lines(n).join("\n") + "\n";
        for (at_line, at_char, what) in edits {
            let lines: Vec<usize> = std::iter::once(HEADER.len())
                .chain(text.match_indices('\n').map(|(i, _)| i + 1))
                .filter(|&i| i < text.len())
                .collect();
            let start = lines[at_line.index(lines.len())];
            let end = text[start..].find('\n').map_or(text.len(), |e| start + e);
            let offsets: Vec<usize> = (start..=end).filter(|&i| text.is_char_boundary(i)).collect();
            text.insert_str(offsets[at_char.index(offsets.len())], what);
        }
        check_reader(text.as_bytes(), false)?;
    }

    #[test]
    fn one_stray_quote_costs_exactly_one_row(n in 3usize..80, line in any::<prop::sample::Index>(), field in 0usize..3) {
        let lines = clean_lines(n);
        let bad = line.index(n);
        let text: String = lines
            .iter()
            .enumerate()
            .map(|(i, l)| {
                if i == bad {
                    let mut fields: Vec<String> = l.split(',').map(str::to_string).collect();
                    fields[field].insert(0, '"');
                    fields.join(",") + "\n"
                } else {
                    format!("{l}\n")
                }
            })
            .collect();
        let (accepted, rejected) = check_reader((HEADER.to_string() + &text).as_bytes(), false)?;
        prop_assert_eq!((accepted, rejected), (n as u64 - 1, 1));
    }

    #[test]
    fn conditions_parse_or_say_why(text in ".{0,200}") {
        let _ = stratum_core::cond::parse_condition(&text);
        let _ = stratum_core::cond::sql_identifiers(&text, &|_| false);
    }

    #[test]
    fn arbitrary_policy_text_compiles_or_is_located(text in ".{0,400}") {
        if let Err(d) = Policy::from_str("p.toml", &text) {
            prop_assert!(!d.0.is_empty());
        }
    }

    #[test]
    fn mutated_demo_policies_compile_or_name_their_line(
        which in any::<prop::sample::Index>(),
        edits in proptest::collection::vec((any::<prop::sample::Index>(), 0u8..4, ".{0,12}"), 1..4),
    ) {
        let (name, text) = stratum_demo::POLICIES[which.index(stratum_demo::POLICIES.len())];
        let mut lines: Vec<String> = text.lines().map(str::to_string).collect();
        for (at, op, junk) in edits {
            let i = at.index(lines.len());
            match op {
                0 => { lines.remove(i); }
                1 => { let l = lines[i].clone(); lines.insert(i, l); }
                2 => lines[i].push_str(&junk),
                _ => lines.insert(i, junk),
            }
            if lines.is_empty() {
                lines.push(String::new());
            }
        }
        let text = lines.join("\n");
        match Policy::from_str(name, &text) {
            Ok(_) => {}
            Err(d) => {
                prop_assert!(!d.0.is_empty());
                for diag in &d.0 {
                    let located = diag.location.is_some() || !diag.key.is_empty();
                    prop_assert!(located, "{name}: unlocated: {}", diag);
                }
            }
        }
    }
}
