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
    // The figures, to the second decimal.
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
