"""The report of one experiment: ``report.md`` with markdown tables, PNG figures and CSVs of the tables.

``write_report`` is what ``python -m analysis`` and ``run.py`` (at the end of a sweep) call. It only
combines the computing functions of :mod:`analysis.compare`, :mod:`analysis.stats`, :mod:`analysis.effects`
and :mod:`analysis.plots`; every number in the report is in a CSV next to it.

The report opens with the answer to "does the search beat random architectures of the same size?"
(:func:`analysis.stats.search_vs_random`) and, when fronts are grouped by an ablation's axis
(flow_width, lambda_sq, tau), ends with the effect that ablation exists to show (:mod:`analysis.effects`).
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
    FrontComparison,
    ObjectiveSpec,
    baseline_points,
    compare_fronts,
    pareto_front,
    parse_objectives,
)
from analysis.effects import ablation_measures, axis_name, effect_table
from analysis.load import AnalysisError, load_arch_spec, load_results
from analysis.plots import (
    front_plot_data,
    render_attainment,
    render_eaf_difference,
    render_effects,
    render_fronts,
    render_topology,
    topology_data,
)
from analysis.stats import RANDOM, Answer, eaf_data, search_vs_random


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
    needs_delta = any(o.column == "delta_mtl" for o in parse_objectives(objectives))
    df = load_results(exp_dir, delta_mtl=needs_delta)  # baselines are required only when delta_mtl is used
    cmp = compare_fronts(df, by=by, objectives=objectives, budgets=budgets)
    out = Path(out) if out is not None else exp_dir / "report"
    out.mkdir(parents=True, exist_ok=True)

    contenders = df[df["mode"] == "supernet"]
    front = pareto_front(contenders, cmp.objectives)
    base = baseline_points(df, (*BASELINE_MODES, RANDOM))
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
    answer = search_vs_random(df, cmp.objectives)
    if answer.hv is not None:
        tables["seed_hypervolumes"] = answer.hv.table.set_index("group")
        tables["tests"] = answer.tests.set_index("comparison")
    effect_md = _effect_section(df, cmp.by[0], out, tables)
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
        *_answer_section(df, answer, out),
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
    md += effect_md
    md += ["CSV files: " + ", ".join(f"`{n}.csv`" for n in tables), ""]
    (out / "report.md").write_text("\n".join(md))
    return out


def _answer_section(df: pd.DataFrame, answer: Answer, out: Path) -> list[str]:
    """"Does the search beat random architectures?": the sentence, per-seed hypervolumes, tests, EAF figures."""
    md = ["## Does the search beat random architectures?", "", f"**{answer.sentence}**", ""]
    has_random = bool((df["mode"] == RANDOM).any())  # without: the sentence says so and how to add them
    hv = answer.hv
    if hv is None:
        return md
    ref = np.round(hv.ref_point, 4).tolist()
    md += [
        "Hypervolume of each seed's points, every group normalised by the same bounds (ideal = 0, nadir = 1 over "
        f"all points of all groups and seeds) and measured from the same reference point {ref}; `single_task` is "
        "the T single-task networks as one point per seed. Rank tests across seeds: Wilcoxon signed-rank when both "
        "groups have the same seeds, else Mann-Whitney U, two-sided; effect > 0 means `supernet` has the larger "
        "hypervolume.",
        "",
        markdown_table(hv.wide()),
        "",
        markdown_table(hv.summary()),
        "",
    ]
    if len(answer.tests):
        md += [markdown_table(answer.tests, index=False), ""]
    if has_random and len(hv.objectives) == 2:
        try:
            data = eaf_data(df, hv.objectives)
        except AnalysisError as e:
            return md + [f"(no attainment figures: {e})", ""]
        render_attainment(data, out / "attainment.png")
        render_eaf_difference(data, out / "eaf_difference.png")
        md += ["![median attainment surfaces](attainment.png)", "",
               "Red where the search's points attain a region in more seeds than the random architectures do, blue "
               "where fewer (the difference of the two empirical attainment functions, over their common seeds).", "",
               "![EAF difference](eaf_difference.png)", ""]
    return md


def _effect_section(df: pd.DataFrame, by: str, out: Path, tables: dict[str, pd.DataFrame]) -> list[str]:
    """The effect an ablation of ``by`` exists to show (nothing when ``by`` is not flow_width, lambda_sq or tau)."""
    try:
        measures = ablation_measures(df, by)
        if measures is None:
            return []
        table = effect_table(df, by, measures)
    except AnalysisError as e:
        return [f"## Effect of {axis_name(by)}", "", f"(not measured: {e})", ""]
    tables["effect"] = table
    render_effects(table, measures, out / "effect.png")
    return [
        f"## Effect of {axis_name(by)}",
        "",
        f"Valid `supernet` trials by `{axis_name(by)}`: each seed's median at a value, then the median, min and max "
        "across seeds. `kept_edges` = distinct kept edges over all tasks; `search_s_per_epoch` (or `search_s` when "
        "the table lacks `config/search.epochs`) = search-stage seconds per epoch (per trial); reused search stages "
        "are left out.",
        "",
        markdown_table(table),
        "",
        "![effect](effect.png)",
        "",
    ]


def _safe(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in name)
