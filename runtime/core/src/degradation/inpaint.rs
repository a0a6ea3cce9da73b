//! Inpainting (the reference's "defading", routine `Random_Incremental`): step i multiplies the
//! image (in [-1, 1], so a masked pixel fades to 0, mid-grey) by
//! `1 - exp(-|p - c|^2 / (2 sigma_i^2))`, `sigma_i = kernel_std * (i + initial_mask)`, around a
//! centre `c`; `D(x, t)` is x times the product of the first t masks. The centre is a per-image
//! parameter: uniform over `{-1, ..., S-1}^2` for the random variant (the reference crops its
//! `2S x 2S` mask at a uniform offset), fixed for the centred one.
//!
//! The products of masks are precomputed once on a `2H x 2W` canvas centred at `(H-1, W-1)`; an
//! image's masks are the canvas cropped at its centre, as the reference does.
//!
//! Two options give the reference's mask *generation* schedule (`defading-generation-diffusion-
//! pytorch`, `--reverse`): `reverse` runs the masks the other way (level t keeps
//! `a_t = 1 - prod_{i < T-t} mask_i` of the image, so the image fades from the border inwards and
//! level T is nothing of it; level 0 stays the identity), and `fill` fades to a colour per image
//! instead of 0 (`D = a_t x + (1 - a_t) c`, c a per-image parameter per channel, drawn uniform in
//! `[low, high]`: the reference's `torch.rand(3) - 0.5`). Level T of the two together is exactly
//! the constant image c, which generation starts from.

use std::any::Any;

use ndarray::{Array2, Array3, Array4, ArrayView2, ArrayView4, ArrayViewD, s};
use onnx_protobuf::tensor_proto::DataType;
use rand::{Rng, RngCore};
use serde::{Deserialize, Serialize};

use super::Degradation;
use super::kind::{Kind, Lowering, TableInput, Tables};
use crate::error::{Error, Result};
use crate::onnx::{Attr, Dim, GraphBuilder};

/// The graph input of the masks: the canvas `[T+1, 2H, 2W]` (random centres) or the masks
/// cropped at the fixed centre `[T+1, H, W]` (centred).
pub(crate) const MASKS: &str = "degradation.masks";

/// Where the masks are centred.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Centre {
    /// A centre per image, uniform over the pixel grid extended by one row and column above and
    /// left (`{-1, ..., S-1}`, as the reference). The centre is a per-image parameter.
    Random,
    /// The image centre, `((H+1)/2 - 1, (W+1)/2 - 1)` (the reference's `Incremental`).
    Centred,
}

/// An inpainting process.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Inpaint {
    pub kernel_std: f64,
    pub initial_mask: f64,
    pub centre: Centre,
    /// The reference's `--reverse`: level t keeps `1 - prod_{i < T-t} mask_i` of the image.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub reverse: bool,
    /// What the masked pixels fade to: 0 when absent, else a colour per image.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fill: Option<Fill>,
}

/// A fill colour per image and channel (a per-image parameter), drawn uniform in `[low, high]`.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Fill {
    pub low: f64,
    pub high: f64,
}

impl Inpaint {
    /// The Gaussian's standard deviation at step `i` (0-based).
    pub fn sigma(&self, i: usize) -> f64 {
        self.kernel_std * (i as f64 + self.initial_mask)
    }

    /// Per-image parameters: the centre `(row, column)` for the random variant, then the fill
    /// colour (one value per channel) when it has one.
    pub fn param_names(&self, channels: usize) -> Vec<String> {
        let mut v: Vec<String> = match self.centre {
            Centre::Random => vec!["centre_row".into(), "centre_col".into()],
            Centre::Centred => Vec::new(),
        };
        if self.fill.is_some() {
            v.push(format!("fill[{channels}]"));
        }
        v
    }

    /// P: 2 for a random centre, plus one per channel with a fill colour.
    pub fn param_count(&self, channels: usize) -> usize {
        self.centre_params() + if self.fill.is_some() { channels } else { 0 }
    }

