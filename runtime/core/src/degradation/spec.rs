//! Degradations chosen by their parameters, not by data sets: the paper's schedules as named
//! entries of one table ([`SCHEDULES`]), and [`Spec`], a degradation without an image size, read
//! from a table name, a `kind:key=value,...` line or a TOML / JSON file. A spec meets its image
//! size (and channels) only when a data set is chosen ([`Spec::at`]).

use std::path::Path;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::{
    Animorph, AnimorphSource, Blur, BlurSchedule, Centre, Decolor, Degradation, Fill, Inpaint,
    Noise, Padding, Snow, SuperRes, Transform, check_kind,
};
use crate::error::{Error, Result};

/// A named schedule of the paper: what it is and where it comes from.
pub struct Schedule {
    pub name: &'static str,
    /// One line: where the paper uses it.
    pub about: &'static str,
    make: fn() -> Spec,
}

impl Schedule {
    /// The schedule as a spec.
    pub fn spec(&self) -> Spec {
        (self.make)()
    }
}

fn blur(kernel_size: usize, schedule: BlurSchedule, padding: Padding, steps: usize) -> Spec {
    Spec {
        transform: Transform::Blur(Blur {
            kernel_size,
            schedule,
            padding,
            discrete: false,
        }),
        steps,
    }
}

fn inpaint(kernel_std: f64, initial_mask: f64, centre: Centre, steps: usize) -> Spec {
    Spec {
        transform: Transform::Inpaint(Inpaint {
            kernel_std,
            initial_mask,
            centre,
            reverse: false,
            fill: None,
        }),
        steps,
    }
}

/// The reference's mask generation (`defading-generation-diffusion-pytorch`, `--reverse
/// --kernel_std 0.05 --initial_mask 1 --time_steps 750` at 128 px), with `kernel_std` scaled to
/// the image side (0.05 * side / 128, written out so that it reads back from its line).
fn mask_generation(kernel_std: f64) -> Spec {
    Spec {
        transform: Transform::Inpaint(Inpaint {
            kernel_std,
            initial_mask: 1.0,
            centre: Centre::Centred,
            reverse: true,
            fill: Some(Fill {
                low: -0.5,
                high: 0.5,
            }),
        }),
        steps: 750,
    }
}

fn superres(clip: bool, steps: usize) -> Spec {
    Spec {
        transform: Transform::SuperRes(SuperRes { factor: 2, clip }),
        steps,
    }
}

