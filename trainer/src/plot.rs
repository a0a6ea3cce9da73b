//! Loss curves as PNG (plotters, with an embedded font so no system font is needed).

use std::path::Path;
use std::sync::Once;

use plotters::prelude::*;

use crate::error::{Result, TrainError};

static FONT: Once = Once::new();

fn register_font() {
    FONT.call_once(|| {
        // Ignored on failure: the plot then lacks text but still shows the curve.
        let _ = plotters::style::register_font(
            "sans-serif",
            FontStyle::Normal,
            epaint_default_fonts::UBUNTU_LIGHT,
        );
    });
}

/// Plots `(step, loss)` points (log-scale loss) with a moving average, into a PNG.
pub fn loss_curve(points: &[(usize, f64)], title: &str, path: &Path) -> Result<()> {
    register_font();
    let (w, h) = (900u32, 500u32);
    let mut buf = vec![255u8; (w * h * 3) as usize];
    let pts: Vec<(f64, f64)> = points
        .iter()
        .filter(|(_, l)| l.is_finite() && *l > 0.0)
        .map(|&(s, l)| (s as f64, l))
        .collect();
    if pts.is_empty() {
        return Ok(());
    }
    let err = |e: String| TrainError::Plot(e);
    {
        let root = BitMapBackend::with_buffer(&mut buf, (w, h)).into_drawing_area();
        let x_max = pts.last().map(|p| p.0).unwrap_or(1.0).max(1.0);
        let x_min = pts.first().map(|p| p.0).unwrap_or(0.0).min(x_max - 1.0);
        let y_min = pts.iter().map(|p| p.1).fold(f64::INFINITY, f64::min) * 0.9;
        let y_max = pts.iter().map(|p| p.1).fold(0.0, f64::max) * 1.1;
        let mut chart = ChartBuilder::on(&root)
            .caption(title, ("sans-serif", 20))
            .margin(14)
            .x_label_area_size(44)
            .y_label_area_size(64)
            .build_cartesian_2d(x_min..x_max, (y_min..y_max).log_scale())
            .map_err(|e| err(e.to_string()))?;
        chart
            .configure_mesh()
            .x_desc("step")
            .y_desc("L1 loss (log scale)")
            .x_labels(8)
            .y_labels(12)
            .light_line_style(RGBColor(238, 238, 238))
            .label_style(("sans-serif", 15))
            .x_label_formatter(&|v| format!("{v:.0}"))
            .y_label_formatter(&|v| format!("{v:.3}"))
            .draw()
            .map_err(|e| err(e.to_string()))?;
        chart
            .draw_series(LineSeries::new(
                pts.iter().copied(),
                RGBColor(170, 190, 230),
            ))
            .map_err(|e| err(e.to_string()))?
            .label("per step")
            .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], RGBColor(170, 190, 230)));
        let win = (pts.len() / 50).clamp(1, 200);
        let smooth: Vec<(f64, f64)> = pts
            .windows(win)
            .map(|wd| {
                (
                    wd[wd.len() - 1].0,
                    wd.iter().map(|p| p.1).sum::<f64>() / wd.len() as f64,
                )
            })
            .collect();
        chart
            .draw_series(LineSeries::new(smooth, BLUE.stroke_width(2)))
            .map_err(|e| err(e.to_string()))?
            .label(format!("moving average ({win} steps)"))
            .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], BLUE.stroke_width(2)));
        chart
            .configure_series_labels()
            .background_style(WHITE.mix(0.8))
            .border_style(BLACK)
            .draw()
            .map_err(|e| err(e.to_string()))?;
        root.present().map_err(|e| err(e.to_string()))?;
    }
    let im = image::RgbImage::from_raw(w, h, buf).expect("buffer matches size");
    cold_runtime::imageio::save_png(path, &image::DynamicImage::ImageRgb8(im))?;
    Ok(())
}
