//! k-means segmentation (聚类分析): the features a policy names, each transformed onto a
//! common scale, grouped by Lloyd's algorithm from greedy k-means++ starts, the best of
//! several seeded restarts kept; the silhouette score to compare choices of k.
//!
//! Written here rather than taken from `linfa-clustering` because results must not depend on
//! the thread count (sums over customers are taken in fixed chunks and added in chunk order)
//! and because a run must be as fast as scikit-learn's `KMeans`, which the same algorithm on
//! a flat row-major matrix is (BENCHMARKS.md, "Clustering"). The definitions follow
//! scikit-learn's so that its results are the reference: the same greedy k-means++
//! (2 + ln k candidates per centre), the same stopping rule (labels unchanged, or centres
//! moving less than `tolerance` × the mean feature variance), the same silhouette.
//!
//! Rows must come in a canonical order (the ladder sorts customers by id first): k-means++
//! draws rows by position, so the order decides the starts.

use rand::rngs::StdRng;

use rand::{Rng, SeedableRng};
use rayon::prelude::*;

/// Rows per unit of parallel work. Partial sums are added in chunk order, so every result is
/// the same on one thread or sixteen.
const CHUNK: usize = 8192;

/// How a feature is put on a scale comparable with the others before distances are taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Transform {
    /// The values as they are (iris in centimetres).
    None,
    /// `(x - mean) / standard deviation` (population, as scikit-learn's `StandardScaler`).
    #[default]
    ZScore,
    /// `ln(1 + x)` (mirrored for negative values: `-ln(1 - x)`), then z-score: for skewed
    /// amounts such as spend, where a few customers are worth thousands of the rest.
    Log1pZScore,
    /// `(x - min) / (max - min)`, into 0..1.
    MinMax,
    /// The percentile rank in 0..1 (ties share their mean rank): robust to any outlier.
    Rank,
}

impl Transform {
    pub const ALL: [Transform; 5] = [
        Transform::None,
        Transform::ZScore,
        Transform::Log1pZScore,
        Transform::MinMax,
        Transform::Rank,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Transform::None => "none",
            Transform::ZScore => "zscore",
            Transform::Log1pZScore => "log1p-zscore",
            Transform::MinMax => "minmax",
            Transform::Rank => "rank",
        }
    }

    pub fn parse(text: &str) -> Option<Transform> {
        Transform::ALL.into_iter().find(|t| t.as_str() == text)
    }

    /// Transforms one column in place. A constant column becomes all zeros: it tells no
    /// customer from another, so it must not weigh in distances.
    pub fn apply(self, values: &mut [f64]) {
        match self {
            Transform::None => {}
            Transform::ZScore => zscore(values),
            Transform::Log1pZScore => {
                for v in values.iter_mut() {
                    *v = if *v >= 0.0 { v.ln_1p() } else { -(-*v).ln_1p() };
                }
                zscore(values);
            }
            Transform::MinMax => {
                let (lo, hi) = values
                    .iter()
                    .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| {
                        (lo.min(*v), hi.max(*v))
                    });
                let span = hi - lo;
                for v in values.iter_mut() {
                    *v = if span > 0.0 { (*v - lo) / span } else { 0.0 };
                }
            }
            Transform::Rank => {
                let n = values.len();
                let mut order: Vec<usize> = (0..n).collect();
                order.sort_by(|a, b| values[*a].total_cmp(&values[*b]).then(a.cmp(b)));
                let mut ranks = vec![0.0; n];
                let mut start = 0;
                while start < n {
                    let mut end = start + 1;
                    while end < n && values[order[end]] == values[order[start]] {
                        end += 1;
                    }
                    // Positions start..end share the mean of their 0-based ranks.
                    let mean = (start + end - 1) as f64 / 2.0;
                    for &row in &order[start..end] {
                        ranks[row] = if n > 1 { mean / (n - 1) as f64 } else { 0.0 };
                    }
                    start = end;
                }
                values.copy_from_slice(&ranks);
            }
        }
    }
}

