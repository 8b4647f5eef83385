//! Percentile bootstrap: refit on resampled points to put a confidence interval on every constant.
use rayon::prelude::*;
use serde::Serialize;

/// A fitted constant and its bootstrap interval (NaN bounds when the bootstrap could not run).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, serde::Deserialize)]
pub struct Estimate {
    pub value: f64,
    pub lo: f64,
    pub hi: f64,
}

impl Estimate {
    pub fn point(value: f64) -> Self {
        Estimate { value, lo: f64::NAN, hi: f64::NAN }
    }
    pub fn contains(&self, v: f64) -> bool {
        self.lo <= v && v <= self.hi
    }
}

/// How the intervals are drawn.
#[derive(Debug, Clone, Copy)]
pub struct Bootstrap {
    pub resamples: usize,
    /// Two-sided level, e.g. 0.95.
    pub level: f64,
    pub seed: u64,
}

impl Default for Bootstrap {
    fn default() -> Self {
        Bootstrap { resamples: 200, level: 0.95, seed: 0x001a_dde5 }
    }
}

/// SplitMix64: small, seeded, reproducible.
pub struct SplitMix64(u64);

impl SplitMix64 {
    pub fn new(seed: u64) -> Self {
        SplitMix64(seed)
    }
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    /// Uniform in [0, 1).
    pub fn uniform(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
    /// Standard normal (Box–Muller).
    pub fn normal(&mut self) -> f64 {
        let u = self.uniform().max(f64::MIN_POSITIVE);
        let v = self.uniform();
        (-2.0 * u.ln()).sqrt() * (std::f64::consts::TAU * v).cos()
    }
}

/// NaN for no values (no resamples).
fn percentile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let pos = q * (sorted.len() - 1) as f64;
    let (i, frac) = (pos.floor() as usize, pos.fract());
    if i + 1 < sorted.len() { sorted[i] * (1.0 - frac) + sorted[i + 1] * frac } else { sorted[i] }
}

/// Refits `fit` on `cfg.resamples` resamples (with replacement) of `n` points and returns one
/// estimate per value of `point`. A resample whose fit fails is skipped; with fewer than half
/// succeeding, the intervals are NaN.
pub fn intervals<F>(n: usize, point: &[f64], cfg: &Bootstrap, fit: F) -> Vec<Estimate>
where
    F: Fn(&[usize]) -> Option<Vec<f64>> + Sync,
{
    intervals_and_draws(n, point, cfg, fit).0
}

/// [`intervals`], also returning the successful resamples' constants (for prediction bands).
pub fn intervals_and_draws<F>(n: usize, point: &[f64], cfg: &Bootstrap, fit: F) -> (Vec<Estimate>, Vec<Vec<f64>>)
where
    F: Fn(&[usize]) -> Option<Vec<f64>> + Sync,
{
    let threads = std::thread::available_parallelism().map_or(1, |t| t.get()).clamp(1, 4);
    let per = cfg.resamples.div_ceil(threads);
    // One stream of resamples per share, so the draws do not depend on how rayon schedules them.
    let draws: Vec<Vec<f64>> = (0..threads)
        .into_par_iter()
        .map(|t| {
            let mut rng = SplitMix64::new(cfg.seed ^ (t as u64).wrapping_mul(0xA24B_AED4_963E_E407));
            let mut out = Vec::new();
            for _ in 0..per.min(cfg.resamples.saturating_sub(t * per)) {
                let idx: Vec<usize> = (0..n).map(|_| (rng.next_u64() % n as u64) as usize).collect();
                if let Some(v) = fit(&idx).filter(|v| v.len() == point.len() && v.iter().all(|x| x.is_finite())) {
                    out.push(v);
                }
            }
            out
        })
        .collect::<Vec<_>>()
        .into_iter()
        .flatten()
        .collect();
    let ok = draws.len() * 2 >= cfg.resamples && n > 0;
    let tail = (1.0 - cfg.level) / 2.0;
    let est = point
        .iter()
        .enumerate()
        .map(|(k, &value)| {
            if !ok {
                return Estimate::point(value);
            }
            let mut col: Vec<f64> = draws.iter().map(|d| d[k]).collect();
            col.sort_by(f64::total_cmp);
            Estimate { value, lo: percentile(&col, tail), hi: percentile(&col, 1.0 - tail) }
        })
        .collect();
    (est, if ok { draws } else { Vec::new() })
}

/// The central `level` interval of `values` (NaN when empty).
pub fn central(mut values: Vec<f64>, level: f64) -> (f64, f64) {
    values.retain(|v| v.is_finite());
    if values.is_empty() {
        return (f64::NAN, f64::NAN);
    }
    values.sort_by(f64::total_cmp);
    let tail = (1.0 - level) / 2.0;
    (percentile(&values, tail), percentile(&values, 1.0 - tail))
}
