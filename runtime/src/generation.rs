//! Unconditional generation (the paper's blur-based generation): starting images drawn from the
//! bundle's Gaussian mixture over channel means ([`cold_core::generation`]), restored by
//! Algorithm 2 from t = T (or, for a mixture over a subspace of `D(x, L)`, images drawn in it,
//! restored from t = L). Models of noise (and animorphosis) start from their z at T instead and
//! sample with the estimated noise, as hot diffusion generates. A class-conditioned model draws
//! a class per sample in the training data's proportions by default and generates it as that
//! class ([`ClassChoice`]).

use std::path::Path;

use cold_core::generation::Generation;
use cold_core::imageio;
use cold_core::shard::Shard;
use cold_core::task::TaskReport;
use ndarray::{Array2, Array4, Axis};
use rand::{SeedableRng, rngs::StdRng};
use rand_distr::StandardNormal;

use crate::engine::{Algorithm, Engine};
use crate::error::{Error, Result};

/// Options of `cold generate`.
#[derive(Clone, Debug)]
pub struct GenerateOptions {
    pub count: usize,
    pub seed: u64,
    pub noise: f64,
    pub batch: usize,
    pub overwrite: bool,
    /// This task's share of the samples (`i mod N == K`).
    pub shard: Option<Shard>,
    /// Which class a class-conditioned model generates; `None`: the default ([`ClassChoice::Drawn`]
    /// for a class-conditioned model, no class for the others).
    pub class: Option<ClassChoice>,
    /// Classifier-free guidance with a class (1: none).
    pub guidance: f32,
    /// The spread of the starts around their mixture component's mean (1: as fitted); models
    /// that start from their parameters (noise, animorphosis, masks) take only 1.
    pub temperature: f64,
}

/// What a class-conditioned model generates.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ClassChoice {
    /// Each sample's class drawn in the training data's proportions (from the sample's own
    /// generator), then the sample generated as that class from the class's mixture: the model's
    /// `p(x) = sum_c p(c) p(x | c)`. The default of a class-conditioned model.
    Drawn,
    /// The null class (the network's unconditional path, learnt from the dropped labels), from the
    /// overall mixture.
    Null,
    /// This class (an index into the network's classes), from its own mixture.
    One(usize),
}

/// What a generate task did.
#[derive(Debug)]
pub struct Generated {
    pub written: usize,
    /// Samples of this share already there (a rerun of the same job).
    pub skipped: usize,
    /// Whether `grid.png` was written (it needs the first 64 samples, which a shard alone may
    /// not hold: the task that completes them writes it, or `cold report`).
    pub grid: bool,
}

/// The generator of sample `i`: its start and parameters depend on the seed and `i` alone, so
/// the tasks of a sharded job draw the same images as one process.
fn sample_rng(seed: u64, i: usize) -> StdRng {
    StdRng::seed_from_u64(cold_core::atomic::hash_u64(
        format!("{seed}/{i}").as_bytes(),
    ))
}

/// What must match for a rerun to resume a generate job in the same folder.
fn settings(model: &str, o: &GenerateOptions) -> serde_json::Value {
    let mut v =
        serde_json::json!({"model": model, "count": o.count, "seed": o.seed, "noise": o.noise});
    // Only when a class is chosen: jobs written before classes existed (and null-class jobs,
    // which compute what they did) still resume.
    let class: Option<serde_json::Value> = match o.class {
        Some(ClassChoice::One(c)) => Some(c.into()),
        Some(ClassChoice::Drawn) => Some("drawn".into()),
        Some(ClassChoice::Null) | None => None,
    };
    if let Some(c) = class {
        v["class"] = c;
        v["guidance"] = o.guidance.into();
    }
    // Only when not 1: jobs written before temperatures existed still resume.
    if o.temperature != 1.0 {
        v["temperature"] = o.temperature.into();
    }
    v
}

