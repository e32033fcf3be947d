"""What every `dlkdd` command shares: error printing, the spec with its `--set` overrides,
and the `--preflight` option."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer
import yaml
from rich.markup import escape

import search_spaces
from orchestrator.progress import console
from orchestrator.spec import Spec, SpecError, load_spec

SET_HELP = "Override a spec key: key.path=value (value read as YAML), repeatable."
PREFLIGHT_HELP = (
    "Rehearse the study shrunk to minutes on this machine (a few clips per class, small clips,"
    " 1 epoch) with the spec's architecture, optimiser, ZeRO stage, enhancements and search;"
    " logs to <experiment>-preflight."
)


def fail(message: str, code: int = 2) -> typer.Exit:
    console.print(f"[red]error:[/red] {escape(message)}", soft_wrap=True)
    return typer.Exit(code)


def parse_sets(items: list[str] | None) -> dict[str, Any]:
    """`["dataset.root=/data", "optim.lr=0.1"]` -> a nested dict to merge over the spec."""
    merged: dict[str, Any] = {}
    for item in items or []:
        key, sep, raw = item.partition("=")
        if not sep or not key.strip() or any(not p for p in key.strip().split(".")):
            raise fail(f"--set {item!r}: expected key.path=value")
        try:
            value = yaml.safe_load(raw) if raw.strip() else None
        except yaml.YAMLError as err:
            raise fail(f"--set {item!r}: value is not valid YAML ({err})") from None
        *parents, leaf = key.strip().split(".")
        node = merged
        for part in parents:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise fail(f"--set {item!r}: {part} is set to a value and a mapping")
        node[leaf] = value
    return merged


def spec_or_exit(
    name: str | Path, sets: list[str] | None = None, data_on_cluster: bool = False
) -> Spec:
    """The spec file or packaged spec `name`, with `--set` overrides, validated (the
    dataset root too, unless the cluster checks it)."""
    try:
        return load_spec(search_spaces.path(str(name)), parse_sets(sets), data_on_cluster)
    except (SpecError, FileNotFoundError) as err:
        raise fail(str(err)) from None


def show_checklist(checklist, title: str) -> None:
    """A preflight's checklist: one row per check, ok or FAIL, with what was found; then
    every problem on a line of its own (file:line or path first, never folded)."""
    from rich.table import Table

    table = Table(title=title)
    for col in ("", "check", "detail"):
        table.add_column(col, overflow="fold")
    for item, ok, detail in checklist.lines:
        table.add_row("[green]ok[/green]" if ok else "[red]FAIL[/red]", item, escape(detail))
    console.print(table)
    for problem in checklist.problems:
        console.print(f"[red]problem:[/red] {escape(problem)}", soft_wrap=True)
