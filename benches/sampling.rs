//! Criterion benchmarks of the runtime's hot paths, one group per concern:
//! - `degradation`: D(x, t) by the precomputed per-level operators (constant in t) next to the
//!   reference's way, t iterated 11x11 convolutions;
//! - `step_graph`: one run of the fused sampling-step graph (ONNX Runtime, CPU);
//! - `restore`: a full Algorithm 2 restoration from t = T.
//!
//! Run: `cargo bench --bench sampling` (uses models/mnist-blur).

use std::hint::black_box;

use cold_core::degradation::{Degradation, Transform, iterated_blur};
use cold_runtime::engine::{Algorithm, Engine, EngineOptions};
use cold_testkit::{random_images, workspace_root};
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use ndarray::Array4;

/// The reference's D: t applications of a 2-D Gaussian convolution, per image and channel.
fn iterated_convolutions(d: &Degradation, x: &Array4<f32>, t: usize) -> Array4<f32> {
    let Transform::Blur(b) = d.transform else {
        panic!("a blur preset");
    };
    let mut out = x.clone();
    for mut im in out.outer_iter_mut() {
        for mut ch in im.outer_iter_mut() {
            let y = iterated_blur(&ch.mapv(f64::from), &b, t);
            ch.assign(&y.mapv(|v| v as f32));
        }
    }
    out
}

fn degradation(c: &mut Criterion) {
    let d = Degradation::preset("mnist").expect("preset");
    let ops = d.prepare().expect("ops");
    let none = ndarray::Array2::zeros((16, 0));
    let x = random_images((16, 1, 28, 28), 1);
    let mut g = c.benchmark_group("degradation");
    g.throughput(Throughput::Elements(16));
    g.sample_size(10);
    for t in [1usize, 5, 20] {
        g.bench_with_input(BenchmarkId::new("operators", t), &t, |b, &t| {
            b.iter(|| black_box(ops.apply_uniform(x.view(), t, none.view()).expect("apply")))
        });
        g.bench_with_input(BenchmarkId::new("iterated_convolutions", t), &t, |b, &t| {
            b.iter(|| black_box(iterated_convolutions(&d, &x, t)))
        });
    }
    g.finish();
}

fn engine() -> Engine {
    Engine::open(
        &workspace_root().join("models/mnist-blur"),
        EngineOptions::default(),
    )
    .expect("models/mnist-blur")
}

fn step_graph(c: &mut Criterion) {
    let mut e = engine();
    let mut g = c.benchmark_group("step_graph");
    for batch in [1usize, 64] {
        let x = random_images((batch, 1, 28, 28), 2);
        g.throughput(Throughput::Elements(batch as u64));
        g.bench_with_input(BenchmarkId::new("direct", batch), &batch, |b, &batch| {
            b.iter(|| {
                black_box(
                    e.restore(
                        x.view(),
                        &vec![20; batch],
                        ndarray::Array2::zeros((batch, 0)).view(),
                        Algorithm::Direct,
                        None,
                        false,
                    )
                    .expect("run"),
                )
            })
        });
    }
    g.finish();
}

fn restore(c: &mut Criterion) {
    let mut e = engine();
    let mut g = c.benchmark_group("restore");
    g.sample_size(10);
    for batch in [16usize, 64] {
        let x = random_images((batch, 1, 28, 28), 3);
        g.throughput(Throughput::Elements(batch as u64));
        g.bench_with_input(
            BenchmarkId::new("algorithm2_t20", batch),
            &batch,
            |b, &batch| {
                b.iter(|| {
                    black_box(
                        e.restore(
                            x.view(),
                            &vec![20; batch],
                            ndarray::Array2::zeros((batch, 0)).view(),
                            Algorithm::Two,
                            None,
                            false,
                        )
                        .expect("run"),
                    )
                })
            },
        );
    }
    g.finish();
}

criterion_group!(benches, degradation, step_graph, restore);
criterion_main!(benches);
