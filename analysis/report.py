"""The report of one experiment: ``report.md`` with markdown tables, PNG figures and CSVs of the tables.

``write_report`` is what ``python -m analysis`` and ``run.py`` (at the end of a sweep) call. Compute, then render,
as in :mod:`analysis.plots`: :func:`build_report` combines the computing functions of :mod:`analysis.compare`,
:mod:`analysis.stats`, :mod:`analysis.effects`, :mod:`analysis.learning`, :mod:`analysis.topology` and
:mod:`analysis.stopping` into a :class:`Report` (its sections in order, each with its paragraphs, the tables it
shows, the CSV tables of its numbers and the data of its figures) and writes nothing; :func:`render_markdown`,
:func:`write_tables` and :func:`write_figures` turn that object into files. Every CSV is one :class:`Table` of
a section, so the files written and the list of them in ``report.md`` come from one list.

The report's first lines say what it concludes: how many trials the fronts compare and the answer to "does the search
beat random architectures of the same size?", or, when the fronts cannot be compared (nothing learned, no valid trial
for the objectives, no baselines for delta_mtl), that and why; a report is written either way. Its first section is that
answer (:func:`analysis.stats.search_vs_random`; left out without a comparison), then, on data with planted structure,
the oracle, the hit test and the paired test (:mod:`analysis.topology`), then the trivial references
(:mod:`analysis.learning`: trials that did not beat them are counted, listed and kept off every front), the trials a
scheduler stopped and where (:mod:`analysis.stopping`), learning curves and the gap at reduction, and, when fronts are
grouped by an ablation's axis (flow_width, lambda_sq, tau), ends with the effect that ablation exists to show
(:mod:`analysis.effects`).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from os import PathLike
from pathlib import Path

import numpy as np
import pandas as pd

from analysis.compare import (
    BASELINE_MODES,
    DEFAULT_OBJECTIVES,
    FrontComparison,
    Objective,
    ObjectiveSpec,
    baseline_points,
    compare_fronts,
    objective_matrix,
    pareto_front,
    parse_objectives,
    usable_rows,
)
from analysis.effects import ablation_measures, axis_name, effect_table
from analysis.learning import (
    gap_summary,
    learning_curves,
    main_metrics,
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
from analysis.stats import RANDOM, Answer, SeedHypervolumes, eaf_data, search_vs_random
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
    sharing_comparisons,
    topology_table,
)

Trivial = Mapping[str, Mapping[str, float]]  # {task: {metric: trivial value}} (analysis.learning)
MAX_SENTENCES = 8  # above this many settings, a section states one sentence over all of them

# The order in which report.md lists the CSV files: the comparison's tables, then those of the learning checks,
# the planted benchmark, the topology, the answer, the effect, early stopping and the seeds without delta_mtl.
# Every table of a section must be named here (an unknown name is an error, not a file left out of the list).
CSV_ORDER = (
    "comparison",
    "coverage",
    "per_seed",
    "front",
    "baselines",
    "trivial",
    "not_learned",
    "learning_curves",
    "reduction_gap",
    "oracle",
    "oracle_gaps",
    "hit_test",
    "hit_seeds",
    "paired_test",
    "paired_seeds",
    "against_hard_sharing",
    "topology",
    "seed_hypervolumes",
    "tests",
    "effect",
    "stopped",
    "stopped_by_rung",
    "delta_mtl_unavailable",
)


# ----------------------------------------------------------------------------- the report object


@dataclass
class Table:
    """One CSV of the report, ``<name>.csv``: ``frame`` written with its index."""

    name: str
    frame: pd.DataFrame


@dataclass
class Shown:
    """A table as report.md shows it (a view for reading, e.g. without a column every row shares; the CSV
    tables of a section hold its numbers)."""

    frame: pd.DataFrame
    index: bool = True


@dataclass
class Plot:
    """A figure: ``render(*args, path, **options)`` (a renderer of :mod:`analysis.plots`) draws the figure's data
    ``args`` into ``file``; report.md shows it as ``![alt](file)``."""

    file: str
    alt: str
    render: Callable[..., object]
    args: tuple = ()
    options: Mapping[str, object] = field(default_factory=dict)


Block = str | Shown | Plot  # a paragraph, a table or a figure; report.md puts a blank line after each


@dataclass
class Section:
    """A part of report.md: its heading (``## ...`` / ``### ...``; None when the blocks continue the part
    before), its blocks in order, and the CSV tables of its numbers."""

    heading: str | None
    blocks: list[Block]
    tables: list[Table] = field(default_factory=list)


@dataclass
class Report:
    """Everything a report folder holds, computed and not yet written: the title and the sections in order."""

    title: str
    sections: list[Section]

    @property
    def tables(self) -> list[Table]:
        """Every section's CSV tables, in :data:`CSV_ORDER`."""
        return sorted((t for s in self.sections for t in s.tables), key=lambda t: CSV_ORDER.index(t.name))

    @property
    def figures(self) -> list[Plot]:
        """Every figure the sections show, in their order."""
        return [b for s in self.sections for b in s.blocks if isinstance(b, Plot)]


