//! Printing a fit report: each law's constants with their intervals, Kaplan's published
//! constants beside them, which jobs fed the fits and why others were left out; and a
//! compute-optimal allocation.
use std::fmt::Write;

use ladder_analysis::Report;
use ladder_analysis::predict::{Allocation, num, span};
use ladder_laws::{Estimate, FormChoice, Law, PowerLaw, TwoVarLaw, WorstPoint, published};

fn est(e: &Estimate) -> String {
    if e.lo.is_finite() { format!("{:<10} [{}, {}]", num(e.value), num(e.lo), num(e.hi)) } else { num(e.value) }
}

fn row(out: &mut String, name: &str, e: &Estimate, kaplan: Option<f64>) {
    let _ = writeln!(out, "  {name:<8} {:<38} {}", est(e), kaplan.map_or(String::new(), num));
}

/// `LAW = FORMULA`, with `source` (whose constants the last column gives) right-aligned above
/// that column (one space at least after a long formula).
fn header(out: &mut String, law: Law, with_e: bool, source: &str) {
    let eq = law.equation(with_e);
    let w = 63usize.saturating_sub(eq.chars().count()).max(source.len() + 1);
    let _ = writeln!(out, "\n{eq}{source:>w$}");
}

fn power(out: &mut String, f: &PowerLaw, var: &str, kaplan: Option<(f64, f64)>) {
    header(out, f.law, f.e.is_some(), "Kaplan 2020");
    row(out, &format!("α_{var}"), &f.alpha, kaplan.map(|k| k.0));
    row(out, &format!("{var}_c"), &f.x_c, kaplan.map(|k| k.1));
    if let Some(e) = &f.e {
        row(out, "E", e, None);
    }
    let _ = writeln!(out, "  R² on log L = {:.4}, {} points, {var} in {}", f.r2, f.points, span(&f.x_range));
    notes(out, f.worst.as_ref(), var, "", f.choice.as_ref());
}

/// The fitted point the law misses most, as predicted / measured − 1.
fn worst(out: &mut String, w: Option<&WorstPoint>, var: &str, var2: &str) {
    notes(out, w, var, var2, None);
}

/// The point the law misses most and why it has E or not (when AICc chose), on one line.
fn notes(out: &mut String, w: Option<&WorstPoint>, var: &str, var2: &str, choice: Option<&FormChoice>) {
    let mut parts = Vec::new();
    if let Some(w) = w {
        let at2 = w.x2.map_or(String::new(), |x2| format!(", {var2} = {}", num(x2)));
        parts.push(format!("worst fitted point {:+.2}% at {var} = {}{at2}", 100.0 * w.error, num(w.x)));
    }
    if let Some(c) = choice {
        let kept = if c.keeps_e() { "with" } else { "without" };
        parts.push(format!("form {kept} E by AICc ({:.1} with, {:.1} without)", c.aicc_with, c.aicc_without));
    }
    if !parts.is_empty() {
        let _ = writeln!(out, "  {}", parts.join("; "));
    }
}

fn two(out: &mut String, f: &TwoVarLaw, var: &str, kaplan: (f64, f64, f64, f64)) {
    header(out, f.law, f.e.is_some(), "Kaplan 2020");
    row(out, "α_N", &f.alpha_n, Some(kaplan.0));
    row(out, &format!("α_{var}"), &f.alpha_2, Some(kaplan.1));
    row(out, "N_c", &f.n_c, Some(kaplan.2));
    row(out, &format!("{var}_c"), &f.c_2, Some(kaplan.3));
    if let Some(e) = &f.e {
        row(out, "E", e, None);
    }
    let _ = writeln!(
        out,
        "  R² on log L = {:.4}, {} points, N in {}, {var} in {}",
        f.r2,
        f.points,
        span(&f.n_range),
        span(&f.x2_range)
    );
    notes(out, f.worst.as_ref(), "N", var, f.choice.as_ref());
    resampling(out, &f.tally);
}

