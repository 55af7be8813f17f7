"""A local stand-in for the Hugging Face Hub: enough of its HTTP protocol for `hf_hub_download`.

The real download code of `huggingface_hub` runs against it unchanged, so the tests exercise
caching, revision pinning, offline mode and error handling without the internet.

What `hf_hub_download` (huggingface_hub 2.x, `file_download.py`) needs, and what this serves:

- `HEAD /{org}/{repo}/resolve/{revision}/{path}`: metadata, without following redirects off the
  Hub host. Regular files answer 200 with `ETag` (the git blob sha1), `X-Repo-Commit` (the commit
  the revision resolves to) and `Content-Length`. LFS files (`*.safetensors`) answer 302 like the
  Hub: `Location` on another host (a "CDN", here `localhost` while the Hub is `127.0.0.1`),
  `X-Linked-Etag` (the sha256), `X-Linked-Size` and `X-Repo-Commit`.
- `GET` of the same URL (regular files) or of the CDN location (LFS): the bytes.
- Errors as the Hub reports them: 404 with `X-Error-Code` `RepoNotFound`, `RevisionNotFound` or
  `EntryNotFound` (the last with `X-Repo-Commit`), which huggingface_hub maps to its exceptions.
- `GET /api/models/{org}/{repo}[/revision/{rev}]`: `{"id", "sha", "siblings"}` (model_info).

`use_local_hub` points huggingface_hub at a server: it sets `HF_ENDPOINT` / `HF_HOME` /
`HF_HUB_CACHE` and patches the constants huggingface_hub computed from them at import time.
"""
from __future__ import annotations

import hashlib
import json
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import unquote, urlsplit

LFS_SUFFIXES = (".safetensors", ".bin", ".pth")


def git_blob_sha1(data: bytes) -> str:
    """The id git gives a file's content (the Hub's ETag for regular files)."""
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


@dataclass
class Repo:
    commits: dict[str, dict[str, bytes]] = field(default_factory=dict)  # commit sha -> files
    refs: dict[str, str] = field(default_factory=dict)  # branch -> commit sha


class LocalHub:
    """An in-memory set of model repos served over HTTP on 127.0.0.1 (random free port)."""

    def __init__(self) -> None:
        self.repos: dict[str, Repo] = {}
        self.blobs: dict[str, bytes] = {}  # sha256 -> LFS content
        self.requests: list[tuple[str, str]] = []  # (method, path) of every request served
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self.port: int | None = None

    # -- content ---------------------------------------------------------------------------------
    def commit(self, repo_id: str, files: dict[str, bytes | str | Path], branch: str = "main") -> str:
        """Add a commit on `branch` whose tree is the branch's previous tree updated with `files`;
        returns the 40-hex commit hash."""
        repo = self.repos.setdefault(repo_id, Repo())
        parent = repo.refs.get(branch)
        tree = dict(repo.commits[parent]) if parent else {}
        for name, content in files.items():
            if isinstance(content, Path):
                content = content.read_bytes()
            elif isinstance(content, str):
                content = content.encode()
            tree[name] = content
        digest = hashlib.sha1(repr((parent, sorted((n, hashlib.sha256(c).hexdigest()) for n, c in tree.items())))
                              .encode()).hexdigest()
        repo.commits[digest] = tree
        repo.refs[branch] = digest
        for name, content in tree.items():
            if name.endswith(LFS_SUFFIXES):
                self.blobs[hashlib.sha256(content).hexdigest()] = content
        return digest

    def commit_folder(self, repo_id: str, folder: str | Path, branch: str = "main") -> str:
        """Commit every file of a folder (what `upload_folder` would send)."""
        folder = Path(folder)
        return self.commit(repo_id, {p.relative_to(folder).as_posix(): p.read_bytes()
                                     for p in sorted(folder.rglob("*")) if p.is_file()}, branch)

    def resolve(self, repo_id: str, revision: str) -> str | None:
        repo = self.repos[repo_id]
        return revision if revision in repo.commits else repo.refs.get(revision)

    # -- server ----------------------------------------------------------------------------------
    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def cdn(self) -> str:
        return f"http://localhost:{self.port}"

    def start(self) -> "LocalHub":
        hub = self

        class Handler(_Handler):
            pass

        Handler.hub = hub
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.02},
                                        name="local-hub", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._thread.join(timeout=5)
            self._server = None

    def __enter__(self) -> "LocalHub":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


