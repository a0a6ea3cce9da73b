//! The custom backward passes against Burn's own autodiff, on random inputs: odd and even sizes,
//! batch > 1, several channel counts, every convolution shape the U-Net uses and a few more.

use burn::backend::{Autodiff, Flex};
use burn::prelude::*;
use burn::tensor::ops::{ActivationOps, ConvOptions, ConvTransposeOptions, FloatTensor};

use super::*;

type AD = Autodiff<Flex>;

/// Uniform values in [-1, 1) from a seeded generator of our own (the backend's RNG is global and
/// tests run in parallel).
fn random<const D: usize>(shape: [usize; D], seed: u64) -> TensorData {
    use rand::{Rng, SeedableRng, rngs::StdRng};
    let mut rng = StdRng::seed_from_u64(seed);
    let n = shape.iter().product();
    let v: Vec<f32> = (0..n).map(|_| rng.random_range(-1.0f32..1.0)).collect();
    TensorData::new(v, shape)
}

fn leaf<const D: usize>(d: &TensorData) -> Tensor<AD, D> {
    Tensor::from_data(d.clone(), &Default::default()).require_grad()
}

fn values<const D: usize>(t: Tensor<Flex, D>) -> Vec<f32> {
    t.into_data().to_vec::<f32>().expect("f32")
}

/// max |a - b| relative to max |b|.
fn rel_err(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    let scale = b.iter().fold(0f32, |m, v| m.max(v.abs())).max(1e-6);
    a.iter().zip(b).fold(0f32, |m, (x, y)| m.max((x - y).abs())) / scale
}

struct Grads {
    y: Vec<f32>,
    x: Vec<f32>,
    w: Vec<f32>,
    b: Option<Vec<f32>>,
}

/// Forward, then backward of `sum(y * upstream)`, for a conv-like `f(x, w, b)`.
fn grads(
    x: &TensorData,
    w: &TensorData,
    b: Option<&TensorData>,
    up_seed: u64,
    f: impl Fn(Tensor<AD, 4>, Tensor<AD, 4>, Option<Tensor<AD, 1>>) -> Tensor<AD, 4>,
) -> Grads {
    let (x, w) = (leaf::<4>(x), leaf::<4>(w));
    let b = b.map(leaf::<1>);
    let y = f(x.clone(), w.clone(), b.clone());
    let up = Tensor::<AD, 4>::from_data(random(y.dims(), up_seed), &Default::default());
    let g = (y.clone() * up).sum().backward();
    Grads {
        y: values(y.inner()),
        x: values(x.grad(&g).expect("x grad")),
        w: values(w.grad(&g).expect("w grad")),
        b: b.map(|b| values(b.grad(&g).expect("b grad"))),
    }
}

fn assert_close(name: &str, got: &Grads, want: &Grads) {
    let errs = [
        ("output", rel_err(&got.y, &want.y)),
        ("input grad", rel_err(&got.x, &want.x)),
        ("weight grad", rel_err(&got.w, &want.w)),
        (
            "bias grad",
            match (&got.b, &want.b) {
                (Some(a), Some(b)) => rel_err(a, b),
                _ => 0.0,
            },
        ),
    ];
    for (what, e) in errs {
        assert!(e <= 1e-4, "{name}: {what} differs by {e:.2e} (relative)");
    }
}

