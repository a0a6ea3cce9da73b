//! Snowification (ImageNet-C's snow as the reference's `snowification/` implements it, class
//! `Snow`, with a snow layer per image): `x_t` is made from `x0` directly, not by composing steps.
//! Level `t >= 1` uses step `i = t - 1` of linear schedules over T steps (threshold, motion-blur
//! sigma, brightness):
//!
//! - the image's snow base `n` (a per-image parameter: Gaussian `N(mean, std)` noise zoomed by
//!   `zoom` with bilinear interpolation about the centre, as `clipped_zoom`) is thresholded,
//!   `l = clip(n if n >= threshold_i else 0, 0, 1)`;
//! - `l` is motion-blurred along one axis (a per-image parameter: vertical or horizontal) with a
//!   normalised Gaussian line kernel of `kernel_size` taps and sigma `blur_sigma_i`, zero padded
//!   ('same');
//! - the image, mapped to [0, 1], is brightened towards its grey level by `brightness_i`
//!   (`b u + (1 - b) max(u, 1.5 gray(u) + 0.5)`), the snow and its 180-degree rotation are added,
//!   the sum is clipped to [0, 1] and mapped back to [-1, 1].
//!
//! Per-image parameters: the `H x W` snow base (row-major), then `vertical` (0 or 1).

use std::any::Any;

use ndarray::{Array1, Array2, Array3, Array4, ArrayView2, ArrayView4, ArrayViewD, Axis, s};
use rand::{Rng, RngCore};
use rand_distr::{Distribution, Normal};
use serde::{Deserialize, Serialize};

use super::Degradation;
use super::kind::{Kind, Lowering, TableInput, Tables, nodes};
use crate::error::{Error, Result};
use crate::onnx::{Attr, Dim, GraphBuilder};

/// The graph inputs of the motion-blur matrices.
pub(crate) const ROWS: &str = "degradation.snow_rows";
pub(crate) const COLS: &str = "degradation.snow_cols";

/// A snowification process (the paper's settings: [`Snow::paper`]).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Snow {
    /// Mean and standard deviation of the Gaussian snow base, before zooming.
    pub mean: f64,
    pub std: f64,
    /// Zoom factor of the base (the centre `1/zoom` of the noise, stretched to the image).
    pub zoom: f64,
    /// Threshold of snowy pixels at the first and the last step (linear in between).
    pub threshold: [f64; 2],
    /// Taps of the motion-blur line kernel (odd).
    pub kernel_size: usize,
    /// Motion-blur sigma at the first and the last step.
    pub blur_sigma: [f64; 2],
    /// Brightness coefficient at the first and the last step (1: the image as it is).
    pub brightness: [f64; 2],
}

/// Linear interpolation of step `i` of `n` from `ends[0]` to `ends[1]` (`torch.linspace`).
fn linspace(ends: [f64; 2], n: usize, i: usize) -> f64 {
    if n <= 1 {
        return ends[0];
    }
    ends[0] + (ends[1] - ends[0]) * i as f64 / (n - 1) as f64
}

/// The normalised Gaussian of `size` taps centred on the middle one (torchgeometry's
/// `get_gaussian_kernel`).
pub(crate) fn gaussian_taps(size: usize, sigma: f64) -> Vec<f64> {
    let half = (size / 2) as f64;
    let g: Vec<f64> = (0..size)
        .map(|k| (-(k as f64 - half).powi(2) / (2.0 * sigma * sigma)).exp())
        .collect();
    let sum: f64 = g.iter().sum();
    g.into_iter().map(|v| v / sum).collect()
}

/// Bilinear zoom about the centre to the same size, as the reference's `clipped_zoom` (scipy's
/// `zoom(order=1)` of the centre crop, trimmed): per axis, the centre `ceil(n / zoom)` samples are
/// stretched to `round(ceil(n / zoom) * zoom)` (half to even) with end points aligned, and the
/// middle `n` kept.
pub(crate) fn clipped_zoom(img: ArrayView2<f64>, zoom: f64) -> Array2<f64> {
    let (h, w) = img.dim();
    // For each axis: the source coordinate (in the full image) of every output sample.
    let axis = |n: usize| -> Vec<f64> {
        let crop = ((n as f64) / zoom).ceil() as usize;
        let top = (n - crop.min(n)) / 2;
        let out = (crop as f64 * zoom).round_ties_even() as usize;
        let trim = out.saturating_sub(n) / 2;
        (0..n)
            .map(|o| {
                let j = o + trim;
                let scale = if out > 1 {
                    (crop as f64 - 1.0) / (out as f64 - 1.0)
                } else {
                    0.0
                };
                top as f64 + j as f64 * scale
            })
            .collect()
    };
    let (ys, xs) = (axis(h), axis(w));
    let sample = |c: f64, n: usize| -> (usize, usize, f64) {
        let c = c.clamp(0.0, (n - 1) as f64);
        let lo = c.floor() as usize;
        let hi = (lo + 1).min(n - 1);
        (lo, hi, c - lo as f64)
    };
    Array2::from_shape_fn((h, w), |(r, c)| {
        let (y0, y1, fy) = sample(ys[r], h);
        let (x0, x1, fx) = sample(xs[c], w);
        let top = img[[y0, x0]] * (1.0 - fx) + img[[y0, x1]] * fx;
        let bottom = img[[y1, x0]] * (1.0 - fx) + img[[y1, x1]] * fx;
        top * (1.0 - fy) + bottom * fy
    })
}