/// The class choice in effect: the default resolved for the model, checked against its classes
/// and the guidance.
fn resolve_class(o: &GenerateOptions, null: Option<i64>) -> Result<Option<ClassChoice>> {
    let choice = match (o.class, null) {
        (None, None) => None,
        (None, Some(_)) => Some(ClassChoice::Drawn),
        (Some(_), None) => {
            return Err(Error::invalid(
                "--class: this model is not conditioned on classes (train one with \
                 `cold-train train --classes`)",
            ));
        }
        (Some(ClassChoice::One(c)), Some(n)) if c as i64 >= n => {
            return Err(Error::invalid(format!(
                "--class {c}: the model has {n} classes (0..{})",
                n - 1
            )));
        }
        (Some(c), Some(_)) => Some(c),
    };
    if o.guidance != 1.0 {
        match choice {
            None => {
                return Err(Error::invalid(
                    "--guidance weighs a class against none: this model is not conditioned on \
                     classes",
                ));
            }
            Some(ClassChoice::Null) => {
                return Err(Error::invalid(
                    "--guidance weighs a class against none: --class none has no class to weigh",
                ));
            }
            _ => {}
        }
    }
    Ok(choice)
}

/// Generates `count` images into `out_dir/samples/` (`00000.png`, ...) and a grid of the first 64
/// as `out_dir/grid.png` (apart, so that `cold fid OUT/samples` sees only the samples); the same
/// seed gives the same images, sample by sample. A rerun of the same job (model, count, seed,
/// noise, class, guidance, temperature: the task reports in `out_dir/.cold/` say) skips the samples already there; other
/// existing samples are only replaced with `overwrite`.
pub fn generate(engine: &mut Engine, out_dir: &Path, o: &GenerateOptions) -> Result<Generated> {
    let m = engine.bundle.manifest.clone();
    // Mixes start from their own z (pure noise, or an image of the other data set) at T, where
    // the image's share sqrt(abar_T) is nearly 0, and sample with the estimated noise (the
    // paper's hot-diffusion generation); the other kinds from the mixture over channel means.
    let mix = m.degradation.transform.is_mix();
    // Kinds whose level T is a function of the parameters alone (the mixes' z, a reversed mask's
    // fill colour) start from D(0, T, p); the others from the mixture.
    let from_params = m.degradation.transform.starts_from_params();
    let null = m.network.config.null_class();
    let choice = resolve_class(o, null)?;
    let o = &GenerateOptions {
        class: choice,
        ..o.clone()
    };
    let g = if from_params {
        None
    } else {
        Some(m.mixture()?.clone())
    };
    cold_core::generation::check_temperature(o.temperature)?;
    if g.is_none() && o.temperature != 1.0 {
        return Err(Error::invalid(
            "--temperature scales the draw from a generation mixture: this model starts from \
             its own parameters at T (noise, an image, a fill colour), not from a mixture",
        ));
    }
    let prior = match (choice, null, &g) {
        (Some(ClassChoice::Drawn), Some(n), Some(g)) => g.class_prior(n as usize),
        (Some(ClassChoice::Drawn), Some(n), None) => vec![1.0 / n as f64; n as usize],
        _ => Vec::new(),
    };
    if o.count == 0 {
        return Err(Error::invalid("--count must be at least 1"));
    }
    if !(o.noise.is_finite() && o.noise >= 0.0) {
        return Err(Error::invalid(format!(
            "--noise {} must be a non-negative standard deviation",
            o.noise
        )));
    }
    let samples = out_dir.join(SAMPLES_DIR);
    let name = |i: usize| samples.join(sample_name(i));
    let share: Vec<usize> = (0..o.count)
        .filter(|&i| o.shard.as_ref().is_none_or(|s| s.takes_index(i)))
        .collect();
    let wanted = settings(&m.name, o);
    let same_job = TaskReport::read_all(out_dir)?
        .into_iter()
        .any(|(_, r)| r.is_ok_and(|r| r.job == "generate" && r.settings == wanted));
    let existing = share.iter().filter(|&&i| name(i).exists()).count();
    if !o.overwrite && existing > 0 && !same_job {
        return Err(Error::invalid(format!(
            "{} already holds generated images of another job (model, count, seed, noise, \
             class, guidance or temperature): \
             choose another folder or pass --overwrite",
            out_dir.display()
        )));
    }
    let todo: Vec<usize> = share
        .iter()
        .copied()
        .filter(|&i| o.overwrite || !name(i).exists())
        .collect();
    if let Some(s) = &o.shard {
        tracing::info!(
            "{s}: {} of {} samples are this share's",
            share.len(),
            o.count
        );
    }
    std::fs::create_dir_all(&samples).map_err(|e| Error::io(&samples, e))?;
    let mut task = TaskReport::start("generate", None, &m.name, o.shard.as_ref());
    task.settings = wanted;
    task.planned = share.iter().map(|&i| sample_name(i)).collect();
    let todo_set: std::collections::HashSet<usize> = todo.iter().copied().collect();
    task.skipped = share
        .iter()
        .filter(|i| !todo_set.contains(i))
        .map(|&i| sample_name(i))
        .collect();
    task.write(out_dir)?;
    if let Some(names) = &m.network.config.classes {
        write_classes(out_dir, o, choice, &prior, names)?;
    }
    let shape = (m.image.channels, m.image.height, m.image.width);
    // From T, or from the level of the mixture's subspace.
    let t = g
        .as_ref()
        .map_or(m.degradation.steps, |g| g.start_level(m.degradation.steps));
    let algorithm = if mix {
        Algorithm::Estimated
    } else {
        Algorithm::Two
    };
    // Mixes start from D(0, T) with each sample's z, reversed masks from D(0, T) with each
    // sample's fill colour (plus the broken-symmetry noise): the degradation is prepared once.
    let mix_d = match &g {
        Some(_) => None,
        None => Some(m.degradation.prepare()?),
    };
    let pb = cold_core::progress::progress_bar(todo.len() as u64, "generating");
    for chunk in todo.chunks(o.batch.max(1)) {
        let mut starts = Vec::with_capacity(chunk.len());
        let mut params = Vec::with_capacity(chunk.len());
        let mut classes = Vec::with_capacity(chunk.len());
        for &i in chunk {
            let mut rng = sample_rng(o.seed, i);
            let class = sample_class(choice, &prior, &mut rng);
            if let Some(g) = &g {
                let space = g.subspace.as_ref();
                starts.push(g.for_class(class).starts(
                    space,
                    &mut rng,
                    1,
                    shape,
                    o.noise,
                    o.temperature,
                )?);
            }
            params.push(m.degradation.sample_params(&mut rng, 1)?);
            classes.push(class.map_or(null.unwrap_or(0), |c| c as i64));
            if from_params && !mix {
                starts.push(Array4::from_shape_fn(
                    (1, shape.0, shape.1, shape.2),
                    |_| {
                        let e: f64 = rand_distr::Distribution::sample(&StandardNormal, &mut rng);
                        (o.noise * e) as f32
                    },
                ));
            }
        }
        let cat2: Vec<_> = params.iter().map(|a| a.view()).collect();
        let p: Array2<f32> =
            ndarray::concatenate(Axis(0), &cat2).map_err(|e| Error::invalid(e.to_string()))?;
        let x = match &mix_d {
            Some(d) => {
                let zeros = Array4::<f32>::zeros((chunk.len(), shape.0, shape.1, shape.2));
                let mut x = d.apply_uniform(zeros.view(), t, p.view())?;
                for (mut xi, n) in x.outer_iter_mut().zip(&starts) {
                    xi += &n.index_axis(Axis(0), 0);
                }
                x
            }
            None => {
                let cat4: Vec<_> = starts.iter().map(|a| a.view()).collect();
                ndarray::concatenate(Axis(0), &cat4).map_err(|e| Error::invalid(e.to_string()))?
            }
        };
        let levels = vec![t; chunk.len()];
        let out = match choice {
            Some(ClassChoice::Drawn | ClassChoice::One(_)) => engine.restore_conditioned(
                x.view(),
                &levels,
                p.view(),
                algorithm,
                None,
                false,
                &classes,
                o.guidance,
            )?,
            _ => engine.restore(x.view(), &levels, p.view(), algorithm, None, false)?,
        }
        .output;
        for (&i, im) in chunk.iter().zip(out.outer_iter()) {
            imageio::save_unit_png(&name(i), im)?;
            task.written.push(sample_name(i));
        }
        pb.inc(chunk.len() as u64);
    }
    pb.finish_and_clear();
    let grid = write_grid_if_complete(out_dir, o.count.min(64), shape.0)?;
    task.finish().write(out_dir)?;
    Ok(Generated {
        written: todo.len(),
        skipped: share.len() - todo.len(),
        grid,
    })
}

