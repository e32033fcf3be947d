"""Every optimiser the spec offers trains under every ZeRO stage it allows, through the same
schedule and DeepSpeed config the worker loop builds: two real steps of a DeepSpeed engine
(gloo, one process, CPU, fp32), for the packaged specs' settings and for the whole grid."""

from __future__ import annotations

import deepspeed
import pytest
import torch
import yaml

import search_spaces
from trainers import models, schedule
from trainers.config import OptimConfig
from trainers.loop import fp32_state

pytestmark = pytest.mark.usefixtures("process_group")

NUM_CLASSES = 4
STEPS = 2


def packaged_optims() -> list:
    """(optim, raw deepspeed block) of each role of each packaged spec, read as YAML: their
    dataset roots live on the cluster, so the spec's own validation would refuse them here."""
    cases = []
    for path in sorted(search_spaces.HERE.glob("*.yaml")):
        spec = yaml.safe_load(path.read_text())
        for role in ("teacher", "student"):
            optim = OptimConfig(**spec.get(role, {}).get("optim", {}))
            cases.append(pytest.param(optim, spec.get("deepspeed", {}), id=f"{path.stem}-{role}"))
    return cases


def grid_optims() -> list:
    return [
        pytest.param(OptimConfig(optimizer=name, zero_stage=stage), {}, id=f"{name}-zero{stage}")
        for name in ("adamw", "sgd")
        for stage in (0, 1, 2)
    ]


def parameters(module: torch.nn.Module) -> list[torch.Tensor]:
    return [p.detach().clone() for p in module.parameters()]


@pytest.mark.parametrize(("optim", "extra"), packaged_optims() + grid_optims())
def test_optimiser_takes_real_steps_under_its_zero_stage(optim: OptimConfig, extra: dict) -> None:
    two_steps(optim, extra, bf16=False)


@pytest.mark.parametrize(("optim", "extra"), grid_optims())
def test_bf16_takes_real_steps_under_every_zero_stage(optim: OptimConfig, extra: dict) -> None:
    """bf16 is what `precision: auto` picks on GPU; BatchNorm's buffers must follow."""
    two_steps(optim, extra, bf16=True)


def skipped_for_an_inf_norm(engine) -> bool:
    """DeepSpeed's bf16 optimiser on CPU now and then finds an infinite gradient norm on
    the same batch and weights that give a finite one in another run, and skips the step
    (dev-cpu, 2026-12-03: 2 of 6 bf16 cases in one suite run; not seen in fp32; GPUs, where
    `precision: auto` picks bf16, not checked here). Such a step is taken again, at most
    twice, so a bf16 path that never steps still fails."""
    return bool(getattr(engine.optimizer, "overflow", False))


def two_steps(optim: OptimConfig, extra: dict, bf16: bool) -> None:
    torch.manual_seed(0)
    model = models.build("tiny", NUM_CLASSES)
    opt = schedule.optimiser(model, optim)
    sched = schedule.warmup_cosine(opt, round(optim.warmup_epochs * STEPS), optim.epochs * STEPS)
    engine, _, _, _ = deepspeed.initialize(
        model=model,
        optimizer=opt,
        lr_scheduler=sched,
        config=schedule.deepspeed_config(optim, bf16=bf16, extra=extra),
    )
    dtype = torch.bfloat16 if bf16 else torch.float32
    clips, labels = torch.randn(2, 3, 4, 32, 32, dtype=dtype), torch.tensor([0, 3])
    for _ in range(STEPS):
        before = parameters(engine.module)
        for _ in range(1 + 2 * bf16):  # bf16 on CPU: see skipped_for_an_inf_norm
            for _ in range(optim.grad_accum):  # one optimiser step per accumulation window
                loss = torch.nn.functional.cross_entropy(engine(clips).float(), labels)
                engine.backward(loss)
                engine.step()
            if not skipped_for_an_inf_norm(engine):
                break
        assert torch.isfinite(loss)
        after = parameters(engine.module)
        assert any(not torch.equal(b, a) for b, a in zip(before, after, strict=True))
    if bf16:  # the export holds DeepSpeed's fp32 master weights, not the bf16 working copy
        floats = [v for v in fp32_state(engine).values() if v.is_floating_point()]
        assert all(v.dtype == torch.float32 for v in floats)
        assert any(not torch.equal(v, v.bfloat16().float()) for v in floats)
