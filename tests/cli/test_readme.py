"""Every command and Python snippet of the README works as written.

The README's fenced `bash` blocks are split into commands and its `python` blocks into snippets;
each must be registered below (`COMMANDS`, `SNIPPETS`) with how it is exercised:

- **run**: executed as written in a fresh shell whose working directory is a temporary folder
  (with the inputs it names created there first); it must exit 0.
- **check**: it cannot run here (it downloads packages, needs a dataset or eight processes, or
  is this very test suite); the listed reason says why, and a check runs instead: its
  arguments are accepted by the command line, the files it names exist.

A README command or snippet that matches no entry fails `test_readme_command` with a message
saying how to register it, so the README cannot drift from the code again. Inline commands of the
prose (`python -m s2d ...` in backticks) must name existing sub-commands and options.
"""
from __future__ import annotations

import argparse
import contextlib
import io
import os
import re
import shlex
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import pytest

REPO = Path(__file__).resolve().parents[2]
README = REPO / "README.md"
FENCE = re.compile(r"^```(\w*)\n(.*?)^```", re.M | re.S)
REGISTER = ("Register it in tests/cli/test_readme.py: add an entry to {table} whose pattern matches it, saying how "
            "to run it (inputs to create, a `slow` mark if it takes more than ~30 s) or, if it cannot run here, "
            "why not and what to check instead.")


def readme_blocks(text: str) -> list[tuple[str, str]]:
    """(language, body) of every fenced block."""
    return [(m.group(1), m.group(2)) for m in FENCE.finditer(text)]


def shell_commands(body: str) -> list[str]:
    """The commands of a bash block: one per line (backslash continuations joined), comments dropped."""
    commands, pending = [], ""
    for line in body.splitlines():
        if line.rstrip().endswith("\\"):
            pending += line.rstrip()[:-1] + " "
            continue
        line = pending + line
        pending = ""
        command = line.split(" #", 1)[0].strip()  # a trailing comment is documentation
        if command and not command.startswith("#"):
            commands.append(command)
    return commands


def readme_commands() -> list[str]:
    return [c for lang, body in readme_blocks(README.read_text(encoding="utf-8")) if lang in ("bash", "sh", "shell")
            for c in shell_commands(body)]


def readme_snippets() -> list[str]:
    return [body for lang, body in readme_blocks(README.read_text(encoding="utf-8")) if lang == "python"]


# -- how each command is exercised --------------------------------------------------------------------

def _environment(tmp_path: Path) -> dict[str, str]:
    """The shell's environment: this interpreter first on PATH, no network, caches in `tmp_path`."""
    env = dict(os.environ)
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
    env.update(HF_HUB_OFFLINE="1", HF_HOME=str(tmp_path / "hf"), PYTHONUNBUFFERED="1")
    return env


def run_shell(command: str, cwd: Path, timeout: int = 900) -> subprocess.CompletedProcess:
    """`command` as written, in bash, in `cwd`; fails the test unless it exits 0."""
    result = subprocess.run(["bash", "-c", command], cwd=cwd, env=_environment(cwd), capture_output=True,
                            text=True, timeout=timeout)
    assert result.returncode == 0, (f"README command failed (exit {result.returncode}): {command}\n"
                                    f"--- stdout\n{result.stdout[-3000:]}\n--- stderr\n{result.stderr[-3000:]}")
    return result


def cli_help(argv: list[str], module: str = "s2d") -> str:
    """The help text of `python -m <module> <argv> --help`, in-process; fails unless it exits 0."""
    if module == "s2d.bench":
        from s2d.bench.__main__ import main
    else:
        from s2d.cli import main
    out = io.StringIO()
    with contextlib.redirect_stdout(out), pytest.raises(SystemExit) as exit_:
        main([*argv, "--help"])
    assert exit_.value.code == 0, f"python -m {module} {' '.join(argv)} --help exited {exit_.value.code}"
    return out.getvalue()


