#!/usr/bin/env python3
"""The authors' deblurring code beside ours at equal budget: does their Algorithm 2 lose to their
direct restoration as ours does? (benches/sampler_check.sh drives it; never part of the tests.)

Usage:
  sampler_check.py train ORIG_PKG_DIR --out RUN_DIR [--steps 6000] [--batch 16] [--lr 1e-4]
                   [--seed 1] [--threads 2] [--mnist DIR]
  sampler_check.py digits --out DIR [--count 1000] [--mnist DIR]
  sampler_check.py restore ORIG_PKG_DIR --run RUN_DIR --digits DIR --out DIR [--t 20] [--batch 100]
  sampler_check.py score --digits DIR NAME=DIR ... [--json OUT]

ORIG_PKG_DIR holds `deblurring_diffusion_pytorch.py` from the paper's repository
(arpitbansal297/Cold-Diffusion-Models, deblurring-diffusion-pytorch/deblurring_diffusion_pytorch/); it is
loaded from there, never copied into this repository. Needs Debian's python3-torch and the packages of
benches/requirements-sampler-check.txt (einops, torchgeometry).

`train` runs their GaussianDiffusion (their q_sample, kernels and L1 loss; blur routine Constant,
sigma 7, kernel 11, circular, T 20: our `mnist-blur` schedule) on their Unet at our `compact` size
(dim 16, mults 1,2,4, heads 2, dim_head 16), on MNIST's 60,000 training digits at 28x28 as they are
(no augmentation), a batch drawn with replacement each step, Adam, their EMA (decay 0.995, every 10
steps, copied before step 2000), no gradient accumulation: the loop of `cold-train train` with the
same flags. `restore` runs their own `sample` (sampling_routine x0_step_down, their Algorithm 2)
from the test digits, which returns their direct restoration as well. `score` gives SSIM (Gaussian
window, sigma 1.5, data range 1, Wang et al.'s convention) and RMSE on [0, 1] of 8-bit PNG folders
against the digits, with one scorer for both implementations.
"""
import argparse
import contextlib
import copy
import io
import json
import os
import struct
import sys
import time
import types

import numpy as np
import torch
from PIL import Image

COMPACT = dict(dim=16, mults=(1, 2, 4), heads=2, dim_head=16)


def mnist(dirname, split):
    name = {"train": "train-images-idx3-ubyte", "test": "t10k-images-idx3-ubyte"}[split]
    with open(os.path.join(dirname, name), "rb") as f:
        data = f.read()
    magic, n, h, w = struct.unpack(">IIII", data[:16])
    if magic != 2051:
        sys.exit(f"{name}: not an idx3 image file")
    return np.frombuffer(data, np.uint8, offset=16).reshape(n, h, w)


def load_reference(orig_dir):
    # Imported at their module's top level but unused by the diffusion and the U-Net.
    sys.modules.setdefault("comet_ml", types.SimpleNamespace(Experiment=object))
    try:
        import tqdm  # noqa: F401
    except ImportError:
        sys.modules["tqdm"] = types.SimpleNamespace(tqdm=lambda it, *a, **k: it)
    # Their sampler moves the level tensor with `.cuda()`: on this CPU, a no-op.
    torch.Tensor.cuda = lambda self, *a, **k: self
    sys.path.insert(0, orig_dir)
    import deblurring_diffusion_pytorch as ddp

    return ddp


def diffusion(ddp):
    orig = ddp.LinearAttention.__init__

    def init(self, d, heads=COMPACT["heads"], dim_head=COMPACT["dim_head"]):
        orig(self, d, heads=heads, dim_head=dim_head)

    ddp.LinearAttention.__init__ = init
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            net = ddp.Unet(dim=COMPACT["dim"], dim_mults=COMPACT["mults"], channels=1)
    finally:
        ddp.LinearAttention.__init__ = orig
    return ddp.GaussianDiffusion(
        net, image_size=28, device_of_kernel="cpu", channels=1, timesteps=20, loss_type="l1",
        kernel_std=7, kernel_size=11, blur_routine="Constant", train_routine="Final",
        sampling_routine="x0_step_down", discrete=False)


