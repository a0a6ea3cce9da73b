//! Degradations D(x, t) as data: one serialisable [`Degradation`] (kind, T, image size, the kind's
//! parameters) from which the trainer's batches, the exported ONNX graphs and the runtime are all
//! built. Each kind is one file implementing [`Kind`]: its validation, per-image parameters, the
//! tables D needs at an image size with D on the host ([`Prepared::apply`], tested against an
//! independent float64 formula), and D lowered to ONNX nodes at any image size ([`Kind::lower`],
//! tested against the host D). The registry below names every kind once.
//!
//! - [`blur`]: Gaussian blur; [`superres`]: super-resolution. Both are separable and linear, the
//!   same for every image: per-level operators `D(x, t) = L_t X R_t` ([`operators`]).
//! - [`inpaint`]: inpainting, a per-pixel mask around a centre that is a per-image parameter.
//! - [`snow`]: snowification, a snow layer per image (a per-image parameter) added to the image.
//! - [`mix`]: Gaussian noise and animorphosis, `sqrt(abar_t) x + sqrt(1 - abar_t) z` with the
//!   cosine schedule, `z` (noise, or an image of another data set) a per-image parameter.
//!
//! Per-image parameters (`[B, P]` f32, `P` = [`Degradation::param_count`]) are drawn
//! from a seeded generator in training ([`Degradation::sample_params`]), written by `degrade` in a
//! sidecar next to the images, and fed to the graphs as an input.

pub mod blur;
pub mod decolor;
pub mod inpaint;
pub mod kind;
pub mod mix;
pub mod operators;
pub mod sizes;
pub mod snow;
pub mod spec;
pub mod superres;

use std::sync::Arc;

use ndarray::{Array2, Array4, ArrayView2, ArrayView4, ArrayViewD};
use rand::Rng;
use serde::{Deserialize, Serialize};

pub use blur::{Blur, BlurSchedule, Padding, iterated_blur, iterated_blur_to};
pub use decolor::{Decolor, DecolorRoutine};
pub use inpaint::{Centre, Fill, Inpaint, Masks};
pub use kind::{Kind, Lowering, TableInput, Tables};
pub use mix::{Animorph, AnimorphSource, MixTables, Noise};
pub use operators::Operators;
pub use sizes::PreparedSizes;
pub use snow::{Snow, SnowTables};
pub use spec::{SCHEDULES, Schedule, Spec};
pub use superres::SuperRes;

use crate::error::{Error, Result};
use crate::onnx::Dim;

/// The registry: each kind once, as `Variant(Type) = "name"` (the name is the manifest's
/// `degradation.transform.kind`). It makes the [`Transform`] enum, [`KINDS`] and the one
/// dispatch [`Transform::as_kind`].
macro_rules! registry {
    ($($variant:ident($ty:ty) = $name:literal,)*) => {
        /// The kind of transform a degradation applies.
        #[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
        #[serde(tag = "kind")]
        pub enum Transform {
            $(#[serde(rename = $name)] $variant($ty),)*
        }

        /// The kinds this build knows, as written in a manifest's `degradation.transform.kind`.
        pub(crate) const KINDS: &[&str] = &[$($name),*];

        impl Transform {
            /// The kind's name, as serialised.
            pub fn kind(&self) -> &'static str {
                match self {
                    $(Transform::$variant(_) => $name,)*
                }
            }

            /// The kind's implementation.
            pub(crate) fn as_kind(&self) -> &dyn Kind {
                match self {
                    $(Transform::$variant(k) => k,)*
                }
            }
        }
    };
}

registry! {
    Blur(Blur) = "blur",
    Inpaint(Inpaint) = "inpaint",
    SuperRes(SuperRes) = "super_res",
    Snow(Snow) = "snow",
    Noise(Noise) = "noise",
    Animorph(Animorph) = "animorph",
    Decolor(Decolor) = "decolor",
}

impl Transform {
    /// Whether D mixes the image with a per-image `z` (`sqrt(abar) x + sqrt(1 - abar) z`), which
    /// gives the estimated-noise sampler.
    pub fn is_mix(&self) -> bool {
        self.as_kind().is_mix()
    }

    /// Whether generation starts from `D(0, T, p)` with drawn parameters (see
    /// `Kind::starts_from_params`).
    pub fn starts_from_params(&self) -> bool {
        self.as_kind().starts_from_params()
    }

    /// Whether D is affine in the image (see `Kind::is_affine`): classifier-free guidance
    /// needs it.
    pub fn is_affine(&self) -> bool {
        self.as_kind().is_affine()
    }
}

