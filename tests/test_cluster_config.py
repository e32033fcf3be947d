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
