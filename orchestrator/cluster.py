"""Connecting to Ray: the cluster named by RAY_ADDRESS, else a local one."""

from __future__ import annotations

import logging
import os

import ray

# Ray's per-report banners drown the epoch lines users watch.
os.environ.setdefault("RAY_TRAIN_ENABLE_STATE_TRACKING", "0")


def connect(min_cpus: int = 1) -> None:
    """Idempotent: reuses an initialised Ray (tests, Ray Jobs) or starts/joins one.

    A local Ray on a small machine advertises at least `min_cpus` logical CPUs so that one
    trial (its function plus its Train workers) can start; the cores are then shared."""
    if ray.is_initialized():
        return
    address = os.environ.get("RAY_ADDRESS")
    num_cpus = None if address else max(os.cpu_count() or 1, min_cpus)
    # A local Ray gets its dashboard: Train's placement-group cleaner needs the State API to
    # free the workers of a run whose controller died with its Tune trial.
    dashboard = None if address else True
    ray.init(
        address=address, num_cpus=num_cpus, include_dashboard=dashboard,
        logging_level=logging.WARNING,
    )  # fmt: skip
