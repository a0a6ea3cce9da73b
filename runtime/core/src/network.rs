//! The restorer network's size: the trainer builds its Burn modules from [`UNetConfig`], the
//! bundle manifest records it ([`NetworkSpec`]), `cold info` shows it. One definition for both.

use serde::{Deserialize, Serialize};

/// The attention U-Net's size (the reference's `Unet(dim, dim_mults, channels)` with linear
/// attention of `heads x dim_head`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct UNetConfig {
    /// Base width; level i has `dim * dim_mults[i]` channels.
    pub dim: usize,
    /// Width multipliers per resolution level (each level but the last halves the resolution).
    pub dim_mults: Vec<usize>,
    /// Image channels in and out.
    pub channels: usize,
    /// Linear-attention heads.
    #[serde(default = "default_heads")]
    pub heads: usize,
    /// Width of each attention head.
    #[serde(default = "default_dim_head")]
    pub dim_head: usize,
    /// Class conditioning: the names of the classes the network generates by (a class embedding
    /// added to the time embedding, with one more row for the null class, index `len`, trained by
    /// dropping labels); none for an unconditional network.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub classes: Option<Vec<String>>,
}

fn default_heads() -> usize {
    4
}
fn default_dim_head() -> usize {
    32
}

/// Names of the built-in network sizes.
pub const MODEL_PRESETS: &[&str] = &["tiny", "compact", "small", "paper"];

/// What the manifest says the network is.
pub(crate) const ARCHITECTURE: &str = "attention U-Net (ConvNeXt blocks, linear attention)";

impl UNetConfig {
    /// A network of base width `dim` with the reference's attention (4 heads of 32).
    pub fn new(dim: usize, dim_mults: Vec<usize>, channels: usize) -> Self {
        UNetConfig {
            dim,
            dim_mults,
            channels,
            heads: default_heads(),
            dim_head: default_dim_head(),
            classes: None,
        }
    }

    /// The same network conditioned on these classes.
    pub fn with_classes(mut self, classes: Option<Vec<String>>) -> Self {
        self.classes = classes;
        self
    }

    /// The null class's index (what the network sees without a class), for a conditioned
    /// network.
    pub fn null_class(&self) -> Option<i64> {
        self.classes.as_ref().map(|c| c.len() as i64)
    }

    /// The index of a class given by name or by index, for a conditioned network.
    pub fn class_index(&self, class: &str) -> Result<i64, String> {
        let Some(names) = &self.classes else {
            return Err(format!(
                "--class {class}: this model is not conditioned on classes (train one with \
                 `cold-train train --classes`)"
            ));
        };
        if let Some(i) = names.iter().position(|n| n == class) {
            return Ok(i as i64);
        }
        match class.parse::<usize>() {
            Ok(i) if i < names.len() => Ok(i as i64),
            _ => Err(format!(
                "--class {class}: the model's classes are {} (a name or an index 0..{})",
                names.join(", "),
                names.len() - 1
            )),
        }
    }

    pub fn with_heads(mut self, heads: usize) -> Self {
        self.heads = heads;
        self
    }

    pub fn with_dim_head(mut self, dim_head: usize) -> Self {
        self.dim_head = dim_head;
        self
    }

    /// A named size: `tiny` (tests), `compact` (dim 16, 1-2-4, 2x16 heads, 0.92M parameters:
    /// trains on 2 CPU cores, ships as the default model),
    /// `small` (dim 32, 1-2-4: the reference's small model, 3.74M parameters for 3 channels) and
    /// `paper` (dim 64, 1-2-4-8: the paper's 56.6M-parameter model).
    pub fn preset(name: &str, channels: usize) -> Option<Self> {
        let c = match name {
            "tiny" => UNetConfig::new(8, vec![1, 2], channels)
                .with_heads(2)
                .with_dim_head(4),
            "compact" => UNetConfig::new(16, vec![1, 2, 4], channels)
                .with_heads(2)
                .with_dim_head(16),
            "small" => UNetConfig::new(32, vec![1, 2, 4], channels),
            "paper" => UNetConfig::new(64, vec![1, 2, 4, 8], channels),
            _ => return None,
        };
        Some(c)
    }

