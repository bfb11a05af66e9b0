"""Which trials a sweep's scheduler stopped, and at which rung: read from the results table alone.

An early-stopped row (``status == "early_stopped"``) carries ``stopped_step`` and ``stopped_stage``: the
step and stage of its last report, where the scheduler (ASHA or Pareto-ASHA) stopped it. A rung is named
by its step: with one report per epoch that is the rung's milestone, and a trial whose report jumped past
a milestone (a stage replayed from the stage cache reports its last epoch only) shows the step it
reached. Its other figures are those of that last report, so it may stand on a front with them.
"""

from __future__ import annotations

import pandas as pd

STOPPED = "early_stopped"
STEP, STAGE = "stopped_step", "stopped_stage"


def stopped_trials(df: pd.DataFrame) -> pd.DataFrame:
    """The early-stopped rows of ``df`` that say where they stopped, sorted by step, mode and trial id."""
    if STEP not in df.columns or "status" not in df.columns:
        return df.iloc[:0]
    rows = df[(df["status"] == STOPPED) & df[STEP].notna()].copy()
    rows[STEP] = rows[STEP].astype("int64")
    if STAGE not in rows.columns:
        rows[STAGE] = None
    keys = [c for c in (STEP, "mode", "experiment", "trial_id") if c in rows.columns]
    return rows.sort_values(keys, kind="mergesort")


def stopped_by_rung(df: pd.DataFrame) -> pd.DataFrame:
    """One row per rung (step and stage) where trials were stopped: how many, of which modes, which trials."""
    rows = stopped_trials(df)
    cols = [STEP, STAGE, "trials", "modes", "trial_ids"]
    if rows.empty:
        return pd.DataFrame(columns=cols)
    out = []
    for (step, stage), g in rows.groupby([STEP, rows[STAGE].fillna("")], sort=True):
        out.append(
            {
                STEP: int(step),
                STAGE: stage or None,
                "trials": len(g),
                "modes": ", ".join(f"{m} {n}" for m, n in g["mode"].value_counts().sort_index().items()),
                "trial_ids": ", ".join(map(str, g["trial_id"])),
            }
        )
    return pd.DataFrame(out, columns=cols)


def rung_label(step: int, stage: str | None) -> str:
    """How a rung is named in the report and the fronts figure."""
    return f"stopped at step {int(step)}" + (f" ({stage})" if stage else "")
