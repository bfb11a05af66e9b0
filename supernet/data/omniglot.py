"""Omniglot as torchvision extracts it, one classification task per alphabet. Nothing is downloaded.

Layout (``torchvision.datasets.Omniglot(root, background=True)`` leaves exactly this)::

    ROOT/omniglot-py/images_background/<alphabet>/<character>/<drawing>.png   (105x105, 1-bit or L)

``data.root`` may point at ``ROOT``, at ``ROOT/omniglot-py`` or at ``images_background`` itself.
The background set has 30 alphabets, 964 characters, 20 drawings per character.

Tasks (ours, as in multi-task Omniglot setups): every alphabet folder is a classification task named
after the folder (e.g. ``Latin``), whose classes are that alphabet's characters (sorted folder names).
One data stream: an item is ``(image float32 (3, H, W), {alphabet: int64 scalar})`` with the character
id for the image's own alphabet and -1 (ignored by loss and metrics) for every other selected alphabet.
With ``data.tasks`` set, only the images of the selected alphabets are in the stream.

Split (ours): per character, the drawings (sorted by file name) are permuted by a generator seeded with
``data.data_seed`` and the character's path; the first ``n - n // 4`` go to train and the last
``n // 4`` to val (15 / 5 of the usual 20). The split depends on nothing else (not on which tasks are
selected or on the trial seed), and train and val never share a drawing.

Images: read with PIL, converted to grey (strokes dark on a white background, as stored), resized to
``data.image_size`` (bilinear with PIL's antialiasing), scaled to [0, 1] and repeated to 3 channels.
``data.augment`` applies a random scale-crop (``augment.DenseAugment``) without flipping to training items.
"""

from __future__ import annotations

import zlib
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch.utils.data import Dataset

from ..config import ConfigError, DataConfig, DataError
from ..tasks import TaskSpec
from .augment import Augmented, DenseAugment

_LAYOUT = "ROOT/omniglot-py/images_background/<alphabet>/<character>/*.png (torchvision's Omniglot layout)"


def find_background(root: str | Path) -> Path:
    """The ``images_background`` folder for ``data.root`` = ROOT, ROOT/omniglot-py or the folder itself."""
    root = Path(root).expanduser()
    if not root.is_dir():
        raise FileNotFoundError(f"data.root {str(root)!r} does not exist or is not a folder; expected {_LAYOUT}")
    for cand in (root / "omniglot-py" / "images_background", root / "images_background"):
        if cand.is_dir():
            return cand
    return root  # data.root is images_background itself (or a folder of alphabets in that layout)


def scan(background: Path) -> dict[str, dict[str, list[Path]]]:
    """{alphabet: {character: [png paths, sorted]}} with sorted keys; errors name the offending folder."""
    alphabets = sorted(p for p in background.iterdir() if p.is_dir() and not p.name.startswith("."))
    if not alphabets:
        raise FileNotFoundError(f"{background}: no alphabet folders found; expected {_LAYOUT}")
    out: dict[str, dict[str, list[Path]]] = {}
    for a in alphabets:
        chars = sorted(p for p in a.iterdir() if p.is_dir() and not p.name.startswith("."))
        if len(chars) < 2:
            raise DataError(
                f"{a}: an alphabet needs at least 2 character folders, found {len(chars)}; expected {_LAYOUT}"
            )
        out[a.name] = {}
        for c in chars:
            pngs = sorted(c.glob("*.png"))
            if not pngs:
                raise FileNotFoundError(f"{c}: character folder holds no .png drawings; expected {_LAYOUT}")
            out[a.name][c.name] = pngs
    return out


def split_drawings(pngs: list[Path], key: str, seed: int) -> tuple[list[Path], list[Path]]:
    """(train, val) drawings of one character: a permutation seeded by (seed, key); val = the last n // 4."""
    rng = np.random.default_rng([seed, zlib.crc32(key.encode())])
    perm = [pngs[i] for i in rng.permutation(len(pngs))]
    n_val = len(pngs) // 4
    return perm[: len(pngs) - n_val], perm[len(pngs) - n_val :]


def load_png(path: Path, size: tuple[int, int]) -> torch.Tensor:
    """(3, H, W) float32 in [0, 1] from a grey / 1-bit PNG; an unreadable file raises naming it."""
    try:
        with Image.open(path) as im:
            im = im.convert("L").resize((size[1], size[0]), Image.BILINEAR)
            arr = np.asarray(im, dtype=np.float32) / 255.0  # (H, W)
    except Exception as e:  # noqa: BLE001 - truncated, not a PNG, unreadable: the same fix
        raise DataError(f"{path}: not a readable PNG image ({type(e).__name__}: {e}); re-extract Omniglot") from None
    return torch.from_numpy(arr)[None].expand(3, -1, -1).contiguous()


class OmniglotTasks(Dataset):
    """One split of the multi-alphabet stream; ``items`` are (path, task name, character id)."""

    def __init__(self, items: list[tuple[Path, str, int]], tasks: tuple[str, ...], size: tuple[int, int]):
        self.items, self.tasks, self.size = items, tasks, (int(size[0]), int(size[1]))

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        path, own, label = self.items[i]
        image = load_png(path, self.size)
        targets = {t: torch.tensor(label if t == own else -1, dtype=torch.int64) for t in self.tasks}
        return image, targets


def build_omniglot(cfg: DataConfig) -> tuple[Dataset, Dataset, dict[str, TaskSpec]]:
    """``(train, val, tasks)``: one classification task per alphabet (module doc)."""
    from . import select_tasks

    if cfg.root is None:
        raise ConfigError(
            f"data.root: omniglot needs a local folder in the layout {_LAYOUT}; "
            "pass --set data.root=/path/to/omniglot (nothing is downloaded)"
        )
    alphabets = scan(find_background(cfg.root))
    available = {a: TaskSpec(a, "classification", num_classes=len(chars)) for a, chars in alphabets.items()}
    tasks = select_tasks(available, tuple(cfg.tasks))
    train_items: list[tuple[Path, str, int]] = []
    val_items: list[tuple[Path, str, int]] = []
    for a in tasks:
        for label, (c, pngs) in enumerate(alphabets[a].items()):
            tr, va = split_drawings(pngs, f"{a}/{c}", cfg.data_seed)
            train_items += [(p, a, label) for p in tr]
            val_items += [(p, a, label) for p in va]
    names, size = tuple(tasks), tuple(cfg.image_size)
    train: Dataset = OmniglotTasks(train_items, names, size)
    val: Dataset = OmniglotTasks(val_items, names, size)
    if not len(val):
        raise DataError(f"{find_background(cfg.root)}: no validation drawings; every character needs >= 4 drawings")
    _ = train[0], val[0]  # one readable drawing per split now, rather than an error mid-epoch
    if cfg.augment:
        train = Augmented(train, DenseAugment({t: "classification" for t in names}, flip=False))
    return train, val, tasks
