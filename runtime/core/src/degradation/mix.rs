//! Mixing with a per-image image `z`: `D(x, t) = sqrt(abar_t) x + sqrt(1 - abar_t) z` with the
//! cosine schedule of improved DDPM (the reference's `cosine_beta_schedule`, s = 0.008, betas
//! clipped at 0.999). Two kinds share it:
//!
//! - Gaussian noise (the hot-diffusion baseline): `z ~ N(0, I)`, drawn per image;
//! - animorphosis: `z` an image of another data set ([`Animorph`]: Fashion-MNIST for MNIST; the
//!   paper's AFHQ animals are not at hand).
//!
//! `z` (`C*H*W` values, row-major) is the per-image parameter. Besides Algorithm 2 with the known
//! `z` ("fixed noise"), the kinds have the paper's estimated-noise sampler:
//! `z_hat = (x_s - sqrt(abar_s) x0_hat) / sqrt(1 - abar_s)`,
//! `x_{s'} = sqrt(abar_{s'}) x0_hat + sqrt(1 - abar_{s'}) z_hat` (DDIM with eta 0), which needs no `z`.

use std::any::Any;

use ndarray::{Array1, Array2, Array4, ArrayView2, ArrayView4, Axis};
use rand::{Rng, RngCore};
use rand_distr::StandardNormal;
use serde::{Deserialize, Serialize};

use super::Degradation;
use super::kind::{Kind, Lowering, Tables, nodes};
use crate::data::{Dataset, Source, Split};
use crate::error::{Error, Result};
use crate::onnx::{Attr, GraphBuilder};
use crate::update::{self, F64, MixCoefficients};

/// Gaussian noise with the cosine schedule.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Noise {
    /// The cosine schedule's offset `s` (0.008).
    pub cosine_offset: f64,
}

/// Checks the cosine schedule's offset `s` (noise and animorphosis).
fn validate_offset(s: f64) -> Result<()> {
    if !(s.is_finite() && s > 0.0) {
        return Err(Error::InvalidArgument(format!(
            "cosine schedule offset must be positive, got {s}"
        )));
    }
    Ok(())
}

/// `abar_t` for t = 0..=T: 1 at level 0, then the cumulative products of `1 - beta_i`,
/// `beta_i = min(1 - f(i+1)/f(i), 0.999)`, `f(u) = cos((u/T + s)/(1 + s) * pi/2)^2`.
pub(crate) fn cosine_abar(steps: usize, s: f64) -> Vec<f64> {
    let f = |u: f64| {
        let v = ((u / steps as f64 + s) / (1.0 + s) * std::f64::consts::FRAC_PI_2).cos();
        v * v
    };
    let mut out = vec![1.0];
    let mut acc = 1.0;
    for i in 0..steps {
        let beta = (1.0 - f(i as f64 + 1.0) / f(i as f64)).clamp(0.0, 0.999);
        acc *= 1.0 - beta;
        out.push(acc);
    }
    out
}

impl Noise {
    pub fn paper() -> Self {
        Noise {
            cosine_offset: 0.008,
        }
    }

    /// Draws `n` noise images `[n, len]`, standard normal.
    pub(crate) fn sample_noise<R: Rng + ?Sized>(
        &self,
        rng: &mut R,
        n: usize,
        len: usize,
    ) -> Array2<f32> {
        Array2::from_shape_simple_fn((n, len), || rng.sample::<f32, _>(StandardNormal))
    }
}

/// What the mixes share: `z[C x H x W]` per image, the cosine schedule's tables, and D lowered.
fn z_names(d: &Degradation) -> Vec<String> {
    vec![format!("z[{}x{}x{}]", d.channels, d.height, d.width)]
}

fn mix_tables(d: &Degradation, cosine_offset: f64) -> MixTables {
    MixTables::new(&cosine_abar(d.steps, cosine_offset))
}

impl Kind for Noise {
    /// `a_t x + b_t z`, and the estimated-noise step is affine in x0 too.
    fn is_affine(&self) -> bool {
        true
    }

    fn validate(&self, _d: &Degradation) -> Result<()> {
        validate_offset(self.cosine_offset)
    }

    fn describe(&self, _d: &Degradation) -> String {
        format!(
            "Gaussian noise, cosine schedule (s = {})",
            self.cosine_offset
        )
    }

    fn param_names(&self, d: &Degradation) -> Vec<String> {
        z_names(d)
    }

    fn param_count(&self, d: &Degradation) -> usize {
        d.channels * d.height * d.width
    }

    fn sample_params(
        &self,
        d: &Degradation,
        rng: &mut dyn RngCore,
        n: usize,
    ) -> Result<Array2<f32>> {
        Ok(self.sample_noise(rng, n, self.param_count(d)))
    }

