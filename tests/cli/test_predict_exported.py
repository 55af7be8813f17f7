"""Exported graphs as models (`s2d.inference.exported`): `predict_many`, `predict` and
`python -m s2d predict --model FILE.onnx|.pt2` give the eager model's records (labels, probabilities
within 1e-4, the window), `--output` resumes and names the graph file, `--vis` draws an exported
S2DNet's window; a graph without its metadata, a broken file or another suffix is named."""
from __future__ import annotations

import hashlib
import json
import math
import shutil
from pathlib import Path

import pytest
import torch

import s2d
from s2d.cli import main
from s2d.inference.batch_predict import predict_many
from s2d.inference.export import export_metadata, export_program, metadata_path, save_program
from s2d.inference.exported import load_exported
from s2d.inference.optimize import InferenceOnlyError
from s2d.io.files import atomic_write_text

pytest.importorskip("onnxruntime")
pytest.importorskip("onnxscript")

#: Tiny X3D nets (as tests/cli/test_predict_many.py and tests/models/test_export.py size them), few
#: classes so that probabilities are far from zero.
TINY = {"s2dnet": ("s2dnet-x3d-k400", dict(num_classes=6, labels=None, dense_frames=8, dense_size=64,
                                           synopsis={"arch": "x3d_tiny", "frames": 4, "size": 32},
                                           sampler={"frames": 4, "size": 32}, detail={"arch": "x3d_tiny"})),
        "baseline": ("x3d-m", dict(arch="x3d_tiny", num_classes=4, labels=None, frames=4, size=32, dense_frames=8,
                                   dense_size=48))}
TOLERANCE = 1e-4


class Graphs:
    """One eager model, exported once (one torch.export program) as `<kind>.onnx` and/or `<kind>-p.pt2`,
    each with its metadata file."""

    def __init__(self, kind: str, folder: Path, formats: tuple[str, ...] = ("onnx", "pt2")):
        name, overrides = TINY[kind]
        torch.manual_seed(0)
        self.model = s2d.create(name, **overrides).eval()
        self.model.pretrained = True  # as a loaded model; an exported graph's weights count as trained
        program = export_program(self.model)
        self.paths = {fmt: folder / {"onnx": f"{kind}.onnx", "pt2": f"{kind}-p.pt2"}[fmt] for fmt in formats}
        for fmt, path in self.paths.items():
            opset = save_program(program, self.model, path, fmt)
            atomic_write_text(metadata_path(path), json.dumps(export_metadata(self.model, fmt, opset)))
        self.loaded = {fmt: load_exported(path) for fmt, path in self.paths.items()}


@pytest.fixture(scope="module")
def graphs(tmp_path_factory) -> dict[str, Graphs]:
    """The S2DNet as ONNX and .pt2, the baseline as .pt2 (its ONNX graph, a slow test's: translating a
    graph to ONNX is most of an export's time; the runtimes' parity is tests/models/test_export.py's)."""
    folder = tmp_path_factory.mktemp("graphs")
    return {"s2dnet": Graphs("s2dnet", folder), "baseline": Graphs("baseline", folder, ("pt2",))}


@pytest.fixture(scope="module")
def clips(tmp_path_factory, videos) -> list[str]:
    """Three short videos (one shorter than the dense clip, two frame shapes) and a file that is no video."""
    root = tmp_path_factory.mktemp("clips")
    paths = [videos.write_video(root / f"v{i}.mp4", num_frames=5 + 4 * i, width=80 - 16 * (i % 2), height=64)
             for i in range(3)]
    videos.write_not_video(root / "broken.mp4")
    return [str(p) for p in paths] + [str(root / "broken.mp4")]


