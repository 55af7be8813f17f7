"""Shared test settings: deterministic, few threads (CI machines have 2 cores)."""
import os

import pytest
import torch

torch.set_num_threads(min(2, os.cpu_count() or 1))


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)
    yield


def tiny_overrides(name: str) -> dict:
    """Small input sizes for a named variant so a forward/backward takes seconds on a CPU."""
    import s2d

    cfg = s2d.get_config(name)
    if cfg.kind == "baseline":
        return dict(frames=4, size=64, dense_frames=8, dense_size=64)
    return dict(dense_frames=10, dense_size=72, synopsis={"frames": 4, "size": 64},
                sampler={"frames": 4, "size": 48})
