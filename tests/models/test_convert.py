"""Checkpoint converters: official S2DNet, pytorchvideo and SlowFast X3D, torchvision ImageNet.

Nothing is downloaded: the checkpoints are state dicts built from the recorded key lists of the
official checkpoints and of pytorchvideo (`tests/data/official/`), from our own models renamed to the
foreign layout, or from randomly initialised torchvision models.
"""
from __future__ import annotations

import argparse
import re
from pathlib import Path

import pytest
import torch
import torchvision
from torch import nn

import s2d
from s2d.hub.convert import (BackboneWeights, CheckpointError, convert_official, convert_pytorchvideo_x3d,
                             convert_slowfast_x3d, convert_torchvision, load_backbone_weights, load_checkpoint_file,
                             load_state_dict_strict)

OFFICIAL = Path(__file__).resolve().parents[1] / "data" / "official"


def run_cli(module: str, argv: list[str]) -> int:
    """Run one `python -m s2d <module>` sub-command in-process."""
    import importlib

    mod = importlib.import_module(f"s2d.cli.{module}")
    parser = argparse.ArgumentParser()
    mod.add_parser(parser)
    return mod.run(parser.parse_args(argv))


def randomise(model: nn.Module, seed: int = 0) -> nn.Module:
    """Every parameter and BN statistic random, so a wrong mapping changes the outputs."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, t in model.state_dict().items():
            if t.is_floating_point():
                if name.endswith("running_var"):
                    t.copy_(torch.rand(t.shape, generator=g) + 0.5)
                else:
                    t.copy_(torch.randn(t.shape, generator=g) * 0.1)
    return model


# -- official S2DNet ------------------------------------------------------------------------------

def official_keys(name: str) -> list[tuple[str, tuple[int, ...], torch.dtype]]:
    rows = []
    for line in (OFFICIAL / name).read_text().splitlines():
        key, shape, dtype = line.split("\t")
        dims = tuple(int(d) for d in re.findall(r"\d+", shape))
        rows.append((key, dims, getattr(torch, dtype)))
    return rows


def random_official_state(name: str) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(1)
    return {k: (torch.randn(shape, generator=g) if dtype.is_floating_point else torch.zeros(shape, dtype=dtype))
            for k, shape, dtype in official_keys(name)}


@pytest.mark.parametrize("keys, model_name", [("sthv2_efficient_keys.tsv", "s2dnet-tsm-sthv2"),
                                              ("minik_keys.tsv", "s2dnet-tsm-minik")])
def test_official_layout_loads_strictly(keys, model_name):
    model = s2d.create(model_name)
    state = random_official_state(keys)
    converted = convert_official(state, model.config.fusion.stages)
    assert len(converted) == len(state) == len(model.state_dict())
    load_state_dict_strict(model, converted, keys)
    for off_key, ours in (("DNet.model.new_fc.weight", "detail.fc.weight"),
                          ("SNet.model.base_model.features.3.conv.0.net.weight",
                           "synopsis.backbone.features.3.conv.0.0.net.weight")):
        assert torch.equal(model.state_dict()[ours], state[off_key])


def test_official_checkpoint_cli_reproduces_outputs(tmp_path):
    """Weights written in the official layout, converted by the CLI, give the original outputs.

    The detail volume is shrunk to 48² and the dense clip to 8 × 64² (no weight depends on them) to keep
    the ResNet-50 cheap; everything else is the registered SSv2 architecture.
    """
    original = randomise(s2d.create("s2dnet-tsm-sthv2", sampler={"size": 48}, dense_frames=8, dense_size=64)).eval()
    config = tmp_path / "config.json"
    config.write_text(original.config.to_json())
    rows = official_keys("sthv2_efficient_keys.tsv")
    mapping = convert_official({k: torch.zeros(0) for k, _, _ in rows}, original.config.fusion.stages)
    inverse = {}
    for (off_key, shape, _), ours in zip(rows, mapping):
        inverse[off_key] = original.state_dict()[ours]
        assert tuple(inverse[off_key].shape) == shape, off_key
    assert sorted(mapping) == sorted(original.state_dict())
    ckpt = tmp_path / "official.pth.tar"
    torch.save({"epoch": 3, "state_dict": {f"module.{k}": v for k, v in inverse.items()}}, ckpt)

    out = tmp_path / "converted"
    assert run_cli("convert", ["official", str(ckpt), "--config", str(config), "--out", str(out)]) == 0
    assert sorted(p.name for p in out.iterdir()) == ["config.json", "model.safetensors"]
    loaded = s2d.load(str(out))
    frames = torch.randint(0, 256, (2, 8, 3, 64, 64), dtype=torch.uint8)
    with torch.no_grad():
        a, b = original(frames), loaded(frames)
    torch.testing.assert_close(b.logits, a.logits, rtol=1e-5, atol=1e-6)
    assert torch.equal(b.topk, a.topk)


def test_official_cli_names_bad_keys(tmp_path, capsys):
    state = random_official_state("sthv2_efficient_keys.tsv")
    state.pop("DNet.model.new_fc.bias")
    state["DNet.extra.weight"] = torch.zeros(3)
    ckpt = tmp_path / "bad.pth"
    torch.save(state, ckpt)
    assert run_cli("convert", ["official", str(ckpt), "--model", "s2dnet-tsm-sthv2", "--out",
                               str(tmp_path / "o")]) == 1
    err = capsys.readouterr().err
    assert "detail.fc.bias" in err and "DNet.extra.weight" in err


def test_pickled_objects_are_refused(tmp_path, capsys):
    ckpt = tmp_path / "pickled.pth"
    torch.save({"state_dict": {"w": torch.zeros(1)}, "optimizer": argparse.Namespace(lr=0.1)}, ckpt)
    with pytest.raises(CheckpointError, match="never unpickles"):
        load_checkpoint_file(ckpt)
    assert run_cli("convert", ["pytorchvideo", str(ckpt), "--model", "x3d-m", "--out", str(tmp_path / "o")]) == 1
    assert "weights-only" in capsys.readouterr().err


# -- pytorchvideo X3D ---------------------------------------------------------------------------------

def pytorchvideo_keys() -> list[tuple[str, tuple[int, ...]]]:
    rows = []
    for line in (OFFICIAL / "pytorchvideo-x3d-m-keys.txt").read_text().splitlines():
        if line.startswith("#") or not line.strip():
            continue
        key, shape = line.split(" ", 1)
        rows.append((key, tuple(int(d) for d in re.findall(r"\d+", shape))))
    return rows


def test_pytorchvideo_x3d_m_converts_into_baseline_and_s2dnet(tmp_path):
    g = torch.Generator().manual_seed(2)
    state = {k: (torch.randn(s, generator=g) if not k.endswith("num_batches_tracked") else torch.tensor(7))
             for k, s in pytorchvideo_keys()}
    weights = convert_pytorchvideo_x3d({"model_state": {f"model.{k}": v for k, v in state.items()}})
    assert set(weights.classifier) == {"weight", "bias"} and len(weights.backbone) == len(state) - 2

    baseline = s2d.create("x3d-m")  # Kinetics-400: the classifier fits too
    report = load_backbone_weights(baseline, weights)
    assert any(line.startswith("fc:") for line in report)
    sd = baseline.state_dict()
    assert torch.equal(sd["backbone.net.blocks.0.conv.conv_t.weight"], state["blocks.0.conv.conv_t.weight"])
    assert torch.equal(sd["fc.weight"], state["blocks.5.proj.weight"])

    model = s2d.create("s2dnet-x3d-k400")
    with pytest.raises(CheckpointError, match="choose with part"):
        load_backbone_weights(model, weights)
    load_backbone_weights(model, weights, "detail")
    assert torch.equal(model.state_dict()["detail.backbone.net.blocks.4.res_blocks.0.branch2.conv_c.weight"],
                       state["blocks.4.res_blocks.0.branch2.conv_c.weight"])

    ckpt = tmp_path / "x3d_m.pyth"
    torch.save({"model_state": state, "epoch": 300}, ckpt)
    out = tmp_path / "init"
    assert run_cli("convert", ["pytorchvideo", str(ckpt), "--model", "s2dnet-x3d-k400", "--part",
                               "synopsis,detail", "--out", str(out)]) == 0
    loaded = s2d.load(str(out))
    for part in ("synopsis", "detail"):
        assert torch.equal(loaded.state_dict()[f"{part}.backbone.net.blocks.2.res_blocks.1.branch2.conv_a.weight"],
                           state["blocks.2.res_blocks.1.branch2.conv_a.weight"])


def test_x3d_wrong_architecture_is_named():
    weights = convert_pytorchvideo_x3d(s2d.create("x3d-m").backbone.net.state_dict())  # X3D-M into X3D-L
    with pytest.raises(CheckpointError, match="missing keys") as err:
        load_backbone_weights(s2d.create("x3d-m", arch="x3d_l"), weights)
    assert "net.blocks.1.res_blocks.3.branch2.conv_a.weight" in str(err.value)
    tiny = convert_pytorchvideo_x3d(s2d.create("x3d-m", arch="x3d_tiny").backbone.net.state_dict())
    with pytest.raises(CheckpointError, match="shape mismatches"):
        load_backbone_weights(s2d.create("x3d-m"), tiny)


# -- SlowFast X3D ----------------------------------------------------------------------------------------

# pytorchvideo → SlowFast names, written from SlowFast's module tree (video_model_builder.X3D:
# s1.pathway0_stem {conv_xy, conv, bn}, s{2..5}.pathway0_res{j} {branch1, branch1_bn, branch2
# {a, a_bn, b, b_bn, se.fc1, se.fc2, c, c_bn}}, head {conv_5, conv_5_bn, lin_5, projection}).
_TO_SLOWFAST = [
    (r"^blocks\.0\.conv\.conv_t\.", "s1.pathway0_stem.conv_xy."),
    (r"^blocks\.0\.conv\.conv_xy\.", "s1.pathway0_stem.conv."),
    (r"^blocks\.0\.norm\.", "s1.pathway0_stem.bn."),
    (r"\.branch1_conv\.", ".branch1."), (r"\.branch1_norm\.", ".branch1_bn."),
    (r"\.branch2\.conv_a\.", ".branch2.a."), (r"\.branch2\.norm_a\.", ".branch2.a_bn."),
    (r"\.branch2\.conv_b\.", ".branch2.b."), (r"\.branch2\.norm_b\.0\.", ".branch2.b_bn."),
    (r"\.branch2\.norm_b\.1\.block\.0\.", ".branch2.se.fc1."),
    (r"\.branch2\.norm_b\.1\.block\.2\.", ".branch2.se.fc2."),
    (r"\.branch2\.conv_c\.", ".branch2.c."), (r"\.branch2\.norm_c\.", ".branch2.c_bn."),
    (r"^blocks\.5\.pool\.pre_conv\.", "head.conv_5."), (r"^blocks\.5\.pool\.pre_norm\.", "head.conv_5_bn."),
    (r"^blocks\.5\.pool\.post_conv\.", "head.lin_5."), (r"^blocks\.5\.proj\.", "head.projection."),
]


def to_slowfast(state: dict[str, torch.Tensor], eps: float = 1e-5, seed: int = 3) -> dict[str, torch.Tensor]:
    """Our X3D state dict in SlowFast's layout, with the extra res2 shortcut BN SlowFast has: a
    random BN is inserted and the shortcut conv and `c_bn` bias compensate, so the network computes
    the same function."""
    out = {}
    for key, value in state.items():
        new = key
        if m := re.match(r"blocks\.([1-4])\.res_blocks\.(\d+)\.", key):
            new = f"s{int(m.group(1)) + 1}.pathway0_res{m.group(2)}." + key[m.end():]
        for pattern, repl in _TO_SLOWFAST:
            new = re.sub(pattern, repl, new)
        out[new] = value.clone()
    conv = out["s2.pathway0_res0.branch1.weight"]
    c = conv.shape[0]
    g = torch.Generator().manual_seed(seed)
    gamma, beta = torch.rand(c, generator=g) + 0.5, torch.randn(c, generator=g) * 0.1
    mean, var = torch.randn(c, generator=g) * 0.1, torch.rand(c, generator=g) + 0.5
    scale = gamma / torch.sqrt(var + eps)
    out["s2.pathway0_res0.branch1.weight"] = conv / scale.view(-1, 1, 1, 1, 1)
    out["s2.pathway0_res0.branch2.c_bn.bias"] = out["s2.pathway0_res0.branch2.c_bn.bias"] - (beta - mean * scale)
    out.update({"s2.pathway0_res0.branch1_bn.weight": gamma, "s2.pathway0_res0.branch1_bn.bias": beta,
                "s2.pathway0_res0.branch1_bn.running_mean": mean, "s2.pathway0_res0.branch1_bn.running_var": var,
                "s2.pathway0_res0.branch1_bn.num_batches_tracked": torch.tensor(0)})
    return out


def test_slowfast_x3d_m_layout():
    from s2d.models.backbones.x3d import x3d_m

    slowfast = to_slowfast(x3d_m().state_dict())
    assert len(slowfast) == 563 + 5 == 568  # SlowFast X3D-M: one shortcut BN more than pytorchvideo
    for key in ("s1.pathway0_stem.conv_xy.weight", "s1.pathway0_stem.conv.weight", "s2.pathway0_res0.branch1_bn.bias",
                "s3.pathway0_res0.branch1_bn.bias", "s5.pathway0_res6.branch2.c_bn.running_var",
                "s2.pathway0_res0.branch2.se.fc1.weight", "head.conv_5.weight", "head.lin_5.weight",
                "head.projection.bias"):
        assert key in slowfast, key
    weights = convert_slowfast_x3d({"model_state": slowfast, "cfg": "X3D", "epoch": 1})
    load_backbone_weights(s2d.create("x3d-m"), weights)  # strict


def test_slowfast_x3d_round_trip_gives_same_outputs(tmp_path):
    """Our X3D → SlowFast layout (with the extra shortcut BN) → converter: same logits."""
    from s2d.models.backbones.x3d import x3d_tiny

    reference = randomise(x3d_tiny()).eval()  # same block structure as X3D-M, ~1000x cheaper
    slowfast = to_slowfast(reference.state_dict())
    baseline = s2d.create("x3d-m", arch="x3d_tiny", frames=4, size=64, dense_frames=4, dense_size=64)
    load_backbone_weights(baseline, convert_slowfast_x3d({"model_state": slowfast}))
    baseline.eval()
    clip = torch.randn(2, 3, 4, 64, 64)
    with torch.no_grad():
        expected = reference(clip)
        _, pooled = baseline.backbone.forward_head_features(baseline.backbone.net.forward_features(clip))
        got = baseline.fc(pooled[:, 0])
    torch.testing.assert_close(got, expected, rtol=1e-4, atol=1e-5)

    ckpt = tmp_path / "slowfast_x3d.pyth"
    torch.save({"model_state": slowfast, "epoch": 1}, ckpt)
    args = ["--model", "x3d-m", "--out", str(tmp_path / "o")]
    assert run_cli("convert", ["slowfast", str(ckpt), *args]) == 1  # X3D-tiny weights do not fit X3D-M
    assert run_cli("convert", ["slowfast", str(tmp_path / "model.pkl"), *args]) == 1  # Caffe2 refused


def test_slowfast_unknown_keys_are_named():
    from s2d.models.backbones.x3d import x3d_m

    slowfast = to_slowfast(x3d_m().state_dict())
    slowfast["head.lin_5_bn.weight"] = torch.ones(2048)
    with pytest.raises(CheckpointError, match="head.lin_5_bn.weight"):
        load_backbone_weights(s2d.create("x3d-m"), convert_slowfast_x3d(slowfast))


# -- torchvision ImageNet -> TSM ------------------------------------------------------------------------

def test_torchvision_resnet50_and_mobilenet_v2_into_tsm(tmp_path):
    resnet = randomise(torchvision.models.resnet50(weights=None), seed=4)
    mobilenet = randomise(torchvision.models.mobilenet_v2(weights=None), seed=5)
    r_ckpt, m_ckpt = tmp_path / "resnet50.pth", tmp_path / "mobilenet_v2.pth"
    torch.save(resnet.state_dict(), r_ckpt)
    torch.save(mobilenet.state_dict(), m_ckpt)

    out = tmp_path / "init"
    assert run_cli("convert", ["torchvision", str(r_ckpt), str(m_ckpt), "--model", "s2dnet-tsm-sthv2",
                               "--out", str(out)]) == 0
    model = s2d.load(str(out))
    sd = model.state_dict()
    assert torch.equal(sd["detail.backbone.layer3.2.conv1.net.weight"], resnet.state_dict()["layer3.2.conv1.weight"])
    assert torch.equal(sd["detail.backbone.bn1.running_var"], resnet.state_dict()["bn1.running_var"])
    assert torch.equal(sd["synopsis.backbone.features.5.conv.0.0.net.weight"],
                       mobilenet.state_dict()["features.5.conv.0.0.weight"])
    assert torch.equal(sd["synopsis.backbone.features.18.1.weight"], mobilenet.state_dict()["features.18.1.weight"])

    # With shifting disabled (fold 0) the TSM backbones compute torchvision's features exactly.
    from s2d.models.backbones import run_backbone
    from s2d.models.backbones.tsm import TSMMobileNetV2, TSMResNet50

    def resnet_features(m, x):
        x = m.maxpool(m.relu(m.bn1(m.conv1(x))))
        return torch.flatten(m.avgpool(m.layer4(m.layer3(m.layer2(m.layer1(x))))), 1)

    def mobilenet_features(m, x):
        return m.features(x).mean((2, 3))

    for source, target, features in ((resnet, TSMResNet50(1, shift_div=10**6), resnet_features),
                                     (mobilenet, TSMMobileNetV2(1, shift_div=10**6), mobilenet_features)):
        weights = convert_torchvision(source.state_dict(), target)
        load_state_dict_strict(target, weights.backbone, "torchvision")
        x = torch.randn(2, 3, 64, 64)
        source.eval(), target.eval()
        with torch.no_grad():
            _, pooled = run_backbone(target, x)
            torch.testing.assert_close(pooled[:, 0], features(source, x), rtol=1e-5, atol=1e-5)


def test_torchvision_checkpoint_must_fit_a_backbone(tmp_path):
    weights = convert_torchvision(torchvision.models.resnet50(weights=None).state_dict())
    assert weights.arch == "resnet50" and set(weights.classifier) == {"weight", "bias"}
    with pytest.raises(CheckpointError, match="fits no backbone"):
        load_backbone_weights(s2d.create("x3d-m"), weights)
    with pytest.raises(CheckpointError, match="not a torchvision"):
        convert_torchvision({"foo.weight": torch.zeros(1)})
    assert isinstance(weights, BackboneWeights)
