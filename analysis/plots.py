"""Plots as PNG: fronts per group with baseline points (and rings around the trials a scheduler stopped), the
per-task topologies of one trial, median attainment surfaces and the EAF difference (data from
:mod:`analysis.stats`), ablation effects (:mod:`analysis.effects`) and learning curves (:mod:`analysis.learning`).
Axes that are task metrics carry the trivial predictor as a dashed line.

Compute, then render: ``front_plot_data`` / ``topology_data`` return plain data that tests assert on;
``render_fronts`` / ``render_topology`` only draw it. Figures are built with ``matplotlib.figure.Figure``
and the Agg canvas (no pyplot, no global backend state), so this works headless and inside notebooks.
"""

from __future__ import annotations

import textwrap
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from os import PathLike
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.patches import FancyArrowPatch

from analysis.compare import FrontComparison
from analysis.learning import LearningCurves, objective_reference
from analysis.stats import EafData
from analysis.stopping import STAGE, STEP, rung_label, stopped_trials

# mode -> (marker, legend name, size in points^2, edge colour). Hollow, from the largest to the smallest and drawn in
# this order, so points that coincide (e.g. single-task and hard sharing at the same cost and delta_mtl) nest and
# all stay visible.
_BASELINE_STYLE = {
    "single_task": ("*", "single-task (T nets)", 260, "#8b0000"),
    "hard_sharing": ("s", "hard sharing", 120, "#00008b"),
    "full_supernet": ("D", "full supernet", 70, "#006400"),
    "random_arch": ("x", "random architectures", 40, "0.25"),
}


# ----------------------------------------------------------------------------- fronts


@dataclass
class FrontSeries:
    """One group: all its points and its front (both ``(n, 2)`` as (x, y), front sorted by x)."""

    label: str
    points: np.ndarray
    front: np.ndarray


@dataclass
class FrontPlotData:
    """What the fronts figure shows: x = the second objective (cost), y = the first (quality)."""

    x_label: str
    y_label: str
    title: str
    series: list[FrontSeries]
    baselines: dict[str, np.ndarray] = field(default_factory=dict)  # mode -> (n, 2)
    x_log: bool = False
    x_ref: float | None = None  # trivial reference of the x objective (a task metric), drawn dashed
    y_ref: float | None = None
    caption: str = ""  # e.g. that delta_mtl is against the single-task baselines
    # early-stopped contenders by the rung they were stopped at (analysis.stopping.rung_label) -> (n, 2),
    # ringed over their group's points; in the order of the rungs' steps
    stopped: dict[str, np.ndarray] = field(default_factory=dict)


