"""`dlkdd train teacher|student SPEC`: one Ray Train + DeepSpeed job, tracked in MLflow."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.table import Table

from orchestrator import cluster, tracking
from orchestrator.cli_common import PREFLIGHT_HELP, SET_HELP, fail, show_checklist, spec_or_exit
from orchestrator.fingerprint import data_digest, job_fingerprint
from orchestrator.jobs import JobResult, run_job
from orchestrator.progress import console
from orchestrator.spec import Spec
from orchestrator.stores import ensure_store, store_requests
from orchestrator.teachers import teacher_name
from trainers.config import CURVE_WEIGHTS, JobConfig
from trainers.export import read_meta
from trainers.soft_targets import needs_store
from trainers.storage import is_file, is_uri, join, local_copy

train_app = typer.Typer(help="Train one teacher or one student.", no_args_is_help=True)


def for_preflight(spec: Spec) -> Spec:
    """The spec shrunk for a job's preflight, once its dataset has been checked."""
    from orchestrator.preflight import Checklist, check_dataset, shrunk_on_cluster

    small = shrunk_on_cluster(spec)
    checklist = Checklist()
    ok = check_dataset(spec, small, checklist)
    show_checklist(checklist, f"preflight of {spec.name}: dataset")
    if not ok:
        raise typer.Exit(1)
    return small


def run_tracked(
    spec: Spec, job: JobConfig, name: str, tags: dict[str, str], run_name: str
) -> JobResult:
    """Checks MLflow first (nothing is trained if it is unusable), then runs job `name`
    (its folder in storage) and logs it as MLflow run `run_name`."""
    try:
        tracking.connect(spec.tracking.uri, spec.tracking.experiment)
    except tracking.TrackingError as err:
        raise fail(str(err)) from None
    console.print(cluster.connect())
    if needs_store(job):
        with console.status("soft targets: the teacher's logits for every epoch's clips"):
            store = ensure_store(job, spec.resources, spec.storage.resolved())
        console.print(f"soft targets: {store}", soft_wrap=True)
        job = job.model_copy(update={"soft_target_store": store})
    try:
        with tracking.job_run(run_name, job, tags) as run:
            console.print(f"[bold]{name}[/bold]: MLflow run {run.info.run_id} ({run_name})")
            result = run_job(job, spec.resources, spec.storage.resolved(), name)
            tracking.log_result(result)
    except tracking.JobFailed as err:
        raise fail(str(err), code=1) from None
    show(result)
    return result


def show(result: JobResult) -> None:
    table = Table(title=result.name)
    table.add_column("metric")
    table.add_column("value", justify="right")
    for key, value in sorted(result.final.items()):
        if key not in ("job_done", "done"):  # "done": exports of older dlkdd versions
            table.add_row(key, f"{value:.4f}")
    console.print(table)
    if result.export_location:
        console.print(f"exported model: {result.export_location}", soft_wrap=True)


@train_app.command("teacher")
def teacher(
    spec_path: str = typer.Argument(..., metavar="SPEC", help="YAML file or packaged name."),
    enhancement: str | None = typer.Option(None, help="Overrides enhancement.name."),
    name: str | None = typer.Option(None, help="Job name (same name + storage = resume)."),
    sets: list[str] = typer.Option([], "--set", help=SET_HELP),
    preflight: bool = typer.Option(False, "--preflight", help=PREFLIGHT_HELP),
) -> None:
    """Train a teacher on enhanced video."""
    spec = spec_or_exit(spec_path, sets)
    spec = for_preflight(spec) if preflight else spec
    try:
        job = spec.job("teacher", enhancement)
    except ValueError as err:
        raise fail(str(err)) from None
    # the store `train student` reads, written while the workers are up
    job = job.model_copy(update={"soft_targets_for": store_requests(spec, [job.seed])[job.seed]})
    e = job.enhancement
    if e.name in CURVE_WEIGHTS and e.weights() is None:
        raise fail(
            f"{e.name} needs enhancement.{CURVE_WEIGHTS[e.name]} "
            f"(dlkdd enhance train-zero-dce --variant {e.name})"
        )
    fingerprint = job_fingerprint(job, spec.resources, data_digest(job.dataset))
    # the tags a sweep's teacher has: a later sweep with this spec reuses this teacher
    tags = {"dlkdd.enhancement": e.name, "dlkdd.fingerprint": fingerprint}
    run_name = name or tracking.run_name(job, e.name)
    run_tracked(spec, job, name or teacher_name(spec, e.name, fingerprint), tags, run_name)


@train_app.command("student")
def student(
    spec_path: str = typer.Argument(..., metavar="SPEC", help="YAML file or packaged name."),
    teacher_ref: str | None = typer.Option(
        None, "--teacher", help="Exported teacher directory or the teacher's MLflow run id."
    ),
    temperature: float | None = typer.Option(None, help="Overrides distill.temperature."),
    alpha: float | None = typer.Option(None, help="Overrides distill.alpha (0 = no teacher)."),
    name: str | None = typer.Option(None, help="Job name (same name + storage = resume)."),
    sets: list[str] = typer.Option([], "--set", help=SET_HELP),
    preflight: bool = typer.Option(False, "--preflight", help=PREFLIGHT_HELP),
) -> None:
    """Train a student on original video, distilling from a frozen teacher."""
    spec = spec_or_exit(spec_path, sets)
    spec = for_preflight(spec) if preflight else spec
    teacher_dir = resolve_teacher(spec, teacher_ref) if teacher_ref else None
    try:
        job = spec.job("student", None, teacher_dir, temperature, alpha)
    except ValueError as err:
        raise fail(str(err)) from None
    tags = {
        "dlkdd.temperature": str(job.distill.temperature),
        "dlkdd.alpha": str(job.distill.alpha),
    }
    if teacher_dir:
        meta = read_meta(local_copy(teacher_dir))
        tags["dlkdd.enhancement"] = meta["input_enhancement"]["name"]
        tags["dlkdd.teacher"] = str(teacher_ref)
    t, a = job.distill.temperature, job.distill.alpha
    run_name = name or tracking.run_name(job, tags.get("dlkdd.enhancement", "none"))
    run_tracked(spec, job, name or f"{spec.name}-student-T{t:g}-a{a:g}", tags, run_name)


def resolve_teacher(spec: Spec, ref: str) -> str:
    """An export directory (path or URI) as is; otherwise a teacher's MLflow run id: its
    export where the job wrote it, or its MLflow copy put in storage for every node."""
    if is_file(join(ref, "meta.json")):
        return ref if is_uri(ref) else str(Path(ref).resolve())
    if is_uri(ref) or Path(ref).exists():
        raise fail(f"{ref}: not an exported model (no meta.json)")
    try:
        tracking.connect(spec.tracking.uri, spec.tracking.experiment)
        return tracking.export_of(ref, join(spec.storage.resolved(), "teachers", ref))
    except Exception as err:
        raise fail(
            f"teacher {ref!r} is neither an export directory nor an MLflow run: {err}"
        ) from None
