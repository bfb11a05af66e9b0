"""Real-data loaders (NYUv2 / CityScapes .npy, Omniglot PNG) and dense augmentation, on tiny on-disk fixtures."""

from __future__ import annotations

import importlib
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from data_fixtures import write_dense_npy, write_omniglot
from torch.utils.data import DataLoader

from supernet.config import ConfigError, build_config
from supernet.data import build_data
from supernet.data.augment import Augmented, DenseAugment, hflip, resize_sample, scale_crop
from supernet.data.dense_npy import DenseNpy
from supernet.data.omniglot import split_drawings
from supernet.tasks import MetricAccumulator, task_loss

NYU_KINDS = {"segmentation": "segmentation", "depth": "depth", "normal": "normal"}


def data_cfg(name: str, root, **over):
    o = {"data.name": name, "data.root": str(root), **{f"data.{k}": v for k, v in over.items()}}
    return build_config(overrides=o).data


@pytest.fixture(scope="module")
def nyu(tmp_path_factory):
    return write_dense_npy(tmp_path_factory.mktemp("nyuv2"), "nyuv2")


@pytest.fixture(scope="module")
def omni(tmp_path_factory):
    return write_omniglot(tmp_path_factory.mktemp("omniglot"))


def _stored(root: Path, split: str, i: int) -> dict[str, np.ndarray]:
    return {m: np.load(root / split / m / f"{i}.npy") for m in ("image", "label", "depth", "normal")}


# ----------------------------------------------------------------------------- dense .npy: loading


@pytest.mark.parametrize("layout,depth_2d", [("hwc", False), ("chw", False), ("hwc", True)])
def test_nyuv2_items_match_stored_arrays(tmp_path, layout, depth_2d):
    root = write_dense_npy(tmp_path, "nyuv2", layout=layout, depth_2d=depth_2d)
    b = build_data(data_cfg("nyuv2", root, image_size=[24, 32]))
    assert list(b.tasks) == ["segmentation", "depth", "normal"]
    assert b.tasks["segmentation"].num_classes == 13
    assert (len(b.train), len(b.val)) == (4, 2)
    ref = write_dense_npy(tmp_path / "ref", "nyuv2")  # same seed, MTAN's own HWC layout
    s = _stored(ref, "val", 1)
    image, t = b.val[1]
    assert image.dtype == torch.float32 and image.shape == (3, 24, 32)
    assert torch.equal(image, torch.from_numpy(np.moveaxis(s["image"], -1, 0)))
    assert t["segmentation"].dtype == torch.int64 and t["segmentation"].shape == (24, 32)
    assert torch.equal(t["segmentation"], torch.from_numpy(s["label"]).long())
    assert t["depth"].shape == (1, 24, 32) and torch.equal(t["depth"][0], torch.from_numpy(s["depth"][..., 0]))
    assert t["normal"].shape == (3, 24, 32)
    assert torch.allclose(t["normal"], torch.from_numpy(np.moveaxis(s["normal"], -1, 0)), atol=1e-6)
    assert set(t["segmentation"].unique().tolist()) <= set(range(-1, 13)) and (t["segmentation"] == -1).any()
    assert (t["depth"] == 0).any() and (t["depth"] >= 0).all()
    n = t["normal"].norm(dim=0)
    assert ((n - 1).abs() < 1e-5)[n > 0].all() and (n == 0).any()


def test_cityscapes_two_tasks_and_label7_folder(tmp_path):
    root = write_dense_npy(tmp_path, "cityscapes", label_folder="label_7", size=(16, 32))
    b = build_data(data_cfg("cityscapes", root, image_size=[16, 32]))
    assert list(b.tasks) == ["segmentation", "depth"] and b.tasks["segmentation"].num_classes == 7
    image, t = b.train[3]
    assert image.shape == (3, 16, 32) and set(t) == {"segmentation", "depth"}
    assert t["segmentation"].max() <= 6
    with pytest.raises(ConfigError, match="normal"):
        build_data(data_cfg("cityscapes", root, tasks=["normal"]))


def test_task_subset_reads_only_its_folders(tmp_path):
    root = write_dense_npy(tmp_path, "nyuv2")
    for split in ("train", "val"):
        for f in (root / split / "normal").iterdir():
            f.unlink()
        (root / split / "normal").rmdir()
    b = build_data(data_cfg("nyuv2", root, tasks=["depth", "segmentation"], image_size=[24, 32]))
    assert list(b.tasks) == ["depth", "segmentation"] and set(b.train[0][1]) == {"depth", "segmentation"}
    with pytest.raises(FileNotFoundError, match=r"train.normal"):
        build_data(data_cfg("nyuv2", root))