# ----------------------------------------------------------------------------- render


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


def _block_markdown(block: Block) -> str:
    if isinstance(block, Shown):
        return markdown_table(block.frame, index=block.index)
    if isinstance(block, Plot):
        return f"![{block.alt}]({block.file})"
    return block


def render_markdown(report: Report) -> str:
    """The text of ``report.md``: the title, every section's heading and blocks, and the list of CSV files."""
    lines = [f"# {report.title}", ""]
    for section in report.sections:
        head = [section.heading] if section.heading else []
        lines += [line for block in (*head, *section.blocks) for line in (_block_markdown(block), "")]
    lines += ["CSV files: " + ", ".join(f"`{t.name}.csv`" for t in report.tables), ""]
    return "\n".join(lines)


def write_tables(report: Report, out: Path) -> None:
    """Every table of the report as ``out/<name>.csv``."""
    for table in report.tables:
        table.frame.to_csv(out / f"{table.name}.csv")


def write_figures(report: Report, out: Path) -> None:
    """Every figure of the report as ``out/<file>`` (PNG)."""
    for plot in report.figures:
        plot.render(*plot.args, out / plot.file, **plot.options)


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
    objective). A report is written whenever the results can be read: when nothing learned or the fronts
    cannot be compared (no valid trial for the objectives, no baselines for delta_mtl), its first lines say
    so and why. Raises :class:`AnalysisError` on unreadable input (missing folder or table, corrupt Parquet)
    and on bad arguments (an unknown objective, grouping column or trial), with a message meant for the user;
    nothing is written then.
    """
    report = build_report(exp_dir, by, objectives, budgets=budgets, trial=trial)
    out = Path(out) if out is not None else Path(exp_dir) / "report"
    out.mkdir(parents=True, exist_ok=True)
    write_tables(report, out)
    write_figures(report, out)
    (out / "report.md").write_text(render_markdown(report))
    return out


# ----------------------------------------------------------------------------- compute


def build_report(
    exp_dir: str | PathLike[str],
    by: str | Sequence[str] = "flow_width",
    objectives: ObjectiveSpec | None = None,
    *,
    budgets: Mapping[str, Sequence[float]] | None = None,
    trial: str | None = None,
) -> Report:
    """The report of an experiment as a :class:`Report` (arguments as :func:`write_report`); writes nothing.

    When no comparison is possible (no valid trial for the objectives, nothing learned, delta_mtl without usable
    baselines) the report says so and why in its first lines and keeps every section that does not need one."""
    exp_dir = Path(exp_dir)
    df, delta_error = _load(exp_dir, "delta_mtl" in _objective_columns(objectives))
    by_cols = _checked_by(df, by)
    objs = parse_objectives(objectives, df)
    why = _why_no_comparison(df, objs, delta_error)
    cmp = None if why else compare_fronts(df, by=by_cols, objectives=objs, budgets=budgets)
    trivial = trivial_references(df)
    front = pareto_front(df[df["mode"] == "supernet"], objs)
    chosen = trial if trial is not None else _default_trial(df, front)
    drawn = _topology_plot(df, exp_dir, chosen)  # first: an unknown --trial fails before the long part
    answer = search_vs_random(df, objs) if cmp is not None else None
    compared = [_answer_section(df, answer, trivial)] if answer is not None else []
    sections = [
        _verdict_section(df, cmp, answer, why),
        _intro_section(exp_dir, objs, by_cols),
        *compared,
        *_planted_sections(df),
        *_sharing_sections(df),
        *_trivial_sections(df, objs),
        *_trials_sections(df),
        *_stopping_sections(df, by_cols, objs),
        *(_front_sections(df, cmp, front, trivial) if cmp is not None else []),
        *_curves_sections(df, exp_dir),
        *_gap_sections(df, trivial),
        *_topology_sections(df, chosen, drawn, _chosen_note(trial, front)),
        *_effect_sections(df, by_cols[0], trivial),
    ]
    return Report(f"Report: experiment `{', '.join(map(str, df['experiment'].unique()))}`", sections)


def _checked_by(df: pd.DataFrame, by: str | Sequence[str]) -> list[str]:
    """The grouping columns, checked here too: a report without a comparison must refuse a bad ``--by`` alike."""
    by_cols = [by] if isinstance(by, str) else list(by)
    missing = [c for c in by_cols if c not in df.columns]
    if missing or not by_cols:
        raise AnalysisError(f"cannot group by {missing}: no such column (e.g. flow_width, lambda_sq, tau, n_nodes)")
    return by_cols


def _load(exp_dir: Path, needs_delta: bool) -> tuple[pd.DataFrame, str | None]:
    """The results and, when delta_mtl is needed but cannot be computed (no finished single-task baseline for a
    seed, a baseline without metric values), why: the table then carries an all-NaN delta_mtl column, so every
    section that does not need it is still written. Unreadable input raises (the second load fails the same way).
    A baseline that did not learn or did not finish leaves only its seed's delta_mtl NaN (listed under Trials)."""
    try:
        return load_results(exp_dir, delta_mtl=needs_delta, unusable_baseline="nan"), None
    except AnalysisError as e:
        if not needs_delta:
            raise
        df = load_results(exp_dir, delta_mtl=False)
        df["delta_mtl"] = np.nan
        return df, str(e)


