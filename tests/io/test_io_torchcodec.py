"""The optional torchcodec decoder: same frames as PyAV, the fallback order, a clear error when absent."""
import pytest
import torch

import s2d.io.reader as reader
import s2d.io.torchcodec_decoder as tc
from s2d.io import ClipSpec, VideoError, read_clip, torchcodec_available

needs_torchcodec = pytest.mark.skipif(not torchcodec_available(),
                                      reason="torchcodec is not installed or cannot load FFmpeg's libraries here")


@pytest.fixture(scope="module")
def video(tmp_path_factory, videos):
    return videos.write_video(tmp_path_factory.mktemp("tc") / "index.mp4", num_frames=20, width=96, height=64)


@needs_torchcodec
@pytest.mark.parametrize("spec", [ClipSpec(num_frames=8, short_side=64, crop_size=48),
                                  ClipSpec(num_frames=24, short_side=64, crop_size=64),  # longer than the video
                                  ClipSpec(num_frames=4, short_side=72, crop_size=64, sampling="stride", stride=3,
                                           start=5)])
def test_torchcodec_reads_the_frames_pyav_reads(video, spec, videos):
    ours, theirs = read_clip(video, spec, backend="torchcodec"), read_clip(video, spec, backend="pyav")
    assert ours.backend == "torchcodec" and ours.frames.shape == theirs.frames.shape
    assert ours.indices == theirs.indices and ours.num_frames == theirs.num_frames
    assert ours.video_frames == theirs.video_frames == 20
    assert videos.decode_indices(ours.frames) == ours.indices  # the frames really are the ones asked for
    # Both run FFmpeg, possibly different builds: colour conversion may differ by a level or two.
    assert (ours.frames.float() - theirs.frames.float()).abs().mean() < 2.0


@needs_torchcodec
def test_auto_prefers_torchcodec_when_decord_is_missing(video, monkeypatch, tmp_path):
    monkeypatch.setattr(reader, "decord_available", lambda: False)
    spec = ClipSpec(num_frames=4, short_side=64, crop_size=48)
    assert read_clip(video, spec).backend == "torchcodec"
    # a file torchcodec cannot read falls back to PyAV, which yields the frames that decode
    monkeypatch.setattr(reader, "torchcodec_read_frames",
                        lambda *a: (_ for _ in ()).throw(tc.TorchCodecFailed("simulated")))
    assert read_clip(video, spec).backend == "pyav"
    with pytest.raises(Exception, match="torchcodec cannot read it"):
        read_clip(video, spec, backend="torchcodec")


@needs_torchcodec
def test_the_standard_videos_read_alike_through_the_torchcodec_chain(tmp_path, monkeypatch, videos):
    """With decord missing, "auto" goes through torchcodec (PyAV taking over what it cannot read):
    good, odd and damaged-but-readable videos give PyAV's clip, unreadable ones the same error."""
    monkeypatch.setattr(reader, "decord_available", lambda: False)
    vids = videos.make_video_set(tmp_path)
    spec = ClipSpec(num_frames=8, short_side=40, crop_size=32)
    for name, path in vids.items():
        try:
            expected = read_clip(path, spec, backend="pyav")
        except VideoError:
            with pytest.raises(VideoError):
                read_clip(path, spec)
            continue
        clip = read_clip(path, spec)
        assert clip.indices == expected.indices and clip.video_frames == expected.video_frames, name
        assert (clip.frames.float() - expected.frames.float()).abs().mean() < 2.0, name


def test_without_torchcodec_the_choice_is_refused_and_auto_skips_it(video, monkeypatch):
    monkeypatch.setattr(tc, "_CHECKED", True)
    monkeypatch.setattr(tc, "_DECODER", None)
    monkeypatch.setattr(reader, "torchcodec_available", tc.torchcodec_available)
    monkeypatch.setattr(reader, "decord_available", lambda: False)
    with pytest.raises(ImportError, match="FFmpeg's shared libraries"):
        read_clip(video, ClipSpec(num_frames=4, short_side=64, crop_size=48), backend="torchcodec")
    assert read_clip(video, ClipSpec(num_frames=4, short_side=64, crop_size=48)).backend == "pyav"
    with pytest.raises(ValueError, match="'torchcodec'"):
        read_clip(video, ClipSpec(num_frames=4, short_side=64, crop_size=48), backend="ffmpeg")
