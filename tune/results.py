"""The Parquet tables of an experiment: ``results.parquet`` (one row per trial) and ``epochs.parquet``.

``ResultsCallback`` rewrites both (atomically: temp file + rename on the storage filesystem) whenever a
trial finishes or errors, and once more at the end. Rows are rebuilt from Tune's trial objects, whose
config and last result Tune itself persists, so a restored experiment loses nothing; epoch rows seen
by an earlier driver are read back from the existing ``epochs.parquet``. Schema: README "Results schema".
"""
from __future__ import annotations

import json
import math
import os
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.fs as pafs
import pyarrow.parquet as pq
from ray import tune

from supernet.config import ConfigError, build_config, flatten, to_dict
from supernet.senses import METRIC_SENSES
from supernet.trial import REUSABLE_STAGES, STAGES
from supernet.trivial import LEARNED_MARGINS

SCHEMA_VERSION = 1
RECORD_KEYS = ("stage", "stage_index", "epoch", "step", "train_loss", "squeeze", "score", "params_union", "flops_multitask")
INT_COLUMNS = ("seed", "n_nodes", "flow_width", "params_union", "flops_multitask")


def experiment_fs(exp_path: str) -> tuple[pafs.FileSystem, str]:
    """(pyarrow filesystem, path on it) of an experiment folder given as a local path or URI."""
    if "://" in exp_path:
        return pafs.FileSystem.from_uri(exp_path)
    return pafs.LocalFileSystem(), os.path.abspath(exp_path)


def write_table_atomic(table: pa.Table, fs: pafs.FileSystem, path: str) -> None:
    """Write ``table`` to a temp file next to ``path`` and rename it into place (readers never see half a file)."""
    tmp = f"{path}.tmp-{os.getpid()}"
    pq.write_table(table, tmp, filesystem=fs)
    fs.move(tmp, path)


