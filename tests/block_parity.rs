//! Each block of the network lowers itself to ONNX nodes (its `lower`, beside its `forward`):
//! every block's graph, run by ONNX Runtime on random inputs at two image sizes (one
//! non-square), agrees with the Burn forward it came from. The whole network's graphs are checked
//! in `export_parity.rs`.

use burn::prelude::*;
use cold_core::onnx::{self, Dim, GraphBuilder, WeightStore};
use cold_runtime::ortlib;
use cold_testkit::{max_abs_diff, random_images};
use cold_trainer::CpuBackend as B;
use cold_trainer::model::attention::LinearAttentionConfig;
use cold_trainer::model::convnext::ConvNextBlockConfig;
use cold_trainer::model::embedding::TimeMlpConfig;
use cold_trainer::model::norm::ChannelLayerNormConfig;
use cold_trainer::model::{InitUNet, UNetConfig};
use cold_trainer::tensor_io::{to_array, to_tensor};
use ndarray::{Array2, Array4, ArrayD, Ix4};
use onnx_protobuf::tensor_proto::DataType;
use ort::session::Session;
use ort::value::TensorRef;
use protobuf::Message;

fn device() -> burn::tensor::Device<B> {
    Default::default()
}

/// A graph with inputs `x` `[B, C, H, W]` (symbolic B, H, W) and, when `temb` is given, a
/// `[B, temb]` input `temb`; `body` adds the block's nodes. Written with its weights to a
/// temporary folder and opened in ONNX Runtime.
fn block_session(
    dir: &std::path::Path,
    channels: usize,
    temb: Option<usize>,
    body: impl FnOnce(&mut GraphBuilder, &str, Option<&str>) -> String,
) -> Session {
    let mut weights = WeightStore::new("w.bin");
    let graph = {
        let mut g = GraphBuilder::new("block", &mut weights);
        let dims = GraphBuilder::image_dims(channels);
        let x = g.input("x", DataType::FLOAT, &dims);
        let te = temb.map(|d| {
            g.input(
                "temb",
                DataType::FLOAT,
                &[Dim::Named("batch"), Dim::Fixed(d as i64)],
            )
        });
        let y = body(&mut g, &x, te.as_deref());
        g.output(
            &y,
            "y",
            DataType::FLOAT,
            &[
                Dim::Named("batch"),
                Dim::Named("c_out"),
                Dim::Named("h_out"),
                Dim::Named("w_out"),
            ],
        );
        g.finish()
    };
    let model = onnx::model(graph, "block").write_to_bytes().expect("onnx");
    std::fs::write(dir.join("block.onnx"), model).expect("write");
    std::fs::write(dir.join("w.bin"), &weights.bytes).expect("write");
    let env = ortlib::environment().expect("ONNX Runtime");
    Session::builder(&env)
        .expect("builder")
        .commit_from_file(dir.join("block.onnx"))
        .expect("session")
}

fn run(session: &mut Session, x: &Array4<f32>, temb: Option<&Array2<f32>>) -> Array4<f32> {
    let mut inputs = ort::inputs! { "x" => TensorRef::from_array_view(x.view()).expect("x") };
    if let Some(t) = temb {
        inputs.push((
            "temb".into(),
            TensorRef::from_array_view(t.view()).expect("t").into(),
        ));
    }
    let out = session.run(inputs).expect("run");
    let y: ArrayD<f32> = out["y"].try_extract_array::<f32>().expect("f32").to_owned();
    y.into_dimensionality::<Ix4>().expect("4-D")
}

const SIZES: [(usize, usize); 2] = [(8, 8), (6, 10)];

#[test]
fn the_channel_layer_norm_lowers_to_the_same_values() {
    B::seed(&device(), 1);
    let mut norm = ChannelLayerNormConfig::new(6).init::<B>(&device());
    // Not the initial gain and bias of 1 and 0.
    norm.gain = burn::module::Param::from_tensor(Tensor::random(
        [1, 6, 1, 1],
        burn::tensor::Distribution::Default,
        &device(),
    ));
    let tmp = tempfile::tempdir().expect("tmp");
    let mut s = block_session(tmp.path(), 6, None, |g, x, _| norm.lower(g, "norm", x));
    for (i, (h, w)) in SIZES.into_iter().enumerate() {
        let x = random_images((2, 6, h, w), 10 + i as u64);
        let want = to_array(norm.forward(to_tensor::<B>(&x, &device())));
        let err = max_abs_diff(&run(&mut s, &x, None), &want);
        assert!(err <= 1e-5, "{h}x{w}: {err}");
    }
}

#[test]
fn convnext_blocks_lower_to_the_same_values() {
    B::seed(&device(), 2);
    let with_time = ConvNextBlockConfig::new(4, 8)
        .with_time_dim(Some(5))
        .init::<B>(&device());
    let plain = ConvNextBlockConfig::new(8, 8).init::<B>(&device());
    let tmp = tempfile::tempdir().expect("tmp");
    let mut s = block_session(tmp.path(), 4, Some(5), |g, x, te| {
        let te = cold_trainer::model::lower::gelu(g, te.expect("temb"));
        with_time.lower(g, "block", x, Some(&te))
    });
    let tmp2 = tempfile::tempdir().expect("tmp");
    let mut s2 = block_session(tmp2.path(), 8, None, |g, x, _| {
        plain.lower(g, "block", x, None)
    });
    for (i, (h, w)) in SIZES.into_iter().enumerate() {
        let x = random_images((2, 4, h, w), 20 + i as u64);
        let temb = random_images((1, 1, 2, 5), 30 + i as u64)
            .into_shape_with_order((2, 5))
            .expect("temb");
        let t = Tensor::<B, 2>::from_data(
            TensorData::new(temb.iter().copied().collect::<Vec<_>>(), [2, 5]),
            &device(),
        );
        let want = to_array(with_time.forward(to_tensor::<B>(&x, &device()), Some(t)));
        let err = max_abs_diff(&run(&mut s, &x, Some(&temb)), &want);
        assert!(err <= 1e-4, "with time, {h}x{w}: {err}");
        let x = random_images((2, 8, h, w), 40 + i as u64);
        let want = to_array(plain.forward(to_tensor::<B>(&x, &device()), None));
        let err = max_abs_diff(&run(&mut s2, &x, None), &want);
        assert!(err <= 1e-4, "without time, {h}x{w}: {err}");
    }
}

