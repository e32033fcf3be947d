"""Spatial stages on uint8 clips [C, T, H, W]: random resized crop, flip, centre and 3 crops.

They stay uint8 so that what crosses process and network boundaries is a quarter of the
float size; normalisation happens batched on the device.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F


def to_tensor(frames: np.ndarray) -> torch.Tensor:
    """Decoder output [T, H, W, C] uint8 -> [C, T, H, W] uint8."""
    return torch.from_numpy(np.ascontiguousarray(frames)).permute(3, 0, 1, 2)


def resize(clip: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """Bilinear, antialiased resize of every frame; a no-op when the size already fits."""
    if clip.shape[-2:] == (height, width):
        return clip
    frames = clip.permute(1, 0, 2, 3).float()  # [T, C, H, W]
    out = F.interpolate(frames, size=(height, width), mode="bilinear", antialias=True)
    return out.round_().clamp_(0, 255).to(torch.uint8).permute(1, 0, 2, 3)


def random_resized_crop(
    clip: torch.Tensor, size: int, min_scale: float, rng: np.random.Generator
) -> torch.Tensor:
    """Inception-style crop (area share in [min_scale, 1], aspect in [3/4, 4/3]) to size^2."""
    h, w = clip.shape[-2:]
    for _ in range(10):
        area = h * w * rng.uniform(min_scale, 1.0)
        aspect = math.exp(rng.uniform(math.log(3 / 4), math.log(4 / 3)))
        ch, cw = round(math.sqrt(area / aspect)), round(math.sqrt(area * aspect))
        if 0 < ch <= h and 0 < cw <= w:
            top, left = int(rng.integers(0, h - ch + 1)), int(rng.integers(0, w - cw + 1))
            return resize(clip[..., top : top + ch, left : left + cw], size, size)
    return centre_crop(clip, size)


def hflip(clip: torch.Tensor) -> torch.Tensor:
    return clip.flip(-1)


def resize_short_side(clip: torch.Tensor, size: int) -> torch.Tensor:
    h, w = clip.shape[-2:]
    if h <= w:
        return resize(clip, size, max(size, round(w * size / h)))
    return resize(clip, max(size, round(h * size / w)), size)


def centre_crop(clip: torch.Tensor, size: int) -> torch.Tensor:
    return three_crops(clip, size)[1]


def three_crops(clip: torch.Tensor, size: int) -> list[torch.Tensor]:
    """Short side resized to `size`, then start / centre / end crops along the long side."""
    clip = resize_short_side(clip, size)
    h, w = clip.shape[-2:]
    if w >= h:
        offsets = [0, (w - size) // 2, w - size]
        return [clip[..., :size, o : o + size] for o in offsets]
    offsets = [0, (h - size) // 2, h - size]
    return [clip[..., o : o + size, :size] for o in offsets]
