"""Connecting to Ray: the cluster named by RAY_ADDRESS, a local `ray start --head`, or a
Ray of our own."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import ray
import yaml

# Ray's per-report banners drown the epoch lines users watch.
os.environ.setdefault("RAY_TRAIN_ENABLE_STATE_TRACKING", "0")

# How a Ray of our own (one machine, stopped with this command) runs Train, for the quick
# start of small jobs (bench/job_overhead.py; a cluster keeps jobs.trainer's settings):
# - without the preemption watcher, an actor each Train run starts to poll Ray for nodes
#   being drained: there is none to drain, and its process start cost a tiny job ~0.5 s;
# - checking its workers every 0.1 s, not 0.5 s: a job's end waits three checks. Each check
#   is a task event per worker, and Ray keeps a bounded number of them for its State API
#   and dashboard; on a cluster of long jobs, history matters more than a second a job.
OWN_RAY_ENV = {
    "RAY_TRAIN_ENABLE_PREEMPTION_WATCHER": "0",
    "RAY_TRAIN_HEALTH_CHECK_INTERVAL_S": "0.1",
}


def use_own_ray_env() -> None:
    """OWN_RAY_ENV where this process's environment does not say otherwise; called before
    `ray.init` starts a Ray of our own, whose processes inherit it."""
    for key, value in OWN_RAY_ENV.items():
        os.environ.setdefault(key, value)


def connect(min_cpus: int = 1) -> str:
    """Idempotent: reuses an initialised Ray (tests, Ray Jobs), joins a running one, or
    starts one; returns a line that says which, for the command's first lines of output.

    A Ray of our own advertises at least `min_cpus` logical CPUs so that one trial (its
    function plus its Train workers) can start on a small machine; the cores are shared.
    It gets its dashboard: Train's placement-group cleaner needs the State API to free the
    workers of a run whose controller died with its Tune trial. It stops with this process,
    and runs without what only a cluster needs (OWN_RAY_ENV)."""
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
    use_own_ray_env()
    ray.init(num_cpus=num_cpus, include_dashboard=True, **quiet)
    return f"Ray: started a local Ray with {num_cpus} logical CPUs (stops when this command ends)"


# Where the cluster launcher (`ray up`) leaves the resolved cluster.yaml on the head; Ray
# Tune looks for the same file to tell a launched cluster (ray.tune.execution.cluster_info).
BOOTSTRAP_CONFIG = Path("~/ray_bootstrap_config.yaml")


def capacity(launcher_config: Path = BOOTSTRAP_CONFIG) -> dict[str, float]:
    """The most CPUs and GPUs the cluster can offer: what its nodes have now or, on a
    cluster started by `ray up`, what its node types' `max_workers` allow, so that queued
    work shows the autoscaler its whole demand. Asked anew by callers: nodes come and go."""
    now, most = ray.cluster_resources(), launcher_maximum(launcher_config.expanduser())
    return {k: max(now.get(k, 0.0), most.get(k, 0.0)) for k in ("CPU", "GPU")}


def launcher_maximum(config: Path) -> dict[str, float]:
    """Each of CPU and GPU at the cluster's largest: the head, then as many worker nodes
    as the node types' and the cluster's `max_workers` allow, richest first. Empty when
    there is no such file (a local Ray, a cluster started by hand)."""
    if not config.is_file():
        return {}
    launched = yaml.safe_load(config.read_text()) or {}
    types = launched.get("available_node_types", {})
    head = types.get(launched.get("head_node_type"), {}).get("resources", {})
    workers = [t for name, t in types.items() if name != launched.get("head_node_type")]
    most = {}
    for key in ("CPU", "GPU"):
        left, total = launched.get("max_workers", sum(t.get("max_workers", 0) for t in workers)), 0
        for t in sorted(workers, key=lambda t: -t.get("resources", {}).get(key, 0)):
            nodes = min(t.get("max_workers", 0), left)
            total, left = total + nodes * t.get("resources", {}).get(key, 0), left - nodes
        most[key] = float(head.get(key, 0) + total)
    return most