def _chosen_note(trial: str | None, front: pd.DataFrame) -> str:
    if trial is not None:
        return ""
    return " (the front trial with the best first objective)" if len(front) else " (the first valid supernet trial)"


def _default_trial(df: pd.DataFrame, front: pd.DataFrame) -> str | None:
    """The trial whose topology is drawn: the front trial with the best first objective, else (no front) the first
    valid supernet trial."""
    if len(front):
        return str(front["trial_id"].iloc[0])
    valid = df[(df["mode"] == "supernet") & df["is_valid"].to_numpy(bool)]
    return str(valid["trial_id"].sort_values().iloc[0]) if len(valid) else None


def _objective_columns(objectives: ObjectiveSpec | None) -> set[str]:
    """The columns named as objectives, by name alone (their senses come from the table's metadata, once loaded)."""
    spec = DEFAULT_OBJECTIVES if objectives is None else objectives
    names = spec.split(",") if isinstance(spec, str) else list(spec)  # a mapping gives its keys
    names = [getattr(n, "name", n).strip() for n in names]
    return {ALIASES.get(n, n) for n in (n.rsplit(":", 1)[0] if n.endswith((":max", ":min")) else n for n in names)}


def _has_delta_mtl(objectives: Sequence[Objective]) -> bool:
    return "delta_mtl" in [o.column for o in objectives]


def _intro_section(exp_dir: Path, objectives: Sequence[Objective], by: Sequence[str]) -> Section:
    obj_text = ", ".join(f"`{o.name}` ({o.sense})" for o in objectives)
    return Section(
        None,
        [
            (
                f"Source: `{exp_dir}`. Objectives: {obj_text}. Fronts grouped by `{', '.join(by)}`; only valid "
                "`supernet` trials compete."
            )
        ],
    )


# ----------------------------------------------------------------------------- what the report concludes


def _verdict_section(df: pd.DataFrame, cmp: FrontComparison | None, answer: Answer | None, why: list[str]) -> Section:
    """The report's first lines: why there is no comparison (``why``), else what the comparison concludes."""
    if cmp is None or answer is None:
        rest = (
            "What follows is what the results still show: the trials by mode and status, the trivial references, "
            "the trials that did not learn, and the learning curves and topology where the results have them."
        )
        return Section(None, [*why, rest])
    n = sum(len(p) for p in cmp.points.values())
    head = f"**Conclusion: {n} valid supernet trial(s) compared by `{', '.join(cmp.by)}`"
    if len(cmp.table) > 1:
        best = cmp.table["hypervolume"].idxmax()
        label = f"{cmp.by[0]}={best}" if len(cmp.by) == 1 else best
        head += f"; the largest hypervolume is that of `{label}` ({cmp.table.loc[best, 'hypervolume']:.4g})"
    lines = [head + ".**"]
    flagged = int(not_learned(df).sum())
    if flagged:
        lines.append(f"{flagged} trial(s) did not learn and are left out of the fronts (see Trials).")
    unavailable = {(r["experiment"], r["seed"]) for r in df.attrs.get("delta_mtl_unavailable", [])}
    if unavailable and _has_delta_mtl(cmp.objectives):
        lines.append(f"delta_mtl is not computed for {len(unavailable)} seed(s) (see Trials).")
    lines.append(f"Search against random architectures: {answer.sentence}")
    return Section(None, [" ".join(lines)])


def _why_no_comparison(df: pd.DataFrame, objectives: Sequence[Objective], delta_error: str | None) -> list[str]:
    """Why the fronts cannot be compared, as the report's first lines (empty when they can): the same condition
    as :func:`analysis.compare.compare_fronts` refuses, with its cause."""
    sup = df[df["mode"] == "supernet"]
    usable = usable_rows(sup)
    if len(usable) and np.isfinite(objective_matrix(usable, objectives)).all(axis=1).any():
        return []
    head = f"**No comparison: no valid supernet trials with values for {[o.name for o in objectives]}.**"
    valid = sup[sup["is_valid"].to_numpy(bool)]
    if sup.empty:
        return [head, "The results hold no `supernet` trials (only baselines or random architectures)."]
    if valid.empty:
        counts = ", ".join(f"{n} {st}" for st, n in sup["status"].value_counts().sort_index().items())
        return [head, f"No supernet trial finished ({counts}): see the trials that are not valid below."]
    lines = [head, *_nothing_learned(df, len(valid), supernet_only=len(usable) == 0)]
    if len(usable):  # e.g. an early-stopped trial (not judged) without delta_mtl
        lines += _missing_objectives(df, usable, objectives, delta_error)
    return lines


