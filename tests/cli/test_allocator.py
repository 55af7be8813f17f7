"""The allocator setting of s2d's own processes: freed temporaries stay in the process (no page
faults to bring them back), it can be turned off, and the command line applies it at start-up."""
from __future__ import annotations

import subprocess
import sys

import pytest

PROBE = """
import resource, sys, torch
from s2d.inference.allocator import keep_freed_memory
applied = keep_freed_memory() if sys.argv[1] == "on" else False
torch.set_num_threads(1)  # one thread: every block comes from the main heap (the count is then exact)
def faults():
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt
x = torch.ones(64 << 20, dtype=torch.uint8)
for _ in range(10):  # warm up: the heap grows over the first few passes (at most ~6 seen)
    y = x + 1; del y
before = faults()
for _ in range(5):  # a forward pass's temporary (64 MiB), allocated, written and freed again
    y = x + 1; del y
print(applied, faults() - before)
"""

def _probe(mode: str, env: dict | None = None) -> tuple[bool, int]:
    import os

    out = subprocess.run([sys.executable, "-c", PROBE, mode], capture_output=True, text=True, check=True,
                         env={**os.environ, "GLIBC_TUNABLES": "", **(env or {})})
    applied, faults = out.stdout.split()
    return applied == "True", int(faults)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's mallopt")
def test_freed_temporaries_are_not_faulted_in_again():
    applied, faults_on = _probe("on")
    _, faults_off = _probe("off")
    assert applied
    # 5 x 64 MiB touched: glibc's default returns each block and faults its 16,384 pages in again;
    # kept, the block is reused once the heap has grown (0 faults measured; one growth is allowed for)
    assert faults_off > 5 * 8_000, faults_off
    assert faults_on * 5 < faults_off, (faults_on, faults_off)


def test_s2d_malloc_default_leaves_glibc_alone():
    applied, _ = _probe("on", {"S2D_MALLOC": "default"})
    assert not applied
    applied, _ = _probe("on", {"GLIBC_TUNABLES": "glibc.malloc.trim_threshold=1000"})
    assert not applied  # the user's own malloc tunables win


def test_the_command_line_applies_it_first(monkeypatch):
    import s2d.__main__ as entry
    import s2d.cli
    import s2d.inference.allocator as allocator

    calls = []
    monkeypatch.setattr(allocator, "keep_freed_memory", lambda: calls.append("allocator") or True)
    monkeypatch.setattr(s2d.cli, "main", lambda argv=None: calls.append(("cli", argv)) or 0)
    assert entry.main(["info"]) == 0
    assert calls == ["allocator", ("cli", ["info"])]
