"""Connecting to Ray: the cluster named by RAY_ADDRESS, a local `ray start --head`, or a
Ray of our own."""

from __future__ import annotations

import logging
import os

import ray

# Ray's per-report banners drown the epoch lines users watch.
os.environ.setdefault("RAY_TRAIN_ENABLE_STATE_TRACKING", "0")


def connect(min_cpus: int = 1) -> str:
    """Idempotent: reuses an initialised Ray (tests, Ray Jobs), joins a running one, or
    starts one; returns a line that says which, for the command's first lines of output.

    A Ray of our own advertises at least `min_cpus` logical CPUs so that one trial (its
    function plus its Train workers) can start on a small machine; the cores are shared.
    It gets its dashboard: Train's placement-group cleaner needs the State API to free the
    workers of a run whose controller died with its Tune trial. It stops with this process."""
    if ray.is_initialized():
        return f"Ray: using the connected cluster ({ray.get_runtime_context().gcs_address})"
    quiet = {"logging_level": logging.WARNING}
    if address := os.environ.get("RAY_ADDRESS"):
        ray.init(address=address, **quiet)
        return f"Ray: joined the cluster at {address} (RAY_ADDRESS)"
    try:  # a local `ray start --head`: ray.init() would join it and refuse num_cpus
        ray.init(address="auto", **quiet)
        gcs = ray.get_runtime_context().gcs_address
        return f"Ray: joined the local cluster at {gcs} (started with `ray start`)"
    except ConnectionError:
        pass
    num_cpus = max(os.cpu_count() or 1, min_cpus)
    ray.init(num_cpus=num_cpus, include_dashboard=True, **quiet)
    return f"Ray: started a local Ray with {num_cpus} logical CPUs (stops when this command ends)"