#[test]
fn conv2d_gradients_equal_burns_autodiff() {
    // (batch, c_in, c_out, groups, h, w, kernel, stride, padding, bias)
    let cases = [
        (3, 4, 6, 1, 9, 8, [3, 3], [1, 1], [1, 1], true), // conv1/conv2 of a ConvNeXt block
        (2, 5, 5, 5, 11, 10, [7, 7], [1, 1], [3, 3], true), // depthwise 7x7
        (2, 3, 7, 1, 8, 7, [1, 1], [1, 1], [0, 0], false), // to_qkv (no bias)
        (2, 6, 4, 1, 7, 7, [1, 1], [1, 1], [0, 0], true), // residual / to_out / final 1x1
        (3, 4, 4, 1, 8, 6, [4, 4], [2, 2], [1, 1], true), // down-sampling 4x4 stride 2
        (2, 3, 5, 1, 9, 7, [4, 4], [2, 2], [1, 1], true), // odd sizes, stride 2
        (2, 2, 3, 1, 6, 9, [3, 2], [2, 1], [0, 1], true), // anisotropic
        (2, 4, 4, 2, 6, 6, [3, 3], [1, 1], [1, 1], true), // grouped (generic path)
    ];
    for (i, &(b, ci, co, g, h, w, k, s, p, bias)) in cases.iter().enumerate() {
        let x = random([b, ci, h, w], 10 + i as u64);
        let wt = random([co, ci / g, k[0], k[1]], 20 + i as u64);
        let bs = bias.then(|| random([co], 30 + i as u64));
        let opts = ConvOptions::new(s, p, [1, 1], g);
        let want = grads(&x, &wt, bs.as_ref(), 40, |x, w, b| {
            burn::tensor::module::conv2d(x, w, b, opts.clone())
        });
        let got = grads(&x, &wt, bs.as_ref(), 40, |x, w, b| {
            conv2d(x, w, b, opts.clone())
        });
        assert_close(&format!("conv2d case {i}"), &got, &want);
    }
}

#[test]
fn conv_transpose2d_gradients_equal_burns_autodiff() {
    // (batch, c_in, c_out, h, w, kernel, stride, padding, padding_out, bias)
    let cases = [
        (2, 4, 4, 7, 7, [4, 4], [2, 2], [1, 1], [0, 0], true), // up-sampling 4x4 stride 2
        (3, 3, 5, 6, 5, [4, 4], [2, 2], [1, 1], [0, 0], false),
        (2, 2, 3, 5, 4, [3, 3], [2, 2], [1, 1], [1, 1], true),
        (2, 3, 2, 4, 6, [3, 3], [1, 1], [1, 1], [0, 0], true),
    ];
    for (i, &(b, ci, co, h, w, k, s, p, po, bias)) in cases.iter().enumerate() {
        let x = random([b, ci, h, w], 50 + i as u64);
        let wt = random([ci, co, k[0], k[1]], 60 + i as u64);
        let bs = bias.then(|| random([co], 70 + i as u64));
        let opts = ConvTransposeOptions::new(s, p, po, [1, 1], 1);
        let want = grads(&x, &wt, bs.as_ref(), 80, |x, w, b| {
            burn::tensor::module::conv_transpose2d(x, w, b, opts.clone())
        });
        let got = grads(&x, &wt, bs.as_ref(), 80, |x, w, b| {
            conv_transpose2d(x, w, b, opts.clone())
        });
        assert_close(&format!("conv_transpose2d case {i}"), &got, &want);
    }
}

/// The generic compositions (what the CUDA backend runs) against the CPU kernels.
#[test]
fn generic_backward_equals_the_cpu_kernels() {
    let dev = Default::default();
    for (i, &(b, c, co, g, h, w, k, s, p)) in [
        (2, 5, 5, 5, 9, 8, [7, 7], [1, 1], [3, 3]),
        (3, 4, 6, 1, 7, 8, [3, 3], [1, 1], [1, 1]),
        (2, 4, 4, 1, 8, 7, [4, 4], [2, 2], [1, 1]),
    ]
    .iter()
    .enumerate()
    {
        let opts = ConvOptions::new(s, p, [1, 1], g);
        let x = Tensor::<Flex, 4>::from_data(random([b, c, h, w], 90 + i as u64), &dev);
        let wt = Tensor::<Flex, 4>::from_data(random([co, c / g, k[0], k[1]], 91), &dev);
        let y = burn::tensor::module::conv2d(x.clone(), wt.clone(), None, opts.clone());
        let gr = Tensor::<Flex, 4>::from_data(random(y.dims(), 92), &dev);
        let wshape = wt.dims();
        let (xp, wp, gp) = (prim(x), prim(wt), prim(gr));
        let pairs = [
            (
                generic::conv2d_input_grad::<Flex>(wp.clone(), gp.clone(), [h, w], &opts),
                Flex::conv2d_input_grad(wp.clone(), gp.clone(), [h, w], &opts),
            ),
            (
                generic::conv2d_weight_grad::<Flex>(xp.clone(), gp.clone(), wshape, &opts),
                Flex::conv2d_weight_grad(xp.clone(), gp.clone(), wshape, &opts),
            ),
        ];
        for (j, (a, bb)) in pairs.into_iter().enumerate() {
            let (a, bb) = (values(tensor::<Flex, 4>(a)), values(tensor::<Flex, 4>(bb)));
            let e = rel_err(&a, &bb);
            assert!(e <= 1e-4, "case {i}, gradient {j}: {e:.2e}");
        }
    }
}