def front_plot_data(
    cmp: FrontComparison,
    baselines: pd.DataFrame | None = None,
    trivial: Mapping[str, Mapping[str, float]] | None = None,
) -> FrontPlotData:
    """Plot data of a comparison's fronts (first two objectives) and of baseline rows (by mode).

    ``trivial`` ({task: {metric: value}}, e.g. ``df.attrs["trivial"]``) gives the dashed reference line of an
    objective that is a task metric; a ``delta_mtl`` objective gets a caption saying what it is measured against.
    """
    if len(cmp.objectives) < 2:
        raise ValueError("a fronts plot needs at least two objectives")
    yo, xo = cmp.objectives[0], cmp.objectives[1]

    def xy(frame: pd.DataFrame) -> np.ndarray:
        return frame[[xo.column, yo.column]].to_numpy(dtype=float, na_value=np.nan).reshape(-1, 2)

    series = []
    for label in cmp.groups:
        pts = xy(cmp.points[label])
        pts = pts[np.lexsort((pts[:, 1], pts[:, 0]))]
        front = xy(cmp.fronts[label])
        front = front[np.lexsort((front[:, 1], front[:, 0]))]
        name = f"{cmp.by[0]}={label}" if len(cmp.by) == 1 else label
        series.append(FrontSeries(name, pts, front))
    marks = {}
    if baselines is not None and len(baselines) and {xo.column, yo.column} <= set(baselines.columns):
        for mode in sorted(baselines["mode"].unique()):
            p = xy(baselines[baselines["mode"] == mode])
            p = p[~np.isnan(p).any(axis=1)]
            if len(p):
                marks[mode] = p[np.lexsort((p[:, 1], p[:, 0]))]
    stopped = {}
    frames = [f for f in cmp.points.values() if len(f)]
    rows = stopped_trials(pd.concat(frames, ignore_index=True)) if frames else pd.DataFrame()
    for (step, stage), g in rows.groupby([STEP, rows[STAGE].fillna("")], sort=True) if len(rows) else ():
        p = xy(g)
        stopped[rung_label(step, stage or None)] = p[np.lexsort((p[:, 1], p[:, 0]))]
    xs = np.concatenate([s.points[:, 0] for s in series] + [m[:, 0] for m in marks.values()])
    x_log = bool((xs > 0).all() and xs.max() / xs.min() > 30)
    arrow = {"max": "↑", "min": "↓"}
    trivial = trivial or {}
    return FrontPlotData(
        x_label=f"{xo.name} ({arrow[xo.sense]} better)",
        y_label=f"{yo.name} ({arrow[yo.sense]} better)",
        title=f"Pareto fronts by {', '.join(cmp.by)}",
        series=series,
        baselines=marks,
        x_log=x_log,
        x_ref=objective_reference(xo.column, trivial),
        y_ref=objective_reference(yo.column, trivial),
        caption=delta_mtl_caption([o.column for o in cmp.objectives]),
        stopped=stopped,
    )


def delta_mtl_caption(columns: Sequence[str]) -> str:
    """The caption line of a figure or table with a ``delta_mtl`` axis ('' without one)."""
    if "delta_mtl" not in columns:
        return ""
    return (
        "delta_mtl is against the single-task baselines (0 = the T single-task networks), not against the "
        "trivial predictors; baselines that did not learn are refused."
    )


def _draw_refs(ax, x_ref: float | None, y_ref: float | None) -> None:
    """Dashed lines at the trivial references of the axes that are task metrics."""
    if x_ref is not None:
        ax.axvline(x_ref, color="0.35", ls="--", lw=1.0, label=f"trivial predictor ({x_ref:.4g})")
    if y_ref is not None:
        ax.axhline(y_ref, color="0.35", ls="--", lw=1.0, label=f"trivial predictor ({y_ref:.4g})")


def render_fronts(data: FrontPlotData, path: str | PathLike[str] | None = None) -> Figure:
    """Draw every group's points (faint) and front (step line), the baseline markers, and a ring around each
    early-stopped trial (one colour per rung)."""
    fig = Figure(figsize=(7, 4.8), layout="constrained")
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    colors = _colors(len(data.series))
    for s, c in zip(data.series, colors):
        ax.scatter(s.points[:, 0], s.points[:, 1], s=14, color=c, alpha=0.3, linewidths=0)
        ax.step(s.front[:, 0], s.front[:, 1], where="post", color=c, lw=1.5)
        ax.scatter(s.front[:, 0], s.front[:, 1], s=30, color=c, edgecolors="k", linewidths=0.5, label=s.label, zorder=3)
    order = [
        *(m for m in _BASELINE_STYLE if m in data.baselines),
        *(m for m in data.baselines if m not in _BASELINE_STYLE),
    ]
    for mode in order:
        marker, name, size, edge = _BASELINE_STYLE.get(mode, ("X", mode, 50, "0.2"))
        p = data.baselines[mode]
        # an 'x' is a line marker (no inside, drawn in its face colour); the others are outlines
        colour = {"color": edge} if marker == "x" else {"facecolors": "none", "edgecolors": edge}
        ax.scatter(p[:, 0], p[:, 1], marker=marker, s=size, lw=1.4, label=name, zorder=4, **colour)
    for (label, p), shade in zip(data.stopped.items(), np.linspace(0.0, 0.6, max(1, len(data.stopped)))):
        ax.scatter(
            p[:, 0],
            p[:, 1],
            s=70,
            facecolors="none",
            edgecolors=(0.8, shade, shade),
            linewidths=1.3,
            label=f"{label}: {len(p)}",
            zorder=5,
        )
    _draw_refs(ax, data.x_ref, data.y_ref)
    if data.x_log:
        ax.set_xscale("log")
    ax.set(xlabel=data.x_label, ylabel=data.y_label, title=_wrap(data.title, fig, 12, 0.9))
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="best")
    if data.caption:  # wrapped to the figure's width: the constrained layout makes room for its lines
        fig.supxlabel(_wrap(data.caption, fig, 7), fontsize=7, color="0.3")
    return _save(fig, path)


