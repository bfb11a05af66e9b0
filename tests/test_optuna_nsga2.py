"""configs/optuna_nsga2.yaml: an Optuna NSGA-II search over M, lambda_sq and tau, and a tiny run of it on Ray."""

from __future__ import annotations

import inspect
from pathlib import Path

import pyarrow.parquet as pq
import pytest
import yaml

import run
from tune.space import parse_sweep, sweep_doc

ROOT = Path(__file__).resolve().parents[1]
CONFIG = ROOT / "configs" / "optuna_nsga2.yaml"
AXES = {
    "model.flow_width": ("choice", [1, 2, 3]),
    "search.lambda_sq": ("loguniform", [0.03, 1.0]),
    "reduction.tau": ("uniform", [0.5, 0.95]),
}
SMALL = {"data.n_train": 32, "data.n_val": 16, "trial.progress": False, "trial.latency_repeats": 1}


def load_sweep(path):
    return parse_sweep(sweep_doc(path))


def test_the_file_is_an_nsga2_search_over_flow_width_lambda_and_tau():
    assert CONFIG.read_text().startswith("# python run.py --config configs/optuna_nsga2.yaml ")
    sweep = load_sweep(CONFIG)
    assert (sweep.name, sweep.preset, sweep.search, sweep.sampler) == ("optuna_nsga2", "default", "optuna", "nsga2")
    assert sweep.axes == AXES
    assert sweep.objectives == {"score": "min", "params_union": "min"}
    assert sweep.baselines == ("single_task", "hard_sharing") and sweep.seeds == [0]
    # the trial of configs/default.yaml: N = 4 and its reduction-aware search
    assert sweep.base == load_sweep(ROOT / "configs" / "default.yaml").base
    for m in AXES["model.flow_width"][1]:  # every M of the space is a valid trial at N = 4
        sweep.config({"model.flow_width": m})
    for key in ("search.lambda_sq", "reduction.tau"):
        for v in AXES[key][1]:
            sweep.config({key: v})
    # at least one generation of offspring after NSGA-II's random first one (its population_size, Optuna's default)
    import optuna

    population = inspect.signature(optuna.samplers.NSGAIISampler).parameters["population_size"].default
    assert sweep.num_samples >= 2 * population


def test_the_search_it_builds_is_optuna_nsga2_on_the_three_axes():
    import optuna.distributions as od
    from optuna.samplers import NSGAIISampler

    from tune.launch import make_search

    sweep = load_sweep(CONFIG)
    param_space, searcher, num_samples = make_search(sweep)
    assert param_space == {} and num_samples == sweep.num_samples + len(sweep.baseline_points())
    assert isinstance(searcher.inner._sampler, NSGAIISampler)
    space = searcher.inner._space
    assert space["model.flow_width"] == od.CategoricalDistribution([1, 2, 3])
    assert space["search.lambda_sq"] == od.FloatDistribution(0.03, 1.0, log=True)
    assert space["reduction.tau"] == od.FloatDistribution(0.5, 0.95)
    assert searcher.metric == ["score", "params_union"] and searcher.mode == ["min", "min"]


def test_a_tiny_version_runs_through_the_sweep_and_its_trials_load(ray_session, tmp_path):
    from supernet.inference import evaluate_compact, load_compact

    doc = yaml.safe_load(CONFIG.read_text())
    doc["preset"] = "tiny"
    doc["config"] = {**doc["config"], **SMALL}
    doc["sweep"] = {**doc["sweep"], "name": "nsga2_tiny", "num_samples": 3, "baselines": []}
    path = tmp_path / "nsga2_tiny.yaml"
    path.write_text(yaml.safe_dump(doc))
    assert run.main(["--config", str(path), "--storage", str(tmp_path / "runs"), "--no-report"]) == 0
    exp = tmp_path / "runs" / "nsga2_tiny"
    df = pq.read_table(exp / "results.parquet").to_pandas()
    assert len(df) == 3 and set(df["status"]) == {"finished"} and set(df["mode"]) == {"supernet"}
    assert set(df["flow_width"]) <= {1, 2, 3} and (df["n_nodes"] == 4).all()
    assert df["lambda_sq"].between(0.03, 1.0).all() and df["tau"].between(0.5, 0.95).all()
    assert len(set(zip(df["lambda_sq"], df["tau"]))) == 3  # three proposals, not one point thrice
    assert df["params_union"].gt(0).all() and df[[c for c in df if c.startswith("loss/")]].notna().all().all()
    assert list(exp.glob("searcher-state-*.pkl"))  # the Optuna study, saved for --resume
    row = df.iloc[0]  # a sweep's trial folder holds the compact net the row's metrics came from
    net, cfg = load_compact(exp / row["trial_dir"])
    assert cfg.model.flow_width == row["flow_width"] and cfg.search.lambda_sq == pytest.approx(row["lambda_sq"])
    for task, metrics in evaluate_compact(net, cfg).items():
        for m, v in metrics.items():
            assert v == pytest.approx(row[f"metric/{task}/{m}"], abs=1e-4, rel=1e-4), (task, m)
