"""A smoke sweep on a simulated cluster (ray.cluster_utils.Cluster) that starts with one
worker node and gets a second once its first trial runs (as an autoscaler would add one),
then loses a worker node mid-trial; then, the node replaced, the same sweep again with its
driver killed and resumed (`dlkdd sweep`, `dlkdd sweep --resume` in their own processes).
Run as its own process by tests/test_scale_out.py, since a process joins one Ray cluster
and the test session already has its own.

    python -m tests.multinode_sweep SPEC_JSON RESULT_JSON
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import ray
from ray.cluster_utils import Cluster
from ray.train.v2._internal.state.schema import RunStatus
from ray.train.v2._internal.state.state_actor import get_state_actor
from ray.util.state import list_actors

from orchestrator import jobs
from orchestrator.spec import Spec, parse_spec
from orchestrator.sweep import run_sweep
from tests.interrupt import finished_students, kill_after_a_finished_student


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def live_worker_nodes(run_names: set[str]) -> dict[str, set[str]]:
    """Those of these Train runs that are running -> the nodes of their workers (Ray Train's
    state actor, kept when RAY_TRAIN_ENABLE_STATE_TRACKING is on)."""
    actor = get_state_actor()
    if actor is None:
        return {}
    runs = ray.get(actor.get_train_runs.remote())
    attempts = ray.get(actor.get_train_run_attempts.remote())
    return {
        run.name: {w.node_id for w in list(attempts[run_id].values())[-1].workers}
        for run_id, run in runs.items()
        if run.name in run_names and run.status == RunStatus.RUNNING and attempts.get(run_id)
    }


def checkpointed_runs(storage: Path) -> set[str]:
    """Student runs with a checkpoint Train has registered (in its manager's snapshot); a
    checkpoint_* folder alone may still be uploading, and a run lost then restarts at 0."""
    runs = set()
    for snapshot in storage.glob("*-student-*/checkpoint_manager_snapshot.json"):
        try:
            if json.loads(snapshot.read_text()).get("latest_checkpoint_result"):
                runs.add(snapshot.parent.name)
        except json.JSONDecodeError:  # being written
            pass
    return runs


def remove_when_training(nodes: list, cluster: Cluster, storage: Path, removed: dict) -> None:
    """Once two student runs have checkpointed an epoch, removes a worker node that hosts
    the live workers of one of them: that trial is lost mid-training, after a checkpoint."""
    deadline = time.monotonic() + 900
    while time.monotonic() < deadline:
        checkpointed = checkpointed_runs(storage)
        if len(checkpointed) >= 2:
            for name, hosts in live_worker_nodes(checkpointed).items():
                node = next((n for n in nodes if n.node_id in hosts), None)
                if node is not None:
                    cluster.remove_node(node, allow_graceful=False)
                    removed.update(node=node.node_id, run=name)
                    return
        time.sleep(0.5)


def join_when_training(cluster: Cluster, nodes: list, storage: Path, joined: dict) -> None:
    """Adds the second worker node once the first student trial has started: the sweep
    must start trials on it as it arrives."""
    deadline = time.monotonic() + 900
    while not list(storage.glob("*-student-*")) and time.monotonic() < deadline:
        time.sleep(0.5)
    nodes.append(cluster.add_node(num_cpus=3, resources={"worker_2": 1}))
    joined["at_ms"] = time.time() * 1000


def main(spec_json: str, result_json: str) -> None:
    os.environ["RAY_TRAIN_ENABLE_STATE_TRACKING"] = "1"  # inherited by the nodes' workers
    spec = parse_spec(json.loads(Path(spec_json).read_text()))
    cluster = Cluster(
        initialize_head=True,
        # The driver's node; the dashboard serves the State API (placement-group cleanup).
        head_node_args={"num_cpus": 1, "include_dashboard": True, "dashboard_port": free_port()},
        # no exit hooks: they set a SIGTERM handler, which fails when a node joins from the
        # watcher thread; the `finally` below shuts the nodes down
        shutdown_at_exit=False,
    )
    try:
        nodes = [cluster.add_node(num_cpus=3, resources={"worker_1": 1})]
        ray.init(address=cluster.address)
        storage = Path(spec.storage.path)
        result = lose_a_node(spec, cluster, nodes, storage)
        # The lost node is replaced, as the autoscaler would; then the same sweep again, its
        # driver killed once a student has finished, and finished with `dlkdd sweep --resume`.
        cluster.add_node(num_cpus=3, resources={"worker_1": 1})
        result.update(kill_and_resume(Path(spec_json), spec.name, cluster.address,
                                      result["parent"]))  # fmt: skip
        Path(result_json).write_text(json.dumps(result))
    finally:
        ray.shutdown()
        cluster.shutdown()


def lose_a_node(spec: Spec, cluster: Cluster, nodes: list, storage: Path) -> dict:
    """The sweep, with a worker node joining and one removed mid-trial; where trials ran
    and resumed."""
    removed, joined = {}, {}
    watchers = [
        threading.Thread(target=join_when_training, args=(cluster, nodes, storage, joined)),
        threading.Thread(target=remove_when_training, args=(nodes, cluster, storage, removed)),
    ]
    for watcher in watchers:
        watcher.start()
    parent = run_sweep(spec)
    for watcher in watchers:
        watcher.join()
    ids = {n.node_id: f"worker_{i}" for i, n in enumerate(nodes, 1)}
    workers = list_actors(filters=[("class_name", "=", "RayTrainWorker")], limit=1000)
    runs = sorted(storage.glob(f"{spec.name}-student-*"))
    finals = {r.name: jobs.finished(str(storage), r.name).final for r in runs}
    return {
        "parent": parent,
        "removed_run": removed.get("run"),
        "joined_at_ms": joined.get("at_ms"),
        "worker_nodes": sorted({ids[a.node_id] for a in workers if a.node_id in ids}),
        "resumed_from_epoch": {name: f.get("resumed_from_epoch", 0) for name, f in finals.items()},
    }


def kill_and_resume(spec_file: Path, sweep: str, address: str, first: str) -> dict:
    """A second run of the sweep on this cluster, killed and resumed from other processes."""
    env = {**os.environ, "RAY_ADDRESS": address}
    killed = kill_after_a_finished_student(spec_file, sweep, env, exclude=first)
    finished = finished_students(killed)
    dlkdd = Path(sys.executable).parent / "dlkdd"
    resume = subprocess.run([str(dlkdd), "sweep", str(spec_file), "--resume"], env=env,
                            cwd=spec_file.parent, capture_output=True, text=True)  # fmt: skip
    return {
        "killed_parent": killed,
        "finished_before_kill": finished,
        "resume_exit": resume.returncode,
        "resume_output": (resume.stdout + resume.stderr)[-3000:],
    }


if __name__ == "__main__":
    main(*sys.argv[1:3])
