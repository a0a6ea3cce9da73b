#!/usr/bin/env python3
"""The reference for benches/gpu/device.sh: the authors' PyTorch code, at our networks' sizes.

Usage: torch_peer.py ORIG_DIR PHASE [--device cuda|cpu] [--models compact,small,paper] [--batches 64,256]
ORIG_DIR holds deblurring_diffusion_pytorch.py from arpitbansal297/Cold-Diffusion-Models
(deblurring-diffusion-pytorch/deblurring_diffusion_pytorch/); it is imported, never copied here.
PHASE restore: Algorithm 2 (its `x0_step_down` sampler) from T = 20, MNIST's blur (kernel 11, sigma 7),
  one warm-up and three timed runs per batch.
PHASE train: Adam (lr 2e-5) steps of its L1 loss at each batch; first_step_seconds is from process
  start (/proc), like cold-train's rows: run one process per (model, batch) for a fair first step.
Networks as ours: compact dim 16 and small dim 32 with mults 1-2-4 at 28x28, paper dim 64 with mults
1-2-4-8 at 32x32 (its four levels need a side divisible by 8). The authors' U-Net fixes attention at
4 heads of 32, ours compact/small use 2 of 16: the parameter counts are printed for that reason.
One JSON line per measurement, flushed at once.
"""
import argparse, contextlib, io, json, os, sys, time, types

import torch

CONFIGS = {
    "compact": (dict(dim=16, dim_mults=(1, 2, 4), channels=1), 28),
    "small": (dict(dim=32, dim_mults=(1, 2, 4), channels=1), 28),
    "paper": (dict(dim=64, dim_mults=(1, 2, 4, 8), channels=1), 32),
}


def process_age():
    """Seconds since this process started (Linux /proc), so start-up costs are counted."""
    ticks = os.sysconf("SC_CLK_TCK")
    start = int(open("/proc/self/stat").read().rsplit(")", 1)[1].split()[19]) / ticks
    uptime = float(open("/proc/uptime").read().split()[0])
    return uptime - start


def install_stubs():
    sys.modules.setdefault("comet_ml", types.SimpleNamespace(Experiment=object))
    tgm = types.ModuleType("torchgeometry")

    def gauss1d(n, sigma):
        x = torch.arange(n, dtype=torch.float32) - n // 2
        g = torch.exp(-(x ** 2) / (2.0 * float(sigma) ** 2))
        return g / g.sum()

    def get_gaussian_kernel2d(ksize, sigma):
        return torch.outer(gauss1d(ksize[0], sigma[0]), gauss1d(ksize[1], sigma[1]))

    tgm.image = types.SimpleNamespace(get_gaussian_kernel2d=get_gaussian_kernel2d)
    sys.modules.setdefault("torchgeometry", tgm)


def sync(dev):
    if dev == "cuda":
        torch.cuda.synchronize()


def emit(**row):
    print(json.dumps(dict(row, torch=torch.__version__)), flush=True)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("pkg")
    ap.add_argument("phase", choices=["restore", "train"])
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--models", default="compact,small,paper")
    ap.add_argument("--batches", default="64,256,1024")
    ap.add_argument("--train-steps", type=int, default=30)
    a = ap.parse_args()
    install_stubs()
    sys.path.insert(0, a.pkg)
    with contextlib.redirect_stdout(io.StringIO()):
        import deblurring_diffusion_pytorch as ddp
    dev = a.device
    if dev == "cpu":  # the sampler hard-codes .cuda() for its step tensor
        torch.Tensor.cuda = lambda self, *args, **kw: self
    for name in a.models.split(","):
        cfg, side = CONFIGS[name]
        with contextlib.redirect_stdout(io.StringIO()):
            unet = ddp.Unet(**cfg).to(dev)
        params = sum(p.numel() for p in unet.parameters())
        diff = ddp.GaussianDiffusion(unet, image_size=side, device_of_kernel=dev, channels=1, timesteps=20,
                                     loss_type="l1", kernel_std=7.0, kernel_size=11, blur_routine="Constant",
                                     train_routine="Final", sampling_routine="x0_step_down").to(dev)
        if a.phase == "restore":
            for b in map(int, a.batches.split(",")):
                x = torch.rand(b, 1, side, side, device=dev) * 2 - 1
                with contextlib.redirect_stdout(io.StringIO()), torch.no_grad():
                    diff.sample(batch_size=b, img=x, t=20)
                    sync(dev)
                    t0 = time.perf_counter()
                    for _ in range(3):
                        diff.sample(batch_size=b, img=x, t=20)
                    sync(dev)
                dt = (time.perf_counter() - t0) / 3
                emit(what="sample_alg2", config=name, params=params, side=side, batch=b, device=dev, t=20,
                     seconds=round(dt, 5), images_per_s=round(b / dt, 1))
        else:
            opt = torch.optim.Adam(diff.parameters(), lr=2e-5)
            for b in map(int, a.batches.split(",")):
                x = torch.rand(b, 1, side, side, device=dev) * 2 - 1
                first = None
                for i in range(a.train_steps + 3):
                    if i == 3:
                        sync(dev)
                        t0 = time.perf_counter()
                    with contextlib.redirect_stdout(io.StringIO()):
                        loss = diff(x)
                    opt.zero_grad()
                    loss.backward()
                    opt.step()
                    if first is None:
                        sync(dev)
                        first = process_age()
                sync(dev)
                dt = (time.perf_counter() - t0) / a.train_steps
                emit(what="train_step", config=name, params=params, side=side, batch=b, device=dev,
                     steps_per_s=round(1 / dt, 3), images_per_s=round(b / dt, 1), first_step_seconds=round(first, 2))


if __name__ == "__main__":
    main()
