"""torch.distributed plumbing: process group from torchrun's environment, device per rank, and the
few collectives the trainer and evaluation need.

Launched by `torchrun` (WORLD_SIZE > 1 in the environment), `setup` joins the process group with
`env://`: NCCL when the run uses CUDA (one GPU per local rank), gloo on CPU. A plain `python`
launch is a world of one and needs no process group.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist


@dataclass
class DistEnv:
    """Where this process stands: rank, world size, local rank and its device."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    device: torch.device = torch.device("cpu")
    backend: str | None = None
    owns_group: bool = False  # this process created the group, so `teardown` destroys it

    @property
    def distributed(self) -> bool:
        """More than one rank."""
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        """Rank 0: the one that writes files and logs."""
        return self.rank == 0


class DeviceError(ValueError):
    """The requested device does not exist on this machine."""


def choose_device(preference: str, local_rank: int) -> torch.device:
    """`auto`: CUDA (this rank's GPU) when available, else CPU; `cuda[:N]` requires CUDA."""
    if preference == "cpu":
        return torch.device("cpu")
    if preference == "auto" and not torch.cuda.is_available():
        return torch.device("cpu")
    if not torch.cuda.is_available():
        raise DeviceError(f"device {preference!r} requested but CUDA is not available here "
                          "(use device=cpu or device=auto)")
    if preference.startswith("cuda:"):
        return torch.device(preference)
    return torch.device("cuda", local_rank % torch.cuda.device_count())


def setup(device: str = "auto") -> DistEnv:
    """Join torchrun's process group when there is one and pick this rank's device."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    dev = choose_device(device, local_rank)
    if dev.type == "cuda":
        torch.cuda.set_device(dev)
    if dist.is_available() and dist.is_initialized():  # the caller set up the group
        backend = dist.get_backend()
        return DistEnv(dist.get_rank(), dist.get_world_size(), local_rank, dev, backend, False)
    if world <= 1:
        return DistEnv(0, 1, 0, dev, None, False)
    backend = "nccl" if dev.type == "cuda" else "gloo"
    kwargs: dict[str, Any] = {"device_id": dev} if backend == "nccl" else {}
    dist.init_process_group(backend=backend, init_method="env://", world_size=world, rank=rank, **kwargs)
    return DistEnv(rank, world, local_rank, dev, backend, True)


def teardown(env: DistEnv) -> None:
    """Leave the process group if `setup` created it."""
    if env.owns_group and dist.is_initialized():
        dist.destroy_process_group()


def collective_device(env: DistEnv) -> torch.device:
    """Device that tensors must live on for this backend's collectives."""
    return env.device if env.backend == "nccl" else torch.device("cpu")


def all_reduce_sum(env: DistEnv, tensor: torch.Tensor) -> torch.Tensor:
    """Element-wise sum over ranks (the tensor itself when not distributed)."""
    if not env.distributed:
        return tensor
    t = tensor.detach().to(collective_device(env)).clone()
    dist.all_reduce(t, op=dist.ReduceOp.SUM)
    return t.to(tensor.device)


def any_rank(env: DistEnv, flag: bool) -> bool:
    """True when `flag` is set on any rank: every rank gets the same answer."""
    if not env.distributed:
        return flag
    t = torch.tensor([1.0 if flag else 0.0], device=collective_device(env))
    dist.all_reduce(t, op=dist.ReduceOp.MAX)
    return bool(t.item() > 0)


def barrier(env: DistEnv) -> None:
    """Wait until every rank gets here (no-op for a single process)."""
    if env.distributed:
        if env.backend == "nccl":
            dist.barrier(device_ids=[env.device.index])
        else:
            dist.barrier()


def all_gather_objects(env: DistEnv, obj: Any) -> list[Any]:
    """`[obj of rank 0, obj of rank 1, ...]` on every rank."""
    if not env.distributed:
        return [obj]
    out: list[Any] = [None] * env.world_size
    dist.all_gather_object(out, obj)
    return out


def gather_rows(env: DistEnv, rows: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Concatenate per-rank tensors with the same trailing shapes but possibly different row counts,
    on every rank, in rank order (each rank's rows appear once: no padding is kept)."""
    if not env.distributed:
        return rows
    dev = collective_device(env)
    count = torch.tensor([next(iter(rows.values())).shape[0]], device=dev)
    counts = [torch.zeros_like(count) for _ in range(env.world_size)]
    dist.all_gather(counts, count)
    counts_list = [int(c.item()) for c in counts]
    most = max(counts_list)
    out: dict[str, torch.Tensor] = {}
    for key, value in rows.items():
        padded = torch.zeros((most, *value.shape[1:]), dtype=value.dtype, device=dev)
        padded[:value.shape[0]] = value.to(dev)
        parts = [torch.zeros_like(padded) for _ in range(env.world_size)]
        dist.all_gather(parts, padded)
        out[key] = torch.cat([p[:n] for p, n in zip(parts, counts_list)]).to(value.device)
    return out
