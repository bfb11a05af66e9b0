"""Load sweep results (``results.parquet``, ``epochs.parquet``, ``arch_spec.json``) into tidy tables.

The on-disk schema is declared in ``analysis/schema.py`` (see docs/results-schema.md); this module
reads it: the compacted tables, or the per-trial fragments (``results/``, ``epochs/``) when they are newer
(a sweep still running, or one whose driver was killed). Metric senses come from the tables' metadata.
Everything downstream works on the returned DataFrame, and the Pareto kernels on plain arrays.

What ``load_results`` adds to the stored columns:

- ``is_valid``: the trial finished or was early-stopped (``errored`` rows are kept, flagged, and left
  out of every front and of the baselines);
- ``delta_mtl``: the multi-task gain in percent over the single-task baselines of the same experiment
  and seed (MTAN / LibMTL definition, see :func:`delta_mtl_column`); NaN on ``single_task`` rows and
  on rows that are not valid. Only ``finished`` single_task rows are baselines: an early-stopped one
  trained for fewer epochs and would inflate the gain, and one flagged ``learned == False`` (it did not
  beat its trivial reference) is an error, never a number;
- ``exp_dir``: the experiment folder the row came from, and ``arch_spec_path`` made absolute.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from os import PathLike
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.fs as pafs
import pyarrow.parquet as pq

from analysis import schema

# Short names accepted wherever a column is named as an objective.
ALIASES: dict[str, str] = {"params": "params_union", "flops": "flops_multitask", "latency": "latency_ms"}

VALID_STATUSES = ("finished", "early_stopped")
BASELINE_STATUSES = ("finished",)  # a baseline stopped early trained less: never a reference
REQUIRED_COLUMNS = ("experiment", "trial_id", "status", "mode", "seed")
BASELINE_MODE = "single_task"

PathArg = str | PathLike[str]


class AnalysisError(ValueError):
    """A problem with the user's inputs (paths, tables, objectives); the message says how to fix it."""


# ----------------------------------------------------------------------------- files


def _unreadable(path: PathArg, err: Exception, fragment: bool) -> AnalysisError:
    """One line for a Parquet file that does not read (cut short by a full disk or a kill mid-copy)."""
    fix = (
        "delete it, and `python run.py --resume` with the sweep's --name and --storage writes the rows of "
        "ended trials that have none"
        if fragment
        else "delete it, or rebuild it from the per-trial fragments with `python -m analysis EXPERIMENT_DIR --compact`"
    )
    first = (str(err).strip().splitlines() or [""])[0][:120]
    return AnalysisError(f"{path} is not a readable Parquet file ({type(err).__name__}: {first}): {fix}")


def _read_one(path: Path, fragment: bool = False) -> pa.Table:
    try:
        return pq.read_table(path)
    except (pa.ArrowInvalid, OSError) as e:
        raise _unreadable(path, e, fragment) from None


def _read_fragments(fs: pafs.FileSystem, files: list[str]) -> pa.Table:
    try:
        return schema.read_fragments(fs, files)
    except (pa.ArrowInvalid, OSError) as e:
        for f in files:  # name the broken one
            try:
                pq.read_metadata(f)
            except (pa.ArrowInvalid, OSError) as bad:
                raise _unreadable(f, bad, True) from None
        raise _unreadable(os.path.dirname(files[0]), e, True) from None


def _newest_table(exp: Path, folder: str, name: str) -> tuple[pa.Table, str] | None:
    """The compacted ``name`` of an experiment folder, or its fragments in ``folder`` when any is newer."""
    fs = pafs.LocalFileSystem()
    frags = schema.fragments(fs, str((exp / folder).resolve()))
    compacted = exp / name
    if frags and (not compacted.is_file() or compacted.stat().st_mtime_ns < max(f.mtime_ns for f in frags)):
        return _read_fragments(fs, [f.path for f in frags]), f"{exp / folder}/*.parquet"
    if compacted.is_file():
        return _read_one(compacted), str(compacted)
    return None


def _read(path: PathArg, folder: str, name: str) -> tuple[pa.Table, Path, str]:
    """(table, experiment folder, what was read) for an experiment folder or a Parquet file."""
    p = Path(path)
    if p.is_dir():
        found = _newest_table(p, folder, name)
        if found is None:
            raise AnalysisError(f"no {name} (nor {folder}/ fragments) in {p}: is this an experiment folder of a sweep?")
        return found[0], p, found[1]
    if p.is_file():
        return _read_one(p, fragment=p.parent.name in (schema.RESULTS_DIR, schema.EPOCHS_DIR)), p.parent, str(p)
    raise AnalysisError(f"experiment path does not exist: {p}")


