"""Tiny on-disk fixtures in exactly the layouts the real-data loaders read (shrunk, consistent shapes).

- ``write_dense_npy``: the MTAN/LibMTL ``ROOT/{train,val}/{image,label,depth,normal}/<i>.npy`` layout,
  stored as MTAN stores it (image (H, W, 3) float in [0, 1], label (H, W) float with -1, depth (H, W, 1)
  float with 0 holes, normal (H, W, 3) unit with all-zero holes) or channel-first with ``layout="chw"``.
- ``write_omniglot``: torchvision's ``ROOT/omniglot-py/images_background/<alphabet>/<character>/*.png``
  with 1-bit PNGs like the real ones (105x105 by default).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

NUM_CLASSES = {"nyuv2": 13, "cityscapes": 7}


def dense_sample(rng: np.random.Generator, h: int, w: int, num_classes: int) -> dict[str, np.ndarray]:
    """One sample in MTAN's stored format; holes: labels -1, depth 0, normals all-zero (about 10% each)."""
    image = rng.random((h, w, 3), dtype=np.float32)
    label = rng.integers(0, num_classes, size=(h, w)).astype(np.float32)
    label[rng.random((h, w)) < 0.1] = -1.0
    depth = rng.uniform(0.5, 10.0, size=(h, w, 1)).astype(np.float32)
    depth[rng.random((h, w)) < 0.1] = 0.0
    normal = rng.normal(size=(h, w, 3)).astype(np.float32)
    normal /= np.linalg.norm(normal, axis=-1, keepdims=True)
    normal[rng.random((h, w)) < 0.1] = 0.0
    return {"image": image, "label": label, "depth": depth, "normal": normal}


def write_dense_npy(
    root: str | Path,
    name: str = "nyuv2",
    n_train: int = 4,
    n_val: int = 2,
    size: tuple[int, int] = (24, 32),
    layout: str = "hwc",
    depth_2d: bool = False,
    label_folder: str = "label",
    seed: int = 0,
) -> Path:
    """Write a tiny NYUv2 (image/label/depth/normal) or CityScapes (no normal) fixture; return ROOT."""
    root = Path(root)
    rng = np.random.default_rng(seed)
    h, w = size
    for split, n in (("train", n_train), ("val", n_val)):
        for i in range(n):
            s = dense_sample(rng, h, w, NUM_CLASSES[name])
            if depth_2d:
                s["depth"] = s["depth"][..., 0]
            if layout == "chw":
                s = {k: (np.moveaxis(v, -1, 0) if v.ndim == 3 else v) for k, v in s.items()}
            if name == "cityscapes":
                del s["normal"]
            for modality, arr in s.items():
                folder = root / split / (label_folder if modality == "label" else modality)
                folder.mkdir(parents=True, exist_ok=True)
                np.save(folder / f"{i}.npy", arr)
    return root


def write_omniglot(
    root: str | Path,
    alphabets: dict[str, int] | None = None,
    drawings: int = 20,
    size: int = 105,
    nest: bool = True,
    seed: int = 0,
) -> Path:
    """Write ``alphabets`` = {name: number of characters}, ``drawings`` 1-bit PNGs each; return ROOT.

    Drawing ``k`` of character ``c`` has a white background and a dark bar whose row is ``c`` and column
    ``k``-dependent, so tests can tell drawings apart. Files are named like torchvision's
    (``<character id>_<drawing>.png``).
    """
    alphabets = alphabets or {"Alpha": 3, "Beta_(test)": 2, "Gamma": 4}
    root = Path(root)
    base = root / "omniglot-py" / "images_background" if nest else root
    rng = np.random.default_rng(seed)
    cid = 0
    for a, n_chars in alphabets.items():
        for c in range(n_chars):
            cid += 1
            folder = base / a / f"character{c + 1:02d}"
            folder.mkdir(parents=True, exist_ok=True)
            for k in range(drawings):
                img = np.ones((size, size), dtype=bool)  # white
                r = (c * 7) % (size - 4)
                col = int(rng.integers(0, size - 4))
                img[r : r + 3, :] = False
                img[:, col : col + 2] = False
                Image.fromarray(img).convert("1").save(folder / f"{cid:04d}_{k + 1:02d}.png")
    return root
