"""Classical deblurring of scikit-image's bundled photographs, as a yardstick for `cold restore`.

Run through benches/photo.sh (pinned, hash-checked .venv-photo). No network at run time: the
photographs ship inside the scikit-image wheel.

Subcommands

  prepare --out DIR [--grey]
      Writes the originals as 8-bit RGB PNGs from skimage.data: astronaut, coffee, chelsea,
      rocket (DIR/astronaut.png, ...). --grey adds camera (8-bit grey).

  blur --originals DIR --t T --out DIR [--depth 8|16]
      The reference's CIFAR-10 blur ("Special_6_routine", runtime/core/src/degradation/blur.rs
      `BlurSchedule::Cifar`) at level T, in float64: the image in [-1, 1] (x/255*2-1) is convolved
      T times in turn with normalised 11x11 Gaussians of sigma_i = i/100 + 0.35, i = 0..T-1, each
      a separable 11-tap convolution with reflect padding (mirror without repeating the edge
      pixel, torch 'reflect'), per channel. Written clipped to [-1, 1] as PNGs of 8 (default) or
      16 bits. --sigma-start 1 shifts the index (sigma_i = (i+1)/100 + 0.35), a variant only.

  patches --photos DIR --out DIR [--side 71] [--per-photo 60] [--scales 1,0.7,0.5] [--seed 0]
      Training material for a photograph model (not the benchmark's photographs): each photo of
      DIR (any format Pillow reads) at each scale (bicubic, of the photo as it is), cut into
      --per-photo random crops of side x side (flat, OUT/<photo>-<scale>-<k>.png, 8-bit RGB).
      With side = int(1.12 S) (71 for S = 64), `cold-train train --dataset folder:OUT --size S`
      takes them at their own scale and crops S x S at random from each.

  strips --out FILE --side N ROW_LABEL=DIR ...
      One PNG for a model card: for each photograph (the file stems of the first DIR), a row of
      its centred N x N crop from each DIR in turn (e.g. degraded=D cold=C wiener=W original=O),
      2-pixel white gaps; the labels are printed in order.

  classical --originals DIR --t T --out DIR [--from DIR] [--balance 0.003] [--rl-iter 300]
      Blurs the originals as `blur` does (float64, unquantised) or reads blurred PNGs from
      --from, then deconvolves each channel with the true composed kernel (the T 1-D kernels
      convolved together, length 10T+1; the 2-D kernel is its outer product) after reflect-padding
      the image by the kernel's radius (cropped back afterwards):
        skimage.restoration.wiener(image, psf, balance=0.003, clip=False)   -> OUT/wiener/NAME.png
        skimage.restoration.richardson_lucy(image, psf, num_iter=300)       -> OUT/rl/NAME.png
      both on the [0, 1] range (Richardson-Lucy needs non-negative data). OUT/classical.json holds
      the SSIM (as `score`, on the clipped float results) of blurred, wiener and rl per image and
      their means (and, under other_*, the same in the other SSIM convention). --save-float keeps
      the unclipped float64 arrays in OUT/float/NAME.npz.

  score --originals DIR --restored DIR [--json FILE] [--label L]
      SSIM of each restored image (PNG of 8 or 16 bits, RGB or grey; matched to the original by
      file stem) against its original, with skimage.metrics.structural_similarity(a, b,
      channel_axis=-1, data_range=1.0, gaussian_weights=True, sigma=1.5,
      use_sample_covariance=False) on float images in [0, 1] (grey: no channel_axis): Wang et
      al.'s convention, the one that gives the issue's 0.684 for the blurred photographs. Prints
      a table and the mean; --json appends {label, images: {name: ssim}, mean} to a JSON list.
      --uniform-window (skimage's default 7x7 window) and --data-range try other conventions.

PNG: 8-bit files are read and written with Pillow; 16-bit files with the small codec below
(Pillow truncates 16-bit RGB to 8 bits).
"""
import argparse
import json
import os
import struct
import sys
import time
import zlib

import numpy as np

PHOTOS = ["astronaut", "coffee", "chelsea", "rocket"]
GREY = ["camera"]
KERNEL_SIZE = 11


# ------------------------------------------------------------------------------------------------
# PNG input / output
# ------------------------------------------------------------------------------------------------

