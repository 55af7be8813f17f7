"""The README's figures, Python names and paths that a test can check are checked.

- the Models table: each model's parameter count is what `s2d.create(name)` builds, and its GMACs
  are the zoo card's (the cards are checked against fresh measurements in `tests/hub/test_zoo.py`);
- every dotted `s2d...` / `s2d_kernels...` name in backticks resolves (module, then attributes), so
  a moved module cannot leave the README pointing at nothing;
- every repository path in backticks (`s2d/...`, `kernels/...`, `bench/...`, `tests/...`, `zoo/...`)
  exists.
"""
from __future__ import annotations

import importlib
import re
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
README = REPO / "README.md"


def _section(text: str, title: str) -> str:
    start = text.index(f"\n## {title}\n")
    end = text.find("\n## ", start + 1)
    return text[start:end if end != -1 else None]


def _table_rows(section: str) -> list[list[str]]:
    rows = [[c.strip() for c in line.strip().strip("|").split("|")] for line in section.splitlines()
            if line.startswith("|")]
    return [r for r in rows[2:] if r]  # header and rule dropped


def _models_table() -> dict[str, dict[str, str]]:
    """name → its params and GMACs cells (columns: name, classes, dense input, synopsis, detail, params, GMACs)."""
    table = {}
    for row in _table_rows(_section(README.read_text(encoding="utf-8"), "Models")):
        name = re.match(r"`([^`]+)`", row[0])
        assert name and len(row) == 7, f"README Models row not in the expected form: {row}"
        table[name.group(1)] = {"params": row[5], "gmacs": row[6]}
    assert table, "README Models table not found"
    return table


def _card_gmacs(name: str) -> str:
    """The GMACs column of `zoo/README.md`'s row for `name`."""
    for row in _table_rows((REPO / "zoo" / "README.md").read_text(encoding="utf-8")):
        if row[0].startswith(f"[{name}]"):
            return row[5]
    raise AssertionError(f"{name} is not in zoo/README.md")


@pytest.mark.parametrize("name", sorted(_models_table()))
def test_models_table_matches_the_models(name: str) -> None:
    import s2d
    from s2d.models.flops import count_params

    row = _models_table()[name]
    built = count_params(s2d.create(name))
    assert int(row["params"].replace(",", "")) == built, f"README Models: {name} has {built:,} parameters"
    shown = row["gmacs"]
    decimals = len(shown.partition(".")[2])
    assert f"{float(_card_gmacs(name)):.{decimals}f}" == shown, f"README Models: {name}'s GMACs differ from its card"


def test_every_registered_model_is_in_the_models_table() -> None:
    import s2d

    assert sorted(_models_table()) == sorted(s2d.list_models())


def _resolve(dotted: str) -> object:
    parts = dotted.split(".")
    for cut in range(len(parts), 0, -1):
        try:
            obj = importlib.import_module(".".join(parts[:cut]))
        except ModuleNotFoundError:
            continue
        for attr in parts[cut:]:
            obj = getattr(obj, attr)
        return obj
    raise ModuleNotFoundError(dotted)


def test_python_names_in_the_readme_resolve() -> None:
    text = README.read_text(encoding="utf-8")
    names = sorted({m for code in re.findall(r"`([^`\n]+)`", text)
                    for m in re.findall(r"(?<![\w./-])(s2d(?:_kernels)?(?:\.[A-Za-z_]\w*)+)", code)})
    assert len(names) > 10, "too few names found: has the README's format changed?"
    broken = []
    for name in names:
        try:
            _resolve(name)
        except (ImportError, AttributeError) as err:
            broken.append(f"{name} ({err})")
    assert not broken, f"README names Python objects that do not exist: {broken}"


def test_repository_paths_in_the_readme_exist() -> None:
    text = README.read_text(encoding="utf-8")
    paths = sorted({p for p in re.findall(r"`((?:s2d|kernels|bench|tests|zoo)/[\w./-]*)`", text) if "<" not in p})
    assert len(paths) > 10, "too few paths found: has the README's format changed?"
    missing = [p for p in paths if not (REPO / p).exists()]
    assert not missing, f"README names paths that do not exist: {missing}"
