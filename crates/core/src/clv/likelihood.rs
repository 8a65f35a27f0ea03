//! Maximum-likelihood fitting of the lifetime models.
//!
//! A fit evaluates its likelihood over every customer dozens of times, so each model's
//! likelihood is arranged to be cheap: the gamma-function terms depend on a customer only
//! through its whole-number frequency x, so they are computed once per frequency (weighted
//! by how many customers have it), leaving a few logarithms per customer; and each
//! evaluation also gives the exact gradient, so L-BFGS (argmin) needs a few dozen of them
//! where Nelder-Mead needed hundreds. Parameters are optimised as bounded logarithms (see
//! [`fit`]), so they stay positive and finite. Nelder-Mead stays as the fallback for a
//! likelihood L-BFGS cannot climb.

use argmin::core::{CostFunction, Executor, Gradient, State, TerminationReason, TerminationStatus};
use argmin::solver::linesearch::MoreThuenteLineSearch;
use argmin::solver::neldermead::NelderMead;
use argmin::solver::quasinewton::LBFGS;
use statrs::function::gamma::digamma;
use std::sync::atomic::{AtomicU64, Ordering};

use super::{ClvError, CustomerSummary, FitReport, lgamma};

/// A model's log-likelihood over a customer base, as a function of the logarithms of its
/// parameters.
pub(super) trait LogLikelihood: Sync {
    const MODEL: &'static str;

    /// How many customers it sums over (the cost argmin sees is the mean, so tolerances do
    /// not depend on the size of the customer base).
    fn customers(&self) -> usize;

    /// The log-likelihood and its gradient with respect to the logged parameters.
    fn value_and_gradient(&self, logs: &[f64]) -> (f64, Vec<f64>);

    /// The log-likelihood at the parameters themselves (not logged).
    fn value(&self, params: &[f64]) -> f64 {
        let logs: Vec<f64> = params.iter().map(|p| p.ln()).collect();
        self.value_and_gradient(&logs).0
    }
}

/// The customers as BG/NBD sees them.
pub(super) struct BgNbdSample {
    /// (x, t_x, T) per customer.
    rows: Vec<(u32, f64, f64)>,
    /// How many customers have each frequency, indexed by frequency.
    by_frequency: Vec<f64>,
}

impl BgNbdSample {
    pub(super) fn new(customers: &[CustomerSummary]) -> BgNbdSample {
        let mut rows: Vec<(u32, f64, f64)> = customers
            .iter()
            .map(|c| (c.frequency, c.recency, c.age))
            .collect();
        // In a canonical order, so the sums (and the fit) do not depend on the order the
        // customers came in (a parallel GROUP BY returns them in any order).
        rows.sort_unstable_by(|a, b| {
            (a.0.cmp(&b.0))
                .then(a.1.total_cmp(&b.1))
                .then(a.2.total_cmp(&b.2))
        });
        let max = rows.iter().map(|r| r.0).max().unwrap_or(0) as usize;
        let mut by_frequency = vec![0.0; max + 1];
        for &(x, _, _) in &rows {
            by_frequency[x as usize] += 1.0;
        }
        BgNbdSample { rows, by_frequency }
    }

    /// The customers' mean age T (in the canonical order: the same to the last bit however
    /// they came in), the start for the scale α.
    pub(super) fn mean_age(&self) -> f64 {
        self.rows.iter().map(|r| r.2).sum::<f64>() / self.rows.len() as f64
    }
}

impl LogLikelihood for BgNbdSample {
    const MODEL: &'static str = "BG/NBD";

    fn customers(&self) -> usize {
        self.rows.len()
    }