impl Transform {
    /// Where `value` lands when `column` (in its own units) is transformed: how a fixed
    /// centre given in a feature's units is placed among the transformed customers.
    pub fn apply_to_point(self, column: &[f64], value: f64) -> f64 {
        let signed_log = |v: f64| if v >= 0.0 { v.ln_1p() } else { -(-v).ln_1p() };
        let standard = |values: &[f64], v: f64| {
            let n = values.len().max(1) as f64;
            let mean = values.iter().sum::<f64>() / n;
            let sd = (values.iter().map(|x| (x - mean) * (x - mean)).sum::<f64>() / n).sqrt();
            if sd > 0.0 { (v - mean) / sd } else { 0.0 }
        };
        match self {
            Transform::None => value,
            Transform::ZScore => standard(column, value),
            Transform::Log1pZScore => {
                let logged: Vec<f64> = column.iter().map(|v| signed_log(*v)).collect();
                standard(&logged, signed_log(value))
            }
            Transform::MinMax => {
                let lo = column.iter().copied().fold(f64::INFINITY, f64::min);
                let hi = column.iter().copied().fold(f64::NEG_INFINITY, f64::max);
                if hi > lo {
                    (value - lo) / (hi - lo)
                } else {
                    0.0
                }
            }
            Transform::Rank => {
                let n = column.len();
                if n < 2 {
                    return 0.0;
                }
                let below = column.iter().filter(|v| **v < value).count() as f64;
                let equal = column.iter().filter(|v| **v == value).count() as f64;
                // The mean rank of equal values, or halfway between neighbours.
                let position = below + (equal - 1.0) / 2.0;
                position.clamp(0.0, (n - 1) as f64) / (n - 1) as f64
            }
        }
    }
}

/// k-means from given starting centres, without restarts: how a run continues the previous
/// run's clusters, so that cluster `c` of the result is the one that started at `start`'s
/// row `c`.
pub fn kmeans_from(data: &Matrix, start: &Matrix, options: &KMeansOptions) -> KMeans {
    let tolerance = options.tolerance * mean_variance(data);
    lloyd(data, start.data.clone(), options.max_iterations, tolerance)
}

/// Every row assigned to the nearest of fixed `centres` (no iterations): a policy that fixes
/// its centres only assigns.
pub fn assign_to(data: &Matrix, centres: &Matrix) -> KMeans {
    let mut labels = vec![u32::MAX; data.rows];
    assign(data, &centres.data, &mut labels);
    let inertia = inertia(data, &centres.data, &labels);
    KMeans {
        centres: centres.clone(),
        labels,
        inertia,
        iterations: 0,
    }
}

fn zscore(values: &mut [f64]) {
    let n = values.len().max(1) as f64;
    let mean = values.iter().sum::<f64>() / n;
    let var = values.iter().map(|v| (v - mean) * (v - mean)).sum::<f64>() / n;
    let sd = var.sqrt();
    for v in values.iter_mut() {
        *v = if sd > 0.0 { (*v - mean) / sd } else { 0.0 };
    }
}

/// Customers × features, row-major: one customer's features are adjacent, as distances read
/// them.
#[derive(Debug, Clone, PartialEq)]
pub struct Matrix {
    rows: usize,
    cols: usize,
    data: Vec<f64>,
}

impl Matrix {
    /// `data` holds `cols` values per row.
    pub fn new(cols: usize, data: Vec<f64>) -> Result<Matrix, ClusterError> {
        if cols == 0 || !data.len().is_multiple_of(cols) {
            return Err(ClusterError::Shape {
                values: data.len(),
                cols,
            });
        }
        if let Some(at) = data.iter().position(|v| !v.is_finite()) {
            return Err(ClusterError::NotFinite {
                row: at / cols,
                col: at % cols,
            });
        }
        Ok(Matrix {
            rows: data.len() / cols,
            cols,
            data,
        })
    }

