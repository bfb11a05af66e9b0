"""The central network: a flow-restricted DAG with read-in/read-out layers and per-task gates.

Paper (stated): N hidden states; every allowed edge i -> j owns one parametric op shared by all tasks;
flow restriction keeps only edges with ``1 <= j - i <= M`` (linear, not quadratic, in N); a read-in
layer feeds the stem output ``x0`` to every hidden state and a read-out layer lets every hidden state
feed every task head; task-specific architecture parameters A (edges), B (read-in), Gamma (read-out).

Ours (chosen, each a config field): edge op = conv3x3-norm; read-in op = conv1x1-norm; node rule
``h_j^t = relu(g(B[t,j]) * r_j(x0) + sum_i g(A[t,i,j]) * o_ij(h_i^t))``; read-out
``y^t = head_t(sum_j g(G[t,j]) h_j^t / sum_j g(G[t,j]))``; gate ``g = sigmoid(logit / temperature)``
with straight-through, Gumbel-sigmoid and hard-concrete variants (``relax``).

All tasks run in one forward: the stem runs once, and each edge op runs once on the task-stacked batch
``(B*T, C, H, W)`` - no Python loop re-runs shared work per task. Its normalisation keeps per-task batch
statistics (``supernet/ops.py``), so tasks stay separate in train mode too: a task's output and the
gradient of its loss depend on its own gates only.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F

from .ops import edge_key, edge_op, read_in_op
from .spec import ArchSpec, edge_list
from .stem import build_stem
from .tasks import Head, TaskSpec


@dataclass
class Gates:
    """Gate values in [0, 1]: alpha (T, E) for edges, beta (T, N) read-in, gamma (T, N) read-out.

    The read-out weights are ``gamma / read_out_total``; ``read_out_total`` (T,) defaults to the row sums
    of gamma. Given explicitly it keeps the weights a network had before some of its read-outs were
    zeroed (the gated supernet minus pruned paths, which is what a compact net with folded gates computes).
    """

    alpha: torch.Tensor
    beta: torch.Tensor
    gamma: torch.Tensor
    read_out_total: torch.Tensor | None = None

    def detach(self) -> "Gates":
        """The same values without gradient (what the search's noise-free weight pass computes with)."""
        d = lambda v: None if v is None else v.detach()  # noqa: E731
        return Gates(d(self.alpha), d(self.beta), d(self.gamma), d(self.read_out_total))


HC_LOW, HC_HIGH = -0.1, 1.1  # hard-concrete stretch interval (Louizos et al. 2018, "Learning sparse networks
# through L0 regularization"): a stretched sigmoid clipped to [0, 1] puts finite mass on exactly 0 and exactly 1


def relax(logits: torch.Tensor, kind: str, temperature: float, training: bool) -> torch.Tensor:
    """Gate relaxation. sigmoid: sigmoid(l/T). straight_through: forward 1[logit >= 0] (a gate at the
    decision boundary, such as the default ``arch_init: 0``, is on), backward sigmoid's gradient. gumbel:
    sigmoid((l + logistic noise)/T) while training, sigmoid(l/T) in eval. hard_concrete: the gumbel sample
    stretched to (HC_LOW, HC_HIGH) and clipped to [0, 1] while training, so a gate is exactly 0 (its op
    removed) or exactly 1 with finite probability and shrinking it costs the task loss what removing the op
    costs (a following normalisation cannot undo an exact 0); in eval the noise-free value, clipped likewise."""
    soft = torch.sigmoid(logits / temperature)
    if kind == "sigmoid":
        return soft
    if kind == "straight_through":
        hard = (logits >= 0).to(soft.dtype)
        return hard + (soft - soft.detach())  # exactly 0/1 forward, sigmoid gradient backward
    if kind in ("gumbel", "hard_concrete"):
        if training:
            u = torch.rand_like(logits).clamp(1e-6, 1 - 1e-6)
            soft = torch.sigmoid((logits + torch.log(u) - torch.log1p(-u)) / temperature)
        if kind == "gumbel":
            return soft
        return (soft * (HC_HIGH - HC_LOW) + HC_LOW).clamp(0.0, 1.0)
    raise ValueError(f"unknown gate relaxation {kind!r}")


def open_probability(logits: torch.Tensor, kind: str, temperature: float) -> torch.Tensor:
    """The probability that a gate is used: for hard_concrete P(gate > 0) = sigmoid(l - T log(-HC_LOW/HC_HIGH))
    (the expected L0 norm of Louizos et al. 2018); for the other kinds sigmoid(l / T)."""
    if kind == "hard_concrete":
        return torch.sigmoid(logits - temperature * math.log(-HC_LOW / HC_HIGH))
    return torch.sigmoid(logits / temperature)


class Supernet(nn.Module):
    """``model(x) -> {task: output}``; ``arch_parameters()`` / ``weight_parameters()`` for optimisers."""

    def __init__(
        self,
        tasks: dict[str, TaskSpec],
        n_nodes: int,
        flow_width: int,
        channels: int,
        stem: str = "conv",
        stem_weights: str | None = None,
        stem_layers: int = 2,
        norm: str = "bn",
        gate: str = "sigmoid",
        temperature: float = 1.0,
        arch_init: float = 0.0,
    ):
        super().__init__()
        self.task_names = tuple(tasks)
        self.n_nodes, self.flow_width = n_nodes, flow_width
        self.gate, self.arch_init = gate, float(arch_init)
        # the gate temperature T of sigmoid(logit / T): a buffer, so that a search annealing it
        # (search.temperature_end) leaves its value in checkpoints and cached stages
        self.register_buffer("temperature", torch.tensor(float(temperature)))
        self.edges_ij = edge_list(n_nodes, flow_width)
        self.stem = build_stem(stem, channels, stem_layers, stem_weights, norm)
        # one row of BatchNorm running statistics per task (ops.py): a task's eval output reads its own inputs'
        T = len(tasks)
        self.edges = nn.ModuleDict({edge_key(i, j): edge_op(channels, norm, T) for i, j in self.edges_ij})
        self.read_in = nn.ModuleDict({str(j): read_in_op(channels, norm, T) for j in range(1, n_nodes + 1)})
        self.heads = nn.ModuleDict({t: Head(spec, channels) for t, spec in tasks.items()})
        T, E, N = len(tasks), len(self.edges_ij), n_nodes
        self.alpha = nn.Parameter(torch.full((T, E), float(arch_init)))  # A: edges
        self.beta = nn.Parameter(torch.full((T, N), float(arch_init)))  # B: read-in
        self.gamma = nn.Parameter(torch.full((T, N), float(arch_init)))  # Gamma: read-out
        # 0/1 masks (Gates of (T, E), (T, N), (T, N)) multiplied into every gate of a forward, or None: the
        # reduction applied inside the search (search.prune_epochs, supernet/prune.py). Not in the state_dict:
        # it is a function of the gates and the reduction settings, recomputed wherever it is used.
        self.prune_mask: Gates | None = None
        # True while warm-up trains: every forward uses the noise-free initial gates (``initial_gates``), so the
        # weights learn with all paths on at their initial value whatever the gate kind (no Gumbel or
        # hard-concrete noise before the search has anything to decide). Set by the stage loop, not saved.
        self.hold_gates = False
        # True while a stage after the search trains the supernet itself (full_supernet's fine-tune): every
        # forward uses the eval gates, so the weights train at the gates evaluation computes with, not at
        # Gumbel or hard-concrete samples of logits nothing trains any more. Set by the stage loop, not saved.
        self.fixed_gates = False
        # warmup.path_dropout: while ``hold_gates`` and training, each initial gate is zeroed with this probability
        # at every forward (``_path_dropped``), the kept edge and read-in gates divided by 1 - path_dropout when
        # ``path_dropout_rescale``. Set by the stage loop, not saved.
        self.path_dropout = 0.0
        self.path_dropout_rescale = True  # warmup.path_dropout_rescale's default
        # in-edges of each node as (edge index, source node), fixed by (N, M)
        self.in_edges = {j: [(e, i) for e, (i, jj) in enumerate(self.edges_ij) if jj == j] for j in range(1, N + 1)}

    # ---------------------------------------------------------------- parameter groups

    def arch_parameters(self) -> list[nn.Parameter]:
        return [self.alpha, self.beta, self.gamma]

    def weight_parameters(self) -> list[nn.Parameter]:
        """Theta: the shared stem, edge ops and read-in ops (not the heads, not A/B/Gamma)."""
        return [*self.stem.parameters(), *self.edges.parameters(), *self.read_in.parameters()]

    def head_parameters(self) -> list[nn.Parameter]:
        return list(self.heads.parameters())

    # ---------------------------------------------------------------- gates

    def gates(self) -> Gates:
        """Relaxed gates of the current logits (noisy for gumbel and hard_concrete while training), times
        ``prune_mask``; the initial gates while ``hold_gates`` (path-dropped while training, ``path_dropout``); the
        eval gates while ``fixed_gates``."""
        if self.hold_gates:
            g = self.initial_gates()
            return self._path_dropped(g) if self.training and self.path_dropout > 0 else g
        if self.fixed_gates:
            return self.eval_gates()
        r = lambda x: relax(x, self.gate, self.temperature, self.training)  # noqa: E731
        return self._masked(Gates(r(self.alpha), r(self.beta), r(self.gamma)))

    def eval_gates(self) -> Gates:
        """The gates an eval-mode forward computes with (no Gumbel noise; 0/1 for straight-through), times
        ``prune_mask``."""
        return self._masked(self._unmasked_eval_gates())

    def _unmasked_eval_gates(self) -> Gates:
        r = lambda x: relax(x, self.gate, self.temperature, False)  # noqa: E731
        return Gates(r(self.alpha), r(self.beta), r(self.gamma))

    def _masked(self, g: Gates) -> Gates:
        """``g`` with the pruned elements' gates zeroed. The read-out weights are renormalised over the kept
        read-outs (read_out_total left to the row sums), which is what ``reduction.fold_gates`` writes
        into the compact net when it reads these gates."""
        m = self.prune_mask
        if m is None:
            return g
        return Gates(g.alpha * m.alpha, g.beta * m.beta, g.gamma * m.gamma)

    def _path_dropped(self, g: Gates) -> Gates:
        """``g`` with each gate of each task zeroed independently with probability ``path_dropout`` (one draw per
        forward, from torch's global generator). A task whose read-outs all drew 0 keeps one of them, drawn
        uniformly: an empty read-out would train its head on zeros. With ``path_dropout_rescale`` the kept edge and
        read-in gates are divided by 1 - path_dropout (a node's expected sum as with every path on); the read-outs
        are renormalised over the kept ones in ``forward`` whatever the setting."""
        p = self.path_dropout
        keep = lambda x: (torch.rand_like(x) >= p).to(x.dtype)  # noqa: E731
        out = keep(g.gamma)
        empty = (out.sum(dim=1) == 0).nonzero().flatten()
        if len(empty):
            out[empty, torch.randint(out.shape[1], (len(empty),), device=out.device)] = 1.0
        scale = 1.0 / (1.0 - p) if self.path_dropout_rescale else 1.0
        return Gates(g.alpha * keep(g.alpha) * scale, g.beta * keep(g.beta) * scale, g.gamma * out)

    def initial_gates(self) -> Gates:
        """The eval-mode gates of the initial logits (``arch_init``): what warm-up trains the weights with."""
        r = lambda x: relax(torch.full_like(x, self.arch_init), self.gate, self.temperature, False)  # noqa: E731
        return Gates(r(self.alpha), r(self.beta), r(self.gamma))

    def gate_probs(self) -> Gates:
        """The probability that each gate is used (``open_probability``: sigmoid(logit / T), or P(gate > 0)
        for hard_concrete): what the squeeze loss and the reduction read."""
        s = lambda x: open_probability(x, self.gate, self.temperature)  # noqa: E731
        return Gates(s(self.alpha), s(self.beta), s(self.gamma))

    def reduction_probs(self) -> Gates:
        """What the reduction reads: ``gate_probs``, with 0 wherever the eval-mode gate (before ``prune_mask``)
        is exactly 0. Such an element computes nothing in an eval forward, so it is pruned whatever
        ``reduction.tau``: hard_concrete's clipped gate is 0 while P(gate > 0) < 1/2, straight-through's
        while its probability is < 1/2, and a compact net that kept them would count ops it multiplies by 0."""
        p, e = self.gate_probs(), self._unmasked_eval_gates()
        return Gates(p.alpha * (e.alpha > 0), p.beta * (e.beta > 0), p.gamma * (e.gamma > 0))

    def discrete_gates(self, spec: ArchSpec) -> Gates:
        """0/1 gates of a discrete architecture, in this supernet's task and edge order."""
        dev = self.alpha.device
        a = torch.zeros_like(self.alpha, device=dev)
        b, g = torch.zeros_like(self.beta), torch.zeros_like(self.gamma)
        index = {e: k for k, e in enumerate(self.edges_ij)}
        for t, task in enumerate(self.task_names):
            arch = spec[task]
            for e in arch.edges:
                a[t, index[tuple(e)]] = 1.0
            for j in arch.read_in:
                b[t, j - 1] = 1.0
            for j in arch.read_out:
                g[t, j - 1] = 1.0
        return Gates(a, b, g)

    # ---------------------------------------------------------------- forward

    def forward(
        self, x: torch.Tensor, gates: Gates | None = None, tasks: Sequence[str] | None = None
    ) -> dict[str, torch.Tensor]:
        """{task: output}; ``tasks``: compute only these tasks' rows (one task's own path, e.g. for its FLOPs)."""
        g = gates if gates is not None else self.gates()
        names = self.task_names
        if tasks is not None:  # select the requested tasks' gate rows; everything below runs on those rows only
            rows = [self.task_names.index(t) for t in tasks]
            total = None if g.read_out_total is None else g.read_out_total[rows]
            g, names = Gates(g.alpha[rows], g.beta[rows], g.gamma[rows], total), tuple(tasks)
        else:
            rows = list(range(len(names)))
        T, B = len(names), x.shape[0]
        # (T, all tasks) one-hot: stacked slice k is task rows[k]'s input, whose running statistics it reads
        # (eval) and, where the task's gate on the op is > 0, updates (train); ops.py
        own = torch.zeros(T, len(self.task_names), device=x.device)
        own[torch.arange(T), torch.tensor(rows)] = 1.0
        x0 = self.stem(x)  # (B, C, h, w), once for all tasks
        shape = x0.shape[1:]
        # task-stacked states are batch-major, (B, T, C*h*w): an edge op runs once on the (B*T, C, h, w)
        # view, its norm sees each task's slice as its own channels (ops.py: per-task statistics, no
        # copy), and a (1, T, 1) gate scales a task's slice with one addcmul
        gate = lambda v: v.view(1, T, 1)  # noqa: E731 - a (T,) column of gates, broadcast over (B, T, D)
        hs: dict[int, torch.Tensor] = {}
        readout = None
        total = g.gamma.sum(dim=1) if g.read_out_total is None else g.read_out_total
        w = g.gamma / total.view(-1, 1).clamp_min(1e-12)  # (T, N) read-out weights
        for j in range(1, self.n_nodes + 1):
            acc = gate(g.beta[:, j - 1]) * self.read_in[str(j)](x0).view(B, 1, -1)  # (B, T, D)
            for e, i in self.in_edges[j]:
                members = own * (g.alpha[:, e].detach() > 0).float().view(-1, 1) if self.training else own
                y = self.edges[edge_key(i, j)](hs[i].view(B * T, *shape), T, members)
                acc = torch.addcmul(acc, gate(g.alpha[:, e]), y.view(B, T, -1))  # acc + gate * y, one allocation
            hs[j] = F.relu(acc)
            wj = gate(w[:, j - 1])
            readout = wj * hs[j] if readout is None else torch.addcmul(readout, wj, hs[j])
        readout = readout.view(B, T, *shape)
        size = tuple(x.shape[-2:])
        return {t: self.heads[t](readout[:, k], size) for k, t in enumerate(names)}

    # ---------------------------------------------------------------- costs used by the squeeze loss

    def op_costs(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Parameter count of each edge op (E,) and each read-in op (N,)."""
        dev = self.alpha.device
        ce = torch.tensor(
            [sum(p.numel() for p in self.edges[edge_key(i, j)].parameters()) for i, j in self.edges_ij], device=dev
        )
        cr = torch.tensor(
            [sum(p.numel() for p in self.read_in[str(j)].parameters()) for j in range(1, self.n_nodes + 1)], device=dev
        )
        return ce.float(), cr.float()


def build_supernet(model_cfg, tasks: dict[str, TaskSpec]) -> Supernet:
    """Supernet from a ``ModelConfig`` (unpacked here, at the edge)."""
    m = model_cfg
    return Supernet(
        tasks,
        m.n_nodes,
        m.flow_width,
        m.channels,
        m.stem,
        m.stem_weights,
        m.stem_layers,
        m.norm,
        m.gate,
        m.temperature,
        m.arch_init,
    )
