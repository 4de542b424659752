//! The run's PNG: throughput per case (median bar, min–max whisker) and the
//! latency CDFs, drawn with plotters' bitmap backend. Text goes through
//! ab_glyph with a DejaVu font file (Debian's fonts-dejavu-core, installed by
//! scripts/setup.sh).

use std::path::Path;
use std::sync::OnceLock;

use plotters::prelude::*;
use plotters::style::FontStyle;

use crate::RunResult;
use crate::anyhow_lite::{Error, bail};

const FONT_FILES: &[&str] = &[
    "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/truetype/dejavu/DejaVuSansMono.ttf",
];

fn register_font() -> Result<(), Error> {
    static DONE: OnceLock<Result<(), String>> = OnceLock::new();
    DONE.get_or_init(|| {
        let bytes = FONT_FILES
            .iter()
            .find_map(|p| std::fs::read(p).ok())
            .ok_or_else(|| {
                format!(
                    "no font file ({}): install fonts-dejavu-core (scripts/setup.sh)",
                    FONT_FILES.join(", ")
                )
            })?;
        let bytes: &'static [u8] = Box::leak(bytes.into_boxed_slice());
        plotters::style::register_font("sans-serif", FontStyle::Normal, bytes)
            .map_err(|_| "the font file does not parse".to_owned())
    })
    .clone()
    .map_err(Error)
}

fn e<T: std::fmt::Debug>(x: T) -> Error {
    Error(format!("{x:?}"))
}

const COLORS: [RGBColor; 6] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
];

/// One latency CDF: label, case index (the colour), thick line (the 90%
/// point), and the (µs, fraction) points.
type Series<'a> = (String, usize, bool, &'a [(f64, f64)]);

/// Draws the run into `path` (PNG, 1400x560).
pub fn draw(run: &RunResult, path: &Path) -> Result<(), Error> {
    register_font()?;
    let root = BitMapBackend::new(path, (1400, 560)).into_drawing_area();
    root.fill(&WHITE).map_err(e)?;
    let (left, right) = root.split_horizontally(620);

    // Throughput.
    let n = run.cases.len();
    if n == 0 {
        bail!("nothing to plot: no case ran");
    }
    let ymax = run
        .cases
        .iter()
        .map(|c| c.max_mpps)
        .fold(0.0f64, f64::max)
        .max(0.01)
        * 1.2;
    let mut chart = ChartBuilder::on(&left)
        .caption(
            format!("Forwarded Mpps at the sinks ({} flows, 64 B)", run.flows),
            ("sans-serif", 20),
        )
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(56)
        .build_cartesian_2d(0f64..n as f64, 0f64..ymax)
        .map_err(e)?;
    chart
        .configure_mesh()
        .disable_x_mesh()
        .x_labels(0)
        .x_desc("case (median bar, min–max whisker)")
        .y_desc("Mpps")
        .label_style(("sans-serif", 15))
        .draw()
        .map_err(e)?;
    for (i, c) in run.cases.iter().enumerate() {
        let x = i as f64;
        let color = COLORS[i % COLORS.len()];
        chart
            .draw_series(std::iter::once(Rectangle::new(
                [(x + 0.2, 0.0), (x + 0.8, c.median_mpps)],
                color.mix(0.8).filled(),
            )))
            .map_err(e)?;
        chart
            .draw_series(std::iter::once(PathElement::new(
                vec![(x + 0.5, c.min_mpps), (x + 0.5, c.max_mpps)],
                BLACK.stroke_width(2),
            )))
            .map_err(e)?;
        chart
            .draw_series(std::iter::once(Text::new(
                format!("{}: {:.3}", c.case_key(), c.median_mpps),
                (x + 0.22, c.max_mpps + ymax * 0.03),
                ("sans-serif", 14),
            )))
            .map_err(e)?;
    }

    // Latency CDF (log x).
    let points: Vec<Series<'_>> = run
        .cases
        .iter()
        .enumerate()
        .flat_map(|(i, c)| {
            c.latency.iter().map(move |p| {
                (
                    format!("{} @{:.0}%", c.case_key(), p.fraction_of_reference * 100.0),
                    i,
                    p.fraction_of_reference > 0.7,
                    p.cdf.as_slice(),
                )
            })
        })
        .filter(|(_, _, _, cdf)| !cdf.is_empty())
        .collect();
    let (xmin, xmax) = points
        .iter()
        .flat_map(|(_, _, _, cdf)| cdf.iter().map(|p| p.0))
        .fold((f64::INFINITY, 0.0f64), |(lo, hi), v| {
            (lo.min(v), hi.max(v))
        });
    let (xmin, xmax) = if points.is_empty() {
        (1.0, 1000.0)
    } else {
        ((xmin * 0.8).max(0.1), (xmax * 1.2).max(xmin * 2.0))
    };
    let mut chart = ChartBuilder::on(&right)
        .caption(
            format!(
                "Latency CDF, generator → sink (thin 50%, thick 90% of {}'s max)",
                run.latency_reference.as_deref().unwrap_or("?")
            ),
            ("sans-serif", 20),
        )
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(56)
        .build_cartesian_2d((xmin..xmax).log_scale(), 0f64..1.0)
        .map_err(e)?;
    chart
        .configure_mesh()
        .x_desc("µs (log)")
        .y_desc("fraction ≤")
        .label_style(("sans-serif", 15))
        .draw()
        .map_err(e)?;
    for (name, i, thick, cdf) in &points {
        let color = COLORS[i % COLORS.len()];
        let style = if *thick {
            color.stroke_width(3)
        } else {
            color.mix(0.6).stroke_width(1)
        };
        chart
            .draw_series(LineSeries::new(cdf.iter().copied(), style))
            .map_err(e)?
            .label(name.clone())
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], style));
    }
    if !points.is_empty() {
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::LowerRight)
            .background_style(WHITE.mix(0.8))
            .border_style(BLACK)
            .label_font(("sans-serif", 14))
            .draw()
            .map_err(e)?;
    }
    root.present().map_err(e)?;
    Ok(())
}
