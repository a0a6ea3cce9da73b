//! Conversions between ndarray batches and Burn tensors.

use burn::prelude::*;
use ndarray::Array4;

/// `[B, C, H, W]` array to a tensor on `device`.
pub fn to_tensor<B: Backend>(x: &Array4<f32>, device: &B::Device) -> Tensor<B, 4> {
    let (b, c, h, w) = x.dim();
    let data: Vec<f32> = x.iter().copied().collect();
    Tensor::from_data(TensorData::new(data, [b, c, h, w]), device)
}

/// A `[B, C, H, W]` tensor back to an array.
pub fn to_array<B: Backend>(x: Tensor<B, 4>) -> Array4<f32> {
    let [b, c, h, w] = x.dims();
    let data = x
        .into_data()
        .convert::<f32>()
        .to_vec::<f32>()
        .expect("float tensor");
    Array4::from_shape_vec((b, c, h, w), data).expect("shape matches")
}
