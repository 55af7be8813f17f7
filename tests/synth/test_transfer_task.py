"""The transfer task (`s2d.synth.tasks`), the class-folder writer (`s2d.synth.folder`) and `data synth`."""
from __future__ import annotations

import hashlib
import math
from collections import Counter
from dataclasses import replace

import numpy as np
import pytest
import torch

from s2d.synth import TRANSFER_CLASSES, TRANSFER_FOLDERS, SyntheticDetailDataset, folder_plan, get_task, write_folder
from s2d.synth.appearance import GLYPH_PERIOD, OBJECTS, glyph_tile
from s2d.synth.benchmark import CLASSES, clip_label, render_clip, sample_params
from s2d.synth.views import no_leak_check

TRANSFER = get_task("transfer")

# sha256 of clips' bytes and their labels, recorded before the tasks existed: the shipped model's
# scores depend on the benchmark's clips staying exactly these.
BENCHMARK_CLIPS = [
    (("train", 0, 0, 16, 128), 3, "419348ae3783e1199389976b1032b03cc23508016d4297f938f95a3f73f3f888"),
    (("train", 0, 17, 16, 128), 10, "63c4e8bf87605d8ac22e1cecb1803961dfacf9f32ba71f773a19b8b7f2726eb8"),
    (("val", 3, 5, 16, 128), 3, "85a8da1030134dd9234e60ca5039f09410a47639f006583c12c916a5d2765011"),
    (("test", 11, 42, 16, 128), 9, "8e6d28dc929cbf458a737947d9aaefb47744ccb781260912d9fb8e45e1421d5e"),
    (("test", 0, 1, 8, 64), 1, "0229b674d36b9caaa1a28066bf5a7f0778ca2f40f6426a41fbbe74866ef37dc5"),
]


def _digest(frames: torch.Tensor | np.ndarray) -> str:
    array = frames.numpy() if isinstance(frames, torch.Tensor) else frames
    return hashlib.sha256(np.ascontiguousarray(array).tobytes()).hexdigest()


@pytest.mark.parametrize("key,label,digest", BENCHMARK_CLIPS)
def test_the_benchmark_clips_are_unchanged(key, label, digest):
    split, seed, index, frames, resolution = key
    for ds in (SyntheticDetailDataset(split, index + 1, seed=seed, frames=frames, resolution=resolution),
               SyntheticDetailDataset(split, index + 1, seed=seed, frames=frames, resolution=resolution,
                                      task="benchmark")):
        sample = ds[index]
        assert (sample["label"], _digest(sample["frames"])) == (label, digest)
        assert sample["path"] == f"synth:{split}/{seed}/{index}"
        assert ds.classes == list(CLASSES)


def test_transfer_clips_are_deterministic_and_new():
    a = SyntheticDetailDataset("train", 3, seed=7, task="transfer")
    b = SyntheticDetailDataset("train", 3, seed=7, task="transfer")
    assert [_digest(a[i]["frames"]) for i in range(3)] == [_digest(b[i]["frames"]) for i in range(3)]
    assert [a[i]["label"] for i in range(3)] == a.labels() == b.labels()
    assert a[1]["path"] == "synth-transfer:train/7/1" and a.classes == list(TRANSFER_CLASSES)
    assert a[0]["frames"].shape == (16, 128, 128, 3) and a[0]["frames"].dtype == torch.uint8
    # its own stream: no clip repeats the benchmark's motion, clutter or noise at the same index
    bench = SyntheticDetailDataset("train", 3, seed=7)
    for i in range(3):
        p, q = a.params(i), bench.params(i)
        assert p.task == "transfer" and q.task == "benchmark"
        assert p.noise_seed != q.noise_seed and p.background != q.background
        assert _digest(a[i]["frames"]) != _digest(bench[i]["frames"])


def test_transfer_labels_are_balanced_and_mean_colour_group_by_diagonal_glyph():
    ds = SyntheticDetailDataset("val", 16 * 3, seed=2, task="transfer")
    labels = ds.labels()
    assert len(TRANSFER_CLASSES) == 8
    for block in range(3):  # every 16 clips: each class twice, each colour 4 times, each (colour, glyph) once
        chunk = range(16 * block, 16 * block + 16)
        assert Counter(labels[i] for i in chunk) == {c: 2 for c in range(8)}
        params = [ds.params(i) for i in chunk]
        assert Counter(p.kind for p in params) == {k: 4 for k in range(4)}
        assert len({(p.kind, p.glyph) for p in params}) == 16
    for i in range(16):
        p = ds.params(i)
        group, fine = divmod(p.label, 4)
        assert OBJECTS[p.kind].split()[0] in {0: ("green", "blue"), 1: ("red", "yellow")}[group]
        assert p.glyph == TRANSFER.glyphs[fine] and p.label == labels[i] == clip_label(2, "val", i, "transfer")
    assert TRANSFER_CLASSES[0] == "cool object / light-dark falling diagonal bars"