def accepts(command: str) -> None:
    """The options and sub-command words of a `python -m s2d[.bench] ...` command exist in its --help."""
    words = shlex.split(command, comments=True)
    if words[:1] == ["torchrun"]:
        words = ["python"] + words[words.index("-m"):]
    assert words[:2] == ["python", "-m"], command
    module, rest = words[2], words[3:]
    path: list[str] = []
    for word in rest:
        if not re.fullmatch(r"[a-z][a-z0-9-]*", word) or module == "s2d.bench":
            break
        path.append(word)
    if module == "s2d" and path[:1] == ["train"]:
        path = ["train"]  # what follows is a recipe name
    help_text = cli_help(path, module)
    for word in rest:
        if word.startswith("--"):
            option = word.split("=")[0]
            assert re.search(rf"{re.escape(option)}\b", help_text), f"{command}: {option} is not in its --help"
        elif "|" in word:
            missing = [alt for alt in word.split("|") if alt not in help_text]
            assert not missing, f"{command}: {missing} not in its --help"


@dataclass
class Entry:
    """How one README command (matched by `pattern`, a full-match regex) is exercised."""

    pattern: str
    check: Callable[[str, Path, pytest.FixtureRequest], None]
    reason: str = ""  # when not run as written: why, and what is checked instead
    slow: bool = False
    matched: list[str] = field(default_factory=list)


def _pip_extras(command: str, tmp_path: Path, request: pytest.FixtureRequest) -> None:
    import tomllib

    project = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    for extra in ",".join(re.findall(r"\[([\w,]+)\]", command)).split(","):
        assert extra in project.get("optional-dependencies", {}), f"{command}: no extra {extra!r} in pyproject.toml"


def _cpu_wheels(command: str, tmp_path: Path, request: pytest.FixtureRequest) -> None:
    assert "--index-url https://download.pytorch.org/whl/cpu" in command
    assert {"torch", "torchvision"} <= set(command.split())


def _pytest_suite(command: str, tmp_path: Path, request: pytest.FixtureRequest) -> None:
    import tomllib

    options = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["tool"]["pytest"]["ini_options"]
    assert any(m.startswith("slow:") for m in options["markers"]), "the `slow` marker is not declared"


def _run(command: str, tmp_path: Path, request: pytest.FixtureRequest) -> None:
    run_shell(command, tmp_path)


def _predict(command: str, tmp_path: Path, request: pytest.FixtureRequest) -> None:
    videos = request.getfixturevalue("videos")
    for path in shlex.split(command, comments=True)[4:]:
        if path.startswith("--"):
            break
        if "*" in path:
            path = path.replace("*", "example")
        codec = "vp9" if path.endswith(".webm") and videos.encoder_available("vp9") else "h264"
        (tmp_path / path).parent.mkdir(parents=True, exist_ok=True)
        videos.write_video(tmp_path / path, codec=codec, num_frames=20, width=96, height=72)
    result = run_shell(command, tmp_path)
    assert "example" in result.stdout and "warning: untrained weights" in result.stderr
    assert list((tmp_path / "vis").glob("*.png")) and list((tmp_path / "vis").glob("*.gif"))


def _predict_collection(command: str, tmp_path: Path, request: pytest.FixtureRequest) -> None:
    """A folder of two videos (one in a sub-folder); run twice: the second run has nothing left to do."""
    import json

    write_video = request.getfixturevalue("videos").write_video
    (tmp_path / "videos" / "more").mkdir(parents=True)
    write_video(tmp_path / "videos" / "a.mp4", num_frames=20, width=96, height=72)
    write_video(tmp_path / "videos" / "more" / "b.mp4", num_frames=12, width=72, height=96)
    run_shell(command, tmp_path)
    records = [json.loads(line) for line in (tmp_path / "results.jsonl").read_text().splitlines()]
    assert [r["path"] for r in records] == ["videos/a.mp4", "videos/more/b.mp4"] and records[0]["labels"]
    second = run_shell(command, tmp_path)
    assert "every video is already recorded" in second.stderr
    assert len((tmp_path / "results.jsonl").read_text().splitlines()) == 2


_FLOW: dict[str, subprocess.CompletedProcess] = {}
FLOW_BLOCK = "### Your videos, your classes"


