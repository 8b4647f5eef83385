//! Sweeps, jobs, leases and curves as operations on a transaction. Write operations check
//! before they write (so a refused one leaves its batch untouched); fencing lives in [`current`].
use ladder_core::sweep::{self, DatasetFacts};
use ladder_proto::pb;
use prost::Message;
use redb::{ReadTransaction, ReadableTable, WriteTransaction};

use crate::error::{CoordError, Result};
use crate::records::*;
use crate::store::*;

fn get_job_w(txn: &WriteTransaction, id: u64) -> Result<JobRecord> {
    let t = txn.open_table(JOBS)?;
    let v = t.get(id)?.ok_or_else(|| CoordError::NotFound(format!("job {id}")))?;
    from_json(v.value())
}

fn put_job(txn: &WriteTransaction, job: &JobRecord) -> Result<()> {
    txn.open_table(JOBS)?.insert(job.id, to_json(job)?.as_slice())?;
    Ok(())
}

fn dataset_facts_w(txn: &WriteTransaction, name: &str) -> Result<Option<(DatasetRecord, DatasetFacts)>> {
    let names = txn.open_table(DATASET_NAMES)?;
    let Some(sha) = names.get(name)?.map(|v| v.value().to_string()) else { return Ok(None) };
    let t = txn.open_table(DATASETS)?;
    let Some(rec) = t.get(sha.as_str())? else { return Ok(None) };
    let rec: DatasetRecord = from_json(rec.value())?;
    let facts = DatasetFacts { vocab: i64::from(rec.vocab), train_tokens: rec.train_bytes / 2 };
    Ok(Some((rec, facts)))
}

/// Validates and stores a sweep with its jobs. Same name and same spec: the existing sweep,
/// `created = false`. Same name, other spec: refused.
pub fn submit_sweep(txn: &WriteTransaction, spec: &str, now: i64) -> Result<(SweepRecord, bool)> {
    // Validate against the datasets we hold; nothing is written unless the whole spec is valid.
    let mut dataset: Option<DatasetRecord> = None;
    let mut lookup_err = None;
    let plan = sweep::plan(spec, "spec", |name| match dataset_facts_w(txn, name) {
        Ok(Some((rec, facts))) => {
            dataset = Some(rec);
            Some(facts)
        }
        Ok(None) => None,
        Err(e) => {
            lookup_err = Some(e);
            None
        }
    });
    if let Some(e) = lookup_err {
        return Err(e);
    }
    let plan = plan?;
    let dataset = dataset.ok_or_else(|| CoordError::NotFound(format!("dataset {}", plan.dataset)))?;
    let existing = txn.open_table(SWEEP_NAMES)?.get(plan.name.as_str())?.map(|v| v.value());
    if let Some(id) = existing {
        let rec: SweepRecord = from_json(
            txn.open_table(SWEEPS)?.get(id)?.ok_or_else(|| CoordError::storage("dangling sweep name"))?.value(),
        )?;
        if rec.spec_toml == spec {
            return Ok((rec, false));
        }
        return Err(CoordError::AlreadyExists(format!(
            "a different sweep named {:?} exists (id {id}); rename this one or cancel that one",
            plan.name
        )));
    }
    let id = next_id(txn, "next_sweep_id")?;
    let mut job_ids = Vec::with_capacity(plan.jobs.len());
    for (index, jp) in plan.jobs.iter().enumerate() {
        let job_id = next_id(txn, "next_job_id")?;
        job_ids.push(job_id);
        let job = JobRecord {
            id: job_id,
            sweep_id: id,
            index: index as u32,
            state: JobState::Queued,
            attempt: 0,
            restarts: 0,
            max_restarts: plan.max_restarts,
            config_toml: jp.config.to_toml(),
            shape: jp.shape,
            accounting: jp.accounting,
            total_steps: jp.total_steps,
            lr: jp.lr,
            batch_tokens: jp.config.train.batch_tokens,
            dataset_tokens: jp.dataset_tokens,
            seed: jp.config.train.seed,
            dataset_sha256: dataset.sha256.clone(),
            device: jp.config.device.clone(),
            lease: None,
            progress: Progress::default(),
            failure: None,
            checkpoint_step: 0,
            resumed_from_step: 0,
            cost_flops: 3.0
                * jp.accounting.fwd_flops_per_token_exact
                * jp.total_steps as f64
                * jp.config.train.batch_tokens as f64,
            memory_bytes: ladder_core::memory::MemoryEstimate::training(
                &jp.shape,
                micro_seqs(&jp.config, &jp.shape),
                1,
            )
            .total(),
            fuse_class: jp.fuse_class,
            fuse: plan.fuse,
        };
        put_job(txn, &job)?;
        enqueue(txn, &job)?;
    }
    let rec = SweepRecord {
        id,
        name: plan.name.clone(),
        spec_toml: spec.to_string(),
        dataset: plan.dataset.clone(),
        dataset_sha256: dataset.sha256.clone(),
        state: SweepState::Running,
        created_ms: now,
        job_ids,
    };
    txn.open_table(SWEEPS)?.insert(id, to_json(&rec)?.as_slice())?;
    txn.open_table(SWEEP_NAMES)?.insert(plan.name.as_str(), id)?;
    Ok((rec, true))
}

