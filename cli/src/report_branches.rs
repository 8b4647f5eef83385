//! The part of a fit report that branches give: the critical batch size at each branch point
//! beside the streamed B_simple, B_crit(L) and the CBS against D fitted to those points, which
//! runs came from branches, and the compute trained against its from-scratch cost.
use std::fmt::Write;

use ladder_analysis::Report;
use ladder_analysis::predict::{num, span};
use ladder_laws::{Estimate, Law};

fn est(e: &Estimate) -> String {
    format!("{} [{}, {}]", num(e.value), num(e.lo), num(e.hi))
}

/// CBS, its laws, the branch runs and the compute saved; nothing for a sweep without branches.
pub fn text(out: &mut String, r: &Report, verbose: bool) {
    if !r.cbs.is_empty() {
        let _ = writeln!(
            out,
            "\nCritical batch size by branching (largest batch that needs at most {:.0}% more tokens than k = 1 to reach its loss):",
            100.0 * r.cbs_overhead
        );
        // How well the streamed B_simple stands in for the CBS.
        let ratios: Vec<f64> = r.cbs.iter().filter(|p| !p.lower_bound).filter_map(|p| p.ratio).collect();
        let proxy = if ratios.is_empty() {
            String::new()
        } else {
            let gm = (ratios.iter().map(|x| x.ln()).sum::<f64>() / ratios.len() as f64).exp();
            let within = ratios.iter().filter(|x| (0.5..=2.0).contains(*x)).count();
            format!("geometric mean {gm:.2}, {within} of {} within a factor of 2", ratios.len())
        };
        if !verbose {
            let mut trunks: Vec<u64> = r.cbs.iter().map(|p| p.trunk).collect();
            trunks.dedup();
            let (lo, hi) = r.cbs.iter().fold((f64::INFINITY, 0.0f64), |(a, b), p| (a.min(p.cbs), b.max(p.cbs)));
            let bounds = r.cbs.iter().filter(|p| p.lower_bound).count();
            let _ = writeln!(
                out,
                "  {} branch points on trunk{} {}: CBS from {} to {} tokens{}; B_simple/CBS {proxy} (--verbose lists each)",
                r.cbs.len(),
                if trunks.len() == 1 { "" } else { "s" },
                crate::table::id_ranges(&trunks),
                num(lo),
                num(hi),
                if bounds > 0 { format!(", {bounds} of them lower bounds") } else { String::new() }
            );
        }
        for p in r.cbs.iter().filter(|_| verbose) {
            let bound = if p.lower_bound { "≥ " } else { "" };
            let simple = match (p.b_simple, p.ratio) {
                (Some(b), Some(ratio)) => format!("; B_simple {} (B_simple/CBS = {ratio:.2})", num(b)),
                _ => String::new(),
            };
            let bracket =
                p.hi.map_or(String::new(), |hi| format!(" (between the batches {} and {})", num(p.lo), num(hi)));
            let _ = writeln!(
                out,
                "  job {} (N = {}) at {} tokens, L = {:.4}: CBS {bound}{} tokens{bracket}{simple}",
                p.trunk,
                num(p.n),
                num(p.tokens),
                p.loss,
                num(p.cbs)
            );
        }
        if verbose && !proxy.is_empty() {
            let _ = writeln!(out, "  B_simple/CBS: {proxy} (Merrill et al. find B_simple a poor proxy)");
        }
    }
    if let Some(b) = &r.cbs_law {
        let _ = writeln!(out, "\n{}, fitted to the CBS points", Law::CbsL.equation(false));
        let _ = writeln!(
            out,
            "  B* {}, α_B {}; R² on log B = {:.4}, {} points, L in {}",
            est(&b.b_star),
            est(&b.alpha_b),
            b.r2,
            b.points,
            span(&b.loss_range)
        );
    }
    if let Some(v) = &r.cbs_vs_d {
        let _ = writeln!(out, "\n{} (Zhang et al.: it grows with data)", Law::CbsD.equation(false));
        let _ = writeln!(
            out,
            "  γ {}, CBS at D = 1M {} tokens; R² on log CBS = {:.4}, {} points",
            est(&v.gamma),
            est(&v.at_1m),
            v.r2,
            v.points
        );
    }
    if !r.branch_runs.is_empty() && verbose {
        let _ = writeln!(out, "\nPoints from branches:");
        for (job, what) in &r.branch_runs {
            let _ = writeln!(out, "  job {job}: {what}");
        }
    }
    // The runs that came from branches, in short, and the compute they saved.
    let from_branches = if r.branch_runs.is_empty() || verbose {
        String::new()
    } else {
        let ids: Vec<u64> = r.branch_runs.iter().map(|(job, _)| *job).collect();
        format!("{} runs from branches (jobs {}; --verbose lists each); ", ids.len(), crate::table::id_ranges(&ids))
    };
    let c = r.compute;
    let branched = !r.branch_runs.is_empty() || !r.cbs.is_empty();
    if c.from_scratch > 0.0 && branched {
        let _ = writeln!(
            out,
            "\nCompute: {from_branches}trained {} FLOPs (every job, trunks included); the {} measurements the fits use \
             (runs and batch windows), each trained from scratch: {} FLOPs (ratio {:.2})",
            num(c.trained),
            c.measurements,
            num(c.from_scratch),
            c.ratio()
        );
    } else if !from_branches.is_empty() {
        let _ = writeln!(out, "\n{}", from_branches.trim_end_matches("; "));
    }
}
