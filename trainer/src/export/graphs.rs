//! The three graphs of a bundle, one ONNX node sequence per Burn module: the restorer R(x, t),
//! the degradation D(x, t) and the fused sampling step.

use burn::module::Param;
use burn::nn::conv::{Conv2d, ConvTranspose2d};
use burn::nn::{Linear, PaddingConfig2d};
use burn::prelude::*;
use cold_core::bundle::io;
use cold_core::degradation::snow::GRAY_WEIGHTS;
use cold_core::degradation::{
    Centre, Masks, MixTables, Operators, Prepared, PreparedKind, SnowTables,
};
use onnx_protobuf::tensor_proto::DataType;

use crate::model::UNet;
use crate::model::attention::LinearAttention;
use crate::model::convnext::ConvNextBlock;
use crate::model::embedding::sinusoidal_frequencies;
use crate::model::norm::ChannelLayerNorm;
use cold_core::onnx::{Attr, Dim, GraphBuilder};

fn values<B: Backend, const D: usize>(p: &Param<Tensor<B, D>>) -> (Vec<f32>, Vec<usize>) {
    let t = p.val();
    let dims = t.dims().to_vec();
    (
        t.into_data()
            .convert::<f32>()
            .to_vec::<f32>()
            .expect("float weights"),
        dims,
    )
}

fn weight<B: Backend, const D: usize>(
    g: &mut GraphBuilder,
    name: &str,
    p: &Param<Tensor<B, D>>,
) -> String {
    let (v, d) = values(p);
    g.weight(name, &v, &d)
}

/// `[x, name.weight, name.bias?]`: the inputs of a convolution node.
fn conv_inputs<B: Backend>(
    g: &mut GraphBuilder,
    name: &str,
    x: &str,
    w: &Param<Tensor<B, 4>>,
    bias: &Option<Param<Tensor<B, 1>>>,
) -> Vec<String> {
    let mut inputs = vec![x.to_string(), weight(g, &format!("{name}.weight"), w)];
    if let Some(b) = bias {
        inputs.push(weight(g, &format!("{name}.bias"), b));
    }
    inputs
}

fn conv<B: Backend>(g: &mut GraphBuilder, name: &str, c: &Conv2d<B>, x: &str) -> String {
    let inputs = conv_inputs(g, name, x, &c.weight, &c.bias);
    let pads = match c.padding {
        PaddingConfig2d::Explicit(t, l, b, r) => vec![t as i64, l as i64, b as i64, r as i64],
        PaddingConfig2d::Valid => vec![0; 4],
        PaddingConfig2d::Same => panic!("{name}: 'same' padding is not used by this network"),
    };
    let refs: Vec<&str> = inputs.iter().map(String::as_str).collect();
    g.op1(
        "Conv",
        &refs,
        vec![
            (
                "kernel_shape",
                Attr::Ints(c.kernel_size.iter().map(|&k| k as i64).collect()),
            ),
            (
                "strides",
                Attr::Ints(c.stride.iter().map(|&k| k as i64).collect()),
            ),
            (
                "dilations",
                Attr::Ints(c.dilation.iter().map(|&k| k as i64).collect()),
            ),
            ("group", Attr::Int(c.groups as i64)),
            ("pads", Attr::Ints(pads)),
        ],
    )
}

fn conv_transpose<B: Backend>(
    g: &mut GraphBuilder,
    name: &str,
    c: &ConvTranspose2d<B>,
    x: &str,
) -> String {
    let inputs = conv_inputs(g, name, x, &c.weight, &c.bias);
    let refs: Vec<&str> = inputs.iter().map(String::as_str).collect();
    let p = c.padding;
    g.op1(
        "ConvTranspose",
        &refs,
        vec![
            (
                "kernel_shape",
                Attr::Ints(c.kernel_size.iter().map(|&k| k as i64).collect()),
            ),
            (
                "strides",
                Attr::Ints(c.stride.iter().map(|&k| k as i64).collect()),
            ),
            (
                "dilations",
                Attr::Ints(c.dilation.iter().map(|&k| k as i64).collect()),
            ),
            ("group", Attr::Int(c.groups as i64)),
            (
                "pads",
                Attr::Ints(vec![p[0] as i64, p[1] as i64, p[0] as i64, p[1] as i64]),
            ),
            (
                "output_padding",
                Attr::Ints(c.padding_out.iter().map(|&k| k as i64).collect()),
            ),
        ],
    )
}

