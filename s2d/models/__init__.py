"""The networks: configs, the paper's modules, backbones and baselines.

Read top-down: `config.py` (dataclass configs) and `labels.py` (shipped class-name lists) →
`clip.py` (the clip a model reads) → `backbones/` (temporal shift, TSM, X3D) → the paper's modules,
one file each: `synopsis.py`, `locator.py`, `sampler.py` (the Gaussian filterbank sampler),
`fusion.py` (context), `detail.py`, with `smoothing.py` (the smoothed window gradient) → `s2dnet.py`
(`S2DNet`) and `baseline.py` (single-network TSM/X3D). `flops.py` counts parameters and GMACs;
`pretrained.py` gives every model `save_pretrained` / `from_pretrained` / `push_to_hub`.
"""