def test_class_folder_names_are_safe_and_sort_in_label_order():
    for task in ("transfer", "benchmark"):
        folders = get_task(task).folders
        assert len(set(folders)) == len(folders) == len(get_task(task).classes)
        assert all(" " not in f and "/" not in f and "\\" not in f for f in folders)
        assert list(folders) == sorted(folders)  # a folder scan numbers the classes as the task does
    assert TRANSFER_FOLDERS[:2] == ("cool_luma-fall", "cool_luma-rise")


def test_new_glyph_tiles_hold_the_same_colours_and_are_new():
    tiles = {g: glyph_tile(g) for g in range(8)}
    for tile in tiles.values():
        assert sorted(Counter(tile.ravel().tolist()).values()) == [4, 4, 4, 4]
    # no transfer tile equals any benchmark tile (or another), under any of the 16 tile phases
    shifted = {g: {np.roll(t, (dy, dx), (0, 1)).tobytes() for dy in range(4) for dx in range(4)}
               for g, t in tiles.items()}
    for g in TRANSFER.glyphs:
        assert all(not shifted[g] & shifted[h] for h in range(8) if h != g)
    with pytest.raises(ValueError, match="glyph id"):
        glyph_tile(8)


def _glyph_spectrum(patch: torch.Tensor) -> dict[str, float]:
    """|DFT| of a `[3, h, w]` patch's luminance and red-green at the bars' (f_y, f_x) = (1/4, 0),
    (0, 1/4) and the diagonals' (1/4, ±1/4) cycle/px: phase-invariant glyph evidence. A wave at
    (1/4, 1/4) is constant along x + y = const: rising lines."""
    out = {}
    for axis, channel in (("luma", patch.mean(0)), ("rg", patch[0] - patch[1])):
        spec = torch.fft.fft2(channel - channel.mean())
        q = channel.shape[0] // GLYPH_PERIOD
        out.update({f"{axis}-h": float(spec[q, 0].abs()), f"{axis}-v": float(spec[0, q].abs()),
                    f"{axis}-rise": float(spec[q, q].abs()), f"{axis}-fall": float(spec[q, -q].abs())})
    return out


def test_new_glyphs_differ_from_the_benchmarks_at_full_resolution():
    """Each transfer glyph, read from the full-resolution interior of a noiseless clip, has all its
    energy at its own diagonal and colour axis, none at the benchmark's bars."""
    p = sample_params(0, "test", 3, task="transfer")
    x0, y0, _, _ = p.box(p.glyph_start)
    for fine, glyph in enumerate(TRANSFER.glyphs):
        clip = render_clip(replace(p, glyph=glyph, noise_std=0.0))
        patch = torch.from_numpy(clip[p.glyph_start, y0 + 4:y0 + 20, x0 + 4:x0 + 20]).permute(2, 0, 1).float()
        energy = _glyph_spectrum(patch)
        name = TRANSFER.folders[fine].split("_")[1]  # e.g. "luma-fall"
        assert max(energy, key=energy.get) == name
        assert all(v < 1e-3 * energy[name] for k, v in energy.items() if k != name)


def test_the_detail_sampler_resolves_the_new_glyphs_at_one_pixel_stride():
    """The model's Gaussian sampler (σ = 1 px) zoomed to a 1-pixel stride on the glyph keeps the
    diagonal bars (the same set-up as the benchmark's test in test_synth.py)."""
    from s2d_kernels.sampler import RawSampling, filterbank_sample

    p = sample_params(0, "test", 2, task="transfer")
    t = p.glyph_start
    x0, y0, _, _ = p.box(t)
    size = 16
    for fine, glyph in enumerate(TRANSFER.glyphs):
        frames = torch.from_numpy(render_clip(replace(p, glyph=glyph, noise_std=0.0))).permute(0, 3, 1, 2)[None].float()
        centre = torch.tensor([[x0 + 4 + (size - 1) / 2, y0 + 4 + (size - 1) / 2]])
        raw = RawSampling.fixed(1, 2)
        raw.dt = torch.full((1,), math.atanh(2 * t / 15 - 1 + 1e-6))
        raw.delta_t = torch.full((1,), math.log(1e-3))
        raw.dx = torch.atanh(2 * centre[:, :1] / 127 - 1).expand(1, 2).clone()
        raw.dy = torch.atanh(2 * centre[:, 1:] / 127 - 1).expand(1, 2).clone()
        raw.delta_x = torch.full((1, 2), math.log((size - 1) / 128))  # 1-pixel stride
        raw.delta_y = raw.delta_x.clone()
        energy = _glyph_spectrum(filterbank_sample(frames, torch.tensor([16]), raw, size)[0, 0])
        name = TRANSFER.folders[fine].split("_")[1]
        assert energy[name] > 3 * max(v for k, v in energy.items() if k != name), (name, energy)