/// `x W + b` with Burn's `[d_in, d_out]` weight layout.
fn linear<B: Backend>(g: &mut GraphBuilder, name: &str, l: &Linear<B>, x: &str) -> String {
    let w = weight(g, &format!("{name}.weight"), &l.weight);
    let y = g.op1("MatMul", &[x, &w], vec![]);
    match &l.bias {
        Some(b) => {
            let b = weight(g, &format!("{name}.bias"), b);
            g.op1("Add", &[&y, &b], vec![])
        }
        None => y,
    }
}

fn gelu(g: &mut GraphBuilder, x: &str) -> String {
    g.op1("Gelu", &[x], vec![("approximate", Attr::Str("none"))])
}

fn layer_norm<B: Backend>(
    g: &mut GraphBuilder,
    name: &str,
    n: &ChannelLayerNorm<B>,
    x: &str,
) -> String {
    let axes = g.const_i64(&[1], &[1]);
    let mean = g.op1("ReduceMean", &[x, &axes], vec![("keepdims", Attr::Int(1))]);
    let centred = g.op1("Sub", &[x, &mean], vec![]);
    let sq = g.op1("Mul", &[&centred, &centred], vec![]);
    let var = g.op1(
        "ReduceMean",
        &[&sq, &axes],
        vec![("keepdims", Attr::Int(1))],
    );
    let eps = g.const_f32(&[n.eps as f32], &[]);
    let v = g.op1("Add", &[&var, &eps], vec![]);
    let sd = g.op1("Sqrt", &[&v], vec![]);
    let normed = g.op1("Div", &[&centred, &sd], vec![]);
    let gain = weight(g, &format!("{name}.gain"), &n.gain);
    let bias = weight(g, &format!("{name}.bias"), &n.bias);
    let y = g.op1("Mul", &[&normed, &gain], vec![]);
    g.op1("Add", &[&y, &bias], vec![])
}

/// A ConvNeXt block; `temb_gelu` is GELU(time embedding), shared by all blocks.
fn convnext<B: Backend>(
    g: &mut GraphBuilder,
    name: &str,
    blk: &ConvNextBlock<B>,
    x: &str,
    temb_gelu: Option<&str>,
) -> String {
    g.scoped(name, |g| {
        let mut h = conv(g, &format!("{name}.depthwise"), &blk.depthwise, x);
        if let (Some(proj), Some(te)) = (&blk.time_proj, temb_gelu) {
            let c = proj.weight.val().dims()[1] as i64;
            let cond = linear(g, &format!("{name}.time_proj"), proj, te);
            let shape = g.const_i64(&[0, c, 1, 1], &[4]);
            let cond = g.op1("Reshape", &[&cond, &shape], vec![]);
            h = g.op1("Add", &[&h, &cond], vec![]);
        }
        if let Some(n) = &blk.norm {
            h = layer_norm(g, &format!("{name}.norm"), n, &h);
        }
        let h = conv(g, &format!("{name}.conv1"), &blk.conv1, &h);
        let h = gelu(g, &h);
        let h = conv(g, &format!("{name}.conv2"), &blk.conv2, &h);
        let res = match &blk.residual {
            Some(r) => conv(g, &format!("{name}.residual"), r, x),
            None => x.to_string(),
        };
        g.op1("Add", &[&h, &res], vec![])
    })
}