/// The paper's schedules, each usable with any data set at any size (where the kind's maths is
/// defined there). The names say where the paper used them.
pub const SCHEDULES: &[Schedule] = &[
    Schedule {
        name: "mnist-blur",
        about: "MNIST restoration: blur, kernel 11, sigma 7 at every step, circular, T 20",
        make: || {
            blur(
                11,
                BlurSchedule::Constant { sigma: 7.0 },
                Padding::Circular,
                20,
            )
        },
    },
    Schedule {
        name: "cifar10-blur",
        about: "CIFAR-10 restoration: blur, kernel 11, sigma_i = i/100 + 0.35, reflect, T 50",
        make: || blur(11, BlurSchedule::Cifar, Padding::Reflect, 50),
    },
    Schedule {
        name: "celeba-blur",
        about: "CelebA 128 restoration: blur, kernel 15, sigma_i = exp(0.01 i), reflect, T 200",
        make: || {
            blur(
                15,
                BlurSchedule::Exponential { rate: 0.01 },
                Padding::Reflect,
                200,
            )
        },
    },
    Schedule {
        name: "generation-blur",
        about: "the paper's generation schedule (CelebA/AFHQ 128, used here at any size): blur, \
                kernel 27, sigma_i = exp(0.01 i), circular, T 300, level T the channel means \
                (the reference's --discrete)",
        make: || {
            let mut s = blur(
                27,
                BlurSchedule::Exponential { rate: 0.01 },
                Padding::Circular,
                300,
            );
            if let Transform::Blur(b) = &mut s.transform {
                b.discrete = true;
            }
            s
        },
    },
    Schedule {
        name: "inpaint",
        about: "MNIST/CIFAR-10 inpainting: Gaussian masks, kernel_std 0.1, initial 11, random \
                centre, T 50",
        make: || inpaint(0.1, 11.0, Centre::Random, 50),
    },
    Schedule {
        name: "inpaint-centred",
        about: "the same masks centred on the image, T 50",
        make: || inpaint(0.1, 11.0, Centre::Centred, 50),
    },
    Schedule {
        name: "celeba-inpaint",
        about: "CelebA inpainting: kernel_std 0.2, initial 1, centred, T 100",
        make: || inpaint(0.2, 1.0, Centre::Centred, 100),
    },
    Schedule {
        name: "mask-generation",
        about: "the paper's mask generation (CelebA 128): reversed centred Gaussian masks, \
                kernel_std 0.05, initial 1, T 750, fading from the border in to a colour per image \
                (uniform in [-0.5, 0.5]); level T is that constant colour",
        make: || mask_generation(0.05),
    },
    Schedule {
        name: "mask-generation-28",
        about: "the same scaled to 28 px (kernel_std 0.05 * 28/128); fewer levels need wider \
                masks (T=100,kernel_std=0.12: level 1 then keeps 99.6% of the corners, as here)",
        make: || mask_generation(0.0109375),
    },
    Schedule {
        name: "mask-generation-32",
        about: "the same scaled to 32 px (kernel_std 0.0125)",
        make: || mask_generation(0.0125),
    },
    Schedule {
        name: "superres",
        about: "32-pixel super-resolution: factor 2 per step, T 3 (32 -> 16 -> 8 -> 4)",
        make: || superres(false, 3),
    },
    Schedule {
        name: "superres-clipped",
        about: "the same with D clipped to [-1, 1], as image files hold it",
        make: || superres(true, 3),
    },
    Schedule {
        name: "celeba-superres",
        about: "128-pixel super-resolution: factor 2 per step, T 4 (128 -> 8)",
        make: || superres(false, 4),
    },
    Schedule {
        name: "snow",
        about: "snowification: the paper's snow layers, T 200",
        make: || Spec {
            transform: Transform::Snow(Snow::paper()),
            steps: 200,
        },
    },
    Schedule {
        name: "noise",
        about: "Gaussian noise (the hot-diffusion baseline): cosine schedule, T 200",
        make: || Spec {
            transform: Transform::Noise(Noise::paper()),
            steps: 200,
        },
    },
    Schedule {
        name: "animorph",
        about: "animorphosis into Fashion-MNIST images: cosine schedule, T 200 (1x28x28 only)",
        make: || Spec {
            transform: Transform::Animorph(Animorph::paper(AnimorphSource::FashionMnist)),
            steps: 200,
        },
    },
    Schedule {
        name: "decolor",
        about: "decolorization: linear, grey at T 20 (colour images)",
        make: || Spec {
            transform: Transform::Decolor(Decolor::paper()),
            steps: 20,
        },
    },
];

/// A schedule of [`SCHEDULES`] by name.
pub fn schedule(name: &str) -> Option<&'static Schedule> {
    SCHEDULES.iter().find(|s| s.name == name)
}

/// A degradation without its image size: the kind with its parameters, and T.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Spec {
    pub transform: Transform,
    /// T, the most degraded level.
    pub steps: usize,
}

impl Spec {
    /// The default for images of `channels` channels: the CIFAR-10 blur schedule for colour,
    /// the MNIST one for grey.
    pub fn default_for(channels: usize) -> Spec {
        let name = if channels == 1 {
            "mnist-blur"
        } else {
            "cifar10-blur"
        };
        schedule(name).expect("in the table").spec()
    }

