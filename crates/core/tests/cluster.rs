//! k-means against scikit-learn on data no one here wrote: Fisher's iris measurements
//! (fixtures/iris/SOURCE.md), with scikit-learn's own results frozen by
//! bench/cluster_reference.py. Then the properties a run depends on: one cluster per
//! customer, the same result on any number of threads and for the same seed.

use proptest::prelude::*;
use stratum_core::cluster::{
    KMeans, KMeansOptions, Matrix, Transform, choose_k, kmeans, silhouette, silhouette_sampled,
};

const IRIS: &str = include_str!("fixtures/iris/iris.csv");
const REFERENCE: &str = include_str!("fixtures/iris/sklearn_reference.json");

fn iris_columns() -> Vec<Vec<f64>> {
    let mut columns = vec![Vec::new(); 4];
    for line in IRIS.lines().skip(1).filter(|l| !l.trim().is_empty()) {
        for (c, v) in line.split(',').take(4).enumerate() {
            columns[c].push(v.parse::<f64>().unwrap());
        }
    }
    assert_eq!(columns[0].len(), 150);
    columns
}

fn reference(space: &str, k: usize) -> serde_json::Value {
    let all: serde_json::Value = serde_json::from_str(REFERENCE).unwrap();
    all[space][k.to_string()].clone()
}

/// Whether two labelings are the same partition (cluster numbers aside).
fn same_partition(a: &[u32], b: &[u32]) -> bool {
    let mut map = std::collections::HashMap::new();
    let mut back = std::collections::HashMap::new();
    a.iter()
        .zip(b)
        .all(|(x, y)| *map.entry(*x).or_insert(*y) == *y && *back.entry(*y).or_insert(*x) == *x)
}

fn check_against_reference(space: &str, data: &Matrix) {
    for k in 2..=5 {
        let want = reference(space, k);
        let fit = kmeans(
            data,
            &KMeansOptions {
                restarts: 100,
                ..KMeansOptions::new(k)
            },
        )
        .unwrap();
        let inertia = want["inertia"].as_f64().unwrap();
        assert!(
            (fit.inertia - inertia).abs() < 0.01,
            "{space} k={k}: inertia {} against scikit-learn's {inertia}",
            fit.inertia
        );
        let mut sizes = fit.sizes();
        sizes.sort_unstable_by(|a, b| b.cmp(a));
        let want_sizes: Vec<usize> = want["sizes"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_u64().unwrap() as usize)
            .collect();
        assert_eq!(
            sizes, want_sizes,
            "{space} k={k}: sizes (inertia {})",
            fit.inertia
        );
        let labels: Vec<u32> = want["labels"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_u64().unwrap() as u32)
            .collect();
        assert!(
            same_partition(&fit.labels, &labels),
            "{space} k={k}: the same flowers together as scikit-learn"
        );
        let score = silhouette(data, &fit.labels);
        let want_score = want["silhouette"].as_f64().unwrap();
        assert!(
            (score - want_score).abs() < 1e-6,
            "{space} k={k}: silhouette {score} against scikit-learn's {want_score}"
        );
    }
}

#[test]
fn iris_raw_matches_scikit_learn() {
    let data = Matrix::from_columns(&iris_columns()).unwrap();
    check_against_reference("raw", &data);
    // The issue's figures, to the second decimal.
    let fit = kmeans(&data, &KMeansOptions::new(3)).unwrap();
    assert_eq!(format!("{:.2}", fit.inertia), "78.85");
}

#[test]
fn iris_standardised_matches_scikit_learn() {
    let mut columns = iris_columns();
    for c in &mut columns {
        Transform::ZScore.apply(c);
    }
    check_against_reference("zscore", &Matrix::from_columns(&columns).unwrap());
}

