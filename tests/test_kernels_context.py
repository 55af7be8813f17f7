"""Fused context path (k gathered columns instead of K-wide matmuls) against the concat reference."""
import pytest
import torch

from s2d_kernels.context import context_terms, context_terms_reference, topk_select, topk_vector_reference
from s2d_kernels.testing import assert_close_scaled


def _weights(K, F, M, E, stages, g):
    fc_w = (torch.randn(M, K + F, generator=g) / 8).requires_grad_()
    fc_b = torch.randn(M, generator=g).requires_grad_()
    st = [(torch.randn(C, C + M, 1, 1, 1, generator=g) / 8).requires_grad_() for C in stages]
    cls_w = (torch.randn(K, E + M + K, generator=g) / 8).requires_grad_()
    cls_b = torch.randn(K, generator=g).requires_grad_()
    return fc_w, fc_b, st, cls_w, cls_b


@pytest.mark.parametrize("scheme", ["hard", "soft"])
@pytest.mark.parametrize("B,K,F,M,E,k", [(1, 5, 3, 4, 6, 5), (3, 174, 40, 32, 24, 5), (4, 17, 9, 8, 5, 1)])
def test_context_terms_match_reference(scheme, B, K, F, M, E, k):
    g = torch.Generator().manual_seed(K)
    logits = torch.randn(B, K, generator=g).requires_grad_()
    feats = torch.randn(B, F, generator=g).requires_grad_()
    fc_w, fc_b, st, cls_w, cls_b = _weights(K, F, M, E, (7, 12), g)
    args = (logits, feats, k, fc_w, fc_b, st, cls_w, cls_b)
    got = context_terms(*args, scheme=scheme)
    want = context_terms_reference(*args, scheme=scheme)
    assert torch.equal(got.topk, want.topk)
    outs_a = [got.s, got.m, *got.stage_bias, got.classifier_bias]
    outs_b = [want.s, want.m, *want.stage_bias, want.classifier_bias]
    for a, b in zip(outs_a, outs_b):
        assert_close_scaled(a, b, 1e-5)
    leaves = [logits, feats, fc_w, fc_b, *st, cls_w, cls_b]
    ups = [torch.randn(o.shape, generator=g) for o in outs_b[1:]]
    ga = torch.autograd.grad(outs_a[1:], leaves, ups, allow_unused=True)
    gb = torch.autograd.grad(outs_b[1:], leaves, ups, allow_unused=True)
    for a, b in zip(ga, gb):
        if b is None or float(b.abs().max()) == 0.0:
            assert a is None or float(a.abs().max()) == 0.0
        else:
            assert_close_scaled(a, b, 1e-5)


def test_ties_resolve_like_the_reference_sort():
    logits = torch.tensor([[1.0, 3.0, 3.0, 0.5, 3.0, 2.0], [0.0, 0.0, 0.0, 0.0, 0.0, 0.0]])
    idx, vals = topk_select(logits, 3, "soft")
    ridx, s = topk_vector_reference(logits, 3, "soft")
    assert torch.equal(idx, ridx)
    assert_close_scaled(torch.zeros_like(s).scatter(1, idx, vals), s, 1e-6)


def test_optional_parts_and_validation():
    g = torch.Generator().manual_seed(0)
    logits, feats = torch.randn(2, 6, generator=g), torch.randn(2, 3, generator=g)
    fc_w, fc_b = torch.randn(4, 9, generator=g), None
    out = context_terms(logits, feats, 2, fc_w, fc_b)
    ref = context_terms_reference(logits, feats, 2, fc_w, fc_b)
    assert out.stage_bias == [] and out.classifier_bias is None
    assert_close_scaled(out.m, ref.m, 1e-6)
    with pytest.raises(ValueError, match="does not take"):
        context_terms(logits, feats, 2, torch.randn(4, 8), None)
    with pytest.raises(ValueError, match="k must lie"):
        topk_select(logits, 7)
    with pytest.raises(ValueError, match="scheme"):
        topk_select(logits, 2, "gumbel")
