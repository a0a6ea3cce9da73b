//! What defines a training run. The file ([`TrainConfig`], saved as `config.json` in the run
//! folder and `training-config.json` in a bundle) is `cold_core::training`; here is its Burn
//! half, the optimiser.

use burn::optim::adaptor::OptimizerAdaptor;
use burn::optim::{Adam, AdamConfig};
use burn::tensor::backend::AutodiffBackend;
use cold_core::data::Source;
use cold_core::degradation::Spec;
pub use cold_core::training::{Levels, LrSchedule, TrainConfig};

use crate::model::UNet;

/// The run's optimiser (fresh, or to receive a checkpoint's state): Adam with the config's
/// epsilon and gradient clipping.
pub(crate) fn optimizer<B: AutodiffBackend>(
    cfg: &TrainConfig,
) -> OptimizerAdaptor<Adam, UNet<B>, B> {
    let mut c = AdamConfig::new().with_epsilon(cfg.adam_epsilon);
    if let Some(clip) = cfg.grad_clip {
        c = c.with_grad_clipping(Some(burn::grad_clipping::GradientClippingConfig::Norm(
            clip,
        )));
    }
    c.init()
}

/// What `cold-train train` says about the run's config, over a config file, the resumed run's
/// own, a bundle to start from (`init`) or the presets: each set field overrides.
#[derive(Clone, Debug, Default)]
pub struct Overrides {
    /// A config file (as written to a run folder).
    pub config: Option<std::path::PathBuf>,
    /// Continue the run in the run folder.
    pub resume: bool,
    pub dataset: Option<String>,
    pub preset: Option<String>,
    /// A degradation spec (`cold_core::degradation::Spec::parse`): a schedule's name,
    /// `kind:key=value,...` or a TOML / JSON file.
    pub degradation: Option<String>,
    /// Train at `S x S`: images scaled to `int(1.12 S)` and cropped (`TrainConfig::image_size`).
    pub size: Option<usize>,
    /// Grey (1) or colour (3) whatever the data set holds.
    pub channels: Option<usize>,
    pub model: Option<String>,
    /// A bundle to start from (fine-tuning).
    pub init: Option<std::path::PathBuf>,
    pub steps: Option<usize>,
    pub batch_size: Option<usize>,
    pub learning_rate: Option<f64>,
    pub lr_schedule: Option<LrSchedule>,
    pub lr_min: Option<f64>,
    pub ema_decay: Option<f64>,
    pub ema_every: Option<usize>,
    pub ema_start: Option<usize>,
    pub grad_clip: Option<f32>,
    pub flip: Option<bool>,
    pub shift: Option<usize>,
    /// Round the degraded inputs to this many bits (`TrainConfig::input_bits`).
    pub input_bits: Option<u32>,
    /// The share of SSIM in the loss (`TrainConfig::ssim_weight`).
    pub ssim_weight: Option<f64>,
    /// How the training levels are drawn (`TrainConfig::levels`).
    pub levels: Option<Levels>,
    /// The highest level trained on (`TrainConfig::max_level`).
    pub max_level: Option<usize>,
    pub seed: Option<u64>,
    pub sample_every: Option<usize>,
    pub checkpoint_every: Option<usize>,
    pub max_images: Option<usize>,
    /// Condition the network on the data set's labels (`UNetConfig::classes`: its class names).
    pub classes: bool,
    /// The share of labels replaced by the null class (`TrainConfig::label_dropout`).
    pub label_dropout: Option<f64>,
    /// With `init`: start from the bundle's network at twice its base width
    /// (`crate::widen`).
    pub widen: bool,
}

impl Overrides {
    fn is_folder(&self) -> bool {
        matches!(
            self.dataset.as_deref().map(str::parse::<Source>),
            Some(Ok(Source::Folder(_)))
        )
    }

