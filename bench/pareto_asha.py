"""Early stopping by Pareto rank against the full grid and against single-metric ASHA: prints one JSON object.

    nice -n 5 python -m bench.pareto_asha [--orders 3]   # about 15 minutes on 2 CPU cores

The embedded data (tiny size, 256 training scenes) with the default preset's stage proportions and the
default sweep's search (8 warm-up, 3 search epochs with the reduction inside the last, weights trained in
search, 8 fine-tune epochs: 19 steps): a grid of M (2) x lambda_sq (3) x tau (4) x seeds (2) = 48 method
trials plus a hard-sharing baseline per seed, run three ways, each sweep in a Ray session of its own
(2 CPUs, 2 trials at a time, stage reuse on, as ``python run.py`` runs it):

  full         no scheduler
  asha         scheduler {type: asha, metric: score, mode: min, grace_period: 12, reduction_factor: 3, max_t: 19}
  pareto_asha  scheduler {type: pareto_asha, grace_period: 12, reduction_factor: 3, max_t: 19} on the sweep's
               objectives (score: min, params_union: min)

Step 12 is the first report after the reduction (pareto_asha's default grace period): both schedulers have
that one rung (the next, 36, lies past the trial's 19 steps) and neither ranks the baselines. The two
schedulers run over ``--orders`` trial orders (the grid's trials permuted, seeded 0, 1, 2, ...), because an
asynchronous rule depends on the order in which trials reach the rung; the full grid runs once.

Figures per way (the schedulers': median, [min, max] and each order's):
  compute_fraction   summed trial compute (Tune's time_total_s at each trial's last report) / the full grid's
  compute_fraction_at_full_speeds   the same with every trial's work timed at the full grid's speed: each
                     trial's stages as its config's in the full grid (warm-up, search and reduction whole, the
                     fine-tune per epoch it ran), the full grid's warm-ups (stage reuse computes about one per
                     M and seed in every sweep) and, per finished trial, the full grid's mean remainder outside
                     the stages (summary, reports). Sweeps on a shared machine differ in speed by 20% and
                     more, and the seconds above carry that
  hv_fraction        hypervolume of the way's front (score vs params_union, method trials) / the full grid's,
                     as analysis.compare_fronts computes it: every sweep's valid method trials normalised by
                     one set of bounds (ideal 0, nadir 1 over all of them), reference point 1.1; early-stopped
                     trials count with their last reported values. The ``learned`` filter is not applied: at
                     this size no trial beats the trivial segmentation reference (score is the mean
                     validation loss of the three tasks, comparable between trials all the same)
  hv_fraction_finished   the same with finished trials only (the same bounds and reference point)
  front_survival     fraction of the full grid's front trials (matched by config) that finished in this way
  stopped            method trials early-stopped
  wall_s             the sweep's wall time from Tuner set-up (right after ray.init)
  finetune_share_after_rung   the full grid's fine-tune seconds after the rung's epoch / its trial compute:
                     the most a rung after the reduction can save (the stages before it run in every trial)
Targets: pareto_asha hv_fraction >= 0.95 with compute_fraction <= 0.50, and above asha's hv_fraction.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

from bench.sweep import session

STEPS = 8 + 3 + 8
RUNG = 8 + 3 + 1  # the first report after the reduction
SCHEDULERS = {
    "asha": {
        "type": "asha",
        "metric": "score",
        "mode": "min",
        "grace_period": RUNG,
        "reduction_factor": 3,
        "max_t": STEPS,
    },
    "pareto_asha": {"type": "pareto_asha", "grace_period": RUNG, "reduction_factor": 3, "max_t": STEPS},
}
OBJECTIVES = {"score": "min", "params": "min"}  # analysis' names for the sweep's score and params_union
DOC = {
    "preset": "tiny",
    "config": {
        "data.n_train": 256,
        "data.n_val": 32,
        "warmup.epochs": 8,
        "search.epochs": 3,
        "finetune.epochs": 8,
        "search.prune_epochs": 1,
        "search.train_weights": True,
        "trial.progress": False,
        "trial.latency_repeats": 1,
    },
    "sweep": {
        "search": "grid",
        "num_samples": 2,
        "resources": {"cpu": 1},
        "max_concurrent": 2,
        "baselines": ["hard_sharing"],
        "objectives": {"score": "min", "params_union": "min"},
        "axes": {
            "model.flow_width": {"grid": [1, 2]},
            "search.lambda_sq": {"grid": [0.1, 0.5, 2.0]},
            "reduction.tau": {"grid": [0.02, 0.05, 0.1, 0.2]},
        },
    },
}


def _key(overrides: dict) -> str:
    return json.dumps(overrides, sort_keys=True)


def run(storage: str, name: str, scheduler: dict | None, order: int | None) -> dict:
    """One sweep; its trial compute, stops and wall time (its results table is read later)."""
    import numpy as np
    from ray import tune

    from tune.launch import build_tuner
    from tune.space import parse_sweep

    t0 = time.perf_counter()
    sweep = parse_sweep({**DOC, "sweep": {**DOC["sweep"], "name": name, "scheduler": scheduler or "none"}})
    points = sweep.points()
    extra = None
    if order is not None:  # the same trials in another order: this grid replaces the sweep's own
        perm = np.random.default_rng(order).permutation(len(points))
        extra = {"overrides": tune.grid_search([points[i] for i in perm])}
    tuner = build_tuner(sweep, storage, extra_config=extra)
    with contextlib.redirect_stdout(sys.stderr):  # Tune's progress tables; the JSON alone goes to stdout
        grid = tuner.fit()
    wall = time.perf_counter() - t0
    assert not grid.errors, f"{name}: errored trials {grid.errors}"
    return {"wall_s": wall, "trial_s": sum(r.metrics["time_total_s"] for r in grid), "n_trials": len(grid)}


def figures(storage: str, runs: dict[str, dict]) -> dict[str, dict]:
    """hv_fraction, hv_fraction_finished, front_survival, stopped of every sweep (one normalisation for all)."""

    from analysis import compare_fronts, load_results, pareto
    from analysis.compare import objective_matrix

    df = load_results([f"{storage}/{n}" for n in runs], delta_mtl=False)
    df["score"] = df[[c for c in df.columns if c.startswith("loss/")]].mean(axis=1)  # the trials' score: mean val loss
    # at this size no trial beats the trivial segmentation reference, so analysis' learned filter would leave
    # no finished trial on any front (and keep the early-stopped ones, which carry no flag): it is not applied
    df = df.drop(columns=[c for c in df.columns if c == "learned" or c.startswith("learned/")])
    overrides = [c for c in df.columns if c.startswith("config/")]
    df["key"] = df[overrides].astype(str).agg("|".join, axis=1)  # the same trial in every sweep
    cmp = compare_fronts(df, by="experiment", objectives=OBJECTIVES, budgets={})
    full_front = set(cmp.fronts["full"]["key"])
    method = df[df["mode"] == "supernet"]
    out = {
        name: {
            "modelled_s": _modelled_s(
                df[df["experiment"] == name], df[df["experiment"] == "full"], runs["full"]["trial_s"]
            )
        }
        for name in runs
    }
    for name in runs:
        rows = method[method["experiment"] == name]
        done = rows[rows["status"] == "finished"]
        usable = done[done["trial_id"].isin(cmp.points[name]["trial_id"])] if name in cmp.points else done.iloc[:0]
        y = pareto.normalise(objective_matrix(usable, cmp.objectives), cmp.ideal, cmp.nadir)
        out[name] |= {
            "hv": float(cmp.table.loc[name, "hypervolume"]),
            "hv_finished": pareto.hypervolume(y, cmp.ref_point),
            "front_survival": len(full_front & set(done["key"])) / len(full_front),
            "stopped": int((rows["status"] == "early_stopped").sum()),
            "front_size": int(cmp.table.loc[name, "front_size"]),
        }
    epochs = DOC["config"]["finetune.epochs"]
    fine = df.loc[df["experiment"] == "full", "time/finetune"].fillna(0.0)
    out["full"]["finetune_after_rung_s"] = float(fine.sum()) * (1 - (RUNG - (STEPS - epochs)) / epochs)
    hv, hv_finished = out["full"]["hv"], out["full"]["hv_finished"]
    for f in out.values():
        f["hv_fraction"] = f.pop("hv") / hv
        f["hv_fraction_finished"] = f.pop("hv_finished") / hv_finished
    return out


STAGES = ("warmup", "search", "reduction", "finetune")


def _modelled_s(rows, full, full_trial_s: float) -> float:
    """A sweep's trial compute at the full grid's speed (see compute_fraction_at_full_speeds)."""
    times = full.set_index("key")[[f"time/{s}" for s in STAGES]].fillna(0.0)
    remainder = (full_trial_s - times.to_numpy().sum()) / len(full)
    total = float(times["time/warmup"].sum())
    for key, status, step in zip(rows["key"], rows["status"], rows["stopped_step"]):
        t = times.loc[key]
        ran = 1.0 if status == "finished" else (step - (RUNG - 1)) / DOC["config"]["finetune.epochs"]
        total += (
            t["time/search"]
            + t["time/reduction"]
            + ran * t["time/finetune"]
            + (remainder if status == "finished" else 0.0)
        )
    return total


def _summary(values: list[float]) -> dict:
    values = [float(v) for v in values]
    return {
        "median": round(statistics.median(values), 3),
        "range": [round(min(values), 3), round(max(values), 3)],
        "each_order": [round(v, 3) for v in values],
    }


def main(orders: int, keep: str | None = None) -> None:
    os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")
    os.environ.setdefault("TUNE_GLOBAL_CHECKPOINT_S", "5")  # as launch() sets it
    runs: dict[str, dict] = {}
    with tempfile.TemporaryDirectory() if keep is None else contextlib.nullcontext(keep) as d:
        with session():
            runs["full"] = run(d, "full", None, None)
        for o in range(orders):  # interleaved: a slow spell of the shared machine hits both schedulers alike
            for way, sched in SCHEDULERS.items():
                with session():
                    runs[f"{way}_{o}"] = run(d, f"{way}_{o}", sched, o)
        if keep is not None:  # what the figures are made of besides the results tables
            Path(keep, "runs.json").write_text(json.dumps(runs, indent=1))
        fig = figures(d, runs)
    print(json.dumps(summarise(runs, fig, orders), indent=1))


def summarise(runs: dict[str, dict], fig: dict[str, dict], orders: int) -> dict:
    """The printed JSON: per way, the figures of the module docstring; the targets; the set-up."""
    from tune.space import parse_sweep

    full_s = runs["full"]["trial_s"]
    out: dict = {
        "full": {
            "trial_compute_s": round(float(full_s), 1),
            "wall_s": round(float(runs["full"]["wall_s"]), 1),
            "n_trials": runs["full"]["n_trials"],
            "front_size": fig["full"]["front_size"],
        }
    }
    for way in SCHEDULERS:
        names = [f"{way}_{o}" for o in range(orders)]
        out[way] = {
            "compute_fraction": _summary([runs[n]["trial_s"] / full_s for n in names]),
            "compute_fraction_at_full_speeds": _summary(
                [fig[n]["modelled_s"] / fig["full"]["modelled_s"] for n in names]
            ),
            "hv_fraction": _summary([fig[n]["hv_fraction"] for n in names]),
            "hv_fraction_finished": _summary([fig[n]["hv_fraction_finished"] for n in names]),
            "front_survival": _summary([fig[n]["front_survival"] for n in names]),
            "stopped": [fig[n]["stopped"] for n in names],
            "trial_compute_s": _summary([runs[n]["trial_s"] for n in names]),
            "wall_s": _summary([runs[n]["wall_s"] for n in names]),
        }
    p, a = out["pareto_asha"], out["asha"]
    out["targets"] = {
        "pareto_hv_fraction_ge_0.95": bool(p["hv_fraction"]["median"] >= 0.95),
        "pareto_compute_fraction_le_0.50": bool(p["compute_fraction"]["median"] <= 0.50),
        "pareto_hv_above_asha": bool(p["hv_fraction"]["median"] > a["hv_fraction"]["median"]),
        "compute_pareto_over_asha": round(p["compute_fraction"]["median"] / a["compute_fraction"]["median"], 3),
        "pareto_compute_fraction_at_full_speeds_le_0.50": bool(p["compute_fraction_at_full_speeds"]["median"] <= 0.50),
        "compute_pareto_over_asha_at_full_speeds": round(
            p["compute_fraction_at_full_speeds"]["median"] / a["compute_fraction_at_full_speeds"]["median"], 3
        ),
        # the most any rung after the reduction can save: the full grid's fine-tune time after the rung's epoch
        "finetune_share_after_rung": round(fig["full"]["finetune_after_rung_s"] / full_s, 3),
    }
    baselines = len(parse_sweep({**DOC, "sweep": {**DOC["sweep"], "name": "x"}}).baseline_points())
    out["setup"] = {
        "method_trials": runs["full"]["n_trials"] - baselines,
        "baselines": baselines,
        "steps": STEPS,
        "rung": RUNG,
        "reduction_factor": 3,
        "orders": orders,
        "slots": 2,
        "stage_reuse": True,
    }
    return out


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--orders", type=int, default=3, help="trial orders each scheduler runs over (figures: medians)")
    ap.add_argument("--keep", default=None, help="keep the sweeps in this folder (default: a temporary one)")
    args = ap.parse_args()
    main(args.orders, args.keep)
