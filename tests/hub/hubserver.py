"""A local stand-in for the Hugging Face Hub, speaking the part of its protocol slmdesk uses.

Two HTTP servers on 127.0.0.1 with random ports: the *Hub* (``/api/models`` search,
``/api/models/{repo}[/revision/{rev}]`` with ``blobs=True`` file metadata, ``/{repo}/resolve/...``
with HEAD, ``X-Repo-Commit``, ``ETag``/``X-Linked-Etag``/``X-Linked-Size``) and a *CDN* on another
origin that LFS files are redirected to, as on the real Hub, serving the bytes with ``Range``.
Because the CDN is another origin, the client does not follow the HEAD redirect and must not send
its token there, exactly as in production.

Faults are switches on `Faults`: cut the connection after N bytes, serve corrupted bytes, answer
a status (5xx, 404, 429 with ``Retry-After``) for a number of requests, be slow, hide the size,
send an endless body. A file's ``declared_size`` makes the listing and HEAD lie about its size;
`add_hostile_repo` adds names full of terminal escapes and bidi overrides. Every request is recorded in
``LocalHub.requests`` so tests can assert what was (re-)downloaded.

Usable from tests and from ``bench/download.py``.
"""

from __future__ import annotations

import hashlib
import json
import re
import socket
import threading
import time
from dataclasses import dataclass, field
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, quote, unquote, urlsplit

_CHUNK = 256 * 1024
TINY_REPO = "slmtest/tiny-llama-GGUF"
HOSTILE_REPO = "slmtest/hostile-GGUF"
# Names written to attack a terminal: clear the screen and recolour, set the window title,
# reverse the reading direction, and a C1 control (CSI as one character).
HOSTILE_NAMES = (
    "evil\x1b[2J\x1b[31m-Q4_K_M.gguf",
    "title\x1b]0;pwned\x07-Q5_K_M.gguf",
    "bidi\u202egguf.exe\u202c-Q6_K.gguf",
    "c1\x9b31m-Q8_0.gguf",
)
HOSTILE_REPO_ID = "slmtest/\x1b[31mred\u202e-GGUF"  # found by search; no CLI accepts it as REPO
VALID_TOKEN = "hf_test_token_allowed"


def closed_port_url() -> str:
    """An endpoint on 127.0.0.1 where nothing listens: a machine with no network."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}"


def sha256_of(path: Path) -> str:
    """SHA-256 of a file, read in chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()


def git_blob_id(data: bytes) -> str:
    """The git object id of a blob (what the Hub reports for files kept in git)."""
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


@dataclass
class HubFile:
    """A file of a repository: LFS files point at a path on disk, small ones hold bytes."""

    name: str
    path: Path | None = None
    content: bytes | None = None
    sha256: str = ""
    size: int = 0
    declared_size: int | None = None  # what the metadata claims (to fake an enormous file)

    @classmethod
    def lfs(cls, name: str, path: Path, sha256: str | None = None) -> HubFile:
        """A large file stored with LFS (served from the CDN)."""
        return cls(name=name, path=path, sha256=sha256 or sha256_of(path), size=path.stat().st_size)

    @classmethod
    def small(cls, name: str, content: bytes) -> HubFile:
        """A small file kept in git (README.md), served directly by the Hub."""
        return cls(name=name, content=content, size=len(content))

    @property
    def is_lfs(self) -> bool:
        """Whether the file goes through the CDN."""
        return self.path is not None

    def read(self, start: int, end: int) -> bytes:
        """Bytes [start, end) of the file."""
        if self.content is not None:
            return self.content[start:end]
        assert self.path is not None
        with open(self.path, "rb") as handle:
            handle.seek(start)
            return handle.read(end - start)


@dataclass
class HubRepo:
    """A model repository."""

    repo_id: str
    files: dict[str, HubFile] = field(default_factory=dict)
    downloads: int = 0
    likes: int = 0
    last_modified: str = "2025-01-01T00:00:00.000Z"
    license: str | None = "apache-2.0"
    tags: list[str] = field(default_factory=lambda: ["gguf"])
    gated: bool = False
    private: bool = False
    sha: str = ""

    def __post_init__(self) -> None:
        if not self.sha:
            self.sha = hashlib.sha1(self.repo_id.encode()).hexdigest()

    def add(self, file: HubFile) -> HubFile:
        """Add or replace a file."""
        self.files[file.name] = file
        return file


