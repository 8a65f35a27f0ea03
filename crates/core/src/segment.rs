//! Placing a cluster ladder's customers: the features read from the frame in id order,
//! missing values imputed or sent to their level, k-means (`cluster`) on the transformed
//! matrix, and the clusters handed to the levels by mean value. Apart from `cluster` so that
//! the algorithm knows nothing of policies and ladders.

use rayon::slice::ParallelSliceMut;

use crate::cluster::{
    ClusterLevel, ClusterSummary, Clusters, Matrix, SILHOUETTE_SAMPLE, choose_k, kmeans,
    match_centres,
};
use crate::frame::Frame;
use crate::ladder::{LadderResult, Reason};
use crate::model::{ClusterRule, Ladder, MissingFeature, Rule};

/// Places a cluster ladder's customers: those it grades, in id order, clustered on the
/// transformed features; the clusters go to the levels by mean `value`, highest first.
/// `Err` is a message for the ladder's `cluster` key.
pub fn place(
    ladder: &Ladder,
    rule: &ClusterRule,
    frame: &Frame,
    rank_col: Option<usize>,
    value_col: usize,
    previous: Option<&ClusterSummary>,
) -> Result<LadderResult, String> {
    let n_all = frame.len();
    let unplaced = ladder.levels.len();
    let (mut level, mut reason) = crate::ladder::start(ladder, frame);
    let mut columns = Vec::with_capacity(rule.features.len());
    for f in &rule.features {
        match frame.index_of(f) {
            Some(i) if frame.column_at(i).kind() == "number" => columns.push(frame.column_at(i)),
            Some(_) => return Err(format!("feature `{f}` is text; k-means needs numbers")),
            None => return Err(format!("feature `{f}` is missing from the metrics")),
        }
    }
    let by_id = crate::ladder::id_order(frame);
    let mut graded: Vec<usize> = (0..n_all).filter(|r| level[*r] == unplaced).collect();
    graded.par_sort_unstable_by(|a, b| by_id(*a, *b));
    let medians: Vec<f64> = columns
        .iter()
        .map(|c| {
            let mut v: Vec<f64> = graded.iter().filter_map(|r| c.num(*r)).collect();
            v.sort_unstable_by(f64::total_cmp);
            match v.len() {
                0 => f64::NAN,
                n if n % 2 == 1 => v[n / 2],
                n => (v[n / 2 - 1] + v[n / 2]) / 2.0,
            }
        })
        .collect();
    let mut clustered = Vec::with_capacity(graded.len());
    let mut imputed = 0;
    let mut original: Vec<Vec<f64>> = vec![Vec::with_capacity(graded.len()); columns.len()];
    for &row in &graded {
        let lacks = columns
            .iter()
            .any(|c| c.num(row).is_none_or(|v| !v.is_finite()));
        if lacks {
            match rule.missing {
                MissingFeature::Level(l) => {
                    level[row] = l;
                    reason[row] = Reason::MissingFeatures;
                    continue;
                }
                MissingFeature::Median => imputed += 1,
            }
        }
        for (f, c) in columns.iter().enumerate() {
            let v = c.num(row).filter(|v| v.is_finite()).unwrap_or(medians[f]);
            if !v.is_finite() {
                return Err(format!(
                    "no customer has a value of `{}`: nothing to take a median of",
                    rule.features[f]
                ));
            }
            original[f].push(v);
        }
        clustered.push(row);
    }
    let k = rule.k_range.as_ref().map_or(rule.options.k, |r| *r.start());
    if clustered.len() < k {
        return Err(format!(
            "{} customer{} to cluster, fewer than k = {k}",
            clustered.len(),
            if clustered.len() == 1 { "" } else { "s" }
        ));
    }
    let mut transformed = original.clone();
    for (c, t) in transformed.iter_mut().zip(&rule.transforms) {
        t.apply(c);
    }
    let data = Matrix::from_columns(&transformed).map_err(|e| e.to_string())?;
    // From the second run on, k-means continues the previous run's clusters: it starts from
    // their centres (placed by this run's transforms), so each cluster evolves in place and
    // keeps its level, instead of the restarts finding another partition.
    let cluster_levels: Vec<usize> = (0..ladder.levels.len())
        .filter(|l| matches!(ladder.levels[*l].rule, Rule::Cluster { .. }))
        .collect();
    let continued = previous.filter(|b| {
        rule.centres.is_none()
            && rule.k_range.is_none()
            && b.features == rule.features
            && b.clusters.len() == rule.options.k
            && b.clusters.iter().all(|c| {
                ladder
                    .level_index(&c.level)
                    .is_some_and(|l| cluster_levels.contains(&l))
            })
    });
    let (choices, fit) = match (&rule.centres, &rule.k_range) {
        _ if continued.is_some() => {
            let before = continued.expect("checked");
            let mut at = Vec::with_capacity(before.clusters.len() * columns.len());
            for c in &before.clusters {
                for (f, v) in c.centre.iter().enumerate() {
                    at.push(rule.transforms[f].apply_to_point(&original[f], *v));
                }
            }
            let start = Matrix::new(columns.len(), at).map_err(|e| e.to_string())?;
            (
                Vec::new(),
                crate::cluster::kmeans_from(&data, &start, &rule.options),
            )
        }
        (Some(fixed), _) => {
            let mut at = Vec::with_capacity(fixed.len() * columns.len());
            for (_, centre) in fixed {
                for (f, v) in centre.iter().enumerate() {
                    at.push(rule.transforms[f].apply_to_point(&original[f], *v));
                }
            }
            let centres = Matrix::new(columns.len(), at).map_err(|e| e.to_string())?;
            (Vec::new(), crate::cluster::assign_to(&data, &centres))
        }
        (None, Some(range)) => {
            let top = (*range.end()).min(clustered.len());
            choose_k(
                &data,
                *range.start()..=top,
                &rule.options,
                SILHOUETTE_SAMPLE,
            )
            .map_err(|e| e.to_string())?
        }
        (None, None) => (
            Vec::new(),
            kmeans(&data, &rule.options).map_err(|e| e.to_string())?,
        ),
    };
    let k = fit.k();

    let value = frame.column_at(value_col);
    let mut value_total = vec![0.0; k];
    let mut centre = vec![vec![0.0; columns.len()]; k];
    let sizes = fit.sizes();
    for (i, &row) in clustered.iter().enumerate() {
        let c = fit.labels[i] as usize;
        value_total[c] += value.num(row).unwrap_or(0.0);
        for f in 0..columns.len() {
            centre[c][f] += original[f][i];
        }
    }
    for c in 0..k {
        for v in &mut centre[c] {
            *v /= sizes[c].max(1) as f64;
        }
    }
    let value_mean: Vec<f64> = (0..k)
        .map(|c| value_total[c] / sizes[c].max(1) as f64)
        .collect();
    let mut by_value: Vec<usize> = (0..k).collect();
    by_value.sort_by(|a, b| value_mean[*b].total_cmp(&value_mean[*a]).then(a.cmp(b)));
    // The level taking the cluster of each value order (with k chosen from a range, the
    // first k cluster levels).
    let mut level_of_order = vec![0; k];
    for (li, l) in ladder.levels.iter().enumerate() {
        if let Rule::Cluster { order } = l.rule
            && order < k
        {
            level_of_order[order] = li;
        }
    }
    let mut level_of_cluster = vec![0; k];
    for (order, &c) in by_value.iter().enumerate() {
        level_of_cluster[c] = level_of_order[order];
    }
    if let Some(fixed) = &rule.centres {
        // Fixed centres name their levels.
        for (c, (level, _)) in fixed.iter().enumerate() {
            level_of_cluster[c] = *level;
        }
    }
    let n = clustered.len() as f64;
    let mean: Vec<f64> = original.iter().map(|c| c.iter().sum::<f64>() / n).collect();
    let sd: Vec<f64> = original
        .iter()
        .zip(&mean)
        .map(|(c, m)| (c.iter().map(|v| (v - m) * (v - m)).sum::<f64>() / n).sqrt())
        .collect();
    // A level keeps its meaning from run to run: when the previous run clustered the same
    // features into the same levels, each cluster takes the level of the previous centre it
    // continues, whatever the value order says now.
    let mut moved = vec![None; k];
    if let Some(before) = previous.filter(|b| {
        rule.centres.is_none()
            && b.features == rule.features
            && b.clusters.len() == k
            && b.clusters.iter().all(|c| {
                ladder
                    .level_index(&c.level)
                    .is_some_and(|l| level_of_order.contains(&l))
            })
    }) {
        let then: Vec<Vec<f64>> = before.clusters.iter().map(|c| c.centre.clone()).collect();
        let pairing = if continued.is_some() {
            (0..k).collect()
        } else {
            match_centres(&centre, &then, &sd)
        };
        for c in 0..k {
            let p = pairing[c];
            level_of_cluster[c] = ladder
                .level_index(&before.clusters[p].level)
                .expect("checked above");
            let distance: f64 = centre[c]
                .iter()
                .zip(&then[p])
                .zip(&sd)
                .map(|((x, y), s)| ((x - y) / if *s > 0.0 { *s } else { 1.0 }).powi(2))
                .sum();
            moved[c] = Some(distance.sqrt());
        }
    }
    let mut distances = vec![(f32::NAN, f32::NAN); n_all];
    for (i, (own, next)) in fit.distances(&data).into_iter().enumerate() {
        let row = clustered[i];
        level[row] = level_of_cluster[fit.labels[i] as usize];
        reason[row] = Reason::Cluster;
        distances[row] = (own as f32, next as f32);
    }
    // In level order, as the summary lists them.
    let mut by_level: Vec<usize> = (0..k).collect();
    by_level.sort_by_key(|c| level_of_cluster[*c]);
    let levels = by_level
        .into_iter()
        .map(|c| ClusterLevel {
            level: level_of_cluster[c],
            size: sizes[c],
            centre: centre[c].clone(),
            value_mean: value_mean[c],
            value_total: value_total[c],
            moved: moved[c],
        })
        .collect();
    let graded_count = graded.len();
    let rank = rank_col.map(|col| {
        let mut r = vec![0u32; n_all];
        let order = crate::ladder::rank_order(frame, col);
        for (pos, row) in order
            .into_iter()
            .filter(|r| level[*r] <= unplaced)
            .enumerate()
        {
            r[row] = (pos + 1) as u32;
        }
        r
    });
    Ok(LadderResult {
        level,
        reason,
        rank,
        cutoff: vec![None; ladder.levels.len()],
        graded: graded_count,
        state: Vec::new(),
        clusters: Some(Box::new(Clusters {
            features: rule.features.clone(),
            transforms: rule.transforms.clone(),
            levels,
            mean,
            sd,
            inertia: fit.inertia,
            iterations: fit.iterations,
            distances,
            imputed,
            choices,
        })),
    })
}