/// How a law's intervals were drawn: `bootstrap: 200 resamples of the 8 sizes (each with all its
/// points), 3 failed to fit and were dropped`.
fn resampling(out: &mut String, t: &ladder_laws::Tally) {
    if t.resamples == 0 {
        return;
    }
    let units = if t.sizes {
        format!("the {} sizes (each with all its points)", t.units)
    } else {
        format!("the {} points", t.units)
    };
    let failed = match t.failed {
        0 => "none failed".to_string(),
        f => format!("{f} ({:.1}%) failed to fit and were dropped", 100.0 * f as f64 / t.resamples as f64),
    };
    let _ = writeln!(out, "  bootstrap: {} resamples of {units}; {failed}", t.resamples);
}

/// The report as text; `verbose` adds the per-job lists (B_simple, the branch runs).
pub fn text(r: &Report, verbose: bool) -> String {
    let mut out = String::new();
    header_lines(&mut out, r);
    laws(&mut out, r, verbose);
    bcrit(&mut out, r, verbose);
    chinchilla(&mut out, r);
    crate::report_branches::text(&mut out, r, verbose);
    checks(&mut out, r, verbose);
    out
}

/// The source, the jobs used and left out (grouped by reason), and the base batch size.
fn header_lines(out: &mut String, r: &Report) {
    let _ = writeln!(out, "Fits to {} ({} runs; intervals: 95% bootstrap)", r.source, r.runs);
    if !r.used_jobs.is_empty() {
        let _ = writeln!(out, "  jobs used: {}", crate::table::id_ranges(&r.used_jobs));
    }
    // One line per reason, in the order each reason first appears.
    let mut groups: Vec<(&str, Vec<u64>)> = Vec::new();
    for e in &r.excluded {
        match groups.iter_mut().find(|(why, _)| *why == e.reason) {
            Some((_, ids)) => ids.push(e.job),
            None => groups.push((&e.reason, vec![e.job])),
        }
    }
    for (why, ids) in &groups {
        let jobs = if ids.len() == 1 { "job" } else { "jobs" };
        let _ = writeln!(out, "  left out, {why}: {jobs} {}", crate::table::id_ranges(ids));
    }
    // A sweep's jobs are listed above with the reason; points from a file have no job ids.
    if !r.shallow_sizes.is_empty() && r.used_jobs.is_empty() {
        let sizes: Vec<String> = r.shallow_sizes.iter().map(|&n| num(n)).collect();
        let _ = writeln!(
            out,
            "  left out of every fit, sizes with fewer than {} layers: N = {}",
            r.min_layers,
            sizes.join(", ")
        );
    }
    if let Some(b) = r.base_batch {
        let _ = writeln!(
            out,
            "  {} and {} use the runs at B = {} tokens (the batch size most sizes share)",
            Law::N,
            Law::D,
            num(b)
        );
    }
}

/// L(N), L(D), L(C), L(N,D), L(N,S) and the compute frontier.
fn laws(out: &mut String, r: &Report, verbose: bool) {
    if let Some(f) = &r.l_n {
        power(out, f, "N", Some(published::L_N));
    }
    if let Some(f) = &r.l_d {
        power(out, f, "D", Some(published::L_D));
    }
    if let Some(f) = &r.l_c {
        power(out, f, "C", None);
    }
    if let Some(f) = &r.l_nd {
        two(out, f, "D", published::L_ND);
    }
    if let Some(f) = &r.l_ns {
        two(out, f, "S", published::L_NS);
        if let Some(src) = r.l_ns_bcrit {
            let _ = writeln!(out, "  S_min by Kaplan eq. 5.4 with B_crit from the {src}, at the shared batch size");
        }
    }
    if let Some(fr) = &r.frontier {
        let c_pf = published::L_CMIN.1 * published::PF_DAY;
        power(out, &fr.l_cmin, "C", Some((published::L_CMIN.0, c_pf)));
        if verbose {
            let _ = writeln!(out, "  (compute: {} in FLOPs; Kaplan's C_c = 3.1e8 PF-days)", r.frontier_compute);
        }
        let _ = writeln!(out, "\nN_opt = {}{:>43}", Law::Frontier.formula(false), "Kaplan 2020");
        row(out, "a", &fr.n_opt_exponent, Some(published::FRONTIER_N));
        row(out, "k", &fr.n_opt_coeff, None);
        for iso in fr.isoflops.iter().filter(|i| i.n_opt.is_some()) {
            let _ = writeln!(
                out,
                "  IsoFLOP at C = {}: N_opt ≈ {} ({} sizes)",
                num(iso.compute),
                num(iso.n_opt.unwrap_or(f64::NAN)),
                iso.profile.len()
            );
        }
    }
}