    /// From columns (one `Vec` per feature, all of one length).
    pub fn from_columns(columns: &[Vec<f64>]) -> Result<Matrix, ClusterError> {
        let cols = columns.len();
        let rows = columns.first().map_or(0, Vec::len);
        if columns.iter().any(|c| c.len() != rows) {
            return Err(ClusterError::Shape {
                values: columns.iter().map(Vec::len).sum(),
                cols,
            });
        }
        let mut data = Vec::with_capacity(rows * cols);
        for r in 0..rows {
            data.extend(columns.iter().map(|c| c[r]));
        }
        Matrix::new(cols, data)
    }

    pub fn rows(&self) -> usize {
        self.rows
    }

    pub fn cols(&self) -> usize {
        self.cols
    }

    pub fn row(&self, r: usize) -> &[f64] {
        &self.data[r * self.cols..(r + 1) * self.cols]
    }

    /// The rows at `picked`, in that order.
    pub fn select(&self, picked: &[usize]) -> Matrix {
        let mut data = Vec::with_capacity(picked.len() * self.cols);
        for &r in picked {
            data.extend_from_slice(self.row(r));
        }
        Matrix {
            rows: picked.len(),
            cols: self.cols,
            data,
        }
    }
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ClusterError {
    #[error("{values} values do not make rows of {cols} features")]
    Shape { values: usize, cols: usize },
    #[error("row {row}, feature {col} is not a finite number")]
    NotFinite { row: usize, col: usize },
    #[error("k = {k} needs at least {k} customers; there are {rows}")]
    TooFewRows { k: usize, rows: usize },
    #[error("k must be at least 1")]
    NoClusters,
}

/// How k-means runs. The defaults are scikit-learn's, but with ten restarts.
#[derive(Debug, Clone, PartialEq)]
pub struct KMeansOptions {
    pub k: usize,
    /// Independent k-means++ starts; the one with the lowest inertia is kept.
    pub restarts: u32,
    /// Every start is drawn from this seed: the same seed and rows give the same clusters.
    pub seed: u64,
    pub max_iterations: u32,
    /// Stop when the centres move (sum of squared shifts) less than this × the mean
    /// variance of the features.
    pub tolerance: f64,
}

impl KMeansOptions {
    pub fn new(k: usize) -> KMeansOptions {
        KMeansOptions {
            k,
            restarts: 10,
            seed: 0,
            max_iterations: 300,
            tolerance: 1e-4,
        }
    }
}

/// A clustering: `k` centres (in the transformed space) and each row's nearest one.
#[derive(Debug, Clone, PartialEq)]
pub struct KMeans {
    /// `k` rows of `cols` values.
    pub centres: Matrix,
    pub labels: Vec<u32>,
    /// Sum of squared distances from each row to its centre.
    pub inertia: f64,
    /// Lloyd iterations of the kept restart.
    pub iterations: u32,
}

impl KMeans {
    pub fn k(&self) -> usize {
        self.centres.rows
    }

    pub fn sizes(&self) -> Vec<usize> {
        let mut sizes = vec![0; self.k()];
        for &l in &self.labels {
            sizes[l as usize] += 1;
        }
        sizes
    }

    /// Each row's distance to its own centre and to the nearest other one (Euclidean, in the
    /// transformed space): how firmly the row sits in its cluster.
    pub fn distances(&self, data: &Matrix) -> Vec<(f64, f64)> {
        (0..data.rows)
            .into_par_iter()
            .map(|r| {
                let row = data.row(r);
                let own = self.labels[r] as usize;
                let mut next = f64::INFINITY;
                let mut mine = 0.0;
                for c in 0..self.k() {
                    let d = squared(row, self.centres.row(c));
                    if c == own {
                        mine = d;
                    } else if d < next {
                        next = d;
                    }
                }
                (mine.sqrt(), next.sqrt())
            })
            .collect()
    }
}

fn squared(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| (x - y) * (x - y)).sum()
}

/// The nearest centre and the squared distance to it; ties go to the lower index.
fn nearest(row: &[f64], centres: &[f64], cols: usize) -> (u32, f64) {
    let mut best = (0u32, f64::INFINITY);
    for (c, centre) in centres.chunks_exact(cols).enumerate() {
        let d = squared(row, centre);
        if d < best.1 {
            best = (c as u32, d);
        }
    }
    best
}

