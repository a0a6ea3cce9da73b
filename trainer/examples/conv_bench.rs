//! Times each convolution kernel of the trainer at the shapes of the compact U-Net (batch 16,
//! 28x28): forward, input gradient, weight gradient. `cargo run --release --example conv_bench`.

use std::time::Instant;

use burn::backend::Flex;
use burn::prelude::*;
use burn::tensor::Distribution;
use burn::tensor::ops::ConvOptions;
use cold_trainer::ops::TrainBackend;

fn time<F: FnMut()>(mut f: F) -> f64 {
    f();
    let n = 20;
    let t0 = Instant::now();
    for _ in 0..n {
        f();
    }
    t0.elapsed().as_secs_f64() / n as f64
}

fn main() {
    let dev = Default::default();
    let b = 16;
    // (name, c_in, c_out, groups, side, kernel, stride, pad)
    let cases = [
        ("3x3 16->32 @28", 16, 32, 1, 28, 3, 1, 1),
        ("3x3 32->16 @28", 32, 16, 1, 28, 3, 1, 1),
        ("3x3 32->64 @14", 32, 64, 1, 14, 3, 1, 1),
        ("3x3 64->32 @14", 64, 32, 1, 14, 3, 1, 1),
        ("3x3 64->128 @7", 64, 128, 1, 7, 3, 1, 1),
        ("3x3 128->64 @7", 128, 64, 1, 7, 3, 1, 1),
        ("dw7 16 @28", 16, 16, 16, 28, 7, 1, 3),
        ("dw7 64 @7", 64, 64, 64, 7, 7, 1, 3),
        ("1x1 16->96 @28", 16, 96, 1, 28, 1, 1, 0),
        ("down4 16 @28", 16, 16, 1, 28, 4, 2, 1),
    ];
    println!(
        "{:18} {:>9} {:>9} {:>9}   GFLOP/s fwd/in/w",
        "case", "fwd ms", "in ms", "w ms"
    );
    let filter = std::env::args().nth(1).unwrap_or_default();
    for (name, ci, co, g, side, k, s, p) in cases {
        if !name.contains(&filter) {
            continue;
        }
        let x = Tensor::<Flex, 4>::random([b, ci, side, side], Distribution::Default, &dev);
        let w = Tensor::<Flex, 4>::random([co, ci / g, k, k], Distribution::Default, &dev);
        let opts = ConvOptions::new([s, s], [p, p], [1, 1], g);
        let y = burn::tensor::module::conv2d(x.clone(), w.clone(), None, opts.clone());
        let gr = Tensor::<Flex, 4>::random(y.dims(), Distribution::Default, &dev);
        let [_, _, oh, ow] = y.dims();
        let flop = 2.0 * (b * co * oh * ow * (ci / g) * k * k) as f64;
        let (xp, wp, gp) = (
            x.into_primitive().tensor(),
            w.into_primitive().tensor(),
            gr.into_primitive().tensor(),
        );
        let wshape = [co, ci / g, k, k];
        let tf = time(|| {
            let _ = Flex::train_conv2d(xp.clone(), wp.clone(), None, opts.clone());
        });
        let tflex = time(|| {
            let _ = <Flex as burn::tensor::ops::ModuleOps<Flex>>::conv2d(
                xp.clone(),
                wp.clone(),
                None,
                opts.clone(),
            );
        });
        let ti = time(|| {
            let _ = Flex::conv2d_input_grad(wp.clone(), gp.clone(), [side, side], &opts);
        });
        let tw = time(|| {
            let _ = Flex::conv2d_weight_grad(xp.clone(), gp.clone(), wshape, &opts);
        });
        println!(
            "{name:18} {:9.3} {:9.3} {:9.3}   {:.1} / {:.1} / {:.1}   (Burn's own forward {:.3} ms)",
            tf * 1e3,
            ti * 1e3,
            tw * 1e3,
            flop / tf / 1e9,
            flop / ti / 1e9,
            flop / tw / 1e9,
            tflex * 1e3
        );
    }
}
