"""Nothing in s2d writes through a path someone could have planted.

Every write call in the package (open for writing, `write_text`/`write_bytes`, safetensors'
`save_file`, `torch.save`, PIL's `save`, PyAV output, renames and copies) must target a temporary
made by `s2d.io.files` (its expression names `tmp`), or be one of the reviewed exceptions below,
each with the reason it is safe. A new writer fails this test until it goes through
`s2d.io.files` or is reviewed here. The behaviour itself is tested where each writer lives
(symlinks planted at the old fixed temporary names, and beside the targets).
"""
from __future__ import annotations

import ast
import os
import stat
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = [ROOT / "s2d", ROOT / "kernels"]

#: `module:function` -> why its write calls are safe without a temporary.
REVIEWED = {
    "s2d/io/files.py:*": "the module that makes the exclusive temporaries and renames them into place",
    "s2d/inference/results.py:append": "appends whole, checked records to the results file it has read "
                                       "(O_APPEND | O_NOFOLLOW, under the run's OutputLock)",
    "s2d/train/metrics.py:_append": "appends to the run's own metrics logs, opened O_APPEND | O_NOFOLLOW",
    "s2d/bench/decode.py:encode_video": "writes only into the private folder of a tempfile.TemporaryDirectory",
}

_WRITE_MODES = set("wax+")
#: Calls that write whatever their owner: `x.write_text(...)`, `save_file(...)`, `image.save(...)`.
_ANY_OWNER = {"write_text", "write_bytes", "save_file", "save", "savez", "imwrite", "to_csv", "rename"}
#: Calls that write only from these modules (`os.replace`, not `str.replace`; `shutil.copy`, not `dict.copy`).
_OWNED = {"replace": {"os"}, "copyfile": {"shutil"}, "copy": {"shutil"}, "copy2": {"shutil"}, "move": {"shutil"},
          "link": {"os"}, "symlink": {"os"}, "mkfifo": {"os"}}


def _mode(call: ast.Call, position: int) -> str | None:
    if len(call.args) > position and isinstance(call.args[position], ast.Constant):
        return str(call.args[position].value)
    for kw in call.keywords:
        if kw.arg == "mode" and isinstance(kw.value, ast.Constant):
            return str(kw.value.value)
    return None


def _is_write(call: ast.Call) -> bool:
    func = call.func
    name = func.id if isinstance(func, ast.Name) else func.attr if isinstance(func, ast.Attribute) else ""
    owner = func.value.id if isinstance(func, ast.Attribute) and isinstance(func.value, ast.Name) else ""
    if name == "open":
        if owner == "os":
            return True
        mode = _mode(call, 1)
        return mode is not None and bool(_WRITE_MODES & set(mode))
    if name in _OWNED:
        return owner in _OWNED[name]
    return name in _ANY_OWNER and bool(call.args)


def _targets_temp(call: ast.Call) -> bool:
    """The call's receiver or arguments name a temporary (`tmp`, `tmp / NAME`, `str(tmp)`)."""
    parts = list(call.args) + [kw.value for kw in call.keywords]
    if isinstance(call.func, ast.Attribute):
        parts.append(call.func.value)
    return any("tmp" in ast.unparse(part).lower() for part in parts)


def write_calls() -> list[tuple[str, str, int, str]]:
    """(file, enclosing function, line, call source) of every write call in the package."""
    found = []
    for package in PACKAGES:
        for path in sorted(package.rglob("*.py")):
            rel = path.relative_to(ROOT).as_posix()
            tree = ast.parse(path.read_text(encoding="utf-8"))
            stack: list[tuple[ast.AST, str]] = [(tree, "<module>")]
            while stack:
                node, where = stack.pop()
                for child in ast.iter_child_nodes(node):
                    name = child.name if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)) else where
                    if isinstance(child, ast.Call) and _is_write(child) and not _targets_temp(child):
                        found.append((rel, name, child.lineno, ast.unparse(child)[:100]))
                    stack.append((child, name))
    return found


def test_every_write_targets_an_exclusive_temporary_or_is_reviewed():
    unreviewed = [f"{f}:{line} in {fn}(): {src}" for f, fn, line, src in write_calls()
                  if f"{f}:{fn}" not in REVIEWED and f"{f}:*" not in REVIEWED]
    assert not unreviewed, "writes that bypass s2d.io.files:\n" + "\n".join(unreviewed)


def test_reviewed_exceptions_still_exist():
    live = {f"{f}:{fn}" for f, fn, _, _ in write_calls()} | {f"{f}:*" for f, _, _, _ in write_calls()}
    assert not set(REVIEWED) - live, "reviewed writers that no longer write: remove them from REVIEWED"


def test_atomic_write_never_opens_a_planted_name(tmp_path, monkeypatch):
    from s2d.io import files

    victim = tmp_path / "victim.txt"
    victim.write_text("keep me")
    target = tmp_path / "out.json"
    # every name a fixed-temporary scheme would use, planted as a symlink to the victim
    planted = {"out.json.tmp", "out.json.part", ".out.json.tmp", "out.tmp", ".out.json.lock"}
    for name in planted:
        os.symlink(victim, tmp_path / name)
    files.atomic_write_text(target, "new")
    assert victim.read_text() == "keep me"
    assert target.read_text() == "new" and stat.S_ISREG(os.lstat(target).st_mode)
    # the target itself a symlink: replaced by the new file, the link's target untouched
    os.replace(tmp_path / "out.json.tmp", target)
    planted.remove("out.json.tmp")
    files.atomic_write_text(target, "again")
    assert victim.read_text() == "keep me" and not target.is_symlink() and target.read_text() == "again"
    # a failing writer leaves neither a temporary nor a changed target
    with pytest.raises(RuntimeError):
        files.atomic_write(target, lambda tmp: (_ for _ in ()).throw(RuntimeError("boom")))
    assert target.read_text() == "again"
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(planted | {"victim.txt", "out.json"})


def test_output_lock_refuses_a_second_owner_and_a_planted_link(tmp_path):
    from s2d.io.files import OutputBusyError, OutputLock

    out = tmp_path / "results.jsonl"
    with OutputLock(out):
        with pytest.raises(OutputBusyError, match=rf"results.jsonl: another run \(pid {os.getpid()} on .*\) is writing"):
            OutputLock(out).acquire()
    assert not (tmp_path / ".results.jsonl.lock").exists()  # released and removed
    with OutputLock(out):  # free again
        pass
    victim = tmp_path / "victim"
    victim.write_text("keep me")
    os.symlink(victim, tmp_path / ".results.jsonl.lock")
    with pytest.raises(OutputBusyError, match="is a symbolic link"):
        OutputLock(out).acquire()
    assert victim.read_text() == "keep me"


def test_deferred_signals_act_after_the_block(monkeypatch):
    import signal

    from s2d.io.files import deferred_signals

    steps = []
    with pytest.raises(KeyboardInterrupt):
        with deferred_signals():
            os.kill(os.getpid(), signal.SIGINT)
            steps.append("after the signal")
        steps.append("not reached")
    assert steps == ["after the signal"]
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
