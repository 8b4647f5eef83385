//! Sweeps: submission (the spec planned against the datasets held on the caller's side, then
//! stored with its jobs in one operation of inserts), lookup, listing by page, counts and
//! cancellation.
use ladder_core::status::{JobCounts, Progress, SweepStatus};
use ladder_core::sweep::{self, DatasetFacts};
use redb::{ReadableTable, WriteTransaction};

use super::lifecycle::end_attempt;
use super::state::set_state;
use crate::error::{CoordError, Result};
use crate::records::{DatasetRecord, JobRecord, JobState, STATES, SweepRecord, SweepState, state_key};
use crate::tables::{DATASET_NAMES, DATASETS, Reader, SWEEP_COUNTS, SWEEP_NAMES, SWEEPS, from_json, next_id, to_json};

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

/// A spec planned against the datasets held, ready to store: planned on the caller's side (never
/// in the writer), so storing it is inserts only.
#[derive(Debug)]
pub struct Planned {
    pub spec: String,
    pub plan: sweep::SweepPlan,
    pub dataset: DatasetRecord,
}

/// The sweep already named `name`, if any.
fn named<R: Reader>(r: &R, name: &str) -> Result<Option<SweepRecord>> {
    let Some(id) = r.table(SWEEP_NAMES)?.get(name)?.map(|v| v.value()) else { return Ok(None) };
    let t = r.table(SWEEPS)?;
    let v = t.get(id)?.ok_or_else(|| CoordError::storage(format!("sweep name {name:?} points at no sweep {id}")))?;
    Ok(Some(from_json(v.value())?))
}

/// The existing sweep a resubmission of `spec` names, when its spec is the same text: it is
/// answered without planning again.
pub fn resubmitted<R: Reader>(r: &R, spec: &str) -> Result<Option<SweepRecord>> {
    let Some(name) = sweep::spec_name(spec) else { return Ok(None) };
    Ok(named(r, &name)?.filter(|s| s.spec_toml == spec))
}

/// Validates `spec` against the datasets `r` holds and expands it into jobs. Nothing is written.
pub fn plan<R: Reader>(r: &R, spec: &str, origin: &str) -> Result<Planned> {
    let mut dataset: Option<DatasetRecord> = None;
    let mut lookup_err = None;
    let plan = sweep::plan(spec, origin, |name| match dataset_facts(r, name) {
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
    // Refused here too, off the writer; `insert` checks again for a sweep stored meanwhile.
    if let Some(rec) = named(r, &plan.name)? {
        return Err(name_taken(&rec));
    }
    let dataset = dataset.ok_or_else(|| CoordError::NotFound(format!("dataset {}", plan.dataset)))?;
    Ok(Planned { spec: spec.to_string(), plan, dataset })
}

fn name_taken(rec: &SweepRecord) -> CoordError {
    CoordError::AlreadyExists(format!(
        "a different sweep named {:?} exists (id {}); rename this one or cancel that one",
        rec.name, rec.id
    ))
}

/// Stores a planned sweep with its jobs (inserts only). Same name and same spec: the existing
/// sweep, `created = false`. Same name, other spec: refused. Every refusal comes before a write.
pub fn insert(txn: &WriteTransaction, p: &Planned, now: i64) -> Result<(SweepRecord, bool)> {
    let plan = &p.plan;
    if let Some(rec) = named(txn, &plan.name)? {
        if rec.spec_toml == p.spec {
            return Ok((rec, false));
        }
        return Err(name_taken(&rec));
    }
    if dataset_facts(txn, &plan.dataset)?.map(|(d, _)| d.sha256) != Some(p.dataset.sha256.clone()) {
        return Err(CoordError::invalid(
            "dataset",
            format!("dataset {:?} changed while the spec was planned: submit it again", plan.dataset),
        ));
    }
    let id = next_id(txn, "next_sweep_id")?;
    let mut job_ids: Vec<u64> = Vec::with_capacity(plan.jobs.len());
    for (index, jp) in plan.jobs.iter().enumerate() {
        let job_id = next_id(txn, "next_job_id")?;
        // A branch names its parent by id (parents come first in the plan) and waits for it.
        let branch = match (jp.parent, jp.branch) {
            (Some(p), Some(mut b)) => {
                b.parent = *job_ids
                    .get(p)
                    .ok_or_else(|| CoordError::storage(format!("job {index} of the plan forks from a later one")))?;
                Some(b)
            }
            _ => None,
        };
        job_ids.push(job_id);
        let mut job = JobRecord {
            id: job_id,
            sweep_id: id,
            index: u32::try_from(index).map_err(|_| CoordError::storage("job index overflows"))?,
            // Set below, by the one function that moves a job's state.
            state: JobState::Pending,
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
            dataset_sha256: p.dataset.sha256.clone(),
            device: jp.config.device,
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
            // A branch's curve starts after its branch point.
            contiguous: branch.map_or(0, |b| b.step),
            exclusive: false,
            branch,
            checkpoints_deleted: 0,
            log_bytes: 0,
            sealed: jp.sealed,
            loaded_state: None,
        };
        set_state(txn, &mut job, if branch.is_some() { JobState::Pending } else { JobState::Queued })?;
        job.save(txn)?;
        job.save_config(txn, &jp.config)?;
        if let Some(b) = branch {
            super::branches::index(txn, b.parent, b.step, job_id)?;
        }
    }
    let rec = SweepRecord {
        id,
        name: plan.name.clone(),
        spec_toml: p.spec.clone(),
        dataset: plan.dataset.clone(),
        dataset_sha256: p.dataset.sha256.clone(),
        state: SweepState::Running,
        created_ms: now,
        targets: plan.jobs.iter().zip(&job_ids).filter(|(jp, _)| jp.sealed).map(|(_, &id)| id).collect(),
        job_ids,
        retention: plan.retention,
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
            end_attempt(txn, &mut j)?;
            set_state(txn, &mut j, JobState::Cancelled)?;
            j.save(txn)?;
            changed.push(j);
        }
    }
    for j in &changed {
        super::retention::collect(txn, j.id)?;
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

/// How many of a sweep's jobs are in each state: five keys read, not every job.
pub fn counts<R: Reader>(r: &R, s: &SweepRecord) -> Result<JobCounts> {
    let t = r.table(SWEEP_COUNTS)?;
    let mut c = JobCounts { total: u32::try_from(s.job_ids.len()).unwrap_or(u32::MAX), ..Default::default() };
    for state in STATES {
        *c.slot(state) = t.get((s.id, state_key(state)))?.map_or(0, |v| v.value());
    }
    Ok(c)
}

/// The sweep as the services report it.
pub fn status<R: Reader>(r: &R, s: &SweepRecord) -> Result<SweepStatus> {
    Ok(s.status(counts(r, s)?))
}

/// Sweeps with id < `before_id` (0: all), newest first, at most `limit`; the second value is the
/// last id when older ones follow.
pub fn list_newest<R: Reader>(r: &R, before_id: u64, limit: usize) -> Result<(Vec<SweepRecord>, Option<u64>)> {
    let t = r.table(SWEEPS)?;
    let end = if before_id == 0 { u64::MAX } else { before_id };
    let mut out = Vec::new();
    let mut more = None;
    for row in t.range(..end)?.rev() {
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
