"""Plot data, the report command (as a subprocess) and the notebook, on generated experiments."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from analysis_fixtures import write_experiment

from analysis import compare_fronts, load_results
from analysis.compare import baseline_points
from analysis.plots import front_plot_data, render_fronts, render_topology, topology_data
from analysis.report import markdown_table

ROOT = Path(__file__).resolve().parents[1]
PNG = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def exp(tmp_path_factory) -> Path:
    return write_experiment(tmp_path_factory.mktemp("rep"), seeds=(0, 1), random_archs=2)


def _cli(*args: str | Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "MPLBACKEND": "Agg"}
    return subprocess.run(
        [sys.executable, "-m", "analysis", *map(str, args)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


# ----------------------------------------------------------------------------- plot data


def test_front_plot_data(exp):
    df = load_results(exp)
    cmp = compare_fronts(df, by="flow_width")
    data = front_plot_data(cmp, baseline_points(df))
    assert [s.label for s in data.series] == ["flow_width=1", "flow_width=2", "flow_width=3"]
    for s, g in zip(data.series, cmp.groups):
        # x = params (cost), y = delta_mtl (quality); along a front, more cost buys more quality
        assert np.all(np.diff(s.front[:, 0]) >= 0) and np.all(np.diff(s.front[:, 1]) >= 0)
        assert len(s.front) == len(cmp.fronts[g]) and len(s.points) == len(cmp.points[g])
    assert set(data.baselines) == {"single_task", "hard_sharing", "full_supernet"}
    assert (data.baselines["single_task"][:, 1] == 0).all()  # the T single-task nets: delta_mtl 0 by definition
    assert data.x_label.startswith("params") and data.y_label.startswith("delta_mtl")
    fig = render_fronts(data, exp / "f.png")
    assert (exp / "f.png").read_bytes()[:8] == PNG and len(fig.axes) == 1


def test_topology_data_hand_spec(tmp_path):
    spec = {
        "n_nodes": 3,
        "flow_width": 1,
        "tasks": {
            "a": {"edges": [[1, 2], [2, 3]], "read_in": [1], "read_out": [3]},
            "b": {"edges": [[1, 2], [1, 3]], "read_in": [1, 2], "read_out": [3]},
        },
    }
    d = topology_data(spec)
    by_pair = {(e.src, e.dst): e.tasks for e in d.edges}
    assert by_pair == {
        ("stem", "1"): ("a", "b"),
        ("stem", "2"): ("b",),
        ("1", "2"): ("a", "b"),
        ("1", "3"): ("b",),
        ("2", "3"): ("a",),
        ("3", "head:a"): ("a",),
        ("3", "head:b"): ("b",),
    }
    assert {(e.src, e.dst) for e in d.edges if e.shared} == {("stem", "1"), ("1", "2")}
    assert d.task_nodes("a") == {"stem", "1", "2", "3", "head:a"}
    assert set(d.positions) == {"stem", "1", "2", "3", "head:a", "head:b"}
    assert d.positions["stem"][0] < d.positions["1"][0] < d.positions["3"][0] < d.positions["head:a"][0]
    fig = render_topology(d, tmp_path / "t.png")
    assert len(fig.axes) == 3  # one panel per task and one with all tasks
    assert (tmp_path / "t.png").read_bytes()[:8] == PNG


def test_markdown_table():
    t = pd.DataFrame({"x": [1.23456, np.nan], "name": ["a|b", "c"]}, index=pd.Index(["r1", "r2"], name="g"))
    assert markdown_table(t).splitlines() == [
        "| g | x | name |",
        "|---|---|---|",
        "| r1 | 1.235 | a\\|b |",
        "| r2 |  | c |",
    ]
    assert markdown_table(t, index=False).splitlines()[0] == "| x | name |"


def test_render_markdown_puts_a_blank_line_after_every_block_and_lists_the_csvs(tmp_path):
    from analysis.report import Plot, Report, Section, Shown, Table, render_markdown, write_figures, write_tables

    t = pd.DataFrame({"x": [1.5]}, index=pd.Index(["a"], name="g"))
    drawn = []
    plot = Plot(
        "f.png", "a figure", lambda data, path, scale=1: drawn.append((data, path, scale)), ("d",), {"scale": 2}
    )
    report = Report(
        "Report: x",
        [
            Section(None, ["intro"]),
            Section("## One", ["text", Shown(t), plot], [Table("front", t), Table("comparison", t)]),
            Section(None, ["(none)"]),
        ],
    )
    assert render_markdown(report) == "\n".join(
        ["# Report: x", "", "intro", "", "## One", "", "text", "", "| g | x |", "|---|---|", "| a | 1.5 |", ""]
        + ["![a figure](f.png)", "", "(none)", "", "CSV files: `comparison.csv`, `front.csv`", ""]
    )
    write_tables(report, tmp_path)
    write_figures(report, tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["comparison.csv", "front.csv"]  # in CSV_ORDER
    assert drawn == [("d", tmp_path / "f.png", 2)]
    with pytest.raises(ValueError):  # a table CSV_ORDER does not name is an error, not a file left unlisted
        _ = Report("x", [Section(None, [], [Table("unlisted", t)])]).tables


def test_the_report_object_is_what_the_folder_holds(exp, tmp_path):
    from analysis.report import CSV_ORDER, build_report, render_markdown, write_report

    files = set(exp.rglob("*"))
    report = build_report(exp)
    assert set(exp.rglob("*")) == files  # computing writes nothing
    out = write_report(exp, out=tmp_path / "r")
    md = (out / "report.md").read_text()
    assert md == render_markdown(report)
    names = [t.name for t in report.tables]
    assert len(names) == len(set(names)) and names == sorted(names, key=CSV_ORDER.index)
    assert {p.stem for p in out.glob("*.csv")} == set(names)
    assert md.rstrip().splitlines()[-1] == "CSV files: " + ", ".join(f"`{n}.csv`" for n in names)
    for t in report.tables:
        assert len(pd.read_csv(out / f"{t.name}.csv")) == len(t.frame)
    assert {p.name for p in out.glob("*.png")} == {f.file for f in report.figures}
    assert all(f"![{f.alt}]({f.file})" in md for f in report.figures)


# ----------------------------------------------------------------------------- the command


def test_report_command_writes_files(exp, tmp_path):
    out = tmp_path / "report"
    r = _cli(exp, "--by", "flow_width", "--objectives", "delta_mtl:max,params:min", "--out", out)
    assert r.returncode == 0, r.stderr
    assert Path(r.stdout.strip()) == out / "report.md"
    names = {p.name for p in out.iterdir()}
    assert {
        "report.md",
        "fronts.png",
        "comparison.csv",
        "coverage.csv",
        "per_seed.csv",
        "front.csv",
        "baselines.csv",
    } <= names
    assert any(n.startswith("topology_") and n.endswith(".png") for n in names)
    assert (out / "fronts.png").read_bytes()[:8] == PNG
    # the CSV holds the same numbers as the library call
    expected = compare_fronts(load_results(exp), by="flow_width").table
    got = pd.read_csv(out / "comparison.csv", index_col="group")
    np.testing.assert_allclose(got["hypervolume"].to_numpy(), expected["hypervolume"].to_numpy(), rtol=1e-9)
    md = (out / "report.md").read_text()
    assert "## Comparison by group" in md and "![fronts](fronts.png)" in md
    df = load_results(exp)
    (errored,) = df.loc[df["status"] == "errored", "trial_id"]
    assert f"| {errored} | errored |" in md  # listed as not valid
    assert f"| 1 | 1 | {expected.loc['1', 'trials']} |" in md


def test_report_opens_with_the_answer_and_ends_with_the_effect(tmp_path):
    from analysis import write_report

    exp = write_experiment(
        tmp_path,
        seeds=tuple(range(6)),
        flow_widths=(1, 2),
        lambda_sqs=(0.0, 0.1),
        taus=(0.3,),
        random_archs=3,
        random_gain=-0.05,
    )
    out = write_report(exp, by="flow_width")
    md = (out / "report.md").read_text()
    sections = [line for line in md.splitlines() if line.startswith("## ")]
    assert sections[0] == "## Does the search beat random architectures?" and sections[-1] == "## Effect of flow_width"
    first = md.split("## Does the search beat random architectures?")[1].split("## ")[0]
    assert "**Yes: the search beats random architectures of the same size" in first and "n = 6 paired seeds" in first
    assert "![median attainment surfaces](attainment.png)" in first and "![EAF difference](eaf_difference.png)" in first
    for name in ("attainment.png", "eaf_difference.png", "effect.png"):
        assert (out / name).read_bytes()[:8] == PNG
    hv = pd.read_csv(out / "seed_hypervolumes.csv")
    assert set(hv["group"]) == {"supernet", "random_arch", "hard_sharing", "single_task"} and hv["seed"].nunique() == 6
    effect = pd.read_csv(out / "effect.csv", index_col="flow_width")
    assert (
        effect.index.tolist() == [1, 2]
        and "params_union median" in effect.columns
        and "search_s median" in effect.columns
    )
    assert (effect["params_union median"].diff().dropna() > 0).all()  # a wider flow keeps more parameters
    # without random rows: one line that says so and how to add them, and no EAF figures
    exp2 = write_experiment(tmp_path, name="plain", seeds=(0, 1))
    md2 = (write_report(exp2, by="n_nodes") / "report.md").read_text()
    first2 = md2.split("## Does the search beat random architectures?")[1].split("## ")[0]
    assert "no random_arch rows" in first2 and "`sweep.random_archs: k`" in first2
    assert first2.count("random_arch rows") == 1 and "attainment.png" not in first2
    assert "## Effect of" not in md2  # n_nodes is not an ablation with a stated effect


def test_report_default_out_and_grouping_by_two_columns(tmp_path):
    exp = write_experiment(tmp_path, seeds=(0,))
    from analysis.__main__ import main  # in-process: the subprocess path is covered above

    assert (
        main(
            [
                str(exp),
                "--by",
                "lambda_sq,tau",
                "--objectives",
                "metric/depth/abs_err,flops",
                "--budgets",
                "flops=3e8,6e8",
            ]
        )
        == 0
    )
    table = pd.read_csv(exp / "report" / "comparison.csv", index_col="group")
    assert len(table) == 6 and "lambda_sq=0.0, tau=0.3" in table.index
    assert list(table.columns[-2:]) == [
        "best metric/depth/abs_err @ flops<=3e+08",
        "best metric/depth/abs_err @ flops<=6e+08",
    ]


@pytest.mark.parametrize(
    "case, message",
    [
        ("missing", "does not exist"),
        ("empty", "no results.parquet"),
        ("corrupt", "is not a readable Parquet file"),
    ],
)
def test_report_command_errors_are_messages(tmp_path, capsys, case, message):
    """Unreadable input: one line on stderr, exit 2, no report."""
    if case == "missing":
        path = tmp_path / "nope"
    elif case == "empty":
        path = tmp_path / "empty"
        path.mkdir()
    else:
        path = tmp_path / "corrupt"
        path.mkdir()
        (path / "results.parquet").write_bytes(b"PAR1 not a parquet file")
    if case == "missing":  # one case through a real process: exit status and no traceback
        r = _cli(path)
        code, err = r.returncode, r.stderr
        assert "Traceback" not in err
    else:
        from analysis.__main__ import main

        code, err = main([str(path)]), capsys.readouterr().err
    assert code == 2
    assert err.startswith("error: ") and message in err
    assert not (path / "report").exists()


def _all_supernets_errored(path: Path) -> None:
    import pyarrow.parquet as pq

    df = pd.read_parquet(path / "results.parquet")
    table = pq.read_table(path / "results.parquet")
    status = np.where(df["mode"] == "supernet", "errored", df["status"])
    table = table.set_column(table.schema.get_field_index("status"), "status", [status.tolist()])
    pq.write_table(table, path / "results.parquet")


def _first_lines(md: str) -> str:
    """What report.md says before its source line and first section: its conclusion."""
    return md.split("Source: ")[0]


@pytest.mark.parametrize(
    "case, messages",
    [
        ("no_baseline", ["delta_mtl is unavailable", "no valid single_task baseline", "--objectives metric/"]),
        ("all_errored", ["no valid supernet trials", "No supernet trial finished (", "errored"]),
    ],
)
def test_a_report_without_a_comparison_says_why_first(tmp_path, capsys, case, messages):
    """A comparison that cannot be made is a report that says so, not a failed command."""
    if case == "no_baseline":
        path = write_experiment(tmp_path, seeds=(0,), baselines=False)
    else:
        path = write_experiment(tmp_path, seeds=(0,))
        _all_supernets_errored(path)
    from analysis.__main__ import main

    assert main([str(path), "--objectives", "delta_mtl:max,params:min"]) == 0, capsys.readouterr().err
    md = (path / "report" / "report.md").read_text()
    first = _first_lines(md)
    assert first.splitlines()[2].startswith("**No comparison: no valid supernet trials with values for")
    assert all(m in first for m in messages), first
    headings = [line for line in md.splitlines() if line.startswith("## ")]
    assert "## Trials" in headings and "## Fronts" not in headings and "## Comparison by group" not in headings
    assert not (path / "report" / "fronts.png").exists()


def _nothing_learned(tmp_path: Path) -> Path:
    """A generated experiment whose every trial ends at its trivial predictor (the learned flags recomputed)."""
    from analysis_fixtures import TRIVIAL_BY_KIND, apply_learned, write_results

    exp = write_experiment(tmp_path, name="flat", seeds=(0,), taus=(0.3,))
    df = pd.read_parquet(exp / "results.parquet")
    for task, kind in {"segmentation": "segmentation", "depth": "depth", "normal": "normal"}.items():
        for metric, value in TRIVIAL_BY_KIND[kind].items():
            col = f"metric/{task}/{metric}"
            df[col] = np.where(df[col].notna(), value, np.nan)
    write_results(apply_learned(df.drop(columns=["learned"])), exp / "results.parquet")
    return exp


def test_a_report_where_nothing_learned_says_so_first_and_exits_0(tmp_path):
    exp = _nothing_learned(tmp_path)
    out = tmp_path / "rep"
    r = _cli(exp, "--out", out)
    assert r.returncode == 0, r.stderr
    assert Path(r.stdout.strip()) == out / "report.md" and not r.stderr.strip()
    md = (out / "report.md").read_text()
    first = _first_lines(md)
    assert "**No comparison: no valid supernet trials with values for ['delta_mtl', 'params'].**" in first
    assert "Every trial is at its trivial predictor" in first and "trains too briefly to learn" in first
    headings = [line for line in md.splitlines() if line.startswith("## ")]
    for h in ("## Trivial references", "## Trials", "## Learning curves", "## Topology"):
        assert h in headings, headings
    assert "## Fronts" not in headings and "## Does the search beat random architectures?" not in headings
    n_finished = int((load_results(exp, delta_mtl=False)["status"] == "finished").sum())
    assert len(pd.read_csv(out / "not_learned.csv")) == n_finished  # every finished (judged) trial listed
    assert {"trivial.csv", "not_learned.csv", "learning_curves.csv", "learning_curves.png"} <= {
        p.name for p in out.iterdir()
    }
    assert "(the first valid supernet trial)" in md and any(out.glob("topology_*.png"))


def test_a_report_with_a_comparison_opens_with_its_conclusion(exp, tmp_path):
    from analysis.report import write_report

    md = (write_report(exp, out=tmp_path / "r") / "report.md").read_text()
    first = _first_lines(md)
    assert first.splitlines()[2].startswith("**Conclusion: ")
    assert "compared by `flow_width`; the largest hypervolume is that of `flow_width=" in first
    assert "Search against random architectures: Not decidable" in first


def test_a_bad_grouping_column_is_still_an_error_without_a_comparison(tmp_path, capsys):
    from analysis.__main__ import main

    path = write_experiment(tmp_path, seeds=(0,), baselines=False)
    assert main([str(path), "--by", "nope"]) == 2
    assert "cannot group by ['nope']" in capsys.readouterr().err


def test_report_without_baselines_when_delta_mtl_is_not_an_objective(tmp_path):
    from analysis import write_report

    exp = write_experiment(tmp_path, seeds=(0,), baselines=False)
    out = write_report(exp, objectives="metric/segmentation/miou:max,params:min")
    front = pd.read_csv(out / "front.csv")
    assert len(front) and "delta_mtl" not in front.columns


# ----------------------------------------------------------------------------- the notebook


def test_notebook_executes(exp, tmp_path, monkeypatch):
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    monkeypatch.setenv("EXPERIMENT_DIR", str(exp))
    monkeypatch.setenv("ANALYSIS_OUT", str(tmp_path / "nb"))
    monkeypatch.setenv("MPLBACKEND", "Agg")
    nb = nbformat.read(ROOT / "notebooks" / "pareto_analysis.ipynb", as_version=4)
    nbclient.NotebookClient(
        nb, timeout=120, kernel_name="python3", resources={"metadata": {"path": str(ROOT / "notebooks")}}
    ).execute()
    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs]
    assert not [o for o in outputs if o.output_type == "error"]
    assert (tmp_path / "nb" / "fronts.png").is_file() and (tmp_path / "nb" / "topology.png").is_file()
    # the comparison table is shown (as markdown and as the DataFrame) with one row per flow width
    md = [o for o in outputs if "text/markdown" in o.get("data", {})]
    assert any("| group |" in o["data"]["text/markdown"] for o in md)
    html = "".join(o["data"].get("text/html", "") for o in outputs if o.output_type == "execute_result")
    assert "hv_seed_median" in html
    # the search-vs-random section: the answer (2 seeds: not decidable) and both EAF figures
    text = "".join(o["data"].get("text/markdown", "") for o in outputs if "data" in o)
    assert "Not decidable: only 2 paired seeds" in text
    assert (tmp_path / "nb" / "attainment.png").is_file() and (tmp_path / "nb" / "eaf_difference.png").is_file()
    assert (tmp_path / "nb" / "effect.png").is_file() and "search_s median" in text


def test_analysis_imports_neither_torch_nor_ray():
    code = (
        "import sys, analysis, analysis.report, analysis.plots, analysis.__main__; "
        "bad = [m for m in ('torch', 'ray') if m in sys.modules]; assert not bad, bad"
    )
    r = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
