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
            "\nCritical batch size by branching (largest batch within {:.1}% of the k = 1 window's loss):",
            100.0 * r.cbs_epsilon
        );
        for p in &r.cbs {
            let bound = if p.lower_bound { "≥ " } else { "" };
            let simple = match (p.b_simple, p.ratio) {
                (Some(b), Some(ratio)) => format!("; B_simple {} (B_simple/CBS = {ratio:.2})", num(b)),
                _ => String::new(),
            };
            let _ = writeln!(
                out,
                "  job {} (N = {}) at {} tokens, L = {:.4}: CBS {bound}{} tokens{simple}",
                p.trunk,
                num(p.n),
                num(p.tokens),
                p.loss,
                num(p.cbs)
            );
        }
        let ratios: Vec<f64> = r.cbs.iter().filter(|p| !p.lower_bound).filter_map(|p| p.ratio).collect();
        if !ratios.is_empty() {
            let gm = (ratios.iter().map(|x| x.ln()).sum::<f64>() / ratios.len() as f64).exp();
            let within = ratios.iter().filter(|x| (0.5..=2.0).contains(*x)).count();
            let _ = writeln!(
                out,
                "  B_simple/CBS: geometric mean {gm:.2}, {within} of {} within a factor of 2 (Merrill et al. find B_simple a poor proxy)",
                ratios.len()
            );
        }
    }
    if let Some(b) = &r.cbs_law {
        let _ = writeln!(out, "\n{}, fitted to the CBS points", Law::CbsL.equation(false));
        let _ = writeln!(out, "  B*   {}", est(&b.b_star));
        let _ = writeln!(out, "  α_B  {}", est(&b.alpha_b));
        let _ = writeln!(out, "  R² on log B = {:.4}, {} points, L in {}", b.r2, b.points, span(&b.loss_range));
    }
    if let Some(v) = &r.cbs_vs_d {
        let _ = writeln!(out, "\n{} (Zhang et al.: it grows with data)", Law::CbsD.equation(false));
        let _ = writeln!(out, "  γ            {}", est(&v.gamma));
        let _ = writeln!(out, "  CBS at D=1M  {} tokens", est(&v.at_1m));
        let _ = writeln!(out, "  R² on log CBS = {:.4}, {} points", v.r2, v.points);
    }
    if !r.branch_runs.is_empty() && verbose {
        let _ = writeln!(out, "\nPoints from branches:");
        for (job, what) in &r.branch_runs {
            let _ = writeln!(out, "  job {job}: {what}");
        }
    } else if !r.branch_runs.is_empty() {
        let ids: Vec<u64> = r.branch_runs.iter().map(|(job, _)| *job).collect();
        let _ = writeln!(
            out,
            "\nPoints from branches: {} runs, jobs {} (--verbose lists each)",
            ids.len(),
            crate::table::id_ranges(&ids)
        );
    }
    let c = r.compute;
    if c.from_scratch > 0.0 && c.trained < c.from_scratch {
        let _ = writeln!(
            out,
            "\nCompute: trained {} FLOPs; the same measurements from scratch: {} FLOPs (ratio {:.2})",
            num(c.trained),
            num(c.from_scratch),
            c.ratio()
        );
    }
}
