//! The store's on-disk format: a job's cold config lives apart from its hot record (format 4),
//! configs and points in the store's own encodings (format 5); stores of formats 3 and 4 are
//! carried forward on open.

use std::time::Duration;

use ladder_coordinator::Store;
use ladder_coordinator::tables::{CURVE_BLOCKS, CURVES, FORMAT_VERSION, JOB_CONFIGS, JOBS, META};
use ladder_core::job::JobConfig;
use ladder_proto::pb;
use ladder_testkit::server::*;
use redb::{ReadableDatabase, ReadableTable};

/// A job's config as the listing sends it.
fn config_of(j: &pb::Job) -> JobConfig {
    JobConfig::try_from(j.config.as_ref().expect("ListJobs carries each config")).expect("a valid config")
}

/// A job's config as TOML, as formats 3 and 4 kept it.
fn toml_of(j: &pb::Job) -> String {
    config_of(j).to_toml().expect("toml")
}

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
    assert!(jobs.iter().all(|j| j.config.is_some()), "ListJobs carries each config");
    let db = redb::Database::open(&path).expect("open");
    let r = db.begin_read().expect("read");
    let hot = r.open_table(JOBS).expect("jobs");
    let cold = r.open_table(JOB_CONFIGS).expect("configs");
    for j in &jobs {
        let record = String::from_utf8(hot.get(j.id).expect("get").expect("record").value().to_vec()).expect("utf8");
        assert!(!record.contains("config_toml"), "job {}: the hot record holds no config: {record}", j.id);
        let stored: JobConfig =
            serde_json::from_str(cold.get(j.id).expect("get").expect("config").value()).expect("json");
        assert_eq!(stored, config_of(j), "job {}", j.id);
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
                v["config_toml"] = serde_json::Value::String(toml_of(j));
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
    assert_eq!(after.iter().map(config_of).collect::<Vec<_>>(), jobs.iter().map(config_of).collect::<Vec<_>>());
    let db = redb::Database::open(&path).expect("open");
    let r = db.begin_read().expect("read");
    assert_eq!(
        r.open_table(META).expect("meta").get("format_version").expect("get").map(|v| v.value()),
        Some(FORMAT_VERSION)
    );
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
            drop(curves);
            wtx.delete_table(CURVE_BLOCKS).expect("blocks");
            let mut configs = wtx.open_table(JOB_CONFIGS).expect("configs");
            for j in &jobs {
                configs.insert(j.id, toml_of(j).as_str()).expect("insert");
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
    assert_eq!(jobs_after.iter().map(config_of).collect::<Vec<_>>(), jobs.iter().map(config_of).collect::<Vec<_>>());
    let db = redb::Database::open(&path).expect("open");
    let r = db.begin_read().expect("read");
    assert_eq!(
        r.open_table(META).expect("meta").get("format_version").expect("get").map(|v| v.value()),
        Some(FORMAT_VERSION)
    );
}

/// Rewrites a store of this build as format `to` (1 or 2) wrote it, with what older builds also
/// left behind: a NaN stored as null, a record and a point that do not read at all.
fn downgrade(path: &std::path::Path, to: u64, jobs: &[pb::Job], nan_job: u64) {
    use ladder_coordinator::tables::{JOB_COUNTS, LEASES, OPEN_JOBS, QUEUE, QUEUE_V1, SWEEP_COUNTS};
    use prost::Message;
    let db = redb::Database::open(path).expect("open");
    let w = db.begin_write().expect("write");
    {
        let mut hot = w.open_table(JOBS).expect("jobs");
        for j in jobs {
            let mut v: serde_json::Value =
                serde_json::from_slice(hot.get(j.id).expect("get").expect("record").value()).expect("json");
            v["config_toml"] = serde_json::Value::String(toml_of(j));
            let o = v.as_object_mut().expect("object");
            for gone in ["micro_seqs", "contiguous", "exclusive"] {
                o.remove(gone);
            }
            if j.id == nan_job {
                v["lr"] = serde_json::Value::Null;
                v["progress"]["tokens_per_s"] = serde_json::Value::Null;
            }
            hot.insert(j.id, serde_json::to_vec(&v).expect("json").as_slice()).expect("insert");
        }
        hot.insert(777, b"{\"id\": 777, \"state\": ".as_slice()).expect("garbage");
        // Points one key per step, as protobuf, as formats before 5 kept them.
        let mut curves = w.open_table(CURVES).expect("curves");
        let blocks: Vec<(u64, Vec<u8>)> = w
            .open_table(CURVE_BLOCKS)
            .expect("blocks")
            .iter()
            .expect("iter")
            .map(|r| {
                let (k, v) = r.expect("row");
                (k.value().0, v.value().to_vec())
            })
            .collect();
        for (job, block) in blocks {
            for rec in block.chunks_exact(ladder_coordinator::codec::POINT_BYTES) {
                let p = ladder_coordinator::codec::decode_point(rec).expect("decodes");
                curves
                    .insert((job, p.point.step), pb::MetricPoint::from(&p).encode_to_vec().as_slice())
                    .expect("insert");
            }
        }
        drop(curves);
        w.delete_table(CURVE_BLOCKS).expect("drop");
        let mut curves = w.open_table(CURVES).expect("curves");
        curves.insert((nan_job, 40), [0xffu8; 7].as_slice()).expect("garbage point");
    }
    if to < 2 {
        let ids: Vec<u64> =
            w.open_table(QUEUE).expect("queue").iter().expect("iter").map(|r| r.expect("row").0.value().1).collect();
        let mut old = w.open_table(QUEUE_V1).expect("queue v1");
        for id in ids.into_iter().chain([777]) {
            old.insert(id, ()).expect("insert");
        }
        drop(old);
        w.delete_table(QUEUE).expect("drop");
    }
    w.delete_table(LEASES).expect("drop");
    w.delete_table(OPEN_JOBS).expect("drop");
    w.delete_table(JOB_CONFIGS).expect("drop");
    w.delete_table(JOB_COUNTS).expect("drop");
    w.delete_table(SWEEP_COUNTS).expect("drop");
    w.open_table(META).expect("meta").insert("format_version", to).expect("format");
    w.commit().expect("commit");
}

async fn carried_forward_from(format: u64) {
    let tmp = tempfile::tempdir().expect("tmp");
    let path = tmp.path().join("ladder.redb");
    let s = start(Store::open(&path).expect("store"), Duration::from_secs(30)).await;
    let (mut users, mut workers) = (s.users.clone(), s.workers.clone());
    register_dataset(&mut users).await;
    users.submit_sweep(pb::SubmitSweepRequest { spec_toml: SPEC.into(), ..Default::default() }).await.expect("submit");
    let w = register_worker(&mut workers, "w").await;
    let a = acquire(&mut workers, &w).await.expect("a job");
    workers.report_events(report(&w, &a, (1..=3).map(|k| point(k, 2.0 / k as f64)).collect())).await.expect("report");
    let jobs = users.list_jobs(pb::ListJobsRequest { sweep: "fence".into() }).await.expect("jobs").into_inner().jobs;
    s.shutdown().await;
    downgrade(&path, format, &jobs, a.job_id);

    let s = start(
        Store::open(&path).unwrap_or_else(|e| panic!("a format {format} store opens: {e}")),
        Duration::from_secs(30),
    )
    .await;
    let (mut users, mut workers) = (s.users.clone(), s.workers.clone());
    let after = users.list_jobs(pb::ListJobsRequest { sweep: "fence".into() }).await.expect("jobs").into_inner().jobs;
    assert_eq!(
        after.iter().map(|j| (j.id, config_of(j))).collect::<Vec<_>>(),
        jobs.iter().map(|j| (j.id, config_of(j))).collect::<Vec<_>>()
    );
    let running = after.iter().find(|j| j.id == a.job_id).expect("the leased job");
    assert_eq!(running.state, pb::JobState::Running as i32);
    assert!(running.lr.is_nan(), "null read as NaN: {}", running.lr);
    let sweep = users.get_sweep(pb::GetSweepRequest { sweep: "fence".into() }).await.expect("sweep").into_inner();
    assert_eq!((sweep.jobs_queued, sweep.jobs_running), (1, 1), "counts rebuilt: {sweep:?}");
    let curve = users
        .get_curve(pb::GetCurveRequest { job_id: a.job_id, after_step: 0, limit: 0 })
        .await
        .expect("curve")
        .into_inner();
    assert_eq!(curve.points.iter().map(|p| p.step).collect::<Vec<_>>(), vec![1, 2, 3], "the garbage point dropped");
    // The lease index was built: the worker's attempt goes on, and the other job is queued.
    let r = workers.report_events(report(&w, &a, vec![point(4, 0.4)])).await.expect("report").into_inner();
    assert_eq!(r.stored, 1);
    let other = acquire(&mut workers, &w).await.expect("the queued job");
    assert_ne!(other.job_id, a.job_id);
    s.shutdown().await;
}

#[tokio::test]
async fn a_format_1_store_with_nulls_and_unreadable_records_opens() {
    carried_forward_from(1).await;
}

#[tokio::test]
async fn a_format_2_store_with_nulls_and_unreadable_records_opens() {
    carried_forward_from(2).await;
}

#[tokio::test]
async fn a_format_6_store_moves_its_checkpoints_to_files_and_gives_the_space_back() {
    use ladder_coordinator::tables::{CHECKPOINT_CHUNKS, CHECKPOINT_STAGING, CHECKPOINTS};
    let tmp = tempfile::tempdir().expect("tmp");
    let path = tmp.path().join("ladder.redb");
    let s = start(Store::open(&path).expect("store"), Duration::from_secs(30)).await;
    let (mut users, mut workers) = (s.users.clone(), s.workers.clone());
    register_dataset(&mut users).await;
    users.submit_sweep(pb::SubmitSweepRequest { spec_toml: SPEC.into(), ..Default::default() }).await.expect("submit");
    let w = register_worker(&mut workers, "w").await;
    let a = acquire(&mut workers, &w).await.expect("a job");
    workers.report_events(report(&w, &a, vec![point(1, 2.0), point(2, 1.0)])).await.expect("report");
    let blob: Vec<u8> = (0..(24u32 << 20)).map(|i| (i % 251) as u8).collect();
    upload_checkpoint(&mut workers, &w, &a, 2, &blob).await.expect("upload");
    s.shutdown().await;
    // Written back as format 6 kept it: the bytes in 1 MiB chunks in redb, the record naming
    // how many, no file.
    {
        let db = redb::Database::create(&path).expect("open");
        let wtx = db.begin_write().expect("write");
        {
            let mut records = wtx.open_table(CHECKPOINTS).expect("records");
            let rec: serde_json::Value =
                serde_json::from_slice(records.get((a.job_id, 2)).expect("get").expect("record").value())
                    .expect("json");
            std::fs::remove_file(tmp.path().join("checkpoints").join(rec["file"].as_str().expect("file"))).expect("rm");
            let old = serde_json::json!({
                "attempt": rec["attempt"], "bytes": rec["bytes"], "sha256": rec["sha256"], "chunks": 24
            });
            records.insert((a.job_id, 2), serde_json::to_vec(&old).expect("json").as_slice()).expect("insert");
            let mut chunks = wtx.open_table(CHECKPOINT_CHUNKS).expect("chunks");
            for (i, c) in blob.chunks(1 << 20).enumerate() {
                chunks.insert((a.job_id, 2, i as u32), c).expect("chunk");
            }
            wtx.open_table(CHECKPOINT_STAGING).expect("staging");
        }
        wtx.delete_table(ladder_coordinator::tables::DOOMED_FILES).expect("drop");
        wtx.open_table(META).expect("meta").insert("format_version", 6).expect("format");
        wtx.commit().expect("commit");
    }
    let before = std::fs::metadata(&path).expect("size").len();
    assert!(before > 24 << 20, "the bytes are in the redb file: {before}");
    let s = start(Store::open(&path).expect("a format 6 store opens"), Duration::from_secs(30)).await;
    let mut workers = s.workers.clone();
    assert_eq!(download_checkpoint(&mut workers, a.job_id, 2).await.expect("download"), blob, "the same bytes");
    s.shutdown().await;
    let after = std::fs::metadata(&path).expect("size").len();
    assert!(after < before - (20 << 20), "compacted: {before} → {after} bytes");
    let dir = tmp.path().join("checkpoints").join(a.job_id.to_string());
    let sizes: Vec<u64> =
        std::fs::read_dir(dir).expect("dir").flatten().map(|e| e.metadata().expect("m").len()).collect();
    assert_eq!(sizes, vec![blob.len() as u64], "one file, the checkpoint's");
}

#[tokio::test]
async fn a_format_7_store_moves_its_points_into_blocks_and_serves_the_same_curve() {
    let tmp = tempfile::tempdir().expect("tmp");
    let path = tmp.path().join("ladder.redb");
    let s = start(Store::open(&path).expect("store"), Duration::from_secs(30)).await;
    let (mut users, mut workers) = (s.users.clone(), s.workers.clone());
    register_dataset(&mut users).await;
    let spec = SPEC.replace("steps = 5", "steps = 40");
    users.submit_sweep(pb::SubmitSweepRequest { spec_toml: spec, ..Default::default() }).await.expect("submit");
    let w = register_worker(&mut workers, "w").await;
    let a = acquire(&mut workers, &w).await.expect("a job");
    // Steps 1..=40 but 35: across two blocks, with a hole.
    let events = (1..=40).filter(|k| *k != 35).map(|k| point(k, 2.0 / k as f64)).collect();
    workers.report_events(report(&w, &a, events)).await.expect("report");
    let curve = |mut users: pb::ladder_client::LadderClient<tonic::transport::Channel>, after_step, limit| async move {
        users.get_curve(pb::GetCurveRequest { job_id: a.job_id, after_step, limit }).await.expect("curve").into_inner()
    };
    let before = curve(users.clone(), 0, 0).await.points;
    s.shutdown().await;
    assert_eq!(before.len(), 39);
    // Written back as format 7 kept it: one key per step.
    {
        let db = redb::Database::create(&path).expect("open");
        let wtx = db.begin_write().expect("write");
        {
            let blocks: Vec<(u64, Vec<u8>)> = wtx
                .open_table(CURVE_BLOCKS)
                .expect("blocks")
                .iter()
                .expect("iter")
                .map(|r| {
                    let (k, v) = r.expect("row");
                    (k.value().0, v.value().to_vec())
                })
                .collect();
            let mut curves = wtx.open_table(CURVES).expect("curves");
            for (job, block) in blocks {
                for rec in block.chunks_exact(ladder_coordinator::codec::POINT_BYTES) {
                    curves.insert((job, ladder_coordinator::curves::step_of(rec)), rec).expect("insert");
                }
            }
        }
        wtx.delete_table(CURVE_BLOCKS).expect("drop");
        wtx.open_table(META).expect("meta").insert("format_version", 7).expect("format");
        wtx.commit().expect("commit");
    }
    let s = start(Store::open(&path).expect("a format 7 store opens"), Duration::from_secs(30)).await;
    assert_eq!(curve(s.users.clone(), 0, 0).await.points, before, "every point as it was");
    let page = curve(s.users.clone(), 30, 3).await;
    assert_eq!(page.points.iter().map(|p| p.step).collect::<Vec<_>>(), vec![31, 32, 33]);
    let page = curve(s.users.clone(), 33, 3).await;
    assert_eq!(page.points.iter().map(|p| p.step).collect::<Vec<_>>(), vec![34, 36, 37], "the hole stays a hole");
    s.shutdown().await;
    let db = redb::Database::open(&path).expect("open");
    let r = db.begin_read().expect("read");
    assert!(r.open_table(CURVES).is_err(), "the per-step table is gone");
}
