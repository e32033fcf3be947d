"""A sweep's driver killed mid-sweep (SIGKILL, as a crash would), and what the resume tests
read back from MLflow. Shared by the single-node and the multi-node resume tests."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import mlflow


def children(parent: str, *roles: str) -> list:
    """The parent run's nested runs of the given roles (teacher, control, student)."""
    runs = mlflow.search_runs(
        experiment_names=["dlkdd"],
        filter_string=f"tags.`mlflow.parentRunId` = '{parent}'",
        output_format="list",
    )
    return [r for r in runs if r.data.tags.get("dlkdd.role") in roles]


def epochs_logged(run) -> int:
    return len(mlflow.MlflowClient().get_metric_history(run.info.run_id, "val_top1"))


def finished_students(parent: str) -> dict[str, int]:
    """The parent's FINISHED students -> how many epochs each has in MLflow (the control
    is no trial: it trains, or is reused, before them)."""
    return {
        r.info.run_id: epochs_logged(r)
        for r in children(parent, "student")
        if r.info.status == "FINISHED"
    }


def kill_after_a_finished_student(
    spec_file: Path, sweep: str, env: dict[str, str], exclude: str
) -> str:
    """Runs `dlkdd sweep SPEC_FILE` and kills it once one of its students is FINISHED in
    MLflow; returns that sweep's parent run id (a run other than `exclude`)."""
    dlkdd = Path(sys.executable).parent / "dlkdd"
    driver = subprocess.Popen([str(dlkdd), "sweep", str(spec_file)], cwd=spec_file.parent, env=env)
    try:
        deadline = time.monotonic() + 600
        while time.monotonic() < deadline:
            assert driver.poll() is None, "the sweep ended before it could be interrupted"
            parents = mlflow.search_runs(
                experiment_names=["dlkdd"],
                filter_string=f"tags.`dlkdd.sweep_parent` = '{sweep}'",
                output_format="list",
            )
            for p in parents:
                if p.info.run_id != exclude and finished_students(p.info.run_id):
                    return p.info.run_id
            time.sleep(2)
        raise AssertionError("no student finished within 10 minutes")
    finally:
        driver.kill()
        driver.wait()
