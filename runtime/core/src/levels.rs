//! How the training levels t in 1..=T are drawn (`TrainConfig::levels`, `cold-train train
//! --levels`): uniformly, as the reference does, or in proportion to t.

use serde::{Deserialize, Serialize};

/// The distribution of the training levels t over 1..=T.
#[derive(Clone, Copy, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Levels {
    /// P(t) = 1/T (the reference's).
    #[default]
    Uniform,
    /// P(t) = t / (T (T + 1) / 2): level T drawn T times as often as level 1.
    Linear,
}

impl Levels {
    pub(crate) fn is_uniform(&self) -> bool {
        *self == Levels::Uniform
    }

    /// The level for `u`, a uniform draw from `0..self.draws(steps)`.
    pub fn level(self, u: u64, steps: usize) -> usize {
        match self {
            Levels::Uniform => u as usize + 1,
            // The t whose block [t (t - 1) / 2, t (t + 1) / 2) holds u: t outcomes for level t.
            Levels::Linear => {
                let mut end = 0u64;
                for t in 1..=steps {
                    end += t as u64;
                    if u < end {
                        return t;
                    }
                }
                steps
            }
        }
    }

    /// How many equally likely outcomes one draw chooses from.
    pub fn draws(self, steps: usize) -> u64 {
        let t = steps as u64;
        match self {
            Levels::Uniform => t,
            Levels::Linear => t * (t + 1) / 2,
        }
    }
}

impl std::str::FromStr for Levels {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        match s {
            "uniform" => Ok(Levels::Uniform),
            "linear" => Ok(Levels::Linear),
            _ => Err(format!(
                "unknown level weighting '{s}': choose uniform or linear"
            )),
        }
    }
}
