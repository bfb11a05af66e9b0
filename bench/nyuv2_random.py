"""One NYUv2-config trial on real-size random tensors in the NYUv2 .npy layout; prints JSON figures.

    python -m bench.nyuv2_random [--samples 32] [--epochs 1] [--set key=value ...]

Writes ``--samples`` random training and validation samples at 3x288x384 in
``ROOT/{train,val}/{image,label,depth,normal}/<i>.npy`` (the MTAN/LibMTL layout, with invalid pixels),
runs ``configs/nyuv2.yaml``'s trial config on them with ``--epochs`` epochs per stage, and prints each
stage's epoch time and peak GPU memory (NaN on CPU) from the trial's ``metrics.jsonl``. On a GPU machine
this gives the per-epoch figures of a real NYUv2 trial (scaled by 795 / samples for the train split).
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np

from run import parse_args, trial_config
from supernet.trial import run_trial

ROOT = Path(__file__).resolve().parents[1]


def write_random_nyuv2(root: Path, n: int, seed: int = 0, h: int = 288, w: int = 384) -> None:
    rng = np.random.default_rng(seed)
    for split in ("train", "val"):
        for m in ("image", "label", "depth", "normal"):
            (root / split / m).mkdir(parents=True, exist_ok=True)
        for i in range(n):
            holes = rng.random((h, w)) < 0.05
            label = rng.integers(0, 13, size=(h, w)).astype(np.float32)
            label[holes] = -1
            depth = rng.uniform(0.5, 10.0, size=(h, w, 1)).astype(np.float32)
            depth[holes] = 0
            normal = rng.normal(size=(h, w, 3)).astype(np.float32)
            normal /= np.linalg.norm(normal, axis=-1, keepdims=True)
            normal[holes] = 0
            np.save(root / split / "image" / f"{i}.npy", rng.random((h, w, 3), dtype=np.float32))
            np.save(root / split / "label" / f"{i}.npy", label)
            np.save(root / split / "depth" / f"{i}.npy", depth)
            np.save(root / split / "normal" / f"{i}.npy", normal)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--samples", type=int, default=32)
    ap.add_argument("--epochs", type=int, default=1)
    ap.add_argument("--set", dest="overrides", action="append", default=[])
    a = ap.parse_args()
    with tempfile.TemporaryDirectory() as d:
        data = Path(d) / "nyuv2"
        t0 = time.perf_counter()
        write_random_nyuv2(data, a.samples)
        written = time.perf_counter() - t0
        e = a.epochs
        sets = [
            f"data.root={data}",
            f"warmup.epochs={e}",
            f"search.epochs={e}",
            f"finetune.epochs={e}",
            "trial.progress=false",
            "trial.latency_repeats=3",
            *a.overrides,
        ]
        cfg = trial_config(
            parse_args(
                ["--trial", "--config", str(ROOT / "configs" / "nyuv2.yaml"), *[x for s in sets for x in ("--set", s)]]
            )
        )
        out = Path(d) / "trial"
        t0 = time.perf_counter()
        summary = run_trial(cfg, out)
        total = time.perf_counter() - t0
        records = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    per_stage = {}
    for r in records:
        s = per_stage.setdefault(r["stage"], {"epoch_time_s": [], "gpu_peak_mem_mb": []})
        s["epoch_time_s"].append(round(r["epoch_time_s"], 3))
        s["gpu_peak_mem_mb"].append(None if r["gpu_peak_mem_mb"] is None else round(r["gpu_peak_mem_mb"], 1))
    print(
        json.dumps(
            {
                "device": summary["device"],
                "samples_per_split": a.samples,
                "image": [3, 288, 384],
                "batch_size": cfg.data.batch_size,
                "precision": cfg.trial.precision,
                "stem": cfg.model.stem,
                "write_s": round(written, 2),
                "trial_s": round(total, 2),
                "per_stage": per_stage,
                "params_union": summary["params"]["union"],
                "params_supernet": summary["params"]["supernet"],
                "latency_ms": round(summary["latency_ms"], 2),
            },
            indent=1,
        )
    )


if __name__ == "__main__":
    main()
