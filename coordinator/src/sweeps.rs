//! Sweeps: submission (the spec planned against the datasets held, stored with its jobs in one
//! operation), lookup, listing by page, cancellation, and settling once every job has ended.
use ladder_core::status::{JobCounts, Progress, SweepStatus};
use ladder_core::sweep::{self, DatasetFacts};
use redb::{ReadableTable, WriteTransaction};

use crate::error::{CoordError, Result};
use crate::lifecycle::{dequeue, enqueue, unindex_lease};
use crate::records::{DatasetRecord, JobRecord, JobState, SweepRecord, SweepState};
use crate::tables::{DATASET_NAMES, DATASETS, Reader, SWEEP_NAMES, SWEEPS, from_json, next_id, to_json};

/// Sweep names become folder names (plots, exports): a plain word, no path.
pub fn check_name(name: &str) -> Result<()> {
    let ok = !name.is_empty()
        && name.len() <= 128
        && name.chars().all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
        && !name.starts_with('.');
    if ok {
        Ok(())
    } else {
        Err(CoordError::Invalid(ladder_core::DomainError::invalid(
            "name",
            format!("{name:?}: a sweep name is 1-128 of [A-Za-z0-9._-], not starting with '.'"),
        )))
    }
}

fn dataset_facts<R: Reader>(r: &R, name: &str) -> Result<Option<(DatasetRecord, DatasetFacts)>> {
    let names = r.table(DATASET_NAMES)?;
    let Some(sha) = names.get(name)?.map(|v| v.value().to_string()) else { return Ok(None) };
    let t = r.table(DATASETS)?;
    let Some(rec) = t.get(sha.as_str())? else { return Ok(None) };
    let rec: DatasetRecord = from_json(rec.value())?;
    let facts = DatasetFacts { vocab: i64::from(rec.vocab), train_tokens: rec.train_bytes / 2 };
    Ok(Some((rec, facts)))
}

/// Validates and stores a sweep with its jobs. Same name and same spec: the existing sweep,
/// `created = false`. Same name, other spec: refused.
pub fn submit(txn: &WriteTransaction, spec: &str, origin: &str, now: i64) -> Result<(SweepRecord, bool)> {
    // Validate against the datasets we hold; nothing is written unless the whole spec is valid.
    let mut dataset: Option<DatasetRecord> = None;
    let mut lookup_err = None;
    let plan = sweep::plan(spec, origin, |name| match dataset_facts(txn, name) {
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
    check_name(&plan.name)?;
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
            index: u32::try_from(index).map_err(|_| CoordError::storage("job index overflows"))?,
            state: JobState::Queued,
            attempt: 0,
            restarts: 0,
            max_restarts: plan.max_restarts,
            config_toml: String::new(),
            config: None,
            shape: jp.shape,
            accounting: jp.accounting,
            total_steps: jp.total_steps,
            lr: jp.lr,
            batch_tokens: jp.config.train.batch_tokens,
            dataset_tokens: jp.dataset_tokens,
            seed: jp.config.train.seed,
            dataset_sha256: dataset.sha256.clone(),
            // Canonical form, so " cuda " and "cuda" match the same slots.
            device: jp.config.device.trim().to_string(),
            lease: None,
            progress: Progress::default(),
            failure: None,
            checkpoint_step: 0,
            resumed_from_step: 0,
            cost_flops: jp.cost_flops,
            memory_bytes: jp.memory_bytes,
            micro_seqs: jp.micro_seqs,
            fuse_class: jp.fuse_class,
            fuse: plan.fuse,
        };
        job.save(txn)?;
        job.save_config(txn, &jp.config)?;
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

fn find_id<R: Reader>(r: &R, key: &str) -> Result<u64> {
    if let Some(id) = r.table(SWEEP_NAMES)?.get(key)? {
        return Ok(id.value());
    }
    key.parse::<u64>().map_err(|_| CoordError::NotFound(format!("sweep {key:?}")))
}

/// A sweep by name or id.
pub fn find<R: Reader>(r: &R, key: &str) -> Result<SweepRecord> {
    let id = find_id(r, key)?;
    let t = r.table(SWEEPS)?;
    let v = t.get(id)?.ok_or_else(|| CoordError::NotFound(format!("sweep {key:?}")))?;
    from_json(v.value())
}

/// Cancels a sweep: queued and running jobs become cancelled (running attempts stop at their
/// next heartbeat).
pub fn cancel(txn: &WriteTransaction, key: &str) -> Result<(SweepRecord, Vec<JobRecord>)> {
    let mut s = find(txn, key)?;
    let mut changed = Vec::new();
    for jid in &s.job_ids {
        let mut j = match JobRecord::load(txn, *jid) {
            Ok(j) => j,
            Err(CoordError::Storage(e)) => {
                tracing::error!(job = jid, "cancelling: {e}");
                continue;
            }
            Err(e) => return Err(e),
        };
        if !j.state.is_final() {
            dequeue(txn, &j)?;
            unindex_lease(txn, &j)?;
            j.state = JobState::Cancelled;
            j.lease = None;
            j.save(txn)?;
            changed.push(j);
        }
    }
    if s.state == SweepState::Running {
        s.state = SweepState::Cancelled;
        txn.open_table(SWEEPS)?.insert(s.id, to_json(&s)?.as_slice())?;
    }
    Ok((s, changed))
}

/// The jobs of a sweep that read; unreadable ones are logged and left out.
pub fn jobs_of<R: Reader>(r: &R, s: &SweepRecord) -> Result<Vec<JobRecord>> {
    let mut out = Vec::with_capacity(s.job_ids.len());
    for id in &s.job_ids {
        match JobRecord::load(r, *id) {
            Ok(j) => out.push(j),
            Err(CoordError::Storage(e)) => tracing::error!(job = id, "listing sweep {}: {e}", s.id),
            Err(e) => return Err(e),
        }
    }
    Ok(out)
}

/// How many of a sweep's jobs are in each state.
pub fn counts<R: Reader>(r: &R, s: &SweepRecord) -> Result<JobCounts> {
    let mut c = JobCounts::default();
    for j in jobs_of(r, s)? {
        c.add(j.state);
    }
    // A record that does not read still counts toward the total.
    c.total = u32::try_from(s.job_ids.len()).unwrap_or(u32::MAX);
    Ok(c)
}

/// The sweep as the services report it.
pub fn status<R: Reader>(r: &R, s: &SweepRecord) -> Result<SweepStatus> {
    Ok(s.status(counts(r, s)?))
}

/// Sweeps with id > `after_id`, at most `limit`; the second value is the last id when more follow.
pub fn list<R: Reader>(r: &R, after_id: u64, limit: usize) -> Result<(Vec<SweepRecord>, Option<u64>)> {
    let t = r.table(SWEEPS)?;
    let mut out = Vec::new();
    let mut more = None;
    for row in t.range(after_id.saturating_add(1)..)? {
        let (k, v) = row?;
        if out.len() == limit {
            more = out.last().map(|s: &SweepRecord| s.id);
            break;
        }
        match from_json::<SweepRecord>(v.value()) {
            Ok(s) => out.push(s),
            Err(e) => tracing::error!(sweep = k.value(), "listing sweeps: its record does not read: {e}"),
        }
    }
    Ok((out, more))
}
