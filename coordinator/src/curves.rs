//! A job's curve in the store: its points in blocks of [`BLOCK_STEPS`] consecutive steps, one
//! value per block in [`CURVE_BLOCKS`] keyed (job, step / `BLOCK_STEPS`), each block the
//! [`crate::codec`] records of its points (fixed size, [`POINT_BYTES`]) in step order.
//!
//! One key per point (format 7 and before) left redb's leaves half full: a curve only grows at
//! its end, and a full leaf splits in two halves, the left of which never takes another key.
//! The store held 277 bytes per 119-byte point. A block of 32 fills its page.
//!
//! Invariants: a block holds only steps of its range, each at most once, in order; an empty
//! block is removed, never stored.
use std::ops::ControlFlow;

use redb::{ReadableTable, Table, WriteTransaction};

use crate::codec::POINT_BYTES;
use crate::error::{CoordError, Result};
use crate::tables::{CURVE_BLOCKS, Reader};

/// Steps per block: 32 records of 119 bytes fill most of a 4 KiB page.
pub const BLOCK_STEPS: u64 = 32;

fn key(job: u64, step: u64) -> (u64, u64) {
    (job, step / BLOCK_STEPS)
}

/// The step of an encoded point (after its layout byte and attempt).
pub fn step_of(rec: &[u8]) -> u64 {
    rec.get(5..13).and_then(|b| b.try_into().ok()).map_or(0, u64::from_le_bytes)
}

fn records(block: &[u8]) -> impl Iterator<Item = &[u8]> {
    block.chunks_exact(POINT_BYTES)
}

/// Where `step` is in `block`: Ok(record index) or Err(the index to insert it at).
fn find(block: &[u8], step: u64) -> std::result::Result<usize, usize> {
    let n = block.len() / POINT_BYTES;
    let (mut lo, mut hi) = (0, n);
    while lo < hi {
        let mid = (lo + hi) / 2;
        match step_of(&block[mid * POINT_BYTES..]).cmp(&step) {
            std::cmp::Ordering::Less => lo = mid + 1,
            std::cmp::Ordering::Greater => hi = mid,
            std::cmp::Ordering::Equal => return Ok(mid),
        }
    }
    Err(lo)
}

fn check(rec: &[u8]) -> Result<()> {
    if rec.len() == POINT_BYTES {
        Ok(())
    } else {
        Err(CoordError::storage(format!("a point is {} bytes; the store keeps {POINT_BYTES}", rec.len())))
    }
}

/// The encoded point of `job` at `step`, if stored.
pub fn get<R: Reader>(r: &R, job: u64, step: u64) -> Result<Option<Vec<u8>>> {
    let t = r.table(CURVE_BLOCKS)?;
    let Some(v) = t.get(key(job, step))? else { return Ok(None) };
    let block = v.value();
    Ok(find(block, step).ok().map(|i| block[i * POINT_BYTES..(i + 1) * POINT_BYTES].to_vec()))
}

/// Calls `f` with each encoded point of `job` at steps `from..=to`, in step order, until it
/// breaks.
pub fn for_each<R: Reader>(
    r: &R,
    job: u64,
    from: u64,
    to: u64,
    mut f: impl FnMut(&[u8]) -> ControlFlow<()>,
) -> Result<()> {
    if from > to {
        return Ok(());
    }
    let t = r.table(CURVE_BLOCKS)?;
    for row in t.range(key(job, from)..=key(job, to))? {
        let (_, v) = row?;
        for rec in records(v.value()) {
            let s = step_of(rec);
            if s < from {
                continue;
            }
            if s > to {
                return Ok(());
            }
            if f(rec).is_break() {
                return Ok(());
            }
        }
    }
    Ok(())
}

/// A write transaction's view of the curves that keeps the block last touched in memory, so a
/// report's run of points rewrites each block once. [`Self::flush`] must end its use: what it
/// holds is written then.
pub struct Curves<'t> {
    table: Table<'t, (u64, u64), &'static [u8]>,
    /// The block in memory: its key, its records, and whether they differ from the table's.
    held: Option<((u64, u64), Vec<u8>, bool)>,
}

