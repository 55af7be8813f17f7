"""Shared test settings (deterministic, few threads: CI machines have 2 cores) and the shared
fixtures: tiny model sizes, video-file helpers, a local Hugging Face Hub on 127.0.0.1."""
import os
from types import SimpleNamespace

import pytest
import torch

from helpers import hub_server
from helpers import videos as video_helpers

torch.set_num_threads(min(2, os.cpu_count() or 1))


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)
    yield


@pytest.fixture(scope="session")
def tiny_overrides():
    """`tiny_overrides(name)`: small input sizes for a named variant, so that a forward/backward
    takes seconds on a CPU."""
    import s2d

    def overrides(name: str) -> dict:
        cfg = s2d.get_config(name)
        if cfg.kind == "baseline":
            return dict(frames=4, size=64, dense_frames=8, dense_size=64)
        return dict(dense_frames=10, dense_size=72, synopsis={"frames": 4, "size": 64},
                    sampler={"frames": 4, "size": 48})

    return overrides


@pytest.fixture(scope="module")
def one_thread():
    """Batches of one small clip: a second thread brings nothing but contention on a shared CPU
    (modules opt in with `pytestmark = pytest.mark.usefixtures("one_thread")`)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="session")
def videos():
    """Video-file helpers: `write_video`, `write_not_video`, `make_video_set`, `decode_indices`,
    `encoder_available`, ... (each frame's index is painted into it, so decoded frames say which
    source frames they are)."""
    return video_helpers


@pytest.fixture
def hub_env(monkeypatch):
    """Where huggingface_hub looks, for this test: `hub_env.use(hub, home)` points it at a
    `LocalHub` (None: an endpoint nothing listens on) with its cache under `home`;
    `hub_env.offline(flag=True)` sets `HF_HUB_OFFLINE`."""
    return SimpleNamespace(use=lambda hub, home: hub_server.use_local_hub(monkeypatch, hub, home),
                           offline=lambda offline=True: hub_server.set_offline(monkeypatch, offline),
                           LocalHub=hub_server.LocalHub)


@pytest.fixture
def local_hub(tmp_path, hub_env):
    """A running `LocalHub` that huggingface_hub downloads from, its cache in `tmp_path/hf`."""
    server = hub_server.LocalHub().start()
    hub_env.use(server, tmp_path / "hf")
    yield server
    server.stop()
