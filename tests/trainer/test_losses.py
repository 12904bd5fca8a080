"""Weighted distillation losses against a plain, unchunked reference written here."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")

from trainer_client.trainer.losses import (  # noqa: E402
    TwoStageSchedule,
    adaptive_kl,
    akl_mix_weights,
    distillation_loss,
    forward_kl,
    reverse_kl,
)

KINDS = ["fkl", "rkl", "akl"]


@pytest.fixture(autouse=True, scope="module")
def single_torch_thread():
    # Tiny tensors: a second intra-op thread only adds synchronisation, and on a busy 2-core
    # CI machine OpenMP spin-waiting made these tests ~30x slower. Restored afterwards.
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


# --- reference: dense [B, T, V] formulas, no chunking, no row selection ----------------------


def ref_token_divergence(kind, s_logits, t_logits, temperature=1.0, mu=0.5):
    log_s = torch.log_softmax(s_logits.double() / temperature, dim=-1)
    log_t = torch.log_softmax(t_logits.double().detach() / temperature, dim=-1)
    p_s, p_t = log_s.exp(), log_t.exp()
    fkl = (p_t * (log_t - log_s)).sum(-1)
    rkl = (p_s * (log_s - log_t)).sum(-1)
    if kind == "fkl":
        return fkl
    if kind == "rkl":
        return rkl
    # AKL written the obvious way: loop-free but via a sort on the teacher.
    with torch.no_grad():
        sorted_t, order = p_t.sort(-1, descending=True)
        sorted_s = p_s.gather(-1, order)
        head = (sorted_t.cumsum(-1) - sorted_t) < mu
        gap = (sorted_t - sorted_s).abs()
        g_head = (gap * head).sum(-1)
        g_tail = (gap * ~head).sum(-1)
        w_fkl = g_head / (g_head + g_tail)
    return w_fkl * fkl + (1 - w_fkl) * rkl


def ref_loss(kind, s_logits, t_logits, mask, weights, temperature=1.0, mu=0.5, reduction="token"):
    """The paper's sum_b w_b L_b / N with N independent of the weights (module doc)."""
    d = ref_token_divergence(kind, s_logits, t_logits, temperature, mu)
    m, w = mask.double(), weights.double()
    if reduction == "token":
        return (w[:, None] * m * d).sum() / m.sum()
    per_problem = (m * d).sum(1) / m.sum(1).clamp(min=1)
    return (w * per_problem).sum() / len(w)


def call(kind, *args, **kwargs):
    return distillation_loss(kind, *args, **kwargs)


def random_case(gen, b, t, v, scale=3.0, dtype=torch.float32):
    s = (torch.randn(b, t, v, generator=gen) * scale).to(dtype).requires_grad_(True)
    te = (torch.randn(b, t, v, generator=gen) * scale).to(dtype)
    mask = torch.rand(b, t, generator=gen) < 0.7
    mask[0, 0] = True  # at least one counted token
    weights = torch.rand(b, generator=gen) + 0.05
    return s, te, mask, weights


# --- agreement with the reference -------------------------------------------------------------


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("reduction", ["token", "sequence"])
def test_matches_reference_value_and_grad_for_all_chunk_sizes(kind, seed, reduction):
    gen = torch.Generator().manual_seed(seed)
    b, t, v = (int(x) for x in torch.randint(1, 7, (3,), generator=gen))
    v = v * 5
    s, te, mask, w = random_case(gen, b, t, v)
    temperature = float(torch.empty(()).uniform_(0.5, 2.0, generator=gen))

    expected = ref_loss(kind, s, te, mask, w, temperature, reduction=reduction)
    (expected_grad,) = torch.autograd.grad(expected, s)
    for chunk in (1, 2, 3, 7, 1024):
        got = call(
            kind, s, te, mask, w, temperature=temperature, chunk_size=chunk, reduction=reduction
        )
        (grad,) = torch.autograd.grad(got, s)
        torch.testing.assert_close(got.double(), expected, rtol=1e-5, atol=1e-6)
        torch.testing.assert_close(grad, expected_grad, rtol=1e-4, atol=1e-6)