impl Snow {
    /// The paper's snow (the reference's `snow_level` 3): base N(0.55, 0.3) zoomed 2.5x,
    /// threshold 1.15 -> 0.7, an 11-tap motion blur of sigma 0.05 -> 16, brightness 0.95 -> 0.4.
    pub fn paper() -> Self {
        Snow {
            mean: 0.55,
            std: 0.3,
            zoom: 2.5,
            threshold: [1.15, 0.7],
            kernel_size: 11,
            blur_sigma: [0.05, 16.0],
            brightness: [0.95, 0.4],
        }
    }

    /// Threshold, blur sigma and brightness of step `i` (0-based) of `steps`.
    pub fn step(&self, steps: usize, i: usize) -> (f64, f64, f64) {
        (
            linspace(self.threshold, steps, i),
            linspace(self.blur_sigma, steps, i),
            linspace(self.brightness, steps, i),
        )
    }

    fn check(&self, steps: usize) -> Result<()> {
        let bad = |what: String| Err(Error::InvalidArgument(format!("snow: {what}")));
        if self.kernel_size.is_multiple_of(2) {
            return bad(format!(
                "the motion-blur kernel needs an odd number of taps, got {}",
                self.kernel_size
            ));
        }
        if !(self.zoom.is_finite() && self.zoom >= 1.0) {
            return bad(format!("zoom must be at least 1, got {}", self.zoom));
        }
        if !(self.std.is_finite() && self.std >= 0.0 && self.mean.is_finite()) {
            return bad(format!("invalid base N({}, {})", self.mean, self.std));
        }
        for i in 0..steps {
            let (_, sigma, _) = self.step(steps, i);
            if !(sigma.is_finite() && sigma > 0.0) {
                return bad(format!("step {i} has motion-blur sigma {sigma}"));
            }
        }
        Ok(())
    }

    /// Draws `n` images' parameters `[n, H*W + 1]`: the zoomed Gaussian base, then vertical.
    pub(crate) fn sample_layers<R: Rng + ?Sized>(
        &self,
        rng: &mut R,
        n: usize,
        h: usize,
        w: usize,
    ) -> Array2<f32> {
        let normal = Normal::new(self.mean, self.std).expect("validated std");
        let mut out = Array2::zeros((n, h * w + 1));
        for mut row in out.outer_iter_mut() {
            let base = Array2::from_shape_simple_fn((h, w), || normal.sample(rng));
            let zoomed = clipped_zoom(base.view(), self.zoom);
            for (o, v) in row.iter_mut().zip(zoomed.iter()) {
                *o = *v as f32;
            }
            row[h * w] = if rng.random_bool(0.5) { 1.0 } else { 0.0 };
        }
        out
    }

    /// The per-level tables of an image of `height x width`.
    pub fn tables(&self, steps: usize, height: usize, width: usize) -> SnowTables {
        // The motion blur along an axis of n pixels as a matrix acting on column vectors
        // (symmetric kernel: the same matrix right-multiplies rows).
        let blur = |n: usize| {
            let mut m = Array3::<f64>::zeros((steps + 1, n, n));
            for k in 0..n {
                m[[0, k, k]] = 1.0;
            }
            let half = self.kernel_size as i64 / 2;
            for t in 1..=steps {
                let (_, sigma, _) = self.step(steps, t - 1);
                let taps = gaussian_taps(self.kernel_size, sigma);
                for r in 0..n as i64 {
                    for (k, tap) in taps.iter().enumerate() {
                        let c = r + k as i64 - half;
                        if (0..n as i64).contains(&c) {
                            m[[t, r as usize, c as usize]] += tap;
                        }
                    }
                }
            }
            m.mapv(|v| v as f32)
        };
        let mut threshold = Array1::from_elem(steps + 1, f32::MAX);
        let mut brightness = Array1::ones(steps + 1);
        for t in 1..=steps {
            let (th, _, br) = self.step(steps, t - 1);
            threshold[t] = th as f32;
            brightness[t] = br as f32;
        }
        SnowTables {
            threshold,
            brightness,
            rows: blur(height),
            cols: blur(width),
            height,
            width,
        }
    }
}

