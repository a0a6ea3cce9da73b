#!/usr/bin/env python3
"""Peer: training steps/s of the paper's own U-Net in PyTorch on the CPU, the anchor for `cold-train bench`.

Usage: peer_torch_train.py ORIGINAL_PKG_DIR [--threads 2] [--model compact,small] [--batch 16,32]
                           [--side 28] [--steps 20] [--warmup 3]

ORIGINAL_PKG_DIR holds `deblurring_diffusion_pytorch.py` from the paper's repository
(arpitbansal297/Cold-Diffusion-Models, folder deblurring-diffusion-pytorch/deblurring_diffusion_pytorch/);
it is never part of this repository. One step = U-Net forward on a batch of random images + L1 loss +
backward + Adam, as `cold-train bench --synthetic SIDE` (the degradation is left out on both sides).
Needs Debian's python3-torch and einops (see benches/train_cpu.sh). Prints one JSON object per line.
"""
import argparse
import contextlib
import io
import json
import sys
import time
import types

import torch

# Sizes as cold-train's presets: (dim, mults, heads, dim_head).
MODELS = {
    "tiny": (8, (1, 2), 2, 4),
    "compact": (16, (1, 2, 4), 2, 16),
    "small": (32, (1, 2, 4), 4, 32),
    "paper": (64, (1, 2, 4, 8), 4, 32),
}


def make(ddp, name, channels):
    dim, mults, heads, dim_head = MODELS[name]
    orig = ddp.LinearAttention.__init__

    def init(self, d, heads_=heads, dim_head_=dim_head):
        orig(self, d, heads=heads_, dim_head=dim_head_)

    ddp.LinearAttention.__init__ = init
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            return ddp.Unet(dim=dim, dim_mults=mults, channels=channels)
    finally:
        ddp.LinearAttention.__init__ = orig


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("orig_dir")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--model", default="compact,small")
    ap.add_argument("--batch", default="16,32")
    ap.add_argument("--side", type=int, default=28)
    ap.add_argument("--channels", type=int, default=1)
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--warmup", type=int, default=3)
    a = ap.parse_args()

    # The reference module imports these at top level; none is used by the U-Net.
    sys.modules.setdefault("comet_ml", types.SimpleNamespace(Experiment=object))
    sys.modules.setdefault("torchgeometry", types.ModuleType("torchgeometry"))
    try:
        import tqdm  # noqa: F401
    except ImportError:
        sys.modules["tqdm"] = types.SimpleNamespace(tqdm=lambda it, *a, **k: it)
    sys.path.insert(0, a.orig_dir)
    import deblurring_diffusion_pytorch as ddp

    torch.set_num_threads(a.threads)
    for name in a.model.split(","):
        for b in [int(v) for v in a.batch.split(",")]:
            torch.manual_seed(0)
            net = make(ddp, name, a.channels)
            params = sum(p.numel() for p in net.parameters())
            opt = torch.optim.Adam(net.parameters(), lr=3e-4)
            shape = (b, a.channels, a.side, a.side)
            x = torch.rand(shape) * 2 - 1
            x0 = torch.rand(shape) * 2 - 1
            t = torch.randint(0, 20, (b,))
            t_first = time.perf_counter()
            first = None
            for i in range(a.warmup + a.steps):
                if i == a.warmup:
                    t0 = time.perf_counter()
                loss = (net(x, t) - x0).abs().mean()
                opt.zero_grad()
                loss.backward()
                opt.step()
                if first is None:
                    first = time.perf_counter() - t_first
            dt = (time.perf_counter() - t0) / a.steps
            print(json.dumps(dict(
                implementation="pytorch",
                version=f"torch {torch.__version__}",
                threads=a.threads,
                model=name,
                parameters=params,
                batch=b,
                image=[a.channels, a.side, a.side],
                steps_per_second=round(1 / dt, 4),
                images_per_second=round(b / dt, 2),
                first_step_seconds=round(first, 4),
                measured_steps=a.steps,
            )), flush=True)


if __name__ == "__main__":
    main()
