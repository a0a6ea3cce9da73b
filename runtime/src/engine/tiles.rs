//! Tiles for the restorer R on images of any size: an image is padded (edge pixels repeated) to
//! a multiple of the network's stride and to at least one tile, cut into overlapping square tiles,
//! and R's outputs are blended back with weights that fall linearly across each overlap, so every
//! output pixel is a convex combination of the tiles that cover it. D never runs per tile.

use ndarray::{Array2, Array3, Array4, ArrayView4, s};

/// How R sees an image of another size than the bundle's.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TileSize {
    /// The whole image ([`AUTO_WHOLE_PIXELS`] and below: through the fused step graph when its
    /// sides are multiples of the network's stride) or tiles of [`AUTO_TILE`] pixels.
    Auto,
    /// The whole image in one piece, padded to a multiple of the stride, through the restorer
    /// graph, with D and the update computed apart.
    Whole,
    /// Square tiles of this side (rounded up to a multiple of the stride).
    Side(usize),
}

/// `--tile` and `--tile-overlap`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Tiling {
    pub tile: TileSize,
    /// Pixels shared by neighbouring tiles (less than the tile's side).
    pub overlap: usize,
    /// Tiles per call of R; 0: as many as make [`TILE_BATCH_PIXELS`] pixels (at least one).
    pub batch: usize,
}

impl Tiling {
    /// The tiles per call of R for tiles of `th x tw`.
    pub fn batch_for(&self, (th, tw): (usize, usize)) -> usize {
        match self.batch {
            0 => (TILE_BATCH_PIXELS / (th * tw).max(1)).max(1),
            n => n,
        }
    }
}

impl Tiling {
    /// Pixels of images worth loading together so that their tiles fill one call of R: a batch
    /// of tiles, when it holds more than one (`--tile-batch`); 0 otherwise (one tile per call
    /// gains nothing from sharing, and each loaded image costs memory).
    pub fn shared_pixels(&self) -> u64 {
        let side = match self.tile {
            TileSize::Side(n) => n,
            TileSize::Auto | TileSize::Whole => AUTO_TILE,
        };
        let n = self.batch_for((side, side));
        if n > 1 { (n * side * side) as u64 } else { 0 }
    }
}

/// Images of at most this many pixels go through R whole with `--tile auto`.
pub const AUTO_WHOLE_PIXELS: usize = 512 * 512;
/// The tile side of `--tile auto` on larger images.
pub const AUTO_TILE: usize = 512;
/// Pixels of tiles per call of R by default: ONNX Runtime's working memory for the network grows
/// with them, and one 256x256 tile already keeps a 2-core CPU busy. A 6000x4000 photograph
/// peaked at 2.2 GB of RSS with 4 tiles of 256 per call and ONNX Runtime's CPU arena, at 1.1 GB
/// with one tile of 256 or of 512 per call and no arena (BENCHMARKS.md).
pub const TILE_BATCH_PIXELS: usize = 256 * 256;
/// The default overlap.
pub const DEFAULT_OVERLAP: usize = 32;

impl Default for Tiling {
    fn default() -> Self {
        Tiling {
            tile: TileSize::Auto,
            overlap: DEFAULT_OVERLAP,
            batch: 0,
        }
    }
}

fn round_up(n: usize, m: usize) -> usize {
    n.div_ceil(m) * m
}

/// Where the tiles of one axis start, and the padded length they cover.
fn starts(n: usize, tile: usize, overlap: usize) -> Vec<usize> {
    if n <= tile {
        return vec![0];
    }
    let step = (tile - overlap.min(tile - 1)).max(1);
    let mut v: Vec<usize> = (0..)
        .map(|i| i * step)
        .take_while(|&p| p + tile < n)
        .collect();
    v.push(n - tile);
    v
}

/// The tiles of an image of `height x width`: the padded size and every tile's top-left corner,
/// all of side `(tile_h, tile_w)`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Plan {
    pub padded: (usize, usize),
    pub tile: (usize, usize),
    pub corners: Vec<(usize, usize)>,
    /// The overlap along rows and along columns.
    pub overlap: (usize, usize),
}