    /// Reads a spec as `--degradation` takes it:
    /// - a file ending in `.toml` or `.json`: `steps` and a `transform` table with the kind's
    ///   fields, as a bundle's manifest writes them (`kind = "blur"`, `kernel_size = 11`, ...);
    /// - a schedule's name (`cifar10-blur`), or `NAME:key=value,...` to change some of its
    ///   fields (`cifar10-blur:T=25`);
    /// - `KIND:key=value,...` with every field of the kind (`blur:kernel_size=15,
    ///   schedule.routine=exponential,schedule.rate=0.01,padding=reflect,T=200`).
    ///
    /// Keys are the kind's fields as manifests write them, nested ones with dots; `T` (or
    /// `steps`) is T. Values are numbers, `true`/`false` or words.
    pub fn parse(text: &str) -> Result<Spec> {
        let lower = text.to_ascii_lowercase();
        if lower.ends_with(".toml") || lower.ends_with(".json") {
            return Self::read(Path::new(text));
        }
        let (head, rest) = text.split_once(':').unwrap_or((text, ""));
        let mut value = if let Some(s) = schedule(head) {
            serde_json::to_value(s.spec()).expect("a spec serialises")
        } else if super::KINDS.contains(&head) {
            serde_json::json!({ "transform": { "kind": head } })
        } else {
            return Err(Error::InvalidArgument(format!(
                "degradation '{text}': '{head}' is neither a schedule ({}) nor a kind ({}); \
                 or give a .toml / .json file",
                names(),
                super::KINDS.join(", ")
            )));
        };
        for pair in split_pairs(rest)
            .into_iter()
            .filter(|p| !p.trim().is_empty())
        {
            let (key, val) = pair.split_once('=').ok_or_else(|| {
                Error::InvalidArgument(format!("degradation '{text}': '{pair}' is not key=value"))
            })?;
            let (key, val) = (key.trim(), val.trim());
            let val: Value = serde_json::from_str(val).unwrap_or_else(|_| Value::from(val));
            if key == "T" || key == "steps" {
                value["steps"] = val;
            } else {
                set_path(&mut value["transform"], key, val).map_err(|why| {
                    Error::InvalidArgument(format!("degradation '{text}': {why}"))
                })?;
            }
        }
        Self::from_value(value, text)
    }

    /// Reads a spec from a TOML or JSON file.
    pub fn read(path: &Path) -> Result<Spec> {
        let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
        let is_toml = path
            .extension()
            .is_some_and(|e| e.eq_ignore_ascii_case("toml"));
        let value: Value = if is_toml {
            toml::from_str(&text).map_err(|e| {
                Error::InvalidArgument(format!("{}: not a degradation spec: {e}", path.display()))
            })?
        } else {
            serde_json::from_str(&text).map_err(|e| {
                Error::InvalidArgument(format!("{}: not a degradation spec: {e}", path.display()))
            })?
        };
        Self::from_value(value, &path.display().to_string())
    }

    fn from_value(value: Value, what: &str) -> Result<Spec> {
        check_kind(&value)?;
        if value.get("steps").is_none() {
            return Err(Error::InvalidArgument(format!(
                "degradation '{what}' has no T: add T=N (or steps = N in a file)"
            )));
        }
        let given = value.get("transform").cloned().unwrap_or(Value::Null);
        let spec: Spec = serde_json::from_value(value).map_err(|e| {
            Error::InvalidArgument(format!(
                "degradation '{what}': {e} (the fields are those of a bundle's manifest, under \
                 degradation.transform; `cold-train schedules` prints the table with each \
                 schedule's fields)"
            ))
        })?;
        // Every field given must be one the kind has (serde ignores others inside the kind).
        let (mut asked, mut known) = (Vec::new(), Vec::new());
        flatten("", &given, &mut asked);
        flatten(
            "",
            &serde_json::to_value(spec.transform).expect("serialises"),
            &mut known,
        );
        let known: Vec<String> = known.into_iter().map(|(k, _)| k).collect();
        if let Some((k, _)) = asked.iter().find(|(k, _)| !known.contains(k)) {
            return Err(Error::InvalidArgument(format!(
                "degradation '{what}': unknown field `{k}` for {} (its fields: {})",
                spec.transform.kind(),
                known.join(", ")
            )));
        }
        // The kind's parameters checked at a size every kind takes (animorphosis: only 28x28).
        match spec.at(3, 64, 64) {
            Ok(_) => Ok(spec),
            Err(e) => spec.at(1, 28, 28).map(|_| spec).map_err(|_| e),
        }
    }

