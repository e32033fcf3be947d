"""The experiment spec: one YAML, validated once at the edge, carried unchanged to workers.

`Spec` embeds the worker-facing models of `trainers.config` and adds what only the driver
needs (resources, tracking, storage, the sweep). `Spec.job(...)` derives the `JobConfig`
that one Train job receives.
"""

from __future__ import annotations

import platform
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import Field, ValidationError, ValidationInfo, field_validator, model_validator

from trainers.config import (
    ClipConfig,
    DatasetConfig,
    DistillConfig,
    EnhancementConfig,
    EnhancementName,
    JobConfig,
    RoleConfig,
    StrictModel,
)


class SpecError(ValueError):
    """A spec that cannot run; the message names the file and the field."""


class Resources(StrictModel):
    num_workers: int = Field(2, ge=1, description="Ray Train workers per job.")
    cpus_per_worker: int = Field(1, ge=1, description="Integer CPUs per worker (Ray wants ints).")
    gpus_per_worker: int = Field(0, ge=0, description="Integer GPUs per worker.")
    max_concurrent_trials: int | None = Field(
        None,
        ge=1,
        description="A cap on the jobs (teachers, stores, trials) running at once. Default: as "
        "many as the cluster holds now or, started by `ray up`, at its largest (node types' "
        "max_workers), asked again as nodes join.",
    )
    max_failures: int = Field(1, ge=0, description="Worker failures a job survives (resumes).")
    worker_start_attempts: int = Field(
        10,
        ge=1,
        description="Tries a job's Train workers get to start, each waiting "
        "RAY_TRAIN_WORKER_GROUP_START_TIMEOUT_S (60 s by default) for their resources; then "
        "the job fails naming who holds them (a sweep's trial is retried by Tune). Ray's "
        "default is to wait forever. Raise it where GPU nodes take long to scale up.",
    )


class Tracking(StrictModel):
    uri: str = Field("sqlite:///mlflow.db", description="MLflow tracking URI.")
    experiment: str = "dlkdd"


class Storage(StrictModel):
    path: str = Field(
        "dlkdd_runs", description="Checkpoints and exports: local (resolved), NFS or s3://."
    )

    @field_validator("path")
    @classmethod
    def _absolute(cls, v: str) -> str:
        """Resolved once, on the driver: trials run in their own working directories."""
        return v if "://" in v else str(Path(v).resolve())

    def resolved(self) -> str:
        return self.path