/// Sum in fixed chunks added in order: the same bits whatever the thread count.
fn chunked_sum(values: &[f64]) -> f64 {
    values
        .par_chunks(CHUNK)
        .map(|c| c.iter().sum::<f64>())
        .collect::<Vec<f64>>()
        .iter()
        .sum()
}

/// k-means: the best of `options.restarts` seeded starts.
pub fn kmeans(data: &Matrix, options: &KMeansOptions) -> Result<KMeans, ClusterError> {
    let k = options.k;
    if k == 0 {
        return Err(ClusterError::NoClusters);
    }
    if data.rows < k {
        return Err(ClusterError::TooFewRows { k, rows: data.rows });
    }
    let tolerance = options.tolerance * mean_variance(data);
    let mut seeds = StdRng::seed_from_u64(options.seed);
    let mut best: Option<KMeans> = None;
    for _ in 0..options.restarts.max(1) {
        let mut rng = StdRng::seed_from_u64(seeds.random());
        let start = plus_plus(data, k, &mut rng);
        let fit = lloyd(data, start, options.max_iterations, tolerance);
        // Strictly lower only: on a tie the earlier start stays, as in scikit-learn.
        if best.as_ref().is_none_or(|b| fit.inertia < b.inertia) {
            best = Some(fit);
        }
    }
    Ok(best.expect("at least one restart"))
}

fn mean_variance(data: &Matrix) -> f64 {
    let n = data.rows as f64;
    let mut total = 0.0;
    for c in 0..data.cols {
        let mean = (0..data.rows)
            .map(|r| data.data[r * data.cols + c])
            .sum::<f64>()
            / n;
        total += (0..data.rows)
            .map(|r| {
                let d = data.data[r * data.cols + c] - mean;
                d * d
            })
            .sum::<f64>()
            / n;
    }
    total / data.cols as f64
}

/// Greedy k-means++: each new centre is the best (lowest total squared distance) of
/// 2 + ln k rows drawn with probability proportional to their squared distance to the
/// centres so far.
fn plus_plus(data: &Matrix, k: usize, rng: &mut StdRng) -> Vec<f64> {
    let n = data.rows;
    let trials = 2 + (k as f64).ln() as usize;
    let first = rng.random_range(0..n);
    let mut centres = data.row(first).to_vec();
    let mut closest: Vec<f64> = (0..n)
        .into_par_iter()
        .map(|r| squared(data.row(r), data.row(first)))
        .collect();
    let mut cumulative = vec![0.0; n];
    for _ in 1..k {
        let mut running = 0.0;
        for (c, d) in cumulative.iter_mut().zip(&closest) {
            running += d;
            *c = running;
        }
        let mut chosen: Option<(usize, f64)> = None;
        for _ in 0..trials {
            let target = rng.random::<f64>() * running;
            let candidate = cumulative.partition_point(|&c| c <= target).min(n - 1);
            let candidate_row = data.row(candidate);
            let total = closest
                .par_chunks(CHUNK)
                .enumerate()
                .map(|(i, chunk)| {
                    chunk
                        .iter()
                        .enumerate()
                        .map(|(j, d)| d.min(squared(data.row(i * CHUNK + j), candidate_row)))
                        .sum::<f64>()
                })
                .collect::<Vec<f64>>()
                .iter()
                .sum::<f64>();
            if chosen.is_none_or(|(_, best)| total < best) {
                chosen = Some((candidate, total));
            }
        }
        let (pick, _) = chosen.expect("at least two trials");
        let pick_row = data.row(pick).to_vec();
        closest.par_iter_mut().enumerate().for_each(|(r, d)| {
            *d = d.min(squared(data.row(r), &pick_row));
        });
        centres.extend_from_slice(&pick_row);
    }
    centres
}

/// One chunk's share of an assignment step.
struct Partial {
    sums: Vec<f64>,
    counts: Vec<u64>,
    changed: u64,
}

