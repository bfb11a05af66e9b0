"""``python -m analysis --list STORAGE``: the experiments under a storage folder and where each of them stands.

An experiment folder is ``<storage>/<name>/`` as ``tune.launch`` lays it out (docs/sweeps.md):
``sweep.yaml`` (written first), ``driver.lock`` (while a driver runs it: ``tune/lock.py``), ``trial_<id>/``
(one per trial Tune started), the results (``results.parquet`` compacted from ``results/<trial_id>.parquet``,
one fragment per ended trial; read here with ``load_results``, which takes the fragments when they are
newer) and ``report/report.md`` (from ``analysis``). A trial has a results row once it has ended, so the
trials that are running, or were cut off with their driver, are the trial folders without a row, plus the
rows of status ``interrupted`` (Ctrl-C).

Local folders only (a listing walks the folder); no torch, Ray, supernet or tune.
"""

from __future__ import annotations

import json
import os
import socket
from datetime import datetime
from pathlib import Path

import pandas as pd

from analysis import schema
from analysis.load import AnalysisError, load_results
from analysis.schema import LOCK_FILE, process_started

SWEEP_FILE = "sweep.yaml"  # tune.launch writes it before the first trial starts
TRIAL_PREFIX = "trial_"  # tune.launch.trial_dirname / tune.results.local_trial_dir: trial_<id>
REPORT_FILE = Path("report") / "report.md"  # analysis.report's default folder
ENDED = ("finished", "early_stopped", "diverged", "errored")  # results statuses counted in their own column
COLUMNS = (
    "experiment",
    "state",
    "finished",
    "early_stopped",
    "diverged",
    "errored",
    "unfinished",  # running, or cut off without an end: trial folders without a row, and interrupted rows
    "trials",
    "modified",
    "report",
    "tasks",
    "note",
)


def is_experiment(path: Path) -> bool:
    """Whether ``path`` is an experiment folder: it holds the sweep file or results."""
    return path.is_dir() and any(
        (path / name).exists() for name in (SWEEP_FILE, schema.RESULTS_FILE, schema.RESULTS_DIR)
    )


def _has_results(exp: Path) -> bool:
    return (exp / schema.RESULTS_FILE).is_file() or any((exp / schema.RESULTS_DIR).glob("*.parquet"))


def _results(exp: Path) -> tuple[pd.DataFrame, str | None]:
    """(one row per ended trial, None) or (an empty table, why the results do not read)."""
    empty = pd.DataFrame({"status": pd.Series(dtype=str), "trial_id": pd.Series(dtype=str)})
    if not _has_results(exp):
        return empty, None
    try:
        return load_results(exp, delta_mtl=False), None
    except AnalysisError as e:
        return empty, str(e)


def driver(exp: Path) -> tuple[bool, str]:
    """(whether a driver may be running the experiment, a note on its lock). A lock of another host cannot be
    checked from here and counts as running; one of this host counts while its pid is the same process."""
    path = exp / LOCK_FILE
    if not path.is_file():
        return False, ""
    try:
        info = json.loads(path.read_text())
        host, pid = str(info["host"]), int(info["pid"])
    except (OSError, ValueError, KeyError, TypeError):
        return True, f"{LOCK_FILE} is unreadable: a driver may be starting"
    held = f"driver pid {pid} on {host} since {info.get('since', '?')}"
    if host != socket.gethostname():
        return True, f"{held} (another host: not checked)"
    now = process_started(pid)
    if now is None or (now != "?" and info.get("started") not in (None, "?", now)):  # gone, or its pid reused
        return False, f"stale {LOCK_FILE} ({held}: that process is gone)"
    return True, held


