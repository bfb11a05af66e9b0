"""The embedded renderer: target formats, geometry a perspective camera implies, and cues in the image."""

from __future__ import annotations

import numpy as np
import pytest

from supernet.data import synthetic as syn

H = W = 32


def _scene(objects=(), wall_z=6.0, wall_turn=0.0) -> dict:
    objs = [{"kind": k, "x": x, "z": z, "size": s, "phi": 0.3, "albedo": np.full(3, 0.72)} for k, x, z, s in objects]
    return {"wall_z": wall_z, "wall_turn": wall_turn, "objects": objs}


def _render(scene: dict, h: int = H, w: int = W):
    return syn.render(scene, h, w, np.random.default_rng(0))


def test_split_formats_holes_and_classes():
    images, t = syn.render_split(64, H, W, 123)
    assert images.shape == (64, 3, H, W) and t["depth"].shape == (64, 1, H, W) and t["normal"].shape == (64, 3, H, W)
    seg, depth, normal = t["segmentation"], t["depth"][:, 0], t["normal"]
    holes = depth == 0
    assert 0.01 < float(holes.float().mean()) < 0.03  # ~2% sensor holes
    assert bool((normal.abs().sum(1) == 0).eq(holes).all())  # depth and normal holes coincide
    norms = normal.norm(dim=1)[~holes]
    assert float((norms - 1).abs().max()) < 1e-5
    v, u = np.meshgrid((np.arange(H) + 0.5) / H * 2 - 1, (np.arange(W) + 0.5) / W * 2 - 1, indexing="ij")
    towards_camera = -np.stack([u / syn.FOCAL, (v - syn.HORIZON) / syn.FOCAL, -np.ones_like(u)])  # (3, H, W)
    facing = (normal.numpy() * towards_camera).sum(1)[~holes.numpy()]
    assert facing.min() >= -1e-5  # every visible surface faces the camera (z is towards the camera)
    freq = np.bincount(seg.flatten().numpy(), minlength=4) / seg.numel()
    assert set(np.unique(seg.numpy())) == {0, 1, 2, 3}
    assert 0.6 < freq[0] < 0.95 and freq[1:].min() > 0.01  # imbalanced, not absurdly


def test_deterministic_in_seed():
    a, ta = syn.render_split(8, 16, 16, 7)
    syn.render_split.cache_clear()
    b, tb = syn.render_split(8, 16, 16, 7)
    assert bool((a == b).all()) and all(bool((ta[k] == tb[k]).all()) for k in ta)


def test_floor_depth_is_a_function_of_the_row():
    _, seg, depth, normal = _render(_scene())
    v = (np.arange(H) + 0.5) / H * 2 - 1
    rows = v > syn.HORIZON + syn.CAM_HEIGHT * syn.FOCAL / 6.0  # below where the floor meets the wall at z = 6
    expected = syn.CAM_HEIGHT * syn.FOCAL / (v[rows] - syn.HORIZON)
    d, valid = depth[0][rows], depth[0][rows] > 0
    assert np.allclose(d[valid], np.broadcast_to(expected[:, None], d.shape)[valid], rtol=1e-5)
    n = normal[:, rows][:, valid]
    assert np.allclose(n, np.array([0.0, -1.0, 0.0])[:, None])  # the floor faces up
    assert bool((seg == 0).all())


def test_far_objects_look_smaller_and_stand_on_the_floor():
    for kind in (1, 2, 3):
        near = _render(_scene([(kind, 0.0, 2.0, 0.5)]), 64, 64)
        far = _render(_scene([(kind, 0.0, 4.0, 0.5)]), 64, 64)
        area_near, area_far = int((near[1] == kind).sum()), int((far[1] == kind).sum())
        assert area_far < 0.4 * area_near  # perspective: about a quarter of the area at twice the distance
        # the lowest object pixel sits on the floor row of its depth (it stands on the floor)
        rows = np.nonzero((far[1] == kind).any(axis=1))[0]
        v_bottom = (rows.max() + 0.5) / 64 * 2 - 1
        assert v_bottom == pytest.approx(syn.HORIZON + syn.CAM_HEIGHT * syn.FOCAL / 4.0, abs=0.12)


def test_shading_encodes_the_wall_turn():
    """Fixed light: the wall's shade changes with its normal (the old renderer's random light hid it)."""
    top = slice(0, 4)  # rows above the horizon: only wall
    left = _render(_scene(wall_turn=-0.4))[0][:, top].mean()
    right = _render(_scene(wall_turn=0.4))[0][:, top].mean()
    assert abs(left - right) > 0.05


def test_normals_match_the_known_planes():
    _, seg, depth, normal = _render(_scene(wall_turn=0.3))
    wall = (depth[0] > 0) & (np.arange(H)[:, None] < 4)
    assert np.allclose(normal[:, wall], np.array([-np.sin(0.3), 0.0, np.cos(0.3)])[:, None], atol=1e-6)