/// B_crit at each target loss, B_crit(L), and the streamed B_simple beside them.
fn bcrit(out: &mut String, r: &Report, verbose: bool) {
    if !r.bcrit_at.is_empty() {
        let _ = writeln!(out, "\nB_crit = {} from S = S_min + E_min/B", Law::BCrit.formula(false));
        for b in &r.bcrit_at {
            let _ = writeln!(
                out,
                "  at L = {:.4}: B_crit {} tokens, S_min {}",
                b.target_loss,
                est(&b.b_crit),
                est(&b.s_min)
            );
        }
    }
    if let Some(b) = &r.bcrit_law {
        header(out, Law::BCritL, false, "Kaplan 2020");
        row(out, "B*", &b.b_star, Some(published::B_CRIT.0));
        row(out, "α_B", &b.alpha_b, Some(published::B_CRIT.1));
        let _ = writeln!(out, "  R² on log B = {:.4}, {} points, L in {}", b.r2, b.points, span(&b.loss_range));
    }
    if !r.bcrit_vs_simple.is_empty() {
        let _ = writeln!(out, "\nB_simple (streamed, where each run first reached L) beside B_crit (batch sweep):");
        for v in &r.bcrit_vs_simple {
            let _ = writeln!(
                out,
                "  {} at L = {:.4}: B_simple {} / B_crit {} = {:.2}",
                v.group,
                v.target_loss,
                num(v.b_simple),
                num(v.b_crit),
                v.ratio
            );
        }
        let mut logs: Vec<f64> = r.bcrit_vs_simple.iter().map(|v| v.ratio.ln()).collect();
        logs.sort_by(f64::total_cmp);
        let within = r.bcrit_vs_simple.iter().filter(|v| (0.5..=2.0).contains(&v.ratio)).count();
        let _ = writeln!(
            out,
            "  geometric mean ratio {:.2}; {within} of {} within a factor of 2 (McCandlish et al. and Kaplan: B_crit ≈ B_simple)",
            (logs.iter().sum::<f64>() / logs.len() as f64).exp(),
            logs.len()
        );
    }
    if !r.b_simple.is_empty() && verbose {
        let _ = writeln!(out, "\nB_simple (streamed, median of the last tenth of each run), tokens:");
        for b in &r.b_simple {
            let _ = writeln!(out, "  job {}: {} at L = {:.4}", b.job.unwrap_or(0), num(b.b_simple), b.loss);
        }
    } else if !r.b_simple.is_empty() {
        let mut v: Vec<f64> = r.b_simple.iter().map(|b| b.b_simple).filter(|b| b.is_finite()).collect();
        v.sort_by(f64::total_cmp);
        if let (Some(lo), Some(hi)) = (v.first(), v.last()) {
            let _ = writeln!(
                out,
                "\nB_simple (streamed, median of each run's last tenth): {} runs, median {} tokens, from {} to {} (--verbose lists each)",
                r.b_simple.len(),
                num(v[v.len() / 2]),
                num(*lo),
                num(*hi)
            );
        }
    }
}

/// Chinchilla's constants beside Hoffmann's.
fn chinchilla(out: &mut String, r: &Report) {
    if let Some(c) = &r.chinchilla {
        header(out, Law::Chinchilla, true, "Hoffmann 2022");
        let names = ["E", "A", "B", "α", "β"];
        let published = [1.69, 406.4, 410.7, 0.34, 0.28];
        for (i, e) in c.intervals.iter().enumerate() {
            row(out, names[i], e, Some(published[i]));
        }
        let _ = writeln!(
            out,
            "  Huber δ=1e-3 on log L, L-BFGS from Hoffmann's grid: objective {:.5e}, {} runs ({} highest-loss left out)",
            c.fit.objective, c.fit.runs, c.excluded_highest_loss
        );
        let _ = writeln!(
            out,
            "  R² on log L = {:.4}, N in {}, D in {}",
            c.fit.r2,
            span(&c.fit.n_range),
            span(&c.fit.d_range)
        );
        worst(out, c.fit.worst.as_ref(), "N", "D");
        resampling(out, &c.tally);
        if let Some(a) = &r.additivity {
            crate::report_additivity::text(out, "  additivity", a, a.fit_gain);
        }
    }
}