#[test]
fn choosing_k_by_silhouette_on_iris() {
    let data = Matrix::from_columns(&iris_columns()).unwrap();
    let (choices, fit) = choose_k(
        &data,
        2..=5,
        &KMeansOptions {
            restarts: 100,
            ..KMeansOptions::new(2)
        },
        1000,
    )
    .unwrap();
    let ks: Vec<usize> = choices.iter().map(|c| c.k).collect();
    assert_eq!(ks, vec![2, 3, 4, 5]);
    // Two clusters (setosa against the rest) score best on the raw measurements, as in
    // scikit-learn: 0.681 against 0.553, 0.498 and 0.489.
    assert_eq!(fit.k(), 2);
    for c in &choices {
        let want = reference("raw", c.k)["silhouette"].as_f64().unwrap();
        assert!((c.silhouette - want).abs() < 1e-6, "k={}", c.k);
    }
    // The inertia falls with k: the elbow chart's points.
    assert!(choices.windows(2).all(|w| w[1].inertia < w[0].inertia));
    // A sample as large as the data is the data.
    assert_eq!(
        silhouette_sampled(&data, &fit.labels, 150, 7),
        silhouette(&data, &fit.labels)
    );
    let sampled = silhouette_sampled(&data, &fit.labels, 100, 7);
    assert!((sampled - choices[0].silhouette).abs() < 0.05);
}

fn in_threads(threads: usize, data: &Matrix, options: &KMeansOptions) -> KMeans {
    rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .unwrap()
        .install(|| kmeans(data, options).unwrap())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]

    #[test]
    fn one_cluster_each_the_same_on_any_thread_count(
        values in proptest::collection::vec(-1000.0f64..1000.0, 3..6000),
        k in 1usize..6,
        seed in 0u64..1000,
    ) {
        let rows = values.len() / 3;
        prop_assume!(rows >= k);
        let data = Matrix::new(3, values[..rows * 3].to_vec()).unwrap();
        let options = KMeansOptions { k, restarts: 3, seed, ..KMeansOptions::new(k) };
        let one = in_threads(1, &data, &options);
        prop_assert_eq!(one.labels.len(), rows);
        prop_assert!(one.labels.iter().all(|l| (*l as usize) < k));
        prop_assert_eq!(one.sizes().iter().sum::<usize>(), rows);
        let four = in_threads(4, &data, &options);
        prop_assert_eq!(&one, &four);
        let again = kmeans(&data, &options).unwrap();
        prop_assert_eq!(&one, &again);
        // Every row sits at its nearest centre.
        for (r, (own, next)) in one.distances(&data).into_iter().enumerate() {
            prop_assert!(own <= next, "row {} is nearer another centre", r);
        }
    }
}

// --- cluster ladders ------------------------------------------------------------------

use std::sync::Arc;
use stratum_core::{Column, Frame, Policy, evaluate};

const SEGMENTS: &str = r#"
[sources.customers]
path = "c.csv"
key = "id"
[metrics.recency_days]
source = "customers"
expr = "recency_days"
[metrics.spend]
source = "customers"
expr = "spend"
[ladders.segments]
value = "spend"
[ladders.segments.cluster]
features = ["recency_days", "spend"]
transform = { spend = "log1p-zscore" }
seed = 7
missing = "unknown"
[[ladders.segments.levels]]
name = "champions"
[[ladders.segments.levels]]
name = "loyal"
[[ladders.segments.levels]]
name = "lost"
[[ladders.segments.levels]]
name = "unknown"
"#;

/// Three behaviours: recent big spenders, recent small ones, long-gone small ones; and one
/// customer without a recency.
fn shoppers() -> Vec<(String, Option<f64>, Option<f64>)> {
    let mut rows = Vec::new();
    for i in 0..30 {
        let j = f64::from(i % 5);
        rows.push((
            format!("{}", 100 + i),
            Some(5.0 + j),
            Some(5000.0 + 100.0 * j),
        ));
        rows.push((
            format!("{}", 200 + i),
            Some(10.0 + j),
            Some(300.0 + 10.0 * j),
        ));
        rows.push((
            format!("{}", 300 + i),
            Some(300.0 + 10.0 * j),
            Some(80.0 + j),
        ));
    }
    rows.push(("999".to_string(), None, Some(40.0)));
    rows
}

fn shopper_frame(rows: &[(String, Option<f64>, Option<f64>)]) -> Frame {
    let ids: Vec<String> = rows.iter().map(|r| r.0.clone()).collect();
    let mut f = Frame::new(ids, vec![Vec::new(); rows.len()]);
    f.push(
        "recency_days",
        Column::Num(rows.iter().map(|r| r.1).collect()),
    )
    .unwrap();
    f.push("spend", Column::Num(rows.iter().map(|r| r.2).collect()))
        .unwrap();
    f
}