# ----------------------------------------------------------------------------- topologies


@dataclass(frozen=True)
class TopoEdge:
    """An edge of the drawn graph and the tasks that kept it (several tasks = shared)."""

    src: str
    dst: str
    tasks: tuple[str, ...]

    @property
    def shared(self) -> bool:
        return len(self.tasks) > 1


@dataclass
class TopologyData:
    """Nodes ('stem', '1'..'N', 'head:<task>') with positions, and every kept edge with its tasks."""

    n_nodes: int
    tasks: list[str]
    positions: dict[str, tuple[float, float]]
    edges: list[TopoEdge]

    def task_edges(self, task: str) -> list[TopoEdge]:
        return [e for e in self.edges if task in e.tasks]

    def task_nodes(self, task: str) -> set[str]:
        return {n for e in self.task_edges(task) for n in (e.src, e.dst)}


def topology_data(spec: dict) -> TopologyData:
    """Graph of an arch spec: stem -> read_in nodes, kept edges i->j, read_out nodes -> the task's head."""
    n = int(spec["n_nodes"])
    tasks = list(spec["tasks"])
    kept: dict[tuple[str, str], list[str]] = {}
    for t in tasks:
        s = spec["tasks"][t]
        pairs = [("stem", str(j)) for j in s["read_in"]] + [(str(i), str(j)) for i, j in s["edges"]]
        pairs += [(str(j), f"head:{t}") for j in s["read_out"]]
        for p in dict.fromkeys(pairs):
            kept.setdefault(p, []).append(t)
    order = {"stem": (0, ""), **{str(j): (j, "") for j in range(1, n + 1)}, **{f"head:{t}": (n + 1, t) for t in tasks}}
    edges = [
        TopoEdge(a, b, tuple(ts))
        for (a, b), ts in sorted(kept.items(), key=lambda kv: (order[kv[0][0]], order[kv[0][1]]))
    ]
    pos = {"stem": (0.0, 0.0), **{str(j): (float(j), 0.35 * (-1) ** j) for j in range(1, n + 1)}}
    heads = np.linspace(1.0, -1.0, len(tasks)) if len(tasks) > 1 else np.zeros(1)
    pos |= {f"head:{t}": (float(n + 1), float(y)) for t, y in zip(tasks, heads)}
    return TopologyData(n, tasks, pos, edges)


_UNIT_IN = 0.5  # inches per unit of the topology's coordinates (node spacing 1): the canvas follows the graph
_NODE_S = 260  # node marker area in points^2
_LABEL_PT = 7  # font size of node labels and task names


def _bend(e: TopoEdge, data: TopologyData) -> float:
    """Arc of an edge: long ones curve around the nodes they pass."""
    (x0, _), (x1, _) = data.positions[e.src], data.positions[e.dst]
    return 0.25 if (x1 - x0) > 1 else 0.0