    /// Where the fill colour starts in a parameter row.
    fn centre_params(&self) -> usize {
        match self.centre {
            Centre::Random => 2,
            Centre::Centred => 0,
        }
    }

    /// The share of the image level `t` keeps at squared distance `d2` from the centre, for
    /// every level `0..=steps`: the products of the masks taken cumulatively (the same
    /// multiplications, in the same order, as one product per level).
    fn kept(&self, steps: usize, d2: f64) -> Vec<f64> {
        let mut prods = Vec::with_capacity(steps + 1);
        let mut p = 1.0f64;
        prods.push(p);
        for i in 0..steps {
            let s = self.sigma(i);
            p *= 1.0 - (-d2 / (2.0 * s * s)).exp();
            prods.push(p);
        }
        if !self.reverse {
            return prods;
        }
        (0..=steps)
            .map(|t| if t == 0 { 1.0 } else { 1.0 - prods[steps - t] })
            .collect()
    }

    fn check(&self, steps: usize) -> Result<()> {
        if let Some(f) = self.fill
            && !(f.low.is_finite() && f.high.is_finite() && f.low <= f.high)
        {
            return Err(Error::InvalidArgument(format!(
                "inpainting fill colours between {} and {}: give finite low <= high",
                f.low, f.high
            )));
        }
        for i in 0..steps {
            let s = self.sigma(i);
            if !(s.is_finite() && s > 0.0) {
                return Err(Error::InvalidArgument(format!(
                    "inpainting step {i} has sigma {s}: kernel_std * (i + initial_mask) must be positive"
                )));
            }
        }
        Ok(())
    }

    /// Draws the parameters of `n` images `[n, P]`: random centres (none for the centred
    /// variant), then a fill colour per channel (uniform in `[low, high]`) when there is one.
    pub(crate) fn sample_params_of<R: Rng + ?Sized>(
        &self,
        rng: &mut R,
        n: usize,
        (c, h, w): (usize, usize, usize),
    ) -> Array2<f32> {
        let k = self.centre_params();
        let mut out = Array2::zeros((n, self.param_count(c)));
        for mut row in out.outer_iter_mut() {
            if self.centre == Centre::Random {
                row[0] = rng.random_range(-1..h as i64) as f32;
                row[1] = rng.random_range(-1..w as i64) as f32;
            }
            if let Some(f) = self.fill {
                for ch in 0..c {
                    row[k + ch] = (f.low + (f.high - f.low) * rng.random::<f64>()) as f32;
                }
            }
        }
        out
    }

    /// The mask products of an image of `height x width` (`channels` for the fill colours).
    pub fn masks(&self, steps: usize, channels: usize, height: usize, width: usize) -> Masks {
        let (ch, cw) = (2 * height, 2 * width);
        let mut canvas = Array3::<f32>::zeros((steps + 1, ch, cw));
        for a in 0..ch {
            for b in 0..cw {
                let dy = a as f64 - (height as f64 - 1.0);
                let dx = b as f64 - (width as f64 - 1.0);
                for (t, v) in self.kept(steps, dy * dy + dx * dx).into_iter().enumerate() {
                    canvas[[t, a, b]] = v as f32;
                }
            }
        }
        let mut m = Masks {
            canvas,
            cropped: None,
            centre: self.centre,
            fill: self.fill.map(|_| (self.centre_params(), channels)),
            height,
            width,
        };
        if self.centre == Centre::Centred {
            let [cy, cx] = m.fixed_centre();
            let (oy, ox) = (
                (height as i64 - 1 - cy) as usize,
                (width as i64 - 1 - cx) as usize,
            );
            m.cropped = Some(
                m.canvas
                    .slice(s![.., oy..oy + height, ox..ox + width])
                    .to_owned(),
            );
        }
        m
    }
}

impl Kind for Inpaint {
    /// A mask per image and level: linear.
    fn is_affine(&self) -> bool {
        true
    }

    fn validate(&self, d: &Degradation) -> Result<()> {
        self.check(d.steps)
    }

