//! Issue 32 through the CLI: `ladder predict` on a sweep with a sealed target, served in-process
//! with a fake worker. Before the lock the target's curve is refused (exit 2) and its losses read
//! `sealed`; once every fitted run ends the lock appears by itself; once the target ends,
//! `ladder predict` scores it, and `--lock` is refused from then on.
mod common;

use std::time::Duration;

use common::{ladder, text};
use ladder_proto::pb;
use ladder_testkit::sealed::{SPEC, end_fitted_runs, run, truth};
use ladder_testkit::server::*;

#[tokio::test]
async fn ladder_predict_shows_the_lock_and_scores_the_target() {
    let (mut s, w) = Server::with_sweep(Duration::from_secs(60), Some(SPEC)).await;
    let addr = format!("http://{}", s.addr());
    let cli = |args: &[&str]| {
        let mut all = vec!["--coordinator", addr.as_str()];
        all.extend_from_slice(args);
        all.into_iter().map(String::from).collect::<Vec<_>>()
    };
    let run_cli = |args: Vec<String>| async move {
        let refs: Vec<&str> = args.iter().map(String::as_str).collect();
        ladder(&refs).await
    };
    let t = register_worker(&mut s.workers, "t").await;
    let jobs = s.users.list_jobs(pb::ListJobsRequest { sweep: "sealed".into() }).await.expect("jobs").into_inner().jobs;
    let target = jobs.iter().find(|j| j.sealed).expect("a target").clone();
    let a = acquire(&mut s.workers, &t).await.expect("the target leases first");
    let target_loss = truth(target.n_params as f64, 3840.0, target.id);
    let events = run(60, target_loss);
    s.workers.report_events(report(&t, &a, events[..1].to_vec())).await.expect("report");

    let o = run_cli(cli(&["predict", "sealed"])).await;
    let (out, err) = text(&o);
    assert!(o.status.success(), "{out}{err}");
    assert!(out.contains("1 sealed target; predictions not locked yet"), "{out}");
    let o = run_cli(cli(&["curves", &target.id.to_string()])).await;
    let (out, err) = text(&o);
    assert_eq!(o.status.code(), Some(2), "{out}{err}");
    assert!(err.contains("sealed target") && err.contains("ladder predict sealed --lock"), "{err}");
    let o = run_cli(cli(&["jobs", "sealed"])).await;
    let (out, _) = text(&o);
    let row = out.lines().find(|l| l.trim_start().starts_with(&format!("{} ", target.id))).expect("the target's row");
    assert!(row.contains("sealed"), "{row}");

    end_fitted_runs(&mut s, &w, &jobs).await;
    let mut locked = false;
    for _ in 0..600 {
        let (out, _) = text(&run_cli(cli(&["predict", "sealed"])).await);
        if out.contains("predictions locked") {
            locked = true;
            assert!(out.contains("every job the fits use had ended") && out.contains("fitted on 16 runs"), "{out}");
            assert!(out.contains("Chinchilla") && out.contains("persistence") && out.contains("running"), "{out}");
            let backtest =
                out.lines().find(|l| l.trim_start().starts_with("Chinchilla") && l.contains("at every distance"));
            assert!(backtest.is_some_and(|l| l.contains("of 4")), "the backtest at the lock: {out}");
            assert!(out.contains("Chinchilla's additivity at the lock holds: from D = 512 to 3840"), "{out}");
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(locked, "the lock, once every fitted run ended");
    let o = run_cli(cli(&["export", "sealed"])).await;
    let (out, err) = text(&o);
    assert!(o.status.success(), "{err}");
    assert!(err.contains("left out the sealed targets"), "{err}");
    assert!(!out.lines().skip(1).any(|l| l.starts_with(&format!("{},", target.id))), "no target row");

    let mut rest = events[1..].to_vec();
    rest.push(finished(60));
    s.workers.report_events(report(&t, &a, rest)).await.expect("the target ends");
    let o = run_cli(cli(&["predict", "sealed"])).await;
    let (out, err) = text(&o);
    assert!(o.status.success(), "{err}");
    assert!(out.contains(&format!("measured {target_loss:.4}")) && out.contains("the lock is final"), "{out}");
    // The target's table follows its header ("measured …"); the lock's backtest lines precede it.
    let table = &out[out.find(&format!("measured {target_loss:.4}")).expect("the target's header")..];
    let chinchilla = table.lines().find(|l| l.trim_start().starts_with("Chinchilla")).expect("Chinchilla's row");
    assert!(chinchilla.contains("yes"), "its interval covers the target: {chinchilla}");
    let o = run_cli(cli(&["--output", "json", "predict", "sealed"])).await;
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).expect("JSON");
    assert_eq!(v["targets"][0]["measured"].as_f64(), Some(target_loss));
    let o = run_cli(cli(&["predict", "sealed", "--lock"])).await;
    let (out, err) = text(&o);
    assert_eq!(o.status.code(), Some(2), "{out}{err}");
    assert!(err.contains("the lock is final"), "{err}");
    s.shutdown().await;
}