def _modified(exp: Path) -> pd.Timestamp:
    """The newest modification time of the folder's entries and of the files directly in its trial folders
    (metrics.jsonl grows without touching its folder's time), in local time."""
    newest = exp.stat().st_mtime
    with os.scandir(exp) as top:
        for entry in top:
            newest = max(newest, entry.stat(follow_symlinks=False).st_mtime)
            if entry.is_dir(follow_symlinks=False) and entry.name.startswith(TRIAL_PREFIX):
                with os.scandir(entry.path) as inner:
                    newest = max([newest, *(e.stat(follow_symlinks=False).st_mtime for e in inner)])
    return pd.Timestamp(datetime.fromtimestamp(newest).astimezone())


def _trial_folders(exp: Path) -> set[str]:
    return {p.name for p in exp.iterdir() if p.is_dir() and p.name.startswith(TRIAL_PREFIX)}


def _state(rows: int, unfinished: int, running: bool, error: str | None) -> str:
    if error is not None:
        return "unreadable"
    if running:
        return "running"
    if unfinished:
        return "stopped"
    return "done" if rows else "empty"


def experiment_row(exp: Path) -> dict:
    """One experiment folder's row of :func:`list_experiments`."""
    df, error = _results(exp)
    counts = df["status"].value_counts().to_dict()
    with_rows = set(df["trial_dir"].dropna()) if "trial_dir" in df else set()
    with_rows |= {f"{TRIAL_PREFIX}{t}" for t in df["trial_id"].dropna()}
    without_row = len(_trial_folders(exp) - with_rows)
    unfinished = int(counts.get("interrupted", 0)) + without_row
    running, lock_note = driver(exp)
    state = _state(len(df), unfinished, running, error)
    notes = [error or "", lock_note]
    if state == "stopped":
        storage = exp.resolve().parent
        notes.append(f"continue it with `python run.py --resume --name {exp.name} --storage {storage}`")
    return {
        "experiment": exp.name,
        "state": state,
        **{s: int(counts.get(s, 0)) for s in ENDED},
        "unfinished": unfinished,
        "trials": len(df) + without_row,
        "modified": _modified(exp),
        "report": (exp / REPORT_FILE).is_file(),
        "tasks": ",".join(df.attrs.get("tasks", {})),
        "note": "; ".join(n for n in notes if n),
    }


def list_experiments(storage: str | os.PathLike[str]) -> pd.DataFrame:
    """One row per experiment folder under ``storage`` (or ``storage`` itself when it is one), by name:
    ``COLUMNS`` (trial counts by how they ended, ``unfinished`` = running or cut off, ``state`` one of
    running, stopped (unfinished trials and no live driver: ``--resume`` continues it), done, empty,
    unreadable; ``modified`` the newest file time; ``report`` whether report/report.md was written)."""
    root = Path(storage)
    if "://" in str(storage):
        raise AnalysisError(f"--list {storage}: a URI; list a local (or NFS-mounted) storage folder")
    if not root.is_dir():
        raise AnalysisError(f"storage folder does not exist: {root}")
    exps = [root] if is_experiment(root) else sorted(p for p in root.iterdir() if is_experiment(p))
    return pd.DataFrame([experiment_row(p) for p in exps], columns=list(COLUMNS))


def list_main(storage: str | os.PathLike[str]) -> str:
    """The text ``python -m analysis --list STORAGE`` prints: a table of :func:`list_experiments`, then each
    experiment's note (an unreadable result, the driver's lock, the command that continues a stopped one)."""
    df = list_experiments(storage)
    if df.empty:
        return f"no experiments under {storage} (an experiment folder holds {SWEEP_FILE} or {schema.RESULTS_FILE})"
    shown = df.drop(columns=["note"]).assign(
        modified=[t.strftime("%Y-%m-%d %H:%M:%S") for t in df["modified"]],
        report=["yes" if r else "no" for r in df["report"]],
    )
    lines = [f"{len(df)} experiment(s) under {storage}:", shown.to_string(index=False)]
    lines += [f"{name}: {note}" for name, note in zip(df["experiment"], df["note"]) if note]
    return "\n".join(lines)