    /// The sum of [`super::BgNbd::log_likelihood`] over the customers, with
    /// Γ(r+x)/Γ(r) = Π_{k<x} (r+k) and its kin as running sums of logarithms (whose
    /// derivatives are running sums of reciprocals).
    fn value_and_gradient(&self, logs: &[f64]) -> (f64, Vec<f64>) {
        let [r, alpha, a, b] = [0, 1, 2, 3].map(|i| logs[i].exp());
        let (ln_alpha, ln_a) = (logs[1], logs[2]);
        // Per frequency: r ln α + ln Γ(r+x)/Γ(r) + ln Γ(b+x)/Γ(b) − ln Γ(a+b+x)/Γ(a+b),
        // weighted by its customer count; and ln(b+x−1), 1/(b+x−1) for the customers.
        let mut value = 0.0;
        let mut grad = [0.0; 4];
        let (mut log_r, mut log_b, mut log_ab) = (0.0, 0.0, 0.0);
        let (mut inv_r, mut inv_b, mut inv_ab) = (0.0, 0.0, 0.0);
        let mut ln_b_before = Vec::with_capacity(self.by_frequency.len());
        for (x, &n) in self.by_frequency.iter().enumerate() {
            let x = x as f64;
            if n > 0.0 {
                value += n * (r * ln_alpha + log_r + log_b - log_ab);
                grad[0] += n * (ln_alpha + inv_r);
                grad[1] += n * (r / alpha);
                grad[2] -= n * inv_ab;
                grad[3] += n * (inv_b - inv_ab);
            }
            ln_b_before.push(((b + x - 1.0).ln(), 1.0 / (b + x - 1.0)));
            log_r += (r + x).ln();
            inv_r += 1.0 / (r + x);
            log_b += (b + x).ln();
            inv_b += 1.0 / (b + x);
            log_ab += (a + b + x).ln();
            inv_ab += 1.0 / (a + b + x);
        }
        let per_customer = chunked_sum(&self.rows, |&(x, t_x, t)| {
            let rx = r + f64::from(x);
            let l3 = (alpha + t).ln();
            let a3 = -rx * l3;
            if x == 0 {
                return [a3, -l3, -rx / (alpha + t), 0.0, 0.0];
            }
            // ln(e^a3 + e^a4), and the shares w3, w4 of the two terms in it.
            let (ln_b1, inv_b1) = ln_b_before[x as usize];
            let l4 = (alpha + t_x).ln();
            let a4 = ln_a - ln_b1 - rx * l4;
            let e = -(a3 - a4).abs();
            let e = e.exp();
            let lse = a3.max(a4) + e.ln_1p();
            let minor = e / (1.0 + e);
            let (w3, w4) = if a4 > a3 {
                (minor, 1.0 - minor)
            } else {
                (1.0 - minor, minor)
            };
            [
                lse,
                -(w3 * l3 + w4 * l4),
                -rx * (w3 / (alpha + t) + w4 / (alpha + t_x)),
                w4 / a,
                -w4 * inv_b1,
            ]
        });
        value += per_customer[0];
        // With respect to the logarithms: ∂/∂ln θ = θ ∂/∂θ.
        let grad = (0..4)
            .map(|i| (grad[i] + per_customer[i + 1]) * [r, alpha, a, b][i])
            .collect();
        (value, grad)
    }
}

/// The repeat buyers as Gamma-Gamma sees them.
pub(super) struct GammaGammaSample {
    /// (x, ln m, x ln x, m x) per repeat buyer with positive mean spend m.
    rows: Vec<(f64, f64, f64, f64)>,
    /// (x, how many buyers have it).
    by_frequency: Vec<(f64, f64)>,
}

impl GammaGammaSample {
    /// `None` when nobody has repeat purchases with positive spend.
    pub(super) fn new(customers: &[CustomerSummary]) -> Option<GammaGammaSample> {
        let buyers: Vec<&CustomerSummary> = customers
            .iter()
            .filter(|c| c.frequency > 0 && c.monetary > 0.0)
            .collect();
        if buyers.is_empty() {
            return None;
        }
        let mut counts = std::collections::BTreeMap::<u32, f64>::new();
        for c in &buyers {
            *counts.entry(c.frequency).or_default() += 1.0;
        }
        let mut rows: Vec<(f64, f64, f64, f64)> = buyers
            .iter()
            .map(|c| {
                let x = f64::from(c.frequency);
                (x, c.monetary.ln(), x * x.ln(), c.monetary * x)
            })
            .collect();
        // Canonical order, as for BG/NBD.
        rows.sort_unstable_by(|a, b| a.0.total_cmp(&b.0).then(a.1.total_cmp(&b.1)));
        let by_frequency = counts.into_iter().map(|(x, n)| (f64::from(x), n)).collect();
        Some(GammaGammaSample { rows, by_frequency })
    }