def _topology_limits(data: TopologyData) -> tuple[tuple[float, float], tuple[float, float]]:
    """(xlim, ylim) in data units that hold every node, the furthest point of every arc (the midpoint of an arc3
    curve lies rad/2 of the chord's length off the chord) and the task names right of the heads."""
    xs = [x for x, _ in data.positions.values()]
    ys = [y for _, y in data.positions.values()]
    for e in data.edges:
        (x0, y0), (x1, y1) = data.positions[e.src], data.positions[e.dst]
        rad = _bend(e, data)
        xs.append((x0 + x1) / 2 + rad / 2 * (y1 - y0))
        ys.append((y0 + y1) / 2 - rad / 2 * (x1 - x0))
    name_in = max((len(t) for t in data.tasks), default=0) * 0.6 * _LABEL_PT / 72  # average glyph: 0.6 em
    pad = 0.32  # a node's radius (about 0.22 units) and a margin
    return (min(xs) - pad, max(xs) + pad + name_in / _UNIT_IN), (min(ys) - pad, max(ys) + pad)


def _draw_edges(ax, data: TopologyData, edges: list[TopoEdge], task: str | None, colors: dict) -> None:
    for e in edges:
        if task is None:
            color, lw = ("k" if e.shared else colors[e.tasks[0]]), 0.8 + 1.2 * (len(e.tasks) - 1)
        else:
            color, lw = ("k" if e.shared else colors[task]), 1.6
        ax.add_patch(
            FancyArrowPatch(
                data.positions[e.src],
                data.positions[e.dst],
                arrowstyle="-|>",
                mutation_scale=9,
                color=color,
                lw=lw,
                connectionstyle=f"arc3,rad={_bend(e, data)}",
                shrinkA=7,
                shrinkB=7,
            )
        )


def _draw_nodes(ax, data: TopologyData, used: set[str], task: str | None, colors: dict) -> None:
    """Nodes as circles (grey when unused); a head is filled in its task's colour with the task's full name on its
    right."""
    for name, (x, y) in data.positions.items():
        head = name[5:] if name.startswith("head:") else None
        if head is not None and task is not None and head != task:
            continue
        on = name in used
        face = colors.get(head, "w") if head is not None else ("w" if on else "0.9")
        ax.scatter([x], [y], s=_NODE_S, color=face, edgecolors="k" if on else "0.7", zorder=3)
        if head is not None:
            ax.text(x + 0.3, y, head, ha="left", va="center", fontsize=_LABEL_PT, zorder=4)
        else:
            text = "S" if name == "stem" else name
            ax.text(x, y, text, ha="center", va="center", fontsize=_LABEL_PT, zorder=4, color="k" if on else "0.6")


