"""The peer of `cold bench`: the same model bundle driven by Python onnxruntime with a plain numpy
Algorithm 2 loop.

    x0 = R(x_s, s);  x_{s-1} = x_s - D(x0, s) + D(x0, s-1)      for s = t .. 1

R is the bundle's restorer.onnx and D its degradation.onnx, both run by onnxruntime; the loop
and the state update are numpy. `--fused` instead runs the bundle's fused step.onnx once per step
(the graph `cold` uses), to separate graph cost from loop cost. Prints JSON like `cold bench`.
"""
import argparse
import json
import os
import statistics
import time

import numpy as np
import onnxruntime as ort


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="models/mnist-blur")
    ap.add_argument("--batch", default="64")
    ap.add_argument("--t", type=int, default=None)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=10)
    ap.add_argument("--threads", type=int, default=0, help="intra-op threads (0 = all cores)")
    ap.add_argument("--fused", action="store_true", help="use step.onnx instead of R and D")
    ap.add_argument("--json", default=None)
    a = ap.parse_args()

    manifest = json.load(open(os.path.join(a.model, "manifest.json")))
    im, files = manifest["image"], manifest["files"]
    big_t = manifest["degradation"]["steps"]
    t = big_t if a.t is None else a.t
    so = ort.SessionOptions()
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    so.intra_op_num_threads = a.threads if a.threads > 0 else os.cpu_count()
    so.inter_op_num_threads = 1
    providers = ["CPUExecutionProvider"]
    t0 = time.perf_counter()
    sess = lambda f: ort.InferenceSession(os.path.join(a.model, files[f]), so, providers=providers)
    restorer, degrade = sess("restorer"), sess("degradation")
    step = sess("step") if a.fused else None
    startup = time.perf_counter() - t0

    def restore(x):
        b = x.shape[0]
        for s in range(t, 0, -1):
            sv = np.full(b, s, dtype=np.int64)
            if step is not None:
                x = step.run(["x_next"], {"x_s": x, "s": sv, "s_prev": sv - 1})[0]
                continue
            x0 = restorer.run(None, {"x": x, "t": sv})[0]
            x = x - degrade.run(None, {"x": x0, "t": sv})[0] + degrade.run(None, {"x": x0, "t": sv - 1})[0]
        return x

    results = []
    rng = np.random.default_rng(0)
    for b in [int(v) for v in a.batch.split(",")]:
        clean = rng.uniform(-1, 1, (b, im["channels"], im["height"], im["width"])).astype(np.float32)
        x = degrade.run(None, {"x": clean, "t": np.full(b, t, dtype=np.int64)})[0]
        for _ in range(a.warmup):
            restore(x)
        times = []
        for _ in range(max(1, a.repeats)):
            s = time.perf_counter()
            restore(x)
            times.append(time.perf_counter() - s)
        med = statistics.median(times)
        results.append({
            "model": manifest["name"], "ep": "cpu", "peer": "python onnxruntime " + ort.__version__
            + (" + step.onnx" if a.fused else " + numpy loop"), "threads": so.intra_op_num_threads,
            "batch": b, "t": t, "repeats": len(times), "median_seconds": med, "min_seconds": min(times),
            "max_seconds": max(times), "images_per_second": b / med, "startup_seconds": startup,
        })
        r = results[-1]
        print(f"{r['model']:<12} {r['peer']:<40} batch {b:>5} t {t:>3}: median {med:.4f} s "
              f"[{r['min_seconds']:.4f}, {r['max_seconds']:.4f}], {r['images_per_second']:.1f} images/s")
    if a.json:
        with open(a.json + ".tmp", "w") as f:
            json.dump(results, f, indent=2)
        os.replace(a.json + ".tmp", a.json)


if __name__ == "__main__":
    main()
