//! Loss curves as PNG (plotters, with an embedded font so no system font is needed).

use std::path::Path;
use std::sync::Once;

use cold_core::report::EvalReport;
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
pub(crate) fn loss_curve(
    points: &[(usize, f64)],
    title: &str,
    fine_tune_from: Option<usize>,
    path: &Path,
) -> Result<()> {
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
        if let Some(x) = fine_tune_from {
            let red = RGBColor(200, 60, 60);
            chart
                .draw_series(LineSeries::new(
                    [(x as f64, y_min), (x as f64, y_max)],
                    red.stroke_width(1),
                ))
                .map_err(|e| err(e.to_string()))?
                .label(format!("fine-tuning from step {x}"))
                .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], red));
        }
        chart
            .configure_series_labels()
            .background_style(WHITE.mix(0.8))
            .border_style(BLACK)
            .draw()
            .map_err(|e| err(e.to_string()))?;
        root.present().map_err(|e| err(e.to_string()))?;
    }
    let im = image::RgbImage::from_raw(w, h, buf).expect("buffer matches size");
    cold_core::imageio::save_png(path, &image::DynamicImage::ImageRgb8(im))?;
    Ok(())
}

/// One point of a quality/speed curve: K, SSIM, FID (if measured), images per second.
#[derive(Clone, Copy, Debug)]
pub(crate) struct StepsPoint {
    pub steps: usize,
    pub ssim: f64,
    pub fid: Option<f64>,
    pub images_per_second: f64,
}

impl StepsPoint {
    /// The points of a report's steps curve, from the level `t` it started at, sorted by K.
    /// Every level (K = t) is the main table's Algorithm 2 row when the curve left it out (its
    /// speed was not timed there, so its speed is 0, off the speed plot). `None` without a curve.
    pub(crate) fn from_report(report: &EvalReport) -> Option<(usize, Vec<StepsPoint>)> {
        let t = report.steps_curve.first()?.t;
        let mut points: Vec<StepsPoint> = report
            .steps_curve
            .iter()
            .map(|r| StepsPoint {
                steps: r.steps,
                ssim: r.scores.ssim,
                fid: r.fid,
                images_per_second: r.images_per_second,
            })
            .collect();
        if !points.iter().any(|q| q.steps == t)
            && let Some(r) = report.row(t, "algorithm2")
        {
            points.push(StepsPoint {
                steps: t,
                ssim: r.scores.ssim,
                fid: r.fid,
                images_per_second: 0.0,
            });
        }
        points.sort_by_key(|q| q.steps);
        Some((t, points))
    }
}

