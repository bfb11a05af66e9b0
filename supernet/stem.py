"""The shared stem that maps an image to ``x0``: a small conv stem (CPU runs) or a ResNet trunk.

The ResNet trunk is torchvision's resnet18/34/50 cut after ``stem_layers`` residual stages, followed by a
1x1 projection to ``channels``. Its weights load from a local file only (``model.stem_weights``); with
no file it is randomly initialised. Nothing is ever downloaded.
"""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn as nn

from .ops import norm_layer


class ConvStem(nn.Module):
    def __init__(self, channels: int, norm: str = "bn"):
        super().__init__()
        self.net = nn.Sequential(
            nn.Conv2d(3, channels, 3, padding=1, bias=False), norm_layer(norm, channels), nn.ReLU(inplace=True)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)  # (B, C, H, W)


class ResNetStem(nn.Module):
    """torchvision ResNet trunk (conv1 .. layer<k>) + 1x1 projection to ``channels``. Stride 4 * 2^(k-1)."""

    def __init__(self, arch: str, channels: int, layers: int = 2, weights: str | None = None, norm: str = "bn"):
        super().__init__()
        import torchvision

        net = getattr(torchvision.models, arch)(weights=None)
        if weights is not None:
            load_trunk_weights(net, weights)
        stages = [net.layer1, net.layer2, net.layer3, net.layer4][:layers]
        self.trunk = nn.Sequential(net.conv1, net.bn1, net.relu, net.maxpool, *stages)
        trunk_out = (
            stages[-1][-1].conv3.out_channels if hasattr(stages[-1][-1], "conv3") else stages[-1][-1].conv2.out_channels
        )
        self.proj = nn.Sequential(
            nn.Conv2d(trunk_out, channels, 1, bias=False), norm_layer(norm, channels), nn.ReLU(inplace=True)
        )

        # images arrive in [0, 1]; torchvision ResNets expect ImageNet-normalised input
        self.register_buffer("mean", torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.proj(self.trunk((x - self.mean) / self.std))  # (B, C, H/s, W/s)


def load_trunk_weights(net: nn.Module, path: str) -> None:
    """Load a local torchvision ResNet state_dict (tensors only; the ``fc`` layer may be absent)."""
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(
            f"model.stem_weights: {path!r} does not exist; give a local torchvision ResNet .pth state_dict "
            "(nothing is downloaded) or leave it null for random initialisation"
        )
    try:
        state = torch.load(p, map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001 - any unreadable file gets the same clear message
        raise ValueError(f"model.stem_weights: {path!r} is not a readable torch state_dict ({e})") from None
    if isinstance(state, dict) and "state_dict" in state and isinstance(state["state_dict"], dict):
        state = state["state_dict"]
    missing, unexpected = net.load_state_dict(state, strict=False)
    missing = [k for k in missing if not k.startswith("fc.")]
    if missing or unexpected:
        raise ValueError(
            f"model.stem_weights: {path!r} does not match the chosen ResNet "
            f"(missing {missing[:5]}, unexpected {list(unexpected)[:5]}); check model.stem"
        )


def build_stem(stem: str, channels: int, layers: int = 2, weights: str | None = None, norm: str = "bn") -> nn.Module:
    if stem == "conv":
        return ConvStem(channels, norm)
    return ResNetStem(stem, channels, layers, weights, norm)
