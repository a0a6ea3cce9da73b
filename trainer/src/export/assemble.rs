//! The three graphs of a bundle, assembled from the lowerings of the network's blocks
//! (`UNet::lower`), of the degradation's kind (`Degradation::lower`) and of the update rules
//! (`cold_core::update`). Every graph takes symbolic batch, height and width; the kind's
//! size-dependent tables (per-level operators, mask canvases) are inputs that the runtime computes
//! for the images' size (`Prepared::table_values`).

use burn::prelude::*;
use cold_core::bundle::io;
use cold_core::degradation::{Degradation, Lowering, MixTables};
use cold_core::onnx::{Attr, Dim, GraphBuilder};
use cold_core::update;
use onnx_protobuf::tensor_proto::DataType;

use crate::model::UNet;

/// The per-image parameter input `params` `[B, P]`, for kinds that have parameters. P is
/// symbolic: for some kinds it depends on the image size (a snow layer, a noise image).
fn params_input(g: &mut GraphBuilder, d: &Degradation) -> Option<String> {
    (d.param_count() > 0).then(|| {
        g.input(
            io::PARAMS,
            DataType::FLOAT,
            &[Dim::Named("batch"), Dim::Named("params")],
        )
    })
}

/// Declares the kind's size-dependent tables as graph inputs.
fn table_inputs(g: &mut GraphBuilder, d: &Degradation) {
    for t in d.table_inputs() {
        g.input(t.name, DataType::FLOAT, &t.dims);
    }
}

fn levels(g: &mut GraphBuilder, name: &str) -> String {
    g.input(name, DataType::INT64, &[Dim::Named("batch")])
}

/// The class input `class` `[B]` i64 of a class-conditioned network's graphs.
fn class_input<B: Backend>(g: &mut GraphBuilder, net: &UNet<B>) -> Option<String> {
    net.class_emb
        .is_some()
        .then(|| g.input(io::CLASS, DataType::INT64, &[Dim::Named("batch")]))
}

fn as_float(g: &mut GraphBuilder, t: &str) -> String {
    g.op1(
        "Cast",
        &[t],
        vec![("to", Attr::Int(DataType::FLOAT as i64))],
    )
}

/// The restorer graph: `x [B,C,H,W] f32, t [B] i64 (, class [B] i64) -> x0_hat [B,C,H,W]`.
pub(crate) fn restorer_graph<B: Backend>(g: &mut GraphBuilder, net: &UNet<B>, channels: usize) {
    let dims = GraphBuilder::image_dims(channels);
    let x = g.input(io::X, DataType::FLOAT, &dims);
    let t = levels(g, io::T);
    let class = class_input(g, net);
    let tf = as_float(g, &t);
    let y = net.lower(g, &x, &tf, class.as_deref());
    g.output(&y, io::X0_HAT, DataType::FLOAT, &dims);
}

/// The degradation graph: `x [B,C,H,W] f32, t [B] i64 (, params [B,P] f32) (, the kind's
/// tables) -> y = D(x, t)`.
pub(crate) fn degradation_graph(g: &mut GraphBuilder, d: &Degradation) {
    let dims = GraphBuilder::image_dims(d.channels);
    let x = g.input(io::X, DataType::FLOAT, &dims);
    let t = levels(g, io::T);
    let params = params_input(g, d);
    table_inputs(g, d);
    let hw = g.image_sides(&x);
    let y = d.lower(
        g,
        Lowering {
            x: &x,
            t: &t,
            params: params.as_deref(),
            hw: &hw,
        },
    );
    g.output(&y, io::Y, DataType::FLOAT, &dims);
}

/// `where(s > 0, y, x)` per image: images at level 0 pass through.
fn where_active(g: &mut GraphBuilder, s: &str, y: &str, x: &str) -> String {
    let zero = g.const_i64(&[0], &[]);
    let active = g.op1("Greater", &[s, &zero], vec![]);
    let mshape = g.const_i64(&[-1, 1, 1, 1], &[4]);
    let active = g.op1("Reshape", &[&active, &mshape], vec![]);
    g.op1("Where", &[&active, y, x], vec![])
}

/// The fused sampling step: `x_s [B,C,H,W], s [B], s_prev [B] (, params [B,P]) (, class [B])
/// (, the kind's tables) -> x0_hat, x_next (Algorithm 2), x_next_alg1` (and `x_next_est`, the estimated-noise
/// step, for mixes). `s_prev` is the level to step to (`s - 1` for the full schedule, lower to
/// skip levels). Samples with s = 0 pass through unchanged, so one batch can hold different
/// levels.
pub fn step_graph<B: Backend>(g: &mut GraphBuilder, net: &UNet<B>, d: &Degradation) {
    let dims = GraphBuilder::image_dims(d.channels);
    let x = g.input(io::X_S, DataType::FLOAT, &dims);
    let s = levels(g, io::S);
    let s_prev = levels(g, io::S_PREV);
    let params = params_input(g, d);
    let class = class_input(g, net);
    table_inputs(g, d);
    let sf = as_float(g, &s);
    let x0 = net.lower(g, &x, &sf, class.as_deref());
    let hw = g.image_sides(&x);
    let at = |t| Lowering {
        x: &x0,
        t,
        params: params.as_deref(),
        hw: &hw,
    };
    let d_s = d.lower(g, at(&s));
    let d_prev = d.lower(g, at(&s_prev));
    let alg2 = update::algorithm2(g, &x, &d_s, &d_prev);
    let alg2 = where_active(g, &s, &alg2, &x);
    let alg1 = update::algorithm1(g, &d_prev);
    let alg1 = where_active(g, &s, &alg1, &x);
    g.output(&x0, io::X0_HAT, DataType::FLOAT, &dims);
    g.output(&alg2, io::X_NEXT, DataType::FLOAT, &dims);
    g.output(&alg1, io::X_NEXT_ALG1, DataType::FLOAT, &dims);
    if d.transform.is_mix() {
        let tables = d.prepare().expect("a validated degradation");
        let mix = tables
            .tables_as::<MixTables>()
            .expect("mixes prepare mix tables");
        let c = g.scoped("estimated", |g| mix.lower_coefficients(g, &s, &s_prev));
        let est = g.scoped("estimated", |g| update::estimated(g, &x, &x0, &c));
        let est = where_active(g, &s, &est, &x);
        g.output(&est, io::X_NEXT_EST, DataType::FLOAT, &dims);
    }
}