impl Plan {
    /// The plan for an image of `height x width` with R's `stride`.
    pub fn new(tiling: &Tiling, stride: usize, height: usize, width: usize) -> Plan {
        let (ph, pw) = (round_up(height, stride), round_up(width, stride));
        let whole = match tiling.tile {
            TileSize::Whole => true,
            TileSize::Auto => height * width <= AUTO_WHOLE_PIXELS,
            TileSize::Side(n) => n >= ph.max(pw),
        };
        if whole {
            return Plan {
                padded: (ph, pw),
                tile: (ph, pw),
                corners: vec![(0, 0)],
                overlap: (0, 0),
            };
        }
        let side = match tiling.tile {
            TileSize::Side(n) => round_up(n.max(1), stride),
            _ => AUTO_TILE,
        };
        // An axis shorter than a tile is one tile of its (padded) length.
        let (th, tw) = (side.min(ph), side.min(pw));
        // At most half a tile, along each axis that is cut.
        let overlap = (tiling.overlap.min(th / 2), tiling.overlap.min(tw / 2));
        let rows = starts(ph, th, overlap.0);
        let cols = starts(pw, tw, overlap.1);
        Plan {
            padded: (ph, pw),
            tile: (th, tw),
            corners: rows
                .iter()
                .flat_map(|&r| cols.iter().map(move |&c| (r, c)))
                .collect(),
            overlap,
        }
    }

    /// Blending weights of one tile: 1 inside, falling linearly to `1 / (overlap + 1)` across the
    /// overlap on each side that has a neighbour.
    fn weights(&self, corner: (usize, usize)) -> Array2<f32> {
        let (th, tw) = self.tile;
        let (ph, pw) = self.padded;
        let ramp = |i: usize, n: usize, start: usize, len: usize, o: usize| -> f32 {
            let o = o as f32;
            let from_start = if start > 0 {
                (i + 1) as f32 / (o + 1.0)
            } else {
                1.0
            };
            let from_end = if start + n < len {
                (n - i) as f32 / (o + 1.0)
            } else {
                1.0
            };
            from_start.min(from_end).min(1.0)
        };
        Array2::from_shape_fn((th, tw), |(y, x)| {
            ramp(y, th, corner.0, ph, self.overlap.0) * ramp(x, tw, corner.1, pw, self.overlap.1)
        })
    }
}

/// R on images of any size, through `r` on batches of tiles `[N, C, th, tw]` with one level
/// each. Every image of the batch `[B, C, H, W]` has the same size; `levels[i]` is image i's.
/// Memory beyond the input: the output, one plane of blending weights per image and a batch of
/// tiles (tiles past the image's edge repeat its last row and column).
pub fn restore_tiled<E>(
    x: ArrayView4<f32>,
    levels: &[i64],
    plan: &Plan,
    batch: usize,
    r: impl FnMut(ArrayView4<f32>, &[i64]) -> Result<Array4<f32>, E>,
) -> Result<Array4<f32>, E> {
    let input = Tiled { x, levels, plan };
    let mut out = restore_tiled_many(&[input], |_| batch, r)?;
    Ok(out.pop().expect("one output per input"))
}

/// One batch of images of one size for [`restore_tiled_many`]: the images, a level each, and
/// their plan.
#[derive(Clone, Copy)]
pub struct Tiled<'a> {
    pub x: ArrayView4<'a, f32>,
    pub levels: &'a [i64],
    pub plan: &'a Plan,
}

/// One tile: its input, the image in that input's batch, and its top-left corner.
type TileJob = (usize, usize, (usize, usize));

