//! What the PNG and SVG plots share with the web page: round log ticks (1, 2, 5 × 10^k), their
//! labels, and viridis as the continuous colour of N (trimmed before its yellow end, as
//! `web/assets/colours.js`).
use plotters::style::RGBColor;

/// Viridis at t = 0, 0.1, …, 1 (matplotlib's table, sampled).
const STOPS: [(u8, u8, u8); 11] = [
    (68, 1, 84),
    (72, 36, 117),
    (65, 68, 135),
    (53, 95, 141),
    (42, 120, 142),
    (33, 145, 140),
    (34, 168, 132),
    (68, 191, 112),
    (122, 209, 81),
    (189, 223, 38),
    (253, 231, 37),
];
/// The part of the map used: its yellow end is unreadable on white.
const T_MAX: f64 = 0.85;

/// The colour at `t` in [0, 1].
pub fn viridis(t: f64) -> RGBColor {
    let u = if t.is_finite() { t.clamp(0.0, 1.0) } else { 0.0 } * T_MAX * (STOPS.len() - 1) as f64;
    let i = (u.floor() as usize).min(STOPS.len() - 2);
    let f = u - i as f64;
    let mix = |a: u8, b: u8| (f64::from(a) + (f64::from(b) - f64::from(a)) * f).round() as u8;
    let (a, b) = (STOPS[i], STOPS[i + 1]);
    RGBColor(mix(a.0, b.0), mix(a.1, b.1), mix(a.2, b.2))
}

/// `v` → [0, 1] on a log scale over `[lo, hi]`; one value maps to the middle.
pub fn log_position(v: f64, lo: f64, hi: f64) -> f64 {
    if hi > lo && lo > 0.0 { ((v.ln() - lo.ln()) / (hi.ln() - lo.ln())).clamp(0.0, 1.0) } else { 0.5 }
}

/// Round ticks inside `[lo, hi]` on a log axis: powers of ten when it spans three decades or
/// more, else 1, 2, 5 × 10^k, else every 1..9 × 10^k; with at least two ticks where it can.
pub fn log_ticks(lo: f64, hi: f64) -> Vec<f64> {
    if !(lo > 0.0 && hi > lo && lo.is_finite() && hi.is_finite()) {
        return vec![];
    }
    let decades = (hi / lo).log10();
    let mantissas: &[f64] = if decades >= 3.0 {
        &[1.0]
    } else if decades >= 1.0 {
        &[1.0, 2.0, 5.0]
    } else {
        &[1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0]
    };
    let (k0, k1) = (lo.log10().floor() as i32, hi.log10().ceil() as i32);
    let mut out = Vec::new();
    for k in k0..=k1 {
        for m in mantissas {
            let v = clean(m * 10f64.powi(k));
            if v >= lo * (1.0 - 1e-9) && v <= hi * (1.0 + 1e-9) {
                out.push(v);
            }
        }
    }
    // Many decades: keep every second or third power so that labels do not crowd.
    let step = out.len().div_ceil(8).max(1);
    out.into_iter().step_by(step).collect()
}

/// Round ticks on a log axis that spans too little for [`log_ticks`] to find two: multiples of
/// the coarsest 1, 2 or 5 × 10^k step that gives at least three.
pub fn fine_ticks(lo: f64, hi: f64) -> Vec<f64> {
    let t = log_ticks(lo, hi);
    if t.len() >= 2 || !(hi > lo && lo > 0.0) {
        return t;
    }
    let mut step = 10f64.powi((hi - lo).log10().ceil() as i32);
    for _ in 0..12 {
        let first = (lo / step).ceil() as i64;
        let last = (hi / step).floor() as i64;
        if last - first >= 2 {
            return (first..=last).map(|i| clean(i as f64 * step)).collect();
        }
        step /= if format!("{step:e}").starts_with('5') { 2.5 } else { 2.0 };
    }
    vec![lo, hi]
}

/// The minor ticks between: 1..9 × 10^k inside `[lo, hi]`.
pub fn log_minor(lo: f64, hi: f64) -> Vec<f64> {
    if !(lo > 0.0 && hi > lo) {
        return vec![];
    }
    let (k0, k1) = (lo.log10().floor() as i32, hi.log10().ceil() as i32);
    (k0..=k1)
        .flat_map(|k| (1..10).map(move |m| clean(f64::from(m) * 10f64.powi(k))))
        .filter(|v| *v >= lo && *v <= hi)
        .collect()
}

fn clean(v: f64) -> f64 {
    format!("{v:.12e}").parse().unwrap_or(v)
}

/// A tick label: plain below 10^4 and down to 0.01 (`0.5`, `200`, `5000`), else `2e5`, `1e-3`.
pub fn label(v: &f64) -> String {
    let v = *v;
    if v == 0.0 || !v.is_finite() {
        return format!("{v}");
    }
    if (1e-2..1e4).contains(&v.abs()) {
        let s = format!("{:.4}", v);
        return s.trim_end_matches('0').trim_end_matches('.').to_string();
    }
    let k = v.abs().log10().floor() as i32;
    let m = clean(v / 10f64.powi(k));
    let m = format!("{m:.2}");
    let m = m.trim_end_matches('0').trim_end_matches('.');
    format!("{m}e{k}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ticks_are_round_and_inside() {
        assert_eq!(log_ticks(1.6, 3.3), [2.0, 3.0]);
        assert_eq!(log_ticks(1.8, 5.2), [2.0, 3.0, 4.0, 5.0]);
        assert_eq!(log_ticks(7e4, 1.3e6), [1e5, 2e5, 5e5, 1e6]);
        assert_eq!(log_ticks(1e3, 2e6), [1e3, 1e4, 1e5, 1e6]);
        assert!(log_ticks(1e3, 1e20).len() <= 9);
        assert!(log_ticks(5.0, 5.0).is_empty());
        assert_eq!(fine_ticks(2.05, 2.7), [2.2, 2.4, 2.6]);
    }

    #[test]
    fn labels_read_as_numbers() {
        let l: Vec<String> = [0.5, 2.0, 200.0, 5000.0, 2e5, 1e-3, 1.5e12].iter().map(label).collect();
        assert_eq!(l, ["0.5", "2", "200", "5000", "2e5", "1e-3", "1.5e12"]);
    }

    #[test]
    fn viridis_runs_from_purple_to_green() {
        assert_eq!(viridis(0.0), RGBColor(68, 1, 84));
        let end = viridis(1.0);
        assert!(end.1 > 150 && end.0 < 200, "{end:?}");
        assert_eq!(log_position(10.0, 1.0, 100.0), 0.5);
    }
}
