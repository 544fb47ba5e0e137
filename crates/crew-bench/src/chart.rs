//! `--svg`: a benchmark's numbers as log-scale charts, one panel per case.
//!
//! Made to be read at a glance, as a picture (it was checked by rendering it to PNG):
//!
//! * **Lines over a numeric x** (requests/sec against clients): crew's rows are solid lines
//!   with filled dots, each in its own strong colour; peers are dashed lines with hollow
//!   squares in dark colours that stay visible on white; a [`Role::Reference`] row (the
//!   loopback limit) is a thick grey dotted line labelled on the plot. The x axis is
//!   logarithmic with a tick at every measured x (1, 2, 4 clients), the y axis logarithmic with
//!   1-2-5 ticks. One legend for the whole chart stands to the right of the panels, grouped
//!   into crew, peers and reference, so it never covers data.
//! * **Categories** (one value per implementation): a dot plot, one row per implementation
//!   named on the y axis and its value written beside its dot, crew's dots in colour and the
//!   peers' in dark grey; no legend needed.

use std::path::Path;

use anyhow::Context;
use plotters::coord::combinators::{BindKeyPoints, LogCoord, WithKeyPoints};
use plotters::coord::Shift;
use plotters::element::DashedPathElement;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

/// A chart: panels side by side.
#[derive(Debug, Clone, Default)]
pub struct Chart {
    /// The panels, left to right, then top to bottom.
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

impl Panel {
    /// A dot-plot panel: one category per row, in order, named and drawn by its name and
    /// role, with its value when it was measured (a row with none stays, without a dot).
    pub fn categories(
        title: String,
        rows: impl IntoIterator<Item = (String, Role, Option<f64>)>,
    ) -> Self {
        let series: Vec<Series> = rows
            .into_iter()
            .enumerate()
            .map(|(index, (name, role, value))| Series {
                name,
                role,
                points: value
                    .map(|value| vec![(index as f64, value)])
                    .unwrap_or_default(),
            })
            .collect();
        Panel {
            title,
            x_desc: String::new(),
            categories: Some(series.iter().map(|series| series.name.clone()).collect()),
            series,
        }
    }
}

/// One implementation's points.
#[derive(Debug, Clone, Default)]
pub struct Series {
    /// The legend entry.
    pub name: String,
    /// What the row is: how it is drawn.
    pub role: Role,
    /// `(x, y)` with `y > 0`; points with `y <= 0` are left out.
    pub points: Vec<(f64, f64)>,
}

/// What a series is, which decides how it is drawn.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Role {
    /// One of crew's own rows: solid, in colour.
    Crew,
    /// A peer crew is compared with: dashed, dark.
    #[default]
    Peer,
    /// A ceiling no implementation can pass (the loopback limit): a grey dotted line, labelled.
    Reference,
}

impl Role {
    /// [`Role::Crew`] when `is_crew`, else [`Role::Peer`].
    pub fn crew_if(is_crew: bool) -> Self {
        if is_crew {
            Self::Crew
        } else {
            Self::Peer
        }
    }
}

/// Strong, distinct colours for crew's rows (Tableau 10 without its grey).
const CREW_COLOURS: [RGBColor; 9] = [
    RGBColor(0x1f, 0x77, 0xb4),
    RGBColor(0xff, 0x7f, 0x0e),
    RGBColor(0x2c, 0xa0, 0x2c),
    RGBColor(0xd6, 0x27, 0x28),
    RGBColor(0x94, 0x67, 0xbd),
    RGBColor(0x8c, 0x56, 0x4b),
    RGBColor(0xe3, 0x77, 0xc2),
    RGBColor(0x17, 0xbe, 0xcf),
    RGBColor(0xbc, 0xbd, 0x22),
];

/// Dark colours for peers: visible on white, told from crew's by their dashes.
const PEER_COLOURS: [RGBColor; 6] = [
    RGBColor(0x00, 0x00, 0x00),
    RGBColor(0x08, 0x30, 0x6b),
    RGBColor(0x7f, 0x27, 0x04),
    RGBColor(0x00, 0x44, 0x1b),
    RGBColor(0x54, 0x27, 0x88),
    RGBColor(0x67, 0x00, 0x0d),
];

