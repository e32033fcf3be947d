"""Hand-designed enhancements on float video batches [B, C, T, H, W] in [0, 1]."""

from __future__ import annotations

import torch
from torch import nn

# ITU-R BT.601 luma weights, as OpenCV's RGB->YCrCb uses.
LUMA = (0.299, 0.587, 0.114)


class Identity(nn.Module):
    """The teacher sees original video: the self-distillation control."""

    def forward(self, video: torch.Tensor) -> torch.Tensor:
        return video


class GammaCorrection(nn.Module):
    """GIC: out = in ** (1 / gamma); gamma > 1 brightens dark pixels most."""

    def __init__(self, gamma: float = 2.0) -> None:
        super().__init__()
        if gamma <= 0:
            raise ValueError(f"gamma must be > 0, got {gamma}")
        self.gamma = gamma

    def forward(self, video: torch.Tensor) -> torch.Tensor:
        return video.clamp(0, 1).pow(1.0 / self.gamma)


class HistogramEqualisation(nn.Module):
    """Equalises the luma (YCrCb Y) histogram of every frame, like OpenCV's equalizeHist.

    With Cr and Cb held fixed, changing Y by d changes R, G and B by d each, so the
    colour is kept by adding the luma change to every channel. All frames are done at
    once with one bincount instead of a Python loop per frame."""

    def forward(self, video: torch.Tensor) -> torch.Tensor:
        b, c, t, h, w = video.shape
        weights = torch.tensor(LUMA, device=video.device, dtype=video.dtype).view(1, 3, 1, 1, 1)
        luma = (video.clamp(0, 1) * weights).sum(1)  # [B, T, H, W]
        levels = (luma * 255).round().long().view(b * t, h * w)
        frames = levels.shape[0]
        offsets = torch.arange(frames, device=video.device).unsqueeze(1) * 256
        counts = torch.bincount((levels + offsets).view(-1), minlength=frames * 256)
        cdf = counts.view(frames, 256).cumsum(1)
        cdf_min = cdf.gather(1, levels.min(1, keepdim=True).values)
        span = (h * w - cdf_min).clamp(min=1)
        lut = ((cdf - cdf_min).clamp(min=0).float() * 255 / span).round()
        flat = (h * w - cdf_min) == 0  # a constant frame stays as it is
        lut = torch.where(flat, torch.arange(256, device=video.device).float(), lut)
        new_luma = lut.gather(1, levels).view(b, 1, t, h, w) / 255
        return (video + (new_luma.to(video.dtype) - luma.unsqueeze(1))).clamp(0, 1)


class Sequence(nn.Module):
    """Applies enhancements in order (gic_he = gamma correction, then equalisation)."""

    def __init__(self, *stages: nn.Module) -> None:
        super().__init__()
        self.stages = nn.ModuleList(stages)

    def forward(self, video: torch.Tensor) -> torch.Tensor:
        for stage in self.stages:
            video = stage(video)
        return video