/// Residual pre-normed linear attention on an `h x w` feature map.
fn attention<B: Backend>(
    g: &mut GraphBuilder,
    name: &str,
    a: &LinearAttention<B>,
    x: &str,
    hw: (usize, usize),
) -> String {
    g.scoped(name, |g| {
        let (heads, d) = (a.heads as i64, a.dim_head as i64);
        let hidden = heads * d;
        let n = (hw.0 * hw.1) as i64;
        let xn = layer_norm(g, &format!("{name}.norm"), &a.norm, x);
        let qkv = conv(g, &format!("{name}.to_qkv"), &a.to_qkv, &xn);
        let split = g.const_i64(&[hidden, hidden, hidden], &[3]);
        let parts = g.op_n("Split", &[&qkv, &split], vec![("axis", Attr::Int(1))], 3);
        let shape = g.const_i64(&[0, heads, d, n], &[4]);
        let q = g.op1("Reshape", &[&parts[0], &shape], vec![]);
        let k = g.op1("Reshape", &[&parts[1], &shape], vec![]);
        let v = g.op1("Reshape", &[&parts[2], &shape], vec![]);
        let scale = g.const_f32(&[(d as f64).powf(-0.5) as f32], &[]);
        let q = g.op1("Mul", &[&q, &scale], vec![]);
        let k = g.op1("Softmax", &[&k], vec![("axis", Attr::Int(3))]);
        let vt = g.op1(
            "Transpose",
            &[&v],
            vec![("perm", Attr::Ints(vec![0, 1, 3, 2]))],
        );
        let context = g.op1("MatMul", &[&k, &vt], vec![]);
        let ct = g.op1(
            "Transpose",
            &[&context],
            vec![("perm", Attr::Ints(vec![0, 1, 3, 2]))],
        );
        let out = g.op1("MatMul", &[&ct, &q], vec![]);
        let back = g.const_i64(&[0, hidden, hw.0 as i64, hw.1 as i64], &[4]);
        let out = g.op1("Reshape", &[&out, &back], vec![]);
        let out = conv(g, &format!("{name}.to_out"), &a.to_out, &out);
        g.op1("Add", &[x, &out], vec![])
    })
}

/// The U-Net on input `x` ([B, C, H, W]) and float levels `t` ([B]); returns the output name.
pub fn unet<B: Backend>(
    g: &mut GraphBuilder,
    net: &UNet<B>,
    x: &str,
    t: &str,
    hw: (usize, usize),
) -> String {
    // 1. Time embedding: cat(sin(t f), cos(t f)) -> Linear -> GELU -> Linear.
    let temb = g.scoped("time_mlp", |g| {
        let dim = net.time_mlp.dim;
        let freqs = sinusoidal_frequencies(dim);
        let f = g.const_f32(&freqs, &[1, (dim / 2) as i64]);
        let axes = g.const_i64(&[1], &[1]);
        let tc = g.op1("Unsqueeze", &[t, &axes], vec![]);
        let arg = g.op1("Mul", &[&tc, &f], vec![]);
        let s = g.op1("Sin", &[&arg], vec![]);
        let c = g.op1("Cos", &[&arg], vec![]);
        let e = g.op1("Concat", &[&s, &c], vec![("axis", Attr::Int(1))]);
        let h = linear(g, "time_mlp.lin1", &net.time_mlp.lin1, &e);
        let h = gelu(g, &h);
        linear(g, "time_mlp.lin2", &net.time_mlp.lin2, &h)
    });
    let te = gelu(g, &temb);
    // 2. Contracting path.
    let mut skips = Vec::new();
    let mut h = x.to_string();
    let mut size = hw;
    for (i, level) in net.downs.iter().enumerate() {
        let p = format!("downs.{i}");
        h = convnext(g, &format!("{p}.block1"), &level.block1, &h, Some(&te));
        h = convnext(g, &format!("{p}.block2"), &level.block2, &h, Some(&te));
        h = attention(g, &format!("{p}.attn"), &level.attn, &h, size);
        skips.push(h.clone());
        if let Some(d) = &level.down {
            h = conv(g, &format!("{p}.down"), d, &h);
            size = ((size.0 + 2 - 4) / 2 + 1, (size.1 + 2 - 4) / 2 + 1);
        }
    }
    // 3. Middle.
    h = convnext(g, "mid_block1", &net.mid_block1, &h, Some(&te));
    h = attention(g, "mid_attn", &net.mid_attn, &h, size);
    h = convnext(g, "mid_block2", &net.mid_block2, &h, Some(&te));
    // 4. Expanding path.
    for (i, level) in net.ups.iter().enumerate() {
        let p = format!("ups.{i}");
        let skip = skips.pop().expect("one skip per level");
        h = g.op1("Concat", &[&h, &skip], vec![("axis", Attr::Int(1))]);
        h = convnext(g, &format!("{p}.block1"), &level.block1, &h, Some(&te));
        h = convnext(g, &format!("{p}.block2"), &level.block2, &h, Some(&te));
        h = attention(g, &format!("{p}.attn"), &level.attn, &h, size);
        h = conv_transpose(g, &format!("{p}.up"), &level.up, &h);
        size = (size.0 * 2, size.1 * 2);
    }
    // 5. Output head.
    let h = convnext(g, "final_block", &net.final_block, &h, None);
    conv(g, "final_conv", &net.final_conv, &h)
}

