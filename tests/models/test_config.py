"""Configs: JSON round-trip, validation with clear errors, overrides, the Table 2 ablations."""
import json

import pytest

import s2d
from s2d.models.config import FUSION_ABLATIONS, BaselineConfig, ConfigError, S2DConfig, config_from_dict


@pytest.mark.parametrize("name", s2d.list_models())
def test_json_round_trip(name):
    cfg = s2d.get_config(name)
    text = cfg.to_json()
    json.loads(text)  # plain JSON, no callables
    assert config_from_dict(json.loads(text)) == cfg
    assert type(cfg).from_json(text) == cfg


@pytest.mark.parametrize("change,match", [
    (dict(fusion={"stages": ["res6"]}), "fusion stage 'res6'"),
    (dict(fusion={"stages": ["res3", "res3"]}), "repeat"),
    (dict(sampler={"frames": 1}), "sampler.frames"),
    (dict(sampler={"temporal": "cubic"}), "sampler.temporal"),
    (dict(topk=0), "topk"),
    (dict(topk_scheme="sparse"), "topk_scheme"),
    (dict(detail={"arch": "tsm_mobilenet_v2"}), "detail.arch"),
    (dict(detail={"arch": "x3d_m"}), "one family"),
    (dict(synopsis={"arch": "vgg16"}), "synopsis.arch"),
    (dict(labels="imagenet"), "label list"),
    (dict(synopsis={"framez": 3}), "unknown SynopsisConfig keys"),
])
def test_validation_names_the_problem(change, match):
    with pytest.raises(ConfigError, match=match):
        s2d.get_config("s2dnet-tsm-sthv2", **change)


def test_unknown_top_level_key():
    data = s2d.get_config("s2dnet-tsm-sthv2").to_dict()
    data["dropout_rate"] = 0.3
    with pytest.raises(ConfigError, match="dropout_rate"):
        config_from_dict(data)


def test_unknown_model_suggests_close_names():
    with pytest.raises(KeyError, match="s2dnet-tsm-sthv2"):
        s2d.create("s2dnet-tsm-sthv3")


def test_overrides_merge_into_sub_configs():
    cfg = s2d.get_config("s2dnet-tsm-sthv2", sampler={"temporal": "linear"}, topk=3)
    assert cfg.sampler.temporal == "linear" and cfg.sampler.frames == 12 and cfg.topk == 3
    assert cfg.fusion == FUSION_ABLATIONS["d0"]


def test_table2_ablations_are_expressible():
    for key, fusion in FUSION_ABLATIONS.items():
        model = s2d.create("s2dnet-tsm-sthv2", fusion=fusion)
        assert sorted(model.detail.fusion) == sorted(fusion.stages), key
        expected_in = 2048 + (256 + 174 if fusion.classifier else 0)
        assert model.detail.fc.in_features == expected_in


def test_list_models():
    names = s2d.list_models()
    assert {"s2dnet-tsm-minik", "s2dnet-tsm-sthv2", "s2dnet-tsm-sthv1", "s2dnet-x3d-k400", "tsm-r50", "x3d-m"} <= set(names)
    assert s2d.list_models("s2dnet-tsm-*") == ["s2dnet-tsm-minik", "s2dnet-tsm-sthv1", "s2dnet-tsm-sthv2"]


def test_baseline_and_s2d_kinds():
    assert isinstance(s2d.get_config("tsm-r50"), BaselineConfig)
    assert isinstance(s2d.get_config("s2dnet-x3d-k400"), S2DConfig)
    assert s2d.get_config("s2dnet-x3d-k400").family == "x3d"
