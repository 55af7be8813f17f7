"""Hostile model configs and inputs: sizes that would allocate tens of GB, clips the config does not
describe, lengths that are not integers, non-finite pixels, a shift that divides by zero. Each is
refused with an error naming the key or argument, the value and what is allowed; valid uses keep working.
"""
from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

import s2d
from s2d.inference.predict import check_topk, predict
from s2d.models.backbones import TemporalShift
from s2d.models.clip import check_clip
from s2d.models.config import ConfigError
from s2d.models.limits import MAX_DENSE_PIXELS

TINY = dict(num_classes=4, labels=None, topk=2, dense_frames=8, dense_size=48,
            synopsis={"arch": "x3d_tiny", "frames": 4, "size": 32}, detail={"arch": "x3d_tiny"},
            sampler={"frames": 4, "size": 24})
TINY_BASELINE = dict(arch="x3d_tiny", num_classes=4, labels=None, frames=4, size=32, dense_frames=8, dense_size=48)


@pytest.fixture(scope="module")
def model() -> nn.Module:
    torch.manual_seed(0)
    return s2d.create("s2dnet-x3d-k400", **TINY).eval()


@pytest.fixture(scope="module")
def baseline() -> nn.Module:
    torch.manual_seed(0)
    return s2d.create("x3d-m", **TINY_BASELINE).eval()


def clip(batch: int = 2, frames: int = 8, size: int = 48) -> torch.Tensor:
    g = torch.Generator().manual_seed(3)
    return torch.randint(0, 256, (batch, frames, 3, size, size), dtype=torch.uint8, generator=g)


# -- memory bombs: every size, count and width key is bounded before anything is allocated ------------------

BOMBS = [
    ("s2dnet-x3d-k400", dict(locator={"mlp": [65536, 65536]}), r"locator\.mlp must lie in \[1, 8192\], got 65536"),
    ("s2dnet-x3d-k400", dict(locator={"hidden": 65536}), r"locator\.hidden must lie in \[1, 1024\], got 65536"),
    ("s2dnet-tsm-minik", dict(locator={"hidden": 1024}),
     r"locator\.hidden × synopsis\.frames × map² × locator\.mlp\[0\] = 1024 × 16 × 5² × 1024 = 419,430,400 .*"
     r"at most 67,108,864"),
    ("s2dnet-x3d-k400", dict(dense_size=4096), r"dense_size must lie in \[2, 1024\], got 4096"),
    ("s2dnet-x3d-k400", dict(dense_frames=100_000), r"dense_frames must lie in \[1, 512\], got 100000"),
    ("s2dnet-x3d-k400", dict(dense_frames=512, dense_size=1024),
     rf"dense_frames × dense_size² = 512 × 1024² = 536,870,912 pixels per video; at most {MAX_DENSE_PIXELS:,}"),
    ("s2dnet-x3d-k400", dict(num_classes=50_000, labels=None), r"num_classes must lie in \[2, 10000\], got 50000"),
    ("s2dnet-x3d-k400", dict(synopsis={"frames": 10_000}), r"synopsis\.frames must lie in \[1, 256\], got 10000"),
    ("s2dnet-x3d-k400", dict(sampler={"size": 4096}), r"sampler\.size must lie in \[2, 1024\], got 4096"),
    ("s2dnet-x3d-k400", dict(fusion={"context_dim": 65536}), r"fusion\.context_dim must lie in \[1, 8192\], got 65536"),
    ("x3d-m", dict(size=4096), r"size must lie in \[32, 1024\], got 4096"),
    ("x3d-m", dict(frames=1000), r"frames must lie in \[1, 256\], got 1000"),
]


@pytest.mark.parametrize("name, change, pattern", BOMBS, ids=[f"{n}:{next(iter(c))}" for n, c, _ in BOMBS])
def test_oversized_configs_are_refused_before_building(name, change, pattern):
    with pytest.raises(ConfigError, match=pattern):
        s2d.create(name, **change)


def test_the_bounds_leave_real_configs_alone():
    """Every registered model, and a high-resolution variant well past the paper's, still build their configs."""
    for name in s2d.list_models():
        s2d.get_config(name)
    s2d.get_config("s2dnet-x3d-k400", dense_frames=128, dense_size=512, sampler={"frames": 32, "size": 320},
                   locator={"mlp": [4096, 2048]}, fusion={"context_dim": 1024})


def test_topk_is_bounded_by_the_class_count(model):
    check_topk(4, 4)  # every class: fine
    for bad, pattern in ((10 ** 9, r"topk must lie in \[1, 4\] \(the model's num_classes\), got 1000000000"),
                         (5, r"\[1, 4\]"), (0, ">= 1"), (True, ">= 1"), (2.0, ">= 1")):
        with pytest.raises(ValueError, match=pattern):
            check_topk(bad, 4)
    frames = clip(1)[0].movedim(1, -1)  # [T, H, W, 3]
    with pytest.raises(ValueError, match=r"topk must lie in \[1, 4\]"):
        predict(model, frames, topk=10 ** 9)
    assert len(predict(model, frames).labels) == 4  # the default lists every class of a model with fewer than 5
    assert len(predict(model, frames, topk=3).labels) == 3