    /// The buyers' mean spend per purchase: the start for the scale ν.
    pub(super) fn mean_spend(&self) -> f64 {
        self.rows.iter().map(|&(x, .., mx)| mx / x).sum::<f64>() / self.rows.len() as f64
    }
}

impl LogLikelihood for GammaGammaSample {
    const MODEL: &'static str = "Gamma-Gamma";

    fn customers(&self) -> usize {
        self.rows.len()
    }

    /// The sum of [`super::GammaGamma::log_likelihood`] over the repeat buyers.
    fn value_and_gradient(&self, logs: &[f64]) -> (f64, Vec<f64>) {
        let [p, q, v] = [0, 1, 2].map(|i| logs[i].exp());
        let n = self.rows.len() as f64;
        // Per frequency: ln Γ(px+q) − ln Γ(px); per buyer: −ln Γ(q) + q ln ν.
        let mut value = n * (q * logs[2] - lgamma(q));
        let mut grad = [0.0, n * (logs[2] - digamma(q)), n * q / v];
        for &(x, count) in &self.by_frequency {
            let px = p * x;
            value += count * (lgamma(px + q) - lgamma(px));
            let d = digamma(px + q);
            grad[0] += count * x * (d - digamma(px));
            grad[1] += count * d;
        }
        let own = chunked_sum(&self.rows, |&(x, ln_m, x_ln_x, mx)| {
            let px = p * x;
            let l = (v + mx).ln();
            [
                (px - 1.0) * ln_m + p * x_ln_x - (px + q) * l,
                x * (ln_m + x.ln() - l),
                -l,
                -(px + q) / (v + mx),
            ]
        });
        value += own[0];
        let grad = (0..3)
            .map(|i| (grad[i] + own[i + 1]) * [p, q, v][i])
            .collect();
        (value, grad)
    }
}

/// Fits a model from `start` (logged parameters): L-BFGS on the exact gradient, and
/// Nelder-Mead from the same start should L-BFGS fail. Returns the parameters (not logged)
/// with the fit's report, standard errors included.
///
/// The optimisers search over coordinates u with ln θ = B·tanh(u/B), so every parameter
/// stays within e^±B whatever the data: where the likelihood keeps rising towards 0 or
/// infinity (BG/NBD's a and b both growing when dropout looks like a constant rate), the fit
/// settles near the bound instead of overflowing. Inside the usual range the map is nearly
/// the identity.
pub(super) fn fit<L: LogLikelihood>(
    likelihood: &L,
    start: &[f64],
) -> Result<(Vec<f64>, FitReport), ClvError> {
    let likelihood = &Counted {
        likelihood,
        passes: AtomicU64::new(0),
    };
    let start: Vec<f64> = start.iter().map(|&l| search_coordinate(l)).collect();
    let (found, iterations, method) = match with_gradient(likelihood, &start) {
        Ok((found, iterations)) => (found, iterations, "L-BFGS".to_string()),
        Err(failed) => {
            let (found, iterations) = without_gradient(likelihood, &start)?;
            (found, iterations, format!("Nelder-Mead ({failed})"))
        }
    };
    let logs: Vec<f64> = found.iter().map(|&u| bounded_log(u)).collect();
    let params: Vec<f64> = logs.iter().map(|p| p.exp()).collect();
    let log_likelihood = likelihood.value(&params);
    if !log_likelihood.is_finite() || params.iter().any(|p| !p.is_finite()) {
        return Err(ClvError::NotConverged {
            model: L::MODEL,
            iterations,
            reason: "the likelihood is not finite".into(),
        });
    }
    let standard_errors = standard_errors(likelihood, &logs)?;
    Ok((
        params,
        FitReport {
            log_likelihood,
            iterations,
            method,
            passes: likelihood.passes.load(Ordering::Relaxed),
            standard_errors,
        },
    ))
}

