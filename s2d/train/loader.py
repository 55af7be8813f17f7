"""Data loading for training and evaluation: resumable per-rank sampling and per-sample seeding.

Reproducibility rests on two rules:

- the order of an epoch is a pure function of (seed, epoch) — `DistributedSampler`'s
  permutation, sharded by rank — so a resumed run can skip exactly the batches it consumed;
- the random choices of a sample (crop position, stride start, anything a dataset draws from
  Python's `random`, numpy or torch) are seeded from (seed, epoch, sample index) just for that
  sample, so they depend neither on the worker that loads it, nor on the rank, nor on what was
  loaded before. Resumed, re-sharded and uninterrupted runs therefore see the same clips.
"""
from __future__ import annotations

import random
from contextlib import contextmanager
from typing import Any, Iterator, Sequence

import numpy as np
import torch
from torch.utils.data import Dataset, DistributedSampler

from s2d.models.clip import channels_first

#: Epoch key used for evaluation samples (kept apart from training epochs).
EVAL_EPOCH = 2**31 - 1


def derive_seed(keys: Sequence[int]) -> int:
    """A 64-bit seed mixed from integer keys (numpy's SeedSequence: nearby keys give unrelated seeds)."""
    words = np.random.SeedSequence([int(k) % 2**63 for k in keys]).generate_state(2, dtype=np.uint32)
    return int(words[0]) | (int(words[1]) << 32)


@contextmanager
def seeded(*keys: int) -> Iterator[None]:
    """Seed Python's `random`, numpy's global RNG and torch's CPU generator from `keys` for the
    block, then restore their previous states (CUDA generators are left alone)."""
    seed = derive_seed(keys)
    py_state, np_state, torch_state = random.getstate(), np.random.get_state(), torch.get_rng_state()
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.default_generator.manual_seed(seed)
    try:
        yield
    finally:
        random.setstate(py_state)
        np.random.set_state(np_state)
        torch.set_rng_state(torch_state)


class SeededSamples(Dataset):
    """Wraps a map-style dataset; `ds[(epoch, index)]` loads sample `index` with its random
    choices seeded from (seed, epoch, index), from `dataset.for_epoch(epoch)` when the dataset
    is procedural (fresh clips every epoch)."""

    def __init__(self, dataset: Dataset, seed: int):
        self.dataset = dataset
        self.seed = seed

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, key: tuple[int, int]) -> dict[str, Any]:
        epoch, index = key
        dataset = self.dataset.for_epoch(epoch) if callable(getattr(self.dataset, "for_epoch", None)) else self.dataset
        with seeded(self.seed, epoch, index):
            sample = dataset[index]
        return sample


class EpochSampler(DistributedSampler):
    """`DistributedSampler` (deterministic per seed and epoch, sharded by rank) that yields
    `(epoch, index)` keys for `SeededSamples` and can start `start` samples into this rank's
    share (to resume part-way through an epoch)."""

    def __init__(self, dataset: Dataset, num_replicas: int, rank: int, seed: int, shuffle: bool = True):
        super().__init__(dataset, num_replicas=num_replicas, rank=rank, shuffle=shuffle, seed=seed, drop_last=False)
        self.start = 0

    def __iter__(self) -> Iterator[tuple[int, int]]:  # type: ignore[override]
        indices = list(super().__iter__())[self.start:]
        return iter([(self.epoch, i) for i in indices])

    def __len__(self) -> int:
        return self.num_samples - self.start


def collate_samples(samples: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """`s2d.data.collate`, tolerating datasets whose samples lack `path`, `error` or `index`;
    `focus` `[B, 2]` (x, y in pixels) when every sample has one."""
    from s2d.data import collate

    filled = [{"path": "", "error": None, "index": -1, **s} for s in samples]
    batch = collate(filled)
    if all("focus" in s for s in samples):
        batch["focus"] = torch.tensor([[float(v) for v in s["focus"]] for s in samples], dtype=torch.float32)
    return batch


def model_inputs(batch: dict[str, Any], device: torch.device) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(frames `[B, T, 3, H, W]`, num_frames `[B]`, labels `[B]`) on `device`.

    The uint8 clip crosses to the device before the channel permute, which moves 4× fewer bytes
    than converting first.
    """
    non_blocking = device.type == "cuda"
    frames = channels_first(batch["frames"].to(device, non_blocking=non_blocking)).contiguous()
    return (frames, batch["num_frames"].to(device, non_blocking=non_blocking),
            batch["labels"].to(device, non_blocking=non_blocking))
