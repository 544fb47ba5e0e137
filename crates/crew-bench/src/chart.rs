//! `crew bench --svg`: the same numbers as the tables, as two log-scale line charts
//! (IO-bound and CPU-bound; requests/sec against clients, one line per server).

use std::path::Path;

use anyhow::Context;
use plotters::prelude::*;

use super::{BenchResults, Case};

/// Writes the chart to `path`.
///
/// # Errors
/// If nothing was measured or the file cannot be written.
pub fn write_svg(results: &BenchResults, path: &Path) -> anyhow::Result<()> {
    let root = SVGBackend::new(path, (1400, 620)).into_drawing_area();
    root.fill(&WHITE).map_err(draw_error)?;
    let panels = root.split_evenly((1, 2));
    for (panel, case) in panels.iter().zip([Case::Io, Case::Cpu]) {
        draw_case(panel, results, case)?;
    }
    root.present()
        .map_err(draw_error)
        .with_context(|| format!("writing {}", path.display()))?;
    Ok(())
}

fn draw_error<E: std::fmt::Debug>(error: E) -> anyhow::Error {
    anyhow::anyhow!("drawing the chart: {error:?}")
}

fn draw_case<DB: DrawingBackend>(
    area: &DrawingArea<DB, plotters::coord::Shift>,
    results: &BenchResults,
    case: Case,
) -> anyhow::Result<()>
where
    DB::ErrorType: 'static,
{
    let rows: Vec<_> = results
        .rows
        .iter()
        .filter(|row| row.case == case && row.rps > 0.0)
        .collect();
    let max = rows.iter().map(|row| row.rps).fold(1.0, f64::max);
    let min = rows.iter().map(|row| row.rps).fold(max, f64::min).max(0.1);
    let max_clients = results.clients.iter().copied().max().unwrap_or(4) as f64;
    let title = match case {
        Case::Io => "IO-bound (n = 1): requests/sec".to_owned(),
        Case::Cpu => format!("CPU-bound (n = {}): requests/sec", results.cpu_n),
    };
    let mut chart = ChartBuilder::on(area)
        .caption(title, ("sans-serif", 20))
        .margin(12)
        .x_label_area_size(36)
        .y_label_area_size(70)
        .build_cartesian_2d(
            0.8f64..max_clients + 0.2,
            (min / 2.0..max * 2.0).log_scale(),
        )
        .map_err(draw_error)?;
    chart
        .configure_mesh()
        .x_desc("clients")
        .x_labels(results.clients.len().max(2))
        .x_label_formatter(&|x| format!("{x:.0}"))
        .y_label_formatter(&|y| crate::perf::group(*y))
        .draw()
        .map_err(draw_error)?;
    for (index, server) in results.servers.iter().enumerate() {
        let points: Vec<(f64, f64)> = results
            .clients
            .iter()
            .filter_map(|&clients| {
                results
                    .get(server, case, clients)
                    .filter(|row| row.rps > 0.0)
                    .map(|row| (clients as f64, row.rps))
            })
            .collect();
        if points.is_empty() {
            continue;
        }
        let color = Palette99::pick(index).to_rgba();
        let dashed = !server.starts_with("crew-");
        let style = ShapeStyle {
            color,
            filled: true,
            stroke_width: if dashed { 1 } else { 2 },
        };
        chart
            .draw_series(LineSeries::new(points.clone(), style))
            .map_err(draw_error)?
            .label(server.clone())
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], style));
        chart
            .draw_series(points.into_iter().map(|p| Circle::new(p, 3, style)))
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
