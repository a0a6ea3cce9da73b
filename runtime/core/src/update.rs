//! The samplers' update rules, written once over [`Arith`], the arithmetic they need: the step
//! graph evaluates them as ONNX nodes ([`crate::onnx::GraphBuilder`]), the trainer's sample
//! grids as Burn tensors, the host as float64 numbers ([`F64`]). None of them spells a rule out
//! again.

/// The arithmetic of the update rules, over whatever holds the values (graph value names,
/// tensors, numbers). Per-image coefficients broadcast over images.
pub trait Arith {
    type V;
    fn add(&mut self, a: &Self::V, b: &Self::V) -> Self::V;
    fn sub(&mut self, a: &Self::V, b: &Self::V) -> Self::V;
    fn mul(&mut self, a: &Self::V, b: &Self::V) -> Self::V;
    fn div(&mut self, a: &Self::V, b: &Self::V) -> Self::V;
}

/// Algorithm 2 (the paper's improved sampler): `x_{s'} = x_s - D(x0_hat, s) + D(x0_hat, s')`.
pub fn algorithm2<A: Arith>(a: &mut A, x_s: &A::V, d_s: &A::V, d_prev: &A::V) -> A::V {
    let r = a.sub(x_s, d_s);
    a.add(&r, d_prev)
}

/// Algorithm 1: `x_{s'} = D(x0_hat, s')`.
pub fn algorithm1<A: Arith>(_a: &mut A, d_prev: &A::V) -> A::V
where
    A::V: Clone,
{
    d_prev.clone()
}

/// The coefficients of a mix at the two levels of a step: `D(x, s) = a_s x + b_s z`.
#[derive(Clone, Debug)]
pub struct MixCoefficients<V> {
    pub a_s: V,
    pub b_s: V,
    pub a_prev: V,
    pub b_prev: V,
}

/// The estimated-noise step of a mix (the paper's, DDIM with eta 0): the noise estimated from
/// the state and the estimate, `z_hat = (x_s - a_s x0_hat) / b_s`, then the mix at the next level,
/// `x_{s'} = a_{s'} x0_hat + b_{s'} z_hat`.
pub fn estimated<A: Arith>(
    a: &mut A,
    x_s: &A::V,
    x0_hat: &A::V,
    c: &MixCoefficients<A::V>,
) -> A::V {
    let ax0 = a.mul(&c.a_s, x0_hat);
    let r = a.sub(x_s, &ax0);
    let z = a.div(&r, &c.b_s);
    let ap = a.mul(&c.a_prev, x0_hat);
    let bp = a.mul(&c.b_prev, &z);
    a.add(&ap, &bp)
}

/// Float64 numbers (the host's reference values).
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct F64;

impl Arith for F64 {
    type V = f64;
    fn add(&mut self, a: &f64, b: &f64) -> f64 {
        a + b
    }
    fn sub(&mut self, a: &f64, b: &f64) -> f64 {
        a - b
    }
    fn mul(&mut self, a: &f64, b: &f64) -> f64 {
        a * b
    }
    fn div(&mut self, a: &f64, b: &f64) -> f64 {
        a / b
    }
}

/// Whole image batches on the host, float32 (the runtime's tiled loop).
#[derive(Clone, Copy, Debug, Default)]
pub struct Host;

impl Arith for Host {
    type V = ndarray::Array4<f32>;
    fn add(&mut self, a: &Self::V, b: &Self::V) -> Self::V {
        a + b
    }
    fn sub(&mut self, a: &Self::V, b: &Self::V) -> Self::V {
        a - b
    }
    fn mul(&mut self, a: &Self::V, b: &Self::V) -> Self::V {
        a * b
    }
    fn div(&mut self, a: &Self::V, b: &Self::V) -> Self::V {
        a / b
    }
}

impl Arith for crate::onnx::GraphBuilder<'_> {
    type V = String;
    fn add(&mut self, a: &String, b: &String) -> String {
        self.op1("Add", &[a, b], vec![])
    }
    fn sub(&mut self, a: &String, b: &String) -> String {
        self.op1("Sub", &[a, b], vec![])
    }
    fn mul(&mut self, a: &String, b: &String) -> String {
        self.op1("Mul", &[a, b], vec![])
    }
    fn div(&mut self, a: &String, b: &String) -> String {
        self.op1("Div", &[a, b], vec![])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_rules_on_numbers() {
        assert_eq!(algorithm2(&mut F64, &1.0, &0.25, &0.5), 1.25);
        assert_eq!(algorithm1(&mut F64, &0.5), 0.5);
        // With the true x0 and z, the estimated step lands on the mix at the next level.
        let (x0, z) = (0.3, -1.2);
        let (a_s, b_s, a_p, b_p) = (0.6, 0.8, 0.9, 0.4358898943540674);
        let x_s = a_s * x0 + b_s * z;
        let c = MixCoefficients {
            a_s,
            b_s,
            a_prev: a_p,
            b_prev: b_p,
        };
        let next = estimated(&mut F64, &x_s, &x0, &c);
        assert!((next - (a_p * x0 + b_p * z)).abs() < 1e-15, "{next}");
    }
}