    fn tables(&self, d: &Degradation) -> Result<Box<dyn Tables>> {
        Ok(Box::new(mix_tables(d, self.cosine_offset)))
    }

    fn lower(&self, d: &Degradation, g: &mut GraphBuilder, io: Lowering) -> String {
        mix_tables(d, self.cosine_offset).lower(g, io, d.channels)
    }

    fn is_mix(&self) -> bool {
        true
    }
}

impl Kind for Animorph {
    /// `a_t x + b_t z`, and the estimated-noise step is affine in x0 too.
    fn is_affine(&self) -> bool {
        true
    }

    fn validate(&self, _d: &Degradation) -> Result<()> {
        validate_offset(self.cosine_offset)
    }

    fn describe(&self, _d: &Degradation) -> String {
        format!(
            "animorphosis into {}, cosine schedule (s = {})",
            self.source.name(),
            self.cosine_offset
        )
    }

    fn param_names(&self, d: &Degradation) -> Vec<String> {
        z_names(d)
    }

    fn param_count(&self, d: &Degradation) -> usize {
        d.channels * d.height * d.width
    }

    /// Fails when the source images are not installed.
    fn sample_params(
        &self,
        d: &Degradation,
        rng: &mut dyn RngCore,
        n: usize,
    ) -> Result<Array2<f32>> {
        Animorph::sample_from(
            self.source.images()?,
            rng,
            n,
            (d.channels, d.height, d.width),
        )
    }

    fn tables(&self, d: &Degradation) -> Result<Box<dyn Tables>> {
        Ok(Box::new(mix_tables(d, self.cosine_offset)))
    }

    fn lower(&self, d: &Degradation, g: &mut GraphBuilder, io: Lowering) -> String {
        mix_tables(d, self.cosine_offset).lower(g, io, d.channels)
    }

    fn is_mix(&self) -> bool {
        true
    }
}

/// Where animorphosis takes its `z` images from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AnimorphSource {
    /// Fashion-MNIST's 60,000 training images (Debian's `dataset-fashion-mnist`, or the folder in
    /// `COLD_FASHION_MNIST_DIR`).
    FashionMnist,
}

/// Animorphosis: the image morphs into an image of another data set, `z` drawn uniformly from
/// it per image, with the cosine schedule.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Animorph {
    pub source: AnimorphSource,
    pub cosine_offset: f64,
}

/// The loaded source images, shared by every draw of the process.
static FASHION_MNIST: std::sync::OnceLock<Dataset> = std::sync::OnceLock::new();

impl AnimorphSource {
    /// The source's images, loaded once per process.
    pub fn images(self) -> Result<&'static Dataset> {
        match self {
            AnimorphSource::FashionMnist => {
                if let Some(d) = FASHION_MNIST.get() {
                    return Ok(d);
                }
                let dir = std::env::var_os("COLD_FASHION_MNIST_DIR").map(std::path::PathBuf::from);
                let d = Dataset::load(&Source::FashionMnist(dir), Split::Train).map_err(|e| {
                    Error::DatasetMissing(format!(
                        "animorphosis draws its z images from Fashion-MNIST: {e}"
                    ))
                })?;
                Ok(FASHION_MNIST.get_or_init(|| d))
            }
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            AnimorphSource::FashionMnist => "Fashion-MNIST (train)",
        }
    }
}

impl Animorph {
    pub fn paper(source: AnimorphSource) -> Self {
        Animorph {
            source,
            cosine_offset: 0.008,
        }
    }

    /// Draws `n` images of `pool` as `[n, C*H*W]` rows, checking their size.
    pub(crate) fn sample_from<R: Rng + ?Sized>(
        pool: &Dataset,
        rng: &mut R,
        n: usize,
        chw: (usize, usize, usize),
    ) -> Result<Array2<f32>> {
        if (pool.channels, pool.height, pool.width) != chw || pool.is_empty() {
            return Err(Error::InvalidArgument(format!(
                "animorphosis needs {}x{}x{} source images, but the source holds {} of {}x{}x{}",
                chw.0,
                chw.1,
                chw.2,
                pool.len(),
                pool.channels,
                pool.height,
                pool.width
            )));
        }
        let idx: Vec<usize> = (0..n).map(|_| rng.random_range(0..pool.len())).collect();
        let len = chw.0 * chw.1 * chw.2;
        let b = pool.batch(&idx);
        Ok(
            Array2::from_shape_vec((n, len), b.into_raw_vec_and_offset().0)
                .expect("a batch of n images of len values"),
        )
    }
}

/// The per-level coefficients of a mix: `D(x, t) = a[t] x + b[t] z`.
#[derive(Clone, Debug)]
pub struct MixTables {
    /// `[T+1]` `sqrt(abar_t)`.
    pub a: Array1<f32>,
    /// `[T+1]` `sqrt(1 - abar_t)`.
    pub b: Array1<f32>,
    /// Float64 originals.
    pub a64: Vec<f64>,
    pub b64: Vec<f64>,
}

