//! The layers of the FID Inception-v3 (the stem and the mixed blocks) as ONNX nodes, reading
//! the archive's storages in the order the architecture uses them.

use cold_core::onnx::{Attr, GraphBuilder};

use super::inception::{FEATURES, Storages};
use crate::error::Result;

/// Builds the graph on `g`, reading the weights in order.
struct Net<'a, 'g, 'w> {
    g: &'a mut GraphBuilder<'w>,
    st: &'g mut Storages,
}

impl Net<'_, '_, '_> {
    /// Conv (no bias) -> batch norm (beta only, eps 1e-3) -> ReLU.
    fn conv(
        &mut self,
        name: &str,
        x: &str,
        [cout, cin, kh, kw]: [usize; 4],
        stride: usize,
        [ph, pw]: [usize; 2],
    ) -> Result<String> {
        let w = self.st.take(&[cout, cin, kh, kw])?;
        let beta = self.st.take(&[cout])?;
        let mean = self.st.take(&[cout])?;
        let var = self.st.take(&[cout])?;
        let g = &mut *self.g;
        let wn = g.weight(&format!("{name}.weight"), &w, &[cout, cin, kh, kw]);
        let bn = g.weight(&format!("{name}.beta"), &beta, &[cout]);
        let mn = g.weight(&format!("{name}.mean"), &mean, &[cout]);
        let vn = g.weight(&format!("{name}.var"), &var, &[cout]);
        let one = g.weight(&format!("{name}.scale"), &vec![1.0; cout], &[cout]);
        g.scoped(name, |g| {
            let y = g.op1(
                "Conv",
                &[x, &wn],
                vec![
                    ("strides", Attr::Ints(vec![stride as i64; 2])),
                    (
                        "pads",
                        Attr::Ints(vec![ph as i64, pw as i64, ph as i64, pw as i64]),
                    ),
                ],
            );
            let y = g.op1(
                "BatchNormalization",
                &[&y, &one, &bn, &mn, &vn],
                vec![("epsilon", Attr::Float(1e-3))],
            );
            Ok(g.op1("Relu", &[&y], vec![]))
        })
    }

    fn max_pool(&mut self, x: &str, stride: usize, pad: usize) -> String {
        self.g.op1(
            "MaxPool",
            &[x],
            vec![
                ("kernel_shape", Attr::Ints(vec![3, 3])),
                ("strides", Attr::Ints(vec![stride as i64; 2])),
                ("pads", Attr::Ints(vec![pad as i64; 4])),
            ],
        )
    }

    /// 3x3, stride 1, padding 1, padded pixels not counted.
    fn avg_pool(&mut self, x: &str) -> String {
        self.g.op1(
            "AveragePool",
            &[x],
            vec![
                ("kernel_shape", Attr::Ints(vec![3, 3])),
                ("strides", Attr::Ints(vec![1, 1])),
                ("pads", Attr::Ints(vec![1; 4])),
                ("count_include_pad", Attr::Int(0)),
            ],
        )
    }

    fn cat(&mut self, parts: &[String]) -> String {
        let refs: Vec<&str> = parts.iter().map(|s| s.as_str()).collect();
        self.g.op1("Concat", &refs, vec![("axis", Attr::Int(1))])
    }

    fn block_a(&mut self, n: &str, x: &str, cin: usize, pool_features: usize) -> Result<String> {
        let a = self.conv(&format!("{n}.conv"), x, [64, cin, 1, 1], 1, [0, 0])?;
        let b = self.conv(&format!("{n}.tower.conv"), x, [48, cin, 1, 1], 1, [0, 0])?;
        let b = self.conv(&format!("{n}.tower.conv_1"), &b, [64, 48, 5, 5], 1, [2, 2])?;
        let c = self.conv(&format!("{n}.tower_1.conv"), x, [64, cin, 1, 1], 1, [0, 0])?;
        let c = self.conv(
            &format!("{n}.tower_1.conv_1"),
            &c,
            [96, 64, 3, 3],
            1,
            [1, 1],
        )?;
        let c = self.conv(
            &format!("{n}.tower_1.conv_2"),
            &c,
            [96, 96, 3, 3],
            1,
            [1, 1],
        )?;
        let p = self.avg_pool(x);
        let d = self.conv(
            &format!("{n}.tower_2.conv"),
            &p,
            [pool_features, cin, 1, 1],
            1,
            [0, 0],
        )?;
        Ok(self.cat(&[a, b, c, d]))
    }

    fn block_b(&mut self, n: &str, x: &str) -> Result<String> {
        let a = self.conv(&format!("{n}.conv"), x, [384, 288, 3, 3], 2, [0, 0])?;
        let b = self.conv(&format!("{n}.tower.conv"), x, [64, 288, 1, 1], 1, [0, 0])?;
        let b = self.conv(&format!("{n}.tower.conv_1"), &b, [96, 64, 3, 3], 1, [1, 1])?;
        let b = self.conv(&format!("{n}.tower.conv_2"), &b, [96, 96, 3, 3], 2, [0, 0])?;
        let p = self.max_pool(x, 2, 0);
        Ok(self.cat(&[a, b, p]))
    }

    fn block_c(&mut self, n: &str, x: &str, c7: usize) -> Result<String> {
        let a = self.conv(&format!("{n}.conv"), x, [192, 768, 1, 1], 1, [0, 0])?;
        let b = self.conv(&format!("{n}.tower.conv"), x, [c7, 768, 1, 1], 1, [0, 0])?;
        let b = self.conv(&format!("{n}.tower.conv_1"), &b, [c7, c7, 1, 7], 1, [0, 3])?;
        let b = self.conv(&format!("{n}.tower.conv_2"), &b, [192, c7, 7, 1], 1, [3, 0])?;
        let c = self.conv(&format!("{n}.tower_1.conv"), x, [c7, 768, 1, 1], 1, [0, 0])?;
        let c = self.conv(
            &format!("{n}.tower_1.conv_1"),
            &c,
            [c7, c7, 7, 1],
            1,
            [3, 0],
        )?;
        let c = self.conv(
            &format!("{n}.tower_1.conv_2"),
            &c,
            [c7, c7, 1, 7],
            1,
            [0, 3],
        )?;
        let c = self.conv(
            &format!("{n}.tower_1.conv_3"),
            &c,
            [c7, c7, 7, 1],
            1,
            [3, 0],
        )?;
        let c = self.conv(
            &format!("{n}.tower_1.conv_4"),
            &c,
            [192, c7, 1, 7],
            1,
            [0, 3],
        )?;
        let p = self.avg_pool(x);
        let d = self.conv(
            &format!("{n}.tower_2.conv"),
            &p,
            [192, 768, 1, 1],
            1,
            [0, 0],
        )?;
        Ok(self.cat(&[a, b, c, d]))
    }

    fn block_d(&mut self, n: &str, x: &str) -> Result<String> {
        let a = self.conv(&format!("{n}.tower.conv"), x, [192, 768, 1, 1], 1, [0, 0])?;
        let a = self.conv(
            &format!("{n}.tower.conv_1"),
            &a,
            [320, 192, 3, 3],
            2,
            [0, 0],
        )?;
        let b = self.conv(&format!("{n}.tower_1.conv"), x, [192, 768, 1, 1], 1, [0, 0])?;
        let b = self.conv(
            &format!("{n}.tower_1.conv_1"),
            &b,
            [192, 192, 1, 7],
            1,
            [0, 3],
        )?;
        let b = self.conv(
            &format!("{n}.tower_1.conv_2"),
            &b,
            [192, 192, 7, 1],
            1,
            [3, 0],
        )?;
        let b = self.conv(
            &format!("{n}.tower_1.conv_3"),
            &b,
            [192, 192, 3, 3],
            2,
            [0, 0],
        )?;
        let p = self.max_pool(x, 2, 0);
        Ok(self.cat(&[a, b, p]))
    }

    /// The last two blocks; the very last one max-pools its pool tower (as the TF graph does).
    fn block_e(&mut self, n: &str, x: &str, cin: usize, max_pool: bool) -> Result<String> {
        // Parameters in the order the archive stores them.
        let c0 = self.conv(&format!("{n}.conv"), x, [320, cin, 1, 1], 1, [0, 0])?;
        let a = self.conv(&format!("{n}.tower_conv"), x, [384, cin, 1, 1], 1, [0, 0])?;
        let a1 = self.conv(
            &format!("{n}.tower_mixed_conv"),
            &a,
            [384, 384, 1, 3],
            1,
            [0, 1],
        )?;
        let a2 = self.conv(
            &format!("{n}.tower_mixed_conv_1"),
            &a,
            [384, 384, 3, 1],
            1,
            [1, 0],
        )?;
        let b = self.conv(&format!("{n}.tower_1_conv"), x, [448, cin, 1, 1], 1, [0, 0])?;
        let b = self.conv(
            &format!("{n}.tower_1_conv_1"),
            &b,
            [384, 448, 3, 3],
            1,
            [1, 1],
        )?;
        let b1 = self.conv(
            &format!("{n}.tower_1_mixed_conv"),
            &b,
            [384, 384, 1, 3],
            1,
            [0, 1],
        )?;
        let b2 = self.conv(
            &format!("{n}.tower_1_mixed_conv_1"),
            &b,
            [384, 384, 3, 1],
            1,
            [1, 0],
        )?;
        let p = if max_pool {
            self.max_pool(x, 1, 1)
        } else {
            self.avg_pool(x)
        };
        let d = self.conv(
            &format!("{n}.tower_2_conv"),
            &p,
            [192, cin, 1, 1],
            1,
            [0, 0],
        )?;
        Ok(self.cat(&[c0, a1, a2, b1, b2, d]))
    }
}

