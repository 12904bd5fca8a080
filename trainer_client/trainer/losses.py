"""Pass-rate-weighted token-level distillation losses (forward KL, reverse KL, AKL).

Every loss is the paper's per-problem weighting, L = sum_b w_b * L_b / N, with a
normaliser N that does NOT depend on the weights (dividing by sum w would cancel them: a
batch of three frontier items would take a full-size step). Two reductions:

    token:    loss = sum_b w_b sum_t m_bt D_bt / N,   N = sum_b sum_t m_bt  (tokens)
    sequence: loss = sum_b w_b (sum_t m_bt D_bt / sum_t m_bt) / N,   N = B  (problems)

where ``w_b`` is problem b's PACED loss weight (or 1), ``m_bt`` the response-token mask and
``D_bt`` a divergence between the teacher's and the student's next-token distributions.
"sequence" gives every problem the same say whatever its length (with "token", long
responses dominate). With w = 1 both are the usual unweighted means. The caller may pass
``normalizer`` explicitly, e.g. when it skipped the forward pass of zero-weight items but
they still belong to the batch. A batch whose weights are all 0 returns a zero that is still
connected to the student logits, so ``loss.backward()`` works unconditionally, never NaN.

Memory: only tokens with a non-zero weight are evaluated, in chunks of ``chunk_size``
flattened tokens; with grad enabled each chunk runs under ``torch.utils.checkpoint`` so the
V-sized softmax intermediates of one chunk are alive at a time (recomputed in backward).

Conventions (as in TRL's GKD trainer): logits are divided by ``temperature`` before the
softmax and the loss is not rescaled by temperature**2. Tokens where a distribution has
exactly zero probability contribute 0 * log 0 = 0, so -inf logits (masked vocab entries) are
fine as long as the *other* distribution does not put mass there (then the divergence is
mathematically infinite). Teacher logits are treated as constants.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import Literal

import torch
from torch import Tensor
from torch.utils.checkpoint import checkpoint

LossKind = Literal["fkl", "rkl", "akl"]
Reduction = Literal["token", "sequence"]
REDUCTIONS: tuple[str, ...] = ("token", "sequence")
TokenDivergence = Callable[[Tensor, Tensor], Tensor]


# ---------------------------------------------------------------------------------------------
# Per-token divergences on [N, V] log-probabilities -> [N]
# ---------------------------------------------------------------------------------------------


def _kl(log_p: Tensor, log_q: Tensor) -> Tensor:
    """KL(p || q) per row with 0 * log 0 = 0.

    The difference is zeroed *before* multiplying by p so that neither the forward value nor
    the backward pass sees (-inf) * 0 where p has no mass.
    """
    p = log_p.exp()
    diff = torch.where(p > 0, log_p - log_q, torch.zeros_like(log_p))
    return (p * diff).sum(dim=-1)


def _forward_kl_tokens(log_s: Tensor, log_t: Tensor) -> Tensor:
    return _kl(log_t, log_s)


def _reverse_kl_tokens(log_s: Tensor, log_t: Tensor) -> Tensor:
    return _kl(log_s, log_t)


def akl_mix_weights(log_s: Tensor, log_t: Tensor, mu: float) -> tuple[Tensor, Tensor]:
    """AKL (Wu et al. 2024) mixing weights (w_fkl, w_rkl) per row, detached.

    The head is the smallest set of top teacher tokens whose teacher mass reaches ``mu``
    (a token is in the head iff the teacher mass strictly above it in the sort is < mu);
    the head gap weights forward KL, the tail gap weights reverse KL. The original code
    uses "cumulative mass <= mu, plus the top token", which differs only at the boundary.
    mu <= 0 gives an empty head (pure reverse KL); mu > 1 puts every token in the head
    (pure forward KL).
    """
    with torch.no_grad():
        p_t, order = log_t.exp().sort(dim=-1, descending=True)
        p_s = log_s.exp().gather(-1, order)
        mass_before = torch.cumsum(p_t, dim=-1) - p_t
        in_head = mass_before < mu
        gap = (p_t - p_s).abs()
        g_head = torch.where(in_head, gap, torch.zeros_like(gap)).sum(dim=-1)
        g_tail = torch.where(in_head, torch.zeros_like(gap), gap).sum(dim=-1)
        total = g_head + g_tail
        # Identical distributions: both divergences are 0, any convex mix works; avoid 0/0.
        safe = torch.where(total > 0, total, torch.ones_like(total))
        w_fkl = torch.where(total > 0, g_head / safe, torch.full_like(total, 0.5))
        return w_fkl, 1.0 - w_fkl


def _adaptive_kl_tokens(mu: float) -> TokenDivergence:
    def divergence(log_s: Tensor, log_t: Tensor) -> Tensor:
        w_fkl, w_rkl = akl_mix_weights(log_s, log_t, mu)
        return w_fkl * _kl(log_t, log_s) + w_rkl * _kl(log_s, log_t)

    return divergence


# ---------------------------------------------------------------------------------------------
# Weighted token mean, chunked
# ---------------------------------------------------------------------------------------------


def _compute_dtype(dtype: torch.dtype) -> torch.dtype:
    # bf16/fp16 logits are upcast so the softmax and the sums are accurate; fp64 stays fp64.
    return torch.promote_types(dtype, torch.float32)


def _chunk_weighted_sum(
    divergence: TokenDivergence,
    temperature: float,
    student_flat: Tensor,
    teacher_flat: Tensor,
    rows: Tensor,
    row_weights: Tensor,
) -> Tensor:
    # Rows are gathered inside the (checkpointed) function so autograd keeps only views of
    # the caller's logits and the index, not a copy of the selected rows.
    dtype = row_weights.dtype
    s = student_flat.index_select(0, rows).to(dtype) / temperature
    t = teacher_flat.index_select(0, rows).to(dtype) / temperature
    log_s = torch.log_softmax(s, dim=-1)
    log_t = torch.log_softmax(t, dim=-1)
    return (divergence(log_s, log_t) * row_weights).sum()


def _connected_zero(student_logits: Tensor, dtype: torch.dtype) -> Tensor:
    # where() routes a zero gradient to every logit, even -inf/NaN ones (0 * logit would not).
    picked = torch.where(
        torch.zeros((), dtype=torch.bool, device=student_logits.device),
        student_logits,
        torch.zeros((), dtype=student_logits.dtype, device=student_logits.device),
    )
    return picked.sum().to(dtype)


def _validate(
    student_logits: Tensor, teacher_logits: Tensor, mask: Tensor, weights: Tensor
) -> None:
    if student_logits.dim() != 3:
        raise ValueError(f"student_logits must be [B, T, V], got {tuple(student_logits.shape)}")
    if teacher_logits.shape != student_logits.shape:
        raise ValueError(
            f"teacher logits {tuple(teacher_logits.shape)} != student logits "
            f"{tuple(student_logits.shape)}; slice both to a common vocabulary first"
        )
    if mask.shape != student_logits.shape[:2]:
        raise ValueError(f"mask must be [B, T], got {tuple(mask.shape)}")
    if weights.shape != student_logits.shape[:1]:
        raise ValueError(f"loss_weights must be [B], got {tuple(weights.shape)}")


def _token_weights(mask: Tensor, weights: Tensor, reduction: str) -> Tensor:
    """Per-token factor w_b * m_bt (token) or w_b * m_bt / sum_t m_bt (sequence), [B, T]."""
    factors = mask * weights[:, None]
    if reduction == "sequence":
        lengths = mask.sum(dim=1, keepdim=True)
        factors = factors / torch.where(lengths > 0, lengths, torch.ones_like(lengths))
    return factors


def default_normalizer(mask: Tensor, reduction: str) -> float:
    """N when the batch is exactly these rows: response tokens (token) or problems (sequence)."""
    if reduction == "sequence":
        return float(mask.shape[0])
    return float(mask.sum())


def weighted_divergence(
    divergence: TokenDivergence,
    student_logits: Tensor,
    teacher_logits: Tensor,
    mask: Tensor,
    loss_weights: Tensor,
    *,
    reduction: Reduction = "token",
    normalizer: float | None = None,
    temperature: float = 1.0,
    chunk_size: int = 1024,
) -> Tensor:
    """sum over tokens of (w_b m_bt [/ len_b]) D_bt, divided by the normaliser (module doc)."""
    _validate(student_logits, teacher_logits, mask, loss_weights)
    if temperature <= 0:
        raise ValueError("temperature must be > 0")
    if chunk_size < 1:
        raise ValueError("chunk_size must be >= 1")
    if reduction not in REDUCTIONS:
        raise ValueError(f"reduction must be one of {REDUCTIONS}, got {reduction!r}")
    dtype = _compute_dtype(student_logits.dtype)
    device = student_logits.device
    weights = loss_weights.detach().to(device=device, dtype=dtype)
    if bool((weights < 0).any()) or not bool(torch.isfinite(weights).all()):
        raise ValueError("loss_weights must be finite and >= 0")
    mask = mask.to(device=device, dtype=dtype)
    if normalizer is None:
        normalizer = default_normalizer(mask, reduction)
    if not (normalizer > 0 and normalizer < float("inf")):
        # An empty batch (nothing to normalise by) contributes nothing.
        return _connected_zero(student_logits, dtype)

    vocab = student_logits.shape[-1]
    token_weights = _token_weights(mask, weights, reduction).reshape(-1)
    rows = torch.nonzero(token_weights, as_tuple=True)[0]
    if rows.numel() == 0:
        return _connected_zero(student_logits, dtype)

    student_flat = student_logits.reshape(-1, vocab)
    teacher_flat = teacher_logits.detach().reshape(-1, vocab)
    use_checkpoint = torch.is_grad_enabled() and student_logits.requires_grad
    total = torch.zeros((), dtype=dtype, device=device)
    for start in range(0, rows.numel(), chunk_size):
        chunk_rows = rows[start : start + chunk_size]
        args = (student_flat, teacher_flat, chunk_rows, token_weights[chunk_rows])
        if use_checkpoint:
            part = checkpoint(
                _chunk_weighted_sum, divergence, temperature, *args, use_reentrant=False
            )
        else:
            part = _chunk_weighted_sum(divergence, temperature, *args)
        total = total + part
    return total / normalizer


# Each kind's per-token divergence, given AKL's mu (the KLs ignore it).
DIVERGENCES: dict[str, Callable[[float], TokenDivergence]] = {
    "fkl": lambda mu: _forward_kl_tokens,  # KL(teacher || student): on teacher responses
    "rkl": lambda mu: _reverse_kl_tokens,  # KL(student || teacher): on student samples
    "akl": _adaptive_kl_tokens,  # w_fkl * FKL + w_rkl * RKL, detached head/tail-gap weights
}


def distillation_loss(
    kind: LossKind,
    student_logits: Tensor,
    teacher_logits: Tensor,
    mask: Tensor,
    loss_weights: Tensor,
    *,
    mu: float = 0.5,
    reduction: Reduction = "token",
    normalizer: float | None = None,
    temperature: float = 1.0,
    chunk_size: int = 1024,
) -> Tensor:
    """The weighted loss of ``kind``: "fkl" forward KL, "rkl" reverse KL, "akl" adaptive KL."""
    if kind not in DIVERGENCES:
        raise ValueError(f"unknown distillation loss kind {kind!r}; expected 'fkl', 'rkl' or 'akl'")
    return weighted_divergence(
        DIVERGENCES[kind](mu),
        student_logits,
        teacher_logits,
        mask,
        loss_weights,
        reduction=reduction,
        normalizer=normalizer,
        temperature=temperature,
        chunk_size=chunk_size,
    )


# The kinds by name: forward_kl(student_logits, teacher_logits, mask, loss_weights, ...).
forward_kl = partial(distillation_loss, "fkl")
reverse_kl = partial(distillation_loss, "rkl")
adaptive_kl = partial(distillation_loss, "akl")


@dataclass(frozen=True)
class TwoStageSchedule:
    """Forward KL for the first ``switch_step`` steps (default half of total), then reverse KL.

    The paper's strongest setting: forward KL on teacher responses first, then reverse KL on
    the student's own samples.
    """

    total_steps: int
    switch_step: int | None = None

    def __post_init__(self) -> None:
        if self.total_steps < 0:
            raise ValueError("total_steps must be >= 0")
        if self.switch_step is not None and self.switch_step < 0:
            raise ValueError("switch_step must be >= 0")

    @property
    def effective_switch_step(self) -> int:
        return self.total_steps // 2 if self.switch_step is None else self.switch_step

    def kind_at(self, step: int) -> Literal["fkl", "rkl"]:
        return "fkl" if step < self.effective_switch_step else "rkl"