/// A complete degradation description: the transform, the number of steps T and the image size.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Degradation {
    pub transform: Transform,
    /// T: the most degraded level. Levels run 0 (clean) ..= T.
    pub steps: usize,
    pub channels: usize,
    pub height: usize,
    pub width: usize,
}

/// Names of the built-in presets. `mnist` and `cifar10` are the blur presets (the first models
/// were trained with those names).
pub const PRESETS: &[&str] = &[
    "mnist",
    "cifar10",
    "mnist-inpaint",
    "mnist-inpaint-centred",
    "mnist-superres",
    "mnist32-superres",
    "mnist-superres-clipped",
    "mnist32-superres-clipped",
    "cifar10-inpaint",
    "cifar10-inpaint-centred",
    "cifar10-superres",
    "cifar10-superres-clipped",
    "mnist-snow",
    "cifar10-snow",
    "mnist-noise",
    "cifar10-noise",
    "mnist-animorph",
    "cifar10-decolor",
];

impl Degradation {
    /// A named preset, with the paper's settings at the data set's native size:
    /// - `mnist`: blur, kernel 11, sigma 7, constant, circular, T 20, 1x28x28;
    /// - `cifar10`: blur, kernel 11, sigma_i = i/100 + 0.35, reflect, T 50, 3x32x32;
    /// - `*-inpaint`: Gaussian masks, kernel_std 0.1, initial_mask 11, T 50, random centre
    ///   (`*-inpaint-centred`: centred);
    /// - `*-superres`: factor 2 per step, T 3 (MNIST 28 -> 14, 7, 3; CIFAR-10 32 -> 16, 8, 4);
    ///   `mnist32-superres` runs MNIST at the paper's 32x32 (32 -> 16, 8, 4: every level's blocks
    ///   are unions of the next lower level's), the digits padded with 2 black pixels per side
    ///   ([`crate::data::Dataset::pad_to`]); `mnist32-KIND` works for every kind but animorphosis;
    ///   `*-superres-clipped`: the same with D clipped to [-1, 1] (what image files hold);
    /// - `*-snow`: the paper's snow ([`Snow::paper`]), a snow layer per image, T 200;
    /// - `*-noise`: Gaussian noise, cosine schedule, T 200 (the hot-diffusion baseline);
    /// - `mnist-animorph`: animorphosis into Fashion-MNIST images, cosine schedule, T 200;
    /// - `cifar10-decolor`: decolorization, linear, grey at T 20.
    pub fn preset(name: &str) -> Result<Self> {
        let (base, kind) = name.split_once('-').unwrap_or((name, "blur"));
        let (channels, side) = match base {
            "mnist" => (1, 28),
            "mnist32" => (1, 32),
            "cifar10" => (3, 32),
            _ => return Err(unknown_preset(name)),
        };
        let schedule = match (base, kind) {
            ("mnist" | "mnist32", "blur") => "mnist-blur",
            ("cifar10", "blur") => "cifar10-blur",
            ("mnist", "animorph") => "animorph",
            ("cifar10", "decolor") => "decolor",
            (_, "animorph" | "decolor") => return Err(unknown_preset(name)),
            (_, k) => k,
        };
        let spec = spec::schedule(schedule)
            .ok_or_else(|| unknown_preset(name))?
            .spec();
        let (transform, steps) = (spec.transform, spec.steps);
        Ok(Degradation {
            transform,
            steps,
            channels,
            height: side,
            width: side,
        })
    }

    /// Checks that the description can be prepared.
    pub fn validate(&self) -> Result<()> {
        if self.steps == 0 {
            return Err(Error::InvalidArgument(
                "a degradation needs T >= 1 steps".into(),
            ));
        }
        if self.channels == 0 || self.height == 0 || self.width == 0 {
            return Err(Error::InvalidArgument(format!(
                "image size {}x{}x{} is empty",
                self.channels, self.height, self.width
            )));
        }
        self.transform.as_kind().validate(self)
    }

    /// Names of the per-image parameters, in order (empty when D is the same for every image).
    /// An array parameter is one name with its shape, e.g. `z[1x28x28]`.
    pub fn param_names(&self) -> Vec<String> {
        self.transform.as_kind().param_names(self)
    }

    /// P, the number of per-image parameter values.
    pub fn param_count(&self) -> usize {
        self.transform.as_kind().param_count(self)
    }