# -- clips the config does not describe ---------------------------------------------------------------------

@pytest.mark.parametrize("shape", [(2, 9, 3, 48, 48), (2, 4, 3, 48, 48), (2, 8, 3, 64, 64), (2, 8, 3, 48, 40)])
def test_clips_of_another_size_or_length_are_refused(model, baseline, shape):
    frames = torch.zeros(shape, dtype=torch.uint8)
    for net in (model, baseline):
        with pytest.raises(ValueError, match=rf"the model's dense clip \[B, 8, 3, 48, 48\].*got shape "
                                             rf"\({', '.join(map(str, shape))}\)"):
            net(frames)


@pytest.mark.parametrize("num_frames, error, pattern", [
    (torch.tensor([5.9, 8.0]), TypeError, "torch.float32 values"),
    (5.9, TypeError, "got 5.9"),
    (True, TypeError, "got True"),
    (torch.tensor([True, True]), TypeError, "torch.bool values"),
    ([3, 2.5], TypeError, "float"),
    ("8", TypeError, "got str"),
    (torch.tensor([0, 8]), ValueError, r"num_frames must lie in \[1, 8\], got \[0, 8\]"),
    (9, ValueError, r"num_frames must lie in \[1, 8\], got \[9, 9\]"),
    (torch.tensor([8, 8, 8]), ValueError, r"one entry per video \(2\)"),
])
def test_num_frames_must_be_integers_in_range(model, num_frames, error, pattern):
    with pytest.raises(error, match=pattern):
        model(clip(), num_frames)


def test_valid_frame_counts_keep_working(model):
    frames = clip()
    with torch.no_grad():
        want = model(frames, torch.tensor([5, 5])).logits
        for n in (5, [5, 5], np.array([5, 5]), torch.tensor([5, 5], dtype=torch.int32)):
            torch.testing.assert_close(model(frames, n).logits, want)


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), -float("inf")])
def test_non_finite_pixels_are_refused(model, baseline, bad):
    frames = clip().float() / 255
    frames[1, 3, 0, 7, 7] = bad
    for net in (model, baseline):
        with pytest.raises(ValueError, match="frames hold NaN or infinite values"):
            net(frames)


def test_value_checks_stay_out_of_compiled_graphs(monkeypatch):
    """Under torch.compile the checks that read values are skipped (they would break the graph); shapes stay checked."""
    frames = torch.full((1, 8, 3, 48, 48), float("nan"))
    monkeypatch.setattr(torch.compiler, "is_compiling", lambda: True)
    assert check_clip(frames, torch.tensor([99]), dense=(8, 48)).tolist() == [99]
    with pytest.raises(ValueError, match="dense clip"):
        check_clip(frames[:, :4], None, dense=(8, 48))


def test_predict_pads_short_clips_and_refuses_long_ones(model):
    frames = clip(1)[0].movedim(1, -1)  # [8, 48, 48, 3]
    short = predict(model, frames[:5], topk=2)
    padded = torch.cat([frames[:5], frames[4:5].expand(3, -1, -1, -1)])
    with torch.no_grad():
        want = model(padded.movedim(-1, 1)[None], torch.tensor([5])).logits.softmax(-1)[0]
    assert short.num_frames == 5 and short.labels[0][1] == pytest.approx(float(want.max()), abs=1e-6)
    with pytest.raises(ValueError, match="at most the model's dense_frames=8 frames, got 9"):
        predict(model, torch.cat([frames, frames[:1]]))
    with pytest.raises(TypeError, match="num_frames"):
        predict(model, frames, num_frames=4.5)
    with pytest.raises(ValueError, match=r"num_frames must lie in \[1, 5\]"):
        predict(model, frames[:5], num_frames=6)


# -- the temporal shift: a divisor that leaves both directions a channel ----------------------------------

@pytest.mark.parametrize("name, change, pattern", [
    ("s2dnet-tsm-sthv2", dict(synopsis={"shift_div": 0}), r"synopsis\.shift_div must lie in \[2, 24\], got 0"),
    ("s2dnet-tsm-sthv2", dict(detail={"shift_div": 1}), r"detail\.shift_div must lie in \[2, 64\], got 1"),
    ("s2dnet-tsm-sthv2", dict(detail={"shift_div": 65}), r"detail\.shift_div must lie in \[2, 64\], got 65"),
    ("tsm-r50", dict(shift_div=-8), r"shift_div must lie in \[2, 64\], got -8"),
    ("tsm-r50", dict(shift_div=True), r"shift_div must be an integer, got True"),
    ("s2dnet-tsm-sthv2", dict(synopsis={"frames": 5.9}), r"synopsis\.frames must be an integer, got 5\.9"),
])
def test_shift_div_and_integer_keys_are_checked(name, change, pattern):
    with pytest.raises(ConfigError, match=pattern):
        s2d.get_config(name, **change)


def test_temporal_shift_refuses_a_zero_divisor():
    with pytest.raises(ValueError, match="shift_div must be an integer >= 1, got 0"):
        TemporalShift(nn.Conv2d(8, 8, 1), 4, 0)
