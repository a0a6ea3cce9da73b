#!/usr/bin/env python3
"""Turns one measurement's JSON into benchmark rows and appends them to results.jsonl at once.

Usage: rows.py KIND IN_JSON RESULTS_JSONL --machine M --model MODEL [--lever L] [--precision P]
       [--process-seconds S] [--allow-skipped]
KIND: cold-restore (`cold bench --json`), cold-train (`cold-train bench --json`) or torch (the
JSON lines of benches/gpu/torch_peer.py). Rows follow issue 31's schema: machine, date, what
("restore" or "train"), implementation ("cold ..." or "... torch ..."), model, batch (int),
precision, images_per_second or steps_per_second, first_step_seconds on train rows.
A `skipped` row from cold (the provider did not start) is an error unless --allow-skipped: a GPU
run that silently measured nothing is the failure this script exists to prevent.
"""
import argparse, datetime, json, sys


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("kind", choices=["cold-restore", "cold-train", "torch"])
    ap.add_argument("src")
    ap.add_argument("dst")
    ap.add_argument("--machine", required=True)
    ap.add_argument("--model", required=True)
    ap.add_argument("--lever", default="default")
    ap.add_argument("--precision", default="fp32")
    ap.add_argument("--process-seconds", type=float)
    ap.add_argument("--allow-skipped", action="store_true")
    a = ap.parse_args()
    base = dict(machine=a.machine, date=datetime.date.today().isoformat())
    out = []
    if a.kind == "torch":
        src = [json.loads(line) for line in open(a.src) if line.strip().startswith("{")]
    else:
        src = json.load(open(a.src))
    for r in src:
        if a.kind == "cold-restore":
            if "skipped" in r:
                if a.allow_skipped:
                    continue
                sys.exit(f"rows.py: {r['ep']} did not start: {r['skipped']}")
            out.append(dict(base, what="restore", implementation=f"cold (ONNX Runtime {r['ep']}, {a.lever})",
                            model=a.model, batch=int(r["batch"]), precision=a.precision,
                            images_per_second=r["images_per_second"], t=r["t"], steps=r["steps"],
                            algorithm=r["algorithm"], startup_seconds=r["startup_seconds"],
                            peak_rss_mb=r["peak_rss_mb"], lever=a.lever,
                            replay_max_abs_diff=r.get("replay_max_abs_diff")))
        elif a.kind == "cold-train":
            row = dict(base, what="train", implementation=f"cold-train (Burn {r['backend']})", model=a.model,
                       batch=int(r["batch_size"]), precision=a.precision,
                       steps_per_second=r["steps_per_second"], images_per_second=r["images_per_second"],
                       first_step_seconds=r.get("first_step_from_start_seconds") or r["first_step_seconds"],
                       first_step_timed_from="process start" if r.get("first_step_from_start_seconds")
                       else "model set-up", first_step_alone_seconds=r["first_step_seconds"], image=r["image"],
                       parameters=r["parameters"])
            if a.process_seconds is not None:
                row["process_seconds"] = a.process_seconds
            out.append(row)
        else:
            what = "restore" if r["what"].startswith("sample") else "train"
            row = dict(base, what=what, implementation=f"authors' PyTorch (torch {r['torch']}, {r['device']})",
                       model=r["config"], batch=int(r["batch"]), precision=r.get("precision", "fp32"),
                       side=r["side"], parameters=r["params"])
            if what == "restore":
                row.update(images_per_second=r["images_per_s"], t=r["t"])
            else:
                row.update(steps_per_second=r["steps_per_s"], images_per_second=r["images_per_s"],
                           first_step_seconds=r["first_step_seconds"])
            out.append(row)
    if not out:
        sys.exit(f"rows.py: no rows in {a.src}")
    with open(a.dst, "a") as f:
        for row in out:
            f.write(json.dumps(row) + "\n")
    for row in out:
        rate = row.get("images_per_second") if row["what"] == "restore" else row["steps_per_second"]
        print(f"  {row['implementation']:<44} {row['model']:<8} batch {row['batch']:>5}  {rate:.2f}")


if __name__ == "__main__":
    main()
