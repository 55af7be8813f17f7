"""Tests for `s2d.io`: frame selection, resizing, both decoders and every kind of bad input."""
from __future__ import annotations

import pickle
import random
import subprocess
import sys
import time
from pathlib import Path

import av
import pytest
import torch

import s2d.io as io
from s2d.io import Clip, ClipSpec, VideoError, clip_indices, decord_decoder, limits, probe, pyav_decoder, read_clip

DECORD = io.decord_available()
BACKENDS = [
    "pyav",
    pytest.param("decord", marks=pytest.mark.skipif(not DECORD, reason="decord is not installed")),
]
ALL_BACKENDS = BACKENDS + ["auto"]


@pytest.fixture(scope="module")
def vids(tmp_path_factory: pytest.TempPathFactory, videos) -> dict[str, Path]:
    return videos.make_video_set(tmp_path_factory.mktemp("videos"))


def spec(num_frames: int = 8, **kwargs) -> ClipSpec:
    kwargs.setdefault("short_side", 24)
    kwargs.setdefault("crop_size", 24)
    return ClipSpec(num_frames=num_frames, **kwargs)


def linspace_rule(n: int, t: int) -> list[int]:
    return torch.linspace(0, n - 1, t).to(torch.int64).tolist()


@pytest.fixture(scope="session")
def assert_painted(videos):
    """`assert_painted(clip)`: the pixels of every slot show the source frame its index claims."""
    def check(clip: Clip) -> None:
        assert videos.decode_indices(clip.frames) == clip.indices

    return check


# ------------------------------------------------------------------------------------------
# Frame selection rules (no decoding)


@pytest.mark.parametrize("n,t", [(20, 8), (8, 8), (21, 8), (300, 16), (7, 1), (1000, 3)])
def test_uniform_indices_follow_synopsis_linspace(n: int, t: int) -> None:
    indices, distinct = clip_indices(n, spec(t))
    assert indices == linspace_rule(n, t)
    assert distinct == t and len(set(indices)) == t


def test_uniform_indices_match_the_model_sampler() -> None:
    from s2d.models.clip import uniform_indices

    for t in (1, 2, 3, 8, 16, 32):
        lengths = torch.arange(t, 400)
        expected = uniform_indices(lengths, t)
        got = torch.tensor([clip_indices(int(n), spec(t))[0] for n in lengths])
        assert torch.equal(got, expected), t


def test_uniform_short_video_repeats_last_frame() -> None:
    assert clip_indices(5, spec(8)) == ([0, 1, 2, 3, 4, 4, 4, 4], 5)
    assert clip_indices(1, spec(3)) == ([0, 0, 0], 1)


def test_stride_indices() -> None:
    s = spec(4, sampling="stride", stride=3, start=2)
    assert clip_indices(20, s) == ([2, 5, 8, 11], 4)
    # Running off the end pads with the last frame actually taken.
    assert clip_indices(20, spec(4, sampling="stride", stride=3, start=15)) == ([15, 18, 18, 18], 2)
    with pytest.raises(ValueError, match="beyond"):
        clip_indices(10, spec(4, sampling="stride", stride=3, start=10))


def test_stride_random_start_is_seeded_and_in_range() -> None:
    s = spec(4, sampling="stride", stride=3)  # spans 10 frames
    starts = set()
    for seed in range(30):
        indices, distinct = clip_indices(20, s, random.Random(seed))
        assert indices == clip_indices(20, s, random.Random(seed))[0]
        assert 0 <= indices[0] <= 10 and distinct == 4
        assert indices == [indices[0] + 3 * i for i in range(4)]
        starts.add(indices[0])
    assert len(starts) > 3
    # A video shorter than the span starts at 0 and is padded.
    assert clip_indices(5, s, random.Random(0)) == ([0, 3, 3, 3], 2)


@pytest.mark.parametrize("kwargs", [
    {"num_frames": 0}, {"short_side": 0}, {"crop_size": 25}, {"sampling": "dense"},
    {"crop": "left"}, {"stride": 0}, {"start": 3}, {"sampling": "stride", "start": -1},
    {"num_frames": 2.5},
])
def test_clipspec_validation(kwargs: dict) -> None:
    base = {"num_frames": 8, "short_side": 24, "crop_size": 24}
    base.update(kwargs)
    with pytest.raises(ValueError):
        ClipSpec(**base)