/// Sequences per micro-batch of a planned job.
fn micro_seqs(c: &ladder_core::job::JobConfig, s: &ladder_core::shape::Shape) -> u64 {
    c.train.micro_batch.unwrap_or(c.train.batch_tokens / (s.n_ctx.max(1) as u64))
}

/// A job's place in the queue: the costliest first, then by id.
pub fn rank(job: &JobRecord) -> u64 {
    // In MFLOPs, so 1e24-FLOP jobs still order; a NaN or negative cost ranks last.
    let mflops = if job.cost_flops.is_finite() && job.cost_flops > 0.0 { job.cost_flops / 1e6 } else { 0.0 };
    u64::MAX - (mflops.min(u64::MAX as f64 / 2.0) as u64)
}

fn enqueue(txn: &WriteTransaction, job: &JobRecord) -> Result<()> {
    txn.open_table(QUEUE)?.insert((rank(job), job.id), ())?;
    Ok(())
}

fn dequeue(txn: &WriteTransaction, job: &JobRecord) -> Result<()> {
    txn.open_table(QUEUE)?.remove((rank(job), job.id))?;
    Ok(())
}

/// What a slot asks for.
#[derive(Debug, Clone, Copy, Default)]
pub struct SlotAsk<'a> {
    pub worker_id: &'a str,
    pub slot: &'a str,
    /// Most jobs it trains fused; 0 or 1 = one.
    pub max_jobs: u32,
    /// Device memory it can give, by estimate; 0 = no limit.
    pub memory_bytes: u64,
}

/// Whether a job with device request `want` may run on `slot`.
fn slot_fits(want: &str, slot: &str) -> bool {
    match want {
        "cpu" => slot == "cpu",
        "cuda" => slot.starts_with("cuda"),
        "auto" | "" => true,
        exact => exact == slot,
    }
}

/// Leases the first queued job (costliest first) that fits the slot, as a new attempt, and up to
/// `max_jobs − 1` more that may train fused with it (the same sweep and fusing class, resuming
/// from the same step, within the slot's memory together); returns the assignments and the jobs
/// as now stored, the first one first.
pub fn claim(
    txn: &WriteTransaction,
    ask: SlotAsk<'_>,
    ttl_ms: u64,
    now: i64,
) -> Result<Vec<(pb::Assignment, JobRecord)>> {
    let queued: Vec<(u64, u64)> = {
        let q = txn.open_table(QUEUE)?;
        q.iter()?.map(|r| r.map(|(k, _)| k.value())).collect::<Result<_, _>>()?
    };
    let mut picked: Vec<JobRecord> = Vec::new();
    let mut memory = 0u64;
    for (rank_key, id) in queued {
        let job = match get_job_w(txn, id) {
            Ok(j) => j,
            Err(CoordError::NotFound(_)) => {
                txn.open_table(QUEUE)?.remove((rank_key, id))?;
                continue;
            }
            Err(e) => return Err(e),
        };
        if job.state != JobState::Queued {
            txn.open_table(QUEUE)?.remove((rank_key, id))?;
            continue;
        }
        if !slot_fits(&job.device, ask.slot) {
            continue;
        }
        let fits_memory = ask.memory_bytes == 0 || memory.saturating_add(job.memory_bytes) <= ask.memory_bytes;
        match picked.first() {
            None => {
                if !fits_memory {
                    continue;
                }
            }
            Some(lead) => {
                let same = lead.sweep_id == job.sweep_id
                    && lead.fuse_class.is_some()
                    && lead.fuse_class == job.fuse_class
                    && lead.checkpoint_step == job.checkpoint_step;
                if !same || !fits_memory {
                    continue;
                }
            }
        }
        memory = memory.saturating_add(job.memory_bytes);
        let limit = ask.max_jobs.max(1).min(job.fuse.max(1)) as usize;
        picked.push(job);
        if picked.len() >= limit {
            break;
        }
    }
    let mut out = Vec::with_capacity(picked.len());
    for mut job in picked {
        dequeue(txn, &job)?;
        job.state = JobState::Running;
        job.attempt += 1;
        job.lease = Some(Lease { worker_id: ask.worker_id.to_string(), expires_ms: now + ttl_ms as i64 });
        job.resumed_from_step = job.checkpoint_step;
        put_job(txn, &job)?;
        let assignment = pb::Assignment {
            job_id: job.id,
            attempt: job.attempt,
            config_toml: job.config_toml.clone(),
            dataset_sha256: job.dataset_sha256.clone(),
            resume_step: job.checkpoint_step,
            lease_ttl_ms: ttl_ms,
        };
        out.push((assignment, job));
    }
    Ok(out)
}