def _nothing_learned(df: pd.DataFrame, n_valid: int, supernet_only: bool) -> list[str]:
    """Why nothing can be compared when nothing learned: every judged trial (all modes) is at its trivial
    predictor, or (``supernet_only``) every valid supernet trial is; [] otherwise."""
    judged = df[df["is_valid"].to_numpy(bool) & df["learned"].notna().to_numpy(bool)] if "learned" in df else df[:0]
    epochs = _epochs_text(df)
    if len(judged) and not_learned(judged).all():
        return [
            f"Every trial is at its trivial predictor: none of the {len(judged)} finished trials beat the trivial "
            f"references by the margins (`learned` false for each; see the references and the list below){epochs}. "
            "A run this short (such as the tiny preset, which checks the pipeline) trains too briefly to learn: "
            "train longer (more epochs, e.g. the default preset) to compare fronts."
        ]
    if not supernet_only:
        return []
    return [
        f"None of the {n_valid} valid supernet trials learned: each is at its trivial predictor for at least one task "
        f"(`learned` false; see the references and the list below){epochs}. Train the method longer (more "
        "warm-up, search or fine-tune epochs) to compare fronts."
    ]


def _epochs_text(df: pd.DataFrame) -> str:
    """' (each trial trained at most w warm-up + s search + f fine-tune epochs)' from the config columns, or ''."""
    stages = {"warm-up": "warmup", "search": "search", "fine-tune": "finetune"}
    found = {
        name: int(pd.to_numeric(df[c], errors="coerce").max())
        for name, stage in stages.items()
        if (c := f"config/{stage}.epochs") in df.columns and pd.to_numeric(df[c], errors="coerce").notna().any()
    }
    if not found:
        return ""
    return " (each trial trained at most " + " + ".join(f"{n} {name}" for name, n in found.items()) + " epochs)"


def _missing_objectives(
    df: pd.DataFrame, usable: pd.DataFrame, objectives: Sequence[Objective], delta_error: str | None
) -> list[str]:
    """Which objective the learned supernet trials lack, and why for delta_mtl (its baselines)."""
    lines = []
    for o in objectives:
        if pd.to_numeric(usable[o.column], errors="coerce").notna().any():
            continue
        if o.column == "delta_mtl":
            metric = next(iter(main_metrics(df).items()), None)
            hint = f" (e.g. `--objectives metric/{metric[0]}/{metric[1]},params`)" if metric else ""
            lines.append(
                f"delta_mtl is unavailable: {delta_error or _unavailable_text(df)}. Task metrics need no baseline"
                f"{hint}."
            )
        else:
            lines.append(f"No learned supernet trial has a value for `{o.name}`.")
    return lines or ["No learned supernet trial has values for all the objectives at once."]


def _unavailable_text(df: pd.DataFrame) -> str:
    rows = df.attrs.get("delta_mtl_unavailable", [])
    if not rows:
        return "no trial has a delta_mtl value"
    cases = "; ".join(f"seed {r['seed']}: `{r['trial_id']}` ({r['task']}) {r['reason']}" for r in rows)
    return f"no seed has a single-task baseline that can be the reference ({cases})"


# ----------------------------------------------------------------------------- fronts and baselines


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


def _references_line(cmp: FrontComparison, trivial: Trivial) -> list[str]:
    """The line under a table or figure of the objectives: their trivial references, or what delta_mtl is against
    (none when neither applies)."""
    parts = [f"`{o.name}` {v:.4g}" for o in cmp.objectives if (v := objective_reference(o.column, trivial)) is not None]
    lines = [f"Trivial references: {', '.join(parts)} (dashed in the figures)."] if parts else []
    if _has_delta_mtl(cmp.objectives):
        lines.append("delta_mtl: against the single-task baselines, not the trivial references.")
    return [" ".join(lines)] if lines else []


def _bounds(cmp: FrontComparison) -> pd.DataFrame:
    """The normalisation's ideal and nadir rows in the objectives' own units (ideal = best)."""
    bounds = pd.DataFrame({"ideal": cmp.ideal, "nadir": cmp.nadir}, index=[o.name for o in cmp.objectives]).T
    sign = np.array([-1.0 if o.sense == "max" else 1.0 for o in cmp.objectives])
    return bounds * sign