def test_reduced_views_are_blind_to_the_new_glyphs():
    """The synopsis' view (4 frames at 32²) and the uniform detail-net view (8 frames at 32²) of a
    transfer clip induce the same distribution of inputs for all eight glyphs of both tasks: none
    of the new glyphs, nor new-versus-old, can be told apart there."""
    p = sample_params(0, "test", 0, task="transfer")
    assert no_leak_check(p, 16, 128, [(4, 32), (8, 32)], glyphs=range(8))


@pytest.mark.slow
@pytest.mark.parametrize("index", [5, 9])
def test_reduced_views_are_blind_to_the_new_glyphs_on_more_clips(index):
    p = sample_params(0, "test", index, task="transfer")
    assert no_leak_check(p, 16, 128, [(4, 32), (8, 32)])  # the task's own glyphs by default


def test_the_leak_check_catches_the_new_glyphs_in_a_finer_view():
    """Every 2nd pixel (a 64² view of a 128² clip) shows the glyph's colour axis: the check fails.
    The bars' direction needs a finer stride still: at 2 px rising and falling bars alias into the
    same 1-pixel checker (unlike the benchmark's horizontal and vertical bars)."""
    p = sample_params(0, "test", 0, frames=8, task="transfer")
    assert not no_leak_check(p, 8, 128, [(4, 64)])
    assert no_leak_check(p, 8, 128, [(4, 64)], glyphs=TRANSFER.glyphs[:2])  # light-dark falling vs rising
    assert not no_leak_check(replace(p, task="benchmark"), 8, 128, [(4, 64)], glyphs=(0, 1))


# ------------------------------------------------------------------------------------------------
# Class folders of mp4 files, and `python -m s2d data synth`


def test_write_folder_writes_class_folders_that_decode_to_the_clips(tmp_path):
    from s2d.data import prepare_list
    from s2d.io import ClipSpec, read_clip

    written = write_folder(tmp_path, "transfer", "val", 3, seed=4, start=10)
    assert list(written) == list(TRANSFER_FOLDERS) and sum(written.values()) == 3
    assert sorted(d.name for d in tmp_path.iterdir()) == list(TRANSFER_FOLDERS)  # empty classes too
    data = SyntheticDetailDataset("val", 13, seed=4, task="transfer")
    for index in range(10, 13):
        path = tmp_path / TRANSFER_FOLDERS[data[index]["label"]] / f"val_{index:05d}.mp4"
        clip = read_clip(path, ClipSpec(num_frames=16, short_side=128, crop_size=128))
        assert clip.num_frames == 16 and clip.frames.shape == (16, 128, 128, 3)
        assert torch.equal(clip.frames, data[index]["frames"])  # lossless: the glyphs survive
    assert [p for _, p in folder_plan(tmp_path, "transfer", "val", 3, seed=4, start=10)] == sorted(
        tmp_path.glob("*/*.mp4"), key=lambda p: p.name)
    report = prepare_list(tmp_path, tmp_path / "lists" / "val.txt", check=False)
    assert report.classes == list(TRANSFER_FOLDERS) and report.videos == 3
    with pytest.raises(FileExistsError, match="val_00012.mp4"):
        write_folder(tmp_path, "transfer", "val", 1, seed=4, start=12)


def test_data_synth_command_writes_counts_and_never_overwrites(tmp_path, capsys):
    from s2d.cli import main

    out = tmp_path / "data"
    assert main(["data", "synth", str(out), "--task", "benchmark", "--split", "test", "--clips", "2",
                 "--seed", "3"]) == 0
    printed = capsys.readouterr().out.splitlines()
    labels = [clip_label(3, "test", i, "benchmark") for i in range(2)]
    folders = get_task("benchmark").folders
    assert printed[0].startswith("wrote 2 benchmark clips (test 0..1, seed 3)")
    assert [line.split() for line in printed[1:]] == [[f, str(labels.count(k))] for k, f in enumerate(folders)]
    assert {p.relative_to(out).as_posix() for p in out.glob("*/*.mp4")} == {
        f"{folders[labels[i]]}/test_{i:05d}.mp4" for i in range(2)}
    before = {p: p.stat().st_mtime_ns for p in out.glob("*/*.mp4")}
    # the same clips again: refused, naming the file, nothing touched
    assert main(["data", "synth", str(out), "--task", "benchmark", "--split", "test", "--clips", "2",
                 "--seed", "3"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("s2d data synth: ") and "test_00000.mp4 exists" in err and len(err.splitlines()) == 1
    assert {p: p.stat().st_mtime_ns for p in out.glob("*/*.mp4")} == before
    # more clips after them are added
    assert main(["data", "synth", str(out), "--task", "benchmark", "--split", "test", "--clips", "1",
                 "--seed", "3", "--start", "2"]) == 0
    assert len(list(out.glob("*/*.mp4"))) == 3
    with pytest.raises(SystemExit) as usage:  # argparse's usage error
        main(["data", "synth", str(out), "--clips", "0"])
    assert usage.value.code == 2 and "--clips: expected an integer >= 1, got 0" in capsys.readouterr().err
