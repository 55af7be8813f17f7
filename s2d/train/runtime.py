"""Process set-up of a training run: seeds, backend flags, threads."""
from __future__ import annotations

import os
import random

import numpy as np
import torch

from s2d.train.config import TrainConfig


def seed_all(seed: int) -> None:
    """Seed Python's `random`, numpy's global RNG and torch (all devices)."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def configure_backends(cfg: TrainConfig, device: torch.device) -> None:
    """cuDNN / TF32 / determinism flags, CPU threads and denormal flushing, from the config."""
    if cfg.threads is not None:
        torch.set_num_threads(cfg.threads)
    if cfg.flush_denormal and device.type == "cpu":
        torch.set_flush_denormal(True)
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = cfg.cudnn_benchmark and not cfg.deterministic
        torch.backends.cudnn.deterministic = cfg.deterministic
        torch.backends.cuda.matmul.allow_tf32 = cfg.tf32
        torch.backends.cudnn.allow_tf32 = cfg.tf32
    if cfg.deterministic:
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        torch.use_deterministic_algorithms(True, warn_only=True)