/// Max relative difference of the output and of every input gradient of `f` and `g` applied to
/// the same leaves (`sum(y * upstream)` backward).
fn compare_ops<const D: usize>(
    name: &str,
    inputs: &[(Vec<usize>, u64)],
    f: impl Fn(&[Tensor<AD, D>]) -> Tensor<AD, D>,
    g: impl Fn(&[Tensor<AD, D>]) -> Tensor<AD, D>,
) {
    let data: Vec<TensorData> = inputs
        .iter()
        .map(|(shape, seed)| random([shape.iter().product::<usize>()], *seed))
        .collect();
    let run = |op: &dyn Fn(&[Tensor<AD, D>]) -> Tensor<AD, D>| {
        let leaves: Vec<Tensor<AD, D>> = data
            .iter()
            .zip(inputs)
            .map(|(d, (shape, _))| {
                let t = Tensor::<AD, 1>::from_data(d.clone(), &Default::default());
                let s: [usize; D] = std::array::from_fn(|i| shape.get(i).copied().unwrap_or(1));
                t.reshape(s).detach().require_grad()
            })
            .collect();
        let y = op(&leaves);
        let up = Tensor::<AD, D>::from_data(random(y.dims(), 99), &Default::default());
        let gr = (y.clone() * up).sum().backward();
        let mut out = vec![values(y.inner())];
        for l in &leaves {
            out.push(values(l.grad(&gr).expect("gradient")));
        }
        out
    };
    let (a, b) = (run(&f), run(&g));
    for (i, (x, y)) in a.iter().zip(&b).enumerate() {
        let e = rel_err(x, y);
        let what = if i == 0 {
            "output".to_string()
        } else {
            format!("gradient {i}")
        };
        assert!(e <= 1e-4, "{name}: {what} differs by {e:.2e} (relative)");
    }
}

#[test]
fn fused_ops_equal_burns_composition() {
    for (b, c, h, w) in [(2, 3, 5, 4), (3, 16, 7, 7), (2, 5, 6, 9)] {
        let eps = 1e-5;
        compare_ops::<4>(
            &format!("channel_layer_norm {b}x{c}x{h}x{w}"),
            &[
                (vec![b, c, h, w], 1),
                (vec![1, c, 1, 1], 2),
                (vec![1, c, 1, 1], 3),
            ],
            |t| channel_layer_norm(t[0].clone(), t[1].clone(), t[2].clone(), eps),
            |t| {
                let x = t[0].clone();
                let mean = x.clone().mean_dim(1);
                let centred = x - mean;
                let var = centred.clone().powi_scalar(2).mean_dim(1);
                centred / (var + eps).sqrt() * t[1].clone() + t[2].clone()
            },
        );
        compare_ops::<4>(
            &format!("add_channel_bias {b}x{c}x{h}x{w}"),
            &[(vec![b, c, h, w], 4), (vec![b, c, 1, 1], 5)],
            |t| add_channel_bias(t[0].clone(), t[1].clone().reshape([b, c])),
            |t| t[0].clone() + t[1].clone(),
        );
        compare_ops::<4>(
            &format!("softmax_last {b}x{c}x{h}x{w}"),
            &[(vec![b, c, h, w], 6)],
            |t| softmax_last(t[0].clone()),
            |t| burn::tensor::activation::softmax(t[0].clone(), 3),
        );
        compare_ops::<4>(
            &format!("gelu {b}x{c}x{h}x{w}"),
            &[(vec![b, c, h, w], 7)],
            |t| gelu(t[0].clone()),
            |t| burn::tensor::activation::gelu(t[0].clone()),
        );
    }
}

