"""Exported graphs (`s2d.inference.export`) give eager PyTorch's answers: ONNX Runtime and the
`torch.export` program (.pt2) against `model(frames)`, on a batch size and valid lengths the export
never saw, for every family; the shipped trained model agrees on synthetic test clips; the README's
torch-free video reader cuts the clip `s2d.io` cuts; a step that cannot be exported is named."""
from __future__ import annotations

import contextlib
import io
import json
import re
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

import s2d
from s2d.inference.export import S2D_OUTPUTS, ExportError, export_model, export_program, metadata_path, save_program
from s2d.models.clip import channels_first, clip_spec

ort = pytest.importorskip("onnxruntime")
pytest.importorskip("onnxscript")

REPO = Path(__file__).resolve().parents[2]
TOLERANCE = 1e-4  # max |exported - eager| / max |eager| of the logits
TINY_X3D_BASELINE = dict(arch="x3d_tiny", num_classes=4, labels=None, frames=4, size=32, dense_frames=8, dense_size=48)


def relative(a, b: torch.Tensor) -> float:
    b = b.detach().float()
    return float((torch.as_tensor(np.asarray(a)).float() - b).abs().max() / b.abs().max().clamp_min(1e-12))


def inputs(config, lengths: list[int], seed: int = 7) -> tuple[torch.Tensor, torch.Tensor]:
    """Decoded-layout uint8 frames `[B, T, S, S, 3]` and their valid lengths."""
    g = torch.Generator().manual_seed(seed)
    T, S = config.dense_frames, config.dense_size
    frames = torch.randint(0, 256, (len(lengths), T, S, S, 3), dtype=torch.uint8, generator=g)
    return frames, torch.tensor(lengths, dtype=torch.long)


class Exported:
    """One model exported once (one torch.export program), written as .onnx and .pt2."""

    def __init__(self, model: nn.Module, folder: Path):
        self.model = model.eval()
        program = export_program(model)
        self.onnx, self.pt2 = folder / "model.onnx", folder / "model.pt2"
        self.opset = save_program(program, model, self.onnx, "onnx")
        save_program(program, model, self.pt2, "pt2")
        self.session = ort.InferenceSession(str(self.onnx), providers=["CPUExecutionProvider"])
        self.program = torch.export.load(str(self.pt2)).module()

    def eager(self, frames: torch.Tensor, lengths: torch.Tensor):
        with torch.no_grad():
            return self.model(channels_first(frames), lengths)

    def run_onnx(self, frames: torch.Tensor, lengths: torch.Tensor) -> dict[str, np.ndarray]:
        names = [o.name for o in self.session.get_outputs()]
        return dict(zip(names, self.session.run(None, {"frames": frames.numpy(), "num_frames": lengths.numpy()})))

    def run_pt2(self, frames: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, ...]:
        with torch.no_grad():
            return self.program(frames, lengths)


def check_parity(exp: Exported, lengths: list[int]) -> dict[str, float]:
    """ONNX Runtime and the .pt2 program against eager on a batch of `len(lengths)`; returns the
    relative logit differences (asserted under `TOLERANCE`), and for S2DNet the same top-k and window."""
    frames, n = inputs(exp.model.config, lengths)
    ref = exp.eager(frames, n)
    onnx, pt2 = exp.run_onnx(frames, n), exp.run_pt2(frames, n)
    diffs = {"onnx": relative(onnx["logits"], ref.logits), "pt2": relative(pt2[0], ref.logits)}
    assert diffs["onnx"] < TOLERANCE and diffs["pt2"] < TOLERANCE, diffs
    if exp.model.config.kind == "s2dnet":
        assert list(onnx) == list(S2D_OUTPUTS)
        assert relative(onnx["synopsis_logits"], ref.snet_logits) < TOLERANCE
        assert np.array_equal(onnx["topk"], ref.topk.numpy()) and torch.equal(pt2[2], ref.topk)
        for i, name in enumerate(S2D_OUTPUTS[3:], start=3):
            window = getattr(ref.params, name)
            assert relative(onnx[name], window) < TOLERANCE and relative(pt2[i], window) < TOLERANCE, name
    else:
        assert list(onnx) == ["logits"] and len(pt2) == 1
    return diffs