fn levels_by_id(
    rows: &[(String, Option<f64>, Option<f64>)],
) -> std::collections::BTreeMap<String, String> {
    levels_by_id_with(SEGMENTS, rows)
}

#[test]
fn clusters_become_levels_by_their_mean_value() {
    let rows = shoppers();
    let policy = Arc::new(Policy::from_str("p.toml", SEGMENTS).unwrap());
    let ev = evaluate(policy, shopper_frame(&rows), &[]).unwrap();
    let level = |id: &str| {
        let row = ev.frame.ids().iter().position(|i| i == id).unwrap();
        ev.level_name(0, ev.results[0].level[row]).to_string()
    };
    for i in 0..30 {
        assert_eq!(level(&format!("{}", 100 + i)), "champions");
        assert_eq!(level(&format!("{}", 200 + i)), "loyal");
        assert_eq!(level(&format!("{}", 300 + i)), "lost");
    }
    assert_eq!(level("999"), "unknown");
    let clusters = ev.results[0].clusters.as_deref().unwrap();
    let sizes: Vec<(usize, usize)> = clusters.levels.iter().map(|c| (c.level, c.size)).collect();
    assert_eq!(sizes, vec![(0, 30), (1, 30), (2, 30)]);
    // Centres in the features' own units: the members' means.
    assert_eq!(clusters.levels[0].centre, vec![7.0, 5200.0]);
    assert_eq!(clusters.levels[2].centre, vec![320.0, 82.0]);
    assert_eq!(clusters.levels[0].value_total, 156_000.0);
    assert_eq!(clusters.imputed, 0);
    let row = ev.frame.ids().iter().position(|i| i == "100").unwrap();
    let text = ev.explanation(0, row);
    assert!(
        text.starts_with("k-means cluster 1 of 3 (mean spend 5,200 against 1,867 overall): "),
        "{text}"
    );
    assert!(
        text.ends_with(
            "; the cluster stands out by spend 5,200 against 1,867, recency_days 7 against 113"
        ),
        "{text}"
    );
    let missing = ev.frame.ids().iter().position(|i| i == "999").unwrap();
    assert_eq!(
        ev.explanation(0, missing),
        "lacks a value of the clustering features (recency_days, spend), so is not clustered"
    );
    assert_eq!(
        ev.next_level_gap(0, ev.frame.ids().iter().position(|i| i == "200").unwrap()),
        "champions is a k-means cluster: customers join it by behaving like its members, not by a threshold"
    );
}

#[test]
fn a_missing_feature_takes_the_median_unless_a_level_is_named() {
    let text = SEGMENTS
        .replace("missing = \"unknown\"\n", "")
        .replace("[[ladders.segments.levels]]\nname = \"unknown\"\n", "");
    let policy = Arc::new(Policy::from_str("p.toml", &text).unwrap());
    let ev = evaluate(policy, shopper_frame(&shoppers()), &[]).unwrap();
    let clusters = ev.results[0].clusters.as_deref().unwrap();
    assert_eq!(clusters.imputed, 1);
    // A median recency (12 days) and 40 spent: among the recent small spenders.
    let row = ev.frame.ids().iter().position(|i| i == "999").unwrap();
    assert_eq!(ev.level_name(0, ev.results[0].level[row]), "loyal");
}

