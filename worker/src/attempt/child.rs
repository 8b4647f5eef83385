//! The `ladder-train` child of an attempt: started with its control channel on stdin, its events
//! read line by line from stdout and routed to each member's outbox, its checkpoints uploaded,
//! fencing and shutdown applied, and its end turned into each member's final event.
use std::path::Path;
use std::process::Stdio;
use std::time::Instant;

use ladder_core::FailureKind;
use ladder_core::attempt::AttemptEvent;
use ladder_core::control::ControlCommand;
use ladder_core::events::{Event, MemberEvent};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::process::{Child, ChildStdout};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::{GRACE, Member, failed, prepare, upload};
use crate::cpu::CpuShare;
use crate::env::Env;
use crate::error::{Result, WorkerError};

type Control = mpsc::UnboundedSender<ControlCommand>;

/// Drops member `i` from the child; true when none is left.
fn drop_member(members: &mut [Member], i: usize, control: &Control) -> bool {
    if !members[i].dropped {
        members[i].dropped = true;
        members[i].stop.cancel();
        tracing::warn!(job = members[i].a.job_id, attempt = members[i].a.attempt, "attempt stopped");
        let _ = control.send(ControlCommand::Drop(i));
    }
    members.iter().all(|m| m.dropped)
}

/// Cancelled once every member is stopped: the preparation stops too.
fn all_stopped(members: &[Member]) -> CancellationToken {
    let all = CancellationToken::new();
    let (stops, done) = (members.iter().map(|m| m.stop.clone()).collect::<Vec<_>>(), all.clone());
    tokio::spawn(async move {
        for s in stops {
            s.cancelled().await;
        }
        done.cancel();
    });
    all
}

/// Lines to the child's stdin, in order.
fn control_channel(child: &mut Child) -> Control {
    let (control, mut rx) = mpsc::unbounded_channel::<ControlCommand>();
    if let Some(mut stdin) = child.stdin.take() {
        tokio::spawn(async move {
            while let Some(c) = rx.recv().await {
                let line = format!("{}\n", c.to_line());
                if stdin.write_all(line.as_bytes()).await.is_err() || stdin.flush().await.is_err() {
                    return;
                }
            }
        });
    }
    control
}

/// An elastic CPU attempt hears of each new share of the cores.
fn attach_share(share: &(CpuShare, i32), control: &Control) {
    let (s, started) = share;
    let (tx, mut rx) = mpsc::unbounded_channel::<i32>();
    let lines = control.clone();
    tokio::spawn(async move {
        while let Some(n) = rx.recv().await {
            let _ = lines.send(ControlCommand::Threads(n));
        }
    });
    s.attach(tx, *started);
}

/// The index of each member whose attempt is fenced, as it happens.
fn fences(members: &[Member]) -> mpsc::UnboundedReceiver<usize> {
    let (tx, rx) = mpsc::unbounded_channel::<usize>();
    for (i, m) in members.iter().enumerate() {
        let (stop, tx) = (m.stop.clone(), tx.clone());
        tokio::spawn(async move {
            stop.cancelled().await;
            let _ = tx.send(i);
        });
    }
    rx
}

