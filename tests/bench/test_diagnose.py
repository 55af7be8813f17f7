"""The localisation diagnostic (bench/synthetic/diagnose.py): its window gradient is the loss's."""
import importlib.util
from pathlib import Path

import torch

import s2d

REPO = Path(__file__).resolve().parents[2]


def _diagnose():
    spec = importlib.util.spec_from_file_location("diagnose", REPO / "bench" / "synthetic" / "diagnose.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_window_gradient_matches_finite_differences_on_one_clip():
    diagnose = _diagnose()
    torch.manual_seed(0)
    model = s2d.create("s2dnet-x3d-synth").eval()
    batch = diagnose.clips("val", 0, 1, data_seed=0)
    fx, fy = batch["focus"][:, 0], batch["focus"][:, 1]
    cx, cy = fx + 3.0, fy - 2.0
    loss, gx, gy = diagnose._loss_and_grad(model, batch, cx, cy, 1.3)
    assert torch.isfinite(loss).all() and torch.isfinite(gx).all() and torch.isfinite(gy).all()
    h = 0.05
    lx = [diagnose._loss_and_grad(model, batch, cx + d, cy, 1.3)[0] for d in (h, -h)]
    ly = [diagnose._loss_and_grad(model, batch, cx, cy + d, 1.3)[0] for d in (h, -h)]
    fd_x, fd_y = (lx[0] - lx[1]) / (2 * h), (ly[0] - ly[1]) / (2 * h)
    scale = max(float(gx.abs()), float(gy.abs()), 1e-4)
    assert abs(float(gx - fd_x)) <= 0.05 * scale + 1e-4, (gx, fd_x)
    assert abs(float(gy - fd_y)) <= 0.05 * scale + 1e-4, (gy, fd_y)


def test_landscape_reports_every_offset():
    diagnose = _diagnose()
    torch.manual_seed(0)
    model = s2d.create("s2dnet-x3d-synth").eval()
    batch = diagnose.clips("val", 0, 2, data_seed=0)
    result = diagnose.landscape(model, batch, 1.3, offsets=(-4, 0, 4), fd=4)
    assert [r["offset"] for r in result["rows"]] == [-4, 0, 4]
    for r in result["rows"]:
        assert 0 <= r["top1"] <= 100 and r["loss"] > 0 and r["grad_abs"] >= 0
