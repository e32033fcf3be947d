"""Zero-DCE (Guo et al., CVPR 2020): a tiny CNN predicts per-pixel light-enhancement curves.

Layer names follow the authors' release (`e_conv1` ... `e_conv7`) so that their
`Epoch99.pth` state_dict, copied to local disk, loads unchanged. Training is
zero-reference: four losses on dark frames alone, no paired bright images.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

ITERATIONS = 8
EXPOSURE_TARGET = 0.6


class DCENet(nn.Module):
    """7 conv layers of 32 channels with symmetric skip concatenations; 24 curve maps."""

    def __init__(self, channels: int = 32) -> None:
        super().__init__()

        def conv(cin: int, cout: int) -> nn.Conv2d:
            return nn.Conv2d(cin, cout, 3, 1, 1, bias=True)

        self.e_conv1 = conv(3, channels)
        self.e_conv2 = conv(channels, channels)
        self.e_conv3 = conv(channels, channels)
        self.e_conv4 = conv(channels, channels)
        self.e_conv5 = conv(channels * 2, channels)
        self.e_conv6 = conv(channels * 2, channels)
        self.e_conv7 = conv(channels * 2, 3 * ITERATIONS)

    def forward(self, image: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """image [N, 3, H, W] in [0, 1] -> (enhanced image, curve maps [N, 24, H, W])."""
        x1 = F.relu(self.e_conv1(image))
        x2 = F.relu(self.e_conv2(x1))
        x3 = F.relu(self.e_conv3(x2))
        x4 = F.relu(self.e_conv4(x3))
        x5 = F.relu(self.e_conv5(torch.cat([x3, x4], 1)))
        x6 = F.relu(self.e_conv6(torch.cat([x2, x5], 1)))
        curves = torch.tanh(self.e_conv7(torch.cat([x1, x6], 1)))
        x = image
        for a in curves.split(3, dim=1):
            x = x + a * x * (1 - x)
        return x.clamp(0, 1), curves


class ZeroDCE(nn.Module):
    """Applies a (frozen) DCE-Net to every frame of a video batch [B, C, T, H, W]."""

    def __init__(self, net: DCENet) -> None:
        super().__init__()
        self.net = net.eval().requires_grad_(False)

    def forward(self, video: torch.Tensor) -> torch.Tensor:
        b, c, t, h, w = video.shape
        frames = video.transpose(1, 2).reshape(b * t, c, h, w)
        out, _ = self.net(frames.clamp(0, 1))
        return out.view(b, t, c, h, w).transpose(1, 2)


def colour_constancy_loss(enhanced: torch.Tensor) -> torch.Tensor:
    """Grey-world prior: the mean R, G and B of the enhanced image should agree."""
    r, g, b = enhanced.mean((2, 3)).unbind(1)
    return torch.sqrt((r - g) ** 4 + (r - b) ** 4 + (g - b) ** 4).mean()


def exposure_loss(enhanced: torch.Tensor, patch: int = 16) -> torch.Tensor:
    """Pulls the mean intensity of every patch towards a well-exposed level."""
    patch = min(patch, *enhanced.shape[-2:])
    level = F.avg_pool2d(enhanced.mean(1, keepdim=True), patch)
    return ((level - EXPOSURE_TARGET) ** 2).mean()


def _neighbour_differences(x: torch.Tensor) -> list[torch.Tensor]:
    """Differences of each cell with its left, right, upper and lower neighbour (zero pad)."""
    p = F.pad(x, (1, 1, 1, 1))
    centre = p[..., 1:-1, 1:-1]
    return [
        centre - p[..., 1:-1, :-2],
        centre - p[..., 1:-1, 2:],
        centre - p[..., :-2, 1:-1],
        centre - p[..., 2:, 1:-1],
    ]


def spatial_consistency_loss(enhanced: torch.Tensor, original: torch.Tensor) -> torch.Tensor:
    """Keeps the contrast between neighbouring 4x4 regions as it was in the input."""
    pool = min(4, *original.shape[-2:])
    e = F.avg_pool2d(enhanced.mean(1, keepdim=True), pool)
    o = F.avg_pool2d(original.mean(1, keepdim=True), pool)
    terms = zip(_neighbour_differences(e), _neighbour_differences(o), strict=True)
    return sum(((de - do) ** 2) for de, do in terms).mean()


def illumination_smoothness_loss(curves: torch.Tensor) -> torch.Tensor:
    """Total variation of the curve maps: neighbouring pixels get similar curves."""
    n, _, h, w = curves.shape
    dh = ((curves[:, :, 1:, :] - curves[:, :, :-1, :]) ** 2).sum() / (curves[:, :, 1:].numel() / n)
    dw = ((curves[..., 1:] - curves[..., :-1]) ** 2).sum() / (curves[..., 1:].numel() / n)
    return 2 * (dh + dw) / n


def zero_reference_loss(
    net: DCENet, frames: torch.Tensor
) -> tuple[torch.Tensor, dict[str, float], torch.Tensor]:
    """The paper's weighted sum; returns (loss, its terms, enhanced frames)."""
    enhanced, curves = net(frames)
    terms = {
        "smoothness": 200 * illumination_smoothness_loss(curves),
        "spatial": spatial_consistency_loss(enhanced, frames),
        "colour": 5 * colour_constancy_loss(enhanced),
        "exposure": 10 * exposure_loss(enhanced),
    }
    loss = sum(terms.values())
    return loss, {k: float(v.detach()) for k, v in terms.items()}, enhanced


def train(
    frames: torch.Tensor,
    steps: int = 300,
    batch_size: int = 8,
    lr: float = 1e-3,
    seed: int = 0,
    on_step: Callable[[int, float], None] | None = None,
) -> tuple[DCENet, list[float]]:
    """Fits a DCE-Net on dark frames [N, 3, H, W] in [0, 1]; returns it and the loss curve."""
    torch.manual_seed(seed)
    net = DCENet()
    optimiser = torch.optim.Adam(net.parameters(), lr=lr, weight_decay=1e-4)
    generator = torch.Generator().manual_seed(seed)
    history = []
    for step in range(steps):
        batch = frames[torch.randint(len(frames), (batch_size,), generator=generator)]
        loss, _, _ = zero_reference_loss(net, batch)
        optimiser.zero_grad()
        loss.backward()
        nn.utils.clip_grad_norm_(net.parameters(), 0.1)
        optimiser.step()
        history.append(loss.item())
        if on_step:
            on_step(step, history[-1])
    return net.eval(), history


def save(net: DCENet, path: Path) -> None:
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    torch.save(net.state_dict(), path)


def load(path: Path) -> DCENet:
    """Loads a plain state_dict (ours or the authors' release) from a local file."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"Zero-DCE weights not found: {path}")
    net = DCENet()
    net.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
    return net.eval()
