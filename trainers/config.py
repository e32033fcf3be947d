"""The worker-facing part of the spec: every knob a training job reads, declared once.

The orchestrator's full spec embeds these models unchanged, so the object that the CLI
validates is the one a Ray Train worker receives (as a dict, re-validated on arrival).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

DatasetFormat = Literal["arid", "arid_v1_5", "ug2", "dark48", "csv"]
EnhancementName = Literal["identity", "gic", "he", "gic_he", "zero_dce", "zero_dce_pp"]
# The learned enhancements and the field that holds each one's weights file.
CURVE_WEIGHTS = {"zero_dce": "zero_dce_weights", "zero_dce_pp": "zero_dce_pp_weights"}
Arch = Literal["tiny", "r3d_18", "mc3_18", "r2plus1d_18", "r2plus1d_34"]


class StrictModel(BaseModel):
    """Rejects unknown keys so that a typo in a spec fails loudly instead of being ignored;
    defaults go through the same validators as explicit values (a relative default path is
    resolved like a given one)."""

    model_config = ConfigDict(extra="forbid", validate_default=True)


class DatasetConfig(StrictModel):
    format: DatasetFormat = Field(description="On-disk layout of the dataset's lists.")
    root: Path = Field(description="Dataset root; videos are resolved relative to it.")
    split: int = Field(
        1, ge=0, le=3, description="Official split: 1..3 (ARID, Dark-48), 0..1 (ARID v1.5 lists)."
    )
    train_list: Path | None = Field(None, description="Override the training list file.")
    val_list: Literal["other"] | Path | None = Field(
        None,
        description="Validation list; 'other' = ARID's third official list (disjoint from "
        "train and test); default: a stratified hold-out of train (csv: val.csv).",
    )
    test_list: Path | None = Field(None, description="Override the test list file.")
    val_fraction: float = Field(
        0.1, gt=0, lt=1, description="Share of the training list held out when no val_list."
    )
    split_seed: int = Field(
        0,
        description="Seed of that hold-out. Apart from the jobs' `seed`: a study's seeds "
        "change initialisation and augmentation, never which clips validate.",
    )
    max_bad_fraction: float = Field(
        0.05, ge=0, le=1, description="A job fails when more than this share of clips is bad."
    )
    num_workers: int = Field(2, ge=0, description="DataLoader processes per Train worker.")
    max_per_class: int | None = Field(
        None, ge=1, description="At most this many clips per class in each split (preflight)."
    )

    @model_validator(mode="after")
    def _other_is_arid(self) -> DatasetConfig:
        if self.val_list == "other" and self.format not in ("arid", "arid_v1_5"):
            raise ValueError("val_list: 'other' names ARID's third list; give a file instead")
        return self


class ClipConfig(StrictModel):
    num_frames: int = Field(16, ge=1, description="Frames per clip.")
    stride: int = Field(2, ge=1, description="Temporal stride between sampled frames.")
    crop_size: int = Field(112, ge=8, description="Square spatial size fed to the model.")
    min_scale: float = Field(0.35, gt=0, le=1, description="Random resized crop area range.")
    test_windows: int = Field(3, ge=1, description="Evenly spaced windows in multi-view test.")
    mean: tuple[float, float, float] = (0.43216, 0.394666, 0.37645)
    std: tuple[float, float, float] = (0.22803, 0.22145, 0.216989)


class EnhancementConfig(StrictModel):
    name: EnhancementName = "gic"
    gamma: float = Field(2.0, gt=0, description="Gamma for gic / gic_he (>1 brightens).")
    zero_dce_weights: str | None = Field(
        None,
        description="Zero-DCE weights (the authors' Epoch99.pth or `dlkdd enhance "
        "train-zero-dce`): a path every node sees, or a storage URI. None: a sweep trains "
        "them on the dataset's frames.",
    )
    zero_dce_pp_weights: str | None = Field(
        None, description="Zero-DCE++ weights, as zero_dce_weights (train-zero-dce --variant)."
    )
    scale: int = Field(
        1,
        ge=1,
        description="zero_dce_pp: curve maps are estimated on the frame downscaled by this "
        "factor and upsampled. The authors use 12 on 1200x900 photos (maps of 100x75); video "
        "frames of 112-128 px are already that small, so 1; raise it for large frames.",
    )

    def weights(self) -> str | None:
        """The weights file this enhancement reads (None: hand-designed, or not given yet)."""
        field = CURVE_WEIGHTS.get(self.name)
        return getattr(self, field) if field else None

    def params(self) -> dict[str, Any]:
        """The parameters that actually influence this enhancement (for fingerprints, build)."""
        if self.name in ("gic", "gic_he"):
            return {"gamma": self.gamma}
        if self.name == "zero_dce":
            # "curve": teachers trained before dlkdd adopted the authors' curve sign saw other
            # images from the same weights file; this keeps them from being reused.
            return {"weights": self.weights(), "curve": "authors"}
        if self.name == "zero_dce_pp":
            return {"weights": self.weights(), "scale": self.scale}
        return {}


class ModelConfig(StrictModel):
    arch: Arch = "r2plus1d_18"
    pretrained: Path | None = Field(None, description="Local VideoResNet state_dict to start from.")
    channels_last: bool = Field(False, description="channels_last_3d memory format (GPU).")
    compile: bool = Field(False, description="torch.compile the model (GPU).")


class OptimConfig(StrictModel):
    optimizer: Literal["adamw", "sgd"] = "adamw"
    lr: float = Field(1e-3, gt=0)
    weight_decay: float = Field(1e-4, ge=0)
    momentum: float = Field(0.9, ge=0, lt=1, description="SGD momentum.")
    epochs: int = Field(10, ge=1)
    batch_size: int = Field(8, ge=1, description="Micro-batch per worker.")
    grad_accum: int = Field(1, ge=1)
    grad_clip: float = Field(1.0, ge=0, description="0 disables clipping.")
    warmup_epochs: float = Field(1.0, ge=0)
    zero_stage: int = Field(0, ge=0, le=2, description="DeepSpeed ZeRO stage.")
    precision: Literal["auto", "fp32", "bf16"] = Field(
        "auto", description="auto = bf16 on GPU, fp32 on CPU."
    )


class RoleConfig(StrictModel):
    """One side of the distillation pair: what network it is and how it is optimised."""

    model: ModelConfig = Field(default_factory=ModelConfig)
    optim: OptimConfig = Field(default_factory=OptimConfig)


class DistillConfig(StrictModel):
    temperature: float = Field(4.0, gt=0)
    alpha: float = Field(0.5, ge=0, le=1)
    soft_targets: Literal["store", "online"] = Field(
        "store",
        description="store: the teacher's logits for every (epoch, clip) are computed once "
        "(per teacher, data seed and clip settings, reused by later sweeps) and students "
        "read them; online: every student runs its teacher on each batch.",
    )
    top_k: int | None = Field(
        None,
        ge=1,
        description="store only: keep each clip's k largest teacher logits (datasets with "
        "hundreds of classes); students distil from the teacher's distribution over those k "
        "classes, renormalised. None keeps every logit.",
    )

    @model_validator(mode="after")
    def _top_k_is_for_stores(self) -> DistillConfig:
        if self.top_k is not None and self.soft_targets == "online":
            raise ValueError(
                "top_k keeps a stored teacher's largest logits: it needs "
                "soft_targets: store (an online teacher gives every logit)"
            )
        return self


class StoreRequest(StrictModel):
    """Soft targets a teacher job computes at its end, its workers being up already, for
    students it does not know yet: their training clips, batch and epoch budget. Written
    beside its export as `soft_targets/<key>-e<epochs>.pt`, where the orchestrator, which
    chose `key` from what the logits depend on, takes it as the students' store."""

    key: str
    clip: ClipConfig
    seed: int
    batch_size: int = Field(ge=1)
    epochs: int = Field(ge=1)
    bf16: bool
    top_k: int | None = Field(None, ge=1)


