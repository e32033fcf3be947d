"""cluster.yaml: Ray's own validation, a CPU head with MLflow, GPU workers, pinned installs."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import ray
import yaml
from ray.autoscaler._private.util import prepare_config, validate_config

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def config() -> dict:
    raw = yaml.safe_load((ROOT / "cluster.yaml").read_text())
    prepared = prepare_config(copy.deepcopy(raw))
    validate_config(prepared)  # raises on any schema error
    return prepared


def test_head_is_a_cpu_node_serving_mlflow_privately(config) -> None:
    head = config["available_node_types"][config["head_node_type"]]
    assert head["resources"] == {"CPU": 0} and head["max_workers"] == 0
    start = " ".join(config["head_start_ray_commands"])
    assert "mlflow server --host 127.0.0.1" in start and "s3://" in start
    assert "--dashboard-host=127.0.0.1" in start


def test_gpu_worker_types_autoscale_from_zero_with_integer_resources(config) -> None:
    workers = {n: t for n, t in config["available_node_types"].items()
               if n != config["head_node_type"]}  # fmt: skip
    gpus = {n: t["resources"]["GPU"] for n, t in workers.items()}
    assert sorted(gpus.values()) == [4, 8]
    for t in workers.values():
        assert t["min_workers"] == 0 < t["max_workers"]
        assert all(isinstance(v, int) for v in t["resources"].values())
        assert t["node_config"]["InstanceMarketOptions"] == {"MarketType": "spot"}


def test_setup_installs_the_pinned_versions(config) -> None:
    assert config["file_mounts"] == {"~/dlkdd": "."}
    assert any("make install" in c for c in config["setup_commands"])
    recipe = (ROOT / "Makefile").read_text()
    assert "PIP_CONSTRAINT=$(CURDIR)/constraints.txt" in recipe
    pins = dict(
        line.split("==") for line in (ROOT / "constraints.txt").read_text().splitlines()
        if "==" in line
    )  # fmt: skip
    assert pins["ray"] == ray.__version__ and "boto3" in pins
    assert all(c.startswith("~/dlkdd/.venv/bin/") or "ulimit" in c
               for c in config["worker_start_ray_commands"])  # fmt: skip


def test_the_launched_clusters_largest_size_sets_how_many_trials_queue(config, tmp_path) -> None:
    """On the head, `ray up` leaves the resolved cluster.yaml; a sweep of arid.yaml queues
    as many trials as the cluster reaches at max_workers (4 x 4 + 2 x 8 GPUs = 8 trials
    of 4 GPUs), not the one that a cold cluster of a CPU head holds."""
    from orchestrator.cluster import launcher_maximum
    from orchestrator.jobs import fitting
    from orchestrator.spec import Resources

    launched = tmp_path / "ray_bootstrap_config.yaml"
    launched.write_text(yaml.safe_dump(config))
    most = launcher_maximum(launched)
    assert most == {"CPU": 4 * 48 + 2 * 96, "GPU": 4 * 4 + 2 * 8}
    arid = yaml.safe_load((ROOT / "search_spaces/arid.yaml").read_text())["resources"]
    assert fitting(Resources(**arid), most, trial_cpus=1) == 8
    assert fitting(Resources(**arid), {"CPU": 0, "GPU": 0}, trial_cpus=1) == 1  # cold, by hand

    fewer = {**config, "max_workers": 3}  # the cluster's cap: richest nodes first
    launched.write_text(yaml.safe_dump(fewer))
    assert launcher_maximum(launched) == {"CPU": 2 * 96 + 48, "GPU": 2 * 8 + 4}
    assert launcher_maximum(tmp_path / "absent.yaml") == {}


def test_without_a_launcher_the_capacity_is_what_the_nodes_have(ray_session, tmp_path) -> None:
    from orchestrator.cluster import capacity

    assert capacity(tmp_path / "absent.yaml") == {"CPU": 4.0, "GPU": 0.0}
