"""The results schema, declared once: table and fragment names, column types, the metadata, compaction.

pyarrow only. ``tune/results.py`` writes with it and ``analysis/load.py`` reads with it (tune may import
analysis; analysis imports neither tune nor supernet), so the names below exist in one place.

Layout of an experiment folder ``<exp>/``:

- ``results/<trial_id>.parquet``: the row of one ended trial, written once when it ends (atomically);
- ``epochs/<trial_id>.parquet``: that trial's epoch rows, written with it;
- ``results.parquet`` and ``epochs.parquet``: every fragment in one file each, compacted at the end of a
  sweep and on demand (``python -m analysis EXP --compact``, :func:`compact`).

Every table and fragment carries the JSON metadata under the key ``dagmtl``:
``{"schema_version": 1, "metric_senses": {metric: "min"|"max"}, "tasks": {task: kind}}``. Readers take
metric senses from it; nothing else knows them.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Mapping
from typing import Any, NamedTuple

import pyarrow as pa
import pyarrow.dataset as pads
import pyarrow.fs as pafs
import pyarrow.parquet as pq

SCHEMA_VERSION = 1
META_KEY = b"dagmtl"

RESULTS_FILE, EPOCHS_FILE = "results.parquet", "epochs.parquet"
RESULTS_DIR, EPOCHS_DIR = "results", "epochs"  # one fragment per ended trial: <dir>/<trial_id>.parquet

# results columns (docs/results-schema.md)
CONFIG = "config/"  # config/<section>.<field>: every config key varied in the sweep
METRIC = "metric/"  # metric/<task>/<name>
LOSS = "loss/"  # loss/<task>: final validation loss
PARAMS, FLOPS = "params/", "flops/"  # per task
TIME, REUSED = "time/", "reused/"  # per stage
TRIVIAL = "trivial/"  # trivial/<task>/<metric>: the trivial predictor's value on the validation split
QUALITY = "quality/"  # quality/<stage>/<task>/<metric>: validation metric at the end of each stage
LEARNED = "learned"  # learned, learned/<task>: beats the trivial reference by the stated margins
# topology of the kept network, from summary.json's "topology" and "collapsed"
TOPO = "topo/"  # topo/<task>/{edges,longest_path,read_in,read_out}, topo/<task>/shared/<other>: counts
TOPO_MEASURES = ("edges", "longest_path", "read_in", "read_out")
COLLAPSED = "collapsed"  # 1.0 when every task keeps 0 edges, 0.0 when not, NaN when unknown
# the null distribution of the longest path over uniformly random valid architectures of the kept size
NULL = "null/"  # null/<task>/longest_path/<L>: P(L) for L = 0..N-1; null/<task>/exact: 1.0 enumerated, 0.0 sampled
# data with planted structure (known answer)
NEEDS_EDGES = "needs_edges/"  # needs_edges/<task>: the path length the task needs (0 = a local task)
ORACLE = "oracle/"  # oracle/<task>/<metric>/<k>: best value a path of k edges can reach (the last k holds beyond)


class AxisColumn(NamedTuple):
    """A config key with a short results column of its own (beside ``config/<key>`` when it is swept)."""

    key: str  # the dotted config key it comes from
    name: str  # the results column
    type: pa.DataType  # int64 or float64


# Every row carries these, in this order, whatever the sweep varies: the axes of the paper's ablations
# (flow-restriction width M, squeeze weight, reduction threshold) and the graph size. The writer
# (tune/results.py), the report's grouping (tune/launch.py) and analysis/effects.py read this table.
AXIS_COLUMNS = (
    AxisColumn("model.n_nodes", "n_nodes", pa.int64()),
    AxisColumn("model.flow_width", "flow_width", pa.int64()),
    AxisColumn("search.lambda_sq", "lambda_sq", pa.float64()),
    AxisColumn("reduction.tau", "tau", pa.float64()),
)
SHORT_NAMES = {c.key: c.name for c in AXIS_COLUMNS}  # config key -> results column


def axis_column(key: str) -> str:
    """The results column of a swept config key: its short name, else ``config/<key>``."""
    return SHORT_NAMES.get(key, CONFIG + key)


INT_COLUMNS = (
    "seed",
    *(c.name for c in AXIS_COLUMNS if c.type == pa.int64()),
    "params_union",
    "flops_multitask",
    "stopped_step",
)
# stopped_step, stopped_stage: the step and stage of an early-stopped trial's last report (where the scheduler
# stopped it); null for every other trial
FLOAT_COLUMNS = (*(c.name for c in AXIS_COLUMNS if c.type == pa.float64()), "latency_ms", COLLAPSED)
INT_PREFIXES = (PARAMS, FLOPS, TOPO, NEEDS_EDGES)
FLOAT_PREFIXES = (METRIC, LOSS, TIME, TRIVIAL, QUALITY, NULL, ORACLE)
# the ``status`` column: finished (summary.json written), early_stopped (by the scheduler: ASHA), diverged
# (a non-finite loss: a result of that config, not a fault), errored (an exception, or a config error the
# trial found), interrupted (the driver was stopped by Ctrl-C while the trial ran; --resume continues it)
STATUSES = ("finished", "early_stopped", "diverged", "errored", "interrupted")
# epochs columns: these, plus val_loss/<task> and metric/<task>/<name>, plus experiment, trial_id, node
VAL_LOSS = "val_loss/"
RECORD_KEYS = (
    "stage",
    "stage_index",
    "epoch",
    "step",
    "train_loss",
    "squeeze",
    "score",
    "params_union",
    "flops_multitask",
)


class SchemaError(ValueError):
    """A table written by a newer version of this tool, or fragments that cannot form one table."""


def column_type(col: str) -> pa.DataType | None:
    """The fixed Arrow type of a results column, or None where the values decide (config, text)."""
    if col in INT_COLUMNS or col.startswith(INT_PREFIXES):
        return pa.int64()
    if col in FLOAT_COLUMNS or col.startswith(FLOAT_PREFIXES):
        return pa.float64()
    if col.startswith(REUSED) or col == LEARNED or col.startswith(LEARNED + "/"):
        return pa.bool_()
    return None


def metadata(tasks: Mapping[str, str], metric_senses: Mapping[str, str], **extra: Any) -> dict[bytes, bytes]:
    """The ``dagmtl`` key-value metadata of every results/epochs table and fragment; ``extra``: further
    entries (``trivial``: {task: {metric: value}}, ``learned_margins``)."""
    meta = {"schema_version": SCHEMA_VERSION, "metric_senses": dict(metric_senses), "tasks": dict(tasks), **extra}
    return {META_KEY: json.dumps(meta).encode()}


def merged_metadata(schemas: Iterable[pa.Schema]) -> dict[bytes, bytes] | None:
    """One ``dagmtl`` metadata for several fragments: tasks, senses and margins united, trivial references
    merged per task (a single-task trial's fragment carries only its own task's)."""
    infos = [json.loads(s.metadata[META_KEY]) for s in schemas if s.metadata and META_KEY in s.metadata]
    if not infos:
        return None
    out: dict[str, Any] = {"schema_version": max(i.get("schema_version", SCHEMA_VERSION) for i in infos)}
    for info in infos:
        for key, value in info.items():
            if key == "trivial":
                for task, refs in value.items():
                    out.setdefault("trivial", {}).setdefault(task, {}).update(refs)
            elif isinstance(value, dict):
                out.setdefault(key, {}).update(value)
            elif key != "schema_version":
                out.setdefault(key, value)
    return {META_KEY: json.dumps(out).encode()}


def parse_metadata(schema: pa.Schema, where: str = "table") -> dict[str, Any]:
    """The ``dagmtl`` JSON of a schema ({} when it has none); a newer schema_version is an error."""
    meta = schema.metadata or {}
    if META_KEY not in meta:
        return {}
    info = json.loads(meta[META_KEY])
    version = info.get("schema_version", SCHEMA_VERSION)
    if version > SCHEMA_VERSION:
        raise SchemaError(
            f"{where} has results schema_version {version}; "
            f"this analysis package reads up to {SCHEMA_VERSION}: update it"
        )
    return info


# ----------------------------------------------------------------------------- files


LOCAL_SCHEME = "file://"


def is_uri(path: str | os.PathLike[str]) -> bool:
    """Whether ``path`` names remote storage (``s3://``, ``gs://``, ...): the one test of local versus URI.

    ``file://`` is local: it names a folder of this machine, so stage reuse, a trial's own fragments and the
    report work there as on a plain path (:func:`local_path` gives that path)."""
    path = str(path)
    return "://" in path and not path.startswith(LOCAL_SCHEME)


def local_path(path: str | os.PathLike[str]) -> str:
    """The plain path of a local location (``file:///a/b`` -> ``/a/b``; a plain path as it is)."""
    return str(path).removeprefix(LOCAL_SCHEME)


def experiment_fs(exp_path: str | os.PathLike[str]) -> tuple[pafs.FileSystem, str]:
    """(pyarrow filesystem, path on it) of an experiment folder given as a local path or URI."""
    if is_uri(exp_path):
        return pafs.FileSystem.from_uri(str(exp_path))
    return pafs.LocalFileSystem(), os.path.abspath(local_path(exp_path))


def write_table_atomic(table: pa.Table, fs: pafs.FileSystem, path: str) -> None:
    """Write ``table`` to a temp file next to ``path`` and rename it into place (readers never see half a file)."""
    tmp = f"{path}.tmp-{os.getpid()}"
    pq.write_table(table, tmp, filesystem=fs)
    fs.move(tmp, path)


def fragments(fs: pafs.FileSystem, folder: str) -> list[pafs.FileInfo]:
    """The complete fragment files in ``folder`` (temp files of a write in progress are left out)."""
    if fs.get_file_info(folder).type != pafs.FileType.Directory:
        return []
    infos = fs.get_file_info(pafs.FileSelector(folder, allow_not_found=True))
    return sorted(
        (i for i in infos if i.type == pafs.FileType.File and i.path.endswith(".parquet")), key=lambda i: i.path
    )


def _unified_schema(schemas: Iterable[pa.Schema]) -> pa.Schema:
    """One schema for fragments whose columns differ: missing columns become nulls, all-null columns take the
    other fragments' type, int64 meets float64 as float64, and columns whose types still clash become text."""
    schemas = list(schemas)
    types: dict[str, list[pa.DataType]] = {}
    meta = merged_metadata(schemas)
    for s in schemas:
        for f in s:
            types.setdefault(f.name, []).append(f.type)
    fields = []
    for name, ts in types.items():
        try:
            t = pa.unify_schemas([pa.schema([(name, t)]) for t in ts], promote_options="permissive").field(name).type
        except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError):
            t = pa.string()
        fields.append(pa.field(name, pa.string() if t == pa.null() else t))
    return pa.schema(fields, metadata=meta)


def read_fragments(fs: pafs.FileSystem, files: list[str]) -> pa.Table:
    """Every fragment in one table (a pyarrow dataset: footers, then the row groups read in parallel)."""
    dataset = pads.dataset(files, format="parquet", filesystem=fs)
    schemas = [f.physical_schema for f in dataset.get_fragments()]
    schema = _unified_schema(schemas)
    if all(s.equals(schema) for s in schemas):
        return dataset.to_table().replace_schema_metadata(schema.metadata)
    tables = []
    for frag, s in zip(dataset.get_fragments(), schemas):
        t = frag.to_table()
        cols = []
        for f in schema:
            if f.name in s.names:
                col = t.column(f.name)
                cols.append(col if col.type == f.type else _cast(col, f.type))
            else:
                cols.append(pa.nulls(len(t), f.type))
        tables.append(pa.Table.from_arrays(cols, schema=schema))
    return pa.concat_tables(tables)


def _cast(col: pa.ChunkedArray, typ: pa.DataType) -> pa.ChunkedArray:
    if typ == pa.string() and not pa.types.is_string(col.type):
        return pa.chunked_array([pa.array([None if v is None else str(v) for v in col.to_pylist()], pa.string())])
    return col.cast(typ)


def compact(exp_path: str | os.PathLike[str]) -> dict[str, int]:
    """Write ``results.parquet`` and ``epochs.parquet`` from the fragments (atomically); {table: rows}.

    Fragments stay where they are (they are the record; the compacted files are a faster copy).
    A folder without fragments (written before fragments existed) is left as it is.
    """
    fs, d = experiment_fs(exp_path)
    out = {}
    for folder, name in ((RESULTS_DIR, RESULTS_FILE), (EPOCHS_DIR, EPOCHS_FILE)):
        files = [i.path for i in fragments(fs, f"{d}/{folder}")]
        if not files:
            continue
        table = read_fragments(fs, files)
        if "trial_id" in table.column_names:
            keys = ["trial_id", "step"] if "step" in table.column_names and folder == EPOCHS_DIR else ["trial_id"]
            table = table.sort_by([(k, "ascending") for k in keys])
        write_table_atomic(table, fs, f"{d}/{name}")
        out[name] = table.num_rows
    return out


def process_started(pid: int) -> str | None:
    """The start time of process ``pid`` (field 22 of /proc/<pid>/stat: clock ticks since boot), "?" when the
    process exists but /proc does not say, None when there is no such process. A driver's lock records its own, so
    that a reader tells a live driver from a reused pid (``tune.lock`` writes it, ``analysis.experiments`` reads it)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return None
        except PermissionError:
            return "?"
        return "?"


LOCK_FILE = "driver.lock"  # an experiment folder's lock while a driver runs it: {host, pid, started, since}
