"""Squeeze losses: push the searched network to be compact (paper: the loss exists; formulas ours).

All take gate probabilities (T, K) - K = edges followed by read-ins - and the parameter cost (K,) of
each op, and return a scalar in [0, 1].

- ``union_params`` (default): expected parameter count of the *union* network, normalised,
  ``sum_k cost_k * (1 - prod_t (1 - g_tk)) / sum_k cost_k``. An op kept by several tasks is paid once,
  so the loss rewards both dropping ops and sharing them.
- ``l1``: mean gate over tasks and ops (each task pays for its own ops, every op alike).
- ``task_params``: each task's expected parameter count, normalised, averaged over tasks,
  ``mean_t sum_k cost_k * g_tk / sum_k cost_k``: each task pays for its own ops at their parameter cost, so a
  3x3 edge costs it what its parameters weigh against a 1x1 read-in, and nothing rewards sharing.
- ``share_params``: each task pays its expected share of each op it keeps, summed over tasks and normalised,
  ``sum_t sum_k cost_k * g_tk * E[1 / (1 + n_tk)] / sum_k cost_k``, with ``n_tk`` the number of *other* tasks that
  keep op k (independent gates ``g_t'k``) and the share held constant in the gradient: an op of its own costs a task
  its whole cost, an op kept by one other task half of it. Its value is ``union_params``'s; its gradient is not: under
  ``union_params`` an op another task surely keeps is free, so a task that needs no depth rides another's deep path
  at no cost; here it pays its share.
- ``bimodal``: mean ``g (1 - g)``, pushes gates towards 0 or 1 without preferring either.
"""

from __future__ import annotations

import torch


def union_params(g: torch.Tensor, cost: torch.Tensor) -> torch.Tensor:
    used = 1.0 - torch.prod(1.0 - g, dim=0)  # (K,) probability that some task keeps op k
    return (cost * used).sum() / cost.sum()


def l1(g: torch.Tensor, cost: torch.Tensor) -> torch.Tensor:
    return g.mean()


def task_params(g: torch.Tensor, cost: torch.Tensor) -> torch.Tensor:
    return (g * cost).sum(dim=1).mean() / cost.sum()


def _share(g: torch.Tensor) -> torch.Tensor:
    """(T, K): ``E[1 / (1 + n_tk)]``, ``n_tk`` the number of tasks other than t keeping op k, each independently
    with probability ``g_t'k`` (the distribution of the count by one convolution per other task)."""
    T, K = g.shape
    weights = 1.0 / torch.arange(1, T + 1, dtype=g.dtype, device=g.device)[:, None]  # 1 / (1 + j)
    shares = []
    for t in range(T):
        count = torch.zeros(T, K, dtype=g.dtype, device=g.device)  # P(n_tk = j), j = 0..T-1
        count[0] = 1.0
        for o in range(T):
            if o != t:
                count = torch.cat([count[:1] * (1 - g[o]), count[1:] * (1 - g[o]) + count[:-1] * g[o]])
        shares.append((count * weights).sum(dim=0))
    return torch.stack(shares)


def share_params(g: torch.Tensor, cost: torch.Tensor) -> torch.Tensor:
    return (cost * g * _share(g.detach())).sum() / cost.sum()


def bimodal(g: torch.Tensor, cost: torch.Tensor) -> torch.Tensor:
    return (g * (1.0 - g)).mean()


SQUEEZE_LOSSES = {
    "union_params": union_params,
    "l1": l1,
    "task_params": task_params,
    "share_params": share_params,
    "bimodal": bimodal,
}


def squeeze_loss(
    kind: str,
    alpha: torch.Tensor,
    beta: torch.Tensor,
    edge_cost: torch.Tensor,
    read_in_cost: torch.Tensor,
    gamma: torch.Tensor | None = None,
    read_out_cost: torch.Tensor | None = None,
) -> torch.Tensor:
    """Squeeze loss over edges (alpha gates (T, E)) and read-ins (beta gates (T, N)), and read-outs (gamma gates
    (T, N) at ``read_out_cost`` (N,)) when given."""
    g = torch.cat([alpha, beta] + ([gamma] if gamma is not None else []), dim=1)  # (T, E + N [+ N])
    cost = torch.cat([edge_cost, read_in_cost] + ([read_out_cost] if gamma is not None else []))
    return SQUEEZE_LOSSES[kind](g, cost)