def render_topology(data: TopologyData, path: str | PathLike[str] | None = None, title: str = "") -> Figure:
    """One panel per task (its kept edges: shared ones black, its own in colour) and one with all tasks; every
    panel is sized to the graph (equal units on both axes) with the task names written out."""
    panels = [*data.tasks, None]
    xlim, ylim = _topology_limits(data)
    width, height = (xlim[1] - xlim[0]) * _UNIT_IN, (ylim[1] - ylim[0]) * _UNIT_IN
    fig = Figure(figsize=(max(width, 1.8) * len(panels) + 0.2, height + 0.5 + 0.25 * bool(title)), layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(1, len(panels), squeeze=False)[0]
    colors = dict(zip(data.tasks, _colors(len(data.tasks))))
    for ax, task in zip(axes, panels):
        edges = data.edges if task is None else data.task_edges(task)
        _draw_edges(ax, data, edges, task, colors)
        _draw_nodes(ax, data, {n for e in edges for n in (e.src, e.dst)}, task, colors)
        ax.set_title(_wrap("all tasks (black: shared)" if task is None else task, fig, 9, 1 / len(panels)), fontsize=9)
        ax.set(xlim=xlim, ylim=ylim, aspect="equal")
        ax.set_axis_off()
    if title:
        fig.suptitle(_wrap(title, fig, 10), fontsize=10)
    return _save(fig, path)


# ----------------------------------------------------------------------------- helpers


def _wrap(text: str, fig: Figure, fontsize: float, share: float = 1.0) -> str:
    """``text`` broken into lines that fit ``share`` of the figure's width at ``fontsize`` (an average glyph is
    about 0.55 em wide in the default font): a long title or caption would otherwise run past the canvas's
    edges, which no layout engine shrinks."""
    per_line = max(20, int(share * fig.get_figwidth() * 72 / (0.55 * fontsize)) - 2)
    return textwrap.fill(text, per_line)


def _colors(n: int) -> list:
    from matplotlib import colormaps

    cmap = colormaps["tab10"]
    return [cmap(i % 10) for i in range(n)]


def _save(fig: Figure, path: str | PathLike[str] | None) -> Figure:
    if path is not None:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(path, dpi=110)
    return fig


# ----------------------------------------------------------------------------- attainment, effects

_GROUP_NAMES = {
    "supernet": "search (supernet)",
    "random_arch": "random architectures",
    "hard_sharing": "hard sharing",
    "single_task": "single-task (T nets)",
}


def render_attainment(
    data: EafData, path: str | PathLike[str] | None = None, refs: tuple[float | None, float | None] = (None, None)
) -> Figure:
    """The median attainment surface of every group in one figure (staircase lines in the objectives' units);
    ``refs`` = the trivial references (x, y) of axes that are task metrics, drawn dashed."""
    fig = Figure(figsize=(7, 4.8), layout="constrained")
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    for (g, line), c in zip(data.surfaces.items(), _colors(len(data.surfaces))):
        if len(line):
            ax.plot(line[:, 0], line[:, 1], color=c, lw=1.8, label=f"{_GROUP_NAMES.get(g, g)} ({data.seeds[g]} seeds)")
            ax.scatter(line[1:-1:2, 0], line[1:-1:2, 1], s=18, color=c, zorder=3)
    _draw_refs(ax, *refs)
    ax.set(
        xlim=data.xlim,
        ylim=data.ylim,
        xlabel=data.x_label,
        ylabel=data.y_label,
        title=_wrap("Median attainment surfaces (reached by at least half of the seeds)", fig, 12, 0.9),
    )
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="best")
    return _save(fig, path)


def render_eaf_difference(
    data: EafData, path: str | PathLike[str] | None = None, refs: tuple[float | None, float | None] = (None, None)
) -> Figure:
    """EAF(first of the pair) - EAF(second) as coloured rectangles (red: the first attains more), with both medians
    and the trivial references ``refs`` (x, y) dashed."""
    from matplotlib import colormaps
    from matplotlib.cm import ScalarMappable
    from matplotlib.colors import Normalize
    from matplotlib.patches import Rectangle

    fig = Figure(figsize=(7.6, 4.8), layout="constrained")
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    norm, cmap = Normalize(-1.0, 1.0), colormaps["RdBu_r"]
    for x0, y0, x1, y1, d in data.diff:
        ax.add_patch(Rectangle((x0, y0), x1 - x0, y1 - y0, facecolor=cmap(norm(d)), edgecolor="none"))
    a, b = data.diff_pair
    for g, style in ((a, "-"), (b, "--")):
        line = data.surfaces.get(g)
        if line is not None and len(line):
            ax.plot(line[:, 0], line[:, 1], "k" + style, lw=1.2, label=f"median: {_GROUP_NAMES.get(g, g)}")
    _draw_refs(ax, *refs)
    fig.colorbar(ScalarMappable(norm, cmap), ax=ax, label=f"EAF({a}) - EAF({b})")
    ax.set(
        xlim=data.xlim,
        ylim=data.ylim,
        xlabel=data.x_label,
        ylabel=data.y_label,
        title=_wrap(f"EAF difference {a} - {b} over {data.diff_seeds} common seeds", fig, 12, 0.8),
    )
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="best")
    return _save(fig, path)