# AKL is excluded on purpose: its mix weights are detached, so its autograd gradient is
# deliberately not the finite-difference gradient (the reference test above covers it).
@pytest.mark.parametrize("kind", ["fkl", "rkl"])
def test_gradcheck_tiny_double(kind):
    gen = torch.Generator().manual_seed(11)
    s, te, mask, w = random_case(gen, 2, 3, 5, scale=1.0, dtype=torch.float64)
    s = s.detach().requires_grad_(True)

    def fn(x):
        return call(kind, x, te, mask, w, chunk_size=2)

    assert torch.autograd.gradcheck(fn, (s,), eps=1e-6, atol=1e-5)


@pytest.mark.parametrize("kind", KINDS)
def test_no_grad_path_equals_grad_path(kind):
    gen = torch.Generator().manual_seed(3)
    s, te, mask, w = random_case(gen, 3, 4, 9)
    with_grad = call(kind, s, te, mask, w, chunk_size=2)
    with torch.no_grad():
        without = call(kind, s, te, mask, w, chunk_size=2)
    assert without.grad_fn is None
    torch.testing.assert_close(with_grad.detach(), without)


def test_bfloat16_logits_are_upcast_and_close_to_fp32():
    gen = torch.Generator().manual_seed(5)
    s, te, mask, w = random_case(gen, 2, 5, 64)
    exact = forward_kl(s, te, mask, w)
    low = forward_kl(s.detach().bfloat16().requires_grad_(True), te.bfloat16(), mask, w)
    assert low.dtype == torch.float32
    torch.testing.assert_close(low, exact.detach(), rtol=5e-2, atol=5e-2)


# --- weighting semantics ----------------------------------------------------------------------


@pytest.mark.parametrize("kind", KINDS)
def test_zero_weight_batch_is_zero_with_finite_grads(kind):
    gen = torch.Generator().manual_seed(1)
    s, te, mask, _ = random_case(gen, 3, 4, 6)
    loss = call(kind, s, te, mask, torch.zeros(3))
    assert loss.item() == 0.0
    loss.backward()
    assert s.grad is not None and torch.isfinite(s.grad).all() and (s.grad == 0).all()


@pytest.mark.parametrize("kind", KINDS)
def test_empty_mask_and_nonfinite_logits_still_give_clean_zero(kind):
    s = torch.full((2, 3, 4), float("-inf"), requires_grad=True)
    te = torch.randn(2, 3, 4)
    loss = call(kind, s, te, torch.zeros(2, 3), torch.ones(2))
    loss.backward()
    assert loss.item() == 0.0 and torch.isfinite(s.grad).all()


@pytest.mark.parametrize("kind", KINDS)
def test_identical_logits_give_zero(kind):
    gen = torch.Generator().manual_seed(2)
    s, _, mask, w = random_case(gen, 3, 5, 8)
    loss = call(kind, s, s.detach().clone(), mask, w)
    assert abs(loss.item()) < 1e-6
    (grad,) = torch.autograd.grad(loss, s)
    assert grad.abs().max() < 1e-6


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("reduction", ["token", "sequence"])
def test_zero_weight_problem_equals_dropping_it_with_the_batch_normaliser(kind, reduction):
    # What the trainer does: skip the forward pass of a zero-weight item, but keep it in N.
    gen = torch.Generator().manual_seed(4)
    s, te, mask, w = random_case(gen, 4, 5, 7)
    w = w.clone()
    w[2] = 0.0
    keep = torch.tensor([0, 1, 3])
    full = call(kind, s, te, mask, w, reduction=reduction)
    n = float(mask.sum()) if reduction == "token" else 4.0
    dropped = call(kind, s[keep], te[keep], mask[keep], w[keep], reduction=reduction, normalizer=n)
    torch.testing.assert_close(full, dropped)
    (grad,) = torch.autograd.grad(full, s)
    assert (grad[2] == 0).all()


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("reduction", ["token", "sequence"])
def test_weight_scale_scales_the_loss_and_masked_tokens_are_ignored(kind, reduction):
    # The normaliser does not depend on the weights, so they are not cancelled (issue 11).
    gen = torch.Generator().manual_seed(6)
    s, te, mask, w = random_case(gen, 3, 4, 6)
    base = call(kind, s, te, mask, w, reduction=reduction)
    scaled = call(kind, s, te, mask, w * 0.25, reduction=reduction)
    torch.testing.assert_close(scaled, 0.25 * base)
    # Garbage (even NaN) in masked-out positions must not leak into the loss.
    s_dirty = s.detach().clone()
    s_dirty[~mask] = float("nan")
    torch.testing.assert_close(call(kind, s_dirty, te, mask, w, reduction=reduction), base.detach())


