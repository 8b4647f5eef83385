//! Percentile bootstrap: refit on resamples to put a confidence interval on every constant. A
//! resample redraws points, or for laws of N and a second variable whole model sizes (a cluster
//! bootstrap: a size's points share its trunk and its errors).
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
    /// What a resample redraws, for laws of N and a second variable (L(N,D), L(N,S),
    /// Chinchilla): the model sizes, each with all its points, or single points. Points of one
    /// size share a trunk (its seed, data order and learning rate), so their errors are
    /// correlated; redrawing points treats them as independent and makes intervals too narrow
    /// (α covered in about 60% of synthetic sweeps instead of 95%: `laws/tests/coverage.rs`).
    pub unit: Unit,
}

/// What one draw of a resample takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unit {
    /// A model size and all its points, weighed together ([`resample_weighted`]).
    Sizes,
    /// One point, drawn with replacement ([`resample`]).
    Points,
}

impl Default for Bootstrap {
    fn default() -> Self {
        Bootstrap { resamples: 200, level: 0.95, seed: 0x001a_dde5, unit: Unit::Sizes }
    }
}

impl Bootstrap {
    /// The units a resample draws from: with [`Unit::Sizes`] the indices of each distinct `n`,
    /// otherwise each index alone.
    pub fn units(&self, n: &[f64]) -> Vec<Vec<usize>> {
        match self.unit {
            Unit::Points => singletons(n.len()),
            Unit::Sizes => {
                let mut keys: Vec<f64> = Vec::new();
                let mut units: Vec<Vec<usize>> = Vec::new();
                for (i, v) in n.iter().enumerate() {
                    match keys.iter().position(|k| k == v) {
                        Some(k) => units[k].push(i),
                        None => {
                            keys.push(*v);
                            units.push(vec![i]);
                        }
                    }
                }
                units
            }
        }
    }
}

/// Each of `n` points a unit of its own.
fn singletons(n: usize) -> Vec<Vec<usize>> {
    (0..n).map(|i| vec![i]).collect()
}

/// How a law's bootstrap went, for the report: how many resamples, how many failed to fit, and
/// how many units (sizes or points) each drew.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, serde::Deserialize)]
pub struct Tally {
    pub resamples: usize,
    pub failed: usize,
    pub units: usize,
    /// Whether the units were model sizes (a cluster bootstrap) rather than points.
    pub sizes: bool,
}

impl Resampled {
    pub fn tally(&self, cfg: &Bootstrap) -> Tally {
        Tally { resamples: cfg.resamples, failed: self.failed, units: self.units, sizes: cfg.unit == Unit::Sizes }
    }
}

