//! What the analysis tests share: a run point as a sweep's cooldown end records it.
use ladder_analysis::inputs::RunPoint;

/// A run of `n` parameters in `layers` layers that trained on `d` tokens at B = 1024 and ended
/// at `loss`.
pub fn run(n: f64, layers: u32, d: f64, loss: f64) -> RunPoint {
    RunPoint {
        job: None,
        n: Some(n),
        layers: Some(layers),
        d: Some(d),
        tokens: Some(d),
        b: Some(1024.0),
        s: Some(d / 1024.0),
        c: Some(6.0 * n * d),
        loss,
        d_limit: f64::INFINITY,
        group: String::new(),
        branch: None,
    }
}