/// A likelihood that counts its passes over the data.
struct Counted<'a, L> {
    likelihood: &'a L,
    passes: AtomicU64,
}

impl<L: LogLikelihood> LogLikelihood for Counted<'_, L> {
    const MODEL: &'static str = L::MODEL;

    fn customers(&self) -> usize {
        self.likelihood.customers()
    }

    fn value_and_gradient(&self, logs: &[f64]) -> (f64, Vec<f64>) {
        self.passes.fetch_add(1, Ordering::Relaxed);
        self.likelihood.value_and_gradient(logs)
    }
}

/// B above: parameters within e^±30, about 1e-13 to 1e13.
const LOG_BOUND: f64 = 30.0;

fn bounded_log(u: f64) -> f64 {
    LOG_BOUND * (u / LOG_BOUND).tanh()
}

/// The inverse of [`bounded_log`] (a start inside the bounds).
fn search_coordinate(log: f64) -> f64 {
    let t = (log / LOG_BOUND).clamp(-0.999_999, 0.999_999);
    LOG_BOUND * t.atanh()
}

const MAX_ITERATIONS: u64 = 5_000;

/// When L-BFGS stops: the gradient norm (of the mean log-likelihood over the logged
/// parameters) falls below `GRADIENT_TOLERANCE`, or an iteration improves the mean by less
/// than `COST_TOLERANCE` of itself. On a large customer base the second comes first: near
/// the optimum the mean changes by less than its rounding, and a line search asked for more
/// only bisects noise (on a million customers it took 500 passes over the data instead of
/// 30). A relative change of 1e-12 is a total log-likelihood change far below anything a
/// likelihood-ratio test or a prediction could notice.
const GRADIENT_TOLERANCE: f64 = 1e-9;
const COST_TOLERANCE: f64 = 1e-12;

/// The gradient norm below which a stopped run counts as converged: 1e-5 is SciPy's
/// default for BFGS, which lifetimes uses; a gradient that small moves the parameters by a
/// small fraction of their standard errors. Above it, L-BFGS is restarted from where it
/// stopped, up to `RESTARTS` times.
const GRADIENT_ACCEPTED: f64 = 1e-5;
const RESTARTS: usize = 3;

/// The mean negative log-likelihood as argmin sees it. Cost and gradient come from one
/// pass; the pass is kept for the call that asks for the other at the same point.
struct Problem<'a, L> {
    likelihood: &'a L,
    last: std::sync::Mutex<Option<Evaluation>>,
}

/// One evaluation: where, the cost there and its gradient.
struct Evaluation {
    at: Vec<f64>,
    cost: f64,
    gradient: Vec<f64>,
}

impl<L: LogLikelihood> Problem<'_, L> {
    /// The cost and its gradient at search coordinates `at`.
    fn evaluate(&self, at: &[f64]) -> (f64, Vec<f64>) {
        let mut last = self.last.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(done) = last.as_ref().filter(|done| done.at == at) {
            return (done.cost, done.gradient.clone());
        }
        let n = self.likelihood.customers() as f64;
        let logs: Vec<f64> = at.iter().map(|&u| bounded_log(u)).collect();
        let (value, grad) = self.likelihood.value_and_gradient(&logs);
        // d ln θ / du = 1 − tanh²(u/B).
        let grad: Vec<f64> = grad
            .iter()
            .zip(at)
            .map(|(g, u)| -g / n * (1.0 - (u / LOG_BOUND).tanh().powi(2)))
            .collect();
        // Outside where the likelihood is defined the search is sent back.
        let (cost, grad) = if value.is_finite() && grad.iter().all(|g| g.is_finite()) {
            (-value / n, grad)
        } else {
            (f64::INFINITY, vec![f64::NAN; at.len()])
        };
        *last = Some(Evaluation {
            at: at.to_vec(),
            cost,
            gradient: grad.clone(),
        });
        (cost, grad)
    }
}