/// D(x, t) nodes for a prepared degradation; `params` is the per-image parameter input
/// (`[B, P]`), present when the kind has parameters.
pub fn degradation(
    g: &mut GraphBuilder,
    deg: &Prepared,
    x: &str,
    t: &str,
    params: Option<&str>,
) -> String {
    match &deg.kind {
        PreparedKind::Separable(ops) => separable(g, ops, x, t),
        PreparedKind::Masks(m) => masked(g, m, x, t, params),
        PreparedKind::Snow(s) => snowy(
            g,
            s,
            deg.degradation.channels,
            x,
            t,
            params.expect("snow takes parameters"),
        ),
        PreparedKind::Mix(m) => {
            let d = &deg.degradation;
            let chw = [d.channels, d.height, d.width].map(|v| v as i64);
            mixed(g, m, x, t, params.expect("mixes take parameters"), chw)
        }
    }
}

/// A per-level table gathered by the levels `t` (`[B]`) and shaped `[B, 1, 1, 1]` to broadcast
/// over images.
fn per_image(g: &mut GraphBuilder, table: &str, t: &str) -> String {
    let v = g.op1("Gather", &[table, t], vec![("axis", Attr::Int(0))]);
    let shape = g.const_i64(&[-1, 1, 1, 1], &[4]);
    g.op1("Reshape", &[&v, &shape], vec![])
}

fn table(g: &mut GraphBuilder, name: &str, v: &ndarray::Array1<f32>) -> String {
    g.weight(name, v.as_slice().expect("contiguous"), &[v.len()])
}

/// `where(t > 0, y, x)` per image.
fn where_active(g: &mut GraphBuilder, t: &str, y: &str, x: &str) -> String {
    let zero = g.const_i64(&[0], &[]);
    let active = g.op1("Greater", &[t, &zero], vec![]);
    let mshape = g.const_i64(&[-1, 1, 1, 1], &[4]);
    let active = g.op1("Reshape", &[&active, &mshape], vec![]);
    g.op1("Where", &[&active, y, x], vec![])
}

