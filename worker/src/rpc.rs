//! The worker's connection to the coordinator: every `WorkerService` call in domain types. This
//! is the only module of the worker that touches the wire's messages; files move through it
//! chunk by chunk, never whole in memory.
use std::io::{Read, Write};
use std::path::Path;
use std::time::Duration;

use ladder_core::DomainError;
use ladder_core::attempt::{Assignment, AttemptEvent};
use ladder_core::status::CheckpointInfo;
use ladder_proto::auth::{AuthChannel, Bearer};
use ladder_proto::pb;
use ladder_proto::pb::worker_service_client::WorkerServiceClient;
use ladder_proto::tls::ClientTls;
use sha2::{Digest, Sha256};
use tokio_stream::StreamExt;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::Endpoint;

use crate::error::{Result, WorkerError};

const CHUNK: usize = 1 << 20;
/// Largest message either way (the coordinator's chunks are 1 MiB).
const MAX_MESSAGE: usize = 16 << 20;

/// A handle on the coordinator; clones share one connection.
#[derive(Clone)]
pub struct Rpc(WorkerServiceClient<AuthChannel>);

/// What a slot asks for.
#[derive(Debug, Clone, Default)]
pub struct Ask {
    pub worker_id: String,
    pub slot: String,
    pub wait: Duration,
    /// Most jobs it trains fused; 1 = one.
    pub max_jobs: u32,
    /// Device memory it can give, by estimate; 0 = no limit (CPU).
    pub memory_bytes: u64,
    /// Its whole device's memory; 0 = unknown.
    pub memory_total_bytes: u64,
}

/// What an Acquire leased: assignments, and any whose config this worker cannot read (each
/// still a lease to answer for, with the reason).
#[derive(Debug, Default)]
pub struct Leased {
    pub assignments: Vec<Assignment>,
    pub unreadable: Vec<(u64, u32, DomainError)>,
}

/// What the coordinator did with a report.
#[derive(Debug, Clone, Copy)]
pub struct Acked {
    pub stored: u32,
    pub refused: u32,
}

/// The header of a checkpoint upload.
#[derive(Debug, Clone)]
pub struct CheckpointUpload {
    pub worker_id: String,
    pub job_id: u64,
    pub attempt: u32,
    pub step: u64,
    pub bytes: u64,
    pub sha256: String,
}

impl Rpc {
    /// A lazy connection to `address`: the first call connects.
    pub fn connect(address: &str, token: Option<&str>, tls: &ClientTls) -> Result<Self> {
        let mut endpoint = Endpoint::from_shared(address.to_string())?;
        if let Some(tls) = tls.config(address.starts_with("https://"))? {
            endpoint = endpoint.tls_config(tls)?;
        }
        let channel = endpoint
            .connect_timeout(Duration::from_secs(3))
            .tcp_keepalive(Some(Duration::from_secs(10)))
            .connect_lazy();
        let bearer = Bearer::new(token)?;
        Ok(Self(
            WorkerServiceClient::new(InterceptedService::new(channel, bearer))
                .max_decoding_message_size(MAX_MESSAGE)
                .max_encoding_message_size(MAX_MESSAGE),
        ))
    }

    /// Registers this worker's slots with each one's device memory (0: CPU or unknown); returns
    /// its id and the lease length in milliseconds.
    pub async fn register(&self, name: &str, slots: &[String], slot_memory: &[u64]) -> Result<(String, u64)> {
        let req = pb::RegisterRequest {
            name: name.to_string(),
            slots: slots.to_vec(),
            slot_memory_bytes: slot_memory.to_vec(),
        };
        let r = self.0.clone().register(req).await?.into_inner();
        Ok((r.worker_id, r.lease_ttl_ms))
    }

    /// Renews the leases of `running`; returns the attempts that must stop.
    pub async fn heartbeat(&self, worker_id: &str, running: &[(u64, u32)]) -> Result<Vec<(u64, u32)>> {
        let running = running.iter().map(|&(job_id, attempt)| pb::AttemptRef { job_id, attempt }).collect();
        let req = pb::HeartbeatRequest { worker_id: worker_id.to_string(), running };
        let r = self.0.clone().heartbeat(req).await?.into_inner();
        Ok(r.stop.into_iter().map(|s| (s.job_id, s.attempt)).collect())
    }

    /// Long-polls for work.
    pub async fn acquire(&self, ask: &Ask) -> Result<Leased> {
        let req = pb::AcquireRequest {
            worker_id: ask.worker_id.clone(),
            slot: ask.slot.clone(),
            wait_ms: u64::try_from(ask.wait.as_millis()).unwrap_or(u64::MAX),
            max_jobs: ask.max_jobs,
            memory_bytes: ask.memory_bytes,
            memory_total_bytes: ask.memory_total_bytes,
        };
        let r = self.0.clone().acquire(req).await?.into_inner();
        let mut out = Leased::default();
        for a in r.assignment.into_iter().chain(r.fused) {
            match Assignment::try_from(&a) {
                Ok(x) => out.assignments.push(x),
                Err(e) => out.unreadable.push((a.job_id, a.attempt, e)),
            }
        }
        Ok(out)
    }

