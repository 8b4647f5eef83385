//! The coordinator's Prometheus metrics: jobs by state, sweeps, workers, and counters of points
//! ingested, lease expiries and checkpoint bytes (rates are Prometheus' `rate()` of these).
use std::sync::atomic::Ordering;

use ladder_http::Exposition;
use redb::{ReadableTable, ReadableTableMetadata};

use crate::app::counters::Counters;
use crate::app::fits::LiveFits;
use crate::clock::Clock;
use crate::records::{STATES, WorkerRecord, state_key};
use crate::store::Store;
use crate::tables::{JOB_COUNTS, SWEEPS, WORKERS, from_json};

/// One scrape: the counts of jobs by state (five keys), the sweeps, and the workers (one record
/// each); never every job. Store errors leave the gauges out rather than failing the scrape.
pub fn render(store: &Store, c: &Counters, fits: &LiveFits, lease_ttl_ms: u64, clock: &dyn Clock) -> String {
    let mut e = Exposition::default();
    let mut by_state = [0u64; STATES.len()];
    let (mut sweeps, mut workers, mut active) = (0u64, 0u64, 0u64);
    let states = STATES;
    if let Ok(r) = store.read() {
        if let Ok(t) = r.open_table(JOB_COUNTS) {
            for (i, s) in states.iter().enumerate() {
                by_state[i] = t.get(state_key(*s)).ok().flatten().map_or(0, |v| v.value());
            }
        }
        sweeps = r.open_table(SWEEPS).ok().and_then(|t| t.len().ok()).unwrap_or(0);
        if let Ok(t) = r.open_table(WORKERS)
            && let Ok(rows) = t.iter()
        {
            let now = clock.now_ms();
            for (_, v) in rows.flatten() {
                workers += 1;
                if let Ok(w) = from_json::<WorkerRecord>(v.value())
                    && now - w.last_seen_ms <= 2 * lease_ttl_ms as i64
                {
                    active += 1;
                }
            }
        }
    }
    let labels: Vec<[(&str, &str); 1]> = states.iter().map(|s| [("state", s.name())]).collect();
    let samples: Vec<(&[(&str, &str)], f64)> = labels.iter().zip(by_state).map(|(l, n)| (&l[..], n as f64)).collect();
    e.family("ladder_jobs", "Jobs by state.", "gauge", &samples);
    e.gauge("ladder_sweeps", "Sweeps submitted.", sweeps as f64);
    e.gauge("ladder_workers", "Workers registered.", workers as f64);
    e.gauge("ladder_workers_active", "Workers heard from within two lease lengths.", active as f64);
    e.counter("ladder_points_ingested_total", "Metric points stored.", c.points.load(Ordering::Relaxed) as f64);
    e.counter("ladder_events_refused_total", "Events refused as invalid.", c.refused.load(Ordering::Relaxed) as f64);
    e.counter(
        "ladder_lease_expiries_total",
        "Leases that expired without a heartbeat.",
        c.lease_expiries.load(Ordering::Relaxed) as f64,
    );
    e.counter("ladder_fits_total", "Live fits computed.", fits.computed.load(Ordering::Relaxed) as f64);
    e.gauge(
        "ladder_fit_summary_bytes",
        "Memory the curve summaries of the live fits hold.",
        fits.summaries.bytes() as f64,
    );
    e.counter(
        "ladder_checkpoint_bytes_total",
        "Checkpoint bytes received.",
        c.checkpoint_bytes.load(Ordering::Relaxed) as f64,
    );
    e.finish()
}
