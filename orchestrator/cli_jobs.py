"""`dlkdd submit | jobs | logs`: a sweep as a Ray Job on a cluster, and following it.

The job's driver runs on the head node (Tune, the one MLflow writer); this checkout is
shipped as its working directory, so the cluster runs exactly the code submitted."""

from __future__ import annotations

import asyncio
import os
import shlex
from datetime import datetime
from pathlib import Path

import typer
from rich.table import Table

import search_spaces
from orchestrator.cli_common import PREFLIGHT_HELP, SET_HELP, fail, spec_or_exit
from orchestrator.progress import console

# The head's dashboard, forwarded to this machine by `ray dashboard cluster.yaml`.
DEFAULT_ADDRESS = "http://127.0.0.1:8265"
SUBMITTED_SPEC = "dlkdd_submitted_spec.yaml"
ADDRESS_HELP = f"Ray job server [RAY_ADDRESS, else {DEFAULT_ADDRESS}]."
# Never shipped: environments, local results and data (Ray also honours .gitignore).
EXCLUDES = [".venv", ".git", ".bench", "mlflow.db", "mlruns", "dlkdd_runs", "dlkdd_reports",
            "demo_data", "*.png", "__pycache__"]  # fmt: skip


def _address(address: str | None) -> str:
    return address or os.environ.get("RAY_ADDRESS", DEFAULT_ADDRESS)


def _client(address: str | None):
    from ray.job_submission import JobSubmissionClient

    url = _address(address)
    try:
        return JobSubmissionClient(url)
    except Exception as err:  # connection refused, not a Ray dashboard ...
        reason = str(err).splitlines()[0]
        raise fail(f"no Ray job server at {url} ({reason}); is the cluster up and "
                   "`ray dashboard cluster.yaml` forwarding 8265?") from None  # fmt: skip


def entrypoint(
    spec_text: str,
    tracking_uri: str | None,
    storage: str | None,
    resume: bool,
    sets: list[str] | None = None,
    preflight: bool = False,
) -> str:
    """The driver's shell command on the head: the spec travels inside it (written into the
    job's working directory), so it may live anywhere on this machine; `--set` overrides and
    `--preflight` travel as the same options."""
    command = ["python", "-m", "orchestrator", "sweep", SUBMITTED_SPEC]
    if tracking_uri:
        command += ["--tracking-uri", tracking_uri]
    if storage:
        command += ["--storage", storage]
    if resume:
        command.append("--resume")
    for item in sets or []:
        command += ["--set", item]
    if preflight:
        command.append("--preflight")
    write = f"printf '%s' {shlex.quote(spec_text)} > {SUBMITTED_SPEC}"
    return f"{write} && {shlex.join(command)}"


def submit(
    spec_path: str = typer.Argument(..., metavar="SPEC", help="YAML file or packaged name."),
    address: str | None = typer.Option(None, help=ADDRESS_HELP),
    tracking_uri: str | None = typer.Option(
        None, "--tracking-uri", help="MLflow as the head sees it, e.g. http://127.0.0.1:5000."
    ),
    storage: str | None = typer.Option(None, help="Shared storage for checkpoints: NFS or s3://."),
    working_dir: Path = typer.Option(Path("."), help="Shipped with the job (this checkout)."),
    resume: bool = typer.Option(False, "--resume", help="Finish an interrupted sweep."),
    sets: list[str] = typer.Option([], "--set", help=SET_HELP),
    preflight: bool = typer.Option(False, "--preflight", help=PREFLIGHT_HELP),
) -> None:
    """Submit a sweep to a Ray cluster as a Ray Job; prints the id for `dlkdd logs`."""
    spec = spec_or_exit(spec_path, sets, data_on_cluster=True).placed(tracking_uri, storage)
    uri = spec.tracking.uri
    if uri.startswith("sqlite:///") and not uri.startswith("sqlite:////"):
        raise fail(f"tracking uri {uri} is relative to the job's temporary folder on the head; "
                   "give --tracking-uri (the cluster's MLflow server)")  # fmt: skip
    if storage is None:
        console.print(f"[yellow]storage: {spec.storage.path} (the spec's); every node must "
                      "see it — give --storage for NFS or s3://[/yellow]")  # fmt: skip
    spec_text = search_spaces.path(spec_path).read_text()
    command = entrypoint(spec_text, tracking_uri, storage, resume, sets, preflight)
    client = _client(address)
    job_id = client.submit_job(
        entrypoint=command,
        runtime_env={"working_dir": str(working_dir), "excludes": EXCLUDES},
        metadata={"dlkdd.sweep": spec.name},
    )
    console.print(f"submitted {job_id}: sweep {spec.name} ({command.split('&& ')[-1]})")
    console.print(f"follow with: dlkdd logs {job_id} --follow")


def jobs(
    address: str | None = typer.Option(None, help=ADDRESS_HELP),
) -> None:
    """The cluster's jobs, newest first."""
    table = Table(title=f"jobs on {_address(address)}")
    for col in ("job", "status", "sweep", "started"):
        table.add_column(col, no_wrap=True)
    for job in sorted(_client(address).list_jobs(), key=lambda j: -(j.start_time or 0)):
        started = (
            datetime.fromtimestamp(job.start_time / 1000).isoformat(" ", "seconds")
            if job.start_time
            else "-"
        )
        sweep = (job.metadata or {}).get("dlkdd.sweep", "-")
        table.add_row(job.submission_id or job.job_id or "-", str(job.status), sweep, started)
    console.print(table)


def logs(
    job_id: str = typer.Argument(..., metavar="JOB"),
    follow: bool = typer.Option(False, "--follow", "-f", help="Stream until the job ends."),
    address: str | None = typer.Option(None, help=ADDRESS_HELP),
) -> None:
    """A job's driver output (the sweep's progress and ablation table)."""
    client = _client(address)
    try:
        client.get_job_status(job_id)
    except Exception:
        raise fail(f"no job {job_id} on {_address(address)} (see `dlkdd jobs`)") from None
    if not follow:
        console.out(client.get_job_logs(job_id), end="")
        return

    async def stream() -> None:
        async for lines in client.tail_job_logs(job_id):
            console.out(lines, end="")

    asyncio.run(stream())
    status = client.get_job_status(job_id)
    console.print(f"job {job_id}: {status}")
    if str(status) != "SUCCEEDED":
        raise typer.Exit(1)
