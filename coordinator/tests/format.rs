//! The store's on-disk format: a job's cold config lives apart from its hot record (format 4),
//! configs and points in the store's own encodings (format 5); stores of formats 3 and 4 are
//! carried forward on open.

use std::time::Duration;

use ladder_coordinator::Store;
use ladder_coordinator::tables::{CURVES, FORMAT_VERSION, JOB_CONFIGS, JOBS, META};
use ladder_core::job::JobConfig;
use ladder_proto::pb;
use ladder_testkit::server::*;
use redb::{ReadableDatabase, ReadableTable};

async fn submitted(path: &std::path::Path) -> Vec<pb::Job> {
    let s = start(Store::open(path).expect("store"), Duration::from_secs(30)).await;
    let mut users = s.users.clone();
    register_dataset(&mut users).await;
    users.submit_sweep(pb::SubmitSweepRequest { spec_toml: SPEC.into(), ..Default::default() }).await.expect("submit");
    let jobs = users.list_jobs(pb::ListJobsRequest { sweep: "fence".into() }).await.expect("jobs").into_inner().jobs;
    s.shutdown().await;
    jobs
}

#[tokio::test]
async fn reports_rewrite_the_hot_record_only_and_listings_keep_the_config() {
    let tmp = tempfile::tempdir().expect("tmp");
    let path = tmp.path().join("ladder.redb");
    let jobs = submitted(&path).await;
    assert!(!jobs.is_empty());
    assert!(jobs.iter().all(|j| j.config_toml.contains("[model]")), "ListJobs carries each config");
    let db = redb::Database::open(&path).expect("open");
    let r = db.begin_read().expect("read");
    let hot = r.open_table(JOBS).expect("jobs");
    let cold = r.open_table(JOB_CONFIGS).expect("configs");
    for j in &jobs {
        let record = String::from_utf8(hot.get(j.id).expect("get").expect("record").value().to_vec()).expect("utf8");
        assert!(!record.contains("config_toml"), "job {}: the hot record holds no config: {record}", j.id);
        let stored: JobConfig =
            serde_json::from_str(cold.get(j.id).expect("get").expect("config").value()).expect("json");
        assert_eq!(stored, JobConfig::from_toml(&j.config_toml, "wire").expect("toml"), "job {}", j.id);
    }
}

#[tokio::test]
async fn a_format_3_store_moves_its_configs_out_on_open() {
    let tmp = tempfile::tempdir().expect("tmp");
    let path = tmp.path().join("ladder.redb");
    let jobs = submitted(&path).await;
    // Write it back as format 3 wrote it: the config inside each record, no config table.
    {
        let db = redb::Database::open(&path).expect("open");
        let w = db.begin_write().expect("write");
        {
            let mut hot = w.open_table(JOBS).expect("jobs");
            for j in &jobs {
                let mut v: serde_json::Value =
                    serde_json::from_slice(hot.get(j.id).expect("get").expect("record").value()).expect("json");
                v["config_toml"] = serde_json::Value::String(j.config_toml.clone());
                v.as_object_mut().expect("object").remove("micro_seqs");
                hot.insert(j.id, serde_json::to_vec(&v).expect("json").as_slice()).expect("insert");
            }
        }
        w.delete_table(JOB_CONFIGS).expect("drop configs");
        w.open_table(META).expect("meta").insert("format_version", 3).expect("format");
        w.commit().expect("commit");
    }
    let s = start(Store::open(&path).expect("a format 3 store opens"), Duration::from_secs(30)).await;
    let mut users = s.users.clone();
    let after = users.list_jobs(pb::ListJobsRequest { sweep: "fence".into() }).await.expect("jobs").into_inner().jobs;
    s.shutdown().await;
    assert_eq!(
        after.iter().map(|j| j.config_toml.clone()).collect::<Vec<_>>(),
        jobs.iter().map(|j| j.config_toml.clone()).collect::<Vec<_>>()
    );
    let db = redb::Database::open(&path).expect("open");
    let r = db.begin_read().expect("read");
    assert_eq!(r.open_table(META).expect("meta").get("format_version").expect("get").map(|v| v.value()), Some(5));
    let hot = r.open_table(JOBS).expect("jobs");
    for j in &jobs {
        let record = String::from_utf8(hot.get(j.id).expect("get").expect("record").value().to_vec()).expect("utf8");
        assert!(!record.contains("config_toml"), "job {}: migrated record still holds its config", j.id);
    }
}

#[tokio::test]
async fn a_format_4_store_reencodes_its_points_and_configs_on_open() {
    use prost::Message;
    let tmp = tempfile::tempdir().expect("tmp");
    let path = tmp.path().join("ladder.redb");
    // A job with a curve, written by this build.
    let s = start(Store::open(&path).expect("store"), Duration::from_secs(30)).await;
    let mut users = s.users.clone();
    let mut workers = s.workers.clone();
    register_dataset(&mut users).await;
    users.submit_sweep(pb::SubmitSweepRequest { spec_toml: SPEC.into(), ..Default::default() }).await.expect("submit");
    let w = register_worker(&mut workers, "w").await;
    let a = acquire(&mut workers, &w).await.expect("a job");
    let events = (1..=3).map(|k| point(k, 2.0 / k as f64)).collect();
    workers.report_events(report(&w, &a, events)).await.expect("report");
    let curve = |mut users: pb::ladder_client::LadderClient<tonic::transport::Channel>, job_id| async move {
        users
            .get_curve(pb::GetCurveRequest { job_id, after_step: 0, limit: 0 })
            .await
            .expect("curve")
            .into_inner()
            .points
    };
    let before = curve(users.clone(), a.job_id).await;
    let jobs = users.list_jobs(pb::ListJobsRequest { sweep: "fence".into() }).await.expect("jobs").into_inner().jobs;
    s.shutdown().await;
    assert_eq!(before.len(), 3);
    // Write it back as format 4 kept it: points as protobuf, configs as TOML.
    {
        let db = redb::Database::open(&path).expect("open");
        let wtx = db.begin_write().expect("write");
        {
            let mut curves = wtx.open_table(CURVES).expect("curves");
            for p in &before {
                curves.insert((a.job_id, p.step), p.encode_to_vec().as_slice()).expect("insert");
            }
            let mut configs = wtx.open_table(JOB_CONFIGS).expect("configs");
            for j in &jobs {
                configs.insert(j.id, j.config_toml.as_str()).expect("insert");
            }
        }
        wtx.open_table(META).expect("meta").insert("format_version", 4).expect("format");
        wtx.commit().expect("commit");
    }
    let s = start(Store::open(&path).expect("a format 4 store opens"), Duration::from_secs(30)).await;
    let after = curve(s.users.clone(), a.job_id).await;
    let jobs_after =
        s.users.clone().list_jobs(pb::ListJobsRequest { sweep: "fence".into() }).await.expect("jobs").into_inner().jobs;
    s.shutdown().await;
    assert_eq!(after, before, "every point reads back as it was, attempt included");
    assert_eq!(
        jobs_after.iter().map(|j| j.config_toml.clone()).collect::<Vec<_>>(),
        jobs.iter().map(|j| j.config_toml.clone()).collect::<Vec<_>>()
    );
    let db = redb::Database::open(&path).expect("open");
    let r = db.begin_read().expect("read");
    assert_eq!(
        r.open_table(META).expect("meta").get("format_version").expect("get").map(|v| v.value()),
        Some(FORMAT_VERSION)
    );
}
