"""Analysis of sweep results: load the Parquet tables, Pareto kernels, front comparisons, plots, report.

Imports only numpy, pandas, pyarrow, moocore, scipy and matplotlib (never torch or ray), so results can
be analysed on any machine that has the experiment folder.

    from analysis import load_results, pareto_front, compare_fronts, write_report
    df = load_results("runs/default")
    front = pareto_front(df[df["mode"] == "supernet"], {"delta_mtl": "max", "params": "min"})
    cmp = compare_fronts(df, by="flow_width")
    answer = search_vs_random(df)   # does the search beat random architectures? answer.sentence
"""
from analysis.compare import FrontComparison, compare_fronts, parse_objectives, pareto_front, single_task_ensemble
from analysis.effects import effect_table
from analysis.load import AnalysisError, load_arch_spec, load_epochs, load_results
from analysis.report import write_report
from analysis.stats import search_vs_random, seed_hypervolumes

__all__ = [
    "AnalysisError",
    "FrontComparison",
    "compare_fronts",
    "effect_table",
    "load_arch_spec",
    "load_epochs",
    "load_results",
    "parse_objectives",
    "pareto_front",
    "search_vs_random",
    "seed_hypervolumes",
    "single_task_ensemble",
    "write_report",
]
