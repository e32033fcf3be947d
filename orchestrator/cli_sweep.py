"""`dlkdd sweep | compare | promote | predict | demo`: the study, its results, its model."""

from __future__ import annotations

import csv
from pathlib import Path

import typer
from pydantic import ValidationError
from rich.table import Table

import search_spaces
from orchestrator import compare as ablation
from orchestrator import intervals, plots, registry, tracking
from orchestrator.cli_common import (
    PREFLIGHT_HELP,
    SET_HELP,
    fail,
    parse_sets,
    show_checklist,
    spec_or_exit,
)
from orchestrator.progress import console
from orchestrator.spec import Tracking

DEFAULT_URI = "sqlite:///mlflow.db"
VERBOSE_HELP = "Show Ray's, Tune's and DeepSpeed's output here, not only in the log file."


def sweep(
    spec_path: str = typer.Argument(..., metavar="SPEC", help="YAML file or packaged name."),
    resume: bool = typer.Option(False, "--resume", help="Finish an interrupted sweep."),
    tracking_uri: str | None = typer.Option(None, "--tracking-uri", help="Overrides the spec's."),
    storage: str | None = typer.Option(None, help="Overrides storage.path (local, NFS, s3://)."),
    sets: list[str] = typer.Option([], "--set", help=SET_HELP),
    preflight: bool = typer.Option(False, "--preflight", help=PREFLIGHT_HELP),
    verbose: bool = typer.Option(False, "--verbose", help=VERBOSE_HELP),
) -> None:
    """Run a DL-KDD sweep: teachers, students over T x alpha x enhancement, ablation table."""
    from orchestrator.quiet import log_file, quiet

    spec = spec_or_exit(spec_path, sets).placed(tracking_uri, storage)
    log = log_file(spec.storage.resolved(), f"sweep-{spec.name}")
    if preflight:
        with quiet(log, verbose):
            return rehearse(spec)
    _connect(spec.tracking.uri, spec.tracking.experiment)  # before any log file is made
    with quiet(log, verbose):
        sweep_and_compare(spec, resume)


def sweep_and_compare(spec, resume: bool) -> None:
    """The sweep, then its ablation tables; run inside `quiet`, so that Ray's last worker
    lines, forwarded a few seconds after the trials end, reach the log and not the screen."""
    from orchestrator.sweep import run_sweep

    try:
        parent = run_sweep(spec, resume=resume)
    except tracking.TrackingError as err:
        raise fail(str(err)) from None
    console.print(f"sweep finished: MLflow parent run {parent}")
    compare(spec.name, tracking_uri=spec.tracking.uri, experiment=spec.tracking.experiment,
            out=Path("dlkdd_reports") / spec.name, sets=[])  # fmt: skip


def rehearse(spec) -> None:
    """The preflight of a sweep: its checklist, exit 1 if any line failed."""
    import time

    from orchestrator.preflight import rehearse_sweep

    started = time.monotonic()
    checklist = rehearse_sweep(spec)
    show_checklist(checklist, f"preflight of {spec.name} ({time.monotonic() - started:.0f} s)")
    if not checklist.ok:
        raise typer.Exit(1)
    console.print("[green]preflight passed[/green]: the study runs on this data and setup")


def study(sweep_ref: str, uri: str | None, experiment: str | None, sets: list[str]):
    """(sweep name, tracking URI, experiment) for compare/promote: from the spec when SWEEP
    names one (its dataset need not be on this machine), options and --set win."""
    import yaml

    from trainers.schedule import deep_merge

    try:
        path = search_spaces.path(sweep_ref)
    except FileNotFoundError:
        name, spec_tracking = sweep_ref, Tracking()
    else:
        data = deep_merge(yaml.safe_load(path.read_text()) or {}, parse_sets(sets))
        try:
            spec_tracking = Tracking.model_validate(data.get("tracking") or {})
        except ValidationError as err:
            raise fail(f"{path}: tracking: {err.errors()[0]['msg']}") from None
        name = data.get("name", sweep_ref)
    return name, uri or spec_tracking.uri, experiment or spec_tracking.experiment