const REFERENCE_COLOUR: RGBColor = RGBColor(0x80, 0x80, 0x80);
const DOT_PEER_COLOUR: RGBColor = RGBColor(0x40, 0x40, 0x40);
const GRID_BOLD: RGBColor = RGBColor(0xd0, 0xd0, 0xd0);
const GRID_LIGHT: RGBColor = RGBColor(0xee, 0xee, 0xee);

const FONT: &str = "sans-serif";
const LINE_PANEL: (u32, u32) = (640, 520);
const LEGEND_WIDTH: u32 = 300;

/// How one series is drawn: its colour, its role.
#[derive(Debug, Clone, Copy)]
struct Look {
    colour: RGBColor,
    role: Role,
}

impl Look {
    fn line_style(self) -> ShapeStyle {
        let width = match self.role {
            Role::Crew => 3,
            Role::Peer => 2,
            Role::Reference => 4,
        };
        self.colour.stroke_width(width)
    }
}

/// The looks of every series name, in order of first appearance: crew's rows take the crew
/// colours in turn, peers the peer colours, so a name has one look in every panel.
fn looks<'a>(series: impl Iterator<Item = &'a Series>) -> Vec<(String, Look)> {
    let mut looks: Vec<(String, Look)> = Vec::new();
    let (mut crew, mut peers) = (0, 0);
    for series in series {
        if looks.iter().any(|(name, _)| *name == series.name) {
            continue;
        }
        let colour = match series.role {
            Role::Crew => {
                crew += 1;
                CREW_COLOURS[(crew - 1) % CREW_COLOURS.len()]
            }
            Role::Peer => {
                peers += 1;
                PEER_COLOURS[(peers - 1) % PEER_COLOURS.len()]
            }
            Role::Reference => REFERENCE_COLOUR,
        };
        looks.push((
            series.name.clone(),
            Look {
                colour,
                role: series.role,
            },
        ));
    }
    looks
}