impl MixTables {
    pub fn new(abar: &[f64]) -> Self {
        let a64: Vec<f64> = abar.iter().map(|v| v.sqrt()).collect();
        let b64: Vec<f64> = abar.iter().map(|v| (1.0 - v).max(0.0).sqrt()).collect();
        MixTables {
            a: a64.iter().map(|&v| v as f32).collect(),
            b: b64.iter().map(|&v| v as f32).collect(),
            a64,
            b64,
        }
    }

    /// Applies D with a level and a `z` (`[C*H*W]` parameter row) per image.
    pub fn apply(
        &self,
        x: ArrayView4<f32>,
        t: &[usize],
        params: ArrayView2<f32>,
    ) -> Result<Array4<f32>> {
        let mut out = x.to_owned();
        for (i, mut img) in out.outer_iter_mut().enumerate() {
            let (a, b) = (self.a[t[i]], self.b[t[i]]);
            let z = params.row(i);
            for (o, zv) in img.iter_mut().zip(z.iter()) {
                *o = a * *o + b * zv;
            }
        }
        Ok(out)
    }

    /// `a_t x + b_t z` as nodes, `z` the per-image parameter rows shaped as `x` (`channels` x
    /// the images' sides).
    pub fn lower(&self, g: &mut GraphBuilder, io: Lowering, channels: usize) -> String {
        let a = nodes::table(g, "degradation.mix_a", &self.a);
        let b = nodes::table(g, "degradation.mix_b", &self.b);
        let params = io.params.expect("mixes take parameters");
        let channels = channels as i64;
        g.scoped("degradation", |g| {
            let lead = g.const_i64(&[-1, channels], &[2]);
            let shape = g.op1("Concat", &[&lead, io.hw], vec![("axis", Attr::Int(0))]);
            let z = g.op1("Reshape", &[params, &shape], vec![]);
            let at = nodes::per_image(g, &a, io.t);
            let bt = nodes::per_image(g, &b, io.t);
            let ax = g.op1("Mul", &[&at, io.x], vec![]);
            let bz = g.op1("Mul", &[&bt, &z], vec![]);
            g.op1("Add", &[&ax, &bz], vec![])
        })
    }

    /// The per-image coefficients `a_s`, `b_s` (`b_0 = 0` replaced by 1, for dividing: images at
    /// level 0 pass through) and `a_{s'}`, `b_{s'}` of the estimated-noise step, as nodes.
    pub fn lower_coefficients(
        &self,
        g: &mut GraphBuilder,
        s: &str,
        s_prev: &str,
    ) -> MixCoefficients<String> {
        let a = nodes::table(g, "degradation.mix_a", &self.a);
        let b = nodes::table(g, "degradation.mix_b", &self.b);
        let mut safe = self.b.clone();
        safe[0] = 1.0;
        let b_div = nodes::table(g, "degradation.mix_b_divisor", &safe);
        MixCoefficients {
            a_s: nodes::per_image(g, &a, s),
            b_s: nodes::per_image(g, &b_div, s),
            a_prev: nodes::per_image(g, &a, s_prev),
            b_prev: nodes::per_image(g, &b, s_prev),
        }
    }

    /// One step of the estimated-noise sampler from level `s` to `s_prev` (images with `s = 0`
    /// pass through): the reference for the step graph's `x_next_est`.
    pub fn estimated_step(
        &self,
        x_s: ArrayView4<f32>,
        x0_hat: ArrayView4<f32>,
        s: &[usize],
        s_prev: &[usize],
    ) -> Array4<f32> {
        let mut out = x_s.to_owned();
        for (i, mut img) in out.outer_iter_mut().enumerate() {
            if s[i] == 0 {
                continue;
            }
            let c = MixCoefficients {
                a_s: self.a64[s[i]],
                b_s: self.b64[s[i]],
                a_prev: self.a64[s_prev[i]],
                b_prev: self.b64[s_prev[i]],
            };
            let x0 = x0_hat.index_axis(Axis(0), i);
            for (o, &x0v) in img.iter_mut().zip(x0.iter()) {
                *o = update::estimated(&mut F64, &f64::from(*o), &f64::from(x0v), &c) as f32;
            }
        }
        out
    }
}
impl Tables for MixTables {
    fn apply(
        &self,
        x: ArrayView4<f32>,
        t: &[usize],
        params: ArrayView2<f32>,
    ) -> Result<Array4<f32>> {
        MixTables::apply(self, x, t, params)
    }

    fn as_any(&self) -> &dyn Any {
        self
    }
}
