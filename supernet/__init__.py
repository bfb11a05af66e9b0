"""The method (torch only, no Ray): config, data, the DAG supernet, reduction, the compact net, the trial core.

``supernet.load_compact(trial_dir)`` returns a finished trial's compact network and config
(``supernet.inference``). It is imported on first use, so that ``import supernet.config`` stays light.
"""

from __future__ import annotations

import importlib
from typing import Any

__all__ = ["load_compact"]


def __getattr__(name: str) -> Any:
    if name != "load_compact":
        raise AttributeError(f"module 'supernet' has no attribute {name!r}")
    value = importlib.import_module("supernet.inference").load_compact
    globals()[name] = value
    return value
