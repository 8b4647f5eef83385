//! The gRPC services: thin adapters over [`App`], split by who calls them: [`users`] (the
//! `Ladder` service) and [`workers`] (the `WorkerService`). Each method converts its request to
//! domain values through `ladder_proto::convert`, calls one [`App`] method, and converts the
//! answer back; every refusal becomes a `Status` through the one map in [`crate::error`].
mod users;
mod workers;

use std::pin::Pin;

use sha2::{Digest, Sha256};
use tokio_stream::{Stream, StreamExt};
use tonic::{Request, Status};

use crate::app::App;
use crate::app::transfer::ChunkStream;
use ladder_proto::pb;

/// Both services over one application.
#[derive(Clone)]
pub struct Grpc(pub App);

type Stream_<T> = Pin<Box<dyn Stream<Item = Result<T, Status>> + Send>>;

/// The caller's credential: sha256 of its bearer token ("" without one), and of its client
/// certificate under mTLS.
fn credential<T>(req: &Request<T>) -> String {
    let token = req
        .metadata()
        .get(ladder_proto::auth::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .map(|v| v.trim_start_matches("Bearer ").trim().to_string())
        .unwrap_or_default();
    let cert = req.peer_certs().and_then(|c| c.first().map(|c| hex::encode(Sha256::digest(c.as_ref()))));
    match (token.is_empty(), cert) {
        (true, None) => String::new(),
        (_, c) => {
            let mut h = Sha256::new();
            h.update(token.as_bytes());
            if let Some(c) = c {
                h.update(b"\\0cert:");
                h.update(c.as_bytes());
            }
            hex::encode(h.finalize())
        }
    }
}

/// A download on the wire.
fn chunks(s: ChunkStream) -> Stream_<pb::Chunk> {
    Box::pin(s.map(|c| {
        c.map(|c| pb::Chunk { offset: c.offset, total_bytes: c.total_bytes, sha256: c.sha256, data: c.data })
            .map_err(Status::from)
    }))
}
