//! The page's files, embedded in the binary: the HTML shell and the page's own scripts from
//! `web/`, and uPlot as `build.rs` fetched it from npm. Nothing is loaded from other hosts.
macro_rules! web {
    ($f:literal) => {
        include_bytes!(concat!(env!("CARGO_MANIFEST_DIR"), "/../web/", $f))
    };
}

macro_rules! uplot {
    ($f:literal) => {
        include_bytes!(concat!(env!("OUT_DIR"), "/uplot/", $f))
    };
}

/// The shell every page route answers with (the scripts route on the path).
pub const INDEX: &[u8] = web!("index.html");

/// `/assets/{name}`: (name, content type, bytes).
pub const ASSETS: &[(&str, &str, &[u8])] = &[
    ("uPlot.iife.min.js", JS, uplot!("uPlot.iife.min.js")),
    ("uPlot.min.css", CSS, uplot!("uPlot.min.css")),
    ("app.css", CSS, web!("assets/app.css")),
    ("app.js", JS, web!("assets/app.js")),
    ("api.js", JS, web!("assets/api.js")),
    ("charts.js", JS, web!("assets/charts.js")),
    ("colours.js", JS, web!("assets/colours.js")),
    ("dom.js", JS, web!("assets/dom.js")),
    ("fits.js", JS, web!("assets/fits.js")),
    ("predictions.js", JS, web!("assets/predictions.js")),
    ("job.js", JS, web!("assets/job.js")),
    ("sweep.js", JS, web!("assets/sweep.js")),
    ("groups.js", JS, web!("assets/groups.js")),
    ("tables.js", JS, web!("assets/tables.js")),
    ("ticks.js", JS, web!("assets/ticks.js")),
];

const JS: &str = "text/javascript; charset=utf-8";
const CSS: &str = "text/css; charset=utf-8";

/// The asset `name`, if there is one.
pub fn asset(name: &str) -> Option<(&'static str, &'static [u8])> {
    ASSETS.iter().find(|(n, _, _)| *n == name).map(|&(_, t, b)| (t, b))
}
