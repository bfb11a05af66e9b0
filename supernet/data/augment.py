"""Resizing and training augmentation for dense samples, applied consistently to the image and every target.

A *sample* is ``(image float32 (3, H, W), {task: target})`` in the target formats of ``supernet.tasks``;
``kinds`` maps each task name to its ``TaskSpec.kind`` so a target is treated by what it is:

============== ============================== ===========================================================
kind           resize / crop                   invalid pixels
============== ============================== ===========================================================
segmentation   nearest                        -1 stays -1 (nearest copies labels, never blends them)
depth          bilinear, masked               0 stays 0; an output pixel is valid only if *every* source
                                              pixel it is interpolated from is valid, so no valid value is
                                              ever blended with a hole
normal         bilinear, masked, re-normalised all-zero stays all-zero (same rule as depth)
classification passed through unchanged        -1 = not this task's sample
============== ============================== ===========================================================

The image is resized bilinearly (antialiased when shrinking). Targets are resized without antialiasing, so a
target value is blended from its 2x2 source neighbourhood only and holes grow by at most one pixel.

Augmentation (ours; the recipe of LibMTL's NYUv2 ``RandomScaleCrop`` + flip, credited there to MTAN issue
#34): pick a scale ``s`` from ``scales``, crop a random ``H/s x W/s`` window, resize it back to ``H x W``,
divide depth by ``s`` (zooming in by ``s`` looks like moving the camera ``s`` times closer), then flip
horizontally with probability 1/2, negating the normals' x component (channel 0, the image's horizontal
axis). Every random draw comes from an explicit ``torch.Generator``, so a sample's augmentation is a pure
function of the generator's state.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch
import torch.nn.functional as F
from torch.utils.data import Dataset

Sample = tuple[torch.Tensor, dict[str, torch.Tensor]]
DENSE_KINDS = ("segmentation", "depth", "normal")
_FULL = 1.0 - 1e-4  # an interpolated validity mask above this means "all contributing pixels valid"


# ----------------------------------------------------------------------------- resizing


def resize_image(image: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """(C, H, W) float -> (C, h, w): bilinear, antialiased when shrinking."""
    size = (int(size[0]), int(size[1]))
    if tuple(image.shape[-2:]) == size:
        return image
    shrink = size[0] < image.shape[-2] or size[1] < image.shape[-1]
    out = F.interpolate(image[None].float(), size=size, mode="bilinear", align_corners=False, antialias=shrink)
    return out[0]


def _masked_bilinear(x: torch.Tensor, valid: torch.Tensor, size: tuple[int, int]) -> tuple[torch.Tensor, torch.Tensor]:
    """Bilinear resize of (C, H, W) ``x`` that never blends valid values with invalid ones.

    Returns the resized values (zero where invalid) and the output validity mask (h, w): a pixel is valid
    only if every source pixel with a non-zero interpolation weight is valid.
    """
    m = valid.to(x.dtype)[None, None]  # (1, 1, H, W)
    num = F.interpolate((x * m[0])[None], size=size, mode="bilinear", align_corners=False)[0]  # (C, h, w)
    den = F.interpolate(m, size=size, mode="bilinear", align_corners=False)[0, 0]  # (h, w)
    ok = den > _FULL
    out = torch.where(ok[None], num / den.clamp_min(_FULL)[None], torch.zeros_like(num))
    return out, ok


def resize_target(kind: str, target: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Resize one target of the given kind to ``size`` = (h, w); invalid pixels stay invalid (module doc)."""
    size = (int(size[0]), int(size[1]))
    if kind == "classification" or tuple(target.shape[-2:]) == size:
        return target
    if kind == "segmentation":  # (H, W) int64
        return F.interpolate(target[None, None].float(), size=size, mode="nearest")[0, 0].to(target.dtype)
    if kind == "depth":  # (1, H, W), 0 = invalid
        out, _ = _masked_bilinear(target.float(), target[0] > 0, size)
        return out
    if kind == "normal":  # (3, H, W), all-zero = invalid
        out, ok = _masked_bilinear(target.float(), target.abs().sum(0) > 0, size)
        norm = out.norm(dim=0)  # blended unit vectors are shorter than 1; opposite ones may cancel
        ok = ok & (norm > 1e-6)
        return torch.where(ok[None], out / norm.clamp_min(1e-6)[None], torch.zeros_like(out))
    raise ValueError(f"resize_target: unknown task kind {kind!r}")


def resize_sample(
    image: torch.Tensor, targets: dict[str, torch.Tensor], kinds: Mapping[str, str], size: tuple[int, int]
) -> Sample:
    """Resize the image and every target to ``size`` = (h, w)."""
    return resize_image(image, size), {t: resize_target(kinds[t], v, size) for t, v in targets.items()}


