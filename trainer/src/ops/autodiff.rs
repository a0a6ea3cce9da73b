//! The autodiff nodes of [`TrainBackend`]'s ops: forward on the inner backend, backward through
//! the inner backend's [`TrainBackend`] kernels.

use burn::backend::Autodiff;
use burn::backend::autodiff::NodeId;
use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::tensor::TensorMetadata;
use burn::tensor::ops::{ConvOptions, ConvTransposeOptions, FloatTensor};

use super::{LayerNormState, TrainBackend};

/// What the backward of a (transposed) convolution needs: the checkpointed input and weight.
#[derive(Clone, Debug)]
struct ConvState<O> {
    x: NodeId,
    weight: NodeId,
    x_hw: [usize; 2],
    options: O,
}

#[derive(Debug)]
struct Conv2dBackward;

impl<B: TrainBackend> Backward<B, 3> for Conv2dBackward {
    type State = ConvState<ConvOptions<2>>;

    fn backward(self, ops: Ops<Self::State, 3>, grads: &mut Gradients, ck: &mut Checkpointer) {
        let [node_x, node_w, node_b] = ops.parents;
        let grad = grads.consume::<B>(&ops.node);
        let s = ops.state;
        let weight: FloatTensor<B> = ck.retrieve_node_output(s.weight);
        let x: FloatTensor<B> = ck.retrieve_node_output(s.x);
        if let Some(node) = node_b {
            grads.register::<B>(node.id, B::bias_grad(grad.clone()));
        }
        if let Some(node) = node_w {
            let shape = weight.shape().dims();
            let g = B::conv2d_weight_grad(x, grad.clone(), shape, &s.options);
            grads.register::<B>(node.id, g);
        }
        if let Some(node) = node_x {
            let g = B::conv2d_input_grad(weight, grad, s.x_hw, &s.options);
            grads.register::<B>(node.id, g);
        }
    }
}

#[derive(Debug)]
struct ConvTranspose2dBackward;

impl<B: TrainBackend> Backward<B, 3> for ConvTranspose2dBackward {
    type State = ConvState<ConvTransposeOptions<2>>;

    fn backward(self, ops: Ops<Self::State, 3>, grads: &mut Gradients, ck: &mut Checkpointer) {
        let [node_x, node_w, node_b] = ops.parents;
        let grad = grads.consume::<B>(&ops.node);
        let s = ops.state;
        let weight: FloatTensor<B> = ck.retrieve_node_output(s.weight);
        let x: FloatTensor<B> = ck.retrieve_node_output(s.x);
        if let Some(node) = node_b {
            grads.register::<B>(node.id, B::bias_grad(grad.clone()));
        }
        if let Some(node) = node_w {
            let g = B::conv_transpose2d_weight_grad(
                x.clone(),
                weight.clone(),
                grad.clone(),
                &s.options,
            );
            grads.register::<B>(node.id, g);
        }
        if let Some(node) = node_x {
            let g = B::conv_transpose2d_x_backward(weight, grad, s.options.clone());
            grads.register::<B>(node.id, g);
        }
    }
}

/// The bias-less variants: the same backward with two parents.
#[derive(Debug)]
struct NoBias<T>(T);

impl<B: TrainBackend> Backward<B, 2> for NoBias<Conv2dBackward> {
    type State = ConvState<ConvOptions<2>>;

    fn backward(self, ops: Ops<Self::State, 2>, grads: &mut Gradients, ck: &mut Checkpointer) {
        let [x, w] = ops.parents;
        let ops = Ops {
            parents: [x, w, None],
            node: ops.node,
            state: ops.state,
        };
        Backward::<B, 3>::backward(self.0, ops, grads, ck);
    }
}

impl<B: TrainBackend> Backward<B, 2> for NoBias<ConvTranspose2dBackward> {
    type State = ConvState<ConvTransposeOptions<2>>;

    fn backward(self, ops: Ops<Self::State, 2>, grads: &mut Gradients, ck: &mut Checkpointer) {
        let [x, w] = ops.parents;
        let ops = Ops {
            parents: [x, w, None],
            node: ops.node,
            state: ops.state,
        };
        Backward::<B, 3>::backward(self.0, ops, grads, ck);
    }
}

/// Records a convolution-like node with its input and weight checkpointed. `$op` computes the
/// output on the inner backend from (x, weight, bias).
macro_rules! record {
    ($backward:expr, $x:ident, $weight:ident, $bias:ident, $options:ident, $op:expr) => {{
        let x_hw = {
            let [_, _, h, w] = $x.primitive.shape().dims();
            [h, w]
        };
        match $bias {
            Some(bias) => match $backward
                .prepare::<C>([$x.node.clone(), $weight.node.clone(), bias.node.clone()])
                .compute_bound()
                .stateful()
            {
                OpsKind::Tracked(mut prep) => {
                    let state = ConvState {
                        x: prep.checkpoint(&$x),
                        weight: prep.checkpoint(&$weight),
                        x_hw,
                        options: $options.clone(),
                    };
                    prep.finish(
                        state,
                        $op(
                            $x.primitive,
                            $weight.primitive,
                            Some(bias.primitive),
                            $options,
                        ),
                    )
                }
                OpsKind::UnTracked(prep) => prep.finish($op(
                    $x.primitive,
                    $weight.primitive,
                    Some(bias.primitive),
                    $options,
                )),
            },
            None => match NoBias($backward)
                .prepare::<C>([$x.node.clone(), $weight.node.clone()])
                .compute_bound()
                .stateful()
            {
                OpsKind::Tracked(mut prep) => {
                    let state = ConvState {
                        x: prep.checkpoint(&$x),
                        weight: prep.checkpoint(&$weight),
                        x_hw,
                        options: $options.clone(),
                    };
                    prep.finish(state, $op($x.primitive, $weight.primitive, None, $options))
                }
                OpsKind::UnTracked(prep) => {
                    prep.finish($op($x.primitive, $weight.primitive, None, $options))
                }
            },
        }
    }};
}