/// The class sample `i` is generated as: the first draw of its generator `rng` with drawn
/// classes, the chosen class, or none.
fn sample_class(choice: Option<ClassChoice>, prior: &[f64], rng: &mut StdRng) -> Option<usize> {
    match choice {
        Some(ClassChoice::Drawn) => Some(Generation::draw_class(prior, rng)),
        Some(ClassChoice::One(c)) => Some(c),
        Some(ClassChoice::Null) | None => None,
    }
}

/// The file beside `samples/` that names the class each sample was generated as
/// (class-conditioned models; `null` for the null class), so that a classifier's verdicts can be
/// checked against it.
pub const CLASSES_FILE: &str = "classes.json";

/// Writes [`CLASSES_FILE`] for every sample of the job (the tasks of a sharded job write the same
/// file: each sample's class depends on the seed and its index alone).
fn write_classes(
    out_dir: &Path,
    o: &GenerateOptions,
    choice: Option<ClassChoice>,
    prior: &[f64],
    names: &[String],
) -> Result<()> {
    let samples: serde_json::Map<String, serde_json::Value> = (0..o.count)
        .map(|i| {
            let c = sample_class(choice, prior, &mut sample_rng(o.seed, i));
            (sample_name(i), c.map(|c| names[c].clone()).into())
        })
        .collect();
    let v = serde_json::json!({
        "classes": names,
        "guidance": o.guidance,
        "samples": samples,
    });
    let path = out_dir.join(CLASSES_FILE);
    let bytes = serde_json::to_vec_pretty(&v).map_err(|e| Error::invalid(e.to_string()))?;
    cold_core::atomic::write_atomic(&path, &bytes)?;
    Ok(())
}