    fn describe(&self, _d: &Degradation) -> String {
        let c = match self.centre {
            Centre::Random => "random centre per image",
            Centre::Centred => "centred",
        };
        let order = if self.reverse {
            ", reversed (level t keeps 1 - the product of the first T - t masks: the image fades \
             from the border in)"
        } else {
            ""
        };
        let fill = match self.fill {
            Some(f) => format!(
                ", fading to a colour per image (uniform in [{}, {}])",
                f.low, f.high
            ),
            None => String::new(),
        };
        format!(
            "inpainting, Gaussian masks of sigma {} * (i + {}), {c}{order}{fill}",
            self.kernel_std, self.initial_mask
        )
    }

    fn param_names(&self, d: &Degradation) -> Vec<String> {
        Inpaint::param_names(self, d.channels)
    }

    fn param_count(&self, d: &Degradation) -> usize {
        Inpaint::param_count(self, d.channels)
    }

    fn sample_params(
        &self,
        d: &Degradation,
        rng: &mut dyn RngCore,
        n: usize,
    ) -> Result<Array2<f32>> {
        Ok(self.sample_params_of(rng, n, (d.channels, d.height, d.width)))
    }

    fn tables(&self, d: &Degradation) -> Result<Box<dyn Tables>> {
        Ok(Box::new(self.masks(d.steps, d.channels, d.height, d.width)))
    }

    /// Reversed, level T keeps nothing of the image: `D(x, T)` is the fill (0 without one).
    fn starts_from_params(&self) -> bool {
        self.reverse
    }

    fn table_inputs(&self, d: &Degradation) -> Vec<TableInput> {
        let levels = Dim::Fixed(d.steps as i64 + 1);
        let dims = match self.centre {
            Centre::Random => vec![
                levels,
                Dim::Named("canvas_height"),
                Dim::Named("canvas_width"),
            ],
            Centre::Centred => vec![levels, Dim::Named("height"), Dim::Named("width")],
        };
        vec![TableInput { name: MASKS, dims }]
    }

    /// `x * mask(t, centre)`: the level's masks gathered from the input by t; with random centres
    /// the canvas is cropped at each image's centre (two GatherElements with per-image row and
    /// column indices, from the image's own size); every channel is multiplied. With a fill
    /// colour, `c + mask * (x - c)`, c the parameters' colour columns as `[B, C, 1, 1]`.
    fn lower(&self, d: &Degradation, g: &mut GraphBuilder, io: Lowering) -> String {
        g.scoped("degradation", |g| {
            let levelled = g.op1("Gather", &[MASKS, io.t], vec![("axis", Attr::Int(0))]);
            let mask = match (self.centre, io.params) {
                (Centre::Random, Some(p)) => crop_at_centres(g, &levelled, io.hw, p),
                _ => levelled, // already cropped at the fixed centre: [B, H, W]
            };
            let ax = g.const_i64(&[1], &[1]);
            let mask = g.op1("Unsqueeze", &[&mask, &ax], vec![]); // [B, 1, H, W]
            match (self.fill, io.params) {
                (Some(_), Some(p)) => {
                    let k = self.centre_params() as i64;
                    let st = g.const_i64(&[k], &[1]);
                    let en = g.const_i64(&[k + d.channels as i64], &[1]);
                    let colour = g.op1("Slice", &[p, &st, &en, &ax], vec![]); // [B, C]
                    let shape = g.const_i64(&[-1, d.channels as i64, 1, 1], &[4]);
                    let colour = g.op1("Reshape", &[&colour, &shape], vec![]);
                    let diff = g.op1("Sub", &[io.x, &colour], vec![]);
                    let kept = g.op1("Mul", &[&diff, &mask], vec![]);
                    g.op1("Add", &[&colour, &kept], vec![])
                }
                _ => g.op1("Mul", &[io.x, &mask], vec![]),
            }
        })
    }
}

