"""uint8 clips -> model input, on the device, batched: scale, enhance, normalise."""

from __future__ import annotations

import torch
from torch import nn


def to_unit(clips: torch.Tensor, device: torch.device) -> torch.Tensor:
    """uint8 [B, C, T, H, W] -> float in [0, 1] on `device` (the copy stays uint8)."""
    return clips.to(device, non_blocking=True).float().div_(255)


def normalise(
    video: torch.Tensor, mean: tuple[float, ...], std: tuple[float, ...], dtype: torch.dtype
) -> torch.Tensor:
    shape = (1, -1, 1, 1, 1)
    m = torch.tensor(mean, device=video.device).view(shape)
    s = torch.tensor(std, device=video.device).view(shape)
    return ((video - m) / s).to(dtype)


def model_input(
    unit: torch.Tensor,
    enhancer: nn.Module | None,
    mean: tuple[float, ...],
    std: tuple[float, ...],
    dtype: torch.dtype,
) -> torch.Tensor:
    """What a network sees: enhanced (teacher) or original (student), then normalised."""
    if enhancer is not None:
        with torch.no_grad():
            unit = enhancer(unit)
    return normalise(unit, mean, std, dtype)
