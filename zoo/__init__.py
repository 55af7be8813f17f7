"""The model zoo's folders, one per model repo (card, config; weights where bundled).

Installed as the data package `s2d_zoo`, so that the bundled weights (`s2dnet-x3d-synth`) travel
with the wheel: `s2d.load` finds them through `s2d.hub._sources.zoo_dir()` wherever s2d is installed.
"""
