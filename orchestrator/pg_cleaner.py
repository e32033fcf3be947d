"""One placement-group cleaner for all of a Ray's Train runs, in place of Train's one per run.

A placement group outlives a controller that dies without removing it (a killed Tune trial
takes its controller along) until the driver's job ends, holding its CPUs and GPUs from the
rest of a sweep. Train therefore starts a detached cleaner actor with each run: a fresh
process that imports Ray Train while the run's workers start, 1.7 s of a tiny job on 2 cores
(bench/job_overhead.py). This one actor lives as long as its Ray and watches every run, as
ray-project/ray#65447 proposes upstream. Hand-written: Train's cleaner serves one run.
"""

from __future__ import annotations

import hashlib
import logging
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING

import ray
from ray.train.v2._internal.execution.callback import ControllerCallback, WorkerGroupCallback
from ray.util.placement_group import PlacementGroup, placement_group_table, remove_placement_group
from ray.util.state import get_actor

if TYPE_CHECKING:
    from ray.train.v2._internal.execution.context import TrainRunContext
    from ray.train.v2._internal.execution.worker_group import WorkerGroup

logger = logging.getLogger(__name__)

# A detached actor outlives the code it was started from: a cluster that runs a newer dlkdd
# starts the newer cleaner beside any older one (idle once its runs are gone).
CLEANER_NAME = (
    "dlkdd-placement-group-cleaner-" + hashlib.sha1(Path(__file__).read_bytes()).hexdigest()[:10]
)
CLEANER_NAMESPACE = "dlkdd"
CHECK_INTERVAL_S = 1.0
STATE_API_TIMEOUT_S = 10
WATCH_TIMEOUT_S = 60  # a cleaner that cannot answer in this long leaves the run unguarded
HEAD_NODE = "node:__internal_head__"  # a resource only the head has: the cleaner lives there


class SharedPlacementGroupCleaner:
    """Removes the placement group of each watched controller once Ray reports it DEAD, and
    stops watching a group its controller removed. Only DEAD counts: a State API query that
    fails or finds nothing leaves a run alone, since removing a live run's group ends it."""

    def __init__(self) -> None:
        self._groups: dict[str, PlacementGroup] = {}  # controller actor id -> its group
        self._lock = threading.Lock()  # watch() runs beside the watching thread
        threading.Thread(target=self._watch_forever, daemon=True).start()

    def watch(self, controller_id: str, group: PlacementGroup) -> None:
        with self._lock:  # a restarted worker group replaces the old one
            self._groups[controller_id] = group

    def watched(self) -> dict[str, PlacementGroup]:
        with self._lock:
            return dict(self._groups)

    def _watch_forever(self) -> None:
        while True:
            time.sleep(CHECK_INTERVAL_S)
            for controller_id, group in self.watched().items():
                try:
                    self._check(controller_id, group)
                except Exception:  # a State API or GCS hiccup must not end the watch
                    logger.exception("Could not check Train controller %s", controller_id)

    def _check(self, controller_id: str, group: PlacementGroup) -> None:
        """Frees the group of a dead controller; either way, a removed group is done with.
        A group registered while this ran is a new one, and is kept for the next round."""
        if not _removed(group):
            if not _is_dead(controller_id):
                return
            logger.warning("Train controller %s died: removing its placement group %s",
                           controller_id, group.id.hex())  # fmt: skip
            remove_placement_group(group)
        with self._lock:
            if self._groups.get(controller_id) == group:
                del self._groups[controller_id]


def _removed(group: PlacementGroup) -> bool:
    return placement_group_table(group).get("state", "REMOVED") == "REMOVED"


def _is_dead(actor_id: str) -> bool:
    state = get_actor(actor_id, timeout=STATE_API_TIMEOUT_S)
    return state is not None and state.state == "DEAD"


def cleaner() -> ray.actor.ActorHandle:
    """The Ray's cleaner, started by the first run that asks; restarted if its process dies
    (the runs it watched then are unguarded; later ones are watched again)."""
    return (
        ray.remote(num_cpus=0, max_restarts=-1)(SharedPlacementGroupCleaner)
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
    """In a Train controller: has the shared cleaner watch this run's placement group. As
    with Train's own cleaner, a cleaner that fails leaves a warning, not a failed run."""

    def after_controller_start(self, train_run_context: TrainRunContext) -> None:
        self._controller_id = ray.get_runtime_context().get_actor_id()
        self._cleaner = cleaner()  # a Ray's first run starts it here, while its workers start

    def after_worker_group_start(self, worker_group: WorkerGroup) -> None:
        group = worker_group.get_worker_group_state().placement_group_handle.placement_group
        try:
            ray.get(self._cleaner.watch.remote(self._controller_id, group), timeout=WATCH_TIMEOUT_S)
        except Exception as err:
            logger.warning("The placement-group cleaner did not take group %s (%s): it is "
                           "not freed if this controller dies", group.id.hex(), err)  # fmt: skip