# ----------------------------------------------------------------------------- geometric transforms


def hflip(image: torch.Tensor, targets: dict[str, torch.Tensor], kinds: Mapping[str, str]) -> Sample:
    """Mirror left-right. Normals' x component (channel 0) is negated; the flip is its own inverse."""
    out = {}
    for t, v in targets.items():
        if kinds[t] == "classification":
            out[t] = v
        elif kinds[t] == "normal":
            out[t] = v.flip(-1) * torch.tensor([-1.0, 1.0, 1.0], dtype=v.dtype)[:, None, None]
        else:
            out[t] = v.flip(-1)
    return image.flip(-1), out


def scale_crop(
    image: torch.Tensor,
    targets: dict[str, torch.Tensor],
    kinds: Mapping[str, str],
    top: int,
    left: int,
    scale: float,
    scale_depth: bool = True,
) -> Sample:
    """Crop the ``H/scale x W/scale`` window at (top, left) and resize it back to H x W.

    With ``scale_depth`` the valid depth values are divided by ``scale`` (zoom = moving closer); 0 stays 0.
    """
    h, w = image.shape[-2:]
    ch, cw = max(1, int(h / scale)), max(1, int(w / scale))
    if not (0 <= top <= h - ch and 0 <= left <= w - cw):
        raise ValueError(f"scale_crop: window {ch}x{cw} at ({top}, {left}) does not fit in {h}x{w}")
    image = resize_image(image[..., top : top + ch, left : left + cw], (h, w))
    out = {}
    for t, v in targets.items():
        k = kinds[t]
        if k == "classification":
            out[t] = v
            continue
        v = resize_target(k, v[..., top : top + ch, left : left + cw], (h, w))
        if k == "depth" and scale_depth:
            v = v / scale
        out[t] = v
    return image, out


class DenseAugment:
    """Random scale-crop (scale from ``scales``) then a random horizontal flip; see the module doc.

    ``__call__(image, targets, generator)`` draws from ``generator`` only, so equal generator states give
    equal results. ``flip=False`` suits data whose class depends on handedness (e.g. handwriting).
    """

    def __init__(
        self,
        kinds: Mapping[str, str],
        scales: Sequence[float] = (1.0, 1.2, 1.5),
        flip: bool = True,
        scale_depth: bool = True,
    ):
        if not scales or min(scales) < 1.0:
            raise ValueError(f"DenseAugment: scales must be >= 1 (1 = no zoom), got {list(scales)}")
        self.kinds, self.scales, self.flip, self.scale_depth = dict(kinds), tuple(scales), flip, scale_depth

    def __call__(self, image: torch.Tensor, targets: dict[str, torch.Tensor], generator: torch.Generator) -> Sample:
        h, w = image.shape[-2:]
        s = self.scales[int(torch.randint(len(self.scales), (1,), generator=generator))]
        ch, cw = max(1, int(h / s)), max(1, int(w / s))
        top = int(torch.randint(h - ch + 1, (1,), generator=generator))
        left = int(torch.randint(w - cw + 1, (1,), generator=generator))
        do_flip = bool(torch.rand(1, generator=generator) < 0.5)
        if s != 1.0:
            image, targets = scale_crop(image, targets, self.kinds, top, left, s, self.scale_depth)
        if self.flip and do_flip:
            image, targets = hflip(image, targets, self.kinds)
        return image, targets


class Augmented(Dataset):
    """A data set whose items pass through ``augment`` (training split only).

    Randomness: with ``seed=None`` each item draws one 63-bit number from torch's global RNG to seed its own
    generator, so a run is reproducible under ``torch.manual_seed`` (the trial seed), differs per epoch,
    and DataLoader workers (which PyTorch seeds per worker and epoch) stay reproducible too. With an
    integer ``seed`` item ``i`` in epoch ``e`` (``set_epoch``) uses ``seed, e, i`` alone, independent of
    the global RNG and of which worker loads it.
    """

    def __init__(self, base: Dataset, augment: DenseAugment, seed: int | None = None):
        self.base, self.augment, self.seed, self.epoch = base, augment, seed, 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self.base)  # type: ignore[arg-type]

    def __getitem__(self, i: int) -> Sample:
        image, targets = self.base[i]
        if self.seed is None:
            s = int(torch.randint(0, 2**63 - 1, (1,)))
        else:
            s = (self.seed * 1_000_003 + self.epoch) * 1_000_003 + i
        g = torch.Generator().manual_seed(s % (2**63 - 1))
        return self.augment(image, targets, g)
