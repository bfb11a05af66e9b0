"""Metrics against hand-computed values; losses ignore invalid pixels; delta_mtl sign convention."""

from __future__ import annotations

import math

import pytest
import torch

from supernet.tasks import MetricAccumulator, TaskSpec, delta_mtl, task_loss

SEG = TaskSpec("seg", "segmentation", num_classes=3)


def onehot_logits(labels: torch.Tensor, k: int) -> torch.Tensor:
    return torch.nn.functional.one_hot(labels, k).permute(0, 3, 1, 2).float() * 10


def test_segmentation_miou_and_pixel_acc_hand_computed_with_ignore():
    target = torch.tensor([[[0, 0], [1, -1]]])  # one ignored pixel
    pred = torch.tensor([[[0, 1], [1, 2]]])  # the ignored pixel predicts class 2: must not count
    acc = MetricAccumulator(SEG)
    acc.update(onehot_logits(pred, 3), target)
    m = acc.compute()
    # class 0: tp 1, fp 0, fn 1 -> 1/2; class 1: tp 1, fp 1, fn 0 -> 1/2; class 2 absent -> excluded
    assert m["miou"] == pytest.approx(0.5)
    assert m["pixel_acc"] == pytest.approx(2 / 3)


def test_metrics_accumulate_over_the_split_not_batch_means():
    acc = MetricAccumulator(SEG)
    acc.update(onehot_logits(torch.tensor([[[0, 0]]]), 3), torch.tensor([[[0, 0]]]))
    acc.update(onehot_logits(torch.tensor([[[1, 1, 1, 1]]]), 3), torch.tensor([[[1, 1, 0, 0]]]))
    # conf: class0 tp 2 fn 2 -> 2/4, class1 tp 2 fp 2 -> 2/4
    assert acc.compute()["miou"] == pytest.approx(0.5)
    assert acc.compute()["pixel_acc"] == pytest.approx(4 / 6)


def test_depth_errors_hand_computed_and_invalid_masked():
    task = TaskSpec("depth", "depth")
    target = torch.tensor([[[[2.0, 4.0], [0.0, 1.0]]]])  # 0 = invalid
    pred = torch.tensor([[[[3.0, 3.0], [100.0, 1.5]]]])
    acc = MetricAccumulator(task)
    acc.update(pred, target)
    m = acc.compute()
    assert m["abs_err"] == pytest.approx((1 + 1 + 0.5) / 3)
    assert m["rel_err"] == pytest.approx((1 / 2 + 1 / 4 + 0.5 / 1) / 3)
    assert task_loss(task, pred, target).item() == pytest.approx((1 + 1 + 0.5) / 3)


def test_normal_angles_hand_computed():
    task = TaskSpec("normal", "normal")
    z = torch.tensor([0.0, 0.0, 1.0])
    c, s = math.cos(math.radians(20)), math.sin(math.radians(20))
    target = torch.stack([z, z, z, torch.zeros(3)], dim=1).view(1, 3, 1, 4)  # last pixel invalid
    pred = torch.stack([z, torch.tensor([s, 0.0, c]), torch.tensor([1.0, 0.0, 0.0]), z], dim=1).view(1, 3, 1, 4)
    acc = MetricAccumulator(task)
    acc.update(pred, target)
    m = acc.compute()  # angles 0, 20, 90
    assert m["mean_angle"] == pytest.approx(110 / 3, abs=1e-3)
    assert m["median_angle"] == pytest.approx(20, abs=1e-3)
    assert m["within_11.25"] == pytest.approx(100 / 3)
    assert m["within_22.5"] == pytest.approx(200 / 3)
    assert m["within_30"] == pytest.approx(200 / 3)


def test_median_angle_of_an_even_count_is_the_mean_of_the_two_middle_values():
    task = TaskSpec("normal", "normal")
    z = torch.tensor([0.0, 0.0, 1.0])
    tilt = lambda deg: torch.tensor([math.sin(math.radians(deg)), 0.0, math.cos(math.radians(deg))])  # noqa: E731
    angles = [40.0, 10.0, 0.0, 20.0]  # sorted 0, 10, 20, 40: median (10 + 20) / 2 = 15 (torch.median says 10)
    target = torch.stack([z] * 4, dim=1).view(1, 3, 1, 4)
    pred = torch.stack([tilt(d) for d in angles], dim=1).view(1, 3, 1, 4)
    acc = MetricAccumulator(task)
    acc.update(pred[..., :2], target[..., :2])  # two batches: the median is over the whole split
    acc.update(pred[..., 2:], target[..., 2:])
    assert acc.compute()["median_angle"] == pytest.approx(15.0, abs=1e-3)
    acc.update(tilt(90.0).view(1, 3, 1, 1), z.view(1, 3, 1, 1))  # five angles: the middle one, 20
    assert acc.compute()["median_angle"] == pytest.approx(20.0, abs=1e-3)