/// Grey weights of an RGB image in [0, 1] (kornia's `rgb_to_grayscale`); other channel counts
/// are their own grey level.
pub(crate) const GRAY_WEIGHTS: [f32; 3] = [0.299, 0.587, 0.114];

/// The per-level tables D needs.
#[derive(Clone, Debug)]
pub struct SnowTables {
    /// `[T+1]` threshold of snowy pixels (level 0: none).
    pub threshold: Array1<f32>,
    /// `[T+1]` brightness coefficient (level 0: 1).
    pub brightness: Array1<f32>,
    /// `[T+1, H, H]` vertical motion blur, left-multiplying a layer (level 0: identity).
    pub rows: Array3<f32>,
    /// `[T+1, W, W]` horizontal motion blur, right-multiplying a layer (symmetric).
    pub cols: Array3<f32>,
    pub height: usize,
    pub width: usize,
}

impl SnowTables {
    /// The snow added at level `t >= 1` for one image's parameters, `[H, W]`: the blurred layer
    /// plus its 180-degree rotation.
    pub fn snow(&self, t: usize, params: &[f32]) -> Array2<f32> {
        let (h, w) = (self.height, self.width);
        let th = self.threshold[t];
        let layer = Array2::from_shape_fn((h, w), |(r, c)| {
            let v = params[r * w + c];
            if v >= th { v.clamp(0.0, 1.0) } else { 0.0 }
        });
        let blurred = if params[h * w] >= 0.5 {
            self.rows.index_axis(Axis(0), t).dot(&layer)
        } else {
            layer.dot(&self.cols.index_axis(Axis(0), t))
        };
        let rotated = blurred.slice(s![..;-1, ..;-1]);
        &blurred + &rotated
    }

    /// Applies D with a level and parameters per image.
    pub fn apply(
        &self,
        x: ArrayView4<f32>,
        t: &[usize],
        params: ArrayView2<f32>,
    ) -> Result<Array4<f32>> {
        let (_, c, _, _) = x.dim();
        let mut out = x.to_owned();
        for (i, mut img) in out.outer_iter_mut().enumerate() {
            let ti = t[i];
            if ti == 0 {
                continue;
            }
            let row = params.row(i);
            let p = row.as_slice().expect("standard layout");
            let vertical = p[self.height * self.width];
            if vertical != 0.0 && vertical != 1.0 {
                return Err(Error::InvalidArgument(format!(
                    "snow parameter 'vertical' must be 0 or 1, got {vertical}"
                )));
            }
            let snow = self.snow(ti, p);
            let br = self.brightness[ti];
            let u = img.mapv(|v| (v + 1.0) / 2.0);
            let gray = if c == 3 {
                let mut g = u.index_axis(Axis(0), 0).mapv(|v| v * GRAY_WEIGHTS[0]);
                g.scaled_add(GRAY_WEIGHTS[1], &u.index_axis(Axis(0), 1));
                g.scaled_add(GRAY_WEIGHTS[2], &u.index_axis(Axis(0), 2));
                Some(g)
            } else {
                None
            };
            for ch in 0..c {
                let uc = u.index_axis(Axis(0), ch);
                let mut oc = img.index_axis_mut(Axis(0), ch);
                ndarray::Zip::indexed(&mut oc)
                    .and(&uc)
                    .for_each(|(r, col), o, &v| {
                        let g = gray.as_ref().map_or(v, |g| g[[r, col]]);
                        let lifted = v.max(1.5 * g + 0.5);
                        let scaled = br * v + (1.0 - br) * lifted;
                        *o = (scaled + snow[[r, col]]).clamp(0.0, 1.0) * 2.0 - 1.0;
                    });
            }
        }
        Ok(out)
    }
}

impl Tables for SnowTables {
    fn apply(
        &self,
        x: ArrayView4<f32>,
        t: &[usize],
        params: ArrayView2<f32>,
    ) -> Result<Array4<f32>> {
        SnowTables::apply(self, x, t, params)
    }

