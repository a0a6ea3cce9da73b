//! `cold-train steps`.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Result;
use clap::Args;
use cold_trainer::steps;

#[derive(Args, Debug)]
pub struct StepsArgs {
    /// The bundle.
    #[arg(long)]
    model: PathBuf,
    /// The `eval.json` of `cold eval --steps-curve`: plotted beside it as steps.png.
    #[arg(long)]
    eval: Option<PathBuf>,
    /// The recommended number of steps to store in the bundle (0: remove the recommendation).
    #[arg(long)]
    recommend: Option<usize>,
    /// With --recommend: `cold restore` averages the restorer over the eight flips and
    /// transposes of its input by default (`--no-self-ensemble` turns it off there).
    #[arg(long, requires = "recommend")]
    self_ensemble: bool,
    /// A class-conditioned bundle: the classifier-free guidance weight `cold generate` uses by
    /// default (a negative value removes it: 1).
    #[arg(long, value_name = "W", allow_hyphen_values = true)]
    guidance: Option<f32>,
    /// A bundle with a generation mixture: the temperature `cold generate` draws its starts with
    /// by default (a negative value removes it: 1).
    #[arg(long, value_name = "T", allow_hyphen_values = true)]
    temperature: Option<f64>,
    /// Why (stored with it), e.g. "best FID on 2,000 test digits".
    #[arg(long, default_value = "")]
    because: String,
}

pub fn run(a: StepsArgs) -> Result<ExitCode> {
    if let Some(p) = &a.eval {
        println!("{}", steps::plot(&a.model, p)?.display());
    }
    if let Some(k) = a.recommend {
        steps::recommend(&a.model, k, a.self_ensemble, &a.because)?;
        if k > 0 {
            let steps = if k == 1 { "step" } else { "steps" };
            let ensemble = if a.self_ensemble {
                ", self-ensembled"
            } else {
                ""
            };
            println!(
                "{}: restores with {k} {steps}{ensemble} by default",
                a.model.display()
            );
        } else {
            println!(
                "{}: no recommendation, restores with every level by default",
                a.model.display()
            );
        }
    }
    if let Some(w) = a.guidance {
        let w = (w >= 0.0).then_some(w);
        steps::recommend_guidance(&a.model, w, &a.because)?;
        match w {
            Some(w) => println!(
                "{}: generates with guidance {w} by default",
                a.model.display()
            ),
            None => println!(
                "{}: generates with guidance 1 by default",
                a.model.display()
            ),
        }
    }
    if let Some(t) = a.temperature {
        let t = (t >= 0.0).then_some(t);
        steps::recommend_temperature(&a.model, t, &a.because)?;
        println!(
            "{}: generates with temperature {} by default",
            a.model.display(),
            t.unwrap_or(1.0)
        );
    }
    Ok(ExitCode::SUCCESS)
}
