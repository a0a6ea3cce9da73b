//! What a degradation kind is: the [`Kind`] its description implements (validation, per-image
//! parameters, the tables D needs at an image size, and D lowered to ONNX nodes with symbolic
//! batch, height and width) and the [`Tables`] it prepares (D on the host, and the
//! size-dependent tensors the graphs take as inputs). A kind is one file implementing both; the
//! registry in `mod.rs` names it once.

use std::any::Any;
use std::fmt::Debug;

use ndarray::{Array2, Array4, ArrayView1, ArrayView2, ArrayView4, ArrayViewD};
use rand::RngCore;

use super::Degradation;
use crate::error::Result;
use crate::onnx::{Dim, GraphBuilder};

/// A size-dependent table the degradation and step graphs take as an input (per-level
/// operators, mask canvases), computed by the runtime for the image's size ([`Tables::inputs`]).
#[derive(Clone, Debug)]
pub struct TableInput {
    /// The graph input's name.
    pub name: &'static str,
    /// Its dimensions: the levels fixed, the sides symbolic.
    pub dims: Vec<Dim>,
}

/// The names, in the graph, of what D's nodes read.
#[derive(Clone, Copy, Debug)]
pub struct Lowering<'a> {
    /// The images `[B, C, H, W]` f32.
    pub x: &'a str,
    /// The levels `[B]` i64.
    pub t: &'a str,
    /// The per-image parameters `[B, P]` f32, for kinds that have them.
    pub params: Option<&'a str>,
    /// The images' `[H, W]` int64 (`GraphBuilder::image_sides` of the graph's input).
    pub hw: &'a str,
}

/// A degradation kind: implemented by each kind's description (`Blur`, `Inpaint`, ...). `d` is
/// the whole description the kind is part of (T, channels and the size it was built for).
pub trait Kind: Debug + Sync {
    /// Checks the kind's own parameters against T and the image size.
    fn validate(&self, d: &Degradation) -> Result<()>;

    /// One line for logs and reports (without T and the size, which the caller adds).
    fn describe(&self, d: &Degradation) -> String;

    /// Names of the per-image parameters, in order; an array parameter is one name with its
    /// shape, e.g. `z[1x28x28]`. None by default: D is the same for every image.
    fn param_names(&self, _d: &Degradation) -> Vec<String> {
        Vec::new()
    }

    /// P, the number of per-image parameter values.
    fn param_count(&self, _d: &Degradation) -> usize {
        0
    }

    /// Draws the per-image parameters of `n` images, `[n, P]`.
    fn sample_params(
        &self,
        _d: &Degradation,
        _rng: &mut dyn RngCore,
        n: usize,
    ) -> Result<Array2<f32>> {
        Ok(Array2::zeros((n, 0)))
    }

    /// Precomputes what D needs at `d`'s size (per-level operators, masks, tables).
    fn tables(&self, d: &Degradation) -> Result<Box<dyn Tables>>;

    /// The size-dependent tables the graphs take as inputs (none by default: whatever the kind's
    /// nodes need is the same at every size and lives in the graph).
    fn table_inputs(&self, _d: &Degradation) -> Vec<TableInput> {
        Vec::new()
    }

    /// D(x, t) as ONNX nodes on images of any size; returns the output's name. The graph has
    /// already declared [`Kind::table_inputs`] under their names.
    fn lower(&self, d: &Degradation, g: &mut GraphBuilder, io: Lowering) -> String;

    /// D of one image channel `[H, W]` at each of `levels`, computed without [`Kind::tables`]:
    /// for images too large for them, in the memory of a few copies of the channel. `None` where
    /// the kind has no such path (its tables then bound the image size).
    fn apply_direct(
        &self,
        _d: &Degradation,
        _x: ArrayView2<f32>,
        _levels: &[usize],
        _params: ArrayView1<f32>,
    ) -> Option<Result<Vec<Array2<f32>>>> {
        None
    }

    /// Whether D is affine in the image (`D(x) = A_t x + b_t`, for fixed parameters): then a
    /// sampling step is affine in R's output, and classifier-free guidance can combine whole
    /// steps (`step(u + w (c - u)) = step(u) + w (step(c) - step(u))`). Kinds that clip or
    /// threshold are not.
    fn is_affine(&self) -> bool {
        false
    }

    /// Whether D mixes the image with a per-image `z` (`a_t x + b_t z`), which gives the
    /// estimated-noise sampler.
    fn is_mix(&self) -> bool {
        false
    }

    /// Whether generation starts from `D(0, T, p)` with each sample's drawn parameters (level T
    /// is, or nearly is, a function of the parameters alone: the mixes' z, a reversed mask's
    /// fill colour) rather than from the mixture over channel means.
    fn starts_from_params(&self) -> bool {
        self.is_mix()
    }
}

/// What D needs at one image size, and D itself on the host.
pub trait Tables: Debug + Send + Sync {
    /// D on a batch `[B, C, H, W]` with one level and one parameter row per image (checked by the
    /// caller: levels within T, parameters `[B, P]` in standard layout, the size the tables are
    /// for).
    fn apply(
        &self,
        x: ArrayView4<f32>,
        t: &[usize],
        params: ArrayView2<f32>,
    ) -> Result<Array4<f32>>;

    /// The values of the kind's [`TableInput`]s at this size, by name.
    fn inputs(&self) -> Vec<(&'static str, ArrayViewD<'_, f32>)> {
        Vec::new()
    }

    /// For downcasting to the kind's own tables (tests, the estimated-noise step).
    fn as_any(&self) -> &dyn Any;
}

/// Lowering helpers the kinds share.
pub(crate) mod nodes {
    use ndarray::Array1;

    use crate::onnx::{Attr, GraphBuilder};

    /// A per-level table gathered by the levels `t` (`[B]`) and shaped `[B, 1, 1, 1]` to
    /// broadcast over images.
    pub(crate) fn per_image(g: &mut GraphBuilder, table: &str, t: &str) -> String {
        let v = g.op1("Gather", &[table, t], vec![("axis", Attr::Int(0))]);
        let shape = g.const_i64(&[-1, 1, 1, 1], &[4]);
        g.op1("Reshape", &[&v, &shape], vec![])
    }

    /// A per-level table of scalars, stored in the graph (the same at every size).
    pub(crate) fn table(g: &mut GraphBuilder, name: &str, v: &Array1<f32>) -> String {
        g.weight(name, v.as_slice().expect("contiguous"), &[v.len()])
    }

    /// `where(t > 0, y, x)` per image: level 0 is the identity.
    pub(crate) fn where_active(g: &mut GraphBuilder, t: &str, y: &str, x: &str) -> String {
        let zero = g.const_i64(&[0], &[]);
        let active = g.op1("Greater", &[t, &zero], vec![]);
        let mshape = g.const_i64(&[-1, 1, 1, 1], &[4]);
        let active = g.op1("Reshape", &[&active, &mshape], vec![]);
        g.op1("Where", &[&active, y, x], vec![])
    }

    /// A level-indexed `[T+1, n, n]` table input gathered by `t` and unsqueezed to
    /// `[B, 1, n, n]`, to multiply every channel.
    pub(crate) fn per_image_matrix(g: &mut GraphBuilder, table: &str, t: &str) -> String {
        let axes = g.const_i64(&[1], &[1]);
        let m = g.op1("Gather", &[table, t], vec![("axis", Attr::Int(0))]);
        g.op1("Unsqueeze", &[&m, &axes], vec![])
    }
}
