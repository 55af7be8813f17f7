"""Fused context path (k gathered columns instead of K-wide matmuls) against the concat reference."""
import pytest
import torch

from s2d_kernels.context import context_classifier, synopsis_context, topk_select, topk_vector
from s2d_kernels.testing import assert_close_scaled


@pytest.mark.parametrize("scheme", ["hard", "soft"])
@pytest.mark.parametrize("B,K,F,M,E,k,T", [(1, 5, 3, 4, 6, 5, 1), (3, 174, 40, 32, 24, 5, 4), (4, 17, 9, 8, 5, 1, 3)])
def test_gathered_context_matches_reference(scheme, B, K, F, M, E, k, T):
    """s, m and the classifier logits (and all their gradients) of the gathered path equal the
    official concatenations."""
    g = torch.Generator().manual_seed(K)
    logits = torch.randn(B, K, generator=g).requires_grad_()
    pooled = torch.randn(B, F, generator=g).requires_grad_()
    feats = torch.randn(B, T, E, generator=g).requires_grad_()
    fc_w = (torch.randn(M, K + F, generator=g) / 8).requires_grad_()
    fc_b = torch.randn(M, generator=g).requires_grad_()
    cls_w = (torch.randn(K, E + M + K, generator=g) / 8).requires_grad_()
    cls_b = torch.randn(K, generator=g).requires_grad_()
    outs = {}
    for backend in ("torch", "reference"):
        idx, s, m = synopsis_context(logits, pooled, k, fc_w, fc_b, scheme=scheme, backend=backend)
        y = context_classifier(feats, m, s, idx, cls_w, cls_b, backend=backend)
        outs[backend] = (idx, s, m, y)
    (idx_a, *got), (idx_b, *want) = outs["torch"], outs["reference"]
    assert torch.equal(idx_a, idx_b)
    for a, b in zip(got, want):
        assert_close_scaled(a, b, 1e-5)
    leaves = [logits, pooled, feats, fc_w, fc_b, cls_w, cls_b]
    ups = [torch.randn(o.shape, generator=g) for o in want[1:]]
    ga = torch.autograd.grad(got[1:], leaves, ups, allow_unused=True)
    gb = torch.autograd.grad(want[1:], leaves, ups, allow_unused=True)
    for a, b in zip(ga, gb):
        if b is None or float(b.abs().max()) == 0.0:
            assert a is None or float(a.abs().max()) == 0.0
        else:
            assert_close_scaled(a, b, 1e-5)


def test_ties_resolve_like_the_reference_sort():
    logits = torch.tensor([[1.0, 3.0, 3.0, 0.5, 3.0, 2.0], [0.0, 0.0, 0.0, 0.0, 0.0, 0.0]])
    idx, vals = topk_select(logits, 3, "soft")
    ridx, s = topk_vector(logits, 3, "soft")
    assert torch.equal(idx, ridx)
    assert_close_scaled(torch.zeros_like(s).scatter(1, idx, vals), s, 1e-6)


def test_validation_names_the_argument():
    g = torch.Generator().manual_seed(0)
    logits, feats = torch.randn(2, 6, generator=g), torch.randn(2, 3, generator=g)
    fc_w = torch.randn(4, 9, generator=g)
    idx, s, m = synopsis_context(logits, feats, 2, fc_w, None)
    ref = synopsis_context(logits, feats, 2, fc_w, None, backend="reference")
    assert_close_scaled(m, ref[2], 1e-6)
    with pytest.raises(ValueError, match="does not take"):
        synopsis_context(logits, feats, 2, torch.randn(4, 8), None)
    with pytest.raises(ValueError, match="classifier weight"):
        context_classifier(torch.randn(2, 1, 5), m, s, idx, torch.randn(6, 5 + 4), None)
    with pytest.raises(ValueError, match="k must lie"):
        topk_select(logits, 7)
    with pytest.raises(ValueError, match="scheme"):
        topk_select(logits, 2, "gumbel")
    with pytest.raises(ValueError, match="unknown backend"):
        synopsis_context(logits, feats, 2, fc_w, None, backend="cuda")