def read_metadata(table: pa.Table, where: str) -> dict:
    """The ``dagmtl`` JSON of a table's key-value metadata ({} when it has none)."""
    try:
        return schema.parse_metadata(table.schema, where)
    except schema.SchemaError as e:
        raise AnalysisError(str(e)) from None


def compact(path: PathArg) -> dict[str, int]:
    """Rewrite ``results.parquet`` and ``epochs.parquet`` of an experiment folder from its fragments."""
    p = Path(path)
    if not p.is_dir():
        raise AnalysisError(f"experiment folder does not exist: {p}")
    fs = pafs.LocalFileSystem()
    for folder in (schema.RESULTS_DIR, schema.EPOCHS_DIR):  # a broken fragment named, not a traceback
        files = [f.path for f in schema.fragments(fs, str((p / folder).resolve()))]
        if files:
            _read_fragments(fs, files)
    return schema.compact(p)


def _as_paths(paths: PathArg | Sequence[PathArg]) -> list[PathArg]:
    if isinstance(paths, (str, PathLike)):
        return [paths]
    out = list(paths)
    if not out:
        raise AnalysisError("no experiment paths given")
    return out


# ----------------------------------------------------------------------------- results


def load_results(
    paths: PathArg | Sequence[PathArg], *, delta_mtl: bool = True, unusable_baseline: str = "raise"
) -> pd.DataFrame:
    """One tidy row per trial from one or several experiments (folders or ``results.parquet`` files).

    ``delta_mtl=False`` skips the multi-task gain (for sweeps run without single-task baselines);
    otherwise a missing baseline is an error rather than a silently different number. A baseline that
    exists but is unusable (it did not learn, or did not finish) is an error too, or, with
    ``unusable_baseline="nan"``, leaves delta_mtl NaN for that experiment and seed and is listed, with
    the reason, in ``df.attrs["delta_mtl_unavailable"]`` (what the report does: one bad baseline does not
    take the other seeds' comparisons with it).
    The merged metric senses, task kinds, trivial references ({task: {metric: value}}) and learned
    margins of the files are kept in ``df.attrs``.
    """
    frames, senses, tasks, trivial, margins, unavailable = [], {}, {}, {}, {}, []
    for path in _as_paths(paths):
        table, exp_dir, where = _read(path, schema.RESULTS_DIR, schema.RESULTS_FILE)
        info = read_metadata(table, where)
        df = table.to_pandas()
        missing = [c for c in REQUIRED_COLUMNS if c not in df.columns]
        if missing:
            raise AnalysisError(f"{where} lacks the columns {missing}: it is not a results table of this tool")
        file_senses = dict(info.get("metric_senses", {}))
        for name, sense in file_senses.items():
            if senses.setdefault(name, sense) != sense:
                raise AnalysisError(f"metric {name!r} is {senses[name]!r} in one experiment and {sense!r} in {where}")
        tasks.update(info.get("tasks", {}))
        for task, refs in info.get("trivial", {}).items():  # trivial references of the data set (supernet/trivial.py)
            trivial.setdefault(task, {}).update(refs)
        margins.update(info.get("learned_margins", {}))
        df["exp_dir"] = str(exp_dir.resolve())
        if "arch_spec_path" in df.columns:
            df["arch_spec_path"] = [_absolute(exp_dir, p) for p in df["arch_spec_path"]]
        df["is_valid"] = df["status"].isin(VALID_STATUSES).to_numpy(bool)
        if delta_mtl:
            df["delta_mtl"] = delta_mtl_column(
                df, file_senses, list(info.get("tasks", {})) or None, unusable_baseline, unavailable
            )
        frames.append(df)
    out = pd.concat(frames, ignore_index=True) if len(frames) > 1 else frames[0]
    dup = out.duplicated(["experiment", "trial_id"])
    if dup.any():
        first = out.loc[dup, ["experiment", "trial_id"]].iloc[0].tolist()
        raise AnalysisError(
            f"trial {first[1]!r} of experiment {first[0]!r} appears twice: was an experiment given twice?"
        )
    out.attrs = {
        "metric_senses": senses,
        "tasks": tasks,
        "trivial": trivial,
        "learned_margins": margins,
        "delta_mtl_unavailable": unavailable,
    }
    return out


def _absolute(exp_dir: Path, p: object) -> object:
    if not isinstance(p, str) or not p:
        return p
    q = Path(p)
    return str(q if q.is_absolute() else (exp_dir / q).resolve())


