//! Figures as SVG and PNG: spike rasters, population rates, power spectra. Each figure is one
//! [`Figure`] drawn on both backends so the two files always show the same thing.

use crate::error::{Result, SurgeError};
use crate::results::{commit, partial_path};
use plotters::coord::Shift;
use plotters::prelude::*;
use std::path::{Path, PathBuf};
use std::sync::Once;

static FONT: Once = Once::new();

/// Text needs a font; the bundled DejaVu Sans makes figures independent of the system's fonts.
fn ensure_font() {
    FONT.call_once(|| {
        let _ = plotters::style::register_font(
            "sans-serif",
            FontStyle::Normal,
            include_bytes!("../../assets/DejaVuSans.ttf"),
        );
    });
}

type DrawResult = std::result::Result<(), String>;

/// Something that can draw itself on any plotters backend.
pub trait Figure {
    fn size(&self) -> (u32, u32) {
        (900, 500)
    }
    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> DrawResult;
}

fn e<E: std::fmt::Debug>(x: E) -> String {
    format!("{x:?}")
}

/// Writes `<stem>.svg` and `<stem>.png` atomically and returns both paths.
pub fn save(fig: &impl Figure, stem: &Path) -> Result<Vec<PathBuf>> {
    ensure_font();
    let size = fig.size();
    let mut out = Vec::new();
    for ext in ["svg", "png"] {
        let path = stem.with_extension(ext);
        let partial = partial_path(&path);
        let err = |m: String| SurgeError::Plot {
            path: path.clone(),
            message: m,
        };
        if ext == "svg" {
            let root = SVGBackend::new(&partial, size).into_drawing_area();
            root.fill(&WHITE).map_err(|x| err(e(x)))?;
            fig.draw(&root).map_err(err)?;
            root.present().map_err(|x| err(e(x)))?;
        } else {
            let root = BitMapBackend::new(&partial, size).into_drawing_area();
            root.fill(&WHITE).map_err(|x| err(e(x)))?;
            fig.draw(&root).map_err(err)?;
            root.present().map_err(|x| err(e(x)))?;
        }
        commit(&partial, &path)?;
        out.push(path);
    }
    Ok(out)
}

const PALETTE: [RGBColor; 6] = [
    RGBColor(31, 119, 180),
    RGBColor(214, 39, 40),
    RGBColor(44, 160, 44),
    RGBColor(148, 103, 189),
    RGBColor(255, 127, 14),
    RGBColor(23, 190, 207),
];

/// Spike raster of at most `max_per_pop` cells per population, populations stacked and coloured.
pub struct Raster<'a> {
    pub title: String,
    pub times_ms: &'a [f64],
    pub cells: &'a [u32],
    pub pop_names: &'a [String],
    pub pop_offsets: &'a [usize],
    pub duration_ms: f64,
    pub max_per_pop: usize,
}

impl Figure for Raster<'_> {
    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> DrawResult {
        let shown: Vec<usize> = (0..self.pop_names.len())
            .map(|p| (self.pop_offsets[p + 1] - self.pop_offsets[p]).min(self.max_per_pop))
            .collect();
        let rows: usize = shown.iter().sum::<usize>().max(1);
        let mut chart = ChartBuilder::on(root)
            .caption(&self.title, ("sans-serif", 20))
            .margin(10)
            .x_label_area_size(40)
            .y_label_area_size(50)
            .build_cartesian_2d(0.0..self.duration_ms, 0.0..rows as f64)
            .map_err(e)?;
        chart
            .configure_mesh()
            .x_desc("time (ms)")
            .y_desc("cell")
            .disable_mesh()
            .draw()
            .map_err(e)?;
        let mut base = 0usize;
        for (p, name) in self.pop_names.iter().enumerate() {
            let (lo, n) = (self.pop_offsets[p], shown[p]);
            let color = PALETTE[p % PALETTE.len()];
            let pts = self
                .times_ms
                .iter()
                .zip(self.cells)
                .filter(|(_, c)| (**c as usize) >= lo && (**c as usize) < lo + n)
                .map(|(t, c)| (*t, (base + (*c as usize - lo)) as f64 + 0.5));
            chart
                .draw_series(pts.map(|xy| Circle::new(xy, 1, color.filled())))
                .map_err(e)?
                .label(format!("{name} (first {n})"))
                .legend(move |(x, y)| Circle::new((x + 8, y), 4, color.filled()));
            base += n;
        }
        chart
            .configure_series_labels()
            .background_style(WHITE.mix(0.8))
            .border_style(BLACK)
            .draw()
            .map_err(e)?;
        Ok(())
    }
}

