//! Properties of placement that must hold for any data: one level per customer per ladder,
//! rank quotas within rounding, and results independent of input order.

use proptest::prelude::*;
use stratum_core::{Column, Frame, Policy, evaluate};

fn policy(shares: &[f64]) -> Policy {
    let mut text = String::from(
        "[sources.customers]\npath = \"c.csv\"\nkey = \"id\"\n[metrics.value]\nsource = \"customers\"\nexpr = \"value\"\n\
         [metrics.kind]\nsource = \"customers\"\nexpr = \"kind\"\n\
         [ladders.quota]\nrank_by = \"value\"\n",
    );
    for (i, s) in shares.iter().enumerate() {
        text.push_str(&format!(
            "[[ladders.quota.levels]]\nname = \"q{i}\"\ntop_share = {s}\n"
        ));
    }
    text.push_str("[[ladders.quota.levels]]\nname = \"rest\"\nrest = true\n");
    text.push_str(
        "[ladders.mixed]\nrank_by = \"value\"\n\
         [[ladders.mixed.levels]]\nname = \"gold\"\nwhen = \"value >= 50 AND kind = 'a'\"\n\
         [[ladders.mixed.levels]]\nname = \"top\"\ntop_n = 3\n\
         [[ladders.mixed.levels]]\nname = \"abc\"\nvalue_share = 0.5\n\
         [[ladders.mixed.levels]]\nname = \"silver\"\nwhen = \"value >= 10\"\n",
    );
    Policy::from_str("p.toml", &text).expect("valid policy")
}

fn frame(rows: &[(u32, Option<f64>, bool)]) -> Frame {
    let ids: Vec<String> = rows.iter().map(|(id, ..)| format!("c{id:04}")).collect();
    let mut f = Frame::new(ids, vec![Vec::new(); rows.len()]);
    f.push("value", Column::Num(rows.iter().map(|r| r.1).collect()))
        .unwrap();
    f.push(
        "kind",
        Column::Text(
            rows.iter()
                .map(|r| Some(if r.2 { "a" } else { "b" }.to_string()))
                .collect(),
        ),
    )
    .unwrap();
    f
}

/// Distinct ids with values drawn from a small set, so ties and nulls are common.
fn customers() -> impl Strategy<Value = Vec<(u32, Option<f64>, bool)>> {
    prop::collection::btree_set(0u32..5000, 1..150).prop_flat_map(|ids| {
        let n = ids.len();
        (
            Just(ids.into_iter().collect::<Vec<_>>()),
            prop::collection::vec(
                prop::option::weighted(0.9, (0u32..40).prop_map(|v| f64::from(v) * 2.5)),
                n,
            ),
            prop::collection::vec(any::<bool>(), n),
        )
            .prop_map(|(ids, values, kinds)| {
                ids.into_iter()
                    .zip(values)
                    .zip(kinds)
                    .map(|((i, v), k)| (i, v, k))
                    .collect()
            })
    })
}

fn shares() -> impl Strategy<Value = Vec<f64>> {
    prop::collection::vec(1u32..40, 1..5).prop_map(|parts| {
        // Scale so the shares add up to at most 1.
        let total: u32 = parts.iter().sum::<u32>().max(100);
        parts
            .iter()
            .map(|p| f64::from(*p) / f64::from(total))
            .collect()
    })
}

fn placements(
    p: &std::sync::Arc<Policy>,
    rows: &[(u32, Option<f64>, bool)],
) -> Vec<std::collections::BTreeMap<String, String>> {
    let ev = evaluate(std::sync::Arc::clone(p), frame(rows), &[]).unwrap();
    (0..ev.ladders.len())
        .map(|li| {
            ev.frame
                .ids()
                .iter()
                .enumerate()
                .map(|(row, id)| {
                    (
                        id.to_string(),
                        ev.level_name(li, ev.results[li].level[row]).to_string(),
                    )
                })
                .collect()
        })
        .collect()
}

proptest! {
    #[test]
    fn every_customer_gets_exactly_one_level_per_ladder(rows in customers(), shares in shares()) {
        let p = policy(&shares);
        let ev = evaluate(std::sync::Arc::new(p), frame(&rows), &[]).unwrap();
        for result in &ev.results {
            prop_assert_eq!(result.level.len(), rows.len());
            let counted: usize = (0..result.cutoff.len() + 2).map(|l| result.count(l)).sum();
            prop_assert_eq!(counted, rows.len());
        }
        // The quota ladder ends in `rest`, so no one is unplaced there.
        prop_assert_eq!(ev.results[0].count(shares.len() + 1), 0);
    }

    #[test]
    fn rank_quotas_hold_within_one_customer_of_rounding(rows in customers(), shares in shares()) {
        let p = policy(&shares);
        let ev = evaluate(std::sync::Arc::new(p), frame(&rows), &[]).unwrap();
        let n = rows.len() as f64;
        let mut cumulative_share = 0.0;
        let mut cumulative_count = 0usize;
        for (i, s) in shares.iter().enumerate() {
            cumulative_share += s;
            let count = ev.results[0].count(i);
            cumulative_count += count;
            prop_assert!((cumulative_count as f64 - n * cumulative_share).abs() <= 0.5 + 1e-9,
                "level {} boundary {} vs exact {}", i, cumulative_count, n * cumulative_share);
            prop_assert!((count as f64 - n * s).abs() <= 1.0 + 1e-9);
        }
        // Higher levels never hold a lower value than lower levels (rank order respected).
        let values = ev.frame.column("value").unwrap();
        let level = &ev.results[0].level;
        for a in 0..rows.len() {
            for b in 0..rows.len() {
                if level[a] < level[b] && level[b] < shares.len() {
                    let va = values.num(a).unwrap_or(f64::NEG_INFINITY);
                    let vb = values.num(b).unwrap_or(f64::NEG_INFINITY);
                    prop_assert!(va >= vb);
                }
            }
        }
    }

    #[test]
    fn placements_do_not_depend_on_row_order(rows in customers(), shares in shares(), seed in any::<u64>()) {
        let p = std::sync::Arc::new(policy(&shares));
        let expected = placements(&p, &rows);
        let mut shuffled = rows.clone();
        // A deterministic shuffle from the seed.
        let mut state = seed | 1;
        for i in (1..shuffled.len()).rev() {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            shuffled.swap(i, (state % (i as u64 + 1)) as usize);
        }
        prop_assert_eq!(placements(&p, &shuffled), expected);
    }
}

#[test]
fn value_share_levels_hold_their_share_of_value() {
    // values 50, 30, 20: abc (50%) takes 50 alone; mixed ladder order: gold first.
    let p = std::sync::Arc::new(policy(&[0.5]));
    let rows = vec![
        (1, Some(50.0), false),
        (2, Some(30.0), false),
        (3, Some(20.0), false),
        (4, Some(5.0), false),
    ];
    let got = placements(&p, &rows);
    // mixed: nobody is kind a → no gold; top 3 → c0001..c0003; abc: only c0004 left (5 of 105
    // is under half): abc takes it; silver stays empty.
    assert_eq!(got[1]["c0001"], "top");
    assert_eq!(got[1]["c0004"], "abc");
    // quota ladder: a single 50% level takes round(4 × 0.5) = 2 customers.
    assert_eq!(got[0]["c0001"], "q0");
    assert_eq!(got[0]["c0002"], "q0");
    assert_eq!(got[0]["c0003"], "rest");
}