impl Chart {
    /// Writes the chart to `path`.
    ///
    /// # Errors
    /// If the file cannot be written.
    pub fn write_svg(&self, path: &Path) -> anyhow::Result<()> {
        let (lines, dots): (Vec<&Panel>, Vec<&Panel>) =
            self.panels.iter().partition(|p| p.categories.is_none());
        let looks = looks(lines.iter().flat_map(|p| p.series.iter()));
        // Line panels in one row (a shared legend on the right); dot plots three a row below.
        let line_row = if lines.is_empty() {
            (0, 0)
        } else {
            (
                LINE_PANEL.0 * lines.len() as u32 + LEGEND_WIDTH,
                LINE_PANEL.1,
            )
        };
        let dot_columns = dots.len().clamp(1, 3);
        let dot_rows = dots.len().div_ceil(dot_columns);
        let dot_size = dot_panel_size(&dots);
        let width = line_row.0.max(dot_size.0 * dot_columns as u32).max(400);
        let height = (line_row.1 + dot_size.1 * dot_rows as u32).max(200);
        let root = SVGBackend::new(path, (width, height)).into_drawing_area();
        root.fill(&WHITE).map_err(draw_error)?;
        let (top, bottom) = root.split_vertically(line_row.1);
        if !lines.is_empty() {
            let (plots, legend) = top.split_horizontally(LINE_PANEL.0 * lines.len() as u32);
            for (area, panel) in plots.split_evenly((1, lines.len())).iter().zip(&lines) {
                draw_lines(area, panel, &looks)?;
            }
            draw_legend(&legend, &looks)?;
        }
        if !dots.is_empty() {
            let grid = bottom
                .split_evenly((dot_rows, dot_columns))
                .into_iter()
                .map(|area| area.shrink((0, 0), dot_size));
            for (area, panel) in grid.zip(&dots) {
                draw_dots(&area, panel)?;
            }
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

/// Labelled ticks and light grid lines for a log axis from `low` to `high`: 1-2-5 steps of
/// each decade over a few decades, powers of ten over more (so labels never run into each
/// other), every 1..9 step when that gives fewer than three, so a narrow range still has labels.
fn log_ticks(low: f64, high: f64) -> (Vec<f64>, Vec<f64>) {
    let mut every = Vec::new();
    let mut one_two_five = Vec::new();
    let mut tens = Vec::new();
    let first = low.log10().floor() as i32;
    let last = high.log10().ceil() as i32;
    for exponent in first..=last {
        let decade = 10f64.powi(exponent);
        for step in 1..=9 {
            let value = step as f64 * decade;
            if value < low || value > high {
                continue;
            }
            every.push(value);
            if matches!(step, 1 | 2 | 5) {
                one_two_five.push(value);
            }
            if step == 1 {
                tens.push(value);
            }
        }
    }
    if one_two_five.len() < 3 {
        (every, Vec::new())
    } else if high / low > 1e3 {
        (tens, every)
    } else {
        (one_two_five, every)
    }
}

/// A y axis over every positive value of `panel`, with room above and below.
fn y_axis(panel: &Panel, room: f64) -> WithKeyPoints<LogCoord<f64>> {
    let ys = || {
        panel
            .series
            .iter()
            .flat_map(|s| s.points.iter().map(|p| p.1))
            .filter(|y| *y > 0.0)
    };
    let max = ys().fold(f64::MIN_POSITIVE, f64::max);
    let min = ys().fold(max, f64::min);
    let (low, high) = (min / room, max * room);
    let (bold, light) = log_ticks(low, high);
    (low..high)
        .log_scale()
        .with_key_points(bold)
        .with_light_points(light)
}

/// A tick label: `500`, `20k`, `1.5M`, `2G`, small values with their decimals.
fn tick_label(value: f64) -> String {
    for (scale, suffix) in [(1e9, "G"), (1e6, "M"), (1e3, "k")] {
        if value >= scale {
            let scaled = format!("{:.1}", value / scale);
            return format!("{}{suffix}", scaled.trim_end_matches(".0"));
        }
    }
    value_label(value)
}

/// A value written out: thousands grouped, small values with their decimals.
fn value_label(value: f64) -> String {
    if value >= 100.0 {
        crew_lab::perf::group(value)
    } else if value >= 1.0 {
        format!("{value:.1}").trim_end_matches(".0").to_owned()
    } else {
        format!("{value:.2}")
    }
}

fn draw_lines<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    panel: &Panel,
    looks: &[(String, Look)],
) -> anyhow::Result<()>
where
    DB::ErrorType: 'static,
{
    let mut xs: Vec<f64> = panel
        .series
        .iter()
        .flat_map(|s| s.points.iter().map(|p| p.0))
        .filter(|x| *x > 0.0)
        .collect();
    xs.sort_by(f64::total_cmp);
    xs.dedup();
    let (x_min, x_max) = match (xs.first(), xs.last()) {
        (Some(&min), Some(&max)) => (min, max),
        _ => (1.0, 2.0),
    };
    // Log x, a tick at every measured x: 1, 2 and 4 clients are evenly spaced.
    let x_axis = (x_min / 1.3..x_max * 1.3).log_scale().with_key_points(xs);
    let mut chart = ChartBuilder::on(area)
        .caption(&panel.title, (FONT, 22))
        .margin(14)
        .x_label_area_size(48)
        .y_label_area_size(78)
        .build_cartesian_2d(x_axis, y_axis(panel, 1.6))
        .map_err(draw_error)?;
    chart
        .configure_mesh()
        .x_desc(panel.x_desc.as_str())
        .x_label_formatter(&|x| tick_label(*x))
        .y_label_formatter(&|y| tick_label(*y))
        .label_style((FONT, 15))
        .axis_desc_style((FONT, 16))
        .bold_line_style(GRID_BOLD)
        .light_line_style(GRID_LIGHT)
        .draw()
        .map_err(draw_error)?;
    // References below the peers, crew on top.
    for role in [Role::Reference, Role::Peer, Role::Crew] {
        for series in panel.series.iter().filter(|s| s.role == role) {
            let points: Vec<(f64, f64)> = series
                .points
                .iter()
                .copied()
                .filter(|p| p.0 > 0.0 && p.1 > 0.0)
                .collect();
            let Some(&highest) = points.iter().max_by(|a, b| a.1.total_cmp(&b.1)) else {
                continue;
            };
            let look = looks
                .iter()
                .find(|(name, _)| *name == series.name)
                .map(|(_, look)| *look)
                .unwrap_or(Look {
                    colour: REFERENCE_COLOUR,
                    role,
                });
            draw_line(&mut chart, &points, look)?;
            if role == Role::Reference {
                // Named on the plot itself, centred just above its highest point, where no
                // other line can be.
                let label = series.name.replace('-', " ");
                let font = (FONT, 15).into_font().color(&REFERENCE_COLOUR);
                let style = font.pos(Pos::new(HPos::Center, VPos::Bottom));
                chart
                    .draw_series(std::iter::once(
                        EmptyElement::at(highest) + Text::new(label, (0, -6), style),
                    ))
                    .map_err(draw_error)?;
            }
        }
    }
    Ok(())
}

type LineChart<'a, DB> =
    ChartContext<'a, DB, Cartesian2d<WithKeyPoints<LogCoord<f64>>, WithKeyPoints<LogCoord<f64>>>>;

fn draw_line<DB: DrawingBackend>(
    chart: &mut LineChart<'_, DB>,
    points: &[(f64, f64)],
    look: Look,
) -> anyhow::Result<()>
where
    DB::ErrorType: 'static,
{
    let style = look.line_style();
    match look.role {
        Role::Crew => {
            chart
                .draw_series(LineSeries::new(points.iter().copied(), style))
                .map_err(draw_error)?;
            chart
                .draw_series(
                    points
                        .iter()
                        .map(|&p| Circle::new(p, 5, look.colour.filled())),
                )
                .map_err(draw_error)?;
        }
        Role::Peer => {
            chart
                .draw_series(DashedLineSeries::new(points.iter().copied(), 9, 6, style))
                .map_err(draw_error)?;
            chart
                .draw_series(points.iter().map(|&p| {
                    EmptyElement::at(p)
                        + Rectangle::new([(-5, -5), (5, 5)], WHITE.filled())
                        + Rectangle::new([(-5, -5), (5, 5)], look.colour.stroke_width(2))
                }))
                .map_err(draw_error)?;
        }
        Role::Reference => {
            chart
                .draw_series(DashedLineSeries::new(points.iter().copied(), 3, 5, style))
                .map_err(draw_error)?;
        }
    }
    Ok(())
}

/// The shared legend: a sample of each line, grouped by role.
fn draw_legend<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    looks: &[(String, Look)],
) -> anyhow::Result<()>
where
    DB::ErrorType: 'static,
{
    let heading = (FONT, 17).into_font().style(FontStyle::Bold);
    let entry = (FONT, 15).into_font();
    let mut y = 40;
    for (role, title) in [
        (Role::Crew, "crew (solid)"),
        (Role::Peer, "peers (dashed)"),
        (Role::Reference, "reference"),
    ] {
        let members: Vec<&(String, Look)> =
            looks.iter().filter(|(_, look)| look.role == role).collect();
        if members.is_empty() {
            continue;
        }
        area.draw(&Text::new(title, (16, y), heading.clone()))
            .map_err(draw_error)?;
        y += 26;
        for (name, look) in members {
            let (left, right, middle) = (20, 62, y + 9);
            let style = look.line_style();
            match role {
                Role::Crew => {
                    area.draw(&PathElement::new(
                        vec![(left, middle), (right, middle)],
                        style,
                    ))
                    .map_err(draw_error)?;
                    area.draw(&Circle::new((41, middle), 5, look.colour.filled()))
                        .map_err(draw_error)?;
                }
                Role::Peer => {
                    area.draw(&DashedPathElement::new(
                        vec![(left, middle), (right, middle)],
                        9,
                        6,
                        style,
                    ))
                    .map_err(draw_error)?;
                    area.draw(&Rectangle::new(
                        [(36, middle - 5), (46, middle + 5)],
                        WHITE.filled(),
                    ))
                    .map_err(draw_error)?;
                    area.draw(&Rectangle::new(
                        [(36, middle - 5), (46, middle + 5)],
                        look.colour.stroke_width(2),
                    ))
                    .map_err(draw_error)?;
                }
                Role::Reference => {
                    area.draw(&DashedPathElement::new(
                        vec![(left, middle), (right, middle)],
                        3,
                        5,
                        style,
                    ))
                    .map_err(draw_error)?;
                }
            }
            area.draw(&Text::new(name.as_str(), (74, y), entry.clone()))
                .map_err(draw_error)?;
            y += 24;
        }
        y += 14;
    }
    Ok(())
}

/// The size of one dot-plot panel: tall enough for its rows.
fn dot_panel_size(panels: &[&Panel]) -> (u32, u32) {
    let rows = panels
        .iter()
        .map(|p| p.categories.as_ref().map_or(0, Vec::len))
        .max()
        .unwrap_or(0) as u32;
    (560, 130 + 44 * rows.max(2))
}

fn draw_dots<DB: DrawingBackend>(area: &DrawingArea<DB, Shift>, panel: &Panel) -> anyhow::Result<()>
where
    DB::ErrorType: 'static,
{
    let names = panel.categories.clone().unwrap_or_default();
    let rows = names.len().max(1) as i32;
    // Category 0 on the top row.
    let row_of = |index: f64| SegmentValue::CenterOf(rows - 1 - index.round() as i32);
    let widest = names.iter().map(|n| n.chars().count()).max().unwrap_or(4) as u32;
    // Room on the right for the value written beside the largest dot.
    let x_axis = y_axis(panel, 1.0);
    let x_axis = {
        let range = plotters::coord::ranged1d::Ranged::range(&x_axis);
        let (low, high) = (range.start / 1.5, range.end * 6.0);
        let (bold, light) = log_ticks(low, high);
        (low..high)
            .log_scale()
            .with_key_points(bold)
            .with_light_points(light)
    };
    // `a..b` has a segment for every value from a to b, both included.
    let y_axis = (0..rows - 1).into_segmented();
    let mut chart = ChartBuilder::on(area)
        .caption(&panel.title, (FONT, 19))
        .margin(14)
        .x_label_area_size(40)
        .y_label_area_size(20 + 8 * widest)
        .build_cartesian_2d(x_axis, y_axis)
        .map_err(draw_error)?;
    let label_names = names.clone();
    chart
        .configure_mesh()
        .x_desc(panel.x_desc.as_str())
        .x_label_formatter(&|x| tick_label(*x))
        .y_labels(rows as usize)
        .y_label_formatter(&|y| match y {
            SegmentValue::CenterOf(row) => label_names
                .get((rows - 1 - row) as usize)
                .cloned()
                .unwrap_or_default(),
            _ => String::new(),
        })
        .label_style((FONT, 15))
        .bold_line_style(GRID_BOLD)
        .light_line_style(GRID_LIGHT)
        .draw()
        .map_err(draw_error)?;
    let crew_looks = looks(panel.series.iter());
    for series in &panel.series {
        let colour = match series.role {
            Role::Crew => crew_looks
                .iter()
                .find(|(name, _)| *name == series.name)
                .map_or(CREW_COLOURS[0], |(_, look)| look.colour),
            Role::Peer | Role::Reference => DOT_PEER_COLOUR,
        };
        for &(x, value) in series.points.iter().filter(|p| p.1 > 0.0) {
            let at = (value, row_of(x));
            let font = (FONT, 15).into_font();
            let font = if series.role == Role::Crew {
                font.style(FontStyle::Bold)
            } else {
                font
            };
            let text = font.color(&colour);
            chart
                .draw_series(std::iter::once(
                    EmptyElement::at(at)
                        + Circle::new((0, 0), 7, colour.filled())
                        + Text::new(value_label(value), (12, -8), text),
                ))
                .map_err(draw_error)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The lab's chart, with made-up numbers of the usual shape: 9 crew models, 5 peers and
    /// the loopback limit, at 1, 2 and 4 clients.
    fn lab_chart() -> Chart {
        let mut names: Vec<(String, Role)> = [
            "single",
            "threads",
            "pool",
            "process-pool",
            "reuseport",
            "async",
            "async-offload",
            "shards",
            "gil",
        ]
        .iter()
        .map(|m| (format!("crew-{m}"), Role::Crew))
        .collect();
        for peer in [
            "python-one_server",
            "python-thread_server",
            "python-multiprocess_server",
            "python-async_server",
            "go",
        ] {
            names.push((peer.to_owned(), Role::Peer));
        }
        names.push(("loopback-limit".to_owned(), Role::Reference));
        let panels = [
            ("IO-bound (n = 1): requests/sec", 40_000.0),
            ("CPU-bound", 600.0),
        ]
        .into_iter()
        .map(|(title, base)| Panel {
            title: title.to_owned(),
            x_desc: "clients".to_owned(),
            categories: None,
            series: names
                .iter()
                .enumerate()
                .map(|(index, (name, role))| Series {
                    name: name.clone(),
                    role: *role,
                    points: [1.0f64, 2.0, 4.0]
                        .iter()
                        .map(|&c| (c, base * c.sqrt() * (1.0 + index as f64 / 10.0)))
                        .collect(),
                })
                .collect(),
        })
        .collect();
        Chart { panels }
    }

    /// The `<text>` elements of an SVG: `(x, text)`.
    fn texts(svg: &str) -> Vec<(f64, String)> {
        svg.split("<text")
            .skip(1)
            .filter_map(|element| {
                let x = element
                    .split("x=\"")
                    .nth(1)?
                    .split('"')
                    .next()?
                    .parse()
                    .ok()?;
                let text = element.split('>').nth(1)?.split("</text").next()?;
                Some((x, text.trim().to_owned()))
            })
            .collect()
    }

    fn render(chart: &Chart) -> String {
        static RENDERED: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let number = RENDERED.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let path = std::env::temp_dir().join(format!(
            "crew-bench-chart-{}-{number}.svg",
            std::process::id()
        ));
        chart.write_svg(&path).unwrap();
        let svg = std::fs::read_to_string(&path).unwrap();
        std::fs::remove_file(&path).unwrap();
        svg
    }

    #[test]
    fn lab_chart_names_every_series_outside_the_plots() {
        let chart = lab_chart();
        let svg = render(&chart);
        let texts = texts(&svg);
        let plots_end = (LINE_PANEL.0 * 2) as f64;
        for series in &chart.panels[0].series {
            // Once in the legend, which stands right of both panels: it covers no data.
            let entries: Vec<f64> = texts
                .iter()
                .filter(|(_, text)| *text == series.name)
                .map(|(x, _)| *x)
                .collect();
            assert_eq!(entries.len(), 1, "{}: {entries:?}", series.name);
            assert!(
                entries[0] > plots_end,
                "{} at x = {}",
                series.name,
                entries[0]
            );
        }
        for heading in ["crew (solid)", "peers (dashed)", "reference"] {
            assert!(texts.iter().any(|(_, t)| t == heading), "{heading}");
        }
        // The loopback limit is labelled on each plot, as a reference line.
        let on_plots = texts
            .iter()
            .filter(|(x, t)| t == "loopback limit" && *x < plots_end)
            .count();
        assert_eq!(on_plots, 2);
        // A tick at every client count, 1 included, in each panel.
        for tick in ["1", "2", "4"] {
            let count = texts.iter().filter(|(_, t)| t == tick).count();
            assert_eq!(count, 2, "x tick {tick}");
        }
        assert_eq!(texts.iter().filter(|(_, t)| t == "clients").count(), 2);
        // 1-2-5 ticks on y, short.
        for tick in ["50k", "100k", "1k", "2k"] {
            assert!(
                texts.iter().any(|(_, t)| t == tick),
                "y tick {tick}: {texts:?}"
            );
        }
    }

    #[test]
    fn crew_and_peers_get_distinct_looks() {
        let chart = lab_chart();
        let looks = looks(chart.panels.iter().flat_map(|p| p.series.iter()));
        assert_eq!(looks.len(), 15, "one look per name, not per panel");
        let colours = |role: Role| -> Vec<RGBColor> {
            looks
                .iter()
                .filter(|(_, look)| look.role == role)
                .map(|(_, look)| look.colour)
                .collect()
        };
        let (crew, peers) = (colours(Role::Crew), colours(Role::Peer));
        assert_eq!((crew.len(), peers.len()), (9, 5));
        let mut all = crew.clone();
        all.extend(&peers);
        for (i, a) in all.iter().enumerate() {
            assert!(!all[i + 1..].contains(a), "colour {a:?} used twice");
        }
        // No pale colour: every peer colour is dark enough to stand out on white.
        for RGBColor(r, g, b) in peers {
            let luma = 0.299 * r as f64 + 0.587 * g as f64 + 0.114 * b as f64;
            assert!(luma < 110.0, "({r}, {g}, {b}) is too pale");
        }
    }

    #[test]
    fn dot_plot_names_rows_and_writes_values() {
        let names = ["crew-threads", "crossbeam", "rayon", "python-threads"];
        let panel = Panel::categories(
            "threads submit: tasks/s".to_owned(),
            names.iter().enumerate().map(|(index, name)| {
                // python-threads did not run: no value, but still a row.
                let value = (index < 3).then(|| 1_000_000.0 * (index + 1) as f64 + 0.4);
                (
                    name.to_string(),
                    Role::crew_if(name.starts_with("crew-")),
                    value,
                )
            }),
        );
        assert_eq!(panel.categories.as_deref().unwrap(), names);
        assert_eq!(panel.series[1].points, [(1.0, 2_000_000.4)]);
        assert!(panel.series[3].points.is_empty());
        let chart = Chart {
            panels: vec![panel],
        };
        let texts = texts(&render(&chart));
        for name in names {
            assert!(texts.iter().any(|(_, t)| t == name), "row {name}");
        }
        for value in ["1 000 000", "2 000 000", "3 000 000"] {
            assert!(
                texts.iter().any(|(_, t)| t == value),
                "value {value}: {texts:?}"
            );
        }
    }

    #[test]
    fn tick_labels_are_short() {
        assert_eq!(tick_label(2_000_000_000.0), "2G");
        assert_eq!(tick_label(1_500_000.0), "1.5M");
        assert_eq!(tick_label(20_000.0), "20k");
        assert_eq!(tick_label(500.0), "500");
        assert_eq!(tick_label(0.5), "0.50");
        assert_eq!(value_label(3_866_046.66), "3 866 047");
        assert_eq!(value_label(74.61), "74.6");
    }

    #[test]
    fn narrow_ranges_still_get_ticks() {
        let (bold, light) = log_ticks(55.0, 140.0);
        assert_eq!(bold, [60.0, 70.0, 80.0, 90.0, 100.0]);
        assert!(light.is_empty());
        let (bold, light) = log_ticks(0.5, 200.0);
        assert_eq!(bold, [0.5, 1.0, 2.0, 5.0, 10.0, 20.0, 50.0, 100.0, 200.0]);
        assert_eq!(light.len(), 5 + 9 + 9 + 2);
        // Over many decades, powers of ten only: labels never run into each other.
        let (bold, _) = log_ticks(3e6, 2e10);
        assert_eq!(bold, [1e7, 1e8, 1e9, 1e10]);
    }
}