#[test]
fn cluster_ladders_are_checked() {
    let codes = |text: &str| -> Vec<String> {
        match Policy::from_str("p.toml", text) {
            Ok(_) => Vec::new(),
            Err(d) => d
                .errors()
                .map(|d| format!("{} {}: {}", d.code, d.key, d.message))
                .collect(),
        }
    };
    for (text, want) in [
        (
            SEGMENTS.replace("seed = 7", "seed = 7\nk = 4"),
            "invalid_cluster ladders.segments.cluster.k: k = 4, but 3 levels take clusters: give one level per cluster",
        ),
        (
            SEGMENTS.replace("\"log1p-zscore\"", "\"log\""),
            "invalid_cluster ladders.segments.cluster.transform.spend: unknown transform `log`; use one of none, zscore, log1p-zscore, minmax, rank",
        ),
        (
            SEGMENTS.replace("name = \"loyal\"", "name = \"loyal\"\nwhen = \"spend > 1\""),
            "invalid_cluster ladders.segments.levels[1]: level `loyal` of cluster ladder `segments` has a rule; its levels take clusters",
        ),
        (
            SEGMENTS.replace("value = \"spend\"\n", ""),
            "invalid_cluster ladders.segments.cluster: cluster ladder `segments` needs `value` (or `rank_by`): the levels take the clusters by their mean value, highest first",
        ),
        (
            SEGMENTS.replace("missing = \"unknown\"", "missing = \"unknwn\""),
            "invalid_cluster ladders.segments.cluster.missing: `unknwn` is neither `median` nor a level of `segments`",
        ),
        (
            SEGMENTS.replace(
                "features = [\"recency_days\", \"spend\"]",
                "features = [\"recency\", \"spend\"]",
            ),
            "unknown_metric ladders.segments.cluster.features: unknown metric or score `recency`",
        ),
    ] {
        assert_eq!(codes(&text), vec![want.to_string()]);
    }
}

/// Two clusters of nearly equal value: recent small spenders buying often, and an older
/// group of larger, rarer orders.
fn two_groups(often_spend: f64) -> Vec<(String, Option<f64>, Option<f64>)> {
    let mut rows = Vec::new();
    for i in 0..40 {
        let j = f64::from(i % 4);
        rows.push((
            format!("{}", 100 + i),
            Some(5.0 + j),
            Some(often_spend + 100.0 * j),
        ));
        rows.push((
            format!("{}", 200 + i),
            Some(200.0 + j),
            Some(1000.0 + 100.0 * j),
        ));
    }
    rows
}

/// SEGMENTS' sources and metrics, with two named cluster levels and no `missing` level.
fn two() -> String {
    let sources = &SEGMENTS[..SEGMENTS.find("[ladders.segments]").unwrap()];
    format!(
        "{sources}[ladders.segments]\nvalue = \"spend\"\n[ladders.segments.cluster]\n\
         features = [\"recency_days\", \"spend\"]\n\
         [[ladders.segments.levels]]\nname = \"first\"\n[[ladders.segments.levels]]\nname = \"second\"\n"
    )
}

#[test]
fn clusters_keep_their_levels_from_run_to_run() {
    let policy = Arc::new(Policy::from_str("p.toml", &two()).unwrap());
    let run = |spend: f64, prior: Option<&stratum_core::Prior>| {
        let ev = stratum_core::evaluate::evaluate_with(
            Arc::clone(&policy),
            shopper_frame(&two_groups(spend)),
            stratum_core::evaluate::Inputs {
                pins: &[],
                as_of: None,
                prior,
            },
        )
        .unwrap();
        let level_of_100 = ev.level_name(0, ev.results[0].level[0]).to_string();
        (level_of_100, ev.summary(0).clusters.unwrap())
    };
    // First run: the frequent buyers spend a little more, so they are `first`.
    let (first, summary) = run(1010.0, None);
    assert_eq!(first, "first");
    assert!(summary.clusters.iter().all(|c| c.moved.is_none()));
    // Next month they spend a little less than the other group. By value alone they would
    // swap levels...
    assert_eq!(run(995.0, None).0, "second");
    // ...but matched to last month's centres they keep theirs, and the run says how little
    // the centres moved.
    let mut prior = stratum_core::Prior::default();
    prior.clusters.insert("segments".into(), summary);
    let (kept, now) = run(995.0, Some(&prior));
    assert_eq!(kept, "first");
    assert_eq!(now.clusters[0].level, "first");
    assert_eq!(now.clusters[0].centre, vec![6.5, 1145.0]);
    // 15 less spend, in standard deviations of about 112.
    let moved = now.clusters[0].moved.unwrap();
    assert!((moved - 15.0 / 111.83).abs() < 1e-3, "{moved}");
    // Other features or another k: nothing to match, levels by value again.
    prior.clusters.get_mut("segments").unwrap().features = vec!["spend".into()];
    assert_eq!(run(995.0, Some(&prior)).0, "second");
}

