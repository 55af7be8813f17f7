"""Hostile video files: a header that lies about its frame count (decord aborts the process on it),
a decoder that kills its process mid-run, absurdly elongated frames, rotated phone videos."""
from __future__ import annotations

import json
import multiprocessing
import os
import signal
import struct
import subprocess
import sys
from pathlib import Path

import av
import numpy as np
import pytest
import torch

import s2d
import s2d.data.dataset as dataset_module
from s2d.inference.batch_predict import predict_many
from s2d.io import ClipSpec, VideoError, decord_available, probe, read_clip
from s2d.io.limits import Deadline
from s2d.io.pyav_decoder import first_frame_rotation
from s2d.io.spec import crop, resize

DECORD = decord_available()
needs_decord = pytest.mark.skipif(not DECORD, reason="decord is not installed")
TINY = dict(dense_frames=8, dense_size=64, synopsis={"arch": "x3d_tiny", "frames": 4, "size": 32},
            sampler={"frames": 4, "size": 32}, detail={"arch": "x3d_tiny"})


def lying_mp4(src: Path, dst: Path, count: int) -> Path:
    """A copy of the mp4 `src` whose `stts` box claims `count` samples in its first entry."""
    data = bytearray(src.read_bytes())
    box = data.find(b"stts")
    assert box > 0, "no stts box"
    # size, "stts", version and flags, entry count, then (sample_count, sample_delta) entries
    data[box + 12:box + 16] = struct.pack(">I", count)
    dst.write_bytes(bytes(data))
    return dst


@pytest.fixture(scope="module")
def folder(tmp_path_factory, videos):
    """Four good videos, a liar claiming 2^31 frames and one claiming 300000 (10 frames each really)."""
    root = tmp_path_factory.mktemp("hostile")
    good = [videos.write_video(root / f"v{i}.mp4", num_frames=10 + i, width=64, height=48) for i in range(4)]
    lying_mp4(good[0], root / "liar.mp4", 2 ** 31)
    lying_mp4(good[0], root / "small_liar.mp4", 300_000)
    return root


# ------------------------------------------------------------------------------------------
# A header that lies about its frame count

CAPPED = """
import json, resource, sys
import s2d
from s2d.io import ClipSpec, VideoError, probe, read_clip
import s2d.io.reader as reader
import decord  # loaded before the cap, as in a worker that has decoded before
room = 2 << 30  # 2 GiB more address space than the imports took: a DataLoader worker under a memory cap
with open("/proc/self/status") as status:
    size = int(next(line for line in status if line.startswith("VmSize")).split()[1]) * 1024
resource.setrlimit(resource.RLIMIT_AS, (size + room, size + room))
"""

READ_LIAR = CAPPED + """
out = {}
clip = read_clip(sys.argv[1], ClipSpec(8, 32, 32))
out["auto"] = [clip.backend, clip.video_frames, clip.indices]
out["probe"] = probe(sys.argv[1]).num_frames
try:
    read_clip(sys.argv[1], ClipSpec(8, 32, 32), backend="decord")
except VideoError as err:
    out["decord"] = str(err)
print(json.dumps(out))
"""


def _run(script: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", script, *map(str, args)], capture_output=True, text=True,
                          timeout=300)


def _crash_text(done: subprocess.CompletedProcess) -> str:
    return f"exit {done.returncode}: {done.stderr[-2000:]}"


@pytest.mark.skipif(sys.platform != "linux", reason="the memory cap uses RLIMIT_AS and /proc")
@needs_decord
def test_a_header_claiming_2_31_frames_is_read_by_pyav_not_handed_to_decord(folder, videos):
    """The issue's 47 KB mp4: decord threw std::bad_alloc and aborted the process under a memory cap."""
    done = _run(READ_LIAR, folder / "liar.mp4")
    assert done.returncode == 0, _crash_text(done)
    out = json.loads(done.stdout.splitlines()[-1])
    backend, frames, indices = out["auto"]
    assert backend == "pyav" and frames == 10 and out["probe"] == 10
    assert indices == read_clip(folder / "v0.mp4", ClipSpec(8, 32, 32)).indices
    assert "claims 2147483648 frames" in out["decord"] and "backend='pyav'" in out["decord"]


def test_a_smaller_lie_is_counted_not_trusted(folder, videos):
    """300000 frames claimed in a 2 KB file: the frames that exist are counted and sampled."""
    clip = read_clip(folder / "small_liar.mp4", ClipSpec(8, 32, 32))
    assert clip.backend == "pyav" and clip.video_frames == 10
    assert videos.decode_indices(clip.frames) == clip.indices == [0, 1, 2, 3, 5, 6, 7, 9]
    assert probe(folder / "small_liar.mp4").num_frames == 10
    if DECORD:
        with pytest.raises(VideoError, match="claims 300000 frames in a .*-byte file"):
            read_clip(folder / "small_liar.mp4", ClipSpec(8, 32, 32), backend="decord")