#[test]
fn linear_attention_lowers_to_the_same_values_at_any_size() {
    B::seed(&device(), 3);
    let attn = LinearAttentionConfig::new(6)
        .with_heads(2)
        .with_dim_head(4)
        .init::<B>(&device());
    let tmp = tempfile::tempdir().expect("tmp");
    let mut s = block_session(tmp.path(), 6, None, |g, x, _| {
        let hw = g.image_sides(x);
        attn.lower(g, "attn", x, &hw)
    });
    for (i, (h, w)) in SIZES.into_iter().chain([(3, 17)]).enumerate() {
        let x = random_images((3, 6, h, w), 50 + i as u64);
        let want = to_array(attn.forward(to_tensor::<B>(&x, &device())));
        let err = max_abs_diff(&run(&mut s, &x, None), &want);
        assert!(err <= 1e-5, "{h}x{w}: {err}");
    }
}

#[test]
fn the_time_mlp_lowers_to_the_same_values() {
    B::seed(&device(), 4);
    let mlp = TimeMlpConfig::new(8).init::<B>(&device());
    // The levels arrive as a [B, 1, 1, 1] image and are flattened to [B] in the graph.
    let tmp = tempfile::tempdir().expect("tmp");
    let mut s = block_session(tmp.path(), 1, None, |g, x, _| {
        let flat = g.const_i64(&[-1], &[1]);
        let t = g.op1("Reshape", &[x, &flat], vec![]);
        let e = mlp.lower(g, &t);
        let shape = g.const_i64(&[0, 8, 1, 1], &[4]);
        g.op1("Reshape", &[&e, &shape], vec![])
    });
    let levels = [0.0f32, 1.0, 7.0, 20.0];
    let x = Array4::from_shape_vec((4, 1, 1, 1), levels.to_vec()).expect("levels");
    let want = mlp
        .forward(Tensor::<B, 1>::from_floats(levels, &device()))
        .into_data()
        .to_vec::<f32>()
        .expect("f32");
    let got = run(&mut s, &x, None);
    let err = max_abs_diff(got.iter(), want.iter());
    assert!(err <= 1e-5, "{err}");
}

#[test]
fn the_whole_unet_lowers_to_the_same_values_at_sizes_it_was_not_built_for() {
    B::seed(&device(), 5);
    let cfg = UNetConfig::new(8, vec![1, 2, 4], 3)
        .with_heads(2)
        .with_dim_head(4);
    let net = cfg.init::<B>(&device());
    let tmp = tempfile::tempdir().expect("tmp");
    let mut s = block_session(tmp.path(), 3, None, |g, x, _| {
        let t = g.const_f32(&[3.0, 11.0], &[2]);
        net.lower(g, x, &t, None)
    });
    for (i, (h, w)) in [(12, 16), (20, 8)].into_iter().enumerate() {
        let x = random_images((2, 3, h, w), 60 + i as u64);
        let t = Tensor::<B, 1>::from_floats([3.0, 11.0], &device());
        let want = to_array(net.forward(to_tensor::<B>(&x, &device()), t));
        let err = max_abs_diff(&run(&mut s, &x, None), &want);
        assert!(err <= 1e-4, "{h}x{w}: {err}");
    }
}

#[test]
fn a_class_conditioned_unet_lowers_to_the_same_values_with_each_class() {
    B::seed(&device(), 6);
    let names: Vec<String> = ["a", "b", "c"].iter().map(|s| s.to_string()).collect();
    let cfg = UNetConfig::new(8, vec![1, 2], 1)
        .with_heads(2)
        .with_dim_head(4)
        .with_classes(Some(names));
    let net = cfg.init::<B>(&device());
    // Classes 1 and the null class (3); the embedding must change the output.
    let tmp = tempfile::tempdir().expect("tmp");
    let mut s = block_session(tmp.path(), 1, None, |g, x, _| {
        let t = g.const_f32(&[3.0, 3.0], &[2]);
        let c = g.const_i64(&[1, 3], &[2]);
        net.lower(g, x, &t, Some(&c))
    });
    let x = random_images((1, 1, 12, 8), 70);
    let x = ndarray::concatenate(ndarray::Axis(0), &[x.view(), x.view()]).expect("pair");
    let t = Tensor::<B, 1>::from_floats([3.0, 3.0], &device());
    let class = Tensor::<B, 1, Int>::from_ints([1, 3], &device());
    let xt = to_tensor::<B>(&x, &device());
    let want = to_array(net.forward_with(xt.clone(), t.clone(), Some(class)));
    let got = run(&mut s, &x, None);
    assert!(max_abs_diff(&got, &want) <= 1e-4);
    // Without a class the network sees the null class; another class gives another output.
    let null = to_array(net.forward(xt, t));
    let (first, second) = (
        want.index_axis(ndarray::Axis(0), 0),
        null.index_axis(ndarray::Axis(0), 1),
    );
    assert!(max_abs_diff(want.index_axis(ndarray::Axis(0), 1), second) <= 1e-5);
    assert!(
        max_abs_diff(first, second) > 1e-3,
        "the class changed nothing"
    );
}