#[test]
fn centres_are_matched_by_the_least_total_distance() {
    use stratum_core::cluster::match_centres;
    let before = vec![vec![0.0, 0.0], vec![10.0, 0.0], vec![0.0, 10.0]];
    let now = vec![vec![0.5, 9.0], vec![0.2, 0.1], vec![9.0, 1.0]];
    assert_eq!(match_centres(&now, &before, &[1.0, 1.0]), vec![2, 0, 1]);
    // Scales: in standard deviations, the second feature's 10 is small.
    let before = vec![vec![0.0, 0.0], vec![1.0, 10.0]];
    let now = vec![vec![0.9, 0.0], vec![0.1, 10.0]];
    assert_eq!(match_centres(&now, &before, &[1.0, 1.0]), vec![0, 1]);
    assert_eq!(match_centres(&now, &before, &[1.0, 100.0]), vec![1, 0]);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(16))]

    #[test]
    fn cluster_levels_do_not_depend_on_input_order(seed in 0u64..10_000) {
        let mut rows = shoppers();
        let want = levels_by_id(&rows);
        // A seeded Fisher-Yates shuffle of the rows.
        let mut state = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        for i in (1..rows.len()).rev() {
            state = state.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            let j = (state >> 33) as usize % (i + 1);
            rows.swap(i, j);
        }
        prop_assert_eq!(levels_by_id(&rows), want);
    }
}

#[test]
fn k_from_a_range_is_chosen_by_silhouette_and_takes_the_first_levels() {
    // Three behaviours, five levels listed: k = 2..5 finds the three.
    let text = SEGMENTS
        .replace("seed = 7", "seed = 7\nk = \"2..5\"")
        .replace(
            "[[ladders.segments.levels]]\nname = \"unknown\"\n",
            "[[ladders.segments.levels]]\nname = \"spare_a\"\n[[ladders.segments.levels]]\nname = \"spare_b\"\n[[ladders.segments.levels]]\nname = \"unknown\"\n",
        );
    let policy = Arc::new(Policy::from_str("p.toml", &text).unwrap());
    let ev = evaluate(policy, shopper_frame(&shoppers()), &[]).unwrap();
    let summary = ev.summary(0);
    let clusters = summary.clusters.as_ref().unwrap();
    let tried: Vec<usize> = clusters.choices.iter().map(|c| c.k).collect();
    assert_eq!(tried, vec![2, 3, 4, 5]);
    assert_eq!(clusters.clusters.len(), 3, "{:?}", clusters.choices);
    let best = clusters
        .choices
        .iter()
        .max_by(|a, b| a.silhouette.total_cmp(&b.silhouette))
        .unwrap();
    assert_eq!(best.k, 3);
    let counts: Vec<(String, usize)> = summary
        .rows
        .iter()
        .map(|r| (r.level.clone(), r.count))
        .collect();
    assert_eq!(
        counts,
        vec![
            ("champions".to_string(), 30),
            ("loyal".to_string(), 30),
            ("lost".to_string(), 30),
            ("spare_a".to_string(), 0),
            ("spare_b".to_string(), 0),
            ("unknown".to_string(), 1),
        ]
    );
    // A range reaching past the levels is refused.
    let err = Policy::from_str(
        "p.toml",
        &SEGMENTS.replace("seed = 7", "seed = 7\nk = \"2..5\""),
    )
    .unwrap_err()
    .to_string();
    assert!(
        err.contains(
            "k = \"2..5\" can choose 5 clusters, but 3 levels take clusters: list at least 5"
        ),
        "{err}"
    );
}

#[test]
fn fixed_centres_only_assign() {
    let with =
        |centres: &str| SEGMENTS.replace("seed = 7", &format!("seed = 7\ncentres = {centres}"));
    let text = with("{ champions = [7, 5200], loyal = [12, 320], lost = [320, 82] }");
    let levels = {
        let policy = Arc::new(Policy::from_str("p.toml", &text).unwrap());
        let ev = evaluate(policy, shopper_frame(&shoppers()), &[]).unwrap();
        assert_eq!(ev.results[0].clusters.as_deref().unwrap().iterations, 0);
        ev.summary(0)
            .rows
            .iter()
            .map(|r| (r.level.clone(), r.count))
            .collect::<Vec<_>>()
    };
    assert_eq!(
        levels,
        vec![
            ("champions".to_string(), 30),
            ("loyal".to_string(), 30),
            ("lost".to_string(), 30),
            ("unknown".to_string(), 1),
        ]
    );
    // The centres decide, not the value order: name the long-gone group's centre
    // `champions` and its customers take that level.
    let swapped = with("{ champions = [320, 82], loyal = [12, 320], lost = [7, 5200] }");
    let ids = levels_by_id_with(&swapped, &shoppers());
    assert_eq!(ids["300"], "champions");
    assert_eq!(ids["100"], "lost");
    let err = Policy::from_str("p.toml", &with("{ champions = [7, 5200], loyal = [12] }"))
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("ladders.segments.cluster.centres.loyal"),
        "{err}"
    );
    assert!(
        err.contains("level `lost` takes a cluster but has no centre"),
        "{err}"
    );
}