PREDICT = CAPPED + """
import torch
from s2d.inference.batch_predict import predict_many
torch.manual_seed(0)
model = s2d.create("s2dnet-x3d-k400", **json.loads(sys.argv[2])).eval()
paths = json.loads(sys.argv[1])
for workers in (0, 2):
    if workers:  # what a decoder crash in a worker does when nothing stops the lie
        reader.header_lie = lambda *args: None
    preds = list(predict_many(model, paths, batch_size=2, workers=workers, topk=1, timeout_s=60))
    print(json.dumps([[p.path, p.error, p.labels] for p in preds]))
"""


@pytest.mark.slow
@pytest.mark.skipif(sys.platform != "linux", reason="the memory cap uses RLIMIT_AS and /proc")
@needs_decord
def test_a_lying_file_does_not_end_a_collection_run(folder):
    """Five videos, the liar among them, under a memory cap, in one process: each gets its record, the
    liar read by PyAV. With the header check off, decord aborts its worker on the liar and the run
    still goes on, the liar's record naming the signal and the others' unchanged."""
    paths = [str(folder / name) for name in ("v0.mp4", "v1.mp4", "liar.mp4", "v2.mp4", "v3.mp4")]
    done = _run(PREDICT, json.dumps(paths), json.dumps(TINY))
    assert done.returncode == 0, _crash_text(done)
    checked, unchecked = [json.loads(line) for line in done.stdout.splitlines() if line.startswith("[")]
    for run in (checked, unchecked):
        assert [path for path, _, _ in run] == paths
        assert all(labels for _, error, labels in run if error is None)
    assert all(error is None for _, error, _ in checked)
    errors = {os.path.basename(path): error for path, error, _ in unchecked if error}
    assert list(errors) == ["liar.mp4"] and "killed by signal SIGABRT" in errors["liar.mp4"]
    assert [labels for path, _, labels in unchecked if "liar" not in path] == \
           [labels for path, _, labels in checked if "liar" not in path]


# ------------------------------------------------------------------------------------------
# A worker that dies: the run goes on without it


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return s2d.create("s2dnet-x3d-k400", **TINY).eval()


def _kill_in_children(monkeypatch, culprits: dict[str, str]) -> None:
    """Decoding `name` kills the decoding process (`"kill"`: SIGKILL, `"exit"`: exit code 3); never the
    test's own process, where it raises instead."""
    real, main = dataset_module.read_clip, os.getpid()

    def read(path, *args, **kwargs):
        how = culprits.get(os.path.basename(path))
        if how is not None:
            if os.getpid() == main:
                raise AssertionError(f"{path} was decoded in the main process")
            if how == "kill":
                os.kill(os.getpid(), signal.SIGKILL)
            os._exit(3)
        return real(path, *args, **kwargs)

    monkeypatch.setattr(dataset_module, "read_clip", read)


@pytest.mark.skipif(multiprocessing.get_context().get_start_method() != "fork",
                    reason="the decoding hook reaches DataLoader workers through fork")
def test_a_dead_worker_costs_only_its_videos(folder, model, monkeypatch):
    """One worker killed by a signal, one exiting: both culprits get an error naming how their process
    ended, every other video its prediction, in input order (a list, then a generator of the paths)."""
    for name in ("killed.mp4", "exits.mp4"):
        (folder / name).write_bytes((folder / "v1.mp4").read_bytes())
    names = ["v0.mp4", "v1.mp4", "killed.mp4", "v2.mp4", "v3.mp4", "exits.mp4", "v0.mp4"]
    paths = [str(folder / n) for n in names]
    good = sorted({p for p in paths if os.path.basename(p).startswith("v")})
    clean = {p.path: dict(p.labels) for p in predict_many(model, good, batch_size=2, workers=0, topk=3)}
    _kill_in_children(monkeypatch, {"killed.mp4": "kill", "exits.mp4": "exit"})
    for videos in (paths, iter(paths)):
        preds = list(predict_many(model, videos, batch_size=2, workers=2, topk=3))
        assert [p.path for p in preds] == paths
        errors = {os.path.basename(p.path): p.error for p in preds if p.error}
        assert set(errors) == {"killed.mp4", "exits.mp4"}
        assert "killed by signal SIGKILL" in errors["killed.mp4"] and "exited with code 3" in errors["exits.mp4"]
        for p in preds:
            if p.error is None:
                assert list(dict(p.labels)) == list(clean[p.path])
                assert max(abs(prob - clean[p.path][name]) for name, prob in p.labels) < 1e-5


# ------------------------------------------------------------------------------------------
# Frames far wider (or taller) than the clip

WIDE_PROBE = """
import resource, sys
from s2d.io import ClipSpec, read_clip
spec = ClipSpec(num_frames=8, short_side=128, crop_size=112)
read_clip(sys.argv[1], spec, backend="pyav")  # imports and decoder set-up out of the measure
if "decord" in sys.argv[2:]:
    read_clip(sys.argv[1], spec, backend="decord")
base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
for path, backend in zip(sys.argv[2::2], sys.argv[3::2]):
    clip = read_clip(path, spec, backend=backend)
    assert tuple(clip.frames.shape) == (8, 112, 112, 3), clip.frames.shape
    print(path, backend, (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - base) // 1024)
"""


