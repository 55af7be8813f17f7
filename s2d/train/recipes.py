"""The paper's training recipes (supplement §3) as `TrainConfig` dicts, usable as CONFIG by name.

    python -m s2d train s2dnet-tsm-sthv2 data.root=/data/sthv2/videos \\
        data.train.json_file=/data/sthv2/train.json data.val.json_file=/data/sthv2/validation.json

SGD with momentum 0.9, weight decay 1e-3, batch 64, dropout 0.5 (the model configs' value),
cosine decay. TSM variants (Mini-Kinetics, Something-Something V1/V2): 40 + 80 epochs at lr 0.001,
backbones initialised from ImageNet (convert them with `python -m s2d convert torchvision ...
--model NAME --out DIR` and set `model.init=DIR`). X3D on Kinetics-400: 50 + 100 epochs at
lr 0.005, random init. Paths to annotations are left for the user to fill in; the dataset
factories name the missing ones.

`s2dnet-x3d-synth` trains the synthetic benchmark's model (`s2d.synth`) on CPU, two threads,
in under half an hour; `s2dnet-x3d-synth-quick` is the same recipe scaled down to about a minute
(a smoke test, not a useful model). See `synth_recipe` for why it departs from the paper's.
"""
from __future__ import annotations

from typing import Any

from s2d.train.errors import check

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


def synth_recipe(scale: float = 1.0, epoch_clips: int = 1600, val_clips: int = 512) -> dict[str, Any]:
    """The synthetic benchmark's recipe, every phase's length times `scale` (whole batches, and
    whole epochs of `epoch_clips` for the stages).

    Tiny X3D nets trained from scratch on procedural clips (each phase reads fresh clips):
    synopsis pre-training 4800 clips; detail pre-training 16000 on object-centred views (the
    glyph's centre ± 12 px, strides 0.8-2.0 px: the synthetic analogue of the paper's
    ImageNet-pretrained detail nets, which recognise objects anywhere in a view); no stage 1 (its
    centre crops would teach the detail net to do without the glyph); locator warm-up 1024 clips
    onto a centred window at the model's fixed 1.75-px stride; stage 2 12800 clips. Batch 16, data seed 0, model seed 0. AdamW
    (lr 3e-3, weight decay 1e-3), because SGD did not get these from-scratch nets past chance on
    the glyphs within the budget; a 5% warm-up and a cosine per stage and phase. Gradients are
    clipped to norm 10, the locator's apart to norm 1, and the locator runs at 0.1× the lr (at
    0.3× its window diverged). bench/synthetic/results.md has the measurements behind each choice.
    """
    batch = 16

    def clips(n: int, unit: int = batch) -> int:
        return max(unit, round(n * scale / unit) * unit)

    epoch = min(epoch_clips, clips(6400))
    check(epoch % batch == 0, f"synth recipe: epoch_clips must be a multiple of the batch {batch}")
    stage1, stage2 = 0, clips(12800, epoch)
    return {
        "model": {"name": "s2dnet-x3d-synth", "overrides": {}, "init": None},
        "data": {"kind": "synth", "root": None, "args": {"seed": 0}, "train": {"size": epoch},
                 "val": {"size": val_clips}, "workers": 1, "val_every": 4, "val_batch_size": 32},
        "stages": {"stage1_clips": stage1, "stage2_clips": stage2,
                   "stage1_epochs": stage1 // epoch, "stage2_epochs": stage2 // epoch},
        "optim": {"name": "adamw", "lr": 3e-3, "ref_batch": batch, "weight_decay": 1e-3, "warmup_fraction": 0.05,
                  "restart_per_stage": True, "clip_grad": 10.0, "clip_grad_groups": {"locator": 1.0},
                  "lr_ratios": {"locator": 0.1}},
        "phases": {"synopsis_pretrain": {"clips": clips(4800)},
                   "detail_pretrain": {"clips": clips(16000), "view": "focus", "jitter_px": 12.0,
                                       "stride_min": 0.8, "stride_max": 2.0},
                   "locator_warmup": {"clips": clips(1024), "target_stride_px": 1.75}},
        "batch_size": batch, "seed": 0, "device": "cpu", "threads": 2, "flush_denormal": True,
        "out_dir": "runs/s2dnet-x3d-synth" if scale == 1 else "runs/s2dnet-x3d-synth-quick",
    }


def finetune_recipe() -> dict[str, Any]:
    """Fine-tuning a trained model onto a folder of labelled videos (`ROOT/<class>/<video>`).

    The architecture and weights are `model.init`'s (a zoo name, `hf-hub:` or a model folder); the
    classes are the folder's, so the class-dependent layers start anew and everything else starts
    trained. Where to look transfers, what to read there is new: the synopsis backbone and the
    locator stay fixed (`model.freeze`), the rest trains for 8 epochs of stage 2 (the locator is
    trained already) with AdamW at lr 3e-3, cosine after a 5% warm-up. Chosen on the validation
    split of the synthetic transfer task (bench/synthetic/results.md): the trained parts at a tenth
    of the lr and nothing frozen reached 58% there, the detail net at the full lr 64%, everything
    but the frozen parts at 3e-3 89%. A large pretrained detail net (ResNet-50) may want a lower
    lr (`optim.lr=3e-4`). `model.freeze=[]` trains everything; freezing all but the classifiers
    (`synopsis.backbone,locator,context,detail.backbone,detail.fusion`; a baseline's `backbone`) is a
    linear probe.
    """
    return {
        "model": {"name": None, "overrides": {}, "init": None, "freeze": ["synopsis.backbone", "locator"]},
        "data": {"kind": "folder", "root": None, "args": {}, "train": {}, "val": {}, "workers": 2},
        "stages": {"stage1_epochs": 0, "stage2_epochs": 8},
        "optim": {"name": "adamw", "lr": 3e-3, "ref_batch": 16, "weight_decay": 1e-3, "warmup_fraction": 0.05,
                  "clip_grad": 10.0, "clip_grad_groups": {"locator": 1.0}, "lr_ratios": {}},
        "batch_size": 16, "out_dir": "runs/finetune",
    }


RECIPES["finetune"] = finetune_recipe()
RECIPES["s2dnet-x3d-synth"] = synth_recipe()
RECIPES["s2dnet-x3d-synth-quick"] = synth_recipe(1 / 100, epoch_clips=64, val_clips=64)
