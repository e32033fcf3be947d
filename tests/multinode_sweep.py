"""A smoke sweep on a simulated 3-node cluster (ray.cluster_utils.Cluster) with one worker
node removed mid-trial. Run as its own process by tests/test_scale_out.py, since a process
joins one Ray cluster and the test session already has its own.

    python -m tests.multinode_sweep SPEC_JSON RESULT_JSON
"""

from __future__ import annotations

import json
import socket
import sys
import threading
import time
from pathlib import Path

import ray
from ray.cluster_utils import Cluster
from ray.util.state import list_actors

from orchestrator import jobs
from orchestrator.spec import parse_spec
from orchestrator.sweep import run_sweep


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def remove_when_training(nodes: list, cluster: Cluster, storage: Path, removed: dict) -> None:
    """Once two student runs have checkpointed an epoch, removes the first worker node that
    hosts live Train workers: a trial is then lost mid-training, after a checkpoint."""
    deadline = time.monotonic() + 900
    while time.monotonic() < deadline:
        if len({p.parent.name for p in storage.glob("*-student-*/checkpoint_*")}) >= 2:
            alive = list_actors(
                filters=[("class_name", "=", "RayTrainWorker"), ("state", "=", "ALIVE")]
            )
            hosts = {a.node_id for a in alive}
            node = next((n for n in nodes if n.node_id in hosts), None)
            if node is not None:
                cluster.remove_node(node, allow_graceful=False)
                removed["node"] = node.node_id
                return
        time.sleep(0.5)


def main(spec_json: str, result_json: str) -> None:
    spec = parse_spec(json.loads(Path(spec_json).read_text()))
    cluster = Cluster(
        initialize_head=True,
        # The driver's node; the dashboard serves the State API (placement-group cleanup).
        head_node_args={"num_cpus": 1, "include_dashboard": True, "dashboard_port": free_port()},
    )
    nodes = [cluster.add_node(num_cpus=3, resources={f"worker_{i}": 1}) for i in (1, 2)]
    ray.init(address=cluster.address)
    ids = {n.node_id: f"worker_{i}" for i, n in enumerate(nodes, 1)}
    removed: dict = {}
    watcher = threading.Thread(
        target=remove_when_training, args=(nodes, cluster, Path(spec.storage.path), removed)
    )
    watcher.start()
    parent = run_sweep(spec)
    watcher.join()
    workers = list_actors(filters=[("class_name", "=", "RayTrainWorker")], limit=1000)
    runs = sorted(Path(spec.storage.path).glob(f"{spec.name}-student-*"))
    finals = {r.name: jobs.finished(spec.storage.path, r.name).final for r in runs}
    Path(result_json).write_text(json.dumps({
        "parent": parent,
        "removed": bool(removed),
        "worker_nodes": sorted({ids[a.node_id] for a in workers if a.node_id in ids}),
        "resumed_from_epoch": {name: f.get("resumed_from_epoch", 0) for name, f in finals.items()},
    }))  # fmt: skip
    ray.shutdown()
    cluster.shutdown()


if __name__ == "__main__":
    main(*sys.argv[1:3])
