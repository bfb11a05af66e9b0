"""The embedded default data set: procedural 3-D rooms with the NYUv2 task triple. No download.

Every scene is seen by the same pinhole camera (deterministic in ``(data_seed, index)``):

* **Camera**: at the origin, looking along +z, focal length ``FOCAL`` (image coordinates u, v in
  [-1, 1], v down), fixed height ``CAM_HEIGHT`` above a horizontal floor, horizon at the fixed row
  ``v = HORIZON``. Depth is the z coordinate of the visible point (like a Kinect), so a point at
  (x, y, z) projects to ``(FOCAL * x / z, HORIZON + FOCAL * y / z)``: far objects look small.
* **Background** (class 0): the floor ``y = CAM_HEIGHT`` with a world-fixed checkerboard (tiles shrink
  and crowd towards the horizon), and a back wall at distance ``U(4.5, 7)``, turned about the vertical
  axis by ``U(-0.5, 0.5)`` rad, with a world-fixed grid of lines (their spacing in the image shows its
  distance and turn).
* **Objects**, 2-4 per scene, standing on the floor at depth ``U(1.8, 4.5)`` with half-width
  ``U(0.4, 0.65)`` (z-buffered): sphere (class 1; curved normals), box turned about the vertical axis
  (class 2; up to 3 planar faces), square pyramid turned about the vertical axis (class 3; up to 4 planar
  faces).
  Their hue is random but their brightness (channel mean of the albedo) is fixed, so the class must be
  read from shape, not colour.
* **Image**: albedo x (ambient + Lambertian shading from the FIXED light ``LIGHT``) + Gaussian noise,
  rendered at 2x2 supersampling (anti-aliased edges and textures); targets at the pixel centres.
* **Sensor holes**: each pixel, with probability ``HOLE_RATE``, has invalid depth (0) and invalid normals
  (all 0), like NYUv2's Kinect dropouts, so the masking path of losses and metrics is always exercised.

What an ideal predictor can recover from one image (identifiability):

* **Segmentation**: exactly, up to anti-aliased edge pixels and noise (shape cues; objects never share
  the background's textures).
* **Depth**: the floor's depth is a known function of the row (``CAM_HEIGHT * FOCAL / (v - HORIZON)``);
  an object's depth is the floor depth at its contact row (it stands on the floor), and within it follows
  from its shading; the wall's distance and turn follow from the row where it meets the floor and from
  its line spacing. Only hole pixels and a pixel or two at occlusion edges are ambiguous.
* **Normals**: floor (0, -1, 0) everywhere; the wall's normal from its turn (above) and its uniform
  shade under the fixed light; objects' normals from shading: with a fixed light and a fixed albedo
  brightness, one shade fixes the angle to the light, and the shape (sphere centre, face layout)
  resolves the rest.

A small full-resolution CNN sees the absolute row only near the image border, so it reads depth from
local cues (tile size, contact points, shading).
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

FOCAL = 1.5  # focal length in units of half the image width (field of view about 67 degrees)
HORIZON = -0.35  # image row (v in [-1, 1], down) of the horizon: the camera looks slightly down
CAM_HEIGHT = 1.0  # camera height above the floor (world units; depth is in the same units)
LIGHT = np.array([-0.35, -0.75, 0.55]) / np.linalg.norm(
    [-0.35, -0.75, 0.55]
)  # towards the light (x right, y down, z to camera)
AMBIENT = 0.25
HOLE_RATE = 0.02
SUPERSAMPLE = 2


def _rot_y(phi: float) -> np.ndarray:
    c, s = np.cos(phi), np.sin(phi)
    return np.array([[c, 0.0, s], [0.0, 1.0, 0.0], [-s, 0.0, c]])


def _convex(d: np.ndarray, planes: list[tuple[np.ndarray, float]]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Rays ``p = t * d`` from the origin (d: (3, P) with d_z = 1, so t is depth) against the convex solid
    ``{p: n_k . p <= b_k}``: (hit (P,), depth (P,), outward normal of the entry face (3, P))."""
    n = np.stack([pl[0] for pl in planes])  # (K, 3)
    b = np.array([pl[1] for pl in planes])[:, None]  # (K, 1)
    nd = n @ d  # (K, P)
    with np.errstate(divide="ignore", invalid="ignore"):
        t = b / nd
    t_enter = np.where(nd < 0, t, -np.inf)  # entering through plane k no earlier than t
    t_exit = np.where(nd > 0, t, np.inf)
    face = t_enter.argmax(0)  # (P,)
    t_in = t_enter.max(0)
    ok = ((nd != 0) | (b >= 0)).all(0)  # a ray parallel to a plane must lie inside it
    hit = ok & (t_in <= t_exit.min(0)) & (t_in > 0)
    return hit, t_in, n.T[:, face]