def _png_chunk(kind, data):
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def write_png16(path, a):
    """uint16 array HxW or HxWxC (C = 1, 2, 3, 4) -> 16-bit PNG (filter 0)."""
    a = np.asarray(a, dtype=np.uint16)
    if a.ndim == 2:
        a = a[:, :, None]
    h, w, c = a.shape
    ctype = {1: 0, 2: 4, 3: 2, 4: 6}[c]
    raw = a.astype(">u2").reshape(h, w * c).view(np.uint8)
    rows = np.concatenate([np.zeros((h, 1), np.uint8), raw], axis=1)
    ihdr = struct.pack(">IIBBBBB", w, h, 16, ctype, 0, 0, 0)
    with open(path, "wb") as f:
        f.write(b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", ihdr)
                + _png_chunk(b"IDAT", zlib.compress(rows.tobytes(), 6)) + _png_chunk(b"IEND", b""))


def _png_header(path):
    with open(path, "rb") as f:
        head = f.read(33)
    if head[:8] != b"\x89PNG\r\n\x1a\n" or head[12:16] != b"IHDR":
        return None
    w, h, depth, ctype, _, _, interlace = struct.unpack(">IIBBBBB", head[16:29])
    return w, h, depth, ctype, interlace


def _unfilter(data, h, stride, bpp):
    """PNG scanline reconstruction (filters 0-4) -> uint8 array h x stride."""
    out = np.zeros((h, stride), np.uint8)
    prev = np.zeros(stride, np.uint8)
    pos = 0
    for y in range(h):
        ft = data[pos]
        line = np.frombuffer(data, np.uint8, stride, pos + 1)
        pos += 1 + stride
        if ft == 0:
            cur = line.copy()
        elif ft == 1:
            cur = (np.cumsum(line.reshape(-1, bpp).astype(np.int64), axis=0) & 255).astype(np.uint8).ravel()
        elif ft == 2:
            cur = (line.astype(np.uint16) + prev).astype(np.uint8)
        elif ft in (3, 4):
            ln, up = line.tolist(), prev.tolist()
            cur_l = [0] * stride
            for x in range(stride):
                left = cur_l[x - bpp] if x >= bpp else 0
                if ft == 3:
                    cur_l[x] = (ln[x] + ((left + up[x]) >> 1)) & 255
                else:
                    ul = up[x - bpp] if x >= bpp else 0
                    p = left + up[x] - ul
                    pa, pb, pc = abs(p - left), abs(p - up[x]), abs(p - ul)
                    pred = left if (pa <= pb and pa <= pc) else (up[x] if pb <= pc else ul)
                    cur_l[x] = (ln[x] + pred) & 255
            cur = np.array(cur_l, np.uint8)
        else:
            raise ValueError(f"bad PNG filter type {ft}")
        out[y] = cur
        prev = cur
    return out


def read_png16(path):
    """A non-interlaced 16-bit PNG -> uint16 array HxWxC."""
    with open(path, "rb") as f:
        blob = f.read()
    pos, idat, ihdr = 8, [], None
    while pos < len(blob):
        (n,) = struct.unpack(">I", blob[pos:pos + 4])
        kind, data = blob[pos + 4:pos + 8], blob[pos + 8:pos + 8 + n]
        pos += 12 + n
        if kind == b"IHDR":
            ihdr = struct.unpack(">IIBBBBB", data)
        elif kind == b"IDAT":
            idat.append(data)
        elif kind == b"IEND":
            break
    w, h, depth, ctype, _, _, interlace = ihdr
    if depth != 16 or interlace != 0 or ctype not in (0, 2, 4, 6):
        raise ValueError(f"{path}: unsupported PNG (depth {depth}, colour type {ctype}, interlace {interlace})")
    c = {0: 1, 4: 2, 2: 3, 6: 4}[ctype]
    rows = _unfilter(zlib.decompress(b"".join(idat)), h, w * c * 2, c * 2)
    return rows.view(">u2").astype(np.uint16).reshape(h, w, c)