def test_resize_to_image_size_keeps_invalid_pixels_invalid(tmp_path):
    root = write_dense_npy(tmp_path, "nyuv2", size=(24, 32))
    raw, small = (
        DenseNpy(root, "train", build_data(data_cfg("nyuv2", root, image_size=[24, 32])).tasks, size)
        for size in (None, (12, 16))
    )
    for i in range(len(raw)):
        (_, r), (image, t) = raw[i], small[i]
        assert image.shape == (3, 12, 16) and t["segmentation"].shape == (12, 16)
        assert t["depth"].shape == (1, 12, 16) and t["normal"].shape == (3, 12, 16)
        assert torch.equal(t["segmentation"], r["segmentation"][::2, ::2])  # nearest: never a blended label
        # 2x downsampling with align_corners=False blends source pixels 2y..2y+1, 2x..2x+1 equally:
        d, blocks = t["depth"][0], r["depth"][0].unfold(0, 2, 2).unfold(1, 2, 2).reshape(12, 16, 4)
        any_hole = (blocks == 0).any(-1)
        assert (d[any_hole] == 0).all(), "a hole leaked into an interpolated depth value"
        assert torch.allclose(d[~any_hole], blocks.mean(-1)[~any_hole], atol=1e-5)
        n = t["normal"].norm(dim=0)
        nblocks = (r["normal"].abs().sum(0) == 0).unfold(0, 2, 2).unfold(1, 2, 2).reshape(12, 16, 4).any(-1)
        assert (n[nblocks] == 0).all() and ((n[~nblocks] - 1).abs() < 1e-5).all()


# ----------------------------------------------------------------------------- invalid pixels are masked


def _perturb_at(pred: torch.Tensor, where: torch.Tensor) -> torch.Tensor:
    """pred with random values at ``where`` (a (B, H, W) or (B,) mask), unchanged elsewhere."""
    noise = torch.randn(pred.shape, generator=torch.Generator().manual_seed(1)) * 5
    m = (
        where.view(where.shape[0], *([1] * (pred.dim() - where.dim())), *where.shape[1:])
        if pred.dim() > 2
        else where[:, None]
    )
    return torch.where(m, noise, pred)


def _loss_and_metrics(spec, pred, target):
    acc = MetricAccumulator(spec)
    acc.update(pred, target)
    return float(task_loss(spec, pred, target)), acc.compute()


def _invalid(spec, target):
    if spec.kind in ("segmentation", "classification"):
        return target == -1
    if spec.kind == "depth":
        return target[:, 0] == 0
    return target.abs().sum(1) == 0


@pytest.mark.parametrize("name", ["nyuv2", "omniglot"])
def test_changing_predictions_at_invalid_pixels_changes_nothing(name, nyu, omni, tmp_path):
    root = nyu if name == "nyuv2" else omni
    b = build_data(data_cfg(name, root, image_size=[24, 32] if name == "nyuv2" else [16, 16]))
    _, targets = next(
        iter(
            DataLoader(
                b.val,
                batch_size=len(b.val) if name == "nyuv2" else 64,
                shuffle=True,
                generator=torch.Generator().manual_seed(0),
            )
        )
    )
    g = torch.Generator().manual_seed(0)
    for t, spec in b.tasks.items():
        y = targets[t]
        bad = _invalid(spec, y)
        assert bad.any() and (~bad).any(), f"fixture must hold valid and invalid pixels for {t}"
        shape = (
            (y.shape[0], spec.out_channels, *y.shape[-2:])
            if spec.kind != "classification"
            else (y.shape[0], spec.num_classes)
        )
        pred = torch.randn(shape, generator=g)
        before = _loss_and_metrics(spec, pred, y)
        after = _loss_and_metrics(spec, _perturb_at(pred, bad), y)
        assert before[0] == pytest.approx(after[0], rel=1e-6, abs=1e-7)
        for m, v in before[1].items():
            assert after[1][m] == pytest.approx(v, rel=1e-6, abs=1e-7), (t, m)
        # ... while changing the prediction at valid pixels does change the loss (the test can fail)
        assert float(task_loss(spec, _perturb_at(pred, ~bad), y)) != pytest.approx(before[0], rel=1e-6)