    fn inputs(&self) -> Vec<(&'static str, ArrayViewD<'_, f32>)> {
        vec![
            (ROWS, self.rows.view().into_dyn()),
            (COLS, self.cols.view().into_dyn()),
        ]
    }

    fn as_any(&self) -> &dyn Any {
        self
    }
}

impl Kind for Snow {
    fn validate(&self, d: &Degradation) -> Result<()> {
        self.check(d.steps)
    }

    fn describe(&self, _d: &Degradation) -> String {
        format!(
            "snow, base N({}, {}) zoomed {}x, threshold {} -> {}, {}-tap motion blur of sigma {} -> {}, brightness {} -> {}",
            self.mean,
            self.std,
            self.zoom,
            self.threshold[0],
            self.threshold[1],
            self.kernel_size,
            self.blur_sigma[0],
            self.blur_sigma[1],
            self.brightness[0],
            self.brightness[1]
        )
    }

    fn param_names(&self, d: &Degradation) -> Vec<String> {
        vec![
            format!("snow_base[{}x{}]", d.height, d.width),
            "vertical".into(),
        ]
    }

    fn param_count(&self, d: &Degradation) -> usize {
        d.height * d.width + 1
    }

    fn sample_params(
        &self,
        d: &Degradation,
        rng: &mut dyn RngCore,
        n: usize,
    ) -> Result<Array2<f32>> {
        Ok(self.sample_layers(rng, n, d.height, d.width))
    }

    fn tables(&self, d: &Degradation) -> Result<Box<dyn Tables>> {
        Ok(Box::new(Snow::tables(self, d.steps, d.height, d.width)))
    }

    fn table_inputs(&self, d: &Degradation) -> Vec<TableInput> {
        let levels = Dim::Fixed(d.steps as i64 + 1);
        vec![
            TableInput {
                name: ROWS,
                dims: vec![levels.clone(), Dim::Named("height"), Dim::Named("height")],
            },
            TableInput {
                name: COLS,
                dims: vec![levels, Dim::Named("width"), Dim::Named("width")],
            },
        ]
    }

