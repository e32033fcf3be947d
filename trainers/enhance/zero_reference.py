"""Zero-reference training of a curve network (Zero-DCE and Zero-DCE++ alike): four losses
on dark frames alone, no paired bright images. Weights as the authors' code: spatial
consistency 1, colour constancy 5, exposure 10 (towards 0.6), illumination smoothness as
the network says (Zero-DCE 200, Zero-DCE++ 1600).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

from trainers.enhance.curves import CurveNet

EXPOSURE_TARGET = 0.6


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
    """Total variation of the curve maps: neighbouring pixels get similar curves. As the
    authors' L_TV: squared differences summed over channels, averaged over positions."""
    n, _, h, w = curves.shape
    dh = ((curves[:, :, 1:, :] - curves[:, :, :-1, :]) ** 2).sum() / ((h - 1) * w)
    dw = ((curves[..., 1:] - curves[..., :-1]) ** 2).sum() / (h * (w - 1))
    return 2 * (dh + dw) / n


def zero_reference_loss(
    net: CurveNet, frames: torch.Tensor
) -> tuple[torch.Tensor, dict[str, float], torch.Tensor]:
    """The papers' weighted sum; returns (loss, its terms, enhanced frames)."""
    enhanced, curves = net(frames)
    terms = {
        "smoothness": net.smoothness_weight * illumination_smoothness_loss(curves),
        "spatial": spatial_consistency_loss(enhanced, frames),
        "colour": 5 * colour_constancy_loss(enhanced),
        "exposure": 10 * exposure_loss(enhanced),
    }
    loss = sum(terms.values())
    return loss, {k: float(v.detach()) for k, v in terms.items()}, enhanced


def train(
    make_net: Callable[[], CurveNet],
    frames: torch.Tensor,
    steps: int = 300,
    batch_size: int = 8,
    lr: float = 1e-3,
    seed: int = 0,
    on_step: Callable[[int, float], None] | None = None,
) -> tuple[CurveNet, list[float]]:
    """Fits a fresh `make_net()` on dark frames [N, 3, H, W] in [0, 1] (at the network's own
    scale: the authors train at 1); returns it in eval mode and the loss curve."""
    torch.manual_seed(seed)
    net = make_net()
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
