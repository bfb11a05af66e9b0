"""Reduction-aware search (ours, ``search.prune_epochs``): the reduction applied inside the last search epochs.

Why: every edge and read-in op ends in a normalisation, so a path whose gates are small still delivers
unit-scale features to the next op, and the flow-based reduction, which scores such paths as negligible,
removes part of what the end-of-search supernet computes (docs/findings.md, "The gap at reduction"). Here the last
``prune_epochs`` epochs of search run, before every step, the reduction of ``supernet/reduction.py``
(``reduction.tau``, ``reduction.flow``) on the current gate probabilities and zero the gates of every
element it prunes (``Supernet.prune_mask``, a 0/1 mask on edges, read-ins and read-outs). The heads (and
Theta with ``search.train_weights``) and the kept gates then learn the network that the reduction will
keep, and after the last step the mask is set from the final gates, so the supernet at the end of search
computes exactly what the compact net with folded gates computes right after reduction (tested).

The squeeze loss still reads the unmasked gate probabilities (``gate_probs``), so a pruned element keeps
being pushed down; an element can come back when the flows move above tau again.
"""

from __future__ import annotations

from typing import Callable

from .dag import Gates, Supernet
from .reduction import reduce
from .spec import ArchSpec

PRUNING_MODES = ("supernet", "random_arch")  # modes whose search prunes (full_supernet has no reduction)


def prunes(cfg) -> bool:
    """Whether this trial's search runs the reduction in its last epochs."""
    return cfg.search.prune_epochs > 0 and cfg.trial.mode in PRUNING_MODES


def reduction_spec(model: Supernet, cfg) -> ArchSpec:
    """What the reduction (cfg.reduction) keeps of the model's current gate probabilities (``reduction_probs``:
    an element whose eval gate is exactly 0 is never kept)."""
    m, r = cfg.model, cfg.reduction
    return reduce(model.reduction_probs(), model.task_names, m.n_nodes, m.flow_width, r.tau, r.flow)


def reduction_mask(model: Supernet, cfg, spec: ArchSpec | None = None) -> Gates:
    """0/1 gates of what the reduction keeps (``spec``, or ``reduction_spec`` of the current gates)."""
    g = model.discrete_gates(spec if spec is not None else reduction_spec(model, cfg))
    return Gates(g.alpha.detach(), g.beta.detach(), g.gamma.detach())


def set_reduction_mask(model: Supernet, cfg) -> None:
    """``model.prune_mask`` = the reduction's mask of the current gates."""
    model.prune_mask = reduction_mask(model, cfg)


def pruning_hook(cfg, model, epoch: int, epochs: int) -> Callable[[int], None] | None:
    """The search's before-step hook for epoch ``epoch`` of ``epochs``: in the last ``prune_epochs`` epochs,
    recompute the mask before every step; earlier (or when the trial does not prune), clear it / None."""
    if not isinstance(model, Supernet):
        return None
    if not prunes(cfg) or epoch < epochs - cfg.search.prune_epochs:
        model.prune_mask = None
        return None

    def before_step(b: int) -> None:
        set_reduction_mask(model, cfg)

    return before_step


def compose_hooks(*hooks: Callable[[int], None] | None) -> Callable[[int], None] | None:
    """One before-step hook running ``hooks`` in order (None entries skipped); None when all are None."""
    live = [h for h in hooks if h is not None]
    if not live:
        return None

    def before_step(b: int) -> None:
        for h in live:
            h(b)

    return before_step
