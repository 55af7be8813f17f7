"""Whole-model `torch.compile`: every model traces as one graph (no graph breaks), one compile serves
every batch size of 2 or more, and the compiled logits equal eager ones.

Tolerance: logits agree within 1e-5 of the largest |logit|. A graph computes the same float32
operations as eager, but compilers may reorder sums (fused or re-tiled reductions over 1e3–1e4
terms), which moves results by about 1e-7 relative per rounding and up to ~1e-6 after the
backbones; anything wrong in the graph (a dropped shift, a wrong index, stale folded weights) is
off by orders of magnitude more.
"""
import pytest
import torch
from torch._dynamo.testing import CompileCounter

import s2d
from s2d.inference.optimize import optimize_for_inference

RTOL = 1e-5

#: The cheapest variant of each family but the one `optimize_for_inference` is tested on below
#: (`s2dnet-x3d-synth`, X3D-tiny nets): S2DNet with TSM nets (MobileNetV2 synopsis, ResNet-50 detail,
#: context fusion), and the TSM and X3D baselines (the X3D one on X3D-tiny: the modules of X3D-M, fewer of them).
FAMILIES = {"s2dnet-tsm-sthv2": {}, "tsm-r50": {}, "x3d-m": {"arch": "x3d_tiny"}}


@pytest.fixture(autouse=True)
def _fresh_dynamo():
    """Each test compiles from scratch (no cache entries of another test's model count as recompiles)."""
    torch._dynamo.reset()
    yield
    torch._dynamo.reset()


def tiny_model(name: str, tiny_overrides, **extra) -> torch.nn.Module:
    torch.manual_seed(0)
    return s2d.create(name, **tiny_overrides(name), **extra).eval()


def clips(model: torch.nn.Module, batch: int, seed: int = 2) -> tuple[torch.Tensor, torch.Tensor]:
    """A uint8 dense clip batch of the model's config with mixed valid lengths."""
    c = model.config
    gen = torch.Generator().manual_seed(seed)
    frames = torch.randint(0, 256, (batch, c.dense_frames, 3, c.dense_size, c.dense_size), generator=gen,
                           dtype=torch.uint8)
    num_frames = torch.randint(1, c.dense_frames + 1, (batch,), generator=gen)
    num_frames[0] = c.dense_frames
    return frames, num_frames


def assert_same_outputs(compiled, eager) -> None:
    """Logits within `RTOL` of the largest |logit|; for S2DNet the synopsis logits too, the same
    top-k classes and the same sampling windows."""
    for name in ("logits", "snet_logits"):
        if hasattr(eager, name):
            a, b = getattr(compiled, name), getattr(eager, name)
            assert float((a - b).abs().max()) <= RTOL * float(b.abs().max()), name
    if hasattr(eager, "topk"):
        assert torch.equal(compiled.topk, eager.topk)
        torch.testing.assert_close(compiled.params.centre_x, eager.params.centre_x, rtol=RTOL, atol=1e-4)


@pytest.mark.parametrize("name", FAMILIES)
def test_whole_model_compiles_as_one_graph_with_eager_logits(name, tiny_overrides):
    model = tiny_model(name, tiny_overrides, **FAMILIES[name])
    counter = CompileCounter()  # a backend that counts the graphs it is given and runs them as they are
    compiled = torch.compile(model, fullgraph=True, backend=counter)  # a graph break raises
    frames, num_frames = clips(model, 2)
    with torch.inference_mode():
        assert_same_outputs(compiled(frames, num_frames), model(frames, num_frames))
    assert counter.frame_count == 1 and counter.op_count > 0


def test_optimize_for_inference_compiles_the_whole_model_once_for_all_batch_sizes(tiny_overrides):
    model = tiny_model("s2dnet-x3d-synth", tiny_overrides)
    counter = CompileCounter()
    fast = optimize_for_inference(model, compile=counter)
    assert isinstance(fast, type(model)) and fast.inference_only
    with torch.inference_mode():
        for batch in (2, 3):
            frames, num_frames = clips(model, batch)
            assert_same_outputs(fast(frames, num_frames), model(frames, num_frames))
    assert counter.frame_count == 1  # one graph (no break), and batch 3 reuses it


@pytest.mark.parametrize("value", ["", " ", 1, None])
def test_optimize_for_inference_refuses_a_bad_compile_value(value, tiny_overrides):
    with pytest.raises(TypeError, match="compile must be True, False or a torch.compile backend"):
        optimize_for_inference(tiny_model("x3d-m", tiny_overrides, arch="x3d_tiny"), compile=value)


@pytest.mark.slow
@pytest.mark.parametrize("name", s2d.list_models())
def test_every_registered_model_traces_as_one_graph(name, tiny_overrides):
    model = tiny_model(name, tiny_overrides)
    frames, num_frames = clips(model, 2)
    with torch.inference_mode():
        explained = torch._dynamo.explain(model)(frames, num_frames)
    assert explained.graph_break_count == 0, [b.reason for b in explained.break_reasons]
    assert explained.graph_count == 1


@pytest.mark.slow
def test_inductor_compiled_synth_model_keeps_the_logits():
    """The full-size `s2dnet-x3d-synth` compiled by Inductor after `optimize_for_inference`, against the
    plain eager model (about 4 minutes of compiling on a 2-core CPU, batch 2 then batch 1; ~30 s once
    Inductor's on-disk cache holds the kernels)."""
    torch.manual_seed(0)
    model = s2d.create("s2dnet-x3d-synth").eval()
    fast = optimize_for_inference(model, compile=True)
    with torch.inference_mode():
        for batch in (2, 3, 1):
            frames, num_frames = clips(model, batch)
            assert_same_outputs(fast(frames, num_frames), model(frames, num_frames))