def not_learned(df: pd.DataFrame, column: str = "learned") -> np.ndarray:
    """Rows flagged ``column == False`` (did not beat the trivial references by the margins): kept off every
    front and hypervolume. Rows without the flag are not flagged: a null flag is a trial that did not finish (no
    final metrics to judge), and a table without the column is one built by hand or one whose flags the caller
    dropped to compare without this filter (as ``bench/pareto_asha.py`` does)."""
    if column not in df.columns:
        return np.zeros(len(df), bool)
    return np.array([v is not None and not pd.isna(v) and not bool(v) for v in df[column]], bool)


def metric_columns(df: pd.DataFrame) -> dict[str, list[str]]:
    """Task -> its ``metric/<task>/<name>`` columns, in table order."""
    out: dict[str, list[str]] = {}
    for col in df.columns:
        if isinstance(col, str) and col.startswith("metric/") and col.count("/") >= 2:
            task = col[len("metric/") : col.rindex("/")]
            out.setdefault(task, []).append(col)
    return out


def metric_sense(name: str, senses: Mapping[str, str] | None = None) -> str:
    """'max' or 'min' for a metric name (e.g. 'miou'), from the table's metadata (``df.attrs``)."""
    sense = (senses or {}).get(name)
    if sense not in ("max", "min"):
        raise AnalysisError(
            f"metric {name!r} has no known sense: add it to the results metadata 'metric_senses', "
            f"or name the objective with its sense ('metric/<task>/{name}:max')"
        )
    return sense


def delta_mtl_column(
    df: pd.DataFrame,
    senses: Mapping[str, str],
    tasks: Sequence[str] | None = None,
    unusable_baseline: str = "raise",
    unavailable: list[dict] | None = None,
) -> pd.Series:
    """Multi-task gain in percent of every valid non-baseline row (NaN elsewhere).

    ``delta_mtl = 100/T * sum_t 1/|M_t| * sum_m (-1)^{l_m} (M_tm - B_tm) / B_tm``, ``l_m = 1`` when lower
    is better: +x when a lower-is-better metric falls by x%. ``B_t`` is the mean of the *finished*
    ``single_task`` rows with ``baseline_task == t`` of the same experiment and seed; ``M_t`` are the
    metrics of task t that the baseline has (non-NaN). A missing baseline raises: comparing against
    another seed's baseline would silently change the number; so does a baseline that only exists
    early-stopped or errored (it trained less than the method, so the gain would be inflated).
    A baseline flagged ``learned == False`` raises too: a gain over a trivial predictor means nothing.
    With ``unusable_baseline="nan"`` those two cases (not finished, not learned) leave the experiment and
    seed's rows NaN instead, and append ``{experiment, seed, task, trial_id, reason}`` to ``unavailable``.
    """
    if unusable_baseline not in ("raise", "nan"):
        raise ValueError(f"unusable_baseline must be 'raise' or 'nan', got {unusable_baseline!r}")
    cols_by_task = metric_columns(df)
    tasks = list(tasks) if tasks else list(cols_by_task)
    out = pd.Series(np.nan, index=df.index, dtype="float64", name="delta_mtl")
    valid = df["status"].isin(VALID_STATUSES).to_numpy(bool)
    is_base = (df["mode"] == BASELINE_MODE).to_numpy(bool)
    if is_base.any() and "baseline_task" not in df.columns:
        raise AnalysisError("single_task rows need a 'baseline_task' column naming their task")
    finished = df["status"].isin(BASELINE_STATUSES).to_numpy(bool)
    base, target = df[finished & is_base], df[valid & ~is_base]
    for (exp, seed), rows in target.groupby(["experiment", "seed"], sort=True):
        try:
            out.loc[rows.index] = _delta_mtl_of_seed(
                rows, df, base, is_base, finished, exp, seed, tasks, cols_by_task, senses
            )
        except _UnusableBaseline as e:
            if unusable_baseline == "raise":
                raise AnalysisError(str(e)) from None
            if unavailable is not None:
                unavailable.append(
                    {"experiment": exp, "seed": seed, "task": e.task, "trial_id": e.trial_id, "reason": e.reason}
                )
    return out


class _UnusableBaseline(Exception):
    """A baseline exists for (experiment, seed, task) but cannot be the reference (not finished / not learned)."""

    def __init__(self, message: str, task: str, trial_id: str, reason: str):
        super().__init__(message)
        self.task, self.trial_id, self.reason = task, trial_id, reason


