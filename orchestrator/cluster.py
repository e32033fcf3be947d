"""Connecting to Ray: the cluster named by RAY_ADDRESS, else a local one."""

from __future__ import annotations

import logging
import os

import ray

# Ray's per-report banners drown the epoch lines users watch.
os.environ.setdefault("RAY_TRAIN_ENABLE_STATE_TRACKING", "0")


def connect() -> None:
    """Idempotent: reuses an initialised Ray (tests, Ray Jobs) or starts/joins one."""
    if ray.is_initialized():
        return
    ray.init(
        address=os.environ.get("RAY_ADDRESS"),
        logging_level=logging.WARNING,
    )