pub(super) fn network(g: &mut GraphBuilder, st: &mut Storages, x: &str) -> Result<String> {
    let mut n = Net { g, st };
    // Stem: 299 -> 149 -> 147 -> 147 -> 73 -> 73 -> 71 -> 35.
    let h = n.conv("conv", x, [32, 3, 3, 3], 2, [0, 0])?;
    let h = n.conv("conv_1", &h, [32, 32, 3, 3], 1, [0, 0])?;
    let h = n.conv("conv_2", &h, [64, 32, 3, 3], 1, [1, 1])?;
    let h = n.max_pool(&h, 2, 0);
    let h = n.conv("conv_3", &h, [80, 64, 1, 1], 1, [0, 0])?;
    let h = n.conv("conv_4", &h, [192, 80, 3, 3], 1, [0, 0])?;
    let h = n.max_pool(&h, 2, 0);
    // 35x35
    let h = n.block_a("mixed", &h, 192, 32)?;
    let h = n.block_a("mixed_1", &h, 256, 64)?;
    let h = n.block_a("mixed_2", &h, 288, 64)?;
    // 17x17
    let h = n.block_b("mixed_3", &h)?;
    let h = n.block_c("mixed_4", &h, 128)?;
    let h = n.block_c("mixed_5", &h, 160)?;
    let h = n.block_c("mixed_6", &h, 160)?;
    let h = n.block_c("mixed_7", &h, 192)?;
    // 8x8
    let h = n.block_d("mixed_8", &h)?;
    let h = n.block_e("mixed_9", &h, 1280, false)?;
    let h = n.block_e("mixed_10", &h, 2048, true)?;
    // pool3: the 8x8 average, flattened.
    let g = &mut *n.g;
    let h = g.op1("GlobalAveragePool", &[&h], vec![]);
    let shape = g.const_i64(&[-1, FEATURES as i64], &[2]);
    Ok(g.op1("Reshape", &[&h, &shape], vec![]))
}
