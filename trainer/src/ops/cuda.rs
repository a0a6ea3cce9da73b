//! [`TrainBackend`] on Burn's CUDA backend: the generic backward compositions (convolutions with
//! the flipped kernel, one grouped convolution for the depthwise weight gradient).

impl super::TrainBackend for burn::backend::Cuda {}