/// [`restore_tiled`] over batches of images of different sizes at once: tiles of one shape from
/// every image share the calls of `r`, at most `batch(tile shape)` per call, so a few images of
/// a few tiles each fill a batch together. Returns each input's output, in order.
pub fn restore_tiled_many<E>(
    inputs: &[Tiled],
    batch: impl Fn((usize, usize)) -> usize,
    mut r: impl FnMut(ArrayView4<f32>, &[i64]) -> Result<Array4<f32>, E>,
) -> Result<Vec<Array4<f32>>, E> {
    // The weighted sums of the tiles' outputs over each image (parts past its edge dropped).
    let mut acc: Vec<Array4<f32>> = inputs.iter().map(|t| Array4::zeros(t.x.dim())).collect();
    let mut wsum: Vec<Array3<f32>> = inputs
        .iter()
        .map(|t| {
            let (b, _, h, w) = t.x.dim();
            Array3::zeros((b, h, w))
        })
        .collect();
    // Every tile as (input, image, corner), grouped by tile shape in order of appearance.
    let mut shapes: Vec<((usize, usize), Vec<TileJob>)> = Vec::new();
    for (g, t) in inputs.iter().enumerate() {
        let jobs = (0..t.x.dim().0).flat_map(|i| t.plan.corners.iter().map(move |&k| (g, i, k)));
        match shapes.iter_mut().find(|(shape, _)| *shape == t.plan.tile) {
            Some((_, v)) => v.extend(jobs),
            None => shapes.push((t.plan.tile, jobs.collect())),
        }
    }
    for ((th, tw), jobs) in shapes {
        for group in jobs.chunks(batch((th, tw)).max(1)) {
            let c = inputs[group[0].0].x.dim().1;
            let mut tiles = Array4::<f32>::zeros((group.len(), c, th, tw));
            for (n, &(g, i, (y0, x0))) in group.iter().enumerate() {
                let x = inputs[g].x;
                let (_, _, h, w) = x.dim();
                for k in 0..c {
                    let src = x.slice(s![i, k, .., ..]);
                    tiles
                        .slice_mut(s![n, k, .., ..])
                        .indexed_iter_mut()
                        .for_each(|((y, xx), v)| {
                            *v = src[[(y0 + y).min(h - 1), (x0 + xx).min(w - 1)]];
                        });
                }
            }
            let lv: Vec<i64> = group.iter().map(|&(g, i, _)| inputs[g].levels[i]).collect();
            let out = r(tiles.view(), &lv)?;
            drop(tiles);
            for (n, &(g, i, (y0, x0))) in group.iter().enumerate() {
                let (_, _, h, w) = inputs[g].x.dim();
                if y0 >= h || x0 >= w {
                    continue;
                }
                let (y1, x1) = ((y0 + th).min(h), (x0 + tw).min(w));
                let wt = inputs[g].plan.weights((y0, x0));
                let wt = wt.slice(s![..y1 - y0, ..x1 - x0]);
                for k in 0..c {
                    ndarray::Zip::from(acc[g].slice_mut(s![i, k, y0..y1, x0..x1]))
                        .and(out.slice(s![n, k, ..y1 - y0, ..x1 - x0]))
                        .and(&wt)
                        .for_each(|a, &v, &wgt| *a += v * wgt);
                }
                let mut ws = wsum[g].slice_mut(s![i, y0..y1, x0..x1]);
                ws += &wt;
            }
        }
    }
    for (a, ws) in acc.iter_mut().zip(&wsum) {
        for (mut im, wi) in a.outer_iter_mut().zip(ws.outer_iter()) {
            for mut ch in im.outer_iter_mut() {
                ndarray::Zip::from(&mut ch)
                    .and(&wi)
                    .for_each(|a, &w| *a /= w);
            }
        }
    }
    Ok(acc)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng, rngs::StdRng};

    fn tiling(tile: TileSize, overlap: usize) -> Tiling {
        Tiling {
            tile,
            overlap,
            batch: 3,
        }
    }

    #[test]
    fn tiles_cover_the_padded_image_and_stay_inside_it() {
        for (h, w, tile, overlap) in [
            (600, 400, 256, 32),
            (451, 300, 128, 16),
            (33, 1000, 64, 8),
            (5, 7, 64, 8),
            (512, 512, 256, 0),
        ] {
            let p = Plan::new(&tiling(TileSize::Side(tile), overlap), 4, h, w);
            let (ph, pw) = p.padded;
            assert!(ph >= h && pw >= w && ph.is_multiple_of(4) && pw.is_multiple_of(4));
            assert!(
                p.tile.0.is_multiple_of(4) && p.tile.1.is_multiple_of(4),
                "{p:?}"
            );
            let mut seen = Array2::<u32>::zeros((ph, pw));
            for &(y, x) in &p.corners {
                assert!(y + p.tile.0 <= ph && x + p.tile.1 <= pw, "{p:?}");
                seen.slice_mut(s![y..y + p.tile.0, x..x + p.tile.1])
                    .mapv_inplace(|v| v + 1);
            }
            assert!(
                seen.iter().all(|&v| v >= 1),
                "{h}x{w}: a pixel no tile covers"
            );
        }
        // Small images go through whole with auto; large ones in tiles.
        let p = Plan::new(&Tiling::default(), 4, 300, 451);
        assert_eq!((p.corners.len(), p.padded), (1, (300, 452)));
        let p = Plan::new(&Tiling::default(), 4, 600, 601);
        assert!(p.corners.len() > 1 && p.tile == (AUTO_TILE, AUTO_TILE));
    }

    #[test]
    fn an_r_that_works_per_pixel_is_unchanged_by_tiling() {
        // Any blend of tiles of a per-pixel function is the function: weights sum to one.
        let mut rng = StdRng::seed_from_u64(3);
        let (b, c, h, w) = (2, 3, 37, 61);
        let x = Array4::from_shape_fn((b, c, h, w), |_| rng.random_range(-1.0f32..1.0));
        let levels = [4i64, 9];
        let f = |t: ArrayView4<f32>, lv: &[i64]| -> Result<Array4<f32>, ()> {
            let mut o = t.to_owned();
            for (n, mut im) in o.outer_iter_mut().enumerate() {
                im.mapv_inplace(|v| (v * lv[n] as f32).sin());
            }
            Ok(o)
        };
        let want = restore_tiled(
            x.view(),
            &levels,
            &Plan::new(&tiling(TileSize::Whole, 0), 4, h, w),
            8,
            f,
        )
        .expect("whole");
        for (tile, overlap) in [(16, 4), (8, 0), (32, 12), (12, 11)] {
            let plan = Plan::new(&tiling(TileSize::Side(tile), overlap), 4, h, w);
            assert!(plan.corners.len() > 1);
            let got = restore_tiled(x.view(), &levels, &plan, 5, f).expect("tiled");
            let err = (&got - &want).mapv(f32::abs).fold(0.0f32, |a, &v| a.max(v));
            assert!(err < 1e-6, "tile {tile} overlap {overlap}: {err}");
        }
    }

    #[test]
    fn tiles_of_images_of_different_sizes_share_calls_and_match_each_alone() {
        // R that depends on the whole tile (its mean), so a tile mixed up with another image's
        // would show; the outputs equal each image tiled alone, in fewer calls.
        let mut rng = StdRng::seed_from_u64(5);
        let sizes = [(2, 40, 52), (1, 33, 30), (3, 64, 64)];
        let xs: Vec<Array4<f32>> = sizes
            .iter()
            .map(|&(b, h, w)| {
                Array4::from_shape_fn((b, 2, h, w), |_| rng.random_range(-1.0f32..1.0))
            })
            .collect();
        let levels: Vec<Vec<i64>> = sizes
            .iter()
            .map(|&(b, _, _)| (1..=b as i64).collect())
            .collect();
        let plans: Vec<Plan> = sizes
            .iter()
            .map(|&(_, h, w)| Plan::new(&tiling(TileSize::Side(16), 4), 4, h, w))
            .collect();
        let f = |t: ArrayView4<f32>, lv: &[i64]| -> Result<Array4<f32>, ()> {
            let mut o = t.to_owned();
            for (n, mut im) in o.outer_iter_mut().enumerate() {
                let m = im.mean().expect("mean");
                im.mapv_inplace(|v| v * lv[n] as f32 + m);
            }
            Ok(o)
        };
        let (mut alone_calls, mut shared_calls) = (0, 0);
        let alone: Vec<Array4<f32>> = (0..3)
            .map(|g| {
                restore_tiled(xs[g].view(), &levels[g], &plans[g], 7, |t, lv| {
                    alone_calls += 1;
                    f(t, lv)
                })
                .expect("alone")
            })
            .collect();
        let inputs: Vec<Tiled> = (0..3)
            .map(|g| Tiled {
                x: xs[g].view(),
                levels: &levels[g],
                plan: &plans[g],
            })
            .collect();
        let shared = restore_tiled_many(
            &inputs,
            |_| 7,
            |t, lv| {
                assert!(t.dim().0 <= 7);
                shared_calls += 1;
                f(t, lv)
            },
        )
        .expect("shared");
        for (a, b) in alone.iter().zip(&shared) {
            assert_eq!(a.dim(), b.dim());
            let err = (a - b).mapv(f32::abs).fold(0.0f32, |m, &v| m.max(v));
            assert!(err < 1e-6, "{err}");
        }
        let tiles: usize = (0..3).map(|g| sizes[g].0 * plans[g].corners.len()).sum();
        assert_eq!(shared_calls, tiles.div_ceil(7));
        assert!(
            shared_calls < alone_calls,
            "{shared_calls} vs {alone_calls}"
        );
    }

    #[test]
    fn overlaps_blend_neighbouring_tiles_smoothly() {
        // R that answers each tile with a constant (its corner's row): across an overlap the
        // output moves between the two tiles' values in steps of at most 1 / (overlap + 1).
        let x = Array4::<f32>::zeros((1, 1, 8, 40));
        let plan = Plan::new(&tiling(TileSize::Side(16), 4), 4, 8, 40);
        assert_eq!(plan.corners.len(), 3);
        let mut k = 0.0f32;
        let y: Array4<f32> =
            restore_tiled(x.view(), &[1], &plan, 1, |t: ArrayView4<f32>, _: &[i64]| {
                k += 1.0;
                Ok::<_, ()>(Array4::from_elem(t.dim(), k))
            })
            .expect("tiled");
        let row: Vec<f32> = y.iter().take(40).copied().collect();
        assert_eq!(row[0], 1.0);
        assert_eq!(row[39], plan.corners.len() as f32);
        for i in 1..40 {
            let d = row[i] - row[i - 1];
            assert!(
                (0.0..=1.0 / 5.0 + 1e-5).contains(&d),
                "step {d} at {i}: {row:?}"
            );
        }
    }
}
