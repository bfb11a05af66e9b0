"""The report of one experiment: ``report.md`` with markdown tables, PNG figures and CSVs of the tables.

``write_report`` is what ``python -m analysis`` and ``run.py`` (at the end of a sweep) call. It only
combines the computing functions of :mod:`analysis.compare` and :mod:`analysis.plots`; every number
in the report is in a CSV next to it.
"""
from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from os import PathLike
from pathlib import Path

import numpy as np
import pandas as pd

from analysis.compare import (
    BASELINE_MODES,
    DEFAULT_OBJECTIVES,
    FrontComparison,
    ObjectiveSpec,
    baseline_points,
    compare_fronts,
    pareto_front,
)
from analysis.load import ALIASES, AnalysisError, load_arch_spec, load_results
from analysis.plots import front_plot_data, render_fronts, render_topology, topology_data


def _objective_columns(objectives: ObjectiveSpec | None) -> set[str]:
    """The columns named as objectives, by name alone (their senses come from the table's metadata, once loaded)."""
    spec = DEFAULT_OBJECTIVES if objectives is None else objectives
    names = spec.split(",") if isinstance(spec, str) else list(spec)  # a mapping gives its keys
    names = [getattr(n, "name", n).strip() for n in names]
    return {ALIASES.get(n, n) for n in (n.rsplit(":", 1)[0] if n.endswith((":max", ":min")) else n for n in names)}


def markdown_table(df: pd.DataFrame, *, index: bool = True, floatfmt: str = ".4g") -> str:
    """A GitHub markdown table of ``df`` (no ``tabulate`` dependency); NaN shows as an empty cell."""

    def cell(v: object) -> str:
        if v is None or (isinstance(v, float) and math.isnan(v)) or v is pd.NA:
            return ""
        if isinstance(v, (float, np.floating)):
            return format(float(v), floatfmt)
        return str(v).replace("|", "\\|").replace("\n", " ")

    cols = ([df.index.name or ""] if index else []) + [str(c) for c in df.columns]
    lines = ["| " + " | ".join(cell(c) for c in cols) + " |", "|" + "|".join("---" for _ in cols) + "|"]
    for idx, row in zip(df.index, df.itertuples(index=False, name=None)):
        vals = ([idx] if index else []) + list(row)
        lines.append("| " + " | ".join(cell(v) for v in vals) + " |")
    return "\n".join(lines)


def _front_columns(df: pd.DataFrame, cmp: FrontComparison) -> list[str]:
    keep = ["trial_id", "seed", *cmp.by, "n_nodes", "flow_width", "lambda_sq", "tau", *(o.column for o in cmp.objectives)]
    return [c for c in dict.fromkeys(keep) if c in df.columns]


