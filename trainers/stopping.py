"""Cooperative early stopping: the scheduler raises a flag, the worker loop ends cleanly.

Killing a Train V2 trial leaves its placement group reserved (ray-project/ray#54305), so
instead of being killed a worker checks this flag after each epoch and returns normally.
"""

from __future__ import annotations

import ray

ACTOR_NAME = "dlkdd_stop_flags"


@ray.remote(num_cpus=0)
class StopFlags:
    def __init__(self) -> None:
        self.keys: set[str] = set()

    def stop(self, key: str) -> None:
        self.keys.add(key)

    def should_stop(self, key: str) -> bool:
        return key in self.keys


def flags() -> ray.actor.ActorHandle:
    """The cluster's one flag board. The sweep's driver creates it before any trial (an
    actor first made inside a Train worker dies with that worker's trial)."""
    return StopFlags.options(name=ACTOR_NAME, get_if_exists=True, lifetime="detached").remote()


def requested(key: str) -> bool:
    return ray.get(flags().should_stop.remote(key))