def _front_sections(df: pd.DataFrame, cmp: FrontComparison, front: pd.DataFrame, trivial: Trivial) -> list[Section]:
    """The fronts figure, the comparison by group (bounds, table, coverage, per-seed hypervolumes), the overall
    front and the baseline points."""
    base = baseline_points(df, (*BASELINE_MODES, RANDOM))
    refs = _references_line(cmp, trivial)
    per_seed = cmp.per_seed.set_index("group")
    overall = front[_front_columns(df, cmp)].set_index("trial_id")
    cols = [c for c in ["trial_id", "mode", "seed", *(o.column for o in cmp.objectives)] if c in base.columns]
    baselines = base[cols].set_index("trial_id")
    hv_text = (
        f"Hypervolume on objectives normalised to [0, 1] by the bounds below (ideal = 0, nadir = 1 over all "
        f"compared points), reference point {np.round(cmp.ref_point, 4).tolist()}; `hypervolume` pools the "
        "seeds, `hv_seed_*` summarise the per-seed hypervolumes; `igd_plus` is the distance to the union front."
    )
    baselines_text = (
        "`single_task` = the T single-task networks taken together (delta_mtl 0, costs summed); baselines that did "
        "not learn are left out (see Trials)."
    )
    fronts = Plot("fronts.png", "fronts", render_fronts, (front_plot_data(cmp, base, trivial),))
    return [
        Section("## Fronts", [fronts, *refs]),
        Section(
            "## Comparison by group",
            [hv_text, Shown(_bounds(cmp)), Shown(cmp.table), *refs],
            [Table("comparison", cmp.table)],
        ),
        Section(
            "### Coverage C(A, B)",
            ["Fraction of front B weakly dominated by front A (row A, column B).", Shown(cmp.coverage)],
            [Table("coverage", cmp.coverage)],
        ),
        Section("### Hypervolume per seed", [Shown(per_seed)], [Table("per_seed", per_seed)]),
        Section("## Overall front (all groups)", [Shown(overall), *refs], [Table("front", overall)]),
        Section(
            "## Baselines",
            [baselines_text, Shown(baselines) if len(base) else "(none)", *refs],
            [Table("baselines", baselines)],
        ),
    ]


# ----------------------------------------------------------------------------- the answer


def _answer_section(df: pd.DataFrame, answer: Answer, trivial: Trivial) -> Section:
    """ "Does the search beat random architectures?": the sentence, per-seed hypervolumes, tests, EAF figures."""
    heading, blocks = "## Does the search beat random architectures?", [f"**{answer.sentence}**"]
    hv = answer.hv
    if hv is None:
        return Section(heading, blocks)
    ref = np.round(hv.ref_point, 4).tolist()
    blocks += [
        (
            "Hypervolume of each seed's points, every group normalised by the same bounds (ideal = 0, nadir = 1 over "
            f"all points of all groups and seeds) and measured from the same reference point {ref}; `single_task` is "
            "the T single-task networks as one point per seed. Rank tests across seeds: Wilcoxon signed-rank when "
            "both groups have the same seeds, else Mann-Whitney U, two-sided; effect > 0 means `supernet` has the "
            "larger hypervolume."
        ),
        Shown(hv.wide()),
        Shown(hv.summary()),
    ]
    if len(answer.tests):
        blocks.append(Shown(answer.tests, index=False))
    blocks += _attainment_blocks(df, hv, trivial)
    tables = [
        Table("seed_hypervolumes", hv.table.set_index("group")),
        Table("tests", answer.tests.set_index("comparison")),
    ]
    return Section(heading, blocks, tables)


def _attainment_blocks(df: pd.DataFrame, hv: SeedHypervolumes, trivial: Trivial) -> list[Block]:
    """The median attainment surfaces and the EAF difference (two objectives and random rows only)."""
    if not (df["mode"] == RANDOM).any() or len(hv.objectives) != 2:  # without random rows the sentence says so
        return []
    try:
        data = eaf_data(df, hv.objectives)
    except AnalysisError as e:
        return [f"(no attainment figures: {e})"]
    refs = tuple(objective_reference(o.column, trivial) for o in (hv.objectives[1], hv.objectives[0]))  # (x, y)
    return [
        Plot("attainment.png", "median attainment surfaces", render_attainment, (data,), {"refs": refs}),
        (
            "Red where the search's points attain a region in more seeds than the random architectures do, blue "
            "where fewer (the difference of the two empirical attainment functions, over their common seeds)."
        ),
        Plot("eaf_difference.png", "EAF difference", render_eaf_difference, (data,), {"refs": refs}),
    ]


# ----------------------------------------------------------------------------- planted benchmark


