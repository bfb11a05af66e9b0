"""The embedded default data set: procedural 3-D scenes with the NYUv2 task triple. No download.

How a scene is made (deterministic in ``(data_seed, index)``):

1. **Background**: a tilted plane ``z = z0 + a*u + b*v`` (u, v in [-1, 1]) - class 0.
2. **Objects**: 1-3 primitives, each in front of the plane, drawn with a z-buffer:
   sphere (class 1; curved normals), axis-aligned box face tilted in depth (class 2; planar normal),
   triangle prism face (class 3; planar, differently tilted). Their colours are random, so the class
   must be read from the *shape*, not the colour.
3. **Targets**: depth = z-buffer (float, > 0), normals = analytic unit normals of the visible surface
   (camera looks along -z), segmentation = class of the visible surface.
4. **Image**: random per-object albedo x Lambertian shading from a random light + a soft texture +
   Gaussian noise, so depth/normals must be inferred from shading (harder) while segmentation needs
   shape (medium) - tasks of clearly different difficulty.
5. **Sensor holes**: about 2% of pixels have invalid depth (0) and invalid normals (all 0), like
   NYUv2's Kinect dropouts, so the masking path of losses and metrics is always exercised.
"""
from __future__ import annotations

import functools

import numpy as np
import torch
from torch.utils.data import Dataset

from ..tasks import TaskSpec

TASKS = {
    "segmentation": TaskSpec("segmentation", "segmentation", num_classes=4),
    "depth": TaskSpec("depth", "depth"),
    "normal": TaskSpec("normal", "normal"),
}


def render_scene(rng: np.random.Generator, h: int, w: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """One scene: image (3,H,W) float32, seg (H,W) int64, depth (1,H,W) float32, normal (3,H,W) float32."""
    v, u = np.meshgrid(np.linspace(-1, 1, h), np.linspace(-1, 1, w), indexing="ij")  # (H, W)
    a, b = rng.uniform(-1.0, 1.0, size=2)
    z0 = rng.uniform(5.0, 7.0)
    depth = z0 + a * u + b * v
    n_bg = np.array([a, b, 1.0]) / np.sqrt(a * a + b * b + 1.0)
    normal = np.broadcast_to(n_bg[:, None, None], (3, h, w)).copy()
    seg = np.zeros((h, w), np.int64)
    albedo = np.broadcast_to(rng.uniform(0.3, 0.9, size=3)[:, None, None], (3, h, w)).copy()

    for _ in range(rng.integers(1, 4)):
        cls = int(rng.integers(1, 4))
        cx, cy = rng.uniform(-0.6, 0.6, size=2)
        r = rng.uniform(0.25, 0.5)
        zc = rng.uniform(2.0, 4.5)
        du, dv = u - cx, v - cy
        if cls == 1:  # sphere
            rho2 = (du * du + dv * dv) / (r * r)
            mask = rho2 < 1.0
            nz = np.sqrt(np.clip(1.0 - rho2, 0.0, 1.0))
            z = zc - r * nz
            n = np.stack([du / r, dv / r, nz])
        else:
            if cls == 2:  # box face
                mask = (np.abs(du) < r) & (np.abs(dv) < r * rng.uniform(0.5, 1.0))
            else:  # triangle (apex up)
                mask = (dv < r) & (dv > -r) & (np.abs(du) < (dv + r) / 2)
            ta, tb = rng.uniform(-0.8, 0.8, size=2)
            z = zc + ta * du + tb * dv
            nn_ = np.array([ta, tb, 1.0]) / np.sqrt(ta * ta + tb * tb + 1.0)
            n = np.broadcast_to(nn_[:, None, None], (3, h, w))
        vis = mask & (z < depth)
        depth = np.where(vis, z, depth)
        normal = np.where(vis[None], n, normal)
        seg[vis] = cls
        albedo = np.where(vis[None], rng.uniform(0.2, 1.0, size=3)[:, None, None], albedo)

    light = rng.normal(size=3) * np.array([1.0, 1.0, 0.3]) + np.array([0.0, 0.0, 1.5])
    light /= np.linalg.norm(light)
    shade = np.clip((normal * light[:, None, None]).sum(0), 0.0, 1.0) * 0.8 + 0.2
    texture = 1.0 + 0.1 * np.sin(8.0 * u + rng.uniform(0, 6.3)) * np.cos(8.0 * v + rng.uniform(0, 6.3))
    image = albedo * shade[None] * texture[None] + rng.normal(0.0, 0.03, size=(3, h, w))

    holes = rng.random((h, w)) < 0.02
    depth = np.where(holes, 0.0, depth)
    normal = np.where(holes[None], 0.0, normal)
    return (
        image.astype(np.float32),
        seg,
        depth[None].astype(np.float32),
        normal.astype(np.float32),
    )


@functools.lru_cache(maxsize=4)
def render_split(n: int, h: int, w: int, seed: int) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """``n`` scenes as stacked tensors. Cached per process: sweep trials that a Ray worker runs one after
    another (and share data settings) render their scenes once. Callers must not modify the tensors."""
    rng = np.random.default_rng(seed)
    scenes = [render_scene(rng, h, w) for _ in range(n)]
    images = torch.from_numpy(np.stack([s[0] for s in scenes]))  # (n, 3, H, W)
    targets = {
        "segmentation": torch.from_numpy(np.stack([s[1] for s in scenes])),  # (n, H, W)
        "depth": torch.from_numpy(np.stack([s[2] for s in scenes])),  # (n, 1, H, W)
        "normal": torch.from_numpy(np.stack([s[3] for s in scenes])),  # (n, 3, H, W)
    }
    return images, targets


class SyntheticScenes(Dataset):
    """``n`` procedural scenes, pre-rendered once (a few MB) so epochs cost only the network."""

    def __init__(self, n: int, image_size: tuple[int, int], seed: int, tasks: tuple[str, ...]):
        self.images, all_targets = render_split(n, image_size[0], image_size[1], seed)
        self.targets = {t: all_targets[t] for t in tasks}

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        return self.images[i], {t: v[i] for t, v in self.targets.items()}
