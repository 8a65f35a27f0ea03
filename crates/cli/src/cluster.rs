//! `stratum cluster`: k-means over the columns of a CSV file, for the analyst choosing
//! features, transforms and k before writing a cluster ladder: inertia (the elbow) and
//! silhouette for every k asked for, the clusters' sizes and centres in the file's units,
//! and each row's cluster written out on request.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use stratum_core::cluster::{
    KChoice, KMeans, KMeansOptions, Matrix, SILHOUETTE_SAMPLE, Transform, kmeans,
    silhouette_sampled,
};
use stratum_core::fmt_num;
use stratum_core::frame::round4;

#[derive(clap::Args, Debug)]
pub struct ClusterArgs {
    /// CSV file with a header: an id column and numeric feature columns
    #[arg(long)]
    data: PathBuf,
    /// The column naming each row
    #[arg(long, default_value = "customer_id")]
    id_column: String,
    /// Feature columns, comma-separated (default: every column but the id)
    #[arg(long, value_delimiter = ',')]
    features: Vec<String>,
    /// none, zscore, log1p-zscore, minmax or rank: for every feature, or per feature as
    /// FEATURE=TRANSFORM (comma-separated)
    #[arg(long, value_delimiter = ',', default_value = "zscore")]
    transform: Vec<String>,
    /// The number of clusters, or a range (2..8) to compare by silhouette
    #[arg(long, default_value = "2..8")]
    k: String,
    /// k-means++ starts per k; the lowest inertia is kept
    #[arg(long, default_value_t = 10)]
    restarts: u32,
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Rows the silhouette is measured on (all rows when there are fewer)
    #[arg(long, default_value_t = SILHOUETTE_SAMPLE)]
    sample: usize,
    /// Write each row's cluster and distances (id, cluster, distance, next_distance)
    #[arg(long)]
    out: Option<PathBuf>,
    /// Print how long reading and clustering took (stderr)
    #[arg(long)]
    timings: bool,
}

fn parse_k(text: &str) -> Result<std::ops::RangeInclusive<usize>> {
    let bad = || anyhow::anyhow!("--k `{text}`: give a number (5) or a range (2..8)");
    let (lo, hi) = match text.split_once("..") {
        Some((a, b)) => (
            a.trim().parse().map_err(|_| bad())?,
            b.trim()
                .trim_start_matches('=')
                .parse()
                .map_err(|_| bad())?,
        ),
        None => {
            let k = text.trim().parse().map_err(|_| bad())?;
            (k, k)
        }
    };
    if lo == 0 || hi < lo {
        bail!("--k `{text}`: k starts at 1 and the range must not be empty");
    }
    Ok(lo..=hi)
}

/// The rows of the file: their ids, the feature names and one column per feature.
struct Table {
    ids: Vec<String>,
    names: Vec<String>,
    columns: Vec<Vec<f64>>,
}

/// Reads the id and feature columns; a cell that is not a number is an error naming its
/// line and column.
fn read(path: &Path, id_column: &str, features: &[String]) -> Result<Table> {
    let mut reader =
        csv::Reader::from_path(path).with_context(|| format!("reading {}", path.display()))?;
    let header: Vec<String> = reader
        .headers()
        .with_context(|| format!("{}: no header", path.display()))?
        .iter()
        .map(str::to_string)
        .collect();
    let at = |name: &str| {
        header.iter().position(|h| h == name).ok_or_else(|| {
            anyhow::anyhow!(
                "{}:1: no column `{name}` (columns: {})",
                path.display(),
                header.join(", ")
            )
        })
    };
    let id_at = at(id_column)?;
    let names: Vec<String> = if features.is_empty() {
        header.iter().filter(|h| *h != id_column).cloned().collect()
    } else {
        features.to_vec()
    };
    if names.is_empty() {
        bail!(
            "{}: no feature columns besides `{id_column}`",
            path.display()
        );
    }
    let columns_at = names
        .iter()
        .map(|n| at(n))
        .collect::<Result<Vec<usize>>>()?;
    let mut ids = Vec::new();
    let mut columns = vec![Vec::new(); names.len()];
    let mut record = csv::StringRecord::new();
    while reader
        .read_record(&mut record)
        .with_context(|| format!("reading {}", path.display()))?
    {
        let line = record.position().map_or(0, |p| p.line());
        ids.push(record.get(id_at).unwrap_or_default().to_string());
        for (c, &i) in columns_at.iter().enumerate() {
            let cell = record.get(i).unwrap_or_default();
            let v: f64 = cell.trim().parse().ok().filter(|v: &f64| v.is_finite()).ok_or_else(|| {
                anyhow::anyhow!(
                    "{}:{line}: `{}` = `{cell}` is not a number (k-means needs every feature of every row)",
                    path.display(),
                    names[c]
                )
            })?;
            columns[c].push(v);
        }
    }
    if ids.is_empty() {
        bail!("{}: no rows", path.display());
    }
    Ok(Table {
        ids,
        names,
        columns,
    })
}

