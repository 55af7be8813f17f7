"""The zoo index: which named models have published weights, where, and their checksums.

Each entry maps a model name to its Hub repo id, the pinned revision (a commit hash, so a later
push to the repo never changes what a name loads), the sha256 and byte size of its
`model.safetensors`, verified after every download, and the sha256 of its `config.json` (the
normalisation, the sampler's σ and every size the weights were trained with), verified on every
load: an edited config fails like edited weights. An entry without `config_sha256` (an index
written before it existed) verifies the weights only, and loading says so. A *bundled* entry has
no repo: its weights ship with the package in its zoo folder (`zoo/<name>/`, installed as
`s2d_zoo`; small models, such as the synthetic benchmark's) and are verified against the same
checksums when loaded. A model without an entry has no published weights yet. The index ships as
`s2d/hub/zoo_index.json`; `S2D_ZOO_INDEX=/path/index.json` replaces it (a private zoo, or tests).
"""
from __future__ import annotations

import json
import os
import re
from dataclasses import asdict, dataclass
from importlib import resources
from pathlib import Path

from s2d.io.files import atomic_write_text

_COMMIT = re.compile(r"^[0-9a-f]{40}$")
_SHA256 = re.compile(r"^[0-9a-f]{64}$")


@dataclass(frozen=True)
class ZooEntry:
    """Where a named model's weights live and what they must hash to."""

    repo_id: str | None  # None: bundled in the zoo folder, zoo/<name>/
    revision: str | None
    sha256: str
    size: int
    config_sha256: str | None = None  # sha256 of config.json's bytes (None: only the weights are verified)

    @property
    def bundled(self) -> bool:
        """The weights ship with the package in `zoo/<name>/`, not on the Hub."""
        return self.repo_id is None

    def __post_init__(self):
        if self.repo_id is None:
            if self.revision is not None:
                raise ValueError(f"zoo index: a bundled entry (repo_id null) has no revision, got {self.revision!r}")
        elif not isinstance(self.repo_id, str) or self.repo_id.count("/") != 1:
            raise ValueError(f"zoo index: repo_id must be 'org/name', got {self.repo_id!r}")
        elif not isinstance(self.revision, str) or not _COMMIT.match(self.revision):
            raise ValueError(f"zoo index: revision of {self.repo_id} must be a 40-hex commit hash (a branch or "
                             f"tag can move), got {self.revision!r}")
        who = self.repo_id or "a bundled entry"
        if not isinstance(self.sha256, str) or not _SHA256.match(self.sha256):
            raise ValueError(f"zoo index: sha256 of {who} must be 64 lowercase hex digits, "
                             f"got {self.sha256!r}")
        if self.config_sha256 is not None and not (isinstance(self.config_sha256, str)
                                                   and _SHA256.match(self.config_sha256)):
            raise ValueError(f"zoo index: config_sha256 of {who} must be null or 64 lowercase hex digits, "
                             f"got {self.config_sha256!r}")
        if not isinstance(self.size, int) or isinstance(self.size, bool) or self.size <= 0:
            raise ValueError(f"zoo index: size of {who} must be a positive byte count, got {self.size!r}")

    def to_dict(self) -> dict:
        return asdict(self)


def index_path() -> Path | None:
    """The index file in use: `$S2D_ZOO_INDEX`, else the packaged `s2d/hub/zoo_index.json`."""
    override = os.environ.get("S2D_ZOO_INDEX")
    if override:
        return Path(override)
    path = resources.files("s2d.hub").joinpath("zoo_index.json")
    return Path(str(path))


def load_index() -> dict[str, ZooEntry]:
    """Read the index (`{name: {repo_id, revision, sha256, size, config_sha256}}`); missing file = empty index."""
    path = index_path()
    if path is None or not path.is_file():
        return {}
    data = json.loads(path.read_text(encoding="utf-8") or "{}")
    return {name: ZooEntry(**entry) for name, entry in data.items()}


def has_weights(name: str) -> bool:
    """Whether `name` has published weights."""
    return name in load_index()


def format_index(entries: dict[str, ZooEntry]) -> str:
    """The index file's text: sorted names, two-space indent, trailing newline."""
    return json.dumps({n: entries[n].to_dict() for n in sorted(entries)}, indent=2) + "\n"


def record_entry(name: str, entry: ZooEntry, path: str | Path | None = None) -> Path:
    """Add or replace `name` in the index file (default: the one in use) and return its path."""
    path = Path(path) if path is not None else index_path()
    entries = {}
    if path.is_file():
        data = json.loads(path.read_text(encoding="utf-8") or "{}")
        entries = {n: ZooEntry(**e) for n, e in data.items()}
    entries[name] = entry
    atomic_write_text(path, format_index(entries))
    return path