def assert_same_records(got: list, want: list) -> None:
    """Same videos, labels and errors; probabilities and the window within `TOLERANCE`."""
    assert len(got) == len(want)
    for g, w in zip(got, want):
        g, w = (g if isinstance(g, dict) else g.to_dict()), (w if isinstance(w, dict) else w.to_dict())
        for key in ("labels", "synopsis"):
            if w.get(key) is None:
                assert g.get(key) is None
                continue
            assert [x["label"] for x in g[key]] == [x["label"] for x in w[key]]
            assert max((abs(a["prob"] - b["prob"]) for a, b in zip(g[key], w[key])), default=0.0) <= TOLERANCE
        if w.get("sampling") is not None:
            flat = [(a, b) for k in w["sampling"] for a, b in zip(*(torch.tensor(r["sampling"][k]).flatten().tolist()
                                                                    for r in (g, w)))]
            assert all(math.isclose(a, b, rel_tol=TOLERANCE, abs_tol=TOLERANCE) for a, b in flat), flat
        rest = {"labels", "synopsis", "sampling", "model", "topk"}  # the results file adds model and topk
        assert {k: v for k, v in g.items() if k not in rest} == {k: v for k, v in w.items() if k not in rest}


def check_predictions(g: Graphs, clips: list[str], want: list | None = None) -> None:
    """Every graph of `g` predicts `clips` as its eager model (`want`, else predicted here): in batches,
    and one video alone; an S2DNet's V̂ (for the pictures) is sampled where the eager model looked."""
    if want is None:
        want = eager_predictions(g.model, clips)
    assert want[-1].error and all(p.error is None for p in want[:-1])
    for fmt, exported in g.loaded.items():
        got = list(s2d.predict_many(exported, clips, workers=0, batch_size=2, topk=3, keep_detail=True))
        assert_same_records(got, want)
        one = exported.predict(clips[1], topk=3)  # one video, the model's own method
        assert_same_records([one], [want[1]])
        assert exported.identity.startswith(f"{g.paths[fmt].name} sha256:")
        assert exported.runtime == {"onnx": "onnxruntime", "pt2": "torch.export"}[fmt]
        if g.model.config.kind == "s2dnet":
            for a, b in zip(got[:-1], want[:-1]):
                assert a.outputs.detail_layout == b.outputs.detail_layout
                scale = float(b.outputs.detail.abs().max())
                assert float((a.outputs.detail - b.outputs.detail).abs().max()) <= 1e-3 * scale
                for x, y in zip(a.outputs.params.raw.as_tuple(), b.outputs.params.raw.as_tuple()):
                    assert torch.allclose(x, y, rtol=1e-3, atol=1e-3)


def eager_predictions(model: torch.nn.Module, clips: list[str]) -> list:
    return list(predict_many(model, clips, workers=0, batch_size=2, topk=3, keep_detail=True))


@pytest.fixture(scope="module")
def eager(graphs, clips) -> dict[str, list]:
    """The eager models' predictions of `clips` (batches of 2, top 3, V̂ kept)."""
    return {kind: eager_predictions(g.model, clips) for kind, g in graphs.items()}


@pytest.mark.parametrize("kind", ["s2dnet", "baseline"])
def test_exported_graphs_predict_as_the_eager_model(graphs, clips, eager, kind):
    check_predictions(graphs[kind], clips, eager[kind])


@pytest.mark.slow
def test_exported_baseline_on_onnx_runtime(clips, tmp_path):
    check_predictions(Graphs("baseline", tmp_path, ("onnx",)), clips)


