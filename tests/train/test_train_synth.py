"""The synthetic benchmark's recipe in the library trainer: the `synth` data kind and its `focus`,
the pre-training phases and the locator warm-up, AdamW, per-prefix clipping, restarted schedules,
the quick recipe end to end, and the CLI's discoverability (`train --list`, clear errors)."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

import s2d
import s2d.cli as cli
from s2d.models.sampler import centre_crop_params, window_params
from s2d.synth.benchmark import BORDER, COLOURS, OBJECT_SIZE, SyntheticDetailDataset, render_clip
from s2d.train import TrainConfigError, build_dataset, load_config, register_dataset, train, unregister_dataset
from s2d.train.datasets import ProceduralClips
from s2d.train.optim import build_optimizer, build_scheduler, clip_gradients
from s2d.train.phases import DetailAlone
from s2d_kernels.sampler import spatial_grid


def _weights(folder) -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file

    return load_file(str(folder / "model.safetensors"))


# -- the data ---------------------------------------------------------------------------------------

def test_focus_is_the_centre_of_the_rendered_glyph_interior():
    data = SyntheticDetailDataset("val", 6, noise_std=0.0)
    for i in range(len(data)):
        p = data.params(i)
        frame = render_clip(p, data.frames, data.resolution)[p.glyph_start].astype(np.int64)
        glyph = (frame[:, :, None, :] == COLOURS.astype(np.int64)[None, None]).all(-1).any(-1)  # [H, W]
        ys, xs = np.nonzero(glyph)
        inner = OBJECT_SIZE - 2 * BORDER
        assert glyph.sum() == inner * inner and xs.max() - xs.min() == inner - 1 == ys.max() - ys.min()
        fx, fy = data[i]["focus"]
        assert (fx, fy) == ((xs.min() + xs.max()) / 2, (ys.min() + ys.max()) / 2)


def test_synth_kind_epochs_and_ranges_never_repeat_and_split_can_be_chosen():
    data = build_dataset("synth", "train", {"size": 4, "start": 10, "frames": 8, "resolution": 64})
    assert isinstance(data, ProceduralClips) and len(data) == 4
    assert data[0]["path"] == "synth:train/0/10"
    assert data.for_epoch(2)[3]["path"] == "synth:train/0/21"
    assert data.range(100, 2)[1]["path"] == "synth:train/0/111"
    assert "focus" in data[0]
    test = build_dataset("synth", "val", {"size": 2, "split": "test", "frames": 8, "resolution": 64})
    assert test[0]["path"] == "synth:test/0/0"  # `split=test` picks the split instead of clashing with it
    with pytest.raises(TrainConfigError, match="it takes size, seed"):
        build_dataset("synth", "train", {"sise": 4})
    with pytest.raises(TrainConfigError, match="resolution"):
        build_dataset("synth", "train", {"frames": 16, "resolution": 32})


# -- sampler views ----------------------------------------------------------------------------------

@pytest.mark.parametrize("shape", [(5,), (5, 3)])
def test_window_params_are_the_exact_inverse_of_the_samplers_scaling(shape):
    g = torch.Generator().manual_seed(0)
    W, H, S = 128, 96, 32
    cx = 2 + torch.rand(shape, generator=g) * (W - 5)  # inside the frame, where float32 atanh is well-conditioned
    cy = 2 + torch.rand(shape, generator=g) * (H - 5)
    stride = torch.exp(torch.rand(shape, generator=g) * 2 - 1)
    raw = window_params(cx, cy, stride, 3, W, H, S)
    got_x, sx, _ = spatial_grid(raw.dx, raw.delta_x, W, S)
    got_y, sy, _ = spatial_grid(raw.dy, raw.delta_y, H, S)
    expand = (lambda v: v[:, None].expand(5, 3)) if len(shape) == 1 else (lambda v: v)
    torch.testing.assert_close(got_x, expand(cx), rtol=0, atol=1e-3)
    torch.testing.assert_close(got_y, expand(cy), rtol=0, atol=1e-3)
    torch.testing.assert_close(sx, expand(stride), rtol=1e-5, atol=0)
    torch.testing.assert_close(sy, expand(stride), rtol=1e-5, atol=0)
    with pytest.raises(ValueError, match="inside"):
        window_params(torch.tensor([W - 1.0]), torch.tensor([10.0]), torch.ones(1), 3, W, H, S)
    # stage 1's centre crop is the centre view at a 1-px stride
    centre = window_params(torch.full((2,), (W - 1) / 2), torch.full((2,), (H - 1) / 2), torch.ones(2), 3, W, H, S)
    for a, b in zip(centre.as_tuple(), centre_crop_params(2, 3, W, H, S).as_tuple()):
        torch.testing.assert_close(a, b)


def test_detail_pretraining_views_and_hand_over():
    model = s2d.create("s2dnet-x3d-synth").eval()
    cfg = load_config("s2dnet-x3d-synth", ["phases.detail_pretrain.view=focus", "phases.detail_pretrain.jitter_px=0",
                                           "phases.detail_pretrain.stride_min=1.5",
                                           "phases.detail_pretrain.stride_max=1.5"]).phases.detail_pretrain
    alone = DetailAlone(model, cfg, seed=0).eval()
    frames = torch.zeros(2, 16, 3, 128, 128, dtype=torch.uint8)
    focus = torch.tensor([[40.5, 70.0], [80.0, 60.5]])
    raw = alone.views(frames, {"focus": focus})
    cx, sx, _ = spatial_grid(raw.dx, raw.delta_x, 128, 32)
    torch.testing.assert_close(cx, focus[:, :1].expand(2, 8), atol=1e-4, rtol=0)
    torch.testing.assert_close(sx, torch.full((2, 8), 1.5), atol=1e-5, rtol=0)
    with pytest.raises(TrainConfigError, match="focus"):
        alone.views(frames, {})
    # after the hand-over the S2DNet's detail net computes the pre-trained classifier, whatever the context
    torch.nn.init.normal_(alone.fc.weight)
    alone.hand_over()
    volume = torch.randn(2, 3, 8, 32, 32)
    m, s = torch.randn(2, model.config.fusion.context_dim), torch.rand(2, 16)
    topk = s.topk(model.config.topk, 1).indices
    with torch.no_grad():
        from s2d.models.backbones import run_backbone

        expected = alone.fc(run_backbone(alone.backbone, volume)[1]).mean(1)
        got = model.detail(volume, m, s, topk, backend="reference")
    torch.testing.assert_close(got, expected, atol=1e-5, rtol=1e-5)


# -- optimisation -----------------------------------------------------------------------------------

class _TwoParts(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.locator = torch.nn.Linear(3, 3)
        self.net = torch.nn.Linear(3, 3)


def test_clip_groups_clip_the_locator_apart_from_the_rest():
    model = _TwoParts()
    for p in model.locator.parameters():
        p.grad = torch.full_like(p, 100.0)
    for p in model.net.parameters():
        p.grad = torch.full_like(p, 0.1)
    before = math.sqrt(12 * 100.0**2 + 12 * 0.1**2)
    total = clip_gradients(model, 10.0, {"locator": 1.0})
    assert float(total) == pytest.approx(before, rel=1e-6)
    norm = lambda m: float(torch.linalg.vector_norm(torch.cat([p.grad.flatten() for p in m.parameters()])))  # noqa: E731
    assert norm(model.locator) == pytest.approx(1.0, rel=1e-5)
    assert norm(model.net) == pytest.approx(math.sqrt(12) * 0.1, rel=1e-6)  # under 10: untouched


def test_adamw_keeps_the_no_decay_groups_and_schedules_restart_per_stage():
    model = _TwoParts()
    optim = load_config("s2dnet-x3d-synth").optim
    opt = build_optimizer(model, optim, 1e-3)
    assert isinstance(opt, torch.optim.AdamW)
    decay = {g["name"]: g["weight_decay"] for g in opt.param_groups}
    assert decay == {"locator/decay": 1e-3, "locator/no_decay": 0.0, "default/decay": 1e-3, "default/no_decay": 0.0}
    assert {g["name"]: g["lr"] for g in opt.param_groups}["locator/decay"] == pytest.approx(1e-4)
    sched = build_scheduler(opt, optim, 10, [2, 4])  # 20 steps of stage 1, then 40 of stage 2
    factors = []
    for _ in range(60):
        factors.append(sched.get_last_lr()[-1] / 1e-3)
        opt.step()
        sched.step()
    assert factors[0] == pytest.approx(0.01) and factors[20] == pytest.approx(0.01)  # warm-up again at stage 2
    assert max(factors[:20]) == pytest.approx(1.0) and max(factors[20:]) == pytest.approx(1.0)
    assert factors[19] < 0.05 and factors[59] < 0.05  # each stage's cosine ends near zero


def test_config_knobs_are_checked():
    with pytest.raises(TrainConfigError, match="optim.name"):
        load_config("s2dnet-x3d-synth", ["optim.name=adam"])
    with pytest.raises(TrainConfigError, match="view"):
        load_config("s2dnet-x3d-synth", ["phases.detail_pretrain.view=glyph"])
    with pytest.raises(TrainConfigError, match="stride_min"):
        load_config("s2dnet-x3d-synth", ["phases.detail_pretrain.stride_min=3", "phases.detail_pretrain.stride_max=2"])
    with pytest.raises(TrainConfigError, match="clip_grad_groups"):
        load_config("s2dnet-x3d-synth", ["optim.clip_grad_groups.locator=0"])
    full = load_config("s2dnet-x3d-synth")
    assert (full.phases.synopsis_pretrain.clips, full.phases.detail_pretrain.clips, full.stages.stage1_clips,
            full.phases.locator_warmup.clips, full.stages.stage2_clips) == (4800, 16000, 0, 1024, 12800)
    assert full.stages.in_epochs(1600).stage2_epochs == 8
    with pytest.raises(TrainConfigError, match="whole number of epochs"):
        full.stages.in_epochs(1000)


# -- the recipe end to end -----------------------------------------------------------------------------

#: The quick recipe, smaller still: 64² clips of 8 frames, batch 4.
TINY = ["data.workers=0", "batch_size=4", "optim.ref_batch=4", "data.args.frames=8", "data.args.resolution=64",
        "model.overrides.dense_frames=8", "model.overrides.dense_size=64",
        "data.train.size=8", "data.val.size=8", "data.val_batch_size=8", "stages.stage1_clips=8",
        "stages.stage2_clips=8", "phases.synopsis_pretrain.clips=8", "phases.detail_pretrain.clips=8",
        "phases.detail_pretrain.view=focus", "phases.detail_pretrain.jitter_px=4",
        "phases.detail_pretrain.stride_max=2", "phases.locator_warmup.clips=4", "progress=false"]


class _Recorder:
    """A synth source that notes every clip it renders."""

    def __init__(self, source, log):
        self.source, self.log = source, log

    def __getitem__(self, index):
        self.log.append((self.source.split, index))
        return self.source[index]

    def params(self, index):
        return self.source.params(index)


def test_quick_recipe_runs_end_to_end_reads_fresh_clips_per_phase_and_is_deterministic(tmp_path):
    reads: list[tuple[str, int]] = []

    def recording(split, model_config, *, size, frames, resolution, seed=0):
        source = SyntheticDetailDataset(split, 10**6, seed=seed, frames=frames, resolution=resolution)
        return ProceduralClips(_Recorder(source, reads), 0, size)

    register_dataset("synth-recording", recording)
    try:
        first = train("s2dnet-x3d-synth-quick", TINY + [f"out_dir={tmp_path / 'a'}", "data.kind=synth-recording"])
    finally:
        unregister_dataset("synth-recording")
    assert not first.interrupted and first.last_val is not None
    train_reads = [i for split, i in reads if split == "train"]
    # 8 + 8 pre-training, 8 + 8 in the stages, 4 for the warm-up: 36 distinct clips, none read twice
    assert len(train_reads) == 36 and len(set(train_reads)) == 36
    assert sorted({i for split, i in reads if split == "val"}) == list(range(8))
    phases = (tmp_path / "a" / "phases.json").read_text()
    assert all(k in phases for k in ("synopsis_pretrain", "detail_pretrain", "locator_warmup"))

    second = train("s2dnet-x3d-synth-quick", TINY + [f"out_dir={tmp_path / 'b'}"])
    a, b = _weights(tmp_path / "a"), _weights(tmp_path / "b")
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)  # same seed, same weights
    assert second.last_val == first.last_val
    model = s2d.load(str(tmp_path / "a"))
    out = model.eval()(torch.zeros(1, 8, 3, 64, 64, dtype=torch.uint8))
    assert out.logits.shape == (1, 16) and torch.isfinite(out.logits).all()


# -- the command line -----------------------------------------------------------------------------------

def test_train_list_shows_recipes_kinds_and_keys(capsys):
    assert cli.main(["train", "--list"]) == 0
    out = capsys.readouterr().out
    assert "s2dnet-x3d-synth " in out and "s2dnet-x3d-synth-quick" in out and "s2dnet-tsm-sthv2" in out
    assert "synth " in out and "num_distractors=3" in out and "list_file" in out and "json_file" in out
    assert cli.main(["train"]) == 2
    assert "--list" in capsys.readouterr().err


def test_eval_with_views_a_dataset_cannot_cut_is_a_clear_error(capsys):
    code = cli.main(["eval", "--model", "s2dnet-x3d-synth", "--untrained", "--data", "synth", "size=2",
                     "--clips", "2", "--device", "cpu", "--workers", "0"])
    assert code == 2
    assert "--clips 2" in capsys.readouterr().err
