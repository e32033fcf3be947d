"""ClipDataset: uint8 clips of the asked shape, deterministic evaluation, bad files skipped."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader, DistributedSampler

from trainers.config import ClipConfig, DatasetConfig
from trainers.data import sampling
from trainers.data.clips import ClipDataset
from trainers.data.epoch_sampler import EpochSampler
from trainers.data.manifests import load_splits, read_csv
from trainers.data.synth import SynthConfig, darken, render_clip, write_video

CLIP = ClipConfig(num_frames=8, stride=2, crop_size=24, test_windows=2)


def items(root: Path, subset: str = "train") -> list[tuple[str, int]]:
    return load_splits(DatasetConfig(format="csv", root=root))[subset].items


def test_train_clip_is_uint8_cthw(synth_root: Path) -> None:
    clip, label, skipped = ClipDataset(items(synth_root), CLIP, "train")[0]
    assert clip.dtype == torch.uint8 and clip.shape == (3, 8, 24, 24)
    assert label == 0 and skipped == 0


def test_test_mode_returns_windows_times_three_crops(synth_root: Path) -> None:
    views, _, _ = ClipDataset(items(synth_root, "test"), CLIP, "test")[1]
    assert views.shape == (2 * 3, 3, 8, 24, 24) and views.dtype == torch.uint8


def test_eval_views_are_deterministic(synth_root: Path) -> None:
    for mode in ("val", "test"):
        a = ClipDataset(items(synth_root, mode), CLIP, mode)
        b = ClipDataset(items(synth_root, mode), CLIP, mode, seed=9)
        assert torch.equal(a[2][0], b[2][0])


def test_train_windows_differ_between_epochs_and_repeat_per_epoch(synth_root: Path) -> None:
    ds = ClipDataset(items(synth_root), CLIP, "train")
    first = ds[3][0]
    ds.set_epoch(1)
    second = ds[3][0]
    assert not torch.equal(first, second)
    ds.set_epoch(0)
    assert torch.equal(ds[3][0], first)


def test_random_window_positions_vary() -> None:
    rng = np.random.default_rng(0)
    starts = {int(sampling.random_window(100, 8, 2, rng)[0]) for _ in range(20)}
    assert len(starts) > 5 and max(starts) <= 100 - 16


def test_short_video_is_looped(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    path = tmp_path / "short.mp4"
    write_video(path, darken(render_clip("rise", SynthConfig(frames=5), rng), rng, 0.07), 15)
    clip, _, _ = ClipDataset([(str(path), 0)], CLIP, "train")[0]
    assert clip.shape == (3, 8, 24, 24)
    assert sampling.window(0, 8, 2, 5).tolist() == [0, 2, 4, 1, 3, 0, 2, 4]


def test_evenly_spaced_windows_cover_the_video() -> None:
    windows = sampling.evenly_spaced_windows(100, 8, 2, 3)
    assert [int(w[0]) for w in windows] == [0, 42, 84] and int(windows[-1][-1]) == 98


def test_corrupt_video_is_skipped_and_counted(synth_root: Path, corrupt_video: Path) -> None:
    good = items(synth_root)[:4]
    ds = ClipDataset([(str(corrupt_video), 1), *good], CLIP, "train")
    clip, label, skipped = ds[0]
    assert skipped >= 1 and clip.shape == (3, 8, 24, 24)
    assert (clip.numpy().shape, label) in {((3, 8, 24, 24), lbl) for _, lbl in good}


def test_dataloader_workers_batch_uint8(synth_root: Path) -> None:
    ds = ClipDataset(items(synth_root), CLIP, "train")
    clips, labels, skipped = next(iter(DataLoader(ds, batch_size=4, num_workers=2)))
    assert clips.shape == (4, 3, 8, 24, 24) and clips.dtype == torch.uint8
    assert labels.tolist() == [0, 0, 0, 0] and skipped.sum() == 0


def test_epoch_given_with_the_index_overrides_the_dataset_epoch(synth_root: Path) -> None:
    ds = ClipDataset(items(synth_root), CLIP, "train")
    ds.set_epoch(2)
    at_two = ds[3][0]
    ds.set_epoch(0)
    assert torch.equal(ds[2, 3][0], at_two) and not torch.equal(ds[3][0], at_two)


def test_persistent_loader_workers_follow_the_sampler_epoch(synth_root: Path) -> None:
    """Each epoch, the same persistent workers give the clips the main process gives for that
    epoch, index by index, and new ones for every index (pytorch#97326)."""
    train = read_csv(synth_root, synth_root / "train.csv").items[::4]
    ds = ClipDataset(train, ClipConfig(num_frames=4, stride=2, crop_size=32), "train", seed=5)
    sampler = EpochSampler(DistributedSampler(ds, num_replicas=1, rank=0, seed=5))
    loader = DataLoader(ds, batch_size=None, sampler=sampler, num_workers=2,
                        persistent_workers=True)  # fmt: skip
    previous: dict[int, torch.Tensor] = {}
    for epoch in range(3):
        sampler.set_epoch(epoch)
        ds.set_epoch(epoch)  # the main process's copy only
        order = [index for _, index in sampler]
        clips = dict(zip(order, (clip for clip, _, _ in loader), strict=True))
        assert all(torch.equal(clip, ds[index][0]) for index, clip in clips.items())
        assert not any(torch.equal(clips[i], clip) for i, clip in previous.items())
        previous = clips