/// Snow: threshold the per-image base by the level, motion-blur it along the image's axis (the
/// level's blur matrix, left- or right-multiplied), add its 180-degree rotation, brighten the
/// image towards grey and clip.
fn snowy(
    g: &mut GraphBuilder,
    s: &SnowTables,
    channels: usize,
    x: &str,
    t: &str,
    params: &str,
) -> String {
    let (h, w) = (s.height as i64, s.width as i64);
    let levels = s.threshold.len();
    let thr = table(g, "degradation.snow_threshold", &s.threshold);
    let br = table(g, "degradation.snow_brightness", &s.brightness);
    let rows = g.weight(
        "degradation.snow_rows",
        s.rows.as_slice().expect("contiguous"),
        &[levels, s.height, s.height],
    );
    let cols = g.weight(
        "degradation.snow_cols",
        s.cols.as_slice().expect("contiguous"),
        &[levels, s.width, s.width],
    );
    g.scoped("degradation", |g| {
        let ax1 = g.const_i64(&[1], &[1]);
        let (st, en) = (g.const_i64(&[0], &[1]), g.const_i64(&[h * w], &[1]));
        let base = g.op1("Slice", &[params, &st, &en, &ax1], vec![]);
        let bshape = g.const_i64(&[-1, 1, h, w], &[4]);
        let base = g.op1("Reshape", &[&base, &bshape], vec![]); // [B, 1, H, W]
        let en2 = g.const_i64(&[h * w + 1], &[1]);
        let vertical = g.op1("Slice", &[params, &en, &en2, &ax1], vec![]);
        let one4 = g.const_i64(&[-1, 1, 1, 1], &[4]);
        let vertical = g.op1("Reshape", &[&vertical, &one4], vec![]);
        let half = g.const_f32(&[0.5], &[]);
        let vertical = g.op1("Greater", &[&vertical, &half], vec![]);
        // The thresholded layer, clipped to [0, 1].
        let th = per_image(g, &thr, t);
        let snowy = g.op1("GreaterOrEqual", &[&base, &th], vec![]);
        let zero = g.const_f32(&[0.0], &[]);
        let one = g.const_f32(&[1.0], &[]);
        let layer = g.op1("Where", &[&snowy, &base, &zero], vec![]);
        let layer = g.op1("Clip", &[&layer, &zero, &one], vec![]);
        // Motion blur along the image's axis.
        let v = g.op1("Gather", &[&rows, t], vec![("axis", Attr::Int(0))]);
        let v = g.op1("Unsqueeze", &[&v, &ax1], vec![]); // [B, 1, H, H]
        let vblur = g.op1("MatMul", &[&v, &layer], vec![]);
        let hm = g.op1("Gather", &[&cols, t], vec![("axis", Attr::Int(0))]);
        let hm = g.op1("Unsqueeze", &[&hm, &ax1], vec![]); // [B, 1, W, W]
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
        let gray = if channels == 3 {
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
        let b = per_image(g, &br, t);
        let bu = g.op1("Mul", &[&b, &u], vec![]);
        let rest = g.op1("Sub", &[&one, &b], vec![]);
        let rl = g.op1("Mul", &[&rest, &lifted], vec![]);
        let scaled = g.op1("Add", &[&bu, &rl], vec![]);
        let y = g.op1("Add", &[&scaled, &snow], vec![]);
        let y = g.op1("Clip", &[&y, &zero, &one], vec![]);
        let two = g.const_f32(&[2.0], &[]);
        let y = g.op1("Mul", &[&y, &two], vec![]);
        let y = g.op1("Sub", &[&y, &one], vec![]);
        where_active(g, t, &y, x)
    })
}

/// `a_t x + b_t z`, `z` the per-image parameter rows shaped as `[C, H, W]` images.
fn mixed(
    g: &mut GraphBuilder,
    m: &MixTables,
    x: &str,
    t: &str,
    params: &str,
    [c, h, w]: [i64; 3],
) -> String {
    let a = table(g, "degradation.mix_a", &m.a);
    let b = table(g, "degradation.mix_b", &m.b);
    g.scoped("degradation", |g| {
        let shape = g.const_i64(&[-1, c, h, w], &[4]);
        let z = g.op1("Reshape", &[params, &shape], vec![]);
        let at = per_image(g, &a, t);
        let bt = per_image(g, &b, t);
        let ax = g.op1("Mul", &[&at, x], vec![]);
        let bz = g.op1("Mul", &[&bt, &z], vec![]);
        g.op1("Add", &[&ax, &bz], vec![])
    })
}

/// The estimated-noise step of a mix: `z_hat = (x_s - a_s x0) / b_s`,
/// `x_next = a_{s'} x0 + b_{s'} z_hat` (images at s = 0 pass through).
fn estimated_step(
    g: &mut GraphBuilder,
    m: &MixTables,
    x: &str,
    x0: &str,
    s: &str,
    s_prev: &str,
) -> String {
    let a = table(g, "degradation.mix_a", &m.a);
    let b = table(g, "degradation.mix_b", &m.b);
    // b_0 = 0: level 0 divides by 1 instead (those images pass through anyway).
    let mut safe = m.b.clone();
    safe[0] = 1.0;
    let b_div = table(g, "degradation.mix_b_divisor", &safe);
    g.scoped("estimated", |g| {
        let a_s = per_image(g, &a, s);
        let b_s = per_image(g, &b_div, s);
        let a_p = per_image(g, &a, s_prev);
        let b_p = per_image(g, &b, s_prev);
        let ax0 = g.op1("Mul", &[&a_s, x0], vec![]);
        let r = g.op1("Sub", &[x, &ax0], vec![]);
        let z = g.op1("Div", &[&r, &b_s], vec![]);
        let ap = g.op1("Mul", &[&a_p, x0], vec![]);
        let bp = g.op1("Mul", &[&b_p, &z], vec![]);
        let y = g.op1("Add", &[&ap, &bp], vec![]);
        where_active(g, s, &y, x)
    })
}

/// `L_t X R_t`: gather the per-level operators by t and apply them to every channel.
fn separable(g: &mut GraphBuilder, ops: &Operators, x: &str, t: &str) -> String {
    let (levels, h, _) = ops.left.dim();
    let w = ops.right.dim().1;
    let left = g.weight(
        "degradation.left",
        ops.left.as_slice().expect("contiguous"),
        &[levels, h, h],
    );
    let right = g.weight(
        "degradation.right",
        ops.right.as_slice().expect("contiguous"),
        &[levels, w, w],
    );
    g.scoped("degradation", |g| {
        let axes = g.const_i64(&[1], &[1]);
        let l = g.op1("Gather", &[&left, t], vec![("axis", Attr::Int(0))]);
        let l = g.op1("Unsqueeze", &[&l, &axes], vec![]);
        let r = g.op1("Gather", &[&right, t], vec![("axis", Attr::Int(0))]);
        let r = g.op1("Unsqueeze", &[&r, &axes], vec![]);
        let y = g.op1("MatMul", &[&l, x], vec![]);
        let y = g.op1("MatMul", &[&y, &r], vec![]);
        if ops.clip {
            // Levels >= 1 clipped to [-1, 1]; level 0 (identity) passes through.
            let (lo, hi) = (g.const_f32(&[-1.0], &[]), g.const_f32(&[1.0], &[]));
            let clipped = g.op1("Clip", &[&y, &lo, &hi], vec![]);
            where_active(g, t, &clipped, x)
        } else {
            y
        }
    })
}

/// `x * mask(t, centre)`: gather the level's mask canvas by t, crop it at each image's centre
/// (two GatherElements with per-image row and column indices), multiply every channel.
fn masked(g: &mut GraphBuilder, m: &Masks, x: &str, t: &str, params: Option<&str>) -> String {
    let (levels, ch, cw) = m.canvas.dim();
    let (h, w) = (m.height as i64, m.width as i64);
    let canvas = g.weight(
        "degradation.masks",
        m.canvas.as_slice().expect("contiguous"),
        &[levels, ch, cw],
    );
    g.scoped("degradation", |g| {
        let levelled = g.op1("Gather", &[&canvas, t], vec![("axis", Attr::Int(0))]); // [B, 2H, 2W]
        let mask = match (m.centre, params) {
            (Centre::Random, Some(p)) => {
                // offsets (H-1-cy, W-1-cx) as int64, [B, 2]
                let c = g.op1(
                    "Cast",
                    &[p],
                    vec![("to", Attr::Int(DataType::INT64 as i64))],
                );
                let last = g.const_i64(&[h - 1, w - 1], &[1, 2]);
                let off = g.op1("Sub", &[&last, &c], vec![]);
                let ax1 = g.const_i64(&[1], &[1]);
                let ax2 = g.const_i64(&[2], &[1]);
                let slice = |g: &mut GraphBuilder, k: i64| {
                    let st = g.const_i64(&[k], &[1]);
                    let en = g.const_i64(&[k + 1], &[1]);
                    let o = g.op1("Slice", &[&off, &st, &en, &ax1], vec![]); // [B, 1]
                    g.op1("Unsqueeze", &[&o, &ax2], vec![]) // [B, 1, 1]
                };
                let (oy, ox) = (slice(g, 0), slice(g, 1));
                let rows_r: Vec<i64> = (0..h).collect();
                let rows_r = g.const_i64(&rows_r, &[1, h, 1]);
                let rows = g.op1("Add", &[&oy, &rows_r], vec![]); // [B, H, 1]
                let rows_shape = g.const_i64(&[1, h, cw as i64], &[3]);
                let rows = g.op1("Expand", &[&rows, &rows_shape], vec![]);
                let cropped = g.op1(
                    "GatherElements",
                    &[&levelled, &rows],
                    vec![("axis", Attr::Int(1))],
                ); // [B, H, 2W]
                let cols_r: Vec<i64> = (0..w).collect();
                let cols_r = g.const_i64(&cols_r, &[1, 1, w]);
                let cols = g.op1("Add", &[&ox, &cols_r], vec![]); // [B, 1, W]
                let cols_shape = g.const_i64(&[1, h, w], &[3]);
                let cols = g.op1("Expand", &[&cols, &cols_shape], vec![]);
                g.op1(
                    "GatherElements",
                    &[&cropped, &cols],
                    vec![("axis", Attr::Int(2))],
                ) // [B, H, W]
            }
            _ => {
                let [cy, cx] = m.fixed_centre();
                let (oy, ox) = (h - 1 - cy, w - 1 - cx);
                let st = g.const_i64(&[oy, ox], &[2]);
                let en = g.const_i64(&[oy + h, ox + w], &[2]);
                let axes = g.const_i64(&[1, 2], &[2]);
                g.op1("Slice", &[&levelled, &st, &en, &axes], vec![])
            }
        };
        let ax = g.const_i64(&[1], &[1]);
        let mask = g.op1("Unsqueeze", &[&mask, &ax], vec![]); // [B, 1, H, W]
        g.op1("Mul", &[x, &mask], vec![])
    })
}

/// The per-image parameter input `params` `[B, P]`, for kinds that have parameters.
fn params_input(g: &mut GraphBuilder, deg: &Prepared) -> Option<String> {
    let p = deg.degradation.param_count();
    (p > 0).then(|| {
        g.input(
            io::PARAMS,
            DataType::FLOAT,
            &[Dim::Named("batch"), Dim::Fixed(p as i64)],
        )
    })
}

fn image_dims(c: usize, h: usize, w: usize) -> Vec<Dim> {
    vec![
        Dim::Named("batch"),
        Dim::Fixed(c as i64),
        Dim::Fixed(h as i64),
        Dim::Fixed(w as i64),
    ]
}

/// The restorer graph: `x [B,C,H,W] f32, t [B] i64 -> x0_hat [B,C,H,W]`.
pub fn restorer_graph<B: Backend>(g: &mut GraphBuilder, net: &UNet<B>, chw: (usize, usize, usize)) {
    let (c, h, w) = chw;
    let x = g.input(io::X, DataType::FLOAT, &image_dims(c, h, w));
    let t = g.input(io::T, DataType::INT64, &[Dim::Named("batch")]);
    let tf = g.op1(
        "Cast",
        &[&t],
        vec![("to", Attr::Int(DataType::FLOAT as i64))],
    );
    let y = unet(g, net, &x, &tf, (h, w));
    g.output(&y, io::X0_HAT, DataType::FLOAT, &image_dims(c, h, w));
}

/// The degradation graph: `x [B,C,H,W] f32, t [B] i64 (, params [B,P] f32) -> y = D(x, t)`.
pub fn degradation_graph(g: &mut GraphBuilder, deg: &Prepared, chw: (usize, usize, usize)) {
    let (c, h, w) = chw;
    let x = g.input(io::X, DataType::FLOAT, &image_dims(c, h, w));
    let t = g.input(io::T, DataType::INT64, &[Dim::Named("batch")]);
    let params = params_input(g, deg);
    let y = degradation(g, deg, &x, &t, params.as_deref());
    g.output(&y, io::Y, DataType::FLOAT, &image_dims(c, h, w));
}

/// The fused sampling step: `x_s [B,C,H,W], s [B], s_prev [B] (, params [B,P]) -> x0_hat,
/// x_next (Algorithm 2), x_next_alg1` (and `x_next_est`, the estimated-noise step, for mixes).
/// `s_prev` is the level to step to (`s - 1` for the full schedule, lower to skip levels). Samples with s = 0 pass through unchanged, so one batch can
/// hold different levels.
pub fn step_graph<B: Backend>(
    g: &mut GraphBuilder,
    net: &UNet<B>,
    deg: &Prepared,
    chw: (usize, usize, usize),
) {
    let (c, h, w) = chw;
    let dims = image_dims(c, h, w);
    let x = g.input(io::X_S, DataType::FLOAT, &dims);
    let s = g.input(io::S, DataType::INT64, &[Dim::Named("batch")]);
    let s_prev = g.input(io::S_PREV, DataType::INT64, &[Dim::Named("batch")]);
    let params = params_input(g, deg);
    let sf = g.op1(
        "Cast",
        &[&s],
        vec![("to", Attr::Int(DataType::FLOAT as i64))],
    );
    let x0 = unet(g, net, &x, &sf, (h, w));
    let d_s = degradation(g, deg, &x0, &s, params.as_deref());
    let d_prev = degradation(g, deg, &x0, &s_prev, params.as_deref());
    let alg2 = g.op1("Sub", &[&x, &d_s], vec![]);
    let alg2 = g.op1("Add", &[&alg2, &d_prev], vec![]);
    // Where(s > 0) per sample: broadcast the [B] mask to [B, 1, 1, 1].
    let zero = g.const_i64(&[0], &[]);
    let active = g.op1("Greater", &[&s, &zero], vec![]);
    let mshape = g.const_i64(&[-1, 1, 1, 1], &[4]);
    let active = g.op1("Reshape", &[&active, &mshape], vec![]);
    let alg2 = g.op1("Where", &[&active, &alg2, &x], vec![]);
    let alg1 = g.op1("Where", &[&active, &d_prev, &x], vec![]);
    g.output(&x0, io::X0_HAT, DataType::FLOAT, &dims);
    g.output(&alg2, io::X_NEXT, DataType::FLOAT, &dims);
    g.output(&alg1, io::X_NEXT_ALG1, DataType::FLOAT, &dims);
    if let PreparedKind::Mix(m) = &deg.kind {
        let est = estimated_step(g, m, &x, &x0, &s, &s_prev);
        g.output(&est, io::X_NEXT_EST, DataType::FLOAT, &dims);
    }
}
