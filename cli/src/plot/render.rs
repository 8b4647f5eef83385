//! Drawing a [`Chart`] with plotters, as SVG and PNG: log–log axes with round ticks, the legend
//! and the colour bar in a side panel off the data, text in the embedded DejaVu Sans (so no
//! system fonts are needed).
use std::path::{Path, PathBuf};
use std::sync::Once;

use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::FontStyle;

use super::figure::{Chart, Mark, positive};
use super::style::{fine_ticks, label, log_minor, log_position, viridis};
use crate::error::{CliError, Result};

/// Plot size: the chart, then a side panel with the legend and the colour bar, off the data.
pub(crate) const SIZE: (u32, u32) = (1000, 620);
pub(crate) const CHART_WIDTH: u32 = 760;

pub(crate) fn fonts() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let _ = plotters::style::register_font("sans-serif", FontStyle::Normal, dejavu::sans::regular());
    });
}

pub(crate) fn range(vals: impl Iterator<Item = f64>) -> Option<(f64, f64)> {
    let (lo, hi) =
        vals.filter(|v| v.is_finite() && *v > 0.0).fold((f64::INFINITY, 0.0f64), |(a, b), v| (a.min(v), b.max(v)));
    (lo.is_finite() && hi > 0.0).then(|| if hi > lo { (lo / 1.15, hi * 1.15) } else { (lo / 2.0, hi * 2.0) })
}

pub(crate) fn draw<DB: DrawingBackend>(root: DrawingArea<DB, Shift>, c: &Chart) -> std::result::Result<(), String>
where
    DB::ErrorType: 'static,
{
    let e = |x: DrawingAreaErrorKind<DB::ErrorType>| x.to_string();
    root.fill(&WHITE).map_err(e)?;
    let (root, side) = root.split_horizontally(CHART_WIDTH);
    let all = || c.series.iter().flat_map(|s| s.points.iter().copied().filter(positive));
    let band_pts = || c.band.iter().flat_map(|b| [(b.0, b.1), (b.0, b.2)]).filter(positive);
    let (Some(xr), Some(yr)) =
        (range(all().chain(band_pts()).map(|p| p.0)), range(all().chain(band_pts()).map(|p| p.1)))
    else {
        return Err("nothing to plot".into());
    };
    let mut chart = ChartBuilder::on(&root)
        .caption(&c.title, ("sans-serif", 22))
        .margin(12)
        .x_label_area_size(45)
        .y_label_area_size(70)
        .build_cartesian_2d(
            (xr.0..xr.1).log_scale().with_key_points(fine_ticks(xr.0, xr.1)).with_light_points(log_minor(xr.0, xr.1)),
            (yr.0..yr.1).log_scale().with_key_points(fine_ticks(yr.0, yr.1)).with_light_points(log_minor(yr.0, yr.1)),
        )
        .map_err(e)?;
    chart
        .configure_mesh()
        .x_desc(c.x)
        .y_desc(c.y)
        .x_label_formatter(&label)
        .y_label_formatter(&label)
        .label_style(("sans-serif", 13))
        .light_line_style(RGBColor(235, 235, 235))
        .draw()
        .map_err(e)?;
    if c.band.len() >= 2 {
        let band: Vec<(f64, f64, f64)> =
            c.band.iter().copied().filter(|b| b.0 > 0.0 && b.1 > 0.0 && b.2 > 0.0).collect();
        let mut poly: Vec<(f64, f64)> = band.iter().map(|b| (b.0, b.2)).collect();
        poly.extend(band.iter().rev().map(|b| (b.0, b.1)));
        chart.draw_series(std::iter::once(Polygon::new(poly, RGBColor(31, 119, 180).mix(0.18).filled()))).map_err(e)?;
    }
    for s in &c.series {
        let pts: Vec<(f64, f64)> = s.points.iter().copied().filter(positive).collect();
        let col = s.color;
        match s.mark {
            Mark::Line => {
                chart.draw_series(LineSeries::new(pts, col.stroke_width(2))).map_err(e)?;
            }
            Mark::Dashed => {
                chart
                    .draw_series(DashedLineSeries::new(pts, 6, 4, ShapeStyle::from(&col).stroke_width(2)))
                    .map_err(e)?;
            }
            Mark::Points => {
                chart.draw_series(pts.into_iter().map(|p| Circle::new(p, 4, col.filled()))).map_err(e)?;
            }
            Mark::Bound => {
                chart.draw_series(pts.into_iter().map(|p| TriangleMarker::new(p, 6, col.filled()))).map_err(e)?;
            }
        }
    }
    side_panel(&side, c).map_err(e)?;
    root.present().map_err(e)?;
    Ok(())
}