    /// Threshold the per-image base by the level, motion-blur it along the image's axis (the
    /// level's blur matrix, left- or right-multiplied), add its 180-degree rotation, brighten
    /// the image towards grey and clip. The thresholds and brightnesses are the same at every
    /// size (in the graph); the blur matrices are inputs.
    fn lower(&self, d: &Degradation, g: &mut GraphBuilder, io: Lowering) -> String {
        let s = Snow::tables(self, d.steps, 1, 1);
        let thr = nodes::table(g, "degradation.snow_threshold", &s.threshold);
        let br = nodes::table(g, "degradation.snow_brightness", &s.brightness);
        let (x, t) = (io.x, io.t);
        let params = io.params.expect("snow takes parameters");
        g.scoped("degradation", |g| {
            let ax1 = g.const_i64(&[1], &[1]);
            let (st, last) = (g.const_i64(&[0], &[1]), g.const_i64(&[-1], &[1]));
            let base = g.op1("Slice", &[params, &st, &last, &ax1], vec![]); // [B, H*W]
            let lead = g.const_i64(&[-1, 1], &[2]);
            let bshape = g.op1("Concat", &[&lead, io.hw], vec![("axis", Attr::Int(0))]);
            let base = g.op1("Reshape", &[&base, &bshape], vec![]); // [B, 1, H, W]
            let end = g.const_i64(&[i64::MAX], &[1]);
            let vertical = g.op1("Slice", &[params, &last, &end, &ax1], vec![]);
            let one4 = g.const_i64(&[-1, 1, 1, 1], &[4]);
            let vertical = g.op1("Reshape", &[&vertical, &one4], vec![]);
            let half = g.const_f32(&[0.5], &[]);
            let vertical = g.op1("Greater", &[&vertical, &half], vec![]);
            // The thresholded layer, clipped to [0, 1].
            let th = nodes::per_image(g, &thr, t);
            let snowy = g.op1("GreaterOrEqual", &[&base, &th], vec![]);
            let zero = g.const_f32(&[0.0], &[]);
            let one = g.const_f32(&[1.0], &[]);
            let layer = g.op1("Where", &[&snowy, &base, &zero], vec![]);
            let layer = g.op1("Clip", &[&layer, &zero, &one], vec![]);
            // Motion blur along the image's axis.
            let v = nodes::per_image_matrix(g, ROWS, t); // [B, 1, H, H]
            let vblur = g.op1("MatMul", &[&v, &layer], vec![]);
            let hm = nodes::per_image_matrix(g, COLS, t); // [B, 1, W, W]
            let hblur = g.op1("MatMul", &[&layer, &hm], vec![]);
            let blurred = g.op1("Where", &[&vertical, &vblur, &hblur], vec![]);
            // Plus its 180-degree rotation.
            let rs = g.const_i64(&[-1, -1], &[2]);
            let re = g.const_i64(&[i64::MIN, i64::MIN], &[2]);
            let raxes = g.const_i64(&[2, 3], &[2]);
            let rsteps = g.const_i64(&[-1, -1], &[2]);
            let rotated = g.op1("Slice", &[&blurred, &rs, &re, &raxes, &rsteps], vec![]);
            let snow = g.op1("Add", &[&blurred, &rotated], vec![]);
            // The image in [0, 1], brightened towards grey.
            let u = g.op1("Add", &[x, &one], vec![]);
            let u = g.op1("Mul", &[&u, &half], vec![]);
            let gray = if d.channels == 3 {
                let wts = g.const_f32(&GRAY_WEIGHTS, &[1, 3, 1, 1]);
                let weighted = g.op1("Mul", &[&u, &wts], vec![]);
                g.op1(
                    "ReduceSum",
                    &[&weighted, &ax1],
                    vec![("keepdims", Attr::Int(1))],
                )
            } else {
                u.clone()
            };
            let c15 = g.const_f32(&[1.5], &[]);
            let lifted = g.op1("Mul", &[&gray, &c15], vec![]);
            let lifted = g.op1("Add", &[&lifted, &half], vec![]);
            let lifted = g.op1("Max", &[&u, &lifted], vec![]);
            let b = nodes::per_image(g, &br, t);
            let bu = g.op1("Mul", &[&b, &u], vec![]);
            let rest = g.op1("Sub", &[&one, &b], vec![]);
            let rl = g.op1("Mul", &[&rest, &lifted], vec![]);
            let scaled = g.op1("Add", &[&bu, &rl], vec![]);
            let y = g.op1("Add", &[&scaled, &snow], vec![]);
            let y = g.op1("Clip", &[&y, &zero, &one], vec![]);
            let two = g.const_f32(&[2.0], &[]);
            let y = g.op1("Mul", &[&y, &two], vec![]);
            let y = g.op1("Sub", &[&y, &one], vec![]);
            nodes::where_active(g, t, &y, x)
        })
    }
}

/// D the way the reference computes it, in float64, for one image `[C, H, W]` and its parameters:
/// threshold, 'same' convolution with the line kernel, rotation, brightness, clipping, each from
/// its formula. The ground truth in tests.
#[cfg(test)]
pub(crate) fn reference_snow(
    x: &Array3<f64>,
    snow: &Snow,
    steps: usize,
    t: usize,
    params: &[f64],
) -> Array3<f64> {
    if t == 0 {
        return x.clone();
    }
    let (c, h, w) = x.dim();
    let (th, sigma, br) = snow.step(steps, t - 1);
    let taps = gaussian_taps(snow.kernel_size, sigma);
    let half = snow.kernel_size as i64 / 2;
    let vertical = params[h * w] >= 0.5;
    let layer = |r: i64, col: i64| -> f64 {
        if r < 0 || col < 0 || r >= h as i64 || col >= w as i64 {
            return 0.0;
        }
        let v = params[r as usize * w + col as usize];
        if v < th { 0.0 } else { v.clamp(0.0, 1.0) }
    };
    let blurred = Array2::from_shape_fn((h, w), |(r, col)| {
        (0..snow.kernel_size)
            .map(|k| {
                let d = k as i64 - half;
                let v = if vertical {
                    layer(r as i64 + d, col as i64)
                } else {
                    layer(r as i64, col as i64 + d)
                };
                taps[k] * v
            })
            .sum::<f64>()
    });
    let u = x.mapv(|v| (v + 1.0) / 2.0);
    Array3::from_shape_fn((c, h, w), |(ch, r, col)| {
        let v = u[[ch, r, col]];
        let g = if c == 3 {
            0.299 * u[[0, r, col]] + 0.587 * u[[1, r, col]] + 0.114 * u[[2, r, col]]
        } else {
            v
        };
        let scaled = br * v + (1.0 - br) * v.max(1.5 * g + 0.5);
        let s = blurred[[r, col]] + blurred[[h - 1 - r, w - 1 - col]];
        (scaled + s).clamp(0.0, 1.0) * 2.0 - 1.0
    })
}