def write_report(
    exp_dir: str | PathLike[str],
    by: str | Sequence[str] = "flow_width",
    objectives: ObjectiveSpec | None = None,
    out: str | PathLike[str] | None = None,
    *,
    budgets: Mapping[str, Sequence[float]] | None = None,
    trial: str | None = None,
) -> Path:
    """Write the report folder of an experiment (default ``EXP/report/``) and return its path.

    ``trial`` picks the trial whose topology is drawn (default: the front trial with the best first
    objective). Raises :class:`AnalysisError` on unusable inputs (missing folder or table, no valid
    trial, missing baseline), with a message meant for the user.
    """
    exp_dir = Path(exp_dir)
    needs_delta = "delta_mtl" in _objective_columns(objectives)
    df = load_results(exp_dir, delta_mtl=needs_delta)  # baselines are required only when delta_mtl is used
    cmp = compare_fronts(df, by=by, objectives=objectives, budgets=budgets)
    out = Path(out) if out is not None else exp_dir / "report"
    out.mkdir(parents=True, exist_ok=True)

    contenders = df[df["mode"] == "supernet"]
    front = pareto_front(contenders, cmp.objectives)
    base = baseline_points(df, BASELINE_MODES)
    render_fronts(front_plot_data(cmp, base), out / "fronts.png")

    chosen = trial if trial is not None else (front["trial_id"].iloc[0] if len(front) else None)
    topo_png = None
    if chosen is not None:
        row = df[df["trial_id"] == chosen]
        if row.empty:
            raise AnalysisError(f"trial {chosen!r} is not in {exp_dir}")
        spec_path = row["arch_spec_path"].iloc[0] if "arch_spec_path" in row.columns else None
        if isinstance(spec_path, str) and Path(spec_path).is_file():
            topo_png = out / f"topology_{_safe(chosen)}.png"
            render_topology(topology_data(load_arch_spec(spec_path)), topo_png, title=f"trial {chosen}")

    front_cols = _front_columns(df, cmp)
    tables = {
        "comparison": cmp.table,
        "coverage": cmp.coverage,
        "per_seed": cmp.per_seed.set_index("group"),
        "front": front[front_cols].set_index("trial_id"),
        "baselines": base[[c for c in ["trial_id", "mode", "seed", *(o.column for o in cmp.objectives)] if c in base.columns]].set_index("trial_id"),
    }
    for name, t in tables.items():
        t.to_csv(out / f"{name}.csv")

    counts = df.groupby(["mode", "status"]).size().rename("trials").reset_index()
    errored = df[~df["is_valid"]]
    obj_text = ", ".join(f"`{o.name}` ({o.sense})" for o in cmp.objectives)
    bounds = pd.DataFrame({"ideal": cmp.ideal, "nadir": cmp.nadir}, index=[o.name for o in cmp.objectives]).T
    sign = np.array([-1.0 if o.sense == "max" else 1.0 for o in cmp.objectives])
    bounds = bounds * sign  # back to the objectives' own units (ideal = best)
    md = [
        f"# Report: experiment `{', '.join(map(str, df['experiment'].unique()))}`",
        "",
        f"Source: `{exp_dir}`. Objectives: {obj_text}. Fronts grouped by `{', '.join(cmp.by)}`; only valid "
        "`supernet` trials compete.",
        "",
        "## Trials",
        "",
        markdown_table(counts, index=False),
        "",
    ]
    if len(errored):
        md += ["Not valid (left out of fronts and baselines):", "",
               markdown_table(errored[["trial_id", "status", "error"]] if "error" in df.columns else errored[["trial_id", "status"]], index=False), ""]
    md += [
        "## Fronts",
        "",
        "![fronts](fronts.png)",
        "",
        "## Comparison by group",
        "",
        f"Hypervolume on objectives normalised to [0, 1] by the bounds below (ideal = 0, nadir = 1 over all "
        f"compared points), reference point {np.round(cmp.ref_point, 4).tolist()}; `hypervolume` pools the "
        "seeds, `hv_seed_*` summarise the per-seed hypervolumes; `igd_plus` is the distance to the union front.",
        "",
        markdown_table(bounds),
        "",
        markdown_table(cmp.table),
        "",
        "### Coverage C(A, B)",
        "",
        "Fraction of front B weakly dominated by front A (row A, column B).",
        "",
        markdown_table(cmp.coverage),
        "",
        "### Hypervolume per seed",
        "",
        markdown_table(tables["per_seed"]),
        "",
        "## Overall front (all groups)",
        "",
        markdown_table(tables["front"]),
        "",
        "## Baselines",
        "",
        "`single_task` = the T single-task networks taken together (delta_mtl 0, costs summed).",
        "",
        markdown_table(tables["baselines"]) if len(base) else "(none)",
        "",
    ]
    if topo_png is not None:
        md += ["## Topology", "", f"Per-task kept edges of trial `{chosen}`.", "", f"![topology]({topo_png.name})", ""]
    md += ["CSV files: " + ", ".join(f"`{n}.csv`" for n in tables), ""]
    (out / "report.md").write_text("\n".join(md))
    return out


def _safe(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in name)