fn levels_by_id_with(
    text: &str,
    rows: &[(String, Option<f64>, Option<f64>)],
) -> std::collections::BTreeMap<String, String> {
    let policy = Arc::new(Policy::from_str("p.toml", text).unwrap());
    let ev = evaluate(policy, shopper_frame(rows), &[]).unwrap();
    ev.frame
        .ids()
        .iter()
        .enumerate()
        .map(|(row, id)| {
            (
                id.to_string(),
                ev.level_name(0, ev.results[0].level[row]).to_string(),
            )
        })
        .collect()
}

#[test]
fn a_cluster_ladder_without_levels_names_them() {
    let bare = two()
        .replace("[[ladders.segments.levels]]\nname = \"first\"\n[[ladders.segments.levels]]\nname = \"second\"\n", "")
        .replace("features = [\"recency_days\", \"spend\"]", "features = [\"recency_days\", \"spend\"]\nk = 2");
    let policy = Arc::new(Policy::from_str("p.toml", &bare).unwrap());
    let ev = evaluate(policy, shopper_frame(&two_groups(1010.0)), &[]).unwrap();
    let rows: Vec<(String, usize)> = ev
        .summary(0)
        .rows
        .iter()
        .map(|r| (r.level.clone(), r.count))
        .collect();
    assert_eq!(
        rows,
        vec![("cluster_1".to_string(), 40), ("cluster_2".to_string(), 40)]
    );
    // The cluster with the highest mean spend is cluster_1.
    assert_eq!(ev.level_name(0, ev.results[0].level[0]), "cluster_1");
    let err = Policy::from_str("p.toml", &bare.replace("k = 2\n", ""))
        .unwrap_err()
        .to_string();
    assert!(err.contains("ladder `segments` has no levels"), "{err}");
    assert!(err.contains("give `k` in the cluster table"), "{err}");
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(12))]

    /// Next month's data a little different: every customer that stays in its group keeps
    /// its level, because the run continues last month's clusters.
    #[test]
    fn clusters_keep_their_labels_when_the_data_barely_change(
        noise in proptest::collection::vec(-0.02f64..0.02, 91 * 2)
    ) {
        let policy = Arc::new(Policy::from_str("p.toml", SEGMENTS).unwrap());
        let rows = shoppers();
        let first = evaluate(Arc::clone(&policy), shopper_frame(&rows), &[]).unwrap();
        let mut prior = stratum_core::Prior::default();
        prior.clusters.insert("segments".into(), first.summary(0).clusters.unwrap());
        let shifted: Vec<_> = rows
            .iter()
            .enumerate()
            .map(|(i, (id, r, s))| {
                (id.clone(), r.map(|v| v * (1.0 + noise[2 * i])), s.map(|v| v * (1.0 + noise[2 * i + 1])))
            })
            .collect();
        let next = stratum_core::evaluate::evaluate_with(
            policy,
            shopper_frame(&shifted),
            stratum_core::evaluate::Inputs { pins: &[], as_of: None, prior: Some(&prior) },
        )
        .unwrap();
        for row in 0..rows.len() {
            prop_assert_eq!(
                next.level_name(0, next.results[0].level[row]),
                first.level_name(0, first.results[0].level[row])
            );
        }
        let moved: Vec<f64> = next.summary(0).clusters.unwrap().clusters.iter().map(|c| c.moved.unwrap()).collect();
        prop_assert!(moved.iter().all(|m| *m < 0.05), "{:?}", moved);
    }
}
