"""The figures fit their canvas: no title or caption runs past the figure's edges, points and curves that coincide
stay visible, and a topology is drawn with its tasks' full names on a canvas sized to its graph."""

from __future__ import annotations

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.text import Text

from analysis.learning import LearningCurves
from analysis.plots import (
    FrontPlotData,
    FrontSeries,
    delta_mtl_caption,
    render_effects,
    render_fronts,
    render_learning_curves,
    render_topology,
    topology_data,
)


def _texts(fig: Figure) -> list[Text]:
    """The texts the figure shows: its own (suptitle, supxlabel, ...), and per axes its titles, texts, legend and,
    when its axis is on, the tick and axis labels."""
    texts = list(fig.texts) + [t for t in (fig._suptitle, fig._supxlabel, fig._supylabel) if t is not None]
    for ax in fig.axes:
        texts += [ax.title, ax._left_title, ax._right_title, *ax.texts]
        if ax.get_legend() is not None:
            texts += ax.get_legend().get_texts()
        if ax.axison:
            drawn = [tick.label1 for axis in (ax.xaxis, ax.yaxis) for tick in axis._update_ticks()]  # in view
            texts += [ax.xaxis.label, ax.yaxis.label, *drawn]
    return [t for t in texts if t.get_visible() and t.get_text().strip()]


def _assert_fits(fig: Figure) -> None:
    """Every visible text lies inside the figure (in display units, a pixel of slack)."""
    renderer = fig.canvas.get_renderer()
    fig.draw(renderer)
    w, h = fig.bbox.width, fig.bbox.height
    for t in _texts(fig):
        b = t.get_window_extent(renderer)
        assert b.x0 >= -1 and b.y0 >= -1 and b.x1 <= w + 1 and b.y1 <= h + 1, (t.get_text(), b.bounds, (w, h))


def _fronts_data(caption: str) -> FrontPlotData:
    pts = np.array([[1e4, -5.0], [2e4, -2.0], [3e4, 1.0]])
    return FrontPlotData(
        x_label="params (↓ better)",
        y_label="delta_mtl (↑ better)",
        title="Pareto fronts by flow_width",
        series=[FrontSeries("flow_width=2", pts, pts)],
        baselines={"single_task": np.array([[3e4, 0.0]]), "hard_sharing": np.array([[3e4, 0.0]])},  # coincide
        caption=caption,
    )


def test_fronts_caption_fits_and_coinciding_baselines_stay_visible(tmp_path):
    caption = delta_mtl_caption(["delta_mtl"])
    fig = render_fronts(_fronts_data(caption), tmp_path / "f.png")
    _assert_fits(fig)
    assert (tmp_path / "f.png").is_file()
    assert any(t.get_text().replace("\n", " ") == caption for t in _texts(fig))  # wrapped, every word kept
    ax = fig.axes[0]
    marks = {c.get_label(): c for c in ax.collections if c.get_label() in ("single-task (T nets)", "hard sharing")}
    assert set(marks) == {"single-task (T nets)", "hard sharing"}
    star, square = marks["single-task (T nets)"], marks["hard sharing"]
    for c in (star, square):  # hollow: the one drawn first still shows through the one drawn over it
        face = c.get_facecolor()
        assert len(face) == 0 or (face[:, 3] == 0).all()
    assert star.get_sizes()[0] > square.get_sizes()[0]  # nested: the larger one first
    assert star.zorder <= square.zorder and ax.collections.index(star) < ax.collections.index(square)
    assert not np.allclose(star.get_edgecolor()[0], square.get_edgecolor()[0])


def _curves(n_metrics: int) -> LearningCurves:
    """Two modes whose curves are the same numbers on every metric (both at the trivial predictor)."""
    rows = []
    for mode in ("supernet", "single_task", "hard_sharing"):
        for k in range(n_metrics):
            for step in (1, 2, 3):
                rows.append(
                    {
                        "mode": mode,
                        "task": f"task{k}",
                        "metric": "miou",
                        "step": step,
                        "stage": "warmup",
                        "median": 0.2 if mode != "supernet" else 0.1 * step,
                        "min": 0.2,
                        "max": 0.3,
                        "n_trials": 1,
                    }
                )
    return LearningCurves(pd.DataFrame(rows), {"supernet": [("warmup", 1.0)]}, {"task0/miou": 0.2})


def test_learning_curves_title_fits_and_coinciding_curves_differ_in_style(tmp_path):
    for n in (1, 3):
        fig = render_learning_curves(_curves(n), tmp_path / f"lc{n}.png")
        _assert_fits(fig)
        assert len(fig.axes) == n
    ax = fig.axes[0]
    lines = {ln.get_label().rsplit(" (", 1)[0]: ln for ln in ax.get_lines() if not ln.get_label().startswith("_")}
    single, hard = lines["single-task (T nets)"], lines["hard sharing"]
    np.testing.assert_array_equal(single.get_ydata(), hard.get_ydata())  # the same numbers ...
    first = lines["search (supernet)"]
    assert first.get_linestyle() == "-" and hard.get_linestyle() != "-"  # ... the later one dashed
    assert len({first.get_linestyle(), single.get_linestyle(), hard.get_linestyle()}) == 3
    assert len({first.get_marker(), single.get_marker(), hard.get_marker()}) == 3
    assert hard.get_linewidth() < single.get_linewidth() and hard.get_zorder() > single.get_zorder()


SPEC = {
    "n_nodes": 3,
    "flow_width": 1,
    "tasks": {
        "segmentation": {"edges": [[1, 2], [2, 3]], "read_in": [1], "read_out": [3]},
        "depth": {"edges": [[1, 3]], "read_in": [1], "read_out": [3]},
    },
}


def test_topology_writes_full_task_names_on_a_canvas_sized_to_the_graph(tmp_path):
    fig = render_topology(topology_data(SPEC), tmp_path / "t.png", title="trial x")
    _assert_fits(fig)
    texts = [t.get_text() for t in _texts(fig)]
    assert texts.count("segmentation") >= 3 and texts.count("depth") >= 3  # panel titles and head labels
    renderer = fig.canvas.get_renderer()
    for ax in fig.axes:  # the drawing fills its panel: no wide empty margins
        drawn = ax.get_tightbbox(renderer)
        box = ax.get_window_extent(renderer)
        assert drawn.width >= 0.8 * box.width and drawn.height >= 0.6 * box.height, (drawn.bounds, box.bounds)
    used = fig.get_tightbbox(renderer)  # inches
    w, h = fig.get_size_inches()
    assert used.width * used.height >= 0.6 * w * h
    # a bigger graph gets a bigger canvas
    big = {**SPEC, "n_nodes": 8}
    assert render_topology(topology_data(big)).get_size_inches()[0] > w


def test_effects_title_fits_with_one_measure(tmp_path):
    table = pd.DataFrame(
        {"params_union median": [1.0, 2.0], "params_union min": [0.9, 1.8], "params_union max": [1.1, 2.2]},
        index=pd.Index([1, 2], name="flow_width"),
    )
    _assert_fits(render_effects(table, ["params_union"], tmp_path / "e.png"))