/// The `[B, H, W]` crops of the levelled canvases `[B, 2H, 2W]` at each image's centre
/// (`params` `[B, 2]`), `hw` the images' `[H, W]`.
fn crop_at_centres(g: &mut GraphBuilder, levelled: &str, hw: &str, params: &str) -> String {
    let one = g.const_i64(&[1], &[1]);
    let last = g.op1("Sub", &[hw, &one], vec![]);
    let c = g.op1(
        "Cast",
        &[params],
        vec![("to", Attr::Int(DataType::INT64 as i64))],
    );
    // offsets (H-1-cy, W-1-cx), [B, 2]
    let off = g.op1("Sub", &[&last, &c], vec![]);
    let ax1 = g.const_i64(&[1], &[1]);
    let ax2 = g.const_i64(&[2], &[1]);
    let offset = |g: &mut GraphBuilder, k: i64| {
        let st = g.const_i64(&[k], &[1]);
        let en = g.const_i64(&[k + 1], &[1]);
        let o = g.op1("Slice", &[&off, &st, &en, &ax1], vec![]); // [B, 1]
        g.op1("Unsqueeze", &[&o, &ax2], vec![]) // [B, 1, 1]
    };
    let (oy, ox) = (offset(g, 0), offset(g, 1));
    // 0..n as int64, shaped to broadcast along `shape`.
    let range = |g: &mut GraphBuilder, k: i64, shape: &[i64]| {
        let zero = g.const_i64(&[0], &[]);
        let step = g.const_i64(&[1], &[]);
        let idx = g.const_i64(&[k], &[]);
        let n = g.op1("Gather", &[hw, &idx], vec![("axis", Attr::Int(0))]);
        let r = g.op1("Range", &[&zero, &n, &step], vec![]);
        let s = g.const_i64(shape, &[3]);
        g.op1("Reshape", &[&r, &s], vec![])
    };
    let rows_r = range(g, 0, &[1, -1, 1]);
    let rows = g.op1("Add", &[&oy, &rows_r], vec![]); // [B, H, 1]
    let two = g.const_i64(&[2], &[1]);
    let ax = g.const_i64(&[0], &[1]); // hw is one-dimensional
    let (st, en) = (g.const_i64(&[1], &[1]), g.const_i64(&[2], &[1]));
    let w = g.op1("Slice", &[hw, &st, &en, &ax], vec![]);
    let canvas_w = g.op1("Mul", &[&w, &two], vec![]);
    let ones = g.const_i64(&[1, 1], &[2]);
    let rows_shape = g.op1("Concat", &[&ones, &canvas_w], vec![("axis", Attr::Int(0))]);
    let rows = g.op1("Expand", &[&rows, &rows_shape], vec![]); // [B, H, 2W]
    let cropped = g.op1(
        "GatherElements",
        &[levelled, &rows],
        vec![("axis", Attr::Int(1))],
    ); // [B, H, 2W]
    let cols_r = range(g, 1, &[1, 1, -1]);
    let cols = g.op1("Add", &[&ox, &cols_r], vec![]); // [B, 1, W]
    let (st, en) = (g.const_i64(&[0], &[1]), g.const_i64(&[1], &[1]));
    let h = g.op1("Slice", &[hw, &st, &en, &ax], vec![]);
    let cols_shape = g.op1("Concat", &[&one, &h, &one], vec![("axis", Attr::Int(0))]);
    let cols = g.op1("Expand", &[&cols, &cols_shape], vec![]); // [B, H, W]
    g.op1(
        "GatherElements",
        &[&cropped, &cols],
        vec![("axis", Attr::Int(2))],
    )
}

/// The precomputed mask products: `canvas[t]` is the product of the first t masks around
/// `(H-1, W-1)` on a `2H x 2W` canvas.
#[derive(Clone, Debug)]
pub struct Masks {
    /// `[T+1, 2H, 2W]`.
    pub canvas: Array3<f32>,
    /// `[T+1, H, W]`: the canvas cropped at the fixed centre (the centred variant).
    pub cropped: Option<Array3<f32>>,
    pub centre: Centre,
    /// With a fill colour: where its columns start in a parameter row, and the channels.
    pub fill: Option<(usize, usize)>,
    pub height: usize,
    pub width: usize,
}

