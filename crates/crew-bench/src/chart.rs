//! `--svg`: a benchmark's numbers as log-scale charts, one panel per case (three a row), one
//! line (or one point per category) per implementation.

use std::path::Path;

use anyhow::Context;
use plotters::prelude::*;

/// A chart: panels side by side.
#[derive(Debug, Clone, Default)]
pub struct Chart {
    /// The panels, left to right.
    pub panels: Vec<Panel>,
}

/// One panel: a log-scale y axis over numeric x values, or over named categories.
#[derive(Debug, Clone, Default)]
pub struct Panel {
    /// The caption, e.g. `IO-bound (n = 1): requests/sec`.
    pub title: String,
    /// What x is (e.g. `clients`).
    pub x_desc: String,
    /// When set, x values are indices into these names (one category per implementation).
    pub categories: Option<Vec<String>>,
    /// One series per implementation.
    pub series: Vec<Series>,
}

/// One implementation's points.
#[derive(Debug, Clone, Default)]
pub struct Series {
    /// The legend entry.
    pub name: String,
    /// Drawn bold (crew's own rows); peers are thin.
    pub bold: bool,
    /// `(x, y)` with `y > 0`; points with `y <= 0` are left out.
    pub points: Vec<(f64, f64)>,
}

impl Chart {
    /// Writes the chart to `path`.
    ///
    /// # Errors
    /// If the file cannot be written.
    pub fn write_svg(&self, path: &Path) -> anyhow::Result<()> {
        // At most three panels a row.
        let count = self.panels.len().max(1);
        let columns = count.min(3);
        let rows = count.div_ceil(columns);
        let size = (700 * columns as u32, 620 * rows as u32);
        let root = SVGBackend::new(path, size).into_drawing_area();
        root.fill(&WHITE).map_err(draw_error)?;
        let areas = root.split_evenly((rows, columns));
        for (area, panel) in areas.iter().zip(&self.panels) {
            draw_panel(area, panel)?;
        }
        root.present()
            .map_err(draw_error)
            .with_context(|| format!("writing {}", path.display()))?;
        Ok(())
    }
}

fn draw_error<E: std::fmt::Debug>(error: E) -> anyhow::Error {
    anyhow::anyhow!("drawing the chart: {error:?}")
}

fn draw_panel<DB: DrawingBackend>(
    area: &DrawingArea<DB, plotters::coord::Shift>,
    panel: &Panel,
) -> anyhow::Result<()>
where
    DB::ErrorType: 'static,
{
    let ys = || {
        panel
            .series
            .iter()
            .flat_map(|s| s.points.iter().map(|p| p.1))
            .filter(|y| *y > 0.0)
    };
    let xs = || {
        panel
            .series
            .iter()
            .flat_map(|s| s.points.iter().map(|p| p.0))
    };
    let max = ys().fold(1.0, f64::max);
    let min = ys().fold(max, f64::min).max(1e-3);
    let (x_low, x_high) = match &panel.categories {
        Some(names) => (-0.5, names.len().max(1) as f64 - 0.5),
        None => (
            xs().fold(f64::INFINITY, f64::min).min(1.0) - 0.2,
            xs().fold(1.0, f64::max) + 0.2,
        ),
    };
    let mut chart = ChartBuilder::on(area)
        .caption(&panel.title, ("sans-serif", 20))
        .margin(12)
        .x_label_area_size(36)
        .y_label_area_size(70)
        .build_cartesian_2d(x_low..x_high, (min / 2.0..max * 2.0).log_scale())
        .map_err(draw_error)?;
    let categories = panel.categories.clone();
    let x_label = move |x: &f64| match &categories {
        Some(names) => names
            .get(x.round().max(0.0) as usize)
            .filter(|_| (x - x.round()).abs() < 1e-6)
            .cloned()
            .unwrap_or_default(),
        None => format!("{x:.0}"),
    };
    let x_labels = match &panel.categories {
        Some(names) => names.len() + 1,
        None => xs().count().clamp(2, 10),
    };
    chart
        .configure_mesh()
        .x_desc(panel.x_desc.as_str())
        .x_labels(x_labels)
        .x_label_formatter(&x_label)
        .y_label_formatter(&|y| crew_lab::perf::group(*y))
        .draw()
        .map_err(draw_error)?;
    for (index, series) in panel.series.iter().enumerate() {
        let points: Vec<(f64, f64)> = series
            .points
            .iter()
            .copied()
            .filter(|p| p.1 > 0.0)
            .collect();
        if points.is_empty() {
            continue;
        }
        let style = ShapeStyle {
            color: Palette99::pick(index).to_rgba(),
            filled: true,
            stroke_width: if series.bold { 2 } else { 1 },
        };
        chart
            .draw_series(LineSeries::new(points.clone(), style))
            .map_err(draw_error)?
            .label(series.name.clone())
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], style));
        chart
            .draw_series(points.into_iter().map(|p| Circle::new(p, 4, style)))
            .map_err(draw_error)?;
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::LowerRight)
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .draw()
        .map_err(draw_error)?;
    Ok(())
}