/// The generic compositions of the fused ops (the CUDA path) against the CPU kernels.
#[test]
fn generic_fused_ops_equal_the_cpu_kernels() {
    let dev = Default::default();
    let (b, c, h, w) = (3, 6, 5, 7);
    let x = prim(Tensor::<Flex, 4>::from_data(random([b, c, h, w], 1), &dev));
    let gain = prim(Tensor::<Flex, 4>::from_data(random([1, c, 1, 1], 2), &dev));
    let bias = prim(Tensor::<Flex, 4>::from_data(random([1, c, 1, 1], 3), &dev));
    let g = prim(Tensor::<Flex, 4>::from_data(random([b, c, h, w], 4), &dev));
    let v = |p: FloatTensor<Flex>| values(tensor::<Flex, 4>(p));
    let flex = Flex::layer_norm_forward(x.clone(), gain.clone(), bias.clone(), 1e-5);
    let composed = generic::layer_norm_forward::<Flex>(x.clone(), gain.clone(), bias.clone(), 1e-5);
    assert!(rel_err(&v(flex.y.clone()), &v(composed.y.clone())) <= 1e-5);
    assert!(rel_err(&v(flex.rstd.clone()), &v(composed.rstd.clone())) <= 1e-5);
    let a = Flex::layer_norm_backward(g.clone(), flex, gain.clone());
    let bb = generic::layer_norm_backward::<Flex>(g.clone(), composed, gain.clone());
    for (i, (p, q)) in a.into_iter().zip(bb).enumerate() {
        let e = rel_err(&v(p), &v(q));
        assert!(e <= 1e-4, "layer norm gradient {i}: {e:.2e}");
    }
    let sums = |p: FloatTensor<Flex>| {
        Tensor::<Flex, 2>::from_primitive(burn::tensor::TensorPrimitive::Float(p))
            .into_data()
            .to_vec::<f32>()
            .expect("f32")
    };
    let e = rel_err(
        &sums(Flex::plane_sums(g.clone())),
        &sums(generic::plane_sums::<Flex>(g.clone())),
    );
    assert!(e <= 1e-5, "plane sums: {e:.2e}");
    let y = Flex::softmax(x.clone(), 3);
    let e = rel_err(
        &v(Flex::softmax_last_backward(y.clone(), g.clone())),
        &v(generic::softmax_last_backward::<Flex>(y, g.clone())),
    );
    assert!(e <= 1e-5, "softmax backward: {e:.2e}");
}

/// The CPU kernels give the same bits whatever the number of threads (exact resume depends on it).
#[test]
fn cpu_gradients_do_not_depend_on_the_thread_count() {
    let run = || {
        let (b, c) = (9, 6);
        let x = random([b, c, 10, 9], 1);
        let w = random([8, c, 3, 3], 2);
        let dw = random([c, 1, 7, 7], 3);
        let gain = random([1, c, 1, 1], 4);
        let bias = random([1, c, 1, 1], 5);
        let (xl, wl, dwl) = (leaf::<4>(&x), leaf::<4>(&w), leaf::<4>(&dw));
        let (gl, bl) = (leaf::<4>(&gain), leaf::<4>(&bias));
        let h = conv2d(
            xl.clone(),
            dwl.clone(),
            None,
            ConvOptions::new([1, 1], [3, 3], [1, 1], c),
        );
        let h = channel_layer_norm(h, gl.clone(), bl.clone(), 1e-5);
        let y = conv2d(
            h,
            wl.clone(),
            None,
            ConvOptions::new([1, 1], [1, 1], [1, 1], 1),
        );
        let g = gelu(y).sum().backward();
        [&xl, &wl, &dwl, &gl, &bl].map(|t| values(t.grad(&g).expect("grad")))
    };
    let pool = |n| {
        rayon::ThreadPoolBuilder::new()
            .num_threads(n)
            .build()
            .expect("pool")
    };
    let one = pool(1).install(run);
    let three = pool(3).install(run);
    assert_eq!(one, three);
}
