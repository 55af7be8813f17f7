"""Training and evaluation of s2d models: the paper's two-stage recipe, generic over datasets.

    python -m s2d train CONFIG.json optim.lr=0.01 data.root=/videos        # one process
    torchrun --nproc_per_node=8 -m s2d train CONFIG.json                   # DDP, global batch kept
    python -m s2d train CONFIG.json --resume                               # continue out_dir
    python -m s2d eval --model runs/x --data list list_file=val.txt --clips 1

    from s2d.train import TrainConfig, train, evaluate, register_dataset
    result = train("config.json", ["stages.stage1_epochs=1"])

See `s2d.train.config` for the configuration, `s2d.train.datasets` for data kinds,
`s2d.train.trainer` for the loop and checkpoints, `s2d.train.evaluate` for metrics.
"""
from s2d.train.config import (DataSection, ModelSection, OptimSection, StagesSection, TrainConfig, TrainConfigError,
                              apply_override, load_config)
from s2d.train.datasets import available_datasets, build_dataset, register_dataset, unregister_dataset
from s2d.train.evaluate import EvalResult, evaluate
from s2d.train.trainer import TrainResult, train

__all__ = ["DataSection", "ModelSection", "OptimSection", "StagesSection", "TrainConfig", "TrainConfigError",
           "apply_override", "load_config", "available_datasets", "build_dataset", "register_dataset",
           "unregister_dataset", "EvalResult", "evaluate", "TrainResult", "train"]