# ----------------------------------------------------------------------------- augmentation


def _sample(seed: int = 0, h: int = 12, w: int = 16):
    g = torch.Generator().manual_seed(seed)
    image = torch.rand(3, h, w, generator=g)
    label = torch.randint(-1, 13, (h, w), generator=g)
    depth = torch.rand(1, h, w, generator=g) + 0.5
    depth[0, :, : w // 4] = 0
    normal = torch.nn.functional.normalize(torch.randn(3, h, w, generator=g), dim=0)
    normal[:, : h // 3] = 0
    return image, {"segmentation": label, "depth": depth, "normal": normal}


def test_hflip_negates_normal_x_and_is_its_own_inverse():
    image, t = _sample()
    fi, ft = hflip(image, t, NYU_KINDS)
    assert torch.equal(fi, image.flip(-1)) and torch.equal(ft["segmentation"], t["segmentation"].flip(-1))
    assert torch.equal(ft["depth"], t["depth"].flip(-1))
    assert torch.equal(ft["normal"][0], -t["normal"][0].flip(-1))
    assert torch.equal(ft["normal"][1:], t["normal"][1:].flip(-1))
    assert (ft["normal"].abs().sum(0) == 0).sum() == (t["normal"].abs().sum(0) == 0).sum()
    bi, bt = hflip(fi, ft, NYU_KINDS)
    assert torch.equal(bi, image) and all(torch.equal(bt[k], t[k]) for k in t)


def test_augment_is_deterministic_per_generator_and_varies_across_seeds():
    aug = DenseAugment(NYU_KINDS)
    image, t = _sample()
    runs = [aug(image, t, torch.Generator().manual_seed(s)) for s in (3, 3, 4, 5, 6, 7)]
    assert torch.equal(runs[0][0], runs[1][0]) and all(torch.equal(runs[0][1][k], runs[1][1][k]) for k in t)
    assert any(not torch.equal(runs[0][0], r[0]) for r in runs[2:])


@pytest.mark.parametrize("seed", range(8))
def test_augment_keeps_targets_consistent_and_invalid_pixels_invalid(seed):
    h, w = 12, 16
    image = torch.rand(3, h, w)
    xs = torch.arange(w).float().expand(h, w)
    label = (xs // 4).long()  # 4 vertical stripes: class = column // 4
    label[:, :2] = -1
    depth = torch.full((1, h, w), 2.0)
    depth[0, :, 12:] = 0  # the right quarter is a hole
    normal = torch.zeros(3, h, w)
    normal[0] = 1.0  # all normals point along +x
    normal[:, :, 12:] = 0
    aug = DenseAugment(NYU_KINDS, scales=(1.0, 1.5))
    ai, at = aug(image, {"segmentation": label, "depth": depth, "normal": normal}, torch.Generator().manual_seed(seed))
    assert ai.shape == (3, h, w) and at["segmentation"].shape == (h, w)
    assert at["depth"].shape == (1, h, w) and at["normal"].shape == (3, h, w)
    d = at["depth"][0]
    valid = d > 0
    # no valid depth is ever blended with a hole: every valid value is 2.0 / scale for one scale
    assert valid.any()  # (the hole may be cropped away)
    assert len(set(d[valid].tolist())) == 1 and d[valid][0].item() in (pytest.approx(2.0), pytest.approx(2.0 / 1.5))
    nvalid = at["normal"].abs().sum(0) > 0
    assert torch.equal(nvalid, valid)  # the same source holes -> the same output holes
    xsign = at["normal"][0][nvalid]
    assert (xsign.abs() == 1).all() and (xsign == xsign[0]).all()  # +x, or -x after a flip
    flipped = xsign[0].item() < 0
    # labels stay whole stripes; the hole (label -1, columns 0..1) sits on the side the flip puts it
    lab = at["segmentation"]
    assert set(lab.unique().tolist()) <= {-1, 0, 1, 2, 3}
    cols_ignore = (lab == -1).all(0).nonzero().flatten()
    if len(cols_ignore):
        assert (cols_ignore >= w // 2).all() if flipped else (cols_ignore < w // 2).all()
    hole_cols = (~valid).all(0).nonzero().flatten()
    assert (hole_cols < w // 2).all() if flipped else (hole_cols >= w // 2).all()


def test_scale_crop_divides_depth_and_resize_sample_rejects_bad_window():
    image, t = _sample()
    _, out = scale_crop(image, t, NYU_KINDS, 0, 0, 1.0)
    assert all(torch.equal(out[k], t[k]) for k in t)
    _, out = scale_crop(image, {"depth": torch.full((1, 12, 16), 3.0)}, {"depth": "depth"}, 2, 3, 1.5)
    assert torch.allclose(out["depth"], torch.full((1, 12, 16), 2.0))
    with pytest.raises(ValueError, match="does not fit"):
        scale_crop(image, t, NYU_KINDS, 5, 0, 1.5)
    ri, rt = resize_sample(image, t, NYU_KINDS, (6, 8))
    assert ri.shape == (3, 6, 8) and rt["segmentation"].dtype == torch.int64


def test_augment_only_on_train_split_and_reproducible_under_manual_seed(nyu):
    plain = build_data(data_cfg("nyuv2", nyu, image_size=[24, 32]))
    aug = build_data(data_cfg("nyuv2", nyu, image_size=[24, 32], augment=True))
    assert isinstance(aug.train, Augmented) and not isinstance(aug.val, Augmented)
    assert torch.equal(aug.val[0][0], plain.val[0][0])

    def epoch():
        return torch.stack([aug.train[i][0] for i in range(len(aug.train))])

    torch.manual_seed(0)
    a, a2 = epoch(), epoch()
    torch.manual_seed(0)
    b = epoch()
    assert torch.equal(a, b) and not torch.equal(a, a2)
    assert not torch.equal(a, torch.stack([plain.train[i][0] for i in range(len(plain.train))]))
    seeded = Augmented(plain.train, DenseAugment(NYU_KINDS), seed=7)
    x = seeded[1][0]
    torch.manual_seed(123)
    assert torch.equal(seeded[1][0], x)
    seeded.set_epoch(1)
    assert not torch.equal(seeded[1][0], x) or not torch.equal(
        seeded[2][0], Augmented(plain.train, DenseAugment(NYU_KINDS), seed=7)[2][0]
    )


def test_augmented_loader_with_workers_is_reproducible(nyu):
    aug = build_data(data_cfg("nyuv2", nyu, image_size=[24, 32], augment=True)).train

    def epoch(seed):
        loader = DataLoader(
            aug, batch_size=2, shuffle=True, num_workers=2, generator=torch.Generator().manual_seed(seed)
        )
        return torch.cat([x for x, _ in loader])

    a = epoch(0)
    assert torch.equal(a, epoch(0)) and not torch.equal(a, epoch(1))


# ----------------------------------------------------------------------------- dense .npy: clear errors


def _expect(exc, match: str, root, iterate: bool = True, **over):
    """The error building the data (and, with ``iterate``, loading every item) raises; its message."""
    with pytest.raises(exc, match=match) as e:
        b = build_data(data_cfg("nyuv2", root, image_size=[24, 32], **over))
        for ds in (b.train, b.val) if iterate else ():
            for i in range(len(ds)):
                ds[i]
    return str(e.value)


def test_error_root_missing_or_unset(tmp_path):
    msg = _expect(FileNotFoundError, "does not exist", tmp_path / "nowhere")
    assert str(tmp_path / "nowhere") in msg and "{train,val}" in msg
    with pytest.raises(ConfigError, match="data.root"):
        build_data(build_config(overrides={"data.name": "nyuv2"}).data)


def test_error_split_and_modality_folder_missing(tmp_path):
    root = write_dense_npy(tmp_path, "nyuv2")
    (root / "val").rename(root / "valid")
    assert str(root / "val") in _expect(FileNotFoundError, "split folder not found", root)
    (root / "valid").rename(root / "val")
    (root / "train" / "depth").rename(root / "train" / "depths")
    assert str(root / "train" / "depth") in _expect(FileNotFoundError, "modality folder not found", root)


def test_error_images_and_labels_do_not_pair_up(tmp_path):
    root = write_dense_npy(tmp_path, "nyuv2")
    (root / "train" / "label" / "2.npy").unlink()
    msg = _expect(ValueError, "do not pair up", root)
    assert "indices 2 are in" in msg and str(root / "train" / "label") in msg
    np.save(root / "train" / "label" / "2.npy", np.zeros((24, 32), np.float32))
    np.save(root / "val" / "depth" / "9.npy", np.ones((24, 32), np.float32))
    assert "9 are in " + str(root / "val" / "depth") in _expect(ValueError, "do not pair up", root)


@pytest.mark.parametrize("index", [0, 3])  # 0: caught at construction, 3: when the item loads
@pytest.mark.parametrize(
    "modality,array,match",
    [
        ("image", np.zeros((24, 32, 4), np.float32), r"shape \(24, 32, 4\); expected \(H, W, 3\)"),
        ("image", np.zeros((3, 24, 3), np.float32), "expected"),  # ambiguous HWC/CHW
        (
            "image",
            np.zeros((12, 32, 3), np.float32),
            "x32 but .* is (12|24)x32; every file of a split must have the same",
        ),
        ("depth", np.ones((12, 32, 1), np.float32), "depth is 12x32 but its image .* is 24x32"),
        ("image", np.full((24, 32, 3), 255.0, np.float32), r"expected floats in \[0, 1\]"),
        ("image", np.array([["a"]]), "not numeric"),
        ("label", np.full((24, 32), 13.0, np.float32), r"values \[13.0\] outside 0..12"),
        ("label", np.full((24, 32), 255, np.uint8), "outside 0..12"),
        ("label", np.full((24, 32), 0.5, np.float32), "non-integer"),
        ("depth", np.full((24, 32, 1), np.nan, np.float32), "NaN"),
        ("depth", np.full((24, 32), -1.0, np.float32), "negative"),
        ("depth", np.ones((24, 32), np.int32), "dtype int32"),
        ("depth", np.ones((24, 32, 2), np.float32), "expected"),
        ("normal", np.full((24, 32, 3), 128.0, np.float32), r"\[-1, 1\]"),
        ("normal", np.zeros((24, 32), np.float32), r"expected \(H, W, 3\) or \(3, H, W\)"),
    ],
)
def test_error_bad_file_names_its_path(tmp_path, modality, array, match, index):
    root = write_dense_npy(tmp_path, "nyuv2")
    path = root / "train" / modality / f"{index}.npy"
    np.save(path, array)
    assert str(path) in _expect(ValueError, match, root, iterate=index != 0)  # the first file: at construction


@pytest.mark.parametrize("index", [0, 3])
@pytest.mark.parametrize("content", [b"", b"not a numpy file at all", b"\x93NUMPY\x01\x00garbage"])
def test_error_corrupt_npy_names_its_path(tmp_path, content, index):
    root = write_dense_npy(tmp_path, "nyuv2")
    path = root / "train" / "depth" / f"{index}.npy"
    path.write_bytes(content)
    assert str(path) in _expect(ValueError, "not a readable .npy", root, iterate=index != 0)


def test_error_truncated_npy_and_pickled_object(tmp_path):
    root = write_dense_npy(tmp_path, "nyuv2")
    path = root / "val" / "image" / "1.npy"
    path.write_bytes(path.read_bytes()[:-100])
    assert str(path) in _expect(ValueError, "not a readable .npy", root)
    root = write_dense_npy(tmp_path / "b", "nyuv2")
    path = root / "train" / "normal" / "1.npy"
    np.save(path, np.array([{"a": 1}], dtype=object), allow_pickle=True)
    assert str(path) in _expect(ValueError, "not a readable .npy", root)


def test_error_badly_named_file(tmp_path):
    root = write_dense_npy(tmp_path, "nyuv2")
    np.save(root / "train" / "image" / "img_5.npy", np.zeros((24, 32, 3), np.float32))
    assert "img_5.npy" in _expect(ValueError, r"<index>\.npy", root)


# ----------------------------------------------------------------------------- omniglot


def test_omniglot_tasks_items_and_root_variants(omni):
    for root in (omni, omni / "omniglot-py", omni / "omniglot-py" / "images_background"):
        b = build_data(data_cfg("omniglot", root, image_size=[28, 28]))
        assert {t: s.num_classes for t, s in b.tasks.items()} == {"Alpha": 3, "Beta_(test)": 2, "Gamma": 4}
        assert all(s.kind == "classification" for s in b.tasks.values())
        assert (len(b.train), len(b.val)) == (9 * 15, 9 * 5)
    image, t = b.train[0]
    assert image.shape == (3, 28, 28) and image.dtype == torch.float32
    assert 0 <= image.min() < 0.5 < image.max() <= 1 and torch.equal(image[0], image[2])
    seen = {a: set() for a in b.tasks}
    for i in range(len(b.train)):
        _, t = b.train[i]
        own = [a for a, v in t.items() if v >= 0]
        assert len(own) == 1 and all(t[a] == -1 for a in t if a != own[0])
        assert t[own[0]].dtype == torch.int64 and t[own[0]].shape == ()
        seen[own[0]].add(int(t[own[0]]))
    assert seen == {"Alpha": {0, 1, 2}, "Beta_(test)": {0, 1}, "Gamma": {0, 1, 2, 3}}
    batch = next(iter(DataLoader(b.val, batch_size=8)))
    assert batch[0].shape == (8, 3, 28, 28) and batch[1]["Alpha"].shape == (8,)


def test_omniglot_task_subset_streams_only_its_alphabets(omni):
    b = build_data(data_cfg("omniglot", omni, tasks=["Gamma"], image_size=[16, 16]))
    assert list(b.tasks) == ["Gamma"] and len(b.train) == 4 * 15
    assert all(int(b.train[i][1]["Gamma"]) >= 0 for i in range(len(b.train)))
    with pytest.raises(ConfigError, match="Delta"):
        build_data(data_cfg("omniglot", omni, tasks=["Delta"]))


def _split_paths(root, seed):
    b = build_data(data_cfg("omniglot", root, data_seed=seed, image_size=[16, 16]))
    return [p for p, _, _ in b.train.items], [p for p, _, _ in b.val.items]


def test_omniglot_split_is_seeded_disjoint_and_15_5_per_character(omni):
    tr, va = _split_paths(omni, 0)
    assert not set(tr) & set(va) and len(set(tr)) == len(tr)
    for chars in {p.parent for p in tr}:
        assert sum(p.parent == chars for p in tr) == 15 and sum(p.parent == chars for p in va) == 5
    assert _split_paths(omni, 0) == (tr, va)
    tr1, va1 = _split_paths(omni, 1)
    assert set(va1) != set(va) and set(tr1) | set(va1) == set(tr) | set(va)
    pngs = [Path(f"{k}.png") for k in range(20)]
    assert split_drawings(pngs, "A/c1", 0) == split_drawings(pngs, "A/c1", 0)
    assert split_drawings(pngs, "A/c1", 0) != split_drawings(pngs, "A/c2", 0)


def test_omniglot_errors_name_the_path(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist") as e:
        build_data(data_cfg("omniglot", tmp_path / "nowhere"))
    assert str(tmp_path / "nowhere") in str(e.value)
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="no alphabet folders") as e:
        build_data(data_cfg("omniglot", tmp_path / "empty"))
    assert str(tmp_path / "empty") in str(e.value)
    with pytest.raises(ConfigError, match="data.root"):
        build_data(build_config(overrides={"data.name": "omniglot"}).data)

    root = write_omniglot(tmp_path / "o", {"A": 2, "B": 2}, drawings=8, size=21)
    char = root / "omniglot-py" / "images_background" / "B" / "character02"
    for f in char.iterdir():
        f.rename(f.with_suffix(".jpg"))
    with pytest.raises(FileNotFoundError, match="no .png drawings") as e:
        build_data(data_cfg("omniglot", root))
    assert str(char) in str(e.value)


@pytest.mark.parametrize("which", ["first", "later"])
def test_omniglot_unreadable_png_names_its_path(tmp_path, which):
    root = write_omniglot(tmp_path, {"A": 2, "B": 2}, drawings=8, size=21)
    b = build_data(data_cfg("omniglot", root, image_size=[16, 16]))
    path = b.train.items[0 if which == "first" else -1][0]
    path.write_bytes(b"\x89PNG\r\n\x1a\n truncated")
    with pytest.raises(ValueError, match="not a readable PNG") as e:
        b = build_data(data_cfg("omniglot", root, image_size=[16, 16]))
        for i in range(len(b.train)):
            b.train[i]
    assert str(path) in str(e.value)


def test_omniglot_augment_keeps_labels(omni):
    b = build_data(data_cfg("omniglot", omni, augment=True, image_size=[16, 16]))
    plain = build_data(data_cfg("omniglot", omni, image_size=[16, 16]))
    assert isinstance(b.train, Augmented)
    torch.manual_seed(0)
    for i in (0, 50, 100):
        (x, t), (x0, t0) = b.train[i], plain.train[i]
        assert x.shape == x0.shape and {k: int(v) for k, v in t.items()} == {k: int(v) for k, v in t0.items()}


# ----------------------------------------------------------------------------- config files and whole trials

CONFIGS = Path(__file__).resolve().parent.parent / "configs"


def _fixture(name: str, where: Path) -> Path:
    if name == "omniglot":
        return write_omniglot(where, {"A": 2, "B": 3}, drawings=8, size=21)
    return write_dense_npy(where, name, n_train=6, n_val=3, size=(24, 32))


@pytest.mark.parametrize("name", ["nyuv2", "cityscapes", "omniglot"])
def test_config_file_states_command_and_loads_its_data_set(name, tmp_path):
    import yaml

    path = CONFIGS / f"{name}.yaml"
    text = path.read_text()
    assert text.startswith("#") and f"python run.py --config configs/{name}.yaml --set data.root=" in text
    assert f"python run.py --trial --config configs/{name}.yaml" in text
    doc = yaml.safe_load(text)
    assert set(doc) == {"config", "sweep"} and doc["config"]["data.root"] is None
    cfg = build_config(overrides={**doc["config"], "data.root": str(_fixture(name, tmp_path))})
    assert cfg.data.name == name and cfg.model.stem.startswith("resnet") and cfg.model.stem_weights is None
    assert cfg.trial.precision == "bf16" and cfg.data.pin_memory and cfg.data.num_workers > 0
    b = build_data(cfg.data)
    image, targets = b.val[0]
    assert image.shape == (3, *cfg.data.image_size) and set(targets) == set(b.tasks)
    space = importlib.import_module("tune.space")
    sweep = space.parse_sweep(doc)
    assert len(sweep.grid_points()) == 12 and set(sweep.baselines) == {"single_task", "hard_sharing"}


def _check_summary(out: Path, tasks) -> None:
    import json

    summary = json.loads((out / "summary.json").read_text())
    assert summary["status"] == "finished"
    for t, spec in tasks.items():
        for m in spec.metric_names:
            assert math.isfinite(summary["metrics"][t][m]), (t, m, summary["metrics"][t])


@pytest.mark.slow
@pytest.mark.parametrize("name", ["nyuv2", "cityscapes", "omniglot"])
def test_tiny_trial_runs_end_to_end(name, tmp_path):
    trial = importlib.import_module("supernet.trial")
    root = _fixture(name, tmp_path / "data")
    cfg = build_config(
        preset="tiny",
        overrides={
            "data.name": name,
            "data.root": str(root),
            "data.image_size": [24, 32] if name != "omniglot" else [16, 16],
            "data.batch_size": 3,
            "data.augment": True,
            "model.stem": "resnet18",
            "model.stem_layers": 1,
            "trial.device": "cpu",
        },
    )
    trial.run_trial(cfg, tmp_path / "trial")
    _check_summary(tmp_path / "trial", build_data(cfg.data).tasks)


@pytest.mark.slow
@pytest.mark.parametrize("name", ["nyuv2", "omniglot"])
def test_config_file_runs_a_trial_from_the_command_line(name, tmp_path):
    run = importlib.import_module("run")
    root = _fixture(name, tmp_path / "data")
    small = {
        "data.root": root,
        "data.image_size": "[16,16]",
        "data.batch_size": 4,
        "data.num_workers": 0,
        "data.pin_memory": "false",
        "model.channels": 8,
        "model.stem_layers": 1,
        "warmup.epochs": 1,
        "search.epochs": 1,
        "finetune.epochs": 1,
        "trial.precision": "fp32",
        "trial.device": "cpu",
        "trial.latency_repeats": 1,
    }
    sets = [a for k, v in small.items() for a in ("--set", f"{k}={v}")]
    out = tmp_path / "trial"
    assert run.main(["--trial", "--config", str(CONFIGS / f"{name}.yaml"), *sets, "--out", str(out)]) == 0
    cfg = build_config(
        overrides={
            **__import__("yaml").safe_load((CONFIGS / f"{name}.yaml").read_text())["config"],
            "data.root": str(root),
            "data.image_size": [16, 16],
        }
    )
    _check_summary(out, build_data(cfg.data).tasks)
