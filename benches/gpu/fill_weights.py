#!/usr/bin/env python3
"""Gives a zero-weight bench bundle (trainer/examples/bench_bundle.rs --zeros) random weights, in place.

Usage: fill_weights.py BUNDLE [--seed 0] [--std 0.02]
A zero bundle compresses to almost nothing, so it is what travels to the GPU machine (the paper
network's weights are 226 MB), but zeros run faster there than real values do (13% on an H100).
Every float of weights.bin becomes i.i.d. N(0, std^2) from a fixed seed, and the manifest's
sha256 of weights.bin is updated so the runtime's integrity check still passes. For timing only:
the restorations are meaningless. numpy when present (the GPU machine has it), else pure Python.
"""
import argparse, array, hashlib, json, os, random


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("bundle")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--std", type=float, default=0.02)
    a = ap.parse_args()
    path = os.path.join(a.bundle, "weights.bin")
    n = os.path.getsize(path) // 4
    try:
        import numpy as np

        data = (np.random.default_rng(a.seed).standard_normal(n, dtype=np.float32) * a.std).astype("<f4").tobytes()
    except ImportError:
        rng = random.Random(a.seed)
        data = array.array("f", (rng.gauss(0.0, a.std) for _ in range(n))).tobytes()
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(data)
    os.replace(tmp, path)
    man_path = os.path.join(a.bundle, "manifest.json")
    man = json.load(open(man_path))
    man.setdefault("sha256", {})["weights.bin"] = hashlib.sha256(data).hexdigest()
    with open(man_path + ".tmp", "w") as f:
        json.dump(man, f, indent=2)
    os.replace(man_path + ".tmp", man_path)
    print(f"fill_weights: {a.bundle}: {n} floats, N(0, {a.std}^2), seed {a.seed}")


if __name__ == "__main__":
    main()
