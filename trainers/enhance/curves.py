"""Light-enhancement curves, shared by Zero-DCE and Zero-DCE++: the curve update, the
curve-estimation network both papers use, and reading and checking weight files.

Mind the sign. The paper writes LE(x) = x + a*x*(1 - x), but the authors' code, and so
every weight file they released, computes x <- x + r*(x^2 - x), i.e. x - r*x*(1 - x): a
brightening curve has r < 0. We use the code's form so that their files and ours are
interchangeable. Weights trained by dlkdd before it adopted that form darken under it;
`load` refuses them (a probe on a dark ramp) instead of silently inverting them.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import ClassVar

import torch
import torch.nn.functional as F
from torch import nn

ITERATIONS = 8
# A dark grey ramp: well-trained weights brighten it, weights of the old sign darken it.
PROBE = torch.linspace(0.02, 0.3, 64).expand(1, 3, 64, 64)
# Refuse only a clear darkening: below half the probe's mean. Measured on this probe: an
# untrained DCE-Net scales its mean by 0.85..1.2 (an untrained Zero-DCE++ net by 0.3..2.9);
# weights trained 20 steps or more scale it by 3..6 with the authors' sign and by under 0.1
# with the old one.
DARKENING_RATIO = 0.5


class DarkeningWeights(ValueError):
    """Weights that darken a dark image under the authors' update: not an enhancer."""


def apply_curves(image: torch.Tensor, maps: torch.Tensor) -> torch.Tensor:
    """The authors' update x <- x + r*(x^2 - x), ITERATIONS times. `maps` holds one 3-channel
    map per iteration (Zero-DCE: 24 channels) or one map for all of them (Zero-DCE++: 3)."""
    steps = maps.split(3, dim=1)
    if len(steps) == 1:
        steps = steps * ITERATIONS
    if len(steps) != ITERATIONS:
        raise ValueError(f"expected 3 or {3 * ITERATIONS} curve channels, got {maps.shape[1]}")
    x = image
    for r in steps:
        x = x + r * (x.pow(2) - x)
    return x


class CurveNet(nn.Module):
    """DCE-Net as both papers build it: 7 layers of `channels` features with skip
    concatenations (3+4 -> 5, 2+5 -> 6, 1+6 -> 7) and tanh curve maps. `conv(cin, cout)` makes
    a layer: a 3x3 convolution (Zero-DCE) or a depthwise-separable one (Zero-DCE++). Maps are
    estimated on the frame downscaled by `scale` and upsampled back to its exact size."""

    smoothness_weight: ClassVar[float]  # the authors' weight of the illumination smoothness loss
    darkening_hint: ClassVar[str]  # what to tell a user whose weights darken

    def __init__(
        self, conv: Callable[[int, int], nn.Module], maps: int, scale: int = 1, channels: int = 32
    ) -> None:
        super().__init__()
        if scale < 1:
            raise ValueError(f"scale must be >= 1, got {scale}")
        self.scale = scale
        self.e_conv1 = conv(3, channels)
        self.e_conv2 = conv(channels, channels)
        self.e_conv3 = conv(channels, channels)
        self.e_conv4 = conv(channels, channels)
        self.e_conv5 = conv(channels * 2, channels)
        self.e_conv6 = conv(channels * 2, channels)
        self.e_conv7 = conv(channels * 2, maps)

    def curve_maps(self, image: torch.Tensor) -> torch.Tensor:
        """image [N, 3, H, W] in [0, 1] -> curve maps r in [-1, 1], [N, maps, H, W]."""
        small = image
        if self.scale != 1:  # as the authors downscale (bilinear, by the factor itself)
            small = F.interpolate(image, scale_factor=1 / self.scale, mode="bilinear")
        x1 = F.relu(self.e_conv1(small))
        x2 = F.relu(self.e_conv2(x1))
        x3 = F.relu(self.e_conv3(x2))
        x4 = F.relu(self.e_conv4(x3))
        x5 = F.relu(self.e_conv5(torch.cat([x3, x4], 1)))
        x6 = F.relu(self.e_conv6(torch.cat([x2, x5], 1)))
        maps = torch.tanh(self.e_conv7(torch.cat([x1, x6], 1)))
        if self.scale != 1:  # the authors' UpsamplingBilinear2d, i.e. align_corners=True
            maps = F.interpolate(maps, size=image.shape[-2:], mode="bilinear", align_corners=True)
        return maps

    def forward(self, image: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """image [N, 3, H, W] in [0, 1] -> (enhanced image, curve maps)."""
        maps = self.curve_maps(image)
        return apply_curves(image, maps), maps


class CurveEnhancer(nn.Module):
    """Applies a frozen curve network to every frame of a video batch [B, C, T, H, W]."""

    def __init__(self, net: CurveNet) -> None:
        super().__init__()
        self.net = net.eval().requires_grad_(False)

    def forward(self, video: torch.Tensor) -> torch.Tensor:
        b, c, t, h, w = video.shape
        frames = video.transpose(1, 2).reshape(b * t, c, h, w)
        out, _ = self.net(frames.clamp(0, 1))
        return out.clamp(0, 1).view(b, t, c, h, w).transpose(1, 2)


def darkening(net: CurveNet) -> tuple[float, float] | None:
    """(mean before, mean after) of the dark probe ramp when the network takes its mean below
    DARKENING_RATIO of itself; None when it brightens it or leaves it about as it was."""
    with torch.no_grad():
        out, _ = net(PROBE.to(next(net.parameters()).device))
    before, after = float(PROBE.mean()), float(out.clamp(0, 1).mean())
    return (before, after) if after < before * DARKENING_RATIO else None


def read_state(path: Path) -> dict[str, torch.Tensor]:
    """A plain state_dict from a local file: ours, or the authors' (PyTorch's legacy format,
    possibly saved from a DataParallel model, whose keys start with `module.`)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"weights not found: {path}")
    state = torch.load(path, map_location="cpu", weights_only=True)
    return {k.removeprefix("module."): v for k, v in state.items()}


def load(net: CurveNet, path: Path, check: bool = True) -> CurveNet:
    """`net` with the weights of `path`, in eval mode. With `check`, weights that darken the
    dark probe are refused (DarkeningWeights) rather than used or silently inverted."""
    try:
        net.load_state_dict(read_state(path))
    except RuntimeError as err:
        raise ValueError(f"{path}: not {type(net).__name__} weights: {err}") from None
    net.eval()
    if check and (means := darkening(net)):
        raise DarkeningWeights(
            f"{path}: these weights darken a dark image under the authors' curve update "
            f"x <- x + r*(x^2 - x) (probe mean {means[0]:.3f} -> {means[1]:.3f}). "
            + net.darkening_hint
        )
    return net


def save(net: CurveNet, path: Path) -> None:
    """A plain state_dict with the authors' key names: their tools read it as it is."""
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    torch.save(net.state_dict(), path)