# ------------------------------------------------------------------------------------------
# Decoding good videos


@pytest.mark.parametrize("backend", ALL_BACKENDS)
@pytest.mark.parametrize("name", ["h264", "vp9", "h264_long"])
def test_uniform_clip_selects_exact_frames(vids, backend: str, name: str, videos, assert_painted) -> None:
    if name == "vp9":
        videos.require_encoder("vp9")
    clip = read_clip(vids[name], spec(8), backend=backend)
    n = 21 if name == "h264_long" else 20
    assert clip.frames.shape == (8, 24, 24, 3) and clip.frames.dtype == torch.uint8
    assert clip.indices == linspace_rule(n, 8)
    assert clip.num_frames == 8 and clip.video_frames == n
    assert clip.source_fps == pytest.approx(30.0 if name == "h264_long" else 25.0)
    assert clip.path == str(Path(vids[name]).resolve())
    expected_backend = "decord" if backend == "decord" or (backend == "auto" and DECORD) else "pyav"
    assert clip.backend == expected_backend
    assert_painted(clip)


@pytest.mark.parametrize("backend", BACKENDS)
def test_stride_clip_across_keyframes(vids, backend: str, assert_painted) -> None:
    clip = read_clip(vids["h264"], spec(4, sampling="stride", stride=4, start=3), backend=backend)
    assert clip.indices == [3, 7, 11, 15] and clip.num_frames == 4
    assert_painted(clip)
    tail = read_clip(vids["h264"], spec(5, sampling="stride", stride=1, start=17), backend=backend)
    assert tail.indices == [17, 18, 19, 19, 19] and tail.num_frames == 3
    assert_painted(tail)


@pytest.mark.parametrize("backend", BACKENDS)
def test_short_video_padded_with_last_frame(vids, backend: str, assert_painted) -> None:
    clip = read_clip(vids["h264_short"], spec(8), backend=backend)
    assert clip.indices == [0, 1, 2, 3, 4, 4, 4, 4]
    assert clip.num_frames == 5 and clip.video_frames == 5
    assert clip.frames.shape[0] == 8
    assert torch.equal(clip.frames[4], clip.frames[7])
    assert_painted(clip)


@pytest.mark.parametrize("backend", BACKENDS)
def test_deterministic(vids, backend: str) -> None:
    s = spec(8, short_side=32, crop_size=24)
    first = read_clip(vids["h264"], s, backend=backend)
    second = read_clip(vids["h264"], s, backend=backend)
    assert torch.equal(first.frames, second.frames) and first.indices == second.indices
    rs = spec(3, sampling="stride", stride=2, crop="random", short_side=32, crop_size=24)
    a = read_clip(vids["h264"], rs, backend=backend, rng=random.Random(7))
    b = read_clip(vids["h264"], rs, backend=backend, rng=random.Random(7))
    assert torch.equal(a.frames, b.frames) and a.indices == b.indices


@pytest.mark.skipif(not DECORD, reason="decord is not installed")
def test_backends_agree(vids) -> None:
    s = spec(8, short_side=32, crop_size=32)
    a = read_clip(vids["h264"], s, backend="pyav")
    b = read_clip(vids["h264"], s, backend="decord")
    assert a.indices == b.indices
    assert (a.frames.int() - b.frames.int()).abs().max() <= 3


def ramp_level(x: float, width: int = 64) -> float:
    return 255.0 * x / (width - 1)


@pytest.mark.parametrize("backend", BACKENDS)
def test_resize_and_centre_crop_geometry(vids, backend: str) -> None:
    # 64x48 -> short side 24 -> 32x24; the centre 24x24 crop keeps resized columns 4..27.
    clip = read_clip(vids["ramp"], spec(2, short_side=24, crop_size=24), backend=backend)
    assert clip.frames.shape == (2, 24, 24, 3)
    columns = clip.frames[0].float().mean(dim=(0, 2))
    for c in (2, 12, 21):  # away from the antialiasing footprint at the frame border
        source_x = (c + 4 + 0.5) * 2 - 0.5
        assert abs(float(columns[c]) - ramp_level(source_x)) < 6