/// The legend (one entry per named series, wrapped to the panel) and the colour bar of N.
pub(crate) fn side_panel<DB: DrawingBackend>(
    side: &DrawingArea<DB, Shift>,
    c: &Chart,
) -> std::result::Result<(), DrawingAreaErrorKind<DB::ErrorType>> {
    let font = ("sans-serif", 13).into_font();
    let mut y = 50;
    for s in c.series.iter().filter(|s| !s.name.is_empty()) {
        let col = s.color;
        match s.mark {
            Mark::Points => side.draw(&Circle::new((18, y + 7), 4, col.filled()))?,
            Mark::Bound => side.draw(&TriangleMarker::new((18, y + 7), 6, col.filled()))?,
            Mark::Line => side.draw(&PathElement::new(vec![(8, y + 7), (30, y + 7)], col.stroke_width(2)))?,
            Mark::Dashed => {
                for x in [8, 20] {
                    side.draw(&PathElement::new(vec![(x, y + 7), (x + 8, y + 7)], col.stroke_width(2)))?;
                }
            }
        }
        for line in wrap(&s.name, 26) {
            side.draw(&Text::new(line, (38, y), font.clone()))?;
            y += 17;
        }
        y += 6;
    }
    if let Some((lo, hi)) = c.colour_bar {
        colour_bar(side, lo, hi, y.max(60) + 20)?;
    }
    Ok(())
}

/// A vertical colour bar of N (small at the bottom), with round ticks, from `top` down.
pub(crate) fn colour_bar<DB: DrawingBackend>(
    side: &DrawingArea<DB, Shift>,
    lo: f64,
    hi: f64,
    top: i32,
) -> std::result::Result<(), DrawingAreaErrorKind<DB::ErrorType>> {
    let (x0, w, h) = (14, 18, 220.min(SIZE.1 as i32 - top - 50));
    if h < 60 {
        return Ok(());
    }
    side.draw(&Text::new("N (colour)", (x0, top), ("sans-serif", 13).into_font()))?;
    let top = top + 22;
    for i in 0..h {
        let t = 1.0 - f64::from(i) / f64::from(h - 1);
        side.draw(&Rectangle::new([(x0, top + i), (x0 + w, top + i + 1)], viridis(t).filled()))?;
    }
    side.draw(&Rectangle::new([(x0, top), (x0 + w, top + h)], RGBColor(120, 120, 120)))?;
    let ticks = if hi > lo { fine_ticks(lo, hi) } else { vec![lo] };
    for v in ticks {
        let y = top + ((1.0 - log_position(v, lo, hi)) * f64::from(h - 1)).round() as i32;
        side.draw(&PathElement::new(vec![(x0 + w, y), (x0 + w + 5, y)], BLACK))?;
        side.draw(&Text::new(label(&v), (x0 + w + 8, y - 7), ("sans-serif", 12).into_font()))?;
    }
    Ok(())
}

/// Splits `text` into lines of at most about `width` characters, at spaces.
pub(crate) fn wrap(text: &str, width: usize) -> Vec<String> {
    let mut lines: Vec<String> = Vec::new();
    for word in text.split(' ') {
        match lines.last_mut() {
            Some(l) if l.chars().count() + 1 + word.chars().count() <= width => {
                l.push(' ');
                l.push_str(word);
            }
            _ => lines.push(word.to_string()),
        }
    }
    lines
}

pub(crate) fn write(dir: &Path, c: &Chart) -> Result<Vec<PathBuf>> {
    fonts();
    let svg = dir.join(format!("{}.svg", c.file));
    let png = dir.join(format!("{}.png", c.file));
    let fail = |p: &Path, m: String| CliError::Other(format!("plotting {}: {m}", p.display()));
    draw(SVGBackend::new(&svg, SIZE).into_drawing_area(), c).map_err(|m| fail(&svg, m))?;
    draw(BitMapBackend::new(&png, SIZE).into_drawing_area(), c).map_err(|m| fail(&png, m))?;
    Ok(vec![svg, png])
}