/// What a bootstrap gives: each constant's interval, the successful resamples' constants, and
/// how many resamples failed to fit (dropped, and counted so that a report can say so).
#[derive(Debug, Clone, Default)]
pub struct Resampled {
    pub estimates: Vec<Estimate>,
    pub draws: Vec<Vec<f64>>,
    pub failed: usize,
    /// The units drawn from (sizes or points).
    pub units: usize,
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
    /// Gamma(shape, 1): Marsaglia and Tsang's method, boosted by U^(1/shape) below shape 1.
    pub fn gamma(&mut self, shape: f64) -> f64 {
        if shape < 1.0 {
            let u = self.uniform().max(f64::MIN_POSITIVE);
            return self.gamma(shape + 1.0) * u.powf(1.0 / shape);
        }
        let d = shape - 1.0 / 3.0;
        let c = 1.0 / (9.0 * d).sqrt();
        loop {
            let x = self.normal();
            let v = (1.0 + c * x).powi(3);
            if v <= 0.0 {
                continue;
            }
            let u = self.uniform().max(f64::MIN_POSITIVE);
            if u.ln() < 0.5 * x * x + d - d * v + d * v.ln() {
                return d * v;
            }
        }
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
    let r = resample(&singletons(n), point, cfg, fit);
    (r.estimates, r.draws)
}

/// Refits `fit` on `cfg.resamples` resamples, each drawing `units.len()` units with replacement
/// and taking all their points. A resample whose fit fails (or gives a non-finite constant) is
/// counted in `failed`; with fewer than half succeeding, the intervals are NaN.
pub fn resample<F>(units: &[Vec<usize>], point: &[f64], cfg: &Bootstrap, fit: F) -> Resampled
where
    F: Fn(&[usize]) -> Option<Vec<f64>> + Sync,
{
    let g = units.len();
    let (draws, failed) = draw(cfg, |rng| {
        let mut idx: Vec<usize> = Vec::new();
        for _ in 0..g {
            idx.extend_from_slice(&units[(rng.next_u64() % g as u64) as usize]);
        }
        fit(&idx)
    });
    summarise(point, draws, failed, g, cfg)
}

/// The Bayesian bootstrap over units (Rubin 1981; the weighted likelihood bootstrap): every
/// resample keeps every point and weighs each unit's points by one draw of a symmetric
/// Dirichlet, scaled to mean 1; `fit` gets a weight per point, equal within a unit. Its
/// concentration is (G − 2)/G for G units, not Rubin's 1: with it a weighted mean's resampled
/// variance is the unbiased s²/G, where Rubin's gives s²·(G − 1)/(G·(G + 1)), too narrow by
/// 9/7 at 8 sizes. Drawing units with replacement instead leaves out a third of the sizes in
/// each resample: a law of N is then fitted to about 5 of 8, its exponents scatter more than
/// the estimate does, and the intervals over-cover (`laws/tests/coverage.rs`).
pub fn resample_weighted<F>(units: &[Vec<usize>], point: &[f64], cfg: &Bootstrap, fit: F) -> Resampled
where
    F: Fn(&[f64]) -> Option<Vec<f64>> + Sync,
{
    let g = units.len();
    let n = units.iter().map(|u| u.len()).sum::<usize>();
    let shape = (g.saturating_sub(2) as f64 / g as f64).max(1.0 / g.max(1) as f64);
    let (draws, failed) = draw(cfg, |rng| {
        let e: Vec<f64> = (0..g).map(|_| rng.gamma(shape)).collect();
        let mean = e.iter().sum::<f64>() / g as f64;
        let mut w = vec![0.0; n];
        for (u, eu) in units.iter().zip(&e) {
            for &i in u {
                w[i] = eu / mean;
            }
        }
        fit(&w)
    });
    summarise(point, draws, failed, g, cfg)
}

/// `cfg.resamples` draws of `one`, split over up to 4 threads with one seeded stream each (so
/// the draws do not depend on how rayon schedules them); the successes and the failure count.
fn draw<F>(cfg: &Bootstrap, one: F) -> (Vec<Vec<f64>>, usize)
where
    F: Fn(&mut SplitMix64) -> Option<Vec<f64>> + Sync,
{
    let threads = std::thread::available_parallelism().map_or(1, |t| t.get()).clamp(1, 4);
    let per = cfg.resamples.div_ceil(threads);
    let shares: Vec<(Vec<Vec<f64>>, usize)> = (0..threads)
        .into_par_iter()
        .map(|t| {
            let mut rng = SplitMix64::new(cfg.seed ^ (t as u64).wrapping_mul(0xA24B_AED4_963E_E407));
            let (mut out, mut failed) = (Vec::new(), 0);
            for _ in 0..per.min(cfg.resamples.saturating_sub(t * per)) {
                match one(&mut rng) {
                    Some(v) if v.iter().all(|x| x.is_finite()) => out.push(v),
                    _ => failed += 1,
                }
            }
            (out, failed)
        })
        .collect();
    let failed = shares.iter().map(|s| s.1).sum();
    (shares.into_iter().flat_map(|s| s.0).collect(), failed)
}

/// Percentile intervals from the draws; NaN bounds with fewer than half the resamples fitted.
fn summarise(point: &[f64], draws: Vec<Vec<f64>>, failed: usize, g: usize, cfg: &Bootstrap) -> Resampled {
    let draws: Vec<Vec<f64>> = draws.into_iter().filter(|v| v.len() == point.len()).collect();
    let failed = failed + cfg.resamples.saturating_sub(failed + draws.len());
    let ok = draws.len() * 2 >= cfg.resamples && g > 0;
    let tail = (1.0 - cfg.level) / 2.0;
    let estimates = point
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
    Resampled { estimates, draws: if ok { draws } else { Vec::new() }, failed, units: g }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gamma_draws_have_their_mean_and_variance() {
        let mut rng = SplitMix64::new(3);
        for shape in [0.5, 0.75, 2.0] {
            let x: Vec<f64> = (0..200_000).map(|_| rng.gamma(shape)).collect();
            let mean = x.iter().sum::<f64>() / x.len() as f64;
            let var = x.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / x.len() as f64;
            assert!((mean / shape - 1.0).abs() < 0.02, "shape {shape}: mean {mean}");
            assert!((var / shape - 1.0).abs() < 0.04, "shape {shape}: variance {var}");
        }
    }

    #[test]
    fn the_weighted_bootstrap_of_a_mean_has_the_unbiased_variance() {
        // 8 units of one point each: the resampled means' variance is s²/8 (s² unbiased).
        let x = [1.0, 2.0, 4.0, 4.5, 6.0, 7.0, 9.0, 12.0];
        let m = x.iter().sum::<f64>() / 8.0;
        let s2 = x.iter().map(|v| (v - m).powi(2)).sum::<f64>() / 7.0;
        let units: Vec<Vec<usize>> = (0..8).map(|i| vec![i]).collect();
        let cfg = Bootstrap { resamples: 40_000, ..Bootstrap::default() };
        let r = resample_weighted(&units, &[m], &cfg, |w| {
            Some(vec![x.iter().zip(w).map(|(a, b)| a * b).sum::<f64>() / 8.0])
        });
        let means: Vec<f64> = r.draws.iter().map(|d| d[0]).collect();
        let mm = means.iter().sum::<f64>() / means.len() as f64;
        let var = means.iter().map(|v| (v - mm).powi(2)).sum::<f64>() / means.len() as f64;
        assert!((var / (s2 / 8.0) - 1.0).abs() < 0.05, "{var} vs {}", s2 / 8.0);
        assert_eq!((r.failed, r.units), (0, 8));
    }
}
