//! Issue 32: sealed targets at the coordinator. A target trains and stores its points like any
//! job, but its curve, log and losses are refused until the sweep's predictions are locked; the
//! lock is made by itself once every other job has ended, holds each law's prediction with its
//! 95% interval, may be replaced until a target is read, and is final after. A target that has
//! succeeded is scored against it.
use std::time::Duration;

use ladder_analysis::sealed::{LockCause, Predictions};
use ladder_laws::Law;
use ladder_proto::pb;
use ladder_testkit::sealed::{SPEC, end_fitted_runs, run, truth};
use ladder_testkit::server::*;

async fn predictions(s: &mut Server) -> Predictions {
    let p = s.users.get_predictions(pb::GetPredictionsRequest { sweep: "sealed".into() }).await.expect("predictions");
    serde_json::from_str(&p.into_inner().predictions_json).expect("predictions JSON")
}

#[tokio::test]
async fn a_target_is_withheld_until_the_lock_then_scored_against_it() {
    let (mut s, w) = Server::with_sweep(Duration::from_secs(60), Some(SPEC)).await;
    let t = register_worker(&mut s.workers, "t").await;
    let jobs = s.users.list_jobs(pb::ListJobsRequest { sweep: "sealed".into() }).await.expect("jobs").into_inner().jobs;
    assert_eq!(jobs.len(), 21);
    let targets: Vec<&pb::Job> = jobs.iter().filter(|j| j.sealed).collect();
    assert_eq!(targets.len(), 1, "one sealed target");
    let target = targets[0].clone();
    assert_eq!((target.n_layer, target.d_model), (2, 48));

    // The costliest job leases first: the target. It stores points that nobody may read yet.
    let a = acquire(&mut s.workers, &t).await.expect("the target");
    assert_eq!(a.job_id, target.id);
    let target_loss = truth(target.n_params as f64, 3840.0, target.id);
    let r = s.workers.report_events(report(&t, &a, run(60, target_loss)[..1].to_vec())).await.expect("report");
    assert_eq!(r.into_inner().stored, 1);
    let refused = s.users.get_curve(pb::GetCurveRequest { job_id: target.id, ..Default::default() }).await;
    let status = refused.expect_err("a target's curve before the lock");
    assert_eq!(status.code(), tonic::Code::FailedPrecondition, "{status:?}");
    assert!(status.message().contains("sealed target") && status.message().contains("--lock"), "{status:?}");
    let logs = s.users.get_logs(pb::GetLogsRequest { job_id: target.id, after_seq: 0 }).await;
    assert_eq!(logs.expect_err("its log").code(), tonic::Code::FailedPrecondition);
    let listed = s.users.get_job(pb::GetJobRequest { job_id: target.id }).await.expect("job").into_inner();
    assert!(listed.sealed && listed.step == 1 && listed.val_loss.is_nan() && listed.train_loss.is_nan(), "{listed:?}");

    // Every fitted run ends; the lock follows by itself.
    assert!(predictions(&mut s).await.lock.is_none(), "not locked while fitted runs are open");
    end_fitted_runs(&mut s, &w, &jobs).await;
    let mut locked = None;
    for _ in 0..600 {
        let p = predictions(&mut s).await;
        if p.lock.is_some() {
            locked = Some(p);
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let p = locked.expect("the lock, once every fitted run ended");
    let lock = p.lock.as_ref().expect("lock");
    assert_eq!(
        (lock.cause, lock.fitted_runs, p.revealed_ms),
        (LockCause::FitsEnded, 16, None),
        "the 1-layer 1x16's four runs are not fitted"
    );
    assert_eq!((lock.options_sha256.len(), lock.points_sha256.len()), (64, 64));
    // The backtest at the lock: the three smaller deep sizes refitted, predicting 3x32 at its
    // four D (0.17 decades of N: nothing from 0.5 on).
    let ch = lock.backtest.iter().find(|b| b.law == Law::Chinchilla).expect("Chinchilla's backtest");
    assert_eq!((ch.from, ch.rows, ch.high + ch.low), (0.0, 4, 4), "{:?}", lock.backtest);
    assert!(ch.coverage.is_some() && ch.mean_error.abs() < 0.05, "{ch:?}");
    assert!(lock.backtest.iter().all(|b| b.from == 0.0), "{:?}", lock.backtest);
    // Chinchilla's additivity on the fitted runs: the truth is additive, so it holds, from the
    // least D every deep size has (8 steps of 64 tokens) to the most (60).
    let add = lock.additivity.as_ref().expect("four deep sizes share four D");
    assert_eq!((add.d_lo, add.d_hi, add.sizes.len(), add.rejected), (512.0, 3840.0, 4, false), "{add:?}");
    let scored = &p.targets[0];
    assert_eq!(scored.target.job, target.id);
    assert!(scored.measured.is_none(), "a running target has no score");
    for law in [Law::Chinchilla, Law::ND] {
        let l = scored.laws.iter().find(|l| l.law == law).unwrap_or_else(|| panic!("{law} predicts the target"));
        let (lo, hi) = (l.predicted.lo.expect("lo"), l.predicted.hi.expect("hi"));
        assert!(lo < l.predicted.value && l.predicted.value < hi, "{l:?}");
    }
    // The fits never saw the target: it is named among the runs left out.
    let fits = s.users.get_fits(pb::GetFitsRequest { sweep: "sealed".into() }).await.expect("fits").into_inner();
    assert!(fits.report_json.contains("a sealed target"), "{}", fits.error);

    // Until a target is read, the lock may be replaced.
    let again = s.users.lock_predictions(pb::LockPredictionsRequest { sweep: "sealed".into() }).await;
    let again: Predictions = serde_json::from_str(&again.expect("relock").into_inner().predictions_json).expect("json");
    assert_eq!(again.lock.as_ref().map(|l| l.cause), Some(LockCause::Asked));
    assert_eq!(again.lock.as_ref().map(|l| l.points_sha256.clone()), Some(lock.points_sha256.clone()));

    // The target ends; reading its score reveals it, and the lock is final.
    let mut rest = run(60, target_loss)[1..].to_vec();
    assert_eq!(rest.len(), 59);
    rest.push(finished(60));
    s.workers.report_events(report(&t, &a, rest)).await.expect("the target ends");
    let p = predictions(&mut s).await;
    let scored = &p.targets[0];
    assert_eq!(scored.measured, Some(target_loss));
    assert!(p.revealed_ms.is_some(), "scoring read the target");
    let ch = scored.laws.iter().find(|l| l.law == Law::Chinchilla).expect("Chinchilla");
    let err = ch.error.expect("an error once measured");
    assert!(err.abs() < 0.02, "Chinchilla within 2% of the truth: {ch:?}");
    assert_eq!(ch.covered, Some(true), "{ch:?}");
    let vs = ch.vs_persistence.expect("beside persistence");
    assert!(vs < 0.5, "Chinchilla under half persistence's error: {ch:?}, persistence {:?}", scored.persistence_error);
    let refused = s.users.lock_predictions(pb::LockPredictionsRequest { sweep: "sealed".into() }).await;
    let status = refused.expect_err("a revealed lock is final");
    assert_eq!(status.code(), tonic::Code::FailedPrecondition);
    assert!(status.message().contains("final"), "{status:?}");
    let curve = s.users.get_curve(pb::GetCurveRequest { job_id: target.id, ..Default::default() }).await;
    assert_eq!(curve.expect("the curve, after the lock").into_inner().points.len(), 60);
    s.shutdown().await;
}

#[tokio::test]
async fn a_sweep_without_targets_has_nothing_to_lock() {
    let (mut s, _) = Server::with_sweep(Duration::from_secs(30), None).await;
    let r = s.users.lock_predictions(pb::LockPredictionsRequest { sweep: "fence".into() }).await;
    let status = r.expect_err("no targets");
    assert_eq!(status.code(), tonic::Code::InvalidArgument);
    assert!(status.message().contains("no sealed targets"), "{status:?}");
    s.shutdown().await;
}