def _finetune_flow(command: str, tmp_path: Path, request: pytest.FixtureRequest) -> None:
    """The fine-tuning block's commands run once, in order, in one folder (each needs the one before);
    each test checks its own command's run, and the last one that the records name the folders' classes."""
    import json

    if not _FLOW:
        text = README.read_text(encoding="utf-8")
        block = next(body for lang, body in readme_blocks(text[text.index(FLOW_BLOCK):]) if lang == "bash")
        work = request.getfixturevalue("tmp_path_factory").mktemp("finetune-flow")
        for step in shell_commands(block):
            _FLOW[step] = run_shell(step, work)
        classes = sorted(d.name for d in (work / "clips" / "train").iterdir())
        records = [json.loads(line) for line in (work / "mine.jsonl").read_text().splitlines()]
        assert len(records) == 32 and all(r["labels"][0]["label"] in classes for r in records)
        assert json.loads((work / "runs" / "mine" / "config.json").read_text())["labels"] == classes
    assert command in _FLOW, f"{command!r} is not in the README's {FLOW_BLOCK!r} block"


def _run_onnx_snippet(code: str, folder: Path, model, monkeypatch: pytest.MonkeyPatch) -> None:
    """The README's onnxruntime snippet in `folder` (which holds its .onnx and .json) on a clip.mp4 it gets
    here, lossless at the model's resize size: its top-1 label is eager PyTorch's on the same file."""
    import torch

    from s2d.models.clip import clip_spec
    from s2d.synth.benchmark import write_video

    spec = clip_spec(model.config)
    frames = torch.randint(0, 256, (spec.num_frames + 3, spec.short_side, spec.short_side, 3), dtype=torch.uint8,
                           generator=torch.Generator().manual_seed(3))
    write_video(folder / "clip.mp4", frames)
    monkeypatch.chdir(folder)
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        ns = _run_snippet(code)
    top = ns["meta"]["labels"][int(ns["logits"][0].argmax())]
    assert top == model.predict(str(folder / "clip.mp4")).labels[0][0] and top in out.getvalue()


def _export_flow(command: str, tmp_path: Path, request: pytest.FixtureRequest) -> None:
    """The export command as written, then the README's onnxruntime snippet on its files."""
    import s2d

    pytest.importorskip("onnxruntime")
    run_shell(command, tmp_path)
    code = next(code for code in readme_snippets() if "import onnxruntime" in code)
    _run_onnx_snippet(code, tmp_path, s2d.load("s2dnet-x3d-synth"), request.getfixturevalue("monkeypatch"))


def _predict_windows(command: str, tmp_path: Path, request: pytest.FixtureRequest) -> None:
    """The long-video command on a 6 s video: a record per window, segments and an mp4 of every frame."""
    import json

    import av

    request.getfixturevalue("videos").write_video(tmp_path / "long.mp4", num_frames=150, width=96, height=72, fps=25,
                                                   pattern="ramp")
    run_shell(command, tmp_path)
    records = [json.loads(line) for line in (tmp_path / "windows.jsonl").read_text().splitlines()]
    assert [r["window"] for r in records] == list(range(len(records))) and len(records) >= 5
    assert json.loads((tmp_path / "segments.json").read_text())
    with av.open(str(tmp_path / "annotated.mp4")) as video:
        assert sum(1 for _ in video.decode(video=0)) == 150


def _predict_stream(command: str, tmp_path: Path, request: pytest.FixtureRequest) -> None:
    """The stdin command on a 40-frame MPEG-TS: a record per window, all of `<stdin>`."""
    import json

    request.getfixturevalue("videos").write_mpegts(tmp_path / "clip.ts", num_frames=40, width=96, height=72, fps=25,
                                                   pattern="ramp")
    run_shell(command, tmp_path)
    records = [json.loads(line) for line in (tmp_path / "live.jsonl").read_text().splitlines()]
    assert len(records) >= 3 and {r["path"] for r in records} == {"<stdin>"} and records[-1]["final"]


def _validate(command: str, tmp_path: Path, request: pytest.FixtureRequest) -> None:
    accepts(command)


def _bench_base(command: str, tmp_path: Path, request: pytest.FixtureRequest) -> None:
    from s2d.bench.report import load_document

    accepts(command)
    load_document(REPO / shlex.split(command)[shlex.split(command).index("--base") + 1])