def to_unit(x):
    """[-1, 1] tensors to 8-bit-rounded [0, 1] arrays, as PNG files hold them."""
    x = ((x.detach().numpy() + 1) * 0.5).clip(0, 1)
    return np.round(x * 255) / 255


def cmd_train(a):
    ddp = load_reference(a.orig_dir)
    torch.set_num_threads(a.threads)
    torch.manual_seed(a.seed)
    rng = np.random.default_rng(a.seed)
    train = mnist(a.mnist, "train")
    model = diffusion(ddp)
    ema_model = copy.deepcopy(model)
    ema = ddp.EMA(0.995)
    opt = torch.optim.Adam(model.parameters(), lr=a.lr)
    os.makedirs(a.out, exist_ok=True)
    ckpt = os.path.join(a.out, "reference.pt")
    step = 0
    if os.path.exists(ckpt):
        s = torch.load(ckpt)
        model.load_state_dict(s["model"])
        ema_model.load_state_dict(s["ema"])
        opt.load_state_dict(s["opt"])
        step = s["step"]
        rng = np.random.default_rng([a.seed, step])
        print(f"resumed at step {step}", flush=True)
    log = open(os.path.join(a.out, "loss.jsonl"), "a")
    start, seen = time.perf_counter(), 0
    while step < a.steps:
        idx = rng.integers(0, len(train), a.batch)
        x = torch.from_numpy(train[idx].astype(np.float32) / 255 * 2 - 1)[:, None]
        loss = model(x)
        opt.zero_grad()
        loss.backward()
        opt.step()
        # Their Trainer.step_ema: every 10 steps, a copy before step 2000, then the average.
        if step % 10 == 0:
            if step < 2000:
                ema_model.load_state_dict(model.state_dict())
            else:
                ema.update_model_average(ema_model, model)
        step += 1
        seen += 1
        if step % 100 == 0:
            rate = seen / (time.perf_counter() - start)
            log.write(json.dumps({"step": step, "loss": loss.item()}) + "\n")
            log.flush()
            print(f"step {step} loss {loss.item():.4f} ({rate:.2f} steps/s)", flush=True)
        if step % 1000 == 0 or step == a.steps:
            tmp = ckpt + ".tmp"
            torch.save({"model": model.state_dict(), "ema": ema_model.state_dict(),
                        "opt": opt.state_dict(), "step": step}, tmp)
            os.replace(tmp, ckpt)


def cmd_digits(a):
    test = mnist(a.mnist, "test")[: a.count]
    os.makedirs(a.out, exist_ok=True)
    for i, im in enumerate(test):
        Image.fromarray(im).save(os.path.join(a.out, f"{i:05d}.png"))
    print(f"{len(test)} test digits in {a.out}")


def read_folder(d):
    names = sorted(n for n in os.listdir(d) if n.endswith(".png"))
    out = []
    for n in names:
        im = np.asarray(Image.open(os.path.join(d, n)))
        scale = 65535.0 if im.dtype == np.uint16 or im.max() > 255 else 255.0
        out.append(im.astype(np.float64) / scale)
    return names, np.stack(out)


def cmd_restore(a):
    ddp = load_reference(a.orig_dir)
    torch.set_num_threads(a.threads)
    model = diffusion(ddp)
    s = torch.load(os.path.join(a.run, "reference.pt"))
    model.load_state_dict(s["ema"])
    names, digits = read_folder(a.digits)
    outs = {k: os.path.join(a.out, k) for k in ("direct", "alg2")}
    for d in outs.values():
        os.makedirs(d, exist_ok=True)
    for i in range(0, len(names), a.batch):
        x = torch.from_numpy(digits[i:i + a.batch].astype(np.float32) * 2 - 1)[:, None]
        with contextlib.redirect_stdout(io.StringIO()):
            _, direct, alg2 = model.sample(batch_size=len(x), img=x, t=a.t)
        for key, y in (("direct", direct), ("alg2", alg2)):
            for n, im in zip(names[i:i + a.batch], to_unit(y)):
                Image.fromarray((im[0] * 255).astype(np.uint8)).save(os.path.join(outs[key], n))
    print(f"restored {len(names)} digits from t = {a.t} (trained {s['step']} steps) into {a.out}")