/// Assigns every row to its nearest centre, returning the per-cluster sums in chunk order.
fn assign(data: &Matrix, centres: &[f64], labels: &mut [u32]) -> Partial {
    let cols = data.cols;
    let k = centres.len() / cols;
    let parts: Vec<Partial> = labels
        .par_chunks_mut(CHUNK)
        .enumerate()
        .map(|(i, chunk)| {
            let mut p = Partial {
                sums: vec![0.0; k * cols],
                counts: vec![0; k],
                changed: 0,
            };
            for (j, label) in chunk.iter_mut().enumerate() {
                let row = data.row(i * CHUNK + j);
                let (c, _) = nearest(row, centres, cols);
                if *label != c {
                    p.changed += 1;
                    *label = c;
                }
                let c = c as usize;
                p.counts[c] += 1;
                for (s, v) in p.sums[c * cols..(c + 1) * cols].iter_mut().zip(row) {
                    *s += v;
                }
            }
            p
        })
        .collect();
    let mut total = Partial {
        sums: vec![0.0; k * cols],
        counts: vec![0; k],
        changed: 0,
    };
    for p in parts {
        for (t, s) in total.sums.iter_mut().zip(&p.sums) {
            *t += s;
        }
        for (t, c) in total.counts.iter_mut().zip(&p.counts) {
            *t += c;
        }
        total.changed += p.changed;
    }
    total
}

fn lloyd(data: &Matrix, mut centres: Vec<f64>, max_iterations: u32, tolerance: f64) -> KMeans {
    let cols = data.cols;
    let k = centres.len() / cols;
    let mut labels = vec![u32::MAX; data.rows];
    let mut iterations = 0;
    let mut settled = false;
    for _ in 0..max_iterations.max(1) {
        iterations += 1;
        let step = assign(data, &centres, &mut labels);
        if step.changed == 0 {
            // The labels are those of the centres as they stand: nothing left to do.
            settled = true;
            break;
        }
        let mut next = step.sums;
        for c in 0..k {
            if step.counts[c] == 0 {
                continue;
            }
            for v in &mut next[c * cols..(c + 1) * cols] {
                *v /= step.counts[c] as f64;
            }
        }
        relocate_empty(data, &centres, &labels, &step.counts, &mut next);
        let shift: f64 = centres
            .chunks_exact(cols)
            .zip(next.chunks_exact(cols))
            .map(|(a, b)| squared(a, b))
            .sum();
        centres = next;
        if shift <= tolerance {
            break;
        }
    }
    if !settled {
        assign(data, &centres, &mut labels);
    }
    let inertia = inertia(data, &centres, &labels);
    KMeans {
        centres: Matrix {
            rows: k,
            cols,
            data: centres,
        },
        labels,
        inertia,
        iterations,
    }
}

/// A cluster left with no rows takes the row farthest from its centre (the lowest row number
/// among equals), as scikit-learn does, so `k` clusters stay `k`.
fn relocate_empty(data: &Matrix, old: &[f64], labels: &[u32], counts: &[u64], next: &mut [f64]) {
    let cols = data.cols;
    let empty: Vec<usize> = (0..counts.len()).filter(|c| counts[*c] == 0).collect();
    if empty.is_empty() {
        return;
    }
    let mut far: Vec<(f64, usize)> = (0..data.rows)
        .map(|r| {
            let c = labels[r] as usize;
            (squared(data.row(r), &old[c * cols..(c + 1) * cols]), r)
        })
        .collect();
    far.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
    for (c, (_, r)) in empty.into_iter().zip(far) {
        next[c * cols..(c + 1) * cols].copy_from_slice(data.row(r));
    }
}

fn inertia(data: &Matrix, centres: &[f64], labels: &[u32]) -> f64 {
    let cols = data.cols;
    let per: Vec<f64> = (0..data.rows)
        .into_par_iter()
        .map(|r| {
            let c = labels[r] as usize;
            squared(data.row(r), &centres[c * cols..(c + 1) * cols])
        })
        .collect();
    chunked_sum(&per)
}