fn transforms(given: &[String], names: &[String]) -> Result<Vec<Transform>> {
    let parse = |t: &str| {
        Transform::parse(t).ok_or_else(|| {
            anyhow::anyhow!(
                "--transform `{t}`: use one of {}",
                Transform::ALL.map(Transform::as_str).join(", ")
            )
        })
    };
    let mut out = vec![Transform::ZScore; names.len()];
    for g in given {
        match g.split_once('=') {
            Some((feature, t)) => {
                let Some(i) = names.iter().position(|n| n == feature) else {
                    bail!(
                        "--transform `{g}`: `{feature}` is not among the features ({})",
                        names.join(", ")
                    );
                };
                out[i] = parse(t)?;
            }
            None => out.fill(parse(g)?),
        }
    }
    Ok(out)
}

pub fn run(args: &ClusterArgs) -> Result<ExitCode> {
    let started = Instant::now();
    let k = parse_k(&args.k)?;
    let Table {
        ids,
        names,
        mut columns,
    } = read(&args.data, &args.id_column, &args.features)?;
    let original = columns.clone();
    let transforms = transforms(&args.transform, &names)?;
    for (c, t) in columns.iter_mut().zip(&transforms) {
        t.apply(c);
    }
    let data = Matrix::from_columns(&columns)?;
    let read_at = started.elapsed();
    let options = KMeansOptions {
        restarts: args.restarts,
        seed: args.seed,
        ..KMeansOptions::new(*k.start())
    };
    let single = k.start() == k.end();
    // choose_k's loop, timed apart: k-means is what compares with scikit-learn's KMeans.
    let (mut fit_took, mut score_took) = (Duration::ZERO, Duration::ZERO);
    let mut choices = Vec::new();
    let mut best: Option<(f64, KMeans)> = None;
    for k in k {
        let at = Instant::now();
        let fit = kmeans(
            &data,
            &KMeansOptions {
                k,
                ..options.clone()
            },
        )?;
        fit_took += at.elapsed();
        let at = Instant::now();
        let score = silhouette_sampled(&data, &fit.labels, args.sample, options.seed);
        score_took += at.elapsed();
        choices.push(KChoice {
            k,
            inertia: fit.inertia,
            silhouette: score,
        });
        if best.as_ref().is_none_or(|(s, _)| score > *s) {
            best = Some((score, fit));
        }
    }
    let (_, fit) = best.expect("a non-empty range of k");
    let mut stdout = std::io::stdout().lock();
    writeln!(
        stdout,
        "{} rows, features {} ({}), {} restarts, seed {}",
        ids.len(),
        names.join(", "),
        transforms
            .iter()
            .map(|t| t.as_str())
            .collect::<Vec<_>>()
            .join(", "),
        options.restarts,
        options.seed
    )?;
    writeln!(
        stdout,
        "{:>3}  {:>14}  {:>10}",
        "k", "inertia", "silhouette"
    )?;
    for c in &choices {
        let mark = if c.k == fit.k() && !single {
            "  <- highest silhouette"
        } else {
            ""
        };
        writeln!(
            stdout,
            "{:>3}  {:>14.4}  {:>10.4}{mark}",
            c.k, c.inertia, c.silhouette
        )?;
    }
    let sizes = fit.sizes();
    writeln!(
        stdout,
        "\nk = {}: clusters by size, centres in the file's units",
        fit.k()
    )?;
    let mut order: Vec<usize> = (0..fit.k()).collect();
    order.sort_by_key(|c| (std::cmp::Reverse(sizes[*c]), *c));
    write!(
        stdout,
        "{:>7}  {:>9}  {:>6}",
        "cluster", "customers", "share"
    )?;
    for n in &names {
        write!(stdout, "  {n:>12}")?;
    }
    writeln!(stdout)?;
    for &c in &order {
        write!(
            stdout,
            "{:>7}  {:>9}  {:>5.1}%",
            c,
            sizes[c],
            sizes[c] as f64 * 100.0 / ids.len() as f64
        )?;
        for column in &original {
            let (sum, n) = column
                .iter()
                .zip(&fit.labels)
                .filter(|(_, l)| **l as usize == c)
                .fold((0.0, 0usize), |(s, n), (v, _)| (s + v, n + 1));
            write!(stdout, "  {:>12}", fmt_num(round4(sum / n.max(1) as f64)))?;
        }
        writeln!(stdout)?;
    }
    if let Some(out) = &args.out {
        let mut w =
            csv::Writer::from_path(out).with_context(|| format!("writing {}", out.display()))?;
        w.write_record(["id", "cluster", "distance", "next_distance"])?;
        for (r, (own, next)) in fit.distances(&data).into_iter().enumerate() {
            w.write_record([
                ids[r].as_str(),
                &fit.labels[r].to_string(),
                &format!("{own:.6}"),
                &format!("{next:.6}"),
            ])?;
        }
        w.flush()?;
        writeln!(stdout, "\nwrote {}", out.display())?;
    }
    if args.timings {
        eprintln!(
            "timings: read {:.3}s, k-means {:.3}s, silhouette {:.3}s",
            read_at.as_secs_f64(),
            fit_took.as_secs_f64(),
            score_took.as_secs_f64()
        );
    }
    Ok(ExitCode::SUCCESS)
}