    /// The run's config: from `config`, else the resumed run's (`run`), else the presets (MNIST
    /// blur and the compact network by default); `init` takes the bundle's data set, degradation
    /// and network unless they are named; then every set field.
    /// `run_config` is the run folder's `config.json` (read when resuming).
    pub fn build(&self, run_config: &std::path::Path) -> crate::error::Result<TrainConfig> {
        use crate::error::TrainError;
        if self.init.is_some() && self.resume {
            return Err(TrainError::Config(
                "--init starts a new run; --resume continues one: choose one".into(),
            ));
        }
        let fixed = self.config.is_some() || self.resume;
        if self.widen && (self.init.is_none() || self.model.is_some() || self.config.is_some()) {
            return Err(TrainError::Config(
                "--widen widens the --init bundle's network: give --init, and neither --model \
                 nor --config"
                    .into(),
            ));
        }
        if self.classes && (fixed || self.init.is_some()) {
            return Err(TrainError::Config(
                "--classes builds a new network: the config, the resumed run or the --init \
                 bundle fixes whether it is class-conditioned"
                    .into(),
            ));
        }
        if fixed
            && (self.preset.is_some()
                || self.model.is_some()
                || self.degradation.is_some()
                || self.size.is_some()
                || self.channels.is_some())
        {
            return Err(TrainError::Config(
                "--preset, --degradation, --size, --channels and --model are fixed by the config \
                 / the resumed run"
                    .into(),
            ));
        }
        if self.preset.is_some() && self.degradation.is_some() {
            return Err(TrainError::Config(
                "--preset names a degradation and a data set's size; --degradation names the \
                 degradation alone: choose one"
                    .into(),
            ));
        }
        let by_parameters =
            self.degradation.is_some() || self.size.is_some() || self.channels.is_some();
        let mut cfg = if let Some(p) = &self.config {
            cold_core::files::read(p)?
        } else if self.resume {
            cold_core::files::read(run_config)?
        } else if self.init.is_some() {
            // The bundle's degradation, data set and network, replaced below where named.
            TrainConfig::new(
                self.dataset.as_deref().unwrap_or("mnist"),
                self.preset.as_deref().unwrap_or("mnist"),
                self.model.as_deref().unwrap_or("compact"),
            )?
        } else if by_parameters || (self.preset.is_none() && self.is_folder()) {
            let dataset = self.dataset.as_deref().unwrap_or("mnist");
            let (channels, (h, w)) = native_shape(dataset, self.size.is_none())?;
            let channels = self.channels.unwrap_or(channels);
            let (h, w) = self.size.map_or((h, w), |s| (s, s));
            let spec = match &self.degradation {
                Some(s) => Spec::parse(s)?,
                None => Spec::default_for(channels),
            };
            let mut cfg = TrainConfig::with_degradation(
                dataset,
                spec.at(channels, h, w)?,
                self.model.as_deref().unwrap_or("compact"),
            )?;
            cfg.image_size = self.size;
            cfg
        } else {
            TrainConfig::new(
                self.dataset.as_deref().unwrap_or("mnist"),
                self.preset.as_deref().unwrap_or("mnist"),
                self.model.as_deref().unwrap_or("compact"),
            )?
        };
        if let Some(dir) = &self.init {
            let b = cold_core::bundle::Bundle::open(dir, true)?;
            if self.dataset.is_none() && self.config.is_none() {
                cfg.dataset = b.manifest.training.dataset.clone();
            }
            if self.preset.is_none() && self.config.is_none() {
                cfg.flip = b.manifest.degradation.channels == 3;
                let d = &b.manifest.degradation;
                let spec = match &self.degradation {
                    Some(s) => Spec::parse(s)?,
                    None => Spec::of(d),
                };
                let channels = self.channels.unwrap_or(d.channels);
                let (h, w) = self.size.map_or((d.height, d.width), |s| (s, s));
                cfg.degradation = spec.at(channels, h, w)?;
                cfg.image_size = self.size;
            }
            if self.model.is_none() && self.config.is_none() {
                cfg.model = b.manifest.network.config.clone();
                if self.widen {
                    cfg.model = crate::widen::widened(&cfg.model);
                }
            }
            // Absolute, so that the run's config still names it when resumed from elsewhere.
            cfg.init = Some(dir.canonicalize().unwrap_or_else(|_| dir.clone()));
        }
        if fixed && let Some(d) = &self.dataset {
            cfg.dataset = d.clone();
        }
        macro_rules! set {
            ($($field:ident),*) => { $(if let Some(v) = self.$field { cfg.$field = v; })* };
        }
        set!(
            steps,
            batch_size,
            learning_rate,
            lr_schedule,
            lr_min,
            ema_decay,
            ema_every,
            ema_start,
            flip,
            shift,
            seed,
            sample_every,
            checkpoint_every,
            max_images
        );
        if self.grad_clip.is_some() {
            cfg.grad_clip = self.grad_clip;
        }
        if self.input_bits.is_some() {
            cfg.input_bits = self.input_bits;
        }
        if let Some(w) = self.ssim_weight {
            cfg.ssim_weight = w;
        }
        if let Some(l) = self.levels {
            cfg.levels = l;
        }
        if self.max_level.is_some() {
            cfg.max_level = self.max_level;
        }
        if let Some(p) = self.label_dropout {
            cfg.label_dropout = p;
        }
        if self.classes {
            // The class names of the training data (loaded here once more: names are cheap to
            // check only with the images' labels).
            let d = cfg.load_training_data(cfg.split.parse()?)?;
            if d.class_names.len() < 2 {
                return Err(TrainError::Config(format!(
                    "--classes needs a labelled data set (MNIST, CIFAR-10, or a folder with one \
                     subfolder per class); {} has {} class",
                    cfg.dataset,
                    d.class_names.len()
                )));
            }
            cfg.model.classes = Some(d.class_names);
        }
        Ok(cfg)
    }
}

