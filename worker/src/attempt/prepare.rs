//! Before the child starts: the dataset (fetched and verified), each job's config written with
//! this worker's paths, each job's resume point (the newest checkpoint that downloads and
//! verifies), and the command line.
use std::path::{Path, PathBuf};

use ladder_core::attempt::{Assignment, AttemptEvent};
use ladder_core::job::JobConfig;
use tokio_util::sync::CancellationToken;

use super::Member;
use crate::env::Env;
use crate::error::{Result, WorkerError};
use crate::retry::retry;
use crate::transfer::{download_branch_source, download_checkpoint, ensure_dataset};

/// The job config written for the child, with this worker's paths (`branch`: where the
/// parent's checkpoint a branch starts from was unpacked).
fn write_config(m: &Member, data: &Path, branch: Option<&Path>) -> Result<(PathBuf, JobConfig)> {
    let mut cfg = m.a.config.clone();
    cfg.data.dir = data.to_path_buf();
    cfg.checkpoint.dir = m.dir.join("checkpoints");
    if let (Some(b), Some(dir)) = (cfg.branch.as_mut(), branch) {
        b.dir = dir.to_path_buf();
    }
    let path = m.dir.join("job.toml");
    cfg.save(&path)?;
    Ok((path, cfg))
}

/// Where member `m` resumes: the newest of its checkpoints (at most its assignment's resume step)
/// that downloads and verifies (`ladder-train verify`), falling back to older ones; None = fresh.
async fn resume_point(env: &Env, m: &Member, stop: &CancellationToken) -> Result<Option<(u64, PathBuf)>> {
    if m.a.resume_step == 0 {
        return Ok(None);
    }
    let mut steps: Vec<u64> = m.a.checkpoint_steps.iter().copied().filter(|&s| s <= m.a.resume_step).collect();
    if !steps.contains(&m.a.resume_step) {
        steps.push(m.a.resume_step);
    }
    steps.sort_unstable();
    steps.dedup();
    let config = m.dir.join("job.toml");
    for step in steps.into_iter().rev() {
        let dir = m.dir.join(format!("resume-{step}"));
        match retry(stop, || download_checkpoint(&env.rpc, m.a.job_id, step, &dir)).await {
            Ok(Some(())) => {}
            Ok(None) => return Ok(None),
            Err(e) => {
                tracing::warn!(job = m.a.job_id, step, "checkpoint does not download ({e}); trying an older one");
                continue;
            }
        }
        let out = tokio::process::Command::new(&env.trainer)
            .arg("verify")
            .arg("--config")
            .arg(&config)
            .arg("--checkpoint")
            .arg(&dir)
            .output()
            .await
            .map_err(|e| WorkerError::io(format!("running {} verify", env.trainer.display()), e))?;
        if out.status.success() {
            return Ok(Some((step, dir)));
        }
        let why = String::from_utf8_lossy(&out.stderr).trim().to_string();
        tracing::warn!(job = m.a.job_id, step, "checkpoint does not verify ({why}); trying an older one");
    }
    tracing::warn!(job = m.a.job_id, "no checkpoint verifies; the attempt starts fresh");
    Ok(None)
}

/// What a CPU attempt of these jobs asks of the worker's cores: the `threads` a job fixes, and
/// the threads an elastic one can use.
pub fn cpu_demand(assignments: &[Assignment], cores: usize) -> (Option<i32>, i32) {
    let mut fixed = None;
    let mut wanted = 1;
    for a in assignments {
        let cfg = &a.config;
        fixed = fixed.or(cfg.threads);
        let micro_tokens = cfg.micro_seqs().saturating_mul(u64::try_from(cfg.model.n_ctx).unwrap_or(1));
        let d = u64::try_from(cfg.model.d_model).unwrap_or(1).max(1);
        wanted = crate::cpu::wanted_threads(micro_tokens, d, assignments.len() as u64, cores);
    }
    (fixed, wanted)
}

/// The child's command line for `members`, with their configs written and resume points
/// fetched; each member's Started event is sent. The flag says a job fixes its own threads.
/// None when every member was stopped meanwhile.
pub(super) async fn command(
    env: &Env,
    slot: &str,
    members: &[Member],
    threads: Option<i32>,
    stopped: &CancellationToken,
) -> Result<Option<(tokio::process::Command, bool)>> {
    let sha = members[0].a.dataset_sha256.clone();
    let Some(data) = ensure_dataset(env, &sha, stopped).await? else { return Ok(None) };
    let mut cmd = tokio::process::Command::new(&env.trainer);
    cmd.arg("train");
    let mut fixed_threads = None;
    for m in members {
        // A branch with no checkpoint of its own starts from the one of its parent's it names.
        let branch = match &m.a.branch_from {
            Some(src) if m.a.resume_step == 0 => {
                let dir = m.dir.join(format!("branch-{}-{}", src.job_id, src.step));
                let Some(()) = retry(stopped, || download_branch_source(&env.rpc, src, &dir)).await? else {
                    return Ok(None);
                };
                Some(dir)
            }
            _ => None,
        };
        let (path, cfg) = write_config(m, &data, branch.as_deref())?;
        fixed_threads = fixed_threads.or(cfg.threads);
        cmd.arg("--config").arg(path);
    }
    let mut resumes = Vec::with_capacity(members.len());
    for m in members {
        resumes.push(resume_point(env, m, stopped).await?);
    }
    // Fused members move in lockstep: one that cannot resume where the others do starts them
    // all over from the same (earliest) point.
    let first = resumes[0].as_ref().map(|(s, _)| *s);
    if members.len() > 1 && resumes.iter().any(|r| r.as_ref().map(|(s, _)| *s) != first) {
        tracing::warn!("fused members resume at different steps; all start fresh");
        resumes.iter_mut().for_each(|r| *r = None);
    }
    for (m, r) in members.iter().zip(&resumes) {
        match r {
            Some((_, dir)) => {
                cmd.arg("--resume").arg(dir);
            }
            None if members.len() > 1 => {
                cmd.arg("--resume").arg("none");
            }
            None => {}
        }
        // A branch that starts from its parent's checkpoint resumes, in effect, at its branch point.
        let fresh = m.a.config.branch.as_ref().map_or(0, |b| b.step);
        m.outbox.send(AttemptEvent::Started { resumed_from_step: r.as_ref().map_or(fresh, |(s, _)| *s) });
    }
    // CPU attempts share the worker's cores; an elastic one hears of a new share on stdin.
    if let (Some(t), None) = (threads, fixed_threads) {
        cmd.arg("--threads").arg(t.to_string());
    }
    cmd.arg("--device").arg(env.gpu.trainer_device(slot)).arg("--control").arg("stdin");
    Ok(Some((cmd, fixed_threads.is_some())))
}
