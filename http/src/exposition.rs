//! One scrape's metrics: a `prometheus-client` registry of the values read at that moment,
//! encoded as OpenMetrics text.
use std::sync::atomic::AtomicU64;

use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
/// The exposition's content type.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

type FloatGauge = Gauge<f64, AtomicU64>;
type FloatCounter = Counter<f64, AtomicU64>;

/// One scrape's metrics.
#[derive(Default)]
pub struct Exposition(Registry);

impl Exposition {
    /// One labelled family: `kind` is "counter" or "gauge".
    pub fn family(&mut self, name: &str, help: &str, kind: &str, samples: &[(&[(&str, &str)], f64)]) {
        let labels = |l: &[(&str, &str)]| l.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect::<Vec<_>>();
        if kind == "counter" {
            let f = Family::<Vec<(String, String)>, FloatCounter>::default();
            for (l, v) in samples {
                f.get_or_create(&labels(l)).inc_by(*v);
            }
            self.0.register(name.trim_end_matches("_total"), help, f);
        } else {
            let f = Family::<Vec<(String, String)>, FloatGauge>::default();
            for (l, v) in samples {
                f.get_or_create(&labels(l)).set(*v);
            }
            self.0.register(name, help, f);
        }
    }

    pub fn gauge(&mut self, name: &str, help: &str, value: f64) {
        let g = FloatGauge::default();
        g.set(value);
        self.0.register(name, help, g);
    }

    /// A counter; its name ends in `_total` in the exposition.
    pub fn counter(&mut self, name: &str, help: &str, value: f64) {
        let c = FloatCounter::default();
        c.inc_by(value);
        self.0.register(name.trim_end_matches("_total"), help, c);
    }

    pub fn finish(self) -> String {
        let mut out = String::new();
        let _ = encode(&mut out, &self.0);
        out
    }
}