/// The channels and `(height, width)` a data set's images have as they are: MNIST and
/// Fashion-MNIST 1 x 28 x 28, CIFAR-10 3 x 32 x 32, a folder its first image's (grey when every
/// image is; refused when `need_size` and its images have several sizes).
fn native_shape(dataset: &str, need_size: bool) -> crate::error::Result<(usize, (usize, usize))> {
    Ok(match dataset.parse::<Source>()? {
        Source::Mnist(_) | Source::FashionMnist(_) => (1, (28, 28)),
        Source::Cifar10(_) => (3, (32, 32)),
        Source::Folder(root) => {
            let f = cold_core::data::probe_folder(&root)?;
            let (w, h) = f.size;
            if let (true, Some((w2, h2))) = (need_size, f.other_size) {
                return Err(crate::error::TrainError::Config(format!(
                    "the images of {} have several sizes ({w}x{h}, {w2}x{h2}, ...): pass --size S \
                     to train at S x S (each image scaled so that its shorter side is \
                     int(1.12 S), then cropped)",
                    root.display()
                )));
            }
            (f.channels, (h as usize, w as usize))
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overrides_win_over_presets_and_configs_and_conflicts_are_refused() {
        let tmp = tempfile::tempdir().expect("tmp");
        let run = tmp.path().join("run/config.json");
        let o = Overrides {
            preset: Some("mnist-inpaint".into()),
            model: Some("tiny".into()),
            steps: Some(7),
            learning_rate: Some(1e-3),
            grad_clip: Some(1.0),
            ..Default::default()
        };
        let cfg = o.build(&run).expect("config");
        assert_eq!(
            cfg.degradation,
            cold_core::degradation::Degradation::preset("mnist-inpaint").expect("p")
        );
        assert_eq!(
            (cfg.steps, cfg.learning_rate, cfg.grad_clip),
            (7, 1e-3, Some(1.0))
        );
        assert_eq!(cfg.model.dim, 8);
        // A config file is the base; flags still override; --model cannot change it.
        let p = tmp.path().join("c.json");
        cold_core::files::write(&p, &cfg).expect("write");
        let from_file = Overrides {
            config: Some(p.clone()),
            steps: Some(9),
            ..Default::default()
        }
        .build(&run)
        .expect("config");
        assert_eq!((from_file.steps, from_file.learning_rate), (9, 1e-3));
        let e = Overrides {
            config: Some(p),
            model: Some("small".into()),
            ..Default::default()
        }
        .build(&run)
        .expect_err("fixed");
        assert!(e.to_string().contains("fixed by the config"), "{e}");
        let e = Overrides {
            resume: true,
            init: Some(tmp.path().into()),
            ..Default::default()
        }
        .build(&run)
        .expect_err("conflict");
        assert!(e.to_string().contains("choose one"), "{e}");
        // --widen needs a bundle to widen, and takes its network, not another.
        for o in [
            Overrides {
                widen: true,
                ..Default::default()
            },
            Overrides {
                widen: true,
                init: Some(tmp.path().into()),
                model: Some("small".into()),
                ..Default::default()
            },
        ] {
            let e = o.build(&run).expect_err("widen");
            assert!(e.to_string().contains("--widen"), "{e}");
        }
    }

    #[test]
    fn classes_come_from_the_training_data_and_need_labels() {
        let tmp = tempfile::tempdir().expect("tmp");
        let fixture =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/mnist");
        let mnist = tmp.path().join("mnist");
        std::fs::create_dir(&mnist).expect("dir");
        for k in ["images-idx3-ubyte.gz", "labels-idx1-ubyte.gz"] {
            for split in ["train", "t10k"] {
                std::fs::copy(
                    fixture.join(format!("t10k-{k}")),
                    mnist.join(format!("{split}-{k}")),
                )
                .expect("copy");
            }
        }
        let run = tmp.path().join("run/config.json");
        let o = Overrides {
            dataset: Some(format!("mnist:{}", mnist.display())),
            model: Some("tiny".into()),
            classes: true,
            label_dropout: Some(0.2),
            ..Default::default()
        };
        let cfg = o.build(&run).expect("config");
        let names: Vec<String> = (0..10).map(|d| d.to_string()).collect();
        assert_eq!(cfg.model.classes, Some(names));
        assert_eq!(cfg.label_dropout, 0.2);
        // A flat folder has no labels to condition on.
        let flat = tmp.path().join("flat");
        std::fs::create_dir(&flat).expect("dir");
        let im = image::GrayImage::from_pixel(28, 28, image::Luma([9]));
        for i in 0..3 {
            im.save(flat.join(format!("{i}.png"))).expect("png");
        }
        let e = Overrides {
            dataset: Some(format!("folder:{}", flat.display())),
            model: Some("tiny".into()),
            classes: true,
            ..Default::default()
        }
        .build(&run)
        .expect_err("flat folder");
        assert!(e.to_string().contains("needs a labelled data set"), "{e}");
        // A resumed run keeps what it was.
        let e = Overrides {
            resume: true,
            classes: true,
            ..Default::default()
        }
        .build(&run)
        .expect_err("resume");
        assert!(
            e.to_string().contains("--classes builds a new network"),
            "{e}"
        );
        // The share of dropped labels is a probability.
        let e = Overrides {
            label_dropout: Some(1.0),
            ..Default::default()
        }
        .build(&run)
        .and_then(|c| c.validate().map(|_| c).map_err(Into::into))
        .expect_err("p = 1");
        assert!(e.to_string().contains("label_dropout"), "{e}");
    }
}