def test_weights_change_the_mix_between_problems():
    # Two single-token problems with different divergences: the loss is their weighted mean.
    gen = torch.Generator().manual_seed(8)
    s, te, _, _ = random_case(gen, 2, 1, 5)
    mask = torch.ones(2, 1)
    d0 = forward_kl(s[:1], te[:1], mask[:1], torch.ones(1))
    d1 = forward_kl(s[1:], te[1:], mask[1:], torch.ones(1))
    mixed = forward_kl(s, te, mask, torch.tensor([0.25, 0.75]))
    torch.testing.assert_close(mixed, (0.25 * d0 + 0.75 * d1) / 2)


def test_sequence_reduction_gives_every_problem_the_same_say_whatever_its_length():
    gen = torch.Generator().manual_seed(9)
    s, te, _, _ = random_case(gen, 2, 6, 5)
    mask = torch.zeros(2, 6)
    mask[0, :1] = 1  # a one-token response
    mask[1, :6] = 1  # a six-token response
    w = torch.ones(2)
    d_short = forward_kl(s[:1], te[:1], mask[:1], torch.ones(1), reduction="sequence")
    d_long = forward_kl(s[1:], te[1:], mask[1:], torch.ones(1), reduction="sequence")
    both = forward_kl(s, te, mask, w, reduction="sequence")
    torch.testing.assert_close(both, (d_short + d_long) / 2)
    # The token mean weights the long response six times as much.
    by_token = forward_kl(s, te, mask, w)
    torch.testing.assert_close(by_token, (d_short + 6 * d_long) / 7)


# --- numerical edge cases ---------------------------------------------------------------------


def test_minus_inf_logits_where_both_have_no_mass_are_finite():
    s = torch.randn(1, 2, 5)
    te = torch.randn(1, 2, 5)
    s[..., -1] = float("-inf")
    te[..., -1] = float("-inf")
    s.requires_grad_(True)
    mask, w = torch.ones(1, 2), torch.ones(1)
    for kind in KINDS:
        loss = call(kind, s, te, mask, w)
        (grad,) = torch.autograd.grad(loss, s)
        assert torch.isfinite(loss) and torch.isfinite(grad).all()
        finite_ref = ref_loss(kind, s[..., :-1], te[..., :-1], mask, w)
        torch.testing.assert_close(loss.double(), finite_ref)


def test_one_sided_minus_inf_handled_by_the_direction_that_allows_it():
    # Teacher has no mass on a token the student can emit: forward KL is finite (0 log 0),
    # and a student with no mass on a token is fine for reverse KL.
    s = torch.randn(1, 3, 6)
    te = torch.randn(1, 3, 6)
    te[..., 0] = float("-inf")
    s_rkl = torch.randn(1, 3, 6)
    s_rkl[..., 0] = float("-inf")
    mask, w = torch.ones(1, 3), torch.ones(1)
    s.requires_grad_(True)
    s_rkl.requires_grad_(True)
    fkl = forward_kl(s, te, mask, w)
    rkl = reverse_kl(s_rkl, torch.randn(1, 3, 6), mask, w)
    (g1,) = torch.autograd.grad(fkl, s)
    (g2,) = torch.autograd.grad(rkl, s_rkl)
    assert torch.isfinite(fkl) and torch.isfinite(rkl)
    assert torch.isfinite(g1).all() and torch.isfinite(g2).all()


def test_very_large_logits_are_stable():
    gen = torch.Generator().manual_seed(9)
    s, te, mask, w = random_case(gen, 2, 3, 10)
    big_s = (s.detach() * 1e4).requires_grad_(True)
    for kind in KINDS:
        loss = call(kind, big_s, te * 1e4, mask, w)
        (grad,) = torch.autograd.grad(loss, big_s)
        assert torch.isfinite(loss) and loss >= 0 and torch.isfinite(grad).all()


# --- AKL limits -------------------------------------------------------------------------------


@pytest.mark.parametrize("seed", range(3))
def test_akl_reduces_to_rkl_and_fkl_at_the_mu_limits(seed):
    gen = torch.Generator().manual_seed(seed)
    s, te, mask, w = random_case(gen, 3, 4, 8)
    # mu <= 0: empty head, all weight on the tail gap -> reverse KL.
    torch.testing.assert_close(adaptive_kl(s, te, mask, w, mu=0.0), reverse_kl(s, te, mask, w))
    # mu > 1: every token in the head -> forward KL.
    torch.testing.assert_close(adaptive_kl(s, te, mask, w, mu=1.5), forward_kl(s, te, mask, w))


