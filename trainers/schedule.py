"""Optimiser and learning-rate schedule from the spec (warmup, then cosine to zero)."""

from __future__ import annotations

import math

import torch
from torch import nn

from trainers.config import OptimConfig


def optimiser(model: nn.Module, cfg: OptimConfig) -> torch.optim.Optimizer:
    """Plain torch optimisers: they run on CPU and GPU alike (DeepSpeed's fused ones need CUDA)."""
    params = [p for p in model.parameters() if p.requires_grad]
    if cfg.optimizer == "sgd":
        return torch.optim.SGD(
            params, lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay, nesterov=True
        )
    return torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)


def warmup_cosine(
    opt: torch.optim.Optimizer, warmup_steps: int, total_steps: int
) -> torch.optim.lr_scheduler.LambdaLR:
    def factor(step: int) -> float:
        if step < warmup_steps:
            return (step + 1) / warmup_steps
        progress = (step - warmup_steps) / max(total_steps - warmup_steps, 1)
        return 0.5 * (1 + math.cos(math.pi * min(progress, 1.0)))

    return torch.optim.lr_scheduler.LambdaLR(opt, factor)


def deepspeed_config(cfg: OptimConfig, bf16: bool, extra: dict) -> dict:
    """The generated DeepSpeed config, with the spec's raw `deepspeed:` block merged over it.

    ZeRO (stage >= 1) refuses an optimiser DeepSpeed has not tested, torch's SGD among them,
    unless told otherwise; every optimiser the spec offers is run under every stage it
    allows by tests/test_optimisers.py, so they are allowed here."""
    generated = {
        "train_micro_batch_size_per_gpu": cfg.batch_size,
        "gradient_accumulation_steps": cfg.grad_accum,
        "gradient_clipping": cfg.grad_clip,
        "zero_optimization": {"stage": cfg.zero_stage},
        "zero_allow_untested_optimizer": cfg.zero_stage >= 1,
        "bf16": {"enabled": bf16},
        # DeepSpeed >= 0.18 casts parameters but not buffers to bf16; BatchNorm then meets
        # bf16 weights with fp32 running statistics and fails. Cast both, as before.
        **({"data_types": {"buffer_dtype": "bf16"}} if bf16 else {}),
        "steps_per_print": 10**9,
    }
    return deep_merge(generated, extra)


def deep_merge(base: dict, override: dict) -> dict:
    merged = dict(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = deep_merge(merged[key], value)
        else:
            merged[key] = value
    return merged