/// Fencing: the job's current attempt must be `attempt`, leased to `worker_id`.
pub fn current(job: &JobRecord, worker_id: &str, attempt: u32) -> Result<()> {
    let held = job.state == JobState::Running
        && job.attempt == attempt
        && job.lease.as_ref().is_some_and(|l| l.worker_id == worker_id);
    if held {
        Ok(())
    } else {
        Err(CoordError::Stale(format!(
            "job {} attempt {attempt} from worker {worker_id}: the current attempt is {} ({:?})",
            job.id, job.attempt, job.state
        )))
    }
}

/// Renews the leases of attempts that are still current; returns those that must stop.
pub fn heartbeat(
    txn: &WriteTransaction,
    worker_id: &str,
    running: &[pb::AttemptRef],
    ttl_ms: u64,
    now: i64,
) -> Result<Vec<pb::AttemptRef>> {
    let mut stop = Vec::new();
    for r in running {
        let mut job = match get_job_w(txn, r.job_id) {
            Ok(j) => j,
            Err(CoordError::NotFound(_)) => {
                stop.push(*r);
                continue;
            }
            Err(e) => return Err(e),
        };
        if current(&job, worker_id, r.attempt).is_err() {
            stop.push(*r);
            continue;
        }
        job.lease = Some(Lease { worker_id: worker_id.to_string(), expires_ms: now + ttl_ms as i64 });
        put_job(txn, &job)?;
    }
    let mut workers = txn.open_table(WORKERS)?;
    let known = workers.get(worker_id)?.map(|v| v.value().to_vec());
    if let Some(w) = known {
        let mut w: WorkerRecord = from_json(&w)?;
        w.last_seen_ms = now;
        workers.insert(worker_id, to_json(&w)?.as_slice())?;
    }
    Ok(stop)
}

/// What a report changed.
pub struct Reported {
    pub stored: u32,
    pub job: JobRecord,
    pub requeued: bool,
}

/// Ends an attempt as failed: requeued if retriable and restarts remain, else failed for good.
fn fail_attempt(txn: &WriteTransaction, job: &mut JobRecord, kind: Failure, message: String) -> Result<bool> {
    job.lease = None;
    if kind.retriable() && job.restarts < job.max_restarts {
        job.restarts += 1;
        job.state = JobState::Queued;
        job.failure = Some((kind, message));
        enqueue(txn, job)?;
        return Ok(true);
    }
    job.state = JobState::Failed;
    job.failure = Some((kind, message));
    Ok(false)
}