def test_akl_weights_on_a_hand_built_token():
    # Teacher [0.6, 0.3, 0.1], mu=0.5: head = {top token}. Student [0.2, 0.4, 0.4]:
    # head gap 0.4, tail gap 0.1 + 0.3 = 0.4 -> 0.5 / 0.5.
    log_t = torch.tensor([[0.6, 0.3, 0.1]]).log()
    log_s = torch.tensor([[0.2, 0.4, 0.4]]).log()
    w_fkl, w_rkl = akl_mix_weights(log_s, log_t, 0.5)
    torch.testing.assert_close(w_fkl, torch.tensor([0.5]))
    # Student matches the head exactly -> only the tail gap -> pure reverse KL.
    log_s2 = torch.tensor([[0.6, 0.1, 0.3]]).log()
    w_fkl2, w_rkl2 = akl_mix_weights(log_s2, log_t, 0.5)
    torch.testing.assert_close((w_fkl2, w_rkl2), (torch.tensor([0.0]), torch.tensor([1.0])))
    # mu=0.7 needs two tokens (0.6 < 0.7): head gap 0 + 0.2, tail gap 0.2 -> 0.5.
    w_fkl3, _ = akl_mix_weights(log_s2, log_t, 0.7)
    torch.testing.assert_close(w_fkl3, torch.tensor([0.5]))


def test_akl_mix_weights_do_not_carry_gradient():
    gen = torch.Generator().manual_seed(12)
    s, te, mask, w = random_case(gen, 2, 3, 6)
    w_fkl, w_rkl = akl_mix_weights(torch.log_softmax(s, -1), torch.log_softmax(te, -1), 0.5)
    assert not w_fkl.requires_grad and not w_rkl.requires_grad
    assert torch.all((w_fkl >= 0) & (w_fkl <= 1))
    torch.testing.assert_close(w_fkl + w_rkl, torch.ones_like(w_fkl))


# --- validation and schedule ------------------------------------------------------------------


def test_bad_inputs_raise():
    s = torch.randn(2, 3, 4)
    with pytest.raises(ValueError, match="teacher"):
        forward_kl(s, torch.randn(2, 3, 5), torch.ones(2, 3), torch.ones(2))
    with pytest.raises(ValueError, match="mask"):
        forward_kl(s, s, torch.ones(3, 2), torch.ones(2))
    with pytest.raises(ValueError, match="loss_weights"):
        forward_kl(s, s, torch.ones(2, 3), torch.tensor([1.0, -1.0]))
    with pytest.raises(ValueError, match="kind"):
        distillation_loss("jsd", s, s, torch.ones(2, 3), torch.ones(2))


def test_two_stage_schedule_switches_at_half_by_default():
    sched = TwoStageSchedule(total_steps=10)
    assert [sched.kind_at(i) for i in range(10)] == ["fkl"] * 5 + ["rkl"] * 5
    custom = TwoStageSchedule(total_steps=10, switch_step=3)
    assert custom.kind_at(2) == "fkl" and custom.kind_at(3) == "rkl"
    assert TwoStageSchedule(total_steps=10, switch_step=0).kind_at(0) == "rkl"
    with pytest.raises(ValueError):
        TwoStageSchedule(total_steps=-1)


def test_chunking_keeps_autograd_memory_below_one_logits_copy():
    # Count bytes autograd saves for backward, other than the caller's own logits storages.
    # Unchunked/uncheckpointed code would save several [N, V] softmax intermediates.
    gen = torch.Generator().manual_seed(13)
    s, te, _, w = random_case(gen, 4, 64, 1000)
    mask = torch.ones(4, 64)
    own = {s.untyped_storage().data_ptr(), te.untyped_storage().data_ptr()}
    saved: dict[int, int] = {}

    def pack(t):
        ptr = t.untyped_storage().data_ptr()
        if ptr not in own:
            saved[ptr] = t.untyped_storage().nbytes()
        return t

    for kind in KINDS:
        saved.clear()
        with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
            loss = call(kind, s, te, mask, w, chunk_size=16)
        loss.backward()
        logits_bytes = s.numel() * s.element_size()
        assert sum(saved.values()) < logits_bytes // 4, (kind, saved, logits_bytes)