def read_image(path):
    """Any PNG (8/16 bit, grey/RGB, with or without alpha) or other Pillow-readable file -> float64
    in [0, 1], HxW (grey) or HxWx3 (alpha dropped)."""
    hdr = _png_header(path)
    if hdr is not None and hdr[2] == 16:
        a = read_png16(path).astype(np.float64) / 65535.0
    else:
        from PIL import Image
        with Image.open(path) as im:
            if im.mode in ("I;16", "I;16B", "I;16L", "I"):
                a = np.asarray(im, dtype=np.float64) / 65535.0
            else:
                if im.mode not in ("L", "RGB"):
                    im = im.convert("LA" if im.mode in ("LA", "La", "1") else "RGB")
                    if im.mode == "LA":
                        im = im.getchannel(0)
                a = np.asarray(im, dtype=np.float64) / 255.0
    if a.ndim == 3:
        if a.shape[2] in (2, 4):
            a = a[:, :, :-1]
        if a.shape[2] == 1:
            a = a[:, :, 0]
    return a


def write_image(path, x01, depth=8):
    """float image in [0, 1] (clipped here) -> PNG of 8 or 16 bits."""
    x = np.clip(x01, 0.0, 1.0)
    if depth == 16:
        write_png16(path, np.rint(x * 65535.0).astype(np.uint16))
    elif depth == 8:
        from PIL import Image
        Image.fromarray(np.rint(x * 255.0).astype(np.uint8)).save(path)
    else:
        raise ValueError(f"depth must be 8 or 16, got {depth}")


def list_images(folder):
    exts = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp", ".webp")
    out = {}
    for f in sorted(os.listdir(folder)):
        stem, ext = os.path.splitext(f)
        if ext.lower() in exts and stem not in out:
            out[stem] = os.path.join(folder, f)
    return out


# ------------------------------------------------------------------------------------------------
# The blur (runtime/core/src/degradation/blur.rs, BlurSchedule::Cifar, Padding::Reflect)
# ------------------------------------------------------------------------------------------------

def sigma(i, start=0):
    return (i + start) / 100.0 + 0.35


def gaussian_kernel_1d(size, s):
    c = size // 2
    x = np.arange(size, dtype=np.float64) - c
    g = np.exp(-(x * x) / (2.0 * s * s))
    return g / g.sum()


def kernels(t, start=0):
    return [gaussian_kernel_1d(KERNEL_SIZE, sigma(i, start)) for i in range(t)]


def blur_step(x, k):
    """One separable step on an HxW or HxWxC float64 array, reflect padding (scipy 'mirror')."""
    from scipy.ndimage import correlate1d
    x = correlate1d(x, k, axis=0, mode="mirror")
    return correlate1d(x, k, axis=1, mode="mirror")


def blur(x_pm1, t, start=0):
    """t blur steps of an image in [-1, 1] (float64), per channel."""
    x = np.asarray(x_pm1, dtype=np.float64)
    for k in kernels(t, start):
        x = blur_step(x, k)
    return x


def composed_kernel_1d(t, start=0):
    ks = kernels(t, start)
    k = ks[0]
    for q in ks[1:]:
        k = np.convolve(k, q)  # full: length grows by 10 each step -> 10 t + 1
    return k


# ------------------------------------------------------------------------------------------------
# SSIM
# ------------------------------------------------------------------------------------------------

def ssim(a, b, gaussian_weights=True, data_range=1.0):
    from skimage.metrics import structural_similarity
    if a.shape != b.shape:
        raise ValueError(f"shape mismatch {a.shape} vs {b.shape}")
    kw = dict(data_range=data_range)
    if gaussian_weights:
        kw.update(gaussian_weights=True, sigma=1.5, use_sample_covariance=False)
    if a.ndim == 3:
        kw["channel_axis"] = -1
    return float(structural_similarity(a, b, **kw))


def match_channels(orig, rest):
    """Grey restored vs RGB original (or the reverse): compare in grey."""
    if orig.ndim == rest.ndim:
        return orig, rest
    from skimage.color import rgb2gray
    if orig.ndim == 3:
        return rgb2gray(orig), rest
    return orig, rgb2gray(rest)


# ------------------------------------------------------------------------------------------------
# Subcommands
# ------------------------------------------------------------------------------------------------

