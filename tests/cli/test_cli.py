"""The command line: fast help that lists what is available, and one voice under torchrun."""
from __future__ import annotations

import subprocess
import sys

import pytest

from s2d.cli import COMMANDS, main


def test_help_starts_without_torch():
    """`python -m s2d --help` parses its arguments before any heavy import (torch takes seconds)."""
    code = ("import sys, runpy; sys.argv = ['s2d', '--help']\n"
            "try:\n    runpy.run_module('s2d', run_name='__main__')\n"
            "except SystemExit as e:\n    assert e.code == 0, e.code\n"
            "heavy = sorted(m for m in ('torch', 'torchvision', 'numpy', 'huggingface_hub') if m in sys.modules)\n"
            "print('HEAVY', heavy)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert "HEAVY []" in out
    for name in COMMANDS:
        assert f"    {name} " in out, f"{name} missing from the help"
    for pointer in ("python -m s2d info", "python -m s2d zoo list", "python -m s2d train --help"):
        assert pointer in out


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_every_command_has_help(command, capsys):
    with pytest.raises(SystemExit) as exit_:
        main([command, "--help"])
    assert exit_.value.code == 0
    assert "usage: python -m s2d " + command in capsys.readouterr().out


def test_bad_usage_exits_2(capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["no-such-command"])
    assert exit_.value.code == 2 and "invalid choice" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exit_:
        main(["predict", "x.mp4", "--model", "x3d-m", "--topk", "0"])
    assert exit_.value.code == 2 and "--topk: expected an integer >= 1, got 0" in capsys.readouterr().err
    assert main([]) == 2


def test_only_rank_0_speaks(monkeypatch, capsys):
    """Other ranks stay silent when they succeed and show their output, prefixed, when they fail."""
    monkeypatch.setenv("RANK", "0")
    assert main(["zoo", "list"]) == 0
    assert "s2dnet-x3d-synth" in capsys.readouterr().out
    monkeypatch.setenv("RANK", "1")
    assert main(["zoo", "list"]) == 0
    assert capsys.readouterr() == ("", "")
    assert main(["zoo", "cards", "no-such-model"]) == 2
    captured = capsys.readouterr()
    assert captured.out == "" and "[rank 1] s2d zoo cards: unknown models ['no-such-model']" in captured.err