    /// Draws the per-image parameters of `n` images, `[n, P]`. Fails only for animorphosis,
    /// when its source images are not installed.
    pub fn sample_params(&self, rng: &mut impl Rng, n: usize) -> Result<Array2<f32>> {
        self.transform.as_kind().sample_params(self, rng, n)
    }

    /// The same degradation on images of `height x width` (validated), for which the kind's
    /// tables are computed anew.
    pub fn at_size(&self, height: usize, width: usize) -> Result<Self> {
        let d = Degradation {
            height,
            width,
            ..self.clone()
        };
        d.validate()?;
        Ok(d)
    }

    /// Bytes of the size-dependent tables D needs at this size (the graph inputs; the host keeps
    /// float64 copies beside them, twice as much again).
    pub fn table_bytes(&self) -> u64 {
        let (h, w) = (self.height as u64, self.width as u64);
        self.table_inputs()
            .iter()
            .map(|ti| {
                ti.dims
                    .iter()
                    .map(|d| match d {
                        Dim::Fixed(n) => *n as u64,
                        Dim::Named("height") => h,
                        Dim::Named("width") => w,
                        Dim::Named("canvas_height") => 2 * h,
                        Dim::Named("canvas_width") => 2 * w,
                        Dim::Named(_) => 1,
                    })
                    .product::<u64>()
                    * 4
            })
            .sum()
    }

    /// Whether D at this size is computed without tables ([`Degradation::apply_direct`]): the
    /// tables would pass [`MAX_TABLE_BYTES`] and the kind has a direct path.
    pub fn needs_direct(&self) -> bool {
        self.needs_direct_within(MAX_TABLE_BYTES)
    }

    /// [`Degradation::needs_direct`] with another limit on the tables' memory.
    pub fn needs_direct_within(&self, max_table_bytes: u64) -> bool {
        3 * self.table_bytes() > max_table_bytes && self.has_direct()
    }

    /// Whether the kind computes D without tables.
    pub fn has_direct(&self) -> bool {
        let x = Array2::<f32>::zeros((1, 1));
        let p = ndarray::Array1::<f32>::zeros(0);
        self.transform
            .as_kind()
            .apply_direct(self, x.view(), &[0], p.view())
            .is_some()
    }

    /// D of one image channel `[H, W]` at each of `levels` with the image's parameters, without
    /// tables (the memory of a few copies of the channel): for images too large for them.
    pub fn apply_direct(
        &self,
        x: ArrayView2<f32>,
        levels: &[usize],
        params: ndarray::ArrayView1<f32>,
    ) -> Result<Vec<Array2<f32>>> {
        if let Some(&bad) = levels.iter().find(|&&t| t > self.steps) {
            return Err(Error::InvalidArgument(format!(
                "level {bad} is beyond T = {}",
                self.steps
            )));
        }
        self.transform
            .as_kind()
            .apply_direct(self, x, levels, params)
            .unwrap_or_else(|| {
                Err(Error::InvalidArgument(format!(
                    "{} has no D without precomputed tables",
                    self.describe()
                )))
            })
    }

    /// Precomputes what applying D needs (per-level operators or masks) at this size; refused
    /// when the tables would pass [`MAX_TABLE_BYTES`].
    pub fn prepare(&self) -> Result<Prepared> {
        self.validate()?;
        let bytes = 3 * self.table_bytes();
        if bytes > MAX_TABLE_BYTES {
            return Err(Error::InvalidArgument(format!(
                "D of {} at {}x{} needs {:.1} GB of precomputed tables, more than the {:.1} GB this \
                 build allows: restore smaller images, or pass --resize scale",
                self.describe(),
                self.width,
                self.height,
                bytes as f64 / 1e9,
                MAX_TABLE_BYTES as f64 / 1e9
            )));
        }
        Ok(Prepared {
            degradation: self.clone(),
            tables: Arc::from(self.transform.as_kind().tables(self)?),
        })
    }

    /// The size-dependent tables the graphs take as inputs.
    pub fn table_inputs(&self) -> Vec<TableInput> {
        self.transform.as_kind().table_inputs(self)
    }

    /// D(x, t) as ONNX nodes on images of any size (see [`Kind::lower`]).
    pub fn lower(&self, g: &mut crate::onnx::GraphBuilder, io: Lowering) -> String {
        self.transform.as_kind().lower(self, g, io)
    }

    /// One line for logs and reports.
    pub fn describe(&self) -> String {
        let what = self.transform.as_kind().describe(self);
        format!(
            "{what}, T {t}, image {c}x{h}x{w}",
            t = self.steps,
            c = self.channels,
            h = self.height,
            w = self.width
        )
    }
}