@pytest.mark.parametrize("backend", BACKENDS)
def test_random_crop_offset_comes_from_rng(vids, backend: str) -> None:
    offsets = set()
    for seed in range(6):
        clip = read_clip(vids["ramp"], spec(1, crop="random"), backend=backend, rng=random.Random(seed))
        replay = random.Random(seed)
        top, left = replay.randint(0, 0), replay.randint(0, 32 - 24)
        assert top == 0
        column = float(clip.frames[0, :, 12].float().mean())
        assert abs(column - ramp_level((left + 12 + 0.5) * 2 - 0.5)) < 6
        offsets.add(left)
    assert len(offsets) > 1


@pytest.mark.parametrize("backend", BACKENDS)
def test_grayscale_becomes_rgb(vids, backend: str, assert_painted) -> None:
    clip = read_clip(vids["gray"], spec(8), backend=backend)
    assert clip.frames.shape == (8, 24, 24, 3)
    assert torch.equal(clip.frames[..., 0], clip.frames[..., 1])
    assert torch.equal(clip.frames[..., 1], clip.frames[..., 2])
    assert_painted(clip)


@pytest.mark.parametrize("backend", BACKENDS)
def test_odd_frame_size(vids, backend: str, assert_painted) -> None:
    info = probe(vids["odd"], backend=backend)
    assert (info.width, info.height) == (47, 33)
    clip = read_clip(vids["odd"], spec(6, short_side=17, crop_size=15), backend=backend)
    assert clip.frames.shape == (6, 15, 15, 3)
    assert_painted(clip)


@pytest.mark.parametrize("backend", BACKENDS)
def test_upscaling_small_frames(vids, backend: str, assert_painted) -> None:
    clip = read_clip(vids["h264"], spec(2, short_side=112, crop_size=100), backend=backend)
    assert clip.frames.shape == (2, 100, 100, 3)
    assert_painted(clip)


@pytest.mark.parametrize("backend", ALL_BACKENDS)
def test_probe(vids, backend: str, videos) -> None:
    info = probe(vids["h264"], backend=backend)
    assert (info.num_frames, info.width, info.height) == (20, 64, 48)
    assert info.fps == pytest.approx(25.0)
    assert info.backend in ("pyav", "decord")
    if videos.encoder_available("vp9"):  # WebM headers carry no frame count
        assert probe(vids["vp9"], backend=backend).num_frames == 20
    decoded = probe(vids["h264"], backend=backend, decode=True)
    assert decoded.num_frames == 20 and decoded.backend == "pyav"


# ------------------------------------------------------------------------------------------
# Damaged files that still hold frames


@pytest.mark.parametrize("backend", ALL_BACKENDS)
def test_container_claiming_more_frames_than_decode(vids, backend: str, videos, assert_painted) -> None:
    with av.open(str(vids["overclaim"])) as container:
        assert container.streams.video[0].frames == 20  # the index still lists every frame
    k = videos.OVERCLAIM_DECODABLE
    clip = read_clip(vids["overclaim"], spec(8), backend=backend)
    assert clip.video_frames == k
    assert clip.indices == linspace_rule(k, 8)
    assert_painted(clip)
    assert probe(vids["overclaim"], decode=True).num_frames == k


@pytest.mark.parametrize("backend", ["pyav", "auto"])
def test_corrupt_packets_fall_back_to_frames_that_decode(vids, backend: str, assert_painted) -> None:
    clip = read_clip(vids["corrupt"], spec(8), backend=backend)
    assert clip.backend == "pyav"
    true_count = probe(vids["corrupt"], decode=True).num_frames
    assert 0 < true_count < 20
    assert clip.video_frames == true_count
    assert (clip.indices, clip.num_frames) == clip_indices(true_count, spec(8))
    assert_painted(clip)