/// The mean silhouette over every row (scikit-learn's `silhouette_score`): for each row,
/// `(b - a) / max(a, b)` where `a` is its mean distance to the rest of its cluster and `b`
/// the mean distance to the nearest other cluster; 0 for a row alone in its cluster.
/// Quadratic in the rows: use [`silhouette_sampled`] beyond a few ten thousand.
pub fn silhouette(data: &Matrix, labels: &[u32]) -> f64 {
    let k = labels.iter().max().map_or(0, |m| *m as usize + 1);
    let mut sizes = vec![0usize; k];
    for &l in labels {
        sizes[l as usize] += 1;
    }
    if sizes.iter().filter(|s| **s > 0).count() < 2 {
        return 0.0;
    }
    let scores: Vec<f64> = (0..data.rows)
        .into_par_iter()
        .map(|i| {
            let own = labels[i] as usize;
            if sizes[own] <= 1 {
                return 0.0;
            }
            let mut sums = vec![0.0; k];
            let row = data.row(i);
            for j in 0..data.rows {
                sums[labels[j] as usize] += squared(row, data.row(j)).sqrt();
            }
            let a = sums[own] / (sizes[own] - 1) as f64;
            let b = (0..k)
                .filter(|c| *c != own && sizes[*c] > 0)
                .map(|c| sums[c] / sizes[c] as f64)
                .fold(f64::INFINITY, f64::min);
            let m = a.max(b);
            if m > 0.0 { (b - a) / m } else { 0.0 }
        })
        .collect();
    chunked_sum(&scores) / data.rows as f64
}

/// The silhouette of `sample` rows drawn without replacement with `seed` (all rows when
/// there are no more): what scikit-learn's `silhouette_score(sample_size=…)` computes, at a
/// cost of `sample²` distances instead of `rows²`.
pub fn silhouette_sampled(data: &Matrix, labels: &[u32], sample: usize, seed: u64) -> f64 {
    if data.rows <= sample {
        return silhouette(data, labels);
    }
    let mut rng = StdRng::seed_from_u64(seed);
    let mut picked = rand::seq::index::sample(&mut rng, data.rows, sample).into_vec();
    picked.sort_unstable();
    let sub = data.select(&picked);
    let sub_labels: Vec<u32> = picked.iter().map(|r| labels[*r]).collect();
    silhouette(&sub, &sub_labels)
}

/// Matches this run's centres to the previous run's: for each cluster now, the index of the
/// previous centre it continues, choosing the one-to-one pairing with the least total squared
/// distance, each feature in standard deviations `sd` (every pairing is tried up to 8
/// clusters, 40,320 pairings; beyond, the nearest free pair is taken repeatedly). Ties go to
/// the pairing found first, so the answer is the same on every run.
pub fn match_centres(now: &[Vec<f64>], before: &[Vec<f64>], sd: &[f64]) -> Vec<usize> {
    let k = now.len();
    let cost: Vec<Vec<f64>> = now
        .iter()
        .map(|a| {
            before
                .iter()
                .map(|b| {
                    a.iter()
                        .zip(b)
                        .zip(sd)
                        .map(|((x, y), s)| {
                            let s = if *s > 0.0 { *s } else { 1.0 };
                            ((x - y) / s).powi(2)
                        })
                        .sum()
                })
                .collect()
        })
        .collect();
    if k <= 8 {
        let mut best = (f64::INFINITY, (0..k).collect::<Vec<usize>>());
        let mut pairing = Vec::with_capacity(k);
        let mut used = vec![false; k];
        fn search(
            cost: &[Vec<f64>],
            pairing: &mut Vec<usize>,
            used: &mut [bool],
            total: f64,
            best: &mut (f64, Vec<usize>),
        ) {
            if total >= best.0 {
                return;
            }
            let at = pairing.len();
            if at == cost.len() {
                *best = (total, pairing.clone());
                return;
            }
            for j in 0..used.len() {
                if !used[j] {
                    used[j] = true;
                    pairing.push(j);
                    search(cost, pairing, used, total + cost[at][j], best);
                    pairing.pop();
                    used[j] = false;
                }
            }
        }
        search(&cost, &mut pairing, &mut used, 0.0, &mut best);
        return best.1;
    }
    let mut pairs: Vec<(f64, usize, usize)> = (0..k)
        .flat_map(|i| (0..k).map(move |j| (i, j)))
        .map(|(i, j)| (cost[i][j], i, j))
        .collect();
    pairs.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)).then(a.2.cmp(&b.2)));
    let mut out = vec![usize::MAX; k];
    let mut taken = vec![false; k];
    for (_, i, j) in pairs {
        if out[i] == usize::MAX && !taken[j] {
            out[i] = j;
            taken[j] = true;
        }
    }
    out
}

