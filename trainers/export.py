"""The exported model: a plain state_dict plus a JSON of what is needed to use it.

Inference (and a student's frozen teacher) loads this without DeepSpeed or Ray; it carries
its enhancement too (Zero-DCE or Zero-DCE++ weights copied beside it, as `<name>.pt`), so a
teacher is self-contained.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import torch
from torch import nn

from trainers import enhance, models

MODEL_FILE, META_FILE = "model.pt", "meta.json"
# Exports written before dlkdd adopted the Zero-DCE authors' curve sign lack this mark: their
# teachers learned on darkened video, and the same weights now brighten.
CURVE_CONVENTION = "authors"


def export(
    out: Path,
    state_dict: dict[str, torch.Tensor],
    meta: dict[str, Any],
    curve_weights: Path | None = None,
) -> Path:
    """Writes model.pt, meta.json (and the weights file the input enhancement needs)."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    torch.save({k: v.detach().cpu() for k, v in state_dict.items()}, out / MODEL_FILE)
    if curve_weights is not None:
        shutil.copyfile(curve_weights, curve_file(out, meta["input_enhancement"]["name"]))
    (out / META_FILE).write_text(json.dumps(meta, indent=2, sort_keys=True))
    return out


def read_meta(directory: Path) -> dict[str, Any]:
    path = Path(directory) / META_FILE
    if not path.is_file():
        raise FileNotFoundError(f"{directory}: not an exported model (no {META_FILE})")
    return json.loads(path.read_text())


def load(directory: Path) -> tuple[nn.Module, dict[str, Any]]:
    """The exported network in eval mode, and its metadata."""
    meta = read_meta(directory)
    state = torch.load(Path(directory) / MODEL_FILE, map_location="cpu", weights_only=True)
    return network(meta["arch"], len(meta["classes"]), state), meta


def network(arch: str, num_classes: int, state: dict[str, torch.Tensor]) -> nn.Module:
    """A fresh network holding `state`, in eval mode: what loading an export gives."""
    model = models.build(arch, num_classes)
    model.load_state_dict(state)
    return model.eval()


def input_enhancer(directory: Path, meta: dict[str, Any]) -> nn.Module | None:
    """The enhancement this model's input needs (None: original video)."""
    spec = meta.get("input_enhancement")
    if spec is None:
        return None
    name = spec["name"]
    if name in enhance.CURVE_NETS and spec.get("curve") != CURVE_CONVENTION:
        raise ValueError(
            f"{directory}: a {name} teacher exported before dlkdd used the Zero-DCE authors' "
            "curve sign; it learned on differently enhanced video. Train the teacher again"
        )
    weights = curve_file(directory, name) if name in enhance.CURVE_NETS else None
    return enhance.build(name, spec.get("gamma", 2.0), weights, spec.get("scale", 1))


def curve_file(directory: Path, enhancement: str) -> Path:
    """Where an export keeps the weights of its learned input enhancement."""
    return Path(directory) / curve_file_name(enhancement)


def curve_file_name(enhancement: str) -> str:
    """The name of that file in an export (also joined to an export's URI)."""
    return f"{enhancement}.pt"