COMMANDS: list[Entry] = [
    Entry(r'pip install -e "\.\[test,export,quant\]"', _pip_extras,
          "installs packages (network); the test environment is that install. Checked: the extras exist"),
    Entry(r"pip install torch torchvision --index-url https://download\.pytorch\.org/whl/cpu", _cpu_wheels,
          "downloads ~200 MB of wheels. Checked: the CPU index and both packages are named"),
    Entry(r'python -m pytest -m "not slow"', _pytest_suite,
          "is this test suite. Checked: the `slow` marker is declared"),
    Entry(r"python -m s2d demo", _run, slow=True),
    Entry(r"python -m s2d predict \S+\.mp4 .* --model s2dnet-x3d-k400 --vis vis/", _predict),
    Entry(r"python -m s2d predict videos/ --model s2dnet-x3d-k400 --output results\.jsonl", _predict_collection),
    Entry(r"python -m s2d data synth clips/\w+ .*", _finetune_flow, slow=True),
    Entry(r"python -m s2d train finetune model\.init=s2dnet-x3d-synth .*", _finetune_flow, slow=True),
    Entry(r"python -m s2d eval --model runs/mine .*", _finetune_flow, slow=True),
    Entry(r"python -m s2d predict clips/test --model runs/mine .*", _finetune_flow, slow=True),
    Entry(r"python -m s2d train (?!finetune model\.init=s2dnet-x3d-synth).*", _validate,
          "needs a dataset (and trains for hours). Checked: its options are accepted (`train --help`)"),
    Entry(r"torchrun --nproc_per_node=\d+ -m s2d train .*", _validate,
          "starts one training process per GPU on a config of your own. Checked: its options are accepted"),
    Entry(r"python -m s2d eval (?!--model runs/mine).*", _validate,
          "needs a trained model folder and a dataset. Checked: its options are accepted"),
    Entry(r"python -m s2d\.bench --quick", _run, slow=True),
    Entry(r"python -m s2d\.bench --json out\.json --base bench/cpu-results\.json", _bench_base,
          "a full run takes about half an hour. Checked: its options are accepted and the --base record loads"),
    Entry(r"python -m s2d\.bench --json out\.json --base bench/cpu-results\.json --resume", _bench_base,
          "continues an interrupted full run (up to half an hour). Checked: its options are accepted and the --base "
          "record loads"),
    Entry(r"python -m s2d\.bench --only sampler,parts", _validate,
          "takes minutes on a CPU. Checked: its options are accepted"),
    Entry(r"python -m s2d export s2dnet-x3d-synth --format onnx --out s2dnet-x3d-synth\.onnx", _export_flow, slow=True),
    Entry(r"python -m s2d predict videos/ --model s2dnet-x3d-synth\.onnx .*", _validate,
          "needs the graph the export command writes (minutes); tests/cli/test_predict_exported.py predicts with "
          "exported graphs. Checked: its options are accepted"),
    Entry(r"torchrun --nnodes=2 .* -m s2d predict .*", _validate,
          "needs two machines with GPUs; tests/cli/test_predict_distributed.py runs real 2- and 3-process groups. "
          "Checked: its options are accepted"),
    Entry(r"python -m s2d predict long\.mp4 .*", _predict_windows),
    Entry(r"cat clip\.ts \| python -m s2d predict - .*", _predict_stream),
    Entry(r"python -m s2d\.bench --only deploy .*", _validate,
          "takes about 20 min on a 2-core CPU (bench/deploy/run.sh). Checked: its options are accepted"),
]


def _entry_for(command: str) -> Entry:
    found = [e for e in COMMANDS if re.fullmatch(e.pattern, command)]
    assert found, f"README command not registered: {command!r}\n" + REGISTER.format(table="COMMANDS")
    assert len(found) == 1, f"README command {command!r} matches several entries: {[e.pattern for e in found]}"
    return found[0]


def _command_params() -> list:
    params = []
    for command in readme_commands():
        found = [e for e in COMMANDS if re.fullmatch(e.pattern, command)]
        marks = [pytest.mark.slow] if len(found) == 1 and found[0].slow else []
        params.append(pytest.param(command, marks=marks, id=command[:60]))
    return params


