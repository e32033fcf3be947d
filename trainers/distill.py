"""The Hinton distillation loss, as a small pure function."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def kd_loss(
    student_logits: torch.Tensor,
    teacher_logits: torch.Tensor | None,
    target: torch.Tensor,
    temperature: float,
    alpha: float,
) -> torch.Tensor:
    """(1 - alpha) * CE(z_s, y) + alpha * T^2 * KL(softmax(z_t/T) || softmax(z_s/T)).

    KL is averaged over the batch; T^2 keeps the soft-target gradients on the scale of the
    hard-target ones as T changes. alpha = 0 is plain cross-entropy and needs no teacher.
    A teacher logit of -inf (a class a top-k store left out) has probability 0 and adds
    nothing to the KL."""
    if temperature <= 0:
        raise ValueError(f"temperature must be > 0, got {temperature}")
    if not 0 <= alpha <= 1:
        raise ValueError(f"alpha must be in [0, 1], got {alpha}")
    ce = F.cross_entropy(student_logits.float(), target)
    if alpha == 0:
        return ce
    if teacher_logits is None:
        raise ValueError("alpha > 0 needs teacher logits")
    log_p_student = F.log_softmax(student_logits.float() / temperature, dim=1)
    p_teacher = F.softmax(teacher_logits.float() / temperature, dim=1)
    kl = F.kl_div(log_p_student, p_teacher, reduction="batchmean")  # 0 log 0 = 0
    return (1 - alpha) * ce + alpha * temperature**2 * kl
