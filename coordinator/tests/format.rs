//! The store's on-disk format: a job's cold config lives apart from its hot record (format 4),
//! and a store of format 3, whose records carry the config, is carried forward on open.
mod common;

use std::time::Duration;

use common::*;
use ladder_coordinator::Store;
use ladder_coordinator::store::{JOB_CONFIGS, JOBS, META};
use ladder_proto::pb;
use redb::{ReadableDatabase, ReadableTable};

async fn submitted(path: &std::path::Path) -> Vec<pb::Job> {
    let s = start(Store::open(path).expect("store"), Duration::from_secs(30)).await;
    let mut users = s.users.clone();
    register_dataset(&mut users).await;
    users.submit_sweep(pb::SubmitSweepRequest { spec_toml: SPEC.into() }).await.expect("submit");
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
        assert_eq!(cold.get(j.id).expect("get").expect("config").value(), j.config_toml);
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
    assert_eq!(r.open_table(META).expect("meta").get("format_version").expect("get").map(|v| v.value()), Some(4));
    let hot = r.open_table(JOBS).expect("jobs");
    for j in &jobs {
        let record = String::from_utf8(hot.get(j.id).expect("get").expect("record").value().to_vec()).expect("utf8");
        assert!(!record.contains("config_toml"), "job {}: migrated record still holds its config", j.id);
    }
}