def compare(
    sweep_ref: str = typer.Argument(
        ..., metavar="SWEEP", help="Spec (file or packaged name), sweep name or parent run id."
    ),
    tracking_uri: str | None = typer.Option(None, "--tracking-uri", help="Default: the spec's."),
    experiment: str | None = typer.Option(None, help="Default: the spec's, else dlkdd."),
    out: Path = typer.Option(Path("dlkdd_reports"), help="Folder for the CSV and PNGs."),
    sets: list[str] = typer.Option([], "--set", help=SET_HELP),
) -> None:
    """The ablation table from MLflow: control, teachers, every student, gain over control."""
    sweep_ref, tracking_uri, experiment = study(sweep_ref, tracking_uri, experiment, sets)
    exp_id = _connect(tracking_uri, experiment)
    try:
        rows = ablation.ablation_rows(exp_id, sweep_ref)
    except ValueError as err:
        raise fail(str(err)) from None
    configs = intervals.config_rows(rows)
    show_table(rows, ablation.COLUMNS[:-1], f"ablation: {sweep_ref}")
    show_configs(configs)
    files = [
        ablation.write_csv(rows, out / "ablation.csv"),
        ablation.write_csv(configs, out / "ablation_configs.csv", intervals.CONFIG_COLUMNS),
        plots.gain_per_enhancement(rows, out / "gain_per_enhancement.png"),
        plots.gain_intervals(configs, out / "gain_intervals.png"),
        plots.temperature_alpha_map(rows, out / "temperature_alpha.png"),
    ]
    parent = ablation.parent_run(exp_id, sweep_ref).info.run_id
    for f in files:
        tracking.MlflowClient(tracking_uri).log_artifact(parent, str(f), "ablation")
    console.print(f"wrote {', '.join(str(f) for f in files)} (also on MLflow run {parent})")


def show_table(rows: list[dict], columns: tuple[str, ...], title: str) -> None:
    table = Table(title=title)
    for col in columns:
        table.add_column(col, justify="left" if col in ("kind", "enhancement") else "right")
    for r in rows:
        table.add_row(*[f"{r[c]:.4g}" if isinstance(r[c], float) else str(r[c])
                        for c in columns])  # fmt: skip
    console.print(table)


def show_configs(configs: list[dict]) -> None:
    """The per-configuration table, compact: mean and 95% interval in one cell."""
    table = Table(title="per configuration over seeds: mean [95% CI]")
    for col in ("kind", "enh", "T", "alpha", "seeds", "epochs", "val top-1", "test top-1",
                "test gain (paired)", "verdict"):  # fmt: skip
        table.add_column(col, justify="left" if col in ("kind", "enh", "verdict") else "right")
    for c in configs:
        gain = f"{c['gain_test_mean']:+.3f} {c['gain_test_ci']}" if c["gain_pairs"] else ""
        table.add_row(c["kind"], c["enhancement"], f"{c['temperature']:.3g}",
                      f"{c['alpha']:.2g}", c["seeds"], f"{c['epochs']:.3g}",
                      f"{c['val_mean']:.3f} {c['val_ci']}", f"{c['test_mean']:.3f} {c['test_ci']}",
                      gain, c["gain_verdict"])  # fmt: skip
    console.print(table)


def promote(
    sweep_ref: str = typer.Argument(
        ..., metavar="SWEEP", help="Spec (file or packaged name), sweep name or parent run id."
    ),
    metric: str = typer.Option(
        "best_val_top1", help="Metric to rank students by (default: best-epoch validation)."
    ),
    name: str = typer.Option("dlkdd-student", help="Registered model name."),
    force: bool = typer.Option(False, "--force", help="Move the alias even if not better."),
    run: str | None = typer.Option(
        None, "--run", help="A student run (of the sweep, or CLI-trained) instead of the best."
    ),
    tracking_uri: str | None = typer.Option(None, "--tracking-uri", help="Default: the spec's."),
    experiment: str | None = typer.Option(None, help="Default: the spec's, else dlkdd."),
    sets: list[str] = typer.Option([], "--set", help=SET_HELP),
) -> None:
    """Register the sweep's best student; move alias `champion` only if it is better."""
    sweep_ref, tracking_uri, experiment = study(sweep_ref, tracking_uri, experiment, sets)
    exp_id = _connect(tracking_uri, experiment)
    try:
        p = registry.promote(exp_id, sweep_ref, metric, name, force, run)
    except ValueError as err:
        raise fail(str(err)) from None
    console.print(f"student: run {p.run_id}, {metric} {p.score:.4f} (mean of {p.seeds} "
                  f"seed(s) of its configuration) -> {name} v{p.version}")  # fmt: skip
    if p.previous_version:
        console.print(f"current champion: v{p.previous_version}, {metric}={p.previous_score:.4f}")
    if p.promoted:
        console.print(f"[green]{name}@{registry.ALIAS} -> v{p.version}[/green]")
    else:
        console.print(f"[yellow]not promoted: v{p.version} does not beat the champion "
                      f"(use --force to promote anyway)[/yellow]")  # fmt: skip
        raise typer.Exit(1)