impl<'t> Curves<'t> {
    pub fn open(txn: &'t WriteTransaction) -> Result<Self> {
        Ok(Curves { table: txn.open_table(CURVE_BLOCKS)?, held: None })
    }

    /// The block of (job, step), read into memory (the one held before written back first).
    fn block(&mut self, job: u64, step: u64) -> Result<&mut Vec<u8>> {
        let k = key(job, step);
        if self.held.as_ref().is_none_or(|(h, _, _)| *h != k) {
            self.write_back()?;
            let bytes = self.table.get(k)?.map(|v| v.value().to_vec()).unwrap_or_default();
            self.held = Some((k, bytes, false));
        }
        match self.held.as_mut() {
            Some((_, b, _)) => Ok(b),
            None => Err(CoordError::storage("a curve block was not held")),
        }
    }

    fn dirty(&mut self) {
        if let Some((_, _, d)) = self.held.as_mut() {
            *d = true;
        }
    }

    fn write_back(&mut self) -> Result<()> {
        if let Some((k, bytes, true)) = self.held.take() {
            if bytes.is_empty() {
                self.table.remove(k)?;
            } else {
                self.table.insert(k, bytes.as_slice())?;
            }
        }
        Ok(())
    }

    /// Writes the block held; the view may go on being used.
    pub fn flush(&mut self) -> Result<()> {
        self.write_back()
    }

    /// The encoded point of `job` at `step`, if stored.
    pub fn get(&mut self, job: u64, step: u64) -> Result<Option<Vec<u8>>> {
        let b = self.block(job, step)?;
        Ok(find(b, step).ok().map(|i| b[i * POINT_BYTES..(i + 1) * POINT_BYTES].to_vec()))
    }

    /// Whether a point of `job` at `step` is stored.
    pub fn contains(&mut self, job: u64, step: u64) -> Result<bool> {
        let b = self.block(job, step)?;
        Ok(find(b, step).is_ok())
    }

    /// Stores `rec` (an encoded point) at its step, unless `keep_old` says the point already
    /// there wins; returns whether `rec` was stored.
    pub fn put(&mut self, job: u64, rec: &[u8], keep_old: impl FnOnce(&[u8]) -> bool) -> Result<bool> {
        check(rec)?;
        let step = step_of(rec);
        let b = self.block(job, step)?;
        match find(b, step) {
            Ok(i) => {
                let at = i * POINT_BYTES..(i + 1) * POINT_BYTES;
                if keep_old(&b[at.clone()]) || b[at.clone()] == *rec {
                    return Ok(false);
                }
                b[at].copy_from_slice(rec);
            }
            Err(i) => {
                let at = i * POINT_BYTES;
                b.splice(at..at, rec.iter().copied());
            }
        }
        self.dirty();
        Ok(true)
    }

