"""`ClipDataset`: labelled videos -> uint8 clips, for training, validation and multi-view test.

A bad video is skipped, not fatal: the sample is replaced by another one and the number of
bad files hit is returned with the sample, so the training loop can count them across
DataLoader processes and stop when the share is too large.
"""

from __future__ import annotations

import logging

import numpy as np
import torch
from torch.utils.data import Dataset

from trainers.config import ClipConfig
from trainers.data import sampling, transforms
from trainers.data.decode import BadVideoError, read_frames

log = logging.getLogger(__name__)

MAX_REPLACEMENTS = 20


class ClipDataset(Dataset):
    """mode 'train': random window, random resized crop, random flip -> [C, T, S, S].
    mode 'val': centre window, centre crop -> [C, T, S, S].
    mode 'test': `test_windows` windows x 3 crops -> [V*3, C, T, S, S].
    Every item is (clip uint8, label, bad files skipped to produce it)."""

    def __init__(
        self, items: list[tuple[str, int]], clip: ClipConfig, mode: str, seed: int = 0
    ) -> None:
        if mode not in ("train", "val", "test"):
            raise ValueError(f"mode must be train, val or test, not {mode!r}")
        if not items:
            raise ValueError(f"empty {mode} list")
        self.items, self.clip, self.mode, self.seed = items, clip, mode, seed
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        """The epoch of a plain `dataset[index]`. Training randomness is a function of
        (seed, epoch, index): resumable and repeatable. This reaches only this process's copy;
        the training loader's workers get the epoch with each index (`EpochSampler`)."""
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, key: int | tuple[int, int]) -> tuple[torch.Tensor, int, int]:
        """`dataset[index]` (at `self.epoch`) or `dataset[epoch, index]`."""
        epoch, index = key if isinstance(key, tuple) else (self.epoch, key)
        rng = np.random.default_rng((self.seed, epoch, index))
        skipped = 0
        for _ in range(MAX_REPLACEMENTS):
            path, label = self.items[index]
            try:
                return self.load(path, rng), label, skipped
            except BadVideoError as err:
                log.warning("skipping bad video %s (%s)", err.path, err.reason)
                skipped += 1
                index = int(rng.integers(len(self.items)))
        raise RuntimeError(f"{MAX_REPLACEMENTS} bad videos in a row; is the dataset readable?")

    def load(self, path: str, rng: np.random.Generator) -> torch.Tensor:
        c = self.clip
        if self.mode == "train":
            [frames], _ = read_frames(
                path, lambda n: [sampling.random_window(n, c.num_frames, c.stride, rng)]
            )
            clip = transforms.random_resized_crop(
                transforms.to_tensor(frames), c.crop_size, c.min_scale, rng
            )
            return transforms.hflip(clip) if rng.random() < 0.5 else clip
        if self.mode == "val":
            [frames], _ = read_frames(
                path, lambda n: [sampling.centre_window(n, c.num_frames, c.stride)]
            )
            return transforms.centre_crop(transforms.to_tensor(frames), c.crop_size)
        windows, _ = read_frames(
            path,
            lambda n: sampling.evenly_spaced_windows(n, c.num_frames, c.stride, c.test_windows),
        )
        views = [
            crop
            for frames in windows
            for crop in transforms.three_crops(transforms.to_tensor(frames), c.crop_size)
        ]
        return torch.stack(views)


class KeyedClips(Dataset):
    """A `ClipDataset` whose items also carry their `(epoch, index)` key: the student finds
    its batch's stored soft targets by it (the index asked for, even when a bad video was
    replaced: the store was computed the same way)."""

    def __init__(self, clips: ClipDataset) -> None:
        self.clips = clips

    def __len__(self) -> int:
        return len(self.clips)

    def __getitem__(self, key: tuple[int, int]) -> tuple[torch.Tensor, int, int, torch.Tensor]:
        return *self.clips[key], torch.tensor(key)