def _object(kind: int, rng: np.random.Generator) -> dict:
    """Parameters of one object standing on the floor (drawn in a fixed order: deterministic)."""
    z = rng.uniform(1.8, 4.5)
    x = rng.uniform(-0.7, 0.7) * z / FOCAL  # horizontally inside the view
    size = rng.uniform(0.4, 0.65)
    phi = rng.uniform(0.0, np.pi / 2)
    hue = rng.normal(size=3)
    hue -= hue.mean()
    hue *= 0.22 / max(np.linalg.norm(hue), 1e-6)
    return {"kind": kind, "x": x, "z": z, "size": size, "phi": phi, "albedo": 0.72 + hue}


def _trace_object(obj: dict, d: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(hit, depth, outward normal in the forward frame (z away from the camera)) of one object for rays d (3, P)."""
    s, floor = obj["size"], CAM_HEIGHT
    if obj["kind"] == 1:  # sphere resting on the floor
        c = np.array([obj["x"], floor - s, obj["z"]])
        dd = (d * d).sum(0)
        dc = c @ d
        disc = dc * dc - dd * (c @ c - s * s)
        hit = disc > 0
        t = (dc - np.sqrt(np.clip(disc, 0.0, None))) / dd
        n = (t * d - c[:, None]) / s
        return hit & (t > 0), t, n
    rot = _rot_y(obj["phi"])
    c = np.array([obj["x"], floor, obj["z"]])  # centre of the base, on the floor
    if obj["kind"] == 2:  # box: half-width s, height 1.6 s
        h = 1.6 * s
        local = [
            (np.array([1.0, 0, 0]), s),
            (np.array([-1.0, 0, 0]), s),
            (np.array([0, 0, 1.0]), s),
            (np.array([0, 0, -1.0]), s),
            (np.array([0, 1.0, 0]), 0.0),
            (np.array([0, -1.0, 0]), h),
        ]
    else:  # square pyramid: base half-width s, apex 2.2 s above the base
        h = 2.2 * s
        local = [(np.array([0, 1.0, 0]), 0.0)]
        for a in (np.array([1.0, 0, 0]), np.array([-1.0, 0, 0]), np.array([0, 0, 1.0]), np.array([0, 0, -1.0])):
            n = a * h - np.array([0, 1.0, 0]) * s  # side face through the base edge and the apex (y up = -y)
            n /= np.linalg.norm(n)
            local.append((n, float(n @ (a * s))))
    planes = []
    for n, b in local:  # world plane: (R n) . (p - c) <= b
        nw = rot @ n
        planes.append((nw, b + float(nw @ c)))
    return _convex(d, planes)


def _trace(scene: dict, u: np.ndarray, v: np.ndarray) -> tuple[np.ndarray, ...]:
    """Everything visible through the pixels (u, v) (flat arrays): seg, depth, forward-frame normal (3, P),
    albedo (3, P)."""
    d = np.stack([u / FOCAL, (v - HORIZON) / FOCAL, np.ones_like(u)])  # (3, P) ray directions, d_z = 1
    # back wall: plane n_w . p = z_w cos(theta) (facing the camera), textured with a grid of lines
    th = scene["wall_turn"]
    nw = np.array([np.sin(th), 0.0, np.cos(th)])
    depth = scene["wall_z"] * np.cos(th) / (nw @ d)
    p = depth * d
    along = p[0] * np.cos(th) - p[2] * np.sin(th)  # coordinate along the wall
    lines = (np.abs(((along / 0.7) % 1.0) - 0.5) > 0.44) | (np.abs(((p[1] / 0.5) % 1.0) - 0.5) > 0.44)
    albedo = np.where(lines, 0.35, 0.6)[None] * np.array([1.0, 0.95, 0.85])[:, None]
    normal = np.broadcast_to(-nw[:, None], d.shape).copy()  # (3, P)
    # floor y = CAM_HEIGHT below the horizon, where nearer than the wall: a world-fixed checkerboard
    with np.errstate(divide="ignore", invalid="ignore"):
        tf = np.where(d[1] > 0, CAM_HEIGHT / np.where(d[1] > 0, d[1], 1.0), np.inf)
    on_floor = tf < depth
    with np.errstate(invalid="ignore"):  # inf * 0 above the horizon: masked by on_floor
        pf = tf * d
        checker = (np.floor(pf[0] / 0.5) + np.floor(pf[2] / 0.5)) % 2 == 0
    floor_albedo = np.where(checker, 0.75, 0.4)[None] * np.array([0.85, 0.9, 1.0])[:, None]
    depth = np.where(on_floor, tf, depth)
    normal = np.where(on_floor[None], np.array([0.0, -1.0, 0.0])[:, None], normal)
    albedo = np.where(on_floor[None], floor_albedo, albedo)
    seg = np.zeros(u.shape, np.int64)
    for obj in scene["objects"]:
        idx = np.nonzero(_in_bounds(obj, u, v))[0]  # trace only the rays that can hit the object
        hit, t, n = _trace_object(obj, d[:, idx])
        vis = hit & (t < depth[idx])
        idx, t, n = idx[vis], t[vis], n[:, vis]
        depth[idx] = t
        normal[:, idx] = n
        albedo[:, idx] = obj["albedo"][:, None]
        seg[idx] = obj["kind"]
    return seg, depth, normal, albedo


def _in_bounds(obj: dict, u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Pixels inside the image rectangle of the object's bounding box (conservative)."""
    r, top = 1.5 * obj["size"], CAM_HEIGHT - 2.3 * obj["size"]  # radius around the vertical axis, top (y down)
    zs = np.array([obj["z"] - r, obj["z"] + r])
    xs = (obj["x"] + np.array([-r, r]))[:, None] / zs[None]  # (2, 2)
    ys = np.array([top, CAM_HEIGHT])[:, None] / zs[None]
    u0, u1 = FOCAL * xs.min(), FOCAL * xs.max()
    v0, v1 = HORIZON + FOCAL * ys.min(), HORIZON + FOCAL * ys.max()
    return (u >= u0) & (u <= u1) & (v >= v0) & (v <= v1)


@functools.lru_cache(maxsize=8)
def _grid(h: int, w: int, ss: int) -> tuple[np.ndarray, np.ndarray]:
    """Pixel-centre coordinates (u, v) in [-1, 1] of an (h*ss, w*ss) grid, flattened (cached: read only)."""
    v = (np.arange(h * ss) + 0.5) / (h * ss) * 2 - 1
    u = (np.arange(w * ss) + 0.5) / (w * ss) * 2 - 1
    vv, uu = np.meshgrid(v, u, indexing="ij")
    return uu.ravel(), vv.ravel()


def sample_scene(rng: np.random.Generator) -> dict:
    """A scene's parameters: ``wall_z``, ``wall_turn`` and ``objects`` (dicts: kind, x, z, size, phi, albedo)."""
    scene = {"wall_z": rng.uniform(4.5, 7.0), "wall_turn": rng.uniform(-0.5, 0.5)}
    kinds = rng.choice([1, 2, 3], size=int(rng.integers(2, 5)))
    scene["objects"] = [_object(int(k), rng) for k in kinds]
    return scene


def render(
    scene: dict, h: int, w: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Image (3,H,W) float32, seg (H,W) int64, depth (1,H,W) float32, normal (3,H,W) float32 of ``scene``;
    ``rng`` draws the image noise and the sensor holes.

    Normals are in the camera frame with x right, y down and z towards the camera (a surface facing the
    camera has n_z > 0)."""
    flip = np.array([1.0, 1.0, -1.0])[:, None]  # forward frame (z away from the camera) -> camera-facing z
    # image at SUPERSAMPLE^2 samples per pixel
    u, v = _grid(h, w, SUPERSAMPLE)
    _, _, n_hi, alb_hi = _trace(scene, u, v)
    shade = AMBIENT + (1 - AMBIENT) * np.clip(LIGHT @ (n_hi * flip), 0.0, 1.0)  # (P,)
    img = (alb_hi * shade).reshape(3, h, SUPERSAMPLE, w, SUPERSAMPLE).mean(axis=(2, 4))
    image = img + rng.normal(0.0, 0.02, size=(3, h, w))
    # targets at the pixel centres
    u, v = _grid(h, w, 1)
    seg, depth, normal, _ = _trace(scene, u, v)
    seg, depth, normal = seg.reshape(h, w), depth.reshape(h, w), (normal * flip).reshape(3, h, w)

    holes = rng.random((h, w)) < HOLE_RATE
    depth = np.where(holes, 0.0, depth)
    normal = np.where(holes[None], 0.0, normal)
    return (
        image.astype(np.float32),
        seg,
        depth[None].astype(np.float32),
        normal.astype(np.float32),
    )


def render_scene(rng: np.random.Generator, h: int, w: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """One random scene (``sample_scene``) rendered by ``render``."""
    return render(sample_scene(rng), h, w, rng)


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
    """``n`` procedural scenes, pre-rendered once (``render_split``) so epochs cost only the network."""

    def __init__(self, n: int, image_size: tuple[int, int], seed: int, tasks: tuple[str, ...]):
        self.images, all_targets = render_split(n, image_size[0], image_size[1], seed)
        self.targets = {t: all_targets[t] for t in tasks}

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        return self.images[i], {t: v[i] for t, v in self.targets.items()}