/// Stores an attempt's events. Stale attempts are refused before anything is written.
pub fn report(
    txn: &WriteTransaction,
    worker_id: &str,
    job_id: u64,
    attempt: u32,
    events: &[pb::AttemptEvent],
) -> Result<Reported> {
    let mut job = get_job_w(txn, job_id)?;
    current(&job, worker_id, attempt)?;
    // Checked at the boundary, before anything is written.
    for ev in events {
        if let Some(pb::attempt_event::Kind::Metrics(m)) = &ev.kind {
            ladder_core::events::MetricPoint::try_from(m)?;
        }
    }
    let mut stored = 0;
    let mut requeued = false;
    let mut ended = false;
    for ev in events {
        match &ev.kind {
            Some(pb::attempt_event::Kind::Metrics(m)) => {
                let mut curves = txn.open_table(CURVES)?;
                if curves.get((job_id, m.step))?.is_none() {
                    let mut m = *m;
                    m.attempt = attempt;
                    curves.insert((job_id, m.step), m.encode_to_vec().as_slice())?;
                    stored += 1;
                }
                if m.step >= job.progress.step {
                    let val = m.val_loss.or(job.progress.val_loss);
                    job.progress = Progress {
                        step: m.step,
                        tokens: m.tokens,
                        train_loss: m.train_loss,
                        val_loss: val,
                        tokens_per_s: m.tokens_per_s,
                    };
                }
            }
            Some(pb::attempt_event::Kind::Finished(_)) if !ended => {
                ended = true;
                job.state = JobState::Succeeded;
                job.lease = None;
                job.failure = None;
            }
            Some(pb::attempt_event::Kind::Released(_)) if !ended => {
                ended = true;
                job.state = JobState::Queued;
                job.lease = None;
                enqueue(txn, &job)?;
                requeued = true;
            }
            Some(pb::attempt_event::Kind::Failed(f)) if !ended => {
                ended = true;
                let kind = ladder_proto::convert::failure_kind(f.kind);
                requeued = fail_attempt(txn, &mut job, kind, f.message.clone())?;
            }
            _ => {}
        }
    }
    put_job(txn, &job)?;
    if ended {
        settle_sweep(txn, job.sweep_id)?;
    }
    Ok(Reported { stored, job, requeued })
}

/// Marks a sweep done once every job has ended.
fn settle_sweep(txn: &WriteTransaction, sweep_id: u64) -> Result<()> {
    let Some(raw) = txn.open_table(SWEEPS)?.get(sweep_id)?.map(|v| v.value().to_vec()) else { return Ok(()) };
    let mut s: SweepRecord = from_json(&raw)?;
    if s.state != SweepState::Running {
        return Ok(());
    }
    for id in &s.job_ids {
        if !get_job_w(txn, *id)?.state.is_final() {
            return Ok(());
        }
    }
    s.state = SweepState::Done;
    txn.open_table(SWEEPS)?.insert(sweep_id, to_json(&s)?.as_slice())?;
    Ok(())
}

/// Requeues (or fails) every running job whose lease expired before `now`.
pub fn reap(txn: &WriteTransaction, now: i64) -> Result<Vec<JobRecord>> {
    let running: Vec<JobRecord> = {
        let t = txn.open_table(JOBS)?;
        let mut out = Vec::new();
        for r in t.iter()? {
            let (_, v) = r?;
            let j: JobRecord = from_json(v.value())?;
            if j.state == JobState::Running && j.lease.as_ref().is_some_and(|l| l.expires_ms < now) {
                out.push(j);
            }
        }
        out
    };
    let mut changed = Vec::new();
    for mut job in running {
        let holder = job.lease.as_ref().map(|l| l.worker_id.clone()).unwrap_or_default();
        let msg = format!("lease of attempt {} on worker {holder} expired", job.attempt);
        fail_attempt(txn, &mut job, Failure::Lost, msg)?;
        put_job(txn, &job)?;
        settle_sweep(txn, job.sweep_id)?;
        changed.push(job);
    }
    Ok(changed)
}

fn find_sweep_id<T: ReadableTable<&'static str, u64>>(names: &T, key: &str) -> Result<u64> {
    if let Some(id) = names.get(key)? {
        return Ok(id.value());
    }
    key.parse::<u64>().map_err(|_| CoordError::NotFound(format!("sweep {key:?}")))
}

/// Cancels a sweep: queued and running jobs become cancelled (running attempts stop at their next heartbeat).
pub fn cancel_sweep(txn: &WriteTransaction, key: &str) -> Result<(SweepRecord, Vec<JobRecord>)> {
    let id = find_sweep_id(&txn.open_table(SWEEP_NAMES)?, key)?;
    let raw = txn
        .open_table(SWEEPS)?
        .get(id)?
        .map(|v| v.value().to_vec())
        .ok_or_else(|| CoordError::NotFound(format!("sweep {key:?}")))?;
    let mut s: SweepRecord = from_json(&raw)?;
    let mut changed = Vec::new();
    for jid in &s.job_ids {
        let mut j = get_job_w(txn, *jid)?;
        if !j.state.is_final() {
            j.state = JobState::Cancelled;
            j.lease = None;
            dequeue(txn, &j)?;
            put_job(txn, &j)?;
            changed.push(j);
        }
    }
    if s.state == SweepState::Running {
        s.state = SweepState::Cancelled;
        txn.open_table(SWEEPS)?.insert(id, to_json(&s)?.as_slice())?;
    }
    Ok((s, changed))
}