/// One candidate k when the policy gives a range: its clustering's inertia (for an elbow
/// chart) and silhouette.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct KChoice {
    pub k: usize,
    pub inertia: f64,
    pub silhouette: f64,
}

/// Rows the silhouette is measured on when choosing k: 5,000² distances per k, a second or
/// so, with a standard error on the score near 0.005.
pub const SILHOUETTE_SAMPLE: usize = 5000;

/// Clusters for every k in `ks` and picks the one with the highest silhouette (the smaller
/// k on a tie). Returns every candidate's figures and the chosen clustering.
pub fn choose_k(
    data: &Matrix,
    ks: std::ops::RangeInclusive<usize>,
    options: &KMeansOptions,
    sample: usize,
) -> Result<(Vec<KChoice>, KMeans), ClusterError> {
    let mut choices = Vec::new();
    let mut best: Option<(f64, KMeans)> = None;
    for k in ks {
        let fit = kmeans(
            data,
            &KMeansOptions {
                k,
                ..options.clone()
            },
        )?;
        let score = silhouette_sampled(data, &fit.labels, sample, options.seed);
        choices.push(KChoice {
            k,
            inertia: fit.inertia,
            silhouette: score,
        });
        if best.as_ref().is_none_or(|(s, _)| score > *s) {
            best = Some((score, fit));
        }
    }
    let (_, fit) = best.ok_or(ClusterError::NoClusters)?;
    Ok((choices, fit))
}

/// A cluster ladder's k-means in a run's summary.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ClusterSummary {
    pub features: Vec<String>,
    /// Per feature, the clustered customers' mean, in its own units.
    pub mean: Vec<f64>,
    pub sd: Vec<f64>,
    pub inertia: f64,
    pub iterations: u32,
    /// Customers clustered with a median in place of a missing feature.
    pub imputed: usize,
    /// With `k` a range: every k tried, with its inertia and silhouette (the highest chose).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub choices: Vec<KChoice>,
    /// The clusters, highest mean value first.
    pub clusters: Vec<ClusterCentre>,
}

#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ClusterCentre {
    pub level: String,
    pub customers: usize,
    /// The members' mean of each feature, in its own units.
    pub centre: Vec<f64>,
    pub value_mean: f64,
    /// How far the centre moved from the previous run's cluster it was matched to, in
    /// standard deviations of the features; absent when there was nothing to match.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub moved: Option<f64>,
}

/// A cluster ladder's k-means as this run made it: what explanations, run summaries and the
/// console show.
#[derive(Debug, Clone, PartialEq)]
pub struct Clusters {
    pub features: Vec<String>,
    pub transforms: Vec<Transform>,
    /// The cluster levels in level order (the highest mean value first).
    pub levels: Vec<ClusterLevel>,
    /// Per feature, the clustered customers' mean and standard deviation, in its own units.
    pub mean: Vec<f64>,
    pub sd: Vec<f64>,
    pub inertia: f64,
    pub iterations: u32,
    /// Per row of the frame: the distance to its cluster's centre and to the next nearest
    /// one, in the transformed space; NaN for customers not clustered.
    pub distances: Vec<(f32, f32)>,
    /// Customers clustered with the median in place of a feature they lacked.
    pub imputed: usize,
    /// With `k` a range: every k tried.
    pub choices: Vec<KChoice>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ClusterLevel {
    /// Index of the ladder level that takes the cluster.
    pub level: usize,
    pub size: usize,
    /// The members' mean of each feature, in the feature's own units.
    pub centre: Vec<f64>,
    /// The members' mean and total of the ladder's value measure.
    pub value_mean: f64,
    pub value_total: f64,
    /// Distance from the previous run's matched centre, in standard deviations.
    pub moved: Option<f64>,
}

impl Clusters {
    pub fn of_level(&self, level: usize) -> Option<&ClusterLevel> {
        self.levels.iter().find(|c| c.level == level)
    }

