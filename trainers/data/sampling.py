"""Which frames a clip is made of: a random window for training, evenly spaced ones for test."""

from __future__ import annotations

import numpy as np


def window(start: int, num_frames: int, stride: int, video_len: int) -> np.ndarray:
    """Frame indices of one window; a video shorter than the window is looped."""
    return (start + np.arange(num_frames) * stride) % max(video_len, 1)


def random_window(
    video_len: int, num_frames: int, stride: int, rng: np.random.Generator
) -> np.ndarray:
    span = num_frames * stride
    start = int(rng.integers(0, video_len - span + 1)) if video_len > span else 0
    return window(start, num_frames, stride, video_len)


def centre_window(video_len: int, num_frames: int, stride: int) -> np.ndarray:
    return evenly_spaced_windows(video_len, num_frames, stride, 1)[0]


def evenly_spaced_windows(
    video_len: int, num_frames: int, stride: int, count: int
) -> list[np.ndarray]:
    """`count` windows whose starts are spread evenly over the video (multi-view test)."""
    span = num_frames * stride
    slack = max(video_len - span, 0)
    starts = [round(i * slack / (count - 1)) for i in range(count)] if count > 1 else [slack // 2]
    return [window(s, num_frames, stride, video_len) for s in starts]