@pytest.mark.parametrize("command", _command_params())
def test_readme_command(command: str, tmp_path: Path, request: pytest.FixtureRequest) -> None:
    entry = _entry_for(command)
    entry.check(command, tmp_path, request)


def test_every_registered_command_is_in_the_readme() -> None:
    commands = readme_commands()
    stale = [e.pattern for e in COMMANDS if not any(re.fullmatch(e.pattern, c) for c in commands)]
    assert not stale, f"entries of COMMANDS that match no README command (remove or update them): {stale}"
    run_as_written = (_run, _predict, _predict_collection, _finetune_flow, _export_flow, _predict_windows,
                      _predict_stream)
    assert all(e.reason or e.check in run_as_written
               for e in COMMANDS), \
        "a command that is not run needs a reason"


# -- Python snippets -----------------------------------------------------------------------------------

def _run_snippet(code: str) -> dict:
    namespace: dict = {"__name__": "__readme__"}
    exec(compile(code, "README.md", "exec"), namespace)  # noqa: S102 - the README's own code
    return namespace


def _snippet_model(code: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest) -> None:
    ns = _run_snippet(code)
    out = ns["out"]
    assert out.logits.shape == (2, 174) and out.topk.shape[0] == 2


def _snippet_pretrained(code: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                        request: pytest.FixtureRequest) -> None:
    """Placeholders filled in: the shipped zoo model, pushed to a local Hub server."""
    import huggingface_hub

    hub = request.getfixturevalue("local_hub")

    class UploadsToLocalHub:  # HfApi stand-in: LocalHub serves downloads only, uploads are committed directly
        def __init__(self, token=None):
            pass

        def create_repo(self, repo_id, **kwargs):
            return argparse.Namespace(repo_id=repo_id)

        def upload_folder(self, repo_id, folder_path, **kwargs):
            return argparse.Namespace(oid=hub.commit_folder(repo_id, folder_path), commit_url=None)

    monkeypatch.setattr(huggingface_hub, "HfApi", UploadsToLocalHub)
    monkeypatch.chdir(tmp_path)
    ns = _run_snippet("import s2d\n" + code.replace('"org/folder-or-zoo-name"', '"s2dnet-x3d-synth"'))
    assert (tmp_path / "out" / "model.safetensors").is_file()
    assert "org/name" in hub.repos and ns["model"].weights_source.verified


def _snippet_onnx(code: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest) -> None:
    """On a tiny X3D baseline's export named as the README names it (the real export command is a slow test)."""
    import s2d
    from s2d.inference.export import export_model

    pytest.importorskip("onnxruntime")
    model = s2d.create("x3d-m", arch="x3d_tiny", num_classes=4, labels=["wave", "jump", "run", "sit"], frames=4,
                       size=32, dense_frames=8, dense_size=48).eval()
    export_model(model, tmp_path / "s2dnet-x3d-synth.onnx")
    _run_onnx_snippet(code, tmp_path, model, monkeypatch)


SNIPPETS: list[tuple[str, Callable]] = [
    (r's2d\.create\("s2dnet-tsm-sthv2"\)\.eval\(\)', _snippet_model),
    (r's2d\.load\("org/folder-or-zoo-name"\)', _snippet_pretrained),
    (r"import onnxruntime as ort", _snippet_onnx),
]


@pytest.mark.parametrize("code", readme_snippets(), ids=lambda c: c.strip().splitlines()[-1][:40])
def test_readme_snippet(code: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                        request: pytest.FixtureRequest) -> None:
    found = [run for pattern, run in SNIPPETS if re.search(pattern, code)]
    assert len(found) == 1, (f"README python block not registered (or matched by several entries):\n{code}\n"
                             + REGISTER.format(table="SNIPPETS"))
    found[0](code, tmp_path, monkeypatch, request)


# -- commands quoted in the prose ---------------------------------------------------------------------

def test_inline_commands_name_existing_options() -> None:
    """`python -m s2d ...` in backticks: the sub-command exists and has the options shown."""
    text = FENCE.sub("", README.read_text(encoding="utf-8"))
    inline = sorted(set(re.findall(r"`(python -m s2d[^`]*)`", text)))
    assert inline, "no inline commands found: has the README's format changed?"
    for command in inline:
        accepts(re.sub(r"\s*\.\.\.$", "", command))
