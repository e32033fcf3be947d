"""kd_loss is the Hinton loss: checked against a direct computation."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from trainers.distill import kd_loss


def logits(seed: int) -> torch.Tensor:
    return torch.randn(6, 5, generator=torch.Generator().manual_seed(seed))


def test_matches_direct_formula() -> None:
    zs, zt, y = logits(0), logits(1), torch.tensor([0, 1, 2, 3, 4, 0])
    t, a = 3.0, 0.6
    pt = torch.softmax(zt / t, 1)
    kl = (pt * (pt.log() - torch.log_softmax(zs / t, 1))).sum(1).mean()
    expected = (1 - a) * F.cross_entropy(zs, y) + a * t * t * kl
    assert kd_loss(zs, zt, y, t, a) == pytest.approx(float(expected), rel=1e-5)


def test_alpha_zero_is_cross_entropy_without_teacher() -> None:
    zs, y = logits(0), torch.tensor([1, 1, 2, 3, 4, 0])
    assert torch.equal(kd_loss(zs, None, y, 4.0, 0.0), F.cross_entropy(zs, y))


def test_identical_logits_leave_only_cross_entropy_share() -> None:
    zs, y = logits(2), torch.zeros(6, dtype=torch.long)
    assert kd_loss(zs, zs, y, 2.0, 0.5) == pytest.approx(0.5 * float(F.cross_entropy(zs, y)))


def test_soft_gradient_scale_is_kept_by_t_squared() -> None:
    """Without T^2 the soft-target gradient shrinks ~1/T^2; with it, it stays O(1/T)·T^2/T^2."""
    zt, y = logits(1) * 3, torch.zeros(6, dtype=torch.long)
    norms = {}
    for t in (2.0, 8.0):
        zs = logits(0).requires_grad_(True)
        kd_loss(zs, zt, y, t, 1.0).backward()
        norms[t] = zs.grad.norm().item()
    # gradient of T^2*KL(.,./T) wrt z_s is T*(p_s - p_t); (p_s - p_t) ~ 1/T for large T
    assert 0.3 < norms[8.0] / norms[2.0] < 1.5


@pytest.mark.parametrize(("t", "a"), [(0.0, 0.5), (-1.0, 0.5), (2.0, 1.5), (2.0, -0.1)])
def test_rejects_bad_temperature_or_alpha(t: float, a: float) -> None:
    with pytest.raises(ValueError):
        kd_loss(logits(0), logits(1), torch.zeros(6, dtype=torch.long), t, a)


def test_alpha_positive_needs_teacher() -> None:
    with pytest.raises(ValueError, match="teacher logits"):
        kd_loss(logits(0), None, torch.zeros(6, dtype=torch.long), 2.0, 0.5)


def test_a_class_left_out_of_a_top_k_store_adds_nothing() -> None:
    """Teacher logits of -inf (classes a top-k store left out): the KL is taken over the
    kept classes' renormalised distribution, and loss and gradient stay finite."""
    student = torch.tensor([[0.3, -1.2, 2.0, 0.5]], requires_grad=True)
    teacher = torch.tensor([[1.5, float("-inf"), 0.2, float("-inf")]])
    t = 2.0
    loss = kd_loss(student, teacher, torch.tensor([2]), t, 1.0)
    p = torch.softmax(torch.tensor([1.5, 0.2]) / t, 0)
    log_q = torch.log_softmax(student.detach()[0] / t, 0)[[0, 2]]
    assert torch.isclose(loss, t**2 * (p * (p.log() - log_q)).sum(), atol=1e-6)
    loss.backward()
    assert torch.isfinite(student.grad).all()