fn unknown_preset(name: &str) -> Error {
    Error::InvalidArgument(format!(
        "unknown degradation preset '{name}': choose one of {}",
        PRESETS.join(", ")
    ))
}

/// Checks the `kind` of a serialised degradation before it is parsed, so that a description from
/// a newer version says which kind this build does not know instead of failing to parse.
pub(crate) fn check_kind(degradation: &serde_json::Value) -> Result<()> {
    let kind = degradation
        .get("transform")
        .and_then(|t| t.get("kind"))
        .and_then(|k| k.as_str());
    match kind {
        Some(k) if !KINDS.contains(&k) => Err(Error::InvalidArgument(format!(
            "degradation kind '{k}' is not known to this version ({}), which knows {}: update \
             cold-diffusion to use it",
            env!("CARGO_PKG_VERSION"),
            KINDS.join(", ")
        ))),
        _ => Ok(()),
    }
}

/// [`check_kind`] on the `degradation` field of a file's JSON (manifest, sidecar, training
/// config), if it has one.
pub(crate) fn check_kind_of_file(file: &serde_json::Value) -> std::result::Result<(), String> {
    match file.get("degradation") {
        Some(d) => check_kind(d).map_err(|e| e.to_string()),
        None => Ok(()),
    }
}

/// The most memory a degradation's precomputed tables may take at one size (float32 and float64
/// copies together): blur with T = 50 fits images up to about 1,300 x 1,300, random-centre
/// inpainting up to about 1,000 x 1,000.
pub const MAX_TABLE_BYTES: u64 = 1 << 30;

/// A degradation ready to apply: the description and its precomputed tables (at the
/// description's size).
#[derive(Clone, Debug)]
pub struct Prepared {
    pub degradation: Degradation,
    pub tables: Arc<dyn Tables>,
}

impl Prepared {
    /// T, the highest level.
    pub fn steps(&self) -> usize {
        self.degradation.steps
    }

    /// No per-image parameters, for `n` images (kinds without any).
    #[cfg(test)]
    pub(crate) fn no_params(n: usize) -> Array2<f32> {
        Array2::zeros((n, 0))
    }

    /// Checks a batch's levels and parameters against the description.
    pub fn check(&self, b: usize, t: &[usize], params: ArrayView2<f32>) -> Result<()> {
        if t.len() != b {
            return Err(Error::InvalidArgument(format!(
                "{} levels given for a batch of {b}",
                t.len()
            )));
        }
        if let Some(&bad) = t.iter().find(|&&t| t > self.steps()) {
            return Err(Error::InvalidArgument(format!(
                "level {bad} is beyond T = {}",
                self.steps()
            )));
        }
        let p = self.degradation.param_count();
        if params.dim() != (b, p) {
            return Err(Error::InvalidArgument(format!(
                "{} parameters per image for {} images, but this degradation takes {p} per image ({})",
                params.ncols(),
                params.nrows(),
                self.degradation.param_names().join(", ")
            )));
        }
        Ok(())
    }

    /// Applies D to a batch `[B, C, H, W]` with one level and one parameter row per image.
    pub fn apply(
        &self,
        x: ArrayView4<f32>,
        t: &[usize],
        params: ArrayView2<f32>,
    ) -> Result<Array4<f32>> {
        let (b, c, h, w) = x.dim();
        let d = &self.degradation;
        if (c, h, w) != (d.channels, d.height, d.width) {
            return Err(Error::InvalidArgument(format!(
                "images are {c}x{h}x{w} but the degradation is built for {}x{}x{}",
                d.channels, d.height, d.width
            )));
        }
        self.check(b, t, params)?;
        let params = params.as_standard_layout();
        self.tables.apply(x, t, params.view())
    }

    /// The values of the graphs' table inputs at this size, by name.
    pub fn table_values(&self) -> Vec<(&'static str, ArrayViewD<'_, f32>)> {
        self.tables.inputs()
    }

    /// The kind's own tables, e.g. `prepared.tables_as::<MixTables>()`.
    pub fn tables_as<T: 'static>(&self) -> Option<&T> {
        self.tables.as_any().downcast_ref()
    }

    /// Applies D with the same level to every image.
    pub fn apply_uniform(
        &self,
        x: ArrayView4<f32>,
        t: usize,
        params: ArrayView2<f32>,
    ) -> Result<Array4<f32>> {
        let b = x.dim().0;
        self.apply(x, &vec![t; b], params)
    }
}

#[cfg(test)]
mod inpaint_tests;
#[cfg(test)]
mod tests;