/// Runs the child to its end, filling each member's final event (none for dropped members, and
/// none when shutdown killed the child before it checkpointed: the leases then expire).
pub(super) async fn run_child(
    env: &Env,
    slot: &str,
    members: &mut [Member],
    share: Option<(CpuShare, i32)>,
    shutdown: &CancellationToken,
) -> Result<()> {
    let began = Instant::now();
    let stopped = all_stopped(members);
    let threads = share.as_ref().map(|(_, t)| *t);
    let Some((mut cmd, fixed_threads)) = prepare::command(env, slot, members, threads, &stopped).await? else {
        return Ok(());
    };
    let stderr = std::fs::File::create(members[0].dir.join("stderr.log"))
        .map_err(|e| WorkerError::io("creating stderr.log", e))?;
    cmd.stdout(Stdio::piped()).stderr(Stdio::piped()).stdin(Stdio::piped()).kill_on_drop(true);
    let prepared = began.elapsed().as_secs_f64();
    let mut child = cmd.spawn().map_err(|e| WorkerError::io(format!("starting {}", env.trainer.display()), e))?;
    let jobs: Vec<u64> = members.iter().map(|m| m.a.job_id).collect();
    tracing::info!(?jobs, attempt = members[0].a.attempt, pid = child.id(), prepared_s = prepared, "attempt started");
    let started = format!(
        "attempt {} started on worker {} slot {slot} (pid {}, prepared in {prepared:.1} s)",
        members[0].a.attempt,
        env.worker_id,
        child.id().unwrap_or(0)
    );
    log_line(members, "worker", started);
    let tee = child
        .stderr
        .take()
        .map(|e| tokio::spawn(tee_stderr(e, stderr, members.iter().map(|m| m.outbox.clone()).collect())));
    let control = control_channel(&mut child);
    if let (Some(share), false) = (&share, fixed_threads) {
        attach_share(share, &control);
    }
    let stdout = child.stdout.take().ok_or_else(|| WorkerError::Corrupt("child has no stdout".into()))?;
    let mut run = Running { env, child, control, jobs, began, prepared, first_event: None, grace: None };
    if run.events(members, stdout, shutdown).await? == Ended::Killed {
        return Ok(());
    }
    // Every line of stderr is in the file before its end is quoted.
    if let Some(t) = tee {
        let _ = t.await;
    }
    run.finish(members).await
}

/// A line of the attempt's log, to each member.
fn log_line(members: &[Member], source: &str, text: String) {
    let at_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX));
    for m in members {
        m.outbox.send(AttemptEvent::Log { source: source.into(), text: text.clone(), at_ms });
    }
}

/// Copies the trainer's stderr to `file` and, line by line, to each member's log.
async fn tee_stderr(stderr: tokio::process::ChildStderr, file: std::fs::File, outboxes: Vec<crate::report::Outbox>) {
    use std::io::Write;
    use tokio::io::AsyncBufReadExt;
    let mut file = std::io::BufWriter::new(file);
    let mut lines = tokio::io::BufReader::new(stderr).lines();
    while let Ok(Some(line)) = lines.next_line().await {
        let _ = writeln!(file, "{line}");
        let at_ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX));
        for o in &outboxes {
            o.send(AttemptEvent::Log { source: "trainer".into(), text: line.clone(), at_ms });
        }
    }
    let _ = file.flush();
}

#[derive(Debug, PartialEq, Eq)]
enum Ended {
    /// The child was killed (every member dropped, or it outlived its grace).
    Killed,
    /// Its stdout closed.
    Closed,
}

/// A started child and what its loop keeps.
struct Running<'a> {
    env: &'a Env,
    child: Child,
    control: Control,
    jobs: Vec<u64>,
    began: Instant,
    prepared: f64,
    first_event: Option<f64>,
    /// Set once shutdown asked the child to stop: it is killed if it lingers past this.
    grace: Option<tokio::time::Instant>,
}

