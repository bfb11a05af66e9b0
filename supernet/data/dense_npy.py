"""NYUv2 and CityScapes in the MTAN / LibMTL preprocessed ``.npy`` layout. Nothing is downloaded.

On-disk layout (as MTAN's ``im2im_pred/create_dataset.py`` and LibMTL's ``examples/{nyu,cityscapes}``
read it)::

    ROOT/train/image/0.npy  1.npy ...     (H, W, 3) float, values in [0, 1]
    ROOT/train/label/0.npy  ...           (H, W) float, class ids as whole numbers, -1 = ignore
    ROOT/train/depth/0.npy  ...           (H, W, 1) float, 0 = invalid (CityScapes: MTAN's inverse depth)
    ROOT/train/normal/0.npy ...           (H, W, 3) float unit vectors, all-zero = invalid (NYUv2 only)
    ROOT/val/...                          the same for the validation split

NYUv2 (MTAN): 795 train / 654 val, 288x384, tasks ``segmentation`` (13 classes), ``depth``, ``normal``.
CityScapes (MTAN's 128x256 release): 2975 train / 500 val, tasks ``segmentation`` (7 classes), ``depth``.
MTAN's own CityScapes archive names the label folder ``label_7`` (beside ``label_2``/``label_19``);
LibMTL's names it ``label``. We read ``label`` and fall back to ``label_7``.

Conventions we accept (each unambiguous): image ``(H, W, 3)`` (stored) or ``(3, H, W)``, float in
[0, 1] or uint8 in [0, 255]; label ``(H, W)``, ``(H, W, 1)`` or ``(1, H, W)``, float or integer dtype;
depth ``(H, W)``, ``(H, W, 1)`` or ``(1, H, W)``; normal ``(H, W, 3)`` or ``(3, H, W)``. An array whose
first and last axes are both of length 3 (or 1) is ambiguous and rejected. Files are paired by their
integer stem (``17.npy``) across modality folders; indices need not be contiguous.

Validation: construction checks the folders, that every modality holds exactly the image indices, and
loads the first sample fully. Every item is then validated again when loaded (readable, numeric dtype,
shape matching the split's size, finite values, labels in ``{-1, 0..K-1}``, depth >= 0, normal components
in [-1, 1]), so a corrupt file raises an error that names it instead of training as zeros. Valid normals
are re-normalised to unit length on load.

Size (ours): items are resized to ``data.image_size`` when it differs from the stored size - bilinear
(antialiased) for the image, nearest for labels, masked bilinear for depth and normals (see
``augment.py``: invalid pixels stay invalid, valid values are never blended with holes). Set
``data.image_size`` to the stored size (``[288, 384]`` / ``[128, 256]``, as ``configs/*.yaml`` do) to
train at full resolution. ``data.augment`` adds ``augment.DenseAugment`` to the training split only.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from ..config import ConfigError, DataConfig, DataError
from ..tasks import TaskSpec
from .augment import Augmented, DenseAugment, resize_sample

DATASETS: dict[str, dict[str, TaskSpec]] = {
    "nyuv2": {
        "segmentation": TaskSpec("segmentation", "segmentation", num_classes=13),
        "depth": TaskSpec("depth", "depth"),
        "normal": TaskSpec("normal", "normal"),
    },
    "cityscapes": {
        "segmentation": TaskSpec("segmentation", "segmentation", num_classes=7),
        "depth": TaskSpec("depth", "depth"),
    },
}
STORED_SIZE = {"nyuv2": (288, 384), "cityscapes": (128, 256)}
MODALITY = {"segmentation": "label", "depth": "depth", "normal": "normal"}  # task -> folder
_LABEL_FALLBACK = {"cityscapes": ("label_7",)}
_LAYOUT = "ROOT/{train,val}/{image,label,depth,normal}/<i>.npy (MTAN/LibMTL preprocessed layout)"
_INDEX = re.compile(r"^(\d+)\.npy$")


# ----------------------------------------------------------------------------- one file


def _load_npy(path: Path) -> np.ndarray:
    try:
        arr = np.load(path, allow_pickle=False)
    except Exception as e:  # noqa: BLE001 - truncated, garbage, pickled: all the same to the user
        raise DataError(f"{path}: not a readable .npy array ({type(e).__name__}: {e}); re-extract this file") from None
    if not isinstance(arr, np.ndarray):
        raise DataError(f"{path}: expected one .npy array, found {type(arr).__name__}")
    if arr.dtype.kind not in "fiub":
        raise DataError(f"{path}: dtype {arr.dtype} is not numeric; expected a float (or integer) array")
    return arr


def _to_chw(arr: np.ndarray, channels: int, path: Path, what: str) -> np.ndarray:
    """(H, W, c) or (c, H, W) -> (c, H, W); for c == 1 also (H, W). Ambiguous or other shapes raise."""
    s = arr.shape
    if channels == 1 and arr.ndim == 2:
        return arr[None]
    if arr.ndim == 3:
        last, first = s[-1] == channels, s[0] == channels
        if last and not first:
            return np.moveaxis(arr, -1, 0)
        if first and not last:
            return arr
    shapes = "(H, W, 3) or (3, H, W)" if channels == 3 else "(H, W), (H, W, 1) or (1, H, W)"
    raise DataError(f"{path}: {what} has shape {s}; expected {shapes}")


def _check_size(arr: np.ndarray, size: tuple[int, int], path: Path, what: str, ref: str) -> None:
    if tuple(arr.shape[-2:]) != tuple(size):
        raise DataError(
            f"{path}: {what} is {arr.shape[-2]}x{arr.shape[-1]} but {ref} is {size[0]}x{size[1]}; "
            "every file of a split must have the same height and width"
        )


def _check_finite(arr: np.ndarray, path: Path, what: str) -> None:
    if arr.dtype.kind == "f" and not np.isfinite(arr).all():
        raise DataError(
            f"{path}: {what} holds NaN or inf values; mark invalid pixels with 0 (depth/normal) or -1 (label)"
        )


def load_image(path: Path, size: tuple[int, int] | None, ref: str = "") -> torch.Tensor:
    """(3, H, W) float32 in [0, 1]; ``size`` (and ``ref``, the file it comes from) checks the height and width."""
    arr = _load_npy(path)
    if arr.dtype.kind == "b":
        raise DataError(f"{path}: image has dtype bool; expected float in [0, 1] or uint8")
    arr = _to_chw(arr, 3, path, "image")
    if size is not None:
        _check_size(arr, size, path, "image", ref)
    if arr.dtype == np.uint8:
        arr = arr.astype(np.float32) / 255.0
    _check_finite(arr, path, "image")
    lo, hi = float(arr.min()), float(arr.max())
    if lo < -1e-3 or hi > 1.0 + 1e-3:
        raise DataError(f"{path}: image values span [{lo:.3g}, {hi:.3g}]; expected floats in [0, 1] (or uint8 0..255)")
    return torch.from_numpy(np.ascontiguousarray(arr, dtype=np.float32))


def load_label(path: Path, size: tuple[int, int], num_classes: int, ref: str = "the image") -> torch.Tensor:
    """(H, W) int64, -1 = ignore."""
    arr = _load_npy(path)
    if arr.dtype.kind == "b":
        raise DataError(f"{path}: label has dtype bool; expected class ids (float or int), -1 = ignore")
    arr = _to_chw(arr, 1, path, "label")[0]
    _check_size(arr, size, path, "label", ref)
    _check_finite(arr, path, "label")
    if arr.dtype.kind == "f" and not np.array_equal(arr, np.round(arr)):
        raise DataError(f"{path}: label holds non-integer values; expected class ids 0..{num_classes - 1} or -1")
    bad = np.unique(arr[(arr < -1) | (arr >= num_classes)])
    if bad.size:
        raise DataError(
            f"{path}: label holds values {bad[:5].tolist()} outside 0..{num_classes - 1} and -1 (ignore); "
            f"this data set has {num_classes} classes"
        )
    return torch.from_numpy(arr.astype(np.int64))


def _float_map(path: Path, channels: int, size: tuple[int, int], name: str, ref: str, expected: str) -> np.ndarray:
    """A float (channels, H, W) map checked for dtype, layout, size (against ``ref``) and finiteness."""
    arr = _load_npy(path)
    if arr.dtype.kind != "f":
        raise DataError(f"{path}: {name} has dtype {arr.dtype}; expected {expected}")
    arr = _to_chw(arr, channels, path, name)
    _check_size(arr, size, path, name, ref)
    _check_finite(arr, path, name)
    return arr


def load_depth(path: Path, size: tuple[int, int], ref: str = "the image") -> torch.Tensor:
    """(1, H, W) float32, 0 = invalid."""
    arr = _float_map(path, 1, size, "depth", ref, "a float array (0 = invalid)")
    if float(arr.min()) < 0:
        raise DataError(f"{path}: depth holds negative values (min {float(arr.min()):.3g}); expected >= 0, 0 = invalid")
    return torch.from_numpy(np.ascontiguousarray(arr, dtype=np.float32))


def load_normal(path: Path, size: tuple[int, int], ref: str = "the image") -> torch.Tensor:
    """(3, H, W) float32 unit vectors, all-zero = invalid."""
    arr = _float_map(path, 3, size, "normal", ref, "a float array of unit vectors")
    if float(np.abs(arr).max()) > 1.0 + 1e-3:
        raise DataError(
            f"{path}: normal components reach {float(np.abs(arr).max()):.3g}; expected unit vectors in [-1, 1] "
            "(all-zero = invalid), not an 8-bit colour encoding"
        )
    n = torch.from_numpy(np.ascontiguousarray(arr, dtype=np.float32))
    norm = n.norm(dim=0, keepdim=True)  # (1, H, W)
    return torch.where(norm > 0, n / norm.clamp_min(1e-12), torch.zeros_like(n))


# ----------------------------------------------------------------------------- one split


def _indices(folder: Path) -> list[int]:
    out = []
    for p in folder.iterdir():
        if p.suffix != ".npy":
            continue
        m = _INDEX.match(p.name)
        if m is None:
            raise DataError(f"{p}: expected files named <index>.npy (e.g. 0.npy) in {folder}")
        out.append(int(m.group(1)))
    return sorted(out)


def _describe(ids: list[int]) -> str:
    head = ", ".join(str(i) for i in ids[:5])
    return head + (f" (and {len(ids) - 5} more)" if len(ids) > 5 else "")


class DenseNpy(Dataset):
    """One split (``ROOT/train`` or ``ROOT/val``) of a dense data set; items are validated when loaded.

    ``tasks`` maps the tasks to load to their specs; only their modality folders are read.
    ``size`` (H, W): items are resized to it when the stored size differs (None: keep the stored size).
    """

    def __init__(
        self,
        root: str | Path,
        split: str,
        tasks: dict[str, TaskSpec],
        size: tuple[int, int] | None = None,
        dataset: str = "nyuv2",
    ):
        self.split_dir = Path(root) / split
        if not self.split_dir.is_dir():
            raise FileNotFoundError(f"{self.split_dir}: split folder not found; expected {_LAYOUT}")
        self.tasks = dict(tasks)
        self.kinds = {t: s.kind for t, s in self.tasks.items()}
        self.size = None if size is None else (int(size[0]), int(size[1]))
        self.folders = {"image": self._folder("image", ())}
        for t in self.tasks:
            modality = MODALITY[self.tasks[t].kind]
            fallback = _LABEL_FALLBACK.get(dataset, ()) if modality == "label" else ()
            self.folders[t] = self._folder(modality, fallback)
        self.indices = _indices(self.folders["image"])
        if not self.indices:
            raise FileNotFoundError(f"{self.folders['image']}: no <index>.npy files; expected {_LAYOUT}")
        ids = set(self.indices)
        for t, folder in self.folders.items():
            if t == "image":
                continue
            other = set(_indices(folder))
            missing, extra = sorted(ids - other), sorted(other - ids)
            if missing or extra:
                parts = []
                if missing:
                    parts.append(f"indices {_describe(missing)} are in {self.folders['image']} but not in {folder}")
                if extra:
                    parts.append(f"indices {_describe(extra)} are in {folder} but not in {self.folders['image']}")
                raise DataError(
                    "images and targets do not pair up: " + "; ".join(parts) + "; every image needs one file per target"
                )
        first = _load_npy(self.folders["image"] / f"{self.indices[0]}.npy")
        self.stored_size: tuple[int, int] = tuple(
            _to_chw(first, 3, self.folders["image"] / f"{self.indices[0]}.npy", "image").shape[-2:]
        )  # type: ignore[assignment]
        self[0]  # validate one whole sample now (cheap), the rest as they load

    def _folder(self, name: str, fallbacks: tuple[str, ...]) -> Path:
        for n in (name, *fallbacks):
            if (self.split_dir / n).is_dir():
                return self.split_dir / n
        also = f" (or {', '.join(fallbacks)})" if fallbacks else ""
        raise FileNotFoundError(f"{self.split_dir / name}: modality folder{also} not found; expected {_LAYOUT}")

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        name = f"{self.indices[i]}.npy"
        first = self.folders["image"] / f"{self.indices[0]}.npy"
        image = load_image(
            self.folders["image"] / name, self.stored_size, f"the split's first image {first}"
        )  # (3, H, W)
        hw = tuple(image.shape[-2:])
        ref = f"its image {self.folders['image'] / name}"
        targets: dict[str, torch.Tensor] = {}
        for t, spec in self.tasks.items():
            p = self.folders[t] / name
            if spec.kind == "segmentation":
                targets[t] = load_label(p, hw, spec.num_classes, ref)  # (H, W)
            elif spec.kind == "depth":
                targets[t] = load_depth(p, hw, ref)  # (1, H, W)
            else:
                targets[t] = load_normal(p, hw, ref)  # (3, H, W)
        if self.size is not None and self.size != hw:
            image, targets = resize_sample(image, targets, self.kinds, self.size)
        return image, targets


# ----------------------------------------------------------------------------- the builder


def build_dense_npy(cfg: DataConfig) -> tuple[Dataset, Dataset, dict[str, TaskSpec]]:
    """``(train, val, tasks)`` for ``cfg.name`` in {nyuv2, cityscapes} from ``cfg.root`` (module doc)."""
    from . import select_tasks

    if cfg.name not in DATASETS:
        raise ConfigError(f"data.name: {cfg.name!r} is not a dense .npy data set ({sorted(DATASETS)})")
    if cfg.root is None:
        raise ConfigError(
            f"data.root: data set {cfg.name!r} needs a local folder in the layout {_LAYOUT}; "
            "pass --set data.root=/path/to/" + cfg.name + " (nothing is downloaded)"
        )
    root = Path(cfg.root).expanduser()
    if not root.is_dir():
        raise FileNotFoundError(f"data.root {str(root)!r} does not exist or is not a folder; expected {_LAYOUT}")
    tasks = select_tasks(DATASETS[cfg.name], tuple(cfg.tasks))
    size = tuple(cfg.image_size)
    train: Dataset = DenseNpy(root, "train", tasks, size, cfg.name)
    val: Dataset = DenseNpy(root, "val", tasks, size, cfg.name)
    if cfg.augment:
        train = Augmented(train, DenseAugment({t: s.kind for t, s in tasks.items()}))
    return train, val, tasks