    /// Reports events of one attempt; acknowledged once durable.
    pub async fn report(&self, worker_id: &str, job_id: u64, attempt: u32, events: &[AttemptEvent]) -> Result<Acked> {
        let req = pb::ReportEventsRequest {
            worker_id: worker_id.to_string(),
            job_id,
            attempt,
            events: events.iter().map(pb::AttemptEvent::from).collect(),
        };
        let r = self.0.clone().report_events(req).await?.into_inner();
        Ok(Acked { stored: r.stored, refused: r.refused })
    }

    /// Streams one file of a dataset ("train", "val" or "meta") into `to`; returns its bytes.
    pub async fn fetch_dataset_file(&self, sha: &str, file: &str, to: &Path) -> Result<u64> {
        let req = pb::FetchDatasetRequest { sha256: sha.to_string(), file: file.to_string() };
        let mut stream = self.0.clone().fetch_dataset(req).await?.into_inner();
        let mut out =
            std::fs::File::create(to).map_err(|e| WorkerError::io(format!("creating {}", to.display()), e))?;
        let mut n = 0u64;
        while let Some(c) = stream.next().await {
            let c = c?;
            out.write_all(&c.data).map_err(|e| WorkerError::io(format!("writing {}", to.display()), e))?;
            n += c.data.len() as u64;
        }
        out.sync_all().map_err(|e| WorkerError::io(format!("syncing {}", to.display()), e))?;
        Ok(n)
    }

    /// Downloads checkpoint `step` of `job_id` into the file `to`, checked against its sha256.
    pub async fn download_checkpoint(&self, job_id: u64, step: u64, to: &Path) -> Result<()> {
        let req = pb::FetchCheckpointRequest { job_id, step };
        let mut stream = self.0.clone().download_checkpoint(req).await?.into_inner();
        let mut out =
            std::fs::File::create(to).map_err(|e| WorkerError::io(format!("creating {}", to.display()), e))?;
        let (mut h, mut sha) = (Sha256::new(), String::new());
        while let Some(c) = stream.next().await {
            let c = c?;
            sha = c.sha256;
            h.update(&c.data);
            out.write_all(&c.data).map_err(|e| WorkerError::io(format!("writing {}", to.display()), e))?;
        }
        out.sync_all().map_err(|e| WorkerError::io(format!("syncing {}", to.display()), e))?;
        if hex::encode(h.finalize()) != sha {
            let _ = std::fs::remove_file(to);
            return Err(WorkerError::Corrupt(format!("checkpoint of job {job_id} step {step}: sha256 mismatch")));
        }
        Ok(())
    }

    /// Uploads the packed checkpoint `tar` in 1 MiB messages read from the file as they go.
    pub async fn upload_checkpoint(&self, h: &CheckpointUpload, tar: &Path) -> Result<CheckpointInfo> {
        let (tx, rx) = tokio::sync::mpsc::channel::<pb::CheckpointUpload>(4);
        let header = pb::CheckpointHeader {
            worker_id: h.worker_id.clone(),
            job_id: h.job_id,
            attempt: h.attempt,
            step: h.step,
            total_bytes: h.bytes,
            sha256: h.sha256.clone(),
        };
        let tar = tar.to_path_buf();
        let reader = tokio::task::spawn_blocking(move || -> std::io::Result<()> {
            let first = pb::CheckpointUpload { part: Some(pb::checkpoint_upload::Part::Header(header)) };
            if tx.blocking_send(first).is_err() {
                return Ok(());
            }
            let mut f = std::fs::File::open(&tar)?;
            loop {
                let mut buf = vec![0u8; CHUNK];
                let mut filled = 0;
                while filled < CHUNK {
                    let n = f.read(&mut buf[filled..])?;
                    if n == 0 {
                        break;
                    }
                    filled += n;
                }
                if filled == 0 {
                    return Ok(());
                }
                buf.truncate(filled);
                let msg = pb::CheckpointUpload { part: Some(pb::checkpoint_upload::Part::Data(buf)) };
                if tx.blocking_send(msg).is_err() {
                    return Ok(());
                }
            }
        });
        let out = self.0.clone().upload_checkpoint(tokio_stream::wrappers::ReceiverStream::new(rx)).await;
        match reader.await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => return Err(WorkerError::io("reading the packed checkpoint", e)),
            Err(e) => return Err(WorkerError::Corrupt(format!("reading the packed checkpoint: {e}"))),
        }
        Ok(CheckpointInfo::from(&out?.into_inner()))
    }
}