def cmd_prepare(a):
    from PIL import Image
    from skimage import data
    os.makedirs(a.out, exist_ok=True)
    names = PHOTOS + (GREY if a.grey else [])
    for name in names:
        img = np.asarray(getattr(data, name)())
        if name in GREY:
            img = img if img.ndim == 2 else img[:, :, 0]
        else:
            img = img[:, :, :3] if img.ndim == 3 else np.stack([img] * 3, axis=-1)
        assert img.dtype == np.uint8, (name, img.dtype)
        path = os.path.join(a.out, f"{name}.png")
        Image.fromarray(img).save(path)
        print(f"{path}  {img.shape[1]}x{img.shape[0]}  {'grey' if img.ndim == 2 else 'RGB'}")


def cmd_patches(a):
    from PIL import Image
    rng = np.random.default_rng(a.seed)
    os.makedirs(a.out, exist_ok=True)
    scales = [float(v) for v in a.scales.split(",")]
    n = 0
    for name in sorted(os.listdir(a.photos)):
        try:
            im = Image.open(os.path.join(a.photos, name)).convert("RGB")
        except Exception:
            continue
        stem = os.path.splitext(name)[0]
        for sc in scales:
            w, h = round(im.width * sc), round(im.height * sc)
            if min(w, h) < a.side:
                continue
            scaled = im.resize((w, h), Image.BICUBIC) if sc != 1.0 else im
            for k in range(a.per_photo):
                x = int(rng.integers(0, w - a.side + 1))
                y = int(rng.integers(0, h - a.side + 1))
                scaled.crop((x, y, x + a.side, y + a.side)).save(
                    os.path.join(a.out, f"{stem}-{sc:g}-{k:03d}.png"))
                n += 1
    print(f"{n} patches of {a.side}x{a.side} in {a.out}")