class _Handler(BaseHTTPRequestHandler):
    hub: LocalHub
    protocol_version = "HTTP/1.0"  # one request per connection: after stop() nothing answers any more

    def log_message(self, format, *args) -> None:  # keep test output quiet
        pass

    def do_HEAD(self) -> None:
        self._serve(body=False)

    def do_GET(self) -> None:
        self._serve(body=True)

    def _send(self, status: int, headers: dict[str, str], data: bytes = b"", body: bool = True) -> None:
        self.send_response(status)
        for key, value in headers.items():
            self.send_header(key, value)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if body and data:
            self.wfile.write(data)

    def _error(self, code: str, message: str, body: bool, extra: dict[str, str] | None = None) -> None:
        data = json.dumps({"error": message}).encode()
        self._send(404, {"X-Error-Code": code, "X-Error-Message": message, "Content-Type": "application/json",
                         **(extra or {})}, data, body)

    def _serve(self, body: bool) -> None:
        hub = self.hub
        path = urlsplit(self.path).path
        hub.requests.append((self.command, path))
        parts = [unquote(p) for p in path.strip("/").split("/")]
        if len(parts) == 2 and parts[0] == "lfs":  # the "CDN"
            data = hub.blobs.get(parts[1])
            if data is None:
                return self._send(404, {}, b"no such object", body)
            return self._send(200, {"Content-Type": "application/octet-stream", "ETag": f'"{parts[1]}"'}, data, body)
        if len(parts) >= 3 and parts[0] == "api" and parts[1] == "models":
            return self._api(parts[2:], body)
        if len(parts) >= 5 and parts[2] == "resolve":
            repo_id, revision, filename = f"{parts[0]}/{parts[1]}", parts[3], "/".join(parts[4:])
            return self._resolve(repo_id, revision, filename, body)
        self._send(404, {}, b"not found", body)

    def _commit_tree(self, repo_id: str, revision: str, body: bool) -> tuple[str, dict[str, bytes]] | None:
        """The commit a revision names and its files; None after answering the Hub's error."""
        if repo_id not in self.hub.repos:
            self._error("RepoNotFound", f"Repository {repo_id} not found", body)
            return None
        commit = self.hub.resolve(repo_id, revision)
        if commit is None:
            self._error("RevisionNotFound", f"Invalid rev id: {revision}", body)
            return None
        return commit, self.hub.repos[repo_id].commits[commit]

    def _resolve(self, repo_id: str, revision: str, filename: str, body: bool) -> None:
        hub = self.hub
        found = self._commit_tree(repo_id, revision, body)
        if found is None:
            return
        commit, tree = found
        if filename not in tree:
            return self._error("EntryNotFound", f"{filename} does not exist at {commit}", body,
                               {"X-Repo-Commit": commit})
        data = tree[filename]
        if filename.endswith(LFS_SUFFIXES):
            sha = hashlib.sha256(data).hexdigest()
            return self._send(302, {"Location": f"{hub.cdn}/lfs/{sha}", "X-Repo-Commit": commit,
                                    "X-Linked-Etag": f'"{sha}"', "X-Linked-Size": str(len(data)),
                                    "ETag": f'"{git_blob_sha1(data)}"'}, b"", body)
        self._send(200, {"X-Repo-Commit": commit, "ETag": f'"{git_blob_sha1(data)}"',
                         "Content-Type": "application/octet-stream"}, data, body)

    def _api(self, parts: list[str], body: bool) -> None:
        repo_id = "/".join(parts[:2])
        revision = parts[3] if len(parts) >= 4 and parts[2] == "revision" else "main"
        found = self._commit_tree(repo_id, revision, body)
        if found is None:
            return
        commit, tree = found
        info = {"id": repo_id, "modelId": repo_id, "sha": commit, "private": False,
                "siblings": [{"rfilename": name} for name in sorted(tree)]}
        self._send(200, {"Content-Type": "application/json"}, json.dumps(info).encode(), body)


def use_local_hub(monkeypatch, hub: LocalHub | None, home: Path) -> None:
    """Point huggingface_hub at `hub` (None: an endpoint nothing listens on) with its cache under
    `home`. huggingface_hub reads these variables once, at import, into `huggingface_hub.constants`,
    so the derived constants are patched as well as the environment."""
    from huggingface_hub import constants

    endpoint = hub.endpoint if hub is not None else "http://127.0.0.1:9"
    cache = home / "hub"
    for key, value in {"HF_ENDPOINT": endpoint, "HF_HOME": str(home), "HF_HUB_CACHE": str(cache),
                       "HF_HUB_DISABLE_TELEMETRY": "1", "HF_HUB_DISABLE_IMPLICIT_TOKEN": "1"}.items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.delenv("HF_TOKEN", raising=False)
    monkeypatch.setattr(constants, "ENDPOINT", endpoint)
    monkeypatch.setattr(constants, "HUGGINGFACE_CO_URL_TEMPLATE", endpoint + "/{repo_id}/resolve/{revision}/{filename}")
    monkeypatch.setattr(constants, "HF_HOME", str(home))
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(cache))
    monkeypatch.setattr(constants, "HUGGINGFACE_HUB_CACHE", str(cache))
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(constants, "HF_HUB_DISABLE_IMPLICIT_TOKEN", True)
    monkeypatch.setattr(constants, "HF_TOKEN_PATH", str(home / "token"))
    monkeypatch.setattr(constants, "HF_STORED_TOKENS_PATH", str(home / "stored_tokens"))
    if hasattr(constants, "AGENT_HARNESSES_PATH"):
        monkeypatch.setattr(constants, "AGENT_HARNESSES_PATH", str(home / ".agent_harnesses.json"))


def set_offline(monkeypatch, offline: bool = True) -> None:
    """`HF_HUB_OFFLINE=1`, in the environment and in huggingface_hub's import-time constant."""
    from huggingface_hub import constants

    monkeypatch.setenv("HF_HUB_OFFLINE", "1" if offline else "0")
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", offline)