class Dist(StrictModel):
    """A search dimension: choice / uniform / loguniform / randint / grid."""

    type: Literal["choice", "uniform", "loguniform", "randint", "grid"]
    values: list[Any] | None = None
    low: float | None = None
    high: float | None = None

    @model_validator(mode="after")
    def _complete(self) -> Dist:
        if self.type in ("choice", "grid"):
            if not self.values:
                raise ValueError(f"{self.type} needs a non-empty 'values' list")
        elif self.low is None or self.high is None or not self.low < self.high:
            raise ValueError(f"{self.type} needs low < high")
        elif self.type == "loguniform" and self.low <= 0:
            raise ValueError("loguniform needs low > 0")
        return self

    def bounds(self) -> tuple[float, float]:
        """The smallest and largest value this dimension can take."""
        if self.type in ("choice", "grid"):
            if not all(isinstance(v, int | float) for v in self.values):
                raise ValueError(f"values must be numbers, got {self.values}")
            return min(self.values), max(self.values)
        return self.low, self.high

    def centre(self) -> float:
        """A typical value: the middle of the range (geometric for loguniform)."""
        lo, hi = self.bounds()
        if self.type in ("choice", "grid"):
            return sorted(self.values)[len(self.values) // 2]
        return (lo * hi) ** 0.5 if self.type == "loguniform" else (lo + hi) / 2


class SchedulerConfig(StrictModel):
    type: Literal["asha", "fifo"] = "asha"
    grace_period: int = Field(1, ge=1, description="Epochs before ASHA may stop a trial.")
    reduction_factor: int = Field(2, ge=2)


class SweepConfig(StrictModel):
    enhancements: list[EnhancementName] = Field(..., min_length=1)
    temperature: Dist
    alpha: Dist
    num_samples: int = Field(
        6, ge=1, description="Distilled student trials; the control is a job of its own."
    )
    search: Literal["random", "grid", "optuna"] = "random"
    scheduler: SchedulerConfig = Field(default_factory=SchedulerConfig)
    metric: str = "val_top1"
    zero_dce_steps: int = Field(
        300, ge=1, description="Zero-DCE / Zero-DCE++ training steps when no weights are given."
    )
    seeds: list[int] | None = Field(
        None,
        min_length=1,
        description="The students' seeds (initialisation and augmentation, never the split): "
        "the search runs on the first; the control and the best `confirm_top_k` "
        "configurations are then trained on every other one at full budget. Default: the "
        "spec's `seed`. Teachers: see `teacher_seeds`.",
    )
    teacher_seeds: Literal["first", "each"] = Field(
        "first",
        description="'first': one teacher per enhancement, on the spec's `seed`, for every "
        "student; 'each': a teacher per enhancement and seed, trained on that seed (the "
        "confirm seeds' only for the confirmed configurations' enhancements), and every "
        "student distils from its own seed's teacher, so the interval over seeds includes "
        "the teacher's variance.",
    )
    confirm_top_k: int = Field(
        1, ge=1, description="Configurations re-run on every other seed of `seeds`."
    )
    probe_each_enhancement: bool = Field(
        False,
        description="Begin with one trial per enhancement at the centre of the T and alpha "
        "ranges (set by --preflight, so every teacher is distilled from once).",
    )

    @field_validator("enhancements", "seeds")
    @classmethod
    def _unique(cls, v: list | None, info: ValidationInfo) -> list | None:
        if v is not None and len(set(v)) != len(v):
            raise ValueError(f"{info.field_name} must not repeat")
        return v

    @field_validator("alpha")
    @classmethod
    def _alpha_is_a_weight(cls, v: Dist) -> Dist:
        lo, hi = v.bounds()
        if lo <= 0 or hi > 1:
            raise ValueError(
                f"alpha weighs the KD term: its range must lie in (0, 1], got {lo}..{hi} "
                "(the control, alpha = 0, is a job of its own in every sweep)"
            )
        return v

    @field_validator("temperature")
    @classmethod
    def _temperature_positive(cls, v: Dist) -> Dist:
        lo, _ = v.bounds()
        if lo <= 0:
            raise ValueError(f"temperature must be > 0, got a range from {lo}")
        return v


class Spec(StrictModel):
    name: str = Field(..., pattern=r"^[A-Za-z0-9_.-]+$")
    dataset: DatasetConfig
    clip: ClipConfig = Field(default_factory=ClipConfig)
    enhancement: EnhancementConfig = Field(default_factory=EnhancementConfig)
    teacher: RoleConfig = Field(default_factory=RoleConfig)
    student: RoleConfig = Field(default_factory=RoleConfig)
    distill: DistillConfig = Field(default_factory=DistillConfig)
    deepspeed: dict[str, Any] = Field(default_factory=dict)
    resources: Resources = Field(default_factory=Resources)
    tracking: Tracking = Field(default_factory=Tracking)
    storage: Storage = Field(default_factory=Storage)
    sweep: SweepConfig | None = None
    seed: int = 0

    @field_validator("dataset")
    @classmethod
    def _root_exists(cls, v: DatasetConfig, info: ValidationInfo) -> DatasetConfig:
        """Checked where the jobs run: here, or (`submit`) on the cluster, where the job's
        first step validates the spec again; a cluster reads only absolute roots."""
        if info.context and info.context.get("data_on_cluster"):
            if not Path(v.root).is_absolute():
                raise ValueError(f"dataset root {v.root} must be absolute: the cluster's "
                                 "nodes read it, not this machine")  # fmt: skip
            return v
        if not Path(v.root).is_dir():
            raise ValueError(f"dataset root {v.root} does not exist on {platform.node()}")
        return v.model_copy(update={"root": Path(v.root).resolve()})

    def placed(self, tracking_uri: str | None = None, storage: str | None = None) -> Spec:
        """The same study logged to another MLflow and stored elsewhere (a cluster's)."""
        update: dict[str, Any] = {}
        if tracking_uri:
            update["tracking"] = self.tracking.model_copy(update={"uri": tracking_uri})
        if storage:
            update["storage"] = Storage(path=storage)
        return self.model_copy(update=update)

    def job(
        self,
        role: Literal["teacher", "student"],
        enhancement: str | None = None,
        teacher_dir: str | Path | None = None,
        temperature: float | None = None,
        alpha: float | None = None,
        soft_target_store: str | None = None,
        seed: int | None = None,
    ) -> JobConfig:
        """The config of one teacher or student job derived from this spec (`seed`: one of
        the sweep's seeds; by default the spec's)."""
        side = self.teacher if role == "teacher" else self.student
        chosen = {"temperature": temperature, "alpha": alpha}
        distill = DistillConfig(
            **self.distill.model_dump() | {k: v for k, v in chosen.items() if v is not None}
        )
        enh = self.enhancement.model_copy(update={"name": enhancement or self.enhancement.name})
        return JobConfig(
            role=role,
            dataset=self.dataset,
            clip=self.clip,
            enhancement=enh,
            model=side.model,
            optim=side.optim,
            distill=distill,
            teacher_dir=str(teacher_dir) if teacher_dir else None,
            soft_target_store=soft_target_store,
            deepspeed=self.deepspeed,
            seed=self.seed if seed is None else seed,
        )

    def student_seeds(self) -> list[int]:
        """The sweep's seeds: the first is the search's, the others its confirmations'."""
        return (self.sweep and self.sweep.seeds) or [self.seed]

    def teacher_key(self, enhancement: str, seed: int) -> str:
        """The teacher a student of `seed` distils from, as a sweep's teachers are keyed:
        its enhancement; with `sweep.teacher_seeds: each`, past the search's seed, its
        seed's teacher `<enhancement>.<seed>`."""
        if self.sweep is None or self.sweep.teacher_seeds == "first":
            return enhancement
        return seed_key(enhancement, seed, self.student_seeds()[0])


def seed_key(base: str, seed: int, first: int) -> str:
    """A sweep's reference job of `seed` (a control, a per-seed teacher): keyed `base` for
    the search's seed (`first`), `<base>.<seed>` for the confirm runs' other seeds."""
    return base if seed == first else f"{base}.{seed}"


def key_base(key: str) -> str:
    """What a `seed_key` is of: `gic` for `gic.1`, `control` for `control.2`."""
    return key.split(".")[0]


def _format(err: ValidationError, source: str) -> str:
    lines = [f"{source}: invalid spec"]
    for e in err.errors():
        where = ".".join(str(p) for p in e["loc"]) or "(top level)"
        msg = e["msg"]
        if e["type"] == "extra_forbidden":
            msg = "unknown key"
        elif e["type"] == "literal_error":
            msg = f"{msg}, got {e['input']!r}"
        lines.append(f"  {where}: {msg}")
    return "\n".join(lines)


def parse_spec(data: dict[str, Any], source: str = "spec", data_on_cluster: bool = False) -> Spec:
    """A validated spec; `data_on_cluster`: the dataset root is checked by the cluster's job."""
    try:
        return Spec.model_validate(data, context={"data_on_cluster": data_on_cluster})
    except ValidationError as err:
        raise SpecError(_format(err, source)) from None


def load_spec(
    path: Path, overrides: dict[str, Any] | None = None, data_on_cluster: bool = False
) -> Spec:
    """Reads and validates a YAML spec; `overrides` are merged over it (CLI options)."""
    path = Path(path)
    if not path.is_file():
        raise SpecError(f"{path}: spec file not found")
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as err:
        raise SpecError(f"{path}: not valid YAML: {err}") from None
    if not isinstance(data, dict):
        raise SpecError(f"{path}: a spec is a mapping of keys, got {type(data).__name__}")
    from trainers.schedule import deep_merge

    return parse_spec(deep_merge(data, overrides or {}), str(path), data_on_cluster)
