//! The attention U-Net, one file per part.

pub mod attention;
pub mod convnext;
pub mod embedding;
pub mod lower;
pub mod norm;
pub mod unet;

pub use unet::{InitUNet, MODEL_PRESETS, UNet, UNetConfig};
