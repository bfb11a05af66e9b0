"""The report of one experiment: ``report.md`` with markdown tables, PNG figures and CSVs of the tables.

``write_report`` is what ``python -m analysis`` and ``run.py`` (at the end of a sweep) call. It only
combines the computing functions of :mod:`analysis.compare`, :mod:`analysis.stats`, :mod:`analysis.effects`
and :mod:`analysis.plots`; every number in the report is in a CSV next to it.

The report opens with the answer to "does the search beat random architectures of the same size?"
(:func:`analysis.stats.search_vs_random`), then, on data with planted structure, the oracle, the hit test and
the paired test (:mod:`analysis.topology`), then the trivial references (:mod:`analysis.learning`: trials that
did not beat them are counted, listed and kept off every front), the trials a scheduler stopped and where
(:mod:`analysis.stopping`), learning curves and the gap at reduction, and, when fronts are grouped by an ablation's axis
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
    DEFAULT_OBJECTIVES,
    FrontComparison,
    ObjectiveSpec,
    baseline_points,
    compare_fronts,
    pareto_front,
)
from analysis.effects import ablation_measures, axis_name, effect_table
from analysis.learning import (
    gap_summary,
    learning_curves,
    not_learned_table,
    objective_reference,
    quality_columns,
    reduction_gap,
    trivial_references,
    trivial_table,
)
from analysis.load import ALIASES, AnalysisError, load_arch_spec, load_epochs, load_results, not_learned
from analysis.plots import (
    delta_mtl_caption,
    front_plot_data,
    render_attainment,
    render_eaf_difference,
    render_effects,
    render_fronts,
    render_learning_curves,
    render_topology,
    topology_data,
)
from analysis.stats import RANDOM, Answer, eaf_data, search_vs_random
from analysis.stopping import STAGE, STEP, stopped_by_rung, stopped_trials
from analysis.topology import (
    collapsed_count,
    has_planted,
    has_topology,
    hit_test_table,
    hit_tests,
    oracle_comparison,
    paired_test_table,
    paired_tests,
    topology_table,
)


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
    keep = [
        "trial_id",
        "seed",
        *cmp.by,
        "n_nodes",
        "flow_width",
        "lambda_sq",
        "tau",
        *(o.column for o in cmp.objectives),
    ]
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
    # baselines are required only when delta_mtl is used; a baseline that did not learn or did not finish
    # leaves its seed's delta_mtl NaN (listed under Trials) instead of failing the whole report
    df = load_results(exp_dir, delta_mtl=needs_delta, unusable_baseline="nan")
    cmp = compare_fronts(df, by=by, objectives=objectives, budgets=budgets)
    out = Path(out) if out is not None else exp_dir / "report"
    out.mkdir(parents=True, exist_ok=True)

    contenders = df[df["mode"] == "supernet"]
    front = pareto_front(contenders, cmp.objectives)
    base = baseline_points(df, (*BASELINE_MODES, RANDOM))
    trivial = trivial_references(df)
    render_fronts(front_plot_data(cmp, base, trivial), out / "fronts.png")

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
        "baselines": base[
            [c for c in ["trial_id", "mode", "seed", *(o.column for o in cmp.objectives)] if c in base.columns]
        ].set_index("trial_id"),
    }
    learning_md = _learning_section(df, exp_dir, out, tables, cmp)
    planted_md = _planted_section(df, tables)
    topology_md = _topology_section(df, tables, chosen, topo_png)
    answer = search_vs_random(df, cmp.objectives)
    if answer.hv is not None:
        tables["seed_hypervolumes"] = answer.hv.table.set_index("group")
        tables["tests"] = answer.tests.set_index("comparison")
    effect_md = _effect_section(df, cmp.by[0], out, tables, trivial)
    stopping_md = _stopping_section(df, cmp, tables)
    for name, t in tables.items():
        t.to_csv(out / f"{name}.csv")

    counts = df.groupby(["mode", "status"]).size().rename("trials").reset_index()
    flagged = not_learned_table(df)
    if "learned" in df.columns:  # results without the flag: nothing changes for them
        counts["not learned"] = [
            int(((df["mode"] == m) & (df["status"] == st)).to_numpy(bool)[not_learned(df)].sum())
            for m, st in zip(counts["mode"], counts["status"])
        ]
    errored = df[~df["is_valid"]]
    refs_line = _references_line(cmp, trivial)
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
        *_answer_section(df, answer, out, trivial),
        *planted_md,
        *learning_md["top"],
        "## Trials",
        "",
        markdown_table(counts, index=False),
        "",
    ]
    if "learned" in df.columns:
        md += _excluded_lines(flagged)
    unavailable = pd.DataFrame(df.attrs.get("delta_mtl_unavailable", []))
    if len(unavailable):
        tables["delta_mtl_unavailable"] = unavailable.set_index(["experiment", "seed"])
        unavailable.to_csv(out / "delta_mtl_unavailable.csv", index=False)
        md += [
            f"**delta_mtl not computed for {len(unavailable)} seed(s)**: their single-task baseline cannot be the "
            "reference, so every trial of that seed has no delta_mtl and stays off the fronts and hypervolumes "
            "(the other seeds are unaffected).",
            "",
            markdown_table(unavailable, index=False),
            "",
        ]
    if len(errored):
        md += [
            "Not valid (left out of fronts and baselines):",
            "",
            markdown_table(
                errored[["trial_id", "status", "error"]] if "error" in df.columns else errored[["trial_id", "status"]],
                index=False,
            ),
            "",
        ]
    md += stopping_md
    md += [
        "## Fronts",
        "",
        "![fronts](fronts.png)",
        "",
        *refs_line,
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
        *refs_line,
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
        *refs_line,
        "## Baselines",
        "",
        "`single_task` = the T single-task networks taken together (delta_mtl 0, costs summed); baselines that did "
        "not learn are left out (see Trials).",
        "",
        markdown_table(tables["baselines"]) if len(base) else "(none)",
        "",
        *refs_line,
    ]
    md += learning_md["bottom"]
    md += topology_md
    md += effect_md
    md += ["CSV files: " + ", ".join(f"`{n}.csv`" for n in tables), ""]
    (out / "report.md").write_text("\n".join(md))
    return out


def _answer_section(
    df: pd.DataFrame, answer: Answer, out: Path, trivial: Mapping[str, Mapping[str, float]] | None = None
) -> list[str]:
    """ "Does the search beat random architectures?": the sentence, per-seed hypervolumes, tests, EAF figures."""
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
        refs = tuple(
            objective_reference(o.column, trivial or {}) for o in (hv.objectives[1], hv.objectives[0])
        )  # (x, y)
        render_attainment(data, out / "attainment.png", refs)
        render_eaf_difference(data, out / "eaf_difference.png", refs)
        md += [
            "![median attainment surfaces](attainment.png)",
            "",
            "Red where the search's points attain a region in more seeds than the random architectures do, blue "
            "where fewer (the difference of the two empirical attainment functions, over their common seeds).",
            "",
            "![EAF difference](eaf_difference.png)",
            "",
        ]
    return md


def _topology_section(
    df: pd.DataFrame, tables: dict[str, pd.DataFrame], chosen: str | None, topo_png: Path | None
) -> list[str]:
    """The drawn trial's kept edges and, when the results carry topology columns, every trial's topology per task
    with the collapsed ones counted in one line and flagged in the table. Adds ``topology`` to ``tables``."""
    md = ["## Topology", ""] if topo_png is not None or has_topology(df) else []
    if topo_png is not None:
        md += [f"Per-task kept edges of trial `{chosen}`.", "", f"![topology]({topo_png.name})", ""]
    if not has_topology(df):
        return md
    table = topology_table(df)
    tables["topology"] = table.set_index(["trial_id", "task"])
    shown = table.assign(collapsed=["**collapsed**" if pd.notna(v) and bool(v) else "" for v in table["collapsed"]])
    md += [
        f"**{collapsed_count(df).sentence}**",
        "",
        "Per trial and task: kept edges, the longest read-in -> read-out path in edges (0: the task reads a node's "
        "features straight out), read-ins, read-outs, and `shared/<task>` = ops (edges and read-ins) kept by both "
        "tasks. A trial is collapsed when every task keeps 0 edges.",
        "",
        markdown_table(shown, index=False),
        "",
    ]
    return md


def _test_section(
    tests: list, name: str, summary_table, tables: dict[str, pd.DataFrame], title: str, explanation: str
) -> list[str]:
    """One test's report section (its sentences, summary table and per-seed table); the tables go into ``tables``
    as ``<name>_test`` and ``<name>_seeds`` (written as CSV). Nothing when there are no tests."""
    if not tests:
        return []
    tables[f"{name}_test"] = summary_table(tests).set_index(["task", "setting"])
    tables[f"{name}_seeds"] = _per_seed(tests)
    md = [f"## {title}", ""]
    md += [line for t in tests for line in (f"**{t.sentence}**", "")]
    return md + [
        explanation,
        "",
        markdown_table(_one_setting(summary_table(tests)), index=False),
        "",
        markdown_table(_one_setting(tables[f"{name}_seeds"].reset_index()), index=False),
        "",
    ]


def _per_seed(tests: list) -> pd.DataFrame:
    """The per-seed tables of several tests (hit or paired) as one table indexed by task, setting and seed."""
    frames = [t.table.assign(task=t.task, setting=t.setting) for t in tests]
    return pd.concat(frames, ignore_index=True).set_index(["task", "setting", "seed"])


def _planted_section(df: pd.DataFrame, tables: dict[str, pd.DataFrame]) -> list[str]:
    """On data with a known answer: the oracle with each trial beside the bound of the path it kept, the hit test
    and the paired test (nothing for other data). Adds ``oracle``, ``oracle_gaps``, ``hit_test``, ``hit_seeds``,
    ``paired_test`` and ``paired_seeds`` to ``tables``."""
    if not has_planted(df):
        return []
    try:
        cmp = oracle_comparison(df)
        hits, pairs = hit_tests(df), paired_tests(df)
    except AnalysisError as e:
        return ["## The planted benchmark", "", f"(not computed: {e})", ""]
    tables["oracle"] = cmp.oracle.set_index("task")
    tables["oracle_gaps"] = cmp.gaps.set_index(["trial_id", "task"])
    md = [
        "## Oracle: the best a path of k edges can reach",
        "",
        f"**{cmp.sentence}**",
        "",
        "Computed exactly from the data's generator: per task, the best validation value of its metric that a network "
        "whose longest read-in -> read-out path has k edges can reach (the last column holds for every longer path; "
        "`needs_edges` = the path length the task needs, 0 = a local task).",
        "",
        markdown_table(cmp.oracle, index=False),
        "",
        f"Each trial beside the bound of the path it kept, for the tasks that need depth (every task in "
        f"`oracle_gaps.csv`): `excess` = how much worse than that bound (in the metric's sense); `within` = excess <= "
        f"`tolerance`, {100 * cmp.within:g}% of the bound (of the k = 0 bound where the bound is 0).",
        "",
        markdown_table(_one_setting(cmp.gaps[cmp.gaps["needs_edges"].fillna(0).gt(0)]), index=False),
        "",
    ]
    md += _test_section(
        hits,
        "hit",
        hit_test_table,
        tables,
        "Does the search keep the path a task needs?",
        "Per seed, a hit is a supernet trial whose task that needs K edges kept a path of >= K edges; "
        "`p0` = the probability of a hit for a uniformly random valid architecture with that trial's "
        "kept numbers of edges, read-ins and read-outs (`exact`: enumerated, else sampled). One-sided "
        "exact test over seeds of the count of hits: binomial when every p0 is equal, Poisson-binomial "
        "otherwise; `min_p` = the smallest p-value it can reach with these p0; `local_shorter` = every "
        "local task kept a shorter path in every seed.",
    )
    md += _test_section(
        pairs,
        "paired",
        paired_test_table,
        tables,
        "Is the task that needs depth better than its size-matched random draws?",
        "Per seed, the supernet trial's final metric against the mean of its random_arch draws (same "
        "seed and setting, the same kept sizes); `gain` > 0 when the search is better in the metric's "
        "sense. One-sided exact Wilcoxon signed-rank test over the paired seeds (zero gains dropped).",
    )
    return md


def _one_setting(table: pd.DataFrame) -> pd.DataFrame:
    """``table`` without its ``setting`` column when every row has the same one (it is named in the sentences)."""
    return table.drop(columns="setting") if table["setting"].nunique() <= 1 else table


def _effect_section(
    df: pd.DataFrame,
    by: str,
    out: Path,
    tables: dict[str, pd.DataFrame],
    trivial: Mapping[str, Mapping[str, float]] | None = None,
) -> list[str]:
    """The effect an ablation of ``by`` exists to show (nothing when ``by`` is not flow_width, lambda_sq or tau)."""
    try:
        measures = ablation_measures(df, by)
        if measures is None:
            return []
        table = effect_table(df, by, measures)
    except AnalysisError as e:
        return [f"## Effect of {axis_name(by)}", "", f"(not measured: {e})", ""]
    tables["effect"] = table
    render_effects(table, measures, out / "effect.png", {m: objective_reference(m, trivial or {}) for m in measures})
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


def _stopping_section(df: pd.DataFrame, cmp: FrontComparison, tables: dict[str, pd.DataFrame]) -> list[str]:
    """ "Early stopping": which trials the sweep's scheduler stopped at which rung (nothing when none was);
    adds ``stopped`` (one row per trial) and ``stopped_by_rung`` to ``tables``."""
    rows = stopped_trials(df)
    if rows.empty:
        return []
    by_rung = stopped_by_rung(df)
    cols = ["trial_id", "mode", "seed", *cmp.by, "lambda_sq", "tau", STEP, STAGE, *(o.column for o in cmp.objectives)]
    tables["stopped"] = rows[[c for c in dict.fromkeys(cols) if c in rows.columns]].set_index("trial_id")
    tables["stopped_by_rung"] = by_rung.set_index(STEP)
    return [
        "## Early stopping",
        "",
        f"The sweep's scheduler stopped {len(rows)} trial(s) (`early_stopped`), at the rungs below (a rung named by "
        "the step of the trial's last report). Their figures are those of that report; they compete on the fronts "
        "with them and are ringed in the fronts figure, one colour per rung.",
        "",
        markdown_table(by_rung, index=False),
        "",
        markdown_table(tables["stopped"]),
        "",
    ]


def _references_line(cmp: FrontComparison, trivial: Mapping[str, Mapping[str, float]]) -> list[str]:
    """The line under a table or figure of the objectives: their trivial references, or what delta_mtl is against."""
    parts = [f"`{o.name}` {v:.4g}" for o in cmp.objectives if (v := objective_reference(o.column, trivial)) is not None]
    lines = [f"Trivial references: {', '.join(parts)} (dashed in the figures)."] if parts else []
    if "delta_mtl" in [o.column for o in cmp.objectives]:
        lines.append("delta_mtl: against the single-task baselines, not the trivial references.")
    return [" ".join(lines), ""] if lines else []


def _excluded_lines(flagged: pd.DataFrame) -> list[str]:
    """How many trials did not learn (kept off every front and hypervolume) and which, with the tasks they missed."""
    if flagged.empty:
        return ["Every finished trial beat its trivial references by the margins (`learned`); none excluded.", ""]
    return [
        f"**{len(flagged)} trial(s) did not learn** (did not beat the trivial references by the margins, `learned` "
        "false): kept in the tables, but left out of every front, hypervolume and baseline point.",
        "",
        markdown_table(flagged, index=False),
        "",
    ]


def _learning_section(
    df: pd.DataFrame, exp_dir: Path, out: Path, tables: dict[str, pd.DataFrame], cmp: FrontComparison
) -> dict[str, list[str]]:
    """ "top": the trivial references table; "bottom": learning curves and the reduction-gap table (each when its
    data exists). Adds ``trivial``, ``not_learned``, ``reduction_gap`` to ``tables``."""
    top: list[str] = []
    refs = trivial_table(df)
    if len(refs):
        tables["trivial"] = refs.set_index(["task", "metric"])
        top += [
            "## Trivial references",
            "",
            "What a constant predictor reaches on the validation split (majority class, training median depth, mean "
            "training normal), and the margin a trial must beat to count as having learned a task (`learned`). Trials "
            "that did not learn are kept off every front and hypervolume.",
            "",
            markdown_table(refs, index=False),
            "",
        ]
        if "delta_mtl" in [o.column for o in cmp.objectives]:
            top += [delta_mtl_caption(["delta_mtl"]), ""]
    if "learned" in df.columns:
        tables["not_learned"] = not_learned_table(df).set_index("trial_id")
    bottom: list[str] = []
    try:
        curves = learning_curves(load_epochs(exp_dir), df)
    except AnalysisError as e:
        bottom += ["## Learning curves", "", f"(not drawn: {e})", ""]
    else:
        if len(curves.table):
            tables["learning_curves"] = curves.table.set_index("mode")
            render_learning_curves(curves, out / "learning_curves.png")
            bottom += [
                "## Learning curves",
                "",
                "Validation quality of each task's main metric per global step (epoch), median across a mode's "
                "trials (band: min-max), the trivial predictor dashed, stage starts dotted.",
                "",
                "![learning curves](learning_curves.png)",
                "",
            ]
    if quality_columns(df) and df["mode"].isin(["supernet", "random_arch"]).any():
        gap = reduction_gap(df)
        tables["reduction_gap"] = gap.set_index("trial_id")
        summary = gap_summary(gap)
        triv = trivial_references(df)
        ref_text = ", ".join(
            f"{t} {m} {triv[t][m]:.4g}"
            for t, m in dict.fromkeys(zip(gap["task"], gap["metric"]))
            if m in triv.get(t, {})
        )
        bottom += [
            "## The gap at reduction",
            "",
            f"**{summary.sentence[0].upper() + summary.sentence[1:]}.**",
            "",
            "Per method trial (`supernet`, `random_arch`) and task, the main metric on the validation split at the end "
            "of warm-up, at the end of search, right after reduction (the compact net before fine-tune) and after "
            "fine-tune; `gap_pct` = 100 |reduction - search| / |search|; `search_vs_warmup_pct` > 0 when search "
            "improved on warm-up." + (f" Trivial references: {ref_text}." if ref_text else ""),
            "",
            markdown_table(gap, index=False),
            "",
        ]
    return {"top": top, "bottom": bottom}


def _safe(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in name)
