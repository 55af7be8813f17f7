"""Package discovery (everything else is in pyproject.toml): every package under `s2d/`, its folder of
class-name lists, and the top-level `kernels/` and `zoo/` folders installed as `s2d_kernels` and `s2d_zoo`."""
from setuptools import find_packages, setup

MAPPED = {"s2d_kernels": "kernels", "s2d_zoo": "zoo"}
DATA_ONLY = ["s2d.models.label_lists"]  # folders of package data without Python modules

packages = find_packages(include=["s2d", "s2d.*"]) + DATA_ONLY
for name, folder in MAPPED.items():
    packages += [name, *(f"{name}.{sub}" for sub in find_packages(folder))]

setup(packages=packages, package_dir=MAPPED)