@pytest.fixture(scope="module")
def synth(tmp_path_factory) -> Exported:
    """The shipped trained S2DNet (X3D family), exported."""
    return Exported(s2d.load("s2dnet-x3d-synth"), tmp_path_factory.mktemp("synth"))


@pytest.fixture(scope="module")
def x3d_baseline(tmp_path_factory) -> Exported:
    return Exported(s2d.create("x3d-m", **TINY_X3D_BASELINE), tmp_path_factory.mktemp("x3d-m"))


def test_x3d_s2dnet_matches_eager(synth):
    """A batch of 3 (the export saw 2) with valid lengths it never saw."""
    T = synth.model.config.dense_frames
    check_parity(synth, [T - 3, 1, T // 2 + 1])


def test_trained_model_agrees_on_synthetic_clips(synth):
    from s2d.synth.benchmark import SyntheticDetailDataset

    data = SyntheticDetailDataset("test", 16)
    frames = torch.stack([data[i]["frames"] for i in range(len(data))])
    n = torch.full((len(data),), synth.model.config.dense_frames, dtype=torch.long)
    eager = synth.eager(frames, n).logits.argmax(1)
    assert torch.equal(torch.as_tensor(synth.run_onnx(frames, n)["logits"]).argmax(1), eager)


def test_x3d_baseline_matches_eager(x3d_baseline):
    check_parity(x3d_baseline, [7, 1, 4])
    check_parity(x3d_baseline, [5])  # a single video


class TSMParts(nn.Module):
    """What the TSM family adds to an exported graph, without its ~1,700-node backbones (the whole TSM
    models are slow tests): a temporal shift in front of a conv, and the context fusion on flattened
    frames (`[B*T, C, H, W]`)."""

    def __init__(self, frames: int = 4):
        super().__init__()
        from s2d.models.backbones import TemporalShift
        from s2d.models.fusion import StageFusion

        self.shifted = TemporalShift(nn.Conv2d(3, 16, 3, padding=1), frames, shift_div=8)
        self.fusion = StageFusion(16, 5)
        self.frames = frames

    def forward(self, volume: torch.Tensor, m: torch.Tensor) -> torch.Tensor:
        x = self.shifted(volume.reshape(-1, *volume.shape[2:]))
        return self.fusion(x, m, "btchw", "torch").view(volume.shape[0], self.frames, *x.shape[1:])


def test_tsm_parts_match_eager(tmp_path):
    """The shift and the "btchw" fusion through torch.export, ONNX and ONNX Runtime."""
    model = TSMParts().eval()
    batch = torch.export.Dim("batch", min=1, max=64)
    with torch.no_grad():
        program = torch.export.export(model, (torch.randn(2, 4, 3, 12, 12), torch.randn(2, 5)),
                                      dynamic_shapes=({0: batch}, {0: batch}))
    with contextlib.redirect_stdout(io.StringIO()):
        torch.onnx.export(program, f=tmp_path / "parts.onnx", dynamo=True, input_names=["volume", "m"])
    session = ort.InferenceSession(str(tmp_path / "parts.onnx"), providers=["CPUExecutionProvider"])
    volume, m = torch.randn(3, 4, 3, 12, 12), torch.randn(3, 5)
    with torch.no_grad():
        ref = model(volume, m)
        assert relative(program.module()(volume, m), ref) < TOLERANCE
    assert relative(session.run(None, {"volume": volume.numpy(), "m": m.numpy()})[0], ref) < TOLERANCE


class UniformView(nn.Module):
    """The synopsis' input: uniform frames of each video's valid ones, normalised, resized (nearest)."""

    def forward(self, clip: torch.Tensor, num_frames: torch.Tensor) -> torch.Tensor:
        from s2d.models.clip import uniform_view

        return uniform_view(clip, num_frames, 8, 128, (0.45, 0.45, 0.45), (0.225, 0.225, 0.225))


def test_synopsis_view_exports_exactly(tmp_path):
    """Frame choice and the legacy nearest resize 224 → 128, where ONNX's Resize would read other pixels."""
    batch = torch.export.Dim("batch", min=1, max=64)
    clip = torch.randint(0, 256, (2, 12, 3, 224, 224), dtype=torch.uint8)
    program = torch.export.export(UniformView(), (clip, torch.tensor([12, 9])), dynamic_shapes=({0: batch}, {0: batch}))
    with contextlib.redirect_stdout(io.StringIO()):
        torch.onnx.export(program, f=tmp_path / "view.onnx", dynamo=True, input_names=["clip", "num_frames"])
    session = ort.InferenceSession(str(tmp_path / "view.onnx"), providers=["CPUExecutionProvider"])
    n = torch.arange(1, 13)  # every valid length
    clip = torch.randint(0, 256, (12, 12, 3, 224, 224), dtype=torch.uint8)
    got = session.run(None, {"clip": clip.numpy(), "num_frames": n.numpy()})[0]
    assert np.array_equal(got, UniformView()(clip, n).numpy())


def test_nearest_sources_are_torchs():
    from s2d.models.clip import nearest_sources

    for length, size in [(224, 128), (224, 144), (72, 64), (48, 32), (16, 32), (300, 7), (5, 13)]:
        expected = F.interpolate(torch.arange(length, dtype=torch.float32)[None, None], size=size)[0, 0].long()
        assert nearest_sources(length, size) == expected.tolist()


@pytest.mark.parametrize("dtype,temporal,sigma,layout", [(torch.uint8, "gaussian", 1.0, "bcthw"),
                                                         (torch.uint8, "linear", 0.5, "btchw"),
                                                         (torch.float32, "gaussian", 0.5, "btchw")])
def test_portable_sampler_equals_fast_path(dtype, temporal, sigma, layout):
    """The sampler's plain-op form (what exported graphs run) against the banded fast path."""
    from s2d_kernels.sampler import RawSampling
    from s2d_kernels.sampler.banded_op import filterbank_sample_banded
    from s2d_kernels.sampler.portable import filterbank_sample_portable

    B, T, H, W, T_d, S = 3, 10, 40, 56, 4, 16
    frames = torch.randint(0, 256, (B, T, 3, H, W), dtype=torch.uint8)
    frames = frames if dtype == torch.uint8 else frames.float() / 64 - 2
    p = RawSampling(torch.randn(B), 0.3 * torch.randn(B), *(torch.randn(B, T_d) for _ in range(2)),
                    *(torch.randn(B, T_d) - 1 for _ in range(2)))
    kw = dict(mean=(0.45, 0.4, 0.5), std=(0.2, 0.25, 0.3), temporal=temporal, layout=layout, sigma=sigma)
    n = torch.tensor([10, 7, 2])
    fast, portable = filterbank_sample_banded(frames, n, p, S, **kw), filterbank_sample_portable(frames, n, p, S, **kw)
    assert portable.shape == fast.shape
    torch.testing.assert_close(portable, fast, rtol=1e-6, atol=1e-6)


def test_shift_by_concatenation_equals_the_shift():
    from s2d.models.backbones.temporal_shift import _shift_by_concat, temporal_shift

    for channels in (16, 5):  # fold 2, fold 0
        x = torch.randn(2 * 4, channels, 3, 3)
        fold = channels // 8
        assert torch.equal(_shift_by_concat(x.view(2, 4, channels, 3, 3), fold).reshape(x.shape),
                           temporal_shift(x, 4, 8))


class Stub(nn.Module):
    """A one-op backbone, so that the exports below take a second."""

    layout, stage_names, embed_dim = "bcthw", (), 3

    def forward_stem(self, x: torch.Tensor) -> torch.Tensor:
        return x

    def forward_head_features(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return x, x.mean((2, 3, 4))[:, None]


def stub_model() -> nn.Module:
    model = s2d.create("x3d-m", **TINY_X3D_BASELINE).eval()
    model.backbone, model.fc = Stub(), nn.Linear(3, 4)
    return model


def test_export_model_writes_metadata_and_refuses_to_overwrite(tmp_path):
    model = stub_model()
    path = export_model(model, tmp_path / "m.pt2", "pt2")
    meta = json.loads(metadata_path(path).read_text())
    assert meta["inputs"]["frames"]["shape"] == ["batch", 8, 48, 48, 3] and meta["outputs"] == ["logits"]
    assert meta["labels"] == [f"class {i}" for i in range(4)]
    assert meta["short_side"] == clip_spec(model.config).short_side and meta["format"] == "pt2"
    with pytest.raises(FileExistsError, match="m.pt2 already exists"):
        export_model(model, path, "pt2")
    (tmp_path / "n.json").write_text("{}")  # the metadata file of n.onnx: refused as well
    with pytest.raises(FileExistsError, match="n.json already exists"):
        export_model(model, tmp_path / "n.onnx")
    with pytest.raises(ValueError, match="opset must be an integer >= 18"):
        export_model(model, tmp_path / "x.onnx", opset=11)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.json", "m.pt2", "n.json"]


class DataDependent(nn.Module):
    """A classifier whose Python branches on a value: torch.export cannot trace it."""

    def __init__(self, fc: nn.Linear):
        super().__init__()
        self.fc = fc

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if float(x.mean()) > 0:
            return self.fc(x)
        return -self.fc(x)


@torch.library.custom_op("s2dtest::mystery", mutates_args=())
def mystery(x: torch.Tensor) -> torch.Tensor:
    return x.clone()


mystery.register_fake(lambda x: torch.empty_like(x))


class Mystery(nn.Module):
    """A classifier that calls an op ONNX has no translation for."""

    def __init__(self, fc: nn.Linear):
        super().__init__()
        self.fc = fc

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.ops.s2dtest.mystery(self.fc(x))


def test_failed_export_names_module_and_op(tmp_path):
    model = stub_model()
    model.fc = DataDependent(model.fc)
    traced = (r"torch\.export: module fc \(DataDependent\), op `if float\(x\.mean\(\)\) > 0:` "
              r"\(models/test_export\.py:\d+\)")
    with pytest.raises(ExportError, match=traced):
        export_model(model, tmp_path / "a.onnx")
    model.fc = Mystery(model.fc.fc)
    with pytest.raises(ExportError, match=r"to ONNX: module fc \(Mystery\), op s2dtest\.mystery\.default"):
        export_model(model, tmp_path / "b.onnx")
    assert not list(tmp_path.iterdir())  # nothing written


def cli(*argv: str, capsys) -> tuple[int, str, str]:
    from s2d.cli import main

    code = main(["export", *argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_cli_exports_a_model_folder(tmp_path, capsys):
    model = s2d.create("x3d-m", **TINY_X3D_BASELINE)
    model.save_pretrained(tmp_path / "model")
    code, out, _ = cli(str(tmp_path / "model"), "--format", "pt2", "--out", str(tmp_path / "m.pt2"), capsys=capsys)
    assert code == 0 and "wrote" in out and "[B, 8, 48, 48, 3]" in out
    frames, n = inputs(model.config, [3, 8])
    with torch.no_grad():
        ref = model.eval()(channels_first(frames), n).logits
        assert relative(torch.export.load(str(tmp_path / "m.pt2")).module()(frames, n)[0], ref) < TOLERANCE
    assert json.loads((tmp_path / "m.json").read_text())["dense_frames"] == 8


@pytest.mark.parametrize("argv,message", [
    (["x3d-m", "--out", "{taken}"], "already exists"),  # never replaced
    (["x3d-m", "--out", "{free}.onnx"], "already exists"),  # its metadata file would be
    (["x3d-m", "--out", "{dir}/x.json"], "cannot end in .json"),
    (["x3d-m", "--out", "{dir}/missing/x.onnx"], "does not exist"),
    (["x3d-m", "--format", "pt2", "--opset", "18", "--out", "{dir}/x.pt2"], "--opset applies to --format onnx"),
    (["s2dnet-x3d-k400", "--out", "{dir}/x.onnx"], "add --untrained"),
    (["no-such-model", "--out", "{dir}/x.onnx"], "no-such-model"),
])
def test_cli_refuses_bad_usage(argv, message, tmp_path, capsys):
    """Exit 2 with one line naming the problem, and nothing written or replaced."""
    (tmp_path / "taken.onnx").write_text("mine")
    (tmp_path / "free.json").write_text("mine too")
    names = {"taken": tmp_path / "taken.onnx", "free": tmp_path / "free", "dir": tmp_path}
    code, _, err = cli(*(a.format(**names) for a in argv), capsys=capsys)
    assert code == 2 and message in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["free.json", "taken.onnx"]
    assert (tmp_path / "taken.onnx").read_text() == "mine"


def test_cli_refuses_an_opset_below_18(capsys):
    with pytest.raises(SystemExit) as exit_:
        cli("x3d-m", "--opset", "12", "--out", "x.onnx", capsys=capsys)
    assert exit_.value.code == 2 and "expected an integer >= 18" in capsys.readouterr().err


def readme_reader(meta: dict, folder: Path, monkeypatch) -> dict:
    """The README's torch-free snippet up to its video reader (`read_clip`), reading `meta` as its json."""
    text = (REPO / "README.md").read_text(encoding="utf-8")
    code = next(body for lang, body in re.findall(r"^```(\w*)\n(.*?)^```", text, re.M | re.S)
                if lang == "python" and "onnxruntime" in body)
    (folder / "s2dnet-x3d-synth.json").write_text(json.dumps(meta))
    monkeypatch.chdir(folder)
    namespace: dict = {}
    exec(compile(code[:code.index("clip, n = read_clip(")], "README.md", "exec"), namespace)  # noqa: S102
    return namespace


@pytest.mark.parametrize("frames,width,height", [(20, 96, 72), (5, 72, 100), (8, 64, 64)])
def test_readme_reader_cuts_the_clip_s2d_io_cuts(videos, tmp_path, monkeypatch, frames, width, height):
    """Same frames (uniform choice, a short video padded with its last frame), same size and crop."""
    from s2d.io import read_clip

    config = s2d.get_config("x3d-m", **TINY_X3D_BASELINE)
    spec = clip_spec(config)
    meta = {"dense_frames": config.dense_frames, "dense_size": config.dense_size, "short_side": spec.short_side}
    read = readme_reader(meta, tmp_path, monkeypatch)["read_clip"]
    for pattern in ("index", "ramp"):
        path = videos.write_video(tmp_path / f"{pattern}.mp4", num_frames=frames, width=width, height=height,
                                  pattern=pattern)
        clip, n = read(str(path))
        ref = read_clip(str(path), spec, backend="pyav")
        assert clip.shape == tuple(ref.frames.shape) and clip.dtype == np.uint8 and n == ref.num_frames
        if pattern == "index":
            assert videos.decode_indices(torch.from_numpy(clip)) == videos.decode_indices(ref.frames)
        else:  # a horizontal gradient: the crop's position shows in its values (resizers differ by a level or two)
            assert np.abs(clip.astype(float) - ref.frames.numpy()).mean() < 2.0


# -- slow: the other families' ONNX graphs, default-size models, the issue's 256 clips ----------------

@pytest.mark.slow
@pytest.mark.parametrize("name", ["s2dnet-tsm-sthv2", "tsm-r50"])
def test_tsm_family_matches_eager(name, tiny_overrides, tmp_path):
    """The TSM S2DNet and TSM-R50 at the suite's tiny sizes (their graphs take minutes to export here)."""
    check_parity(Exported(s2d.create(name, **tiny_overrides(name)), tmp_path), [7, 1, 4])


@pytest.mark.slow
@pytest.mark.parametrize("name", ["s2dnet-tsm-sthv2", "s2dnet-x3d-k400", "tsm-r50", "x3d-m"])
def test_default_size_models_match_eager(name, tmp_path):
    exp = Exported(s2d.create(name), tmp_path)
    T = exp.model.config.dense_frames
    check_parity(exp, [T - 5, 1, T // 2 + 1])


@pytest.mark.slow
def test_trained_model_agrees_on_256_clips(synth):
    from s2d.synth.benchmark import SyntheticDetailDataset

    data = SyntheticDetailDataset("test", 256)
    agree = 0
    for start in range(0, len(data), 32):
        frames = torch.stack([data[i]["frames"] for i in range(start, start + 32)])
        n = torch.full((32,), synth.model.config.dense_frames, dtype=torch.long)
        eager = synth.eager(frames, n).logits.argmax(1)
        onnx = torch.as_tensor(synth.run_onnx(frames, n)["logits"]).argmax(1)
        assert torch.equal(synth.run_pt2(frames, n)[0].argmax(1), eager)
        agree += int((onnx == eager).sum())
    assert agree == len(data)
