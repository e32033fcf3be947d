"""The one timing loop the benchmarks share: warm up, then items per second over a number
of calls, with CUDA synchronised at both ends so that queued kernels are counted."""

from __future__ import annotations

import time
from collections.abc import Callable

import torch


def per_second(
    call: Callable[[int], object],
    calls: int,
    items_per_call: int,
    device: torch.device,
    warmup: int = 2,
) -> float:
    """Items/s over `calls` calls of call(i), after `warmup` calls (allocator, caches)."""
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    for i in range(warmup):
        call(i)
    sync()
    start = time.perf_counter()
    for i in range(calls):
        call(i)
    sync()
    return calls * items_per_call / (time.perf_counter() - start)
