"""Long videos: windows (`s2d.inference.windows`), the timeline, the annotated mp4 and `predict --window`."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest
import torch

import s2d
from s2d.cli import main
from s2d.inference.annotate import ClipGeometry
from s2d.inference.timeline import Scored, segments, smooth
from s2d.inference.window_results import WindowResultsFile
from s2d.inference.windows import WindowPlan, parse_span, predict_windows, read_windows
from s2d.io import ClipSpec, read_clip
from s2d.io.spec import clip_indices

SPEC = ClipSpec(num_frames=4, short_side=32, crop_size=32)
SYNTH = "s2dnet-x3d-synth"
pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def synth_model():
    return s2d.load(SYNTH).eval()


@pytest.fixture(scope="module")
def index_video(tmp_path_factory, videos):
    """20 frames at 10 fps, each painted with its index."""
    return videos.write_video(tmp_path_factory.mktemp("w") / "index.mp4", num_frames=20, fps=10)


def write_vfr(path: Path, times_ms: list[int]) -> Path:
    """An index-painted video whose frames show at `times_ms` (a variable frame rate)."""
    from helpers.videos import index_level

    with av.open(str(path), mode="w") as out:
        stream = out.add_stream("libx264", rate=10, options={"g": "5", "crf": "18", "bf": "0"})
        stream.width, stream.height, stream.pix_fmt = 64, 48, "yuv420p"
        stream.time_base = stream.codec_context.time_base = Fraction(1, 1000)
        for i, t in enumerate(times_ms):
            frame = av.VideoFrame.from_ndarray(np.full((48, 64, 3), index_level(i), np.uint8), format="rgb24")
            frame.pts, frame.time_base = t, Fraction(1, 1000)
            out.mux(stream.encode(frame))
        out.mux(stream.encode(None))
    return path


def test_spans_plans_and_bad_values():
    assert parse_span("2.0") == (2, "seconds") and parse_span("64f") == (64, "frames")
    assert parse_span(0.1) == (Fraction(1, 10), "seconds")  # as written, not the nearest binary float
    for bad in ("0", "-1", "nan", "inf", "abc", "0f", "2.5f", "f", ""):
        with pytest.raises(ValueError, match="window must be seconds > 0"):
            parse_span(bad)
    with pytest.raises(ValueError, match="both be seconds or both frames"):
        WindowPlan.parse("2.0", "8f")
    plan = WindowPlan.parse("8f")  # default hop: half the window
    assert plan.hop == 4 and list(plan.containing(Fraction(9))) == [1, 2]
    assert [plan.deciding(Fraction(p)) for p in (0, 5, 6, 7, 8)] == [0, 0, 0, 1, 1]  # 6: a tie, the earlier


def test_windows_take_the_clip_s2d_io_would_take(index_video, videos, tmp_path):
    windows = list(read_windows(index_video, SPEC, WindowPlan.parse("8f", "4f")))
    # the last window starting at 16 would hold a part of window 3's frames only: left out
    assert [(w.index, w.start_frame, w.end_frame) for w in windows] == [(0, 0, 8), (1, 4, 12), (2, 8, 16), (3, 12, 20)]
    assert [w.final for w in windows] == [False, False, False, True]
    for w in windows:  # the clip of a window is read_clip's of a video made of the window's frames
        local, distinct = clip_indices(w.end_frame - w.start_frame, SPEC)
        assert w.indices == [w.start_frame + i for i in local] and w.num_frames == distinct
        assert videos.decode_indices(w.frames) == w.indices
    whole = read_clip(videos.write_video(tmp_path / "first.mp4", num_frames=8, fps=10), SPEC)
    assert torch.equal(whole.frames, windows[0].frames)
    assert (windows[0].start_s, windows[0].end_s, windows[-1].end_s) == (0.0, 0.8, 2.0)
    # seconds, hop longer than the window: gaps no window reads
    sparse = list(read_windows(index_video, SPEC, WindowPlan.parse(0.5, 1.0)))
    assert [(w.index, w.start_frame, w.end_frame) for w in sparse] == [(0, 0, 5), (1, 10, 15)]


def test_a_video_shorter_than_one_window_is_one_window(index_video, videos):
    for window in ("64f", 5.0):
        (only,) = read_windows(index_video, SPEC, WindowPlan.parse(window))
        assert (only.index, only.start_frame, only.end_frame, only.final) == (0, 0, 20, True)
        assert only.num_frames == 4 and only.end_s == 2.0
    short = ClipSpec(num_frames=32, short_side=32, crop_size=32)
    (only,) = read_windows(index_video, short, WindowPlan.parse("64f"))
    assert only.num_frames == 20 and videos.decode_indices(only.frames) == list(range(20)) + [19] * 12


def test_variable_frame_rate_windows_follow_presentation_times(tmp_path, videos):
    times = [0, 100, 150, 200, 600, 650, 1000, 1100, 1900, 1950]
    video = write_vfr(tmp_path / "vfr.mp4", times)
    windows = list(read_windows(video, SPEC, WindowPlan.parse(0.5, 0.5)))
    # [0, .5): frames 0-3; [.5, 1): 4-5; [1, 1.5): 6-7; [1.5, 2): 8-9 (decided by time, not by index)
    assert [(w.index, w.start_frame, w.end_frame) for w in windows] == [(0, 0, 4), (1, 4, 6), (2, 6, 8), (3, 8, 10)]
    assert [w.start_s for w in windows] == [0.0, 0.6, 1.0, 1.9]
    assert videos.decode_indices(windows[1].frames) == windows[1].indices
    assert windows[1].indices == [4, 5, 5, 5] and windows[1].num_frames == 2


def test_smoothing_and_segments():
    def w(k, probs):
        return Scored(k, k * 1.0, k * 1.0 + 2.0, 10 * k, 10 * k + 20, probs)

    raw = [w(0, {"a": 0.9, "b": 0.1}), w(1, {"a": 0.6, "b": 0.4}), w(2, {"b": 0.7, "a": 0.3}),
           w(3, {"a": 0.8, "c": 0.2}), w(4, {"b": 0.9, "a": 0.1}), w(5, {"b": 0.8, "c": 0.2})]
    assert [s.probs for s in smooth(raw, 1)] == [r.probs for r in raw]
    smoothed = list(smooth(iter(raw), 3))
    assert smoothed[0].probs == pytest.approx({"a": 0.75, "b": 0.25})  # the ends average fewer windows
    assert smoothed[2].probs == pytest.approx({"a": 1.7 / 3, "b": 1.1 / 3, "c": 0.2 / 3})
    assert [s.label for s in smoothed] == ["a", "a", "a", "b", "b", "b"]
    segs = list(segments(iter(raw)))
    assert [(s.label, s.start_frame, s.end_frame, s.first_window, s.last_window) for s in segs] == [
        ("a", 0, 25, 0, 1), ("b", 25, 35, 2, 2), ("a", 35, 45, 3, 3), ("b", 45, 70, 4, 5)]
    assert segs[0].prob == pytest.approx(0.75) and segs[-1].end_s == 7.0 and segs[1].start_s == 2.5
    with pytest.raises(ValueError, match="window count >= 1"):
        list(smooth(raw, 0))


def test_clip_geometry_maps_the_crop_back_to_the_frame():
    geo = ClipGeometry(720, 1280, ClipSpec(num_frames=4, short_side=256, crop_size=224))
    # 1280x720 → 455x256, crop 224 at (16, 115): the crop's corners land 2.8125x further on the frame
    x, y = geo.to_frame(-0.5, -0.5)
    assert (x, y) == pytest.approx(((115) * 1280 / 455 - 0.5, 16 * 720 / 256 - 0.5))
    x, y = geo.to_frame(111.5, 111.5)  # the crop's centre is the frame's centre
    assert (x, y) == pytest.approx((639.5, 359.5), abs=0.5 * 1280 / 455)


def _stitched(tmp_path: Path, groups: list[int]) -> tuple[Path, list[int]]:
    """A video of synthetic test clips, two of one class per segment; the class of each frame."""
    from s2d.synth.benchmark import clip_label, render_clip, sample_params, write_video

    by_label: dict[int, list[int]] = {}
    for i in range(400):
        by_label.setdefault(clip_label(0, "test", i), []).append(i)
    clips, truth = [], []
    for label in groups:
        for i in by_label[label][:2]:
            clips.append(render_clip(sample_params(0, "test", i)))
            truth += [label] * 16
    return write_video(tmp_path / "stitched.mp4", np.concatenate(clips), fps=8), truth


def test_windows_agree_with_the_segment_class_on_a_stitched_video(tmp_path, synth_model):
    video, truth = _stitched(tmp_path, [0, 5, 10, 15, 3, 6])
    preds = list(predict_windows(synth_model, video, window="16f", hop="8f", batch_size=4))
    assert preds[-1].final and all(p.error is None for p in preds)
    inside = [p for p in preds if len(set(truth[p.start_frame:p.end_frame])) == 1]
    agree = sum(p.labels[0][0] == synth_model.labels[truth[p.start_frame]] for p in inside)
    assert len(inside) == 18 and agree / len(inside) >= 0.9, f"{agree} of {len(inside)}"


def _run(argv: list[str]) -> int:
    return main(["predict", *argv, "--model", SYNTH])


@pytest.fixture(autouse=True)
def loaded_once(monkeypatch, synth_model):
    """The CLI gets the model loaded once for the module (loading it is not what these tests test)."""
    import s2d.cli.predict

    synth_model.pretrained = True
    monkeypatch.setattr(s2d.cli.predict, "load_model", lambda name, device, untrained: synth_model)


def test_records_resume_and_segments(tmp_path, synth_model, capsys):
    video, _ = _stitched(tmp_path, [0, 5, 10])
    out, segs = tmp_path / "r.jsonl", tmp_path / "seg.json"
    argv = [str(video), "--window", "16f", "--hop", "8f", "--output", str(out), "--segments", str(segs)]
    assert _run(argv) == 0
    full = out.read_bytes().splitlines(keepends=True)
    records = [json.loads(line) for line in full]
    assert [r["window"] for r in records] == list(range(11)) and records[-1]["final"]
    assert records[3]["start_frame"] == 24 and records[3]["end_s"] == 5.0 and records[0]["plan"] == "window 16f, hop 8f"
    assert len(records[0]["sampling"]["frames"]) == len(records[0]["sampling"]["centre_x"])
    first = json.loads(segs.read_text())
    # interrupted after four windows, the last one torn: the rerun records each window once
    out.write_bytes(b"".join(full[:4]) + full[4][:30])
    assert _run(argv) == 0
    again = [json.loads(line) for line in out.read_bytes().splitlines()]
    assert [r["window"] for r in again] == list(range(11)) and again == records
    assert json.loads(segs.read_text()) == first
    capsys.readouterr()
    assert _run(argv) == 0  # finished: not read again
    assert "every window already recorded" in capsys.readouterr().err
    assert _run([*argv[:3], "--hop", "4f", "--output", str(out)]) == 2  # another plan
    assert "not of this run's 'window 16f, hop 4f'" in capsys.readouterr().err
    collection = tmp_path / "videos.jsonl"
    assert main(["predict", str(video), "--model", SYNTH, "--output", str(collection)]) == 0
    assert _run([*argv[:5], "--output", str(collection)]) == 2
    assert "a record without 'window'" in capsys.readouterr().err
    before = out.read_bytes()  # and the other way round: a collection run refuses a file of windows, untouched
    assert main(["predict", str(video), "--model", SYNTH, "--output", str(out)]) == 2
    assert "a record of one window of a video" in capsys.readouterr().err and out.read_bytes() == before
    csv_out = tmp_path / "r.csv"
    assert _run([*argv[:5], "--output", str(csv_out)]) == 0
    recorded = WindowResultsFile(csv_out, topk=5)
    assert len(recorded.records) == 11 and recorded.finished() == {str(video)}
    assert [w.label for w in recorded.windows(str(video)).values()] == [r["labels"][0]["label"] for r in records]


def test_annotated_video_keeps_frame_count_and_rate(tmp_path, videos, capsys):
    video = videos.write_video(tmp_path / "in.mp4", num_frames=37, fps=12, width=96, height=64, pattern="ramp")
    target = tmp_path / "out.mp4"
    assert _run([str(video), "--window", "1.0", "--hop", "0.5", "--vis", str(target), "--smooth", "3"]) == 0
    with av.open(str(target)) as back, av.open(str(video)) as source:
        stream = back.streams.video[0]
        frames = [f.to_ndarray(format="rgb24") for f in back.decode(stream)]
        assert len(frames) == 37 and stream.average_rate == source.streams.video[0].average_rate == 12
        assert (stream.width, stream.height, stream.codec_context.name) == (96, 64, "h264")
    grey = np.abs(frames[5].astype(int) - frames[5].mean(axis=2, keepdims=True)).max(axis=2)
    assert (grey > 60).sum() > 50  # the red region and the white label are drawn on the grey frame
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.mp4", "out.mp4"]  # no temporary left
    vfr = write_vfr(tmp_path / "vfr.mp4", [0, 100, 150, 200, 600, 650, 1000, 1100, 1900, 1950])
    assert _run([str(vfr), "--window", "0.5", "--vis", str(tmp_path / "vfr-out.mp4"), "--vis-size", "32x24"]) == 0
    with av.open(str(tmp_path / "vfr-out.mp4")) as back:
        stream = back.streams.video[0]
        times = [round(float(f.pts * f.time_base), 3) for f in back.decode(stream)]
        assert times == [t / 1000 for t in [0, 100, 150, 200, 600, 650, 1000, 1100, 1900, 1950]]
        assert (stream.width, stream.height) == (32, 24)


@pytest.mark.parametrize("argv, message", [
    (["--hop", "1.0"], "--hop needs --window"),
    (["--window", "0"], "window must be seconds > 0"),
    (["--window", "2.0", "--hop", "4f"], "both be seconds or both frames"),
    (["--window", "2.0", "--vis", "pictures/"], "an .mp4 file"),
    (["--window", "2.0", "--decoder", "decord"], "with PyAV"),
    (["--window", "2.0", "--segments", "s.txt"], "must be a .json file"),
    (["--window", "2.0", "--vis-size", "32x24"], "--vis-size needs --vis"),
])
def test_bad_window_options_are_usage_errors(index_video, argv, message, capsys):
    assert _run([str(index_video), *argv]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and message in err and "Traceback" not in err


def test_an_existing_vis_or_foreign_segments_file_is_kept(index_video, tmp_path, capsys):
    taken = tmp_path / "taken.mp4"
    taken.write_bytes(b"mine")
    assert _run([str(index_video), "--window", "1.0", "--vis", str(taken)]) == 2
    foreign = tmp_path / "notes.json"
    foreign.write_text('{"mine": true}')
    assert _run([str(index_video), "--window", "1.0", "--segments", str(foreign)]) == 2
    assert taken.read_bytes() == b"mine" and foreign.read_text() == '{"mine": true}'
    assert "already exists" in capsys.readouterr().err


MEMORY_PROBE = """
import resource, sys
from s2d.inference.windows import WindowPlan, read_windows
from s2d.io import ClipSpec