@pytest.mark.skipif(not DECORD, reason="decord is not installed")
def test_corrupt_packets_with_decord_only(vids, assert_painted) -> None:
    # decord alone cannot recover; either it reads correct frames or it says why it cannot.
    try:
        clip = read_clip(vids["corrupt"], spec(8), backend="decord")
    except VideoError as err:
        assert err.path == str(Path(vids["corrupt"]).resolve()) and "decord" in err.reason
    else:
        assert_painted(clip)


@pytest.mark.parametrize("backend", ALL_BACKENDS)
def test_truncated_webm_reads_what_remains(vids, backend: str, videos, assert_painted) -> None:
    videos.require_encoder("vp9")
    clip = read_clip(vids["webm_cut"], spec(8), backend=backend)
    assert 0 < clip.video_frames < 20
    assert_painted(clip)


# ------------------------------------------------------------------------------------------
# Files that cannot be read


BAD = {
    "missing": "not found",
    "directory": "not a regular file",
    "empty": "empty",
    "not_video": "not a readable video",
    "audio_only": "no video stream",
    "truncated": "no video stream",
    "zero_frames": "no frames",
}


@pytest.mark.parametrize("backend", ALL_BACKENDS)
@pytest.mark.parametrize("name", sorted(BAD))
def test_bad_input_raises_video_error(vids, tmp_path: Path, backend: str, name: str) -> None:
    path = {"missing": tmp_path / "nope.mp4", "directory": tmp_path}.get(name) or vids[name]
    with pytest.raises(VideoError) as caught:
        read_clip(path, spec(4), backend=backend)
    err = caught.value
    assert err.path == str(Path(path).resolve()) and str(path.resolve()) in str(err)
    if not (backend == "decord" and name == "zero_frames"):  # decord words that one itself
        assert BAD[name] in err.reason
    with pytest.raises(VideoError):
        probe(path, backend=backend)