impl<B: TrainBackend, C: CheckpointStrategy> TrainBackend for Autodiff<B, C> {
    fn train_conv2d(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        bias: Option<FloatTensor<Self>>,
        options: ConvOptions<2>,
    ) -> FloatTensor<Self> {
        record!(Conv2dBackward, x, weight, bias, options, B::train_conv2d)
    }

    fn train_conv_transpose2d(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        bias: Option<FloatTensor<Self>>,
        options: ConvTransposeOptions<2>,
    ) -> FloatTensor<Self> {
        record!(
            ConvTranspose2dBackward,
            x,
            weight,
            bias,
            options,
            B::train_conv_transpose2d
        )
    }

    fn train_layer_norm(
        x: FloatTensor<Self>,
        gain: FloatTensor<Self>,
        bias: FloatTensor<Self>,
        eps: f64,
    ) -> FloatTensor<Self> {
        let nodes = [x.node.clone(), gain.node.clone(), bias.node.clone()];
        match LayerNormBackward
            .prepare::<C>(nodes)
            .compute_bound()
            .stateful()
        {
            OpsKind::Tracked(prep) => {
                let gain_inner = gain.primitive.clone();
                let state = B::layer_norm_forward(x.primitive, gain.primitive, bias.primitive, eps);
                let y = state.y.clone();
                prep.finish((state, gain_inner), y)
            }
            OpsKind::UnTracked(prep) => prep.finish(B::train_layer_norm(
                x.primitive,
                gain.primitive,
                bias.primitive,
                eps,
            )),
        }
    }

    fn train_add_channel_bias(x: FloatTensor<Self>, bias: FloatTensor<Self>) -> FloatTensor<Self> {
        match ChannelBiasBackward
            .prepare::<C>([x.node.clone(), bias.node.clone()])
            .compute_bound()
            .stateful()
        {
            OpsKind::Tracked(prep) => {
                prep.finish((), B::train_add_channel_bias(x.primitive, bias.primitive))
            }
            OpsKind::UnTracked(prep) => {
                prep.finish(B::train_add_channel_bias(x.primitive, bias.primitive))
            }
        }
    }

    fn train_softmax_last(x: FloatTensor<Self>) -> FloatTensor<Self> {
        match SoftmaxBackward
            .prepare::<C>([x.node.clone()])
            .compute_bound()
            .stateful()
        {
            OpsKind::Tracked(prep) => {
                let y = B::train_softmax_last(x.primitive);
                prep.finish(y.clone(), y)
            }
            OpsKind::UnTracked(prep) => prep.finish(B::train_softmax_last(x.primitive)),
        }
    }

    fn train_gelu(x: FloatTensor<Self>) -> FloatTensor<Self> {
        match GeluBackward
            .prepare::<C>([x.node.clone()])
            .compute_bound()
            .stateful()
        {
            OpsKind::Tracked(prep) => {
                let input = x.primitive.clone();
                prep.finish(input, B::train_gelu(x.primitive))
            }
            OpsKind::UnTracked(prep) => prep.finish(B::train_gelu(x.primitive)),
        }
    }
}

#[derive(Debug)]
struct LayerNormBackward;

impl<B: TrainBackend> Backward<B, 3> for LayerNormBackward {
    type State = (LayerNormState<B>, FloatTensor<B>);

    fn backward(self, ops: Ops<Self::State, 3>, grads: &mut Gradients, _: &mut Checkpointer) {
        let [node_x, node_g, node_b] = ops.parents;
        let grad = grads.consume::<B>(&ops.node);
        let (state, gain) = ops.state;
        let [dx, dgain, dbias] = B::layer_norm_backward(grad, state, gain);
        for (node, g) in [(node_x, dx), (node_g, dgain), (node_b, dbias)] {
            if let Some(node) = node {
                grads.register::<B>(node.id, g);
            }
        }
    }
}

#[derive(Debug)]
struct ChannelBiasBackward;

impl<B: TrainBackend> Backward<B, 2> for ChannelBiasBackward {
    type State = ();

    fn backward(self, ops: Ops<Self::State, 2>, grads: &mut Gradients, _: &mut Checkpointer) {
        let [node_x, node_b] = ops.parents;
        let grad = grads.consume::<B>(&ops.node);
        if let Some(node) = node_b {
            grads.register::<B>(node.id, B::plane_sums(grad.clone()));
        }
        if let Some(node) = node_x {
            grads.register::<B>(node.id, grad);
        }
    }
}

#[derive(Debug)]
struct SoftmaxBackward;

impl<B: TrainBackend> Backward<B, 1> for SoftmaxBackward {
    type State = FloatTensor<B>;

    fn backward(self, ops: Ops<Self::State, 1>, grads: &mut Gradients, _: &mut Checkpointer) {
        let [node_x] = ops.parents;
        let grad = grads.consume::<B>(&ops.node);
        if let Some(node) = node_x {
            grads.register::<B>(node.id, B::softmax_last_backward(ops.state, grad));
        }
    }
}

#[derive(Debug)]
struct GeluBackward;

impl<B: TrainBackend> Backward<B, 1> for GeluBackward {
    type State = FloatTensor<B>;

    fn backward(self, ops: Ops<Self::State, 1>, grads: &mut Gradients, _: &mut Checkpointer) {
        let [node_x] = ops.parents;
        let grad = grads.consume::<B>(&ops.node);
        if let Some(node) = node_x {
            grads.register::<B>(node.id, B::gelu_grad(ops.state, grad));
        }
    }
}