def render_effects(
    table: pd.DataFrame,
    measures: list[str],
    path: str | PathLike[str] | None = None,
    refs: Mapping[str, float] | None = None,
) -> Figure:
    """One panel per measure: median across seeds at each axis value, bars from min to max (see analysis.effects);
    ``refs``: measure -> its trivial reference, drawn dashed."""
    from analysis.effects import effect_plot_data

    data = effect_plot_data(table, measures)
    fig = Figure(figsize=(3.3 * len(measures), 3.2), layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(1, len(measures), squeeze=False)[0]
    x = np.arange(len(table))
    labels = [f"{v:g}" if isinstance(v, (float, np.floating)) else str(v) for v in table.index]
    for ax, m in zip(axes, measures):
        med, lo, hi = data[m].T
        ax.errorbar(x, med, yerr=np.vstack([med - lo, hi - med]), fmt="o-", capsize=3, color="C0")
        ax.set_xticks(x, labels)
        if refs and refs.get(m) is not None:
            ax.axhline(refs[m], color="0.35", ls="--", lw=1.0, label="trivial predictor")
            ax.legend(fontsize=7, loc="best")
        ax.set(xlabel=table.index.name or "", title=m)
        ax.grid(alpha=0.3)
    fig.suptitle(_wrap(f"Effect of {table.index.name} (median across seeds, bars: min-max)", fig, 10), fontsize=10)
    return _save(fig, path)


# ----------------------------------------------------------------------------- learning curves

_STAGE_STYLE = {"warmup": "warm-up", "search": "search", "reduction": "reduction", "finetune": "fine-tune"}


def render_learning_curves(data: LearningCurves, path: str | PathLike[str] | None = None) -> Figure:
    """One panel per task metric: each mode's median quality per global step (band: min-max across its trials),
    the trivial predictor dashed, and where the method's stages start as dotted vertical lines."""
    metrics = data.metrics
    fig = Figure(figsize=(4.2 * max(1, len(metrics)), 3.6), layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(1, max(1, len(metrics)), squeeze=False)[0]
    colors = dict(zip(data.modes, _colors(len(data.modes))))
    marks = next(
        (data.boundaries[m] for m in ("supernet", "random_arch", *data.boundaries) if m in data.boundaries), []
    )
    for ax, metric in zip(axes, metrics):
        for i, mode in enumerate(data.modes):
            c = data.curve(mode, metric)
            if c.empty:
                continue
            x = c["step"].to_numpy(float)
            ax.plot(
                x,
                c["median"].to_numpy(float),
                label=f"{_GROUP_NAMES.get(mode, mode)} ({int(c['n_trials'].max())})",
                color=colors[mode],
                **_curve_style(i),
            )
            ax.fill_between(x, c["min"].to_numpy(float), c["max"].to_numpy(float), color=colors[mode], alpha=0.15, lw=0)
        for _, step in marks[1:]:
            ax.axvline(step - 0.5, color="0.5", ls=":", lw=1.0)
        for stage, step in marks:
            ax.text(
                step,
                1.0,
                " " + _STAGE_STYLE.get(stage, stage),
                transform=ax.get_xaxis_transform(),
                fontsize=7,
                va="top",
                ha="left",
                color="0.4",
            )
        if metric in data.trivial:
            ax.axhline(
                data.trivial[metric], color="0.2", ls="--", lw=1.0, label=f"trivial ({data.trivial[metric]:.4g})"
            )
        ax.set(xlabel="global step (epoch)", title=metric)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7, loc="best")
    title = "Validation quality per epoch (median across trials, band: min-max); dotted: stage starts"
    fig.suptitle(_wrap(title, fig, 9), fontsize=9)
    return _save(fig, path)


# the i-th mode's curve: solid first, the later ones dashed, dash-dotted, ..., each thinner with its own marker
# (hollow after the first), so a curve that coincides with one drawn before it still shows both
_LINESTYLES = ("-", "--", "-.", (0, (1, 1.5)), (0, (5, 1.5, 1, 1.5, 1, 1.5)))
_MARKERS = ("o", "s", "^", "D", "v", "P")


def _curve_style(i: int) -> dict:
    return {
        "ls": _LINESTYLES[i % len(_LINESTYLES)],
        "lw": max(0.9, 2.6 - 0.5 * i),
        "marker": _MARKERS[i % len(_MARKERS)],
        "ms": max(2.5, 5.0 - 0.7 * i),
        "mfc": None if i == 0 else "none",
        "zorder": 2 + i,
    }
