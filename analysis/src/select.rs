//! Which runs and points feed which law. L(N), L(D), L(N,D) and Chinchilla compare runs that
//! differ in one or two variables, so they take the runs at the batch size most sizes share; a
//! data-limited run (one that repeats its data) feeds neither the compute frontier nor L(N,S).
use crate::inputs::{CurvePoint, RunCurve, RunPoint};
pub use crate::inputs::{distinct, distinct_values};

/// The batch size shared by the most distinct model sizes (ties: the smallest B); None when no
/// run has one.
pub fn base_batch(runs: &[RunPoint]) -> Option<f64> {
    let bs = distinct_values(runs.iter().filter_map(|r| r.b));
    let sizes = |x: f64| distinct(runs.iter().filter(|r| r.b == Some(x)).filter_map(|r| r.n));
    bs.into_iter().max_by(|a, b| sizes(*a).cmp(&sizes(*b)).then(b.total_cmp(a)))
}

/// The runs at the base batch size (every run when none has a B).
pub fn at_base(runs: &[RunPoint], base: Option<f64>) -> Vec<&RunPoint> {
    runs.iter().filter(|r| base.is_none() || r.b == base).collect()
}

/// Best (lowest) loss per distinct x among `runs`, ascending in x.
pub fn best_per(runs: &[&RunPoint], x: impl Fn(&RunPoint) -> Option<f64>) -> (Vec<f64>, Vec<f64>) {
    let mut pts: Vec<(f64, f64)> = runs.iter().filter_map(|r| x(r).map(|v| (v, r.loss))).collect();
    pts.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.total_cmp(&b.1)));
    pts.dedup_by(|a, b| a.0 == b.0);
    pts.into_iter().unzip()
}

/// L(N)'s points: at the largest D limit, the best loss per N.
pub fn l_n_points(at_base: &[&RunPoint]) -> (Vec<f64>, Vec<f64>) {
    let max_d = at_base.iter().filter(|r| r.n.is_some()).map(|r| r.d_limit).fold(0.0, f64::max);
    let at_max_d: Vec<&RunPoint> = at_base.iter().copied().filter(|r| r.n.is_some() && r.d_limit == max_d).collect();
    best_per(&at_max_d, |r| r.n)
}

/// L(D)'s points: at the largest N that has a data axis (≥ 3 distinct D), else the largest N,
/// the best loss per D.
pub fn l_d_points(at_base: &[&RunPoint], runs: &[RunPoint]) -> (Vec<f64>, Vec<f64>) {
    let d_count = |n: f64| distinct(at_base.iter().filter(|r| r.n == Some(n)).filter_map(|r| r.d));
    let with_axis = at_base.iter().filter_map(|r| r.n).filter(|&n| d_count(n) >= 3).reduce(f64::max);
    let max_n = with_axis.or_else(|| runs.iter().filter_map(|r| r.n).reduce(f64::max));
    let at_max_n: Vec<&RunPoint> =
        at_base.iter().copied().filter(|r| r.d.is_some() && (r.n.is_none() || r.n == max_n)).collect();
    best_per(&at_max_n, |r| r.d)
}