def _delta_mtl_of_seed(rows, df, base, is_base, finished, exp, seed, tasks, cols_by_task, senses) -> np.ndarray:
    """delta_mtl of one experiment and seed's rows (see delta_mtl_column)."""
    per_task = []
    for task in tasks:
        b = base[(base["experiment"] == exp) & (base["seed"] == seed) & (base["baseline_task"] == task)]
        where = f"task {task!r}, experiment {exp!r}, seed {seed}"
        if b.empty:
            others = df[
                is_base
                & ~finished
                & (df["experiment"] == exp).to_numpy(bool)
                & (df["seed"] == seed).to_numpy(bool)
                & (df["baseline_task"] == task).to_numpy(bool)
            ]
            if not others.empty:
                trial, statuses = str(others["trial_id"].iloc[0]), sorted(set(others["status"]))
                raise _UnusableBaseline(
                    f"the single_task baseline for {where} did not finish (status {statuses}, trial {trial!r}): an "
                    "early-stopped or errored baseline trained less than the method and is never used as a reference; "
                    "re-run it to the end (a scheduler must not stop baselines), or load with delta_mtl=False",
                    task,
                    trial,
                    f"did not finish ({', '.join(statuses)})",
                )
            raise AnalysisError(
                f"no valid single_task baseline (a finished one) for {where}: "
                "run the single-task baselines for this seed, "
                "or leave delta_mtl out of the objectives (load_results(..., delta_mtl=False))"
            )
        flat = not_learned(b) | not_learned(b, f"learned/{task}")
        if flat.any():
            trial = str(b.loc[flat, "trial_id"].iloc[0])
            raise _UnusableBaseline(
                f"the single_task baseline for {where} (trial {trial!r}) did not learn task {task!r} (it does not "
                "beat its trivial reference by the margins): delta_mtl against it would be a gain over a trivial "
                "predictor; fix the baseline's training (epochs, learning rate), or load with delta_mtl=False and "
                "compare task metrics",
                task,
                trial,
                "did not learn",
            )
        cols = [c for c in cols_by_task.get(task, []) if b[c].notna().any()]
        if not cols:
            raise AnalysisError(f"the single_task baseline for {where} has no metric values")
        ref = b[cols].mean().to_numpy(float)  # (m,)
        if (ref == 0).any():
            raise AnalysisError(f"a baseline metric of {where} is 0, so a relative change is undefined")
        sign = np.array([1.0 if metric_sense(c.rsplit("/", 1)[1], senses) == "max" else -1.0 for c in cols])
        values = rows[cols].to_numpy(float)  # (n, m)
        per_task.append((sign * (values - ref) / ref).mean(axis=1))  # NaN stays NaN
    return 100.0 * np.mean(per_task, axis=0)


# ----------------------------------------------------------------------------- epochs, specs


def load_epochs(paths: PathArg | Sequence[PathArg]) -> pd.DataFrame:
    """The long per-epoch table(s) (``epochs.parquet``) of one or several experiment folders."""
    frames = []
    for path in _as_paths(paths):
        p = Path(path)
        if p.is_file() and p.name == schema.RESULTS_FILE:
            p = p.parent
        elif not p.is_dir() and not p.is_file():
            raise AnalysisError(f"no {schema.EPOCHS_FILE} at {p}")
        try:
            table, _, where = _read(p, schema.EPOCHS_DIR, schema.EPOCHS_FILE)
        except AnalysisError:
            raise AnalysisError(
                f"no {schema.EPOCHS_FILE} at {p / schema.EPOCHS_FILE} (nor {schema.EPOCHS_DIR}/ fragments)"
            ) from None
        df = table.to_pandas()
        missing = [c for c in ("experiment", "trial_id", "stage", "epoch") if c not in df.columns]
        if missing:
            raise AnalysisError(f"{where} lacks the columns {missing}: it is not an epochs table of this tool")
        frames.append(df)
    return pd.concat(frames, ignore_index=True) if len(frames) > 1 else frames[0]


def load_arch_spec(path: PathArg) -> dict:
    """A trial's ``arch_spec.json``, checked: nodes 1..N, edges i->j with i<j, read-ins/outs in 1..N."""
    p = Path(path)
    if not p.is_file():
        raise AnalysisError(f"architecture spec not found: {p}")
    spec = json.loads(p.read_text())
    try:
        n = int(spec["n_nodes"])
        for task, t in spec["tasks"].items():
            for i, j in t["edges"]:
                if not (1 <= i < j <= n):
                    raise AnalysisError(f"{p}: task {task!r} has edge {i}->{j}, outside 1..{n} or not forward")
            for key in ("read_in", "read_out"):
                bad = [j for j in t[key] if not 1 <= j <= n]
                if bad:
                    raise AnalysisError(f"{p}: task {task!r} {key} nodes {bad} are outside 1..{n}")
    except (KeyError, TypeError, ValueError) as e:
        if isinstance(e, AnalysisError):
            raise
        raise AnalysisError(f"{p} is not an architecture spec ({type(e).__name__}: {e})") from e
    return spec
