"""Property test: the fast torch sampler equals the dense reference on random tiny inputs.

Forward and backward (grads to the six raw parameters, and to float frames), for random shapes
(frames narrower and wider than the 13-tap band, T below and above T_d), valid lengths, parameter
spreads that push grids off the frame, uint8 and float clips, both temporal filters and both
layouts (`s2d_kernels.testing.sampler_inputs`, `check_sampler_backend`). The Triton kernels are
fuzzed the same way under the interpreter, in the subprocess run of
`tests/kernels/test_kernels_triton_interp.py` (fewer examples there: interpreted kernels are slow).
"""
import pytest
from hypothesis import HealthCheck, given, settings

from s2d_kernels.testing import check_sampler_backend, sampler_inputs


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(sampler_inputs())
def test_fuzz_torch_backend_matches_reference(inp):
    check_sampler_backend(inp, "torch")


@pytest.mark.slow
@settings(max_examples=2000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(sampler_inputs(max_side=40))
def test_fuzz_torch_backend_matches_reference_long(inp):
    check_sampler_backend(inp, "torch")
