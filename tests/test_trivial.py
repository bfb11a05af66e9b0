"""Trivial references computed by hand on a tiny fixture, and the ``learned`` flag on hand-made metrics."""

from __future__ import annotations

import math

import pytest
import torch

from supernet.tasks import TaskSpec, losses
from supernet.trivial import LEARNED_MARGINS, fit_constants, learned_tasks, trivial_losses, trivial_references

TASKS = {
    "seg": TaskSpec("seg", "segmentation", num_classes=3),
    "depth": TaskSpec("depth", "depth"),
    "normal": TaskSpec("normal", "normal"),
    "cls": TaskSpec("cls", "classification", num_classes=3),
}
Z, X = [0.0, 0.0, 1.0], [1.0, 0.0, 0.0]  # unit normals
HOLE = [0.0, 0.0, 0.0]


def _normal(rows: list[list[list[float]]]) -> torch.Tensor:
    return torch.tensor(rows).permute(2, 0, 1)  # (H, W, 3) -> (3, H, W)


def _item(seg, depth, normal, cls):
    return torch.zeros(3, 2, 2), {
        "seg": torch.tensor(seg),
        "depth": torch.tensor([depth]),
        "normal": _normal(normal),
        "cls": torch.tensor(cls),
    }


# 2 training items, 1 validation item; -1 labels, 0 depths and all-zero normals are invalid
TRAIN = [
    _item([[0, 1], [1, -1]], [[1.0, 2.0], [0.0, 4.0]], [[Z, Z], [Z, HOLE]], 2),
    _item([[1, 2], [-1, -1]], [[3.0, 0.0], [5.0, 0.0]], [[X, HOLE], [HOLE, HOLE]], -1),
]
VAL = [_item([[1, 0], [2, -1]], [[2.0, 0.0], [6.0, 3.0]], [[Z, HOLE], [X, HOLE]], 0)]


def test_constants_by_hand():
    c = fit_constants(TRAIN, TASKS, batch_size=1)
    assert int(c["seg"]) == 1  # valid train pixels: class 0 x1, class 1 x3, class 2 x1
    assert float(c["depth"]) == 3.0  # valid train depths 1, 2, 4, 3, 5: median 3
    torch.testing.assert_close(c["normal"], torch.tensor([1.0, 0.0, 3.0]) / math.sqrt(10.0))  # 3 x Z + 1 x X
    assert int(c["cls"]) == 2  # the only valid training label


def test_references_by_hand():
    ref = trivial_references(TRAIN, VAL, TASKS, batch_size=2)
    # segmentation: predict 1 on the 3 valid pixels (targets 1, 0, 2): IoU 0, 1/3, 0 over classes 0, 1, 2
    assert ref["seg"]["miou"] == pytest.approx(1 / 9)
    assert ref["seg"]["pixel_acc"] == pytest.approx(1 / 3)
    # depth: predict 3 on valid depths 2, 6, 3 -> errors 1, 3, 0
    assert ref["depth"]["abs_err"] == pytest.approx(4 / 3)
    assert ref["depth"]["rel_err"] == pytest.approx((1 / 2 + 3 / 6 + 0) / 3)
    # normal: (1, 0, 3)/sqrt(10) against Z (18.43 deg) and X (71.57 deg)
    a, b = math.degrees(math.acos(3 / math.sqrt(10))), math.degrees(math.acos(1 / math.sqrt(10)))
    assert ref["normal"]["mean_angle"] == pytest.approx((a + b) / 2)
    assert ref["normal"]["within_30"] == pytest.approx(50.0)
    # classification: predict 2, the validation label is 0
    assert ref["cls"]["accuracy"] == 0.0


def test_trivial_losses_by_hand():
    ref = trivial_losses(TRAIN, TASKS, batch_size=1)
    # segmentation: class frequencies 1/5, 3/5, 1/5 -> their entropy in nats
    assert ref["seg"] == pytest.approx(-(2 * 0.2 * math.log(0.2) + 0.6 * math.log(0.6)))
    assert ref["depth"] == pytest.approx(6 / 5)  # depths 1, 2, 4, 3, 5 against their median 3
    assert ref["normal"] == pytest.approx(1 - math.sqrt(10) / 4)  # 3 x Z + 1 x X: |sum| sqrt(10) over 4
    assert ref["cls"] == 0.0  # one valid label: a constant target, nothing to learn
    assert trivial_losses(TRAIN, TASKS, batch_size=64) == pytest.approx(ref)


def test_trivial_losses_are_the_task_losses_of_the_best_constant():
    """The project's own losses (tasks.losses, one batch of the whole split) of the constant predictors:
    the log class frequencies as logits, the median depth, the mean normal."""
    targets = {t: torch.stack([item[1][t] for item in TRAIN]) for t in TASKS}
    c = fit_constants(TRAIN, TASKS)
    seg_logits = torch.tensor([0.2, 0.6, 0.2]).log().view(1, 3, 1, 1).expand(2, 3, 2, 2)
    out = {
        "seg": seg_logits,
        "depth": c["depth"].view(1, 1, 1, 1).expand(2, 1, 2, 2),
        "normal": c["normal"].view(1, 3, 1, 1).expand(2, 3, 2, 2),
    }
    got = {t: float(v) for t, v in losses(TASKS, out, targets).items()}
    assert got == pytest.approx({t: v for t, v in trivial_losses(TRAIN, TASKS).items() if t in out})


def test_reference_does_not_depend_on_batching():
    assert trivial_references(TRAIN, VAL, TASKS, batch_size=1) == trivial_references(TRAIN, VAL, TASKS, batch_size=64)