    /// Removes the points of `job` past `after` for which `drop` holds; returns how many.
    pub fn remove_after(&mut self, job: u64, after: u64, drop: impl Fn(&[u8]) -> bool) -> Result<u64> {
        self.write_back()?;
        let Some(from) = after.checked_add(1) else { return Ok(0) };
        let keys: Vec<(u64, u64)> = self
            .table
            .range(key(job, from)..=key(job, u64::MAX))?
            .map(|r| r.map(|(k, _)| k.value()))
            .collect::<std::result::Result<_, _>>()?;
        let mut n = 0;
        for k in keys {
            let Some(bytes) = self.table.get(k)?.map(|v| v.value().to_vec()) else { continue };
            let kept: Vec<u8> = records(&bytes)
                .filter(|r| {
                    let gone = step_of(r) >= from && drop(r);
                    n += u64::from(gone);
                    !gone
                })
                .flatten()
                .copied()
                .collect();
            if kept.len() != bytes.len() {
                self.held = Some((k, kept, true));
                self.write_back()?;
            }
        }
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::encode_point;
    use ladder_core::events::MetricPoint;
    use ladder_core::status::RecordedPoint;
    use redb::ReadableDatabase;

    fn rec(step: u64, attempt: u32) -> Vec<u8> {
        let point = MetricPoint {
            step,
            tokens: step * 64,
            flops: 1.0,
            flops_exact: 1.0,
            train_loss: 1.0 / step as f64,
            val_loss: None,
            lr: 1e-3,
            grad_norm: 1.0,
            gns_small_sq: 1.0,
            gns_big_sq: 1.0,
            b_small: 8,
            b_big: 64,
            b_simple: None,
            tokens_per_s: 1.0,
        };
        encode_point(&RecordedPoint { point, attempt })
    }

    fn steps<R: Reader>(r: &R, job: u64, from: u64, to: u64) -> Vec<u64> {
        let mut out = vec![];
        for_each(r, job, from, to, |p| {
            out.push(step_of(p));
            ControlFlow::Continue(())
        })
        .expect("read");
        out
    }

    #[test]
    fn points_land_in_order_across_blocks_replace_and_leave() {
        let db = redb::Database::builder().create_with_backend(redb::backends::InMemoryBackend::new()).expect("db");
        let w = db.begin_write().expect("write");
        {
            let mut c = Curves::open(&w).expect("open");
            // Out of order, across three blocks, with another job between.
            for s in [40, 3, 1, 33, 2, 70, 31, 32] {
                assert!(c.put(7, &rec(s, 1), |_| false).expect("put"));
            }
            assert!(c.put(8, &rec(5, 1), |_| false).expect("put"));
            // The same point again changes nothing; a kept old point wins.
            assert!(!c.put(7, &rec(40, 1), |_| false).expect("put"));
            assert!(!c.put(7, &rec(3, 2), |_| true).expect("put"));
            assert!(c.put(7, &rec(3, 2), |_| false).expect("put"));
            assert!(c.contains(7, 33).expect("contains") && !c.contains(7, 34).expect("contains"));
            c.flush().expect("flush");
        }
        w.commit().expect("commit");
        let r = db.begin_read().expect("read");
        assert_eq!(steps(&r, 7, 0, u64::MAX), vec![1, 2, 3, 31, 32, 33, 40, 70]);
        assert_eq!(steps(&r, 7, 3, 33), vec![3, 31, 32, 33]);
        assert_eq!(steps(&r, 8, 0, u64::MAX), vec![5]);
        assert_eq!(crate::codec::attempt_of(&get(&r, 7, 3).expect("get").expect("a point")), 2);
        assert_eq!(get(&r, 7, 4).expect("get"), None);
        drop(r);

        let w = db.begin_write().expect("write");
        {
            let mut c = Curves::open(&w).expect("open");
            // Past step 31, the points of attempt 1 go; step 3 (attempt 2) and before stay.
            let gone = c.remove_after(7, 31, |p| crate::codec::attempt_of(p) < 2).expect("remove");
            assert_eq!(gone, 4);
            assert_eq!(c.remove_after(7, u64::MAX, |_| true).expect("remove"), 0);
            c.flush().expect("flush");
        }
        w.commit().expect("commit");
        let r = db.begin_read().expect("read");
        assert_eq!(steps(&r, 7, 0, u64::MAX), vec![1, 2, 3, 31]);
        // The emptied blocks are gone, not stored empty.
        let t = r.table(CURVE_BLOCKS).expect("table");
        assert_eq!(t.range((7, 0)..=(7, u64::MAX)).expect("range").count(), 1);
    }

    #[test]
    fn a_point_of_the_wrong_size_is_refused() {
        let db = redb::Database::builder().create_with_backend(redb::backends::InMemoryBackend::new()).expect("db");
        let w = db.begin_write().expect("write");
        let mut c = Curves::open(&w).expect("open");
        assert!(c.put(1, &[1u8; 7], |_| false).is_err());
    }
}