class JobConfig(StrictModel):
    """Everything one Train job (teacher or student) needs; sent to every worker."""

    role: Literal["teacher", "student"]
    dataset: DatasetConfig
    clip: ClipConfig = Field(default_factory=ClipConfig)
    enhancement: EnhancementConfig = Field(default_factory=EnhancementConfig)
    model: ModelConfig = Field(default_factory=ModelConfig)
    optim: OptimConfig = Field(default_factory=OptimConfig)
    distill: DistillConfig = Field(default_factory=DistillConfig)
    teacher_dir: str | None = Field(
        None, description="Exported teacher (student role): a path or a storage URI."
    )
    soft_target_store: str | None = Field(
        None, description="The teacher's stored logits (student, distill.soft_targets=store)."
    )
    soft_targets_for: list[StoreRequest] = Field(
        default_factory=list, description="Stores a teacher writes at its end (sweeps)."
    )
    deepspeed: dict[str, Any] = Field(default_factory=dict)
    seed: int = 0
    stop_key: str | None = Field(None, description="Early-stop flag key (set by the sweep).")
    fail_at_epoch: int | None = Field(None, description="Fault injection: raise after it.")

    @model_validator(mode="after")
    def _student_has_teacher(self) -> JobConfig:
        if self.role == "student" and self.distill.alpha > 0 and self.teacher_dir is None:
            raise ValueError("a student with alpha > 0 needs teacher_dir (an exported teacher)")
        return self