def test_classification_accuracy_ignores_other_tasks_samples():
    task = TaskSpec("alphabet", "classification", num_classes=3)
    logits = torch.tensor([[5.0, 0, 0], [0, 5.0, 0], [0, 0, 5.0], [5.0, 0, 0]])
    target = torch.tensor([0, 2, 2, -1])
    acc = MetricAccumulator(task)
    acc.update(logits, target)
    assert acc.compute()["accuracy"] == pytest.approx(2 / 3)


@pytest.mark.parametrize(
    "kind,shape,invalid",
    [
        ("segmentation", (2, 3, 4, 4), "label"),
        ("depth", (2, 1, 4, 4), "depth"),
        ("normal", (2, 3, 4, 4), "normal"),
    ],
)
def test_losses_ignore_invalid_pixels(kind, shape, invalid):
    task = TaskSpec("t", kind, num_classes=3 if kind == "segmentation" else 0)
    torch.manual_seed(0)
    if kind == "segmentation":
        target = torch.randint(0, 3, (2, 4, 4))
        target[:, 0] = -1
        mask = target == -1
    elif kind == "depth":
        target = torch.rand(2, 1, 4, 4) + 0.5
        target[:, :, 0] = 0
        mask = target[:, 0] == 0
    else:
        target = torch.nn.functional.normalize(torch.randn(2, 3, 4, 4), dim=1)
        target[:, :, 0] = 0
        mask = target.abs().sum(1) == 0
    pred = torch.randn(shape)
    pred2 = pred.clone()
    pred2.permute(0, 2, 3, 1)[mask] += 7.0  # change the prediction only where the target is invalid
    assert task_loss(task, pred, target).item() == pytest.approx(task_loss(task, pred2, target).item())
    a, b = MetricAccumulator(task), MetricAccumulator(task)
    a.update(pred, target)
    b.update(pred2, target)
    assert a.compute() == pytest.approx(b.compute())


def test_delta_mtl_sign_convention():
    base = {"depth": {"abs_err": 1.0}, "seg": {"miou": 0.5}}
    # a lower-is-better metric improving by 10% gives +10
    assert delta_mtl({"depth": {"abs_err": 0.9}}, base) == pytest.approx(10.0)
    assert delta_mtl({"seg": {"miou": 0.55}}, base) == pytest.approx(10.0)
    # average over tasks: +10 and -20 -> -5
    assert delta_mtl({"depth": {"abs_err": 0.9}, "seg": {"miou": 0.4}}, base) == pytest.approx(-5.0)
    with pytest.raises(KeyError, match="no single-task baseline"):
        delta_mtl({"normal": {"mean_angle": 1.0}}, base)


class _Lookup(torch.nn.Module):
    """A parameter-free 'model': the input image is the depth prediction, its first 3 pixels the logits."""

    def forward(self, x):
        return {"depth": x, "alphabet": x.flatten(1)[:, :3]}


def _uneven_split():
    """7 items whose valid-target counts differ: 0-4 valid depth pixels, some unlabelled (-1) samples."""
    g = torch.Generator().manual_seed(3)
    xs = torch.randn(7, 1, 2, 2, generator=g)
    depth = torch.rand(7, 1, 2, 2, generator=g) + 0.5
    for k, n_invalid in enumerate([0, 1, 4, 2, 3, 0, 4]):
        depth.view(7, -1)[k, :n_invalid] = 0.0  # invalid pixels
    labels = torch.tensor([0, -1, -1, 2, -1, 1, -1])  # ordered like Omniglot's alphabets: -1 = not this task's
    items = [(xs[k], {"depth": depth[k], "alphabet": labels[k]}) for k in range(7)]
    return items, xs, depth, labels


@pytest.mark.parametrize("batch_size", [1, 3, 7])
def test_validation_loss_is_the_mean_over_valid_targets_whatever_the_batch_size(batch_size):
    from supernet.epoch import evaluate, make_loader

    items, xs, depth, labels = _uneven_split()
    tasks = {"depth": TaskSpec("depth", "depth"), "alphabet": TaskSpec("alphabet", "classification", num_classes=3)}
    _, vloss = evaluate(_Lookup(), make_loader(items, batch_size, False, 0), tasks, torch.device("cpu"))
    valid = depth > 0
    want_depth = (xs - depth).abs()[valid].mean().item()  # over the 14 valid pixels of the split
    lab = labels != -1
    want_cls = torch.nn.functional.cross_entropy(
        xs.flatten(1)[lab, :3], labels[lab]
    ).item()  # over the 3 labelled items
    assert int(valid.sum()) == 14 and int(lab.sum()) == 3
    assert vloss["depth"] == pytest.approx(want_depth, rel=1e-6)
    assert vloss["alphabet"] == pytest.approx(want_cls, rel=1e-6)
