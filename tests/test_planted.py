"""The planted benchmark: targets by hand, the exact oracle, and what each task needs."""

from __future__ import annotations

import numpy as np
import pytest

from supernet.config import build_config
from supernet.data import build_data
from supernet.data.planted import (
    CLASSES,
    PLANTED,
    STEP,
    VIEW_BASE,
    VIEW_PER_EDGE,
    binomial_mad,
    generate_split,
    make_targets,
    oracle,
    planted_summary,
)


def test_targets_match_a_count_by_hand():
    images, targets = generate_split(3, 16, 16, seed=7)
    img = images.numpy()
    for name, p in PLANTED.items():
        t = targets[name].numpy()
        r = p.box // 2
        for n in range(3):
            for y in range(16):
                for x in range(16):
                    if p.kind == "segmentation":
                        assert t[n, y, x] == min(int(img[n, p.channel, y, x] * CLASSES), CLASSES - 1)
                        continue
                    inside = r <= y < 16 - r and r <= x < 16 - r
                    want = 1 + STEP * img[n, p.channel, y - r : y + r + 1, x - r : x + r + 1].sum() if inside else 0.0
                    assert t[n, 0, y, x] == pytest.approx(want, abs=1e-5)


def test_each_task_needs_the_path_whose_window_covers_its_box():
    assert {t: p.needs_edges for t, p in PLANTED.items()} == {"local": 0, "mid": 1, "deep": 3}
    for p in PLANTED.values():
        k = p.needs_edges
        assert VIEW_BASE + VIEW_PER_EDGE * k >= p.box  # the window of k edges covers the box
        assert k == 0 or VIEW_BASE + VIEW_PER_EDGE * (k - 1) < p.box  # one edge fewer does not


def test_binomial_mad_by_hand():
    assert binomial_mad(0, 0.3) == 0.0
    assert binomial_mad(1, 0.5) == pytest.approx(0.5)  # median 0: E|X| = 0.5
    assert binomial_mad(2, 0.5) == pytest.approx(0.5)  # median 1: P(X != 1) = 0.5
    assert binomial_mad(3, 0.1) == pytest.approx(1 - 0.9**3 + 3 * 0.1**2 * 0.9 + 2 * 0.1**3)  # median 0: E[X]


@pytest.mark.parametrize("task", ["mid", "deep"])
def test_the_oracle_is_what_the_best_predictor_of_each_window_reaches(task):
    """On a generated set, the L1-optimal predictor of a k-edge window (the dots in view plus the median of
    the rest) has the oracle's error, and no better one exists: the oracle decreases to 0 at needs_edges."""
    p = PLANTED[task]
    images, targets = generate_split(300, 24, 24, seed=3)
    dots = images.numpy()[:, p.channel]
    target = targets[task].numpy()[:, 0]
    valid = target > 0
    by = oracle(task)["by_edges"]
    assert len(by) == p.needs_edges + 1 and by[-1] == 0.0 and all(a > b for a, b in zip(by, by[1:]))
    for k, bound in enumerate(by):
        view = min(VIEW_BASE + VIEW_PER_EDGE * k, p.box)
        seen = make_targets_window(dots, view)
        rest = p.box**2 - view**2
        median = int(np.floor(rest * 0.1)) if rest else 0  # Binomial(n, 0.1): median = floor(n p) here
        pred = 1 + STEP * (seen + median)
        err = float(np.abs(pred - target)[valid].mean())
        assert err == pytest.approx(bound, rel=0.05, abs=1e-6)


def make_targets_window(dots: np.ndarray, view: int) -> np.ndarray:
    """Dots in the view x view window around every pixel, counted by hand."""
    n, h, w = dots.shape
    r = view // 2
    padded = np.pad(dots, ((0, 0), (r, r), (r, r)))
    out = np.zeros((n, h, w))
    for dy in range(view):
        for dx in range(view):
            out += padded[:, dy : dy + h, dx : dx + w]
    return out


def test_build_data_offers_the_planted_tasks_and_summary():
    cfg = build_config("tiny", {"data.name": "planted", "data.image_size": [16, 16], "data.tasks": ["local", "deep"]})
    data = build_data(cfg.data)
    assert list(data.tasks) == ["local", "deep"]
    image, targets = data.train[0]
    assert tuple(image.shape) == (3, 16, 16) and set(targets) == {"local", "deep"}
    s = planted_summary(("local", "deep"))
    assert s["needs_edges"] == {"local": 0, "deep": 3}
    assert s["oracle"]["local"] == {"metric": "miou", "sense": "max", "by_edges": [1.0]}


def test_images_smaller_than_a_box_are_refused():
    cfg = build_config("tiny", {"data.name": "planted", "data.image_size": [8, 8], "data.tasks": ["deep"]})
    with pytest.raises(ValueError, match="smaller than a planted task's box"):
        build_data(cfg.data)


def test_make_targets_marks_only_pixels_whose_box_fits_valid():
    t = make_targets(np.zeros((1, 3, 12, 12), dtype=np.float32))
    assert (t["deep"][0, 0] > 0).sum() == 2 * 2  # 12 - 10 rows and columns where an 11x11 box fits
    assert (t["mid"][0, 0] > 0).sum() == 6 * 6