impl<L: LogLikelihood> CostFunction for Problem<'_, L> {
    type Param = Vec<f64>;
    type Output = f64;

    fn cost(&self, at: &Self::Param) -> Result<f64, argmin::core::Error> {
        Ok(self.evaluate(at).0)
    }
}

impl<L: LogLikelihood> Gradient for Problem<'_, L> {
    type Param = Vec<f64>;
    type Gradient = Vec<f64>;

    fn gradient(&self, at: &Self::Param) -> Result<Vec<f64>, argmin::core::Error> {
        Ok(self.evaluate(at).1)
    }
}

impl<'a, L> Problem<'a, L> {
    fn new(likelihood: &'a L) -> Problem<'a, L> {
        Problem {
            likelihood,
            last: std::sync::Mutex::new(None),
        }
    }
}

fn not_converged<L: LogLikelihood>(iterations: u64, reason: String) -> ClvError {
    ClvError::NotConverged {
        model: L::MODEL,
        iterations,
        reason,
    }
}

/// L-BFGS, restarted from where it stopped while the gradient is not flat: the search
/// coordinates it reached and its iterations.
fn with_gradient<L: LogLikelihood>(
    likelihood: &L,
    start: &[f64],
) -> Result<(Vec<f64>, u64), ClvError> {
    let mut at = start.to_vec();
    let mut iterations = 0;
    let mut why = String::new();
    for _ in 0..=RESTARTS {
        let problem = Problem::new(likelihood);
        let (cost, _) = problem.evaluate(&at);
        if !cost.is_finite() {
            return Err(not_converged::<L>(
                iterations,
                "the likelihood is not finite".into(),
            ));
        }
        let solver = LBFGS::new(MoreThuenteLineSearch::new(), 7)
            .with_tolerance_grad(GRADIENT_TOLERANCE)
            .and_then(|s| s.with_tolerance_cost(COST_TOLERANCE * cost.abs().max(1.0)))
            .map_err(|e| not_converged::<L>(iterations, e.to_string()))?;
        let result = Executor::new(problem, solver)
            .configure(|state| state.param(at.clone()).max_iters(MAX_ITERATIONS))
            .run()
            .map_err(|e| not_converged::<L>(iterations, e.to_string()))?;
        let state = result.state();
        iterations += state.get_iter();
        at = state
            .get_best_param()
            .cloned()
            .ok_or_else(|| not_converged::<L>(iterations, "no parameters".into()))?;
        // The run's own problem, whose last pass is usually at the best point.
        let (cost, grad) = match result.problem.problem.as_ref() {
            Some(run) => run.evaluate(&at),
            None => Problem::new(likelihood).evaluate(&at),
        };
        let gradient_norm = grad.iter().map(|g| g * g).sum::<f64>().sqrt();
        if cost.is_finite() && gradient_norm < GRADIENT_ACCEPTED {
            return Ok((at, iterations));
        }
        why = format!(
            "{:?}, gradient norm {gradient_norm:e}",
            state.get_termination_status()
        );
    }
    Err(not_converged::<L>(iterations, why))
}

/// Nelder-Mead on the cost alone, from a simplex around `start` (search coordinates).
fn without_gradient<L: LogLikelihood>(
    likelihood: &L,
    start: &[f64],
) -> Result<(Vec<f64>, u64), ClvError> {
    let mut simplex = vec![start.to_vec()];
    for i in 0..start.len() {
        let mut v = start.to_vec();
        v[i] += 0.5;
        simplex.push(v);
    }
    let solver = NelderMead::new(simplex)
        .with_sd_tolerance(1e-12)
        .map_err(|e| not_converged::<L>(0, e.to_string()))?;
    let result = Executor::new(Problem::new(likelihood), solver)
        .configure(|state| state.max_iters(MAX_ITERATIONS))
        .run()
        .map_err(|e| not_converged::<L>(0, e.to_string()))?;
    let state = result.state();
    let iterations = state.get_iter();
    match state.get_termination_status() {
        TerminationStatus::Terminated(TerminationReason::SolverConverged) => {}
        other => return Err(not_converged::<L>(iterations, format!("{other:?}"))),
    }
    let best = state
        .get_best_param()
        .cloned()
        .ok_or_else(|| not_converged::<L>(iterations, "no parameters".into()))?;
    Ok((best, iterations))
}

/// Rows per chunk of [`chunked_sum`]: fixed, so the sum (and so the fit) is the same to the
/// last bit whatever the number of cores.
const CHUNK: usize = 32_768;

/// Σ f(row) for each of the N values f returns, chunk by chunk on every core for large
/// inputs, the chunks' sums then added in order.
fn chunked_sum<T: Sync, const N: usize>(rows: &[T], f: impl Fn(&T) -> [f64; N] + Sync) -> [f64; N] {
    let add = |mut total: [f64; N], part: [f64; N]| {
        for (t, p) in total.iter_mut().zip(part) {
            *t += p;
        }
        total
    };
    let sum_chunk = |chunk: &[T]| chunk.iter().map(&f).fold([0.0; N], add);
    let chunks: Vec<&[T]> = rows.chunks(CHUNK).collect();
    let threads = std::thread::available_parallelism()
        .map_or(1, usize::from)
        .min(chunks.len());
    if threads <= 1 {
        return chunks.iter().map(|c| sum_chunk(c)).fold([0.0; N], add);
    }
    let mut partial = vec![[0.0; N]; chunks.len()];
    let per_thread = chunks.len().div_ceil(threads);
    std::thread::scope(|scope| {
        for (slots, work) in partial
            .chunks_mut(per_thread)
            .zip(chunks.chunks(per_thread))
        {
            let sum_chunk = &sum_chunk;
            scope.spawn(move || {
                for (slot, chunk) in slots.iter_mut().zip(work) {
                    *slot = sum_chunk(chunk);
                }
            });
        }
    });
    partial.into_iter().fold([0.0; N], add)
}

/// Standard errors of the parameters at the optimum `logs`: square roots of the diagonal
/// of the inverse of the observed information, the negated Hessian of the log-likelihood,
/// here by central differences of the exact gradient in the logged parameters (two passes
/// per parameter). At the optimum, where the gradient vanishes, the Hessian in the
/// parameters themselves is J·H·J with J = diag(1/θ), so each standard error is θ times
/// that of ln θ.
fn standard_errors<L: LogLikelihood>(likelihood: &L, logs: &[f64]) -> Result<Vec<f64>, ClvError> {
    let n = logs.len();
    let h = 1e-5;
    let mut hessian = vec![vec![0.0; n]; n];
    for j in 0..n {
        let (mut up, mut down) = (logs.to_vec(), logs.to_vec());
        up[j] += h;
        down[j] -= h;
        let (g_up, g_down) = (
            likelihood.value_and_gradient(&up).1,
            likelihood.value_and_gradient(&down).1,
        );
        for i in 0..n {
            hessian[i][j] = (g_up[i] - g_down[i]) / (2.0 * h);
        }
    }
    // Symmetrised, and negated: the observed information.
    let info: Vec<Vec<f64>> = (0..n)
        .map(|i| {
            (0..n)
                .map(|j| -(hessian[i][j] + hessian[j][i]) / 2.0)
                .collect()
        })
        .collect();
    let covariance = invert(info).ok_or_else(|| {
        ClvError::Numeric("the information matrix is singular: standard errors undefined".into())
    })?;
    (0..n)
        .map(|i| {
            let var = covariance[i][i];
            if var.is_finite() && var > 0.0 {
                Ok(logs[i].exp() * var.sqrt())
            } else {
                Err(ClvError::Numeric(format!(
                    "parameter {i} has no positive variance at the optimum ({var})"
                )))
            }
        })
        .collect()
}

/// Gauss-Jordan inverse with partial pivoting of a small square matrix.
fn invert(mut m: Vec<Vec<f64>>) -> Option<Vec<Vec<f64>>> {
    let n = m.len();
    let mut inv: Vec<Vec<f64>> = (0..n)
        .map(|i| (0..n).map(|j| if i == j { 1.0 } else { 0.0 }).collect())
        .collect();
    for col in 0..n {
        let pivot = (col..n).max_by(|&a, &b| m[a][col].abs().total_cmp(&m[b][col].abs()))?;
        if m[pivot][col].abs() < 1e-300 {
            return None;
        }
        m.swap(col, pivot);
        inv.swap(col, pivot);
        let d = m[col][col];
        for k in 0..n {
            m[col][k] /= d;
            inv[col][k] /= d;
        }
        for row in 0..n {
            if row != col {
                let factor = m[row][col];
                for k in 0..n {
                    m[row][k] -= factor * m[col][k];
                    inv[row][k] -= factor * inv[col][k];
                }
            }
        }
    }
    Some(inv)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clv::{BgNbd, GammaGamma};

    fn customer(frequency: u32, recency: f64, age: f64, monetary: f64) -> CustomerSummary {
        CustomerSummary {
            customer_id: String::new(),
            frequency,
            recency,
            age,
            monetary,
        }
    }

    /// The grouped value equals the per-customer formula, and the gradient central
    /// differences of it.
    fn check<L: LogLikelihood>(sample: &L, logs: &[f64], direct: impl Fn(&[f64]) -> f64) {
        let (value, grad) = sample.value_and_gradient(logs);
        assert!(
            (value - direct(logs)).abs() < 1e-10 * value.abs(),
            "{value}"
        );
        for i in 0..logs.len() {
            let h = 1e-6;
            let (mut up, mut down) = (logs.to_vec(), logs.to_vec());
            up[i] += h;
            down[i] -= h;
            let numeric = (direct(&up) - direct(&down)) / (2.0 * h);
            assert!(
                (grad[i] - numeric).abs() < 1e-6 * numeric.abs().max(1.0),
                "parameter {i}: {} vs {numeric}",
                grad[i]
            );
        }
    }

    #[test]
    fn grouped_likelihoods_and_gradients_match_the_per_customer_formulas() {
        let customers = [
            customer(0, 0.0, 30.0, 0.0),
            customer(0, 0.0, 3.5, 0.0),
            customer(1, 2.0, 30.0, 12.5),
            customer(3, 28.5, 30.0, 40.0),
            customer(3, 4.0, 12.0, 7.0),
            customer(7, 11.0, 39.0, 0.0),
            customer(40, 38.0, 39.0, 130.0),
        ];
        let logs = [0.243f64.ln(), 4.414f64.ln(), 0.793f64.ln(), 2.426f64.ln()];
        check(&BgNbdSample::new(&customers), &logs, |p| {
            let m = BgNbd {
                r: p[0].exp(),
                alpha: p[1].exp(),
                a: p[2].exp(),
                b: p[3].exp(),
            };
            customers
                .iter()
                .map(|c| m.log_likelihood(f64::from(c.frequency), c.recency, c.age))
                .sum()
        });
        let logs = [6.25f64.ln(), 3.74f64.ln(), 15.44f64.ln()];
        let sample = GammaGammaSample::new(&customers).unwrap();
        assert_eq!(sample.customers(), 4, "only repeat buyers with spend");
        check(&sample, &logs, |p| {
            let m = GammaGamma {
                p: p[0].exp(),
                q: p[1].exp(),
                v: p[2].exp(),
            };
            customers
                .iter()
                .filter(|c| c.frequency > 0 && c.monetary > 0.0)
                .map(|c| m.log_likelihood(f64::from(c.frequency), c.monetary))
                .sum()
        });
    }

    #[test]
    fn nelder_mead_fallback_reaches_the_same_optimum() {
        // The CDNOW sample (2,357 customers), which the papers fit.
        let log: Vec<(String, chrono::NaiveDate, f64)> =
            include_str!("../../tests/fixtures/cdnow/CDNOW_sample.txt")
                .lines()
                .filter(|l| !l.trim().is_empty())
                .map(|l| {
                    let f: Vec<&str> = l.split_whitespace().collect();
                    let date = chrono::NaiveDate::parse_from_str(f[2], "%Y%m%d").unwrap();
                    (f[1].to_string(), date, f[4].parse().unwrap())
                })
                .collect();
        let as_of = chrono::NaiveDate::from_ymd_opt(1997, 9, 30).unwrap();
        let customers = crate::clv::summarise(
            log.iter().map(|(c, d, a)| (c.as_str(), *d, *a)),
            as_of,
            crate::clv::TimeUnit::Week,
        );
        let bgnbd = BgNbdSample::new(&customers);
        let start = [0.0, 3.0, 0.0, 0.0];
        assert_eq!(bgnbd.customers(), 2357);
        let spend = GammaGammaSample::new(&customers).unwrap();
        let spend_start = [0.0, 0.0, spend.mean_spend().ln()];
        let agree = |a: &[f64], b: &[f64]| {
            a.iter()
                .zip(b)
                .map(|(&x, &y)| (bounded_log(x).exp(), bounded_log(y).exp()))
                .all(|(x, y)| (x - y).abs() <= 1e-4 * x)
        };
        let (fast, iterations) = with_gradient(&bgnbd, &start).unwrap();
        let (slow, slow_iterations) = without_gradient(&bgnbd, &start).unwrap();
        assert!(agree(&fast, &slow), "{fast:?} vs {slow:?}");
        assert!(
            iterations < slow_iterations,
            "{iterations} vs {slow_iterations}"
        );
        let (fast, _) = with_gradient(&spend, &spend_start).unwrap();
        let (slow, _) = without_gradient(&spend, &spend_start).unwrap();
        assert!(agree(&fast, &slow), "{fast:?} vs {slow:?}");
    }

    #[test]
    fn a_likelihood_rising_towards_infinity_stops_at_the_bounds() {
        // Repeat purchases spread evenly whatever the frequency: nothing tells dropout from a
        // constant rate, and unbounded a and b grow past 1e13 (e^30.4 and e^32.6 before).
        let customers: Vec<CustomerSummary> = (0..600u32)
            .map(|i| {
                let age = 10.0 + f64::from(i % 40);
                let x = if i % 3 == 0 { 0 } else { (i * 7) % 13 };
                let recency = if x == 0 {
                    0.0
                } else {
                    age * f64::from((i * 31) % 100) / 100.0
                };
                customer(x, recency, age, 0.0)
            })
            .collect();
        let (params, report) = fit(&BgNbdSample::new(&customers), &[0.0, 3.0, 0.0, 0.0]).unwrap();
        assert!(report.log_likelihood.is_finite());
        for p in &params {
            assert!(p.is_finite() && p.ln().abs() < LOG_BOUND, "{params:?}");
        }
        // Both dropout parameters went far up: the fit says "a constant dropout rate".
        assert!(params[2] > 1e6 && params[3] > 1e6, "{params:?}");
    }

    #[test]
    fn the_fit_does_not_depend_on_the_customers_order() {
        let mut customers: Vec<CustomerSummary> = (0..3000u32)
            .map(|i| {
                let age = 20.0 + f64::from(i % 50);
                let x = (i * 7) % 9;
                let recency = if x == 0 {
                    0.0
                } else {
                    age * f64::from((i * 37) % 100) / 100.0
                };
                customer(x, recency, age, 5.0 + f64::from((i * 13) % 40))
            })
            .collect();
        let forward = BgNbd::fit(&customers).unwrap();
        let spend_forward = GammaGamma::fit(&customers).unwrap();
        customers.reverse();
        customers.rotate_left(1234);
        let backward = BgNbd::fit(&customers).unwrap();
        let spend_backward = GammaGamma::fit(&customers).unwrap();
        assert_eq!(forward, backward, "to the last bit");
        assert_eq!(spend_forward, spend_backward, "to the last bit");
    }
}
