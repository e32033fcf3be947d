"""`dlkdd data ...` and `dlkdd enhance ...`: dataset and enhancement utilities."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.markup import escape

from orchestrator.progress import console, task
from trainers.config import DatasetConfig

data_app = typer.Typer(help="Synthesise and check dark-video datasets.", no_args_is_help=True)
enhance_app = typer.Typer(help="Preview enhancements and train Zero-DCE.", no_args_is_help=True)


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


def _list_files(fmt: str, root: Path, lists: list[Path], split: int) -> list[Path]:
    """The lists to check: those given, else the format's train and test (and csv val)."""
    from trainers.data.manifests import default_list

    if lists:
        return lists
    subsets = ("train", "val", "test") if fmt == "csv" else ("train", "test")
    return [p for s in subsets if (p := default_list(fmt, root, split, s)).is_file()] or [
        default_list(fmt, root, split, "train")
    ]


@data_app.command("check")
def check(
    root: Path = typer.Argument(..., help="Dataset root."),
    fmt: str = typer.Option("csv", "--format", help="arid, arid_v1_5, ug2, dark48 or csv."),
    lists: list[Path] = typer.Option([], "--list", help="List file(s) to check (repeatable)."),
    split: int = typer.Option(1, help="Official split number."),
) -> None:
    """List every missing, unopenable or undecodable video; exit 1 if there is any."""
    from trainers.data.check import check_videos
    from trainers.data.manifests import ManifestError, read_manifest

    DatasetConfig(format=fmt, root=root, split=split)  # validates the format name
    try:
        paths = sorted(
            {p for lst in _list_files(fmt, root, lists, split)
             for p, _ in read_manifest(fmt, root, lst, strict=False).items}
        )  # fmt: skip
    except ManifestError as err:
        console.print(f"[red]error:[/red] {escape(str(err))}", soft_wrap=True)
        raise typer.Exit(2) from err
    with task("checking videos", len(paths)) as advance:
        bad = check_videos(paths, on_checked=advance)
    for path, reason in bad:
        console.print(f"[red]BAD[/red] {escape(path)}: {escape(reason)}", soft_wrap=True)
    console.print(f"{len(paths) - len(bad)} of {len(paths)} videos readable, {len(bad)} bad")
    if bad:
        raise typer.Exit(1)


@enhance_app.command("train-zero-dce")
def train_zero_dce(
    manifest: Path = typer.Option(..., help="A CSV or list file of dark videos."),
    out: Path = typer.Option(..., help="Where to write the weights (.pt)."),
    fmt: str = typer.Option("csv", "--format"),
    root: Path | None = typer.Option(None, help="Dataset root (default: the list's folder)."),
    steps: int = typer.Option(300),
    batch_size: int = typer.Option(8),
    lr: float = typer.Option(1e-3),
    frames_per_video: int = typer.Option(4),
    max_size: int = typer.Option(128, help="Frames are centre-cropped to at most this size."),
    seed: int = typer.Option(0),
) -> None:
    """Train Zero-DCE zero-reference on frames of the listed videos (no bright references)."""
    from trainers.data.frames import sample_frames
    from trainers.data.manifests import read_manifest
    from trainers.enhance import zero_dce

    items = read_manifest(fmt, root or manifest.parent, manifest).items
    frames = sample_frames([p for p, _ in items], frames_per_video, max_size, seed)
    console.print(f"{len(frames)} frames, mean brightness {frames.mean():.3f}")
    with task("training Zero-DCE", steps) as advance:
        net, history = zero_dce.train(
            frames,
            steps,
            batch_size,
            lr,
            seed,
            on_step=lambda _, loss: advance(info=f"loss {loss:.4f}"),
        )
    zero_dce.save(net, out)
    with_net = zero_dce.ZeroDCE(net)(frames.transpose(0, 1).unsqueeze(0))
    console.print(
        f"loss {history[0]:.4f} -> {history[-1]:.4f}; mean brightness "
        f"{frames.mean():.3f} -> {with_net.mean():.3f}; saved {out}"
    )


@enhance_app.command("preview")
def preview(
    video: Path = typer.Argument(..., help="A video file."),
    out: Path = typer.Option(Path("preview.png"), help="PNG to write."),
    methods: list[str] = typer.Option(["identity", "gic", "he", "gic_he", "zero_dce"], "--method"),
    gamma: float = typer.Option(2.0),
    zero_dce_weights: Path | None = typer.Option(None, help="Needed to show zero_dce."),
    frames: int = typer.Option(4, help="Frames to show per method."),
) -> None:
    """Save a grid: a few frames of the original next to each enhancement method."""
    from orchestrator.plots import enhancement_grid

    if "zero_dce" in methods and zero_dce_weights is None:
        console.print("[yellow]zero_dce skipped: pass --zero-dce-weights[/yellow]")
        methods = [m for m in methods if m != "zero_dce"]
    enhancement_grid(video, out, methods, gamma, zero_dce_weights, frames)
    console.print(f"wrote {out}")