/// The quality/speed curve of `--steps K` (from `cold eval --steps-curve`): SSIM and FID against
/// K on the left, restorations per second on the right.
pub(crate) fn steps_curve(points: &[StepsPoint], title: &str, path: &Path) -> Result<()> {
    register_font();
    if points.is_empty() {
        return Ok(());
    }
    let (w, h) = (1000u32, 420u32);
    let mut buf = vec![255u8; (w * h * 3) as usize];
    let err = |e: String| TrainError::Plot(e);
    {
        let root = BitMapBackend::with_buffer(&mut buf, (w, h)).into_drawing_area();
        let root = root
            .titled(title, ("sans-serif", 20))
            .map_err(|e| err(e.to_string()))?;
        let (left, right) = root.split_horizontally(w / 2);
        let k_max = points.iter().map(|p| p.steps).max().unwrap_or(1) as f64;
        let xs = 0.8..(k_max * 1.25);
        // SSIM (and FID, scaled onto its own axis) against K.
        let (s_lo, s_hi) = points.iter().fold((f64::MAX, f64::MIN), |(a, b), p| {
            (a.min(p.ssim), b.max(p.ssim))
        });
        let pad = ((s_hi - s_lo) * 0.1).max(0.01);
        let chart = ChartBuilder::on(&left)
            .margin(12)
            .x_label_area_size(40)
            .y_label_area_size(56)
            .right_y_label_area_size(56)
            .build_cartesian_2d(xs.clone().log_scale(), (s_lo - pad)..(s_hi + pad))
            .map_err(|e| err(e.to_string()))?;
        let fids: Vec<(f64, f64)> = points
            .iter()
            .filter_map(|p| p.fid.map(|f| (p.steps as f64, f)))
            .collect();
        let (f_lo, f_hi) = fids
            .iter()
            .fold((f64::MAX, f64::MIN), |(a, b), p| (a.min(p.1), b.max(p.1)));
        let fpad = ((f_hi - f_lo) * 0.1).max(0.5);
        let mut chart =
            chart.set_secondary_coord(xs.clone().log_scale(), (f_lo - fpad)..(f_hi + fpad));
        chart
            .configure_mesh()
            .x_desc("sampling steps K")
            .y_desc("SSIM (higher is better)")
            .label_style(("sans-serif", 14))
            .x_label_formatter(&|v| format!("{v:.0}"))
            .draw()
            .map_err(|e| err(e.to_string()))?;
        let ssim: Vec<(f64, f64)> = points.iter().map(|p| (p.steps as f64, p.ssim)).collect();
        chart
            .draw_series(LineSeries::new(ssim.clone(), BLUE.stroke_width(2)))
            .map_err(|e| err(e.to_string()))?
            .label("SSIM")
            .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], BLUE.stroke_width(2)));
        chart
            .draw_series(ssim.iter().map(|&p| Circle::new(p, 4, BLUE.filled())))
            .map_err(|e| err(e.to_string()))?;
        if !fids.is_empty() {
            chart
                .configure_secondary_axes()
                .y_desc("FID (lower is better)")
                .label_style(("sans-serif", 14))
                .draw()
                .map_err(|e| err(e.to_string()))?;
            chart
                .draw_secondary_series(LineSeries::new(fids.clone(), RED.stroke_width(2)))
                .map_err(|e| err(e.to_string()))?
                .label("FID")
                .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], RED.stroke_width(2)));
            chart
                .draw_secondary_series(fids.iter().map(|&p| Circle::new(p, 4, RED.filled())))
                .map_err(|e| err(e.to_string()))?;
        }
        chart
            .configure_series_labels()
            .background_style(WHITE.mix(0.8))
            .border_style(BLACK)
            .draw()
            .map_err(|e| err(e.to_string()))?;
        // Speed (points without a timing, e.g. the full sampler taken from the main table, left out).
        let speed: Vec<(f64, f64)> = points
            .iter()
            .filter(|p| p.images_per_second > 0.0)
            .map(|p| (p.steps as f64, p.images_per_second))
            .collect();
        let v_max = speed.iter().map(|p| p.1).fold(1e-3, f64::max);
        let v_min = speed.iter().map(|p| p.1).fold(v_max, f64::min);
        let mut chart = ChartBuilder::on(&right)
            .margin(12)
            .x_label_area_size(40)
            .y_label_area_size(60)
            .build_cartesian_2d(xs.log_scale(), ((v_min / 1.5)..(v_max * 1.5)).log_scale())
            .map_err(|e| err(e.to_string()))?;
        chart
            .configure_mesh()
            .x_desc("sampling steps K")
            .y_desc("restorations per second")
            .label_style(("sans-serif", 14))
            .x_label_formatter(&|v| format!("{v:.0}"))
            .y_label_formatter(&|v| {
                if *v >= 10.0 {
                    format!("{v:.0}")
                } else if *v >= 1.0 {
                    format!("{v:.1}")
                } else {
                    format!("{v:.2}")
                }
            })
            .draw()
            .map_err(|e| err(e.to_string()))?;
        chart
            .draw_series(LineSeries::new(speed.clone(), BLACK.stroke_width(2)))
            .map_err(|e| err(e.to_string()))?;
        chart
            .draw_series(speed.iter().map(|&p| Circle::new(p, 4, BLACK.filled())))
            .map_err(|e| err(e.to_string()))?;
        root.present().map_err(|e| err(e.to_string()))?;
    }
    let im = image::RgbImage::from_raw(w, h, buf).expect("buffer matches size");
    cold_core::imageio::save_png(path, &image::DynamicImage::ImageRgb8(im))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_reports_steps_curve_gets_the_full_row_as_its_last_point() {
        use cold_core::metrics::Scores;
        use cold_core::report::{EvalRow, StepsRow};
        let scores = |ssim| Scores {
            rmse: 0.1,
            ssim,
            images: 10,
        };
        let mut report = EvalReport {
            version: 1,
            model: "m".into(),
            dataset: "mnist".into(),
            images: 10,
            ep: "cpu".into(),
            inputs: "float".into(),
            seconds: 1.0,
            rows: vec![
                EvalRow {
                    t: 20,
                    method: "algorithm1".into(),
                    scores: scores(0.1),
                    fid: None,
                },
                EvalRow {
                    t: 20,
                    method: "algorithm2".into(),
                    scores: scores(0.6),
                    fid: Some(40.0),
                },
            ],
            steps_curve: [5, 1]
                .iter()
                .map(|&k| StepsRow {
                    t: 20,
                    steps: k,
                    scores: scores(0.5 + k as f64 / 100.0),
                    fid: None,
                    images_per_second: 100.0 / k as f64,
                })
                .collect(),
        };
        let (t, pts) = StepsPoint::from_report(&report).expect("curve");
        assert_eq!(t, 20);
        let got: Vec<_> = pts.iter().map(|p| (p.steps, p.ssim, p.fid)).collect();
        assert_eq!(
            got,
            vec![(1, 0.51, None), (5, 0.55, None), (20, 0.6, Some(40.0))]
        );
        assert_eq!(pts[2].images_per_second, 0.0);
        report.steps_curve.clear();
        assert!(StepsPoint::from_report(&report).is_none());
    }

    #[test]
    fn steps_curve_writes_a_png() {
        let dir = tempfile::tempdir().expect("tmp");
        let p = dir.path().join("steps.png");
        let pts: Vec<StepsPoint> = [
            (1, 0.4, 30.0, 500.0),
            (5, 0.5, 20.0, 100.0),
            (20, 0.45, 25.0, 25.0),
        ]
        .iter()
        .map(|&(k, s, f, v)| StepsPoint {
            steps: k,
            ssim: s,
            fid: Some(f),
            images_per_second: v,
        })
        .collect();
        steps_curve(&pts, "test", &p).expect("plot");
        let im = image::open(&p).expect("png");
        assert_eq!((im.width(), im.height()), (1000, 420));
        // not blank: the curves are drawn
        let rgb = im.to_rgb8();
        assert!(rgb.pixels().filter(|px| px.0 == [0, 0, 255]).count() > 50);
    }
}
