//! What the blocks' lowerings to ONNX share: weights taken from Burn parameters, and the nodes of
//! Burn's own modules (convolutions, linear layers, GELU). Each block's `lower` (beside its
//! `forward`) writes the block's nodes with these; graphs work at any image size.

use burn::module::Param;
use burn::nn::conv::{Conv2d, ConvTranspose2d};
use burn::nn::{Linear, PaddingConfig2d};
use burn::prelude::*;
use cold_core::onnx::{Attr, GraphBuilder};

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

pub fn weight<B: Backend, const D: usize>(
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

pub fn conv<B: Backend>(g: &mut GraphBuilder, name: &str, c: &Conv2d<B>, x: &str) -> String {
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

pub(crate) fn conv_transpose<B: Backend>(
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
pub fn linear<B: Backend>(g: &mut GraphBuilder, name: &str, l: &Linear<B>, x: &str) -> String {
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

pub fn gelu(g: &mut GraphBuilder, x: &str) -> String {
    g.op1("Gelu", &[x], vec![("approximate", Attr::Str("none"))])
}
