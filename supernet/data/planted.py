"""The planted benchmark: tasks whose necessary path length is known by construction (ours).

Every image is i.i.d. noise in three channels (deterministic in ``(data_seed, index)``):

* red: a dot (1.0) with probability ``DOT_P`` per pixel, else 0;
* green: uniform in [0, 1);
* blue: a dot with probability ``DOT_P`` per pixel, else 0.

Tasks (``PLANTED``: name -> kind, the box it reads, the path length it needs):

* ``local`` (segmentation, ``CLASSES`` classes): the class of the pixel's own green value,
  ``floor(CLASSES * green)``. A 1x1 view suffices: it needs no edge.
* ``mid`` (depth kind): ``1 + STEP * (blue dots in the 7x7 box around the pixel)``;
* ``deep`` (depth kind): ``1 + STEP * (red dots in the 11x11 box around the pixel)``.
  A count target is valid only where its whole box lies inside the image (elsewhere 0 = invalid),
  so zero padding reveals nothing about it.

What a path of k edges can see: the stem (conv3x3), k edge ops (conv3x3 each; read-ins are 1x1) and
the head (conv3x3) see a ``(5 + 2k) x (5 + 2k)`` window, so a box of side b needs
``k >= (b - 5) / 2`` edges: 1 for ``mid``, 3 for ``deep``. The oracle (``oracle``) is exact: with a
centred window of side w < b the network sees the dots inside it, and the rest of the box is a
``Binomial(b^2 - w^2, DOT_P)`` count independent of everything in view, so the L1-optimal prediction
adds its median and the best reachable abs err is ``STEP * E|X - median(X)|`` over that binomial
(0 once the window covers the box). ``local``'s best mIoU is 1 for every k.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import numpy as np
import torch
from torch.utils.data import Dataset

from ..tasks import TaskSpec

DOT_P = 0.1  # probability of a red / blue dot at a pixel
CLASSES = 4  # local: classes of the green value
STEP = 0.1  # a count target's increment per dot
VIEW_BASE, VIEW_PER_EDGE = 5, 2  # window side of a path of k edges: 5 + 2k (stem + head; 2 per conv3x3 edge)


@dataclass(frozen=True)
class PlantedTask:
    kind: str
    box: int  # side of the box the target reads (1 = the pixel itself)
    channel: int  # image channel the target reads

    @property
    def needs_edges(self) -> int:
        """The shortest path (in edges) whose window covers the box."""
        return max(0, math.ceil((self.box - VIEW_BASE) / VIEW_PER_EDGE))


PLANTED = {
    "local": PlantedTask("segmentation", 1, 1),
    "mid": PlantedTask("depth", 7, 2),
    "deep": PlantedTask("depth", 11, 0),
}
TASKS = {
    name: TaskSpec(name, p.kind, num_classes=CLASSES if p.kind == "segmentation" else 0) for name, p in PLANTED.items()
}


def _box_count(dots: np.ndarray, box: int) -> np.ndarray:
    """Dots in the ``box x box`` window centred at every pixel (zero outside the image): (n, H, W)."""
    r = box // 2
    padded = np.pad(dots, ((0, 0), (r, r), (r, r)))
    c = padded.cumsum(1).cumsum(2)
    c = np.pad(c, ((0, 0), (1, 0), (1, 0)))
    h, w = dots.shape[1:]
    return c[:, box : box + h, box : box + w] - c[:, :h, box : box + w] - c[:, box : box + h, :w] + c[:, :h, :w]


def make_targets(images: np.ndarray) -> dict[str, np.ndarray]:
    """Targets of every planted task from images (n, 3, H, W) in the generator's format."""
    n, _, h, w = images.shape
    out: dict[str, np.ndarray] = {}
    for name, p in PLANTED.items():
        x = images[:, p.channel]
        if p.kind == "segmentation":
            out[name] = np.minimum((x * CLASSES).astype(np.int64), CLASSES - 1)
            continue
        r = p.box // 2
        depth = 1.0 + STEP * _box_count(x, p.box)
        inside = np.zeros((h, w), dtype=bool)
        inside[r : h - r, r : w - r] = True  # the whole box within the image
        out[name] = np.where(inside, depth, 0.0).astype(np.float32)[:, None]
    return out


@functools.lru_cache(maxsize=4)
def generate_split(n: int, h: int, w: int, seed: int) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """``n`` images and every task's targets as tensors (cached per process; callers must not modify them)."""
    rng = np.random.default_rng(seed)
    images = np.empty((n, 3, h, w), dtype=np.float32)
    images[:, 0] = rng.random((n, h, w)) < DOT_P
    images[:, 1] = rng.random((n, h, w))
    images[:, 2] = rng.random((n, h, w)) < DOT_P
    return torch.from_numpy(images), {t: torch.from_numpy(v) for t, v in make_targets(images).items()}


class PlantedImages(Dataset):
    def __init__(self, n: int, image_size: tuple[int, int], seed: int, tasks: tuple[str, ...]):
        if min(image_size) < max(PLANTED[t].box for t in tasks):
            raise ValueError(f"data.image_size {list(image_size)} is smaller than a planted task's box")
        self.images, targets = generate_split(n, image_size[0], image_size[1], seed)
        self.targets = {t: targets[t] for t in tasks}

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        return self.images[i], {t: v[i] for t, v in self.targets.items()}


def binomial_mad(n: int, p: float) -> float:
    """E|X - median(X)| for X ~ Binomial(n, p), exactly (0 for n = 0)."""
    if n == 0:
        return 0.0
    pmf = [math.comb(n, k) * p**k * (1 - p) ** (n - k) for k in range(n + 1)]
    cdf, med = 0.0, 0
    for k, q in enumerate(pmf):  # the smallest k with P(X <= k) >= 1/2
        cdf += q
        if cdf >= 0.5:
            med = k
            break
    return sum(q * abs(k - med) for k, q in enumerate(pmf))


def oracle(task: str) -> dict:
    """The best value a path of k edges can reach, for k = 0 .. needs_edges (the last holds for longer paths):
    {"metric", "sense", "by_edges"}."""
    p = PLANTED[task]
    ks = range(p.needs_edges + 1)
    if p.kind == "segmentation":
        return {"metric": "miou", "sense": "max", "by_edges": [1.0 for _ in ks]}
    by = []
    for k in ks:
        view = min(VIEW_BASE + VIEW_PER_EDGE * k, p.box)
        by.append(STEP * binomial_mad(p.box**2 - view**2, DOT_P))
    return {"metric": "abs_err", "sense": "min", "by_edges": by}


def planted_summary(tasks: tuple[str, ...]) -> dict:
    """What a trial's summary says of the planted structure: each task's necessary path length and oracle."""
    return {"needs_edges": {t: PLANTED[t].needs_edges for t in tasks}, "oracle": {t: oracle(t) for t in tasks}}