impl Masks {
    /// The fixed centre of the centred variant.
    pub(crate) fn fixed_centre(&self) -> [i64; 2] {
        [
            (self.height as i64 + 1) / 2 - 1,
            (self.width as i64 + 1) / 2 - 1,
        ]
    }

    /// The image's centre from its parameters, checked to lie in `{-1, ..., S-1}`.
    pub(crate) fn centre_of(&self, params: &[f32]) -> Result<[i64; 2]> {
        let c = match self.centre {
            Centre::Centred => return Ok(self.fixed_centre()),
            Centre::Random => [params[0], params[1]],
        };
        let ok = |v: f32, n: usize| v.fract() == 0.0 && v >= -1.0 && v <= n as f32 - 1.0;
        if !(ok(c[0], self.height) && ok(c[1], self.width)) {
            return Err(Error::InvalidArgument(format!(
                "inpainting centre ({}, {}) is not a pixel of the {}x{} grid extended by one row and \
                 column (-1 ..= {}, -1 ..= {})",
                c[0],
                c[1],
                self.height,
                self.width,
                self.height - 1,
                self.width - 1
            )));
        }
        Ok([c[0] as i64, c[1] as i64])
    }

    /// The combined mask of level `t` around `centre`, `[H, W]`.
    pub fn mask(&self, t: usize, centre: [i64; 2]) -> ArrayView2<'_, f32> {
        let oy = (self.height as i64 - 1 - centre[0]) as usize;
        let ox = (self.width as i64 - 1 - centre[1]) as usize;
        self.canvas
            .slice(s![t, oy..oy + self.height, ox..ox + self.width])
    }

    /// Applies D with a level and parameters per image.
    pub fn apply(
        &self,
        x: ArrayView4<f32>,
        t: &[usize],
        params: ArrayView2<f32>,
    ) -> Result<Array4<f32>> {
        let mut out = x.to_owned();
        for (i, mut img) in out.outer_iter_mut().enumerate() {
            let row = params.row(i);
            let row = row.as_slice().unwrap_or(&[]);
            let m = self.mask(t[i], self.centre_of(row)?);
            for (k, mut ch) in img.outer_iter_mut().enumerate() {
                match self.fill {
                    Some((start, _)) => {
                        let c = row[start + k];
                        ndarray::Zip::from(&mut ch)
                            .and(&m)
                            .for_each(|v, &a| *v = c + a * (*v - c));
                    }
                    None => ch *= &m,
                }
            }
        }
        Ok(out)
    }
}

impl Tables for Masks {
    fn apply(
        &self,
        x: ArrayView4<f32>,
        t: &[usize],
        params: ArrayView2<f32>,
    ) -> Result<Array4<f32>> {
        Masks::apply(self, x, t, params)
    }

    fn inputs(&self) -> Vec<(&'static str, ArrayViewD<'_, f32>)> {
        let m = self.cropped.as_ref().unwrap_or(&self.canvas);
        vec![(MASKS, m.view().into_dyn())]
    }

    fn as_any(&self) -> &dyn Any {
        self
    }
}

/// D the way the reference computes it, in float64 on one channel: multiply by each of the first
/// `t` masks in turn, every mask evaluated from its formula. The ground truth in tests.
#[cfg(test)]
pub(crate) fn iterated_inpaint(
    x: &Array2<f64>,
    p: &Inpaint,
    t: usize,
    centre: [f64; 2],
) -> Array2<f64> {
    let mut cur = x.clone();
    for i in 0..t {
        let s = p.sigma(i);
        for ((r, c), v) in cur.indexed_iter_mut() {
            let d2 = (r as f64 - centre[0]).powi(2) + (c as f64 - centre[1]).powi(2);
            *v *= 1.0 - (-d2 / (2.0 * s * s)).exp();
        }
    }
    cur
}
