"""The Parquet tables of an experiment: one row per trial (``results``) and one per epoch (``epochs``).

Each ended trial's row and epoch rows are written once, as the fragments ``results/<trial_id>.parquet``
and ``epochs/<trial_id>.parquet`` (atomically: temp file + rename on the storage filesystem), so the
driver's work per ended trial does not grow with the sweep: nothing written before is rebuilt or read
again. On local/NFS storage a finished trial writes its own (``write_trial_fragments``, from its
``metrics.jsonl`` and ``summary.json``) before its final report; ``ResultsCallback`` in the driver writes
those of every other ended trial, and on URI storage every trial's, from the reports it saw. At the end
of the run it writes the fragments of trials that ended without one (a restored experiment) or were
stopped by Ctrl-C, and compacts them into ``results.parquet`` and ``epochs.parquet``. Every row's status
comes from one rule, ``trial_status`` (the trial folder's summary.json first, then Tune's view).
Schema: ``analysis/schema.py`` and docs/results-schema.md.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
from ray import cloudpickle, tune

from analysis import schema
from analysis.schema import RECORD_KEYS, compact, experiment_fs, is_uri, write_table_atomic
from supernet.config import ConfigError, build_config, flatten, to_dict
from supernet.senses import METRIC_SENSES
from supernet.stages import REUSABLE_STAGES, STAGES
from supernet.trivial import LEARNED_MARGINS

__all__ = [
    "ResultsCallback",
    "RowContext",
    "compact",
    "experiment_fs",
    "results_table",
    "trial_row",
    "write_table_atomic",
    "write_trial_fragments",
]


def summary_keys(
    tasks: list[str], metrics: list[str] = (), n_nodes: int = 0, planted: bool = False
) -> dict[str, float]:
    """Keys the final report adds (NaN before): flattened summary figures, same set at every report.
    ``metrics``: the ``<task>/<metric>`` names, for the trivial references.

    ``n_nodes`` > 0 adds the topology and null-distribution keys, ``planted`` the planted data's (needs
    and oracle, for every metric of ``metrics``). Both are bounded by N: a read-in -> read-out path through
    N nodes has at most N - 1 edges, so L and k run over 0..N-1. An oracle listing further k (it may: its
    last entry holds beyond) still reaches the results table through the summary, only not progress.csv.
    """
    keys = ["trial_finished", "latency_ms", "params_supernet", "learned"]
    keys += [f"{k}/{t}" for k in ("loss", "params", "flops", "learned") for t in tasks]
    keys += [f"trivial/{m}" for m in metrics]
    keys += [f"quality/{s}/{m}" for s in STAGES for m in metrics]
    keys += [f"time/{s}" for s in STAGES] + [f"reused/{s}" for s in REUSABLE_STAGES]
    if n_nodes > 0:
        keys.append(schema.COLLAPSED)
        for t in tasks:
            keys += [f"{schema.TOPO}{t}/{k}" for k in schema.TOPO_MEASURES]
            keys += [f"{schema.TOPO}{t}/shared/{u}" for u in tasks if u != t]
            keys += [f"{schema.NULL}{t}/longest_path/{n}" for n in range(n_nodes)] + [f"{schema.NULL}{t}/exact"]
        if planted:
            keys += [f"{schema.NEEDS_EDGES}{t}" for t in tasks]
            keys += [f"{schema.ORACLE}{m}/{k}" for m in metrics for k in range(n_nodes)]
    return {k: math.nan for k in keys}


def flatten_summary(summary: dict[str, Any]) -> dict[str, Any]:
    """summary.json -> the flat figures of the final report (metric/<task>/<name> from the final evaluation)."""
    out: dict[str, Any] = {
        "trial_finished": 1.0,
        "latency_ms": summary["latency_ms"],
        "params_supernet": summary["params"]["supernet"],
        "params_union": summary["params"]["union"],
        "flops_multitask": summary["flops"]["multitask"],
    }
    for t, v in summary["val_loss"].items():
        out[f"loss/{t}"] = v
    for t, v in summary["params"]["per_task"].items():
        out[f"params/{t}"] = v
    for t, v in summary["flops"]["per_task"].items():
        out[f"flops/{t}"] = v
    for t, ms in summary["metrics"].items():
        out.update({f"metric/{t}/{m}": v for m, v in ms.items()})
    for t, ms in summary.get("trivial", {}).items():  # absent from summaries without trivial references
        out.update({f"trivial/{t}/{m}": v for m, v in ms.items()})
    out["learned"] = float(summary["learned"]) if "learned" in summary else math.nan
    for stage, q in summary.get("stage_quality", {}).items():  # metric/<task>/<name> at the end of each stage
        out.update({f"quality/{stage}/{k.split('/', 1)[1]}": v for k, v in q.items() if k.startswith("metric/")})
    out.update({f"learned/{t}": float(v) for t, v in summary.get("learned_per_task", {}).items()})
    out.update({f"time/{s}": v for s, v in summary["timings"].items()})
    out.update({f"reused/{s}": float(v) for s, v in summary["reused"].items()})
    out["score"] = sum(summary["val_loss"].values()) / len(summary["val_loss"])
    out.update(_flatten_topology(summary))
    return out


def _flatten_topology(summary: dict[str, Any]) -> dict[str, Any]:
    """The kept network's topology, its null distribution and the planted data's needs and oracle as flat
    columns (analysis/schema.py); each part is absent from older summaries and from data without planted
    structure, and then adds nothing."""
    out: dict[str, Any] = {}
    for t, topo in summary.get("topology", {}).items():
        out.update({f"{schema.TOPO}{t}/{k}": topo[k] for k in schema.TOPO_MEASURES if k in topo})
        out.update({f"{schema.TOPO}{t}/shared/{u}": n for u, n in topo.get("shared", {}).items()})
    if summary.get("collapsed") is not None:
        out[schema.COLLAPSED] = float(summary["collapsed"])
    for t, null in summary.get("null_longest_path", {}).items():
        out.update({f"{schema.NULL}{t}/longest_path/{n}": float(p) for n, p in enumerate(null["probs"])})
        if "exact" in null:
            out[f"{schema.NULL}{t}/exact"] = float(null["exact"])
    planted = summary.get("planted", {})
    out.update({f"{schema.NEEDS_EDGES}{t}": k for t, k in planted.get("needs_edges", {}).items()})
    for t, o in planted.get("oracle", {}).items():
        out.update({f"{schema.ORACLE}{t}/{o['metric']}/{k}": float(v) for k, v in enumerate(o["by_edges"])})
    return out


def _finite(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def _error_message(trial: Any) -> str | None:
    """The exception message of an errored trial (``Type: message``), from what Tune stored."""
    try:  # the driver's own copy first: at on_trial_error the storage copy is not synced yet
        local = trial.pickled_error_file
        if local and os.path.isfile(local):
            with open(local, "rb") as f:
                err = cloudpickle.load(f)
        else:
            err = trial.get_pickled_error()
        cause = getattr(err, "cause", None) or err
        if cause is not None:
            return f"{type(cause).__name__}: {cause}"
    except Exception:  # noqa: BLE001 - fall back to the text trace
        pass
    try:
        local = trial.error_file
        text = Path(local).read_text() if local and os.path.isfile(local) else trial.get_error() or ""
        lines = [ln for ln in str(text).strip().splitlines() if ln.strip()]
        return lines[-1] if lines else "errored (no message stored)"
    except Exception:  # noqa: BLE001
        return "errored (no message stored)"


def build_row(
    experiment: str,
    trial_id: str,
    overrides: dict[str, Any],
    status: str,
    preset: str | None,
    base: dict,
    tasks: list[str],
    swept: list[str],
    last: dict[str, Any],
    error: str | None = None,
    trial_dir: str | None = None,
) -> dict[str, Any]:
    """One results row: the trial's config (``swept`` keys as ``config/<key>``), its figures ``last`` (the last
    report, or what its files say) and status. The column order is the table's: each part below adds its
    columns in turn."""
    try:
        flat = flatten(to_dict(build_config(preset, {**base, **overrides})))
    except ConfigError:  # an invalid point (the trial errored): keep the raw values
        flat = {**flatten(to_dict(build_config(preset, base))), **overrides}
    finished = status == "finished"
    row: dict[str, Any] = {"experiment": experiment, "trial_id": trial_id, "status": status, "error": error}
    row.update(_config_columns(flat))
    row.update(_stopped_columns(status, last))
    row.update({schema.CONFIG + k: flat.get(k) for k in swept})
    row.update(_reported_columns(last))
    row.update(_final_columns(last, tasks, finished))
    row["node"] = last.get("node")
    row["hostname"] = last.get("hostname")
    row["arch_spec_path"] = f"{trial_dir}/arch_spec.json" if finished and trial_dir else None
    row["trial_dir"] = trial_dir
    return row


def _config_columns(flat: dict[str, Any]) -> dict[str, Any]:
    """The columns every row takes from its config: mode, baseline task, seed and ``schema.AXIS_COLUMNS``."""
    mode = flat["trial.mode"]
    row = {"mode": mode, "baseline_task": flat["trial.single_task"] if mode == "single_task" else None}
    row["seed"] = flat["trial.seed"]
    # the config's ints are ints already; a float column's value is made a float (a YAML 0 is an int)
    row.update({c.name: float(flat[c.key]) if c.type == pa.float64() else flat[c.key] for c in schema.AXIS_COLUMNS})
    return row


def _stopped_columns(status: str, last: dict[str, Any]) -> dict[str, Any]:
    """Where a scheduler stopped the trial: the step and stage of its last report (a rung's milestone, or the
    report that jumped past it); None for a trial it did not stop."""
    stopped = status == "early_stopped" and _finite(last.get("step"))
    stage = last.get("stage")
    return {
        "stopped_step": int(last["step"]) if stopped else None,
        "stopped_stage": str(stage) if stopped and stage is not None else None,
    }


# report keys taken as they come, by prefix: trivial/<task>/<metric> is supernet.trivial's reference,
# quality/<stage>/<task>/<metric> the metric at each stage's end; the topology counts are ints
_FLOAT_REPORTED = ("metric/", "trivial/", "quality/", schema.NULL, schema.ORACLE)
_INT_REPORTED = (schema.TOPO, schema.NEEDS_EDGES)


def _reported_columns(last: dict[str, Any]) -> dict[str, Any]:
    """The per-task figures of ``last`` whose keys vary with the data (in ``last``'s order): floats NaN when
    unknown, counts None."""
    out: dict[str, Any] = {}
    for k, v in last.items():
        if k.startswith(_FLOAT_REPORTED) or k == schema.COLLAPSED:
            out[k] = float(v) if _finite(v) else math.nan
        elif k.startswith(_INT_REPORTED):
            out[k] = int(v) if _finite(v) else None
    return out


def _final(finished: bool, v: Any, cast: Any, missing: Any = None) -> Any:
    """``cast(v)`` for a finite figure of a finished trial, else ``missing`` (the final report's figures only)."""
    return cast(v) if finished and _finite(v) else missing


def _final_columns(last: dict[str, Any], tasks: list[str], finished: bool) -> dict[str, Any]:
    """The learned flags, per-task losses and sizes, the sizes, latency, stage times and reuse: the losses of an
    unfinished trial are its last validation losses, the rest only a finished trial has."""
    row: dict[str, Any] = {}
    for k in ["learned"] + [f"learned/{t}" for t in tasks]:  # beats the trivial references by LEARNED_MARGINS
        row[k] = _final(finished, last.get(k), bool)
    for t in tasks:
        loss = last.get(f"loss/{t}") if finished else last.get(f"val_loss/{t}")
        row[f"loss/{t}"] = float(loss) if _finite(loss) else math.nan
        row.update({f"{k}/{t}": _final(finished, last.get(f"{k}/{t}"), int) for k in ("params", "flops")})
    row.update({k: int(last[k]) if _finite(last.get(k)) else None for k in ("params_union", "flops_multitask")})
    row["latency_ms"] = _final(finished, last.get("latency_ms"), float, math.nan)
    row.update({f"time/{s}": _final(finished, last.get(f"time/{s}"), float, math.nan) for s in STAGES})
    row.update({f"reused/{s}": _final(finished, last.get(f"reused/{s}"), bool) for s in REUSABLE_STAGES})
    return row


def trial_row(
    experiment: str,
    trial: Any,
    status: str,
    preset: str | None,
    base: dict,
    tasks: list[str],
    swept: list[str],
    last: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """``build_row`` of a Tune trial object; ``last`` (default: its last report) its figures."""
    trial_dir = os.path.basename(str(trial.path).rstrip("/")) if trial.path else None
    return build_row(
        experiment,
        trial.trial_id,
        dict(trial.config.get("overrides", {})),
        status,
        preset,
        base,
        tasks,
        swept,
        dict(trial.last_result or {}) if last is None else last,
        _error_message(trial) if status == "errored" else None,
        trial_dir,
    )


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
    """Rows -> an Arrow table with the fixed column types and the ``dagmtl`` schema metadata.

    A column with no value in ``rows`` keeps Arrow's null type, so that fragments of other trials decide
    its type when they are compacted (``analysis.schema`` makes a column null everywhere text).
    """
    columns = list(dict.fromkeys(k for r in rows for k in r))
    fields, arrays = [], []
    for col in columns:
        values = [r.get(col) for r in rows]
        values = [None if isinstance(v, float) and math.isnan(v) else v for v in values]
        typ = schema.column_type(col)
        try:
            arr = pa.array(values, type=typ, from_pandas=True)
        except (pa.ArrowInvalid, pa.ArrowTypeError):  # mixed types in a config column: keep them as text
            arr = pa.array([None if v is None else str(v) for v in values], type=pa.string())
        fields.append(pa.field(col, arr.type))
        arrays.append(arr)
    return pa.Table.from_arrays(
        arrays,
        schema=pa.schema(
            fields,
            metadata=schema.metadata(
                tasks, METRIC_SENSES, trivial=trivial_metadata(rows), learned_margins=margins_metadata()
            ),
        ),
    )


def epochs_table(rows: list[dict[str, Any]], tasks: dict[str, str]) -> pa.Table:
    """Epoch rows of one trial -> an Arrow table with the ``dagmtl`` metadata."""
    table = pa.Table.from_pylist(rows)
    return table.replace_schema_metadata(schema.metadata(tasks, METRIC_SENSES))


def _epoch_row(experiment: str, trial_id: str, rec: dict[str, Any], node: Any) -> dict[str, Any]:
    row = {
        "experiment": experiment,
        "trial_id": trial_id,
        **{k: rec.get(k) for k in RECORD_KEYS},
        **{k: v for k, v in rec.items() if k.startswith((schema.VAL_LOSS, schema.METRIC))},
        "node": node,
    }
    return {k: (math.nan if v is None and k not in ("node", "stage") else v) for k, v in row.items()}


# ----------------------------------------------------------------------------- a trial's status

# what a trial's summary.json may say; each is final: the trial never runs again (tune/trainable.py)
ENDED_ON_DISK = ("finished", "diverged", "errored")


def disk_status(folder: str | os.PathLike[str] | None) -> tuple[str | None, dict[str, Any] | None]:
    """(status, summary) from a local/NFS trial folder's ``summary.json``: None when there is none (or it is
    unreadable: a summary is written atomically, so that means it was never complete)."""
    if folder is None:
        return None, None
    path = os.path.join(folder, "summary.json")
    try:
        with open(path) as f:
            summary = json.load(f)
    except (OSError, ValueError):
        return None, None
    status = summary.get("status")
    return (status, summary) if status in ENDED_ON_DISK else (None, None)


def trial_status(
    folder: str | None, tune_status: str, last: dict[str, Any] | None, ran_here: bool, completed_here: bool
) -> tuple[str, str | None]:
    """The one rule for a trial's status (``schema.STATUSES``) and error message, from what is on disk first.

    - its ``summary.json`` (local/NFS storage) says finished, diverged or errored: that, whatever Tune says
      (a trial that finished is never reported errored, even if the driver died before Tune recorded it);
    - URI storage: the same from its last report (``trial_finished``, ``trial_status``);
    - Tune says ERROR: errored (the message comes from Tune's stored exception);
    - Tune says TERMINATED: early_stopped when Tune completed it in this driver (only the scheduler ends a
      trial before its final report), interrupted when it ran in this driver and was stopped at the end of
      the run without completing (Ctrl-C), early_stopped when an earlier driver ended it.

    ``ran_here``: the trial started in this driver; ``completed_here``: Tune called ``on_trial_complete`` for it.
    """
    status, summary = disk_status(folder)
    if status is not None:
        return status, (summary.get("error") if status != "finished" else None)
    last = last or {}
    if last.get("trial_finished") == 1:
        return "finished", None
    if last.get("trial_status") in ENDED_ON_DISK:
        return str(last["trial_status"]), last.get("error")
    if tune_status == "ERROR":
        return "errored", None
    if ran_here and not completed_here:
        return "interrupted", None
    return "early_stopped", None


def _fragment_status(path: str) -> str | None:
    """The status in a local results fragment, or None (no fragment, or an unreadable one)."""
    try:
        return pq.read_table(path, columns=["status"]).column("status")[0].as_py()
    except (OSError, pa.ArrowInvalid, KeyError, IndexError):
        return None


def local_trial_dir(trial_id: str) -> str:
    """Where the trainable writes a trial's files under a local/NFS experiment (``tune.trainable.train``)."""
    return f"trial_{trial_id}"


@dataclass(frozen=True)
class RowContext:
    """What every row of an experiment needs besides the trial itself."""

    exp_path: str
    experiment: str
    preset: str | None
    base: dict[str, Any]
    tasks: dict[str, str]  # task -> kind
    swept: tuple[str, ...] = ()  # the config keys varied in the sweep (config/<key> columns)


def trial_files(
    folder: str, last: dict[str, Any], experiment: str, trial_id: str
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """A local/NFS trial folder's epoch rows (its metrics.jsonl: the exact epoch list, reports before a driver
    kill included) and its figures: ``last`` (its last report) updated with the last epoch written and,
    once finished, summary.json (reports may carry only a few keys: tune/trainable.py)."""
    last = dict(last)
    path = os.path.join(folder, "metrics.jsonl")
    if not os.path.isfile(path):
        return [], last
    with open(path) as f:
        records = {int(r["step"]): r for r in map(json.loads, f)}
    if records:
        last.update({k: (math.nan if v is None else v) for k, v in records[max(records)].items()})
    summary = os.path.join(folder, "summary.json")
    if last.get("trial_finished") == 1 and os.path.isfile(summary):
        with open(summary) as f:
            last.update(flatten_summary(json.load(f)))
    node = last.get("node")
    return [_epoch_row(experiment, trial_id, records[k], node) for k in sorted(records)], last


def write_fragments(ctx: RowContext, row: dict[str, Any], epochs: list[dict[str, Any]]) -> None:
    """A trial's row and epoch rows, each its own fragment (atomically: temp file + rename)."""
    fs, d = experiment_fs(ctx.exp_path)
    name = f"{row['trial_id']}.parquet"
    if epochs:
        write_table_atomic(epochs_table(epochs, ctx.tasks), fs, f"{d}/{schema.EPOCHS_DIR}/{name}")
    write_table_atomic(results_table([row], ctx.tasks), fs, f"{d}/{schema.RESULTS_DIR}/{name}")


def write_trial_fragments(
    ctx: RowContext,
    trial_id: str,
    overrides: dict[str, Any],
    status: str,
    last: dict[str, Any],
    error: str | None = None,
) -> None:
    """The fragments of one trial of a local/NFS experiment, from its folder's files: written by the trial
    itself when it finishes (before its final report), by the driver otherwise."""
    folder = os.path.join(experiment_fs(ctx.exp_path)[1], local_trial_dir(trial_id))
    epochs, last = trial_files(folder, last, ctx.experiment, trial_id)
    row = build_row(
        ctx.experiment,
        trial_id,
        overrides,
        status,
        ctx.preset,
        ctx.base,
        list(ctx.tasks),
        list(ctx.swept),
        last,
        error,
        local_trial_dir(trial_id),
    )
    write_fragments(ctx, row, epochs)


class ResultsCallback(tune.Callback):
    """Writes each ended trial's row and epoch rows once (fragments); compacts them at the end of the run.

    The status of every row comes from ``trial_status`` (what the trial's folder says first). On local/NFS
    storage a finished trial has written its own fragments before its final report
    (``tune.trainable.train``), so the driver only checks that they are there; it writes those of every
    other ended trial, and every fragment on URI storage (from the reports it saw).
    Memory: only the epoch rows of running trials on URI storage.
    """

    def __init__(
        self,
        exp_path: str,
        experiment: str,
        preset: str | None,
        base: dict,
        tasks: dict[str, str],
        swept: list[str] | None = None,
    ):
        self.ctx = RowContext(exp_path, experiment, preset, base, tasks, tuple(sorted(swept or [])))
        self.fs, self.dir = experiment_fs(exp_path)
        self.local = not is_uri(exp_path)  # schema.is_uri, the rule launch uses too (file:// is local)
        self.pending: dict[str, dict[int, dict[str, Any]]] = {}  # URI storage: epoch rows of running trials
        self.ran: set[str] = set()  # trials started by this driver
        self.completed: set[str] = set()  # trials Tune completed in this driver
        self.statuses: dict[str, str] = {}  # trial -> status of the fragment this driver wrote or found

    def __getstate__(self) -> dict[str, Any]:  # pickled with the Tuner: what one driver saw is not the next's
        state = self.__dict__.copy()
        state.update(pending={}, ran=set(), completed=set(), statuses={})
        return state

    def setup(self, **info: Any) -> None:
        for folder in (schema.RESULTS_DIR, schema.EPOCHS_DIR):
            self.fs.create_dir(f"{self.dir}/{folder}", recursive=True)

    def folder(self, trial: Any) -> str | None:
        """The trial's own folder (local/NFS), where its summary.json says how it ended."""
        return os.path.join(self.dir, local_trial_dir(trial.trial_id)) if self.local else None

    def on_trial_start(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        self.ran.add(trial.trial_id)

    def on_trial_result(self, iteration: int, trials: list, trial: Any, result: dict, **info: Any) -> None:
        if not self.local:
            rows = self.pending.setdefault(trial.trial_id, {})
            rows[int(result["step"])] = _epoch_row(self.ctx.experiment, trial.trial_id, result, result.get("node"))

    def status(self, trial: Any, tune_status: str) -> tuple[str, str | None]:
        return trial_status(
            self.folder(trial),
            tune_status,
            trial.last_result,
            trial.trial_id in self.ran,
            trial.trial_id in self.completed,
        )

    def on_trial_complete(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        self.completed.add(trial.trial_id)
        status, error = self.status(trial, "TERMINATED")
        self.write_trial(trial, status, error)

    def on_trial_error(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        status, error = self.status(trial, "ERROR")
        self.write_trial(trial, status, error)

    def on_experiment_end(self, trials: list, **info: Any) -> None:
        """Fragments of ended trials that have none (ended under an earlier driver) or that were stopped at the
        end of this run (interrupted), then the compacted tables."""
        have = {
            os.path.basename(i.path)[: -len(".parquet")]
            for i in schema.fragments(self.fs, f"{self.dir}/{schema.RESULTS_DIR}")
        }
        for t in trials:
            if t.status not in ("ERROR", "TERMINATED"):
                continue
            status, error = self.status(t, t.status)
            if t.trial_id in have and (status != "interrupted" or self.statuses.get(t.trial_id) == status):
                continue
            self.write_trial(t, status, error)
        compact(self.ctx.exp_path)

    def write_trial(self, trial: Any, status: str, error: str | None = None) -> None:
        """The row and epoch rows of one ended trial, each its own fragment (a finished trial's own, on
        local/NFS storage, are kept as it wrote them)."""
        pending = self.pending.pop(trial.trial_id, {})
        self.statuses[trial.trial_id] = status
        if (
            status == "finished"
            and self.local
            and _fragment_status(f"{self.dir}/{schema.RESULTS_DIR}/{trial.trial_id}.parquet") == status
        ):
            return  # the trial wrote its own fragments
        if status == "errored" and error is None:
            error = _error_message(trial)
        overrides = dict(trial.config.get("overrides", {}))
        if self.local:  # the trainable's own folder (Tune may suffix its trial folder when restoring a pending trial)
            write_trial_fragments(self.ctx, trial.trial_id, overrides, status, dict(trial.last_result or {}), error)
            return
        c = self.ctx
        row = trial_row(c.experiment, trial, status, c.preset, c.base, list(c.tasks), list(c.swept))
        row["error"] = error
        write_fragments(c, row, [pending[k] for k in sorted(pending)])
