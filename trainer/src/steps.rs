//! `cold-train steps`: a bundle's default number of sampling steps, and the quality/speed curve
//! (`steps.png`) it is chosen from, drawn from `cold eval --steps-curve`'s report; and a
//! class-conditioned bundle's default guidance weight; a generation mixture's default temperature.

use std::path::{Path, PathBuf};

use cold_core::bundle::{Bundle, MANIFEST, SamplingDefaults};
use cold_core::generation::{GuidanceDefault, TemperatureDefault};
use cold_core::report::EvalReport;

use crate::error::{Result, TrainError};
use crate::plot::{StepsPoint, steps_curve};

/// Draws the steps curve of the report `eval` (an `eval.json`) of the bundle in `model`, as
/// `steps.png` beside it; returns its path.
pub fn plot(model: &Path, eval: &Path) -> Result<PathBuf> {
    let b = Bundle::open(model, true)?;
    let report: EvalReport = cold_core::files::read(eval)?;
    let Some((t, points)) = StepsPoint::from_report(&report) else {
        return Err(TrainError::Config(format!(
            "{} has no steps_curve: run cold eval --steps-curve 1,2,5,... first",
            eval.display()
        )));
    };
    let out = eval.with_file_name("steps.png");
    steps_curve(
        &points,
        &format!(
            "{}: Algorithm 2 from t = {t} with K steps ({} images of {})",
            b.manifest.name,
            report.images,
            cold_core::data::display_name(&report.dataset)
        ),
        &out,
    )?;
    Ok(out)
}

/// Stores `k` sampling steps (0: none, every level) as the bundle's default, and whether
/// `cold restore` self-ensembles by default, with the measurement they were chosen by.
pub fn recommend(model: &Path, k: usize, self_ensemble: bool, because: &str) -> Result<()> {
    let mut m = Bundle::open(model, true)?.manifest;
    if k > m.degradation.steps {
        return Err(TrainError::Config(format!(
            "--recommend {k} is beyond the model's T = {}",
            m.degradation.steps
        )));
    }
    if self_ensemble && k == 0 {
        return Err(TrainError::Config(
            "--self-ensemble is stored with a number of steps: give --recommend K with K >= 1"
                .into(),
        ));
    }
    m.sampling = (k > 0).then(|| SamplingDefaults {
        recommended_steps: k,
        chosen_by: because.into(),
        self_ensemble,
    });
    cold_core::files::write(&model.join(MANIFEST), &m)?;
    Ok(())
}

/// Stores `w` as the classifier-free guidance weight a class-conditioned bundle generates with by
/// default (`cold generate`), with the measurement it was chosen by; `None` removes it (1).
pub fn recommend_guidance(model: &Path, w: Option<f32>, because: &str) -> Result<()> {
    let mut m = Bundle::open(model, true)?.manifest;
    if m.network.config.classes.is_none() {
        return Err(TrainError::Config(
            "--guidance: this model is not conditioned on classes".into(),
        ));
    }
    if let Some(w) = w
        && !(w.is_finite() && w >= 0.0)
    {
        return Err(TrainError::Config(format!(
            "--guidance {w} must be a non-negative weight"
        )));
    }
    let Some(g) = m.generation.as_mut() else {
        return Err(TrainError::Config(
            "--guidance: the bundle has no generation mixture (`cold-train mixture` fits one)"
                .into(),
        ));
    };
    g.guidance = w.map(|weight| GuidanceDefault {
        weight,
        chosen_by: because.into(),
    });
    cold_core::files::write(&model.join(MANIFEST), &m)?;
    Ok(())
}

/// Stores `t` as the temperature `cold generate` draws a bundle's starts with by default, with the
/// measurement it was chosen by; `None` removes it (1).
pub fn recommend_temperature(model: &Path, t: Option<f64>, because: &str) -> Result<()> {
    let mut m = Bundle::open(model, true)?.manifest;
    if let Some(t) = t {
        cold_core::generation::check_temperature(t)
            .map_err(|e| TrainError::Config(e.to_string()))?;
    }
    let Some(g) = m.generation.as_mut() else {
        return Err(TrainError::Config(
            "--temperature: the bundle has no generation mixture (`cold-train mixture` fits one)"
                .into(),
        ));
    };
    g.temperature = t.map(|value| TemperatureDefault {
        value,
        chosen_by: because.into(),
    });
    cold_core::files::write(&model.join(MANIFEST), &m)?;
    Ok(())
}