    /// The degradation on images of `channels x height x width` (validated).
    pub fn at(&self, channels: usize, height: usize, width: usize) -> Result<Degradation> {
        let d = Degradation {
            transform: self.transform,
            steps: self.steps,
            channels,
            height,
            width,
        };
        d.validate()?;
        Ok(d)
    }

    /// The spec of a degradation (its size dropped).
    pub fn of(d: &Degradation) -> Spec {
        Spec {
            transform: d.transform,
            steps: d.steps,
        }
    }

    /// The spec as one `--degradation` line (`kind:key=value,...,T=N`) that [`Spec::parse`] reads
    /// back.
    pub fn to_line(&self) -> String {
        let v = serde_json::to_value(self.transform).expect("a transform serialises");
        let mut pairs = Vec::new();
        flatten("", &v, &mut pairs);
        let kind = self.transform.kind();
        let mut line = format!("{kind}:");
        for (k, v) in pairs.iter().filter(|(k, _)| k != "kind") {
            line.push_str(&format!("{k}={v},"));
        }
        line.push_str(&format!("T={}", self.steps));
        line
    }
}

/// `rest` split at the commas outside brackets (values may be arrays: `threshold=[1.15,0.7]`).
fn split_pairs(rest: &str) -> Vec<&str> {
    let (mut out, mut depth, mut from) = (Vec::new(), 0i32, 0);
    for (i, ch) in rest.char_indices() {
        match ch {
            '[' | '{' => depth += 1,
            ']' | '}' => depth -= 1,
            ',' if depth == 0 => {
                out.push(&rest[from..i]);
                from = i + 1;
            }
            _ => {}
        }
    }
    out.push(&rest[from..]);
    out
}

/// The schedules' names, for messages.
pub fn names() -> String {
    SCHEDULES
        .iter()
        .map(|s| s.name)
        .collect::<Vec<_>>()
        .join(", ")
}

fn flatten(prefix: &str, v: &Value, out: &mut Vec<(String, String)>) {
    match v {
        Value::Object(m) => {
            for (k, v) in m {
                let key = if prefix.is_empty() {
                    k.clone()
                } else {
                    format!("{prefix}.{k}")
                };
                flatten(&key, v, out);
            }
        }
        Value::String(s) => out.push((prefix.into(), s.clone())),
        other => out.push((prefix.into(), other.to_string())),
    }
}

/// Sets `a.b.c = val` inside `root` (a JSON object), making the objects on the way.
fn set_path(root: &mut Value, key: &str, val: Value) -> std::result::Result<(), String> {
    let mut at = root;
    let parts: Vec<&str> = key.split('.').collect();
    for (i, part) in parts.iter().enumerate() {
        if part.is_empty() {
            return Err(format!("'{key}' is not a field name"));
        }
        if !at.is_object() {
            *at = Value::Object(Map::new());
        }
        let obj = at.as_object_mut().expect("made an object");
        if i + 1 == parts.len() {
            obj.insert((*part).into(), val);
            return Ok(());
        }
        at = obj
            .entry(*part)
            .or_insert_with(|| Value::Object(Map::new()));
    }
    Ok(())
}

#[cfg(test)]
#[path = "spec_tests.rs"]
mod tests;