def cmd_strips(a):
    cols = [c.split("=", 1) for c in a.dirs]
    names = list(list_images(cols[0][1]).keys())
    n, gap = a.side, 2
    rows = []
    for name in names:
        tiles = []
        for _, d in cols:
            x = read_image(list_images(d)[name])
            x = x if x.ndim == 3 else np.stack([x] * 3, axis=-1)
            h, w = x.shape[:2]
            y0, x0 = max(0, (h - n) // 2), max(0, (w - n) // 2)
            tiles.append(x[y0:y0 + n, x0:x0 + n, :3])
        row = np.ones((n, len(cols) * (n + gap) - gap, 3))
        for i, t in enumerate(tiles):
            row[:t.shape[0], i * (n + gap):i * (n + gap) + t.shape[1]] = t
        rows.append(row)
    out = np.ones((len(rows) * (n + gap) - gap, rows[0].shape[1], 3))
    for i, r_ in enumerate(rows):
        out[i * (n + gap):i * (n + gap) + n] = r_
    write_image(a.out, np.clip(out, 0, 1), 8)
    print(f"{a.out}: rows {', '.join(names)}; columns {', '.join(c for c, _ in cols)}")


def _blurred_01(x01, t, start):
    """[0,1] original -> blurred in [-1,1] (the reference's range) -> back to [0,1], unclipped."""
    y = blur(x01 * 2.0 - 1.0, t, start)
    return (y + 1.0) / 2.0


def cmd_blur(a):
    os.makedirs(a.out, exist_ok=True)
    for name, path in list_images(a.originals).items():
        t0 = time.perf_counter()
        y = _blurred_01(read_image(path), a.t, a.sigma_start)
        out = os.path.join(a.out, f"{name}.png")
        write_image(out, y, a.depth)
        print(f"{out}  t={a.t}  {a.depth}-bit  {time.perf_counter() - t0:.2f}s")


def _deconvolve(b01, psf, r, how, balance, num_iter):
    from skimage.restoration import richardson_lucy, wiener
    chans = [b01] if b01.ndim == 2 else [b01[:, :, c] for c in range(b01.shape[2])]
    out = []
    for ch in chans:
        p = np.pad(ch, r, mode="reflect")
        if how == "wiener":
            d = wiener(p, psf, balance=balance, clip=False)
        else:
            d = richardson_lucy(np.clip(p, 0.0, None), psf, num_iter=num_iter)
        out.append(d[r:-r, r:-r] if r > 0 else d)
    return out[0] if b01.ndim == 2 else np.stack(out, axis=-1)


def cmd_classical(a):
    k1 = composed_kernel_1d(a.t, a.sigma_start)
    psf = np.outer(k1, k1)
    r = len(k1) // 2
    os.makedirs(os.path.join(a.out, "wiener"), exist_ok=True)
    os.makedirs(os.path.join(a.out, "rl"), exist_ok=True)
    blurred_from = list_images(a.from_dir) if a.from_dir else None
    rows, other, timing = {}, {}, {}
    for name, path in list_images(a.originals).items():
        x = read_image(path)
        t0 = time.perf_counter()
        if blurred_from is not None:
            if name not in blurred_from:
                print(f"skip {name}: not in {a.from_dir}", file=sys.stderr)
                continue
            b = read_image(blurred_from[name])
        else:
            b = _blurred_01(x, a.t, a.sigma_start)
        if min(b.shape[:2]) <= r:
            raise SystemExit(f"{name}: image {b.shape[1]}x{b.shape[0]} too small to reflect-pad by {r}")
        t1 = time.perf_counter()
        w = _deconvolve(b, psf, r, "wiener", a.balance, a.rl_iter)
        t2 = time.perf_counter()
        # --rl-iter 0 skips Richardson-Lucy (its score is then the blurred image's).
        rl = _deconvolve(b, psf, r, "rl", a.balance, a.rl_iter) if a.rl_iter > 0 else b
        t3 = time.perf_counter()
        if a.save_float:
            os.makedirs(os.path.join(a.out, "float"), exist_ok=True)
            np.savez_compressed(os.path.join(a.out, "float", f"{name}.npz"), blurred=b, wiener=w, rl=rl)
        w, rl, bc = np.clip(w, 0, 1), np.clip(rl, 0, 1), np.clip(b, 0, 1)
        write_image(os.path.join(a.out, "wiener", f"{name}.png"), w, a.depth)
        write_image(os.path.join(a.out, "rl", f"{name}.png"), rl, a.depth)
        outs = (("blurred", bc), ("wiener", w), ("rl", rl))
        s = {k: ssim(x, v, a.gaussian_weights) for k, v in outs}
        rows[name] = s
        other[name] = {k: ssim(x, v, not a.gaussian_weights) for k, v in outs}
        timing[name] = {"blur_s": round(t1 - t0, 3), "wiener_s": round(t2 - t1, 3), "rl_s": round(t3 - t2, 3)}
        print(f"{name:12s} blurred {s['blurred']:.4f}  wiener {s['wiener']:.4f}  rl {s['rl']:.4f}   "
              f"(blur {t1 - t0:.1f}s, wiener {t2 - t1:.1f}s, rl {t3 - t2:.1f}s)", flush=True)
    mean = {k: float(np.mean([r_[k] for r_ in rows.values()])) for k in ("blurred", "wiener", "rl")}
    print(f"{'mean':12s} blurred {mean['blurred']:.4f}  wiener {mean['wiener']:.4f}  rl {mean['rl']:.4f}")
    om = {k: float(np.mean([r_[k] for r_ in other.values()])) for k in ("blurred", "wiener", "rl")}
    print(f"{'mean, other SSIM':12s} blurred {om['blurred']:.4f}  wiener {om['wiener']:.4f}  rl {om['rl']:.4f}"
          f"  ({'uniform window' if a.gaussian_weights else 'gaussian weights'})")
    report = {
        "t": a.t,
        "schedule": f"sigma_i = (i+{a.sigma_start})/100 + 0.35, i = 0..t-1, 11 taps, reflect",
        "composed_kernel": len(k1),
        "source": a.from_dir or "float64 blur of the originals (unquantised)",
        "wiener": {"balance": a.balance, "clip": False, "padding": f"reflect {r}"},
        "rl": {"num_iter": a.rl_iter, "padding": f"reflect {r}"},
        "ssim": "structural_similarity(channel_axis=-1, data_range=1.0"
                + (", gaussian_weights=True, sigma=1.5, use_sample_covariance=False" if a.gaussian_weights else "")
                + ") on [0,1] floats, results clipped to [0,1]",
        "images": rows,
        "mean": mean,
        "other_ssim": ("uniform 7x7 window (skimage default)" if a.gaussian_weights
                       else "gaussian_weights=True, sigma=1.5, use_sample_covariance=False"),
        "other_images": other,
        "other_mean": {k: float(np.mean([r_[k] for r_ in other.values()])) for k in ("blurred", "wiener", "rl")},
        "timing": timing,
    }
    with open(os.path.join(a.out, "classical.json"), "w") as f:
        json.dump(report, f, indent=2)


def cmd_score(a):
    origs = list_images(a.originals)
    rest = list_images(a.restored)
    images = {}
    for name, path in rest.items():
        if name not in origs:
            continue
        o, r = match_channels(read_image(origs[name]), read_image(path))
        images[name] = ssim(o, r, a.gaussian_weights, a.data_range)
    if not images:
        raise SystemExit(f"no restored image in {a.restored} matches an original in {a.originals}")
    mean = float(np.mean(list(images.values())))
    label = a.label or a.restored
    print(f"{'image':12s} SSIM   ({label})")
    for name, v in images.items():
        print(f"{name:12s} {v:.4f}")
    print(f"{'mean':12s} {mean:.4f}")
    if a.json:
        rows = []
        if os.path.exists(a.json):
            with open(a.json) as f:
                rows = json.load(f)
            if not isinstance(rows, list):
                rows = [rows]
        rows.append({"label": label, "images": images, "mean": mean})
        with open(a.json, "w") as f:
            json.dump(rows, f, indent=2)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)

    p = sub.add_parser("prepare", help="write the originals from skimage.data")
    p.add_argument("--out", required=True)
    p.add_argument("--grey", action="store_true", help="also write camera (grey)")
    p.set_defaults(fn=cmd_prepare)

    p = sub.add_parser("patches", help="random crops of photographs, for training")
    p.add_argument("--photos", required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--side", type=int, default=71)
    p.add_argument("--per-photo", type=int, default=60)
    p.add_argument("--scales", default="1,0.7,0.5")
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(fn=cmd_patches)

    p = sub.add_parser("strips", help="side-by-side crops for a model card")
    p.add_argument("--out", required=True)
    p.add_argument("--side", type=int, default=160)
    p.add_argument("dirs", nargs="+", metavar="LABEL=DIR")
    p.set_defaults(fn=cmd_strips)

    p = sub.add_parser("blur", help="blur the originals at level t")
    p.add_argument("--originals", required=True)
    p.add_argument("--t", type=int, required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--depth", type=int, choices=(8, 16), default=8)
    p.add_argument("--sigma-start", type=int, default=0, help="variant: sigma_i = (i+START)/100+0.35")
    p.set_defaults(fn=cmd_blur)

    p = sub.add_parser("classical", help="Wiener and Richardson-Lucy with the true kernel")
    p.add_argument("--originals", required=True)
    p.add_argument("--t", type=int, required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--from", dest="from_dir", default=None, help="read blurred PNGs from here")
    p.add_argument("--balance", type=float, default=0.003)
    p.add_argument("--rl-iter", type=int, default=300)
    p.add_argument("--depth", type=int, choices=(8, 16), default=8, help="bits of the written results")
    p.add_argument("--sigma-start", type=int, default=0, help="variant: sigma_i = (i+START)/100+0.35")
    p.add_argument("--uniform-window", dest="gaussian_weights", action="store_false",
                   help="variant SSIM convention: the 7x7 uniform window (skimage's default)")
    p.add_argument("--save-float", action="store_true",
                   help="also keep the unclipped float64 blurred/wiener/rl arrays in OUT/float/NAME.npz")
    p.set_defaults(fn=cmd_classical)

    p = sub.add_parser("score", help="SSIM of restored images against the originals")
    p.add_argument("--originals", required=True)
    p.add_argument("--restored", required=True)
    p.add_argument("--json", default=None, help="append a row to this JSON list")
    p.add_argument("--label", default=None)
    p.add_argument("--uniform-window", dest="gaussian_weights", action="store_false",
                   help="variant SSIM convention: the 7x7 uniform window (skimage's default)")
    p.add_argument("--data-range", type=float, default=1.0, help="variant SSIM convention")
    p.set_defaults(fn=cmd_score)

    a = ap.parse_args()
    a.fn(a)


if __name__ == "__main__":
    main()
