// Times linfa-clustering's KMeans on the matrix bench/cluster.py writes (z-scored here, not
// timed), k = 5, 10 runs, k-means++: the measurement behind docs/ARCHITECTURE.md's choice.
use linfa::prelude::*;
use linfa_clustering::{KMeans, KMeansInit};
use ndarray::Array2;
use rand_xoshiro::Xoshiro256Plus;
use rand_xoshiro::rand_core::SeedableRng;
use std::time::Instant;

fn main() {
    let path = std::env::args().nth(1).expect("matrix.csv");
    let mut r = csv::Reader::from_path(path).unwrap();
    let mut rows: Vec<f64> = Vec::new();
    let mut n = 0;
    for rec in r.records() {
        let rec = rec.unwrap();
        for i in 1..rec.len() {
            rows.push(rec[i].parse().unwrap());
        }
        n += 1;
    }
    let d = rows.len() / n;
    let mut x = Array2::from_shape_vec((n, d), rows).unwrap();
    for mut col in x.columns_mut() {
        let mean = col.mean().unwrap();
        let sd = col.mapv(|v| (v - mean) * (v - mean)).mean().unwrap().sqrt();
        col.mapv_inplace(|v| (v - mean) / sd);
    }
    let data = DatasetBase::from(x);
    for round in 0..3 {
        let rng = Xoshiro256Plus::seed_from_u64(round);
        let started = Instant::now();
        let model = KMeans::params_with_rng(5, rng)
            .n_runs(10)
            .init_method(KMeansInit::KMeansPlusPlus)
            .tolerance(1e-2) // linfa: Euclidean shift; sklearn: squared shift <= 1e-4 x mean variance (1 here)
            .max_n_iterations(300)
            .fit(&data)
            .unwrap();
        let took = started.elapsed().as_secs_f64();
        println!("round {round}: linfa k-means {took:.2}s, inertia {:.2}", model.inertia());
    }
}
