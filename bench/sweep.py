"""Stage reuse and scheduling overhead of a small sweep: prints one JSON object.

    python bench/sweep.py            # about 2-3 minutes on 2 CPU cores

A 2x2x2 grid over (M, lambda_sq, tau) runs twice on one local Ray (2 CPUs, 2 trials at a time):
with stage reuse and without. Figures:
  reuse_compute_ratio  sum of trial times with reuse / without (target: at most reuse_floor + 0.03)
  reuse_floor          that ratio if reuse cost nothing: the no-reuse sweep's trial time minus its repeated
                       warm-ups (one per M kept) and searches (one per (M, lambda_sq) kept), over its trial time
  wall_over_ideal      the reuse sweep's wall time / (sum of its trial times / parallel slots) (target <= 1.10)
  wall_over_ideal_after_startup   the same, less the time before the first trial starts (Tuner set-up and
                       the workers' imports of torch and Ray Tune: once per sweep, not per trial)
"""
from __future__ import annotations

import json
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

SLOTS = 2
DOC = {
    "preset": "tiny",
    "config": {"data.n_train": 768, "data.n_val": 32, "model.n_nodes": 3, "warmup.epochs": 6, "search.epochs": 6,
               "finetune.epochs": 2, "trial.progress": False, "trial.latency_repeats": 1},
    "sweep": {"search": "grid", "resources": {"cpu": 1}, "max_concurrent": SLOTS,
              "axes": {"model.flow_width": {"grid": [1, 2]}, "search.lambda_sq": {"grid": [0.1, 1.0]},
                       "reduction.tau": {"grid": [0.05, 0.2]}}},
}


def run(storage: str, name: str, reuse: bool) -> dict:
    from tune.launch import build_tuner
    from tune.space import parse_sweep

    sweep = parse_sweep({**DOC, "sweep": {**DOC["sweep"], "name": name}})
    starts = _starts()
    t0 = time.perf_counter()
    grid = build_tuner(sweep, storage, stage_reuse=reuse, callbacks=[starts]).fit()
    wall = time.perf_counter() - t0
    first = min(starts.at) - t0  # Tuner set-up and the first workers' start-up (imports), before any trial runs
    times = [r.metrics["time_total_s"] for r in grid]
    assert all(r.metrics.get("trial_finished") == 1 for r in grid), "every benchmark trial should finish"
    # what perfect reuse would save: every warm-up but one per M, every search but one per (M, lambda_sq)
    import pyarrow.parquet as pq

    rows = pq.read_table(f"{storage}/{name}/results.parquet").to_pylist()
    stage_s: dict[tuple, list[float]] = {}
    for r in rows:
        stage_s.setdefault(("warmup", r["flow_width"]), []).append(r["time/warmup"])
        stage_s.setdefault(("search", r["flow_width"], r["lambda_sq"]), []).append(r["time/search"])
    saved = sum(sum(v) - min(v) for v in stage_s.values())
    return {"wall_s": wall, "trial_s": sum(times), "n_trials": len(times), "reusable_s": saved, "startup_s": first}


def _starts():
    from ray import tune

    class Starts(tune.Callback):
        """When each trial started (driver clock)."""

        def __init__(self):
            self.at: list[float] = []

        def on_trial_start(self, iteration, trials, trial, **info):
            self.at.append(time.perf_counter())

    return Starts()


def main() -> None:
    import ray

    os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")
    ray.init(num_cpus=SLOTS, include_dashboard=False, log_to_driver=False, configure_logging=False)
    try:
        with tempfile.TemporaryDirectory() as d:
            no = run(d, "no_reuse", reuse=False)
            yes = run(d, "reuse", reuse=True)
    finally:
        ray.shutdown()
    print(json.dumps({
        "reuse_compute_ratio": round(yes["trial_s"] / no["trial_s"], 3),
        # the ratio if reuse cost nothing: the no-reuse sweep minus every repeated warm-up and search
        "reuse_floor": round((no["trial_s"] - no["reusable_s"]) / no["trial_s"], 3),
        "wall_over_ideal": round(yes["wall_s"] / (yes["trial_s"] / SLOTS), 3),
        # the same without the time before the first trial starts (a fixed cost per sweep, not per trial)
        "wall_over_ideal_after_startup": round((yes["wall_s"] - yes["startup_s"]) / (yes["trial_s"] / SLOTS), 3),
        "with_reuse": yes, "without_reuse": no, "slots": SLOTS,
    }, indent=1))


if __name__ == "__main__":
    main()