KINDS = {"seg": "segmentation", "depth": "depth", "normal": "normal", "cls": "classification"}
TRIVIAL = {"seg": {"miou": 0.2}, "depth": {"abs_err": 1.0}, "normal": {"mean_angle": 40.0}, "cls": {"accuracy": 0.25}}


def test_learned_at_the_margins():
    at = {"seg": {"miou": 0.4}, "depth": {"abs_err": 0.75}, "normal": {"mean_angle": 30.0}, "cls": {"accuracy": 0.5}}
    assert learned_tasks(at, TRIVIAL, KINDS) == {t: True for t in KINDS}  # margins are inclusive
    short = {
        "seg": {"miou": 0.39},
        "depth": {"abs_err": 0.76},
        "normal": {"mean_angle": 30.5},
        "cls": {"accuracy": 0.49},
    }
    assert learned_tasks(short, TRIVIAL, KINDS) == {t: False for t in KINDS}


def test_learned_mixed_and_missing():
    metrics = {"seg": {"miou": 0.9}, "depth": {"abs_err": math.nan}, "normal": {"mean_angle": 10.0}}  # no cls metric
    assert learned_tasks(metrics, TRIVIAL, KINDS) == {"seg": True, "depth": False, "normal": True, "cls": False}
    assert learned_tasks(metrics, {}, KINDS) == {t: False for t in KINDS}  # no reference: not learned


def test_every_kind_has_a_margin_on_a_metric_it_reports():
    for kind in ("segmentation", "depth", "normal", "classification"):
        spec = TaskSpec("t", kind, num_classes=2 if kind in ("segmentation", "classification") else 0)
        rules = [m for (k, m) in LEARNED_MARGINS if k == kind]
        assert rules and set(rules) <= set(spec.metric_names)


def test_results_row_and_metadata_carry_references(tmp_path):
    """The final report's trivial/learned figures become results columns and Parquet metadata."""
    pytest.importorskip("ray")
    import json
    from types import SimpleNamespace

    import pyarrow.parquet as pq

    from tune.results import results_table, trial_row
    from tune.trainable import flatten_summary, summary_keys

    summary = {
        "latency_ms": 1.0,
        "params": {"supernet": 10, "union": 5, "per_task": {"seg": 5}},
        "flops": {"multitask": 7, "per_task": {"seg": 7}},
        "val_loss": {"seg": 0.5},
        "metrics": {"seg": {"miou": 0.5, "pixel_acc": 0.9}},
        "trivial": {"seg": {"miou": 0.2, "pixel_acc": 0.8}},
        "learned": True,
        "learned_per_task": {"seg": True},
        "timings": {"warmup": 1.0},
        "reused": {"warmup": False},
        "stage_quality": {
            "search": {"metric/seg/miou": 0.4, "val_loss/seg": 0.6},
            "reduction": {"metric/seg/miou": 0.38},
        },
    }
    last = flatten_summary(summary)
    keys = {k for k in summary_keys(["seg"], ["seg/miou", "seg/pixel_acc"]) if k.startswith(("trivial", "learned"))}
    assert keys == {"learned", "learned/seg", "trivial/seg/miou", "trivial/seg/pixel_acc"} and keys <= set(last)
    trial = SimpleNamespace(trial_id="t1", config={"overrides": {}}, last_result=last, path=str(tmp_path / "trial_t1"))
    row = trial_row("exp", trial, "finished", "tiny", {}, ["seg"], [])
    assert row["learned"] is True and row["learned/seg"] is True
    assert row["trivial/seg/miou"] == 0.2
    # quality at each stage's end: a column per (stage, task, metric), NaN for a stage the trial did not run
    assert row["quality/search/seg/miou"] == 0.4 and row["quality/reduction/seg/miou"] == 0.38
    assert "quality/warmup/seg/miou" in summary_keys(["seg"], ["seg/miou"])
    row_nan = trial_row(
        "exp",
        SimpleNamespace(**{**vars(trial), "last_result": {**summary_keys(["seg"], ["seg/miou"]), **last}}),
        "finished",
        "tiny",
        {},
        ["seg"],
        [],
    )
    assert math.isnan(row_nan["quality/warmup/seg/miou"]) and row_nan["quality/search/seg/miou"] == 0.4
    table = results_table([row], {"seg": "segmentation"})
    pq.write_table(table, tmp_path / "r.parquet")
    meta = json.loads(pq.read_schema(tmp_path / "r.parquet").metadata[b"dagmtl"])
    assert meta["trivial"] == {"seg": {"miou": 0.2, "pixel_acc": 0.8}}
    assert meta["learned_margins"]["segmentation/miou"] == {"sense": "max", "factor": 2.0}
    from analysis.load import load_results

    df = load_results(tmp_path / "r.parquet", delta_mtl=False)
    assert df.attrs["trivial"] == meta["trivial"] and bool(df["learned"].iloc[0])
    unfinished = trial_row(
        "exp", SimpleNamespace(**{**vars(trial), "last_result": {}}), "errored", "tiny", {}, ["seg"], []
    )
    assert unfinished["learned"] is None


def test_fitted_on_the_unaugmented_training_split():
    from torch.utils.data import Subset

    from supernet.data.augment import Augmented, DenseAugment
    from supernet.trivial import unaugmented

    aug = Subset(Augmented(TRAIN, DenseAugment({t: s.kind for t, s in TASKS.items()})), [0, 1])
    assert unaugmented(aug).dataset is TRAIN
    assert trivial_references(aug, VAL, TASKS) == trivial_references(TRAIN, VAL, TASKS)
