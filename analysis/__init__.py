"""Analysis of sweep results: load the Parquet tables, Pareto kernels, front comparisons, plots, report.

Imports only numpy, pandas, pyarrow, moocore, scipy and matplotlib (never torch or ray), so results can
be analysed on any machine that has the experiment folder.

    from analysis import load_results, pareto_front, compare_fronts, write_report
    df = load_results("runs/default")
    front = pareto_front(df[df["mode"] == "supernet"], {"delta_mtl": "max", "params": "min"})
    cmp = compare_fronts(df, by="flow_width")
    answer = search_vs_random(df)   # does the search beat random architectures? answer.sentence
    hits = hit_tests(df)            # planted data: does the search keep the path a task needs? hits[0].sentence
"""

from __future__ import annotations

import importlib
from typing import Any

# name -> submodule; imported on first use (PEP 562), so that ``analysis.schema`` (read by the Tune
# driver and every trial worker) does not pull in matplotlib and scipy
_EXPORTS = {
    "FrontComparison": "compare",
    "compare_fronts": "compare",
    "parse_objectives": "compare",
    "pareto_front": "compare",
    "single_task_ensemble": "compare",
    "effect_table": "effects",
    "AnalysisError": "load",
    "load_arch_spec": "load",
    "load_epochs": "load",
    "load_results": "load",
    "write_report": "report",
    "search_vs_random": "stats",
    "seed_hypervolumes": "stats",
    "hit_tests": "topology",
    "oracle_comparison": "topology",
    "paired_tests": "topology",
    "sharing_comparisons": "topology",
    "topology_table": "topology",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'analysis' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"analysis.{_EXPORTS[name]}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS))
