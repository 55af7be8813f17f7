"""The paper's training recipes (supplement §3) as `TrainConfig` dicts, usable as CONFIG by name.

    python -m s2d train s2dnet-tsm-sthv2 data.root=/data/sthv2/videos \\
        data.train.json_file=/data/sthv2/train.json data.val.json_file=/data/sthv2/validation.json

SGD with momentum 0.9, weight decay 1e-3, batch 64, dropout 0.5 (the model configs' value),
cosine decay. TSM variants (Mini-Kinetics, Something-Something V1/V2): 40 + 80 epochs at lr 0.001,
backbones initialised from ImageNet (convert them with `python -m s2d convert torchvision ...
--model NAME --out DIR` and set `model.init=DIR`). X3D on Kinetics-400: 50 + 100 epochs at
lr 0.005, random init. Paths to annotations are left for the user to fill in; the dataset
factories name the missing ones.
"""
from __future__ import annotations

from typing import Any

_COMMON_OPTIM = {"ref_batch": 64, "momentum": 0.9, "weight_decay": 1e-3, "clip_grad": 20.0,
                 "lr_ratios": {"locator": 0.1}}


def _recipe(name: str, kind: str, stage1: int, stage2: int, lr: float, data_args: dict[str, Any]) -> dict[str, Any]:
    return {
        "model": {"name": name, "overrides": {}, "init": None},
        "data": {"kind": kind, "root": None, "args": data_args, "train": {}, "val": {}, "workers": 8},
        "stages": {"stage1_epochs": stage1, "stage2_epochs": stage2},
        "optim": {"lr": lr, **_COMMON_OPTIM},
        "batch_size": 64,
        "out_dir": f"runs/{name}",
    }


#: Recipe name (= the zoo model it trains) -> config dict.
RECIPES: dict[str, dict[str, Any]] = {
    "s2dnet-tsm-sthv2": _recipe("s2dnet-tsm-sthv2", "ssv2", 40, 80, 0.001, {}),
    "s2dnet-tsm-sthv1": _recipe("s2dnet-tsm-sthv1", "list", 40, 80, 0.001, {}),
    "s2dnet-tsm-minik": _recipe("s2dnet-tsm-minik", "kinetics", 40, 80, 0.001, {"drop_unknown": True}),
    "s2dnet-x3d-k400": _recipe("s2dnet-x3d-k400", "kinetics", 50, 100, 0.005, {}),
}