def predict(
    videos: list[Path] = typer.Argument(None, help="Original (dark) video files."),
    video_list: Path | None = typer.Option(
        None, "--list", help="An unlabelled list (UG2's VideoID,Video CSV) of videos to classify."
    ),
    root: Path | None = typer.Option(None, help="Where --list's videos are (default: its root)."),
    model: str = typer.Option("models:/dlkdd-student@champion", help="MLflow model URI."),
    top_k: int = typer.Option(3),
    tracking_uri: str = typer.Option(DEFAULT_URI, "--tracking-uri"),
) -> None:
    """Classify videos with a student: original video, multi-view, top-k with probabilities."""
    import json

    import mlflow

    from trainers.data.decode import BadVideoError
    from trainers.inference import predict as run_predict

    videos = list(videos or []) + _listed_videos(video_list, root)
    if not videos:
        raise fail("give video files or --list")
    tracking.mlflow.set_tracking_uri(tracking_uri)
    try:
        net = mlflow.pytorch.load_model(model, map_location="cpu")  # saved in eval mode
        meta = json.loads(mlflow.models.get_model_info(model).metadata["dlkdd"])
    except Exception as err:
        raise fail(f"cannot load model {model}: {str(err).splitlines()[0]}") from None
    bad = 0
    for video in videos:
        try:
            [top] = run_predict(net, meta, [str(video)], top_k=top_k)
        except BadVideoError as err:
            console.print(f"[red]{video}: {err.reason}[/red]", soft_wrap=True)
            bad += 1
            continue
        ranked = ", ".join(f"{c} {p:.2f}" for c, p in top)
        console.print(f"{video}: {ranked}", soft_wrap=True)
    if bad:
        raise typer.Exit(1)


def _listed_videos(video_list: Path | None, root: Path | None) -> list[Path]:
    """The videos of an unlabelled list; its root is the folder above `list_cvt/` (UG2)."""
    from trainers.data.manifests import ManifestError, read_unlabelled

    if video_list is None:
        return []
    parent = video_list.resolve().parent
    root = root or (parent.parent if parent.name == "list_cvt" else parent)
    try:
        return [Path(p) for p in read_unlabelled(root, video_list)]
    except ManifestError as err:
        raise fail(str(err)) from None


def demo(
    data: Path = typer.Option(Path("demo_data"), help="Where the synthetic dataset lives."),
    verbose: bool = typer.Option(False, "--verbose", help=VERBOSE_HELP),
) -> None:
    """The whole study on embedded defaults: synthesise, sweep smoke.yaml, compare,
    promote, predict a few clips, and say how to open the MLflow UI."""
    from orchestrator.quiet import log_file, quiet
    from trainers.data.synth import SynthConfig, synthesize

    if not (data / "train.csv").is_file():
        with console.status(f"synthesising dark actions into {data}"):
            # 48 validation and 48 test clips: one clip moves a score by 0.02, not 0.08
            synthesize(data, SynthConfig(num_classes=4, train_per_class=24, val_per_class=12,
                                         test_per_class=12, frames=24, size=64))  # fmt: skip
    spec = spec_or_exit("smoke", [])
    experiment_id = _connect(spec.tracking.uri, spec.tracking.experiment)
    with quiet(log_file(spec.storage.resolved(), "demo"), verbose):
        sweep_and_compare(spec, resume=False)
        try:
            promote("smoke", tracking_uri=None, experiment=None, metric="best_val_top1",
                    name="dlkdd-student", force=False, run=None, sets=[])  # fmt: skip
        except typer.Exit as stop:
            if stop.exit_code != 1:  # 1: a better champion exists already; else it failed
                raise
            console.print("(the earlier champion stays)")
        with (data / "test.csv").open() as f:
            clips = [data / row[0] for row in list(csv.reader(f))[1::6][:4]]
        predict(
            clips,
            video_list=None,
            root=None,
            model="models:/dlkdd-student@champion",
            top_k=2,
            tracking_uri=DEFAULT_URI,
        )  # every option: typer's defaults are not values here
    link = tracking.ui_link("http://127.0.0.1:5000", experiment_id)
    console.print(f"\nOpen the results: [bold]mlflow ui --backend-store-uri {DEFAULT_URI}"
                  f"[/bold], then {link}", soft_wrap=True)  # fmt: skip


def _connect(uri: str, experiment: str) -> str:
    try:
        return tracking.connect(uri, experiment)
    except tracking.TrackingError as err:
        raise fail(str(err)) from None