@pytest.mark.skipif(sys.platform != "linux", reason="peak RSS in kB is read from getrusage on Linux")
def test_decoding_memory_follows_the_clip_not_the_frame_width(tmp_path, videos):
    """4096x2 and 2x4096 frames (2 KB files) read into 112x112 clips: resizing the whole frame by its
    short side built 262144x128 frames (1.5 GiB for 8 of them); now peak memory stays near the clip's."""
    small = videos.write_video(tmp_path / "small.mp4", num_frames=10)
    wide = videos.write_video(tmp_path / "wide.mp4", num_frames=10, width=4096, height=2, pattern="ramp")
    tall = videos.write_video(tmp_path / "tall.mp4", num_frames=10, width=2, height=4096, pattern="ramp")
    reads = [str(wide), "pyav", str(tall), "pyav"] + ([str(wide), "decord"] if DECORD else [])
    done = _run(WIDE_PROBE, small, *reads)
    assert done.returncode == 0, _crash_text(done)
    growth = {tuple(line.split()[:2]): int(line.split()[2]) for line in done.stdout.splitlines()}
    assert len(growth) == len(reads) // 2
    assert max(growth.values()) < 150, f"peak memory grew by {growth} MiB"


def test_elongated_frames_keep_their_centre(tmp_path, videos):
    """A 5:1 ramp is cut to its centred 4:1 part before resizing: the centre crop shows what resizing
    the whole frame showed, to a grey level; a 4096:1 frame still gives its middle."""
    path = videos.write_video(tmp_path / "pano.mp4", num_frames=2, width=320, height=64, pattern="ramp")
    spec = ClipSpec(num_frames=1, short_side=32, crop_size=32)
    with av.open(str(path)) as container:
        whole = torch.from_numpy(next(container.decode(video=0)).to_ndarray(format="rgb24"))[None]
    expected = crop(resize(whole, spec.short_side), spec, None)
    for backend in ("pyav", "decord") if DECORD else ("pyav",):
        clip = read_clip(path, spec, backend=backend)
        assert (clip.frames.float() - expected.float()).abs().mean() < 1.5, backend
    wide = videos.write_video(tmp_path / "wide.mp4", num_frames=2, width=8192, height=2, pattern="ramp")
    assert abs(float(read_clip(wide, spec).frames.float().mean()) - 127.5) < 3


def test_an_absurdly_elongated_frame_is_refused_naming_the_limit(tmp_path, videos):
    path = videos.write_video(tmp_path / "sliver.mp4", num_frames=2, width=16384, height=2)
    for backend in ("pyav", "auto"):
        with pytest.raises(VideoError, match=r"sliver.mp4: frame size 16384x2 is absurdly elongated "
                                             r"\(at most 4096:1 is allowed\)"):
            read_clip(path, ClipSpec(num_frames=1, short_side=8, crop_size=8), backend=backend)


# ------------------------------------------------------------------------------------------
# Rotated videos (phones store portrait video as landscape frames plus a display rotation)


def write_rotated(path: Path, degrees: int) -> Path:
    """A 64x48 video whose 16 left columns are white, displayed turned `degrees` counter-clockwise."""
    with av.open(str(path), "w") as out:
        stream = out.add_stream("libx264", rate=25, options={"g": "5"})
        stream.width, stream.height, stream.pix_fmt = 64, 48, "yuv420p"
        if not hasattr(stream, "set_display_rotation"):
            pytest.skip("this PyAV cannot write a display rotation (needs VideoStream.set_display_rotation)")
        stream.set_display_rotation(degrees)
        img = np.zeros((48, 64, 3), np.uint8)
        img[:, :16] = 255
        for i in range(4):
            frame = av.VideoFrame.from_ndarray(img, format="rgb24")
            frame.pts = i
            out.mux(stream.encode(frame.reformat(format="yuv420p")))
        out.mux(stream.encode(None))
    return path


@pytest.mark.parametrize("degrees, band", [(90, "bottom"), (-90, "top"), (180, "right")])
@pytest.mark.parametrize("backend", ["auto", "pyav"])
def test_a_rotated_video_is_read_upright(tmp_path, videos, degrees, band, backend):
    """The white band on the left of the stored frames lands where the display rotation puts it."""
    videos.require_encoder("h264")
    path = write_rotated(tmp_path / f"rot{degrees}.mp4", degrees)
    clip = read_clip(path, ClipSpec(num_frames=2, short_side=48, crop_size=48), backend=backend)
    grey = clip.frames[0].float().mean(dim=-1)
    sides = {"top": grey[:6], "bottom": grey[-6:], "left": grey[:, :6], "right": grey[:, -6:]}
    opposite = {"top": "bottom", "bottom": "top", "left": "right", "right": "left"}[band]
    assert float(sides[band].mean()) > 200 and float(sides[opposite].mean()) < 50, (backend, clip.backend)
    # what a decoder that does not turn frames itself (torchcodec before 0.11) is given to apply
    assert first_frame_rotation(str(path), Deadline(str(path), 30.0), 100) % 360 == degrees % 360