spec = ClipSpec(num_frames=16, short_side=128, crop_size=128)
peaks = []
for w in read_windows(sys.argv[1], spec, WindowPlan.parse("64f", "32f")):
    peaks.append(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
print(len(peaks), peaks[4], peaks[-1])
"""


def test_memory_follows_the_window_not_the_video(tmp_path):
    """2,000 frames: holding them (cropped to 128²) would take 98 MB; the windows hold 64 (3 MB)."""
    path = tmp_path / "long.mp4"
    with av.open(str(path), mode="w") as out:
        stream = out.add_stream("libx264", rate=30, options={"preset": "ultrafast", "g": "30"})
        stream.width, stream.height, stream.pix_fmt = 128, 128, "yuv420p"
        rng = np.random.default_rng(0)
        noise = rng.integers(0, 255, (128, 128, 3), dtype=np.uint8)
        for i in range(2000):
            out.mux(stream.encode(av.VideoFrame.from_ndarray(np.roll(noise, i, axis=1), format="rgb24")))
        out.mux(stream.encode(None))
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    done = subprocess.run([sys.executable, "-c", MEMORY_PROBE, str(path)], capture_output=True, text=True, env=env,
                          check=True)
    windows, early, late = map(int, done.stdout.split())
    assert windows == 62
    assert (late - early) / 1024 < 25, f"peak RSS grew {(late - early) / 1024:.0f} MB after window 4"


def test_an_unreadable_video_is_recorded_and_the_run_goes_on(index_video, videos, tmp_path, capsys):
    bad = videos.write_not_video(tmp_path / "bad.mp4")
    out = tmp_path / "r.csv"
    argv = [str(bad), str(index_video), "--window", "1.0", "--output", str(out)]
    assert _run(argv) == 1
    recorded = WindowResultsFile(out, topk=5)
    failed = [r for r in recorded.records if r["error"]]
    assert len(failed) == 1 and failed[0]["window"] == "" and recorded.failed() == {str(bad)}
    assert recorded.finished() == {str(bad), str(index_video)} and len(recorded.records) == 4
    assert "bad.mp4" in capsys.readouterr().err
    assert _run(argv) == 0 and len(WindowResultsFile(out, topk=5).records) == 4  # nothing left to do
    assert _run([*argv, "--retry-failed"]) == 1 and len(WindowResultsFile(out, topk=5).records) == 4
