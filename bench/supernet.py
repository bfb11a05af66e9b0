"""Benchmark of the central network and the compact network; prints one JSON object.

    python -m bench.supernet [--channels 32] [--size 32] [--batch 16] [--nodes 8] [--width 2] [--repeats 15]

Measured side by side in one run (medians of interleaved repeats, CPU or CUDA as available):
(a) search-stage train step (forward + backward + optimiser step, Theta frozen) of the gated supernet
    for all tasks / the same step of a plain static network executing the same convolutions on the
    same task-stacked batch without gates            (target <= 1.25)
(b) search step time at 2N over N at fixed M        (target <= 2.2: linear in N)
(c) compact multi-task forward / running each kept op application once on precomputed inputs
    (target <= 1.15), and the compact forward's speed-up over running each task's sub-network alone
    (for the searched-looking architecture, and for ``ArchSpec.chain``, where all tasks share one path).
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import torch
import torch.nn.functional as F

from supernet.compact import CompactNet, Instance
from supernet.dag import Supernet
from supernet.epoch import set_trainable
from supernet.ops import edge_key
from supernet.reduction import reduce
from supernet.runtime import keep_freed_memory
from supernet.spec import ArchSpec
from supernet.squeeze import squeeze_loss
from supernet.tasks import TaskSpec, losses

TASKS = {
    "segmentation": TaskSpec("segmentation", "segmentation", num_classes=4),
    "depth": TaskSpec("depth", "depth"),
    "normal": TaskSpec("normal", "normal"),
}


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def timed(fn, device: torch.device) -> float:
    sync(device)
    t0 = time.perf_counter()
    fn()
    sync(device)
    return time.perf_counter() - t0


def static_forward(net: Supernet, x: torch.Tensor) -> dict[str, torch.Tensor]:
    """The supernet's convolutions in the same order on the same (T*B) batch, with no gates at all.

    With Theta frozen, the gated step must still back-propagate through every conv (to reach the gates);
    so that the static step does the same backward work, the stem output is made to require grad here.
    """
    T, B = len(net.task_names), x.shape[0]
    x0 = net.stem(x)
    if not x0.requires_grad:
        x0 = x0.detach().requires_grad_()
    shape = x0.shape[1:]
    hs = {}
    for j in range(1, net.n_nodes + 1):
        acc = net.read_in[str(j)](x0).unsqueeze(0).expand(T, B, *shape)
        for _, i in net.in_edges[j]:
            acc = acc + net.edges[edge_key(i, j)](hs[i].reshape(T * B, *shape)).view(T, B, *shape)
        hs[j] = F.relu(acc)
    readout = sum(hs.values()) / len(hs)  # plain mean of the hidden states
    size = tuple(x.shape[-2:])
    return {t: net.heads[t](readout[k], size) for k, t in enumerate(net.task_names)}


def make_batch(b: int, size: int, device: torch.device):
    x = torch.randn(b, 3, size, size, device=device)
    y = {
        "segmentation": torch.randint(0, 4, (b, size, size), device=device),
        "depth": torch.rand(b, 1, size, size, device=device) + 0.5,
        "normal": F.normalize(torch.randn(b, 3, size, size, device=device), dim=1),
    }
    return x, y


def search_step_fn(net: Supernet, x, y, gated: bool, lambda_sq: float = 0.5):
    set_trainable(net, weights=False, heads=True, arch=True)
    opt_w = torch.optim.SGD(net.head_parameters(), lr=1e-3, momentum=0.9)
    opt_a = torch.optim.Adam(net.arch_parameters(), lr=1e-3)
    ce, cr = net.op_costs()

    def step():
        out = net(x) if gated else static_forward(net, x)
        loss = sum(losses(TASKS, out, y).values())
        if gated:
            p = net.gate_probs()
            loss = loss + lambda_sq * squeeze_loss("union_params", p.alpha, p.beta, ce, cr)
        opt_w.zero_grad(set_to_none=True)
        opt_a.zero_grad(set_to_none=True)
        loss.backward()
        opt_w.step()
        if gated:
            opt_a.step()

    return step


def _node_terms(c: CompactNet, inst: Instance, x0: torch.Tensor, h: dict[int, torch.Tensor]) -> list[torch.Tensor]:
    """The terms of one instance's node sum: its read-in output (when it has a read-in) and each source's
    op output."""
    j = inst.node
    terms = [c.read_in[str(j)](x0)] if inst.read_in_gate is not None else []
    return terms + [c.edges[edge_key(src.node, j)](h[src.instance]) for src in inst.sources]


def _op_applications(c: CompactNet, x0: torch.Tensor, h: dict[int, torch.Tensor]) -> list[tuple]:
    """(op, input) of every distinct op application of a compact forward, once each, in instance order."""
    calls, seen = [], set()
    for inst in c.instances:
        j = inst.node
        apps = [(("r", j), c.read_in[str(j)], x0)] if inst.read_in_gate is not None else []
        apps += [((s.node, j, s.instance), c.edges[edge_key(s.node, j)], h[s.instance]) for s in inst.sources]
        for key, op, inp in apps:
            if key not in seen:
                seen.add(key)
                calls.append((op, inp))
    return calls


def op_replay_fn(c: CompactNet, x: torch.Tensor):
    """Each kept op application once on inputs computed beforehand, plus each node's sum + ReLU and each
    head: the same arithmetic as a compact forward without its bookkeeping (the floor for it)."""
    with torch.no_grad():
        x0 = c.stem(x)
        h = {}
        for k, inst in enumerate(c.instances):
            h[k] = F.relu(sum(_node_terms(c, inst, x0, h)))
        calls = [(c.stem, x), *_op_applications(c, x0, h)]
        sums = [_node_terms(c, inst, x0, h) for inst in c.instances]
        size = tuple(x.shape[-2:])
        heads = []
        for t in c.task_names:
            outs = [h[c.task_instances[t][j]] for j in c.spec[t].read_out]
            heads.append((c.heads[t], torch.stack(outs).mean(0), size))

    def run():
        with torch.no_grad():
            for mod, inp in calls:
                mod(inp)
            for terms in sums:
                F.relu(sum(terms))
            for head, feat, sz in heads:
                head(feat, sz)

    return run


def forward_fns(net: CompactNet, x: torch.Tensor):
    """(one multi-task forward, one forward per task) of a compact network, without autograd."""

    def all_tasks():
        with torch.no_grad():
            net(x)

    def separately():
        with torch.no_grad():
            for task in net.task_names:
                net(x, tasks=[task])

    return all_tasks, separately


def median_times(fns: dict, repeats: int, device: torch.device) -> dict[str, float]:
    for fn in fns.values():  # warm-up
        fn()
        fn()
    times = {k: [] for k in fns}
    for _ in range(repeats):
        for k, fn in fns.items():  # interleaved: each comparison sees the same machine state
            times[k].append(timed(fn, device))
    return {k: statistics.median(v) for k, v in times.items()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--channels", type=int, default=32)
    ap.add_argument("--size", type=int, default=32)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--nodes", type=int, default=8)
    ap.add_argument("--width", type=int, default=2)
    ap.add_argument("--tau", type=float, default=0.15)
    ap.add_argument("--repeats", type=int, default=15)
    ap.add_argument("--default-malloc", action="store_true", help="skip runtime.keep_freed_memory's malloc tuning")
    args = ap.parse_args()
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    malloc_tuned = keep_freed_memory() if not args.default_malloc else False  # as run_trial does
    torch.manual_seed(0)
    x, y = make_batch(args.batch, args.size, device)

    def net(n: int) -> Supernet:
        return Supernet(TASKS, n, args.width, args.channels).to(device)

    n1, n2, n_static = net(args.nodes), net(2 * args.nodes), net(args.nodes)
    n_static.load_state_dict(n1.state_dict())
    t = median_times(
        {
            "supernet_step": search_step_fn(n1, x, y, gated=True),
            "static_step": search_step_fn(n_static, x, y, gated=False),
            "supernet_step_2n": search_step_fn(n2, x, y, gated=True),
        },
        args.repeats,
        device,
    )

    # a searched-looking architecture: random gates, reduced at tau
    g = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for p in n1.arch_parameters():
            p.copy_((torch.randn(p.shape, generator=g) * 2).to(device))
    spec = reduce(n1.gate_probs(), n1.task_names, args.nodes, args.width, args.tau)
    c = CompactNet(spec, TASKS, args.channels).to(device)
    c.load_from(n1)
    c.eval()

    chain = CompactNet(ArchSpec.chain(args.nodes, args.width, TASKS), TASKS, args.channels).to(device).eval()
    compact_all, compact_separate = forward_fns(c, x)
    chain_all, chain_separate = forward_fns(chain, x)

    tc = median_times(
        {
            "compact": compact_all,
            "op_replay": op_replay_fn(c, x),
            "separate": compact_separate,
            "chain": chain_all,
            "chain_separate": chain_separate,
        },
        args.repeats,
        device,
    )
    result = {
        "device": str(device),
        "threads": torch.get_num_threads(),
        "malloc_tuned": malloc_tuned,
        "setup": {
            "N": args.nodes,
            "M": args.width,
            "C": args.channels,
            "size": args.size,
            "batch": args.batch,
            "tasks": len(TASKS),
        },
        "search_step_ms": round(t["supernet_step"] * 1e3, 3),
        "static_step_ms": round(t["static_step"] * 1e3, 3),
        "a_supernet_over_static": round(t["supernet_step"] / t["static_step"], 3),
        "a_target": 1.25,
        "search_step_2n_ms": round(t["supernet_step_2n"] * 1e3, 3),
        "b_2n_over_n": round(t["supernet_step_2n"] / t["supernet_step"], 3),
        "b_target": 2.2,
        "compact_forward_ms": round(tc["compact"] * 1e3, 3),
        "op_replay_ms": round(tc["op_replay"] * 1e3, 3),
        "c_compact_over_ops_once": round(tc["compact"] / tc["op_replay"], 3),
        "c_target": 1.15,
        "separate_tasks_ms": round(tc["separate"] * 1e3, 3),
        "c_speedup_over_separate": round(tc["separate"] / tc["compact"], 3),
        "c_speedup_over_separate_when_all_share_one_chain": round(tc["chain_separate"] / tc["chain"], 3),
        "compact_instances": len(c.instances),
        "kept_edges_union": len(spec.union_edges()),
        "kept_edges_per_task": {t: len(a.edges) for t, a in spec.tasks},
    }
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
