"""`EpochSampler`: training indices that carry their epoch to the DataLoader workers.

Persistent DataLoader workers keep the dataset copy they started with, so a
`dataset.set_epoch(e)` in the main process never reaches them (pytorch#97326) and the
training augmentation would repeat epoch after epoch. The sampler lives in the main process,
so its epoch is current when each epoch's iteration starts; it sends `(epoch, index)` pairs
that `ClipDataset` turns into that epoch's random window, crop and flip.
"""

from __future__ import annotations

from collections.abc import Iterator

from torch.utils.data import DistributedSampler, Sampler


class EpochSampler(Sampler[tuple[int, int]]):
    """A `DistributedSampler` (this rank's shuffled shard) whose indices come as
    `(epoch, index)`; `set_epoch` reshuffles and re-seeds the augmentation together."""

    def __init__(self, sampler: DistributedSampler) -> None:
        self.sampler = sampler
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch
        self.sampler.set_epoch(epoch)

    def __iter__(self) -> Iterator[tuple[int, int]]:
        epoch = self.epoch  # fixed when the epoch's iteration starts, as the shuffle is
        return ((epoch, index) for index in self.sampler)

    def __len__(self) -> int:
        return len(self.sampler)
