//! `cold_trainer::setup_cpu` makes the calling thread and every rayon worker flush subnormal
//! floats to zero (x86-64). Its own test binary: the global rayon pool can be built only once.

use std::hint::black_box;

#[test]
fn setup_cpu_flushes_subnormals_on_every_thread() {
    // Without the flags, 1e-30 * 1e-10 is the subnormal 1e-40.
    let tiny = black_box(1.0e-30f32) * black_box(1.0e-10f32);
    if !cfg!(target_arch = "x86_64") {
        cold_trainer::setup_cpu();
        return;
    }
    assert!(
        tiny > 0.0 && !tiny.is_normal(),
        "a fresh thread keeps subnormals: {tiny:e}"
    );
    cold_trainer::setup_cpu();
    assert!(cold_trainer::flushes_subnormals());
    let here = black_box(1.0e-30f32) * black_box(1.0e-10f32);
    assert_eq!(here, 0.0, "this thread still makes subnormals");
    // An operation on a subnormal input gives zero too (whether by DAZ on the input or FTZ on the
    // result: this check does not tell the two apart; `flushes_subnormals` checks both bits).
    let sub = f32::from_bits(black_box(1u32));
    assert_eq!(sub * black_box(1.0f32), 0.0);
    let workers: Vec<(bool, f32)> = rayon::broadcast(|_| {
        (
            cold_trainer::flushes_subnormals(),
            black_box(1.0e-30f32) * black_box(1.0e-10f32),
        )
    });
    assert_eq!(workers.len(), rayon::current_num_threads());
    for (i, (flag, product)) in workers.into_iter().enumerate() {
        assert!(flag, "rayon worker {i} does not flush subnormals");
        assert_eq!(product, 0.0, "rayon worker {i} made a subnormal");
    }
    // Normal arithmetic is untouched.
    assert_eq!(black_box(1.5f32) * black_box(2.0f32), 3.0);
}