/// Axis tick text: scientific notation on log axes, a few significant digits otherwise.
fn tick(y: f64, log: bool) -> String {
    if log || (y != 0.0 && (y.abs() >= 1e4 || y.abs() < 1e-2)) {
        format!("{y:.0e}")
    } else {
        let s = format!("{y:.3}");
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    }
}

/// Several named series against a common x axis; `log_y` for spectra.
pub struct Lines<'a> {
    pub title: String,
    pub x_desc: String,
    pub y_desc: String,
    pub series: Vec<(String, &'a [f64], &'a [f64])>,
    pub log_y: bool,
    pub x_range: Option<(f64, f64)>,
}

impl Figure for Lines<'_> {
    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> DrawResult {
        let (mut x0, mut x1, mut y0, mut y1) = (
            f64::INFINITY,
            f64::NEG_INFINITY,
            f64::INFINITY,
            f64::NEG_INFINITY,
        );
        for (_, xs, ys) in &self.series {
            for (&x, &y) in xs.iter().zip(ys.iter()) {
                if let Some((a, b)) = self.x_range
                    && (x < a || x > b)
                {
                    continue;
                }
                if !y.is_finite() || (self.log_y && y <= 0.0) {
                    continue;
                }
                x0 = x0.min(x);
                x1 = x1.max(x);
                y0 = y0.min(y);
                y1 = y1.max(y);
            }
        }
        if !x0.is_finite() {
            (x0, x1, y0, y1) = (0.0, 1.0, 1e-3, 1.0);
        }
        if let Some((a, b)) = self.x_range {
            (x0, x1) = (a, b);
        }
        if y1 <= y0 {
            y1 = y0 + y0.abs().max(1e-3);
        }
        fn builder<'a, 'b, DB: DrawingBackend>(
            root: &'a DrawingArea<DB, Shift>,
            title: &str,
        ) -> ChartBuilder<'a, 'b, DB> {
            let mut c = ChartBuilder::on(root);
            c.caption(title, ("sans-serif", 20))
                .margin(10)
                .x_label_area_size(40)
                .y_label_area_size(70);
            c
        }
        macro_rules! body {
            ($chart:expr, $map:expr) => {{
                let mut chart = $chart;
                let log_y = self.log_y;
                chart
                    .configure_mesh()
                    .x_desc(&self.x_desc)
                    .y_desc(&self.y_desc)
                    .y_label_formatter(&|y: &f64| tick(*y, log_y))
                    .draw()
                    .map_err(e)?;
                for (k, (name, xs, ys)) in self.series.iter().enumerate() {
                    let color = PALETTE[k % PALETTE.len()];
                    let pts: Vec<(f64, f64)> = xs
                        .iter()
                        .zip(ys.iter())
                        .filter(|(x, y)| {
                            **x >= x0 && **x <= x1 && y.is_finite() && (!self.log_y || **y > 0.0)
                        })
                        .map(|(x, y)| (*x, $map(*y)))
                        .collect();
                    chart
                        .draw_series(LineSeries::new(pts, color.stroke_width(2)))
                        .map_err(e)?
                        .label(name.clone())
                        .legend(move |(x, y)| {
                            PathElement::new(vec![(x, y), (x + 16, y)], color.stroke_width(2))
                        });
                }
                chart
                    .configure_series_labels()
                    .background_style(WHITE.mix(0.8))
                    .border_style(BLACK)
                    .draw()
                    .map_err(e)?;
            }};
        }
        if self.log_y {
            let chart = builder(root, &self.title)
                .build_cartesian_2d(x0..x1, (y0..y1 * 1.5).log_scale())
                .map_err(e)?;
            body!(chart, |y: f64| y);
        } else {
            let pad = 0.05 * (y1 - y0);
            let chart = builder(root, &self.title)
                .build_cartesian_2d(x0..x1, (y0 - pad)..(y1 + pad))
                .map_err(e)?;
            body!(chart, |y: f64| y);
        }
        Ok(())
    }
}

pub mod reports;
