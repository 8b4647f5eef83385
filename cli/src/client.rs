//! The CLI's connection to the coordinator: an eager connect (so an unreachable address is
//! reported at once and plainly), a bearer token on every request, and every `Ladder` call in
//! domain types. This is the only module of the CLI that touches the wire's messages.
use std::error::Error as _;
use std::pin::Pin;
use std::time::Duration;

use ladder_analysis::sealed::Predictions;
use ladder_core::dataset::DatasetHeader;
use ladder_core::retention::Retention;
use ladder_core::status::{
    CheckpointInfo, CheckpointList, DatasetInfo, JobStatus, RecordedPoint, SweepStatus, WorkerStatus,
};
use ladder_proto::auth::{AuthChannel, Bearer};
use ladder_proto::pb;
use ladder_proto::pb::ladder_client::LadderClient;
use ladder_proto::tls::ClientTls;
use tokio_stream::{Stream, StreamExt};
use tonic::service::interceptor::InterceptedService;
use tonic::transport::Endpoint;

use crate::error::{CliError, Result};

/// Largest message accepted (the coordinator's chunks are 1 MiB; curves can be larger).
const MAX_MESSAGE: usize = 64 << 20;
/// Bytes per upload message.
const PIECE: usize = 1 << 20;

/// A connected client; clones share the connection.
#[derive(Clone)]
pub struct Client(LadderClient<AuthChannel>);

/// A piece of a blob: where it starts, its bytes, and (on the last) the whole blob's sha256.
pub struct Piece {
    pub offset: u64,
    pub data: Vec<u8>,
    pub sha256: String,
}

/// A blob's pieces in order.
pub type Pieces = Pin<Box<dyn Stream<Item = Result<Piece>> + Send>>;

/// Job updates as they happen.
pub type JobUpdates = Pin<Box<dyn Stream<Item = Result<JobStatus>> + Send>>;

fn reply<T, E: std::fmt::Display>(r: std::result::Result<T, E>) -> Result<T> {
    r.map_err(|e| CliError::Reply(e.to_string()))
}

/// Connects to `addr` (`http://host:port`; a bare `host:port` is taken as http).
pub async fn connect(addr: &str, token: Option<&str>, tls: &ClientTls) -> Result<Client> {
    let url = if addr.contains("://") { addr.to_string() } else { format!("http://{addr}") };
    let endpoint = Endpoint::from_shared(url.clone())
        .map_err(|e| CliError::input("--coordinator", format!("{addr:?} is not a URL: {e}")))?
        .connect_timeout(Duration::from_secs(5))
        .tcp_keepalive(Some(Duration::from_secs(10)));
    let endpoint = match tls.config(url.starts_with("https://"))? {
        Some(t) => endpoint.tls_config(t).map_err(|e| CliError::input("TLS", e.to_string()))?,
        None => endpoint,
    };
    let channel = endpoint.connect().await.map_err(|e| {
        // The transport error's own text is generic; its innermost cause says what happened.
        let mut reason = e.to_string();
        let mut src = e.source();
        while let Some(s) = src {
            reason = s.to_string();
            src = s.source();
        }
        CliError::Unreachable { addr: url.clone(), reason }
    })?;
    let bearer = Bearer::new(token)?;
    Ok(Client(
        LadderClient::new(InterceptedService::new(channel, bearer))
            .max_decoding_message_size(MAX_MESSAGE)
            .max_encoding_message_size(MAX_MESSAGE),
    ))
}

impl Client {
    /// Submits a spec; `origin` (a file name) is what its errors name.
    pub async fn submit(&self, spec_toml: String, origin: &str) -> Result<SweepStatus> {
        let req = pb::SubmitSweepRequest { spec_toml, origin: origin.to_string() };
        let r = self.0.clone().submit_sweep(req).await.map_err(CliError::from_submit)?.into_inner();
        let s = r.sweep.ok_or_else(|| CliError::Reply("the coordinator returned no sweep".into()))?;
        reply(SweepStatus::try_from(&s))
    }

    /// A sweep by name or id.
    pub async fn sweep(&self, key: &str) -> Result<SweepStatus> {
        let s = self.0.clone().get_sweep(pb::GetSweepRequest { sweep: key.to_string() }).await?.into_inner();
        reply(SweepStatus::try_from(&s))
    }

    /// Every sweep, page by page.
    pub async fn sweeps(&self) -> Result<Vec<SweepStatus>> {
        let mut out = Vec::new();
        let mut after_id = 0;
        loop {
            let page = self.0.clone().list_sweeps(pb::ListSweepsRequest { page_size: 0, after_id }).await?.into_inner();
            for s in &page.sweeps {
                out.push(reply(SweepStatus::try_from(s))?);
            }
            if page.next_after_id == 0 {
                return Ok(out);
            }
            after_id = page.next_after_id;
        }
    }

    /// The jobs of a sweep, with their configs.
    pub async fn jobs(&self, key: &str) -> Result<Vec<JobStatus>> {
        let r = self.0.clone().list_jobs(pb::ListJobsRequest { sweep: key.to_string() }).await?.into_inner();
        r.jobs.iter().map(|j| reply(JobStatus::try_from(j))).collect()
    }

    pub async fn job(&self, job_id: u64) -> Result<JobStatus> {
        let j = self.0.clone().get_job(pb::GetJobRequest { job_id }).await?.into_inner();
        reply(JobStatus::try_from(&j))
    }