def _planted_sections(df: pd.DataFrame) -> list[Section]:
    """On data with a known answer: the oracle with each trial beside the bound of the path it kept, the hit test
    and the paired test (nothing for other data)."""
    if not has_planted(df):
        return []
    try:
        cmp = oracle_comparison(df)
        hits, pairs = hit_tests(df), paired_tests(df)
    except AnalysisError as e:
        return [Section("## The planted benchmark", [f"(not computed: {e})"])]
    oracle = Section(
        "## Oracle: the best a path of k edges can reach",
        [
            f"**{cmp.sentence}**",
            (
                "Computed exactly from the data's generator: per task, the best validation value of its metric that a "
                "network whose longest read-in -> read-out path has k edges can reach (the last column holds for every "
                "longer path; `needs_edges` = the path length the task needs, 0 = a local task)."
            ),
            Shown(cmp.oracle, index=False),
            (
                f"Each trial beside the bound of the path it kept, for the tasks that need depth (every task in "
                f"`oracle_gaps.csv`): `excess` = how much worse than that bound (in the metric's sense); `within` = "
                f"excess <= `tolerance`, {100 * cmp.within:g}% of the bound (of the k = 0 bound where the bound is 0)."
            ),
            Shown(_one_setting(cmp.gaps[cmp.gaps["needs_edges"].fillna(0).gt(0)]), index=False),
        ],
        [Table("oracle", cmp.oracle.set_index("task")), Table("oracle_gaps", cmp.gaps.set_index(["trial_id", "task"]))],
    )
    hit = _test_sections(
        hits,
        "hit",
        hit_test_table,
        "Does the search keep the path a task needs?",
        "Per seed, a hit is a supernet trial whose task that needs K edges kept a path of >= K edges; "
        "`p0` = the probability of a hit for a uniformly random valid architecture with that trial's "
        "kept numbers of edges, read-ins and read-outs (`exact`: enumerated, else sampled). One-sided "
        "exact test over seeds of the count of hits: binomial when every p0 is equal, Poisson-binomial "
        "otherwise; `min_p` = the smallest p-value it can reach with these p0; `local_shorter` = every "
        "local task kept a shorter path in every seed.",
    )
    paired = _test_sections(
        pairs,
        "paired",
        paired_test_table,
        "Is the task that needs depth better than its size-matched random draws?",
        "Per seed, the supernet trial's final metric against the mean of its random_arch draws (same "
        "seed and setting, the same kept sizes); `gain` > 0 when the search is better in the metric's "
        "sense. One-sided exact Wilcoxon signed-rank test over the paired seeds (zero gains dropped).",
    )
    return [oracle, *hit, *paired]


def _sharing_sections(df: pd.DataFrame) -> list[Section]:
    """The search against hard sharing of the same seed, on every task's main metric and the parameters (none
    without both a supernet trial and a hard-sharing baseline)."""
    title = "## Against hard sharing at no more parameters"
    try:
        comparisons = sharing_comparisons(df, main_metrics(df))
    except AnalysisError as e:
        return [Section(title, [f"(not computed: {e})"])]
    if not comparisons:
        return []
    table = pd.concat([c.table.assign(setting=c.setting) for c in comparisons], ignore_index=True)
    if len(comparisons) <= MAX_SENTENCES:
        blocks: list[Block] = [f"**{c.sentence}**" for c in comparisons]
    else:  # a sampled search (Optuna): a setting per trial
        blocks = [
            f"**Over {len(comparisons)} settings, the search is at or above hard sharing on every task at no more "
            f"parameters in {int(table['holds'].sum())} of {len(table)} (setting, seed) pairs (every task: "
            f"{int(table['every_task'].sum())} of {len(table)}; no more parameters: "
            f"{int(table['no_more_params'].sum())} of {len(table)}).**"
        ]
    blocks += [
        "Per seed, the supernet trial against the hard-sharing baseline of its seed: each task's main metric "
        "(`<task>/at_least`: the search at least as good, in the metric's sense) and `params_union`; `holds` = "
        "at least as good on every task with no more parameters.",
        Shown(_one_setting(table), index=False),
    ]
    return [Section(title, blocks, [Table("against_hard_sharing", table)])]


def _test_sections(
    tests: list, name: str, summary_table: Callable[[list], pd.DataFrame], title: str, explanation: str
) -> list[Section]:
    """One test's section (its sentences, summary table and per-seed table) with the tables ``<name>_test`` and
    ``<name>_seeds``; none when there are no tests."""
    if not tests:
        return []
    summary, seeds = summary_table(tests), _per_seed(tests)
    blocks: list[Block] = [f"**{t.sentence}**" for t in tests]
    blocks += [
        explanation,
        Shown(_one_setting(summary), index=False),
        Shown(_one_setting(seeds.reset_index()), index=False),
    ]
    tables = [Table(f"{name}_test", summary.set_index(["task", "setting"])), Table(f"{name}_seeds", seeds)]
    return [Section(f"## {title}", blocks, tables)]


def _per_seed(tests: list) -> pd.DataFrame:
    """The per-seed tables of several tests (hit or paired) as one table indexed by task, setting and seed."""
    frames = [t.table.assign(task=t.task, setting=t.setting) for t in tests]
    return pd.concat(frames, ignore_index=True).set_index(["task", "setting", "seed"])