    /// The features that set a cluster apart most (furthest from the mean, in standard
    /// deviations), with the cluster's mean and the overall mean: "recency_days 12 against
    /// 140".
    pub fn standouts(&self, level: usize, at_most: usize) -> Vec<(&str, f64, f64)> {
        let Some(c) = self.of_level(level) else {
            return Vec::new();
        };
        let mut by: Vec<(usize, f64)> = (0..self.features.len())
            .map(|f| {
                let sd = if self.sd[f] > 0.0 { self.sd[f] } else { 1.0 };
                (f, ((c.centre[f] - self.mean[f]) / sd).abs())
            })
            .collect();
        by.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
        by.into_iter()
            .take(at_most)
            .map(|(f, _)| (self.features[f].as_str(), c.centre[f], self.mean[f]))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transforms() {
        let mut v = vec![1.0, 2.0, 3.0];
        Transform::ZScore.apply(&mut v);
        let s = (2.0f64 / 3.0).sqrt();
        assert_eq!(v, vec![-1.0 / s, 0.0, 1.0 / s]);
        let mut v = vec![5.0, 1.0, 3.0];
        Transform::MinMax.apply(&mut v);
        assert_eq!(v, vec![1.0, 0.0, 0.5]);
        let mut v = vec![10.0, 20.0, 20.0, 5.0, 30.0];
        Transform::Rank.apply(&mut v);
        assert_eq!(v, vec![0.25, 0.625, 0.625, 0.0, 1.0]);
        let mut v = vec![7.0, 7.0];
        Transform::ZScore.apply(&mut v);
        assert_eq!(v, vec![0.0, 0.0]);
        let mut v = vec![0.0, std::f64::consts::E - 1.0, -(std::f64::consts::E - 1.0)];
        Transform::Log1pZScore.apply(&mut v);
        let s = (2.0f64 / 3.0).sqrt();
        assert!((v[1] - 1.0 / s).abs() < 1e-12 && (v[2] + 1.0 / s).abs() < 1e-12);
        for t in Transform::ALL {
            assert_eq!(Transform::parse(t.as_str()), Some(t));
        }
    }

    #[test]
    fn two_obvious_groups() {
        let data = Matrix::new(
            2,
            vec![0.0, 0.0, 0.0, 1.0, 10.0, 10.0, 10.0, 11.0, 0.5, 0.5],
        )
        .unwrap();
        let fit = kmeans(&data, &KMeansOptions::new(2)).unwrap();
        let a = fit.labels[0];
        assert_eq!(
            fit.labels,
            vec![a, a, 1 - a, 1 - a, a],
            "the two groups are found"
        );
        assert_eq!(fit.sizes()[a as usize], 3);
        let d = fit.distances(&data);
        assert!(d[0].0 < d[0].1);
        assert!(silhouette(&data, &fit.labels) > 0.8);
    }

    #[test]
    fn bad_input_is_refused() {
        assert!(matches!(
            Matrix::new(2, vec![1.0, f64::NAN]),
            Err(ClusterError::NotFinite { row: 0, col: 1 })
        ));
        assert!(matches!(
            Matrix::new(2, vec![1.0, 2.0, 3.0]),
            Err(ClusterError::Shape { .. })
        ));
        let data = Matrix::new(1, vec![1.0, 2.0]).unwrap();
        assert_eq!(
            kmeans(&data, &KMeansOptions::new(3)),
            Err(ClusterError::TooFewRows { k: 3, rows: 2 })
        );
    }
}