/// The frontier's curves: runs with all the data, each without its early transient (the points
/// before its smoothed loss first fell below the geometric mean of its first and last values),
/// with compute given by `compute`.
pub fn frontier_curves(
    curves: &[RunCurve],
    compute: impl Fn(&RunCurve, &CurvePoint) -> f64,
) -> Vec<ladder_laws::ComputeCurve> {
    curves
        .iter()
        .filter(|c| !c.data_limited)
        .filter_map(|c| {
            let (first, last) = (c.points.first()?.smooth, c.points.last()?.smooth);
            let mid = (first * last).sqrt();
            let start = c.points.iter().position(|p| p.smooth <= mid)?;
            let points = c.points[start..].iter().map(|p| (compute(c, p), p.smooth)).collect();
            Some(ladder_laws::ComputeCurve { n: c.n, points })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(n: f64, d_limit: f64, b: f64, loss: f64) -> RunPoint {
        RunPoint {
            job: None,
            n: Some(n),
            layers: None,
            d: Some(d_limit.min(1e6)),
            tokens: Some(1e6),
            b: Some(b),
            s: None,
            c: None,
            loss,
            d_limit,
            group: String::new(),
            branch: None,
        }
    }

    #[test]
    fn the_base_batch_is_the_one_most_sizes_share() {
        // Three sizes at B = 1024, two of them also at 512 and 4096.
        let runs = vec![
            run(1e4, f64::INFINITY, 1024.0, 3.0),
            run(1e5, f64::INFINITY, 1024.0, 2.5),
            run(1e6, f64::INFINITY, 1024.0, 2.0),
            run(1e5, f64::INFINITY, 512.0, 2.6),
            run(1e6, f64::INFINITY, 512.0, 2.1),
            run(1e6, f64::INFINITY, 4096.0, 2.3),
        ];
        assert_eq!(base_batch(&runs), Some(1024.0));
        // A tie goes to the smaller batch.
        let tie = vec![run(1e4, 1e9, 512.0, 3.0), run(1e4, 1e9, 1024.0, 3.0)];
        assert_eq!(base_batch(&tie), Some(512.0));
        assert_eq!(at_base(&runs, Some(1024.0)).len(), 3);
    }

    #[test]
    fn l_n_takes_the_best_loss_per_size_at_the_largest_d() {
        let runs = vec![
            run(1e4, f64::INFINITY, 1024.0, 3.0),
            run(1e4, f64::INFINITY, 1024.0, 2.9), // a second seed: the better one counts
            run(1e5, f64::INFINITY, 1024.0, 2.5),
            run(1e5, 3e4, 1024.0, 2.2), // data-limited: not at the largest D
        ];
        let base = at_base(&runs, Some(1024.0));
        assert_eq!(l_n_points(&base), (vec![1e4, 1e5], vec![2.9, 2.5]));
    }

    #[test]
    fn l_d_takes_the_largest_size_with_a_data_axis() {
        let runs = vec![
            run(1e5, 3e4, 1024.0, 3.1),
            run(1e5, 1e5, 1024.0, 2.8),
            run(1e5, 3e5, 1024.0, 2.6),
            run(1e6, 3e4, 1024.0, 3.0), // the largest N has only two D values
            run(1e6, f64::INFINITY, 1024.0, 2.2),
        ];
        let base = at_base(&runs, Some(1024.0));
        let (d, l) = l_d_points(&base, &runs);
        assert_eq!(d, vec![3e4, 1e5, 3e5]);
        assert_eq!(l, vec![3.1, 2.8, 2.6]);
    }

    #[test]
    fn the_frontier_leaves_out_data_limited_runs_and_early_transients() {
        let point = |step: f64, smooth: f64| CurvePoint {
            step,
            tokens: step * 100.0,
            flops: step * 1e6,
            train: smooth,
            smooth,
            val: None,
            b_simple: None,
        };
        let curve = |data_limited: bool| RunCurve {
            job: 1,
            label: String::new(),
            n: 1e5,
            b: 1024.0,
            warmup_steps: 0.0,
            data_limited,
            kind: crate::inputs::RunKind::Run,
            parent: None,
            points: vec![point(1.0, 8.0), point(2.0, 6.0), point(3.0, 4.0), point(4.0, 2.0)],
        };
        let curves = frontier_curves(&[curve(false), curve(true)], |_, p| p.flops);
        assert_eq!(curves.len(), 1, "the data-limited run is left out");
        // sqrt(8 · 2) = 4: the points from the first at or below 4 on.
        assert_eq!(curves[0].points, vec![(3e6, 4.0), (4e6, 2.0)]);
    }
}
