"""The wheel holds every module and data file the package needs, so an install stands alone.

A wheel is built from a copy of the source tree (no build isolation: it takes seconds and needs no
network) and its file list compared with the tree: every Python file of `s2d/`, `kernels/` (as
`s2d_kernels/`) and `zoo/` (as `s2d_zoo/`), the shipped label lists and zoo index, every zoo
folder's card and config, and the weights of every model the index marks bundled, byte-identical.
`.ci/wheel-smoke` goes further: it installs the wheel in a fresh environment and runs the demo from `/`.
"""
from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
MAPPED = {"s2d": "s2d", "kernels": "s2d_kernels", "zoo": "s2d_zoo"}  # source folder → installed package
_NEVER = shutil.ignore_patterns(".git", ".venv", ".ci-venv", "*.egg-info", "__pycache__", ".hypothesis",
                                ".pytest_cache", ".cache")


def _ignore(folder: str, names: list[str]) -> set[str]:
    """What the copy leaves out: caches and environments anywhere; build outputs, tests and records at the top."""
    top = {"build", "dist", "tests", "bench"} if Path(folder) == REPO else set()
    return set(_NEVER(folder, names)) | (top & set(names))


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> zipfile.ZipFile:
    work = tmp_path_factory.mktemp("wheel")
    src = work / "src"
    shutil.copytree(REPO, src, ignore=_ignore)
    result = subprocess.run([sys.executable, "-m", "pip", "wheel", str(src), "--no-deps", "--no-build-isolation",
                             "--quiet", "-w", str(work / "dist")], capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, f"building the wheel failed:\n{result.stderr[-3000:]}"
    (path,) = (work / "dist").glob("s2d-*.whl")
    with zipfile.ZipFile(path) as zf:
        yield zf


def _installed_name(path: Path) -> str:
    folder, *rest = path.relative_to(REPO).parts
    return "/".join([MAPPED[folder], *rest])


def test_every_module_is_in_the_wheel(wheel: zipfile.ZipFile) -> None:
    names = set(wheel.namelist())
    modules = [p for folder in MAPPED for p in (REPO / folder).rglob("*.py") if "__pycache__" not in p.parts]
    assert len(modules) > 100
    missing = [_installed_name(p) for p in modules if _installed_name(p) not in names]
    assert not missing, f"modules missing from the wheel: {missing}"


def test_package_data_is_in_the_wheel(wheel: zipfile.ZipFile) -> None:
    names = set(wheel.namelist())
    data = [*(REPO / "s2d" / "models" / "label_lists").glob("*.txt"), REPO / "s2d" / "hub" / "zoo_index.json",
            REPO / "zoo" / "README.md", *(REPO / "zoo").glob("*/config.json"), *(REPO / "zoo").glob("*/README.md")]
    assert len(data) > 10
    missing = [_installed_name(p) for p in data if _installed_name(p) not in names]
    assert not missing, f"data files missing from the wheel: {missing}"


def test_bundled_weights_are_in_the_wheel(wheel: zipfile.ZipFile) -> None:
    index = json.loads((REPO / "s2d" / "hub" / "zoo_index.json").read_text())
    bundled = {name: entry for name, entry in index.items() if entry["repo_id"] is None}
    assert bundled, "the index marks no model bundled"
    for name, entry in bundled.items():
        data = wheel.read(f"s2d_zoo/{name}/model.safetensors")
        assert len(data) == entry["size"] and hashlib.sha256(data).hexdigest() == entry["sha256"], name


def test_no_stray_weights_in_the_wheel(wheel: zipfile.ZipFile) -> None:
    """Weights a user downloaded into `zoo/` for a Hub model must never be packed."""
    index = json.loads((REPO / "s2d" / "hub" / "zoo_index.json").read_text())
    weights = [n for n in wheel.namelist() if n.endswith((".safetensors", ".pth", ".pt", ".bin"))]
    assert weights == [f"s2d_zoo/{name}/model.safetensors" for name in sorted(index) if index[name]["repo_id"] is None]