/// Stores a complete, verified checkpoint blob from the current attempt.
pub fn put_checkpoint(
    txn: &WriteTransaction,
    h: &pb::CheckpointHeader,
    blob: &[u8],
) -> Result<(pb::CheckpointInfo, JobRecord)> {
    let mut job = get_job_w(txn, h.job_id)?;
    current(&job, &h.worker_id, h.attempt)?;
    let mut chunks = txn.open_table(CHECKPOINT_CHUNKS)?;
    let mut n = 0u32;
    for (i, c) in blob.chunks(CHUNK).enumerate() {
        chunks.insert((h.job_id, h.step, i as u32), c)?;
        n += 1;
    }
    let rec = CheckpointRecord { attempt: h.attempt, bytes: blob.len() as u64, sha256: h.sha256.clone(), chunks: n };
    txn.open_table(CHECKPOINTS)?.insert((h.job_id, h.step), to_json(&rec)?.as_slice())?;
    if h.step > job.checkpoint_step {
        job.checkpoint_step = h.step;
        put_job(txn, &job)?;
    }
    let info =
        pb::CheckpointInfo { job_id: h.job_id, step: h.step, attempt: h.attempt, bytes: rec.bytes, sha256: rec.sha256 };
    Ok((info, job))
}

/// Registers a dataset by content hash; a name points at its newest content.
pub fn put_dataset(txn: &WriteTransaction, rec: &DatasetRecord, train: &[u8], val: &[u8]) -> Result<()> {
    let mut chunks = txn.open_table(DATASET_CHUNKS)?;
    for (file, bytes) in [(0u8, train), (1u8, val)] {
        for (i, c) in bytes.chunks(CHUNK).enumerate() {
            chunks.insert((rec.sha256.as_str(), file, i as u32), c)?;
        }
    }
    txn.open_table(DATASETS)?.insert(rec.sha256.as_str(), to_json(rec)?.as_slice())?;
    txn.open_table(DATASET_NAMES)?.insert(rec.name.as_str(), rec.sha256.as_str())?;
    Ok(())
}

pub fn register_worker(txn: &WriteTransaction, name: &str, slots: &[String], now: i64) -> Result<String> {
    let id = format!("{name}-{}", next_id(txn, "next_worker_id")?);
    let rec = WorkerRecord { id: id.clone(), name: name.to_string(), slots: slots.to_vec(), last_seen_ms: now };
    txn.open_table(WORKERS)?.insert(id.as_str(), to_json(&rec)?.as_slice())?;
    Ok(id)
}

// ---------- reads ----------

pub fn list_workers(r: &ReadTransaction) -> Result<Vec<pb::WorkerInfo>> {
    let mut running: std::collections::HashMap<String, Vec<u64>> = Default::default();
    for row in r.open_table(JOBS)?.iter()? {
        let job: JobRecord = from_json(row?.1.value())?;
        if let (JobState::Running, Some(lease)) = (job.state, job.lease.as_ref()) {
            running.entry(lease.worker_id.clone()).or_default().push(job.id);
        }
    }
    let mut out = Vec::new();
    for row in r.open_table(WORKERS)?.iter()? {
        let w: WorkerRecord = from_json(row?.1.value())?;
        let running_jobs = running.remove(&w.id).unwrap_or_default();
        out.push(pb::WorkerInfo { id: w.id, name: w.name, slots: w.slots, last_seen_ms: w.last_seen_ms, running_jobs });
    }
    Ok(out)
}

pub fn find_sweep(r: &ReadTransaction, key: &str) -> Result<SweepRecord> {
    let id = find_sweep_id(&r.open_table(SWEEP_NAMES)?, key)?;
    let t = r.open_table(SWEEPS)?;
    let v = t.get(id)?.ok_or_else(|| CoordError::NotFound(format!("sweep {key:?}")))?;
    from_json(v.value())
}

pub fn get_job(r: &ReadTransaction, id: u64) -> Result<JobRecord> {
    let t = r.open_table(JOBS)?;
    let v = t.get(id)?.ok_or_else(|| CoordError::NotFound(format!("job {id}")))?;
    from_json(v.value())
}

pub fn jobs_of(r: &ReadTransaction, s: &SweepRecord) -> Result<Vec<JobRecord>> {
    s.job_ids.iter().map(|id| get_job(r, *id)).collect()
}

