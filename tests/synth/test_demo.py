"""`python -m s2d demo`: synthetic clips → mp4 → the shipped S2DNet → predictions and pictures."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

REPO = Path(__file__).resolve().parents[2]
WEIGHTS = REPO / "zoo" / "s2dnet-x3d-synth" / "model.safetensors"

pytestmark = pytest.mark.skipif(not WEIGHTS.is_file(), reason="the s2dnet-x3d-synth checkpoint is not in zoo/")


def test_demo_end_to_end(tmp_path, capsys):
    from s2d.cli import main

    assert main(["demo", "--out", str(tmp_path), "--num", "2", "--start", "3"]) == 0
    out = capsys.readouterr().out
    for index in (3, 4):
        stem = f"synth_test_{index:04d}"
        assert (tmp_path / f"{stem}.mp4").stat().st_size > 0
        png = Image.open(tmp_path / f"{stem}.png")
        assert png.width >= 640 and png.height > 200
        gif = Image.open(tmp_path / f"{stem}.gif")
        assert gif.n_frames == 8  # one per detail frame
        assert f"{stem}.mp4" in out
    assert out.count("truth:") == 2 and out.count("synopsis:") == 2 and out.count("prediction:") == 2
    assert "correct; synopsis top-5 held the truth for" in out


def test_demo_command_line(tmp_path):
    """The documented invocation, in a fresh interpreter."""
    result = subprocess.run([sys.executable, "-m", "s2d", "demo", "--out", str(tmp_path), "--num", "1"],
                            capture_output=True, text=True, timeout=600, cwd=REPO)
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "synth_test_0000.png").is_file()


def test_demo_rejects_a_model_of_another_dataset(tmp_path, capsys):
    from s2d.cli import main

    assert main(["demo", "--out", str(tmp_path), "--model", "s2dnet-x3d-k400"]) == 2
    assert "error" in capsys.readouterr().err