    /// Channels per level boundary: `[channels, dim*m0, dim*m1, ...]`.
    pub fn level_dims(&self) -> Vec<usize> {
        std::iter::once(self.channels)
            .chain(self.dim_mults.iter().map(|m| self.dim * m))
            .collect()
    }

    /// How many times the contracting path halves the image.
    pub(crate) fn downsamplings(&self) -> usize {
        self.dim_mults.len().saturating_sub(1)
    }

    /// The factor image sides must be multiples of: 2 to the number of downsamplings.
    pub fn stride(&self) -> usize {
        1 << self.downsamplings()
    }

    /// Checks that an image of `height x width` passes through the down/up path unchanged.
    pub fn check_image_size(&self, height: usize, width: usize) -> Result<(), String> {
        let downs = self.downsamplings();
        let f = 1usize << downs;
        if !height.is_multiple_of(f) || !width.is_multiple_of(f) {
            return Err(format!(
                "a U-Net with {} levels halves the image {downs} times, so sides must be multiples \
                 of {f}; {height}x{width} is not (use fewer dim_mults)",
                self.dim_mults.len()
            ));
        }
        Ok(())
    }
}

/// The manifest's `network` section: the size, what it is, and its parameter count.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NetworkSpec {
    pub architecture: String,
    #[serde(flatten)]
    pub config: UNetConfig,
    pub parameters: usize,
}

impl NetworkSpec {
    /// The spec of an attention U-Net of this size with `parameters` parameters.
    pub fn unet(config: UNetConfig, parameters: usize) -> Self {
        NetworkSpec {
            architecture: ARCHITECTURE.into(),
            config,
            parameters,
        }
    }

    /// One line for `cold info`.
    pub fn describe(&self) -> String {
        let c = &self.config;
        let classes = c.classes.as_ref().map_or(String::new(), |n| {
            format!(", conditioned on {} classes ({})", n.len(), n.join(" "))
        });
        format!(
            "{}, dim {}, dim_mults {:?}, {} attention heads x {}, {} parameters{classes}",
            self.architecture, c.dim, c.dim_mults, c.heads, c.dim_head, self.parameters
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_shipped_manifests_network_section_reads_as_typed() {
        // As written by every bundle so far (format version 1).
        let v: NetworkSpec = serde_json::from_str(
            r#"{"architecture": "attention U-Net (ConvNeXt blocks, linear attention)",
                "channels": 1, "dim": 16, "dim_head": 16, "dim_mults": [1, 2, 4], "heads": 2,
                "parameters": 921204}"#,
        )
        .expect("typed");
        let compact = UNetConfig::preset("compact", 1).expect("compact");
        assert_eq!(v, NetworkSpec::unet(compact, 921_204));
        let back: NetworkSpec =
            serde_json::from_value(serde_json::to_value(&v).expect("json")).expect("back");
        assert_eq!(back, v);
        assert_eq!(
            v.describe(),
            "attention U-Net (ConvNeXt blocks, linear attention), dim 16, dim_mults [1, 2, 4], 2 \
             attention heads x 16, 921204 parameters"
        );
        // Without a parameter count it is not a network section.
        assert!(
            serde_json::from_str::<NetworkSpec>(
                r#"{"architecture": "x", "channels": 1, "dim": 16, "dim_mults": [1]}"#
            )
            .is_err()
        );
    }

    #[test]
    fn sides_must_survive_the_downsamplings() {
        let c = UNetConfig::new(8, vec![1, 2, 4], 3);
        assert_eq!(c.level_dims(), vec![3, 8, 16, 32]);
        assert!(c.check_image_size(12, 16).is_ok());
        assert!(c.check_image_size(10, 16).is_err());
        // Old configs without heads read the reference's attention.
        let c: UNetConfig =
            serde_json::from_str(r#"{"dim": 8, "dim_mults": [1], "channels": 1}"#).expect("c");
        assert_eq!((c.heads, c.dim_head), (4, 32));
    }
}