pub fn sweep_pb(r: &ReadTransaction, s: &SweepRecord) -> Result<pb::Sweep> {
    let jobs = jobs_of(r, s)?;
    let count = |st: JobState| jobs.iter().filter(|j| j.state == st).count() as u32;
    let state = match s.state {
        SweepState::Running => pb::SweepState::Running,
        SweepState::Done => pb::SweepState::Done,
        SweepState::Cancelled => pb::SweepState::Cancelled,
    };
    Ok(pb::Sweep {
        id: s.id,
        name: s.name.clone(),
        state: state as i32,
        spec_toml: s.spec_toml.clone(),
        dataset: s.dataset.clone(),
        dataset_sha256: s.dataset_sha256.clone(),
        jobs_total: jobs.len() as u32,
        jobs_queued: count(JobState::Queued),
        jobs_running: count(JobState::Running),
        jobs_succeeded: count(JobState::Succeeded),
        jobs_failed: count(JobState::Failed),
        jobs_cancelled: count(JobState::Cancelled),
        created_ms: s.created_ms,
    })
}

pub fn list_sweeps(r: &ReadTransaction) -> Result<Vec<SweepRecord>> {
    let t = r.open_table(SWEEPS)?;
    let mut out = Vec::new();
    for row in t.iter()? {
        let (_, v) = row?;
        out.push(from_json(v.value())?);
    }
    Ok(out)
}

pub fn curve(r: &ReadTransaction, job_id: u64, after_step: u64) -> Result<Vec<pb::MetricPoint>> {
    let t = r.open_table(CURVES)?;
    let mut out = Vec::new();
    for row in t.range((job_id, after_step.saturating_add(1))..=(job_id, u64::MAX))? {
        let (_, v) = row?;
        out.push(pb::MetricPoint::decode(v.value()).map_err(CoordError::storage)?);
    }
    Ok(out)
}

pub fn checkpoints(r: &ReadTransaction, job_id: u64) -> Result<Vec<pb::CheckpointInfo>> {
    let t = r.open_table(CHECKPOINTS)?;
    let mut out = Vec::new();
    for row in t.range((job_id, 0)..=(job_id, u64::MAX))? {
        let (k, v) = row?;
        let rec: CheckpointRecord = from_json(v.value())?;
        out.push(pb::CheckpointInfo {
            job_id,
            step: k.value().1,
            attempt: rec.attempt,
            bytes: rec.bytes,
            sha256: rec.sha256,
        });
    }
    Ok(out)
}

/// A checkpoint's chunks; `step` 0 = newest.
pub fn checkpoint_blob(r: &ReadTransaction, job_id: u64, step: u64) -> Result<(pb::CheckpointInfo, Vec<Vec<u8>>)> {
    let all = checkpoints(r, job_id)?;
    let info = if step == 0 { all.last().cloned() } else { all.into_iter().find(|c| c.step == step) }
        .ok_or_else(|| CoordError::NotFound(format!("checkpoint of job {job_id} at step {step}")))?;
    let t = r.open_table(CHECKPOINT_CHUNKS)?;
    let mut chunks = Vec::new();
    for row in t.range((job_id, info.step, 0)..=(job_id, info.step, u32::MAX))? {
        let (_, v) = row?;
        chunks.push(v.value().to_vec());
    }
    Ok((info, chunks))
}

pub fn dataset_by_name(r: &ReadTransaction, name: &str) -> Result<Option<DatasetRecord>> {
    let names = r.open_table(DATASET_NAMES)?;
    let Some(sha) = names.get(name)?.map(|v| v.value().to_string()) else { return Ok(None) };
    dataset_by_sha(r, &sha)
}

pub fn dataset_by_sha(r: &ReadTransaction, sha: &str) -> Result<Option<DatasetRecord>> {
    let t = r.open_table(DATASETS)?;
    t.get(sha)?.map(|v| from_json(v.value())).transpose()
}

pub fn list_datasets(r: &ReadTransaction) -> Result<Vec<DatasetRecord>> {
    let t = r.open_table(DATASETS)?;
    let mut out = Vec::new();
    for row in t.iter()? {
        let (_, v) = row?;
        out.push(from_json(v.value())?);
    }
    Ok(out)
}

pub fn dataset_chunks(r: &ReadTransaction, sha: &str, file: u8) -> Result<Vec<Vec<u8>>> {
    let t = r.open_table(DATASET_CHUNKS)?;
    let mut out = Vec::new();
    for row in t.range((sha, file, 0)..=(sha, file, u32::MAX))? {
        let (_, v) = row?;
        out.push(v.value().to_vec());
    }
    Ok(out)
}