def test_cli_predicts_resumes_and_draws(graphs, clips, eager, tmp_path, capsys):
    g = graphs["s2dnet"]
    onnx = str(g.paths["onnx"])
    out, vis = tmp_path / "r.jsonl", tmp_path / "vis"
    argv = ["predict", "--model", onnx, "--output", str(out), "--workers", "0", "--topk", "3"]
    assert main([*argv[:1], clips[0], *argv[1:], "--vis", str(vis)]) == 0
    assert sorted(p.name for p in vis.iterdir()) == ["v0.gif", "v0.png"]
    assert main([*argv[:1], *clips, *argv[1:]]) == 1  # the broken file fails; the first video is skipped
    assert "1 of 4 videos already recorded, skipped" in capsys.readouterr().err
    records = [json.loads(line) for line in out.read_text().splitlines()]
    assert [r["path"] for r in records] == clips
    digest = hashlib.sha256(g.paths["onnx"].read_bytes()).hexdigest()[:12]
    assert {(r["model"], r["topk"]) for r in records} == {(f"s2dnet.onnx sha256:{digest}", 3)}
    assert_same_records(records, eager["s2dnet"])
    other = tmp_path / "other.onnx"  # another graph file (here the same graph renamed): refused
    shutil.copy(onnx, other)
    shutil.copy(metadata_path(onnx), metadata_path(other))
    assert main([*argv[:1], *clips, "--model", str(other), *argv[3:]]) == 2
    assert f"holds the results of model 's2dnet.onnx sha256:{digest}', not of this run's 'other.onnx" in \
        capsys.readouterr().err


def test_missing_or_broken_files_are_named(graphs, tmp_path, capsys):
    g = graphs["s2dnet"]
    with pytest.raises(ValueError, match=r"model\.pth: an exported graph ends in \.onnx or \.pt2"):
        load_exported(tmp_path / "model.pth")
    with pytest.raises(FileNotFoundError, match=r"gone\.onnx: no such graph file"):
        load_exported(tmp_path / "gone.onnx")
    lone = tmp_path / "lone.onnx"
    shutil.copy(g.paths["onnx"], lone)
    with pytest.raises(FileNotFoundError, match=r"lone\.onnx: its metadata file .*lone\.json is missing"):
        load_exported(lone)
    (tmp_path / "lone.json").write_text("{not json")
    with pytest.raises(ValueError, match=r"lone\.json: not the metadata of an exported graph \(not JSON"):
        load_exported(lone)
    (tmp_path / "lone.json").write_text(json.dumps({"labels": []}))
    with pytest.raises(ValueError, match=r"lone\.json: not the metadata of an exported graph \(no config, outputs\)"):
        load_exported(lone)
    meta = json.loads(metadata_path(g.paths["onnx"]).read_text())
    (tmp_path / "lone.json").write_text(json.dumps({**meta, "labels": ["a"]}))
    with pytest.raises(ValueError, match=r"lone\.json: labels must be 6 class names"):
        load_exported(lone)
    for junk, fmt, message in [("junk.onnx", "onnx", "ONNX Runtime cannot load it"),
                               ("junk.pt2", "pt2", "torch.export cannot load it")]:
        (tmp_path / junk).write_bytes(b"not a graph")
        (tmp_path / junk).with_suffix(".json").write_text(json.dumps({**meta, "format": fmt}))
        with pytest.raises(ValueError, match=rf"{junk.replace('.', '[.]')}: {message}"):
            load_exported(tmp_path / junk)
    assert main(["predict", "x.mp4", "--model", str(lone.with_name("gone.pt2"))]) == 2
    assert "gone.pt2: no such graph file" in capsys.readouterr().err
    assert main(["predict", "x.mp4", "--model", str(g.paths["onnx"]), "--untrained"]) == 2
    assert "--untrained does not apply to an exported graph" in capsys.readouterr().err


def test_an_exported_model_refuses_training_and_float_frames(graphs):
    exported = graphs["baseline"].loaded["pt2"]
    with pytest.raises(InferenceOnlyError, match="exported graph"):
        exported.train()
    c = exported.config
    with pytest.raises(TypeError, match="takes uint8 frames"):
        exported(torch.zeros(1, c.dense_frames, 3, c.dense_size, c.dense_size))
    with pytest.raises(ValueError, match="dense clip"):
        exported(torch.zeros(1, c.dense_frames, 3, 8, 8, dtype=torch.uint8))
