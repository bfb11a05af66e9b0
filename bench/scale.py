"""Driver cost of large sweeps: K minimal trials on a simulated two-node cluster; prints one JSON object.

    nice -n 10 python -m bench.scale                 # K = 100 and 1000 (about 25 min on 2 shared CPU cores)
    python -m bench.scale --k 20 50                  # quick look

For each K: a sweep of K ``nano`` trials (every stage, sub-second; K seeds of one point) through
``tune.launch.build_tuner`` on ``ray.cluster_utils.Cluster`` (a head and a worker node, 1 CPU each, so
two trials run at a time), then the floor: a trivial function trainable that makes the same number of
reports (with as many metrics) and checkpoints per trial, under the same Tune settings, without our
results tables. The driver's CPU time is ``time.process_time()`` of this process, read by a callback at
the start and at every trial end; its RSS is read from /proc at each trial end. Per K:

  driver_cpu_ms_per_trial               all of the sweep's driver CPU / K
  driver_cpu_ms_per_trial_first_tenth   driver CPU from the start to the end of trial K/10, / (K/10)
  driver_cpu_ms_per_trial_last_tenth    driver CPU over the last K/10 trial ends, / (K/10)
  driver_peak_rss_mb                    the largest RSS seen during the sweep
  floor_driver_cpu_ms_per_trial (and the floor's tenths and RSS), trials_per_minute, rows, all_finished

  driver_rss_mb_per_1000_trials         RSS growth: least-squares slope over the sweep's second half of trial ends
Targets: ours <= 1.5x the floor; last tenth <= 1.2x the first; RSS < 2 GB extrapolated to 10,000 trials
(peak + slope of the largest K); every row present and finished. Runs share one driver process, so a
later K starts from the earlier one's RSS.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
import tempfile
import time
from pathlib import Path


def _rss_mb() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def _clock():
    from ray import tune

    class DriverClock(tune.Callback):
        """Driver CPU time and RSS at the start of the run and at every trial end; reports and checkpoints per trial."""

        def __init__(self):
            self.start_cpu, self.ends, self.rss = None, [], []
            self.reports, self.checkpoints, self.n_keys = {}, {}, 0

        def setup(self, **info):
            self.start_cpu, self.start_wall = time.process_time(), time.perf_counter()

        def on_trial_result(self, iteration, trials, trial, result, **info):
            self.reports[trial.trial_id] = self.reports.get(trial.trial_id, 0) + 1
            self.n_keys = max(self.n_keys, len(result))

        def on_checkpoint(self, iteration, trials, trial, checkpoint, **info):
            self.checkpoints[trial.trial_id] = self.checkpoints.get(trial.trial_id, 0) + 1

        def _end(self):
            self.ends.append(time.process_time())
            self.rss.append(_rss_mb())

        def on_trial_complete(self, iteration, trials, trial, **info):
            self._end()

        def on_trial_error(self, iteration, trials, trial, **info):
            self._end()

        def figures(self, k: int) -> dict:
            tenth = max(k // 10, 1)
            ends = self.ends
            return {
                "driver_cpu_ms_per_trial": round(1000 * (ends[-1] - self.start_cpu) / len(ends), 1),
                "driver_cpu_ms_per_trial_first_tenth": round(1000 * (ends[tenth - 1] - self.start_cpu) / tenth, 1),
                "driver_cpu_ms_per_trial_last_tenth": round(1000 * (ends[-1] - ends[-1 - tenth]) / tenth, 1),
                "driver_peak_rss_mb": round(max(self.rss), 1),
                "driver_rss_mb_per_1000_trials": round(1000 * _slope(self.rss[len(self.rss) // 2 :]), 1),
            }

    return DriverClock()


def _slope(ys: list[float]) -> float:
    """Least-squares slope of ``ys`` against their index (RSS growth per trial end)."""
    n = len(ys)
    if n < 2:
        return 0.0
    mx, my = (n - 1) / 2, sum(ys) / n
    return sum((i - mx) * (y - my) for i, y in enumerate(ys)) / sum((i - mx) ** 2 for i in range(n))


def floor_trainable(config: dict, setup=None) -> None:
    """Reports and checkpoints like a nano trial, and nothing else."""
    from ray import tune

    n_reports, n_checkpoints, n_keys = config["_reports"], config["_checkpoints"], config["_keys"]
    for i in range(n_reports):
        metrics = {f"m{j}": float(i + j) for j in range(n_keys)} | {"step": i + 1, "score": 1.0 / (i + 1)}
        if i >= n_reports - n_checkpoints:
            with tempfile.TemporaryDirectory() as d:
                Path(d, "state.pt").write_bytes(b"\0" * 4096)
                tune.report(metrics, checkpoint=tune.Checkpoint.from_directory(d))
        else:
            tune.report(metrics)


def sweep_of(k: int, name: str):
    from tune.space import parse_sweep

    return parse_sweep(
        {
            "preset": "nano",
            "sweep": {"name": name, "num_samples": k, "resources": {"cpu": 1}, "max_concurrent": 2, "max_failures": 0},
        }
    )


def run(k: int, storage: str, floor_shape: dict | None = None) -> tuple[dict, object]:
    from tune.launch import build_tuner

    clock = _clock()
    sweep = sweep_of(k, f"{'floor' if floor_shape else 'nano'}_{k}")
    t0 = time.perf_counter()
    with contextlib.redirect_stdout(sys.stderr):  # Tune's progress tables; the JSON alone goes to stdout
        if floor_shape:
            build_tuner(
                sweep, storage, extra_config=floor_shape, train_fn=floor_trainable, results=False, callbacks=[clock]
            ).fit()
        else:
            build_tuner(sweep, storage, callbacks=[clock]).fit()
    wall = time.perf_counter() - t0
    out = clock.figures(k) | {"trials_per_minute": round(60 * k / wall, 1), "wall_s": round(wall, 1)}
    return out, clock


def measure(k: int, storage: str) -> dict:
    from analysis import load_results

    ours, clock = run(k, storage)
    df = load_results(Path(storage) / f"nano_{k}", delta_mtl=False)
    reports = sorted(clock.reports.values())[len(clock.reports) // 2]
    checkpoints = sorted(clock.checkpoints.values())[len(clock.checkpoints) // 2] if clock.checkpoints else 0
    shape = {"_reports": reports, "_checkpoints": checkpoints, "_keys": clock.n_keys}
    floor, _ = run(k, storage, floor_shape=shape)
    return {
        "trials": k,
        **ours,
        "rows": int(len(df)),
        "all_finished": bool(len(df) == k and (df["status"] == "finished").all() and df["trial_id"].is_unique),
        "floor_driver_cpu_ms_per_trial": floor["driver_cpu_ms_per_trial"],
        "floor_driver_cpu_ms_per_trial_first_tenth": floor["driver_cpu_ms_per_trial_first_tenth"],
        "floor_driver_cpu_ms_per_trial_last_tenth": floor["driver_cpu_ms_per_trial_last_tenth"],
        "floor_driver_peak_rss_mb": floor["driver_peak_rss_mb"],
        "floor_driver_rss_mb_per_1000_trials": floor["driver_rss_mb_per_1000_trials"],
        "floor_trials_per_minute": floor["trials_per_minute"],
        "reports_per_trial": reports,
        "checkpoints_per_trial": checkpoints,
    }


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--k", type=int, nargs="+", default=[100, 1000], help="sweep sizes (default 100 1000)")
    args = p.parse_args(argv)
    os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")  # the settings of tune.launch.launch
    os.environ.setdefault("TUNE_GLOBAL_CHECKPOINT_S", "5")
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    import ray
    from ray.cluster_utils import Cluster

    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 1, "include_dashboard": False})
    cluster.add_node(num_cpus=1)
    ray.init(address=cluster.address, log_to_driver=False, configure_logging=False)
    per_k = {}
    try:
        with tempfile.TemporaryDirectory() as d:
            for k in args.k:
                per_k[str(k)] = measure(k, d)
    finally:
        ray.shutdown()
        cluster.shutdown()
    out = {"per_k": per_k}
    k, last = list(per_k.items())[-1]
    slope = max(last["driver_rss_mb_per_1000_trials"], 0.0) / 1000  # MB per trial, over the last half of the largest K
    out["rss_mb_extrapolated_10000"] = round(last["driver_peak_rss_mb"] + slope * max(10_000 - int(k), 0), 1)
    out["rss_mb_extrapolated_100000"] = round(last["driver_peak_rss_mb"] + slope * (100_000 - int(k)), 1)
    out["cpu_s_extrapolated_100000"] = round(
        last["driver_cpu_ms_per_trial_last_tenth"] * 100, 1
    )  # at the last tenth's rate
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