@pytest.mark.parametrize("backend", BACKENDS)
def test_enormous_resolution_refused(vids, backend: str, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(VideoError, match="64x48 exceeds"):
        read_clip(vids["h264"], spec(4), backend=backend, max_pixels=64 * 48 - 1)
    read_clip(vids["h264"], spec(4), backend=backend, max_pixels=64 * 48)
    monkeypatch.setattr(limits, "DEFAULT_MAX_PIXELS", 1000)
    with pytest.raises(VideoError, match="exceeds the limit of 1000 pixels"):
        read_clip(vids["h264"], spec(4), backend=backend)
    with pytest.raises(VideoError, match="exceeds"):
        probe(vids["h264"], backend=backend)


@pytest.mark.parametrize("backend", BACKENDS)
def test_frame_count_cap(vids, backend: str) -> None:
    with pytest.raises(VideoError, match="more than 10 frames"):
        read_clip(vids["h264"], spec(4), backend=backend, max_frames=10)
    with pytest.raises(VideoError, match="more than 10 frames"):
        probe(vids["h264"], decode=True, max_frames=10)


def test_pyav_decode_timeout(vids, monkeypatch: pytest.MonkeyPatch) -> None:
    original = pyav_decoder.decoded_frames

    def slow(*args, **kwargs):
        for frame in original(*args, **kwargs):
            time.sleep(0.05)
            yield frame

    monkeypatch.setattr(pyav_decoder, "decoded_frames", slow)
    with pytest.raises(VideoError, match="longer than the 0.3 s limit"):
        read_clip(vids["h264"], spec(8), backend="pyav", timeout_s=0.3)


def test_hung_decoder_is_abandoned(vids, monkeypatch: pytest.MonkeyPatch) -> None:
    class StuckReader:
        def __init__(self, *args, **kwargs) -> None:
            time.sleep(3.0)

    class FakeDecord:
        VideoReader = StuckReader

        @staticmethod
        def cpu(_: int) -> None:
            return None

    monkeypatch.setattr(decord_decoder, "decord_module", lambda: FakeDecord)
    with pytest.raises(VideoError, match="did not finish within the 0.3 s limit"):
        read_clip(vids["h264"], spec(4), backend="decord", timeout_s=0.3)


def test_auto_uses_pyav_when_decord_is_missing(vids, monkeypatch: pytest.MonkeyPatch, assert_painted) -> None:
    from s2d.io import torchcodec_decoder

    monkeypatch.setattr(decord_decoder, "decord_module", lambda: None)
    monkeypatch.setattr(torchcodec_decoder, "decoder_class", lambda: None)  # nor torchcodec (see test_io_torchcodec)
    clip = read_clip(vids["h264"], spec(8), backend="auto")
    assert clip.backend == "pyav"
    assert_painted(clip)
    with pytest.raises(ImportError, match="pip install decord"):
        read_clip(vids["h264"], spec(8), backend="decord")


def test_import_without_decord(vids, videos) -> None:
    # A fresh interpreter in which `import decord` fails must read on PyAV alone.
    code = ("import sys; sys.modules['decord'] = None; sys.modules['torchcodec'] = None\n"
            "from s2d.io import ClipSpec, decord_available, read_clip\n"
            "assert not decord_available()\n"
            "clip = read_clip(sys.argv[1], ClipSpec(4, 24, 24))\n"
            "print(clip.backend, *clip.indices)")
    out = subprocess.run([sys.executable, "-c", code, str(vids["h264"])], capture_output=True, text=True, check=True)
    backend, *indices = out.stdout.split()
    clip = read_clip(vids["h264"], ClipSpec(4, 24, 24), backend="pyav")
    assert backend == "pyav" and [int(i) for i in indices] == clip.indices == videos.decode_indices(clip.frames)


def test_unknown_backend(vids) -> None:
    with pytest.raises(ValueError, match="backend"):
        read_clip(vids["h264"], spec(4), backend="ffmpeg")  # type: ignore[arg-type]


def test_video_error_pickles_and_accepts_a_bare_message() -> None:
    err = VideoError("/data/x.mp4", "no video stream")
    assert str(err) == "/data/x.mp4: no video stream"
    copy = pickle.loads(pickle.dumps(err))
    assert (copy.path, copy.reason, str(copy)) == (err.path, err.reason, str(err))
    bare = VideoError("something went wrong")  # how generic re-raising rebuilds exceptions
    assert str(bare) == "something went wrong" and bare.path is None


MEMORY_PROBE = """
import resource, sys
from s2d.io import ClipSpec, read_clip
spec = ClipSpec(num_frames=64, short_side=32, crop_size=32)
read_clip(sys.argv[2], spec, backend=sys.argv[3])  # imports and decoder set-up out of the measure
base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
clip = read_clip(sys.argv[1], spec, backend=sys.argv[3])
assert tuple(clip.frames.shape) == (64, 32, 32, 3) and clip.num_frames == 1
print((resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - base) // 1024)
"""


@pytest.mark.skipif(sys.platform != "linux", reason="peak RSS in kB is read from getrusage on Linux")
@pytest.mark.parametrize("backend", BACKENDS)
def test_decoding_memory_follows_the_clip_not_the_source_resolution(tmp_path, backend):
    """A one-frame 1024×8192 (tall) video read into 64 slots: each frame is resized as it is
    decoded, so peak memory grows by about one source frame (24 MiB), not 64 full-size copies
    (1.5 GiB, what filling the slots before resizing cost)."""
    import subprocess

    import numpy as np

    tall, small = tmp_path / "tall.mp4", tmp_path / "small.mp4"
    for path, (w, h) in ((tall, (1024, 8192)), (small, (64, 48))):
        with av.open(str(path), "w") as container:
            stream = container.add_stream("libx264", rate=25)
            stream.width, stream.height, stream.pix_fmt = w, h, "yuv420p"
            img = np.zeros((h, w, 3), np.uint8)
            img[..., 1] = np.linspace(0, 255, h, dtype=np.uint8)[:, None]
            container.mux(stream.encode(av.VideoFrame.from_ndarray(img, format="rgb24")))
            container.mux(stream.encode())
    done = subprocess.run([sys.executable, "-c", MEMORY_PROBE, str(tall), str(small), backend],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    growth_mib = int(done.stdout.split()[-1])
    assert growth_mib < 300, f"peak memory grew by {growth_mib} MiB"
