"""One placement-group cleaner for all of a Ray's Train runs, in place of Train's one per run.

A placement group outlives a controller that dies without removing it (a killed Tune trial
takes its controller along) until the driver's job ends, holding its CPUs and GPUs from the
rest of a sweep. Train therefore starts a detached cleaner actor with each run: a fresh
process that imports Ray Train while the run's workers start, 1.7 s of a tiny job on 2 cores
(bench/job_overhead.py). This one actor lives as long as its Ray and watches every run, as
ray-project/ray#65447 proposes upstream. Hand-written: Train's cleaner serves one run.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import TYPE_CHECKING

import ray
from ray.train.v2._internal.execution.callback import ControllerCallback, WorkerGroupCallback
from ray.util.placement_group import PlacementGroup, placement_group_table, remove_placement_group
from ray.util.state import get_actor

if TYPE_CHECKING:
    from ray.train.v2._internal.execution.context import TrainRunContext
    from ray.train.v2._internal.execution.worker_group import WorkerGroup

logger = logging.getLogger(__name__)

CLEANER_NAME = "dlkdd-placement-group-cleaner"
CLEANER_NAMESPACE = "dlkdd"
CHECK_INTERVAL_S = 1.0
STATE_API_TIMEOUT_S = 10
HEAD_NODE = "node:__internal_head__"  # a resource only the head has: the cleaner lives there


class SharedPlacementGroupCleaner:
    """Removes the placement group of each watched controller once Ray reports it DEAD.
    Only DEAD counts: a State API query that fails or finds nothing leaves a run alone,
    since removing a live run's group would end it."""

    def __init__(self) -> None:
        self._groups: dict[str, PlacementGroup] = {}  # controller actor id -> its group
        threading.Thread(target=self._watch_forever, daemon=True).start()

    def watch(self, controller_id: str, group: PlacementGroup) -> None:
        self._groups[controller_id] = group  # a restarted worker group replaces the old one

    def forget(self, controller_id: str) -> None:
        self._groups.pop(controller_id, None)

    def watched(self) -> dict[str, PlacementGroup]:
        return dict(self._groups)

    def _watch_forever(self) -> None:
        while True:
            time.sleep(CHECK_INTERVAL_S)
            for controller_id in list(self._groups):
                try:
                    self._free_if_dead(controller_id)
                except Exception:  # a State API or GCS hiccup must not end the watch
                    logger.exception("Could not free Train controller %s's group", controller_id)

    def _free_if_dead(self, controller_id: str) -> None:
        """Takes the group registered last: one that a controller registered just before
        it died, arriving after this, is freed the next round."""
        if not _is_dead(controller_id) or (group := self._groups.pop(controller_id, None)) is None:
            return
        try:
            _remove(group, controller_id)
        except Exception:
            self._groups.setdefault(controller_id, group)  # tried again next round
            raise


def _is_dead(actor_id: str) -> bool:
    state = get_actor(actor_id, timeout=STATE_API_TIMEOUT_S)
    return state is not None and state.state == "DEAD"


def _remove(group: PlacementGroup, controller_id: str) -> None:
    if placement_group_table(group).get("state", "REMOVED") == "REMOVED":
        return  # the controller removed it before it died
    logger.warning("Train controller %s died: removing its placement group %s",
                   controller_id, group.id.hex())  # fmt: skip
    remove_placement_group(group)


def cleaner() -> ray.actor.ActorHandle:
    """The Ray's cleaner, started by the first run that asks."""
    return (
        ray.remote(num_cpus=0)(SharedPlacementGroupCleaner)
        .options(
            name=CLEANER_NAME,
            namespace=CLEANER_NAMESPACE,
            lifetime="detached",
            get_if_exists=True,
            resources={HEAD_NODE: 0.001},
            scheduling_strategy="DEFAULT",  # not inside the placement group of the caller
        )
        .remote()
    )


class SharedCleanerCallback(ControllerCallback, WorkerGroupCallback):
    """In a Train controller: has the shared cleaner watch this run's placement group."""

    def after_controller_start(self, train_run_context: TrainRunContext) -> None:
        self._controller_id = ray.get_runtime_context().get_actor_id()
        self._cleaner = cleaner()

    def after_worker_group_start(self, worker_group: WorkerGroup) -> None:
        group = worker_group.get_worker_group_state().placement_group_handle.placement_group
        ray.get(self._cleaner.watch.remote(self._controller_id, group))

    async def before_controller_shutdown(self) -> None:
        self._cleaner.forget.remote(self._controller_id)

    def before_controller_abort(self) -> None:
        self._cleaner.forget.remote(self._controller_id)