/// The file name of sample `i`.
pub fn sample_name(i: usize) -> String {
    format!("{i:05}.png")
}

/// Writes `out_dir/grid.png` from the first `n` samples when they are all there; `false` when
/// some are missing (another task's, not done yet).
pub fn write_grid_if_complete(out_dir: &Path, n: usize, channels: usize) -> Result<bool> {
    let samples = out_dir.join(SAMPLES_DIR);
    let paths: Vec<_> = (0..n).map(|i| samples.join(sample_name(i))).collect();
    if paths.iter().any(|p| !p.is_file()) {
        return Ok(false);
    }
    let images = paths
        .iter()
        .map(|p| {
            let im = imageio::read_image(p)?;
            Ok(imageio::to_chw_unit(&im, channels))
        })
        .collect::<Result<Vec<_>>>()?;
    let views: Vec<_> = images.iter().map(|a| a.view()).collect();
    let all = ndarray::stack(Axis(0), &views).map_err(|e| Error::invalid(e.to_string()))?;
    write_grid(&out_dir.join("grid.png"), &all)?;
    Ok(true)
}

/// The folder under `cold generate`'s output that holds the samples.
pub const SAMPLES_DIR: &str = "samples";

/// Up to 64 images in an 8-wide grid, scaled 3x.
fn write_grid(path: &Path, images: &Array4<f32>) -> Result<()> {
    let n = images.len_of(Axis(0)).min(64);
    let cols = 8.min(n);
    let rows: Vec<Vec<_>> = (0..n.div_ceil(cols))
        .map(|r| {
            (r * cols..((r + 1) * cols).min(n))
                .map(|i| images.index_axis(Axis(0), i))
                .collect()
        })
        .collect();
    Ok(imageio::save_grid(path, &rows, 3)?)
}
