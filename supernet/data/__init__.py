"""Data sets behind one interface.

``build_data(cfg.data) -> DataBundle(train, val, tasks)`` where every dataset item is
``(image: float32 (3, H, W), targets: {task_name: tensor})`` in the target formats of
``supernet.tasks`` (invalid pixels: label -1, depth 0, normal all-zero). The embedded default
(``synthetic``) and the planted benchmark with a known answer (``planted``) need nothing but the installed
packages; real data sets load from ``data.root``.
"""

from __future__ import annotations

from dataclasses import dataclass

from torch.utils.data import Dataset, Subset

from ..config import ConfigError, DataConfig
from ..tasks import TaskSpec


@dataclass
class DataBundle:
    train: Dataset
    val: Dataset
    tasks: dict[str, TaskSpec]  # in the order of data.tasks (or the data set's own order)


def select_tasks(available: dict[str, TaskSpec], wanted: tuple[str, ...]) -> dict[str, TaskSpec]:
    """The tasks to train, checked against what the data set offers (unknown names are an error)."""
    if not wanted:
        return dict(available)
    unknown = [t for t in wanted if t not in available]
    if unknown:
        raise ConfigError(f"data.tasks: unknown task(s) {unknown}; this data set offers {list(available)}")
    return {t: available[t] for t in wanted}


def _limit(ds: Dataset, n: int) -> Dataset:
    return Subset(ds, range(min(n, len(ds)))) if n > 0 else ds


def build_data(cfg: DataConfig) -> DataBundle:
    if cfg.name == "synthetic":
        from .synthetic import TASKS, SyntheticScenes

        tasks = select_tasks(TASKS, cfg.tasks)
        names = tuple(tasks)
        train = SyntheticScenes(cfg.n_train, cfg.image_size, cfg.data_seed, names)
        val = SyntheticScenes(cfg.n_val, cfg.image_size, cfg.data_seed + 1_000_003, names)
    elif cfg.name == "planted":
        from .planted import TASKS, PlantedImages

        tasks = select_tasks(TASKS, cfg.tasks)
        names = tuple(tasks)
        train = PlantedImages(cfg.n_train, cfg.image_size, cfg.data_seed, names)
        val = PlantedImages(cfg.n_val, cfg.image_size, cfg.data_seed + 1_000_003, names)
    elif cfg.name in ("nyuv2", "cityscapes"):
        from .dense_npy import build_dense_npy

        train, val, tasks = build_dense_npy(cfg)
    elif cfg.name == "omniglot":
        from .omniglot import build_omniglot

        train, val, tasks = build_omniglot(cfg)
    else:  # validate() already rejects this
        raise ConfigError(f"data.name: unknown data set {cfg.name!r}")
    return DataBundle(_limit(train, cfg.max_train), _limit(val, cfg.max_val), tasks)