def gaussian_filter(x, sigma=1.5, truncate=3.5):
    r = int(truncate * sigma + 0.5)
    k = np.exp(-0.5 * (np.arange(-r, r + 1) / sigma) ** 2)
    k /= k.sum()
    p = np.pad(x, ((0, 0), (r, r), (r, r)), mode="symmetric")
    rows = sum(k[j] * p[:, :, j:j + x.shape[2]] for j in range(2 * r + 1))
    return sum(k[j] * rows[:, j:j + x.shape[1], :] for j in range(2 * r + 1)), r


def ssim(a, b):
    """Mean SSIM per image (Gaussian weights, sigma 1.5, data range 1, borders of r cropped)."""
    c1, c2 = 0.01 ** 2, 0.03 ** 2
    (ma, r), (mb, _) = gaussian_filter(a), gaussian_filter(b)
    va = gaussian_filter(a * a)[0] - ma * ma
    vb = gaussian_filter(b * b)[0] - mb * mb
    cov = gaussian_filter(a * b)[0] - ma * mb
    s = ((2 * ma * mb + c1) * (2 * cov + c2)) / ((ma * ma + mb * mb + c1) * (va + vb + c2))
    return s[:, r:-r, r:-r].mean(axis=(1, 2))


def cmd_score(a):
    names, ref = read_folder(a.digits)
    rows = {}
    for spec in a.folders:
        label, d = spec.split("=", 1)
        got_names, got = read_folder(d)
        if got_names != names:
            sys.exit(f"{d}: holds other files than {a.digits}")
        rows[label] = {
            "ssim": float(ssim(ref, got).mean()),
            "rmse": float(np.sqrt(((ref - got) ** 2).mean(axis=(1, 2))).mean()),
            "images": len(names),
        }
        print(f"{label:>24}: SSIM {rows[label]['ssim']:.4f}  RMSE {rows[label]['rmse']:.4f}")
    if a.json:
        with open(a.json, "w") as f:
            json.dump(rows, f, indent=2)


def main():
    ap = argparse.ArgumentParser()
    sub = ap.add_subparsers(dest="cmd", required=True)
    default_mnist = os.path.expanduser("~/.cache/cold-diffusion/mnist")
    t = sub.add_parser("train")
    t.add_argument("orig_dir")
    t.add_argument("--out", required=True)
    t.add_argument("--steps", type=int, default=6000)
    t.add_argument("--batch", type=int, default=16)
    t.add_argument("--lr", type=float, default=1e-4)
    t.add_argument("--seed", type=int, default=1)
    t.add_argument("--threads", type=int, default=2)
    t.add_argument("--mnist", default=default_mnist)
    d = sub.add_parser("digits")
    d.add_argument("--out", required=True)
    d.add_argument("--count", type=int, default=1000)
    d.add_argument("--mnist", default=default_mnist)
    r = sub.add_parser("restore")
    r.add_argument("orig_dir")
    r.add_argument("--run", required=True)
    r.add_argument("--digits", required=True)
    r.add_argument("--out", required=True)
    r.add_argument("--t", type=int, default=20)
    r.add_argument("--batch", type=int, default=100)
    r.add_argument("--threads", type=int, default=2)
    s = sub.add_parser("score")
    s.add_argument("--digits", required=True)
    s.add_argument("--json")
    s.add_argument("folders", nargs="+", metavar="NAME=DIR")
    a = ap.parse_args()
    {"train": cmd_train, "digits": cmd_digits, "restore": cmd_restore, "score": cmd_score}[a.cmd](a)


if __name__ == "__main__":
    main()
