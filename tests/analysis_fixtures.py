"""Generated experiment folders in the results schema of the sweep, for tests of anything that reads them.

``write_experiment(tmp_path)`` writes ``EXP/results.parquet`` (with the ``dagmtl`` metadata),
``EXP/epochs.parquet`` and one ``arch_spec.json`` per supernet trial, with realistic numbers: bigger
kept networks cost more and gain more, seeds add noise, single-task rows carry only their task's
metrics, one trial errored and one early-stopped. Rows carry the learning columns: ``trivial/<task>/<metric>``
(:data:`TRIVIAL_BY_KIND`), ``learned`` / ``learned/<task>`` computed by the margins of :data:`LEARNED_MARGINS`
(:func:`apply_learned`; every generated trial learns) and ``quality/<stage>/<task>/<metric>``.
Deterministic for a given ``rng``.
No torch or ray: usable by any test.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

DEFAULT_TASKS: dict[str, str] = {"segmentation": "segmentation", "depth": "depth", "normal": "normal"}
KIND_METRICS: dict[str, dict[str, tuple[str, float]]] = {  # kind -> metric -> (sense, typical baseline)
    "segmentation": {"miou": ("max", 0.42), "pixel_acc": ("max", 0.71)},
    "depth": {"abs_err": ("min", 0.61), "rel_err": ("min", 0.24)},
    "normal": {
        "mean_angle": ("min", 24.0),
        "median_angle": ("min", 18.0),
        "within_11.25": ("max", 28.0),
        "within_22.5": ("max", 55.0),
        "within_30": ("max", 67.0),
    },
    "classification": {"accuracy": ("max", 0.80)},
}
METRIC_SENSES = {m: s for ms in KIND_METRICS.values() for m, (s, _) in ms.items()}
# trivial predictors' values per kind (all metrics beat them comfortably in generated rows)
TRIVIAL_BY_KIND: dict[str, dict[str, float]] = {
    "segmentation": {"miou": 0.15, "pixel_acc": 0.60},
    "depth": {"abs_err": 1.0, "rel_err": 0.40},
    "normal": {"mean_angle": 37.0, "median_angle": 35.0},
    "classification": {"accuracy": 0.2},
}
# as in the results metadata: "<kind>/<metric>" -> {"sense", "factor"} (supernet/trivial.py LEARNED_MARGINS)
LEARNED_MARGINS: dict[str, dict] = {
    "segmentation/miou": {"sense": "max", "factor": 2.0},
    "classification/accuracy": {"sense": "max", "factor": 2.0},
    "depth/abs_err": {"sense": "min", "factor": 0.75},
    "normal/mean_angle": {"sense": "min", "factor": 0.75},
}
STAGES = ("warmup", "search", "reduction", "finetune")


def apply_learned(df: pd.DataFrame, tasks: Mapping[str, str] = DEFAULT_TASKS) -> pd.DataFrame:
    """Set ``learned/<task>`` and ``learned`` from the metric and trivial columns by :data:`LEARNED_MARGINS`
    (None for rows that did not finish; single-task rows judge only their own task)."""
    df = df.copy()
    flags: dict[str, list] = {t: [] for t in tasks}
    overall = []
    for _, r in df.iterrows():
        mine = [r["baseline_task"]] if r["mode"] == "single_task" else list(tasks)
        if r["status"] != "finished":
            for t in tasks:
                flags[t].append(None)
            overall.append(None)
            continue
        ok_all = True
        for t, kind in tasks.items():
            if t not in mine:
                flags[t].append(None)
                continue
            ok = True
            for key, m in LEARNED_MARGINS.items():
                k, metric = key.split("/")
                if k != kind:
                    continue
                v, ref = r.get(f"metric/{t}/{metric}"), r.get(f"trivial/{t}/{metric}")
                ok &= bool(
                    np.isfinite(v) and (v >= m["factor"] * ref if m["sense"] == "max" else v <= m["factor"] * ref)
                )
            flags[t].append(ok)
            ok_all &= ok
        overall.append(ok_all)
    for t in tasks:
        df[f"learned/{t}"] = pd.Series(flags[t], index=df.index, dtype="object")
    df["learned"] = pd.Series(overall, index=df.index, dtype="object")
    return df


def _add_learning_columns(df: pd.DataFrame, tasks: Mapping[str, str]) -> pd.DataFrame:
    """Trivial references, stage qualities (deterministic: warm-up 15%, search 5% and right after reduction 8%
    worse than the final value, so the gap at reduction is 3/0.95 = 3.16% for "max" metrics and 3/1.05 = 2.86%
    for "min" ones; search and reduction only for the modes that have them) and the learned flags."""
    df = df.copy()
    for t, kind in tasks.items():
        for m, v in TRIVIAL_BY_KIND[kind].items():
            if m in KIND_METRICS[kind]:
                df[f"trivial/{t}/{m}"] = v
    for t, kind in tasks.items():
        for m in KIND_METRICS[kind]:
            final = df[f"metric/{t}/{m}"]
            worse = (lambda f, x: f * (1 - x)) if METRIC_SENSES[m] == "max" else (lambda f, x: f * (1 + x))
            method = df["mode"].isin(["supernet", "random_arch", "full_supernet"])
            reduced = df["mode"].isin(["supernet", "random_arch"])
            df[f"quality/warmup/{t}/{m}"] = worse(final, 0.15)
            df[f"quality/search/{t}/{m}"] = worse(final, 0.05).where(method)
            df[f"quality/reduction/{t}/{m}"] = worse(final, 0.08).where(reduced)
            df[f"quality/finetune/{t}/{m}"] = final
    return apply_learned(df, tasks)


def random_arch_spec(
    rng: np.random.Generator, n_nodes: int, flow_width: int, tasks: Sequence[str], keep: float
) -> dict:
    """A valid spec: a shared edge set plus a few task-specific edges; every task has a read-in and read-out."""
    pairs = [(i, j) for i, j in itertools.combinations(range(1, n_nodes + 1), 2)]
    shared = [p for p in pairs if rng.random() < keep]
    out = {}
    for t in tasks:
        own = [p for p in pairs if p not in shared and rng.random() < keep / 3]
        edges = sorted(shared + own)
        read_in = sorted({1} | {j for j in range(2, n_nodes + 1) if rng.random() < keep / 4})
        read_out = sorted({n_nodes} | {j for j in range(1, n_nodes) if rng.random() < keep / 4})
        out[t] = {"edges": [list(e) for e in edges], "read_in": read_in, "read_out": read_out}
    return {"n_nodes": n_nodes, "flow_width": flow_width, "tasks": out}


def _n_union_edges(spec: dict) -> int:
    return len({tuple(e) for t in spec["tasks"].values() for e in t["edges"]})


def _metrics(base: Mapping[str, Mapping[str, float]], gain: float, rng: np.random.Generator, noise: float) -> dict:
    """Metric columns where every metric is better than ``base`` by ``gain`` (a fraction) plus noise."""
    row = {}
    for task, ms in base.items():
        for m, b in ms.items():
            g = gain + noise * rng.standard_normal()
            row[f"metric/{task}/{m}"] = b * (1 + g) if METRIC_SENSES[m] == "max" else b * (1 - g)
    return row


@dataclass
class _Grid:
    """What every generated row shares: the experiment, the node count, the tasks and one random generator
    (drawn from in row order, so a given ``rng`` gives the same table)."""

    experiment: str
    n_nodes: int
    tasks: Mapping[str, str]
    gen: np.random.Generator

    def common(self, tid: str, mode: str, seed: int, fw: int, lam: float, tau: float) -> dict:
        gen = self.gen
        return {
            "experiment": self.experiment,
            "trial_id": tid,
            "status": "finished",
            "error": None,
            "mode": mode,
            "baseline_task": None,
            "seed": seed,
            "n_nodes": self.n_nodes,
            "flow_width": fw,
            "lambda_sq": lam,
            "tau": tau,
            "config/model.n_nodes": self.n_nodes,
            "config/model.flow_width": fw,
            "config/search.lambda_sq": lam,
            "config/reduction.tau": tau,
            "config/train.seed": seed,
            "time/warmup": 10 + gen.random(),
            "time/search": 20 + gen.random(),
            "time/reduction": 0.1,
            "time/finetune": 15 + gen.random(),
            "reused/warmup": bool(gen.random() < 0.5),
            "reused/search": False,
            "node": "node-0",
            "arch_spec_path": f"{tid}/arch_spec.json",
            "trial_dir": f"{tid}",
        }

    def costs(self, params: int, per_task: Mapping[str, int]) -> dict:
        flops = params * 4096
        out = {"params_union": params, "flops_multitask": flops, "latency_ms": 0.5 + flops / 1e9}
        for t in self.tasks:
            out[f"params/{t}"] = per_task.get(t, 0)
            out[f"flops/{t}"] = per_task.get(t, 0) * 4096
        return out

    def method_row(self, tid: str, mode: str, seed: int, fw: int, lam: float, tau: float, spec: dict, shift: float):
        """(row, gain) of a trial that kept ``spec``: cost and gain grow with its union edges and flow width;
        ``shift`` is added to the gain."""
        e = _n_union_edges(spec)
        params = 50_000 + 9 * (16 * fw) ** 2 * e + 10_000 * len(self.tasks)
        per_task = {t: 50_000 + 9 * (16 * fw) ** 2 * len(s["edges"]) + 10_000 for t, s in spec["tasks"].items()}
        gain = 0.08 * (1 - np.exp(-e * fw / 6)) - 0.03 + shift
        return self.common(tid, mode, seed, fw, lam, tau) | self.costs(params, per_task), gain


def _supernet_rows(g: _Grid, grid, base: Mapping, specs: dict) -> list[dict]:
    """One supernet row per (flow width, lambda_sq, tau, seed) of ``grid``; their specs go into ``specs``."""
    rows = []
    for i, (fw, lam, tau, seed) in enumerate(grid):
        tid = f"supernet_{i:04d}"
        keep = float(np.clip(0.9 - 3 * lam - 0.5 * tau, 0.15, 1))
        spec = specs[tid] = random_arch_spec(g.gen, g.n_nodes, fw, list(g.tasks), keep=keep)
        row, gain = g.method_row(tid, "supernet", seed, fw, lam, tau, spec, 0.0)
        row |= _metrics(base[seed], gain, g.gen, 0.01)
        row |= {f"loss/{t}": 1.0 - gain + 0.01 * g.gen.standard_normal() for t in g.tasks}
        rows.append(row)
    return rows


def _fail_last_two(rows: list[dict]) -> None:
    """The last row errored (no metrics, no losses) and the one before it stopped early."""
    rows[-1] |= {
        "status": "errored",
        "error": "RuntimeError: out of memory",
        **{k: np.nan for k in rows[-1] if k.startswith(("metric/", "loss/"))},
    }
    rows[-2]["status"] = "early_stopped"


def _random_rows(g: _Grid, seeds, flow_widths, k_per_seed: int, shift: float, base: Mapping, specs: dict):
    """``k_per_seed`` random_arch rows per seed, flow widths in turn; their specs go into ``specs``."""
    rows = []
    for seed in seeds:
        for k in range(k_per_seed):
            tid = f"random_arch_{k}_s{seed}"
            fw = flow_widths[k % len(flow_widths)]
            spec = specs[tid] = random_arch_spec(g.gen, g.n_nodes, fw, list(g.tasks), keep=0.6)
            row, gain = g.method_row(tid, "random_arch", seed, fw, 0.0, 0.0, spec, shift)
            row |= _metrics(base[seed], gain, g.gen, 0.01)
            row |= {f"loss/{t}": 1.0 - gain for t in g.tasks}
            rows.append(row)
    return rows


def _baseline_rows(g: _Grid, seeds, fw0: int, base: Mapping) -> list[dict]:
    """Per seed: one single_task row per task (only its task's metrics), then hard_sharing and full_supernet."""
    rows = []
    for seed in seeds:
        for t in g.tasks:
            tid = f"single_task_{t}_s{seed}"
            p = 50_000 + 9 * (16 * fw0) ** 2 * 6 + 10_000
            nan_others = {f"metric/{u}/{m}": np.nan for u, k in g.tasks.items() if u != t for m in KIND_METRICS[k]}
            row = g.common(tid, "single_task", seed, fw0, 0.0, 0.0) | g.costs(p, {t: p})
            row |= _metrics({t: base[seed][t]}, 0.0, g.gen, 0.0) | nan_others | {"baseline_task": t}
            row |= {f"loss/{u}": (1.0 if u == t else np.nan) for u in g.tasks}
            rows.append(row)
        for mode, gain, p in (
            ("hard_sharing", -0.01, 60_000 + 9 * (16 * fw0) ** 2 * 6),
            ("full_supernet", 0.04, 400_000),
        ):
            row = g.common(f"{mode}_s{seed}", mode, seed, fw0, 0.0, 0.0) | g.costs(p, {t: p for t in g.tasks})
            row |= _metrics(base[seed], gain, g.gen, 0.005) | {f"loss/{t}": 1.0 - gain for t in g.tasks}
            rows.append(row)
    return rows


def make_results(
    *,
    experiment: str = "exp",
    flow_widths: Sequence[int] = (1, 2, 3),
    lambda_sqs: Sequence[float] = (0.0, 0.01, 0.1),
    taus: Sequence[float] = (0.3, 0.6),
    seeds: Sequence[int] = (0, 1),
    n_nodes: int = 4,
    tasks: Mapping[str, str] = DEFAULT_TASKS,
    baselines: bool = True,
    errored: bool = True,
    random_archs: int = 0,
    random_gain: float = 0.0,
    rng: int = 0,
) -> tuple[pd.DataFrame, dict[str, dict]]:
    """(results table, trial_id -> arch spec) for a grid over flow width, lambda_sq, tau and seeds.

    ``random_archs`` = k adds k ``random_arch`` rows per seed (sizes like the method's, flow widths in
    turn) whose gain is the method's gain for that size plus ``random_gain`` (< 0: the search wins).
    """
    g = _Grid(experiment, n_nodes, tasks, np.random.default_rng(rng))
    base = {  # per seed: task -> metric -> baseline value
        s: {
            t: {m: b * (1 + 0.02 * g.gen.standard_normal()) for m, (_, b) in KIND_METRICS[k].items()}
            for t, k in tasks.items()
        }
        for s in seeds
    }
    specs: dict[str, dict] = {}
    rows = _supernet_rows(g, itertools.product(flow_widths, lambda_sqs, taus, seeds), base, specs)
    if errored:
        _fail_last_two(rows)
    rows += _random_rows(g, seeds, flow_widths, random_archs, random_gain, base, specs)
    if baselines:
        rows += _baseline_rows(g, seeds, flow_widths[-1], base)
    df = _add_learning_columns(pd.DataFrame(rows), tasks)
    ints = ["seed", "n_nodes", "flow_width", "params_union", "flops_multitask"]
    for c in ints + [c for c in df if c.startswith(("params/", "flops/"))]:
        df[c] = df[c].astype("int64")
    return df, specs


def _longest_path(task: dict) -> int:
    """Longest read-in -> read-out path in edges of one task's spec (0 when no edge joins them)."""
    depth = {j: 0 for j in task["read_in"]}  # longest path from a read-in to each node; edges go i -> j, i < j
    for i, j in sorted(map(tuple, task["edges"])):
        if i in depth:
            depth[j] = max(depth.get(j, 0), depth[i] + 1)
    return max([depth[j] for j in task["read_out"] if j in depth], default=0)


def topology_columns(spec: dict) -> dict:
    """The ``topo/`` columns and ``collapsed`` of one arch spec, as tune/results.py flattens them."""
    tasks = spec["tasks"]
    out: dict = {}
    for t, s in tasks.items():
        out |= {
            f"topo/{t}/edges": len(s["edges"]),
            f"topo/{t}/longest_path": _longest_path(s),
            f"topo/{t}/read_in": len(s["read_in"]),
            f"topo/{t}/read_out": len(s["read_out"]),
        }
        for u, o in tasks.items():
            if u != t:  # ops kept by both: edges and read-ins
                out[f"topo/{t}/shared/{u}"] = len(
                    {tuple(e) for e in s["edges"]} & {tuple(e) for e in o["edges"]}
                ) + len(set(s["read_in"]) & set(o["read_in"]))
    out["collapsed"] = float(all(len(s["edges"]) == 0 for s in tasks.values()))
    return out


# a planted variant of the default tasks: depth needs a path of 2 edges, the others are local (oracle per task)
PLANTED_NEEDS = {"segmentation": 0, "depth": 2, "normal": 0}
PLANTED_ORACLE = {
    "segmentation": ("miou", (0.3,)),
    "depth": ("abs_err", (1.0, 0.8, 0.5)),
    "normal": ("mean_angle", (40.0,)),
}


def add_planted(
    df: pd.DataFrame, specs: Mapping[str, dict], null: Sequence[float] = (0.2, 0.3, 0.3, 0.2)
) -> pd.DataFrame:
    """``df`` with the topology of each finished trial's spec (other trials: none), a null distribution P(L) of
    the longest path for every task (the same for every trial) and the planted needs and oracle."""
    df = df.copy()
    rows = [
        topology_columns(specs[t]) if t in specs and st == "finished" else {}
        for t, st in zip(df["trial_id"], df["status"])
    ]
    topo = pd.DataFrame(rows, index=df.index)
    extra = {}
    for t in PLANTED_NEEDS:
        extra |= {f"null/{t}/longest_path/{n}": p for n, p in enumerate(null)} | {f"null/{t}/exact": 1.0}
    extra |= {f"needs_edges/{t}": k for t, k in PLANTED_NEEDS.items()}
    extra |= {f"oracle/{t}/{m}/{k}": v for t, (m, vs) in PLANTED_ORACLE.items() for k, v in enumerate(vs)}
    has = topo.notna().any(axis=1)
    for c, v in extra.items():
        topo[c] = np.where(has, v, np.nan) if c.startswith("null/") else v
    return pd.concat([df, topo], axis=1)


def write_results(
    df: pd.DataFrame, path: Path, tasks: Mapping[str, str] = DEFAULT_TASKS, metadata: bool = True
) -> Path:
    """Write ``df`` as a results.parquet with the ``dagmtl`` key-value metadata (unless ``metadata=False``)."""
    table = pa.Table.from_pandas(df, preserve_index=False)
    if metadata:
        trivial = {
            t: {
                m: float(df[c].dropna().iloc[0])
                for m in KIND_METRICS.get(k, {})
                if (c := f"trivial/{t}/{m}") in df.columns and df[c].notna().any()
            }
            for t, k in tasks.items()
        }
        meta = {
            "schema_version": 1,
            "metric_senses": METRIC_SENSES,
            "tasks": dict(tasks),
            "trivial": {t: v for t, v in trivial.items() if v},
            "learned_margins": LEARNED_MARGINS,
        }
        table = table.replace_schema_metadata({**(table.schema.metadata or {}), b"dagmtl": json.dumps(meta).encode()})
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(table, path)
    return path


def make_epochs(df: pd.DataFrame, tasks: Sequence[str], rng: int = 0) -> pd.DataFrame:
    """A long per-epoch table: two epochs of warmup, search and finetune per trial (warmup and finetune for
    baselines), losses falling, each task's metric columns rising from the trivial value to the final one."""
    gen = np.random.default_rng(rng)
    rows = []
    kinds = {t: k for t, k in DEFAULT_TASKS.items() if t in tasks} or {t: t for t in tasks}
    for exp, tid, mode in df[["experiment", "trial_id", "mode"]].itertuples(index=False):
        final = df[(df["experiment"] == exp) & (df["trial_id"] == tid)].iloc[0]
        step = 0
        stages = (
            ("warmup", "search", "finetune")
            if mode in ("supernet", "random_arch", "full_supernet")
            else ("warmup", "finetune")
        )
        for si, stage in enumerate(stages):
            for epoch in range(2):
                step += 1
                loss = 2.0 / (1 + step / 2) + 0.01 * gen.random()
                frac = step / (2 * len(stages))
                metrics = {}
                for t in tasks:
                    for m, v in KIND_METRICS.get(kinds.get(t, ""), {}).items():
                        triv = TRIVIAL_BY_KIND[kinds[t]].get(m, v[1])
                        fin = final.get(f"metric/{t}/{m}", np.nan)
                        metrics[f"metric/{t}/{m}"] = triv + frac * (fin - triv)
                rows.append(
                    {
                        "experiment": exp,
                        "trial_id": tid,
                        "mode": mode,
                        "stage": stage,
                        "stage_index": si,
                        "epoch": epoch,
                        "step": step,
                        "train_loss": loss,
                        **{f"val_loss/{t}": loss * 1.1 for t in tasks},
                        **metrics,
                        "score": -loss,
                    }
                )
    return pd.DataFrame(rows)


def write_experiment(root: Path, *, name: str = "exp", tasks: Mapping[str, str] = DEFAULT_TASKS, **kw) -> Path:
    """Write a generated experiment folder ``root/name`` and return its path (see :func:`make_results`;
    ``planted=True`` adds the topology, null and planted columns of :func:`add_planted`)."""
    exp = Path(root) / name
    planted = kw.pop("planted", False)
    df, specs = make_results(experiment=name, tasks=tasks, **kw)
    if planted:
        df = add_planted(df, specs)
    write_results(df, exp / "results.parquet", tasks)
    pq.write_table(pa.Table.from_pandas(make_epochs(df, list(tasks)), preserve_index=False), exp / "epochs.parquet")
    for tid, spec in specs.items():
        (exp / tid).mkdir(parents=True, exist_ok=True)
        (exp / tid / "arch_spec.json").write_text(json.dumps(spec, indent=1))
    return exp