def _one_setting(table: pd.DataFrame) -> pd.DataFrame:
    """``table`` without its ``setting`` column when every row has the same one (it is named in the sentences)."""
    return table.drop(columns="setting") if table["setting"].nunique() <= 1 else table


# ----------------------------------------------------------------------------- learning checks


def _trivial_sections(df: pd.DataFrame, objectives: Sequence[Objective]) -> list[Section]:
    """The trivial references and the margins a trial must beat (none when the results carry no references)."""
    refs = trivial_table(df)
    if not len(refs):
        return []
    blocks: list[Block] = [
        (
            "What a constant predictor reaches on the validation split (majority class, training median depth, mean "
            "training normal), and the margin a trial must beat to count as having learned a task (`learned`). "
            "Trials that did not learn are kept off every front and hypervolume."
        ),
        Shown(refs, index=False),
    ]
    if _has_delta_mtl(objectives):
        blocks.append(delta_mtl_caption(["delta_mtl"]))
    return [Section("## Trivial references", blocks, [Table("trivial", refs.set_index(["task", "metric"]))])]


def _curves_sections(df: pd.DataFrame, exp_dir: Path) -> list[Section]:
    """Learning curves from the epochs table (a line saying why when it cannot be read; none when it is empty)."""
    try:
        curves = learning_curves(load_epochs(exp_dir), df)
    except AnalysisError as e:
        return [Section("## Learning curves", [f"(not drawn: {e})"])]
    if not len(curves.table):
        return []
    text = (
        "Validation quality of each task's main metric per global step (epoch), median across a mode's "
        "trials (band: min-max), the trivial predictor dashed, stage starts dotted."
    )
    plot = Plot("learning_curves.png", "learning curves", render_learning_curves, (curves,))
    return [Section("## Learning curves", [text, plot], [Table("learning_curves", curves.table.set_index("mode"))])]


def _gap_sections(df: pd.DataFrame, trivial: Trivial) -> list[Section]:
    """The gap at reduction of the method trials (none without stage qualities or method trials)."""
    if not (quality_columns(df) and df["mode"].isin(["supernet", "random_arch"]).any()):
        return []
    gap = reduction_gap(df)
    summary = gap_summary(gap)
    ref_text = ", ".join(
        f"{t} {m} {trivial[t][m]:.4g}"
        for t, m in dict.fromkeys(zip(gap["task"], gap["metric"]))
        if m in trivial.get(t, {})
    )
    text = (
        "Per method trial (`supernet`, `random_arch`) and task, the main metric on the validation split at the end "
        "of warm-up, at the end of search, right after reduction (the compact net before fine-tune) and after "
        "fine-tune; `gap_pct` = 100 |reduction - search| / |search|; `search_vs_warmup_pct` > 0 when search "
        "improved on warm-up."
    ) + (f" Trivial references: {ref_text}." if ref_text else "")
    blocks = [f"**{summary.sentence[0].upper() + summary.sentence[1:]}.**", text, Shown(gap, index=False)]
    return [Section("## The gap at reduction", blocks, [Table("reduction_gap", gap.set_index("trial_id"))])]


# ----------------------------------------------------------------------------- trials


def _trials_sections(df: pd.DataFrame) -> list[Section]:
    """Trials by mode and status, the ones that did not learn, the seeds without delta_mtl and the invalid ones."""
    sections = [Section("## Trials", [Shown(_trial_counts(df), index=False)])]
    if "learned" in df.columns:  # a results table without the flag has nothing to count or list
        flagged = not_learned_table(df)
        sections.append(Section(None, _excluded_blocks(flagged), [Table("not_learned", flagged.set_index("trial_id"))]))
    unavailable = pd.DataFrame(df.attrs.get("delta_mtl_unavailable", []))
    if len(unavailable):
        text = (
            f"**delta_mtl not computed for {len(unavailable)} seed(s)**: their single-task baseline cannot be the "
            "reference, so every trial of that seed has no delta_mtl and stays off the fronts and hypervolumes "
            "(the other seeds are unaffected)."
        )
        table = Table("delta_mtl_unavailable", unavailable.set_index(["experiment", "seed"]))
        sections.append(Section(None, [text, Shown(unavailable, index=False)], [table]))
    errored = df[~df["is_valid"]]
    if len(errored):
        cols = ["trial_id", "status", "error"] if "error" in df.columns else ["trial_id", "status"]
        sections.append(
            Section(None, ["Not valid (left out of fronts and baselines):", Shown(errored[cols], index=False)])
        )
    return sections


def _trial_counts(df: pd.DataFrame) -> pd.DataFrame:
    """Trials per mode and status, and how many of them did not learn (when the table has the flag)."""
    counts = df.groupby(["mode", "status"]).size().rename("trials").reset_index()
    if "learned" in df.columns:
        flagged = not_learned(df)
        counts["not learned"] = [
            int(((df["mode"] == m) & (df["status"] == st)).to_numpy(bool)[flagged].sum())
            for m, st in zip(counts["mode"], counts["status"])
        ]
    return counts