def _finite(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def _error_message(trial: Any) -> str | None:
    """The exception message of an errored trial (``Type: message``), from what Tune stored."""
    try:
        err = trial.get_pickled_error()
        cause = getattr(err, "cause", None) or err
        if cause is not None:
            return f"{type(cause).__name__}: {cause}"
    except Exception:  # noqa: BLE001 - fall back to the text trace
        pass
    try:
        text = trial.get_error() or ""
        lines = [ln for ln in str(text).strip().splitlines() if ln.strip()]
        return lines[-1] if lines else "errored (no message stored)"
    except Exception:  # noqa: BLE001
        return "errored (no message stored)"


def trial_row(experiment: str, trial: Any, status: str, preset: str | None, base: dict, tasks: list[str],
              swept: list[str]) -> dict[str, Any]:
    """One results row from a Tune trial: its config (``swept`` keys as ``config/<key>``), last report and status."""
    overrides = dict(trial.config.get("overrides", {}))
    flat = flatten(to_dict(build_config(preset, base)))
    try:
        flat = flatten(to_dict(build_config(preset, {**base, **overrides})))
    except ConfigError:  # an invalid point (the trial errored): keep the raw values
        flat.update(overrides)
    last = dict(trial.last_result or {})
    finished = status == "finished"
    row: dict[str, Any] = {
        "experiment": experiment, "trial_id": trial.trial_id, "status": status,
        "error": _error_message(trial) if status == "errored" else None,
        "mode": flat["trial.mode"], "baseline_task": flat["trial.single_task"] if flat["trial.mode"] == "single_task" else None,
        "seed": flat["trial.seed"], "n_nodes": flat["model.n_nodes"], "flow_width": flat["model.flow_width"],
        "lambda_sq": float(flat["search.lambda_sq"]), "tau": float(flat["reduction.tau"]),
    }
    for k in swept:
        row[f"config/{k}"] = flat.get(k)
    for k, v in last.items():
        # trivial/<task>/<metric>: supernet.trivial's reference; quality/<stage>/<task>/<metric>: at each stage's end
        if k.startswith(("metric/", "trivial/", "quality/")):
            row[k] = float(v) if _finite(v) else math.nan
    for k in ["learned"] + [f"learned/{t}" for t in tasks]:  # beats the trivial references by LEARNED_MARGINS
        v = last.get(k)
        row[k] = bool(v) if finished and _finite(v) else None
    for t in tasks:
        loss = last.get(f"loss/{t}") if finished else last.get(f"val_loss/{t}")
        row[f"loss/{t}"] = float(loss) if _finite(loss) else math.nan
        for k in ("params", "flops"):
            v = last.get(f"{k}/{t}")
            row[f"{k}/{t}"] = int(v) if finished and _finite(v) else None
    for k in ("params_union", "flops_multitask"):
        row[k] = int(last[k]) if _finite(last.get(k)) else None
    row["latency_ms"] = float(last["latency_ms"]) if finished and _finite(last.get("latency_ms")) else math.nan
    for s in STAGES:
        v = last.get(f"time/{s}")
        row[f"time/{s}"] = float(v) if finished and _finite(v) else math.nan
    for s in REUSABLE_STAGES:
        v = last.get(f"reused/{s}")
        row[f"reused/{s}"] = bool(v) if finished and _finite(v) else None
    trial_dir = os.path.basename(str(trial.path).rstrip("/")) if trial.path else None
    row["node"] = last.get("node")
    row["hostname"] = last.get("hostname")
    row["arch_spec_path"] = f"{trial_dir}/arch_spec.json" if finished and trial_dir else None
    row["trial_dir"] = trial_dir
    return row


def trivial_metadata(rows: list[dict[str, Any]]) -> dict[str, dict[str, float]]:
    """{task: {metric: value}} of the trivial references (the first finite value of each ``trivial/`` column;
    every trial of a sweep shares the data set, so they agree)."""
    out: dict[str, dict[str, float]] = {}
    for row in rows:
        for k, v in row.items():
            if k.startswith("trivial/") and _finite(v):
                task, metric = k.split("/", 2)[1:]
                out.setdefault(task, {}).setdefault(metric, float(v))
    return out


def margins_metadata() -> dict[str, dict[str, Any]]:
    """LEARNED_MARGINS as JSON: {"<kind>/<metric>": {"sense": "max"|"min", "factor": f}}."""
    return {f"{k}/{m}": {"sense": s, "factor": f} for (k, m), (s, f) in LEARNED_MARGINS.items()}


def results_table(rows: list[dict[str, Any]], tasks: dict[str, str]) -> pa.Table:
    """Rows -> an Arrow table with the fixed column types and the ``dagmtl`` schema metadata."""
    df = pd.DataFrame(rows)
    fields, arrays = [], []
    for col in df.columns:
        values = df[col].tolist()
        values = [None if isinstance(v, float) and math.isnan(v) else v for v in values]
        if col in INT_COLUMNS or col.startswith(("params/", "flops/")):
            typ = pa.int64()
        elif col.startswith(("metric/", "loss/", "time/", "trivial/")) or col in ("lambda_sq", "tau", "latency_ms"):
            typ = pa.float64()
        elif col.startswith(("reused/", "learned/")) or col == "learned":
            typ = pa.bool_()
        else:
            typ = None
        try:
            arr = pa.array(values, type=typ, from_pandas=True)
        except (pa.ArrowInvalid, pa.ArrowTypeError):  # mixed types in a config column: keep them as text
            arr = pa.array([None if v is None else str(v) for v in values], type=pa.string())
        if arr.type == pa.null():
            arr = arr.cast(pa.string())
        fields.append(pa.field(col, arr.type))
        arrays.append(arr)
    meta = {"schema_version": SCHEMA_VERSION, "metric_senses": METRIC_SENSES, "tasks": tasks,
            "trivial": trivial_metadata(rows), "learned_margins": margins_metadata()}
    return pa.Table.from_arrays(arrays, schema=pa.schema(fields, metadata={b"dagmtl": json.dumps(meta).encode()}))


class ResultsCallback(tune.Callback):
    """Keeps ``results.parquet`` and ``epochs.parquet`` of the experiment up to date."""

    def __init__(self, exp_path: str, experiment: str, preset: str | None, base: dict, tasks: dict[str, str]):
        self.exp_path, self.experiment, self.preset, self.base, self.tasks = exp_path, experiment, preset, base, tasks
        self.fs, self.dir = experiment_fs(exp_path)
        self.epochs: dict[tuple[str, int], dict[str, Any]] = {}
        self.completed: set[str] = set()

    def setup(self, **info: Any) -> None:
        """Start of a run (fresh or restored): read back the epoch rows an earlier driver wrote."""
        path = f"{self.dir}/epochs.parquet"
        if self.fs.get_file_info(path).type == pafs.FileType.File:
            for r in pq.read_table(path, filesystem=self.fs).to_pylist():
                self.epochs[(r["trial_id"], r["step"])] = r

    def on_trial_result(self, iteration: int, trials: list, trial: Any, result: dict, **info: Any) -> None:
        rec = {"experiment": self.experiment, "trial_id": trial.trial_id}
        rec.update({k: result.get(k) for k in RECORD_KEYS})
        rec.update({k: v for k, v in result.items() if k.startswith(("val_loss/", "metric/"))})
        rec["node"] = result.get("node")
        self.epochs[(trial.trial_id, int(result["step"]))] = rec

    def on_trial_complete(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        self.completed.add(trial.trial_id)
        self.write(trials)

    def on_trial_error(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        self.write(trials)

    def on_experiment_end(self, trials: list, **info: Any) -> None:
        self.write(trials)

    def _epochs_from_file(self, trial: Any) -> None:
        """Local/NFS: the trial's metrics.jsonl is the exact epoch list (reports before a driver kill included)."""
        path = os.path.join(self.dir, os.path.basename(str(trial.path).rstrip("/")), "metrics.jsonl")
        if not os.path.isfile(path):
            return
        node = (trial.last_result or {}).get("node")
        for key in [k for k in self.epochs if k[0] == trial.trial_id]:
            del self.epochs[key]
        with open(path) as f:
            for line in f:
                rec = json.loads(line)
                row = {"experiment": self.experiment, "trial_id": trial.trial_id,
                       **{k: rec.get(k) for k in RECORD_KEYS},
                       **{k: v for k, v in rec.items() if k.startswith(("val_loss/", "metric/"))}, "node": node}
                self.epochs[(trial.trial_id, int(rec["step"]))] = {k: (math.nan if v is None and k != "node" else v) for k, v in row.items()}

    def status(self, trial: Any) -> str | None:
        """finished | early_stopped | errored, or None for a trial still to run."""
        s = trial.status
        if s == "ERROR":
            return "errored"
        if s == "TERMINATED" or trial.trial_id in self.completed:
            return "finished" if (trial.last_result or {}).get("trial_finished") == 1 else "early_stopped"
        return None

    def write(self, trials: list) -> None:
        rows = []
        swept = sorted({k for t in trials for k in t.config.get("overrides", {})})
        for t in trials:
            status = self.status(t)
            if status is not None:
                rows.append(trial_row(self.experiment, t, status, self.preset, self.base, list(self.tasks), swept))
            if status is not None and t.path and "://" not in self.exp_path:
                self._epochs_from_file(t)
        self.fs.create_dir(self.dir, recursive=True)
        if rows:
            write_table_atomic(results_table(rows, self.tasks), self.fs, f"{self.dir}/results.parquet")
        if self.epochs:
            ep = pd.DataFrame(sorted(self.epochs.values(), key=lambda r: (r["trial_id"], r["step"])))
            write_table_atomic(pa.Table.from_pandas(ep, preserve_index=False), self.fs, f"{self.dir}/epochs.parquet")
