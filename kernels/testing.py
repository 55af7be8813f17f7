"""Helpers for checking kernels against their references (used by the tests and the bench).

Tolerances are relative to the output scale (the largest |reference| value), because that is what
fp32 accumulation guarantees for sums of non-negative filter weights times data: elementwise
relative checks would demand precision that no order of summation has near zero crossings.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from s2d_kernels.sampler import filterbank_sample, normalize_frames
from s2d_kernels.sampler.params import RawSampling
from s2d_kernels.sampler.reference import filterbank_sample_dense, filterbanks

__all__ = ["SamplerCase", "assert_as_accurate", "assert_close_scaled", "check_sampler_backend", "dense_float64",
           "make_case", "sampler_inputs", "scaled_error"]


def scaled_error(actual: torch.Tensor, expected: torch.Tensor) -> float:
    """max |actual - expected| / max |expected| (0 when both vanish)."""
    actual, expected = actual.detach().double(), expected.detach().double()
    if actual.shape != expected.shape:
        raise AssertionError(f"shape mismatch: {tuple(actual.shape)} vs {tuple(expected.shape)}")
    if actual.numel() == 0:
        return 0.0
    nan_a, nan_e = torch.isnan(actual), torch.isnan(expected)
    if not torch.equal(nan_a, nan_e):
        return float("inf")
    a, e = actual[~nan_a], expected[~nan_e]
    if a.numel() == 0:
        return 0.0
    err = float((a - e).abs().max())
    scale = float(e.abs().max())
    if scale == 0.0:
        return 0.0 if err == 0.0 else float("inf")
    return err / scale


def assert_close_scaled(actual: torch.Tensor, expected: torch.Tensor, tol: float = 1e-5, name: str = "",
                        atol: float = 0.0) -> None:
    """Raise with a readable message unless `max|Δ| <= tol · max|expected| + atol`.

    `atol` is for quantities that vanish by cancellation (e.g. the gradient of a normalised row
    w.r.t. its centre when the row is a single pixel): both sides are then rounding noise of the
    size of the terms that cancelled, not of the result.
    """
    err = scaled_error(actual, expected)
    same_nans = torch.equal(torch.isnan(actual.detach()), torch.isnan(expected.detach()))
    if not err <= tol and atol > 0 and same_nans:  # atol never excuses a NaN on one side only
        abs_err = float((actual.detach().double() - expected.detach().double()).abs().nan_to_num(0).max())
        if abs_err <= tol * float(expected.detach().abs().nan_to_num(0).max()) + atol:
            return
    if not err <= tol:
        diff = (actual.detach().double() - expected.detach().double()).abs()
        where = tuple(int(i) for i in torch.nonzero(diff == diff.nan_to_num(0).max())[0]) if diff.numel() else ()
        raise AssertionError(f"{name or 'tensors'} differ: max|Δ|/max|ref| = {err:.3e} > {tol:.1e} "
                             f"(max|ref| = {float(expected.detach().abs().max()):.3e}, worst at {where})")


@dataclass
class SamplerCase:
    """One sampler input: clip, valid lengths, raw parameters and output size."""

    frames: torch.Tensor
    num_frames: torch.Tensor
    params: RawSampling
    out_size: int

    def raw(self, requires_grad: bool = False, dtype: torch.dtype | None = None) -> list[torch.Tensor]:
        """Fresh copies of the six raw parameters (leaves, optionally requiring grad)."""
        return [t.detach().clone().to(dtype or t.dtype).requires_grad_(requires_grad) for t in self.params.as_tuple()]


def make_case(batch: int, frames: int, height: int, width: int, out_frames: int, out_size: int, *,
              seed: int = 0, spread: float = 1.0, dtype: torch.dtype = torch.float32,
              lengths: list[int] | None = None, device: torch.device | str = "cpu") -> SamplerCase:
    """A random sampler input. `spread` scales the raw parameters: 1 gives realistic locator
    outputs, larger values push grids off the frame and strides to extremes."""
    g = torch.Generator().manual_seed(seed)
    shape = (batch, frames, 3, height, width)
    if dtype == torch.uint8:
        x = torch.randint(0, 256, shape, generator=g, dtype=torch.uint8)
    else:
        x = torch.randn(shape, generator=g).to(dtype)
    if lengths is None:
        n = torch.randint(1, frames + 1, (batch,), generator=g)
        n[0] = frames
    else:
        n = torch.tensor(lengths)

    def r(*s, scale):
        return torch.randn(*s, generator=g) * scale * spread

    p = RawSampling(r(batch, scale=0.7), r(batch, scale=0.3), r(batch, out_frames, scale=0.7),
                      r(batch, out_frames, scale=0.7), r(batch, out_frames, scale=0.3),
                      r(batch, out_frames, scale=0.3))
    p = RawSampling(*(t.to(device) for t in p.as_tuple()))
    return SamplerCase(x.to(device), n.to(device), p, out_size)


def dense_float64(frames: torch.Tensor, num_frames: torch.Tensor, params: RawSampling, out_size: int,
                  temporal: str = "gaussian") -> torch.Tensor:
    """The dense reference algorithm evaluated in float64 (filterbanks and contraction): the
    "truth" against which float32 paths are judged when float32 rounding itself is the question."""
    B, T, C, H, W = frames.shape
    p64 = RawSampling(*(t.double() for t in params.as_tuple()))
    Ft, Fy, Fx = filterbanks(num_frames, p64, T, H, W, out_size, temporal)
    x = torch.bmm(Ft, frames.double().reshape(B, T, C * H * W)).view(B, -1, C, H, W)
    x = torch.matmul(x, Fx.transpose(-1, -2)[:, :, None])
    return torch.matmul(Fy[:, :, None], x)


def assert_as_accurate(actual: torch.Tensor, truth: torch.Tensor, reference: torch.Tensor, tol: float = 1e-5,
                       slack: float = 10.0, name: str = "", unit: float = 0.0) -> None:
    """`actual` is within `tol` of the float64 `truth` relative to max(|truth|, `unit`), or at
    least no further from it than `slack` times the float32 `reference` is.

    Both escapes cover quantities that vanish by cancellation (a normalised one-pixel row has
    zero derivative w.r.t. its centre): every float32 evaluation then returns rounding noise, whose
    size follows the terms that cancelled (`unit`, e.g. max|upstream grad| · max|output| for a
    parameter gradient), not the vanishing result.
    """
    if actual.shape != truth.shape:
        raise AssertionError(f"{name or 'tensor'}: shape {tuple(actual.shape)} vs truth {tuple(truth.shape)}")
    if not torch.equal(torch.isnan(actual.detach()), torch.isnan(truth.detach())):
        raise AssertionError(f"{name or 'tensor'}: NaN where the float64 truth has none (or the reverse)")
    err = float((actual.detach().double() - truth.detach()).abs().nan_to_num(0).max()) if actual.numel() else 0.0
    ref_err = float((reference.detach().double() - truth.detach()).abs().nan_to_num(0).max()) if actual.numel() else 0.0
    scale = max(float(truth.detach().abs().nan_to_num(0).max()) if truth.numel() else 0.0, unit)
    if err <= tol * scale or err <= slack * ref_err:
        return
    raise AssertionError(f"{name or 'tensor'}: max|Δ| to float64 truth = {err:.3e}, above {tol:.0e} × scale "
                         f"{scale:.3e} and {slack:g} × the float32 reference's own error {ref_err:.3e}")


FUZZ_MEAN, FUZZ_STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)


def sampler_inputs(max_side: int = 20, max_frames: int = 9):
    """Hypothesis strategy of tiny sampler inputs (a dict for `check_sampler_backend`).

    Random shapes (frames narrower and wider than the 13-tap band, T below and above T_d), valid
    lengths, parameter spreads that push grids off the frame, uint8 and float clips, both temporal
    filters and both layouts. Hypothesis is imported here, on use, as it is a test dependency.
    """
    from hypothesis import strategies as st

    @st.composite
    def inputs(draw):
        B = draw(st.integers(1, 3))
        T = draw(st.integers(1, max_frames))
        lengths = [draw(st.integers(1, T)) for _ in range(B)]
        return dict(
            shape=(B, T, draw(st.integers(1, max_side)), draw(st.integers(1, max_side)), draw(st.integers(2, 5)),
                   draw(st.integers(2, 9))),
            lengths=lengths,
            spread=draw(st.sampled_from([0.3, 1.0, 3.0, 8.0])),
            dtype=draw(st.sampled_from([torch.float32, torch.uint8])),
            temporal=draw(st.sampled_from(["gaussian", "linear"])),
            layout=draw(st.sampled_from(["btchw", "bcthw"])),
            seed=draw(st.integers(0, 2**16)),
        )
    return inputs()


def check_sampler_backend(inp: dict, backend: str) -> None:
    """Forward and backward of `filterbank_sample(backend=...)` vs autograd through the dense path.

    The forward must match the float32 dense reference to 1e-5 of the output scale. Gradients are
    judged against the dense algorithm in float64 (`assert_as_accurate`): within 1e-5 of their
    scale, or, for gradients that vanish by cancellation (every float32 evaluation then returns
    rounding noise), within 1e-5 of max|upstream grad|·max|output| or no worse than the float32
    dense reference itself.
    """
    B, T, H, W, Td, S = inp["shape"]
    case = make_case(B, T, H, W, Td, S, seed=inp["seed"], spread=inp["spread"], dtype=inp["dtype"],
                     lengths=inp["lengths"])
    temporal, layout = inp["temporal"], inp["layout"]
    float_in = case.frames.is_floating_point()
    norm = case.frames if float_in else normalize_frames(case.frames, FUZZ_MEAN, FUZZ_STD)
    results = {}
    for which in ("fast", "ref32", "truth"):
        fr = (norm.double() if which == "truth" else (case.frames if which == "fast" else norm)).clone()
        fr.requires_grad_(float_in)
        raw = case.raw(True, torch.float64 if which == "truth" else None)
        p = RawSampling(*raw)
        if which == "fast":
            out = filterbank_sample(fr, case.num_frames, p, S, mean=FUZZ_MEAN, std=FUZZ_STD, temporal=temporal,
                                    layout=layout, backend=backend)
            out = out.transpose(1, 2) if layout == "bcthw" else out
        elif which == "ref32":
            out = filterbank_sample_dense(fr, case.num_frames, p, S, temporal)
        else:
            out = dense_float64(fr, case.num_frames, p, S, temporal)
        grad = torch.randn(out.shape, generator=torch.Generator().manual_seed(inp["seed"])).to(out.dtype)
        ins = raw + ([fr] if float_in else [])
        results[which] = [out] + list(torch.autograd.grad(out, ins, grad, allow_unused=True))
        if which == "truth":
            unit = float(grad.abs().max() * out.detach().abs().nan_to_num(0).max())
    assert_close_scaled(results["fast"][0], results["ref32"][0], 1e-5, f"{backend} forward")
    names = ["dt", "delta_t", "dx", "dy", "delta_x", "delta_y", "frames"]
    for name, a, r, t in zip(names, results["fast"][1:], results["ref32"][1:], results["truth"][1:]):
        if t is None:
            assert a is None or float(a.abs().max()) == 0.0, name
        else:
            assert_as_accurate(a, t, r, 1e-5, name=f"{backend} grad {name}", unit=unit)