impl Running<'_> {
    /// Reads the child's events until its stdout closes, applying fencing and shutdown.
    async fn events(
        &mut self,
        members: &mut [Member],
        stdout: ChildStdout,
        shutdown: &CancellationToken,
    ) -> Result<Ended> {
        let mut fenced = fences(members);
        let mut lines = BufReader::new(stdout).lines();
        loop {
            let line = tokio::select! {
                Some(i) = fenced.recv() => {
                    if drop_member(members, i, &self.control) {
                        let _ = self.child.kill().await;
                        return Ok(Ended::Killed);
                    }
                    continue;
                }
                _ = shutdown.cancelled(), if self.grace.is_none() => {
                    self.terminate();
                    continue;
                }
                _ = tokio::time::sleep_until(self.grace.unwrap_or_else(tokio::time::Instant::now)), if self.grace.is_some() => {
                    let _ = self.child.kill().await;
                    tracing::warn!(jobs = ?self.jobs, "the trainer did not stop within {GRACE:?}; killed");
                    return Ok(Ended::Killed);
                }
                l = lines.next_line() => l.map_err(|e| WorkerError::io("reading the trainer's stdout", e))?,
            };
            let Some(line) = line else { return Ok(Ended::Closed) };
            let Ok(MemberEvent { member: i, event }) = serde_json::from_str::<MemberEvent>(&line) else {
                tracing::warn!(jobs = ?self.jobs, "ignoring a non-event line from the trainer: {line}");
                continue;
            };
            if i >= members.len() {
                tracing::warn!(jobs = ?self.jobs, member = i, "ignoring an event of an unknown member");
                continue;
            }
            if members[i].dropped {
                continue;
            }
            self.first_event.get_or_insert_with(|| self.began.elapsed().as_secs_f64());
            if !self.event(members, i, event).await? {
                let _ = self.child.kill().await;
                return Ok(Ended::Killed);
            }
        }
    }

    /// SIGTERM: the trainer checkpoints at its next step and exits as preempted.
    fn terminate(&mut self) {
        if let Some(pid) = self.child.id().and_then(|p| i32::try_from(p).ok()) {
            let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), nix::sys::signal::Signal::SIGTERM);
        }
        tracing::info!(jobs = ?self.jobs, "asked the trainer to checkpoint and stop");
        self.grace = Some(tokio::time::Instant::now() + GRACE);
    }

    /// Routes one event of member `i`; false when no member is left to run.
    async fn event(&mut self, members: &mut [Member], i: usize, event: Event) -> Result<bool> {
        let m = &mut members[i];
        match event {
            Event::Metrics(p) => m.outbox.send(AttemptEvent::Point(p)),
            Event::Checkpoint { step, path, .. } => {
                let staged = m.dir.join(format!("upload-{step}"));
                if !upload::stage(Path::new(&path), &staged)? {
                    let _ = std::fs::remove_dir_all(&staged);
                    tracing::info!(
                        job = m.a.job_id,
                        step,
                        "checkpoint pruned before it was staged; a newer one follows"
                    );
                    return Ok(true);
                }
                let mut fenced = !upload::retry_pending(self.env, m).await?;
                match upload::upload(self.env, m, step, &staged).await? {
                    upload::Uploaded::Failed(e) if upload::branch_point(m, step) => {
                        m.pending.push((step, staged, e.to_string()));
                    }
                    upload::Uploaded::Fenced => {
                        let _ = std::fs::remove_dir_all(&staged);
                        fenced = true;
                    }
                    _ => {
                        let _ = std::fs::remove_dir_all(&staged);
                    }
                }
                if fenced && drop_member(members, i, &self.control) {
                    return Ok(false);
                }
            }
            Event::Finished { step, reason, .. } => m.last = Some(AttemptEvent::Finished { step, reason }),
            Event::Failed { kind, message, .. } => m.last = Some(failed(kind, message)),
            Event::Preempted { step } => m.last = Some(AttemptEvent::Released { step }),
            Event::Started(info) => tracing::debug!(job = m.a.job_id, device = %info.device, "trainer started"),
            Event::Profile(p) => {
                let phases: Vec<String> = p.phases().iter().map(|(n, s)| format!("{n} {s:.2}s")).collect();
                tracing::info!(
                    job = m.a.job_id,
                    steps = p.steps,
                    prepared_s = self.prepared,
                    first_event_s = self.first_event.unwrap_or_default(),
                    "attempt profile: {}",
                    phases.join(", ")
                );
            }
        }
        Ok(true)
    }

    /// After stdout closed: a member the child left without a final event has crashed, quoting
    /// the end of the trainer's stderr.
    async fn finish(&mut self, members: &mut [Member]) -> Result<()> {
        let status = self.child.wait().await.map_err(|e| WorkerError::io("waiting for the trainer", e))?;
        if self.grace.is_some() && members.iter().all(|m| m.last.is_none()) {
            return Ok(()); // killed during shutdown before it checkpointed: the leases expire and requeue
        }
        if members.iter().all(|m| m.dropped || m.last.is_some()) {
            log_line(members, "worker", format!("ladder-train exited with {status}"));
            return Ok(());
        }
        let text = std::fs::read_to_string(members[0].dir.join("stderr.log")).unwrap_or_default();
        let tail: Vec<&str> = text.lines().rev().take(5).collect();
        let tail = tail.into_iter().rev().collect::<Vec<_>>().join("\n");
        let message = format!("ladder-train exited with {status} without a final event: {tail}");
        log_line(members, "worker", format!("ladder-train exited with {status} without a final event"));
        for m in members.iter_mut().filter(|m| !m.dropped && m.last.is_none()) {
            m.last = Some(failed(FailureKind::Crashed, message.clone()));
        }
        Ok(())
    }
}
