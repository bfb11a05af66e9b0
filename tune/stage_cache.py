"""Where trials share stage checkpoints (stage reuse): ``<storage>/<name>/stage_cache/``.

Local and NFS paths use ``supernet.store.DirStageStore`` (atomic temp file + hard link: two trials
racing for one key cannot corrupt it, the first writer wins; an entry that does not load is removed,
reported once and written again by the trial that recomputes it). For URIs (``s3://``, ``gs://``, ...)
stage reuse is switched off with a log line: object stores offer no atomic create-if-absent through
pyarrow.fs, and a torn or doubly-written stage checkpoint would silently change results.
A trial's result is the same with or without reuse (tests/test_tune_sweep.py).
"""

from __future__ import annotations

import logging

from analysis.schema import is_uri, local_path
from supernet.store import DirStageStore

log = logging.getLogger(__name__)


def cache_root(exp_path: str) -> str | None:
    """The stage-cache folder of an experiment, or None (reuse off) when the experiment lives at a URI."""
    if is_uri(exp_path):
        log.warning(
            "stage reuse is off: the experiment lives at %s (a URI); every trial computes every stage", exp_path
        )
        return None
    return local_path(exp_path).rstrip("/") + "/stage_cache"


def open_store(root: str | None) -> DirStageStore | None:
    return DirStageStore(root) if root else None