    /// Every job of a sweep, then each change as it happens.
    pub async fn watch(&self, key: &str) -> Result<JobUpdates> {
        let stream = self.0.clone().watch_jobs(pb::WatchJobsRequest { sweep: key.to_string() }).await?.into_inner();
        Ok(Box::pin(stream.map(|j| match j {
            Ok(j) => reply(JobStatus::try_from(&j)),
            Err(s) => Err(CliError::from(s)),
        })))
    }

    /// A job's whole curve, page by page.
    pub async fn curve(&self, job_id: u64) -> Result<Vec<RecordedPoint>> {
        let mut points = Vec::new();
        let mut after_step = 0;
        loop {
            let req = pb::GetCurveRequest { job_id, after_step, limit: 0 };
            let page = self.0.clone().get_curve(req).await?.into_inner();
            for p in &page.points {
                points.push(reply(RecordedPoint::try_from(p))?);
            }
            if page.next_after_step == 0 {
                return Ok(points);
            }
            after_step = page.next_after_step;
        }
    }

    /// Lines of a job's log after `after_seq`: (seq, attempt, at_ms, source, text).
    pub async fn logs(&self, job_id: u64, after_seq: u64) -> Result<Vec<(u64, u32, i64, String, String)>> {
        let r = self.0.clone().get_logs(pb::GetLogsRequest { job_id, after_seq }).await?.into_inner();
        Ok(r.lines.into_iter().map(|l| (l.seq, l.attempt, l.at_ms, l.source, l.text)).collect())
    }

    /// The sweep's live fits: the analysis report as JSON, or why there is none.
    pub async fn fits(&self, key: &str) -> Result<std::result::Result<String, String>> {
        let f = self.0.clone().get_fits(pb::GetFitsRequest { sweep: key.to_string() }).await?.into_inner();
        Ok(if f.report_json.is_empty() { Err(f.error) } else { Ok(f.report_json) })
    }

    /// A sweep's sealed targets and their locked predictions, scored where they have ended.
    pub async fn predictions(&self, key: &str) -> Result<Predictions> {
        let req = pb::GetPredictionsRequest { sweep: key.to_string() };
        predictions_of(&self.0.clone().get_predictions(req).await?.into_inner())
    }

    /// Locks a sweep's predictions now.
    pub async fn lock_predictions(&self, key: &str) -> Result<Predictions> {
        let req = pb::LockPredictionsRequest { sweep: key.to_string() };
        predictions_of(&self.0.clone().lock_predictions(req).await?.into_inner())
    }

    /// The checkpoints a job keeps (each with why), its sweep's policy, and how many it deleted.
    pub async fn checkpoints(&self, job_id: u64) -> Result<CheckpointList> {
        let r = self.0.clone().list_checkpoints(pb::ListCheckpointsRequest { job_id }).await?.into_inner();
        let policy = r.policy.as_ref().map(Retention::from).unwrap_or_default();
        let checkpoints = r.checkpoints.iter().map(CheckpointInfo::from).collect();
        Ok(CheckpointList { job_id, checkpoints, policy, deleted: r.deleted })
    }

    /// A checkpoint's archive as the coordinator streams it.
    pub async fn fetch_checkpoint(&self, job_id: u64, step: u64) -> Result<Pieces> {
        let s = self.0.clone().fetch_checkpoint(pb::FetchCheckpointRequest { job_id, step }).await?.into_inner();
        Ok(Box::pin(s.map(|c| {
            let c = c?;
            Ok(Piece { offset: c.offset, data: c.data, sha256: c.sha256 })
        })))
    }

    pub async fn cancel(&self, key: &str) -> Result<SweepStatus> {
        let s = self.0.clone().cancel_sweep(pb::CancelSweepRequest { sweep: key.to_string() }).await?.into_inner();
        reply(SweepStatus::try_from(&s))
    }

    pub async fn workers(&self) -> Result<Vec<WorkerStatus>> {
        let r = self.0.clone().list_workers(pb::ListWorkersRequest {}).await?.into_inner();
        Ok(r.workers.iter().map(WorkerStatus::from).collect())
    }

    pub async fn datasets(&self) -> Result<Vec<DatasetInfo>> {
        let r = self.0.clone().list_datasets(pb::ListDatasetsRequest {}).await?.into_inner();
        Ok(r.datasets.iter().map(DatasetInfo::from).collect())
    }

    /// Registers a dataset: the header, then train.bin's and val.bin's bytes in 1 MiB pieces.
    pub async fn register_dataset(&self, header: &DatasetHeader, train: Vec<u8>, val: Vec<u8>) -> Result<DatasetInfo> {
        let mut msgs =
            vec![pb::DatasetUpload { part: Some(pb::dataset_upload::Part::Header(pb::DatasetHeader::from(header))) }];
        for (file, bytes) in [("train", &train), ("val", &val)] {
            for piece in bytes.chunks(PIECE) {
                let part = pb::DatasetBytes { file: file.into(), data: piece.to_vec() };
                msgs.push(pb::DatasetUpload { part: Some(pb::dataset_upload::Part::Bytes(part)) });
            }
        }
        let d = self.0.clone().register_dataset(tokio_stream::iter(msgs)).await?.into_inner();
        Ok(DatasetInfo::from(&d))
    }
}

fn predictions_of(p: &pb::Predictions) -> Result<Predictions> {
    serde_json::from_str(&p.predictions_json).map_err(|e| CliError::Reply(format!("predictions: {e}")))
}
