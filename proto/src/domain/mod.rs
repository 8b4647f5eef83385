//! Domain types shared by the trainer, coordinator and worker, free of libtorch and of the wire.
pub mod accounting;
pub mod events;
pub mod job;
pub mod shape;
pub mod sweep;
