"""Declarative sweep specs shipped with dlkdd; `path(name)` finds one by name."""

from __future__ import annotations

from pathlib import Path

HERE = Path(__file__).parent


def path(name: str) -> Path:
    """`smoke` -> the packaged smoke.yaml; any existing file path is returned as is."""
    candidate = Path(name)
    if candidate.is_file():
        return candidate
    packaged = HERE / f"{name.removesuffix('.yaml')}.yaml"
    if packaged.is_file():
        return packaged
    names = ", ".join(sorted(p.stem for p in HERE.glob("*.yaml")))
    raise FileNotFoundError(f"{name}: no such spec file or packaged spec ({names})")
