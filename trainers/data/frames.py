"""Still frames sampled from videos: the training data of Zero-DCE and of previews."""

from __future__ import annotations

import numpy as np
import torch

from trainers.data import transforms
from trainers.data.decode import read_frames


def sample_frames(
    paths: list[str], per_video: int = 4, max_size: int = 128, seed: int = 0
) -> torch.Tensor:
    """`per_video` random frames of each video, short side resized to at most `max_size`,
    centre-cropped square, as float [N, 3, S, S] in [0, 1]."""
    rng = np.random.default_rng(seed)
    chosen = []
    for path in paths:
        [frames], _ = read_frames(
            path, lambda n: [np.sort(rng.choice(n, size=min(per_video, n), replace=False))]
        )
        clip = transforms.to_tensor(frames)
        size = min(max_size, *clip.shape[-2:])
        chosen.append(transforms.centre_crop(clip, size).transpose(0, 1))  # [T, C, S, S]
    return torch.cat(chosen).float() / 255