@dataclass
class Faults:
    """Switches for the failures a download must survive. Counters count down per request."""

    cut_after: int | None = None  # close the connection after this many body bytes...
    cut_times: int = 1  # ...for this many CDN requests
    corrupt: bool = False  # flip bytes of every file served from the CDN
    status: int | None = None  # answer this status to CDN requests...
    status_times: int = 1  # ...this many times
    status_skip: int = 0  # ...after letting this many CDN requests through first
    api_status: int | None = None  # answer this status to /api requests (until cleared)
    api_body: bytes | None = None  # answer /api requests 200 with these bytes (broken JSON)
    delay: float = 0.0  # seconds to sleep between chunks of a CDN body
    chunk: int = _CHUNK  # chunk size when slow or faulty
    retry_after: str | None = None  # a Retry-After header on the fault status answers
    no_length: bool = False  # hide the size: no Content-Length, ``/*`` totals, close at the end
    endless: bool = False  # after the file, keep sending bytes (with ``no_length``'s headers)...
    endless_limit: int = 64 << 20  # ...until this many extra bytes, so the test always ends
    head_size: int | None = None  # the size a HEAD on ``resolve`` claims (X-Linked-Size)
    ignore_range: bool = False  # answer range requests with the whole file (200)


@dataclass
class Request:
    """One request the Hub or CDN received."""

    method: str
    path: str
    range: str | None
    authorization: bool
    status: int = 0
    body_bytes: int = 0
    start: int = 0


class LocalHub:
    """The Hub and its CDN on two random local ports; start with `start`, end with `stop`."""

    def __init__(self) -> None:
        self.repos: dict[str, HubRepo] = {}
        self.faults = Faults()
        self.tokens: set[str] = {VALID_TOKEN}
        self.requests: list[Request] = []
        self._lock = threading.Lock()
        self._hub = _Server(("127.0.0.1", 0), _Handler, self, "hub")
        self._cdn = _Server(("127.0.0.1", 0), _Handler, self, "cdn")
        self._threads: list[threading.Thread] = []

    # -- lifecycle -------------------------------------------------------------------------

    @property
    def url(self) -> str:
        """The endpoint to put in ``HF_ENDPOINT``."""
        return f"http://127.0.0.1:{self._hub.server_address[1]}"

    @property
    def cdn_url(self) -> str:
        """Where LFS files are redirected to."""
        return f"http://127.0.0.1:{self._cdn.server_address[1]}"

    def start(self) -> LocalHub:
        """Serve on background threads."""
        for server, name in ((self._hub, "localhub"), (self._cdn, "localhub-cdn")):
            thread = threading.Thread(
                target=server.serve_forever, args=(0.05,), name=name, daemon=True
            )
            thread.start()
            self._threads.append(thread)
        return self

    def stop(self) -> None:
        """Stop serving and close the sockets."""
        for server in (self._hub, self._cdn):
            server.shutdown()
            server.server_close()
        for thread in self._threads:
            thread.join(timeout=5)

    def __enter__(self) -> LocalHub:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- content -------------------------------------------------------------------------------

    def add_repo(self, repo_id: str, **kwargs: Any) -> HubRepo:
        """Create (or replace) a repository."""
        repo = HubRepo(repo_id, **kwargs)
        self.repos[repo_id] = repo
        return repo

    def cdn_requests(self) -> list[Request]:
        """Requests for file bytes (GETs to the CDN)."""
        with self._lock:
            return [r for r in self.requests if r.path.startswith("/cdn/") and r.method == "GET"]

    def bytes_served(self) -> int:
        """Body bytes sent by the CDN so far."""
        return sum(r.body_bytes for r in self.cdn_requests())

    def reset_log(self) -> None:
        """Forget the recorded requests."""
        with self._lock:
            self.requests.clear()

    def _record(self, req: Request) -> None:
        with self._lock:
            self.requests.append(req)

    def _status_fault(self) -> bool:
        """Whether this CDN request gets the fault status (after ``status_skip`` good ones)."""
        with self._lock:
            if self.faults.status_skip > 0:
                self.faults.status_skip -= 1
                return False
        return self._take("status_times")

    def _take(self, counter: str) -> bool:
        """Atomically use one count of a fault counter."""
        with self._lock:
            left = getattr(self.faults, counter)
            if left <= 0:
                return False
            setattr(self.faults, counter, left - 1)
            return True