def _excluded_blocks(flagged: pd.DataFrame) -> list[Block]:
    """How many trials did not learn (kept off every front and hypervolume) and which, with the tasks they missed."""
    if flagged.empty:
        return ["Every finished trial beat its trivial references by the margins (`learned`); none excluded."]
    return [
        (
            f"**{len(flagged)} trial(s) did not learn** (did not beat the trivial references by the margins, "
            "`learned` false): kept in the tables, but left out of every front, hypervolume and baseline point."
        ),
        Shown(flagged, index=False),
    ]


def _stopping_sections(df: pd.DataFrame, by: Sequence[str], objectives: Sequence[Objective]) -> list[Section]:
    """ "Early stopping": which trials the sweep's scheduler stopped at which rung (none when none was)."""
    rows = stopped_trials(df)
    if rows.empty:
        return []
    by_rung = stopped_by_rung(df)
    cols = ["trial_id", "mode", "seed", *by, "lambda_sq", "tau", STEP, STAGE, *(o.column for o in objectives)]
    stopped = rows[[c for c in dict.fromkeys(cols) if c in rows.columns]].set_index("trial_id")
    text = (
        f"The sweep's scheduler stopped {len(rows)} trial(s) (`early_stopped`), at the rungs below (a rung named by "
        "the step of the trial's last report). Their figures are those of that report; they compete on the fronts "
        "with them and are ringed in the fronts figure, one colour per rung."
    )
    return [
        Section(
            "## Early stopping",
            [text, Shown(by_rung, index=False), Shown(stopped)],
            [Table("stopped", stopped), Table("stopped_by_rung", by_rung.set_index(STEP))],
        )
    ]


# ----------------------------------------------------------------------------- topology and effect


def _safe(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in name)


def _topology_plot(df: pd.DataFrame, exp_dir: Path, chosen: str | None) -> Plot | None:
    """The figure of the chosen trial's kept edges (None when no trial is chosen or its spec file is missing)."""
    if chosen is None:
        return None
    row = df[df["trial_id"] == chosen]
    if row.empty:
        raise AnalysisError(f"trial {chosen!r} is not in {exp_dir}")
    spec_path = row["arch_spec_path"].iloc[0] if "arch_spec_path" in row.columns else None
    if not (isinstance(spec_path, str) and Path(spec_path).is_file()):
        return None
    data = topology_data(load_arch_spec(spec_path))
    return Plot(f"topology_{_safe(chosen)}.png", "topology", render_topology, (data,), {"title": f"trial {chosen}"})


def _topology_sections(df: pd.DataFrame, chosen: str | None, drawn: Plot | None, note: str = "") -> list[Section]:
    """The drawn trial's kept edges and, when trials kept a topology, every trial's topology per task with the
    collapsed ones counted in one line and flagged in the table."""
    kept = has_topology(df)
    if drawn is None and not kept:
        return []
    blocks: list[Block] = [f"Per-task kept edges of trial `{chosen}`{note}.", drawn] if drawn is not None else []
    if not kept:
        return [Section("## Topology", blocks)]
    table = topology_table(df)
    shown = table.assign(collapsed=["**collapsed**" if pd.notna(v) and bool(v) else "" for v in table["collapsed"]])
    blocks += [
        f"**{collapsed_count(df).sentence}**",
        (
            "Per trial and task: kept edges, the longest read-in -> read-out path in edges (0: the task reads a "
            "node's features straight out), read-ins, read-outs, and `shared/<task>` = ops (edges and read-ins) kept "
            "by both tasks. A trial is collapsed when every task keeps 0 edges."
        ),
        Shown(shown, index=False),
    ]
    return [Section("## Topology", blocks, [Table("topology", table.set_index(["trial_id", "task"]))])]


def _effect_sections(df: pd.DataFrame, by: str, trivial: Trivial) -> list[Section]:
    """The effect an ablation of ``by`` exists to show (none when ``by`` is not flow_width, lambda_sq or tau)."""
    heading = f"## Effect of {axis_name(by)}"
    try:
        measures = ablation_measures(df, by)
        if measures is None:
            return []
        table = effect_table(df, by, measures)
    except AnalysisError as e:
        return [Section(heading, [f"(not measured: {e})"])]
    text = (
        f"Valid `supernet` trials by `{axis_name(by)}`: each seed's median at a value, then the median, min and max "
        "across seeds. `kept_edges` = distinct kept edges over all tasks; `search_s_per_epoch` (or `search_s` when "
        "the table lacks `config/search.epochs`) = search-stage seconds per epoch (per trial); reused search stages "
        "are left out."
    )
    refs = {m: objective_reference(m, trivial) for m in measures}
    plot = Plot("effect.png", "effect", render_effects, (table, measures), {"refs": refs})
    return [Section(heading, [text, Shown(table), plot], [Table("effect", table)])]
