"""`dlkdd data ...` and `dlkdd enhance ...`: dataset and enhancement utilities."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.markup import escape
from rich.table import Table

from orchestrator.progress import console, task
from trainers.config import DatasetConfig

data_app = typer.Typer(help="Synthesise and check dark-video datasets.", no_args_is_help=True)
enhance_app = typer.Typer(
    help="Preview enhancements; train and convert Zero-DCE(++) weights.", no_args_is_help=True
)


@data_app.command("synth")
def synth(
    out: Path = typer.Argument(..., help="Folder to write videos and CSV lists into."),
    classes: int = typer.Option(4, help="Number of motion classes (2..6)."),
    train_per_class: int = typer.Option(16),
    val_per_class: int = typer.Option(4),
    test_per_class: int = typer.Option(4),
    frames: int = typer.Option(16, help="Frames per video."),
    size: int = typer.Option(64, help="Frame height and width (multiple of 16, >= 64)."),
    seed: int = typer.Option(0),
) -> None:
    """Write a synthetic dark action dataset (real H.264 files, generic-CSV lists)."""
    from trainers.data.synth import SynthConfig, synthesize

    cfg = SynthConfig(
        classes, train_per_class, val_per_class, test_per_class, frames, size, seed=seed
    )
    with console.status(
        f"writing {classes * (train_per_class + val_per_class + test_per_class)} videos"
    ):
        lists = synthesize(out, cfg)
    for subset, path in lists.items():
        console.print(f"{subset:5s} {path}")


@data_app.command("check")
def check(
    root: Path = typer.Argument(..., help="Dataset root."),
    fmt: str = typer.Option("csv", "--format", help="arid, arid_v1_5, ug2, dark48 or csv."),
    lists: list[Path] = typer.Option([], "--list", help="List file(s) to check (repeatable)."),
    split: int = typer.Option(1, help="Official split number."),
) -> None:
    """Per list: clips per class, malformed rows, missing and undecodable videos; exit 1 on
    any problem (2 when the lists themselves cannot be found)."""
    from trainers.data.check import check_lists, dataset_lists
    from trainers.data.manifests import ManifestError

    DatasetConfig(format=fmt, root=root, split=split)  # validates the format name
    try:
        reports = dataset_lists(fmt, root, split, {str(p): p for p in lists})
    except ManifestError as err:
        console.print(f"[red]error:[/red] {escape(str(err))}", soft_wrap=True)
        raise typer.Exit(2) from err
    total = len({p for r in reports for p in r.paths})
    present = total - len({p for r in reports for p in r.missing})
    with task("decoding videos", present) as advance:
        check_lists(reports, on_checked=advance)
    show_check(reports, fmt, root)
    bad = len({p for r in reports for p in r.missing + [u for u, _ in r.undecodable]})
    malformed = sum(len(r.malformed) for r in reports)
    console.print(
        f"{total - bad} of {total} videos readable, {bad} bad; {malformed} malformed rows"
    )
    if bad or malformed:
        raise typer.Exit(1)


def show_check(reports: list, fmt: str, root: Path) -> None:
    """The per-class table of every list, then each problem on its own line."""
    labelled = [r for r in reports if r.labels is not None]
    table = Table(title=f"{fmt} dataset at {root}")
    table.add_column("class")
    for r in reports:
        table.add_column(r.name, justify="right")
    classes = labelled[0].classes if labelled else []
    for label, name in enumerate(classes):
        table.add_row(name, *[str(r.labels.count(label)) if r.labels is not None else ""
                              for r in reports])  # fmt: skip
    table.add_row("[bold]all[/bold]", *[str(len(r.paths)) for r in reports])
    console.print(table)
    for r in reports:
        console.print(f"{r.name}: {r.path} ({r.problems} problems)", soft_wrap=True)
        for row in r.malformed:
            console.print(f"  [red]MALFORMED[/red] {escape(row)}", soft_wrap=True)
        for path in r.missing:
            console.print(f"  [red]MISSING[/red] {escape(path)}: file not found", soft_wrap=True)
        for path, reason in r.undecodable:
            console.print(f"  [red]BAD[/red] {escape(path)}: {escape(reason)}", soft_wrap=True)


@enhance_app.command("train-zero-dce")
def train_zero_dce(
    manifest: Path = typer.Option(..., help="A CSV or list file of dark videos."),
    out: Path = typer.Option(..., help="Where to write the weights (.pt)."),
    variant: str = typer.Option("zero_dce", help="zero_dce or zero_dce_pp (Zero-DCE++)."),
    fmt: str = typer.Option("csv", "--format"),
    root: Path | None = typer.Option(None, help="Dataset root (default: the list's folder)."),
    steps: int = typer.Option(300),
    batch_size: int = typer.Option(8),
    lr: float = typer.Option(1e-3),
    frames_per_video: int = typer.Option(4),
    max_size: int = typer.Option(128, help="Frames are centre-cropped to at most this size."),
    seed: int = typer.Option(0),
) -> None:
    """Train Zero-DCE or Zero-DCE++ zero-reference on frames of the listed videos (no bright
    references), at full resolution as the authors do; the weights serve any `scale`."""
    import torch

    from orchestrator.cli_common import fail
    from trainers.data.frames import sample_frames
    from trainers.data.manifests import read_manifest
    from trainers.enhance import CURVE_NETS, curves, zero_reference

    if variant not in CURVE_NETS:
        raise fail(f"--variant: choose from {', '.join(CURVE_NETS)}, got {variant!r}")
    items = read_manifest(fmt, root or manifest.parent, manifest).items
    frames = sample_frames([p for p, _ in items], frames_per_video, max_size, seed)
    console.print(f"{len(frames)} frames, mean brightness {frames.mean():.3f}")
    with task(f"training {variant}", steps) as advance:
        net, history = zero_reference.train(
            CURVE_NETS[variant],
            frames,
            steps,
            batch_size,
            lr,
            seed,
            on_step=lambda _, loss: advance(info=f"loss {loss:.4f}"),
        )
    curves.save(net, out)
    with torch.no_grad():
        after = net(frames)[0].clamp(0, 1).mean()
    console.print(
        f"loss {history[0]:.4f} -> {history[-1]:.4f}; mean brightness "
        f"{frames.mean():.3f} -> {after:.3f}; saved {out}"
    )


@enhance_app.command("convert-zero-dce")
def convert_zero_dce(
    old: Path = typer.Argument(..., help="Zero-DCE weights trained with dlkdd's old sign."),
    new: Path = typer.Argument(..., help="Where to write them for the authors' update."),
) -> None:
    """Convert Zero-DCE weights trained by dlkdd before it adopted the authors' curve update
    x + r*(x^2 - x): they then give exactly the images they gave before (OLD may be NEW)."""
    from orchestrator.cli_common import fail
    from trainers.enhance import curves, zero_dce

    try:
        net = zero_dce.convert_old_sign(old)
    except (FileNotFoundError, ValueError) as err:
        raise fail(str(err)) from None
    curves.save(net, new)
    console.print(f"converted {old} -> {new}")


@enhance_app.command("preview")
def preview(
    video: Path = typer.Argument(..., help="A video file."),
    out: Path = typer.Option(Path("preview.png"), help="PNG to write."),
    methods: list[str] = typer.Option(
        ["identity", "gic", "he", "gic_he", "zero_dce", "zero_dce_pp"], "--method"
    ),
    gamma: float = typer.Option(2.0),
    zero_dce_weights: Path | None = typer.Option(None, help="Needed to show zero_dce."),
    zero_dce_pp_weights: Path | None = typer.Option(None, help="Needed to show zero_dce_pp."),
    scale: int = typer.Option(1, help="zero_dce_pp's downscale factor for its curve maps."),
    frames: int = typer.Option(4, help="Frames to show per method."),
) -> None:
    """Save a grid: a few frames of the original next to each enhancement method."""
    from orchestrator.cli_common import fail
    from orchestrator.plots import enhancement_grid

    weights = {"zero_dce": zero_dce_weights, "zero_dce_pp": zero_dce_pp_weights}
    for name, path in weights.items():
        if name in methods and path is None:
            option = "--" + name.replace("_", "-") + "-weights"
            console.print(f"[yellow]{name} skipped: pass {option}[/yellow]")
            methods = [m for m in methods if m != name]
    try:
        enhancement_grid(video, out, methods, gamma, weights, frames, scale)
    except ValueError as err:  # weights that darken, or of the other network
        raise fail(str(err)) from None
    console.print(f"wrote {out}")