/// The contradiction point, the hold-out check, and the laws not fitted.
fn checks(out: &mut String, r: &Report, verbose: bool) {
    if let Some(c) = &r.contradiction {
        let _ = writeln!(
            out,
            "\nKaplan §6.3 contradiction point, where {} meets {} at the frontier's D(C) = C/(6·N_opt):\n  C* = {} FLOPs ({} PF-days), N* = {}, D* = {} tokens, L* = {:.4}  (Kaplan: C* ~ 1e4 PF-days, N* ~ 1e12, D* ~ 1e12, L* ~ 1.7)",
            Law::CMin,
            Law::D,
            num(c.compute),
            num(c.compute / published::PF_DAY),
            num(c.n),
            num(c.d),
            c.loss
        );
    }
    crate::report_predictions::holdout(out, r, verbose);
    crate::report_predictions::backtest(out, r, verbose);
    if !r.skipped.is_empty() {
        let _ = writeln!(out, "\nNot fitted:");
        for s in &r.skipped {
            let _ = writeln!(out, "  {}: {}", s.law, s.reason);
        }
    }
}

pub fn allocation_text(a: &Allocation) -> String {
    format!(
        "\nCompute-optimal at C = {} FLOPs (from the {} fit): N = {}, D = {} tokens, L ≈ {}, B ≈ {}\n",
        num(a.compute),
        a.from,
        num(a.n),
        num(a.d),
        a.loss.map_or("-".into(), num),
        a.batch_tokens.map_or(format!("- (no {} fit)", Law::BCritL), |b| format!("{} tokens", num(b)))
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use ladder_analysis::inputs::{Excluded, Inputs};
    use ladder_analysis::report::BSimple;

    fn report(excluded: &[(u64, &str)], b_simple: &[(u64, f64)]) -> Report {
        let inputs = Inputs {
            source: "sweep 1".into(),
            excluded: excluded.iter().map(|&(job, why)| Excluded { job, reason: why.into() }).collect(),
            ..Default::default()
        };
        let mut r = ladder_analysis::fit::fit_laws(&inputs, &Default::default());
        r.b_simple = b_simple.iter().map(|&(job, b)| BSimple { job: Some(job), loss: 3.5, b_simple: b }).collect();
        r
    }

    #[test]
    fn ids_print_as_ranges() {
        assert_eq!(crate::table::id_ranges(&[5, 1, 2, 3, 4, 12, 17, 18]), "1-5, 12, 17-18");
        assert_eq!(crate::table::id_ranges(&[]), "");
        assert_eq!(crate::table::id_ranges(&[7, 7]), "7");
    }

    #[test]
    fn left_out_jobs_are_grouped_by_reason_and_per_job_lists_wait_for_verbose() {
        let excluded: Vec<(u64, &str)> =
            (1..=40).map(|j| (j, if j == 9 { "cancelled" } else { "still queued" })).collect();
        let b: Vec<(u64, f64)> = (1..=40).map(|j| (j, 1000.0 * j as f64)).collect();
        let short = text(&report(&excluded, &b), false);
        assert!(short.contains("  left out, still queued: jobs 1-8, 10-40\n"), "{short}");
        assert!(short.contains("  left out, cancelled: job 9\n"), "{short}");
        assert!(short.contains("B_simple (streamed, median of each run's last tenth): 40 runs, median 2.100e4 tokens, from 1000 to 4.000e4"), "{short}");
        assert!(!short.contains("job 17: "), "{short}");
        assert!(short.lines().count() < 20, "{short}");
        let long = text(&report(&excluded, &b), true);
        assert!(long.contains("  job 17: 1.700e4 at L = 3.5000"), "{long}");
    }
}
