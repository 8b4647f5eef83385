//! Branches: jobs that start from another job's checkpoint. What a branch is, as the
//! coordinator records it and the analysis reads it.
use serde::{Deserialize, Serialize};

/// What a branch changes.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum BranchKind {
    /// A cooldown of a constant-LR parent that ends at `to_tokens` (the loss at D).
    Cooldown { to_tokens: u64 },
    /// The parent's run continued for `window_tokens` at k times its batch (the critical batch
    /// size by branching).
    Batch { k: f64, window_tokens: u64 },
}

/// A branch of a sweep: its parent job, the step and tokens (from the root) it forks at, and
/// what it changes.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct BranchOf {
    pub parent: u64,
    pub step: u64,
    pub tokens: u64,
    #[serde(flatten)]
    pub kind: BranchKind,
}

impl BranchOf {
    /// A short label for tables: the parent, the step it forks at and the change, e.g.
    /// `3@80 cooldown` or `3@80 ×4`.
    pub fn label(&self) -> String {
        match self.kind {
            BranchKind::Cooldown { .. } => format!("{}@{} cooldown", self.parent, self.step),
            BranchKind::Batch { k, .. } => format!("{}@{} ×{k}", self.parent, self.step),
        }
    }
}
