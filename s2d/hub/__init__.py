"""The model zoo: named variants, building, weights files, the Hub, model cards and converters.

`s2d.load(name)` reads top-down: `registry.py` (a name's config) → `_sources.py` (where its
weights are: `_index.py`, the pinned index in `zoo_index.json`; `_hf.py`, the Hub cache) →
`builder.py` (the model) → `weights.py` (a checked, strict load); `factory.py` holds `load` and
`create`, and `errors.py` the `ZooError` family every failure raises. Publishing: `cards.py`
(model cards from configs and measured figures), `zoo_folder.py` (the generated `zoo/` folders),
`publish.py` (upload and index). `convert.py` reads official, pytorchvideo and torchvision
checkpoints. Modules with a leading underscore are internal.
"""