def add_hostile_repo(hub: LocalHub, source: Path) -> HubRepo:
    """A repository whose file names (`HOSTILE_NAMES`) and a sibling's repo id are hostile."""
    repo = hub.add_repo(HOSTILE_REPO, downloads=7)
    for name in HOSTILE_NAMES:
        repo.add(HubFile.lfs(name, source))
    hub.add_repo(HOSTILE_REPO_ID, downloads=3).add(HubFile.lfs("plain-Q4_K_M.gguf", source))
    return repo


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], handler: type, hub: LocalHub, role: str) -> None:
        super().__init__(address, handler)
        self.hub = hub
        self.role = role


_RESOLVE_RE = re.compile(r"^/(?P<repo>[^/]+/[^/]+)/resolve/(?P<rev>[^/]+)/(?P<file>.+)$")
_INFO_RE = re.compile(r"^/api/models/(?P<repo>[^/]+/[^/]+?)(?:/revision/(?P<rev>[^/]+))?/?$")


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:  # quiet
        return

    # -- helpers -------------------------------------------------------------------------------

    @property
    def hub(self) -> LocalHub:
        return self.server.hub

    def _token_ok(self) -> bool | None:
        """True: a valid token; False: an invalid one; None: no token."""
        auth = self.headers.get("Authorization", "")
        if not auth:
            return None
        return auth.removeprefix("Bearer ").strip() in self.hub.tokens

    def _send(
        self,
        status: int,
        body: bytes = b"",
        headers: dict[str, str] | None = None,
        head: bool = False,
    ) -> None:
        self.send_response(status)
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if not head and body:
            self.wfile.write(body)

    def _json(self, status: int, value: Any, headers: dict[str, str] | None = None) -> None:
        body = json.dumps(value).encode()
        self._send(status, body, {"Content-Type": "application/json", **(headers or {})})

    def _error(
        self,
        status: int,
        code: str | None,
        message: str,
        head: bool = False,
        extra: dict[str, str] | None = None,
    ) -> None:
        headers = {"Content-Type": "application/json", "X-Error-Message": message, **(extra or {})}
        if code:
            headers["X-Error-Code"] = code
        self._send(status, json.dumps({"error": message}).encode(), headers, head=head)

    # -- routing -------------------------------------------------------------------------------

    def do_GET(self) -> None:
        self._route(head=False)

    def do_HEAD(self) -> None:
        self._route(head=True)

    def _route(self, head: bool) -> None:
        parts = urlsplit(self.path)
        path = unquote(parts.path)
        req = Request(
            method="HEAD" if head else "GET",
            path=path,
            range=self.headers.get("Range"),
            authorization=bool(self.headers.get("Authorization")),
        )
        self.hub._record(req)
        try:
            if self.server.role == "cdn":
                self._cdn(path, parse_qs(parts.query), head, req)
                return
            if path.startswith("/api/") and self.hub.faults.api_status:
                req.status = self.hub.faults.api_status
                self._error(req.status, None, "Internal Error - We're working hard to fix this")
                return
            if path.startswith("/api/") and self.hub.faults.api_body is not None:
                req.status = 200
                self._send(200, self.hub.faults.api_body, {"Content-Type": "application/json"})
                return
            if path == "/api/models":
                req.status = 200
                self._search(parse_qs(parts.query))
                return
            match = _INFO_RE.match(path)
            if match:
                self._info(match["repo"], parse_qs(parts.query), req)
                return
            match = _RESOLVE_RE.match(path)
            if match:
                self._resolve(match["repo"], match["rev"], match["file"], head, req)
                return
            req.status = 404
            self._error(404, None, "Not Found")
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True

    # -- Hub API -------------------------------------------------------------------------------

    def _search(self, query: dict[str, list[str]]) -> None:
        filters = [f for value in query.get("filter", []) for f in value.split(",")]
        search = (query.get("search") or [""])[0].lower()
        sort = (query.get("sort") or ["downloads"])[0]
        limit = int((query.get("limit") or ["1000"])[0])
        expand = query.get("expand") or []
        repos = [
            r
            for r in self.hub.repos.values()
            if not r.private
            and all(f in r.tags for f in filters)
            and (not search or search in r.repo_id.lower())
        ]
        key = {
            "downloads": lambda r: r.downloads,
            "likes": lambda r: r.likes,
            "lastModified": lambda r: r.last_modified,
        }.get(sort, lambda r: r.downloads)
        repos.sort(key=key, reverse=True)
        items = []
        for repo in repos[:limit]:
            full = self._model_json(repo, blobs=False)
            if expand:
                item = {k: v for k, v in full.items() if k in expand}
                item["id"], item["_id"] = full["id"], full["_id"]
            else:
                item = {
                    k: full[k]
                    for k in ("_id", "id", "likes", "downloads", "tags", "private", "createdAt")
                }
            items.append(item)
        self._json(200, items)

    def _model_json(self, repo: HubRepo, blobs: bool) -> dict[str, Any]:
        siblings = []
        for f in repo.files.values():
            sib: dict[str, Any] = {"rfilename": f.name}
            if blobs:
                size = f.declared_size if f.declared_size is not None else f.size
                if f.is_lfs:
                    sib["blobId"] = hashlib.sha1(f.sha256.encode()).hexdigest()
                    sib["size"] = size
                    sib["lfs"] = {"size": size, "sha256": f.sha256, "pointerSize": 134}
                else:
                    assert f.content is not None
                    sib["blobId"] = git_blob_id(f.content)
                    sib["size"] = size
            siblings.append(sib)
        tags = list(repo.tags)
        if repo.license:
            tags.append(f"license:{repo.license}")
        card: dict[str, Any] = {"license": repo.license} if repo.license else {}
        return {
            "_id": repo.sha[:24],
            "id": repo.repo_id,
            "modelId": repo.repo_id,
            "author": repo.repo_id.split("/")[0],
            "sha": repo.sha,
            "lastModified": repo.last_modified,
            "createdAt": "2024-06-01T00:00:00.000Z",
            "private": repo.private,
            "gated": "auto" if repo.gated else False,
            "disabled": False,
            "downloads": repo.downloads,
            "likes": repo.likes,
            "library_name": "gguf",
            "tags": tags,
            "cardData": card,
            "siblings": siblings,
        }

    def _info(self, repo_id: str, query: dict[str, list[str]], req: Request) -> None:
        repo = self.hub.repos.get(repo_id)
        token = self._token_ok()
        if repo is None or (repo.private and not token):
            # The real Hub answers 401 to anonymous callers for missing and private repos alike.
            req.status = 401 if token is None else 404
            self._error(req.status, "RepoNotFound", "Repository not found")
            return
        blobs = (query.get("blobs") or ["false"])[0].lower() == "true"
        req.status = 200
        self._json(200, self._model_json(repo, blobs))

    def _resolve(self, repo_id: str, rev: str, filename: str, head: bool, req: Request) -> None:
        repo = self.hub.repos.get(repo_id)
        token = self._token_ok()
        if repo is None or (repo.private and not token):
            req.status = 401 if token is None else 404
            self._error(req.status, "RepoNotFound", "Repository not found", head)
            return
        if rev not in ("main", repo.sha):
            req.status = 404
            self._error(404, "RevisionNotFound", "Invalid rev id", head)
            return
        if repo.gated and not token:
            req.status = 401
            self._error(
                401,
                "GatedRepo",
                f"Access to model {repo_id} is restricted. You must have access to it and be "
                "authenticated to access it. Please log in.",
                head,
            )
            return
        file = repo.files.get(filename)
        if file is None:
            req.status = 404
            self._error(404, "EntryNotFound", "Entry not found", head)
            return
        common = {"X-Repo-Commit": repo.sha, "Accept-Ranges": "bytes"}
        if file.is_lfs:
            size = file.declared_size if file.declared_size is not None else file.size
            if self.hub.faults.head_size is not None:
                size = self.hub.faults.head_size
            location = f"{self.hub.cdn_url}/cdn/{file.sha256}?name={quote(file.name)}&sig=local"
            headers = {
                **common,
                "ETag": f'"{hashlib.sha1(file.sha256.encode()).hexdigest()}"',
                "X-Linked-Etag": f'"{file.sha256}"',
                "X-Linked-Size": str(size),
                "Location": location,
            }
            req.status = 302
            self._send(302, b"", headers, head=head)
            return
        assert file.content is not None
        headers = {**common, "ETag": f'"{git_blob_id(file.content)}"'}
        req.status = 200
        self._send(200, file.content, headers, head=head)

    # -- CDN -----------------------------------------------------------------------------------

    def _find_blob(self, sha: str) -> HubFile | None:
        for repo in self.hub.repos.values():
            for file in repo.files.values():
                if file.is_lfs and file.sha256 == sha:
                    return file
        return None

    def _cdn(self, path: str, query: dict[str, list[str]], head: bool, req: Request) -> None:
        if "Authorization" in self.headers:
            # A token must never leave the Hub for the CDN.
            req.status = 400
            self._error(400, None, "Authorization header not allowed on signed URLs", head)
            return
        file = self._find_blob(path.removeprefix("/cdn/"))
        if file is None:
            req.status = 404
            self._error(404, None, "NoSuchKey", head)
            return
        faults = self.hub.faults
        if not head and faults.status and self.hub._status_fault():
            req.status = faults.status
            extra = {"Retry-After": faults.retry_after} if faults.retry_after else None
            self._error(faults.status, None, HTTPStatus(faults.status).phrase, extra=extra)
            return
        size = file.size
        start, end = 0, size
        status = 200
        rng = self.headers.get("Range")
        if rng and not faults.ignore_range:
            match = re.fullmatch(r"bytes=(\d+)-(\d*)", rng.strip())
            if not match or int(match[1]) >= size:
                req.status = 416
                self._send(416, b"", {"Content-Range": f"bytes */{size}"}, head=head)
                return
            start = int(match[1])
            end = min(size, int(match[2]) + 1) if match[2] else size
            status = 206
        req.start = start
        req.status = status
        headers = {
            "Content-Type": "application/octet-stream",
            "Accept-Ranges": "bytes",
            "ETag": f'"{file.sha256}"',
            "Content-Length": str(end - start),
        }
        if status == 206:
            headers["Content-Range"] = f"bytes {start}-{end - 1}/{size}"
        hide_size = faults.no_length or faults.endless
        if hide_size:
            # A body that ends when the connection closes: the size shows only at the end.
            del headers["Content-Length"]
            headers["Connection"] = "close"
            if status == 206:
                headers["Content-Range"] = f"bytes {start}-{end - 1}/*"
            self.close_connection = True
        self.send_response(status)
        for key, value in headers.items():
            self.send_header(key, value)
        self.end_headers()
        if head:
            return
        cut = (
            faults.cut_after
            if faults.cut_after is not None and self.hub._take("cut_times")
            else None
        )
        plain = (
            cut is None
            and not faults.corrupt
            and not faults.delay
            and not faults.endless
            and file.path is not None
        )
        if plain:
            assert file.path is not None
            with open(file.path, "rb") as handle:
                sent = self.connection.sendfile(handle, offset=start, count=end - start)
            req.body_bytes = sent
            return
        pos = start
        while pos < end:
            n = min(faults.chunk, end - pos)
            if cut is not None:
                n = min(n, max(0, cut - req.body_bytes))
                if n == 0:
                    self._drop()
                    return
            data = file.read(pos, pos + n)
            if faults.corrupt:
                data = bytes(b ^ 0x5A if (pos + i) % 4099 == 0 else b for i, b in enumerate(data))
            self.wfile.write(data)
            req.body_bytes += len(data)
            pos += len(data)
            if faults.delay:
                time.sleep(faults.delay)
        if cut is not None and req.body_bytes >= cut:
            self._drop()
            return
        extra = 0
        while faults.endless and extra < faults.endless_limit:
            self.wfile.write(b"\xee" * faults.chunk)
            req.body_bytes += faults.chunk
            extra += faults.chunk

    def _drop(self) -> None:
        """Cut the connection abruptly, as a network failure would."""
        self.close_connection = True
        try:
            self.wfile.flush()
            self.connection.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
